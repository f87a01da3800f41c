## Likelihood profiles and profile confidence intervals (lme4's scale and names).

## The evaluators of the profiled ML deviance (all optimisation in C).
profile_engine <- function(fitted) {
    if (!inherits(fitted, "lmmfit")) stop("'fitted' must be an lmmfit fit", call. = FALSE)
    ## (structure fits: resid_profile_table_engine(), R/resid-profile.R)
    if (has_resid_structure(fitted))
        stop("internal: profile_engine() of a fit with a residual structure", call. = FALSE)
    xp <- fitted$xprod
    ctl <- fitted$control
    ctl$factr <- min(ctl$factr, 1e3)
    n <- xp$nobs
    ## the ML optimum (lme4 profiles the ML deviance, refitting REML fits by ML)
    th <- fitted$theta
    if (fitted$REML) th <- .Call(C_lmm_optimize, xp, as.double(th), FALSE, ctl)$theta
    sol <- .Call(C_lmm_solution, xp, as.double(th), FALSE, NULL)
    sig <- sigma_hat(sol$pwrss, n)
    nt <- length(th)
    vnames <- c(sprintf(".sig%02d", seq_len(nt)), ".sigma")
    sdc <- theta_to_sdcor(th, fitted$reterms, sig)
    ## polish on the sdcor scale
    pol <- .Call(C_lmm_profile_vc, xp, 0L, 0, as.double(sdc), ctl)
    base <- sol$deviance
    if (pol$deviance < base) { base <- pol$deviance; sdc <- pol$par; sol$beta <- pol$beta }
    opt <- c(setNames(sdc, vnames), setNames(sol$beta, names(fitted$beta)))
    ## (correlations: in [-1, 1])
    lower <- c(ifelse(theta_is_diag(fitted$reterms), 0, -1), 0, rep(-Inf, length(fitted$beta)))
    upper <- c(ifelse(lower[seq_len(nt)] == 0, Inf, 1), Inf, rep(Inf, length(fitted$beta)))
    names(lower) <- names(upper) <- names(opt)
    stderr <- if (length(sol$RX)) sig * sqrt(diag(chol2inv(sol$RX))) else numeric()
    nvp <- nt + 1L
    ## one point of the profile of parameter w at value x: c(zeta, all parameters)
    zeta <- function(w, x, start) {
        if (w <= nvp) {
            r <- .Call(C_lmm_profile_vc, xp, as.integer(w), as.double(x), as.double(start[seq_len(nvp)]), ctl)
            par <- c(r$par, r$beta)
        } else {
            st <- start[seq_len(nvp)]
            th0 <- sdcor_theta_start(st, fitted$reterms)
            r <- .Call(C_lmm_profile_beta, xp, as.integer(w - nvp), as.double(x), th0, ctl)
            par <- c(theta_to_sdcor(r$theta, fitted$reterms, r$sigma), r$beta)
        }
        dd <- r$deviance - base
        c(.zeta = sign(x - opt[[w]]) * sqrt(max(0, dd)), setNames(par, names(opt)))
    }
    list(opt = opt, base = base, lower = lower, upper = upper, stderr = stderr, nvp = nvp,
         zeta = zeta, names = names(opt))
}

## theta from an sdcor vector (for warm starts of fixed-effect profiles).
sdcor_theta_start <- function(sdc, reterms) {
    s <- sdc[length(sdc)]
    i <- 0L
    unlist(lapply(reterms, function(t) {
        k <- ncol(t$Z); nk <- k * (k + 1L) / 2L
        v <- sdc[i + seq_len(nk)]; i <<- i + nk
        m <- matrix(0, k, k); m[lower.tri(m, diag = TRUE)] <- v
        sd <- diag(m); C <- m; diag(C) <- 1; C[upper.tri(C)] <- t(C)[upper.tri(C)]
        V <- outer(sd, sd) * C / s^2
        L <- tryCatch(t(chol(V)), error = function(e) diag(sqrt(pmax(diag(V), 0)), k))
        L[lower.tri(L, diag = TRUE)]
    }))
}

resolve_which <- function(which, eng) {
    nm <- eng$names
    vn <- nm[seq_len(eng$nvp)]
    bn <- nm[-seq_len(eng$nvp)]
    if (is.null(which)) return(seq_along(nm))
    if (is.numeric(which)) {
        if (any(which < 1 | which > length(nm) | which != round(which)))
            stop(sprintf("'which' indices must be between 1 and %d", length(nm)), call. = FALSE)
        return(as.integer(which))
    }
    if (!is.character(which)) stop("'which' must be parameter names or indices", call. = FALSE)
    w <- unlist(lapply(which, function(p) switch(p, beta_ = bn, theta_ = vn, p)))
    bad <- setdiff(w, nm)
    if (length(bad)) stop(sprintf("unknown parameter(s): %s (known: %s)", paste(bad, collapse = ", "),
                                  paste(nm, collapse = ", ")), call. = FALSE)
    match(w, nm)
}

## Walk from the optimum in one direction until |zeta| exceeds the cutoff or
## the parameter reaches its bound.
profile_walk <- function(eng, w, dir, cutoff, delta, maxpts, maxmult = 10) {
    pw <- eng$opt[[w]]
    lo <- eng$lower[[w]]; up <- eng$upper[[w]]
    if ((dir < 0 && pw <= lo) || (dir > 0 && pw >= up)) return(NULL)
    first <- if (w > eng$nvp) pw + dir * delta * eng$stderr[w - eng$nvp]
             else if (pw == 0) dir * max(1e-3, 1e-2 * eng$opt[[eng$nvp]])
             else pw * (1 + dir * 0.01)
    first <- min(up, max(lo, first))
    rows <- list(c(.zeta = 0, eng$opt))
    x <- first; prevx <- pw; prevz <- 0; start <- eng$opt
    for (i in seq_len(maxpts)) {
        r <- eng$zeta(w, x, start)
        rows[[length(rows) + 1L]] <- r
        z <- r[[".zeta"]]
        if (abs(z) > cutoff || x == lo || x == up) break
        start <- r[-1L]
        dz <- z - prevz; dx <- x - prevx
        step <- if (is.finite(dz) && abs(dz) > 0) abs(delta * dx / dz) else abs(dx)
        step <- min(step, maxmult * abs(dx))
        if (!(step > 0)) step <- 1e-6
        prevx <- x; prevz <- z
        x <- min(up, max(lo, x + dir * step))
    }
    do.call(rbind, rows)
}

#' Likelihood profile of an lmmfit model
#'
#' Profiles the ML deviance (as lme4, which refits REML fits by maximum
#' likelihood) over each variance-component standard deviation, correlation,
#' the residual standard deviation and each fixed effect, on lme4's scale and
#' names (\code{.sig01}, ..., \code{.sigma}, then the fixed effects).  Each
#' point minimises the deviance over the other parameters in C.  The signed
#' square root of the deviance increase is \code{.zeta}.
#'
#' For a fit with a residual variance or correlation structure the table
#' covers the variance parameters: the random-effect sds and correlations,
#' \code{.sigma} and the structure's parameters on nlme's scale
#' (\code{cor_Phi}, \code{var_Female}, ..., as \code{confint(fit, method =
#' "profile")} names them), each walked on nlme's unconstrained scale of the
#' parameter with the others minimised in R at each point; the fixed effects
#' are not profiled (\code{which = "beta_"} is an error) and keep Wald
#' intervals in \code{confint(fit, method = "profile")}.  A profile still
#' below the cutoff \eqn{2^{12}} approximate standard errors out ends at the
#' parameter's bound (a row with \code{.zeta} \code{NA} unless it could be
#' evaluated there), and \code{confint()} then gives the bound, as
#' \code{confint(fit, method = "profile")}.
#'
#' @param fitted a fitted \code{lmmfit} model.
#' @param which parameters to profile: names, indices, \code{"theta_"} or
#'   \code{"beta_"} (not for a structure fit); default all.
#' @param alphamax the profile extends to \code{sqrt(qchisq(1 - alphamax, np))}.
#' @param maxpts maximum number of points on each side.
#' @param delta.cutoff step in \code{zeta} as a fraction of the cutoff.
#' @param ... ignored.
#' @return A data frame of class \code{lmmfit_profile}: \code{.zeta}, one
#'   column per parameter, and \code{.par} (the profiled parameter).
#' @examples
#' data(Orthodont, package = "nlme")
#' fit <- lmmfit(distance ~ age + (1 | Subject), data = Orthodont)
#' pr <- profile(fit, which = ".sig01")
#' confint(pr)
#' @importFrom stats profile confint qchisq qnorm uniroot
#' @export
profile.lmmfit <- function(fitted, which = NULL, alphamax = 0.01, maxpts = 100,
                           delta.cutoff = 1 / 8, ...) {
    ps <- list(...)$prof.scale
    if (!is.null(ps) && !identical(ps, "sdcor"))
        stop("profile(): lme4's prof.scale = \"varcov\" is not supported by lmmfit, which profiles ",
             "standard deviations and correlations (prof.scale = \"sdcor\", lme4's default)", call. = FALSE)
    if (!is.numeric(alphamax) || length(alphamax) != 1L || !(alphamax > 0 && alphamax < 1))
        stop("'alphamax' must be a number between 0 and 1", call. = FALSE)
    if (has_resid_structure(fitted)) return(resid_profile(fitted, which, alphamax, maxpts, delta.cutoff))
    eng <- profile_engine(fitted)
    ws <- resolve_which(which, eng)
    cutoff <- sqrt(qchisq(1 - alphamax, length(eng$opt)))
    delta <- cutoff * delta.cutoff
    profile_table(eng, ws, function(w, dir) profile_walk(eng, w, dir, cutoff, delta, maxpts))
}

## The lmmfit_profile table of the parameters ws of engine eng (its $names):
## both sides walked by walk(w, direction), a matrix of (.zeta, parameters)
## rows, sorted along the focal parameter.
profile_table <- function(eng, ws, walk) {
    tabs <- lapply(ws, function(w) {
        m <- rbind(walk(w, -1), walk(w, 1))
        m <- unique(m[order(m[, w + 1L]), , drop = FALSE])
        d <- as.data.frame(m)
        names(d) <- c(".zeta", eng$names)
        d$.par <- eng$names[w]
        d
    })
    out <- do.call(rbind, tabs)
    rownames(out) <- NULL
    out$.par <- factor(out$.par, levels = eng$names[ws])
    structure(out, engine = eng, class = c("lmmfit_profile", "data.frame"))
}

#' @rdname profile.lmmfit
#' @param object an \code{lmmfit_profile} object.
#' @param parm parameters (names or indices among those profiled); default all.
#' @param level confidence level.
#' @export
confint.lmmfit_profile <- function(object, parm, level = 0.95, ...) {
    if (!is.numeric(level) || length(level) != 1L || !(level > 0 && level < 1))
        stop("'level' must be a single number between 0 and 1", call. = FALSE)
    eng <- attr(object, "engine")
    prof <- levels(object$.par)
    if (!missing(parm)) {
        parm <- if (is.numeric(parm)) prof[parm] else intersect(as.character(parm), prof)
        if (anyNA(parm) || !length(parm)) stop("'parm' must name profiled parameters", call. = FALSE)
    } else parm <- prof
    a <- (1 - level) / 2
    z <- qnorm(c(a, 1 - a))
    ci <- matrix(NA_real_, length(parm), 2L,
                 dimnames = list(parm, paste(format(100 * c(a, 1 - a), trim = TRUE, scientific = FALSE,
                                                    digits = 3), "%")))
    for (i in seq_along(parm)) {
        w <- match(parm[i], eng$names)
        d <- object[object$.par == parm[i], , drop = FALSE]
        x <- d[[parm[i]]]; zz <- d$.zeta
        for (s in 1:2) {
            target <- z[s]
            k <- which(diff(sign(zz - target)) != 0)
            k <- if (s == 1L) k[length(k)] else k[1L]
            if (!length(k) || is.na(k)) {
                ## not reached: the bound if the profile got there
                b <- if (s == 1L) eng$lower[[w]] else eng$upper[[w]]
                ci[i, s] <- if (any(x == b)) b else NA_real_
                next
            }
            start <- unlist(d[k, eng$names])
            f <- function(v) eng$zeta(w, v, start)[[".zeta"]] - target
            ci[i, s] <- uniroot(f, sort(x[k + 0:1]), tol = 1e-10 * max(1, abs(x[k])))$root
        }
    }
    ci
}

#' Profile-likelihood confidence intervals
#'
#' The engine behind \code{confint(fit, method = "profile")}: intervals for
#' the variance-component standard deviations and correlations
#' (\code{.sig01}, ...), the residual standard deviation (\code{.sigma}) and
#' the fixed effects, as \code{confint(lmer_fit, method = "profile")}.  The
#' limits are the exact points where the signed root of the ML deviance
#' increase equals the normal quantiles (found by root finding on the
#' profile); a standard deviation whose profile does not reach the lower
#' quantile before zero has lower limit 0, a correlation +-1.
#'
#' For a fit with a residual variance or correlation structure (see
#' \code{R/resid-profile.R}) the ML deviance is profiled in R over each
#' random-effect sd and correlation, \code{.sigma} and the structure's
#' parameters on nlme's scale (rows \code{cor_Phi}, \code{var_Female}, ...
#' after \code{.sigma}), the others refitted at each point; the limits are
#' exact roots on nlme's unconstrained scale of the parameter (not for
#' \code{corARMA} with \code{p} or \code{q} above 1 or \code{corSymm} of more
#' than 2 positions, whose coefficients or correlations are each a function
#' of several optimizer parameters: an error, \code{intervals()} gives
#' nlme's approximate intervals).  The fixed
#' effects of such a fit keep their Wald intervals; \code{profile()} gives
#' the table of the variance parameters' profiles, whose \code{confint()}
#' agrees.
#'
#' @param object a fitted \code{lmmfit} model.
#' @param parm parameters: names, indices, \code{"theta_"} or \code{"beta_"}; default all.
#' @param level confidence level.
#' @param ... passed to \code{\link{profile.lmmfit}} (none for a structure fit).
#' @return A matrix with one row per parameter and the lower and upper limits.
#' @examples
#' data(Orthodont, package = "nlme")
#' fit <- lmmfit(distance ~ age + (1 | Subject), data = Orthodont)
#' confint_profile(fit)
#' @export
confint_profile <- function(object, parm, level = 0.95, ...) {
    if (!is.numeric(level) || length(level) != 1L || !(level > 0 && level < 1))
        stop("'level' must be a single number between 0 and 1", call. = FALSE)
    if (has_resid_structure(object)) return(resid_confint_profile(object, parm, level, ...))
    which <- if (missing(parm)) NULL else parm
    pr <- profile.lmmfit(object, which = which, alphamax = min(0.01, (1 - level) / 2), ...)
    confint.lmmfit_profile(pr, level = level)
}

#' @rdname profile.lmmfit
#' @param x an \code{lmmfit_profile} object.
#' @param levels confidence levels marked by horizontal lines.
#' @param absVal plot \code{|zeta|} instead of \code{zeta}.
#' @importFrom graphics abline lines par points plot
#' @export
plot.lmmfit_profile <- function(x, levels = c(0.5, 0.8, 0.9, 0.95, 0.99), absVal = FALSE, ...) {
    pars <- levels(x$.par)
    np <- length(pars)
    nc <- ceiling(sqrt(np)); nr <- ceiling(np / nc)
    op <- par(mfrow = c(nr, nc), mar = c(4, 4, 1, 1))
    on.exit(par(op))
    q <- qnorm((1 + levels) / 2)
    for (p in pars) {
        d <- x[x$.par == p, , drop = FALSE]
        d <- d[is.finite(d$.zeta) & is.finite(d[[p]]), , drop = FALSE]    # (a structure's bound rows)
        zz <- if (absVal) abs(d$.zeta) else d$.zeta
        plot(d[[p]], zz, type = "n", xlab = p, ylab = if (absVal) "|zeta|" else "zeta", ...)
        abline(h = if (absVal) q else c(-q, q), lty = 3, col = "grey50")
        lines(d[[p]], zz)
        points(d[[p]], zz, pch = 20, cex = 0.6)
    }
    invisible(x)
}
