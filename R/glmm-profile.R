## Likelihood profiles of glmmfit fits in the semantics of lme4's
## profile.merMod on a glmerMod.  The parameters are the random effects'
## standard deviations and correlations (.sig01, ..., the scale being fixed
## at 1) and the fixed effects.  For each profiled parameter held at a value
## the criterion -2 log L (Laplace or adaptive Gauss-Hermite, as the fit's
## nAGQ) is minimised over all the others; zeta is the signed square root of
## its rise above the optimum.  Every evaluation of the criterion is one call
## of the C core (C_lmm_glmm_eval: PIRLS for the modes at theta and beta,
## warm-started from the previous modes); the minimisation over the other
## parameters is nlminb's.  Intervals come from an interpolating spline of
## zeta against the parameter, inverted, as lme4's confint() of a profile.

## ---- named constants ----------------------------------------------------------

## The first point of each profile is the estimate moved by 1% of itself (an
## estimate at 0 by 0.001): lme4's rule, kept so that the two grids of
## points agree and so do intervals interpolated on them.
GLMM_PROFILE_SHIFT <- 0.01
GLMM_PROFILE_SHIFT0 <- 1e-3
## a step the secant rule cannot give (zeta not rising) is this long
GLMM_PROFILE_MINSTEP <- 1e-6
## nlminb at each point: the criterion is a smooth sum of a few hundred
## terms; a relative tolerance of 1e-13 (about 2e-11 on deviances of ~200)
## puts zeta's rounding far below the interval's 1e-6 agreement with lme4's
## tightly converged profile, at ~30 iterations per point from the previous
## point's estimates.
GLMM_PROFILE_NLMINB <- list(rel.tol = 1e-13, x.tol = 1e-10, eval.max = 2000L, iter.max = 1000L)
## The criterion's curvature in an sd or correlation, for its scale, from a
## second difference 1% of the value wide (wide enough for the difference to
## be well above the criterion's ~1e-11 rounding, narrow enough to see the
## curvature at the estimate), or 0.001 wide at values below 0.1 (an sd at
## or near 0)
GLMM_PROFILE_CURV_STEP <- 1e-2
GLMM_PROFILE_CURV_FLOOR <- 0.1
## A point whose criterion is below the optimum's by more than this (on
## -2 log L) means the fit was not at its optimum: lme4 stops there too (its
## devtol is 1e-9; ours allows the fit's own convergence, ~1e-8 relative on
## the criterion before the polish below).
GLMM_PROFILE_DEVTOL <- 1e-6
## lme4's profile() arguments lmmfit's does not take, and why
GLMM_PROFILE_REFUSED <- c(
    optimizer = "each point is minimised by nlminb over the C criterion",
    control = "each point is minimised by nlminb over the C criterion",
    startmethod = "each point starts at the previous point's estimates (lme4's \"prev\")",
    parallel = "profiles are computed serially", ncpus = "profiles are computed serially",
    cl = "profiles are computed serially",
    signames = "the parameters are named .sig01, ... as lme4's default")

## ---- the criterion and its minimisation ---------------------------------------------

## The evaluator of -2 log L at (sdcor, beta) and the minimiser over the
## parameters not held, on the fit's data; the optimum polished by the same
## minimiser, so that zeta = 0 at the estimates and no point lies below it.
glmm_profile_engine <- function(fit) {
    if (fit$nAGQ == 0L)
        stop("profile(): a nAGQ = 0 fit optimises an approximation without the fixed effects; ",
             "refit with nAGQ = 1 (or more) to profile its likelihood", call. = FALSE)
    nt <- length(fit$theta)
    nodes <- gauss_hermite_rule(fit$nAGQ)
    last_u <- fit$u
    dev <- function(par) {
        th <- sdcor_to_theta(c(par[seq_len(nt)], 1), fit$reterms)   # the scale 1
        r <- .Call(C_lmm_glmm_eval, fit$model, th, par[-seq_len(nt)], last_u, fit$nAGQ, nodes)
        if (r$pirls[1L] != 0L || !is.finite(r$deviance)) return(Inf)
        last_u <<- r$u
        r$deviance
    }
    vnames <- sprintf(".sig%02d", seq_len(nt))
    opt0 <- c(setNames(theta_to_sdcor(fit$theta, fit$reterms, 1)[seq_len(nt)], vnames), fit$beta)
    diag_t <- theta_is_diag(fit$reterms)
    lower <- setNames(c(ifelse(diag_t, 0, -1), rep(-Inf, length(fit$beta))), names(opt0))
    upper <- setNames(c(ifelse(diag_t, Inf, 1), rep(Inf, length(fit$beta))), names(opt0))
    eng <- list(nvp = nt, names = names(opt0), lower = lower, upper = upper, dev = dev)
    ## (vcov() of a fit without fixed effects fails: R/glmm-methods.R)
    se <- if (length(fit$beta)) sqrt(diag(as.matrix(vcov(fit)))) else numeric()
    eng$scale <- glmm_profile_scales(eng, opt0, se)
    pol <- glmm_profile_argmin(eng, integer(), numeric(), opt0)
    if (pol$deviance < fit$deviance_value) { eng$opt <- pol$par; eng$base <- pol$deviance }
    else { eng$opt <- opt0; eng$base <- fit$deviance_value }
    eng
}

## Coordinates in which nlminb sees every parameter at unit scale: the fixed
## effects' standard errors, and for each sd or correlation the criterion's
## curvature there (its second difference on the side away from a bound),
## so that the optimizer's finite differences and tolerances do not depend
## on the parameters' units.
glmm_profile_scales <- function(eng, opt, se_beta) {
    nvp <- eng$nvp
    s <- c(rep(1, nvp), se_beta)
    d0 <- eng$dev(opt)
    for (i in seq_len(nvp)) {
        h <- GLMM_PROFILE_CURV_STEP * max(abs(opt[[i]]), GLMM_PROFILE_CURV_FLOOR)
        dir <- if (opt[[i]] + 2 * h > eng$upper[[i]]) -1 else if (opt[[i]] - h < eng$lower[[i]]) 1 else 0
        at <- function(k) { p <- opt; p[i] <- p[i] + k * h; eng$dev(p) }
        d2 <- if (dir == 0) at(1) + at(-1) - 2 * d0 else at(2 * dir) - 2 * at(dir) + d0
        if (is.finite(d2) && d2 > 0) s[i] <- h / sqrt(d2 / 2)
    }
    ifelse(is.finite(s) & s > 0, s, 1)
}

## The minimum of the criterion over the parameters other than w (held at
## x), from start: list(par, deviance).  Points outside the bounds are
## evaluated at the bound, so that finite differences there stay finite.
glmm_profile_argmin <- function(eng, w, x, start) {
    par <- start
    par[w] <- x
    free <- setdiff(seq_along(par), w)
    if (!length(free)) return(list(par = par, deviance = eng$dev(par)))
    s <- eng$scale[free]
    x0 <- par[free]
    lo <- eng$lower[free]; up <- eng$upper[free]
    f <- function(v) { par[free] <- pmin(up, pmax(lo, x0 + s * v)); eng$dev(par) }
    o <- stats::nlminb(numeric(length(free)), f, lower = (lo - x0) / s, upper = (up - x0) / s,
                       control = GLMM_PROFILE_NLMINB)
    par[free] <- pmin(up, pmax(lo, x0 + s * o$par))
    list(par = par, deviance = o$objective)
}

## One point of parameter w's profile at x: c(.zeta, every parameter);
## .zeta NA where PIRLS failed at every evaluation.
glmm_profile_point <- function(eng, w, x, start) {
    r <- glmm_profile_argmin(eng, w, x, start)
    dd <- r$deviance - eng$base
    if (!is.finite(dd)) return(c(.zeta = NA_real_, r$par))
    if (dd < -GLMM_PROFILE_DEVTOL)
        stop(sprintf(paste0("profile(): a lower criterion (by %.3g) was found at %s = %g: ",
                            "the fit is not at its optimum; refit from these estimates"),
                     -dd, eng$names[w], x), call. = FALSE)
    c(.zeta = sign(x - eng$opt[[w]]) * sqrt(max(dd, 0)), r$par)
}

## ---- the walk ------------------------------------------------------------------------

## The next value of the profiled parameter from the last two rows (lme4's
## rule): a secant step that moves zeta by delta, at most maxmult times the
## last step, kept inside the bounds.
glmm_profile_next <- function(prev, cur, col, delta, maxmult, lo, up) {
    num <- cur[[col]] - prev[[col]]
    den <- cur[[1L]] - prev[[1L]]
    step <- if (is.na(den) || den == 0) GLMM_PROFILE_MINSTEP else delta * num / den
    if (step < 0) step <- GLMM_PROFILE_MINSTEP
    step <- min(step, maxmult * abs(num))
    min(up, max(lo, cur[[col]] + sign(num) * step))
}

## Extend one side of parameter w's profile from its first two rows until
## |zeta| passes the cutoff, the parameter reaches a bound or the side has
## maxpts rows.  Each point starts from the previous one's estimates.
glmm_profile_side <- function(eng, w, rows, cutoff, delta, maxpts, maxmult) {
    lo <- eng$lower[[w]]; up <- eng$upper[[w]]
    col <- w + 1L
    repeat {
        n <- length(rows)
        cur <- rows[[n]]
        if (n >= maxpts || cur[[col]] <= lo || cur[[col]] >= up || !(abs(cur[[1L]]) <= cutoff)) break
        x <- glmm_profile_next(rows[[n - 1L]], cur, col, delta, maxmult, lo, up)
        r <- glmm_profile_point(eng, w, x, cur[-1L])
        ## (PIRLS failing, e.g. at separation: the side ends at the last good point)
        if (is.na(r[[1L]])) {
            warning(sprintf("profile(): PIRLS failed at %s = %g: its profile stops at %g", eng$names[w], x,
                            cur[[col]]), call. = FALSE)
            break
        }
        rows[[n + 1L]] <- r
    }
    rows
}

## Parameter w's profile: from the estimate, a first point 1% away, then
## both sides (the far side only when the estimate is not on its bound);
## rows sorted by the parameter.
glmm_profile_one <- function(eng, w, cutoff, delta, maxpts, maxmult) {
    pw <- eng$opt[[w]]
    lo <- eng$lower[[w]]; up <- eng$upper[[w]]
    shift <- if (pw == 0) GLMM_PROFILE_SHIFT0 else pw * (1 + GLMM_PROFILE_SHIFT)
    ## (a correlation within 1% of +-1: the first point is on the other side)
    if (shift > up || shift < lo) shift <- pw * (1 - GLMM_PROFILE_SHIFT)
    row0 <- c(.zeta = 0, eng$opt)
    row1 <- glmm_profile_point(eng, w, shift, eng$opt)
    if (is.na(row1[[1L]]))
        stop(sprintf("profile(): PIRLS failed at %s = %g, next to the estimate", eng$names[w], shift), call. = FALSE)
    near <- glmm_profile_side(eng, w, list(row0, row1), cutoff, delta, maxpts, maxmult)
    far_open <- if (shift > pw) pw > lo else pw < up
    far <- if (far_open) glmm_profile_side(eng, w, list(row1, row0), cutoff, delta, maxpts, maxmult)
    m <- unique(do.call(rbind, c(near, far)))
    m[order(m[, w + 1L]), , drop = FALSE]
}

## zeta against the parameter as an interpolating spline and its inverse
## (splines' interpSpline and backSpline, as lme4 interpolates); an error
## (a profile not monotone) is kept in place of the inverse.
glmm_profile_splines <- function(d, p) {
    ok <- !is.na(d$.zeta)
    fwd <- tryCatch(splines::interpSpline(d[[p]][ok], d$.zeta[ok]), error = function(e) e)
    bak <- if (inherits(fwd, "error")) fwd else tryCatch(splines::backSpline(fwd), error = function(e) e)
    if (inherits(bak, "error")) warning(sprintf("non-monotonic profile for %s", p), call. = FALSE)
    list(forward = fwd, backward = bak)
}

## ---- methods ---------------------------------------------------------------------------

#' Likelihood profile of a glmmfit model
#'
#' Profiles the fit's criterion \eqn{-2 \log L} (the Laplace approximation,
#' or adaptive Gauss-Hermite quadrature with the fit's \code{nAGQ}) over each
#' random-effects standard deviation and correlation (\code{.sig01},
#' \code{.sig02}, ..., on lme4's \code{"sdcor"} scale) and each fixed
#' effect, as \code{lme4::profile} of a \code{glmer} fit: with one parameter
#' held at a value the criterion is minimised over all the others, and
#' \code{.zeta} is the signed square root of its rise above the optimum.
#' The points follow lme4's rule: from the estimate a first point 1\% away,
#' then secant steps that move \code{zeta} by about \code{delta}, until
#' \eqn{|\zeta|} passes \code{sqrt(qchisq(1 - alphamax, npar))} or the
#' parameter reaches a bound (a standard deviation 0, a correlation
#' \eqn{\pm 1}).  \code{confint()} of the profile interpolates, and
#' \code{plot()} draws it with base graphics (the linear profiles' method,
#' see \code{\link{profile.lmmfit}}).
#'
#' @param fitted a fitted \code{glmmfit} model (\code{nAGQ >= 1}).
#' @param which parameters to profile: names, indices, \code{"theta_"} (the
#'   covariance parameters) or \code{"beta_"} (the fixed effects); default
#'   all.  They are profiled in the parameters' order, as lme4.
#' @param alphamax the profile extends to \eqn{|\zeta| =}
#'   \code{sqrt(qchisq(1 - alphamax, npar))}, \code{npar} the number of
#'   parameters.
#' @param maxpts maximum number of points on each side.
#' @param delta the step in \code{zeta}; default \code{cutoff * delta.cutoff}.
#' @param delta.cutoff the step in \code{zeta} as a fraction of the cutoff.
#' @param maxmult a step is at most this many times the previous one.
#' @param prof.scale only \code{"sdcor"} (lme4's default) is supported.
#' @param ... lme4's \code{verbose} and \code{devtol} are ignored; its
#'   \code{optimizer}, \code{control}, \code{startmethod}, \code{parallel},
#'   \code{ncpus}, \code{cl} and \code{signames} are refused.
#' @return A data frame of class \code{glmmfit_profile} (also
#'   \code{lmmfit_profile}): \code{.zeta}, one column per parameter and
#'   \code{.par} (the profiled parameter, a factor), with attributes
#'   \code{forward} and \code{backward} (the splines of \code{zeta} against
#'   each parameter and their inverses), \code{lower} and \code{upper} (the
#'   profiled parameters' bounds).
#' @seealso \code{\link{confint.glmmfit}} (\code{method = "profile"}).
#' @examples
#' data(cbpp, package = "lme4")
#' fit <- glmmfit(cbind(incidence, size - incidence) ~ period + (1 | herd),
#'                data = cbpp, family = binomial)
#' pr <- profile(fit, which = c(".sig01", "period2"))
#' confint(pr)
#' head(as.data.frame(pr))
#' plot(pr)
#' @export
profile.glmmfit <- function(fitted, which = NULL, alphamax = 0.01, maxpts = 100, delta = NULL,
                            delta.cutoff = 1 / 8, maxmult = 10, prof.scale = c("sdcor", "varcov"), ...) {
    if (!identical(match.arg(prof.scale), "sdcor"))
        stop("profile(): lme4's prof.scale = \"varcov\" is not supported by lmmfit, which profiles ",
             "standard deviations and correlations (prof.scale = \"sdcor\", lme4's default)", call. = FALSE)
    dots <- list(...)
    refuse_dots("profile", dots[!names(dots) %in% c("verbose", "devtol")], GLMM_PROFILE_REFUSED)
    positive <- function(v) is.numeric(v) && length(v) == 1L && is.finite(v) && v > 0
    if (!positive(alphamax) || alphamax >= 1) stop("'alphamax' must be a number between 0 and 1", call. = FALSE)
    if (!positive(maxpts) || maxpts < 3) stop("'maxpts' must be a number of at least 3", call. = FALSE)
    if (!positive(delta.cutoff) || !positive(maxmult)) stop("'delta.cutoff' and 'maxmult' must be positive numbers",
                                                            call. = FALSE)
    eng <- glmm_profile_engine(fitted)
    ws <- sort(unique(resolve_which(which, eng)))
    cutoff <- sqrt(qchisq(1 - alphamax, length(eng$opt)))
    if (is.null(delta)) delta <- cutoff * delta.cutoff
    else if (!positive(delta)) stop("'delta' must be a positive number", call. = FALSE)
    pars <- eng$names[ws]
    tabs <- lapply(ws, function(w) {
        d <- as.data.frame(glmm_profile_one(eng, w, cutoff, delta, maxpts, maxmult))
        names(d) <- c(".zeta", eng$names)
        d$.par <- eng$names[w]
        d
    })
    sp <- Map(glmm_profile_splines, tabs, pars)
    out <- do.call(rbind, tabs)
    rownames(out) <- NULL
    out$.par <- factor(out$.par, levels = pars)
    structure(out, forward = setNames(lapply(sp, `[[`, "forward"), pars),
              backward = setNames(lapply(sp, `[[`, "backward"), pars),
              lower = eng$lower[ws], upper = eng$upper[ws], parameters = eng$names, nvp = eng$nvp,
              class = c("glmmfit_profile", "lmmfit_profile", "data.frame"))
}

#' @rdname profile.glmmfit
#' @param object a \code{glmmfit_profile} object.
#' @param parm parameters among those profiled: names, indices,
#'   \code{"theta_"} or \code{"beta_"}; default all.
#' @param level confidence level.
#' @param zeta instead of \code{level}: the values of \code{zeta} at which
#'   to read the parameters (the columns are then unnamed, as lme4's).
#' @param non.mono.tol a profile whose spline cannot be inverted and whose
#'   \code{zeta} falls by more than this between points is not monotone: its
#'   limits are \code{NA}, with a warning (otherwise they are interpolated
#'   linearly, with a warning).
#' @return \code{confint()}: a matrix with one row per parameter (in the
#'   profile's order) and the lower and upper limits.
#' @details \code{confint()} of a profile reads each limit off the inverse
#'   of the spline of \code{zeta} against the parameter at the normal
#'   quantiles, as lme4's; a limit outside the profile's range is the
#'   parameter's bound (0 for a standard deviation whose profile stops at 0,
#'   \code{-Inf} or \code{Inf} for a fixed effect whose profile does not
#'   reach the level).
#' @export
confint.glmmfit_profile <- function(object, parm, level = 0.95, zeta, non.mono.tol = 1e-2, ...) {
    prof <- levels(object$.par)
    parm <- if (missing(parm)) prof else glmm_profile_parm(parm, prof, attr(object, "parameters"),
                                                          attr(object, "nvp"))
    cn <- NULL
    if (missing(zeta)) {
        if (!is.numeric(level) || length(level) != 1L || !is.finite(level) || level <= 0 || level >= 1)
            stop("'level' must be a single number between 0 and 1", call. = FALSE)
        a <- (1 - level) / 2
        zeta <- qnorm(c(a, 1 - a))
        cn <- boot_format_perc(c(a, 1 - a))
    } else if (!is.numeric(zeta) || length(zeta) != 2L || anyNA(zeta))
        stop("'zeta' must be two numbers (the lower and upper values of zeta)", call. = FALSE)
    ci <- matrix(NA_real_, length(parm), 2L, dimnames = list(parm, cn))
    for (p in parm) ci[p, ] <- glmm_profile_limits(object, p, zeta, non.mono.tol)
    ci
}

## The parameters 'parm' names among those profiled (in the profile's order).
glmm_profile_parm <- function(parm, prof, all, nvp) {
    if (is.numeric(parm)) {
        if (any(parm < 1 | parm > length(prof) | parm != round(parm)))
            stop(sprintf("'parm' indices must be between 1 and %d (the profiled parameters)", length(prof)),
                 call. = FALSE)
        return(prof[parm])
    }
    if (!is.character(parm)) stop("'parm' must be names or indices of profiled parameters", call. = FALSE)
    vn <- all[seq_len(nvp)]
    w <- unique(unlist(lapply(parm, function(p) switch(p, theta_ = intersect(vn, prof),
                                                       beta_ = setdiff(prof, vn), p))))
    bad <- setdiff(w, all)
    if (length(bad))
        stop(sprintf("unknown parameter(s) in 'parm': %s (known: %s)", paste(bad, collapse = ", "),
                     paste(all, collapse = ", ")), call. = FALSE)
    unprof <- setdiff(w, prof)
    if (length(unprof))
        stop(sprintf("parameter(s) not profiled: %s (profiled: %s)", paste(unprof, collapse = ", "),
                     paste(prof, collapse = ", ")), call. = FALSE)
    prof[prof %in% w]
}

## One parameter's limits at zeta from its inverse spline; outside the
## profile's range (NA) the parameter's bound.
glmm_profile_limits <- function(object, p, zeta, non.mono.tol) {
    bak <- attr(object, "backward")[[p]]
    lims <- if (!inherits(bak, "error")) stats::predict(bak, zeta)$y
    else {
        d <- object[object$.par == p, , drop = FALSE]
        if (all(is.na(d$.zeta)) || min(diff(d$.zeta), na.rm = TRUE) < -non.mono.tol) {
            warning(sprintf("non-monotonic profile for %s: no interval", p), call. = FALSE)
            return(c(NA_real_, NA_real_))
        }
        warning(sprintf("bad spline fit for %s: falling back to linear interpolation", p), call. = FALSE)
        stats::approx(d$.zeta, d[[p]], zeta)$y
    }
    bounds <- c(attr(object, "lower")[[p]], attr(object, "upper")[[p]])
    ifelse(is.na(lims), bounds, lims)
}

#' @rdname profile.glmmfit
#' @param x a \code{glmmfit_profile} object.
#' @param row.names,optional ignored (the \code{as.data.frame} generic's).
#' @return \code{as.data.frame()}: a plain data frame with a column
#'   \code{.focal}, the profiled parameter's value in each row (as lme4's).
#' @export
as.data.frame.glmmfit_profile <- function(x, row.names = NULL, optional = FALSE, ...) {
    par <- as.character(x$.par)
    for (a in c("forward", "backward", "lower", "upper", "parameters", "nvp")) attr(x, a) <- NULL
    class(x) <- "data.frame"
    cols <- setdiff(names(x), ".par")
    x$.focal <- as.matrix(x[cols])[cbind(seq_len(nrow(x)), match(par, cols))]
    x$.par <- factor(par, levels = unique(par))
    x
}
