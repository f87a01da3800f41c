## An lme4 user's script, run unchanged twice: once with lme4's lmer, once
## with lmer replaced by lmmfit.  Every number it produces must agree.

script <- quote({
    fm1 <- lmer(Reaction ~ Days + (Days | Subject), data = sleepstudy)
    fm2 <- lmer(Reaction ~ Days + (1 | Subject) + (0 + Days | Subject), data = sleepstudy)
    fm0 <- update(fm1, . ~ . - Days)
    fm1ML <- update(fm1, REML = FALSE)
    newd <- data.frame(Days = c(0, 4.5, 9), Subject = c("308", "335", "372"))
    list(
        fixef = fixef(fm1),
        se = sqrt(diag(as.matrix(vcov(fm1)))),
        sigma = sigma(fm1),
        varcorr = as.data.frame(VarCorr(fm1)),
        varcorr2 = as.data.frame(VarCorr(fm2)),
        ranef = as.matrix(ranef(fm1)$Subject),
        postvar = attr(ranef(fm1, condVar = TRUE)$Subject, "postVar"),
        ranef_long = as.data.frame(ranef(fm2)),
        coef = as.matrix(coef(fm1)$Subject),
        pred = predict(fm1, newdata = newd),
        pred_pop = predict(fm1, newdata = newd, re.form = NA),
        pred_int = predict(fm2, newdata = newd, re.form = ~(1 | Subject)),
        fitted = fitted(fm1),
        resid = residuals(fm1),
        lrt = suppressMessages(as.data.frame(anova(fm0, fm1, fm2))),
        ## lme4's table: anova() of one lmmfit fit gives lmerTest's F tests unless ddf = "lme4"
        ftab = as.data.frame(anova(fm1, ddf = "lme4")),
        wald = confint(fm1, method = "Wald"),
        loglik = c(logLik(fm1), logLik(fm1ML)),
        aic = AIC(fm1ML), bic = BIC(fm1ML),
        nobs = nobs(fm1),
        fixef0 = fixef(fm0)
    )
})

test_that("a vignette-sized lme4 script runs unchanged on lmmfit with the same numbers", {
    need_lme4()
    data(sleepstudy, package = "lme4")
    exact <- lme4::lmerControl(optimizer = "bobyqa", calc.derivs = FALSE,
                               optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
    env0 <- new.env()
    env0$sleepstudy <- sleepstudy
    ## lme4, run to its exact optimum; the call stays re-evaluable by update()
    env0$lmer <- function(formula, data, REML = TRUE) {
        m <- lme4::lmer(formula, data, REML = REML, control = exact)
        m@call <- match.call()
        m
    }
    ## lme4's anova() has no 'ddf' argument (lmerTest's has): the script's
    ## ddf = "lme4" is lmerTest's name for lme4's own table
    env0$anova <- function(object, ..., ddf = NULL) {
        cl <- match.call()       # re-evaluated, so that lme4 sees the models' names
        cl$ddf <- NULL
        cl[[1L]] <- quote(stats::anova)
        eval(cl, parent.frame())
    }
    env1 <- new.env()
    env1$sleepstudy <- sleepstudy
    env1$lmer <- lmmfit
    ref <- suppressMessages(eval(script, env0))
    out <- eval(script, env1)
    expect_identical(names(out), names(ref))
    for (nm in names(ref)) {
        tol <- if (nm %in% c("loglik", "aic", "bic", "fixef", "fixef0", "pred", "pred_pop",
                             "pred_int", "fitted", "sigma", "wald")) 1e-6 else 1e-5
        expect_equal(out[[nm]], ref[[nm]], tolerance = tol, ignore_attr = TRUE, label = nm)
    }
    ## names and layout, not only numbers
    expect_identical(names(out$fixef), names(ref$fixef))
    expect_identical(dimnames(out$wald), dimnames(ref$wald))
    expect_identical(dimnames(out$coef), dimnames(ref$coef))
    expect_identical(names(out$lrt), names(ref$lrt))
    expect_identical(rownames(out$lrt), rownames(ref$lrt))
    expect_identical(out$varcorr2$grp, ref$varcorr2$grp)
})
