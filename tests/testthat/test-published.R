## Published values and closed forms: sources independent of lme4's optimizer.

## Published optima (lme4's reference results, quoted in the issue).
DYESTUFF_REML <- 319.654276842342
DYESTUFF_ML <- 327.327059881135
SLEEP_REML <- 1743.62827196
SLEEP_ML <- 1751.93934449

## Balanced one-way random-effects ANOVA (a groups of n): the REML and ML
## estimates in closed form (when the between-group estimate is positive),
## with lambda = sigma^2 + n sigma_b^2 the variance of a group mean times n.
##   REML: sigma^2 = MSE, lambda = MSB
##   ML:   sigma^2 = MSE, lambda = SSB / a
## beta = grand mean, Var(beta) = lambda / (a n), and the criteria
##   REML: (an-1) log 2pi + a(n-1) log sigma^2 + (a-1) log lambda + log(an) + an - 1
##   ML:   an log 2pi + a(n-1) log sigma^2 + a log lambda + an
oneway_closed_form <- function(y, g, REML) {
    g <- factor(g)
    a <- nlevels(g)
    n <- length(y) / a
    stopifnot(all(table(g) == n))
    gm <- tapply(y, g, mean)
    SSE <- sum((y - gm[g])^2)
    SSB <- n * sum((gm - mean(y))^2)
    s2 <- SSE / (a * (n - 1))
    lambda <- if (REML) SSB / (a - 1) else SSB / a
    crit <- if (REML) (a * n - 1) * log(2 * pi) + a * (n - 1) * log(s2) + (a - 1) * log(lambda) +
                          log(a * n) + a * n - 1
            else a * n * log(2 * pi) + a * (n - 1) * log(s2) + a * log(lambda) + a * n
    list(crit = crit, sigma2 = s2, var_between = (lambda - s2) / n, beta = mean(y),
         se = sqrt(lambda / (a * n)))
}

test_that("Dyestuff: published REML criterion and ML deviance", {
    need_lme4()
    data("Dyestuff", package = "lme4", envir = environment())
    fr <- lmmfit(Yield ~ 1 + (1 | Batch), Dyestuff)
    fm <- lmmfit(Yield ~ 1 + (1 | Batch), Dyestuff, REML = FALSE)
    expect_lte(abs(fr$deviance_value - DYESTUFF_REML), 1e-6)
    expect_lte(abs(fm$deviance_value - DYESTUFF_ML), 1e-6)
    expect_lte(abs(deviance(fr) - DYESTUFF_REML), 1e-6)
    expect_lte(abs(deviance(fm) - DYESTUFF_ML), 1e-6)
    expect_lte(abs(as.numeric(logLik(fr)) + DYESTUFF_REML / 2), 1e-6)
    expect_lte(abs(as.numeric(logLik(fm)) + DYESTUFF_ML / 2), 1e-6)
    ## AIC/BIC from the definition: 3 parameters, 30 observations
    expect_lte(abs(AIC(fm) - (DYESTUFF_ML + 2 * 3)), 1e-6)
    expect_lte(abs(BIC(fm) - (DYESTUFF_ML + log(30) * 3)), 1e-6)
})

test_that("Dyestuff: estimates equal the balanced one-way ANOVA closed form", {
    need_lme4()
    data("Dyestuff", package = "lme4", envir = environment())
    for (REML in c(TRUE, FALSE)) {
        cf <- oneway_closed_form(Dyestuff$Yield, Dyestuff$Batch, REML)
        fit <- lmmfit(Yield ~ 1 + (1 | Batch), Dyestuff, REML = REML)
        ## the closed form reproduces the published criteria (checks the formulas)
        expect_lte(abs(cf$crit - if (REML) DYESTUFF_REML else DYESTUFF_ML), 1e-6)
        expect_lte(abs(fit$deviance_value - cf$crit), 1e-8)
        expect_equal(unname(fixef(fit)), cf$beta, tolerance = 1e-10)
        expect_equal(sigma(fit)^2, cf$sigma2, tolerance = 1e-5)
        expect_equal(VarCorr(fit)$Batch[1, 1], cf$var_between, tolerance = 1e-5)
        expect_equal(sqrt(vcov(fit)[1, 1]), cf$se, tolerance = 1e-5)
        expect_false(isSingular(fit))
    }
})

test_that("Dyestuff2: boundary fit equals the linear model exactly", {
    need_lme4()
    data("Dyestuff2", package = "lme4", envir = environment())
    ## between-batch mean square below the within: the variance estimate is 0
    cf <- oneway_closed_form(Dyestuff2$Yield, Dyestuff2$Batch, TRUE)
    expect_lt(cf$var_between, 0)
    lmfit <- lm(Yield ~ 1, Dyestuff2)
    for (REML in c(TRUE, FALSE)) {
        expect_message(fit <- lmmfit(Yield ~ 1 + (1 | Batch), Dyestuff2, REML = REML), "boundary \\(singular\\) fit")
        expect_identical(unname(fit$theta), 0)
        expect_identical(VarCorr(fit)$Batch[1, 1], 0)
        expect_true(isSingular(fit))
        expect_lte(abs(fit$deviance_value + 2 * as.numeric(logLik(lmfit, REML = REML))), 1e-8)
        expect_equal(fixef(fit), coef(lmfit), tolerance = 1e-10)
        n <- nrow(Dyestuff2)
        expect_equal(sigma(fit)^2, sum(residuals(lmfit)^2) / if (REML) n - 1 else n, tolerance = 1e-10)
        expect_equal(sqrt(vcov(fit)[1, 1]), sigma(fit) / sqrt(n), tolerance = 1e-10)
    }
})

test_that("sleepstudy (Days | Subject): published REML criterion and ML deviance", {
    need_lme4()
    data("sleepstudy", package = "lme4", envir = environment())
    fr <- lmmfit(Reaction ~ Days + (Days | Subject), sleepstudy)
    fm <- lmmfit(Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE)
    expect_lte(abs(fr$deviance_value - SLEEP_REML), 1e-6)
    expect_lte(abs(fm$deviance_value - SLEEP_ML), 1e-6)
    expect_lte(abs(deviance(fm) - SLEEP_ML), 1e-6)
    expect_lte(abs(as.numeric(logLik(fm)) + SLEEP_ML / 2), 1e-6)
    ## AIC/BIC from the definition: 2 fixed effects, 3 covariance parameters, sigma
    expect_lte(abs(AIC(fm) - (SLEEP_ML + 2 * 6)), 1e-6)
    expect_lte(abs(BIC(fm) - (SLEEP_ML + log(180) * 6)), 1e-6)
    expect_identical(attr(logLik(fm), "df"), 6L)
    ## fixed effects: with a balanced design (every subject on days 0..9) the
    ## GLS estimates equal OLS exactly, whatever the covariance parameters
    ols <- coef(lm(Reaction ~ Days, sleepstudy))
    expect_equal(fixef(fr), ols, tolerance = 1e-10)
    expect_equal(fixef(fm), ols, tolerance = 1e-10)
})
