## Other packages' methods on a glmmfit fit against the same methods on a
## glmer fit converged tightly.
skip_if_not_installed("lme4")
suppressPackageStartupMessages(library(lme4))
data(cbpp, package = "lme4")
ext_formula <- cbind(incidence, size - incidence) ~ period + (1 | herd)
ext_fit <- glmmfit(ext_formula, cbpp, family = binomial)
ext_glmer <- suppressWarnings(glmer(ext_formula, cbpp, family = binomial,
                                    control = glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-13,
                                                           optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-14,
                                                                          xtol_rel = 1e-14, maxeval = 1e5))))

test_that("emmeans on the link and the response scales agree with glmer's", {
    skip_if_not_installed("emmeans")
    for (type in c("link", "response")) {
        a <- as.data.frame(summary(emmeans::emmeans(ext_fit, ~ period, type = type)))
        b <- as.data.frame(summary(emmeans::emmeans(ext_glmer, ~ period, type = type)))
        expect_equal(a[[2L]], b[[2L]], tolerance = 1e-5)
        expect_equal(a$SE, b$SE, tolerance = 2e-3)   # Hessian-based vcov (test-glmm-fit.R)
        expect_true(all(is.infinite(a$df)))
    }
})

test_that("car::Anova gives glmer's Wald chi-square tests", {
    skip_if_not_installed("car")
    a <- car::Anova(ext_fit)
    b <- car::Anova(ext_glmer)
    expect_equal(a$Chisq, b$Chisq, tolerance = 4e-3)
    expect_identical(a$Df, b$Df)
    expect_equal(car::Anova(ext_fit, vcov. = vcov(ext_fit, use.hessian = FALSE))$Chisq,
                 car::Anova(ext_glmer, vcov. = suppressWarnings(vcov(ext_glmer, use.hessian = FALSE)))$Chisq,
                 tolerance = 1e-5)
    expect_error(car::Anova(ext_fit, test.statistic = "F"), "Wald chi-square tests only")
})

test_that("tidy and glance follow broom.mixed", {
    skip_if_not_installed("broom.mixed")
    a <- generics::tidy(ext_fit, conf.int = TRUE)
    b <- as.data.frame(broom.mixed::tidy(ext_glmer, conf.int = TRUE))
    expect_identical(a$term, b$term)
    expect_identical(a$effect, b$effect)
    expect_equal(a$estimate, b$estimate, tolerance = 1e-5)
    expect_equal(a$std.error[1:4], b$std.error[1:4], tolerance = 2e-3)
    ga <- generics::glance(ext_fit)
    gb <- broom.mixed::glance(ext_glmer)
    for (cn in c("nobs", "logLik", "AIC", "BIC", "deviance", "df.residual"))
        expect_equal(ga[[cn]], as.numeric(gb[[cn]]), tolerance = 1e-6, info = cn)
    au <- generics::augment(ext_fit)
    expect_equal(au$.mu, unname(fitted(ext_glmer)), tolerance = 1e-6)
})
