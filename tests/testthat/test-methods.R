## fitted, residuals, update, model parts, VarCorr table, broom tidiers:
## against lme4, fitted in the same test.

lmer_exact <- function(...) {
    suppressMessages(lme4::lmer(..., control = lme4::lmerControl(
        optimizer = "bobyqa", calc.derivs = FALSE, optCtrl = list(rhoend = 1e-12, maxfun = 1e5))))
}
exact_ctrl <- function() lme4::lmerControl(optimizer = "bobyqa", calc.derivs = FALSE,
                                           optCtrl = list(rhoend = 1e-12, maxfun = 1e5))

test_that("fitted and residuals of every type match lme4, with weights", {
    need_lme4()
    data(sleepstudy, package = "lme4")
    d <- sleepstudy
    set.seed(9)
    d$w <- runif(nrow(d), 0.5, 2)
    fit <- lmmfit(Reaction ~ Days + (Days | Subject), d, weights = w)
    m <- lme4::lmer(Reaction ~ Days + (Days | Subject), d, weights = w, control = exact_ctrl())
    expect_equal(fitted(fit), fitted(m), tolerance = 1e-7)
    for (type in c("response", "pearson", "working", "deviance")) for (sc in c(FALSE, TRUE))
        expect_equal(residuals(fit, type = type, scaled = sc), residuals(m, type = type, scaled = sc),
                     tolerance = 1e-6, label = paste(type, sc))
    expect_false(isTRUE(all.equal(residuals(fit, type = "pearson"), residuals(fit))))
})

test_that("update refits with new arguments and formulas", {
    need_lme4()
    data(sleepstudy, package = "lme4")
    d <- sleepstudy
    d$x <- sin(seq_len(nrow(d)))
    ## tight convergence: with the default factr = 1e5 this REML fit stops with
    ## max|grad| 2.8e-3 and a convergence warning (reported to the core's owner)
    fit <- lmmfit(Reaction ~ Days + x + (Days | Subject), data = d,
                  control = lmmfit_control(factr = 10))
    ml <- update(fit, REML = FALSE)
    m_ml <- lmer_exact(Reaction ~ Days + x + (Days | Subject), data = d, REML = FALSE)
    expect_false(ml$REML)
    expect_equal(deviance(ml), deviance(m_ml), tolerance = 1e-8)
    red <- update(fit, . ~ . - x)
    m_red <- lmer_exact(Reaction ~ Days + (Days | Subject), data = d)
    expect_identical(names(fixef(red)), c("(Intercept)", "Days"))
    expect_equal(red$deviance_value, lme4::REMLcrit(m_red), tolerance = 1e-8)
    expect_equal(fixef(red), fixef(m_red), tolerance = 1e-6)
    ## a formula passed as a variable
    form <- Reaction ~ Days + x + (1 | Subject)
    f2 <- lmmfit(form, data = d)
    expect_identical(names(fixef(update(f2, . ~ . - x))), c("(Intercept)", "Days"))
})

test_that("model.frame, model.matrix and terms match lme4", {
    need_lme4()
    data(Orthodont, package = "nlme")
    d <- as.data.frame(Orthodont)
    f <- distance ~ age * Sex + (age | Subject)
    fit <- lmmfit(f, d)
    m <- lmer_exact(f, d)
    mf <- model.frame(fit)
    mf0 <- model.frame(m)
    expect_identical(names(mf), names(mf0))
    for (v in names(mf0)) expect_equal(mf[[v]], mf0[[v]], ignore_attr = TRUE)
    expect_equal(model.matrix(fit), model.matrix(m), ignore_attr = TRUE)
    expect_identical(colnames(model.matrix(fit)), colnames(model.matrix(m)))
    expect_identical(attr(terms(fit), "term.labels"), attr(terms(m), "term.labels"))
    expect_equal(model.matrix(fit, type = "random"), as.matrix(model.matrix(m, type = "random")),
                 ignore_attr = TRUE)
})

test_that("as.data.frame(VarCorr) matches lme4, correlated and || terms", {
    need_lme4()
    data(sleepstudy, package = "lme4")
    data(Penicillin, package = "lme4")
    cases <- list(list(Reaction ~ Days + (Days | Subject), sleepstudy),
                  list(Reaction ~ Days + (Days || Subject), sleepstudy),
                  list(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin))
    for (cs in cases) {
        fit <- lmmfit(cs[[1]], cs[[2]])
        m <- lmer_exact(cs[[1]], cs[[2]])
        v <- as.data.frame(VarCorr(fit))
        v0 <- as.data.frame(lme4::VarCorr(m))
        expect_identical(names(v), names(v0))
        for (col in c("grp", "var1", "var2")) expect_identical(v[[col]], v0[[col]], label = col)
        expect_equal(v$vcov, v0$vcov, tolerance = 1e-5)
        expect_equal(v$sdcor, v0$sdcor, tolerance = 1e-5)
    }
    expect_identical(v0$grp[1:2], c("plate", "sample"))
})

test_that("tidy, glance and augment work without broom and agree with the fit", {
    need_lme4()
    data(sleepstudy, package = "lme4")
    fit <- lmmfit(Reaction ~ Days + (Days | Subject), sleepstudy)
    m <- lmer_exact(Reaction ~ Days + (Days | Subject), sleepstudy)
    td <- lmmfit:::tidy.lmmfit(fit, conf.int = TRUE, ddf.method = "lme4")
    fx <- td[td$effect == "fixed", ]
    expect_equal(fx$estimate, unname(lme4::fixef(m)), tolerance = 1e-6)
    expect_equal(fx$std.error, unname(sqrt(diag(as.matrix(vcov(m))))), tolerance = 1e-5)
    expect_equal(fx$conf.low, unname(confint(m, method = "Wald")[c("(Intercept)", "Days"), 1]),
                 tolerance = 1e-6)
    rp <- td[td$effect == "ran_pars", ]
    expect_identical(rp$term, c("sd__(Intercept)", "sd__Days", "cor__(Intercept).Days", "sd__Observation"))
    expect_equal(rp$estimate, as.data.frame(lme4::VarCorr(m))$sdcor, tolerance = 1e-5)
    gl <- lmmfit:::glance.lmmfit(fit)
    expect_equal(gl$logLik, as.numeric(logLik(m)), tolerance = 1e-8)
    expect_equal(gl$AIC, AIC(m), tolerance = 1e-8)
    expect_equal(gl$BIC, BIC(m), tolerance = 1e-8)
    expect_equal(gl$REMLcrit, lme4::REMLcrit(m), tolerance = 1e-8)
    expect_equal(gl$deviance, deviance(m, REML = FALSE), tolerance = 1e-8)
    au <- lmmfit:::augment.lmmfit(fit)
    expect_equal(au$.fitted, unname(fitted(m)), tolerance = 1e-7)
    expect_equal(au$.resid, unname(residuals(m)), tolerance = 1e-6)
    expect_equal(au$.fixed, unname(predict(m, re.form = NA)), tolerance = 1e-7)
    au2 <- lmmfit:::augment.lmmfit(fit, newdata = sleepstudy[1:3, ])
    expect_equal(au2$.fitted, au$.fitted[1:3])
})

test_that("the tidiers are registered with generics (broom) on load", {
    need("broom")
    data(Orthodont, package = "nlme")
    fit <- lmmfit(distance ~ age + (1 | Subject), Orthodont)
    expect_identical(broom::tidy(fit), lmmfit:::tidy.lmmfit(fit))
    expect_identical(broom::glance(fit), lmmfit:::glance.lmmfit(fit))
    expect_identical(broom::augment(fit), lmmfit:::augment.lmmfit(fit))
})
