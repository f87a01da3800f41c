## The negative binomial GLMM with its shape estimated (glmer.nb's job): the
## Laplace (or quadrature) criterion profiled over log(theta), each point a
## fit of the same model with MASS::negative.binomial(theta), warm-started
## from the last.

## Brent's tolerance on log(theta): the criterion is quadratic at the
## optimum, so theta located to 1e-7 relative leaves it 1e-14 from its
## minimum (relative), far below the fixed effects' 1e-5.
NB_LOG_THETA_TOL <- 1e-7
## The search interval: log(theta) within this of the start (a factor of
## e^5, about 150, either way); an end on its boundary is reported.
NB_LOG_THETA_HALFWIDTH <- 5

#' Fit a negative binomial GLMM, estimating its shape
#'
#' The counterpart of \code{lme4::glmer.nb}: a Poisson fit first, a start for
#' the negative binomial's shape theta from \code{MASS::theta.ml} at its
#' fitted means, then the model's -2 log-likelihood minimised over
#' \code{log(theta)} (Brent's method), each point a \code{\link{glmmfit}} fit
#' with \code{MASS::negative.binomial(theta)} started from the previous one.
#' The variance is \eqn{\mu + \mu^2 / \theta}.
#'
#' @inheritParams glmmfit
#' @param ... further arguments of \code{\link{glmmfit}} (\code{weights},
#'   \code{subset}, \code{na.action}, \code{offset}, \code{contrasts},
#'   \code{control}); \code{family} is refused.
#' @return A \code{"glmmfit"} object whose family is
#'   \code{MASS::negative.binomial(theta)} at the estimate; \code{logLik}
#'   counts theta among the parameters.
#' @examples
#' \donttest{
#' set.seed(1)
#' d <- data.frame(g = factor(rep(1:30, each = 20)), x = rnorm(600))
#' d$y <- MASS::rnegbin(600, exp(1 + 0.5 * d$x + rnorm(30, 0, 0.5)[d$g]), theta = 2)
#' fit <- glmmfit_nb(y ~ x + (1 | g), d)
#' family(fit)$family
#' }
#' @export
glmmfit_nb <- function(formula, data = NULL, nAGQ = 1L, ...) {
    if (!requireNamespace("MASS", quietly = TRUE))
        stop("glmmfit_nb() needs the MASS package (for negative.binomial() and theta.ml())", call. = FALSE)
    call <- match.call()
    if (!is.null(call$family))
        stop("glmmfit_nb() fits the negative binomial family: drop 'family'", call. = FALSE)
    pcall <- call
    pcall[[1L]] <- quote(lmmfit::glmmfit)
    pcall$family <- quote(stats::poisson)
    pois <- eval(pcall, parent.frame())
    th0 <- suppressWarnings(MASS::theta.ml(pois$y, pois$mu, weights = pois$prior))
    if (!is.finite(th0) || th0 <= 0) th0 <- 1
    last <- pois
    nfit <- 0L
    crit <- function(lth) {
        nfit <<- nfit + 1L
        last <<- nb_refit(last, exp(lth))
        last$deviance_value
    }
    lo <- log(th0) - NB_LOG_THETA_HALFWIDTH
    hi <- log(th0) + NB_LOG_THETA_HALFWIDTH
    opt <- optimize(crit, c(lo, hi), tol = NB_LOG_THETA_TOL)
    fit <- nb_refit(last, exp(opt$minimum))
    if (opt$minimum - lo < 1e-3 || hi - opt$minimum < 1e-3)
        warning(sprintf("the negative binomial's theta (%.4g) is at the end of its search interval", exp(opt$minimum)),
                call. = FALSE)
    fit$call <- call
    fit$nb_theta_estimated <- TRUE
    fit$optinfo$nb_fits <- nfit
    fit
}

## The same model with the negative binomial of shape theta, started from
## fit's estimates (a Poisson or negative binomial glmmfit).
nb_refit <- function(fit, theta) {
    family <- MASS::negative.binomial(theta)
    spec <- glmm_family_spec(family)
    model <- fit$model
    model$family <- spec
    opt <- .Call(C_lmm_glmm_optimize, model, unname(fit$theta), unname(fit$beta), fit$nAGQ,
                 gauss_hermite_rule(fit$nAGQ), fit$control)
    out <- fit
    parts <- glmm_object(opt, model, fit$reterms, fit$X, fit$nAGQ)
    out[names(parts)] <- parts
    out$model <- model
    out$spec <- spec
    out$family <- family
    out
}
