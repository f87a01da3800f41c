## RLRsim's exact (restricted) likelihood-ratio tests for a variance
## component, on lmmfit fits against the same tests on the lmer fits of the
## same models.  RLRsim accepts lmerMod and lme objects only, by class, with no
## extension point (see R/ext-rlrsim.R): the documented route is
## as_lmerMod(fit), tested here.

## The observed statistics are differences of log-likelihoods at optima that
## agree with lmer's to about 1e-8 (an optimum's log-likelihood is flat to
## first order, so closer still); against lmmfit's own logLik() they agree
## to rounding, as_lmerMod() evaluating lme4's deviance at lmmfit's theta.
RLRSIM_TOL <- 1e-6
## a variance estimated at zero: the statistic is zero but for rounding of
## log-likelihoods of about -70
RLRSIM_ZERO_TOL <- 1e-8
RLRSIM_NSIM <- 5000

## RLRsim simulates the null distribution from the design matrices X and Z
## alone (cov2cor of a single variance component is the identity): with the
## same seed the sample is the same for lmer's model and lmmfit's, and the
## p-value, the share of the sample above the observed statistic, follows
## from lmmfit's statistic.
expect_same_rlrsim <- function(ours, ref, closed_form, info) {
    expect_s3_class(ours, "htest")
    expect_equal(unname(ours$statistic), unname(ref$statistic), tolerance = RLRSIM_TOL, info = info)
    expect_equal(unname(ours$statistic), closed_form, tolerance = RLRSIM_TOL, info = info)
    expect_identical(ours$sample, ref$sample, info = info)
    expect_length(ours$sample, RLRSIM_NSIM)
    expect_identical(ours$p.value, ref$p.value, info = info)
    expect_identical(ours$p.value, mean(closed_form < ours$sample), info = info)
}

orthodont <- function() {
    d <- as.data.frame(nlme::Orthodont)
    d$Subject <- factor(d$Subject, ordered = FALSE)
    d
}

## 12 groups of 5 with a small between-group variance: a statistic whose
## p-value is neither 0 nor 1 (about 0.1 by RLRT, 0.05 by LRT)
rlrsim_data <- function() {
    set.seed(3)
    d <- data.frame(g = factor(rep(1:12, each = 5)), x = rnorm(60))
    d$y <- 1 + 0.3 * d$x + rnorm(12, sd = 0.35)[d$g] + rnorm(60)
    d
}

## 'fit' is lmmfit's, 'ours' its as_lmerMod() (made here, where the fit's
## call finds its data), 'ref' lmer's.
rlrsim_fits <- function(formula, data, REML = TRUE) {
    fit <- suppressMessages(lmmfit(formula, data = data, REML = REML))
    list(fit = fit, ours = as_lmerMod(fit),
         ref = suppressMessages(lme4::lmer(formula, data = data, REML = REML, control = ext_lmer_control())))
}

test_that("RLRsim refuses an lmmfit fit itself: the route is as_lmerMod()", {
    need_lme4(); skip_if_not_installed("RLRsim")
    d <- rlrsim_data()
    f <- rlrsim_fits(y ~ x + (1 | g), d)
    expect_error(RLRsim::exactRLRT(f$fit), "Invalid <m>")
    expect_error(RLRsim::exactLRT(f$fit, lm(y ~ 1, d)), "Invalid <m>")
})

test_that("exactRLRT of a single variance component matches lmer's", {
    need_lme4(); skip_if_not_installed("RLRsim")
    d <- rlrsim_data()
    f <- rlrsim_fits(y ~ x + (1 | g), d)
    ours <- RLRsim::exactRLRT(f$ours, seed = 21, nsim = RLRSIM_NSIM)
    ref <- RLRsim::exactRLRT(f$ref, seed = 21, nsim = RLRSIM_NSIM)
    ## against the linear model without the random intercept, by REML
    closed <- 2 * (as.numeric(logLik(f$fit)) - as.numeric(logLik(lm(y ~ x, d), REML = TRUE)))
    expect_same_rlrsim(ours, ref, closed, "y ~ x + (1 | g)")
    expect_gt(ours$p.value, 0)
    expect_lt(ours$p.value, 1)
})

test_that("exactRLRT of one variance among several (mA, m0) matches lmer's", {
    need_lme4(); skip_if_not_installed("RLRsim")
    d <- orthodont()
    full <- rlrsim_fits(distance ~ age + (1 | Subject) + (0 + age | Subject), d)
    null <- rlrsim_fits(distance ~ age + (1 | Subject), d)
    slope <- rlrsim_fits(distance ~ age + (0 + age | Subject), d)
    ours <- RLRsim::exactRLRT(slope$ours, full$ours, null$ours,
                              seed = 22, nsim = RLRSIM_NSIM)
    ref <- RLRsim::exactRLRT(slope$ref, full$ref, null$ref, seed = 22, nsim = RLRSIM_NSIM)
    closed <- 2 * (as.numeric(logLik(full$fit)) - as.numeric(logLik(null$fit)))
    expect_same_rlrsim(ours, ref, closed, "Orthodont random slope")
    expect_gt(ours$p.value, 0)
    expect_lt(ours$p.value, 1)
})

test_that("exactLRT against a linear model matches lmer's", {
    need_lme4(); skip_if_not_installed("RLRsim")
    d <- rlrsim_data()
    f <- rlrsim_fits(y ~ x + (1 | g), d, REML = FALSE)
    m0 <- lm(y ~ 1, d)
    ours <- RLRsim::exactLRT(f$ours, m0, seed = 23, nsim = RLRSIM_NSIM)
    ref <- RLRsim::exactLRT(f$ref, m0, seed = 23, nsim = RLRSIM_NSIM)
    closed <- 2 * (as.numeric(logLik(f$fit)) - as.numeric(logLik(m0)))
    expect_same_rlrsim(ours, ref, closed, "exactLRT")
    expect_gt(ours$p.value, 0)
    expect_lt(ours$p.value, 1)
})

test_that("exactRLRT of a variance estimated at zero gives a zero statistic, as for lmer", {
    need_lme4(); skip_if_not_installed("RLRsim")
    d <- ext_data("singular")
    f <- rlrsim_fits(y ~ x + trt + (1 | g), d)
    expect_true(isSingular(f$fit))
    ours <- suppressMessages(RLRsim::exactRLRT(f$ours, seed = 24, nsim = RLRSIM_NSIM))
    ref <- suppressMessages(RLRsim::exactRLRT(f$ref, seed = 24, nsim = RLRSIM_NSIM))
    expect_lt(unname(ours$statistic), RLRSIM_ZERO_TOL)
    expect_lt(abs(unname(ours$statistic) - unname(ref$statistic)), RLRSIM_ZERO_TOL)
})
