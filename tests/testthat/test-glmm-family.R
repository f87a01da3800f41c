## The families with a dispersion (Gamma, inverse Gaussian) against glmer
## converged tightly and against an oracle written here.  glmer's criterion
## for them is R's family aic() at the dispersion dev / sum(weights) plus
## |u|^2 + log|L|^2.  Unlike sum dev + |u|^2, which is stationary at the
## modes, the aic is first-order in them, and glmer's PIRLS stops on a
## relative change of the penalized deviance: its modes sit ~1e-6 off
## (its gradient of pdev 1e-6 where ours is 1e-10), and its criterion moves
## by up to 2.6e-6 between tolPwrss = 1e-13 and 1e-14 (measured, either
## sign).  So the criterion is checked exactly against the oracle's modes,
## and against glmer to GLMER_MODE_NOISE relative.
skip_if_not_installed("lme4")
suppressPackageStartupMessages(library(lme4))

## 2.6e-6 on criteria near 800, with a factor of 4 to spare
GLMER_MODE_NOISE <- 1.5e-8
## the oracle's Newton iterations stop on steps this small
ORACLE_STEP_TOL <- 1e-13

crit <- function(fit) -2 * as.numeric(logLik(fit))

tight_glmer <- function(formula, data, family, ...) {
    ctl <- glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-14,
                        optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-14, xtol_rel = 1e-14, maxeval = 1e5))
    suppressWarnings(do.call(glmer, list(formula = formula, data = data, family = family, control = ctl, ...)))
}

## The Laplace criterion at (theta, beta) by dense Fisher scoring in R on
## lme4's Z and Lambda pattern, the modes converged to ORACLE_STEP_TOL:
## aic(mu) + |u|^2 + log det(Lambda' Z' W Z Lambda + I).
laplace_oracle <- function(g, theta, beta, wt = rep(1, nobs(g))) {
    fam <- family(g)
    y <- getME(g, "y")
    Lt <- getME(g, "Lambdat")
    Lt@x <- theta[getME(g, "Lind")]
    ZL <- t(as.matrix(Lt %*% getME(g, "Zt")))
    eta0 <- drop(getME(g, "X") %*% beta)
    u <- numeric(ncol(ZL))
    state <- function(u) {
        eta <- eta0 + drop(ZL %*% u)
        mu <- fam$linkinv(eta)
        me <- fam$mu.eta(eta)
        list(mu = mu, me = me, w = wt * me^2 / fam$variance(mu))
    }
    for (it in 1:500) {
        s <- state(u)
        score <- drop(crossprod(ZL, wt * s$me * (y - s$mu) / fam$variance(s$mu))) - u
        step <- solve(crossprod(ZL * sqrt(s$w)) + diag(ncol(ZL)), score)
        u <- u + step
        if (max(abs(step)) < ORACLE_STEP_TOL * max(1, abs(u))) break
    }
    s <- state(u)
    dev <- sum(fam$dev.resids(y, s$mu, wt))
    ldL2 <- as.numeric(determinant(crossprod(ZL * sqrt(s$w)) + diag(ncol(ZL)))$modulus)
    fam$aic(y, rep(1, length(y)), s$mu, wt, dev) + sum(u^2) + ldL2
}

expect_dispersion_fit <- function(fit, g, wt = rep(1, nobs(g))) {
    th <- getME(g, "theta")[names(fit$theta)]
    ## our criterion is the Laplace approximation at the modes ...
    expect_equal(crit(fit), laplace_oracle(g, fit$theta, fixef(fit), wt), tolerance = 1e-10)
    ## ... no higher than at glmer's estimates, evaluated exactly ...
    expect_lte(crit(fit), laplace_oracle(g, th, fixef(g), wt) + 1e-10 * crit(fit))
    expect_gte(lmmfit:::glmm_criterion(fit, th, fixef(g)), crit(fit) - 1e-10 * crit(fit))
    ## ... and glmer's to the noise of its modes
    expect_equal(crit(fit), -2 * as.numeric(logLik(g)), tolerance = GLMER_MODE_NOISE)
    expect_equal(unname(fixef(fit)), unname(fixef(g)), tolerance = 1e-5)
    expect_equal(unname(fit$theta), unname(th), tolerance = 1e-5)
    expect_equal(sigma(fit), sigma(g), tolerance = 1e-5)
    expect_equal(attr(logLik(fit), "df"), attr(logLik(g), "df"))
    expect_equal(AIC(fit), AIC(g), tolerance = GLMER_MODE_NOISE)
    expect_equal(BIC(fit), BIC(g), tolerance = GLMER_MODE_NOISE)
    expect_equal(deviance(fit), deviance(g), tolerance = 1e-5)
    vc <- VarCorr(fit)
    expect_equal(unname(attr(vc[[1L]], "stddev")), unname(attr(VarCorr(g)[[1L]], "stddev")), tolerance = 1e-5)
    expect_equal(attr(vc, "sc"), sigma(g), tolerance = 1e-5)
    expect_equal(vcov(fit, use.hessian = FALSE), as.matrix(suppressWarnings(vcov(g, use.hessian = FALSE))),
                 tolerance = 1e-5, ignore_attr = TRUE)
    re <- ranef(fit, condVar = TRUE)[[1L]]
    rg <- ranef(g, condVar = TRUE)[[1L]]
    expect_equal(as.matrix(re), as.matrix(rg), tolerance = 1e-5, ignore_attr = TRUE)
    expect_equal(attr(re, "postVar"), attr(rg, "postVar"), tolerance = 1e-4, ignore_attr = TRUE)
    expect_equal(unname(residuals(fit, "pearson")), unname(residuals(g, "pearson")), tolerance = 1e-5)
    expect_equal(unname(predict(fit, type = "response")), unname(fitted(g)), tolerance = 1e-6)
    ## the Hessian-based covariance: differences of our criterion against
    ## numDeriv's Richardson extrapolation on it (glmer's own devfun carries
    ## the 1e-6 noise of its modes, which second differences amplify)
    if (requireNamespace("numDeriv", quietly = TRUE)) {
        nt <- length(fit$theta)
        own <- function(p) lmmfit:::glmm_criterion(fit, p[seq_len(nt)], p[-seq_len(nt)])
        H <- numDeriv::hessian(own, c(fit$theta, fixef(fit)))
        expect_equal(vcov(fit), 2 * solve(H)[-seq_len(nt), -seq_len(nt)], tolerance = 1e-4,
                     ignore_attr = TRUE)
    }
}

gamma_data <- local({
    set.seed(1)
    ng <- 30L
    n <- 300L
    d <- data.frame(g = factor(sample(ng, n, TRUE)), x = rnorm(n), w = runif(n, 0.5, 2), x01 = runif(n))
    d$y <- rgamma(n, shape = 3, scale = exp(0.5 + 0.3 * d$x + rnorm(ng, 0, 0.4)[d$g]) / 3)
    d$yi <- rgamma(n, shape = 4, rate = 4 * (1 + 0.5 * d$x01 + rnorm(ng, 0, 0.1)[d$g]))
    ## inverse Gaussian draws by Michael, Schucany and Haas's transformation
    mu <- exp(0.2 + 0.3 * d$x + rnorm(ng, 0, 0.3)[d$g])
    lambda <- 5
    nu <- rnorm(n)^2
    r <- mu + mu^2 * nu / (2 * lambda) - mu / (2 * lambda) * sqrt(4 * mu * lambda * nu + mu^2 * nu^2)
    d$yg <- ifelse(runif(n) <= mu / (mu + r), r, mu^2 / r)
    d
})

test_that("Gamma with the log link agrees with glmer, its dispersion and the oracle", {
    fit <- glmmfit(y ~ x + (1 | g), gamma_data, family = Gamma(link = "log"))
    g <- tight_glmer(y ~ x + (1 | g), gamma_data, Gamma(link = "log"))
    expect_dispersion_fit(fit, g)
    ## sigma is glmer's: sqrt((Pearson chi^2 + |u|^2) / n)
    mu <- fitted(g)
    expect_equal(sigma(fit), sqrt((sum((gamma_data$y - mu)^2 / mu^2) + sum(getME(g, "u")^2)) / 300),
                 tolerance = 1e-5)
})

test_that("Gamma with prior weights, the inverse link and a slope agree with glmer", {
    fit <- glmmfit(y ~ x + (1 | g), gamma_data, family = Gamma(link = "log"), weights = w)
    g <- tight_glmer(y ~ x + (1 | g), gamma_data, Gamma(link = "log"), weights = gamma_data$w)
    expect_dispersion_fit(fit, g, gamma_data$w)
    fit <- glmmfit(yi ~ x01 + (1 | g), gamma_data, family = Gamma(link = "inverse"))
    g <- tight_glmer(yi ~ x01 + (1 | g), gamma_data, Gamma(link = "inverse"))
    expect_dispersion_fit(fit, g)
    fit <- suppressMessages(glmmfit(y ~ x + (x | g), gamma_data, family = Gamma(link = "log")))
    g <- tight_glmer(y ~ x + (x | g), gamma_data, Gamma(link = "log"))
    expect_equal(crit(fit), laplace_oracle(g, fit$theta, fixef(fit)), tolerance = 1e-10)
    expect_lte(crit(fit), laplace_oracle(g, getME(g, "theta"), fixef(g)) + 1e-10 * crit(fit))
    expect_equal(crit(fit), -2 * as.numeric(logLik(g)), tolerance = GLMER_MODE_NOISE)
    expect_equal(unname(fixef(fit)), unname(fixef(g)), tolerance = 1e-5)
})

test_that("inverse Gaussian with the log link agrees with glmer", {
    fit <- glmmfit(yg ~ x + (1 | g), gamma_data, family = inverse.gaussian(link = "log"))
    g <- tight_glmer(yg ~ x + (1 | g), gamma_data, inverse.gaussian(link = "log"))
    expect_dispersion_fit(fit, g)
})

test_that("nAGQ = 0 with a dispersion agrees with glmer's first stage", {
    fit <- glmmfit(y ~ x + (1 | g), gamma_data, family = Gamma(link = "log"), nAGQ = 0)
    g <- tight_glmer(y ~ x + (1 | g), gamma_data, Gamma(link = "log"), nAGQ = 0)
    expect_equal(unname(fixef(fit)), unname(fixef(g)), tolerance = 1e-5)
    expect_equal(unname(fit$theta), unname(getME(g, "theta")), tolerance = 1e-5)
    expect_equal(crit(fit), -2 * as.numeric(logLik(g)), tolerance = GLMER_MODE_NOISE)
})

test_that("the summary shows the residual scale and t values as glmer's", {
    fit <- glmmfit(y ~ x + (1 | g), gamma_data, family = Gamma(link = "log"))
    out <- capture.output(print(summary(fit)))
    expect_true(any(grepl("^ Residual", out)))
    expect_true(any(grepl("t value", out)))
    expect_true(any(grepl("Family: Gamma  \\( log \\)", out)))
    s <- summary(fit)
    expect_equal(s$coefficients[, "t value"], fixef(fit) / sqrt(diag(vcov(fit))))
    expect_equal(unname(s$scaled_residuals), unname(residuals(fit, "pearson") / sigma(fit)))
})

test_that("responses outside the support, quadrature and unsupported links are refused", {
    d <- gamma_data
    d$y[3] <- 0
    expect_error(glmmfit(y ~ x + (1 | g), d, family = Gamma(link = "log")),
                 "Gamma response must be positive: 1 of the values")
    d$y[3] <- -1
    expect_error(glmmfit(y ~ x + (1 | g), d, family = inverse.gaussian(link = "log")),
                 "inverse.gaussian response must be positive")
    expect_error(glmmfit(y ~ x + (1 | g), gamma_data, family = Gamma(link = "log"), nAGQ = 5),
                 "nAGQ > 1 is not available for the Gamma family")
    expect_error(glmmfit(y ~ x + (1 | g), gamma_data, family = Gamma(link = power(2))),
                 "the Gamma family's 'mu\\^2' link is not supported")
})

## Pooled over rows and replicates, (y - mu) / (sigma sqrt(V(mu) / w)) has
## mean 0 and variance 1; with 300 x 60 draws their standard errors are
## below 0.008 and 0.02 (the Gamma's and inverse Gaussian's fourth moments
## at these shapes), so 5 of them is SIM_MOMENT_TOL.
SIM_MOMENT_TOL <- c(mean = 0.04, var = 0.1)

test_that("simulate() draws Gamma and inverse Gaussian responses with the model's variance", {
    for (spec in list(list(y ~ x + (1 | g), Gamma(link = "log")),
                      list(yg ~ x + (1 | g), inverse.gaussian(link = "log")))) {
        fit <- glmmfit(spec[[1L]], gamma_data, family = spec[[2L]], weights = w)
        s <- simulate(fit, nsim = 60, seed = 7, use.u = TRUE)
        mu <- fitted(fit)
        z <- unlist(lapply(s, function(y) (y - mu) / (sigma(fit) * sqrt(spec[[2L]]$variance(mu) / gamma_data$w))))
        expect_lt(abs(mean(z)), SIM_MOMENT_TOL[["mean"]])
        expect_lt(abs(var(z) - 1), SIM_MOMENT_TOL[["var"]])
        expect_true(all(unlist(s) > 0))
    }
    fit <- glmmfit(y ~ x + (1 | g), gamma_data, family = Gamma(link = "log"))
    pb <- parboot(fit, nsim = 3, seed = 1)
    ## each replicate is the fit of the simulated response
    s <- simulate(fit, nsim = 3, seed = 1)
    d <- gamma_data
    d$y <- s$sim_1
    expect_equal(unname(pb$t[1L, seq_along(fixef(fit))]),
                 unname(fixef(glmmfit(y ~ x + (1 | g), d, family = Gamma(link = "log")))), tolerance = 1e-6)
})

test_that("a model without fixed effects has an empty vcov and a summary", {
    fit <- glmmfit(y ~ 0 + (1 | g), gamma_data, family = Gamma(link = "log"))
    g <- tight_glmer(y ~ 0 + (1 | g), gamma_data, Gamma(link = "log"))
    expect_equal(dim(vcov(fit)), c(0L, 0L))
    expect_equal(dim(vcov(fit, use.hessian = FALSE)), c(0L, 0L))
    expect_equal(crit(fit), laplace_oracle(g, fit$theta, numeric(0)), tolerance = 1e-10)
    ## glmer's theta sits 2e-5 off here (the noise of its modes on a flat
    ## optimum): the oracle's own one-dimensional minimum is the reference
    best <- optimize(function(t) laplace_oracle(g, t, numeric(0)), c(0.5, 1.5), tol = 1e-9)
    expect_equal(unname(fit$theta), best$minimum, tolerance = 1e-5)
    expect_lte(crit(fit), laplace_oracle(g, getME(g, "theta"), numeric(0)) + 1e-10 * crit(fit))
    expect_output(print(summary(fit)), "Residual")
})
