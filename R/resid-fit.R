## The linear mixed model with residual variance functions and correlation
## structures (nlme's weights = varFunc, correlation = corStruct): the data
## whitened by the structure at each evaluation in C (src/resid_fit.c), the
## structure's parameters joining theta in the one optimizer driver.

## The structure's parameters this close to a bound (in the optimizer's
## units) are reported as on it.
RESID_AT_BOUND <- 1e-8

## The fit: lmm_fit_core()'s result list, plus corpar, varpar, logdetR
## (log|S C S|) and resid (the structure, with its optimizer parameters).
## The rows are conditioned as the plain fit's (X T and y - X T b0, an exact
## reparametrisation that whitening commutes with), then scaled by the
## square roots of any prior weights.
resid_fit_core <- function(X, y, w, off, reterms, REML, control, rs) {
    gls <- !length(reterms)
    if (gls) {
        reterms <- gls_placeholder(length(y))
        rs$spec$fixed_theta <- TRUE
    }
    rows <- resid_rows(X, y, w, off, reterms, any(resid_crossed_terms(rs, reterms)))
    cond <- rows$cond
    Xc <- rows$X; yc <- rows$y; Zs <- rows$Z; codes <- rows$codes; xp <- rows$xprod
    theta0 <- if (gls) 0 else theta_start(reterms)
    nt <- length(theta0)
    opt <- NULL
    nevals <- 0L
    for (s in rs$starts) {
        o <- .Call(C_lmm_resid_optimize, xp, Xc, yc, codes, Zs, rs$spec, c(theta0, s),
                   REML, control)
        nevals <- nevals + o$feval
        if (is.null(opt) || o$deviance < opt$deviance) opt <- o
    }
    opt$feval <- nevals
    theta <- setNames(opt$par[seq_len(nt)], theta_names(reterms))
    rpar <- opt$par[-seq_len(nt)]
    wx <- .Call(C_lmm_resid_xprod, xp, Xc, yc, codes, Zs, rs$spec, rpar)
    sol <- .Call(C_lmm_solution, wx$xprod, theta, REML, NULL)
    resid_check_convergence(opt, nt, control)
    rep <- resid_report(rs, rpar)
    optinfo <- list(theta = theta, resid_par = rpar, deviance = opt$deviance, feval = opt$feval,
                    convergence = opt$convergence, message = opt$message,
                    gradient = opt$gradient[seq_len(nt)], gradient_resid = opt$gradient[-seq_len(nt)],
                    scaled_gradient = opt$scaled_gradient[seq_len(nt)], settled = opt$settled)
    rs$par <- rpar
    rs$lower <- opt$lower
    rs$upper <- opt$upper
    fit <- list(xprod = untransform_xprod(wx$xprod, cond), optinfo = optinfo, theta = theta,
                deviance_value = sol$deviance,
                beta = setNames(drop(cond$T %*% (sol$beta + cond$b0)), colnames(X)),
                u = sol$u, RX = sol$RX %*% cond$Tinv, pwrss = sol$pwrss, ldL2 = sol$ldL2, ldRX2 = sol$ldRX2,
                corpar = rep$corpar, varpar = rep$varpar, logdetR = wx$logdet, resid = rs)
    if (gls) drop_placeholder(fit) else fit
}

## Whether each random-effects term's level varies within a correlation
## group (is crossed with it): src/resid_crossed.c assembles such terms by
## group, in the dense tail.
resid_crossed_terms <- function(rs, reterms) {
    cc <- rs$cor
    if (is.null(cc) || !length(reterms)) return(logical(length(reterms)))
    vapply(reterms, function(t) !is_nested_in(cc$g, t$factor), NA)
}

## Whether a random-effects term's level varies within the levels of an
## AR(1) grouping.
ar1_crossed <- function(cor, frame, env, reterms) {
    g <- resid_factor(cor$parts$group, frame, env, "ar1()")
    any(vapply(reterms, function(t) !is_nested_in(g, t$factor), NA))
}

## The largest dense tail a crossed term may need (its order): 5000^2
## doubles are 200 MB.
RESID_CROSSED_MAX_TAIL <- 5000L

## The conditioned rows of the fit (whitening_rows() of X T and
## y - offset - X T b0), with the transform as cond.  dense_tail: keep the
## tail dense (no sparse plan), as terms crossed with the correlation need.
resid_rows <- function(X, y, w, off, reterms, dense_tail = FALSE) {
    yo <- if (is.null(off)) y else y - off
    if (!is.double(X)) storage.mode(X) <- "double"
    cond <- conditioning_transform(X, yo)
    Xc <- X - rep(cond$xshift, each = nrow(X))
    rows <- whitening_rows(Xc, yo - drop(Xc %*% cond$b0), w, reterms, dense_tail)
    rows$cond <- cond
    rows
}

## The rows the C whitening works on, shared by ar1() and the general
## structures: X, y and each term's Z scaled by sqrt(w) for prior weights
## (Var(e) = sigma^2 W^(-1/2) S C S W^(-1/2)), the grouping codes, and the
## plain model's cross-products (their pattern, kept by whitening, with
## its tail plan: one plan for every parameter value; sum(log w)).
whitening_rows <- function(X, y, w, reterms, dense_tail = FALSE) {
    Z <- lapply(reterms, `[[`, "Z")
    if (!is.null(w)) {
        sw <- sqrt(w)
        X <- X * sw
        y <- y * sw
        Z <- lapply(Z, function(Zj) Zj * sw)
    }
    codes <- lapply(reterms, function(t) as.integer(t$factor))
    xp <- .Call(C_lmm_crossprod, X, y, NULL, codes, Z, vapply(reterms, `[[`, 1L, "nlev"),
                NULL, NULL, max_stages())
    xp$sumlogw <- if (is.null(w)) 0 else sum(log(w))
    qd <- if (dense_tail) xprod_layout(xp)$qd else 0L
    if (qd > RESID_CROSSED_MAX_TAIL)
        stop(sprintf(paste0("the random-effects terms after the first, crossed with the correlation ",
                            "grouping, have %d coefficients in all; at most %d are supported"),
                     qd, RESID_CROSSED_MAX_TAIL), call. = FALSE)
    list(X = X, y = y, Z = Z, codes = codes, xprod = if (dense_tail) xp else with_tail_plan(xp))
}

## Convergence of the structure's parameters is judged as theta's: on the
## curvature-scaled gradient, away from the bounds.
resid_check_convergence <- function(opt, nt, control) {
    if (length(opt$lower) == 0L) return(invisible())
    p <- opt$par[-seq_len(nt)]
    sg <- ifelse(is.na(opt$scaled_gradient), opt$gradient, opt$scaled_gradient)[-seq_len(nt)]
    at_bound <- p <= opt$lower + RESID_AT_BOUND | p >= opt$upper - RESID_AT_BOUND
    bad <- !at_bound & (!is.finite(sg) | abs(sg) > control$check_grad_tol)
    if (any(bad))
        warning(sprintf("residual structure parameters: model failed to converge with max|grad| = %.3g",
                        max(abs(sg[bad]))), call. = FALSE)
    ## a correlation of one, a variance ratio of e^50: the structure does not fit these data
    edge <- at_bound & (abs(opt$upper) < 1 & p >= opt$upper - RESID_AT_BOUND | abs(p) >= 50 - RESID_AT_BOUND)
    if (any(edge)) warning("a residual structure parameter is at its bound (a correlation of 1 or a ",
                           "variance ratio beyond e^50)", call. = FALSE)
    invisible()
}

## Whether a fit has a residual structure (ar1() or the general one).
has_resid_structure <- function(fit) !is.null(fit$corpar) || !is.null(fit$resid)

## The columns of M (rows in the fit's order) whitened by the fitted
## structure, (S C S)^(-1/2) M, or coloured, (S C S)^(1/2) M.
resid_transform <- function(fit, M, color = FALSE) {
    vec <- !is.matrix(M)
    M <- as.matrix(M)
    storage.mode(M) <- "double"
    out <- .Call(C_lmm_resid_transform, fit$resid$spec, fit$resid$par, M, color)
    attr(out, "logdet") <- NULL
    if (vec) drop(out) else out
}

## Each row's residual sd multiplier s_t (the residual sd is sigma s_t).
resid_sd_multiplier <- function(fit) {
    if (is.null(fit$resid) || !length(fit$resid$spec$var)) return(rep(1, length(fit$y)))
    spec <- fit$resid$spec
    spec$cor <- NULL
    spec$order <- spec$gstart <- NULL
    par <- fit$resid$par[fit$resid$ncor + seq_len(length(fit$resid$par) - fit$resid$ncor)]
    1 / drop(.Call(C_lmm_resid_transform, spec, as.double(par), matrix(1, length(fit$y)), FALSE))
}

#' Parameters of the residual variance function
#'
#' @param object a fitted model.
#' @param ... ignored.
#' @return A named numeric vector of the variance functions' parameters as
#'   nlme reports them: the standard-deviation ratios of \code{varIdent} (to
#'   the first stratum), the powers of \code{varPower}, the exponents of
#'   \code{varExp}, \code{varConstPower}'s constants and powers; empty for a
#'   fit without a variance function.
#' @examples
#' data(Orthodont, package = "nlme")
#' fit <- lmmfit(distance ~ age + (1 | Subject), data = Orthodont,
#'               weights = nlme::varIdent(form = ~ 1 | Sex))
#' varpar(fit)
#' @export
varpar <- function(object, ...) UseMethod("varpar")

#' @rdname varpar
#' @export
varpar.lmmfit <- function(object, ...) {
    if (is.null(object$varpar)) setNames(numeric(0), character(0)) else unlist(unname(object$varpar))
}

## corSymm's correlations as nlme prints them: the lower triangle, three decimals.
print_corsymm <- function(corpar, T) {
    C <- matrix(NA_real_, T, T)
    C[lower.tri(C)] <- corpar
    M <- C[-1L, -T, drop = FALSE]
    out <- ifelse(is.na(M), "", format(round(M, 3L)))
    dimnames(out) <- list(seq_len(T)[-1L], seq_len(T - 1L))
    cat(" Correlation: \n")
    print(out, quote = FALSE)
}

## Printed in summary(): the structures and their parameters, in nlme's layout.
print_resid_structure <- function(fit, digits = max(3, getOption("digits") - 3)) {
    rs <- fit$resid
    if (!is.null(rs$cor)) {
        title <- RESID_COR_TITLES[[rs$cor$class]]
        if (rs$cor$class == "corARMA") title <- sprintf(title, rs$cor$p, rs$cor$q)
        cat("Correlation Structure: ", title, "\n", sep = "")
        cat(" Formula: ", deparse1(rs$cor$form), "\n", sep = "")
        cat(" Parameter estimate(s):\n")
        if (rs$cor$class == "corSymm") print_corsymm(fit$corpar, rs$cor$npos)
        else print(fit$corpar, digits = digits)
    }
    if (length(rs$var) > 1L) cat("Combination of variance functions:\n")
    for (i in seq_along(rs$var)) {
        v <- rs$var[[i]]
        cat(if (length(rs$var) > 1L) "" else "Variance function:\n",
            " Structure: ", RESID_VAR_TITLES[[v$class]], "\n", sep = "")
        cat(" Formula: ", deparse1(v$form), "\n", sep = "")
        p <- fit$varpar[[i]]
        if (v$class == "varIdent") p <- c(setNames(1, v$levels[1L]), p)
        if (length(p)) {
            cat(" Parameter estimates:\n")
            print(p, digits = digits)
        }
    }
    invisible(fit)
}
