## Denominator degrees of freedom for tests of fixed effects: Satterthwaite
## (as lmerTest) and Kenward-Roger (as pbkrtest).

check_ddf_fit <- function(object, method = "Satterthwaite") {
    if (!inherits(object, "lmmfit")) stop("'object' must be an lmmfit fit", call. = FALSE)
    ## Kenward-Roger's linear covariance parametrisation has no place for a
    ## correlation's parameter
    if (method == "Kenward-Roger" && has_resid_structure(object))
        stop("Kenward-Roger's method is not available for fits with a residual variance or correlation ",
             "structure: use ddf = \"Satterthwaite\"", call. = FALSE)
    if (length(object$beta) == 0L) stop("the model has no fixed effects", call. = FALSE)
}

## Satterthwaite's ingredients (lmerTest's parametrisation varpar = (theta, sigma)):
## vcov(beta), its Jacobian with respect to varpar and the asymptotic covariance
## of varpar, twice the (pseudo-)inverse of the Hessian of the deviance that
## is not profiled over sigma.  All derivatives come from one C call.
satterthwaite_setup <- function(object, tol = 1e-8) {
    check_ddf_fit(object)
    if (has_resid_structure(object)) return(resid_satterthwaite_setup(object))
    vp <- c(unname(object$theta), sigma(object))
    d <- .Call(C_lmm_ddf_derivs, object$xprod, as.double(vp), object$REML, c(1e-3, 1e-1), "auto")
    e <- eigen(d$hessian, symmetric = TRUE)
    pos <- e$values > tol
    if (any(e$values < -tol))
        warning(sprintf("the Hessian of the deviance has negative eigenvalues (%s): the fit may not have converged",
                        paste(sprintf("%.1e", e$values[e$values < -tol]), collapse = " ")), call. = FALSE)
    hinv <- e$vectors[, pos, drop = FALSE] %*% (t(e$vectors[, pos, drop = FALSE]) / e$values[pos])
    list(method = "Satterthwaite", vcov = d$vcov, vcov_varpar = 2 * hinv, jacobian = d$jacobian,
         sigma = sigma(object))
}

## Satterthwaite's df for the linear function l' beta.
satterthwaite_df1 <- function(l, st) {
    v <- drop(crossprod(l, st$vcov %*% l))
    g <- apply(st$jacobian, 3L, function(J) drop(crossprod(l, J %*% l)))
    2 * v^2 / drop(crossprod(g, st$vcov_varpar %*% g))
}

## The dense cross-products [Z X]'[Z X] (without the response) from the
## blocked layout of the C core: (q + p) x (q + p).
dense_xprod <- function(xp) {
    nlev <- xp$nlev; ncol <- xp$ncol; p <- xp$p; px <- p + 1L
    q1 <- nlev[1L] * ncol[1L]; q2 <- sum(nlev[-1L] * ncol[-1L]); q <- q1 + q2
    k1 <- ncol[1L]
    S <- matrix(0, q + p, q + p)
    for (g in seq_len(nlev[1L])) {
        idx <- (g - 1L) * k1 + seq_len(k1)
        S[idx, idx] <- xp$A11[(g - 1L) * k1 * k1 + seq_len(k1 * k1)]
        i0 <- xp$A21p[g]; m <- xp$A21p[g + 1L] - i0
        if (m > 0L) {
            rows <- q1 + xp$A21i[i0 + seq_len(m)] + 1L
            B <- matrix(xp$A21x[i0 * k1 + seq_len(m * k1)], m, k1)
            S[rows, idx] <- B
            S[idx, rows] <- t(B)
        }
    }
    if (q2 > 0L) S[q1 + seq_len(q2), q1 + seq_len(q2)] <- rest_dense(xp)
    xi <- q + seq_len(p)
    AX1 <- matrix(xp$AX1, px, q1)[seq_len(p), , drop = FALSE]
    S[xi, seq_len(q1)] <- AX1
    S[seq_len(q1), xi] <- t(AX1)
    if (q2 > 0L) {
        AX2 <- matrix(xp$AX2, px, q2)[seq_len(p), , drop = FALSE]
        S[xi, q1 + seq_len(q2)] <- AX2
        S[q1 + seq_len(q2), xi] <- t(AX2)
    }
    S[xi, xi] <- matrix(xp$AXX, px, px)[seq_len(p), seq_len(p)]
    S
}

## Kenward-Roger's adjusted covariance of beta (pbkrtest's definition, with
## the covariance parameters of the random effects and the residual variance
## as the linear parametrisation Sigma = sum_r gamma_r G_r).
##
## With Sigma = s2 (I + Z Lambda Lambda' Z') and T = [Z X], Woodbury gives
## Sigma^{-1} T = T N / s2 with N = I - [H A_ZT; 0], H = Lambda M^{-1} Lambda',
## M = Lambda' A_ZZ Lambda + I.  Hence T' Sigma^{-k} T (k = 1, 2, 3) are
## (q + p)-square matrices of cross-products, and each G_r of a random term
## is Z E_r Z' with E_r a 0/1 pattern on the term's levels; the residual's is I.
## Every trace and product that Kenward-Roger needs is then formed from
## (q + p)-square matrices: nothing n x n.
kenward_roger_setup <- function(object) {
    check_ddf_fit(object, "Kenward-Roger")
    if (!object$REML) stop("Kenward-Roger's method is only available for REML fits", call. = FALSE)
    xp <- object$xprod
    S <- dense_xprod(xp)
    p <- xp$p; q <- nrow(S) - p; n <- xp$nobs
    zi <- seq_len(q); xi <- q + seq_len(p)
    s2 <- sigma(object)^2
    lam <- theta_to_lambda(object$theta, object$reterms)
    Lambda <- matrix(0, q, q)
    off <- 0L
    for (j in seq_along(lam)) {
        k <- nrow(lam[[j]]); nl <- object$reterms[[j]]$nlev
        idx <- off + seq_len(nl * k)
        Lambda[idx, idx] <- kronecker(diag(nl), lam[[j]])
        off <- off + nl * k
    }
    M <- crossprod(Lambda, S[zi, zi] %*% Lambda) + diag(q)
    Mi <- chol2inv(chol(M))
    H <- Lambda %*% Mi %*% t(Lambda)
    N <- diag(q + p)
    N[zi, ] <- N[zi, ] - H %*% S[zi, , drop = FALSE]
    W1 <- (S %*% N) / s2
    W1 <- (W1 + t(W1)) / 2
    W2 <- crossprod(N, S %*% N) / s2^2
    W3 <- crossprod(N, W1 %*% N) / s2^2
    tr_sigma2 <- (n - q + sum(Mi * Mi)) / s2^2

    ## the parameters: per term, the lower triangle of its covariance; then the residual
    pars <- list()
    off <- 0L
    for (j in seq_along(lam)) {
        k <- nrow(lam[[j]]); nl <- object$reterms[[j]]$nlev
        base <- off + (seq_len(nl) - 1L) * k
        for (b in seq_len(k)) for (a in b:k) pars[[length(pars) + 1L]] <- list(ia = base + a, ib = base + b)
        off <- off + nl * k
    }
    nr <- length(pars)
    ng <- nr + 1L
    ## E_r %*% Mx for a (q x m) matrix
    Emul <- function(r, Mx) {
        e <- pars[[r]]
        out <- matrix(0, q, ncol(Mx))
        out[e$ia, ] <- Mx[e$ib, , drop = FALSE]
        if (!identical(e$ia, e$ib)) out[e$ib, ] <- Mx[e$ia, , drop = FALSE]
        out
    }
    C <- W1[zi, zi, drop = FALSE]
    EC <- lapply(seq_len(nr), function(r) Emul(r, C))
    EW1X <- lapply(seq_len(nr), function(r) Emul(r, W1[zi, xi, drop = FALSE]))
    EW2X <- lapply(seq_len(nr), function(r) Emul(r, W2[zi, xi, drop = FALSE]))
    W1XZ <- W1[xi, zi, drop = FALSE]; W2XZ <- W2[xi, zi, drop = FALSE]

    P <- vector("list", ng)
    for (r in seq_len(nr)) P[[r]] <- -W1XZ %*% EW1X[[r]]
    P[[ng]] <- -W2[xi, xi, drop = FALSE]
    Q <- matrix(list(), ng, ng)
    K <- matrix(0, ng, ng)
    for (r in seq_len(ng)) for (s in r:ng) {
        if (s <= nr) {
            Q[[r, s]] <- W1XZ %*% (EC[[r]] %*% EW1X[[s]])
            K[r, s] <- sum(EC[[r]] * t(EC[[s]]))
        } else if (r <= nr) {
            Q[[r, s]] <- W1XZ %*% EW2X[[r]]
            e <- pars[[r]]
            K[r, s] <- sum(W2[cbind(e$ia, e$ib)]) * (if (identical(e$ia, e$ib)) 1 else 2)
        } else {
            Q[[r, s]] <- W3[xi, xi, drop = FALSE]
            K[r, s] <- tr_sigma2
        }
        Q[[s, r]] <- t(Q[[r, s]])
        K[s, r] <- K[r, s]
    }
    Phi <- solve(W1[xi, xi, drop = FALSE])
    Phi <- (Phi + t(Phi)) / 2
    IE2 <- matrix(0, ng, ng)
    for (r in seq_len(ng)) for (s in r:ng) {
        IE2[r, s] <- IE2[s, r] <- K[r, s] - 2 * sum(Phi * Q[[r, s]]) +
            sum((Phi %*% P[[r]]) * (P[[s]] %*% Phi))
    }
    ev <- eigen(IE2, symmetric = TRUE)
    W <- if (min(abs(ev$values)) > 1e-10) 2 * solve(IE2)
         else 2 * ev$vectors[, abs(ev$values) > 1e-10, drop = FALSE] %*%
             (t(ev$vectors[, abs(ev$values) > 1e-10, drop = FALSE]) / ev$values[abs(ev$values) > 1e-10])
    U <- matrix(0, p, p)
    for (r in seq_len(ng)) for (s in seq_len(ng))
        U <- U + W[r, s] * (Q[[r, s]] - P[[r]] %*% Phi %*% P[[s]])
    PhiA <- Phi + 2 * Phi %*% U %*% Phi
    PhiA <- (PhiA + t(PhiA)) / 2
    dimnames(Phi) <- dimnames(PhiA) <- list(names(object$beta), names(object$beta))
    list(method = "Kenward-Roger", vcov = Phi, vcov_adj = PhiA, P = P, W = W, sigma = sqrt(s2))
}

## Kenward-Roger's denominator df and F scaling for the hypothesis L beta = 0
## (L with full row rank q).
kenward_roger_df <- function(L, kr) {
    L <- rbind(L)
    q <- nrow(L)
    Phi <- kr$vcov
    Theta <- crossprod(L, solve(L %*% Phi %*% t(L), L))
    TP <- Theta %*% Phi
    ng <- length(kr$P)
    u <- lapply(seq_len(ng), function(r) TP %*% kr$P[[r]] %*% Phi)
    tr_u <- vapply(u, function(m) sum(diag(m)), 0)
    A1 <- A2 <- 0
    for (r in seq_len(ng)) for (s in seq_len(ng)) {
        A1 <- A1 + kr$W[r, s] * tr_u[r] * tr_u[s]
        A2 <- A2 + kr$W[r, s] * sum(u[[r]] * t(u[[s]]))
    }
    B <- (A1 + 6 * A2) / (2 * q)
    g <- ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
    den <- 3 * q + 2 * (1 - g)
    c1 <- g / den; c2 <- (q - g) / den; c3 <- (q + 2 - g) / den
    V0 <- 1 + c1 * B; V1 <- 1 - c2 * B; V2 <- 1 - c3 * B
    if (abs(V0) < 1e-10) V0 <- 0
    rho <- (if (V1 == 0) 0 else ((1 - A2 / q) / V1)^2) * V0 / (q * V2)
    df2 <- 4 + (q + 2) / (q * rho - 1)
    scaling <- if (abs(df2 - 2) < 0.01) 1 else df2 * (1 - A2 / q) / (df2 - 2)
    c(ddf = df2, scaling = scaling)
}

ddf_setup <- function(object, ddf) {
    switch(ddf, Satterthwaite = satterthwaite_setup(object),
           "Kenward-Roger" = kenward_roger_setup(object))
}

## t-test of one linear function l' beta = rhs.
contrast_1d <- function(object, l, st, rhs = 0) {
    est <- sum(l * object$beta)
    if (st$method == "Kenward-Roger") {
        se <- sqrt(drop(crossprod(l, st$vcov_adj %*% l)))
        df <- unname(kenward_roger_df(rbind(l), st)["ddf"])
    } else {
        se <- sqrt(drop(crossprod(l, st$vcov %*% l)))
        df <- satterthwaite_df1(l, st)
    }
    tval <- (est - rhs) / se
    data.frame(Estimate = est, `Std. Error` = se, df = df, `t value` = tval,
               `Pr(>|t|)` = 2 * stats::pt(abs(tval), df, lower.tail = FALSE), check.names = FALSE)
}

f_table <- function(Fvalue, ndf, ddf, sigma, scaling = 1) {
    MS <- Fvalue * sigma^2
    Fs <- Fvalue * scaling
    data.frame(`Sum Sq` = MS * ndf, `Mean Sq` = MS, NumDF = ndf, DenDF = ddf, `F value` = Fs,
               `Pr(>F)` = stats::pf(Fs, ndf, ddf, lower.tail = FALSE), check.names = FALSE)
}

## Satterthwaite's df of an F statistic from the df of its independent parts
## (lmerTest's rule).
combine_nu <- function(nu, tol = 1e-8) {
    if (length(nu) == 1L) return(nu)
    if (all(abs(diff(nu)) < tol)) return(mean(nu))
    if (any(nu <= 2)) return(2)
    E <- sum(nu / (nu - 2))
    2 * E / (E - length(nu))
}

## F-test of L beta = rhs (several rows).
contrast_md <- function(object, L, st, rhs = 0, eps = sqrt(.Machine$double.eps)) {
    beta <- object$beta
    if (length(rhs) == 1L) rhs <- rep(rhs, nrow(L))
    if (any(rhs != 0)) beta <- beta - drop(pseudo_inverse(L) %*% rhs)
    if (st$method == "Kenward-Roger") {
        qr_L <- qr(t(L))
        if (qr_L$rank < nrow(L)) L <- t(qr.Q(qr_L)[, seq_len(qr_L$rank), drop = FALSE])
        kr <- kenward_roger_df(L, st)
        Lb <- L %*% beta
        Fu <- drop(crossprod(Lb, solve(L %*% st$vcov_adj %*% t(L), Lb))) / nrow(L)
        return(f_table(Fu, nrow(L), unname(kr["ddf"]), st$sigma, unname(kr["scaling"])))
    }
    VL <- L %*% st$vcov %*% t(L)
    e <- eigen(VL, symmetric = TRUE)
    pos <- e$values > max(eps * e$values[1L], 0)
    q <- sum(pos)
    if (q == 0L) stop("the contrast matrix has rank zero", call. = FALSE)
    PtL <- crossprod(e$vectors, L)[seq_len(q), , drop = FALSE]
    d <- e$values[seq_len(q)]
    t2 <- drop(PtL %*% beta)^2 / d
    nu <- vapply(seq_len(q), function(m) satterthwaite_df1(PtL[m, ], st), 0)
    f_table(sum(t2) / q, q, combine_nu(nu), st$sigma)
}

pseudo_inverse <- function(A) {
    s <- svd(A)
    pos <- s$d > max(dim(A)) * max(s$d) * .Machine$double.eps
    s$v[, pos, drop = FALSE] %*% (t(s$u[, pos, drop = FALSE]) / s$d[pos])
}

#' Tests of linear contrasts of the fixed effects
#'
#' Tests \eqn{L\beta = rhs} with Satterthwaite's or Kenward-Roger's denominator
#' degrees of freedom, as \code{lmerTest::contest}: a t-test when \code{L} has
#' one row, an F-test when it has several.  Satterthwaite's method
#' differentiates \code{vcov(beta)} and the deviance with respect to the
#' variance parameters \eqn{(\theta, \sigma)} in the C core; Kenward-Roger's
#' adjusted covariance follows pbkrtest, computed from the cross-products
#' (no \eqn{n \times n} matrix).
#'
#' @param fit a fitted \code{lmmfit} model.
#' @param L a contrast vector (length \code{p}) or a matrix with \code{p} columns.
#' @param ddf \code{"Satterthwaite"} or \code{"Kenward-Roger"} (REML fits only).
#' @param rhs right-hand side of the hypothesis (default 0).
#' @return For one row, a data frame with \code{Estimate}, \code{Std. Error},
#'   \code{df}, \code{t value} and \code{Pr(>|t|)}; for several, a data frame
#'   with \code{Sum Sq}, \code{Mean Sq}, \code{NumDF}, \code{DenDF},
#'   \code{F value} and \code{Pr(>F)}.
#' @examples
#' data(Orthodont, package = "nlme")
#' fit <- lmmfit(distance ~ age + Sex + (age | Subject), data = Orthodont)
#' lmm_contrast(fit, c(0, 1, 0))
#' lmm_contrast(fit, rbind(c(0, 1, 0), c(0, 0, 1)))
#' @export
lmm_contrast <- function(fit, L, ddf = c("Satterthwaite", "Kenward-Roger"), rhs = 0) {
    ddf <- match.arg(ddf)
    check_ddf_fit(fit, ddf)
    p <- length(fit$beta)
    if (!is.numeric(L)) stop("'L' must be a numeric vector or matrix", call. = FALSE)
    if (!is.matrix(L)) {
        if (length(L) != p) stop(sprintf("'L' must have length %d (one per fixed effect)", p), call. = FALSE)
        L <- matrix(L, nrow = 1L)
    }
    if (ncol(L) != p) stop(sprintf("'L' must have %d columns (one per fixed effect)", p), call. = FALSE)
    if (nrow(L) == 0L || any(!is.finite(L))) stop("'L' must have at least one row and finite entries", call. = FALSE)
    if (!is.numeric(rhs) || !(length(rhs) %in% c(1L, nrow(L))) || any(!is.finite(rhs)))
        stop("'rhs' must be finite, of length 1 or nrow(L)", call. = FALSE)
    st <- ddf_setup(fit, ddf)
    if (nrow(L) == 1L) return(contrast_1d(fit, drop(L), st, rhs[1L]))
    contrast_md(fit, L, st, rhs)
}

## Contrast matrices of the fixed-effect terms.  Type 1: rows of the unit upper
## triangular factor of X'X (sequential).  Type 3: with sum-to-zero codings
## the term's own coefficients, mapped back to the fit's coding.
term_contrasts <- function(object, type) {
    X <- object$X
    ## a fit from aggregates has no rows: made-up rows carry the coding (type
    ## 3), the statistics X'X (type 1)
    agg <- inherits(object, "lmmfit_agg")
    if (agg) { syn <- agg_design_rows(object); X <- syn$X; object$frame <- syn$frame }
    tt <- object$fixed_terms
    labels <- attr(tt, "term.labels")
    asgn <- attr(X, "assign")
    if (length(object$dropped))
        stop("F-tests of terms are not available when columns of X were dropped as aliased", call. = FALSE)
    if (type == 1L) {
        if (agg && !is.null(object$weights_column))
            stop("type 1 F tests of a weighted fit from aggregates need the unweighted X'X, which the sums ",
                 "do not hold: use type 3", call. = FALSE)
        R <- chol(if (agg) agg_xtx(object) else crossprod(X))
        U <- R / diag(R)
        out <- lapply(seq_along(labels), function(i) U[asgn == i, , drop = FALSE])
    } else {
        fr <- object$frame
        facs <- names(Filter(function(v) is.factor(v) || is.character(v), fr))
        facs <- intersect(facs, all.vars(delete.response(tt)))
        contr <- if (length(facs)) setNames(rep(list("contr.sum"), length(facs)), facs) else NULL
        Xs <- model.matrix(tt, fr, contrasts.arg = contr)
        map <- qr.coef(qr(Xs), X)
        if (any(!is.finite(map)) || max(abs(Xs %*% map - X)) > 1e-8 * max(1, abs(X)))
            stop("cannot express the type 3 hypotheses in the model's coding", call. = FALSE)
        as <- attr(Xs, "assign")
        out <- lapply(seq_along(labels), function(i) {
            L <- map[as == i, , drop = FALSE]
            L[abs(L) < 1e-12] <- 0
            ## the same hypothesis in the basis lmerTest's type III uses (its
            ## rows in reduced row echelon form): Satterthwaite's df of a
            ## multi-df F test depends on the basis of L, not only its span
            rref_rows(L)
        })
    }
    names(out) <- labels
    out[vapply(out, nrow, 1L) > 0L]
}

## The reduced row echelon form of L (Gauss-Jordan elimination with partial
## pivoting, column by column): a canonical basis of its row space; rows
## that are zero after elimination are dropped.
rref_rows <- function(L, tol = 1e-10) {
    if (!nrow(L)) return(L)
    rn <- rownames(L)
    scale <- max(1, abs(L))
    r <- 0L
    for (j in seq_len(ncol(L))) {
        if (r == nrow(L)) break
        i <- r + which.max(abs(L[(r + 1L):nrow(L), j]))
        if (abs(L[i, j]) <= tol * scale) next
        r <- r + 1L
        if (i != r) L[c(r, i), ] <- L[c(i, r), ]
        L[r, ] <- L[r, ] / L[r, j]
        for (k in seq_len(nrow(L))[-r]) L[k, ] <- L[k, ] - L[k, j] * L[r, ]
    }
    L[abs(L) < tol * scale] <- 0
    L <- L[seq_len(r), , drop = FALSE]
    rownames(L) <- rn[seq_len(r)]
    L
}

#' F-tests of fixed-effect terms with denominator degrees of freedom
#'
#' The engine behind \code{anova(fit, ddf = ...)} for one model: for each
#' fixed-effect term an F-test with Satterthwaite's or Kenward-Roger's
#' denominator degrees of freedom, as \code{lmerTest}'s \code{anova}.
#'
#' @param object a fitted \code{lmmfit} model.
#' @param type 3 (marginal hypotheses, the default) or 1 (sequential).
#' @param ddf \code{"Satterthwaite"} or \code{"Kenward-Roger"}.
#' @return An \code{anova} data frame: \code{Sum Sq}, \code{Mean Sq},
#'   \code{NumDF}, \code{DenDF}, \code{F value}, \code{Pr(>F)}.
#' @keywords internal
anova_ddf <- function(object, type = 3, ddf = c("Satterthwaite", "Kenward-Roger")) {
    ddf <- match.arg(ddf)
    check_ddf_fit(object, ddf)
    if (!(identical(as.numeric(type), 1) || identical(as.numeric(type), 3)) &&
        !(is.character(type) && type %in% c("I", "III", "1", "3")))
        stop("'type' must be 1 or 3", call. = FALSE)
    type <- if (as.character(type) %in% c("1", "I")) 1L else 3L
    Ls <- term_contrasts(object, type)
    st <- ddf_setup(object, ddf)
    rows <- lapply(Ls, function(L) contrast_md(object, L, st))
    tab <- do.call(rbind, rows)
    if (is.null(tab)) tab <- f_table(numeric(), numeric(), numeric(), numeric())
    rownames(tab) <- names(Ls)
    structure(tab, heading = sprintf("Type %s Analysis of Variance Table with %s's method",
                                     c("I", "II", "III")[type], ddf),
              class = c("anova", "data.frame"))
}
