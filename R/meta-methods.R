## The accessors of a meta-analysis: coef, vcov, logLik, fitted, residuals,
## predict (with the prediction interval), confint (Q-profile for tau^2),
## weights under both models, ranef (the BLUPs), anova and summary.

#' @export
coef.metafit <- function(object, ...) object$beta

#' @export
vcov.metafit <- function(object, ...) object$vb

#' @export
nobs.metafit <- function(object, ...) object$model$k

#' @export
fitted.metafit <- function(object, ...) setNames(drop(object$model$X %*% object$beta), object$model$slab)

#' @export
residuals.metafit <- function(object, ...) setNames(object$model$y - fitted(object), object$model$slab)

## metafor's log-likelihood: the REML one for REML fits, else the ML one;
## with REML the information criteria count k - p observations.
#' @export
logLik.metafit <- function(object, REML = object$method == "REML", ...) {
    col <- if (REML) "REML" else "ML"
    npar <- object$model$p + if (object$method == "FE") 0L else length(object$theta)
    structure(object$fit_stats["ll", col], df = npar,
              nobs = object$model$k - if (REML) object$model$p else 0L, class = "logLik")
}

#' @export
deviance.metafit <- function(object, REML = object$method == "REML", ...)
    object$fit_stats["dev", if (REML) "REML" else "ML"]

## The total between-study variance a new study's effect varies by: tau^2,
## or the sum of the scalar components of a multilevel model (NA with a
## vector term: it depends on the new effect's columns).
meta_total_tau2 <- function(object) {
    if (object$method == "FE" || object$model$fe_only) return(0)
    if (object$model$uni) return(object$tau2)
    cm <- object$components
    if (any(vapply(cm, function(c) length(c$columns) > 1L, NA))) return(NA_real_)
    sum(vapply(cm, function(c) c$cov[1L], 0))
}

#' Predictions from a meta-analysis
#'
#' The expected effect at given moderator values, with its confidence
#' interval and the prediction interval of the true effect of a new study
#' (\eqn{\hat\mu \pm c \sqrt{SE^2 + \tau^2}}, \eqn{c} the normal or t
#' quantile as the fit's \code{test}).
#'
#' @param object a \code{metafit} fit.
#' @param newmods moderator values as metafor takes them: a vector (one
#'   moderator, or one new study) or a matrix with one column per
#'   coefficient other than the intercept.
#' @param newdata alternatively, a data frame holding the moderators.
#' @param level confidence level (default the fit's).
#' @param transf optional function applied to the estimates and limits
#'   (e.g. \code{exp} for log risk ratios).
#' @param ... unused.
#' @return A data frame: \code{pred}, \code{se}, \code{ci.lb}, \code{ci.ub},
#'   \code{pi.lb}, \code{pi.ub}.
#' @export
predict.metafit <- function(object, newmods = NULL, newdata = NULL, level = object$level,
                            transf = NULL, ...) {
    if (length(list(...))) stop(sprintf("unused argument(s) %s", paste(names(list(...)), collapse = ", ")),
                                call. = FALSE)
    level <- meta_level(level)
    X0 <- meta_new_x(object, newmods, newdata)
    pred <- drop(X0 %*% object$beta)
    se <- sqrt(rowSums((X0 %*% object$vb) * X0))
    a <- (1 - level) / 2
    crit <- if (is.na(object$ddf)) stats::qnorm(1 - a) else stats::qt(1 - a, object$ddf)
    spi <- sqrt(se^2 + meta_total_tau2(object))
    out <- data.frame(pred = pred, se = se, ci.lb = pred - crit * se, ci.ub = pred + crit * se,
                      pi.lb = pred - crit * spi, pi.ub = pred + crit * spi)
    if (!is.null(transf)) for (v in c("pred", "ci.lb", "ci.ub", "pi.lb", "pi.ub")) out[[v]] <- transf(out[[v]])
    if (!is.null(transf)) out$se <- NULL
    out
}

meta_new_x <- function(object, newmods, newdata) {
    X <- object$model$X
    icpt <- "(Intercept)" %in% colnames(X)
    if (!is.null(newdata)) {
        tt <- stats::delete.response(object$model$fixed_terms)
        X0 <- stats::model.matrix(tt, stats::model.frame(tt, newdata, xlev = stats::.getXlevels(tt,
                                  object$model$frame)))
        return(X0[, colnames(X), drop = FALSE])
    }
    if (is.null(newmods)) return(if (ncol(X) == 1L && icpt) matrix(1, 1L, 1L) else X)
    nm <- ncol(X) - icpt
    M <- if (is.matrix(newmods)) newmods else if (nm == 1L) matrix(newmods, ncol = 1L)
         else matrix(newmods, nrow = 1L)
    if (ncol(M) != nm)
        stop(sprintf("'newmods' must have %d column%s (the coefficients other than the intercept)",
                     nm, if (nm == 1L) "" else "s"), call. = FALSE)
    if (icpt) cbind(1, M) else M
}

## The weights (in percent) of each effect: under the common-effect model,
## 1 / vi, and under the fitted model, 1 / (vi + tau^2): the random-effects
## model compresses them, so that small studies count relatively more.
meta_weights_uni <- function(object, tau2 = object$tau2) {
    w <- 1 / (object$model$vi + tau2)
    100 * w / sum(w)
}

#' @export
weights.metafit <- function(object, ...) {
    if (!(object$model$uni || (object$model$fe_only && !object$model$whiten)))
        stop("weights() is for one random effect per study with independent effects", call. = FALSE)
    setNames(meta_weights_uni(object, if (object$method == "FE") 0 else object$tau2), object$model$slab)
}

#' Study weights under the common-effect and the random-effects model
#'
#' @param object a \code{metafit} fit with one random effect per study.
#' @return A data frame with the effect, its variance and its weight (in
#'   percent) under the common-effect model and under the fitted
#'   random-effects model, side by side.
#' @export
meta_weights <- function(object) {
    if (!inherits(object, "metafit")) stop("'object' must be a metafit fit", call. = FALSE)
    re <- weights(object)
    data.frame(yi = object$model$y, vi = object$model$vi,
               common = meta_weights_uni(object, 0), random = unname(re),
               row.names = object$model$slab)
}

#' @export
ranef.metafit <- function(object, level = object$level, ...) {
    m <- object$model
    if (m$fe_only || object$method == "FE") stop("a common-effect model has no random effects", call. = FALSE)
    if (!m$uni) return(meta_ranef_terms(object))
    ## the BLUP li (y - X b) and its error variance li vi + li^2 x' vb x,
    ## li = tau^2 / (tau^2 + vi) the shrinkage factor
    li <- object$tau2 / (object$tau2 + m$vi)
    pred <- li * (m$y - drop(m$X %*% object$beta))
    se <- sqrt(li * m$vi + li^2 * rowSums((m$X %*% object$vb) * m$X))
    crit <- stats::qnorm(1 - (1 - level) / 2)
    if (!is.na(object$ddf)) crit <- stats::qt(1 - (1 - level) / 2, object$ddf)
    data.frame(pred = pred, se = se, pi.lb = pred - crit * se, pi.ub = pred + crit * se,
               row.names = m$slab)
}

## A multilevel model's BLUPs: Lambda u per term, one row per level.
meta_ranef_terms <- function(object) {
    b <- random_effects(list(theta = object$theta, reterms = object$model$terms, u = object$u))
    setNames(lapply(b, as.data.frame), vapply(object$model$terms, `[[`, "", "group"))
}
