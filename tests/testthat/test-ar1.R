## Residual AR(1) correlation within groups, against nlme::lme with corAR1
## fitted in the same test (REML and ML).
##
## nlme's optimizer stops loosely (its Phi moves in the 5th digit between
## equivalent parameterisations), so its estimates are compared at 1e-3
## (relative, Phi absolute) and fixed effects at 1e-4 relative; the
## log-likelihood, which is flat at the optimum, to 1e-4, and ours may never be
## lower than nlme's by more than that.

## The seed-004 design, small: subjects x occasions, treatment per subject,
## random intercept and slope on time, AR(1) residuals.
sim_ar1 <- function(nsub = 300, nt = 5, rho = 0.7, seed = 1) {
    set.seed(seed)
    id <- rep(seq_len(nsub), each = nt)
    time <- rep(0:(nt - 1), nsub)
    trt <- rep(rbinom(nsub, 1, 0.5), each = nt)
    b0 <- rnorm(nsub, 0, 0.5)
    b1 <- rnorm(nsub, 0, 0.25)
    e <- matrix(0, nt, nsub)
    e[1, ] <- rnorm(nsub)
    for (k in seq_len(nt)[-1L]) e[k, ] <- rho * e[k - 1L, ] + sqrt(1 - rho^2) * rnorm(nsub)
    y <- 0.5 + 0.5 * time - 0.5 * trt + b0[id] + b1[id] * time + as.vector(e)
    data.frame(id = factor(id), time = time,
               treatment = factor(trt, levels = 0:1, labels = c("control", "treatment")), y = y)
}

## for fits whose singularity (a zero slope variance) is not the point
quiet_lmmfit <- function(...) suppressMessages(lmmfit(...))

lme_phi <- function(m) unname(coef(m$modelStruct$corStruct, unconstrained = FALSE))

## Standard deviations and correlations of the random effects, then sigma
## (numeric: nlme's VarCorr() rounds the correlations to text).
lme_sds <- function(m) {
    V <- unclass(nlme::getVarCov(m))
    C <- cov2cor(V)
    c(sqrt(diag(V)), m$sigma, C[lower.tri(C)])
}
our_sds <- function(f) {
    vc <- VarCorr(f)
    stopifnot(length(vc) == 1L)
    C <- attr(vc[[1L]], "correlation")
    c(attr(vc[[1L]], "stddev"), attr(vc, "sc"), C[lower.tri(C)])
}

lme_control <- function() nlme::lmeControl(maxIter = 200, msMaxIter = 200, niterEM = 50)

expect_matches_nlme_ar1 <- function(f, m, what) {
    ll <- -f$deviance_value / 2
    ll0 <- as.numeric(logLik(m))
    expect_gte(ll, ll0 - 1e-4, label = paste(what, "logLik not below nlme's"))
    expect_lte(abs(ll - ll0), 1e-4, label = paste(what, "|logLik - nlme|"))
    b0 <- nlme::fixef(m)
    expect_lte(max(abs(fixef(f) - b0) / pmax(1, abs(b0))), 1e-4, label = paste(what, "fixef"))
    expect_lte(abs(corpar(f)[["Phi"]] - lme_phi(m)), 1e-3, label = paste(what, "Phi"))
    s <- our_sds(f)
    s0 <- lme_sds(m)
    expect_identical(length(s), length(s0))
    expect_lte(max(abs(s - s0) / pmax(abs(s0), 0.1)), 1e-3, label = paste(what, "variance components"))
    ## logLik / AIC / BIC count phi as nlme does
    expect_equal(attr(logLik(f), "df"), attr(logLik(m), "df"), label = paste(what, "df"))
    expect_lte(abs(AIC(f) - AIC(m)), 2e-4, label = paste(what, "AIC"))
    ## nlme's BIC of an REML fit counts n - p observations, lme4's (and ours) n
    n_bic <- if (m$method == "REML") nobs(f) - length(fixef(f)) else nobs(f)
    expect_lte(abs(BIC(f) - (BIC(m) + attr(logLik(m), "df") * (log(nobs(f)) - log(n_bic)))), 2e-4,
               label = paste(what, "BIC"))
}

## -2 REML log-likelihood of the fit's data at its estimates, from the dense
## marginal covariance V = sigma^2 (Z Lambda Lambda' Z' + R) and the GLS
## estimates; REML profiles sigma: the criterion at its optimum over sigma.
dense_ar1_deviance <- function(f) {
    X <- f$X; y <- f$y; n <- length(y); p <- ncol(X)
    st <- f$ar1
    phi <- corpar(f)[["Phi"]]
    R <- matrix(0, n, n)
    for (g in levels(st$g)) {
        i <- which(st$g == g)
        R[i, i] <- phi^abs(outer(st$tm[i], st$tm[i], "-"))
    }
    ZL <- do.call(cbind, lapply(seq_along(f$reterms), function(j) {
        t <- f$reterms[[j]]
        lam <- lmmfit:::theta_to_lambda(f$theta, f$reterms)[[j]]
        Zj <- do.call(cbind, lapply(seq_len(t$nlev), function(l) t$Z * (as.integer(t$factor) == l)))
        ## columns level-major, then term column: multiply each level's block by lam
        k <- ncol(t$Z)
        for (l in seq_len(t$nlev)) {
            cols <- (l - 1) * k + seq_len(k)
            Zj[, cols] <- Zj[, cols] %*% lam
        }
        Zj
    }))
    V <- tcrossprod(ZL) + R
    Vi <- solve(V)
    XtViX <- crossprod(X, Vi %*% X)
    beta <- solve(XtViX, crossprod(X, Vi %*% y))
    r <- y - X %*% beta
    q <- drop(crossprod(r, Vi %*% r))
    s2 <- q / (n - p)
    as.numeric(determinant(V)$modulus) + as.numeric(determinant(XtViX)$modulus) +
        (n - p) * (1 + log(2 * pi * s2))
}

test_that("AR(1) fits match nlme's corAR1 on the seed-004 design (REML and ML)", {
    need("nlme")
    d <- sim_ar1()
    for (REML in c(TRUE, FALSE)) {
        what <- sprintf("seed-004 design (%s)", if (REML) "REML" else "ML")
        f <- lmmfit(y ~ time + treatment + (time | id), d, REML = REML,
                    correlation = ar1(~ time | id))
        m <- nlme::lme(control = lme_control(), y ~ time + treatment, random = ~ time | id, data = d,
                       correlation = nlme::corAR1(form = ~ time | id),
                       method = if (REML) "REML" else "ML")
        expect_matches_nlme_ar1(f, m, what)
        expect_lte(max(abs(c(f$optinfo$gradient, f$optinfo$gradient_phi))), 1e-3)
        ## the REML criterion / ML deviance is -2 logLik: check it at the
        ## estimates with an independent dense computation
        if (REML) expect_equal(f$deviance_value, dense_ar1_deviance(f), tolerance = 1e-9)
    }
})

test_that("missing occasions and unsorted rows: phi^gap, as nlme (corARMA / corCAR1)", {
    need("nlme")
    d <- sim_ar1(nsub = 200, seed = 2)
    set.seed(5)
    d <- d[-sample(nrow(d), 250), ]
    d <- d[sample(nrow(d)), ]
    for (REML in c(TRUE, FALSE)) {
        what <- sprintf("gaps (%s)", if (REML) "REML" else "ML")
        meth <- if (REML) "REML" else "ML"
        f <- lmmfit(y ~ time + treatment + (time | id), d, REML = REML,
                    correlation = ar1(~ time | id))
        expect_true(length(f$ar1$pieces$gaps) > 1L)
        m <- nlme::lme(control = lme_control(), y ~ time + treatment, random = ~ time | id, data = d,
                       correlation = nlme::corAR1(form = ~ time | id), method = meth)
        ## nlme's corAR1 with gaps becomes corARMA(p = 1) on the time lags
        expect_s3_class(m$modelStruct$corStruct, "corARMA")
        expect_matches_nlme_ar1(f, m, what)
        if (REML) {
            m2 <- nlme::lme(control = lme_control(), y ~ time + treatment, random = ~ time | id, data = d,
                            correlation = nlme::corCAR1(form = ~ time | id), method = meth)
            expect_lte(abs(-f$deviance_value / 2 - as.numeric(logLik(m2))), 1e-4)
            expect_equal(f$deviance_value, dense_ar1_deviance(f), tolerance = 1e-9)
        }
    }
})

test_that("BodyWeight (integer days, gaps of 7, 6 and 1) matches nlme", {
    need("nlme")
    ## Ovary's Time is a fraction of the cycle (not integer); BodyWeight's Time
    ## is in days 1, 8, ..., 43, 44, 50, ..., 64: three distinct gaps.
    data("BodyWeight", package = "nlme", envir = environment())
    bw <- as.data.frame(BodyWeight)
    bw$Rat <- factor(bw$Rat, ordered = FALSE)
    for (REML in c(TRUE, FALSE)) {
        what <- sprintf("BodyWeight (%s)", if (REML) "REML" else "ML")
        f <- lmmfit(weight ~ Time + Diet + (Time | Rat), bw, REML = REML,
                    correlation = ar1(~ Time | Rat))
        expect_identical(sort(f$ar1$pieces$gaps), c(1L, 6L, 7L))
        m <- nlme::lme(control = lme_control(), weight ~ Time + Diet, random = ~ Time | Rat, data = bw,
                       correlation = nlme::corAR1(form = ~ Time | Rat),
                       method = if (REML) "REML" else "ML")
        expect_matches_nlme_ar1(f, m, what)
    }
})

test_that("prior weights: nlme's varFixed(~ 1/w) with corAR1", {
    need("nlme")
    d <- sim_ar1(nsub = 100, seed = 4)
    set.seed(9)
    d$w <- runif(nrow(d), 0.5, 2)
    d$iw <- 1 / d$w
    f <- lmmfit(y ~ time + treatment + (time | id), d, weights = w,
                correlation = ar1(~ time | id))
    m <- nlme::lme(control = lme_control(), y ~ time + treatment, random = ~ time | id, data = d,
                   correlation = nlme::corAR1(form = ~ time | id),
                   weights = nlme::varFixed(~ iw))
    expect_matches_nlme_ar1(f, m, "weights")
})

test_that("the ML deviance of an AR(1) REML fit at its estimates includes log|R|", {
    d <- sim_ar1(nsub = 100, seed = 3)
    f <- lmmfit(y ~ time + treatment + (time | id), d, correlation = ar1(~ time | id))
    ## the ML deviance of the whitened model at the REML theta and phi, plus log|R|
    n <- nrow(d)
    dev_ml <- f$ldL2 + n * (1 + log(2 * pi * f$pwrss / n)) + f$logdetR
    expect_equal(deviance(f, REML = FALSE), dev_ml, tolerance = 1e-12)
    expect_equal(as.numeric(logLik(f, REML = FALSE)), -dev_ml / 2, tolerance = 1e-12)
    expect_identical(df.residual(f), n - (3L + 3L + 1L + 1L))
})

test_that("at phi = 0 the AR(1) deviance is the plain deviance", {
    d <- sim_ar1(nsub = 150, rho = 0, seed = 6)
    for (REML in c(TRUE, FALSE)) {
        f0 <- quiet_lmmfit(y ~ time + treatment + (time | id), d, REML = REML)
        f <- quiet_lmmfit(y ~ time + treatment + (time | id), d, REML = REML,
                    correlation = ar1(~ time | id))
        expect_equal(lmmfit:::ar1_deviance(f, theta = f0$theta, phi = 0),
                     f0$deviance_value, tolerance = 1e-12)
        ## one more parameter: never worse than the plain fit
        expect_lte(f$deviance_value, f0$deviance_value + 1e-8)
        expect_lt(abs(corpar(f)[["Phi"]]), 0.2)
    }
    ## the deviance changes with phi (a test that can fail)
    expect_gt(abs(lmmfit:::ar1_deviance(f, phi = 0.3) - f$deviance_value), 1e-3)
})

test_that("~ 1 | id (row order) equals ~ time | id on consecutive sorted times", {
    d <- sim_ar1(nsub = 80, seed = 7)
    f1 <- quiet_lmmfit(y ~ time + (1 | id), d, correlation = ar1(~ 1 | id))
    f2 <- quiet_lmmfit(y ~ time + (1 | id), d, correlation = ar1(~ time | id))
    expect_equal(f1$deviance_value, f2$deviance_value, tolerance = 1e-10)
    expect_equal(corpar(f1), corpar(f2), tolerance = 1e-6)
})

test_that("normalized residuals match nlme's", {
    need("nlme")
    d <- sim_ar1(nsub = 150, seed = 12)
    f <- lmmfit(y ~ time + treatment + (time | id), d, correlation = ar1(~ time | id))
    m <- nlme::lme(control = lme_control(), y ~ time + treatment, random = ~ time | id, data = d,
                   correlation = nlme::corAR1(form = ~ time | id))
    r <- residuals(f, type = "normalized")
    r0 <- residuals(m, type = "normalized")
    expect_lte(max(abs(r - r0)), 1e-3)
    ## whitening leaves the first occasion of each subject unscaled
    first <- d$time == 0
    expect_equal(unname(r[first]),
                 unname((d$y - fitted(f))[first] / sigma(f)), tolerance = 1e-12)
})

test_that("simulated errors have the AR(1) covariance, in the fit's row order", {
    d <- sim_ar1(nsub = 40, nt = 4, seed = 8)
    d <- d[-c(2, 7), ]                       # gaps
    d <- d[rev(seq_len(nrow(d))), ]          # rows not sorted by time
    f <- quiet_lmmfit(y ~ time + (1 | id), d, correlation = ar1(~ time | id))
    phi <- corpar(f)[["Phi"]]
    n <- nrow(d)
    ## e = I: the columns give a factor C with C C' = R
    C <- lmmfit:::ar1_simulate_errors(f, diag(n))
    R <- phi^abs(outer(d$time, d$time, "-")) * outer(d$id, d$id, "==")
    expect_equal(tcrossprod(C), R, tolerance = 1e-12, ignore_attr = TRUE)
    ## whitening inverts it
    e <- rnorm(n)
    expect_equal(lmmfit:::ar1_whiten(f, lmmfit:::ar1_simulate_errors(f, e)), e, tolerance = 1e-12)
})

test_that("corpar and print_corpar", {
    d <- sim_ar1(nsub = 60, seed = 3)
    f <- quiet_lmmfit(y ~ time + (time | id), d, correlation = ar1(~ time | id))
    expect_named(corpar(f), "Phi")
    expect_identical(corpar(f), f$corpar)
    out <- capture.output(lmmfit:::print_corpar(f))
    expect_identical(out[1:3], c("Correlation Structure: AR(1) within id", " Formula: ~time | id",
                                 " Parameter estimate(s):"))
    expect_match(out[5], format(corpar(f)[["Phi"]], digits = 4), fixed = TRUE)
    f0 <- quiet_lmmfit(y ~ time + (time | id), d)
    expect_length(corpar(f0), 0L)
    expect_length(capture.output(lmmfit:::print_corpar(f0)), 0L)
    expect_output(print(ar1(~ time | id)), "AR(1)", fixed = TRUE)
})

test_that("bad AR(1) specifications give clear errors", {
    d <- sim_ar1(nsub = 30, seed = 9)
    fm <- y ~ time + (1 | id)
    expect_error(ar1(y ~ time), "one-sided")
    expect_error(ar1(~ time), "grouping")
    expect_error(lmmfit(fm, d, correlation = list()), "correlation structure")
    d2 <- d
    d2$time[2] <- d2$time[1]
    expect_error(lmmfit(fm, d2, correlation = ar1(~ time | id)), "duplicate times")
    d3 <- d
    d3$time <- d3$time + 0.5
    expect_error(lmmfit(fm, d3, correlation = ar1(~ time | id)), "integer valued")
    ## the AR grouping must be nested in the grouping factor with the most
    ## levels (terms with fewer levels may cross it: test-resid-crossed.R)
    d$block <- factor(rep(1:10, length.out = nrow(d)))
    expect_error(lmmfit(y ~ time + (1 | block), d, correlation = ar1(~ time | id)),
                 "must be nested in the random-effects grouping factor with the most levels")
    ## a coarser random-effects factor containing the AR grouping is fine
    d$site <- factor((as.integer(d$id) - 1) %/% 5)
    f <- quiet_lmmfit(y ~ time + (1 | site) + (1 | id), d, correlation = ar1(~ time | id))
    expect_true(is.finite(f$deviance_value))
})

test_that("an AR(1) fit whose variance optimum is zero reports it exactly (singular), as nlme's logLik", {
    need("nlme")
    d <- droplevels(trial[trial$id %in% levels(trial$id)[1:100], ])
    expect_message(f <- lmmfit(y ~ time + treatment + (1 | id), d, correlation = ar1(~ time | id)),
                   "singular")
    expect_identical(unname(f$theta), 0)
    expect_true(isSingular(f))
    expect_length(lmmfit:::convergence_messages(f), 0L)
    m <- nlme::lme(y ~ time + treatment, random = ~ 1 | id, data = d,
                   correlation = nlme::corAR1(form = ~ time | id))
    expect_gte(as.numeric(logLik(f)), as.numeric(logLik(m)) - 1e-6)
})
