## Accessors of a generalized linear mixed model, in glmer's semantics.  The
## random-effects side (theta, u, the weighted cross-products at the mode)
## has the layout of a linear fit, so ranef, VarCorr, coef and predict share
## lmmfit's code; what depends on the family is here.

#' Accessors of a glmmfit model
#'
#' The methods lme4 users call on a \code{glmerMod}, with glmer's semantics:
#' \code{fitted} is on the response scale, \code{residuals} default to
#' deviance residuals, \code{logLik} is the Laplace (or quadrature)
#' approximation (the criterion, minus twice it, is in the summary's
#' \code{deviance} column), \code{deviance} is the conditional deviance
#' (the sum of squared deviance residuals, as lme4's), and \code{vcov} is the inverse of the finite-difference Hessian
#' of the criterion in (theta, beta) (glmer's default) or, with
#' \code{use.hessian = FALSE}, from the weighted fixed-effects factor R_X.
#'
#' @param object,x a fitted \code{glmmfit} model.
#' @param ... ignored.
#' @name glmmfit-accessors
NULL

## sigma is 1 for the families with a fixed scale (the negative binomial's
## shape is not a scale).  For Gamma and inverse Gaussian it is glmer's
## estimate of the residual scale, sqrt((Pearson chi^2 + |u|^2) / n): the
## penalized weighted residual sum of squares at the modes over the
## observations (a moment estimate; the criterion itself uses the
## dispersion dev / sum(weights), as glm()'s aic() does).
#' @rdname glmmfit-accessors
#' @export
sigma.glmmfit <- function(object, ...) {
    if (!glmm_has_dispersion(object)) return(1)
    pearson <- sum(object$prior * (object$y - object$mu)^2 / object$family$variance(object$mu))
    sqrt((pearson + sum(object$u^2)) / nobs(object))
}

#' @rdname glmmfit-accessors
#' @export
fixef.glmmfit <- function(object, ...) object$beta

#' @rdname glmmfit-accessors
#' @param condVar,drop,whichel,postVar as \code{\link{ranef.lmmfit}}.
#' @method ranef glmmfit
#' @export
ranef.glmmfit <- function(object, condVar = TRUE, drop = FALSE, whichel = NULL, postVar = FALSE, ...)
    ranef.lmmfit(object, condVar = condVar, drop = drop, whichel = whichel, postVar = postVar)

#' @rdname glmmfit-accessors
#' @export
coef.glmmfit <- function(object, ...) coef.lmmfit(object)

#' @rdname glmmfit-accessors
#' @param sigma the residual scale the relative covariance factors are
#'   scaled by: \code{sigma(x)} (1 for the families with a fixed scale; for
#'   Gamma and inverse Gaussian the estimated one, as glmer's VarCorr).
#' @method VarCorr glmmfit
#' @export
VarCorr.glmmfit <- function(x, sigma = sigma.glmmfit(x), ...) {
    vc <- theta_to_covariances(x$theta, x$reterms, sigma)
    names(vc) <- make.unique(vapply(x$reterms, `[[`, "", "group"), sep = ".")
    structure(vc, sc = sigma, useSc = glmm_has_dispersion(x), class = "VarCorr.lmmfit")
}

#' @rdname glmmfit-accessors
#' @export
family.glmmfit <- function(object, ...) object$family

#' @rdname glmmfit-accessors
#' @export
nobs.glmmfit <- function(object, ...) length(object$y)

#' @rdname glmmfit-accessors
#' @export
formula.glmmfit <- function(x, ...) x$formula

#' @rdname glmmfit-accessors
#' @export
ngrps.glmmfit <- function(object, ...) ngrps.lmmfit(object)

#' @rdname glmmfit-accessors
#' @param tol the singularity threshold on the relative covariance factor.
#' @export
isSingular.glmmfit <- function(x, tol = 1e-4, ...) isSingular.lmmfit(x, tol)

## parameters counted by logLik: theta and beta, the dispersion of Gamma and
## inverse Gaussian, and the negative binomial's shape when it was estimated
glmm_npar <- function(object)
    as.numeric(length(object$theta) + length(object$beta) + glmm_has_dispersion(object) +
               isTRUE(object$nb_theta_estimated))

#' @rdname glmmfit-accessors
#' @export
logLik.glmmfit <- function(object, ...) {
    structure(-object$deviance_value / 2, nobs = nobs(object), df = glmm_npar(object), class = "logLik")
}

## As lme4's deviance() of a glmer fit: the conditional deviance (the sum of
## the squared deviance residuals at the modes); -2 logLik is the criterion.
#' @rdname glmmfit-accessors
#' @export
deviance.glmmfit <- function(object, ...) sum(glmm_dev_resids(object))

#' @rdname glmmfit-accessors
#' @export
df.residual.glmmfit <- function(object, ...) as.integer(nobs(object) - glmm_npar(object))

#' @rdname glmmfit-accessors
#' @export
fitted.glmmfit <- function(object, ...) {
    napredict(object$na.action, setNames(object$mu, rownames(object$frame)))
}

#' @rdname glmmfit-accessors
#' @param type for \code{residuals}: \code{"deviance"} (default),
#'   \code{"pearson"}, \code{"response"} or \code{"working"}; for
#'   \code{predict}: \code{"link"} (default) or \code{"response"}.
#' @export
residuals.glmmfit <- function(object, type = c("deviance", "pearson", "response", "working"), ...) {
    type <- match.arg(type)
    y <- object$y
    mu <- object$mu
    fam <- object$family
    r <- switch(type,
                deviance = sign(y - mu) * sqrt(pmax(glmm_dev_resids(object), 0)),
                pearson = (y - mu) * sqrt(object$prior) / sqrt(fam$variance(mu)),
                response = y - mu,
                working = (y - mu) / fam$mu.eta(object$eta))
    napredict(object$na.action, setNames(r, rownames(object$frame)))
}

glmm_dev_resids <- function(object) object$family$dev.resids(object$y, object$mu, object$prior)

#' @rdname glmmfit-accessors
#' @param newdata,re.form,allow.new.levels as \code{\link{predict.lmmfit}}.
#' @export
predict.glmmfit <- function(object, newdata = NULL, re.form = NULL, allow.new.levels = FALSE,
                            type = c("link", "response"), ...) {
    type <- match.arg(type)
    refuse_dots("predict", list(...), c(se.fit = "standard errors of GLMM predictions are not available"))
    eta <- predict.lmmfit(object, newdata = newdata, re.form = re.form, allow.new.levels = allow.new.levels)
    if (type == "link") return(eta)
    mu <- object$family$linkinv(eta)
    attributes(mu) <- attributes(eta)
    mu
}

#' @rdname glmmfit-accessors
#' @param correlation logical: attach the correlation matrix (as lme4).
#' @param use.hessian logical: the Hessian-based covariance (default, as
#'   glmer) or the one from R_X.
#' @export
vcov.glmmfit <- function(object, correlation = FALSE, use.hessian = TRUE, ...) {
    V <- if (!length(object$beta)) matrix(0, 0L, 0L)
         else if (use.hessian) glmm_vcov_hessian(object) else glmm_vcov_rx(object)
    dimnames(V) <- list(names(object$beta), names(object$beta))
    if (correlation) attr(V, "correlation") <- cov2cor(V)
    V
}

## sigma^2 (R_X' R_X)^{-1}, R_X from the weighted cross-products at the mode
glmm_vcov_rx <- function(object) {
    sol <- .Call(C_lmm_solution, object$xprod, unname(object$theta), FALSE, 1)
    sigma(object)^2 * chol2inv(sol$RX)
}

## The relative step of the Hessian's central differences in theta, and the
## absolute step in beta whitened by R_X (unit scale), extrapolated from
## steps h and h / 2 (Richardson: the O(h^2) error cancels).  The criterion
## is evaluated to about 1e-11 (PIRLS_STEP_TOL), so second differences at
## 1e-3 keep the rounding error near 1e-5, and the truncation error, 3e-5
## relative at h = 1e-3 before extrapolation, falls well below it.
GLMM_HESSIAN_STEP <- 2e-3
## theta this close to 0 is at the boundary: it is held, its row left out
GLMM_HESSIAN_BOUNDARY <- 1e-8
## 2 [H^{-1}]_{beta beta}, H the Hessian of -2 log L in (theta, beta): the
## inverse observed information of beta with theta estimated too (glmer's
## default vcov); theta on the boundary is held.
glmm_vcov_hessian <- function(object) {
    H <- glmm_hessian(object)
    nt <- length(object$theta)
    free <- c(object$theta[seq_len(nt)] > GLMM_HESSIAN_BOUNDARY | !theta_is_diag(object$reterms),
              rep(TRUE, length(object$beta)))
    Hf <- H[free, free, drop = FALSE]
    V <- tryCatch(solve(Hf), error = function(e) NULL)
    nb <- length(object$beta)
    if (is.null(V) || any(eigen(V, symmetric = TRUE, only.values = TRUE)$values <= 0)) {
        warning("the finite-difference Hessian is not positive definite: vcov from R_X", call. = FALSE)
        return(glmm_vcov_rx(object))
    }
    idx <- sum(free) - nb + seq_len(nb)
    V <- 2 * V[idx, idx, drop = FALSE]
    (V + t(V)) / 2
}

## The criterion at (theta, beta), PIRLS from the fit's modes.
glmm_criterion <- function(object, theta, beta) {
    .Call(C_lmm_glmm_eval, object$model, as.double(theta), as.double(beta), object$u,
          max(object$nAGQ, 1L), gauss_hermite_rule(max(object$nAGQ, 1L)))$deviance
}

## The Hessian by central differences: theta by relative steps, beta along
## the columns of R_X^{-1}, mapped back.
glmm_hessian <- function(object) {
    nt <- length(object$theta)
    nb <- length(object$beta)
    RX <- .Call(C_lmm_solution, object$xprod, unname(object$theta), FALSE, 1)$RX
    B <- backsolve(RX, diag(nb))                   # beta = beta_hat + B v
    M <- diag(nt + nb)
    M[nt + seq_len(nb), nt + seq_len(nb)] <- B
    h <- c(GLMM_HESSIAN_STEP * pmax(abs(object$theta), 0.1), rep(GLMM_HESSIAN_STEP, nb))
    x0 <- c(unname(object$theta), unname(object$beta))
    f <- function(d) {
        x <- x0 + drop(M %*% d)
        glmm_criterion(object, x[seq_len(nt)], x[nt + seq_len(nb)])
    }
    np <- nt + nb
    f0 <- f(numeric(np))
    e <- function(i, s) { d <- numeric(np); d[i] <- s; d }
    second <- function(h) {
        Hs <- matrix(0, np, np)
        for (i in seq_len(np)) {
            Hs[i, i] <- (f(e(i, h[i])) - 2 * f0 + f(e(i, -h[i]))) / h[i]^2
            for (j in seq_len(i - 1L)) {
                dij <- function(si, sj) f(e(i, si * h[i]) + e(j, sj * h[j]))
                Hs[i, j] <- Hs[j, i] <- (dij(1, 1) - dij(1, -1) - dij(-1, 1) + dij(-1, -1)) / (4 * h[i] * h[j])
            }
        }
        Hs
    }
    Hs <- (4 * second(h / 2) - second(h)) / 3
    ## back to (theta, beta): H = M^{-T} Hs M^{-1}
    Mi <- solve(M)
    crossprod(Mi, Hs %*% Mi)
}
