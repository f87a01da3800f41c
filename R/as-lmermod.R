## An lme4 lmerMod object at lmmfit's estimates, for tools that accept only
## merMod objects.

## Is lme4 available?  (A function of its own so that its absence can be
## simulated in the tests.)
lme4_installed <- function() requireNamespace("lme4", quietly = TRUE)

#' Convert an lmmfit fit to an lme4 lmerMod object
#'
#' Builds lme4's model from the fit's formula and data with lme4's modular
#' functions (\code{lme4::lFormula} and \code{lme4::mkLmerDevfun}), evaluates
#' lme4's deviance function once at lmmfit's estimate of theta, and returns
#' the resulting \code{lmerMod} object: no lme4 optimizer is run, so the
#' fixed effects, variance components, log-likelihood and REML criterion are
#' lmmfit's.  For tools that accept only \code{merMod} objects.
#'
#' The model's data are re-evaluated from the fit's call (the \code{data},
#' \code{subset}, \code{weights}, \code{offset}, \code{na.action} and
#' \code{contrasts} arguments), as \code{update()} does, so they must still be
#' available.  Fits with a residual correlation structure
#' (\code{correlation =}) or \code{wb()} terms have no lme4 equivalent and are
#' refused.  Requires package lme4.
#'
#' @param fit a fitted \code{lmmfit} model.
#' @param envir environment in which to evaluate the fit's data arguments.
#' @return An object of class \code{lmerMod}.
#' @examples
#' if (requireNamespace("lme4", quietly = TRUE)) {
#'   data(sleepstudy, package = "lme4")
#'   fit <- lmmfit(Reaction ~ Days + (Days | Subject), sleepstudy)
#'   m <- as_lmerMod(fit)
#'   lme4::fixef(m)
#' }
#' @export
as_lmerMod <- function(fit, envir = parent.frame()) {
    if (!inherits(fit, "lmmfit")) stop("as_lmerMod(): 'fit' must be an lmmfit fit", call. = FALSE)
    if (!lme4_installed())
        stop("as_lmerMod() needs package 'lme4', which is not installed: install.packages(\"lme4\")",
             call. = FALSE)
    if (has_resid_structure(fit) || !is.null(fit$call$correlation))
        stop("as_lmerMod(): a fit with a residual variance or correlation structure has no lme4 equivalent",
             call. = FALSE)
    if (!is.null(fit$wb))
        stop("as_lmerMod(): a fit with wb() terms has no lme4 equivalent", call. = FALSE)
    cl <- fit$call
    lf_call <- call("lFormula", formula = fit$formula, REML = fit$REML)
    lf_call[[1L]] <- quote(lme4::lFormula)
    for (a in c("data", "subset", "weights", "na.action", "offset", "contrasts"))
        if (!is.null(cl[[a]])) lf_call[[a]] <- cl[[a]]
    lf <- tryCatch(suppressMessages(eval(lf_call, envir)), error = function(e)
        stop(sprintf("as_lmerMod(): lme4::lFormula() could not rebuild the model from the fit's call: %s",
                     conditionMessage(e)), call. = FALSE))
    if (nrow(lf$fr) != nobs(fit))
        stop(sprintf("as_lmerMod(): lme4 rebuilt the model with %d observations, the fit has %d",
                     nrow(lf$fr), nobs(fit)), call. = FALSE)
    theta <- as.vector(lme4_theta_of(fit, lf$reTrms$cnms, "as_lmerMod"))
    devfun <- do.call(lme4::mkLmerDevfun, lf)
    dev <- devfun(theta)
    opt <- list(par = theta, fval = dev, feval = 1L, conv = 0L,
                message = "theta set to lmmfit's estimate; no lme4 optimizer was run")
    ## the call of the lmer fit of the same model: update() and the tools
    ## that refit through the call then optimise afresh (a call holding
    ## lmmfit's theta and no optimizer would return the old theta on new data)
    mc <- lf_call
    mc[[1L]] <- quote(lme4::lmer)
    lme4::mkMerMod(environment(devfun), opt, lf$reTrms, fr = lf$fr, mc = mc)
}

## The fit's theta in lme4's order for lme4's terms 'cnms' (reTrms$cnms),
## matched by name (the names getME(, "theta") gives), with attribute
## "index" (the positions in fit$theta).  An error names both sets when
## they do not match.
lme4_theta_of <- function(fit, cnms, who) {
    lme4_names <- unlist(lapply(seq_along(cnms), function(i) {
        cn <- cnms[[i]]; k <- length(cn); g <- names(cnms)[i]
        out <- character()
        for (c in seq_len(k)) for (r in c:k)
            out <- c(out, if (r == c) paste(g, cn[r], sep = ".") else paste(g, cn[r], cn[c], sep = "."))
        out
    }))
    ours <- names(fit$theta)
    idx <- match(lme4_names, ours)
    if (length(lme4_names) != length(ours) || anyNA(idx) || anyDuplicated(idx))
        stop(sprintf("%s(): lme4's covariance parameters (%s) do not match the fit's (%s)", who,
                     paste(lme4_names, collapse = ", "), paste(ours, collapse = ", ")), call. = FALSE)
    structure(unname(fit$theta[idx]), index = idx)
}
