## The empirical autocorrelation (ACF) and semivariogram (Variogram) of a
## fit's residuals against nlme's, two ways: against nlme's methods on nlme's
## own fit of the same model (their difference is what the two fits' small
## disagreement leaves), and against nlme's methods applied to our residual
## vector (the arithmetic alone, which must agree to rounding).  Then the
## pictures.

## Our residuals put into nlme's fit, as its response residuals: nlme's
## ACF() and Variogram() with resType = "response" then work on our vector.
## (resid.lme(type = "response") is the residuals column of the innermost level.)
SAME_RESID_TOL <- 1e-12
## Against nlme's own fit: the Ovary fits' ACF and semivariograms agree to
## about 1e-7 (relative) and are compared at 1e-6; the spatial fits' sigma
## agree to about 1.2e-6 and their range to 5e-6 (the likelihood is that
## flat), and the Pearson semivariogram goes with 1 / sigma^2 (2.4e-6): the
## spatial semivariograms are compared at 1e-5.
RESID_FIT_TOL <- 1e-6
SPATIAL_FIT_TOL <- 1e-5

with_our_residuals <- function(theirs, r) {
    Q <- ncol(theirs$residuals)
    theirs$residuals[, Q] <- r
    theirs
}

our_resid <- function(fit, type) {
    as.numeric(residuals(fit, type = type, scaled = type == "pearson"))
}

ovary_fits <- function(correlation, weights = NULL) {
    Ovary <- ovary_plain()
    f <- follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time)
    ours <- lmmfit(update(f, . ~ . + (1 | Mare)), data = Ovary, correlation = correlation, weights = weights)
    theirs <- nlme::lme(f, random = ~ 1 | Mare, data = Ovary, correlation = correlation, weights = weights,
                        control = NLME_TIGHT())
    list(ours = ours, theirs = theirs, data = Ovary)
}

## The definition, in one loop per group: c(k) = sum r_i r_{i+k} / #pairs.
acf_by_definition <- function(r, g, maxLag) {
    s <- numeric(maxLag + 1); m <- numeric(maxLag + 1)
    for (e in split(r, g)) for (k in 0:min(maxLag, length(e) - 1)) {
        s[k + 1] <- s[k + 1] + sum(e[seq_len(length(e) - k)] * e[seq_len(length(e) - k) + k])
        m[k + 1] <- m[k + 1] + length(e) - k
    }
    list(ACF = (s / m) / (s[1] / m[1]), n.used = m)
}

## All pairs within groups, by brute force: their semivariogram values and
## distances (coordinates X), grouped by g.
pairs_by_definition <- function(r, X, g) {
    X <- as.matrix(X)
    out <- list()
    for (lv in levels(factor(g))) {
        i <- which(g == lv)
        for (b in seq_along(i)) for (a in seq_along(i)) if (a > b)      # dist()'s order
            out[[length(out) + 1L]] <- c((r[i[a]] - r[i[b]])^2 / 2, sqrt(sum((X[i[a], ] - X[i[b], ])^2)),
                                         abs(r[i[a]] - r[i[b]]))
    }
    m <- do.call(rbind, out)
    data.frame(variog = m[, 1], dist = m[, 2], absdiff = m[, 3])
}

## The binned semivariogram by definition: bins (b_k, b_{k+1}] with the
## smallest distance in the first; mean (or Cressie-Hawkins) and median.
bins_by_definition <- function(p, breaks, robust = FALSE) {
    bin <- pmax(1L, findInterval(p$dist, breaks, left.open = TRUE))
    do.call(rbind, lapply(sort(unique(bin)), function(k) {
        q <- p[bin == k, ]
        v <- if (robust) mean(sqrt(q$absdiff))^4 / (2 * (0.457 + 0.494 / nrow(q))) else mean(q$variog)
        data.frame(variog = v, dist = median(q$dist), n.pairs = nrow(q))
    }))
}

test_that("ACF of corAR1 and corCAR1 fits (Ovary) is nlme's, for each type of residual", {
    need("nlme")
    for (cs in list(nlme::corAR1(form = ~ 1 | Mare), nlme::corCAR1(form = ~ Time | Mare))) {
        fits <- ovary_fits(cs)
        for (type in c("pearson", "response", "normalized")) {
            ours <- ACF(fits$ours, maxLag = 12, resType = type)
            theirs <- nlme::ACF(fits$theirs, maxLag = 12, resType = type)
            expect_s3_class(ours, c("ACF", "data.frame"), exact = TRUE)
            expect_named(ours, c("lag", "ACF"))
            expect_identical(ours$lag, 0:12)
            expect_identical(attr(ours, "n.used"), attr(theirs, "n.used"))
            expect_equal(ours$ACF, theirs$ACF, tolerance = RESID_FIT_TOL)
            ## the same residual vector through nlme's ACF: equal to rounding
            same <- nlme::ACF(with_our_residuals(fits$theirs, our_resid(fits$ours, type)),
                              maxLag = 12, resType = "response")
            expect_equal(ours$ACF, same$ACF, tolerance = SAME_RESID_TOL)
            ## and the definition
            def <- acf_by_definition(our_resid(fits$ours, type), fits$data$Mare, 12)
            expect_equal(ours$ACF, def$ACF, tolerance = SAME_RESID_TOL)
            expect_equal(attr(ours, "n.used"), def$n.used)
        }
        ## nlme's default maxLag
        expect_identical(nrow(ACF(fits$ours)), nrow(nlme::ACF(fits$theirs)))
    }
})

test_that("ACF of a fit without a structure groups by the innermost random effect, as nlme", {
    need("nlme")
    Oats <- as.data.frame(nlme::Oats)
    Oats$Block <- factor(as.character(Oats$Block))
    Oats$Variety <- factor(as.character(Oats$Variety))
    ours <- lmmfit(yield ~ nitro + (1 | Block / Variety), data = Oats)
    ## (NLME_TIGHT() leaves nlme's logLik 1.3e-10 short of ours and its sigma
    ## 8e-7 off, which moves the ACF by 4e-6; without EM steps and at 1e-14
    ## its logLik comes within 2e-11 of ours and the ACF within 8e-7)
    theirs <- nlme::lme(yield ~ nitro, random = ~ 1 | Block / Variety, data = Oats,
                        control = nlme::lmeControl(niterEM = 0, maxIter = 1000, msMaxIter = 1000,
                                                   tolerance = 1e-14, msTol = 1e-14))
    expect_lt(abs(as.numeric(logLik(ours)) - as.numeric(logLik(theirs))), 1e-10)
    for (type in c("pearson", "response", "normalized")) {
        a <- ACF(ours, resType = type)
        b <- nlme::ACF(theirs, resType = type)
        expect_identical(attr(a, "n.used"), attr(b, "n.used"))
        expect_equal(a$ACF, b$ACF, tolerance = RESID_FIT_TOL)
        same <- nlme::ACF(with_our_residuals(theirs, our_resid(ours, type)), resType = "response")
        expect_equal(a$ACF, same$ACF, tolerance = SAME_RESID_TOL)
    }
    ## form's grouping replaces it: by Block, 12 rows a group
    byblock <- ACF(ours, maxLag = 3, form = ~ 1 | Block)
    def <- acf_by_definition(our_resid(ours, "pearson"), Oats$Block, 3)
    expect_equal(byblock$ACF, def$ACF, tolerance = SAME_RESID_TOL)
    expect_equal(attr(byblock, "n.used"), def$n.used)
})

test_that("ACF: the ar1() and general paths agree; form's time orders within groups", {
    need("nlme")
    Ovary <- ovary_plain()
    Ovary$visit <- ave(seq_len(nrow(Ovary)), Ovary$Mare, FUN = seq_along)
    f <- follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time) + (1 | Mare)
    ## AR(1) at consecutive visits, by ar1() (its own evaluation) and as a
    ## continuous AR(1) in the visit number (the general one)
    a <- lmmfit(f, data = Ovary, correlation = ar1(~ 1 | Mare))
    b <- lmmfit(f, data = Ovary, correlation = nlme::corCAR1(form = ~ visit | Mare))
    expect_equal(corpar(a), corpar(b), tolerance = 1e-5)
    for (type in c("pearson", "normalized"))
        expect_equal(ACF(a, maxLag = 8, resType = type), ACF(b, maxLag = 8, resType = type), tolerance = 1e-6)
    ## (the model curves differ: AR(1)'s is drawn at integer lags)
    expect_equal(Variogram(a), Variogram(b), tolerance = 1e-5, ignore_attr = TRUE)
    ## rows shuffled: a serial structure's time orders the residuals, as
    ## form's covariate does
    set.seed(2)
    sh <- Ovary[sample(nrow(Ovary)), ]
    c1 <- lmmfit(f, data = sh, correlation = nlme::corCAR1(form = ~ Time | Mare))
    c0 <- lmmfit(f, data = Ovary, correlation = nlme::corCAR1(form = ~ Time | Mare))
    expect_equal(ACF(c1, maxLag = 8), ACF(c0, maxLag = 8), tolerance = 1e-6)
    p0 <- lmmfit(f, data = Ovary)
    p1 <- lmmfit(f, data = sh)
    expect_equal(ACF(p1, maxLag = 8, form = ~ Time), ACF(p0, maxLag = 8), tolerance = 1e-6)
})

test_that("ACF and Variogram of a fit with na.exclude are those of its complete rows", {
    need("nlme")
    Ovary <- ovary_plain()
    Ovary$follicles[c(3, 50)] <- NA
    f <- follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time) + (1 | Mare)
    cs <- nlme::corCAR1(form = ~ Time | Mare)
    ex <- lmmfit(f, data = Ovary, correlation = cs, na.action = na.exclude)
    cc <- lmmfit(f, data = Ovary[-c(3, 50), ], correlation = cs)
    expect_equal(ACF(ex, maxLag = 8), ACF(cc, maxLag = 8), tolerance = 1e-10)
    expect_equal(Variogram(ex), Variogram(cc), tolerance = 1e-10)
    expect_equal(Variogram(ex, form = ~ Time, collapse = "none"), Variogram(cc, form = ~ Time, collapse = "none"),
                 tolerance = 1e-10)
    expect_equal(sum(Variogram(ex)$n.pairs), sum(choose(table(Ovary$Mare[-c(3, 50)]), 2)))
})

test_that("ACF refuses what it does not take", {
    need("nlme")
    fit <- ovary_fits(nlme::corAR1(form = ~ 1 | Mare))$ours
    expect_error(ACF(fit, maxLag = 12, alpha = 0.05), "unused argument 'alpha'")
    expect_error(ACF(fit, maxLag = 40), "maxLag = 40, but the largest group of Mare has 31 observations")
    expect_error(ACF(fit, maxLag = 2.5), "'maxLag' must be a whole number")
    expect_error(ACF(fit, resType = "deviance"), "should be one of")
    expect_error(ACF(fit, form = y ~ x), "one-sided formula")
    Oats <- as.data.frame(nlme::Oats)
    crossed <- lmmfit(yield ~ nitro + (1 | Block) + (1 | Variety), data = Oats)
    expect_error(ACF(crossed), "crossed, so there is no innermost group")
    expect_s3_class(ACF(crossed, form = ~ 1 | Block), "ACF")
})

test_that("Variogram on spatial sites with corExp is nlme's (quantiles, fixed, none, robust)", {
    need("nlme")
    sp <- spatial_sites()
    for (nug in c(FALSE, TRUE)) {
        cs <- nlme::corExp(form = ~ x + y | site, nugget = nug)
        ours <- lmmfit(z ~ x + (1 | site), data = sp, correlation = cs)
        theirs <- nlme::lme(z ~ x, random = ~ 1 | site, data = sp, correlation = cs, control = NLME_TIGHT())
        for (type in c("pearson", "response", "normalized")) {
            r <- our_resid(ours, type)
            same_fit <- with_our_residuals(theirs, r)
            p <- pairs_by_definition(r, sp[, c("x", "y")], sp$site)
            ## one row per pair, in nlme's order
            a <- Variogram(ours, resType = type, collapse = "none")
            b <- nlme::Variogram(theirs, resType = type, collapse = "none")
            expect_s3_class(a, c("Variogram", "data.frame"), exact = TRUE)
            expect_named(a, c("variog", "dist"))
            expect_false(attr(a, "collapse"))
            expect_identical(a$dist, b$dist)
            expect_equal(a$variog, b$variog, tolerance = SPATIAL_FIT_TOL)
            same <- nlme::Variogram(same_fit, resType = "response", collapse = "none")
            expect_equal(a$variog, same$variog, tolerance = SAME_RESID_TOL)
            expect_equal(a$variog, p$variog, tolerance = SAME_RESID_TOL)
            expect_equal(a$dist, p$dist, tolerance = SAME_RESID_TOL)
            for (collapse in c("quantiles", "fixed")) {
                a <- Variogram(ours, resType = type, collapse = collapse)
                b <- nlme::Variogram(theirs, resType = type, collapse = collapse)
                expect_named(a, c("variog", "dist", "n.pairs"))
                expect_true(attr(a, "collapse"))
                ## nlme's cut() leaves out the pair at the smallest distance:
                ## its first bin has one pair fewer, the others are ours
                expect_identical(a$n.pairs[-1], b$n.pairs[-1])
                expect_identical(a$n.pairs[1], b$n.pairs[1] + 1L)
                expect_equal(a$variog[-1], b$variog[-1], tolerance = SPATIAL_FIT_TOL)
                expect_equal(a$dist[-1], b$dist[-1], tolerance = SAME_RESID_TOL)
                same <- nlme::Variogram(same_fit, resType = "response", collapse = collapse)
                expect_equal(a[-1, ], same[-1, ], tolerance = SAME_RESID_TOL, ignore_attr = TRUE)
                ## all bins, the first included, by definition
                br <- if (collapse == "quantiles") unique(quantile(p$dist, seq(0, 1, 1 / 20)))
                      else seq(min(p$dist), max(p$dist), length.out = 21)
                expect_equal(as.data.frame(a), bins_by_definition(p, br), tolerance = SAME_RESID_TOL,
                             ignore_attr = TRUE)
            }
            ## Cressie and Hawkins
            a <- Variogram(ours, resType = type, robust = TRUE)
            b <- nlme::Variogram(theirs, resType = type, robust = TRUE)
            expect_equal(a$variog[-1], b$variog[-1], tolerance = SPATIAL_FIT_TOL)
            same <- nlme::Variogram(same_fit, resType = "response", robust = TRUE)
            expect_equal(a$variog[-1], same$variog[-1], tolerance = SAME_RESID_TOL)
            br <- unique(quantile(p$dist, seq(0, 1, 1 / 20)))
            expect_equal(a$variog, bins_by_definition(p, br, robust = TRUE)$variog, tolerance = SAME_RESID_TOL)
            ## the fitted model's semivariogram, as nlme attaches it
            ma <- attr(Variogram(ours, resType = type), "modelVariog")
            mb <- attr(nlme::Variogram(theirs, resType = type), "modelVariog")
            if (type == "normalized") {
                expect_null(ma)
                expect_null(mb)
            } else {
                expect_s3_class(ma, "Variogram")
                expect_identical(ma$dist, mb$dist)
                expect_equal(ma$variog, mb$variog, tolerance = SPATIAL_FIT_TOL)
                cp <- corpar(ours)
                nugget <- if (nug) cp[["nugget"]] else 0
                s2 <- if (type == "pearson") 1 else sigma(ours)^2
                expect_equal(ma$variog, s2 * (nugget + (1 - nugget) * (1 - exp(-ma$dist / cp[["range"]]))),
                             tolerance = SAME_RESID_TOL)
            }
        }
    }
})

test_that("Variogram of a serial structure (Ovary, corCAR1 and corAR1) is nlme's", {
    need("nlme")
    fits <- ovary_fits(nlme::corCAR1(form = ~ Time | Mare))
    for (type in c("pearson", "response", "normalized")) {
        ## the structure's time differences are our default; nlme needs form = ~ Time
        a <- Variogram(fits$ours, resType = type, collapse = "none")
        b <- nlme::Variogram(fits$theirs, form = ~ Time, resType = type, collapse = "none")
        expect_equal(a$dist, b$dist, tolerance = SAME_RESID_TOL)
        expect_equal(a$variog, b$variog, tolerance = RESID_FIT_TOL)
        same <- nlme::Variogram(with_our_residuals(fits$theirs, our_resid(fits$ours, type)), form = ~ Time,
                                resType = "response", collapse = "none")
        expect_equal(a$variog, same$variog, tolerance = SAME_RESID_TOL)
        expect_equal(Variogram(fits$ours, form = ~ Time, resType = type, collapse = "none"), a,
                     ignore_attr = TRUE)
        a <- Variogram(fits$ours, resType = type)
        b <- nlme::Variogram(fits$theirs, form = ~ Time, resType = type)
        expect_identical(a$n.pairs[-1], b$n.pairs[-1])
        expect_equal(a$variog[-1], b$variog[-1], tolerance = RESID_FIT_TOL)
        expect_equal(a$dist, c(a$dist[1], b$dist[-1]), tolerance = SAME_RESID_TOL)
    }
    ## the fitted model: 1 - Phi^d over the range of the time differences
    m <- attr(Variogram(fits$ours), "modelVariog")
    d <- a <- NULL
    d <- unlist(lapply(split(fits$data$Time, fits$data$Mare), function(t) as.vector(dist(t))))
    expect_equal(range(m$dist), range(d), tolerance = SAME_RESID_TOL)
    expect_equal(m$variog, 1 - corpar(fits$ours)[["Phi"]]^m$dist, tolerance = SAME_RESID_TOL)
    expect_equal(attr(Variogram(fits$ours, resType = "response"), "modelVariog")$variog,
                 sigma(fits$ours)^2 * m$variog, tolerance = SAME_RESID_TOL)
    ## with another distance (positions), no model curve
    expect_null(attr(Variogram(fits$ours, form = ~ 1), "modelVariog"))

    ## corAR1 on positions: nlme's default distances; its quantile bins leave
    ## out all the lag-1 pairs, ours keep them
    fits <- ovary_fits(nlme::corAR1(form = ~ 1 | Mare))
    a <- Variogram(fits$ours)
    b <- nlme::Variogram(fits$theirs)
    expect_identical(a$n.pairs[-1], b$n.pairs[-1])
    expect_equal(a$variog[-1], b$variog[-1], tolerance = RESID_FIT_TOL)
    lag1 <- sum(lengths(split(fits$data$Mare, fits$data$Mare)) - 1L)
    expect_identical(a$n.pairs[1], b$n.pairs[1] + lag1)
    expect_equal(sum(a$n.pairs), sum(choose(table(fits$data$Mare), 2)))
    m <- attr(a, "modelVariog")
    expect_identical(m$dist, as.numeric(1:30))
    expect_equal(m$variog, 1 - corpar(fits$ours)[["Phi"]]^(1:30), tolerance = SAME_RESID_TOL)
    ## one bin per distance when there are fewer distances than intervals
    a <- Variogram(fits$ours, nint = 40)
    r <- our_resid(fits$ours, "pearson")
    pos <- ave(seq_along(r), fits$data$Mare, FUN = seq_along)
    p <- pairs_by_definition(r, pos, fits$data$Mare)
    expect_identical(a$dist, as.numeric(1:30))
    expect_equal(a$variog, as.vector(tapply(p$variog, p$dist, mean)), tolerance = SAME_RESID_TOL)
    b <- nlme::Variogram(fits$theirs, nint = 40)
    expect_equal(a$variog, b$variog, tolerance = RESID_FIT_TOL)
})

test_that("Variogram: distance, form, data, maxDist, breaks, metric", {
    need("nlme")
    sp <- spatial_sites()
    fit <- lmmfit(z ~ x + (1 | site), data = sp, correlation = nlme::corExp(form = ~ x + y | site))
    v <- Variogram(fit, collapse = "none")
    ## the same distances given three ways
    dl <- lapply(split(sp[, c("x", "y")], sp$site), dist)
    expect_equal(Variogram(fit, distance = dl, collapse = "none"), v, ignore_attr = TRUE)
    expect_equal(Variogram(fit, distance = unlist(lapply(dl, as.vector)), collapse = "none"), v,
                 ignore_attr = TRUE)
    expect_equal(Variogram(fit, form = ~ x + y, collapse = "none"), v, ignore_attr = TRUE)
    ## other metrics, the grouping of form, data given
    vm <- Variogram(fit, form = ~ x + y | site, metric = "manhattan", collapse = "none")
    expect_equal(vm$dist, unlist(lapply(split(sp[, c("x", "y")], sp$site), function(d)
        as.vector(dist(d, "manhattan")))), tolerance = SAME_RESID_TOL, ignore_attr = TRUE)
    vx <- Variogram(fit, form = ~ x, data = sp, metric = "maximum", collapse = "none")
    expect_equal(vx$dist, unlist(lapply(split(sp$x, sp$site), function(d) as.vector(dist(d)))),
                 tolerance = SAME_RESID_TOL, ignore_attr = TRUE)
    ## a covariate with missing values: na.omit leaves those rows out
    sp2 <- sp
    sp2$w <- sp$x
    sp2$w[c(1, 20)] <- NA
    expect_error(Variogram(fit, form = ~ w, data = sp2), "missing values")
    vo <- Variogram(fit, form = ~ w, data = sp2, na.action = na.omit, collapse = "none")
    expect_identical(nrow(vo), nrow(v) - 15L - 15L)
    ## maxDist, then the bins of what is left
    vd <- Variogram(fit, maxDist = 0.3, collapse = "none")
    expect_equal(vd, {w <- v[v$dist <= 0.3, ]; row.names(w) <- seq_len(nrow(w)); w}, ignore_attr = TRUE)
    expect_lte(max(Variogram(fit, maxDist = 0.3)$dist), 0.3)
    ## breaks as given, extended to the range of the distances
    vb <- Variogram(fit, breaks = c(0.1, 0.2, 0.4, 0.8))
    p <- pairs_by_definition(our_resid(fit, "pearson"), sp[, c("x", "y")], sp$site)
    expect_equal(as.data.frame(vb), bins_by_definition(p, c(min(p$dist), 0.1, 0.2, 0.4, 0.8, max(p$dist))),
                 tolerance = SAME_RESID_TOL, ignore_attr = TRUE)
    expect_identical(nrow(vb), 5L)
    expect_identical(sum(vb$n.pairs), nrow(p))
})

test_that("Variogram refuses what it does not take", {
    need("nlme")
    sp <- spatial_sites()
    fit <- lmmfit(z ~ x + (1 | site), data = sp, correlation = nlme::corExp(form = ~ x + y | site))
    expect_error(Variogram(fit, robust = TRUE, collapse = "none"), "robust = TRUE needs collapse")
    expect_error(Variogram(fit, metric = "maximum"), "'metric' applies to the distances computed from 'form'")
    expect_error(Variogram(fit, data = sp), "'data' applies to the distances computed from 'form'")
    expect_error(Variogram(fit, distance = 1:3, form = ~ x), "not both")
    expect_error(Variogram(fit, distance = 1:3), "'distance' has 3 values for the 3000 residual pairs")
    expect_error(Variogram(fit, distance = list(1:3)), "one element per group of site")
    expect_error(Variogram(fit, breaks = c(0.1, 0.2), nint = 5), "nint = 5 is not consistent")
    expect_error(Variogram(fit, breaks = c(0.3, 0.2)), "'breaks' must be increasing")
    expect_error(Variogram(fit, nint = 0), "'nint' must be a whole number >= 1")
    expect_error(Variogram(fit, maxDist = 0), "no residual pairs")
    expect_error(Variogram(fit, span = 0.5), "unused argument 'span'")
    expect_error(Variogram(fit, form = ~ nosuchvar), "nosuchvar")
})

test_that("nlme's lattice plot methods take our ACF and Variogram objects", {
    need("nlme")
    need("lattice")
    fits <- ovary_fits(nlme::corCAR1(form = ~ Time | Mare))
    grDevices::pdf(NULL)             # (lattice's settings open a device)
    on.exit(grDevices::dev.off())
    expect_s3_class(plot(ACF(fits$ours, maxLag = 10), alpha = 0.05), "trellis")
    expect_s3_class(plot(Variogram(fits$ours)), "trellis")
    expect_s3_class(plot(Variogram(fits$ours, resType = "normalized")), "trellis")
})

test_that("the fitted correlation the ACF plot draws is the structure's (against the C colouring)", {
    need("nlme")
    for (fit in list(ovary_fits(nlme::corAR1(form = ~ 1 | Mare), nlme::varExp(form = ~ Time))$ours,
                     lmmfit(z ~ x + (1 | site), data = spatial_sites(S = 6),
                            correlation = nlme::corGaus(form = ~ x + y | site, nugget = TRUE)))) {
        info <- lmmfit:::cor_structure_info(fit)
        n <- length(fit$y)
        A <- lmmfit:::resid_transform(fit, diag(n), color = TRUE)
        C <- cov2cor(tcrossprod(A))
        ij <- which(lower.tri(C), arr.ind = TRUE)
        expect_equal(lmmfit:::structure_cor(info, ij[, 1], ij[, 2]), C[ij], tolerance = 1e-10)
    }
})

## Draws into a PNG in a temporary file; checks the file is there and not
## empty; returns the plot's value.
draw_png <- function(expr) {
    file <- tempfile(fileext = ".png")
    grDevices::png(file, width = 900, height = 650)
    value <- tryCatch(expr, finally = grDevices::dev.off())
    expect_true(file.exists(file))
    expect_gt(file.size(file), 1000)
    unlink(file)
    value
}

test_that("plot_acf draws the ACF, its bounds and the fitted correlation", {
    need("nlme")
    fits <- ovary_fits(nlme::corAR1(form = ~ 1 | Mare))
    out <- draw_png(plot_acf(fits$ours, maxLag = 10))
    a <- ACF(fits$ours, maxLag = 10)
    expect_named(out, c("lag", "ACF", "n.used", "bound", "model"))
    expect_identical(out$ACF, a$ACF)
    expect_identical(out$n.used, attr(a, "n.used"))
    expect_equal(out$bound, c(NA, qnorm(0.975) / sqrt(attr(a, "n.used")[-1])), tolerance = 1e-14)
    ## AR(1) at consecutive positions: Phi^k
    expect_equal(out$model, corpar(fits$ours)[["Phi"]]^(0:10), tolerance = 1e-12)
    ## normalized residuals: no model correlation; alpha = 0: no bounds
    out <- draw_png(plot_acf(fits$ours, maxLag = 10, resType = "normalized", alpha = 0))
    expect_true(all(is.na(out$model)))
    expect_true(all(is.na(out$bound)))
    ## continuous time: the mean of Phi^|dt| over each lag's pairs
    car <- ovary_fits(nlme::corCAR1(form = ~ Time | Mare))
    out <- draw_png(plot_acf(car$ours, maxLag = 3, alpha = 0.1))
    phi <- corpar(car$ours)[["Phi"]]
    lag2 <- unlist(lapply(split(car$data$Time, car$data$Mare), function(t) phi^diff(t, lag = 2)))
    expect_equal(out$model[3], mean(lag2), tolerance = 1e-12)
    expect_equal(out$bound[2], qnorm(0.95) / sqrt(out$n.used[2]), tolerance = 1e-14)
    ## a fit without a structure
    plain <- lmmfit(follicles ~ sin(2 * pi * Time) + (1 | Mare), data = fits$data)
    out <- draw_png(plot_acf(plain))
    expect_true(all(is.na(out$model)))
    expect_error(plot_acf(fits$ours, lwd = 2), "unused argument 'lwd'")
    expect_error(plot_acf(fits$ours, alpha = 1), "'alpha' must be a number in")
    expect_error(plot_acf(lm(follicles ~ Time, fits$data)), "fitted by lmmfit")
})

test_that("plot_variogram draws the semivariogram, a smooth and the fitted model", {
    need("nlme")
    sp <- spatial_sites()
    fit <- lmmfit(z ~ x + (1 | site), data = sp, correlation = nlme::corExp(form = ~ x + y | site, nugget = TRUE))
    out <- draw_png(plot_variogram(fit))
    v <- Variogram(fit)
    expect_identical(out$variogram, v)
    expect_equal(out$model, as.data.frame(attr(v, "modelVariog")), ignore_attr = TRUE)
    expect_named(out$model, c("variog", "dist"))
    expect_equal(out$smooth, loess.smooth(v$dist, v$variog, span = 0.6, degree = 1, family = "symmetric"))
    ## normalized residuals: the flat line at 1
    out <- draw_png(plot_variogram(fit, resType = "normalized", smooth = FALSE))
    expect_null(out$smooth)
    expect_identical(out$model$variog, c(1, 1))
    ## single pairs: a least-squares smooth
    out <- draw_png(plot_variogram(fit, collapse = "none", maxDist = 0.5))
    expect_equal(out$smooth$y, loess.smooth(out$variogram$dist, out$variogram$variog, span = 0.6,
                                            degree = 1, family = "gaussian")$y)
    ## a serial structure, and none at all (the model is 1 for Pearson residuals)
    car <- ovary_fits(nlme::corCAR1(form = ~ Time | Mare))
    out <- draw_png(plot_variogram(car$ours, robust = TRUE, nint = 12))
    expect_equal(out$model$variog, 1 - corpar(car$ours)[["Phi"]]^out$model$dist)
    plain <- lmmfit(z ~ x + (1 | site), data = sp)
    out <- draw_png(plot_variogram(plain, form = ~ x + y))
    expect_identical(out$model$variog, c(1, 1))
    out <- draw_png(plot_variogram(plain, form = ~ x + y, resType = "response", model = FALSE))
    expect_null(out$model)
    cs <- lmmfit(z ~ x + (1 | site), data = sp, correlation = nlme::corCompSymm(form = ~ 1 | site))
    out <- draw_png(plot_variogram(cs, form = ~ x + y))
    expect_equal(out$model$variog, rep(1 - corpar(cs)[["Rho"]], 2))
    expect_error(plot_variogram(fit, pch = 2), "unused argument 'pch'")
    expect_error(plot_variogram(fit, span = 0), "'span' must be a positive number")
})
