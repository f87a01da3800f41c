## Analysis of variance: F tests of the terms for one model (lmerTest's, or
## lme4's sequential table), likelihood-ratio tests for several.

## An ML refit of an REML fit, from the stored model matrices (no
## re-evaluation of the call, so it works wherever the fit object goes),
## started from the REML estimates.
refit_as_ml <- function(object) {
    if (!object$REML) return(object)
    if (inherits(object, "lmmfit_agg")) return(agg_refit_ml(object))    # from its statistics
    if (has_resid_structure(object)) {
        ## from the stored matrices too (R/resid-boot.R), warm-started at the
        ## REML estimates: update() would re-evaluate the data in the wrong frame
        out <- refit(object, REML = FALSE)
        out$call$REML <- FALSE
        return(out)
    }
    if (!is.null(object$call$correlation)) return(update(object, REML = FALSE))
    core <- lmm_fit_core(object$X, object$y, object$weights, object$offset, object$reterms,
                         REML = FALSE, control = object$control, theta0 = object$theta)
    for (nm in names(core)) object[[nm]] <- core[[nm]]
    object$REML <- FALSE
    object$call$REML <- FALSE
    object
}

#' Analysis of variance for lmmfit models
#'
#' With one model: F tests of the fixed-effect terms with denominator
#' degrees of freedom and p-values, as lmerTest's \code{anova}: by default
#' the type III (marginal) hypotheses with Satterthwaite's method, the same
#' df method as \code{summary()}, in lmerTest's layout (\code{Sum Sq},
#' \code{Mean Sq}, \code{NumDF}, \code{DenDF}, \code{F value},
#' \code{Pr(>F)}).  With \code{ddf = "lme4"} (or \code{"none"}): lme4's
#' sequential (type I) table, for each term the sum of squares of the
#' matching elements of \eqn{R_X \hat\beta} (\eqn{R_X' R_X = X' V^{-1} X
#' \sigma^2}), its number of columns (\code{npar}), the mean square and
#' \code{F value} = mean square / \eqn{\hat\sigma^2}, without p-values.
#' Fits where the F tests are not available (a residual correlation
#' structure, no fixed effects, aliased columns dropped) get lme4's table.
#'
#' With several models: likelihood-ratio tests of each model against the
#' previous one, the models sorted by their number of parameters.  REML fits
#' are first refitted by maximum likelihood (with a message), since REML
#' likelihoods of models with different fixed effects are not comparable.
#' All models must be fitted to the same observations.
#'
#' @param object a fitted \code{lmmfit} model.
#' @param ... further \code{lmmfit} models to compare.
#' @param refit logical: refit REML fits by ML before comparing them (the
#'   default, as lme4).
#' @param model.names names for the models in the table (one per model, in
#'   the order given), instead of their expressions, as lme4's argument.
#'   Models fitted by \code{lm} (with the same response) may be compared too,
#'   as in lme4.
#' @param type,ddf for one model: \code{ddf} is \code{"Satterthwaite"} (the
#'   default, as lmerTest), \code{"Kenward-Roger"} or \code{"lme4"} (lme4's
#'   table without p-values; \code{"none"} is the same); \code{type} is 3
#'   (marginal, the default) or 1 (sequential).
#' @return A data frame of class \code{"anova"}.  For one model: columns
#'   \code{Sum Sq}, \code{Mean Sq}, \code{NumDF}, \code{DenDF},
#'   \code{F value}, \code{Pr(>F)} (with \code{ddf = "lme4"}: \code{npar},
#'   \code{Sum Sq}, \code{Mean Sq}, \code{F value}), one row per
#'   fixed-effects term (the intercept omitted).  For several: \code{npar},
#'   \code{AIC}, \code{BIC}, \code{logLik}, \code{deviance}, \code{Chisq},
#'   \code{Df}, \code{Pr(>Chisq)}, one row per model, named as the arguments.
#' @examples
#' data(Orthodont, package = "nlme")
#' fit1 <- lmmfit(distance ~ age + Sex + (1 | Subject), data = Orthodont)
#' fit0 <- lmmfit(distance ~ age + (1 | Subject), data = Orthodont)
#' anova(fit1)
#' anova(fit0, fit1)
#' @export
anova.lmmfit <- function(object, ..., refit = TRUE, model.names = NULL, type = 3, ddf = NULL) {
    dots <- list(...)
    is_fit <- vapply(dots, function(d) inherits(d, "lmmfit") || identical(class(d), "lm"), NA)
    if (!all(is_fit)) {
        nm <- names(dots)
        if (is.null(nm)) nm <- rep("", length(dots))
        bad <- which(!is_fit)[1L]
        stop(if (nzchar(nm[bad])) sprintf("anova(): unknown argument '%s'", nm[bad])
             else sprintf("anova(): an lmmfit fit can be compared with lmmfit or lm fits, not with an object of class \"%s\"",
                          class(dots[[bad]])[1L]), call. = FALSE)
    }
    if (!any(is_fit)) {
        if (!is.null(model.names))
            stop("anova(): 'model.names' names the models of a comparison; there is only one model",
                 call. = FALSE)
        if (is.null(ddf)) ddf <- anova_default_ddf(object)
        if (!is.character(ddf) || length(ddf) != 1L || is.na(ddf))
            stop("anova(): 'ddf' must be \"Satterthwaite\", \"Kenward-Roger\" or \"lme4\"", call. = FALSE)
        if (ddf %in% c("none", "lme4")) return(anova_single(object))
        return(anova_ddf(object, type = type, ddf = ddf))
    }
    exprs <- as.list(substitute(list(...)))[-1L]
    nms <- c(deparse1(substitute(object)), vapply(exprs[is_fit], deparse1, ""))
    if (!is.null(model.names)) {
        if (!is.character(model.names) || length(model.names) != length(nms) || anyNA(model.names))
            stop(sprintf("anova(): 'model.names' must be %d names, one per model", length(nms)), call. = FALSE)
        nms <- model.names
    }
    anova_lrt(c(list(object), dots[is_fit]), nms, refit)
}

## The df method of anova() of one model when 'ddf' is not given: summary()'s
## (Satterthwaite's, as lmerTest), or lme4's table without p-values where the
## F tests are not available (residual correlation structures, no fixed
## effects, columns of X dropped as aliased), as summary() falls back too.
anova_default_ddf <- function(object) {
    if (has_resid_structure(object) || length(object$beta) == 0L || length(object$dropped)) "lme4"
    else "Satterthwaite"
}

## The response of an lmmfit or lm fit.
fit_response <- function(f) {
    ## a fit from aggregates: its number of rows and y'y stand for the response
    if (inherits(f, "lmmfit_agg")) c(f$nobs, f$xprod$AXX[length(f$xprod$AXX)])
    else if (inherits(f, "lmmfit")) f$y else as.numeric(stats::model.response(model.frame(f)))
}

anova_single <- function(object) {
    X <- object$X
    asgn <- attr(X, "assign")
    if (is.null(asgn)) stop("the fixed-effects model matrix has lost its 'assign' attribute", call. = FALSE)
    labels <- attr(object$fixed_terms, "term.labels")
    ss_col <- drop(object$RX %*% object$beta)^2
    ss <- vapply(split(ss_col, asgn), sum, 0)
    df <- vapply(split(asgn, asgn), length, 0L)
    idx <- as.integer(names(ss))
    nm <- ifelse(idx == 0L, "(Intercept)", labels[pmax(idx, 1L)])
    ms <- ss / df
    tab <- data.frame(npar = df, `Sum Sq` = ss, `Mean Sq` = ms, `F value` = ms / sigma(object)^2,
                      check.names = FALSE, row.names = nm)
    tab <- tab[idx != 0L, , drop = FALSE]
    structure(tab, heading = "Analysis of Variance Table", class = c("anova", "data.frame"))
}

anova_lrt <- function(fits, nms, refit) {
    n <- vapply(fits, nobs, 1L)
    if (length(unique(n)) > 1L ||
        !all(vapply(fits[-1L], function(f) isTRUE(all.equal(fit_response(f), fit_response(fits[[1L]]),
                                                            check.attributes = FALSE)), NA)))
        stop("all models must be fitted to the same observations (same response, same rows)",
             call. = FALSE)
    reml <- vapply(fits, function(f) isTRUE(f$REML), NA)
    if (refit && any(reml)) {
        message("refitting model(s) with ML (instead of REML)")
        fits[reml] <- lapply(fits[reml], refit_as_ml)
    }
    anova_lrt_table(fits, nms)
}

## The likelihood-ratio table of fits on the same observations (checked by
## the caller), sorted by their numbers of parameters, in lme4's layout.
anova_lrt_table <- function(fits, nms) {
    n <- vapply(fits, nobs, 1L)
    ll <- lapply(fits, logLik)
    npar <- vapply(ll, attr, 1, "df")
    ord <- order(npar)
    fits <- fits[ord]; ll <- ll[ord]; npar <- npar[ord]; nms <- nms[ord]
    llv <- vapply(ll, as.numeric, 0)
    nobs1 <- n[1L]
    chisq <- c(NA, 2 * pmax(0, diff(llv)))
    dfc <- c(NA, diff(npar))
    p <- ifelse(is.na(dfc) | dfc == 0, NA_real_, stats::pchisq(chisq, dfc, lower.tail = FALSE))
    tab <- data.frame(npar = npar, AIC = -2 * llv + 2 * npar, BIC = -2 * llv + log(nobs1) * npar,
                      logLik = llv, deviance = -2 * llv, Chisq = chisq, Df = dfc,
                      `Pr(>Chisq)` = p, check.names = FALSE, row.names = nms)
    data_name <- fits[[1L]]$call$data
    forms <- vapply(fits, function(f) deparse1(formula(f)), "")
    heading <- c(if (!is.null(data_name)) paste("Data:", deparse1(data_name)), "Models:",
                 paste(nms, forms, sep = ": "))
    structure(tab, heading = heading, class = c("anova", "data.frame"))
}
