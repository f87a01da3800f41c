## Support for multcomp's glht(): a method for its modelparm() generic,
## registered in .onLoad (zzz.R) when multcomp's namespace loads.  multcomp's
## default takes coef(), which for a mixed model is per group (as in lme4).

#' multcomp support for lmmfit models
#'
#' With \pkg{multcomp} installed, \code{multcomp::glht} (with a matrix of
#' linear functions, symbolic hypotheses such as \code{"x = 0"}, or
#' \code{mcp(f = "Tukey")}) works on an \code{lmmfit} fit as on an
#' \code{lme4::lmer} fit: the parameters are the fixed effects
#' \code{fixef(fit)} with covariance \code{vcov(fit)}, and, as for \code{lmer}
#' fits, the tests are asymptotic (normal, \code{df = 0}) unless \code{df} is
#' given.
#'
#' @param model a fitted \code{lmmfit} model.
#' @param coef.,vcov. functions of the model (or a vector and a matrix)
#'   giving the fixed effects and their covariance.
#' @param df degrees of freedom of the multivariate t distribution: 0 (the
#'   default) for the normal.
#' @param ... ignored.
#' @return An object of class \code{"modelparm"}.
#' @examples
#' if (requireNamespace("multcomp", quietly = TRUE)) {
#'     data(Orthodont, package = "nlme")
#'     fit <- lmmfit(distance ~ age + Sex + (1 | Subject), data = Orthodont)
#'     summary(multcomp::glht(fit, "SexFemale = 0"))
#' }
#' @name lmmfit-multcomp
#' @keywords internal
NULL

#' @rdname lmmfit-multcomp
modelparm.lmmfit <- function(model, coef. = fixef, vcov. = vcov, df = NULL, ...) {
    beta <- if (is.function(coef.)) coef.(model) else coef.
    V <- as.matrix(if (is.function(vcov.)) vcov.(model) else vcov.)
    if (!is.numeric(beta) || length(beta) == 0L)
        stop("the model has no fixed effects", call. = FALSE)
    if (!identical(dim(V), c(length(beta), length(beta))))
        stop(sprintf("'vcov.' must be a %d x %d matrix, one row per fixed effect", length(beta), length(beta)),
             call. = FALSE)
    if (is.null(df)) df <- 0
    if (!is.numeric(df) || length(df) != 1L || is.na(df) || df < 0)
        stop("'df' must be a single non-negative number", call. = FALSE)
    estimable <- !is.na(beta)
    structure(list(coef = beta[estimable], vcov = V, df = df, estimable = estimable),
              class = "modelparm")
}
