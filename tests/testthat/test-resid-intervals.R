## intervals() (R/resid-intervals.R): nlme's intervals() is the oracle.

GLS_TIGHT <- function(...) nlme::glsControl(maxIter = 500, msMaxIter = 500, tolerance = 1e-10, msTol = 1e-12,
                                            returnObject = TRUE, ...)
LME_TIGHT <- function(...) nlme::lmeControl(maxIter = 500, msMaxIter = 500, msMaxEval = 2000, tolerance = 1e-10,
                                            msTol = 1e-12, returnObject = TRUE, ...)

## nlme's apVar is a finite-difference Hessian (fdHess, relative step
## eps^(1/3) ~ 6e-6), whose rounding error moves its standard errors by up
## to 6e-4 (Orthodont) and 2.5e-2 (the spatial fit) when the step becomes
## eps^(1/4); ours (Richardson) moves by < 1e-6 when its step is halved or
## doubled.  With step eps^(1/4) nlme agrees with us to 1.6e-4 in the
## standard errors and 1.3e-4 of an interval's width in its endpoints (max
## over the five cases).  The oracle is nlme at that step; the tolerance,
## on |difference| / width, leaves a factor ~4.
NLME_STEP <- .Machine$double.eps^(1 / 4)
INTERVALS_NLME_TOL <- 5e-4

## The interval tables as a flat list of matrices (reStruct by level).
flat_intervals <- function(iv) {
    out <- list()
    for (nm in names(iv)) {
        if (nm == "reStruct") for (g in names(iv[[nm]])) out[[paste(nm, g)]] <- as.matrix(iv[[nm]][[g]])
        else out[[nm]] <- rbind(unclass(iv[[nm]]))
    }
    lapply(out, function(m) { attr(m, "label") <- NULL; m })
}

## Ours against nlme's: the same blocks, rows and estimates; the endpoints'
## differences over the interval's width.
expect_intervals_agree <- function(ours, theirs, tol = INTERVALS_NLME_TOL) {
    a <- flat_intervals(ours)
    b <- flat_intervals(theirs)
    expect_equal(names(a), names(b))
    for (nm in names(b)) {
        expect_equal(dimnames(a[[nm]]), dimnames(b[[nm]]))
        expect_equal(a[[nm]][, 2L], b[[nm]][, 2L], tolerance = RESID_PAR_TOL)
        w <- b[[nm]][, 3L] - b[[nm]][, 1L]
        expect_lt(max(abs(a[[nm]][, c(1L, 3L)] - b[[nm]][, c(1L, 3L)]) / w), tol)
    }
    expect_equal(attr(ours, "level"), attr(theirs, "level"))
}

test_that("lme: Orthodont with varIdent by Sex and a correlated slope agrees with nlme", {
    O <- nlme::Orthodont
    ours <- lmmfit(distance ~ age + Sex + (age | Subject), O, weights = nlme::varIdent(form = ~ 1 | Sex))
    theirs <- nlme::lme(distance ~ age + Sex, O, random = ~ age | Subject,
                        weights = nlme::varIdent(form = ~ 1 | Sex), control = LME_TIGHT(.relStep = NLME_STEP))
    iv <- intervals(ours)
    expect_s3_class(iv, "intervals.lme")
    expect_intervals_agree(iv, nlme::intervals(theirs))
    ## the containment df: age within subjects (80), Sex between them (25)
    expect_equal(unname(lmmfit:::containment_df(ours)), unname(theirs$fixDF$X))
    ## level and which
    expect_intervals_agree(intervals(ours, level = 0.9, which = "var-cov"),
                           nlme::intervals(theirs, level = 0.9, which = "var-cov"))
    expect_equal(names(intervals(ours, which = "fixed")), "fixed")
    out <- capture.output(print(iv))
    expect_equal(out[1L], "Approximate 95% confidence intervals")
    expect_true(all(c("  Level: Subject ", " Variance function:", " Within-group standard error:") %in% out))
})

test_that("lme: Ovary with corAR1 and corCAR1 agrees with nlme", {
    Ovary <- ovary_plain()
    for (cs in list(nlme::corAR1(form = ~ 1 | Mare), nlme::corCAR1(form = ~ Time | Mare))) {
        ours <- lmmfit(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time) + (1 | Mare), Ovary, correlation = cs)
        theirs <- nlme::lme(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), Ovary, random = ~ 1 | Mare,
                            correlation = cs, control = LME_TIGHT(.relStep = NLME_STEP))
        expect_intervals_agree(intervals(ours), nlme::intervals(theirs))
    }
})

test_that("gls: compound symmetry on Orthodont agrees with nlme (REML and ML)", {
    O <- nlme::Orthodont
    for (reml in c(TRUE, FALSE)) {
        ours <- lmmfit(distance ~ age + Sex, O, REML = reml, correlation = nlme::corCompSymm(form = ~ 1 | Subject))
        theirs <- nlme::gls(distance ~ age + Sex, O, method = if (reml) "REML" else "ML",
                            correlation = nlme::corCompSymm(form = ~ 1 | Subject),
                            control = GLS_TIGHT(.relStep = NLME_STEP))
        iv <- intervals(ours)
        expect_s3_class(iv, "intervals.gls")
        expect_intervals_agree(iv, nlme::intervals(theirs))
        expect_equal(names(intervals(ours, which = "coef")), "coef")
    }
})

test_that("lme: a spatial corExp with nugget agrees with nlme", {
    d <- spatial_sites()
    cs <- nlme::corExp(form = ~ x + y | site, nugget = TRUE)
    ours <- lmmfit(z ~ x + (1 | site), d, correlation = cs)
    theirs <- nlme::lme(z ~ x, d, random = ~ 1 | site, correlation = cs, control = LME_TIGHT(.relStep = NLME_STEP))
    expect_intervals_agree(intervals(ours), nlme::intervals(theirs))
})

test_that("fits without a structure and ar1() fits have nlme's intervals too", {
    O <- nlme::Orthodont
    ours <- lmmfit(distance ~ age + (age | Subject), O)
    theirs <- nlme::lme(distance ~ age, O, random = ~ age | Subject, control = LME_TIGHT(.relStep = NLME_STEP))
    expect_intervals_agree(intervals(ours), nlme::intervals(theirs))
    ## nested grouping factors: nlme's containment df at each level (nlme names
    ## the inner level by its own factor, lmmfit by the term's "Variety:Block")
    Oats <- as.data.frame(nlme::Oats)
    Oats$Block <- factor(as.character(Oats$Block))
    nest <- lmmfit(yield ~ nitro + Variety + (1 | Block / Variety), Oats)
    theirs <- nlme::lme(yield ~ nitro + Variety, Oats, random = ~ 1 | Block / Variety)
    expect_equal(unname(lmmfit:::containment_df(nest)), unname(theirs$fixDF$X))
    expect_equal(names(intervals(nest)$reStruct), c("Block", "Variety:Block"))
    ## ar1() is corAR1 on positions
    Ovary <- ovary_plain()
    a <- lmmfit(follicles ~ sin(2 * pi * Time) + (1 | Mare), Ovary, correlation = ar1(~ 1 | Mare))
    b <- lmmfit(follicles ~ sin(2 * pi * Time) + (1 | Mare), Ovary, correlation = nlme::corAR1(form = ~ 1 | Mare))
    expect_equal(flat_intervals(intervals(a)), flat_intervals(intervals(b)), tolerance = RESID_PAR_TOL)
})

test_that("bad arguments are refused by name", {
    fit <- lmmfit(distance ~ age + (1 | Subject), nlme::Orthodont, weights = nlme::varIdent(form = ~ 1 | Sex))
    expect_error(intervals(fit, level = 2), "'level' must be")
    expect_error(intervals(fit, which = "nope"), "should be one of")
    expect_error(intervals(fit, foo = 1), "unused argument 'foo'")
})

## ---- profile intervals (R/resid-profile.R) ----

## The profile limits are roots found to RESID_PROFILE_ROOT_TOL of an inner
## minimum good to ~1e-8: the deviance there is checked to the issue's 1e-6.
PROFILE_CHECK_TOL <- 1e-6

## (dense_ml_deviance(), ar1_cor(), cs_cor(): helper-resid.R)

test_that("profile limits of a one-parameter structure: the deviance rises by qchisq there (dense refits)", {
    Ovary <- ovary_plain()
    X <- model.matrix(~ sin(2 * pi * Time) + cos(2 * pi * Time), Ovary)
    y <- Ovary$follicles
    q <- qchisq(0.95, 1)
    ## gls with corAR1: phi alone, sigma and beta profiled out in closed form
    g <- lmmfit(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), Ovary, correlation = nlme::corAR1(form = ~ 1 | Mare))
    ci <- confint(g, method = "profile")
    d <- function(phi) dense_ml_deviance(y, X, Ovary$Mare, ar1_cor(phi))
    dmin <- optimize(d, c(0, 0.99), tol = 1e-12)$objective
    for (e in ci["cor_Phi", ]) expect_lt(abs(d(e) - dmin - q), PROFILE_CHECK_TOL)
    ## lme with corAR1 (a REML fit: the ML deviance is profiled, as lme4): at
    ## each limit the random intercept's variance ratio is refitted by optimize
    m <- lmmfit(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time) + (1 | Mare), Ovary,
                correlation = nlme::corAR1(form = ~ 1 | Mare))
    ci <- confint(m, method = "profile", parm = "cor_Phi")
    dl <- function(phi) optimize(function(lg) dense_ml_deviance(y, X, Ovary$Mare, ar1_cor(phi), exp(lg)),
                                 c(-8, 4), tol = 1e-10)$objective
    dmin <- optimize(dl, c(0, 0.99), tol = 1e-10)$objective
    for (e in ci["cor_Phi", ]) expect_lt(abs(dl(e) - dmin - q), PROFILE_CHECK_TOL)
    expect_equal(dimnames(ci), list("cor_Phi", c("2.5 %", "97.5 %")))
})

test_that("gls compound symmetry: profile limits of sigma and rho against a dense computation", {
    O <- nlme::Orthodont
    X <- model.matrix(~ age + Sex, O)
    y <- O$distance
    q <- qchisq(0.9, 1)
    g <- lmmfit(distance ~ age + Sex, O, REML = FALSE, correlation = nlme::corCompSymm(form = ~ 1 | Subject))
    ci <- confint(g, method = "profile", level = 0.9)
    ## rho: sigma profiled in closed form; sigma: rho refitted by optimize
    a <- -1 / 3
    drho <- function(rho) dense_ml_deviance(y, X, O$Subject, cs_cor(rho))
    opt <- optimize(drho, c(a + 1e-6, 1 - 1e-6), tol = 1e-12)
    rho_ci <- c(uniroot(function(r) drho(r) - opt$objective - q, c(a + 1e-6, opt$minimum), tol = 1e-12)$root,
                uniroot(function(r) drho(r) - opt$objective - q, c(opt$minimum, 1 - 1e-6), tol = 1e-12)$root)
    dsig <- function(s) optimize(function(r) dense_ml_deviance(y, X, O$Subject, cs_cor(r), sigma = s),
                                 c(a + 1e-6, 1 - 1e-6), tol = 1e-12)$objective
    s0 <- sigma(g)
    sig_ci <- c(uniroot(function(s) dsig(s) - opt$objective - q, c(s0 / 2, s0), tol = 1e-12)$root,
                uniroot(function(s) dsig(s) - opt$objective - q, c(s0, 2 * s0), tol = 1e-12)$root)
    expect_equal(unname(ci["cor_Rho", ]), rho_ci, tolerance = PROFILE_CHECK_TOL)
    expect_equal(unname(ci[".sigma", ]), sig_ci, tolerance = PROFILE_CHECK_TOL)
    ## the fixed effects keep their Wald intervals
    expect_equal(ci["age", ], confint(g, "age", level = 0.9)["age", ])
})

test_that("the structure profile's engine reproduces the plain fits' (C) profiles; plain fits unchanged", {
    O <- nlme::Orthodont
    p <- lmmfit(distance ~ age + Sex + (age | Subject), O)
    plain <- confint(p, method = "profile")
    expect_identical(plain, confint_profile(p))
    ours <- lmmfit:::resid_confint_profile(p, level = 0.95)
    v <- c(".sig01", ".sig02", ".sig03", ".sigma")
    expect_equal(ours[v, ], plain[v, ], tolerance = PROFILE_CHECK_TOL)
    ## a structure fit takes no profile() arguments in confint()
    v <- lmmfit(distance ~ age + (1 | Subject), O, weights = nlme::varIdent(form = ~ 1 | Sex))
    expect_error(confint(v, method = "profile", alphamax = 0.1), "unused argument 'alphamax'")
    ci <- confint(v, method = "profile", parm = "theta_")
    expect_equal(rownames(ci), c(".sig01", ".sigma", "var_Female"))
    expect_true(all(ci[, 1L] < c(unname(sqrt(unlist(VarCorr(v)))), sigma(v), varpar(v)) & ci[, 2L] > ci[, 1L]))
})

## corARMA: nlme's finite-difference Hessian is too coarse to be the oracle
## here (its limits move by up to 2e-3 of an interval's width between its
## steps eps^(1/4) and eps^(1/3), and ours lies between them).  The oracle is
## a dense -2 log-likelihood (stats::ARMAacf's correlations) differentiated
## by numDeriv's Richardson Hessian on nlme's unconstrained scale; both
## Hessians are good to ~1e-7 relative, the estimates to ~1e-7 (observed:
## <= 2.5e-7 of the width; the tolerance leaves a factor 40).
ARMA_DENSE_TOL <- 1e-5

## (dense_arma_deviance(): helper-resid.R)

## The oracle's intervals: est -+ z se on nlme's scale psi (log sdb; the
## partial autocorrelations' fisher scale; log sigma), the partial
## autocorrelations mapped to the coefficients by hand (ARMA(1, 1): they are
## the coefficients; AR(2): phi1 = r1 (1 - r2), phi2 = r2).
dense_arma_intervals <- function(fit, y, X, g, p, q, level = 0.95) {
    lme <- length(fit$theta) > 0L
    pacf <- fit$resid$par[seq_len(p + q)]
    fz <- function(r) log((1 + r) / (1 - r))
    psi0 <- c(if (lme) log(attr(VarCorr(fit)[[1L]], "stddev")), fz(pacf), log(sigma(fit)))
    coefs <- function(r) if (p == 2L) c(r[1] * (1 - r[2]), r[2]) else r
    dev <- function(psi) {
        r <- tanh(psi[lme + seq_len(p + q)] / 2)
        co <- coefs(r)
        dense_arma_deviance(y, X, g, co[seq_len(p)], co[p + seq_len(q)], if (lme) exp(psi[1]) else 0,
                            exp(psi[length(psi)]), fit$REML)
    }
    se <- sqrt(diag(2 * solve(numDeriv::hessian(dev, psi0))))
    lim <- function(u) {
        r <- coefs(tanh(u[lme + seq_len(p + q)] / 2))
        c(if (lme) exp(u[1]), r, exp(u[length(u)]))
    }
    z <- qnorm((1 + level) / 2)
    cbind(lower = lim(psi0 - z * se), upper = lim(psi0 + z * se))
}

test_that("corARMA on Ovary: nlme's intervals (its layout; the limits against a dense oracle)", {
    need("numDeriv")
    Ovary <- ovary_plain()
    form <- follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time)
    X <- model.matrix(form, Ovary)
    cases <- list(list(p = 1, q = 1, lme = FALSE), list(p = 2, q = 0, lme = FALSE), list(p = 1, q = 1, lme = TRUE))
    for (k in cases) {
        cs <- nlme::corARMA(form = ~ 1 | Mare, p = k$p, q = k$q)
        ours <- lmmfit(if (k$lme) update(form, . ~ . + (1 | Mare)) else form, Ovary, correlation = cs)
        theirs <- if (k$lme) nlme::lme(form, Ovary, random = ~ 1 | Mare, correlation = cs, control = LME_TIGHT())
                  else nlme::gls(form, Ovary, correlation = cs, control = GLS_TIGHT())
        a <- flat_intervals(intervals(ours))
        b <- flat_intervals(nlme::intervals(theirs))
        expect_equal(names(a), names(b))
        for (nm in names(b)) {
            expect_equal(dimnames(a[[nm]]), dimnames(b[[nm]]))
            expect_equal(a[[nm]][, 2L], b[[nm]][, 2L], tolerance = RESID_PAR_TOL)
        }
        mine <- do.call(rbind, a[setdiff(names(a), if (k$lme) "fixed" else "coef")])
        ref <- dense_arma_intervals(ours, Ovary$follicles, X, Ovary$Mare, k$p, k$q)
        ## relative to the distance of the limits (for AR(2)'s Phi1 they are
        ## 0.027 apart, the other way round: not an interval, as nlme's)
        w <- abs(ref[, 2L] - ref[, 1L])
        err <- max(abs(mine[, c(1L, 3L)] - ref) / w)
        expect_lt(err, ARMA_DENSE_TOL)
    }
})

test_that("gls: corSymm on Orthodont agrees with nlme (fisher scale of each correlation, nlme's labels)", {
    O <- nlme::Orthodont
    cs <- nlme::corSymm(form = ~ 1 | Subject)
    ours <- lmmfit(distance ~ age + Sex, O, correlation = cs)
    theirs <- nlme::gls(distance ~ age + Sex, O, correlation = cs, control = GLS_TIGHT(.relStep = NLME_STEP))
    iv <- intervals(ours)
    expect_intervals_agree(iv, nlme::intervals(theirs))
    expect_identical(rownames(iv$corStruct)[4L], "cor(2,3)")
})
