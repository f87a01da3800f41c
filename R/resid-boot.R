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
