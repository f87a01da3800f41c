## Simulation, refits and the parametric bootstrap of fits with a residual
## variance or correlation structure (parboot(), simulate(), refit() send
## them here; R/bootstrap.R has the plain models' C loop).
##
## A replicate draws, in the plain models' order, the q values of u* (none
## with use.u = TRUE) and then n standard normals z, and forms
##     y* = X beta-hat + Z b* + offset + sigma-hat W^(-1/2) (S C S)^(1/2) z,
## b* = sigma-hat Lambda u* (or the conditional modes): the residuals are
## coloured by the fitted structure (src/resid_cor.c's color functions, or
## AR(1)'s recursion for ar1() fits).  Each refit optimises theta and the
## structure's parameters again, warm-started at the estimates.

## n x nsim simulated responses (offset included).
resid_simulate <- function(fit, nsim, use.u) {
    n <- length(fit$y)
    q <- length(fit$u)
    s <- sigma(fit)
    eta_hat <- linear_predictor(fit)
    Y <- matrix(0, n, nsim)
    for (i in seq_len(nsim)) {
        eta <- if (use.u || !q) eta_hat else {
            f <- fit
            f$u <- s * stats::rnorm(q)
            linear_predictor(f)
        }
        Y[, i] <- eta + s * resid_color(fit, stats::rnorm(n))
    }
    Y
}

## Standard normal draws z (a vector) as residual errors with the fitted
## structure's correlation and variance, sigma = 1: W^(-1/2) (S C S)^(1/2) z.
resid_color <- function(fit, z) {
    e <- if (!is.null(fit$resid)) resid_transform(fit, z, color = TRUE)
         else ar1_simulate_errors(fit, z)
    if (!is.null(fit$weights) && is.null(fit$ar1)) e <- e / sqrt(fit$weights)
    e
}

## The fit refitted to the response y (same model, same structure), as a
## full lmmfit object; its optimizer's warnings are returned, not raised.
resid_refit <- function(fit, y, REML = fit$REML) {
    warns <- character()
    core <- withCallingHandlers({
        if (!is.null(fit$resid)) {
            rs <- fit$resid
            rs$starts <- list(rs$par)
            resid_fit_core(fit$X, y, fit$weights, fit$offset, fit$reterms, REML, fit$control, rs)
        } else {
            ar1_fit_core(fit$X, y, fit$weights, fit$offset, fit$reterms, REML, fit$control,
                         ar1(fit$ar1$form), fit$frame, environment(fit$formula))
        }
    }, warning = function(w) {
        warns <<- c(warns, conditionMessage(w))
        invokeRestart("muffleWarning")
    })
    out <- fit
    out[names(core)] <- core
    out$y <- y
    out$REML <- REML
    if (NCOL(out$frame) >= 1L) out$frame[[1L]] <- y
    attr(out, "refit_warnings") <- warns
    out
}

## The default statistic of a structure fit: the plain one (fixed effects,
## random-effect SDs and correlations, sigma), then the structure's
## parameters on nlme's scale.
resid_boot_stat <- function(fit) {
    cp <- fit$corpar
    vp <- unlist(fit$varpar)
    c(boot_stat_default(fit), if (length(cp)) setNames(cp, paste0("cor_", names(cp))),
      if (length(vp)) setNames(vp, paste0("var_", names(vp))))
}

## m replicates: the statistic matrix, each refit's status (0 converged, 1
## with a convergence warning, 2 failed) and the messages.
resid_boot_block <- function(fit, FUN, m, use.u, t0, bar, done) {
    stat <- if (is.null(FUN)) resid_boot_stat else FUN
    t <- matrix(NA_real_, m, length(t0))
    status <- integer(m)
    msgs <- character()
    for (i in seq_len(m)) {
        y <- drop(resid_simulate(fit, 1L, use.u))
        val <- tryCatch({
            r <- resid_refit(fit, y)
            if (length(attr(r, "refit_warnings"))) {
                status[i] <- 1L
                msgs <- c(msgs, attr(r, "refit_warnings"))
            }
            boot_check_stat(stat(r), length(t0))
        }, error = function(e) e)
        if (inherits(val, "error")) {
            status[i] <- 2L
            msgs <- c(msgs, conditionMessage(val))
        } else if (status[i] == 0L) t[i, ] <- val
        if (!is.null(bar)) utils::setTxtProgressBar(bar, done + i)
    }
    list(t = t, status = status, messages = unique(msgs))
}

## pbtest() when a model has a residual variance or correlation structure
## (R/bootstrap.R sends it here): nsim responses drawn from the null's ML
## fit with its structure (as simulate() draws them), each refitted by ML
## with both models.  A replicate whose refit warns or fails counts as
## failed, as in parboot().
resid_pbtest <- function(fit0, fit1, nsim, seed, dname) {
    m0 <- pbtest_model(fit0)
    m1 <- pbtest_model(fit1)
    df <- m1$npar - m0$npar
    if (df <= 0) stop("'fit0' must have fewer parameters than 'fit1' (nested models)", call. = FALSE)
    rng <- boot_rng_setup(seed)
    if (!is.null(rng$restore)) on.exit(assign(".Random.seed", rng$restore, envir = .GlobalEnv))
    Y <- m0$draw(nsim)
    lrt <- m0$devs(Y) - m1$devs(Y)
    pbtest_result(pbtest_zap(m0$dev - m1$dev), pbtest_zap(lrt), df, dname, nsim, rng$state)
}

## One model of pbtest() by ML: its deviance, number of parameters (as
## logLik()'s df), m draws from it (columns) and the deviances of its ML
## refits to responses Y (NA where a refit warned or failed).  A structure
## fit refits in R, warm-started at its estimates; a plain one in the C loop.
pbtest_model <- function(fit) {
    if (inherits(fit, "lm")) return(pbtest_lm_null(fit))
    ml <- if (fit$REML) refit(fit, REML = FALSE) else fit
    out <- list(dev = deviance(ml), npar = n_parameters(ml))
    if (has_resid_structure(ml)) {
        out$draw <- function(m) resid_simulate(ml, m, FALSE)
        out$devs <- function(Y) apply(Y, 2L, function(y) {
            r <- tryCatch(resid_refit(ml, y, REML = FALSE), error = function(e) NULL)
            if (is.null(r) || length(attr(r, "refit_warnings"))) NA_real_ else deviance(r)
        })
        return(out)
    }
    off <- if (is.null(ml$offset)) 0 else ml$offset
    sim <- boot_spec(ml, conditioned = FALSE)
    spec <- boot_spec(ml)
    out$draw <- function(m) .Call(C_lmm_boot_simulate, sim, m, FALSE) + off
    out$devs <- function(Y) {
        r <- .Call(C_lmm_boot_run, spec, boot_shift(spec, ml, Y - off), 0L, FALSE, FALSE, ml$control)
        ifelse(r$status == 0L, r$deviance, NA_real_)
    }
    out
}
