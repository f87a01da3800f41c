## The negative binomial: the family with theta given against glmer with the
## same family (converged tightly), and theta estimated against glmer.nb.
skip_if_not_installed("lme4")
skip_if_not_installed("MASS")
suppressPackageStartupMessages(library(lme4))

set.seed(20261207)
nb_data <- data.frame(g = factor(rep(1:30, each = 20)), x = rnorm(600))
nb_data$y <- MASS::rnegbin(600, exp(1 + 0.5 * nb_data$x + rnorm(30, 0, 0.5)[nb_data$g]), theta = 2)
crit <- function(fit) -2 * as.numeric(logLik(fit))
tight <- glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-13,
                      optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-14, xtol_rel = 1e-14, maxeval = 1e5))

test_that("negative.binomial(theta) with theta given agrees with glmer", {
    fam <- MASS::negative.binomial(1.5)
    fit <- glmmfit(y ~ x + (1 | g), nb_data, family = fam)
    g <- suppressWarnings(glmer(y ~ x + (1 | g), nb_data, family = fam, control = tight))
    ref <- -2 * as.numeric(logLik(g))
    expect_lte(crit(fit), ref + 1e-6 * ref)
    expect_equal(crit(fit), ref, tolerance = 1e-8)
    expect_equal(unname(fixef(fit)), unname(fixef(g)), tolerance = 1e-5)
    expect_equal(unname(fit$theta), unname(getME(g, "theta")), tolerance = 1e-5)
    expect_equal(residuals(fit, type = "pearson"), residuals(g, type = "pearson"), tolerance = 1e-6)
})

test_that("glmmfit_nb() estimates theta as glmer.nb does, never worse", {
    fit <- glmmfit_nb(y ~ x + (1 | g), nb_data)
    g <- suppressWarnings(glmer.nb(y ~ x + (1 | g), nb_data, control = tight))
    expect_gte(as.numeric(logLik(fit)), as.numeric(logLik(g)) - 1e-6 * abs(as.numeric(logLik(g))))
    ## glmer.nb locates theta by optimize() at its default tolerance (~1e-5 relative here)
    th <- environment(family(fit)$variance)$.Theta
    expect_equal(th, getME(g, "glmer.nb.theta"), tolerance = 1e-4)
    expect_equal(unname(fixef(fit)), unname(fixef(g)), tolerance = 1e-4)
    expect_identical(attr(logLik(fit), "df"), attr(logLik(g), "df"))
    expect_equal(AIC(fit), AIC(g), tolerance = 1e-6)
    ## the profile over theta is at its minimum: neighbours are no lower
    for (f in c(0.99, 1.01))
        expect_gte(crit(glmmfit(y ~ x + (1 | g), nb_data, family = MASS::negative.binomial(th * f))),
                   crit(fit))
    expect_output(print(fit), sprintf("Negative Binomial\\(%.4f\\)", th))
    expect_error(glmmfit_nb(y ~ x + (1 | g), nb_data, family = poisson), "drop 'family'")
})
