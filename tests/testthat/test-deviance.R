## The deviance module (R/deviance.R and src/deviance.c): one formula for
## the criterion and for sigma-hat, the same in R and in C.

test_that("the R and C deviance modules agree with each other and with lme4", {
    need_lme4()
    d <- lme4::sleepstudy
    for (REML in c(TRUE, FALSE)) {
        fit <- lmmfit(Reaction ~ Days + (Days | Subject), d, REML = REML)
        m <- lme4::lmer(Reaction ~ Days + (Days | Subject), d, REML = REML)
        n <- nrow(d); p <- 2L
        dev_r <- lmmfit:::profiled_deviance(fit$ldL2, fit$pwrss, n, 0, REML, fit$ldRX2, p)
        expect_lt(abs(dev_r - fit$deviance_value), 1e-9)
        expect_lt(abs(fit$deviance_value - if (REML) lme4::REMLcrit(m) else deviance(m)), 1e-6)
        expect_equal(lmmfit:::sigma_hat(fit$pwrss, n, p, REML), sigma(m), tolerance = 1e-5)
    }
    ## a linear model is the case ldL2 = 0
    l <- lm(Reaction ~ Days, d)
    expect_equal(lmmfit:::profiled_deviance(0, sum(residuals(l)^2), nrow(d)),
                 -2 * as.numeric(logLik(l)), tolerance = 1e-12)
})
