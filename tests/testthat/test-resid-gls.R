## Models without random effects (R/resid-gls.R): nlme's gls is the oracle.

GLS_TIGHT <- function() nlme::glsControl(maxIter = 500, msMaxIter = 500, tolerance = 1e-10, msTol = 1e-12,
                                         returnObject = TRUE)

## logLik never worse than gls's, and as in expect_nlme_agree(); gls has
## coef() for lme's fixef()
expect_gls_agree <- function(ours, theirs) {
    expect_gte(as.numeric(logLik(ours)), as.numeric(logLik(theirs)) - RESID_LL_TOL)
    expect_lt(abs(as.numeric(logLik(ours)) - as.numeric(logLik(theirs))), RESID_LL_TOL)
    expect_equal(attr(logLik(ours), "df"), attr(logLik(theirs), "df"))
    expect_equal(unname(fixef(ours)), unname(coef(theirs)), tolerance = RESID_FIXEF_TOL)
    expect_equal(sigma(ours), theirs$sigma, tolerance = RESID_PAR_TOL)
    ## gls's ML vcov is scaled by n / (n - p) (its REML-like sigma); lmmfit's
    ## is lme4's and lme's, sigma^2 (X'V^-1 X)^-1 with the fit's own sigma
    n <- nobs(ours)
    p <- length(fixef(ours))
    scale <- if (ours$REML) 1 else n / (n - p)
    expect_equal(unname(vcov(ours)) * scale, unname(vcov(theirs)), tolerance = RESID_PAR_TOL)
    expect_equal(as.numeric(residuals(ours, type = "normalized")),
                 as.numeric(residuals(theirs, type = "normalized")), tolerance = RESID_PAR_TOL)
}

test_that("gls with compound symmetry agrees with nlme (REML and ML)", {
    Orthodont <- nlme::Orthodont
    for (reml in c(TRUE, FALSE)) {
        ours <- lmmfit(distance ~ age + Sex, data = Orthodont, REML = reml,
                       correlation = nlme::corCompSymm(form = ~ 1 | Subject))
        theirs <- nlme::gls(distance ~ age + Sex, data = Orthodont, method = if (reml) "REML" else "ML",
                            correlation = nlme::corCompSymm(form = ~ 1 | Subject), control = GLS_TIGHT())
        expect_gls_agree(ours, theirs)
        expect_equal(unname(corpar(ours)), unname(nlme_corpar(theirs)), tolerance = RESID_PAR_TOL)
        ## compound symmetry is the random intercept's marginal model when rho >= 0
        ri <- lmmfit(distance ~ age + Sex + (1 | Subject), data = Orthodont, REML = reml)
        expect_equal(as.numeric(logLik(ours)), as.numeric(logLik(ri)), tolerance = 1e-9)
    }
})

test_that("gls with serial correlations and variance functions agrees with nlme", {
    Ovary <- ovary_plain()
    cases <- list(
        list(cor = nlme::corAR1(form = ~ 1 | Mare), var = NULL),
        list(cor = nlme::corCAR1(form = ~ Time | Mare), var = NULL),
        list(cor = nlme::corAR1(form = ~ 1 | Mare), var = nlme::varPower(form = ~ I(Time + 1))))
    for (cs in cases) {
        ours <- lmmfit(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), data = Ovary,
                       correlation = cs$cor, weights = cs$var)
        theirs <- nlme::gls(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), data = Ovary,
                            correlation = cs$cor, weights = cs$var, control = GLS_TIGHT())
        expect_gls_agree(ours, theirs)
        expect_equal(unname(corpar(ours)), unname(nlme_corpar(theirs)), tolerance = RESID_PAR_TOL)
    }
    Orthodont <- nlme::Orthodont
    ours <- lmmfit(distance ~ age * Sex, data = Orthodont, REML = FALSE,
                   weights = nlme::varIdent(form = ~ 1 | Sex))
    theirs <- nlme::gls(distance ~ age * Sex, data = Orthodont, method = "ML",
                        weights = nlme::varIdent(form = ~ 1 | Sex), control = GLS_TIGHT())
    expect_gls_agree(ours, theirs)
    expect_equal(unname(varpar(ours)), unname(nlme_varpar(theirs)), tolerance = RESID_PAR_TOL)
})

## One exponentially correlated field of n points in the unit square: range
## 0.3, a nugget of 0.3 of the variance.
spatial_field <- function(seed = 2, n = 150) {
    set.seed(seed)
    d <- data.frame(x = runif(n), y = runif(n))
    D <- as.matrix(dist(cbind(d$x, d$y)))
    d$z <- 1 + d$x + drop(t(chol(0.3 * diag(n) + exp(-D / 0.3))) %*% rnorm(n))
    d
}

test_that("gls with spatial correlations over the whole data agrees with nlme", {
    d <- spatial_field()
    for (cs in list(nlme::corExp(form = ~ x + y), nlme::corExp(form = ~ x + y, nugget = TRUE),
                    nlme::corGaus(form = ~ x + y, nugget = TRUE))) {
        ours <- lmmfit(z ~ x, data = d, correlation = cs)
        theirs <- nlme::gls(z ~ x, data = d, correlation = cs, control = GLS_TIGHT())
        expect_gls_agree(ours, theirs)
        expect_equal(unname(corpar(ours)), unname(nlme_corpar(theirs)), tolerance = RESID_PAR_TOL)
    }
})

test_that("a gls fit prints as nlme's and compares with mixed models by likelihood ratio", {
    Orthodont <- nlme::Orthodont
    ## (anova refits the REML fit by ML from its stored matrices)
    g <- lmmfit(distance ~ age, data = nlme::Orthodont, correlation = nlme::corCompSymm(form = ~ 1 | Subject))
    out <- capture.output(print(g))
    expect_identical(out[1L], "Generalized least squares fit by REML ['lmmfit']")
    expect_true(any(grepl(sprintf("^Residual standard error: %s$", format(sigma(g), digits = 4)), out)))
    expect_true("Number of obs: 108" %in% out)
    expect_false(any(grepl("Random effects", out)))
    out <- capture.output(summary(g))
    expect_true(any(grepl("^Correlation Structure: Compound symmetry", out)))
    expect_length(ranef(g), 0L)
    expect_length(g$theta, 0L)
    expect_equal(attr(logLik(g), "df"), 4)
    expect_equal(fitted(g), drop(model.matrix(g) %*% fixef(g)), ignore_attr = TRUE, tolerance = 1e-12)
    expect_equal(predict(g, newdata = Orthodont[1:3, ]), fitted(g)[1:3], ignore_attr = TRUE, tolerance = 1e-12)
    ## the ML likelihood-ratio test of the correlation against the random slope model
    m <- lmmfit(distance ~ age + (age | Subject), data = nlme::Orthodont)
    a <- suppressMessages(anova(g, m))
    gm <- nlme::gls(distance ~ age, data = Orthodont, method = "ML",
                    correlation = nlme::corCompSymm(form = ~ 1 | Subject), control = GLS_TIGHT())
    expect_equal(a$logLik[1L], as.numeric(logLik(gm)), tolerance = 1e-8)
    expect_equal(a$npar, c(4, 6))
})

test_that("gls: bad input and methods that need random effects say so", {
    Orthodont <- nlme::Orthodont
    expect_error(lmmfit(distance ~ age, data = Orthodont), "no random-effects terms")
    g <- lmmfit(distance ~ age, data = Orthodont, weights = nlme::varIdent(form = ~ 1 | Sex))
    expect_error(icc(g), "needs random effects")
    expect_error(getME(g, "Z"), "no random effects")
    expect_error(hatvalues(g), "not available")
})
