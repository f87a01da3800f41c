## Support for the effects package: a method for its effSources() generic
## (the documented way to tell Effect() where a new model class keeps its
## formula, coefficients and their covariance), registered in .onLoad
## (zzz.R) when effects' namespace loads.

#' effects support for lmmfit models
#'
#' With \pkg{effects} installed, \code{effects::Effect},
#' \code{effects::allEffects} and \code{effects::predictorEffects} work on an
#' \code{lmmfit} fit as on an \code{lme4::lmer} fit: the effects of the
#' fixed part, with the fixed effects and their covariance \code{vcov(fit)}.
#'
#' @param mod a fitted \code{lmmfit} model.
#' @return The list \code{effects::Effect} asks of \code{effSources}.
#' @examples
#' if (requireNamespace("effects", quietly = TRUE)) {
#'     data(Orthodont, package = "nlme")
#'     fit <- lmmfit(distance ~ age * Sex + (1 | Subject), data = Orthodont)
#'     effects::Effect(c("age", "Sex"), fit)
#' }
#' @name lmmfit-effects
#' @keywords internal
NULL

#' @rdname lmmfit-effects
effSources.lmmfit <- function(mod) {
    if (!is.null(mod$wb)) stop("effects cannot rebuild a model with wb() terms", call. = FALSE)
    cl <- mod$call
    ## the data themselves, so that Effect() can refit the fixed part
    ## wherever it evaluates the call
    if (!is.null(cl$data)) cl$data <- eval(cl$data, environment(mod$formula))
    cl$weights <- NULL
    cl$REML <- NULL
    list(type = "glm", call = cl,
         formula = stats::as.formula(deparse1(stats::formula(mod$fixed_terms)), env = environment(mod$formula)),
         family = stats::gaussian(), coefficients = fixef(mod), vcov = vcov(mod))
}
