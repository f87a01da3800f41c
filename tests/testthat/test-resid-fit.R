## Residual variance functions and correlation structures against nlme::lme
## (each model fitted by both in the test), and the structure's methods.

test_that("varIdent by Sex (Orthodont) agrees with lme", {
    need("nlme")
    Orthodont <- nlme::Orthodont
    ours <- lmmfit(distance ~ age + (1 | Subject), data = Orthodont, weights = nlme::varIdent(form = ~ 1 | Sex))
    theirs <- nlme::lme(distance ~ age, random = ~ 1 | Subject, data = Orthodont,
                        weights = nlme::varIdent(form = ~ 1 | Sex), control = NLME_TIGHT())
    expect_nlme_agree(ours, theirs)
    expect_equal(varpar(ours), nlme_varpar(theirs), tolerance = RESID_PAR_TOL)
    expect_equal(sigma(ours), theirs$sigma, tolerance = RESID_PAR_TOL)
    expect_equal(unname(VarCorr(ours)$Subject[1, 1]), as.numeric(nlme::VarCorr(theirs)[1, 1]),
                 tolerance = RESID_PAR_TOL)
    ## the Pearson residuals divide by the stratum's sd, as nlme's
    expect_equal(as.numeric(residuals(ours, type = "pearson", scaled = TRUE)),
                 as.numeric(residuals(theirs, type = "pearson")), tolerance = RESID_PAR_TOL)
})

test_that("varPower of Time (BodyWeight, random slopes) agrees with lme", {
    need("nlme")
    BodyWeight <- nlme::BodyWeight
    ours <- lmmfit(weight ~ Time * Diet + (Time | Rat), data = BodyWeight, weights = nlme::varPower(form = ~ Time))
    theirs <- nlme::lme(weight ~ Time * Diet, random = ~ Time | Rat, data = BodyWeight,
                        weights = nlme::varPower(form = ~ Time), control = NLME_TIGHT())
    expect_nlme_agree(ours, theirs)
    expect_equal(unname(varpar(ours)), unname(nlme_varpar(theirs)), tolerance = RESID_PAR_TOL)
})

test_that("continuous-time AR(1) on Ovary's real-valued times agrees with lme", {
    need("nlme")
    ## (a plain factor: with Ovary's ordered Mare, nlme's normalized residuals
    ## of mares after the second in level order are not those of their own
    ## rows, while its likelihood is unchanged)
    Ovary <- ovary_plain()
    ours <- lmmfit(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time) + (1 | Mare), data = Ovary,
                   correlation = nlme::corCAR1(form = ~ Time | Mare))
    theirs <- nlme::lme(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), random = ~ 1 | Mare, data = Ovary,
                        correlation = nlme::corCAR1(form = ~ Time | Mare), control = NLME_TIGHT())
    expect_nlme_agree(ours, theirs)
    expect_equal(unname(corpar(ours)), unname(nlme_corpar(theirs)), tolerance = RESID_PAR_TOL)
    ## normalized residuals: whitened by the structure, as nlme's
    expect_equal(as.numeric(residuals(ours, type = "normalized")), as.numeric(residuals(theirs, type = "normalized")),
                 tolerance = RESID_PAR_TOL)
})

test_that("AR(1) combined with varExp (Ovary) agrees with lme, by REML and ML", {
    need("nlme")
    Ovary <- ovary_plain()
    for (reml in c(TRUE, FALSE)) {
        ours <- lmmfit(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time) + (1 | Mare), data = Ovary,
                       REML = reml, correlation = nlme::corAR1(form = ~ 1 | Mare),
                       weights = nlme::varExp(form = ~ Time))
        theirs <- nlme::lme(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), random = ~ 1 | Mare,
                            data = Ovary, method = if (reml) "REML" else "ML",
                            correlation = nlme::corAR1(form = ~ 1 | Mare), weights = nlme::varExp(form = ~ Time),
                            control = NLME_TIGHT())
        expect_nlme_agree(ours, theirs)
        expect_equal(unname(c(corpar(ours), varpar(ours))),
                     unname(c(nlme_corpar(theirs), nlme_varpar(theirs))), tolerance = RESID_PAR_TOL)
        expect_equal(as.numeric(residuals(ours, type = "normalized")),
                     as.numeric(residuals(theirs, type = "normalized")), tolerance = RESID_PAR_TOL)
    }
})

test_that("spatial correlations, with and without a nugget, agree with lme", {
    need("nlme")
    d <- spatial_sites()
    for (cs in list(nlme::corExp(form = ~ x + y | site), nlme::corExp(form = ~ x + y | site, nugget = TRUE),
                    nlme::corGaus(form = ~ x + y | site, nugget = TRUE),
                    nlme::corSpher(form = ~ x + y | site, nugget = TRUE))) {
        ours <- lmmfit(z ~ x + (1 | site), data = d, correlation = cs)
        theirs <- nlme::lme(z ~ x, random = ~ 1 | site, data = d, correlation = cs, control = NLME_TIGHT())
        expect_nlme_agree(ours, theirs)
        expect_equal(unname(corpar(ours)), unname(nlme_corpar(theirs)), tolerance = RESID_PAR_TOL)
    }
})

test_that("a multimodal spatial likelihood: the fit is not worse than nlme's", {
    need("nlme")
    ## no spatial correlation in the data: the range's profile has several
    ## local optima below the smallest distances
    set.seed(4)
    d <- data.frame(site = rep(1:30, each = 12), x = runif(360), y = runif(360))
    d$z <- rnorm(30)[d$site] + rnorm(360)
    ours <- lmmfit(z ~ x + (1 | site), data = d, correlation = nlme::corExp(form = ~ x + y | site))
    theirs <- nlme::lme(z ~ x, random = ~ 1 | site, data = d, correlation = nlme::corExp(form = ~ x + y | site),
                        control = NLME_TIGHT())
    expect_gte(as.numeric(logLik(ours)), as.numeric(logLik(theirs)) - RESID_LL_TOL)
})

test_that("varComb and varConstPower agree with lme", {
    need("nlme")
    Orthodont <- nlme::Orthodont
    vc <- nlme::varComb(nlme::varIdent(form = ~ 1 | Sex), nlme::varPower(form = ~ age))
    ours <- lmmfit(distance ~ age + (1 | Subject), data = Orthodont, weights = vc, REML = FALSE)
    theirs <- nlme::lme(distance ~ age, random = ~ 1 | Subject, data = Orthodont, weights = vc, method = "ML",
                        control = NLME_TIGHT())
    expect_nlme_agree(ours, theirs)
    expect_equal(unname(varpar(ours)), unname(nlme_varpar(theirs)), tolerance = RESID_PAR_TOL)

    set.seed(6)
    d <- data.frame(g = rep(1:40, each = 10), x = runif(400, 1, 10))
    d$z <- 1 + d$x + rnorm(40)[d$g] + rnorm(400) * (0.5 + d$x^0.8)
    ours <- lmmfit(z ~ x + (1 | g), data = d, weights = nlme::varConstPower(form = ~ x))
    theirs <- nlme::lme(z ~ x, random = ~ 1 | g, data = d, weights = nlme::varConstPower(form = ~ x),
                        control = NLME_TIGHT())
    expect_nlme_agree(ours, theirs)
    expect_equal(unname(varpar(ours)), unname(nlme_varpar(theirs)), tolerance = RESID_PAR_TOL)
})

test_that("the general whitening of AR(1) gives the pieces evaluation's fit", {
    ## seed 004's design: ar1() goes to src/ar1.c; with a variance function
    ## that has no parameters (varFixed of a constant) the same model goes
    ## through the general path
    trial$one <- 1
    a <- lmmfit(y ~ time + treatment + (time | id), data = trial, correlation = ar1(~ time | id))
    b <- lmmfit(y ~ time + treatment + (time | id), data = trial, correlation = ar1(~ time | id),
                weights = nlme::varFixed(~ one))
    expect_null(a$resid)
    expect_false(is.null(b$resid))
    expect_equal(deviance(b), deviance(a), tolerance = 1e-9)
    expect_equal(corpar(b), corpar(a), tolerance = RESID_PAR_TOL)
    expect_equal(fixef(b), fixef(a), tolerance = RESID_FIXEF_TOL)
    expect_equal(residuals(b, type = "normalized"), residuals(a, type = "normalized"), tolerance = 1e-5)
})

test_that("varFixed is nlme's prior variance: the same fit as weights 1/v", {
    Orthodont <- nlme::Orthodont
    a <- lmmfit(distance ~ age + (1 | Subject), data = Orthodont, weights = nlme::varFixed(~ age))
    b <- lmmfit(distance ~ age + (1 | Subject), data = Orthodont, weights = 1 / age)
    expect_equal(deviance(a), deviance(b), tolerance = 1e-9)
    expect_equal(fixef(a), fixef(b), tolerance = RESID_FIXEF_TOL)
})

test_that("summary prints the structures in nlme's layout; methods that cannot use them refuse", {
    Ovary <- nlme::Ovary
    fit <- lmmfit(follicles ~ sin(2 * pi * Time) + (1 | Mare), data = Ovary,
                  correlation = nlme::corCAR1(form = ~ Time | Mare), weights = nlme::varPower(form = ~ I(Time + 1)))
    out <- capture.output(summary(fit))
    expect_true(any(grepl("^Correlation Structure: Continuous AR\\(1\\)", out)))
    expect_true(any(grepl("Structure: Power of variance covariate", out)))
    expect_true(any(grepl("Formula: ~Time \\| Mare", out)))
    expect_named(corpar(fit), "Phi")
    expect_named(varpar(fit), "power")
    ## a variance function alone is a structure too: no method silently drops it
    vf <- lmmfit(distance ~ age + (1 | Subject), data = nlme::Orthodont, weights = nlme::varIdent(form = ~ 1 | Sex))
    expect_error(hausman(vf), "residual variance or correlation structure")
    expect_error(summary(vf, ddf = "Kenward-Roger"), "not available")
})

test_that("the piece basis (varIdent, compound symmetry) gives the general whitening's criterion", {
    ns <- asNamespace("lmmfit")
    Orthodont <- nlme::Orthodont
    unbalanced <- Orthodont[-c(1, 6, 7, 20), ]
    fits <- list(
        lmmfit(distance ~ age + (1 | Subject), Orthodont, weights = nlme::varIdent(form = ~ 1 | Sex)),
        lmmfit(distance ~ age + Sex, Orthodont, correlation = nlme::corCompSymm(form = ~ 1 | Subject)),
        lmmfit(distance ~ age + Sex, unbalanced, correlation = nlme::corCompSymm(form = ~ 1 | Subject),
               weights = nlme::varIdent(form = ~ 1 | Sex)))
    set.seed(11)
    for (f in fits) {
        reterms <- if (ns$is_gls(f)) ns$gls_placeholder(length(f$y)) else f$reterms
        rows <- ns$resid_rows(f$X, f$y, f$weights, f$offset, reterms)
        general <- f$resid$spec
        general$pieces <- FALSE
        theta <- if (ns$is_gls(f)) 0 else f$theta
        for (k in 1:3) {
            par <- f$resid$par + rnorm(length(f$resid$par), sd = 0.02)
            crit <- function(spec) {
                x <- .Call(ns$C_lmm_resid_xprod, rows$xprod, rows$X, rows$y, rows$codes, rows$Z, spec, par)
                c(.Call(ns$C_lmm_solution, x$xprod, theta, TRUE, NULL)$deviance, x$logdet)
            }
            expect_equal(crit(f$resid$spec), crit(general), tolerance = 1e-12)
        }
    }
    ## the fits agree with the general path's optimum
    g <- fits[[3L]]
    spec <- g$resid$spec
    spec$pieces <- FALSE
    rs <- g$resid
    rs$spec <- spec
    h <- ns$resid_fit_core(g$X, g$y, NULL, NULL, list(), TRUE, g$control, rs)
    expect_equal(h$deviance_value, g$deviance_value, tolerance = 1e-9)
})
