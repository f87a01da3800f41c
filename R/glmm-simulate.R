## simulate(), refit() and parboot() of a glmmfit model.  Responses are
## drawn as lme4's simulate() draws them (the same random numbers in the
## same order, the same form of response), so that for the same parameters
## and seed they are lme4's; refits rerun the C optimizer on the fit's model
## with the new response, started from the fit's estimates.

#' Simulate responses from a fitted glmmfit model
#'
#' Draws \code{nsim} responses from the fitted generalized linear mixed
#' model as \code{lme4}'s \code{simulate} does for a \code{glmerMod}: the
#' linear predictor \eqn{X\hat\beta + Zb^*} (plus the offset) with new
#' random effects \eqn{b^* = \Lambda_{\hat\theta} u^*}, \eqn{u^* \sim N(0,
#' I)} (or the conditional modes with \code{use.u = TRUE}), then the
#' response from the family at \eqn{\mu^* = g^{-1}(\eta^*)}.
#'
#' The random numbers are drawn in lme4's order: first all replicates'
#' \eqn{u^*} (lme4's order of the terms, level-major, column-minor; none
#' with \code{use.u = TRUE}), then all responses, so that for the same
#' parameters and seed the result is lme4's.  The response has the form of
#' the model's: for a binomial model fitted to \code{cbind(successes,
#' failures)}, two-column count matrices (the prior weights, i.e. the
#' trials, as sizes); to a factor, factors (one trial each); otherwise
#' proportions, successes over the prior weights.  Poisson and negative
#' binomial responses are counts (prior weights are ignored, with a
#' warning, as lme4 does).  Gamma and inverse Gaussian responses have mean
#' \eqn{\mu^*} and variance \eqn{\sigma^2 V(\mu^*) / w}, \eqn{\sigma} =
#' \code{sigma(object)} and \eqn{w} the prior weights, as the model says
#' (lme4's simulate takes the Gamma shape as \eqn{\sigma w} and the inverse
#' Gaussian's as \eqn{w / \sigma}, which do not give that variance; its
#' draws differ from these).
#'
#' @param object a fitted \code{glmmfit} model.
#' @param nsim number of responses to simulate.
#' @param seed \code{NULL} or an integer for \code{set.seed}; when given the
#'   state of the generator is restored on exit.
#' @param use.u \code{FALSE}: new random effects; \code{TRUE}: the
#'   conditional modes.
#' @param re.form lme4's equivalent of \code{use.u}: \code{NA} or \code{~0}
#'   (the default: new random effects) or \code{NULL} (the conditional
#'   modes).
#' @param newdata,newparams lme4's arguments for simulating for other data
#'   or at other parameter values: not supported (an error when given).
#' @param ... other arguments: ignored with a warning.
#' @return A data frame with \code{nsim} columns \code{sim_1}, ..., one row
#'   per observation (count matrices as columns for a \code{cbind}
#'   response), with attribute \code{"seed"} as \code{simulate.lm}.
#' @examples
#' data(cbpp, package = "lme4")
#' fit <- glmmfit(cbind(incidence, size - incidence) ~ period + (1 | herd),
#'                data = cbpp, family = binomial)
#' s <- simulate(fit, nsim = 2, seed = 1)
#' head(s$sim_1)
#' @method simulate glmmfit
#' @export
simulate.glmmfit <- function(object, nsim = 1, seed = NULL, use.u = FALSE, re.form = NA,
                             newdata = NULL, newparams = NULL, ...) {
    if (!is.null(newdata))
        stop("simulate(): 'newdata' is not supported for glmmfit models, which simulate the fitted observations",
             call. = FALSE)
    if (!is.null(newparams))
        stop("simulate(): lme4's argument 'newparams' is not supported by lmmfit, which simulates ",
             "at the fitted parameters", call. = FALSE)
    if (!missing(re.form)) use.u <- glmm_use_u(re.form, use.u, missing(use.u))
    refuse_dots("simulate", list(...))
    nsim <- boot_check_count(nsim, "nsim")
    use.u <- boot_check_flag(use.u, "use.u")
    rng <- boot_rng_setup(seed)
    if (!is.null(rng$restore)) on.exit(assign(".Random.seed", rng$restore, envir = .GlobalEnv))
    sims <- glmm_simulate_responses(object, nsim, use.u)
    out <- lapply(sims, function(y) napredict(object$na.action, y))
    names(out) <- paste0("sim_", seq_len(nsim))
    rows <- names(napredict(object$na.action, setNames(object$y, rownames(object$frame))))
    structure(out, row.names = rows, class = "data.frame", seed = rng$state)
}

## use.u from lme4's re.form: NULL conditions on the modes, NA or ~0 draws anew.
glmm_use_u <- function(re.form, use.u, use.u_missing) {
    if (is.null(re.form)) {
        if (!use.u_missing && isFALSE(use.u))
            stop("simulate(): 'use.u = FALSE' conflicts with 're.form = NULL'", call. = FALSE)
        return(TRUE)
    }
    if (!((length(re.form) == 1L && is.na(re.form)) ||
          (inherits(re.form, "formula") && !length(find_bars(re.form[[length(re.form)]])))))
        stop("simulate(): 're.form' naming some random-effects terms is not supported by lmmfit; ",
             "use re.form = NULL (condition on all of them) or NA (simulate all anew)", call. = FALSE)
    if (isTRUE(use.u))
        stop("simulate(): 'use.u = TRUE' conflicts with 're.form' (NA or ~0 simulates new random effects)",
             call. = FALSE)
    FALSE
}

## nsim responses, a list, each in the form of the model's response.
glmm_simulate_responses <- function(object, nsim, use.u) {
    n <- length(object$y)
    eta <- if (use.u) matrix(linear_predictor(object), n, nsim)
           else linear_predictor(object, random = FALSE) + glmm_new_reff(object, nsim)
    glmm_family_draws(object, object$family$linkinv(eta))
}

## Z b* for nsim new spherical effects u* ~ N(0, I), drawn in lme4's order of
## the terms (and of u within a term: level-major, column-minor): n x nsim.
glmm_new_reff <- function(object, nsim) {
    terms <- object$reterms
    q <- sum(vapply(terms, function(t) t$nlev * ncol(t$Z), 1))
    U <- matrix(stats::rnorm(q * nsim), q, nsim)
    lam <- theta_to_lambda(object$theta, terms)
    out <- matrix(0, length(object$y), nsim)
    off <- 0
    for (j in lme4_term_order(terms)) {
        t <- terms[[j]]
        k <- ncol(t$Z)
        idx <- off + seq_len(t$nlev * k)
        off <- off + t$nlev * k
        ## b = lambda u per level and replicate: columns (level, replicate)
        B <- lam[[j]] %*% matrix(U[idx, ], k)
        lev <- as.integer(t$factor)
        for (c in seq_len(k)) out <- out + t$Z[, c] * matrix(B[c, ], t$nlev, nsim)[lev, , drop = FALSE]
    }
    out
}

## Responses from the family at the n x nsim means, drawn for all
## replicates at once as lme4 draws them.
glmm_family_draws <- function(object, Mu) {
    n <- nrow(Mu)
    nsim <- ncol(Mu)
    mu <- as.vector(Mu)
    per_sim <- function(v) unname(split(v, rep(seq_len(nsim), each = n)))
    code <- object$spec$family
    if (code == GLMM_FAMILIES[["binomial"]]) return(glmm_binomial_draws(object, mu, per_sim))
    if (glmm_has_dispersion(object)) return(per_sim(glmm_dispersion_draws(object, mu)))
    if (!code %in% GLMM_FAMILIES[c("poisson", "negbin")])
        stop(sprintf("simulate(): not available for the %s family", object$family$family), call. = FALSE)
    if (any(object$prior != 1)) warning("simulate(): ignoring prior weights (as lme4)", call. = FALSE)
    per_sim(if (code == GLMM_FAMILIES[["poisson"]]) stats::rpois(length(mu), mu)
            else stats::rnbinom(length(mu), mu = mu, size = object$spec$nb_theta))
}

## Gamma and inverse Gaussian draws with mean mu and variance sigma^2 V(mu) /
## prior, the model's (glmer's simulate() takes the Gamma shape as sigma *
## prior and the inverse Gaussian's as prior / sigma, which give neither that
## variance nor each other's; these follow the model).  The inverse Gaussian
## by Michael, Schucany and Haas's transformation of a chi-square(1) draw.
glmm_dispersion_draws <- function(object, mu) {
    prec <- rep_len(object$prior / sigma(object)^2, length(mu))
    if (object$family$family == "Gamma") return(stats::rgamma(length(mu), shape = prec, rate = prec / mu))
    nu <- stats::rnorm(length(mu))^2
    r <- mu + mu^2 * nu / (2 * prec) - mu / (2 * prec) * sqrt(4 * mu * prec * nu + mu^2 * nu^2)
    ifelse(stats::runif(length(mu)) <= mu / (mu + r), r, mu^2 / r)
}

## Binomial draws of the prior weights' trials, in the response's form:
## factors (one trial each), cbind() counts or proportions.
glmm_binomial_draws <- function(object, mu, per_sim) {
    w <- object$prior
    if (any(w %% 1 != 0))
        stop("simulate(): cannot simulate from non-integer prior weights (binomial trials)", call. = FALSE)
    r <- object$frame[[1L]]
    if (is.factor(r))
        return(per_sim(factor(levels(r)[1L + stats::rbinom(length(mu), 1, mu)], levels = levels(r))))
    s <- stats::rbinom(length(mu), w, mu)
    if (!is.matrix(r)) return(per_sim(s / w))
    lapply(per_sim(s), function(si) {
        m <- cbind(si, w - si)
        colnames(m) <- colnames(r)
        m
    })
}

#' @rdname refit
#' @details For a \code{glmmfit} model, \code{newresp} takes the forms of
#'   \code{lme4}'s \code{refit}: for a binomial model a two-column matrix of
#'   successes and failures (the trials then taken from it), a factor (the
#'   first level is failure), or 0/1 values or proportions (of the model's
#'   trials); for a Poisson or negative binomial model, counts.  A one-column
#'   data frame, such as \code{simulate(fit)[1]}, is taken apart.  The
#'   optimizer runs both of glmer's stages from the fit's estimates (a
#'   singular fit gets the message \code{glmmfit} gives).
#' @export
refit.glmmfit <- function(object, newresp = NULL, ...) {
    refuse_dots("refit", list(...), c(rename.response = "the response keeps its name",
                                      maxit = "lmmfit_control(pirls_maxit =) of the fit applies",
                                      control = "the fit's control applies: use update() for another"))
    if (is.null(newresp)) return(object)
    newresp <- glmm_unwrap_newresp(object, newresp)
    out <- glmm_refit_core(object, glmm_new_response(object, newresp))
    if (identical(dim(out$frame[[1L]]), dim(newresp)) && is.numeric(newresp) == is.numeric(out$frame[[1L]]))
        out$frame[[1L]] <- newresp
    glmm_check_fit(out)
    out
}

## newresp as one vector or matrix of the fitted rows: a one-column data
## frame or list taken apart, rows that na.action dropped dropped (as lme4).
glmm_unwrap_newresp <- function(object, newresp) {
    if (is.list(newresp)) {
        if (length(newresp) != 1L)
            stop("'newresp' must be one response: a vector, a matrix or a one-column data frame",
                 call. = FALSE)
        newresp <- newresp[[1L]]
    }
    omitted <- object$na.action
    n <- length(object$y)
    if (!is.null(omitted) && NROW(newresp) == n + length(omitted))
        newresp <- if (is.matrix(newresp)) newresp[-omitted, , drop = FALSE] else newresp[-omitted]
    if (NROW(newresp) != n)
        stop(sprintf("'newresp' has %d values for %d observations in the fit", NROW(newresp), n), call. = FALSE)
    newresp
}

## The new response as the family's deviance takes it (glmm_response()'s
## list), in the fit's prior weights and trials.
glmm_new_response <- function(object, newresp) {
    fam <- object$family
    if (fam$family != "binomial") return(glmm_response(newresp, object$prior, fam))
    ## the user's weights, without the trials a cbind() response multiplies in
    user_w <- object$prior / object$trials
    if (is.matrix(newresp)) return(binomial_response(newresp, user_w))
    r <- binomial_response(newresp, object$prior)
    r$trials <- object$trials
    r
}

## The fit with its response replaced and the model refitted: the C model
## rebuilt for the new y (the pattern is the fit's), the optimizer started
## from the fit's estimates.  Errors if PIRLS fails at the start.
glmm_refit_core <- function(object, resp) {
    ## the patterns do not depend on the response: only the rows' values change
    model <- object$model
    model[c("y", "prior", "trials")] <- list(resp$y, resp$prior, resp$trials)
    ## from the fit's estimates, the second stage alone (as glmer's refit)
    ctl <- object$control
    ctl$glmm_refine <- TRUE
    opt <- .Call(C_lmm_glmm_optimize, model, as.double(object$theta), as.double(object$beta),
                 object$nAGQ, gauss_hermite_rule(object$nAGQ), ctl)
    est <- glmm_object(opt, model, object$reterms, object$X, object$nAGQ)
    for (nm in names(est)) object[[nm]] <- est[[nm]]
    object$y <- resp$y
    object$prior <- resp$prior
    object$trials <- resp$trials
    object$model <- model
    object
}

## ---- parboot -------------------------------------------------------------------

## parboot() of a glmmfit model (R/bootstrap.R's parboot() hands it over):
## its arguments, return class and statistic layout, without the residual
## SD.  The responses of all replicates are drawn first, as simulate(fit,
## nsim) draws them (so, as bootMer, replicate i refits column i of
## simulate(fit, nsim, seed = s) for the same seed), then each is refitted
## from the fit's estimates; the refits need no random numbers, so
## parallel = "multicore" gives the serial result with any generator.
glmm_parboot <- function(fit, FUN, nsim, use.u, seed, parallel, ncpus, progress, call) {
    if (!is.null(FUN)) FUN <- match.fun(FUN)
    nsim <- boot_check_count(nsim, "nsim")
    use.u <- boot_check_flag(use.u, "use.u")
    progress <- boot_check_flag(progress, "progress")
    parallel <- match.arg(parallel, c("no", "multicore"))
    ncpus <- boot_check_count(ncpus, "ncpus")
    if (parallel == "multicore" && ncpus > 1L && .Platform$OS.type == "windows") {
        warning("parallel = \"multicore\" is not available on Windows: running serially", call. = FALSE)
        ncpus <- 1L
    }
    stat <- if (is.null(FUN)) glmm_boot_stat else FUN
    t0 <- boot_check_stat(stat(fit), NULL)
    rng <- boot_rng_setup(seed)
    if (!is.null(rng$restore)) on.exit(assign(".Random.seed", rng$restore, envir = .GlobalEnv))
    sims <- glmm_simulate_responses(fit, nsim, use.u)
    one <- function(i) glmm_boot_replicate(fit, sims[[i]], stat, length(t0))
    res <- if (parallel == "multicore" && ncpus > 1L)
        parallel::mclapply(seq_len(nsim), one, mc.cores = ncpus)
    else glmm_boot_serial(nsim, one, progress)
    bad <- vapply(res, function(r) !is.list(r), NA)
    if (any(bad)) stop("a parallel worker failed: ", as.character(res[bad][[1L]]), call. = FALSE)
    status <- vapply(res, `[[`, 1L, "status")
    t <- matrix(NA_real_, nsim, length(t0), dimnames = list(NULL, names(t0)))
    for (i in which(status == 0L)) t[i, ] <- res[[i]]$value
    msgs <- unique(unlist(lapply(res, `[[`, "message")))
    structure(list(t0 = t0, t = t, R = nsim, status = status,
                   nfail = sum(status == 2L), nnonconv = sum(status == 1L),
                   messages = msgs, use.u = use.u, seed = rng$state,
                   statistic = if (is.null(FUN)) "default" else "FUN",
                   mle = list(beta = fit$beta, theta = fit$theta, sigma = sigma(fit)),
                   REML = FALSE, call = call, model = "glmmfit"),
              class = "lmmfit_boot")
}

glmm_boot_serial <- function(nsim, one, progress) {
    if (!progress) return(lapply(seq_len(nsim), one))
    bar <- utils::txtProgressBar(min = 0, max = nsim, style = 3)
    on.exit(close(bar))
    lapply(seq_len(nsim), function(i) {
        r <- one(i)
        utils::setTxtProgressBar(bar, i)
        r
    })
}

## One replicate: status 0 (ok), 1 (not converged: its statistic is NA, as
## parboot's) or 2 (the refit or the statistic failed, with its message).
glmm_boot_replicate <- function(fit, y, stat, k) {
    tryCatch({
        f <- glmm_refit_core(fit, glmm_new_response(fit, y))
        if (!glmm_refit_converged(f)) list(status = 1L, message = NULL)
        else list(status = 0L, value = boot_check_stat(stat(f), k))
    }, error = function(e) list(status = 2L, message = conditionMessage(e)))
}

## A refit converged when PIRLS did at its estimates and the optimizer's
## check passes as for a fit (summary()'s convergence_messages(): the
## gradient within check_grad_tol, outward gradients at a bound ignored,
## the optimum settled).  L-BFGS-B's own code is no guide: at theta = 0 it
## often ends in ABNORMAL_TERMINATION_IN_LNSRCH at a settled optimum.
glmm_refit_converged <- function(f) f$pirls[1L] == 0L && !length(convergence_messages(f))

## The default statistic: the fixed effects, then per term the random
## effects' SDs and correlations (parboot()'s names, lme4's order within a
## term); an undefined correlation (a zero SD) is NaN.
glmm_boot_stat <- function(fit) {
    vc <- theta_to_sdcor(fit$theta, fit$reterms, 1, undefined = NaN)
    nms <- boot_stat_names(fit)
    setNames(c(unname(fit$beta), vc[-length(vc)]), nms[-length(nms)])
}
