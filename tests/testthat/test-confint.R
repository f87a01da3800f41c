## confint() against lme4, fitted in the same test.

lmer_exact <- function(...) {
    suppressMessages(lme4::lmer(..., control = lme4::lmerControl(
        optimizer = "bobyqa", calc.derivs = FALSE, optCtrl = list(rhoend = 1e-12, maxfun = 1e5))))
}

test_that("Wald intervals have lme4's layout and values", {
    need_lme4()
    data(sleepstudy, package = "lme4")
    for (f in list(Reaction ~ Days + (Days | Subject), Reaction ~ Days + (Days || Subject))) {
        fit <- lmmfit(f, sleepstudy)
        m <- lmer_exact(f, sleepstudy)
        ci <- confint(fit)
        ci0 <- confint(m, method = "Wald")
        expect_identical(dimnames(ci), dimnames(ci0))
        expect_true(all(is.na(ci[grep("^\\.sig", rownames(ci)), ])))
        expect_equal(ci, ci0, tolerance = 1e-6)
        expect_equal(confint(fit, method = "Wald", level = 0.9),
                     confint(m, method = "Wald", level = 0.9), tolerance = 1e-6)
        expect_equal(confint(fit, parm = "Days"), confint(m, parm = "Days", method = "Wald"),
                     tolerance = 1e-6)
        expect_equal(confint(fit, parm = "beta_"), confint(m, parm = "beta_", method = "Wald"),
                     tolerance = 1e-6)
        expect_equal(confint(fit, parm = c(1, 4)), confint(m, parm = c(1, 4), method = "Wald"),
                     tolerance = 1e-6)
    }
    expect_identical(rownames(confint(fit, parm = "theta_")), c(".sig01", ".sig02", ".sigma"))
    expect_error(confint(fit, parm = "nope"), "unknown parameter")
    expect_error(confint(fit, level = 2), "level")
})

test_that("profile intervals give a clear error while not implemented", {
    data(Orthodont, package = "nlme")
    fit <- lmmfit(distance ~ age + (1 | Subject), Orthodont)
    if (!exists("confint_profile", envir = asNamespace("lmmfit"), mode = "function", inherits = FALSE)) {
        expect_error(confint(fit, method = "profile"), "profile confidence intervals are not available")
    } else {
        expect_true(is.matrix(confint(fit, method = "profile")))
    }
})

test_that("method = 'boot' gives confint_boot's intervals", {
    data(Orthodont, package = "nlme")
    fit <- lmmfit(distance ~ age + (1 | Subject), Orthodont)
    set.seed(42)
    a <- confint(fit, parm = "age", level = 0.8, method = "boot", nsim = 20)
    set.seed(42)
    b <- lmmfit:::confint_boot(fit, "age", 0.8, nsim = 20)
    expect_identical(a, b)
    expect_identical(rownames(a), "age")
})
