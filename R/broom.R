## Tidiers in broom's conventions (generics::tidy, glance, augment).  They
## are registered when the generics (or broom) namespace loads, without a
## dependency: see .onLoad in zzz.R.

#' Tidy, glance and augment an lmmfit model (broom conventions)
#'
#' Methods for the \code{tidy}, \code{glance} and \code{augment} generics of
#' the \pkg{generics} package (re-exported by \pkg{broom}).  lmmfit does not
#' depend on either: the methods are registered when \pkg{generics} is
#' loaded, and can also be called directly as \code{tidy.lmmfit(fit)}.  The
#' layout follows \pkg{broom.mixed}.
#'
#' \code{tidy}: one row per fixed effect (\code{effect = "fixed"}: estimate,
#' standard error, t statistic, with \code{ddf.method} its df and p-value) and
#' per variance parameter
#' (\code{effect = "ran_pars"}: standard deviations \code{sd__term} and
#' correlations \code{cor__term1.term2} of each grouping factor, and
#' \code{sd__Observation} of the residual).  \code{glance}: one row of
#' summary statistics.  \code{augment}: the model frame (or \code{newdata})
#' with \code{.fitted}, \code{.resid} and \code{.fixed} (the prediction
#' without random effects).
#'
#' @param x a fitted \code{lmmfit} model.
#' @param effects which rows \code{tidy} returns: any of \code{"fixed"},
#'   \code{"ran_pars"}, \code{"ran_vals"} and \code{"ran_coefs"}.
#' @param conf.int logical: add Wald confidence limits \code{conf.low},
#'   \code{conf.high} for the fixed effects (and the conditional modes).
#' @param conf.level their level.
#' @param data ignored (the model frame is used).
#' @param newdata optional new data for \code{augment}.
#' @param ... passed to \code{predict} by \code{augment}; ignored otherwise.
#' @return A data frame.
#' @examples
#' data(Orthodont, package = "nlme")
#' fit <- lmmfit(distance ~ age + (age | Subject), data = Orthodont)
#' tidy.lmmfit(fit)
#' glance.lmmfit(fit)
#' head(augment.lmmfit(fit))
#' @name lmmfit-tidiers
NULL

## tidy.lmmfit is in ext-broom-mixed.R

#' @rdname lmmfit-tidiers
#' @export
glance.lmmfit <- function(x, ...) {
    ll <- logLik(x)
    data.frame(nobs = nobs(x), sigma = sigma(x), logLik = as.numeric(ll),
               AIC = stats::AIC(ll), BIC = stats::BIC(ll),
               deviance = deviance(x, REML = FALSE), REMLcrit = if (x$REML) x$deviance_value else NA_real_,
               df.residual = df.residual(x))
}

#' @rdname lmmfit-tidiers
#' @export
augment.lmmfit <- function(x, data = NULL, newdata = NULL, ...) {
    if (is.null(newdata)) {
        out <- x$frame
        attr(out, "terms") <- NULL
        out$.fitted <- linear_predictor(x)
        out$.resid <- x$y - out$.fitted
        out$.fixed <- linear_predictor(x, random = FALSE)
        return(out)
    }
    out <- newdata
    out$.fitted <- unname(predict.lmmfit(x, newdata, ...))
    yname <- deparse1(x$formula[[2L]])
    if (yname %in% names(newdata)) out$.resid <- newdata[[yname]] - out$.fitted
    out$.fixed <- unname(predict.lmmfit(x, newdata, re.form = NA, ...))
    out
}
