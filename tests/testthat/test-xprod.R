## The blocked layout of the cross-products (R/xprod.R, src/crossprod.c,
## src/deviance.c, src/condvar.c): terms nested in every term before them are
## block-diagonal stages, eliminated level by level with no dense block.
## lme4 is the oracle; the dense layout of lmmfit 0.2.0 (option
## lmmfit.max_stages = 1) must give the same numbers to rounding.

## Deviance of the staged and the dense layout: the same arithmetic in a
## different order, so they agree to rounding (~1e-12 relative) only.
LAYOUT_TOL <- 1e-8

## Pupils in classes in schools in districts in regions, unbalanced (class
## sizes 1..12, so some classes are singletons), with globally unique ids.
nested_data <- function(seed, nregion = 4L, ndistrict = 12L, nschool = 40L, nclass = 120L) {
    set.seed(seed)
    reg <- rep_len(seq_len(nregion), ndistrict)
    dis <- rep_len(seq_len(ndistrict), nschool)
    sch <- sample(rep_len(seq_len(nschool), nclass))
    size <- sample(c(1L, 1L, 2:12), nclass, replace = TRUE)
    cls <- rep(seq_len(nclass), size)
    n <- length(cls)
    s <- sch[cls]; d <- dis[s]; r <- reg[d]
    x <- rnorm(n)
    y <- 1 + 0.5 * x + rnorm(nregion, sd = 0.6)[r] + rnorm(ndistrict, sd = 0.8)[d] +
        rnorm(nschool)[s] + rnorm(nschool, sd = 0.5)[s] * x + rnorm(nclass, sd = 0.7)[cls] +
        rnorm(nclass, sd = 0.3)[cls] * x + rnorm(n)
    data.frame(y = y, x = x, region = factor(r), district = factor(d), school = factor(s),
               class = factor(cls),
               ## ids repeated across schools: the class within its school
               class_in_school = factor(ave(cls, s, FUN = function(v) as.integer(factor(v)))))
}

with_max_stages <- function(n, expr) {
    old <- options(lmmfit.max_stages = n)
    on.exit(options(old))
    expr
}

## One nested model fitted by lmmfit, by lmmfit in the dense layout and by
## lme4 converged tightly; returns the staged fit.
check_nested <- function(formula, data, REML, stages) {
    fit <- suppressMessages(lmmfit(formula, data, REML = REML))
    expect_equal(fit$xprod$nstage, stages, label = paste(deparse(formula), "stages"))
    dense <- with_max_stages(1L, suppressMessages(lmmfit(formula, data, REML = REML)))
    expect_equal(dense$xprod$nstage, 1L)
    expect_equal(deviance(fit, REML = REML), deviance(dense, REML = REML), tolerance = LAYOUT_TOL)
    ref <- lme4_tight(formula, data, REML)
    expect_lte(deviance(fit, REML = REML), ref + OPTIMUM_TOL)
    lf <- suppressMessages(lme4::lmer(formula, data, REML = REML,
                                      control = lme4::lmerControl(calc.derivs = FALSE),
                                      start = list(theta = unname(fit$theta))))
    expect_equal(fixef(fit), lme4::fixef(lf), tolerance = 1e-5)
    ## conditional modes and variances, level by level, against lme4 started
    ## at lmmfit's theta (so that both stand at one optimum, not two ends of
    ## a stopping rule); terms on one factor are matched by column name, as
    ## lmmfit orders them differently
    ra <- ranef(fit, condVar = TRUE)
    rl <- lme4::ranef(lf, condVar = TRUE)
    for (g in names(ra)) {
        i <- match(rownames(ra[[g]]), rownames(rl[[g]]))
        expect_equal(as.matrix(ra[[g]]), as.matrix(rl[[g]])[i, colnames(ra[[g]]), drop = FALSE],
                     tolerance = 1e-5, label = paste(g, "modes"))
        va <- attr(ra[[g]], "postVar"); vl <- attr(rl[[g]], "postVar")
        if (is.array(va) && is.array(vl) && identical(colnames(ra[[g]]), colnames(rl[[g]])))
            expect_equal(va, vl[, , i, drop = FALSE], tolerance = 1e-5, label = paste(g, "condVar"))
    }
    dd <- ranef(dense, condVar = TRUE)
    for (g in names(ra)) expect_equal(attr(ra[[g]], "postVar"), attr(dd[[g]], "postVar"), tolerance = 1e-6)
    fit
}

test_that("nested designs of depth 2 to 4, with slopes at several levels, match lme4", {
    skip_if_not_installed("lme4")
    d <- nested_data(1)
    check_nested(y ~ x + (1 | school) + (1 | class), d, TRUE, 2L)
    check_nested(y ~ x + (x | school) + (1 | class), d, TRUE, 2L)
    check_nested(y ~ x + (x | school) + (1 | class), d, FALSE, 2L)
    check_nested(y ~ x + (1 | district/school/class), d, TRUE, 3L)
    check_nested(y ~ x + (1 | region) + (1 | district) + (x | school) + (1 | class), d, TRUE, 4L)
    check_nested(y ~ x + (x | district) + (1 | school) + (x | class), nested_data(2), FALSE, 3L)
})

test_that("terms on one factor are one stage after the other, whatever their order", {
    skip_if_not_installed("lme4")
    d <- nested_data(3)
    fit <- check_nested(y ~ x + (x || school) + (1 | class), d, TRUE, 3L)
    fit2 <- suppressMessages(lmmfit(y ~ x + (1 | class) + (0 + x | school) + (1 | school), d))
    expect_equal(deviance(fit2), deviance(fit), tolerance = LAYOUT_TOL)
})

test_that("a crossed term ends the stages: the rest is the dense tail", {
    skip_if_not_installed("lme4")
    d <- nested_data(4)
    d$rater <- factor(sample(1:7, nrow(d), replace = TRUE))
    ## class nested in school, rater crossed with both
    fit <- check_nested(y ~ x + (1 | class) + (1 | school) + (1 | rater), d, TRUE, 2L)
    expect_equal(fit$xprod$nstage, 2L)
})

test_that("implicit and explicit nesting give the same staged fit", {
    d <- nested_data(5)
    a <- suppressMessages(lmmfit(y ~ x + (1 | school) + (1 | class), d))
    b <- suppressMessages(lmmfit(y ~ x + (1 | school) + (1 | school:class_in_school), d))
    c <- suppressMessages(lmmfit(y ~ x + (1 | school/class_in_school), d))
    expect_equal(b$xprod$nstage, 2L)
    expect_equal(deviance(b), deviance(a), tolerance = 1e-10)
    expect_equal(deviance(c), deviance(a), tolerance = 1e-10)
    expect_equal(fixef(c), fixef(a), tolerance = 1e-8)
})

test_that("the bootstrap, AR(1), profiles and Satterthwaite's df agree across the layouts", {
    d <- nested_data(6)
    d <- d[order(d$class), ]
    d$time <- ave(seq_len(nrow(d)), d$class, FUN = seq_along)
    f <- y ~ x + (x | school) + (1 | class)
    fit <- suppressMessages(lmmfit(f, d))
    dense <- with_max_stages(1L, suppressMessages(lmmfit(f, d)))
    expect_gt(fit$xprod$nstage, 1L)
    b1 <- parboot(fit, nsim = 20, seed = 7)
    b2 <- parboot(dense, nsim = 20, seed = 7)
    expect_equal(b1$t, b2$t, tolerance = 1e-5)
    s1 <- summary(fit)$coefficients; s2 <- summary(dense)$coefficients
    expect_equal(s1, s2, tolerance = 1e-6)
    a1 <- suppressMessages(lmmfit(y ~ x + (1 | school) + (1 | class), d,
                                  correlation = ar1(~ time | class)))
    a2 <- with_max_stages(1L, suppressMessages(lmmfit(y ~ x + (1 | school) + (1 | class), d,
                                                      correlation = ar1(~ time | class))))
    expect_gt(a1$xprod$nstage, 1L)
    expect_equal(deviance(a1), deviance(a2), tolerance = LAYOUT_TOL)
    expect_equal(coef(summary(a1)), coef(summary(a2)), tolerance = 1e-5)
})

test_that("rest_dense() and rest_diag() read the staged layout", {
    d <- nested_data(7)
    f <- y ~ x + (x | school) + (1 | district)
    xs <- suppressMessages(lmmfit(f, d))$xprod
    xd <- with_max_stages(1L, suppressMessages(lmmfit(f, d)))$xprod
    expect_equal(xs$nstage, 2L)
    expect_equal(lmmfit:::rest_dense(xs), lmmfit:::rest_dense(xd), tolerance = 1e-12)
    expect_equal(lmmfit:::rest_diag(xs), diag(lmmfit:::rest_dense(xd)), tolerance = 1e-12)
})

## Pupils seen in waves, some of whom change school: the schools are crossed
## with the pupils only partly, and their block, factored in a
## minimum-degree order over its pattern (src/tail.c), is sparse.
partial_data <- function(seed, npupil = 1500L, nschool = 150L, move = 0.15) {
    set.seed(seed)
    home <- sample.int(nschool, npupil, replace = TRUE)
    other <- sample.int(nschool, npupil, replace = TRUE)
    movers <- runif(npupil) < move
    pupil <- rep(seq_len(npupil), each = 3L)
    wave <- rep(1:3, npupil)
    school <- ifelse(movers[pupil] & wave == 3L, other[pupil], home[pupil])
    x <- rnorm(length(pupil))
    data.frame(y = 1 + 0.3 * x + rnorm(npupil)[pupil] + rnorm(nschool, sd = 0.6)[school] +
                   rnorm(length(pupil)),
               x = x, wave = wave, pupil = factor(pupil), school = factor(school))
}

test_that("a partially crossed design (sparse tail) matches lme4", {
    skip_if_not_installed("lme4")
    d <- partial_data(8)
    fit <- check_nested(y ~ x + (1 | pupil) + (1 | school), d, TRUE, 1L)
    fit <- check_nested(y ~ x + (1 | pupil) + (1 | school), d, FALSE, 1L)
    sol <- .Call(lmmfit:::C_lmm_solution, fit$xprod, as.double(fit$theta), FALSE, NULL)
    expect_setequal(sol$tail_order, seq_len(nlevels(d$school)))   # the sparse path was taken
    ## a crossed design (raters drawn at random for every row) stays dense
    d$rater <- factor(sample.int(100L, nrow(d), replace = TRUE))
    cr <- suppressMessages(lmmfit(y ~ x + (1 | pupil) + (1 | rater), d))
    expect_null(.Call(lmmfit:::C_lmm_solution, cr$xprod, as.double(cr$theta), TRUE, NULL)$tail_order)
    ## the dense decision is kept (the tail's order alone), and is exact
    expect_identical(attr(cr$xprod, "tail_plan"), 100L)
    plain <- cr$xprod
    attr(plain, "tail_plan") <- NULL
    expect_identical(.Call(lmmfit:::C_lmm_deviance, cr$xprod, as.double(cr$theta), TRUE),
                     .Call(lmmfit:::C_lmm_deviance, plain, as.double(cr$theta), TRUE))
    ## the bootstrap's refits go through the same factor
    b <- parboot(fit, nsim = 5, seed = 3)
    expect_true(all(is.finite(b$t)))
})

## The tail's pairs linked before any elimination (natural coordinates,
## 0-based, a > b): the block's nonzeros and the schools each pupil shares.
tail_graph_pairs <- function(xp) {
    qd <- xp$nlev[2]
    D <- matrix(xp$A22, qd, qd)
    nz <- which(D != 0 & lower.tri(D), arr.ind = TRUE) - 1L
    cl <- lapply(seq_len(xp$nlev[1]), function(g) {
        r <- xp$A21i[(xp$A21p[g] + 1L):xp$A21p[g + 1L]]
        if (length(r) < 2L) return(NULL)
        pr <- t(combn(sort(r), 2L))
        cbind(pr[, 2L], pr[, 1L])
    })
    p <- unique(rbind(nz, do.call(rbind, cl)))
    paste(p[, 1L], p[, 2L])
}

## The kept plan as a list (see lmm_tail_plan_R) and back.
plan_parts <- function(v) {
    qd <- v[1L]
    colp <- v[1L + qd + seq_len(qd + 1L)]
    list(qd = qd, perm = v[1L + seq_len(qd)], colp = colp, rowi = v[-seq_len(2L * qd + 2L)])
}
plan_vector <- function(pl) c(pl$qd, pl$perm, pl$colp, pl$rowi)
plan_drop <- function(pl, k) {          # drop entry k (1-based into rowi)
    col <- findInterval(k - 1L, pl$colp, rightmost.closed = FALSE)
    pl$rowi <- pl$rowi[-k]
    pl$colp[(col + 1L):length(pl$colp)] <- pl$colp[(col + 1L):length(pl$colp)] - 1L
    pl
}

test_that("the sparse tail's plan is kept with the fit and checked before it is reused", {
    d <- partial_data(8)
    fit <- suppressMessages(lmmfit(y ~ x + (1 | pupil) + (1 | school), d))
    xp <- fit$xprod
    v <- attr(xp, "tail_plan")
    expect_true(is.integer(v))
    pl <- plan_parts(v)
    expect_equal(pl$qd, nlevels(d$school))
    expect_setequal(pl$perm, seq_len(pl$qd) - 1L)
    th <- cbind(as.double(fit$theta), c(0.5, 1.5))
    dev_of <- function(plan) {
        x <- xp
        attr(x, "tail_plan") <- plan
        .Call(lmmfit:::C_lmm_deviance, x, th, TRUE)
    }
    fresh <- dev_of(NULL)
    expect_identical(dev_of(v), fresh)          # the kept plan is the one found afresh
    expect_equal(fresh[1L], fit$deviance_value, tolerance = 1e-10)
    ## plans that do not fit are not used: the deviance is the fresh one
    bad_perm <- pl; bad_perm$perm[1:2] <- bad_perm$perm[1L]
    expect_identical(dev_of(plan_vector(bad_perm)), fresh)
    expect_identical(dev_of(v[-length(v)]), fresh)
    expect_identical(dev_of(as.double(v)), fresh)
    na_colp <- pl; na_colp$colp[3L] <- NA_integer_
    expect_identical(dev_of(plan_vector(na_colp)), fresh)
    ## a valid plan that costs more than the dense path (the natural order
    ## with every column full) is not used either: same value, found afresh
    full_plan <- list(qd = pl$qd, perm = seq_len(pl$qd) - 1L,
                      colp = c(0L, cumsum(rev(seq_len(pl$qd) - 1L))),
                      rowi = unlist(lapply(seq_len(pl$qd) - 1L, function(j) seq.int(j + 1L, length.out = pl$qd - 1L - j))))
    expect_identical(dev_of(plan_vector(full_plan)), fresh)
    unsorted <- pl
    long <- which(diff(pl$colp) >= 2L)[1L]
    i <- pl$colp[long] + 1:2
    unsorted$rowi[i] <- rev(unsorted$rowi[i])
    expect_identical(dev_of(plan_vector(unsorted)), fresh)
    ## dropping a pair the data link (not covered) or a pair only the
    ## elimination fills in (not closed) must both be noticed
    natural <- function(k) {
        col <- findInterval(k - 1L, pl$colp, rightmost.closed = FALSE) - 1L
        a <- pl$perm[pl$rowi[k] + 1L]; b <- pl$perm[col + 1L]
        paste(pmax(a, b), pmin(a, b))
    }
    linked <- tail_graph_pairs(xp)
    is_linked <- vapply(seq_along(pl$rowi), natural, "") %in% linked
    expect_true(any(is_linked) && any(!is_linked))
    expect_identical(dev_of(plan_vector(plan_drop(pl, which(is_linked)[1L]))), fresh)
    fill <- which(!is_linked)
    expect_identical(dev_of(plan_vector(plan_drop(pl, fill[1L]))), fresh)
    expect_identical(dev_of(plan_vector(plan_drop(pl, fill[length(fill)]))), fresh)
    ## a plan of another design is not this one's
    other <- suppressMessages(lmmfit(y ~ x + (1 | pupil) + (1 | school), partial_data(9)))
    expect_identical(dev_of(attr(other$xprod, "tail_plan")), fresh)
})

test_that("AR(1) residuals over a sparse tail: the optimizer's deviance is the fresh one", {
    d <- partial_data(11)
    ## the waves a pupil spends in one school (nested in both factors)
    d$spell <- interaction(d$pupil, d$school, drop = TRUE)
    f <- suppressMessages(lmmfit(y ~ x + (1 | pupil) + (1 | school), d,
                                 correlation = ar1(~ wave | spell)))
    expect_false(is.null(.Call(lmmfit:::C_lmm_solution, f$xprod, as.double(f$theta),
                               TRUE, NULL)$tail_order))
    expect_equal(f$optinfo$deviance, lmmfit:::ar1_deviance(f), tolerance = 1e-9)
    expect_true(length(attr(f$ar1$xprod0, "tail_plan")) > 1L)   # the plan, kept
    f0 <- suppressMessages(lmmfit(y ~ x + (1 | pupil) + (1 | school), d))
    expect_equal(lmmfit:::ar1_deviance(f, theta = f0$theta, phi = 0), f0$deviance_value,
                 tolerance = 1e-10)
    expect_lte(f$deviance_value, f0$deviance_value + 1e-8)
})
