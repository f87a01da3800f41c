## Intraclass correlation of a random-intercept model.

#' Intraclass correlation (adjusted ICC)
#'
#' The share of the variance not explained by the fixed effects that lies
#' between the levels of a grouping factor.  For a random-intercept model
#' \code{y ~ x + (1 | g)} it is
#' \deqn{ICC = \sigma_u^2 / (\sigma_u^2 + \sigma_e^2),}{ICC = sigma_u^2 / (sigma_u^2 + sigma_e^2),}
#' the variance of the random intercepts over that plus the residual variance:
#' the correlation of two observations of the same group (the "adjusted" ICC,
#' since the fixed effects are conditioned on).
#'
#' With several grouping factors (crossed or nested) there is one ICC per
#' factor with a random intercept: that factor's intercept variance over the
#' sum of \emph{all} intercept variances plus the residual variance,
#' \eqn{\sigma_j^2 / (\sum_k \sigma_k^2 + \sigma_e^2)}{sigma_j^2 / (sum_k sigma_k^2 + sigma_e^2)}.
#' For nested factors the correlation of two observations sharing the inner
#' group is the sum of the ICCs of the inner and outer factors.
#'
#' With random slopes the variance of the random part, and so the ICC,
#' depends on the covariates.  \code{icc()} reports it where the covariates
#' with random slopes are zero: there the random part of a term reduces to
#' its intercept, so each term enters with its intercept variance (the
#' diagonal element of its covariance matrix for \code{(Intercept)}) and
#' terms without an intercept, such as \code{(0 + x | g)}, contribute
#' nothing.  Center those covariates first if zero is not a meaningful value.
#' A model with no random intercept at all is an error.
#'
#' The variances are those of \code{VarCorr(fit)} (REML or ML as the fit); with
#' prior weights the residual variance is that of an observation of weight 1.
#'
#' For any other model (an \code{lmer} fit, say) \code{icc()} calls
#' \code{performance::icc} with all its arguments, so that lmmfit's
#' \code{icc} does not mask performance's, whichever is attached last.
#'
#' @param fit a fitted \code{lmmfit} model with at least one random intercept
#'   (or a model for \code{performance::icc}).
#' @param ... for an lmmfit fit, nothing (any argument is an error); for other
#'   models, passed to \code{performance::icc}.
#' @return A named numeric vector, one ICC per random-intercept term (named as
#'   in \code{VarCorr(fit)}).
#' @examples
#' data(Orthodont, package = "nlme")
#' icc(lmmfit(distance ~ age + (1 | Subject), data = Orthodont))
#' @export
icc <- function(fit, ...) {
    if (missing(fit) && "model" %in% names(list(...))) {
        ## performance's name of the first argument
        args <- list(...)
        fit <- args$model
        if (!inherits(fit, "lmmfit"))
            return(do.call(suggested_function("performance", "icc", fit), args))
        args$model <- NULL
        return(do.call(icc, c(list(fit), args)))
    }
    if (!inherits(fit, "lmmfit")) return(suggested_function("performance", "icc", fit)(fit, ...))
    if (...length()) {
        nm <- names(list(...))
        if (is.null(nm)) nm <- rep("", ...length())
        stop(sprintf("icc() of an lmmfit fit takes no further arguments (got %s); performance::icc() ",
                     paste0("'", ifelse(nzchar(nm), nm, "<unnamed>"), "'", collapse = ", ")),
             "offers more options", call. = FALSE)
    }
    if (is_gls(fit)) stop("icc() needs random effects: this model has none", call. = FALSE)
    vc <- VarCorr(fit)
    has_int <- vapply(vc, function(m) "(Intercept)" %in% rownames(m), NA)
    if (!any(has_int))
        stop(sprintf(paste0("icc() needs a random intercept: this model's random-effects terms, %s, ",
                            "have none, so the between-group share of the variance depends on ",
                            "the covariates and is not defined at zero"),
                     paste0("(", vapply(fit$reterms, `[[`, "", "label"), ")", collapse = ", ")),
             call. = FALSE)
    v <- vapply(vc[has_int], function(m) m["(Intercept)", "(Intercept)"], 0)
    s2 <- attr(vc, "sc")^2
    v / (sum(v) + s2)
}
