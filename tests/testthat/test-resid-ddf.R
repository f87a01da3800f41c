## Satterthwaite's df for fits with residual structures (R/resid-ddf.R).

## Satterthwaite's df are invariant to the variance parameters'
## parametrisation, so models that are one marginal model written two ways
## must agree; the Hessians are differences (ours Richardson-extrapolated,
## lmerTest's numDeriv), good to about 1e-7 relative.
RESID_DDF_TOL <- 1e-6

test_that("gls with compound symmetry has the random-intercept model's Satterthwaite df (lmerTest)", {
    need("lmerTest")
    Orthodont <- nlme::Orthodont
    g <- lmmfit(distance ~ age + Sex, Orthodont, correlation = nlme::corCompSymm(form = ~ 1 | Subject))
    l <- lmerTest::lmer(distance ~ age + Sex + (1 | Subject), Orthodont)
    ours <- coef(summary(g, ddf = "Satterthwaite"))
    theirs <- coef(summary(l))
    expect_equal(ours[, "df"], theirs[, "df"], tolerance = RESID_DDF_TOL)
    expect_equal(ours[, "Pr(>|t|)"], theirs[, "Pr(>|t|)"], tolerance = RESID_DDF_TOL)
    a <- anova(g, ddf = "Satterthwaite")
    expect_equal(a$DenDF, anova(l)$DenDF, tolerance = RESID_DDF_TOL)
    expect_equal(a[["F value"]], anova(l)[["F value"]], tolerance = 1e-6)
    ## and with an intercept-only random part plus CS it is the same model again (ML)
    gm <- lmmfit(distance ~ age + Sex, Orthodont, REML = FALSE,
                 correlation = nlme::corCompSymm(form = ~ 1 | Subject))
    lm_ <- lmerTest::lmer(distance ~ age + Sex + (1 | Subject), Orthodont, REML = FALSE)
    expect_equal(coef(summary(gm, ddf = "Satterthwaite"))[, "df"], coef(summary(lm_))[, "df"],
                 tolerance = RESID_DDF_TOL)
})

test_that("a parameter-free variance function gives the prior-weights fit's df; ar1() both paths agree", {
    Orthodont <- nlme::Orthodont
    a <- lmmfit(distance ~ age + (age | Subject), data = Orthodont, weights = nlme::varFixed(~ age))
    b <- lmmfit(distance ~ age + (age | Subject), data = Orthodont, weights = 1 / age)
    expect_equal(coef(summary(a, ddf = "Satterthwaite"))[, "df"], coef(summary(b))[, "df"],
                 tolerance = RESID_DDF_TOL)
    d <- trial[trial$id %in% unique(trial$id)[1:60], ]
    d$one <- 1
    p <- lmmfit(y ~ time + treatment + (time | id), data = d, correlation = ar1(~ time | id))
    q <- lmmfit(y ~ time + treatment + (time | id), data = d, correlation = ar1(~ time | id),
                weights = nlme::varFixed(~ one))
    ## (two optimisations: their estimates agree to RESID_PAR_TOL)
    expect_equal(coef(summary(p, ddf = "Satterthwaite"))[, "df"], coef(summary(q, ddf = "Satterthwaite"))[, "df"],
                 tolerance = RESID_PAR_TOL)
})

test_that("structure fits: Satterthwaite on request, Kenward-Roger refused by name", {
    Orthodont <- nlme::Orthodont
    v <- lmmfit(distance ~ age + Sex + (1 | Subject), Orthodont, weights = nlme::varIdent(form = ~ 1 | Sex))
    expect_false("df" %in% colnames(coef(summary(v))))
    out <- capture.output(summary(v, ddf = "Satterthwaite"))
    expect_match(out[1L], "Satterthwaite's method")
    expect_error(summary(v, ddf = "Kenward-Roger"), "Kenward-Roger's method is not available")
    ## the df are finite and below the observations
    df <- coef(summary(v, ddf = "Satterthwaite"))[, "df"]
    expect_true(all(is.finite(df) & df > 1 & df < nobs(v)))
})
