## icc(): adjusted intraclass correlation, against lme4's variance components.

## sigma_j^2 / (sum of intercept variances + residual) from lme4.
icc_lme4 <- function(m) {
    vc <- as.data.frame(lme4::VarCorr(m))
    int <- vc[!is.na(vc$var1) & vc$var1 == "(Intercept)" & is.na(vc$var2), ]
    setNames(int$vcov, int$grp) / (sum(int$vcov) + vc$vcov[vc$grp == "Residual"])
}

test_that("seed 001: the ICC of y ~ x + (1 | p)", {
    need_lme4()
    data <- seed001_data()
    fit <- lmmfit(y ~ x + (1 | p), data = data)
    r <- icc(fit)
    expect_identical(names(r), "p")
    ## the variances printed in the seed
    expect_equal(unname(r), 36.8754 / (36.8754 + 0.00807), tolerance = 1e-4)
    ref <- lme4::lmer(y ~ x + (1 | p), data = data)
    expect_equal(r, icc_lme4(ref), tolerance = 1e-6)
})

test_that("several grouping factors: each intercept variance over the total", {
    need_lme4()
    data(Penicillin, package = "lme4", envir = environment())
    fit <- lmmfit(diameter ~ 1 + (1 | plate) + (1 | sample), data = Penicillin)
    ## The REML criterion is flat in the sample variance (6 levels): lme4's
    ## default stopping rule leaves its estimate 3e-5 (relative) off the
    ## optimum, so the oracle is lme4 run to a tight tolerance.
    ref <- lme4::lmer(diameter ~ 1 + (1 | plate) + (1 | sample), data = Penicillin,
                      control = lme4::lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10)))
    expect_equal(deviance(fit), lme4_objective(ref), tolerance = 1e-9)
    r <- icc(fit)
    expect_setequal(names(r), c("plate", "sample"))
    expect_equal(r[c("plate", "sample")], icc_lme4(ref)[c("plate", "sample")], tolerance = 1e-5)
    ## by hand from lme4's variances
    v <- as.data.frame(lme4::VarCorr(ref))$vcov
    expect_equal(unname(r["plate"]), v[1] / sum(v), tolerance = 1e-5)
})

test_that("random slopes: the ICC where the covariates are zero (intercept variance)", {
    need_lme4()
    data(sleepstudy, package = "lme4", envir = environment())
    fit <- lmmfit(Reaction ~ Days + (Days | Subject), data = sleepstudy)
    ref <- lme4::lmer(Reaction ~ Days + (Days | Subject), data = sleepstudy)
    vc <- lme4::VarCorr(ref)
    s00 <- vc$Subject["(Intercept)", "(Intercept)"]
    expect_equal(unname(icc(fit)), s00 / (s00 + sigma(ref)^2), tolerance = 1e-5)
    ## uncorrelated terms: the slope-only term contributes nothing at Days = 0
    fit2 <- lmmfit(Reaction ~ Days + (Days || Subject), data = sleepstudy)
    ref2 <- lme4::lmer(Reaction ~ Days + (Days || Subject), data = sleepstudy)
    expect_equal(unname(icc(fit2)), unname(icc_lme4(ref2)), tolerance = 1e-5)
    expect_length(icc(fit2), 1L)
})

test_that("icc() without a random intercept, or on another object, is an error", {
    data(sleepstudy, package = "lme4", envir = environment())
    fit <- lmmfit(Reaction ~ Days + (0 + Days | Subject), data = sleepstudy)
    expect_error(icc(fit), "needs a random intercept")
    ## other models go to performance::icc (so lmmfit's icc masks nothing)
    l <- lm(Reaction ~ Days, data = sleepstudy)
    if (requireNamespace("performance", quietly = TRUE)) {
        expect_identical(suppressWarnings(icc(l)), suppressWarnings(performance::icc(l)))
    } else {
        expect_error(icc(l), "package 'performance', which is not installed")
    }
    expect_error(icc(fit, by_group = TRUE), "'by_group'")
})
