## ranef() and coef() against lme4, fitted in the same test.

lmer_exact <- function(...) {
    suppressMessages(lme4::lmer(..., control = lme4::lmerControl(
        optimizer = "bobyqa", calc.derivs = FALSE, optCtrl = list(rhoend = 1e-12, maxfun = 1e5))))
}

## Compare a ranef list (values and postVar) with lme4's.
expect_ranef_like <- function(r, r0, tol = 1e-5) {
    expect_identical(names(r), names(r0))
    for (g in names(r0)) {
        expect_identical(colnames(r[[g]]), colnames(r0[[g]]))
        expect_identical(rownames(r[[g]]), rownames(r0[[g]]))
        expect_equal(as.matrix(r[[g]]), as.matrix(r0[[g]]), tolerance = tol,
                     ignore_attr = TRUE)
        pv <- attr(r[[g]], "postVar")
        pv0 <- attr(r0[[g]], "postVar")
        expect_identical(is.list(pv), is.list(pv0))
        if (is.list(pv0)) expect_identical(names(pv), names(pv0))
        expect_equal(pv, pv0, tolerance = tol)
    }
}

test_that("ranef with condVar matches lme4: correlated term", {
    need_lme4()
    data(sleepstudy, package = "lme4")
    fit <- lmmfit(Reaction ~ Days + (Days | Subject), sleepstudy)
    m <- lmer_exact(Reaction ~ Days + (Days | Subject), sleepstudy)
    r <- ranef(fit, condVar = TRUE)
    expect_s3_class(r, "ranef.lmmfit")
    expect_identical(dim(attr(r$Subject, "postVar")), c(2L, 2L, 18L))
    expect_ranef_like(r, lme4::ranef(m, condVar = TRUE))
    ## without condVar: no attribute
    expect_null(attr(ranef(fit, condVar = FALSE)$Subject, "postVar"))
    expect_output(print(r), "with conditional variances for .Subject.")
    ## long layout
    d <- as.data.frame(r)
    d0 <- as.data.frame(lme4::ranef(m, condVar = TRUE))
    expect_identical(names(d), names(d0))
    expect_identical(as.character(d$grp), as.character(d0$grp))
    expect_identical(levels(d$grp), levels(d0$grp))
    expect_equal(d$condval, d0$condval, tolerance = 1e-5)
    expect_equal(d$condsd, d0$condsd, tolerance = 1e-5)
})

test_that("ranef combines several terms on one factor as lme4 (|| and extra terms)", {
    need_lme4()
    data(sleepstudy, package = "lme4")
    fit <- lmmfit(Reaction ~ Days + (Days || Subject), sleepstudy)
    m <- lmer_exact(Reaction ~ Days + (Days || Subject), sleepstudy)
    r <- ranef(fit)
    expect_true(is.list(attr(r$Subject, "postVar")))
    expect_ranef_like(r, lme4::ranef(m, condVar = TRUE))

    ## a 2-column term plus a 1-column term on Subject and a crossed factor
    set.seed(11)
    d <- sleepstudy
    d$x <- rnorm(nrow(d))
    d$g <- factor(rep(1:12, length.out = nrow(d)))
    d$Reaction <- d$Reaction + 8 * d$x * rep(rnorm(18), each = 10) + rep(rnorm(12, sd = 15), length.out = 180)
    f <- Reaction ~ Days + x + (Days | Subject) + (0 + x | Subject) + (1 | g)
    fit <- lmmfit(f, d)
    m <- lmer_exact(f, d)
    r <- ranef(fit)
    r0 <- lme4::ranef(m, condVar = TRUE)
    expect_identical(names(attr(r$Subject, "postVar")), c("c(\"(Intercept)\", \"Days\")", "x"))
    expect_ranef_like(r, r0, tol = 1e-4)
    expect_equal(as.data.frame(r)$condsd, as.data.frame(r0)$condsd, tolerance = 1e-4)
    ## coef: random-only column x filled in, then the fixed effects
    cf <- coef(fit)
    cf0 <- coef(m)
    expect_s3_class(cf, "coef.lmmfit")
    expect_identical(names(cf), names(cf0))
    for (g in names(cf0)) {
        expect_identical(colnames(cf[[g]]), colnames(cf0[[g]]))
        expect_equal(as.matrix(cf[[g]]), as.matrix(cf0[[g]]), tolerance = 1e-5)
    }
    ## whichel and drop
    expect_identical(names(ranef(fit, whichel = "g")), "g")
    dr <- ranef(fit, drop = TRUE)$g
    expect_true(is.numeric(dr) && !is.data.frame(dr))
    expect_equal(unname(dr), r0$g[[1L]], tolerance = 1e-4, ignore_attr = TRUE)
    expect_error(ranef(fit, whichel = "nope"), "whichel")
})

test_that("ranef and coef match lme4 on a crossed and a nested model", {
    need_lme4()
    data(Penicillin, package = "lme4")
    fit <- lmmfit(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin)
    m <- lmer_exact(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin)
    expect_ranef_like(ranef(fit), lme4::ranef(m, condVar = TRUE))
    expect_equal(lapply(coef(fit), as.matrix), lapply(coef(m), as.matrix), tolerance = 1e-6)

    data(Pastes, package = "lme4")
    fit <- lmmfit(strength ~ 1 + (1 | batch/cask), Pastes)
    m <- lmer_exact(strength ~ 1 + (1 | batch/cask), Pastes)
    expect_ranef_like(ranef(fit), lme4::ranef(m, condVar = TRUE))
})
