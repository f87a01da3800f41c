#' lmmfit: fast linear mixed-effects models
#'
#' Fits linear mixed-effects models with lme4's formula syntax and a plain C
#' core: see \code{\link{lmmfit}}.
#'
#' @keywords internal
#' @aliases NULL lmmfit-package
#' @importFrom utils head
#' @useDynLib lmmfit, .registration = TRUE, .fixes = "C_"
#' @importFrom stats AIC BIC coef cov2cor deviance df.residual fitted formula logLik
#'   model.frame model.matrix model.offset model.response model.weights nobs
#'   printCoefmat quantile residuals setNames sigma terms vcov
"_PACKAGE"
