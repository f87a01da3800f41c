#' lmmfit: fast linear mixed-effects models
#'
#' Fits linear mixed-effects models with lme4's formula syntax and a plain C
#' core: see \code{\link{lmmfit}}.
#'
#' @section Speed settings:
#' Models with crossed random effects factor a dense block of their
#' cross-products at every evaluation of the deviance (nested terms and
#' sparse, partly crossed ones do not).  Above order 160 that
#' is done by the package's own blocked Cholesky kernel, made for R's
#' reference BLAS and LAPACK; when R uses an optimised LAPACK (OpenBLAS, MKL,
#' BLIS, ATLAS, Accelerate), recognised by the library names R reports, its
#' \code{dpotrf} is used instead.  The option \code{lmmfit.dense_chol} or the
#' environment variable \code{LMMFIT_DENSE_CHOL} (\code{"auto"},
#' \code{"lapack"} or \code{"blocked"}), read when the package loads,
#' overrides that choice.  The environment variable \code{LMMFIT_THREADS=k}
#' lets the blocked kernel use \code{k} OpenMP threads (default 1).
#'
#' @keywords internal
#' @aliases NULL lmmfit-package
#' @importFrom utils head
#' @useDynLib lmmfit, .registration = TRUE, .fixes = "C_"
#' @importFrom stats AIC BIC coef cov2cor deviance df.residual fitted formula logLik
#'   model.frame model.matrix model.offset model.response model.weights nobs
#'   printCoefmat quantile residuals setNames sigma terms vcov
"_PACKAGE"
