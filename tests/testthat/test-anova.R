## anova() against lme4, fitted in the same test.

lmer_exact <- function(...) {
    suppressMessages(lme4::lmer(..., control = lme4::lmerControl(
        optimizer = "bobyqa", calc.derivs = FALSE, optCtrl = list(rhoend = 1e-12, maxfun = 1e5))))
}

test_that("anova(ddf = \"lme4\") of one model: the sequential F table of lme4", {
    need_lme4()
    data(Orthodont, package = "nlme")
    d <- as.data.frame(Orthodont)
    d$Subject <- factor(d$Subject, ordered = FALSE)
    set.seed(5)
    d$g3 <- factor(sample(letters[1:3], nrow(d), replace = TRUE))
    f <- distance ~ age * Sex + g3 + (age | Subject)
    fit <- lmmfit(f, d)
    m <- lmer_exact(f, d)
    ## The REML criterion is flat here: at lme4's exact theta and at ours it
    ## agrees to 2e-11 while theta differs by 4e-6, which moves Sum Sq by
    ## ~1e-6.  So the table itself is checked at lme4's theta (to 1e-8), and
    ## the table at our optimum to what the criterion determines (1e-5).
    sol <- .Call(lmmfit:::C_lmm_solution, fit$xprod, unname(lme4::getME(m, "theta")), TRUE, NULL)
    expect_lte(abs(fit$deviance_value - sol$deviance), 1e-9)
    at <- fit
    at$theta[] <- lme4::getME(m, "theta")
    at$beta[] <- sol$beta
    at$RX <- sol$RX
    at$pwrss <- sol$pwrss
    a <- anova(at, ddf = "lme4")
    a0 <- anova(m)
    expect_s3_class(a, "anova")
    expect_identical(dimnames(a), dimnames(a0))
    expect_equal(a$npar, a0$npar)
    for (col in c("Sum Sq", "Mean Sq", "F value"))
        expect_equal(a[[col]], a0[[col]], tolerance = 1e-8, label = col)
    a <- anova(fit, ddf = "lme4")
    for (col in c("Sum Sq", "Mean Sq", "F value"))
        expect_equal(a[[col]], a0[[col]], tolerance = 1e-5, label = col)
    expect_identical(attr(a, "heading"), attr(a0, "heading"))
    ## ML fit too: the same flatness, so the same two checks.
    fit <- lmmfit(f, d, REML = FALSE)
    m <- lmer_exact(f, d, REML = FALSE)
    sol <- .Call(lmmfit:::C_lmm_solution, fit$xprod, unname(lme4::getME(m, "theta")), FALSE, NULL)
    expect_lte(abs(fit$deviance_value - sol$deviance), 1e-9)
    at <- fit
    at$theta[] <- lme4::getME(m, "theta")
    at$beta[] <- sol$beta
    at$RX <- sol$RX
    at$pwrss <- sol$pwrss
    expect_equal(anova(at, ddf = "lme4")[["F value"]], anova(m)[["F value"]], tolerance = 1e-8)
    expect_equal(anova(fit, ddf = "lme4")[["F value"]], anova(m)[["F value"]], tolerance = 1e-5)
})

test_that("anova of several models: LRT table, REML refitted by ML with a message", {
    need_lme4()
    data(sleepstudy, package = "lme4")
    fit1 <- lmmfit(Reaction ~ Days + (Days | Subject), sleepstudy)
    fit0 <- lmmfit(Reaction ~ Days + (1 | Subject), sleepstudy)
    fitn <- lmmfit(Reaction ~ 1 + (1 | Subject), sleepstudy)
    m1 <- lmer_exact(Reaction ~ Days + (Days | Subject), sleepstudy)
    m0 <- lmer_exact(Reaction ~ Days + (1 | Subject), sleepstudy)
    mn <- lmer_exact(Reaction ~ 1 + (1 | Subject), sleepstudy)
    ## given out of order: sorted by npar, named after the arguments
    expect_message(a <- anova(fit1, fitn, fit0), "refitting model\\(s\\) with ML \\(instead of REML\\)")
    a0 <- suppressMessages(anova(m1, mn, m0))
    expect_identical(rownames(a), c("fitn", "fit0", "fit1"))
    expect_identical(names(a), names(a0))
    expect_equal(a$npar, a0$npar)
    expect_equal(a$Df, a0$Df)
    for (col in c("AIC", "BIC", "logLik", "deviance"))
        expect_equal(a[[col]], a0[[col]], tolerance = 1e-8, label = col)
    expect_equal(a$Chisq, a0$Chisq, tolerance = 1e-6)
    expect_equal(a[["Pr(>Chisq)"]], a0[["Pr(>Chisq)"]], tolerance = 1e-5)
    ## ML deviances: equal to separate ML fits
    expect_equal(a$deviance[3], deviance(update(fit1, REML = FALSE)), tolerance = 1e-8)
    expect_output(print(a), "Models:")
    ## ML fits: no refit, no message
    f1 <- lmmfit(Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE)
    f0 <- lmmfit(Reaction ~ Days + (1 | Subject), sleepstudy, REML = FALSE)
    expect_silent(a2 <- anova(f0, f1))
    expect_equal(a2$Chisq, c(NA, a0$Chisq[3]), tolerance = 1e-6)
    ## different data: an error
    f2 <- lmmfit(Reaction ~ Days + (1 | Subject), sleepstudy, subset = Days > 0)
    expect_error(anova(fit0, f2), "same observations")
})
