## insight, performance and parameters on a glmmfit fit, as on a glmer fit.
## Where the question is the one of a linear fit (the formula, the parameter
## names, the random-effect tables) the lmmfit methods (R/ext-insight.R)
## answer it; here is what a GLMM changes: z statistics, the variance of the
## distribution on the latent scale, observation-level terms as dispersion.

#' insight, performance and parameters support for glmmfit models
#'
#' With the \pkg{easystats} packages installed, their functions work on a
#' \code{glmmfit} fit as on an \code{lme4::glmer} fit: \pkg{insight}'s
#' \code{find_formula}, \code{find_parameters}, \code{get_parameters},
#' \code{get_statistic} (z statistics), \code{get_df}, \code{get_loglikelihood},
#' \code{model_info} and \code{get_variance}; \pkg{performance}'s
#' \code{r2_nakagawa} (and \code{r2}), \code{icc}, \code{check_singularity}
#' and \code{model_performance}; \pkg{parameters}' \code{model_parameters}.
#'
#' \code{get_variance} gives the components of Nakagawa et al.'s \eqn{R^2}
#' on the latent (link) scale, as \pkg{insight} computes them for a glmer
#' fit: the variance of the fixed part of the linear predictor; of the random
#' part, averaged over the observations (Johnson's extension to random
#' slopes; every term of \code{(x || g)} counts); observation-level terms (one
#' level per observation) as the dispersion; the distribution-specific
#' variance \eqn{\pi^2/3} (logit), 1 (probit), \eqn{\pi^2/6} (cloglog), for a
#' Poisson log link the lognormal approximation \eqn{\log(1 + 1/\mu_0)}
#' (\eqn{\log(1 + 1/\mu_0 + 1/\theta)} for the negative binomial's),
#' \eqn{\mu_0 = \exp(\beta_0)} of the intercept-only model with the same
#' random effects (refitted, so its data must still be available), 0.25 for
#' the Poisson's square-root link.  Other families and links give \code{NA} with a
#' warning.  When a diagonal element of a relative covariance factor is below
#' \code{tolerance} the fit is singular and the random part is not reported.
#'
#' @param x,model a fitted \code{glmmfit} model.
#' @param component which variance component(s).
#' @param tolerance for \code{get_variance} and \code{check_singularity}: the
#'   smallest diagonal element of a relative covariance factor not counted as
#'   zero.
#' @param type for \code{get_df}: \code{"residual"}, or \code{"wald"} /
#'   \code{"normal"} (infinite: z tests).
#' @param metrics which indices \code{model_performance} returns.
#' @param ci confidence level.
#' @param effects \code{"all"}, \code{"fixed"} or \code{"random"}.
#' @param exponentiate logical: the fixed effects and their intervals on the
#'   exponential scale (odds or rate ratios).
#' @param ci_method only \code{"wald"} (or \code{"normal"}): z intervals.
#' @param verbose print messages and warnings.
#' @param ... ignored.
#' @return What the generic documents.
#' @examples
#' if (requireNamespace("performance", quietly = TRUE)) {
#'     data(cbpp, package = "lme4")
#'     fit <- glmmfit(cbind(incidence, size - incidence) ~ period + (1 | herd),
#'                    data = cbpp, family = binomial)
#'     performance::r2_nakagawa(fit)
#'     performance::icc(fit)
#' }
#' @name glmmfit-easystats
#' @keywords internal
NULL

## ---- insight ---------------------------------------------------------------

#' @rdname glmmfit-easystats
find_formula.glmmfit <- function(x, verbose = TRUE, ...) find_formula.lmmfit(x, verbose = verbose)

#' @rdname glmmfit-easystats
find_parameters.glmmfit <- function(x, effects = c("all", "fixed", "random"), ...)
    find_parameters.lmmfit(x, effects = effects, ...)

#' @rdname glmmfit-easystats
get_parameters.glmmfit <- function(x, effects = c("fixed", "random"), ...)
    get_parameters.lmmfit(x, effects = effects)

## the model frame (insight's source = "mf"; stats' model.frame() of a
## glmmfit fit would re-evaluate the call); its data otherwise
#' @rdname glmmfit-easystats
#' @param source for \code{get_data}: \code{"mf"} (the model frame) or
#'   \code{"environment"} (the data of the fit's call).
get_data.glmmfit <- function(x, source = "environment", verbose = TRUE, ...) {
    source <- match.arg(source, c("environment", "mf", "frame"))
    fr <- x$frame
    attr(fr, "terms") <- NULL
    if (source != "environment") return(fr)
    d <- tryCatch(eval(x$call$data, environment(x$formula)), error = function(e) NULL)
    if (is.data.frame(d)) d else fr
}

#' @rdname glmmfit-easystats
get_statistic.glmmfit <- function(x, ...) {
    se <- sqrt(diag(vcov(x)))
    structure(data.frame(Parameter = names(x$beta), Statistic = unname(x$beta / se),
                         stringsAsFactors = FALSE),
              statistic = "z-statistic")
}

#' @rdname glmmfit-easystats
get_df.glmmfit <- function(x, type = "residual", ...) {
    type <- match.arg(tolower(type), c("residual", "wald", "normal"))
    if (type == "residual") df.residual(x) else Inf
}

#' @rdname glmmfit-easystats
get_loglikelihood.glmmfit <- function(x, ...) logLik(x)

#' @rdname glmmfit-easystats
get_variance.glmmfit <- function(x, component = c("all", "fixed", "random", "residual", "distribution",
                                                  "dispersion", "intercept", "slope", "rho01", "rho00"),
                                 verbose = TRUE, tolerance = 1e-5, ...) {
    component <- match.arg(component)
    ## the parts a linear fit's computation gives unchanged (sigma is 1)
    out <- get_variance.lmmfit(x, verbose = FALSE, tolerance = 0)
    obs_level <- vapply(x$reterms, `[[`, 1L, "nlev") == nobs(x)
    out$var.random <- glmm_random_part_variance(x, !obs_level)
    out$var.dispersion <- glmm_random_part_variance(x, obs_level)
    out$var.distribution <- if (component %in% c("all", "residual", "distribution"))
        glmm_distribution_variance(x, verbose) else NA_real_
    out$var.residual <- out$var.distribution + out$var.dispersion
    ## singular (a diagonal element of a relative factor below tolerance):
    ## the random part is not reported, as insight does for glmer fits
    if (any(abs(x$theta[theta_is_diag(x$reterms)]) < tolerance)) {
        out$var.random <- NULL
        if (verbose && !component %in% c("intercept", "slope"))
            warning(paste("random-effect variances not computed: some variance components are (nearly) zero,",
                          "the fit is singular (see isSingular() and performance::check_singularity());",
                          "a smaller 'tolerance' forces the computation"), call. = FALSE)
    }
    keep <- c("var.fixed", "var.random", "var.residual", "var.distribution", "var.dispersion",
              "var.intercept", "var.slope", "cor.slope_intercept", "cor.slopes")
    out <- out[intersect(keep, names(out))]
    switch(component, all = out, fixed = out["var.fixed"], random = out["var.random"],
           residual = out["var.residual"], distribution = out["var.distribution"],
           dispersion = out["var.dispersion"], intercept = out["var.intercept"], slope = out["var.slope"],
           rho01 = out["cor.slope_intercept"], rho00 = out["cor.slopes"])
}

## The variance of the random part of the linear predictor from the terms
## 'which': the mean over the observations of z_i' Sigma z_i, summed.
glmm_random_part_variance <- function(x, which) {
    vc <- VarCorr(x)
    sum(vapply(which(which), function(j) {
        Z <- x$reterms[[j]]$Z
        mean(rowSums((Z %*% vc[[j]]) * Z))
    }, 0))
}

## The distribution-specific variance on the latent scale (Nakagawa,
## Johnson & Schielzeth 2017): fixed for the binomial links, the lognormal
## approximation log(1 + 1/mu0) for a Poisson log link (log(1 + 1/mu0 +
## 1/theta) for the negative binomial's), mu0 the mean of the
## intercept-only model with the same random effects.
glmm_distribution_variance <- function(x, verbose) {
    fam <- x$family$family
    link <- x$family$link
    nb <- x$spec$family == GLMM_FAMILIES[["negbin"]]
    v <- if (fam == "binomial") switch(link, logit = pi^2 / 3, probit = 1, cloglog = pi^2 / 6, NA_real_)
         else if (fam == "poisson") switch(link, log = log1p(1 / glmm_null_mean(x, verbose)), sqrt = 0.25,
                                           NA_real_)
         ## the negative binomial's variance mu + mu^2 / theta, the fit's theta
         else if (nb && link == "log") log1p(1 / glmm_null_mean(x, verbose) + 1 / x$spec$nb_theta)
         else NA_real_
    if (is.na(v) && verbose)
        warning(sprintf("the distribution-specific variance of the %s family with the %s link is not available",
                        fam, link), call. = FALSE)
    v
}

## mu0 = exp(intercept) of the null model: the fit's response, offsets and
## random-effects terms, no covariates, refitted from the fit's call.
## Below 6 the lognormal approximation is poor (Nakagawa et al.).
GLMM_NULL_MEAN_MIN <- 6
glmm_null_mean <- function(x, verbose) {
    f <- x$formula
    vars <- as.list(attr(terms(f), "variables"))[-1L]
    offs <- vapply(vars, function(v) is.call(v) && identical(v[[1L]], quote(offset)), NA)
    rhs <- c("1", vapply(vars[offs], deparse1, ""), vapply(x$reterms, function(t) paste0("(", t$label, ")"), ""))
    null_f <- stats::reformulate(rhs, response = f[[2L]], env = environment(f))
    ## glmmfit() with the fit's family object: a negative binomial keeps the
    ## fit's theta (as glmer.nb's call does, which insight's null model
    ## refits), not one re-estimated for the null model
    cl <- x$call
    cl[[1L]] <- quote(lmmfit::glmmfit)
    cl$formula <- null_f
    cl$family <- x$family
    cl$start <- NULL
    env <- environment(f)
    if (is.null(env)) env <- parent.frame()
    null_fit <- tryCatch(suppressWarnings(suppressMessages(eval(cl, env))), error = function(e) {
        if (verbose) warning(sprintf(paste("cannot refit the intercept-only model (%s): the distribution-specific",
                                           "variance is not available"), conditionMessage(e)), call. = FALSE)
        NULL
    })
    if (is.null(null_fit)) return(NA_real_)
    mu0 <- exp(unname(null_fit$beta[1L]))
    if (verbose && mu0 < GLMM_NULL_MEAN_MIN)
        warning(sprintf("mu of %.1f is too close to zero: the distribution-specific variance may be unreliable",
                        mu0), call. = FALSE)
    mu0
}

## ---- performance -----------------------------------------------------------

#' @rdname glmmfit-easystats
check_singularity.glmmfit <- function(x, tolerance = 1e-5, ...) isSingular.glmmfit(x, tol = tolerance)

#' @rdname glmmfit-easystats
r2.glmmfit <- function(model, ...) performance::r2_nakagawa(model, ...)

#' @rdname glmmfit-easystats
model_performance.glmmfit <- function(model, metrics = "all", verbose = TRUE, ...) {
    all_metrics <- c("AIC", "AICc", "BIC", "R2", "ICC", "RMSE", "SIGMA", "LOGLOSS", "SCORE")
    metrics <- if (identical(metrics, "all")) all_metrics
               else if (identical(metrics, "common")) c("AIC", "BIC", "R2", "ICC", "RMSE")
               else toupper(metrics)
    metrics[metrics == "AICC"] <- "AICc"
    metrics[metrics == "LOG_LOSS"] <- "LOGLOSS"
    ll <- logLik(model)
    k <- attr(ll, "df"); n <- nobs(model); dev <- -2 * as.numeric(ll)
    out <- list()
    if ("AIC" %in% metrics) out$AIC <- dev + 2 * k
    if ("AICc" %in% metrics) out$AICc <- dev + 2 * k * n / (n - k - 1)
    if ("BIC" %in% metrics) out$BIC <- dev + log(n) * k
    if ("R2" %in% metrics) {
        r2 <- suppressWarnings(performance::r2_nakagawa(model, verbose = verbose))
        if (is.list(r2)) out[c("R2_conditional", "R2_marginal")] <- lapply(r2[c("R2_conditional", "R2_marginal")], unname)
    }
    if ("ICC" %in% metrics) {
        icc <- suppressWarnings(performance::icc(model, verbose = verbose))
        if (is.list(icc)) out$ICC <- icc$ICC_adjusted
    }
    if ("RMSE" %in% metrics) out$RMSE <- sqrt(mean(residuals(model, type = "response")^2))
    if ("SIGMA" %in% metrics) out$Sigma <- 1
    ## the scores are performance's own (its definitions, from the fit's
    ## response and fitted means), as model_performance() has them for glmer
    if ("LOGLOSS" %in% metrics && model$family$family == "binomial")
        out$Log_loss <- performance::performance_logloss(model, verbose = verbose)
    if ("SCORE" %in% metrics) {
        sc <- performance::performance_score(model, verbose = verbose)
        if (!is.na(sc$logarithmic)) out$Score_log <- sc$logarithmic
        if (!is.na(sc$spherical)) out$Score_spherical <- sc$spherical
    }
    out <- as.data.frame(out)
    class(out) <- c("performance_model", "data.frame")
    out
}

## ---- parameters -------------------------------------------------------------

#' @rdname glmmfit-easystats
model_parameters.glmmfit <- function(model, ci = 0.95, effects = "all", exponentiate = FALSE, ci_method = NULL,
                                     verbose = TRUE, ...) {
    effects <- match.arg(effects, c("all", "fixed", "random"))
    glmm_refuse_parameters_args(list(...))
    if (!is.null(ci_method) && !tolower(ci_method) %in% c("wald", "normal"))
        stop(sprintf(paste0("model_parameters(): ci_method '%s' is not available for glmmfit fits: ",
                            "their intervals are Wald z intervals (ci_method = \"wald\")"), ci_method),
             call. = FALSE)
    if (!is.numeric(ci) || length(ci) != 1L || !(ci > 0 && ci < 1))
        stop("model_parameters(): 'ci' must be a number between 0 and 1", call. = FALSE)
    b <- model$beta
    se <- sqrt(diag(vcov(model)))
    q <- stats::qnorm((1 + ci) / 2)
    z <- b / se
    fixed <- data.frame(Parameter = names(b), Coefficient = unname(b), SE = unname(se), CI = ci,
                        CI_low = unname(b - q * se), CI_high = unname(b + q * se), z = unname(z),
                        df_error = Inf, p = unname(2 * stats::pnorm(-abs(z))),
                        Effects = "fixed", Group = "", stringsAsFactors = FALSE)
    if (isTRUE(exponentiate)) {
        for (cn in c("Coefficient", "CI_low", "CI_high")) fixed[[cn]] <- exp(fixed[[cn]])
        fixed$SE <- fixed$SE * fixed$Coefficient     # the delta method, as parameters does
    }
    random <- glmm_random_rows(model, ci)
    out <- switch(effects, all = rbind(fixed, random), random = random,
                  fixed = fixed[setdiff(names(fixed), "Group")])
    rownames(out) <- NULL
    ## parameters' labels of the fixed effects ("period [2]" for level 2)
    pretty <- tryCatch(parameters::format_parameters(model), error = function(e) NULL)
    if (is.null(pretty) || !all(names(b) %in% names(pretty))) pretty <- setNames(names(b), names(b))
    glmm_parameters_attributes(out, model, pretty[names(b)], ci, effects, exponentiate, verbose,
                               deparse1(substitute(model)))
}

## parameters' options this method does not compute: refused by name when
## set (NULL or FALSE, their defaults, pass)
GLMM_PARAMETERS_UNSUPPORTED <- c("bootstrap", "standardize", "p_adjust", "vcov", "ci_random", "group_level",
                                 "keep", "drop")
glmm_refuse_parameters_args <- function(dots) {
    set <- names(dots)[names(dots) %in% GLMM_PARAMETERS_UNSUPPORTED &
                       !vapply(dots, function(v) is.null(v) || isFALSE(v), NA)]
    if (length(set))
        stop(sprintf("model_parameters(): argument '%s' is not supported for glmmfit fits", set[1L]),
             call. = FALSE)
}

## The SDs and correlations of the random effects in parameters' naming
## ("SD (Intercept)", "Cor (Intercept~x)"), one group per term.
glmm_random_rows <- function(model, ci) {
    vcl <- VarCorr(model)
    vc <- as.data.frame(vcl)
    vc <- vc[vc$grp != "Residual", , drop = FALSE]
    ## VarCorr's names are made unique ("g", "g.1" for two terms of g)
    vc$grp <- unname(setNames(vapply(model$reterms, `[[`, "", "group"), names(vcl))[vc$grp])
    lab <- function(v) sub("(Intercept)", "Intercept", v, fixed = TRUE)
    name <- ifelse(is.na(vc$var2), sprintf("SD (%s)", lab(vc$var1)),
                   sprintf("Cor (%s~%s)", lab(vc$var1), lab(vc$var2)))
    data.frame(Parameter = name, Coefficient = vc$sdcor, SE = NA_real_, CI = ci, CI_low = NA_real_,
               CI_high = NA_real_, z = NA_real_, df_error = NA_real_, p = NA_real_, Effects = "random",
               Group = vc$grp, stringsAsFactors = FALSE)
}

## The attributes parameters' print() reads, as it sets them for glmer fits.
glmm_parameters_attributes <- function(out, model, pretty, ci, effects, exponentiate, verbose, name) {
    fam <- model$family
    log_link <- fam$link %in% c("log", "logit")
    ## parameters' names of the coefficient column: odds for the logit,
    ## risks for the binomial's other links, means (rates) for counts
    scale <- if (fam$family == "binomial") (if (fam$link == "logit") 1L else 2L) else 3L
    coef_name <- if (isTRUE(exponentiate)) c("Odds Ratio", "Risk Ratio", "IRR")[scale]
                 else c("Log-Odds", "Log-Risk", "Log-Mean")[scale]
    rand <- out$Effects == "random"
    structure(out, class = c("parameters_model", "see_parameters_model", "data.frame"),
              pretty_names = pretty, ci = ci, ci_method = "Wald", df_method = "Wald",
              verbose = verbose, exponentiate = exponentiate, ordinal_model = FALSE, linear_model = FALSE,
              mixed_model = TRUE, n_obs = nobs(model), model_class = "glmmfit", bootstrap = FALSE,
              iterations = 1000, robust_vcov = FALSE, ignore_group = TRUE, ran_pars = effects != "fixed",
              show_summary = FALSE, log_link = log_link,
              pretty_labels = c(pretty, setNames(out$Parameter[rand], out$Parameter[rand])),
              test_statistic = "z-statistic", log_response = FALSE, log_predictors = FALSE,
              weighted_nobs = sum(model$prior), model_formula = deparse1(stats::formula(model$fixed_terms)),
              coefficient_name = coef_name, zi_coefficient_name = "Log-Odds",
              digits = 2, ci_digits = 2, p_digits = 3, footer_digits = 3, object_name = name)
}
