## The worked examples of seeds 001 and 002 (/work/shared/seeds): the values
## their lme4 output prints, closed forms, and lme4 fitted live.

## |x - printed| within half a unit of the printed value's last digit.
expect_as_printed <- function(x, printed, label = NULL) {
    stopifnot(is.character(printed))
    dec <- if (grepl(".", printed, fixed = TRUE)) nchar(sub("^[^.]*\\.", "", printed)) else 0
    expect_lte(abs(x - as.numeric(printed)), 0.5 * 10^-dec * (1 + 1e-9), label = label)
}

test_that("seed 001: the values the seed's lme4 output prints", {
    data <- seed001_data()
    expect_silent(fit <- lmmfit(y ~ x + (1 | p), data = data))
    b <- fixef(fit)
    se <- sqrt(diag(vcov(fit)))
    expect_identical(names(b), c("(Intercept)", "x"))
    expect_as_printed(b[[1]], "21.040772", "intercept")
    expect_as_printed(b[[2]], "-1.007014", "slope")
    expect_as_printed(se[[1]], "1.92111", "SE(intercept)")
    expect_as_printed(se[[2]], "0.009933", "SE(slope)")
    expect_as_printed(b[[1]] / se[[1]], "10.95", "t(intercept)")
    expect_as_printed(b[[2]] / se[[2]], "-101.38", "t(slope)")
    expect_as_printed(fit$deviance_value, "-88.6", "REML criterion")
    vc <- VarCorr(fit)
    expect_as_printed(sigma(fit)^2, "0.00807", "residual variance")
    expect_as_printed(sigma(fit), "0.08983", "residual sd")
    expect_as_printed(cov2cor(vcov(fit))[2, 1], "-0.029", "correlation of fixed effects")
    ## The seed prints the p variance as 36.87548, from a 2017 lme4 whose optimum
    ## was 1e-5 off in the last digit: the exact optimum is 36.875491 (the next
    ## test finds it independently).  The criterion is so flat in theta here
    ## (theta = 67.6) that rounding noise leaves the variance determined to about
    ## 2e-6 relative; ask for 5e-6.
    expect_equal(vc$p[1, 1], 36.87548, tolerance = 5e-6)
    expect_equal(sqrt(vc$p[1, 1]), 6.07252, tolerance = 5e-6)
    expect_identical(nobs(fit), 100L)
    expect_equal(ngrps(fit), c(p = 10L))
    expect_false(isSingular(fit))
    out <- capture.output(summary(fit))
    expect_true("REML criterion at convergence: -88.6" %in% out)
    expect_true("Number of obs: 100, groups:  p, 10" %in% out)
})

test_that("seed 001: matches lme4 live and the exact one-dimensional optimum", {
    need_lme4()
    data <- seed001_data()
    fit <- lmmfit(y ~ x + (1 | p), data = data)
    m <- lme4::lmer(y ~ x + (1 | p), data = data)
    expect_lte(fit$deviance_value, lme4::REMLcrit(m) + 1e-6)
    ## theta is one-dimensional: minimise lme4's own profiled REML criterion
    ## with optimize() for the exact optimum.  The criterion is flat here: its
    ## rounding noise (~1e-11) leaves theta determined to ~1e-6 relative, so
    ## theta is asked to 5e-6 and the variance-dependent quantities to 1e-5.
    devf <- lme4::lmer(y ~ x + (1 | p), data = data, devFunOnly = TRUE)
    opt <- optimize(devf, c(10, 200), tol = 1e-10)
    expect_lte(fit$deviance_value, opt$objective + 1e-6)
    expect_equal(unname(fit$theta), opt$minimum, tolerance = 5e-6)
    m_opt <- lme4::lmer(y ~ x + (1 | p), data = data,
                        control = lme4::lmerControl(optimizer = "bobyqa", calc.derivs = FALSE,
                                                    optCtrl = list(rhoend = 1e-12, maxfun = 1e5)))
    expect_equal(fixef(fit), lme4::fixef(m_opt), tolerance = 1e-7)
    expect_equal(vcov(fit), as.matrix(vcov(m_opt)), tolerance = 1e-5)
    expect_equal(VarCorr(fit)$p[1, 1], lme4::VarCorr(m_opt)$p[1, 1], tolerance = 1e-5)
    expect_equal(sigma(fit), sigma(m_opt), tolerance = 1e-5)
    expect_lte(abs(as.numeric(logLik(fit)) - as.numeric(logLik(m_opt))), 1e-6)
    expect_equal(fitted(fit), fitted(m_opt), tolerance = 1e-6)
})

test_that("seed 002: a boundary fit, exactly the linear model", {
    d <- seed002_data()
    expect_message(fit <- lmmfit(y ~ x + (1 | f), data = d), "boundary \\(singular\\) fit")
    expect_identical(unname(fit$theta), 0)
    expect_identical(VarCorr(fit)$f[1, 1], 0)
    expect_identical(unname(attr(VarCorr(fit)$f, "stddev")), 0)
    expect_true(isSingular(fit))
    out <- capture.output(summary(fit))
    expect_true(any(grepl("boundary (singular) fit", out, fixed = TRUE)))

    ## printed by the seed's lme4 output
    b <- fixef(fit)
    se <- sqrt(diag(vcov(fit)))
    expect_as_printed(b[[1]], "0.008333")
    expect_as_printed(b[[2]], "0.008643")
    expect_as_printed(se[[1]], "0.120992")
    expect_as_printed(se[[2]], "0.011912")
    expect_as_printed(b[[1]] / se[[1]], "0.069")
    expect_as_printed(b[[2]] / se[[2]], "0.726")
    expect_as_printed(sigma(fit)^2, "0.17567")
    expect_as_printed(sigma(fit), "0.41913")
    expect_as_printed(fit$deviance_value, "20.59", "REMLdev")
    expect_as_printed(AIC(fit), "28.59", "AIC")
    expect_as_printed(BIC(fit), "30.53", "BIC")
    expect_as_printed(as.numeric(logLik(fit)), "-10.3", "logLik")
    expect_as_printed(cov2cor(vcov(fit))[2, 1], "0.000")

    ## with the variance at 0 the model is lm(y ~ x): estimates, standard
    ## errors, residual variance and the REML criterion are lm's, exactly
    l <- lm(y ~ x, data = d)
    sl <- summary(l)
    expect_equal(b, coef(l), tolerance = 1e-10)
    expect_equal(se, sl$coefficients[, "Std. Error"], tolerance = 1e-10)
    expect_equal(sigma(fit), sl$sigma, tolerance = 1e-10)
    expect_lte(abs(fit$deviance_value + 2 * as.numeric(logLik(l, REML = TRUE))), 1e-8)
    expect_equal(unname(fitted(fit)), unname(fitted(l)), tolerance = 1e-10)
    ## the seed's "deviance 11": the ML deviance at the REML estimates, which
    ## at theta = 0 is -2 logLik of lm
    expect_as_printed(deviance(fit, REML = FALSE), "11")
    expect_lte(abs(deviance(fit, REML = FALSE) + 2 * as.numeric(logLik(l))), 1e-8)
})

test_that("seed 002: ML is on the boundary too; both match lme4 live", {
    need_lme4()
    d <- seed002_data()
    l <- lm(y ~ x, data = d)
    for (REML in c(TRUE, FALSE)) {
        expect_message(fit <- lmmfit(y ~ x + (1 | f), data = d, REML = REML), "boundary \\(singular\\) fit")
        m <- suppressMessages(lme4::lmer(y ~ x + (1 | f), data = d, REML = REML))
        expect_identical(unname(fit$theta), 0)
        expect_identical(unname(lme4::getME(m, "theta")), 0)
        expect_lte(fit$deviance_value, lme4_objective(m) + 1e-6)
        expect_lte(abs(fit$deviance_value - lme4_objective(m)), 1e-8)
        expect_equal(fixef(fit), lme4::fixef(m), tolerance = 1e-10)
        expect_equal(vcov(fit), as.matrix(vcov(m)), tolerance = 1e-10)
        expect_equal(sigma(fit), sigma(m), tolerance = 1e-10)
        expect_identical(isSingular(fit), lme4::isSingular(m))
        expect_equal(residuals(fit), residuals(m), tolerance = 1e-10)
        if (!REML) {
            expect_lte(abs(deviance(fit) + 2 * as.numeric(logLik(l))), 1e-8)
            expect_equal(sigma(fit)^2, sum(residuals(l)^2) / nrow(d), tolerance = 1e-10)
        }
    }
})
