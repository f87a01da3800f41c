## as_glmerMod(): lme4's glmerMod at glmmfit's estimates.  Oracles: lme4's
## own accessors on the converted object against ours, and a glmer fit
## converged tightly for what update() refits.
skip_if_not_installed("lme4")
suppressPackageStartupMessages(library(lme4))

## lme4 evaluates its deviance once at our (theta, beta), its PIRLS run to
## 1e-13: the modes, criterion and predictions agree to rounding
CONVERT_TOL <- 1e-6
## vcov: lme4 inverts the Hessian we store, as we do (to rounding)
VCOV_TOL <- 1e-8

set.seed(20261209)
cv <- data.frame(g = factor(sample(12, 200, TRUE)), a = factor(sample(4, 200, TRUE)),
                 b = factor(sample(8, 200, TRUE)), b2 = factor(sample(8, 200, TRUE)),
                 x = rnorm(200), expo = runif(200, 1, 3), trials = sample(2:6, 200, TRUE))
cv_re <- rnorm(12)
cv$y <- rbinom(200, 1, pnorm(0.2 + 0.6 * cv$x + 0.5 * cv_re[cv$g] + 0.4 * rnorm(12)[cv$g] * cv$x))
cv$succ <- rbinom(200, cv$trials, plogis(-0.3 + 0.5 * cv$x + cv_re[cv$g]))
cv$prop <- cv$succ / cv$trials
cv$cnt <- rpois(200, cv$expo * exp(0.4 + 0.3 * cv$x + 0.4 * cv_re[cv$g] + 0.3 * rnorm(4)[cv$a]))
data(cbpp, package = "lme4")

## ll_offset: glmer's quadrature (nAGQ > 1) log-likelihood leaves out the
## saturated model's, which its Laplace one and glmmfit's include
expect_glmermod_matches <- function(fit, m, info, ll_offset = 0) {
    expect_s4_class(m, "glmerMod")
    expect_equal(fixef(m), fixef(fit), tolerance = CONVERT_TOL, info = info)
    expect_equal(getME(m, "theta")[names(fit$theta)], fit$theta, tolerance = CONVERT_TOL, info = info)
    expect_equal(as.numeric(logLik(m)) + ll_offset, as.numeric(logLik(fit)), tolerance = CONVERT_TOL, info = info)
    expect_equal(attr(logLik(m), "df"), attr(logLik(fit), "df"), info = info)
    expect_equal(deviance(m), deviance(fit), tolerance = CONVERT_TOL, info = info)
    expect_identical(nobs(m), nobs(fit), info = info)
    ## the conditional modes and their variances, per grouping factor
    rm <- ranef(m, condVar = TRUE)
    rf <- ranef(fit, condVar = TRUE)
    for (g in names(rm)) {
        expect_equal(as.matrix(rm[[g]]), as.matrix(rf[[g]][names(rm[[g]])]), tolerance = CONVERT_TOL,
                     ignore_attr = TRUE, info = paste(info, g))
    }
    vm <- as.data.frame(VarCorr(m))
    vf <- as.data.frame(VarCorr(fit))
    key <- function(v) paste(sub("\\.[0-9]+$", "", v$grp), v$var1, v$var2)
    expect_setequal(key(vm), key(vf))
    expect_equal(vm$vcov, vf$vcov[match(key(vm), key(vf))], tolerance = CONVERT_TOL, info = info)
    expect_equal(predict(m), predict(fit), tolerance = CONVERT_TOL, ignore_attr = TRUE, info = info)
    expect_equal(predict(m, type = "response"), fitted(fit), tolerance = CONVERT_TOL, ignore_attr = TRUE,
                 info = info)
    expect_equal(as.matrix(vcov(m)), vcov(fit), tolerance = VCOV_TOL, ignore_attr = TRUE, info = info)
    expect_identical(isSingular(m), isSingular(fit), info = info)
}

test_that("as_glmerMod() gives lme4's object at glmmfit's estimates", {
    cases <- list(
        cbpp = quote(glmmfit(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial)),
        probit_slope = quote(glmmfit(y ~ x + (x | g), cv, family = binomial(link = "probit"))),
        ## lme4 orders these terms b, b2, g, a or similar, we g, b, b2, a:
        ## theta and the Hessian are matched by name
        crossed = quote(glmmfit(cnt ~ x + (1 | a) + (1 | b) + (1 | b2) + (1 | g), cv, family = poisson,
                                offset = log(expo))),
        weights_subset = quote(glmmfit(prop ~ x + (1 | g), cv, family = binomial, weights = trials,
                                       subset = x > -1.5)),
        agq = quote(glmmfit(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial,
                            nAGQ = 5)),
        nb = quote(glmmfit_nb(cnt ~ x + offset(log(expo)) + (1 | g), cv)))
    for (nm in names(cases)) {
        fit <- suppressMessages(eval(cases[[nm]]))
        m <- as_glmerMod(fit)
        sat <- if (nm == "agq") sum(dbinom(cbpp$incidence, cbpp$size, cbpp$incidence / cbpp$size, log = TRUE))
               else 0
        expect_glmermod_matches(fit, m, nm, ll_offset = sat)
        if (nm == "agq") {
            ## lme4's own quadrature criterion at our estimates: glmer's devfun
            g <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial,
                       nAGQ = 5, devFunOnly = TRUE)
            expect_equal(-2 * as.numeric(logLik(m)), g(c(fit$theta, fixef(fit))), tolerance = CONVERT_TOL)
        }
    }
    expect_equal(getME(m, "glmer.nb.theta"), fit$spec$nb_theta, tolerance = 1e-12)
    ## nAGQ = 0: glmer keeps no Hessian then; vcov from R_X, as ours
    f0 <- glmmfit(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial, nAGQ = 0)
    m0 <- as_glmerMod(f0)
    expect_equal(fixef(m0), fixef(f0), tolerance = CONVERT_TOL)
    expect_equal(as.numeric(logLik(m0)), as.numeric(logLik(f0)), tolerance = CONVERT_TOL)
    expect_equal(as.matrix(vcov(m0)), vcov(f0, use.hessian = FALSE), tolerance = CONVERT_TOL, ignore_attr = TRUE)
})

test_that("a boundary fit: lme4's vcov holds the zero variance, as ours", {
    set.seed(3)
    x <- rnorm(8)
    y <- rbinom(8, 1, plogis(0.3 + 0.5 * x))
    d <- data.frame(g = factor(rep(1:10, each = 8)), x = rep(x, 10), y = rep(y, 10))
    fit <- suppressMessages(glmmfit(y ~ x + (1 | g), d, family = binomial))
    expect_true(isSingular(fit))
    m <- as_glmerMod(fit)
    expect_glmermod_matches(fit, m, "singular")
    ## held at zero, the fixed effects' covariance is the glm's (to the
    ## finite-difference Hessian's accuracy, 1e-4 against numDeriv in
    ## test-glmm-fit.R)
    expect_equal(as.matrix(vcov(m)), vcov(glm(y ~ x, d, family = binomial)), tolerance = 2e-4,
                 ignore_attr = TRUE)
})

test_that("merMod tools work on it: new-data predictions, Wald intervals, update()", {
    fit <- glmmfit(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial)
    m <- as_glmerMod(fit)
    nd <- data.frame(period = factor(c(1, 3, 4), levels = 1:4), herd = factor(c(2, 15, 99)))
    expect_equal(predict(m, nd, allow.new.levels = TRUE, type = "response"),
                 predict(fit, nd, allow.new.levels = TRUE, type = "response"), tolerance = CONVERT_TOL)
    expect_equal(predict(m, nd, re.form = NA), predict(fit, nd, re.form = NA), tolerance = CONVERT_TOL)
    ci <- confint(m, method = "Wald", parm = "beta_")
    se <- sqrt(diag(vcov(fit)))
    expect_equal(unname(ci[, 2]), unname(fixef(fit) + qnorm(0.975) * se), tolerance = CONVERT_TOL)
    ## update() refits as glmer would (the call is glmer's, not a frozen one)
    u <- suppressWarnings(update(m, data = cbpp[cbpp$period != 4, ]))
    ref <- suppressWarnings(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd),
                                  cbpp[cbpp$period != 4, ], family = binomial))
    expect_equal(as.numeric(logLik(u)), as.numeric(logLik(ref)), tolerance = CONVERT_TOL)
    expect_equal(fixef(u), fixef(ref), tolerance = 1e-5)
    ## glmer.nb for a glmmfit_nb fit
    fnb <- suppressMessages(glmmfit_nb(cnt ~ x + (1 | g), cv))
    expect_identical(getCall(as_glmerMod(fnb))[[1L]], quote(lme4::glmer.nb))
})

test_that("as_glmerMod() refuses what has no glmer equivalent, and says when lme4 is missing", {
    expect_error(as_glmerMod(lm(cnt ~ x, cv)), "must be a glmmfit fit")
    fit <- glmmfit(cnt ~ x + (1 | g), cv, family = MASS::negative.binomial(2))
    expect_error(as_glmerMod(fit), "theta given has no glmer equivalent")
    ## the data gone: lme4 cannot rebuild the model, and says so
    local({
        dd <- cv
        f <- glmmfit(cnt ~ x + (1 | g), dd, family = poisson)
        rm(dd)
        expect_error(as_glmerMod(f), "could not rebuild the model from the fit's call")
    })
    ## a family glmer fits whose glmmfit fit does not convert
    f <- glmmfit(cnt ~ x + (1 | g), cv, family = poisson)
    f$family <- Gamma()
    expect_error(as_glmerMod(f), "the Gamma family is not supported")
    without_lme4(expect_error(as_glmerMod(fit), "as_glmerMod\\(\\) needs package 'lme4', which is not installed"))
})
