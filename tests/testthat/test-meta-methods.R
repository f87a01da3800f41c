## The accessors of a meta-analysis against metafor's.

test_that("predict gives rma's prediction and its intervals", {
    dat <- bcg_rr()
    for (test in c("z", "knha")) {
        a <- metafit(yi ~ ablat + (1 | trial), vi = vi, data = dat, test = test)
        b <- metafor::rma(yi, vi, mods = ~ ablat, data = dat, test = test, control = RMA_TIGHT)
        pa <- predict(a, newmods = c(10, 30, 50))
        pb <- as.data.frame(predict(b, newmods = c(10, 30, 50)))
        for (v in c("pred", "se", "ci.lb", "ci.ub", "pi.lb", "pi.ub")) expect_rel(pa[[v]], pb[[v]], info = v)
        pt <- predict(a, newmods = 30, transf = exp)
        expect_rel(pt$pred, exp(pa$pred[2]))
        expect_rel(predict(a, newdata = data.frame(ablat = c(10, 30, 50)))$pred, pa$pred)
    }
    a0 <- metafit(yi ~ 1 + (1 | trial), vi = vi, data = dat)
    p0 <- predict(a0)
    ## the published BCG prediction interval
    expect_equal(round(c(p0$pi.lb, p0$pi.ub), 4), c(-1.8667, 0.4376))
    expect_error(predict(a0, newmods = 1:2), "must have 0 columns")
})

test_that("ranef gives rma's BLUPs, and the weights compress under the random-effects model", {
    dat <- bcg_rr()
    a <- metafit(yi ~ ablat + (1 | trial), vi = vi, data = dat)
    b <- metafor::rma(yi, vi, mods = ~ ablat, data = dat, control = RMA_TIGHT)
    ra <- ranef(a); rb <- as.data.frame(metafor::ranef(b))
    for (v in c("pred", "se", "pi.lb", "pi.ub")) expect_rel(ra[[v]], rb[[v]], info = v)
    expect_rel(weights(a), weights(b))
    w <- meta_weights(a)
    expect_rel(w$common, weights(metafor::rma(yi, vi, mods = ~ ablat, data = dat, method = "FE")))
    ## the seed's point: the largest study weighs less, the smallest more
    expect_lt(max(w$random), max(w$common))
    expect_gt(min(w$random), min(w$common))
    expect_error(ranef(metafit(yi ~ ablat, vi = vi, data = dat)), "no random effects")
})

test_that("a multilevel fit's BLUPs agree with rma.mv's", {
    dat <- meta_dat("dat.konstantopoulos2011")
    a <- metafit(yi ~ 1 + (1 | district/school), vi = vi, data = dat)
    b <- metafor::rma.mv(yi, vi, random = ~ 1 | district/school, data = dat, control = RMA_MV_TIGHT)
    ra <- ranef(a); rb <- metafor::ranef(b)
    expect_rel(ra$district[, 1], rb$district$intrcpt, tol = 1e-5)
    ## (the levels are named and ordered differently: compare the sets)
    expect_rel(sort(ra[["school:district"]][, 1]), sort(rb[["district/school"]]$intrcpt), tol = 1e-5)
})

test_that("confint gives the Q-profile intervals of tau^2, tau, I^2 and H^2", {
    dat <- bcg_rr()
    for (mods in c(FALSE, TRUE)) {
        a <- metafit(if (mods) yi ~ ablat + (1 | trial) else yi ~ 1 + (1 | trial), vi = vi, data = dat)
        b <- if (mods) metafor::rma(yi, vi, mods = ~ ablat, data = dat, control = RMA_TIGHT)
             else metafor::rma(yi, vi, data = dat, control = RMA_TIGHT)
        ca <- confint(a)
        cb <- confint(b, control = list(tol = 1e-13))
        expect_rel(ca$random, cb$random)
        expect_rel(ca$fixed[, "ci.lb"], b$ci.lb)
    }
    ## the published interval of the BCG tau^2
    ci <- confint(metafit(yi ~ 1 + (1 | trial), vi = vi, data = dat))$random
    expect_equal(round(ci["tau^2", c("ci.lb", "ci.ub")], 4), c(ci.lb = 0.1197, ci.ub = 1.1115))
})

test_that("anova is rma's likelihood-ratio test between nested meta-regressions", {
    dat <- bcg_rr()
    a1 <- metafit(yi ~ ablat + (1 | trial), vi = vi, data = dat, method = "ML")
    a0 <- metafit(yi ~ 1 + (1 | trial), vi = vi, data = dat, method = "ML")
    b1 <- metafor::rma(yi, vi, mods = ~ ablat, data = dat, method = "ML", control = RMA_TIGHT)
    b0 <- metafor::rma(yi, vi, data = dat, method = "ML", control = RMA_TIGHT)
    av <- anova(a1, a0)
    bv <- metafor::anova.rma(b1, b0)
    expect_rel(av$LRT[2], bv$LRT)
    expect_rel(av$pval[2], bv$pval)
    expect_rel(av$AIC[1], bv$fit.stats.f["AIC"])
    expect_rel(av$AIC[2], bv$fit.stats.r["AIC"])
    expect_identical(anova(a0, a1)$LRT, av$LRT)
    r1 <- metafit(yi ~ ablat + (1 | trial), vi = vi, data = dat)
    r0 <- metafit(yi ~ 1 + (1 | trial), vi = vi, data = dat)
    expect_error(anova(r1, r0), "REML likelihoods")
    expect_error(anova(a1), "two metafit fits")
})

test_that("leave1out and influence agree with metafor's", {
    dat <- bcg_rr()
    a <- metafit(yi ~ 1 + (1 | trial), vi = vi, data = dat)
    b <- metafor::rma(yi, vi, data = dat, control = RMA_TIGHT)
    la <- leave1out(a); lb <- as.data.frame(metafor::leave1out(b))
    for (v in c("estimate", "se", "pval", "ci.lb", "ci.ub", "Q", "Qp", "tau2", "I2", "H2"))
        expect_rel(la[[v]], lb[[v]], info = v)
    am <- metafit(yi ~ ablat + (1 | trial), vi = vi, data = dat)
    bm <- metafor::rma(yi, vi, mods = ~ ablat, data = dat, control = RMA_TIGHT)
    ia <- influence(am); ib <- stats::influence(bm)
    inf <- as.data.frame(ib$inf)
    for (v in c("rstudent", "dffits", "cook.d", "cov.r", "tau2.del", "QE.del", "hat", "weight"))
        expect_rel(ia[[v]], inf[[v]], tol = 1e-5, info = v)
    expect_rel(as.matrix(ia[c("dfbs.intrcpt", "dfbs.ablat")]), as.matrix(as.data.frame(ib$dfbs)), tol = 1e-5)
    dm <- meta_dat("dat.konstantopoulos2011")
    expect_error(leave1out(metafit(yi ~ 1 + (1 | district/school), vi = vi, data = dm)),
                 "one random effect per study")
})

test_that("print shows what rma prints", {
    dat <- bcg_rr()
    out <- capture.output(print(metafit(yi ~ 1 + (1 | trial), vi = vi, data = dat)))
    expect_true(any(grepl("Random-Effects Model (k = 13; tau^2 estimator: REML)", out, fixed = TRUE)))
    expect_true(any(grepl("0.3132 (SE = 0.1664)", out, fixed = TRUE)))
    expect_true(any(grepl("Q(df = 12) = 152.2330, p-val < .0001", out, fixed = TRUE)))
    expect_true(any(grepl("-0.7145 0.1798 -3.9744", out, fixed = TRUE)))
    s <- capture.output(summary(metafit(yi ~ ablat + (1 | trial), vi = vi, data = dat, test = "knha")))
    expect_true(any(grepl("F(df1 = 1, df2 = 11) = 12.59", s, fixed = TRUE)))
    expect_true(any(grepl("-12.2024", s, fixed = TRUE)) || any(grepl("-8.0873", s, fixed = TRUE)))
    dm <- meta_dat("dat.konstantopoulos2011")
    m <- capture.output(print(metafit(yi ~ 1 + (1 | district/school), vi = vi, data = dm)))
    expect_true(any(grepl("Multivariate Meta-Analysis Model (k = 56; method: REML)", m, fixed = TRUE)))
    expect_true(any(grepl("0.06506", m, fixed = TRUE)))
})

test_that("tidy and glance follow broom's conventions", {
    dat <- bcg_rr()
    a <- metafit(yi ~ ablat + (1 | trial), vi = vi, data = dat)
    td <- tidy.metafit(a, conf.int = TRUE)
    expect_identical(td$term, c("intrcpt", "ablat"))
    expect_rel(td$conf.low, a$coef_table$ci.lb)
    gl <- glance.metafit(a)
    expect_rel(gl$tau2, a$tau2)
    expect_rel(gl$AIC, AIC(a))
    expect_rel(AIC(a), metafor::fitstats(metafor::rma(yi, vi, mods = ~ ablat, data = dat,
                                                        control = RMA_TIGHT))["AIC:", 1])
})
