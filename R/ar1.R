## Residual AR(1) correlation within groups: nlme's corAR1 in lme4 syntax.
##
## The model: within each level of the AR grouping, the residuals at integer
## times t_1 < ... < t_T have correlation phi^|t_i - t_j|.  Whitening each
## group's rows (DESIGN.md section 5) gives an ordinary LMM whose cross-products
## are a fixed combination of pieces formed once in C (src/ar1.c); phi joins
## theta in the optimizer and no evaluation touches n-length data.

#' Residual AR(1) correlation within groups
#'
#' A correlation structure for \code{\link{lmmfit}}'s \code{correlation}
#' argument: within each level of the grouping \code{g}, the residuals of
#' observations at integer times \code{s} and \code{t} have correlation
#' \code{Phi^|s - t|}, as \code{nlme::corAR1(form = ~ time | g)}.
#'
#' The data need not be sorted: observations are ordered by \code{time} within
#' each group.  Times must be integers, unique within each group.  Missing
#' occasions (gaps) are allowed: two observations \code{d} time units apart
#' have correlation \code{Phi^d}.  This is what \code{nlme} fits when it is
#' given \code{corAR1(form = ~ time | g)} with gaps (it switches to
#' \code{corARMA(p = 1)}, which uses the time differences; \code{corCAR1} gives
#' the same model for integer times).  \code{~ 1 | g} uses the order of the
#' rows within each group (consecutive rows one step apart).
#'
#' The AR grouping must be nested in the random-effects grouping factor with
#' the most levels (the longitudinal case: random effects per subject, AR(1)
#' within subject).  Terms with fewer levels may cross it (subjects crossed
#' with items, \code{(1 | id) + (1 | item)}): they are assembled group by
#' group in the dense part of the factor, a model nlme cannot fit.  Prior
#' weights \code{w} give residual covariance
#' \code{sigma^2 W^(-1/2) R W^(-1/2)} (\code{nlme}'s \code{weights = varFixed(~ 1/w)}).
#'
#' @param form a one-sided formula \code{~ time | g} (or \code{~ 1 | g}).
#' @return An object of class \code{"lmmfit_ar1"}.
#' @seealso \code{\link{corpar}}
#' @examples
#' data(BodyWeight, package = "nlme")
#' fit <- lmmfit(weight ~ Time + Diet + (Time | Rat), data = BodyWeight,
#'               correlation = ar1(~ Time | Rat))
#' corpar(fit)
#' @export
ar1 <- function(form = ~ 1 | group) {
    if (!inherits(form, "formula") || length(form) != 2L)
        stop("ar1(): 'form' must be a one-sided formula such as ~ time | id", call. = FALSE)
    rhs <- form[[2L]]
    if (!is.call(rhs) || !identical(rhs[[1L]], quote(`|`)))
        stop("ar1(): 'form' must name a grouping, as in ~ time | id: ",
             "an AR(1) process over all the data is not supported", call. = FALSE)
    time <- rhs[[2L]]
    group <- rhs[[3L]]
    if (is.call(group) && identical(group[[1L]], quote(`/`)))
        stop("ar1(): write a nested grouping as an interaction, e.g. ~ time | a:b", call. = FALSE)
    if (!(is.numeric(time) && identical(as.numeric(time), 1)) && !is.name(time) && !is.call(time))
        stop("ar1(): the time covariate must be a variable or 1", call. = FALSE)
    structure(list(form = form, time = if (is.numeric(time)) NULL else time, group = group),
              class = "lmmfit_ar1")
}

#' @export
print.lmmfit_ar1 <- function(x, ...) {
    cat("AR(1) residual correlation, ", deparse1(x$form), "\n", sep = "")
    invisible(x)
}

## The variables (as expressions) a correlation structure needs in the model frame.
correlation_vars <- function(correlation) {
    if (!inherits(correlation, "lmmfit_ar1"))
        stop("'correlation' must be a correlation structure such as ar1(~ time | id)", call. = FALSE)
    c(if (!is.null(correlation$time)) list(correlation$time), list(correlation$group))
}

## The AR structure of the data: the group, the time, each row's predecessor
## (0 for the first row of a group) and time gap, its position in the group.
ar1_structure <- function(correlation, frame, env, reterms) {
    n <- nrow(frame)
    gname <- deparse1(correlation$group)
    g <- tryCatch(eval(correlation$group, frame, env), error = function(e)
        stop(sprintf("ar1(): cannot evaluate the grouping '%s': %s", gname, conditionMessage(e)),
             call. = FALSE))
    if (length(g) != n) stop(sprintf("ar1(): grouping '%s' has %d values for %d observations",
                                     gname, length(g), n), call. = FALSE)
    if (anyNA(g)) stop(sprintf("ar1(): grouping '%s' has missing values", gname), call. = FALSE)
    g <- factor(g)
    if (is.null(correlation$time)) {
        tname <- "1"
        tm <- integer(n)
        tm[order(as.integer(g))] <- run_positions(sort(as.integer(g)))
    } else {
        tname <- deparse1(correlation$time)
        tm <- tryCatch(eval(correlation$time, frame, env), error = function(e)
            stop(sprintf("ar1(): cannot evaluate the time '%s': %s", tname, conditionMessage(e)),
                 call. = FALSE))
        if (!is.numeric(tm) || length(tm) != n)
            stop(sprintf("ar1(): the time '%s' must be numeric, one value per observation", tname),
                 call. = FALSE)
        if (any(!is.finite(tm)))
            stop(sprintf("ar1(): the time '%s' has missing or infinite values", tname), call. = FALSE)
        if (any(abs(tm - round(tm)) > 1e-8 * pmax(1, abs(tm))))
            stop(sprintf(paste0("ar1(): the time '%s' must be integer valued (AR(1) with gaps is ",
                                "defined on integer times; rescale it, e.g. days or visit numbers)"),
                         tname), call. = FALSE)
        tm <- round(tm)
        if (max(abs(tm)) > .Machine$integer.max / 2)
            stop(sprintf("ar1(): the time '%s' is too large", tname), call. = FALSE)
    }
    o <- order(as.integer(g), tm)
    gs <- as.integer(g)[o]
    same <- c(FALSE, gs[-1L] == gs[-n])
    dt <- c(0, diff(tm[o]))
    if (any(same & dt == 0)) {
        i <- which(same & dt == 0)[1L]
        stop(sprintf("ar1(): duplicate times within a group: %s = %s occurs more than once in %s '%s'",
                     tname, format(tm[o][i]), gname, levels(g)[gs[i]]), call. = FALSE)
    }
    for (t in reterms) {
        f <- as.integer(t$factor)[o]
        if (any(same & c(FALSE, f[-1L] != f[-n])))
            stop(sprintf(paste0("ar1(): the AR(1) grouping '%s' must be nested in every random-effects ",
                                "grouping factor, but '%s' varies within it; other structures ",
                                "are not supported"), gname, t$group), call. = FALSE)
    }
    prev <- integer(n)
    gap <- integer(n)
    k <- which(same)
    prev[o[k]] <- o[k - 1L]
    gap[o[k]] <- as.integer(dt[k])
    pos <- integer(n)
    pos[o] <- run_positions(gs)
    list(group = gname, time = tname, form = correlation$form, g = g, tm = tm,
         prev = prev, gap = gap, pos = pos)
}

## Position of each element within its run of equal values (x sorted).
run_positions <- function(x) {
    n <- length(x)
    if (n == 0L) return(integer())
    first <- c(TRUE, x[-1L] != x[-n])
    seq_len(n) - cummax(ifelse(first, seq_len(n), 0L)) + 1L
}

## The largest |phi| the optimizer may reach.
ar1_phimax <- 1 - 1e-6

## The AR(1) fit: same result list as lmm_fit_core(), plus corpar, logdetR and
## the AR structure (ar1) with the pieces of the whitened cross-products.
ar1_fit_core <- function(X, y, w, off, reterms, REML, control, correlation, frame, env) {
    st <- ar1_structure(correlation, frame, env, reterms)
    yo <- if (is.null(off)) y else y - off
    storage.mode(X) <- "double"
    rows <- whitening_rows(X, yo, w, reterms)
    X <- rows$X; yo <- rows$y; Zs <- rows$Z; codes <- rows$codes; xp <- rows$xprod
    pcs <- .Call(C_lmm_ar1_pieces, X, yo, codes, Zs, xp, st$prev, st$gap)
    st$pieces <- pcs
    st$xprod0 <- xp

    nt <- length(theta_start(reterms))
    start <- c(theta_start(reterms), 0)
    opt <- .Call(C_lmm_ar1_optimize, xp, pcs$pieces, pcs$gaps, pcs$npairs, as.double(start),
                 REML, control, ar1_phimax)
    theta <- setNames(opt$par[seq_len(nt)], theta_names(reterms))
    phi <- opt$par[nt + 1L]
    wx <- .Call(C_lmm_ar1_xprod, xp, pcs$pieces, pcs$gaps, pcs$npairs, phi)
    sol <- .Call(C_lmm_solution, wx$xprod, theta, REML, NULL)
    dev <- sol$deviance + wx$logdetR

    ## convergence is judged on the curvature-scaled gradient, as for plain fits
    sg <- ifelse(is.na(opt$scaled_gradient), opt$gradient, opt$scaled_gradient)
    g_phi <- sg[nt + 1L]
    if (abs(phi) < ar1_phimax && (!is.finite(g_phi) || abs(g_phi) > control$check_grad_tol))
        warning(sprintf("AR(1) parameter: model failed to converge with |grad| = %.3g", g_phi),
                call. = FALSE)
    if (abs(phi) >= ar1_phimax)
        warning("the AR(1) parameter is at its bound (|Phi| = 1 - 1e-6)", call. = FALSE)
    optinfo <- list(theta = theta, phi = phi, deviance = opt$deviance, feval = opt$feval,
                    convergence = opt$convergence, message = opt$message,
                    gradient = opt$gradient[seq_len(nt)], gradient_phi = opt$gradient[nt + 1L],
                    scaled_gradient = opt$scaled_gradient[seq_len(nt)], settled = opt$settled)
    list(xprod = wx$xprod, optinfo = optinfo, theta = theta, deviance_value = dev,
         beta = setNames(sol$beta, colnames(X)), u = sol$u, RX = sol$RX,
         pwrss = sol$pwrss, ldL2 = sol$ldL2, ldRX2 = sol$ldRX2,
         corpar = c(Phi = phi), logdetR = wx$logdetR, ar1 = st)
}

## The profiled deviance (REML criterion or ML deviance) of an AR(1) fit's data
## at any (theta, phi): the whitened model's deviance plus log|R|.
ar1_deviance <- function(fit, theta = fit$theta, phi = fit$corpar[["Phi"]], REML = fit$REML) {
    st <- fit$ar1
    if (is.null(st)) stop("not a fit with AR(1) residuals", call. = FALSE)
    wx <- .Call(C_lmm_ar1_xprod, st$xprod0, st$pieces$pieces, st$pieces$gaps,
                st$pieces$npairs, as.double(phi))
    .Call(C_lmm_deviance, wx$xprod, as.double(theta), REML) + wx$logdetR
}

#' Parameters of the residual correlation structure
#'
#' @param object a fitted model.
#' @param ... ignored.
#' @return A named numeric vector: \code{c(Phi = ...)} for \code{\link{ar1}},
#'   \code{corAR1} and \code{corCAR1} residuals, \code{c(Rho = ...)} for
#'   \code{corCompSymm}, \code{c(range = ..., nugget = ...)} for the spatial
#'   structures, \code{c(Phi1 = ..., Theta1 = ...)} for \code{corARMA}, the
#'   correlations \code{Rho(2,1), Rho(3,1), ...} (the lower triangle by
#'   columns) for \code{corSymm} (as nlme reports them); empty for a fit
#'   without a correlation structure.
#' @examples
#' data(BodyWeight, package = "nlme")
#' fit <- lmmfit(weight ~ Time + Diet + (Time | Rat), data = BodyWeight,
#'               correlation = ar1(~ Time | Rat))
#' corpar(fit)
#' @export
corpar <- function(object, ...) UseMethod("corpar")

#' @rdname corpar
#' @export
corpar.lmmfit <- function(object, ...) {
    if (is.null(object$corpar)) setNames(numeric(0), character(0)) else object$corpar
}

## Printed in summary(): the correlation structure and its parameter, in
## nlme's layout.  Nothing is printed for a fit without one.
print_corpar <- function(fit, digits = max(3, getOption("digits") - 3)) {
    if (is.null(fit$corpar)) return(invisible(fit))
    cat("Correlation Structure: AR(1) within ", fit$ar1$group, "\n", sep = "")
    cat(" Formula: ", deparse1(fit$ar1$form), "\n", sep = "")
    cat(" Parameter estimate(s):\n")
    print(fit$corpar, digits = digits)
    invisible(fit)
}

## Whitening: rows (of a vector or matrix in the fit's row order) replaced by
## (r_t - phi^d r_{t-1}) / sqrt(1 - phi^2d), the first row of each group kept.
ar1_whiten <- function(fit, r) {
    st <- fit$ar1
    phi <- fit$corpar[["Phi"]]
    i <- which(st$prev > 0L)
    pd <- phi^st$gap[i]
    if (is.matrix(r)) {
        r[i, ] <- (r[i, , drop = FALSE] - pd * r[st$prev[i], , drop = FALSE]) / sqrt(1 - pd^2)
    } else {
        r[i] <- (r[i] - pd * r[st$prev[i]]) / sqrt(1 - pd^2)
    }
    r
}

## Normalized residuals (nlme's type = "normalized"): the conditional residuals
## divided by sigma (and by the prior-weight scale 1/sqrt(w)), whitened by the
## residual correlation, so that they are iid N(0, 1) under the model.
normalized_residuals <- function(object) {
    r <- object$y - linear_predictor(object)
    if (!is.null(object$weights)) r <- r * sqrt(object$weights)
    if (!is.null(object$resid)) r <- resid_transform(object, r)
    else if (!is.null(object$corpar)) r <- ar1_whiten(object, r)
    r <- r / sigma(object)
    names(r) <- rownames(object$frame)
    r
}

## Simulation: iid N(0, 1) draws `e` (a vector, or a matrix with one column per
## replicate, in the fit's row order) turned into residual errors with the
## fitted correlation (AR(1) within groups, unit variance) divided by sqrt(w)
## for prior weights.  Multiply by sigma(fit) for the model's residuals.
## A fit without a correlation structure gets e / sqrt(w).
ar1_simulate_errors <- function(fit, e) {
    n <- length(fit$y)
    if (NROW(e) != n) stop(sprintf("need %d draws per replicate, got %d", n, NROW(e)), call. = FALSE)
    st <- fit$ar1
    if (!is.null(fit$corpar)) {
        phi <- fit$corpar[["Phi"]]
        for (k in seq_len(max(st$pos))[-1L]) {
            i <- which(st$pos == k)
            pd <- phi^st$gap[i]
            if (is.matrix(e))
                e[i, ] <- pd * e[st$prev[i], , drop = FALSE] + sqrt(1 - pd^2) * e[i, , drop = FALSE]
            else
                e[i] <- pd * e[st$prev[i]] + sqrt(1 - pd^2) * e[i]
        }
    }
    if (!is.null(fit$weights)) e <- e / sqrt(fit$weights)
    e
}
