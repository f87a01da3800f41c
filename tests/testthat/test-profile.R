## Profile-likelihood intervals against lme4's confint(method = "profile").

test_that("profile intervals match lme4 on sleepstudy (sd, correlation, sigma, fixed)", {
    need_lme4()
    fit <- lmmfit(Reaction ~ Days + (Days | Subject), lme4::sleepstudy)
    ci <- confint_profile(fit)
    lprof <- profile(lme4::lmer(Reaction ~ Days + (Days | Subject), lme4::sleepstudy))
    ref <- confint(lprof)
    expect_equal(dimnames(ci), dimnames(ref))
    expect_equal(ci, ref, tolerance = 1e-3)
    ## a subset and another level
    ci90 <- confint_profile(fit, parm = c(".sigma", "Days"), level = 0.9)
    ref90 <- confint(lprof, parm = c(".sigma", "Days"), level = 0.9)
    expect_equal(ci90, ref90, tolerance = 1e-3)
})

test_that("profile intervals match lme4 on Dyestuff and give lower limit 0 on Dyestuff2", {
    need_lme4()
    for (d in c("Dyestuff", "Dyestuff2")) {
        dat <- switch(d, Dyestuff = lme4::Dyestuff, Dyestuff2 = lme4::Dyestuff2)
        fit <- suppressMessages(lmmfit(Yield ~ 1 + (1 | Batch), dat))
        ci <- confint_profile(fit)
        ref <- suppressMessages(confint(lme4::lmer(Yield ~ 1 + (1 | Batch), dat), method = "profile"))
        expect_equal(ci, ref, tolerance = 1e-3, info = d)
    }
    expect_identical(ci[".sig01", 1], 0)
})

test_that("the profile's zeta is the signed root of the ML deviance increase", {
    need_lme4()
    fit <- lmmfit(Yield ~ 1 + (1 | Batch), lme4::Dyestuff, REML = FALSE)
    pr <- profile(fit, which = ".sigma")
    expect_s3_class(pr, "lmmfit_profile")
    m <- lme4::lmer(Yield ~ 1 + (1 | Batch), lme4::Dyestuff, REML = FALSE)
    dd <- lme4:::devfun2(m, useSc = TRUE, signames = TRUE)
    ## at each profile point the other parameters are optimal: compare with lme4's deviance there
    row <- pr[nrow(pr), ]
    dev_lme4 <- dd(c(row$.sig01, row$.sigma))
    expect_equal(row$.zeta^2, dev_lme4 - deviance(m), tolerance = 1e-6)
    expect_equal(pr$.zeta[which.min(abs(pr$.sigma - sigma(m)))], 0, tolerance = 1e-6)
    expect_true(all(diff(pr$.zeta) > 0))
    ## a base-graphics plot method
    tf <- tempfile(fileext = ".pdf"); grDevices::pdf(tf)
    expect_invisible(plot(pr))
    grDevices::dev.off(); unlink(tf)
})

test_that("confint(fit, method = 'profile') reaches the engine, and bad input errors", {
    need_lme4()
    fit <- lmmfit(Yield ~ 1 + (1 | Batch), lme4::Dyestuff)
    expect_equal(confint(fit, method = "profile"), confint_profile(fit))
    expect_error(confint_profile(fit, parm = "nope"), "unknown parameter")
    expect_error(confint_profile(fit, level = 2), "between 0 and 1")
    expect_error(profile(fit, alphamax = 0), "alphamax")
})
