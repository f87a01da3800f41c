## lmm_get(): the pieces of a fit, under lme4's getME() names.

## Column names of Z and Lambda: for each term, each level's columns.
z_colnames <- function(object) {
    unlist(lapply(object$reterms, function(t)
        rep(levels(t$factor), each = ncol(t$Z))))
}

## The dense n x q random-effects matrix, term by term, level-major.
dense_Z <- function(object) {
    n <- length(object$y)
    blocks <- lapply(object$reterms, function(t) {
        k <- ncol(t$Z)
        B <- matrix(0, n, t$nlev * k)
        lev <- as.integer(t$factor)
        for (c in seq_len(k)) B[cbind(seq_len(n), (lev - 1L) * k + c)] <- t$Z[, c]
        B
    })
    Z <- do.call(cbind, blocks)
    dimnames(Z) <- list(rownames(object$frame), z_colnames(object))
    Z
}

## The dense q x q relative covariance factor: blockdiag(I_l (x) lambda_j).
dense_Lambda <- function(object) {
    lam <- theta_to_lambda(object$theta, object$reterms)
    q <- sum(vapply(object$reterms, function(t) t$nlev * ncol(t$Z), 1))
    L <- matrix(0, q, q)
    off <- 0
    for (j in seq_along(lam)) {
        blk <- kronecker(diag(object$reterms[[j]]$nlev), unname(lam[[j]]))
        idx <- off + seq_len(nrow(blk))
        L[idx, idx] <- blk
        off <- off + nrow(blk)
    }
    dimnames(L) <- list(z_colnames(object), z_colnames(object))
    L
}

#' Extract components of an lmmfit model (lme4's getME)
#'
#' \code{lmm_get(fit, name)} is lmmfit's counterpart of \code{lme4::getME}:
#' the same names give the same quantities (as base matrices rather than
#' sparse ones).
#'
#' \describe{
#'   \item{\code{"X"}, \code{"y"}}{fixed-effects model matrix and response.}
#'   \item{\code{"Z"}, \code{"Zt"}}{the dense n x q random-effects model
#'     matrix (and its transpose), columns term by term and, within a term,
#'     level by level, each level's columns together (lme4's order).}
#'   \item{\code{"theta"}}{the covariance parameters (lower triangles of the
#'     relative covariance factors, column by column, named as lme4).}
#'   \item{\code{"Lambda"}, \code{"Lambdat"}}{the q x q block-diagonal
#'     relative covariance factor \eqn{\Lambda} (\eqn{b = \Lambda u},
#'     \eqn{Var(b) = \sigma^2 \Lambda \Lambda'}) and its transpose.}
#'   \item{\code{"beta"}, \code{"u"}, \code{"b"}}{fixed effects, spherical
#'     random effects and random effects \eqn{b = \Lambda u}, in Z's order.}
#'   \item{\code{"sigma"}, \code{"n"}, \code{"p"}, \code{"q"}}{residual
#'     standard deviation, number of observations, of fixed effects, of
#'     random effects.}
#'   \item{\code{"flist"}}{the grouping factors, one per distinct factor,
#'     with attribute \code{assign} mapping each term to its factor.}
#'   \item{\code{"cnms"}}{the column names of each term, named by factor.}
#'   \item{\code{"L"}}{the lower-triangular Cholesky factor of
#'     \eqn{\Lambda' Z' W Z \Lambda + I} (W the prior weights, identity
#'     without them), computed densely in R from Z and Lambda, without a
#'     fill-reducing permutation.  lme4's \code{L} is a sparse CHOLMOD factor
#'     of the same matrix after a permutation P, so the two agree as
#'     \eqn{L L' = P' L_{lme4} L_{lme4}' P}, and \eqn{2 \sum \log diag(L)} is
#'     lme4's \code{ldL2}.  Dense: meant for small models.}
#'   \item{\code{"RX"}}{the upper-triangular factor of the fixed-effects
#'     block, \eqn{R_X' R_X = X' V^{-1} X \sigma^2} (lme4's \code{RX}).}
#'   \item{\code{"REML"}, \code{"devcomp"}}{REML flag; a list with the
#'     deviance components \code{ldL2}, \code{ldRX2}, \code{pwrss}.}
#' }
#'
#' @param object a fitted \code{lmmfit} model.
#' @param name one of the names above.
#' @return The requested component.
#' @examples
#' data(Orthodont, package = "nlme")
#' fit <- lmmfit(distance ~ age + (age | Subject), data = Orthodont)
#' lmm_get(fit, "theta")
#' dim(lmm_get(fit, "Z"))
#' @export
lmm_get <- function(object, name) {
    if (!inherits(object, "lmmfit")) stop("'object' must be an lmmfit fit", call. = FALSE)
    if (!is.character(name) || length(name) != 1L)
        stop("'name' must be a single string such as \"theta\"", call. = FALSE)
    known <- c("X", "y", "Z", "Zt", "theta", "Lambda", "Lambdat", "beta", "u", "b", "sigma",
               "n", "p", "q", "flist", "cnms", "L", "RX", "REML", "devcomp")
    if (!name %in% known)
        stop(sprintf("unknown component '%s'; lmm_get() knows: %s", name,
                     paste(known, collapse = ", ")), call. = FALSE)
    switch(name,
           X = object$X,
           y = object$y,
           Z = dense_Z(object),
           Zt = t(dense_Z(object)),
           theta = object$theta,
           Lambda = dense_Lambda(object),
           Lambdat = t(dense_Lambda(object)),
           beta = object$beta,
           u = object$u,
           b = as.vector(dense_Lambda(object) %*% object$u),
           sigma = sigma(object),
           n = length(object$y),
           p = length(object$beta),
           q = length(object$u),
           flist = {
               g <- vapply(object$reterms, `[[`, "", "group")
               ug <- unique(g)
               fl <- lapply(match(ug, g), function(j) object$reterms[[j]]$factor)
               names(fl) <- ug
               attr(fl, "assign") <- match(g, ug)
               fl
           },
           cnms = setNames(lapply(object$reterms, function(t) colnames(t$Z)),
                           vapply(object$reterms, `[[`, "", "group")),
           L = {
               ZL <- dense_Z(object) %*% dense_Lambda(object)
               if (!is.null(object$weights)) ZL <- ZL * sqrt(object$weights)
               t(chol(crossprod(ZL) + diag(ncol(ZL))))
           },
           RX = {
               R <- object$RX
               dimnames(R) <- list(names(object$beta), names(object$beta))
               R
           },
           REML = object$REML,
           devcomp = list(ldL2 = object$ldL2, ldRX2 = object$ldRX2, pwrss = object$pwrss))
}
