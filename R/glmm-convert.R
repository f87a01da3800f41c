## An lme4 glmerMod object at glmmfit's estimates, for tools that accept
## only merMod objects: the counterpart of as_lmerMod() (R/as-lmermod.R).

## lme4's PIRLS tolerance for the one evaluation at glmmfit's estimates
GLMER_CONVERT_TOL_PWRSS <- 1e-13

#' Convert a glmmfit fit to an lme4 glmerMod object
#'
#' Builds lme4's model from the fit's formula and data with lme4's modular
#' functions (\code{lme4::glFormula}, \code{lme4::mkGlmerDevfun} and, for
#' \code{nAGQ >= 1}, \code{lme4::updateGlmerDevfun}), evaluates lme4's
#' deviance function once at glmmfit's estimates (theta and the fixed
#' effects; lme4's PIRLS then finds the conditional modes at them), and
#' returns the resulting \code{glmerMod} object: no lme4 optimizer is run, so
#' the fixed effects, variance components, conditional modes and
#' log-likelihood are glmmfit's.  The fit's finite-difference Hessian is
#' stored as lme4's, so \code{vcov()} of the result is glmmfit's
#' \code{vcov()} (a covariance parameter at its boundary held fixed, as
#' glmmfit holds it).
#'
#' The model's data are re-evaluated from the fit's call (\code{data},
#' \code{subset}, \code{weights}, \code{offset}, \code{na.action},
#' \code{contrasts}), so they must still be available.  Binomial, Poisson and
#' \code{\link{glmmfit_nb}} fits convert (the latter with the shape it
#' estimated, as \code{lme4::glmer.nb} reports it); a negative binomial with
#' its shape given has no glmer equivalent (lme4 counts the shape as
#' estimated in \code{logLik}) and is refused, as are other families.
#' Requires package lme4.
#'
#' @param fit a fitted \code{glmmfit} model.
#' @param envir environment in which to evaluate the fit's data arguments.
#' @return An object of class \code{glmerMod}.
#' @examples
#' if (requireNamespace("lme4", quietly = TRUE)) {
#'   data(cbpp, package = "lme4")
#'   fit <- glmmfit(cbind(incidence, size - incidence) ~ period + (1 | herd),
#'                  data = cbpp, family = binomial)
#'   m <- as_glmerMod(fit)
#'   lme4::fixef(m)
#' }
#' @export
as_glmerMod <- function(fit, envir = parent.frame()) {
    if (!inherits(fit, "glmmfit")) stop("as_glmerMod(): 'fit' must be a glmmfit fit", call. = FALSE)
    if (!lme4_installed())
        stop("as_glmerMod() needs package 'lme4', which is not installed: install.packages(\"lme4\")",
             call. = FALSE)
    fam <- fit$family$family
    if (!(fam %in% c("binomial", "poisson") || grepl("^Negative Binomial", fam)))
        stop(sprintf("as_glmerMod(): the %s family is not supported (binomial, poisson and negative binomial are)",
                     fam), call. = FALSE)
    if (grepl("^Negative Binomial", fam) && !isTRUE(fit$nb_theta_estimated))
        stop(paste0("as_glmerMod(): a negative binomial fit with its theta given has no glmer equivalent ",
                    "(lme4 counts the shape as estimated in logLik() and AIC()): fit it with glmmfit_nb()"),
             call. = FALSE)
    gf <- glmer_rebuild(fit, envir)
    theta_l <- lme4_theta_of(fit, gf$reTrms$cnms, "as_glmerMod")
    theta <- as.vector(theta_l)
    ## lme4's PIRLS to glmmfit's precision (its default tolPwrss, 1e-7, would
    ## leave the criterion ~1e-7 relative above the value at the modes)
    ctl <- lme4::glmerControl(tolPwrss = GLMER_CONVERT_TOL_PWRSS)
    devfun <- do.call(lme4::mkGlmerDevfun, c(gf[setdiff(names(gf), c("formula", "call"))],
                                             list(nAGQ = 0L, control = ctl)))
    if (fit$nAGQ > 0L) {
        devfun <- lme4::updateGlmerDevfun(devfun, gf$reTrms, nAGQ = fit$nAGQ)
        par <- c(theta, unname(fit$beta))
    } else par <- theta
    dev <- devfun(par)
    opt <- list(par = par, fval = dev, feval = 1L, conv = 0L,
                message = "parameters set to glmmfit's estimates; no lme4 optimizer was run")
    ## glmer's Hessian of the criterion in (theta, beta), for vcov(); not
    ## with nAGQ = 0 (glmer has none then)
    if (fit$nAGQ > 0L) attr(opt, "derivs") <- list(gradient = rep(0, length(par)),
                                                   Hessian = glmer_hessian_for_vcov(fit, theta_l))
    lme4::mkMerMod(environment(devfun), opt, gf$reTrms, fr = gf$fr, mc = glmer_call(fit, gf$call))
}

## lme4's glFormula() of the fit's model from its call's data arguments;
## the call it evaluated kept as $call.
glmer_rebuild <- function(fit, envir) {
    cl <- fit$call
    gf_call <- call("glFormula", formula = fit$formula, family = fit$family)
    gf_call[[1L]] <- quote(lme4::glFormula)
    for (a in c("data", "subset", "weights", "na.action", "offset", "contrasts"))
        if (!is.null(cl[[a]])) gf_call[[a]] <- cl[[a]]
    gf <- tryCatch(suppressMessages(eval(gf_call, envir)), error = function(e)
        stop(sprintf("as_glmerMod(): lme4::glFormula() could not rebuild the model from the fit's call: %s",
                     conditionMessage(e)), call. = FALSE))
    if (nrow(gf$fr) != nobs(fit))
        stop(sprintf("as_glmerMod(): lme4 rebuilt the model with %d observations, the fit has %d",
                     nrow(gf$fr), nobs(fit)), call. = FALSE)
    gf$call <- gf_call
    gf
}

## The call of the glmer (or glmer.nb) fit of the same model: update() and
## the tools that refit through the call then optimise afresh.
glmer_call <- function(fit, gf_call) {
    mc <- gf_call
    if (isTRUE(fit$nb_theta_estimated)) {
        mc[[1L]] <- quote(lme4::glmer.nb)
        mc$family <- NULL
    } else {
        mc[[1L]] <- quote(lme4::glmer)
        if (!is.null(fit$call$family)) mc$family <- fit$call$family
    }
    if (fit$nAGQ != 1L) mc$nAGQ <- fit$nAGQ
    mc
}

## glmmfit's Hessian as lme4's vcov() reads it (2 [H^{-1}]_beta,beta): the
## rows and columns of a theta glmmfit holds at its boundary (R/glmm-methods.R's
## glmm_vcov_hessian) decoupled, so lme4's inverse has glmmfit's beta block.
## The theta rows are put in lme4's order.
glmer_hessian_for_vcov <- function(fit, theta_lme4) {
    H <- glmm_hessian(fit)
    nt <- length(fit$theta)
    held <- which(fit$theta <= GLMM_HESSIAN_BOUNDARY & theta_is_diag(fit$reterms))
    for (i in held) {
        d <- H[i, i]
        H[i, ] <- H[, i] <- 0
        H[i, i] <- if (d > 0) d else 1
    }
    idx <- c(attr(theta_lme4, "index"), nt + seq_along(fit$beta))
    H[idx, idx]
}
