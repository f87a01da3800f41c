## Satterthwaite's degrees of freedom for fits with a residual variance or
## correlation structure.  The variance parameters are phi = (theta, the
## structure's optimizer parameters, sigma); Satterthwaite's df are
## invariant to their parametrisation (a delta method), so the optimizer's
## own scale serves.  The ingredients satterthwaite_df1() takes: vcov(beta),
## its Jacobian in phi, and twice the inverse Hessian of the deviance not
## profiled over sigma, all by central differences of the C evaluation at
## (theta, structure) -- a whitening pass and one factorisation each.

## Relative step of the differences.  With one Richardson step the
## truncation error is O(h^4) ~ 1e-12 and the Hessian's rounding error
## ~ eps |D| / h^2 ~ 1e-10 |D|.
RESID_DDF_STEP <- 1e-3

## The structure fit's evaluator: function(theta, rpar, sigma) giving the
## deviance not profiled over sigma and vcov(beta) there (a fit without a
## structure: rpar is empty); REML = FALSE: the ML deviance of a REML fit.
resid_evaluator <- function(fit, REML = fit$REML) {
    m <- length(fit$y) - if (REML) length(fit$beta) else 0L
    if (!is.null(fit$resid)) {
        gls <- is_gls(fit)
        reterms <- if (gls) gls_placeholder(length(fit$y)) else fit$reterms
        rows <- resid_rows(fit$X, fit$y, fit$weights, fit$offset, reterms,
                           any(resid_crossed_terms(fit$resid, reterms)))
        solve_at <- function(theta, rpar) {
            wx <- .Call(C_lmm_resid_xprod, rows$xprod, rows$X, rows$y, rows$codes, rows$Z, fit$resid$spec, rpar)
            sol <- .Call(C_lmm_solution, wx$xprod, if (gls) 0 else theta, REML, NULL)
            sol$RX <- sol$RX %*% rows$cond$Tinv
            sol
        }
    } else if (is.null(fit$ar1)) {
        ## a fit without a structure (intervals() takes these too): the plain cross-products
        solve_at <- function(theta, rpar) .Call(C_lmm_solution, fit$xprod, theta, REML, NULL)
    } else {
        st <- fit$ar1
        solve_at <- function(theta, rpar) {
            wx <- .Call(C_lmm_ar1_xprod, st$xprod0, st$pieces$pieces, st$pieces$gaps, st$pieces$npairs, rpar)
            sol <- .Call(C_lmm_solution, wx$xprod, theta, REML, NULL)
            sol$deviance <- sol$deviance + wx$logdetR
            sol
        }
    }
    function(theta, rpar, sigma) {
        sol <- solve_at(theta, rpar)
        ## the profiled deviance has sigma^2 = pwrss / m in m log(2 pi sigma^2) + pwrss / sigma^2
        dev <- sol$deviance - m * (1 + log(2 * pi * sol$pwrss / m)) + m * log(2 * pi * sigma^2) +
            sol$pwrss / sigma^2
        list(deviance = dev, vcov = sigma^2 * chol2inv(sol$RX))
    }
}

## The fit's variance parameters phi and the evaluator on them.
resid_phi <- function(fit) {
    rpar <- if (!is.null(fit$resid)) fit$resid$par else if (!is.null(fit$ar1)) unname(fit$corpar[["Phi"]])
            else numeric(0)
    nt <- length(fit$theta)
    nr <- length(rpar)
    ev <- resid_evaluator(fit)
    list(phi = c(unname(fit$theta), rpar, sigma(fit)),
         at = function(phi) ev(phi[seq_len(nt)], phi[nt + seq_len(nr)], phi[nt + nr + 1L]))
}

## Central differences of the C evaluation in phi, Richardson-extrapolated
## from the steps h and h / 2: the Hessian H of the deviance and, when
## asked, the Jacobian J of vcov(beta) (an array, one slice per element of
## phi).  Shared by Satterthwaite's df and intervals() (R/resid-intervals.R).
resid_derivatives <- function(ph, jacobian = TRUE) {
    phi <- ph$phi
    k <- length(phi)
    h <- RESID_DDF_STEP * pmax(abs(phi), 0.1)
    at <- function(d) ph$at(phi + d)
    f0 <- at(0)
    ## D and vcov at phi +- s e_j, for the step s = h and h / 2
    jac_hess <- function(s) {
        e <- function(j, a) replace(numeric(k), j, a * s[j])
        plus <- lapply(seq_len(k), function(j) at(e(j, 1)))
        minus <- lapply(seq_len(k), function(j) at(e(j, -1)))
        J <- if (jacobian) array(0, c(dim(f0$vcov), k))
        H <- matrix(0, k, k)
        for (j in seq_len(k)) {
            if (jacobian) J[, , j] <- (plus[[j]]$vcov - minus[[j]]$vcov) / (2 * s[j])
            H[j, j] <- (plus[[j]]$deviance - 2 * f0$deviance + minus[[j]]$deviance) / s[j]^2
        }
        for (j in seq_len(k)) for (l in seq_len(j - 1L)) {
            d4 <- at(e(j, 1) + e(l, 1))$deviance - at(e(j, 1) + e(l, -1))$deviance -
                at(e(j, -1) + e(l, 1))$deviance + at(e(j, -1) + e(l, -1))$deviance
            H[j, l] <- H[l, j] <- d4 / (4 * s[j] * s[l])
        }
        list(J = J, H = H)
    }
    a <- jac_hess(h)
    b <- jac_hess(h / 2)
    list(J = if (jacobian) (4 * b$J - a$J) / 3, H = (4 * b$H - a$H) / 3)
}

## Satterthwaite's ingredients for a structure fit (as satterthwaite_setup()).
resid_satterthwaite_setup <- function(object, tol = 1e-8) {
    d <- resid_derivatives(resid_phi(object))
    H <- d$H
    e <- eigen(H, symmetric = TRUE)
    if (any(e$values < -tol * max(1, abs(e$values))))
        warning("the Hessian of the deviance has negative eigenvalues: the fit may not have converged",
                call. = FALSE)
    pos <- e$values > tol * max(1, abs(e$values))
    hinv <- e$vectors[, pos, drop = FALSE] %*% (t(e$vectors[, pos, drop = FALSE]) / e$values[pos])
    list(method = "Satterthwaite", vcov = vcov(object), vcov_varpar = 2 * hinv, jacobian = d$J,
         sigma = sigma(object))
}
