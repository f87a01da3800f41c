## anova() of one model: lmerTest's F tests with summary()'s df method, and
## summary() naming that method.
##
## The reference is lmerTest's anova of the same model at the same estimates
## (lmerTest::as_lmerModLmerTest(as_lmerMod(fit))), so that only the df
## computations differ, not the optimum.  Sums of squares and F values are
## then exact functions of the same parameters (1e-6 relative); Satterthwaite's
## denominator df are derivatives taken by finite differences, lmmfit's in C
## and lmerTest's with numDeriv, which agree only to ~1e-5, hence the wider
## tolerance for DenDF and the p-values computed from them.
ANOVA_TOL <- 1e-6
ANOVA_DF_TOL <- 2e-5

anova_data <- local({
    set.seed(11)
    cr <- expand.grid(subj = factor(1:14), item = factor(1:9))
    cr$grp <- factor(c("a", "b", "c")[as.integer(cr$subj) %% 3 + 1])
    cr$x <- rnorm(nrow(cr))
    cr$y <- 1 + 0.4 * cr$x + c(a = 0, b = 0.5, c = -0.2)[as.character(cr$grp)] +
        0.3 * cr$x * (cr$grp == "b") + rnorm(14, sd = 0.7)[cr$subj] + rnorm(9, sd = 0.5)[cr$item] +
        rnorm(nrow(cr))
    cr[-sample(nrow(cr), 13), ]
})

anova_models <- list(
    sleep = list(formula = Reaction ~ Days + (Days | Subject), data = quote(lme4::sleepstudy)),
    crossed = list(formula = y ~ x * grp + (1 | subj) + (1 | item), data = quote(anova_data)),
    orthodont = list(formula = distance ~ age * Sex + (age | Subject), data = quote(orth)))

orth <- local({
    data(Orthodont, package = "nlme", envir = environment())
    d <- as.data.frame(Orthodont)
    d$Subject <- factor(d$Subject, ordered = FALSE)
    d
})

expect_anova_as_lmerTest <- function(ours, ref, info, df_tol = ANOVA_DF_TOL) {
    expect_s3_class(ours, "anova")
    expect_identical(names(ours), c("Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"), info = info)
    expect_identical(names(ours), names(ref), info = info)
    expect_identical(rownames(ours), rownames(ref), info = info)
    expect_identical(attr(ours, "heading"), attr(ref, "heading"), info = info)
    for (col in c("Sum Sq", "Mean Sq", "F value"))
        expect_equal(ours[[col]], ref[[col]], tolerance = ANOVA_TOL, info = paste(info, col))
    expect_equal(ours$NumDF, ref$NumDF, info = info)
    expect_equal(ours$DenDF, ref$DenDF, tolerance = df_tol, info = paste(info, "DenDF"))
    expect_equal(ours[["Pr(>F)"]], ref[["Pr(>F)"]], tolerance = df_tol, info = paste(info, "Pr(>F)"))
}

test_that("anova(fit) of one model: lmerTest's type III Satterthwaite table by default", {
    need_lme4(); need("lmerTest"); need("pbkrtest")
    for (nm in names(anova_models)) for (REML in c(TRUE, FALSE)) {
        spec <- anova_models[[nm]]
        fit <- eval(bquote(lmmfit(.(spec$formula), data = .(spec$data), REML = .(REML))))
        ref_fit <- lmerTest::as_lmerModLmerTest(as_lmerMod(fit))
        info <- paste(nm, "REML =", REML)
        expect_anova_as_lmerTest(anova(fit), anova(ref_fit), paste(info, "default"))
        expect_anova_as_lmerTest(anova(fit, type = 1), anova(ref_fit, type = 1), paste(info, "type 1"))
        if (REML)
            expect_anova_as_lmerTest(anova(fit, ddf = "Kenward-Roger"), anova(ref_fit, ddf = "Kenward-Roger"),
                                     paste(info, "Kenward-Roger"))
        ## ddf = "lme4": lme4's own table, as lmerTest's anova(ddf = "lme4")
        ours <- anova(fit, ddf = "lme4")
        ref <- anova(ref_fit, ddf = "lme4")
        expect_identical(names(ours), names(ref), info = info)
        expect_identical(rownames(ours), rownames(ref), info = info)
        for (col in c("Sum Sq", "Mean Sq", "F value"))
            expect_equal(ours[[col]], ref[[col]], tolerance = ANOVA_TOL, info = paste(info, "lme4", col))
        expect_identical(anova(fit, ddf = "none"), ours)
    }
})

test_that("anova(fit) uses summary()'s df method; summary() says which", {
    need_lme4()
    data(sleepstudy, package = "lme4")
    fit <- lmmfit(Reaction ~ Days + (Days | Subject), sleepstudy)
    ## a one-df term: its F test is the t-test of summary(), squared
    a <- anova(fit)
    ct <- coef(summary(fit))
    expect_equal(a["Days", "DenDF"], ct["Days", "df"], tolerance = 1e-10)
    expect_equal(a["Days", "F value"], ct["Days", "t value"]^2, tolerance = 1e-10)
    expect_equal(a["Days", "Pr(>F)"], ct["Days", "Pr(>|t|)"], tolerance = 1e-8)
    ak <- anova(fit, ddf = "Kenward-Roger")
    ck <- coef(summary(fit, ddf = "Kenward-Roger"))
    expect_equal(ak["Days", "DenDF"], ck["Days", "df"], tolerance = 1e-8)
    ## the printed title names the method, as lmerTest's does
    out <- capture.output(summary(fit))
    expect_identical(out[1L], "Linear mixed model fit by REML. t-tests use Satterthwaite's method ['lmmfit']")
    out <- capture.output(summary(fit, ddf = "Kenward-Roger"))
    expect_identical(out[1L], "Linear mixed model fit by REML. t-tests use Kenward-Roger's method ['lmmfit']")
    out <- capture.output(summary(lmmfit(Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE)))
    expect_identical(out[1L],
                     "Linear mixed model fit by maximum likelihood . t-tests use Satterthwaite's method ['lmmfit']")
    for (d in c("none", "lme4")) {
        out <- capture.output(summary(fit, ddf = d))
        expect_identical(out[1L], "Linear mixed model fit by REML ['lmmfit']")
        expect_false(any(grepl("t-tests use", out)))
        expect_false("df" %in% colnames(coef(summary(fit, ddf = d))))
    }
    ## lmerTest's words, where lmerTest is there to ask
    if (requireNamespace("lmerTest", quietly = TRUE)) {
        ref <- capture.output(summary(lmerTest::as_lmerModLmerTest(as_lmerMod(fit))))
        expect_true(any(grepl("t-tests use Satterthwaite's method", ref, fixed = TRUE)))
        ## the anova table prints in lmerTest's layout: heading and column header
        pa <- capture.output(print(anova(fit)))
        pr <- capture.output(print(anova(lmerTest::as_lmerModLmerTest(as_lmerMod(fit)))))
        expect_identical(pa[1:2], pr[1:2])
    }
})

test_that("anova(fit) falls back to lme4's table where the F tests are not available", {
    data(sleepstudy, package = "lme4")
    d <- sleepstudy
    d$Days2 <- 2 * d$Days
    ## aliased columns dropped
    fit <- suppressMessages(lmmfit(Reaction ~ Days + Days2 + (1 | Subject), d))
    a <- anova(fit)
    expect_identical(names(a), c("npar", "Sum Sq", "Mean Sq", "F value"))
    expect_identical(a, anova(fit, ddf = "lme4"))
    ## a residual correlation structure
    d$time <- d$Days
    fa <- lmmfit(Reaction ~ Days + (1 | Subject), d, correlation = ar1(~ time | Subject))
    expect_identical(names(anova(fa)), c("npar", "Sum Sq", "Mean Sq", "F value"))
    expect_error(anova(fit, ddf = 1), "'ddf' must be")
})
