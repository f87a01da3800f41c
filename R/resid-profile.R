## Profile-likelihood intervals for fits with a residual variance or
## correlation structure (confint(fit, method = "profile")).  As the plain
## fits' profiles (R/profile.R, lme4's convention) the ML deviance is
## profiled, a REML fit being refitted by ML.  Each variance parameter in
## turn is held at a value and the deviance (not profiled over sigma, from
## the C evaluation, R/resid-ddf.R) minimised over the others in R; the
## limits are where the increase reaches qchisq(level, 1), found by root
## finding on nlme's unconstrained scale of the parameter (R/resid-intervals.R),
## where the profile is closest to a parabola and free of bounds.  The fixed
## effects keep their Wald intervals.

## nlminb's relative tolerance of each minimisation: the deviance to ~1e-10
## relative (a few 1e-8 absolute for deviances ~ 1e3), well inside the 1e-6
## the limits are checked to.
RESID_PROFILE_REL_TOL <- 1e-13
## (a handful of parameters: nlminb converges in tens of iterations; the cap
## only stops a runaway along a flat direction)
RESID_PROFILE_MAX_EVAL <- 2000L
## uniroot's absolute tolerance on the unconstrained scale: the deviance's
## slope at a limit is ~ 2 sqrt(qchisq) / se ~ 4 / se, so for se >= 0.01 the
## deviance there is off by < 4e-8.
RESID_PROFILE_ROOT_TOL <- 1e-10
## Brackets: from est +- z se (nlme's approximate se) the step doubles up
## to this many times (2^12 se) before the limit is taken as the bound.
RESID_PROFILE_DOUBLINGS <- 12L
## The bracket's step when the approximate se is not available.
RESID_PROFILE_FALLBACK_SE <- 0.5

## The profiled parameters (lme4's .sig01, ...: per random-effects term the
## sds and correlations of its lower triangle column by column; .sigma; the
## structure's, named as parboot's cor_, var_), their scales, and the
## evaluator's coordinates phi = (theta, rpar, sigma) with their bounds.
## psi(phi): every profiled parameter on nlme's unconstrained scale.
resid_profile_coords <- function(fit) {
    terms <- fit$reterms
    isdiag <- theta_is_diag(terms)
    nre <- length(isdiag)
    cs <- nlme_cor_scales(fit)
    if (!is.null(cs) && !cs$elementwise)
        stop(sprintf(paste0("profile intervals of %s's parameters (%s) are not available: each is a function of ",
                            "several of the optimizer's, so one cannot be held fixed alone (corARMA with p and ",
                            "q at most 1 and corSymm of 2 positions can); intervals() gives nlme's approximate ",
                            "intervals"), cs$class, paste(names(fit$corpar), collapse = ", ")), call. = FALSE)
    st <- c(cs$scales, nlme_var_scales(fit))
    nr <- length(st)
    scales <- c(lapply(isdiag, function(d) nlme_scale(if (d) "log" else "fisher")), list(nlme_scale("log")), st)
    rpar <- if (!is.null(fit$resid)) fit$resid$par else if (!is.null(fit$ar1)) unname(fit$corpar[["Phi"]])
    rlow <- if (!is.null(fit$resid)) fit$resid$lower else if (nr) -ar1_phimax
    rup <- if (!is.null(fit$resid)) fit$resid$upper else if (nr) ar1_phimax
    reported <- function(phi) {
        r <- phi[nre + seq_len(nr)]
        st <- if (!is.null(fit$ar1)) r else if (nr) {
            rep <- resid_report(fit$resid, r)
            c(rep$corpar, unlist(unname(rep$varpar)))
        }
        c(theta_to_sdcor(phi[seq_len(nre)], terms, phi[[nre + nr + 1L]]), st)
    }
    cp <- fit$corpar
    vp <- varpar(fit)
    list(phi = c(unname(fit$theta), rpar, sigma(fit)), lower = c(theta_lower(terms), rlow, 0),
         upper = c(rep(Inf, nre), rup, Inf), scales = scales, nre = nre, nr = nr,
         reported = reported, psi = function(phi) nlme_unconstrained(list(scales = scales), reported(phi)),
         names = c(sprintf(".sig%02d", seq_len(nre)), ".sigma",
                   if (length(cp)) paste0("cor_", names(cp)), if (length(vp)) paste0("var_", names(vp))))
}

## The coordinates y in which parameter w is profiled: sigma and the
## structure's are coordinates of phi itself (theta's Cholesky coordinates
## keep the others free of the flat directions and semidefinite corners of
## the sd/correlation scale); a random-effects sd or correlation replaces
## its term's theta by that term's sds and correlations (as R/profile.R).
## k: w's place in y; value(u): its y at u; to_phi, from_phi, bounds.
resid_profile_view <- function(fit, co, w) {
    nre <- co$nre
    if (w > nre) {
        k <- if (w == nre + 1L) nre + co$nr + 1L else w - 1L
        value <- function(u) if (w == nre + 1L) co$scales[[w]]$from(u) else co$scales[[w]]$opt(u)
        return(list(k = k, value = value, to_phi = identity, from_phi = identity, lower = co$lower,
                    upper = co$upper))
    }
    nk <- vapply(fit$reterms, function(t) (ncol(t$Z) * (ncol(t$Z) + 1L)) %/% 2L, 1L)
    j <- findInterval(w - 1L, cumsum(c(0L, nk)))
    idx <- sum(nk[seq_len(j - 1L)]) + seq_len(nk[j])
    term <- fit$reterms[j]
    isdiag <- theta_is_diag(term)
    last <- length(co$phi)
    list(k = w - idx[1L] + 1L, value = co$scales[[w]]$from,
         to_phi = function(y) {
             phi <- numeric(last)
             phi[-idx] <- y[-seq_len(nk[j])]
             phi[idx] <- sdcor_to_theta(c(y[seq_len(nk[j])], phi[[last]]), term)
             phi
         },
         from_phi = function(phi) c(theta_to_sdcor(phi[idx], term, phi[[last]])[seq_len(nk[j])], phi[-idx]),
         lower = c(ifelse(isdiag, 0, -1), co$lower[-idx]), upper = c(ifelse(isdiag, Inf, 1), co$upper[-idx]))
}

## Per element of theta's sdcor order (per term the lower triangle column by
## column), its position in nlme's (per term the sds, then the correlations).
natural_order <- function(terms) {
    o <- 0L
    unlist(lapply(terms, function(t) {
        k <- ncol(t$Z)
        low <- which(lower.tri(diag(k), diag = TRUE), arr.ind = TRUE)
        off <- low[, 1L] != low[, 2L]
        pos <- o + ifelse(off, k + cumsum(off), low[, 1L])
        o <<- o + nrow(low)
        pos
    }))
}

## nlme's approximate se of each psi (intervals()' apVar: the random
## effects, the structure, sigma), in psi's order, for the brackets.
resid_profile_se <- function(fit, co) {
    ap <- tryCatch(nlme_apvar(fit, nlme_parameters(fit)), error = function(e) NULL)
    if (is.null(ap)) return(rep(RESID_PROFILE_FALLBACK_SE, length(co$names)))
    se <- sqrt(diag(ap$vcov))
    k <- length(se)
    c(se[natural_order(fit$reterms)], se[k], se[co$nre + seq_len(k - co$nre - 1L)])
}

## The ML deviance on phi (Inf where the evaluation fails, which nlminb
## steps back from), its minimum (a REML fit refitted by ML from its
## estimates; an ML fit polished), and one parameter's profile at u.
resid_profile_engine <- function(fit) {
    co <- resid_profile_coords(fit)
    ev <- resid_evaluator(fit, REML = FALSE)
    nre <- co$nre
    dev <- function(phi) {
        d <- tryCatch(ev(phi[seq_len(nre)], phi[nre + seq_len(co$nr)], phi[[length(phi)]])$deviance,
                      error = function(e) Inf)
        if (is.finite(d)) d else Inf
    }
    minimise <- function(f, start, lower, upper)
        stats::nlminb(start, f, lower = lower, upper = upper,
                      control = list(rel.tol = RESID_PROFILE_REL_TOL, eval.max = RESID_PROFILE_MAX_EVAL,
                                     iter.max = RESID_PROFILE_MAX_EVAL))
    o <- minimise(dev, co$phi, co$lower, co$upper)
    d0 <- dev(co$phi)
    opt <- if (o$objective < d0) o$par else co$phi
    views <- lapply(seq_along(co$names), function(w) resid_profile_view(fit, co, w))
    ## parameter w held at u, the others minimised from start (phi) and from
    ## the optimum (a warm start alone can stay in a poorer local minimum)
    profile_at <- function(w, u, start) {
        v <- views[[w]]
        k <- v$k
        best <- NULL
        for (s0 in list(start, opt)) {
            y0 <- v$from_phi(s0)
            put <- function(p) { y <- y0; y[-k] <- p; y[k] <- v$value(u); y }
            r <- minimise(function(p) dev(v$to_phi(put(p))), y0[-k], v$lower[-k], v$upper[-k])
            if (is.null(best) || r$objective < best$deviance) best <- list(deviance = r$objective, phi = v$to_phi(put(r$par)))
        }
        best
    }
    list(co = co, opt = opt, base = min(o$objective, d0), profile_at = profile_at)
}

## One limit of parameter w (side -1 or 1): where the profiled deviance
## exceeds the minimum by q, bracketed from est + side sqrt(q) se by
## doubling; the scale's bound (a sd's 0, a correlation's +-1) if it is not
## reached.
resid_profile_limit <- function(eng, w, side, q, se) {
    last <- eng$opt
    f <- function(u) {
        r <- eng$profile_at(w, u, last)
        last <<- r$phi
        r$deviance - eng$base - q
    }
    u0 <- eng$co$psi(eng$opt)[[w]]
    step <- sqrt(q) * se
    a <- u0
    for (i in 0:RESID_PROFILE_DOUBLINGS) {
        b <- u0 + side * step * 2^i
        if (f(b) > 0)
            return(eng$co$scales[[w]]$from(stats::uniroot(f, sort(c(a, b)), tol = RESID_PROFILE_ROOT_TOL)$root))
        a <- b
    }
    eng$co$scales[[w]]$from(side * Inf)
}

## confint(fit, method = "profile") for a structure fit: the variance
## parameters' profile limits on their reported scales, the fixed effects'
## Wald intervals; rows as confint()'s Wald table, the structure's after .sigma.
resid_confint_profile <- function(object, parm, level, ...) {
    refuse_extra_args("confint(method = \"profile\")", list(...),
                      " (a fit with a residual structure takes no profile() arguments)")
    eng <- resid_profile_engine(object)
    vnames <- eng$co$names
    bnames <- names(fixef(object))
    all <- c(vnames, bnames)
    sel <- if (missing(parm)) all else select_parm(parm, all, vnames, bnames)
    a <- (1 - level) / 2
    ci <- matrix(NA_real_, length(sel), 2L, dimnames = list(sel, paste(format(100 * c(a, 1 - a), trim = TRUE,
                 scientific = FALSE, digits = 3), "%")))
    vs <- intersect(sel, vnames)
    if (length(vs)) {
        se <- resid_profile_se(object, eng$co)
        q <- stats::qchisq(level, 1)
        for (p in vs) {
            w <- match(p, vnames)
            ci[p, ] <- c(resid_profile_limit(eng, w, -1, q, se[w]), resid_profile_limit(eng, w, 1, q, se[w]))
        }
    }
    bs <- intersect(sel, bnames)
    if (length(bs)) ci[bs, ] <- confint.lmmfit(object, parm = bs, level = level, method = "Wald")
    ci
}

## ---- profile() tables -------------------------------------------------------

## profile() of a structure fit: R/profile.R's table (class lmmfit_profile:
## .zeta, one column per parameter on its reported scale, .par) over the
## variance parameters, each walked from the optimum on nlme's unconstrained
## scale psi, the others minimised at each point.  The fixed effects are
## not profiled (their intervals are Wald's, as confint(method = "profile")).
resid_profile <- function(fitted, which, alphamax, maxpts, delta.cutoff) {
    eng <- resid_profile_table_engine(fitted)
    ws <- resid_profile_which(which, eng$names)
    cutoff <- sqrt(stats::qchisq(1 - alphamax, n_parameters(fitted)))
    delta <- cutoff * delta.cutoff
    profile_table(eng, ws, function(w, dir) resid_profile_walk(eng, w, dir, cutoff, delta, maxpts))
}

## The parameters to profile: names, indices or "theta_" (all of them);
## the fixed effects are refused by name.
resid_profile_which <- function(which, nms) {
    if (is.null(which)) return(seq_along(nms))
    if (is.character(which) && any(which == "beta_" | !which %in% c(nms, "theta_")))
        stop(sprintf(paste0("profile(): a fit with a residual variance or correlation structure profiles its ",
                            "variance parameters only (%s; or \"theta_\"): its fixed effects have Wald ",
                            "intervals in confint(fit, method = \"profile\")"), paste(nms, collapse = ", ")),
             call. = FALSE)
    if (is.character(which)) return(unique(unlist(lapply(which, function(p) if (p == "theta_") seq_along(nms)
                                                                       else match(p, nms)))))
    if (!is.numeric(which) || any(which < 1 | which > length(nms) | which != round(which)))
        stop(sprintf("'which' indices must be between 1 and %d", length(nms)), call. = FALSE)
    as.integer(which)
}

## The engine of the table, in R/profile.R's form (opt, lower, upper, nvp,
## names, zeta(w, x, start) on the reported scale) so that its confint()
## method applies, and zeta_u(w, u) on psi for the walk.  zeta's warm start
## is its previous point (start, a reported vector, is not used); each
## point is also minimised from the optimum (resid_profile_engine()).
resid_profile_table_engine <- function(fit) {
    e <- resid_profile_engine(fit)
    co <- e$co
    nms <- co$names
    u0 <- co$psi(e$opt)
    bad <- !is.finite(u0)
    if (any(bad))
        stop(sprintf(paste0("profile(): %s is on its bound at the estimate (a zero sd, a correlation of +-1), ",
                            "where nlme's unconstrained scale is not defined"), nms[bad][1L]), call. = FALSE)
    last <- e$opt
    zeta_u <- function(w, u) {
        r <- e$profile_at(w, u, last)
        last <<- r$phi
        c(.zeta = sign(u - u0[[w]]) * sqrt(max(0, r$deviance - e$base)), setNames(co$reported(r$phi), nms))
    }
    bound <- function(w, side) co$scales[[w]]$from(side * Inf)
    list(opt = setNames(co$reported(e$opt), nms), base = e$base, names = nms, nvp = length(nms),
         lower = setNames(vapply(seq_along(nms), bound, 0, side = -1), nms),
         upper = setNames(vapply(seq_along(nms), bound, 0, side = 1), nms),
         u0 = u0, se = resid_profile_se(fit, co), zeta_u = zeta_u,
         zeta = function(w, x, start) zeta_u(w, co$scales[[w]]$to(x)))
}

## The walk's steps: at most this many times the previous one (as R/profile.R).
RESID_PROFILE_MAX_STEP_MULT <- 10

## One side (dir -1 or 1) of parameter w's profile: steps on psi of about
## delta in zeta (from the first, delta approximate se's) until |zeta|
## exceeds the cutoff.  A profile still below the cutoff 2^DOUBLINGS
## approximate se's out (where confint(method = "profile") takes the bound)
## ends in a row at the bound, with .zeta NA unless evaluated there, so that
## the table's confint() gives the bound too.
resid_profile_walk <- function(eng, w, dir, cutoff, delta, maxpts) {
    u0 <- eng$u0[[w]]
    reach <- cutoff * eng$se[[w]] * 2^RESID_PROFILE_DOUBLINGS
    rows <- list(c(.zeta = 0, eng$opt))
    prevu <- u0
    prevz <- 0
    u <- u0 + dir * delta * eng$se[[w]]
    for (i in seq_len(maxpts)) {
        r <- eng$zeta_u(w, u)
        rows[[length(rows) + 1L]] <- r
        z <- r[[".zeta"]]
        if (abs(z) > cutoff) break
        if (abs(u - u0) > reach) {
            b <- if (dir < 0) eng$lower[[w]] else eng$upper[[w]]
            if (r[[w + 1L]] == b) break    # (a sd's exp(u) underflowed to 0: a real point there)
            at <- r
            at[[".zeta"]] <- NA_real_
            at[[w + 1L]] <- b
            rows[[length(rows) + 1L]] <- at
            break
        }
        step <- if (abs(z - prevz) > 0) abs(delta * (u - prevu) / (z - prevz)) else abs(u - prevu)
        step <- min(step, RESID_PROFILE_MAX_STEP_MULT * abs(u - prevu))
        prevu <- u
        prevz <- z
        u <- u + dir * step
    }
    do.call(rbind, rows)
}
