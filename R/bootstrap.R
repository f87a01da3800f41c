## Parametric bootstrap (DESIGN.md section 4): parboot(), simulate(), refit(),
## confint_boot(), pbtest() and the methods of "lmmfit_boot".

#' @importFrom stats simulate confint sd qnorm pchisq runif
NULL

## ---- internal helpers ---------------------------------------------------------

## The parts of a fit the C bootstrap needs: the cross-products, the model
## matrices, the estimates.  Grouping codes are 0-based for C.
##
## With conditioned = TRUE (refits) the C code works, as lmm_fit_core does,
## on better-conditioned data: X with its non-intercept columns centred
## (X T) and the response less X beta-hat, so that the refits' deviance has
## the same small rounding noise as the fit's own.  Its fixed effects are then
## gamma, with beta = beta-hat + T gamma (boot_unshift).  Simulation uses the
## plain spec (conditioned = FALSE), whose draws equal y* - offset.
boot_spec <- function(fit, conditioned = TRUE) {
    if (is.null(fit$xprod)) stop("the model has no cross-products to refit from", call. = FALSE)
    ## (structure fits simulate and refit in R: R/resid-boot.R)
    if (has_resid_structure(fit))
        stop("internal: boot_spec() of a fit with a residual variance or correlation structure", call. = FALSE)
    X <- fit$X
    storage.mode(X) <- "double"
    beta <- as.double(fit$beta)
    xprod <- fit$xprod
    cond <- NULL
    if (conditioned) {
        cond <- conditioning_transform(X, rep(0, nrow(X)))
        cond$b0 <- drop(cond$Tinv %*% beta)
        X <- X - rep(cond$xshift, each = nrow(X))
        xprod <- transform_xprod(xprod, cond)
        beta <- rep(0, length(beta))
    }
    list(xprod = xprod, X = X, weights = fit$weights,
         codes = lapply(fit$reterms, function(t) as.integer(t$factor) - 1L),
         Z = lapply(fit$reterms, `[[`, "Z"),
         beta = beta, theta = as.double(fit$theta),
         u = as.double(fit$u), sigma = as.double(sigma(fit)),
         cond = cond, beta_hat = as.double(fit$beta))
}

## The response a conditioned spec refits: y - offset - X beta-hat.
boot_shift <- function(spec, fit, yo) yo - drop(fit$X %*% spec$beta_hat)

## Fixed effects (columns 1..p of a statistic matrix, or a vector) of a
## conditioned refit back on the model's own scale.
boot_unshift_beta <- function(spec, gamma) {
    if (is.null(spec$cond)) return(gamma)
    if (is.matrix(gamma)) t(spec$beta_hat + spec$cond$T %*% t(gamma))
    else drop(spec$beta_hat + spec$cond$T %*% gamma)
}

## A C refit result (C_lmm_refit) of a conditioned spec on the model's scale.
boot_unshift <- function(spec, r) {
    if (is.null(spec$cond) || r$status == 2L) return(r)
    r$beta <- boot_unshift_beta(spec, r$beta)
    r$RX <- r$RX %*% spec$cond$Tinv
    r$xprod <- untransform_xprod(r$xprod, spec$cond)
    r
}

## Names of the default statistic, in the order the C code fills it: fixed
## effects; per random-effects term the lower triangle of its covariance
## column by column (SDs on the diagonal, correlations below, as lme4's
## .sig01, .sig02, ...); the residual SD.
boot_stat_names <- function(fit) {
    vc <- unlist(lapply(fit$reterms, function(t) {
        cn <- colnames(t$Z)
        k <- length(cn)
        out <- character()
        for (c in seq_len(k)) for (r in c:k)
            out <- c(out, if (r == c) sprintf("sd_%s|%s", cn[c], t$group)
                          else sprintf("cor_%s.%s|%s", cn[c], cn[r], t$group))
        out
    }))
    make.unique(c(names(fit$beta), vc, "sigma"))
}

## The default statistic of a fit, computed in R (the C loop computes the same
## for each replicate): t0, and the oracle of the tests.
boot_stat_default <- function(fit) {
    s <- sigma(fit)
    ## (the sigma that theta_to_sdcor() appends is the last element)
    vc <- theta_to_sdcor(fit$theta, fit$reterms, s, undefined = NaN)
    vc <- vc[-length(vc)]
    setNames(c(unname(fit$beta), vc, s), boot_stat_names(fit))
}

## A full lmmfit object for a refit from C: the original fit with the
## estimates, the cross-products and the response replaced.
boot_light_fit <- function(fit, r, y, REML = fit$REML) {
    f <- fit
    f$xprod <- r$xprod
    f$theta <- setNames(r$theta, names(fit$theta))
    f$beta <- setNames(r$beta, names(fit$beta))
    f$u <- r$u
    f$RX <- r$RX
    f$pwrss <- r$pwrss
    f$ldL2 <- r$ldL2
    f$ldRX2 <- r$ldRX2
    f$deviance_value <- r$deviance
    f$optinfo <- list(theta = f$theta, deviance = r$deviance, feval = r$feval,
                      convergence = r$convergence, message = r$message, gradient = r$gradient)
    f$y <- y
    f$REML <- REML
    f
}

## Set the seed as simulate.lm does: returns the state to record and the state
## to restore on exit (NULL when no seed was given).
boot_rng_setup <- function(seed) {
    if (!exists(".Random.seed", envir = .GlobalEnv, inherits = FALSE)) runif(1)
    if (is.null(seed)) return(list(state = get(".Random.seed", envir = .GlobalEnv), restore = NULL))
    old <- get(".Random.seed", envir = .GlobalEnv)
    set.seed(seed)
    list(state = structure(seed, kind = as.list(RNGkind())), restore = old)
}

boot_check_count <- function(x, what) {
    if (!is.numeric(x) || length(x) != 1L || !is.finite(x) || x < 1 || x != round(x))
        stop(sprintf("'%s' must be a positive whole number", what), call. = FALSE)
    as.integer(x)
}

boot_check_flag <- function(x, what) {
    if (!is.logical(x) || length(x) != 1L || is.na(x))
        stop(sprintf("'%s' must be TRUE or FALSE", what), call. = FALSE)
    x
}

## Contiguous blocks of 1..n, at most k of them.
boot_split_blocks <- function(n, k) {
    k <- max(1L, min(n, k))
    unname(split(seq_len(n), ceiling(seq_len(n) * k / n)))
}

## Standard normals one replicate consumes (u* unless use.u, then e*).
boot_draws_per_replicate <- function(fit, use.u) {
    length(fit$y) + if (use.u) 0 else length(fit$u)
}

## ---- parboot ------------------------------------------------------------------

#' Parametric bootstrap of a linear mixed model
#'
#' Simulates \code{nsim} responses from the fitted model, refits the model to
#' each and collects statistics, as \code{lme4::bootMer} does, with the
#' simulation and the refits in C.  Only the response parts of the
#' cross-products (\eqn{Z'Wy^*}, \eqn{X'Wy^*}, \eqn{y^{*\prime}Wy^*}) are
#' recomputed per replicate, and each refit of theta is warm-started at the
#' estimate.
#'
#' Each replicate draws \eqn{y^* = X\hat\beta + Zb^* + e^*} (plus the offset),
#' with \eqn{e^*_t \sim N(0, \hat\sigma^2/w_t)} for prior weights \eqn{w}, and
#' \eqn{b^* = \hat\sigma\Lambda_{\hat\theta} u^*}, \eqn{u^* \sim N(0, I)} when
#' \code{use.u = FALSE}, or \eqn{b^* = \hat b} (the conditional modes) when
#' \code{use.u = TRUE}.  The random numbers come from R's generator in a fixed
#' order per replicate: first the \eqn{q} values of \eqn{u^*} in the order of
#' \code{fit$u} (term by term, level-major, column-minor; none when
#' \code{use.u = TRUE}), then the \eqn{n} values of \eqn{e^*} in row order.
#' \code{\link[=simulate.lmmfit]{simulate}} uses the same order, so that
#' replicate \eqn{i} is the refit of column \eqn{i} of \code{simulate(fit,
#' nsim, seed)} for the same seed.  With \code{parallel = "multicore"} the
#' parent advances the generator to the start of each worker's block of
#' replicates, so the result equals the serial one (this needs a
#' \code{normal.kind} other than Box-Muller).
#'
#' The refits use the criterion of the original fit (REML or ML).  A replicate
#' whose refit fails (a factor not positive definite, a non-finite estimate, an
#' error in \code{FUN}) or does not converge (the finite-difference gradient
#' at the refit exceeds \code{check_grad_tol} of \code{\link{lmmfit_control}},
#' ignoring gradients that point out of the feasible region at a boundary)
#' gives a row of \code{NA} in \code{t}; the counts are printed.
#'
#' A fit with a residual variance or correlation structure (\code{correlation},
#' \code{weights = <varFunc>}, or no random effects at all) draws its residuals
#' with the fitted structure, \eqn{e^* = \hat\sigma W^{-1/2} (S C S)^{1/2} z}
#' for the same standard normals \eqn{z}, and each replicate refits theta and
#' the structure's parameters (warm-started at the estimates; slower than the
#' plain models' loop).  The default statistic then ends with the structure's
#' parameters on nlme's scale, named \code{"cor_Phi"}, \code{"var_Female"},
#' ...; a refit that warns about convergence counts as not converged.
#'
#' A \code{\link{glmmfit}} model is bootstrapped the same way with its
#' family: the responses of all replicates drawn first, as
#' \code{\link[=simulate.glmmfit]{simulate}} (and lme4's \code{bootMer})
#' draws them, each refitted from the estimates by both of glmer's stages;
#' the default statistic has no \code{sigma}, and a replicate whose
#' optimizer or PIRLS does not converge counts as not converged.
#'
#' @param fit a fitted \code{\link{lmmfit}} or \code{\link{glmmfit}} model.
#' @param FUN \code{NULL} for the default statistic, computed in C: the fixed
#'   effects, for each random-effects term its standard deviations and
#'   correlations (lme4's order of \code{.sig01}, \code{.sig02}, ..., named
#'   like \code{"sd_(Intercept)|Subject"}, \code{"cor_(Intercept).Days|Subject"}),
#'   and the residual standard deviation \code{"sigma"}.  Otherwise a function
#'   of a fitted model returning a numeric vector of fixed length (e.g.
#'   \code{fixef}); it is called with a full \code{lmmfit} object per replicate
#'   (the original with its estimates and response replaced), so that
#'   \code{fixef}, \code{sigma}, \code{VarCorr}, \code{vcov}, \code{fitted},
#'   ... work.  An undefined correlation (a zero SD) is \code{NaN}.
#' @param nsim number of bootstrap replicates.
#' @param use.u \code{FALSE} to draw new random effects for each replicate,
#'   \code{TRUE} to hold them at their conditional modes.
#' @param seed \code{NULL} or an integer for \code{set.seed}; when given, the
#'   state of the generator is restored on exit (as \code{simulate}).
#' @param parallel \code{"no"} or \code{"multicore"} (\code{parallel::mclapply};
#'   not on Windows).
#' @param ncpus number of processes for \code{parallel = "multicore"}.
#' @param progress show a text progress bar (serial runs only).
#' @return An object of class \code{"lmmfit_boot"}: a list with \code{t0} (the
#'   statistic on \code{fit}), \code{t} (an \code{nsim} x k matrix, one row per
#'   replicate), \code{R} (= \code{nsim}), \code{status} (per replicate: 0 ok,
#'   1 not converged, 2 failed), \code{nfail}, \code{nnonconv},
#'   \code{messages} (errors of \code{FUN}, if any), \code{use.u}, \code{seed}
#'   (the generator state at the start, or the seed given), \code{mle}
#'   (\code{beta}, \code{theta}, \code{sigma}) and \code{call}.
#' @seealso \code{\link{confint.lmmfit_boot}}, \code{\link{pbtest}},
#'   \code{\link{simulate.lmmfit}}, \code{\link{refit}}.
#' @examples
#' data(Orthodont, package = "nlme")
#' fit <- lmmfit(distance ~ age + (1 | Subject), data = Orthodont)
#' b <- parboot(fit, nsim = 200, seed = 1)
#' b
#' confint(b)
#' b2 <- parboot(fit, FUN = fixef, nsim = 50, use.u = TRUE, seed = 1)
#' summary(b2)
#' @export
parboot <- function(fit, FUN = NULL, nsim = 1000, use.u = FALSE, seed = NULL,
                    parallel = c("no", "multicore"), ncpus = 1L, progress = interactive()) {
    call <- match.call()
    ## a generalized linear mixed model is simulated and refitted in R/glmm-simulate.R
    if (inherits(fit, "glmmfit"))
        return(glmm_parboot(fit, FUN, nsim, use.u, seed, parallel, ncpus, progress, call))
    if (!inherits(fit, "lmmfit")) stop("'fit' must be a model fitted by lmmfit() or glmmfit()", call. = FALSE)
    if (inherits(fit, "lmmfit_agg"))
        stop("parboot() needs the data's rows, which a fit from aggregates (a database table, files or ",
             "lmmfit_stats()) does not hold: each replicate simulates a response for every row and sums ",
             "its cross-products with the rows' model columns; fit the rows in memory to bootstrap", call. = FALSE)
    nsim <- boot_check_count(nsim, "nsim")
    use.u <- boot_check_flag(use.u, "use.u")
    progress <- boot_check_flag(progress, "progress")
    parallel <- match.arg(parallel)
    ncpus <- boot_check_count(ncpus, "ncpus")
    if (!is.null(FUN)) FUN <- match.fun(FUN)
    if (parallel == "multicore" && ncpus > 1L && .Platform$OS.type == "windows") {
        warning("parallel = \"multicore\" is not available on Windows: running serially", call. = FALSE)
        ncpus <- 1L
    }
    multicore <- parallel == "multicore" && ncpus > 1L
    if (multicore && RNGkind()[2L] == "Box-Muller")
        stop("parallel = \"multicore\" cannot reproduce serial draws with normal.kind \"Box-Muller\"",
             call. = FALSE)

    ## a residual structure is simulated and refitted in R/resid-boot.R
    structured <- has_resid_structure(fit)
    spec <- if (!structured) boot_spec(fit)
    t0 <- if (!is.null(FUN)) boot_check_stat(FUN(fit), NULL)
          else if (structured) resid_boot_stat(fit) else boot_stat_default(fit)
    k <- length(t0)
    rng <- boot_rng_setup(seed)
    if (!is.null(rng$restore)) on.exit(assign(".Random.seed", rng$restore, envir = .GlobalEnv))

    run_block <- function(idx, bar = NULL) {
        if (structured) resid_boot_block(fit, FUN, length(idx), use.u, t0, bar, idx[1L] - 1L)
        else if (is.null(FUN)) boot_block_default(fit, spec, length(idx), use.u)
        else boot_block_fun(fit, spec, FUN, length(idx), use.u, t0, bar, idx[1L] - 1L)
    }

    if (multicore) {
        blocks <- boot_split_blocks(nsim, ncpus)
        per <- boot_draws_per_replicate(fit, use.u)
        states <- vector("list", length(blocks))
        for (i in seq_along(blocks)) {
            states[[i]] <- get(".Random.seed", envir = .GlobalEnv)
            .Call(C_lmm_boot_skip, per * length(blocks[[i]]))
        }
        res <- parallel::mclapply(seq_along(blocks), function(i) {
            assign(".Random.seed", states[[i]], envir = .GlobalEnv)
            run_block(blocks[[i]])
        }, mc.cores = ncpus, mc.preschedule = FALSE)
        bad <- vapply(res, function(r) inherits(r, "try-error") || is.null(r), NA)
        if (any(bad)) {
            msg <- res[bad][[1L]]
            stop("a parallel worker failed: ",
                 if (inherits(msg, "try-error")) conditionMessage(attr(msg, "condition")) else "no result",
                 call. = FALSE)
        }
    } else if (progress) {
        bar <- utils::txtProgressBar(min = 0, max = nsim, style = 3)
        on.exit(close(bar), add = TRUE)
        blocks <- if (is.null(FUN)) boot_split_blocks(nsim, 50L) else list(seq_len(nsim))
        res <- lapply(blocks, function(idx) {
            r <- run_block(idx, bar)
            utils::setTxtProgressBar(bar, idx[length(idx)])
            r
        })
    } else {
        res <- list(run_block(seq_len(nsim)))
    }

    t <- do.call(rbind, lapply(res, `[[`, "t"))
    status <- unlist(lapply(res, `[[`, "status"))
    msgs <- unlist(lapply(res, `[[`, "messages"))
    t[status != 0L, ] <- NA
    dimnames(t) <- list(NULL, names(t0))
    structure(list(t0 = t0, t = t, R = nsim, status = status,
                   nfail = sum(status == 2L), nnonconv = sum(status == 1L),
                   messages = msgs, use.u = use.u, seed = rng$state,
                   statistic = if (is.null(FUN)) "default" else "FUN",
                   mle = list(beta = fit$beta, theta = fit$theta, sigma = sigma(fit)),
                   REML = fit$REML, call = call),
              class = "lmmfit_boot")
}

## The default statistic for m replicates, all in C.
boot_block_default <- function(fit, spec, m, use.u) {
    r <- .Call(C_lmm_boot_run, spec, NULL, as.integer(m), use.u, fit$REML, fit$control)
    p <- length(fit$beta)
    if (p > 0L) r$t[, seq_len(p)] <- boot_unshift_beta(spec, r$t[, seq_len(p), drop = FALSE])
    list(t = r$t, status = r$status, messages = character())
}

## A user FUN on a light fit per replicate; the responses are simulated in C
## in sub-blocks (so memory stays bounded) and each refit is one C call.
boot_block_fun <- function(fit, spec, FUN, m, use.u, t0, bar, done) {
    k <- length(t0)
    t <- matrix(NA_real_, m, k)
    status <- integer(m)
    msgs <- character()
    n <- length(fit$y)
    off <- if (is.null(fit$offset)) 0 else fit$offset
    for (sub in boot_split_blocks(m, ceiling(m / max(1, floor(1e6 / n))))) {
        Y <- .Call(C_lmm_boot_simulate, spec, length(sub), use.u)
        for (j in seq_along(sub)) {
            i <- sub[j]
            r <- boot_unshift(spec, .Call(C_lmm_refit, spec, Y[, j], spec$theta, fit$REML, fit$control))
            status[i] <- r$status
            if (r$status != 2L) {
                yj <- Y[, j] + drop(fit$X %*% spec$beta_hat) + off
                val <- tryCatch(boot_check_stat(FUN(boot_light_fit(fit, r, yj)), k),
                                error = function(e) e)
                if (inherits(val, "error")) {
                    status[i] <- 2L
                    msgs <- c(msgs, conditionMessage(val))
                } else if (r$status == 0L) t[i, ] <- val
            }
            if (!is.null(bar)) utils::setTxtProgressBar(bar, done + i)
        }
    }
    list(t = t, status = status, messages = unique(msgs))
}

boot_check_stat <- function(val, k) {
    if (!is.numeric(val) || !is.null(dim(val)) && length(dim(val)) > 1L && all(dim(val) > 1L))
        stop("'FUN' must return a numeric vector", call. = FALSE)
    val <- unlist(val)
    nm <- names(val)
    if (is.null(nm)) nm <- character(length(val))
    nm[is.na(nm) | nm == ""] <- paste0("t", seq_along(val))[is.na(nm) | nm == ""]
    names(val) <- nm
    if (!is.null(k) && length(val) != k)
        stop(sprintf("'FUN' returned %d values instead of %d", length(val), k), call. = FALSE)
    val
}

## ---- simulate, refit ----------------------------------------------------------

#' Simulate responses from a fitted lmmfit model
#'
#' Draws new responses \eqn{y^* = X\hat\beta + Zb^* + e^*} (plus the offset)
#' in the same way, and in the same order of random numbers, as each replicate
#' of \code{\link{parboot}}: first the spherical random effects \eqn{u^*} (in
#' the order of \code{object$u}; not drawn when \code{use.u = TRUE}), then the
#' residuals in row order.  So column \eqn{i} of \code{simulate(fit, nsim,
#' seed = s)} is the response of replicate \eqn{i} of \code{parboot(fit, nsim =
#' nsim, seed = s)}.
#'
#' @param object a fitted \code{lmmfit} model.
#' @param nsim number of responses to simulate.
#' @param seed \code{NULL} or an integer for \code{set.seed}; when given the
#'   state of the generator is restored on exit.
#' @param use.u \code{FALSE}: new random effects \eqn{b^* =
#'   \hat\sigma\Lambda u^*}, \eqn{u^* \sim N(0, I)}; \code{TRUE}: the
#'   conditional modes \eqn{\hat b}.
#' @param re.form lme4's equivalent of \code{use.u}: \code{NA} or \code{~0}
#'   (the default: new random effects), \code{NULL} (the conditional modes,
#'   as \code{use.u = TRUE}).  A formula naming some of the terms is refused
#'   with an error.
#' @param newdata a data frame to simulate responses for (as lme4): the
#'   fixed part and offsets built as by \code{predict}, new random effects
#'   drawn for the levels present in \code{newdata} (or the fitted ones
#'   used, with \code{re.form = NULL}).  The random numbers are drawn in
#'   lme4's order (all replicates' random effects, then all residuals), so
#'   that without new levels the result is lme4's for the same seed.
#' @param allow.new.levels with \code{newdata}: may it hold levels of a
#'   grouping factor not seen in fitting?  With \code{re.form = NA} they get
#'   new random effects like the others; with \code{re.form = NULL}, zero.
#' @param na.action with \code{newdata}: what to do with rows whose mean is
#'   missing (see \code{\link{predict.lmmfit}}).
#' @param newparams lme4's argument for simulating at other parameter
#'   values: not supported (an error when given).
#' @param ... other arguments: ignored with a warning.
#' @return A data frame with \code{nsim} columns \code{sim_1}, ..., one row
#'   per observation, with attribute \code{"seed"} as \code{simulate.lm}.
#' @examples
#' data(Orthodont, package = "nlme")
#' fit <- lmmfit(distance ~ age + (1 | Subject), data = Orthodont)
#' head(simulate(fit, nsim = 2, seed = 1))
#' @method simulate lmmfit
#' @export
simulate.lmmfit <- function(object, nsim = 1, seed = NULL, use.u = FALSE, re.form = NA,
                            newdata = NULL, allow.new.levels = FALSE, na.action = na.pass,
                            newparams = NULL, ...) {
    if (!is.null(newparams))
        stop("simulate(): lme4's argument 'newparams' is not supported by lmmfit, which simulates ",
             "at the fitted parameters", call. = FALSE)
    if (!isFALSE(allow.new.levels) && is.null(newdata))
        stop("simulate(): 'allow.new.levels' applies to 'newdata', which is not given", call. = FALSE)
    if (!missing(re.form)) {
        if (is.null(re.form)) {
            use.u <- TRUE
        } else if (!((length(re.form) == 1L && is.na(re.form)) ||
                     (inherits(re.form, "formula") && !length(find_bars(re.form[[length(re.form)]]))))) {
            stop("simulate(): 're.form' naming some random-effects terms is not supported by lmmfit; ",
                 "use re.form = NULL (condition on all of them) or NA (simulate all anew)", call. = FALSE)
        } else if (isTRUE(use.u)) {
            stop("simulate(): 'use.u = TRUE' conflicts with 're.form' (NA or ~0 simulates new random effects)",
                 call. = FALSE)
        }
    }
    refuse_dots("simulate", list(...))
    nsim <- boot_check_count(nsim, "nsim")
    use.u <- boot_check_flag(use.u, "use.u")
    rng <- boot_rng_setup(seed)
    if (!is.null(rng$restore)) on.exit(assign(".Random.seed", rng$restore, envir = .GlobalEnv))
    if (!is.null(newdata)) {
        if (has_resid_structure(object))
            stop("simulate(): 'newdata' is not supported for models with a residual variance or correlation structure",
                 call. = FALSE)
        out <- simulate_newdata(object, nsim, newdata, conditional = use.u,
                                allow.new.levels = isTRUE(allow.new.levels), na.action = na.action)
        attr(out, "seed") <- rng$state
        return(out)
    }
    if (has_resid_structure(object)) Y <- resid_simulate(object, nsim, use.u)
    else {
        Y <- .Call(C_lmm_boot_simulate, boot_spec(object, conditioned = FALSE), nsim, use.u)
        if (!is.null(object$offset)) Y <- Y + object$offset
    }
    out <- as.data.frame(Y)
    names(out) <- paste0("sim_", seq_len(nsim))
    rownames(out) <- rownames(object$frame)
    attr(out, "seed") <- rng$state
    out
}

#' Refit a model to a new response
#'
#' Refits a model to a new response vector, reusing its model matrices: only
#' the response parts of the cross-products are recomputed (in C), and the
#' optimisation starts from the model's estimate of theta.
#'
#' @param object a fitted model.
#' @param newresp the new response, one value per observation used in the fit
#'   (on the scale of the formula's left-hand side, offset included), or
#'   \code{NULL} for the model's own response (to switch \code{REML}).
#' @param ... passed to methods.
#' @return A fitted model of the same class.
#' @export
refit <- function(object, newresp = NULL, ...) UseMethod("refit")

#' @rdname refit
#' @param REML \code{NULL} (the criterion of \code{object}) or \code{TRUE} /
#'   \code{FALSE}.
#' @examples
#' data(Orthodont, package = "nlme")
#' fit <- lmmfit(distance ~ age + (1 | Subject), data = Orthodont)
#' fit2 <- refit(fit, simulate(fit, seed = 1)[[1]])
#' fixef(fit2)
#' fixef(refit(fit, REML = FALSE))
#' @export
refit.lmmfit <- function(object, newresp = NULL, REML = NULL, ...) {
    if (is.null(REML)) REML <- object$REML
    REML <- boot_check_flag(REML, "REML")
    refuse_dots("refit", list(...), c(rename.response = "the response keeps its name",
                                      maxit = "lmmfit_control(maxit =) of the fit applies"))
    ## as lme4: a response padded with NA at the rows na.action dropped
    omitted <- object$na.action
    if (!is.null(newresp) && !is.null(omitted) && NROW(newresp) == length(object$y) + length(omitted)) {
        if (is.data.frame(newresp)) newresp <- newresp[[1L]]
        newresp <- as.vector(newresp)[-omitted]
    }
    y <- if (is.null(newresp)) object$y else {
        if (is.data.frame(newresp)) {
            if (ncol(newresp) != 1L) stop("'newresp' must be a vector or a one-column data frame", call. = FALSE)
            newresp <- newresp[[1L]]
        }
        if (is.matrix(newresp) && ncol(newresp) == 1L) newresp <- drop(newresp)
        if (!is.numeric(newresp) || !is.null(dim(newresp)))
            stop("'newresp' must be a numeric vector", call. = FALSE)
        if (length(newresp) != length(object$y))
            stop(sprintf("'newresp' has %d values for %d observations in the fit",
                         length(newresp), length(object$y)), call. = FALSE)
        if (any(!is.finite(newresp))) stop("'newresp' has NA, NaN or infinite values", call. = FALSE)
        as.double(newresp)
    }
    if (has_resid_structure(object)) {
        out <- resid_refit(object, y, REML)
        for (w in attr(out, "refit_warnings")) warning(w, call. = FALSE)
        attr(out, "refit_warnings") <- NULL
        return(out)
    }
    yo <- if (is.null(object$offset)) y else y - object$offset
    spec <- boot_spec(object)
    r <- boot_unshift(spec, .Call(C_lmm_refit, spec, boot_shift(spec, object, yo),
                                  as.double(object$theta), REML, object$control))
    if (r$status == 2L) stop("the refit failed: the model cannot be fitted to this response", call. = FALSE)
    out <- boot_light_fit(object, r, y, REML)
    if (!is.null(newresp) && NCOL(out$frame) >= 1L) out$frame[[1L]] <- y
    out
}

## ---- confidence intervals -----------------------------------------------------

## Select rows by name or position; "theta_" / "beta_" as lme4.
boot_parm_index <- function(parm, nms, groups = NULL) {
    if (missing(parm) || is.null(parm)) return(seq_along(nms))
    if (is.numeric(parm)) {
        if (any(!is.finite(parm)) || any(parm < 1 | parm > length(nms) | parm != round(parm)))
            stop(sprintf("'parm' positions must lie in 1..%d", length(nms)), call. = FALSE)
        return(as.integer(parm))
    }
    if (!is.character(parm)) stop("'parm' must be names or positions", call. = FALSE)
    idx <- integer()
    for (p in parm) {
        hit <- if (!is.null(groups) && p %in% names(groups)) groups[[p]] else match(p, nms)
        if (anyNA(hit) || !length(hit))
            stop(sprintf("unknown parameter '%s'; available: %s", p, paste(nms, collapse = ", ")),
                 call. = FALSE)
        idx <- c(idx, hit)
    }
    unique(idx)
}

boot_format_perc <- function(probs) {
    paste(format(100 * probs, trim = TRUE, scientific = FALSE, digits = 3), "%")
}

#' Bootstrap confidence intervals
#'
#' Percentile, basic or normal intervals from the replicates of
#' \code{\link{parboot}}, ignoring replicates that failed (\code{NA}) and
#' undefined correlations (\code{NaN}).
#'
#' \code{"perc"}: the \eqn{\alpha/2} and \eqn{1 - \alpha/2} sample quantiles
#' (\code{quantile(type = 6)}, the \eqn{(R+1)p}-th order statistic as in
#' \code{boot}); \code{"basic"}: \eqn{2t_0} minus those quantiles, in reverse;
#' \code{"norm"}: \eqn{2t_0 - \bar t \pm z_{1-\alpha/2}\,sd(t)}
#' (bias-corrected normal).
#'
#' @param object an \code{"lmmfit_boot"} object.
#' @param parm names or positions of the statistics (default all).
#' @param level confidence level.
#' @param type \code{"perc"}, \code{"basic"} or \code{"norm"}.
#' @param ... ignored.
#' @return A matrix with one row per statistic and columns for the lower and
#'   upper limits.
#' @method confint lmmfit_boot
#' @export
confint.lmmfit_boot <- function(object, parm, level = 0.95, type = c("perc", "basic", "norm"), ...) {
    type <- match.arg(type)
    if (!is.numeric(level) || length(level) != 1L || !(level > 0 && level < 1))
        stop("'level' must be a number between 0 and 1", call. = FALSE)
    nms <- names(object$t0)
    idx <- boot_parm_index(if (missing(parm)) NULL else parm, nms)
    a <- (1 - level) / 2
    probs <- c(a, 1 - a)
    ci <- matrix(NA_real_, length(idx), 2L, dimnames = list(nms[idx], boot_format_perc(probs)))
    short <- character()
    for (i in seq_along(idx)) {
        x <- object$t[, idx[i]]
        x <- x[is.finite(x)]
        if (length(x) < 2L) { short <- c(short, nms[idx[i]]); next }
        t0 <- object$t0[[idx[i]]]
        ci[i, ] <- switch(type,
            perc = stats::quantile(x, probs, type = 6, names = FALSE),
            basic = 2 * t0 - rev(stats::quantile(x, probs, type = 6, names = FALSE)),
            norm = 2 * t0 - mean(x) + c(-1, 1) * qnorm(1 - a) * sd(x))
    }
    if (length(short))
        warning(sprintf("fewer than 2 usable replicates for %s: interval NA",
                        paste(short, collapse = ", ")), call. = FALSE)
    ci
}

#' Bootstrap confidence intervals for an lmmfit model
#'
#' The engine of \code{confint(fit, method = "boot")}: runs
#' \code{\link{parboot}} with the default statistic and returns intervals in
#' lme4's order: the random-effect SDs and correlations and \code{sigma}
#' first, then the fixed effects.
#'
#' @param object a fitted \code{lmmfit} model.
#' @param parm names or positions (in the order of the result) of the
#'   parameters, or \code{"theta_"} (all variance parameters including
#'   \code{sigma}) or \code{"beta_"} (all fixed effects), as lme4.
#' @param level confidence level.
#' @param nsim number of bootstrap replicates.
#' @param type \code{"perc"}, \code{"basic"} or \code{"norm"}.
#' @param oldNames \code{TRUE} (default, as lme4 and the Wald table of
#'   \code{confint.lmmfit}): rows \code{.sig01}, \code{.sig02}, ...,
#'   \code{.sigma}; \code{FALSE}: the names of \code{parboot}'s statistic
#'   (\code{"sd_(Intercept)|Subject"}, ..., \code{"sigma"}).  \code{parm}
#'   may use either.
#' @param ... passed to \code{\link{parboot}} (\code{use.u}, \code{seed},
#'   \code{parallel}, \code{ncpus}, \code{progress}).
#' @return A matrix with one row per parameter and columns for the lower and
#'   upper limits (call \code{\link{parboot}} to keep the replicates).
#' @examples
#' data(Orthodont, package = "nlme")
#' fit <- lmmfit(distance ~ age + (1 | Subject), data = Orthodont)
#' confint_boot(fit, nsim = 100, seed = 1)
#' @export
confint_boot <- function(object, parm, level = 0.95, nsim = 1000, type = "perc",
                         oldNames = TRUE, ...) {
    if (!inherits(object, "lmmfit")) stop("'object' must be a model fitted by lmmfit()", call. = FALSE)
    if ("FUN" %in% names(list(...))) stop("confint_boot() uses the default statistic: call parboot() for a FUN",
                                          call. = FALSE)
    oldNames <- boot_check_flag(oldNames, "oldNames")
    args <- list(...)
    ## lme4's 'quiet': no messages or warnings about failed replicates
    quiet <- isTRUE(args$quiet)
    args$quiet <- NULL
    b <- if (quiet) suppressWarnings(suppressMessages(do.call(parboot, c(list(object, nsim = nsim), args))))
         else do.call(parboot, c(list(object, nsim = nsim), args))
    p <- length(object$beta)
    k <- length(b$t0)
    ord <- c(seq.int(p + 1L, k), seq_len(p))
    new_names <- names(b$t0)[ord]
    old_names <- c(sprintf(".sig%02d", seq_len(k - p - 1L)), ".sigma", names(b$t0)[seq_len(p)])
    nms <- if (oldNames) old_names else new_names
    groups <- c(list(theta_ = seq_len(k - p), beta_ = seq.int(k - p + 1L, k)),
                as.list(setNames(seq_len(k), if (oldNames) new_names else old_names)))
    idx <- boot_parm_index(if (missing(parm)) NULL else parm, nms, groups)
    ci <- confint(b, parm = ord[idx], level = level, type = type)
    rownames(ci) <- nms[idx]
    ci
}

## ---- parametric bootstrap LRT --------------------------------------------------

#' Parametric bootstrap likelihood-ratio test of nested models
#'
#' Tests a null model \code{fit0} against a larger model \code{fit1} by
#' simulating \code{nsim} responses from the null fit, refitting both models by
#' maximum likelihood to each, and comparing the observed likelihood-ratio
#' statistic with its bootstrap distribution.  Unlike the chi-square reference,
#' this is valid when the null puts a variance component on the boundary of the
#' parameter space (e.g. a random intercept against \code{lm}).
#'
#' Both fits are refitted by ML (REML fits are refitted with \code{REML =
#' FALSE}); the responses are simulated from the ML fit of the null model (for
#' an \code{lm} null: its fitted values plus normal errors with the ML
#' residual variance over the prior weights).  The p-value is \eqn{(1 +
#' \#\{LRT^* \ge LRT\})/(m + 1)} over the \eqn{m} replicates whose refits
#' succeeded; failures are counted.  Likelihood-ratio statistics below
#' \eqn{10^{-8}} in absolute value (the alternative's optimum on the null's
#' boundary, up to rounding) count as 0.
#'
#' Either model may have a residual variance or correlation structure
#' (\code{correlation =}, \code{weights =} of \code{\link{lmmfit}}, with or
#' without random effects; the null may also be an \code{lm} fit): the
#' responses are then drawn from the null's ML fit with its structure, as
#' \code{\link{simulate.lmmfit}} draws them, and each structure fit is
#' refitted by ML with its structure's parameters estimated anew (warm-started
#' at the estimates).  The numbers of parameters are \code{logLik()}'s df, the
#' structure's parameters included; a replicate whose refit ends with a
#' convergence warning or an error counts as failed.
#'
#' For a \code{\link{glmmfit}} alternative the null is a \code{glmmfit} or a
#' \code{glm} fit of the same response and family; the responses are drawn
#' from the null fit as \code{simulate} draws them (for a \code{glm}: as
#' \code{stats::simulate}) and both models refitted to each by their own
#' criterion (the Laplace or quadrature approximation; \code{glm}'s exact
#' likelihood).
#'
#' @param fit0 the null model: an \code{lmmfit} fit or an \code{lm} fit (no
#'   random effects) of the same response; for a \code{glmmfit}
#'   alternative, a \code{glmmfit} or \code{glm} fit.
#' @param fit1 the alternative model, an \code{lmmfit} or \code{glmmfit} fit
#'   with more parameters.
#' @param nsim number of bootstrap replicates.
#' @param seed \code{NULL} or an integer for \code{set.seed} (the generator's
#'   state is restored on exit).
#' @return An object of class \code{c("lmmfit_pbtest", "htest")} with
#'   \code{statistic} (LRT), \code{parameter} (df), \code{p.value} (bootstrap),
#'   \code{p.value.chisq}, \code{nsim}, \code{nvalid}, \code{nfail},
#'   \code{LRT_boot} (the bootstrap statistics) and \code{method}.
#' @examples
#' data(Orthodont, package = "nlme")
#' fit1 <- lmmfit(distance ~ age + (1 | Subject), data = Orthodont)
#' fit0 <- lm(distance ~ age, data = Orthodont)
#' pbtest(fit0, fit1, nsim = 100, seed = 1)
#' @export
pbtest <- function(fit0, fit1, nsim = 1000, seed = NULL) {
    dname <- paste(deparse1(substitute(fit0)), "vs", deparse1(substitute(fit1)))
    ## generalized linear mixed models: R/glmm-inference.R
    if (inherits(fit1, "glmmfit")) return(glmm_pbtest(fit0, fit1, nsim, seed, dname))
    if (!inherits(fit1, "lmmfit")) stop("'fit1' must be a model fitted by lmmfit() or glmmfit()", call. = FALSE)
    null_lm <- inherits(fit0, "lm")
    if (inherits(fit0, "glm") || inherits(fit0, "mlm") || !(null_lm || inherits(fit0, "lmmfit")))
        stop("'fit0' must be an lmmfit() or lm() fit", call. = FALSE)
    nsim <- boot_check_count(nsim, "nsim")
    n <- length(fit1$y)
    y0 <- if (null_lm) as.double(stats::model.response(stats::model.frame(fit0))) else fit0$y
    if (length(y0) != n || !isTRUE(all.equal(unname(y0), unname(fit1$y))))
        stop("'fit0' and 'fit1' must be fitted to the same response (same observations)", call. = FALSE)

    ## residual variance or correlation structures: R/resid-boot.R
    if (has_resid_structure(fit1) || (!null_lm && has_resid_structure(fit0)))
        return(resid_pbtest(fit0, fit1, nsim, seed, dname))
    ml1 <- if (fit1$REML) refit(fit1, REML = FALSE) else fit1
    if (null_lm) {
        lm0 <- pbtest_lm_null(fit0)
        lm_dev <- lm0$devs
        dev0 <- lm0$dev
        npar0 <- lm0$npar
    } else {
        ml0 <- if (fit0$REML) refit(fit0, REML = FALSE) else fit0
        dev0 <- deviance(ml0)
        npar0 <- length(ml0$beta) + length(ml0$theta) + 1L
        spec0 <- boot_spec(ml0)
        sim0 <- boot_spec(ml0, conditioned = FALSE)
        off0 <- if (is.null(ml0$offset)) 0 else ml0$offset
    }
    dev1 <- deviance(ml1)
    npar1 <- length(ml1$beta) + length(ml1$theta) + 1L
    df <- npar1 - npar0
    if (df <= 0) stop("'fit0' must have fewer parameters than 'fit1' (nested models)", call. = FALSE)
    LRT <- dev0 - dev1
    spec1 <- boot_spec(ml1)
    off1 <- if (is.null(ml1$offset)) 0 else ml1$offset

    rng <- boot_rng_setup(seed)
    if (!is.null(rng$restore)) on.exit(assign(".Random.seed", rng$restore, envir = .GlobalEnv))
    lrt <- rep(NA_real_, nsim)
    for (blk in boot_split_blocks(nsim, ceiling(nsim / max(1, floor(1e6 / n))))) {
        m <- length(blk)
        Y <- if (null_lm) lm0$draw(m)
             else .Call(C_lmm_boot_simulate, sim0, m, FALSE) + off0
        d0 <- if (null_lm) lm_dev(Y) else {
            r0 <- .Call(C_lmm_boot_run, spec0, boot_shift(spec0, ml0, Y - off0), 0L, FALSE, FALSE,
                        ml0$control)
            ifelse(r0$status == 0L, r0$deviance, NA_real_)
        }
        r1 <- .Call(C_lmm_boot_run, spec1, boot_shift(spec1, ml1, Y - off1), 0L, FALSE, FALSE,
                    ml1$control)
        d1 <- ifelse(r1$status == 0L, r1$deviance, NA_real_)
        lrt[blk] <- d0 - d1
    }
    pbtest_result(pbtest_zap(LRT), pbtest_zap(lrt), df, dname, nsim, rng$state)
}

## LRT = 0 when the alternative's optimum is on the null's boundary; the
## deviances then agree to rounding, so differences below this count as 0.
PBTEST_ZERO_LRT <- 1e-8
pbtest_zap <- function(x) ifelse(abs(x) < PBTEST_ZERO_LRT, 0, x)

## An lm() null of pbtest(): its ML deviance, number of parameters (the
## coefficients and sigma), the deviances of responses Y (columns) and m
## draws from it (its fitted values plus normal errors with the ML residual
## variance over the prior weights).
pbtest_lm_null <- function(fit0) {
    y0 <- as.double(stats::model.response(stats::model.frame(fit0)))
    n <- length(y0)
    X0 <- stats::model.matrix(fit0)
    w0 <- if (is.null(fit0$weights)) rep(1, n) else fit0$weights
    if (any(w0 <= 0)) stop("'fit0' has zero weights: refit it without those observations", call. = FALSE)
    off0 <- if (is.null(fit0$offset)) 0 else fit0$offset
    sw <- sqrt(w0)
    qx <- qr(X0 * sw)
    devs <- function(Y) {
        rss <- colSums(qr.resid(qx, (Y - off0) * sw)^2)
        profiled_deviance(0, rss, n, sum(log(w0)))
    }
    mu0 <- as.double(stats::fitted(fit0))
    sigma0 <- sqrt(sum(w0 * (y0 - mu0)^2) / n)
    list(dev = devs(matrix(y0)), npar = qx$rank + 1L, devs = devs,
         draw = function(m) mu0 + matrix(stats::rnorm(n * m), n, m) * (sigma0 / sw))
}

## pbtest()'s htest from the observed and the replicates' LRTs (failed
## replicates NA, not counted), linear or generalized.
pbtest_result <- function(LRT, lrt, df, dname, nsim, seed_state) {
    ok <- is.finite(lrt)
    structure(list(statistic = c(LRT = LRT), parameter = c(df = df),
                   p.value = (1 + sum(lrt[ok] >= LRT)) / (sum(ok) + 1),
                   p.value.chisq = pchisq(LRT, df, lower.tail = FALSE),
                   method = "Parametric bootstrap likelihood-ratio test (ML refits)",
                   data.name = dname, nsim = nsim, nvalid = sum(ok), nfail = sum(!ok),
                   LRT_boot = lrt, seed = seed_state),
              class = c("lmmfit_pbtest", "htest"))
}

#' @export
print.lmmfit_pbtest <- function(x, digits = getOption("digits"), ...) {
    NextMethod()
    cat(sprintf("bootstrap replicates: %d (%d failed)\n", x$nsim, x$nfail))
    cat(sprintf("chi-square(%g) p-value, for comparison: %s\n\n", x$parameter,
                format.pval(x$p.value.chisq, digits = max(1L, digits - 3L))))
    invisible(x)
}

## ---- methods of lmmfit_boot ---------------------------------------------------

boot_table <- function(x) {
    t <- x$t
    ok <- function(v) v[is.finite(v)]
    data.frame(original = unname(x$t0),
               bias = vapply(seq_along(x$t0), function(j) mean(ok(t[, j])) - x$t0[[j]], 0),
               std.error = vapply(seq_along(x$t0), function(j) sd(ok(t[, j])), 0),
               median = vapply(seq_along(x$t0), function(j) stats::median(ok(t[, j])), 0),
               row.names = names(x$t0), check.names = FALSE)
}

## What was bootstrapped: glmm_parboot() marks its results model = "glmmfit".
boot_model_label <- function(x) if (identical(x$model, "glmmfit")) "a glmmfit model" else "an lmmfit model"

boot_failures <- function(x) {
    if (x$nfail + x$nnonconv == 0L) return(invisible())
    cat(sprintf("%d replicate%s failed and %d did not converge: %s rows of t are NA\n",
                x$nfail, if (x$nfail == 1L) "" else "s", x$nnonconv,
                if (x$nfail + x$nnonconv == 1L) "its" else "their"))
    if (length(x$messages))
        cat("errors:", paste(utils::head(x$messages, 3L), collapse = "; "), "\n")
}

#' Methods for parametric bootstrap results
#'
#' @param x,object an \code{"lmmfit_boot"} object (from \code{\link{parboot}}).
#' @param digits significant digits to print.
#' @param which statistics to plot (names or positions; default all).
#' @param row.names,optional as \code{as.data.frame}.
#' @param ... passed to \code{hist} (\code{plot}), else ignored.
#' @return \code{print}: \code{x} invisibly.  \code{summary}: an object of
#'   class \code{"summary.lmmfit_boot"} with a table (original, bias, standard
#'   error, median per statistic) and the counts of replicates.
#'   \code{as.data.frame}: the replicates, one row each, one column per
#'   statistic.  \code{plot}: \code{x} invisibly; one histogram per statistic
#'   with the estimate marked by a vertical line.
#' @name lmmfit_boot-methods
NULL

#' @rdname lmmfit_boot-methods
#' @export
print.lmmfit_boot <- function(x, digits = max(3L, getOption("digits") - 3L), ...) {
    cat(sprintf("Parametric bootstrap of %s: %d replicates, use.u = %s, %s refits\n",
                boot_model_label(x), x$R, x$use.u, if (isTRUE(x$REML)) "REML" else "ML"))
    cat("Call: ", paste(deparse(x$call), collapse = "\n"), "\n\n", sep = "")
    print(boot_table(x)[, c("original", "bias", "std.error")], digits = digits)
    boot_failures(x)
    invisible(x)
}

#' @rdname lmmfit_boot-methods
#' @export
summary.lmmfit_boot <- function(object, ...) {
    structure(list(table = boot_table(object), R = object$R, nfail = object$nfail,
                   nnonconv = object$nnonconv, messages = object$messages,
                   use.u = object$use.u, REML = object$REML, call = object$call,
                   model = object$model),
              class = "summary.lmmfit_boot")
}

#' @rdname lmmfit_boot-methods
#' @export
print.summary.lmmfit_boot <- function(x, digits = max(3L, getOption("digits") - 3L), ...) {
    cat(sprintf("Parametric bootstrap of %s (use.u = %s, %s refits)\n",
                boot_model_label(x), x$use.u, if (isTRUE(x$REML)) "REML" else "ML"))
    cat(sprintf("Replicates: %d; usable: %d; failed: %d; not converged: %d\n\n",
                x$R, x$R - x$nfail - x$nnonconv, x$nfail, x$nnonconv))
    print(x$table, digits = digits)
    if (length(x$messages))
        cat("\nerrors:", paste(utils::head(x$messages, 3L), collapse = "; "), "\n")
    invisible(x)
}

#' @rdname lmmfit_boot-methods
#' @export
as.data.frame.lmmfit_boot <- function(x, row.names = NULL, optional = FALSE, ...) {
    as.data.frame(x$t, row.names = row.names, optional = optional, check.names = FALSE)
}

#' @rdname lmmfit_boot-methods
#' @export
plot.lmmfit_boot <- function(x, which = NULL, ...) {
    nms <- names(x$t0)
    idx <- boot_parm_index(which, nms)
    nr <- ceiling(sqrt(length(idx)))
    nc <- ceiling(length(idx) / nr)
    op <- graphics::par(mfrow = c(nr, nc))
    on.exit(graphics::par(op))
    for (j in idx) {
        v <- x$t[, j]
        v <- v[is.finite(v)]
        if (!length(v)) { graphics::plot.new(); graphics::title(nms[j]); next }
        graphics::hist(v, main = nms[j], xlab = nms[j], ...)
        graphics::abline(v = x$t0[[j]], col = "red", lwd = 2)
    }
    invisible(x)
}
