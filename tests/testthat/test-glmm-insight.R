## insight, performance and parameters on glmmfit fits against the same
## functions on the glmer fit of the same model, converged tightly.
skip_if_not_installed("lme4")
skip_if_not_installed("insight")
skip_if_not_installed("performance")
suppressPackageStartupMessages(library(lme4))

## The two optimizers agree on theta and beta to about 1e-7 (relative) at
## this convergence; the variances, R2 and ICC are smooth functions of them.
VAR_TOL <- 1e-5
## criteria (AIC, BIC, log-likelihood): the minimised value agrees to rounding
CRIT_TOL <- 1e-6
## standard errors: both packages invert a finite-difference Hessian of the
## criterion in (theta, beta); glmer's carries its PIRLS noise (~1e-7),
## amplified to ~1e-3 in the SEs (test-glmm-fit.R checks ours against
## numDeriv to 1e-4), so the SE, z and intervals agree to se_tol there
SE_TOL <- 2e-3

tight_glmer <- function(formula, data, family)
    suppressWarnings(suppressMessages(do.call(glmer, list(formula = formula, data = data, family = family,
        control = glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-13,
                               optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-14, xtol_rel = 1e-14,
                                              maxeval = 1e5))))))

data(cbpp, package = "lme4")
gi <- local({
    set.seed(20261208)
    n <- 240
    d <- data.frame(g = factor(sample(16, n, TRUE)), x = rnorm(n), expo = runif(n, 1, 3),
                    obs = factor(seq_len(n)))
    re <- rnorm(16)
    d$y <- rbinom(n, 1, pnorm(-0.2 + 0.7 * d$x + 0.6 * re[d$g]))
    d$cnt <- rpois(n, d$expo * exp(1.5 + 0.3 * d$x + 0.5 * re[d$g] + 0.2 * rnorm(16)[d$g] * d$x +
                                   rnorm(n, sd = 0.3)))
    d
})
## (the data by name in the calls: the Poisson null model is refitted from them)
gi_cases <- list(
    logit = list(cbind(incidence, size - incidence) ~ period + (1 | herd), quote(cbpp), binomial),
    probit = list(y ~ x + (1 | g), quote(gi), binomial(link = "probit")),
    poisson_slope = list(cnt ~ x + offset(log(expo)) + (x | g), quote(gi), poisson),
    poisson_olre = list(cnt ~ x + offset(log(expo)) + (1 | g) + (1 | obs), quote(gi), poisson),
    ## the offset as an argument: the null model keeps it too
    poisson_offset_arg = list(cnt ~ x + (1 | g), quote(gi), poisson, quote(log(expo))),
    negbin = list(cnt ~ x + offset(log(expo)) + (1 | g), quote(gi), "nb"))
gi_pair <- function(name) {
    cs <- gi_cases[[name]]
    if (identical(cs[[3]], "nb"))
        return(list(ours = suppressMessages(eval(bquote(glmmfit_nb(.(cs[[1]]), .(cs[[2]]))))),
                    ref = suppressWarnings(suppressMessages(eval(bquote(glmer.nb(.(cs[[1]]), .(cs[[2]]),
                        control = glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-13,
                                               optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-14,
                                                              xtol_rel = 1e-14, maxeval = 1e5)))))))))
    ours <- bquote(glmmfit(.(cs[[1]]), .(cs[[2]]), family = .(cs[[3]])))
    ref <- bquote(glmer(.(cs[[1]]), .(cs[[2]]), family = .(cs[[3]]),
                        control = glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-13,
                                               optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-14,
                                                              xtol_rel = 1e-14, maxeval = 1e5))))
    if (length(cs) > 3L) ours$offset <- ref$offset <- cs[[4]]
    list(ours = suppressMessages(eval(ours)), ref = suppressWarnings(suppressMessages(eval(ref))))
}
gi_fits <- lapply(setNames(nm = names(gi_cases)), gi_pair)

test_that("model_info and the variance components are insight's for glmer", {
    for (name in names(gi_fits)) {
        p <- gi_fits[[name]]
        expect_identical(insight::model_info(p$ours), insight::model_info(p$ref), info = name)
        vo <- suppressWarnings(insight::get_variance(p$ours))
        vr <- suppressWarnings(insight::get_variance(p$ref))
        expect_identical(names(vo), names(vr), info = name)
        expect_equal(vo, vr, tolerance = VAR_TOL, info = name)
        for (comp in c("fixed", "random", "residual", "distribution", "dispersion", "intercept"))
            expect_equal(suppressWarnings(insight::get_variance(p$ours, component = comp)),
                         suppressWarnings(insight::get_variance(p$ref, component = comp)),
                         tolerance = VAR_TOL, info = paste(name, comp))
    }
    ## the distribution-specific variances, in closed form
    v <- function(name) insight::get_variance(gi_fits[[name]]$ours, verbose = FALSE)
    expect_identical(v("logit")$var.distribution, pi^2 / 3)
    expect_identical(v("probit")$var.distribution, 1)
    null <- glmmfit(cnt ~ 1 + offset(log(expo)) + (x | g), gi, family = poisson)
    expect_equal(v("poisson_slope")$var.distribution, log(1 + exp(-fixef(null)[[1]])), tolerance = 1e-12)
    ## the negative binomial's: log(1 + 1/mu0 + 1/theta), theta the fit's,
    ## also in the null model (as glmer.nb's call has it)
    nb <- gi_fits$negbin$ours
    null <- glmmfit(cnt ~ 1 + offset(log(expo)) + (1 | g), gi, family = MASS::negative.binomial(nb$spec$nb_theta))
    expect_equal(v("negbin")$var.distribution, log(1 + exp(-fixef(null)[[1]]) + 1 / nb$spec$nb_theta),
                 tolerance = 1e-12)
    ## the observation-level term is the dispersion, the other the random part
    vc <- VarCorr(gi_fits$poisson_olre$ours)
    expect_equal(v("poisson_olre")$var.dispersion, vc$obs[1, 1], tolerance = 1e-12)
    expect_equal(v("poisson_olre")$var.random, vc$g[1, 1], tolerance = 1e-12)
})

test_that("r2_nakagawa, icc and r2 are performance's for glmer", {
    for (name in names(gi_fits)) {
        p <- gi_fits[[name]]
        expect_equal(unclass(suppressWarnings(performance::r2_nakagawa(p$ours))),
                     unclass(suppressWarnings(performance::r2_nakagawa(p$ref))), tolerance = VAR_TOL, info = name)
        expect_equal(unclass(suppressWarnings(performance::r2(p$ours))),
                     unclass(suppressWarnings(performance::r2(p$ref))), tolerance = VAR_TOL, info = name)
        expect_equal(unclass(suppressWarnings(performance::icc(p$ours))),
                     unclass(suppressWarnings(performance::icc(p$ref))), tolerance = VAR_TOL, info = name)
    }
    ## Nakagawa's definitions from the components (not a copy of the code path)
    v <- insight::get_variance(gi_fits$logit$ours)
    r2 <- performance::r2_nakagawa(gi_fits$logit$ours)
    expect_equal(unname(r2$R2_marginal), v$var.fixed / (v$var.fixed + v$var.random + pi^2 / 3), tolerance = 1e-12)
    expect_equal(performance::icc(gi_fits$logit$ours)$ICC_adjusted, v$var.random / (v$var.random + pi^2 / 3),
                 tolerance = 1e-12)
})

test_that("model_performance is performance's for glmer", {
    for (name in names(gi_fits)) {
        p <- gi_fits[[name]]
        capture.output(mo <- suppressWarnings(performance::model_performance(p$ours)))
        capture.output(mr <- suppressWarnings(performance::model_performance(p$ref)))
        expect_s3_class(mo, "performance_model")
        expect_identical(names(mo), names(mr), info = name)
        crit <- c("AIC", "AICc", "BIC")
        expect_equal(unlist(mo[crit]), unlist(mr[crit]), tolerance = CRIT_TOL, info = name)
        expect_equal(unlist(mo[setdiff(names(mo), crit)]), unlist(mr[setdiff(names(mr), crit)]),
                     tolerance = VAR_TOL, info = name)
    }
    ## the 0/1 response has scores; the cbind() one has none, as for glmer
    expect_true(all(c("Log_loss", "Score_log") %in% names(performance::model_performance(gi_fits$probit$ours))))
    capture.output(m <- performance::model_performance(gi_fits$logit$ours))
    expect_false("Score_log" %in% names(m))
    expect_equal(performance::model_performance(gi_fits$logit$ours, metrics = c("AIC", "RMSE"))$RMSE,
                 sqrt(mean((cbpp$incidence / cbpp$size - fitted(gi_fits$logit$ref))^2)), tolerance = VAR_TOL)
})

test_that("a singular fit: check_singularity TRUE, no random part, ICC NA, as for glmer", {
    ## every group has the same covariates and responses: nothing varies
    ## between groups, so the variance of the intercept is estimated at 0
    set.seed(3)
    x <- rnorm(8)
    y <- rbinom(8, 1, plogis(0.3 + 0.5 * x))
    d <- data.frame(g = factor(rep(1:10, each = 8)), x = rep(x, 10), y = rep(y, 10))
    fit <- suppressMessages(glmmfit(y ~ x + (1 | g), d, family = binomial))
    ref <- tight_glmer(y ~ x + (1 | g), d, binomial)
    expect_true(isSingular(ref))
    expect_true(performance::check_singularity(fit))
    expect_identical(performance::check_singularity(fit), performance::check_singularity(ref))
    expect_false(performance::check_singularity(gi_fits$logit$ours))
    expect_identical(performance::check_singularity(gi_fits$logit$ours),
                     performance::check_singularity(gi_fits$logit$ref))
    expect_warning(vo <- insight::get_variance(fit), "singular")
    expect_null(vo$var.random)
    expect_equal(vo, suppressWarnings(insight::get_variance(ref)), tolerance = VAR_TOL)
    expect_identical(suppressWarnings(performance::icc(fit)), suppressWarnings(performance::icc(ref)))
})

test_that("model_parameters is parameters' table for glmer, printed the same", {
    skip_if_not_installed("parameters")
    cols <- c("Parameter", "Coefficient", "SE", "CI", "CI_low", "CI_high", "z", "df_error", "p", "Effects", "Group")
    for (name in names(gi_fits)) {
        p <- gi_fits[[name]]
        for (expo in c(FALSE, TRUE)) {
            mo <- parameters::model_parameters(p$ours, exponentiate = expo)
            mr <- suppressMessages(parameters::model_parameters(p$ref, exponentiate = expo))
            info <- paste(name, expo)
            expect_s3_class(mo, "parameters_model")
            expect_identical(names(mo), names(mr), info = info)
            for (cn in setdiff(cols, "p")) {
                if (!is.numeric(mr[[cn]])) expect_identical(mo[[cn]], mr[[cn]], info = paste(info, cn))
                else expect_equal(mo[[cn]], mr[[cn]], info = paste(info, cn),
                                  tolerance = if (cn %in% c("Coefficient", "CI")) 1e-5 else SE_TOL)
            }
            ## the SEs are vcov()'s; p from z (a relative error in z grows
            ## by z^2 in a small p, so p is checked through z)
            fx <- mo$Effects == "fixed"
            se <- sqrt(diag(vcov(p$ours)))
            expect_equal(mo$SE[fx], unname(if (expo) se * exp(fixef(p$ours)) else se), tolerance = 1e-12)
            expect_equal(mo$p[fx], 2 * pnorm(-abs(mo$z[fx])), tolerance = 1e-12)
            expect_identical(is.na(mo$p), is.na(mr$p))
            for (a in c("pretty_names", "coefficient_name", "test_statistic", "log_link", "ci_method",
                        "weighted_nobs", "n_obs"))
                expect_identical(attr(mo, a), attr(mr, a), info = paste(info, a))
            ## the printed tables: glmer's layout, labels and footer, with
            ## our numbers in its table (those are checked above; printed
            ## to 2 decimals a 2e-3 difference in a z can show)
            for (cn in cols) if (is.numeric(mr[[cn]])) mr[[cn]] <- mo[[cn]]
            out_o <- suppressMessages(capture.output(print(mo)))
            out_r <- suppressMessages(capture.output(print(mr)))
            expect_identical(out_o, out_r, info = info)
        }
    }
    expect_error(parameters::model_parameters(gi_fits$logit$ours, ci_method = "profile"),
                 "ci_method 'profile' is not available")
    expect_error(parameters::model_parameters(gi_fits$logit$ours, bootstrap = TRUE),
                 "argument 'bootstrap' is not supported")
    expect_error(parameters::model_parameters(gi_fits$logit$ours, ci = 2), "'ci' must be a number")
    fx <- parameters::model_parameters(gi_fits$logit$ours, effects = "fixed")
    expect_identical(fx$Parameter, names(fixef(gi_fits$logit$ours)))
})

test_that("insight's parameter and statistic accessors agree with glmer's", {
    p <- gi_fits$poisson_slope
    expect_equal(insight::get_parameters(p$ours), insight::get_parameters(p$ref), tolerance = 1e-5)
    expect_equal(insight::get_statistic(p$ours), insight::get_statistic(p$ref), tolerance = SE_TOL)
    expect_identical(insight::find_parameters(p$ours), insight::find_parameters(p$ref))
    expect_equal(as.numeric(insight::get_loglikelihood(p$ours)), as.numeric(insight::get_loglikelihood(p$ref)),
                 tolerance = CRIT_TOL)
    expect_identical(insight::get_df(p$ours, type = "wald"), insight::get_df(p$ref, type = "wald"))
})
