## Support for emmeans (estimated marginal means, contrasts, trends) through
## its documented extension mechanism: S3 methods for emmeans' generics
## recover_data() and emm_basis(), registered in .onLoad (zzz.R) when
## emmeans' namespace loads, so that lmmfit does not depend on emmeans.

#' emmeans support for lmmfit models
#'
#' With \pkg{emmeans} installed, \code{emmeans()}, \code{ref_grid()},
#' \code{emtrends()}, \code{contrast()}, \code{pairs()}, \code{joint_tests()}
#' and the rest of \pkg{emmeans} work on an \code{lmmfit} fit as on an
#' \code{lme4::lmer} fit.  lmmfit provides the \code{recover_data} and
#' \code{emm_basis} methods \pkg{emmeans} asks of a new model class
#' (see \code{vignette("xtending", package = "emmeans")}); they are
#' registered when \pkg{emmeans} is loaded.
#'
#' The degrees of freedom follow the argument \code{lmer.df} (or its alias
#' \code{mode}) as for \code{lmer} fits, by default \pkg{emmeans}' option
#' \code{emm_options("lmer.df")} (also for \code{mode} \code{"link"},
#' \code{"response"} or \code{"linear.predictor"}, the prediction modes of
#' other model classes, all the same for a linear mixed model):
#' \describe{
#'   \item{\code{"kenward-roger"}}{Kenward-Roger's adjusted covariance of the
#'     fixed effects and its denominator degrees of freedom (REML fits only;
#'     an ML fit uses Satterthwaite's method, with a message).  lmmfit computes
#'     them itself, from its cross-products, as \code{\link{lmm_contrast}}
#'     does: \pkg{pbkrtest} is not needed.  Its cost grows with the number of
#'     random effects plus fixed effects (not with the number of
#'     observations); when that exceeds \code{emm_options("pbkrtest.limit")}
#'     Satterthwaite's method is used instead, with a message.}
#'   \item{\code{"satterthwaite"}}{Satterthwaite's degrees of freedom, as
#'     \pkg{lmerTest}'s, also computed by lmmfit itself.}
#'   \item{\code{"asymptotic"}}{infinite degrees of freedom (z tests).}
#' }
#' A user-supplied \code{vcov.} is used as the covariance of the fixed
#' effects (Kenward-Roger's adjustment then does not apply: Satterthwaite's
#' degrees of freedom are reported).  Fits with a residual variance or
#' correlation structure have Satterthwaite's degrees of freedom (Kenward-Roger
#' falls back to them, with a message).
#' Columns of the fixed-effects matrix dropped as aliased are treated as
#' \pkg{emmeans} treats rank-deficient models: their coefficients are
#' \code{NA} and non-estimable grid points are flagged.
#'
#' @param object a fitted \code{lmmfit} model.
#' @param trms,xlev,grid supplied by \pkg{emmeans}.
#' @param vcov. optional covariance matrix (or function) of the fixed effects.
#' @param mode,lmer.df the degrees-of-freedom method (see Details).
#' @param options options passed by \pkg{emmeans}.
#' @param ... passed on by \pkg{emmeans}.
#' @return \code{recover_data}: the data \pkg{emmeans} builds its reference
#'   grid from; \code{emm_basis}: the list \pkg{emmeans} asks for.
#' @examples
#' if (requireNamespace("emmeans", quietly = TRUE)) {
#'     data(Orthodont, package = "nlme")
#'     fit <- lmmfit(distance ~ age + Sex + (1 | Subject), data = Orthodont)
#'     emmeans::emmeans(fit, ~ Sex)
#' }
#' @name lmmfit-emmeans
#' @keywords internal
NULL

#' @rdname lmmfit-emmeans
recover_data.lmmfit <- function(object, ...) {
    if (!is.null(object$wb))
        return("emmeans cannot rebuild the data of a model with wb() terms: pass 'data' to emmeans()")
    emmeans::recover_data(object$call, trms = delete.response(object$fixed_terms),
                          na.action = object$na.action, frame = object$frame, ...)
}

#' @rdname lmmfit-emmeans
emm_basis.lmmfit <- function(object, trms, xlev, grid, vcov., mode, lmer.df, options, ...) {
    if (!missing(lmer.df)) mode <- lmer.df
    ## other models' prediction modes (ggeffects passes them): on the
    ## identity link of a linear mixed model they are all the same
    if (missing(mode) || tolower(mode) %in% c("link", "response", "linear.predictor", "lp"))
        mode <- emmeans::get_emm_option("lmer.df")
    mode <- match.arg(tolower(mode), c("satterthwaite", "kenward-roger", "asymptotic"))
    user_vcov <- !missing(vcov.)
    if (!missing(options) && !is.null(options$df) && mode != "kenward-roger") mode <- "asymptotic"

    ## the grid's linear functions, with every column of the full model matrix
    mf <- model.frame(trms, grid, na.action = na.pass, xlev = xlev)
    X <- model.matrix(trms, mf, contrasts.arg = object$contrasts)
    bhat <- setNames(rep(NA_real_, ncol(X)), colnames(X))
    if (!all(names(object$beta) %in% colnames(X)))
        stop("the reference grid's model matrix does not match the fit's fixed effects", call. = FALSE)
    bhat[names(object$beta)] <- object$beta
    nbasis <- if (anyNA(bhat)) nonestimable_basis(object) else matrix(NA)

    if (mode == "kenward-roger" && has_resid_structure(object)) {
        message("Kenward-Roger's method is not available for a fit with a residual variance or correlation ",
                "structure: using Satterthwaite's")
        mode <- "satterthwaite"
    }
    if (mode == "kenward-roger") {
        size <- length(object$u) + length(object$beta)
        limit <- emmeans::get_emm_option("pbkrtest.limit")
        why <- if (user_vcov) "it does not apply to a user-supplied 'vcov.'"
               else if (!object$REML) "it needs a REML fit"
               else if (size > limit)
                   sprintf(paste0("the model has %d random and fixed effects, more than ",
                                  "emm_options('pbkrtest.limit') = %d"), size, limit)
        if (!is.null(why)) {
            message("Kenward-Roger's method is not used (", why, "): using Satterthwaite's")
            mode <- "satterthwaite"
        }
    }
    keep <- !is.na(bhat)
    if (mode == "kenward-roger") {
        st <- kenward_roger_setup(object)
        V <- st$vcov_adj
        dffun <- emm_df_kenward_roger
    } else {
        V <- if (user_vcov) emmeans::.my.vcov(object, vcov. = vcov.) else vcov(object)
        if (mode == "satterthwaite") {
            st <- satterthwaite_setup(object)
            dffun <- emm_df_satterthwaite
        } else {
            st <- NULL
            dffun <- emm_df_asymptotic
        }
    }
    ## emmeans keeps dffun with a bare environment: it reaches lmmfit's
    ## code through dfargs
    dfargs <- list(st = st, keep = keep, beta = object$beta, df = dffun)
    dffun <- function(k, dfargs) dfargs$df(k, dfargs)
    attr(dffun, "mesg") <- mode
    w <- if (is.null(object$weights)) rep(1, nrow(object$X)) else object$weights
    list(X = X, bhat = unname(bhat), nbasis = nbasis, V = V, dffun = dffun, dfargs = dfargs,
         misc = list(), model.matrix = emmeans::.cmpMM(object$X, w, attr(object$X, "assign")))
}

## The linear function(s) k (a vector, or a matrix with one row per
## function) restricted to the estimated coefficients.
emm_k <- function(k, dfargs) {
    L <- if (is.matrix(k)) k else matrix(k, nrow = 1L)
    if (ncol(L) == length(dfargs$keep) && ncol(L) != sum(dfargs$keep))
        L <- L[, dfargs$keep, drop = FALSE]
    L
}

emm_df_asymptotic <- function(k, dfargs) Inf

## Satterthwaite's df of one linear function, or of the F test of several.
emm_df_satterthwaite <- function(k, dfargs) {
    L <- emm_k(k, dfargs)
    if (nrow(L) == 1L) return(satterthwaite_df1(drop(L), dfargs$st))
    contrast_md(list(beta = dfargs$beta), L, dfargs$st)$DenDF
}

## Kenward-Roger's df of one linear function, or of the F test of several.
emm_df_kenward_roger <- function(k, dfargs) {
    L <- emm_k(k, dfargs)
    qr_L <- qr(t(L))
    if (qr_L$rank < nrow(L)) L <- t(qr.Q(qr_L)[, seq_len(qr_L$rank), drop = FALSE])
    unname(kenward_roger_df(L, dfargs$st)["ddf"])
}

## A basis of the null space of the full fixed-effects model matrix (before
## aliased columns were dropped): the functions emmeans cannot estimate.
nonestimable_basis <- function(object) {
    Xf <- model.matrix(object$fixed_terms, object$frame, contrasts.arg = object$contrasts)
    e <- eigen(crossprod(Xf), symmetric = TRUE)
    null <- e$values <= max(e$values) * 1e-10 * ncol(Xf)
    if (!any(null)) return(matrix(NA))
    B <- e$vectors[, null, drop = FALSE]
    rownames(B) <- colnames(Xf)
    B
}
