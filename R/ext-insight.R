## Support for the easystats packages insight, performance and parameters
## (and bayestestR's ci() generic), through the methods their documentation
## asks of a new model class ("Adding support for new model classes",
## vignette("newmodels", package = "insight")): methods for their S3
## generics, registered in .onLoad (zzz.R) when each namespace loads.

#' insight, performance and parameters support for lmmfit models
#'
#' With the \pkg{easystats} packages installed, their functions work on an
#' \code{lmmfit} fit as on an \code{lme4::lmer} fit:
#' \itemize{
#'   \item \pkg{insight}: \code{find_formula} (the fixed part as
#'     \code{conditional}, one \code{~ expr | group} formula per random term
#'     as \code{random}), and through it \code{find_random},
#'     \code{is_mixed_model}, \code{find_predictors}, \code{model_info};
#'     \code{find_parameters}, \code{get_parameters} (fixed effects, or with
#'     \code{effects = "random"} the conditional modes), \code{get_statistic}
#'     (t statistics), \code{get_df} (\code{type = "residual"} (also
#'     \code{"wald"}), \code{"normal"}, \code{"satterthwaite"},
#'     \code{"kenward"}), \code{get_loglikelihood} and \code{get_variance}
#'     (the variance components of Nakagawa et al.'s \eqn{R^2} and ICC, with
#'     Johnson's extension to random slopes: the variance of the random part
#'     averaged over the observations; for uncorrelated terms \code{(x || g)}
#'     every term counts, where \pkg{insight} 0.19 on an \code{lmer} fit
#'     counts only the first).
#'   \item \pkg{performance}: \code{icc}, \code{r2}, \code{r2_nakagawa}
#'     (through \code{get_variance}), \code{check_singularity} (lmmfit's
#'     \code{isSingular}), \code{check_convergence} (the largest scaled
#'     gradient of the deviance at the optimum, below \code{tolerance}, and
#'     the optimizer's own checks passed), \code{model_performance}.
#'   \item \pkg{parameters}: \code{model_parameters} (fixed effects with
#'     standard errors, confidence intervals, t statistics, df and p-values;
#'     the standard deviations and correlations of the random effects and the
#'     residual), \code{p_value}, \code{standard_error}, \code{ci},
#'     \code{degrees_of_freedom}, with \code{ci_method} (or \code{method})
#'     one of \code{"residual"} (the default, as for \code{lmer} fits: t with
#'     \code{df.residual(fit)} degrees of freedom; also \code{"wald"}),
#'     \code{"normal"}, \code{"satterthwaite"} or \code{"kenward"}
#'     (Kenward-Roger's adjusted standard errors and df), all computed by
#'     lmmfit itself.
#' }
#'
#' @param x,model a fitted \code{lmmfit} model.
#' @param effects \code{"fixed"}, \code{"random"} or \code{"all"}.
#' @param component for \code{get_variance}: which variance component(s).
#' @param type,method,ci_method the degrees-of-freedom method (see Details).
#' @param ci confidence level.
#' @param tolerance for \code{check_singularity}: the smallest diagonal
#'   element of a relative covariance factor not counted as zero; for
#'   \code{check_convergence}: the largest scaled gradient accepted; for
#'   \code{get_variance}: variances below it are reported as zero.
#' @param flatten return a character vector rather than a list.
#' @param verbose print messages.
#' @param estimator for \code{get_loglikelihood}: \code{"REML"} or \code{"ML"}.
#' @param metrics which indices \code{model_performance} returns.
#' @param ... ignored, or passed on.
#' @return What the generic documents.
#' @examples
#' if (requireNamespace("performance", quietly = TRUE)) {
#'     data(Orthodont, package = "nlme")
#'     fit <- lmmfit(distance ~ age + (1 | Subject), data = Orthodont)
#'     performance::icc(fit)
#'     performance::r2_nakagawa(fit)
#'     performance::check_singularity(fit)
#' }
#' @name lmmfit-easystats
#' @keywords internal
NULL

## ---- insight ---------------------------------------------------------------

#' @rdname lmmfit-easystats
find_formula.lmmfit <- function(x, verbose = TRUE, ...) {
    env <- environment(x$formula)
    fixed <- stats::as.formula(deparse1(stats::formula(x$fixed_terms)), env = env)
    random <- lapply(x$reterms, function(t) stats::as.formula(paste("~", t$label), env = env))
    if (length(random) == 1L) random <- random[[1L]]
    structure(list(conditional = fixed, random = random), class = c("insight_formula", "list"))
}

## The random-effect blocks, one per grouping factor as in lme4's ranef():
## the terms of one factor (from (x || g), say) are merged.
ranef_blocks <- function(x) {
    groups <- vapply(x$reterms, `[[`, "", "group")
    cols <- lapply(x$reterms, function(t) colnames(t$Z))
    out <- lapply(unique(groups), function(g) unique(unlist(cols[groups == g])))
    names(out) <- unique(groups)
    out
}

#' @rdname lmmfit-easystats
find_parameters.lmmfit <- function(x, effects = c("all", "fixed", "random"), flatten = FALSE, ...) {
    effects <- match.arg(effects)
    out <- list(conditional = names(x$beta), random = ranef_blocks(x))
    out <- switch(effects, all = out, fixed = out["conditional"], random = out["random"])
    if (flatten) unique(unlist(out, use.names = FALSE)) else out
}

#' @rdname lmmfit-easystats
get_parameters.lmmfit <- function(x, effects = c("fixed", "random"), ...) {
    effects <- match.arg(effects)
    if (effects == "random") {
        re <- ranef(x, condVar = FALSE)
        return(lapply(re, function(d) { attr(d, "postVar") <- NULL; d }))
    }
    data.frame(Parameter = names(x$beta), Estimate = unname(x$beta), stringsAsFactors = FALSE)
}

#' @rdname lmmfit-easystats
get_statistic.lmmfit <- function(x, ...) {
    se <- sqrt(diag(vcov(x)))
    structure(data.frame(Parameter = names(x$beta), Statistic = unname(x$beta / se),
                         stringsAsFactors = FALSE),
              statistic = "t-statistic")
}

## The df method names of insight and parameters, to lmmfit's.
easystats_df_method <- function(type) {
    type <- tolower(type)
    if (type %in% c("residual", "wald", "analytical", "any")) return("residual")
    if (type %in% c("normal", "z")) return("normal")
    if (type %in% c("satterthwaite", "s")) return("satterthwaite")
    if (type %in% c("kenward", "kr", "kenward-roger", "kenward_roger")) return("kenward")
    stop(sprintf("df method '%s' is not available for lmmfit fits: use \"residual\", \"normal\", \"satterthwaite\" or \"kenward\"",
                 type), call. = FALSE)
}

## Per fixed effect: standard error and df of its t test by the given method.
fixef_inference <- function(x, method) {
    method <- easystats_df_method(method)
    p <- length(x$beta)
    se <- sqrt(diag(vcov(x)))
    df <- switch(method,
                 residual = rep(df.residual(x), p),
                 normal = rep(Inf, p),
                 satterthwaite = {
                     st <- satterthwaite_setup(x)
                     vapply(seq_len(p), function(i) satterthwaite_df1(diag(p)[, i], st), 0)
                 },
                 kenward = {
                     st <- kenward_roger_setup(x)
                     se <- sqrt(diag(st$vcov_adj))
                     vapply(seq_len(p), function(i) unname(kenward_roger_df(rbind(diag(p)[i, ]), st)["ddf"]), 0)
                 })
    names(se) <- names(df) <- names(x$beta)
    list(method = method, se = se, df = df)
}

#' @rdname lmmfit-easystats
get_df.lmmfit <- function(x, type = "residual", ...) {
    method <- easystats_df_method(type)
    if (method == "residual") return(df.residual(x))
    if (method == "normal") return(Inf)
    fixef_inference(x, method)$df
}

#' @rdname lmmfit-easystats
#' @param data for \code{get_predicted}: new data (default: the model frame).
#' @param predict for \code{get_predicted}: \code{"expectation"} (or
#'   \code{"link"}, the same) or \code{"prediction"} (the interval adds the
#'   residual variance).
#' @param include_random for \code{get_predicted}: \code{"default"} (the
#'   random effects when every grouping variable is in \code{data}),
#'   \code{TRUE} or \code{FALSE}.
get_predicted.lmmfit <- function(x, data = NULL, predict = "expectation", ci = NULL,
                                 include_random = "default", ...) {
    predict <- match.arg(predict, c("expectation", "link", "prediction", "response"))
    if (is.null(data)) data <- x$frame
    data <- as.data.frame(data)
    gvars <- unique(unlist(lapply(x$re_specs, function(s) all.vars(s$group))))
    if (identical(include_random, "default")) include_random <- all(gvars %in% names(data))
    pred <- stats::predict(x, newdata = data, re.form = if (isTRUE(include_random)) NULL else NA,
                           allow.new.levels = TRUE)
    ## the standard error of the fixed part of the prediction (as insight's
    ## for lmer fits), the residual variance added for a prediction interval
    tt <- delete.response(x$fixed_terms)
    mf <- stats::model.frame(tt, data, na.action = na.pass, xlev = .getXlevels(x$fixed_terms, x$frame))
    Xn <- stats::model.matrix(tt, mf, contrasts.arg = x$contrasts)[, names(x$beta), drop = FALSE]
    v <- rowSums((Xn %*% vcov(x)) * Xn)
    if (predict == "prediction") v <- v + sigma(x)^2
    se <- sqrt(v)
    out <- structure(unname(pred), class = c("get_predicted", "numeric"), data = data,
                     predict = predict)
    names(out) <- names(pred)
    if (!is.null(ci)) {
        q <- stats::qt((1 + ci) / 2, df.residual(x))
        attr(out, "ci_data") <- data.frame(SE = unname(se), CI_low = unname(pred - q * se),
                                           CI_high = unname(pred + q * se))
        attr(out, "ci") <- ci
    }
    out
}

#' @rdname lmmfit-easystats
get_loglikelihood.lmmfit <- function(x, estimator = NULL, ...) {
    REML <- if (is.null(estimator)) x$REML else toupper(estimator) == "REML"
    if (REML && !x$REML) REML <- FALSE
    logLik(x, REML = REML)
}

#' @rdname lmmfit-easystats
get_variance.lmmfit <- function(x, component = c("all", "fixed", "random", "residual", "distribution",
                                                 "dispersion", "intercept", "slope", "rho01", "rho00"),
                                verbose = TRUE, tolerance = 1e-5, ...) {
    component <- match.arg(component)
    vc <- VarCorr(x)
    s2 <- sigma(x)^2
    ## the variance of the fixed part of the linear predictor
    var_fixed <- stats::var(drop(x$X %*% x$beta))
    ## the variance of the random part, averaged over the observations:
    ## mean over i of z_i' Sigma z_i for each term
    var_random <- sum(vapply(seq_along(x$reterms), function(j) {
        Z <- x$reterms[[j]]$Z
        S <- vc[[j]]
        mean(rowSums((Z %*% S) * Z))
    }, 0))
    groups <- vapply(x$reterms, `[[`, "", "group")
    icpt <- list(); slope <- list(); rho <- list(); rho00 <- list()
    for (j in seq_along(x$reterms)) {
        S <- vc[[j]]; cn <- rownames(S); g <- groups[j]
        has_i <- "(Intercept)" %in% cn
        if (has_i) icpt[[g]] <- S["(Intercept)", "(Intercept)"]
        sl <- setdiff(cn, "(Intercept)")
        for (s in sl) slope[[paste(g, s, sep = ".")]] <- S[s, s]
        if (has_i && length(sl)) {
            C <- attr(S, "correlation")
            r <- C["(Intercept)", sl]
            names(r) <- if (length(sl) == 1L) g else paste(g, sl, sep = ".")
            rho <- c(rho, as.list(r))
        }
        if (length(sl) > 1L) {
            C <- attr(S, "correlation")[sl, sl]
            for (a in seq_along(sl)) for (b in seq_along(sl)) if (a < b)
                rho00[[paste(g, sl[a], sl[b], sep = ".")]] <- C[a, b]
        }
    }
    out <- list(var.fixed = var_fixed, var.random = var_random, var.residual = s2,
                var.distribution = s2, var.dispersion = 0,
                var.intercept = if (length(icpt)) unlist(icpt),
                var.slope = if (length(slope)) unlist(slope),
                cor.slope_intercept = if (length(rho)) unlist(rho),
                cor.slopes = if (length(rho00)) unlist(rho00))
    ## as insight does for lmer fits: with a variance component (nearly) zero
    ## the variance of the random part is not reported (ICC and conditional R2
    ## are then NA)
    if (any(unlist(lapply(vc, diag)) < tolerance)) {
        out$var.random <- NULL
        if (verbose)
            warning(paste("random-effect variances not computed: some variance components are (nearly) zero,",
                          "the fit is singular (see isSingular() and performance::check_singularity());",
                          "a smaller 'tolerance' forces the computation"), call. = FALSE)
    }
    out <- out[!vapply(out, is.null, NA)]
    switch(component,
           all = out, fixed = out["var.fixed"], random = out["var.random"], residual = out["var.residual"],
           distribution = out["var.distribution"], dispersion = out["var.dispersion"],
           intercept = out["var.intercept"], slope = out["var.slope"],
           rho01 = out["cor.slope_intercept"], rho00 = out["cor.slopes"])
}

## ---- performance -----------------------------------------------------------

#' @rdname lmmfit-easystats
check_singularity.lmmfit <- function(x, tolerance = 1e-5, ...) {
    isSingular.lmmfit(x, tol = tolerance)
}

#' @rdname lmmfit-easystats
check_convergence.lmmfit <- function(x, tolerance = 0.001, ...) {
    g <- x$optinfo$gradient
    sg <- x$optinfo$scaled_gradient
    if (!is.null(sg) && length(sg) == length(g)) g <- ifelse(is.na(sg), g, sg)
    grad <- if (length(g)) max(abs(g)) else 0
    ok <- is.finite(grad) && grad < tolerance && !isFALSE(x$optinfo$settled)
    structure(ok, gradient = grad)
}

#' @rdname lmmfit-easystats
r2.lmmfit <- function(model, ...) performance::r2_nakagawa(model, ...)

#' @rdname lmmfit-easystats
model_performance.lmmfit <- function(model, metrics = "all", verbose = TRUE, ...) {
    all_metrics <- c("AIC", "AICc", "BIC", "R2", "ICC", "RMSE", "SIGMA")
    if (identical(metrics, "all") || identical(metrics, "common")) metrics <- all_metrics
    metrics <- toupper(metrics)
    metrics[metrics == "AICC"] <- "AICc"
    ## information criteria of the likelihood the model was fitted by, as
    ## for lmer fits
    ll <- logLik(model)
    k <- attr(ll, "df"); n <- nobs(model)
    out <- list()
    if ("AIC" %in% metrics) out$AIC <- -2 * as.numeric(ll) + 2 * k
    if ("AICc" %in% metrics) out$AICc <- -2 * as.numeric(ll) + 2 * k * n / (n - k - 1)
    if ("BIC" %in% metrics) out$BIC <- -2 * as.numeric(ll) + log(n) * k
    if ("R2" %in% metrics) {
        r2 <- performance::r2_nakagawa(model, verbose = verbose)
        if (is.list(r2)) {
            out$R2_conditional <- unname(r2$R2_conditional)
            out$R2_marginal <- unname(r2$R2_marginal)
        }
    }
    if ("ICC" %in% metrics) {
        icc <- performance::icc(model, verbose = verbose)
        if (is.list(icc)) out$ICC <- icc$ICC_adjusted
    }
    if ("RMSE" %in% metrics) out$RMSE <- sqrt(mean(residuals(model)^2, na.rm = TRUE))
    if ("SIGMA" %in% metrics) out$Sigma <- sigma(model)
    out <- as.data.frame(out)
    attr(out, "r2") <- NULL
    class(out) <- c("performance_model", "data.frame")
    out
}

## ---- parameters and bayestestR -------------------------------------------------

#' @rdname lmmfit-easystats
standard_error.lmmfit <- function(model, method = "residual", ...) {
    inf <- fixef_inference(model, method)
    data.frame(Parameter = names(model$beta), SE = unname(inf$se), stringsAsFactors = FALSE)
}

#' @rdname lmmfit-easystats
degrees_of_freedom.lmmfit <- function(model, method = "residual", ...) {
    get_df.lmmfit(model, type = method)
}

#' @rdname lmmfit-easystats
p_value.lmmfit <- function(model, method = "residual", ...) {
    inf <- fixef_inference(model, method)
    t <- model$beta / inf$se
    data.frame(Parameter = names(model$beta), p = unname(2 * stats::pt(abs(t), inf$df, lower.tail = FALSE)),
               stringsAsFactors = FALSE)
}

#' @rdname lmmfit-easystats
ci.lmmfit <- function(x, ci = 0.95, method = "residual", ...) {
    inf <- fixef_inference(x, method)
    rows <- lapply(ci, function(level) {
        q <- stats::qt((1 + level) / 2, inf$df)
        data.frame(Parameter = names(x$beta), CI = level,
                   CI_low = unname(x$beta - q * inf$se), CI_high = unname(x$beta + q * inf$se),
                   stringsAsFactors = FALSE)
    })
    do.call(rbind, rows)
}

#' @rdname lmmfit-easystats
model_parameters.lmmfit <- function(model, ci = 0.95, ci_method = NULL, effects = "all", verbose = TRUE, ...) {
    effects <- match.arg(effects, c("all", "fixed", "random"))
    if (is.null(ci_method)) ci_method <- "residual"
    method <- easystats_df_method(ci_method)
    inf <- fixef_inference(model, method)
    b <- model$beta
    q <- stats::qt((1 + ci) / 2, inf$df)
    t <- b / inf$se
    fixed <- data.frame(Parameter = names(b), Coefficient = unname(b), SE = unname(inf$se), CI = ci,
                        CI_low = unname(b - q * inf$se), CI_high = unname(b + q * inf$se),
                        t = unname(t), df_error = unname(inf$df),
                        p = unname(2 * stats::pt(abs(t), inf$df, lower.tail = FALSE)),
                        Effects = "fixed", Group = "", stringsAsFactors = FALSE)
    ## the random-effect parameters, in parameters' naming
    vcl <- VarCorr(model)
    vc <- as.data.frame(vcl)
    ## VarCorr's names are made unique ("g", "g.1" for two terms of g)
    grp_of <- c(setNames(vapply(model$reterms, `[[`, "", "group"), names(vcl)), Residual = "Residual")
    vc$grp <- unname(grp_of[vc$grp])
    vc$var1 <- sub("(Intercept)", "Intercept", vc$var1, fixed = TRUE)
    vc$var2 <- sub("(Intercept)", "Intercept", vc$var2, fixed = TRUE)
    rand_name <- ifelse(vc$grp == "Residual", "SD (Observations)",
                        ifelse(is.na(vc$var2), sprintf("SD (%s)", vc$var1),
                               sprintf("Cor (%s~%s)", vc$var1, vc$var2)))
    random <- data.frame(Parameter = rand_name, Coefficient = vc$sdcor, SE = NA_real_, CI = ci,
                         CI_low = NA_real_, CI_high = NA_real_, t = NA_real_, df_error = NA_real_,
                         p = NA_real_, Effects = "random", Group = vc$grp, stringsAsFactors = FALSE)
    random <- random[order(random$Group == "Residual"), , drop = FALSE]
    ## as for lmer fits: a table of fixed effects alone has no Group column
    out <- switch(effects, all = rbind(fixed, random), random = random,
                  fixed = fixed[setdiff(names(fixed), "Group")])
    rownames(out) <- NULL
    ## parameters' labels of the fixed effects ("trt [b]" for level b of trt)
    pretty <- tryCatch(parameters::format_parameters(model), error = function(e) NULL)
    if (is.null(pretty) || !all(names(b) %in% names(pretty))) pretty <- setNames(names(b), names(b))
    pretty <- pretty[names(b)]
    ci_label <- c(residual = "residual", normal = "normal", satterthwaite = "satterthwaite",
                  kenward = "kenward")[[method]]
    structure(out,
              class = c("parameters_model", "see_parameters_model", "data.frame"),
              pretty_names = pretty,
              ci = ci, ci_method = ci_label, df_method = ci_label, verbose = verbose,
              exponentiate = FALSE, ordinal_model = FALSE, linear_model = TRUE, mixed_model = TRUE,
              n_obs = nobs(model), model_class = "lmmfit", bootstrap = FALSE, iterations = 1000,
              robust_vcov = FALSE, ignore_group = TRUE, ran_pars = effects != "fixed",
              show_summary = FALSE, log_link = FALSE,
              pretty_labels = c(pretty, setNames(out$Parameter, out$Parameter)[out$Effects == "random"]),
              test_statistic = "t-statistic", log_response = FALSE, log_predictors = FALSE,
              weighted_nobs = nobs(model), model_formula = deparse1(stats::formula(model$fixed_terms)),
              coefficient_name = "Coefficient", zi_coefficient_name = "Log-Odds",
              digits = 2, ci_digits = 2, p_digits = 3, footer_digits = 3,
              object_name = deparse1(substitute(model)))
}
