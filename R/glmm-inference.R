## Inference for glmmfit models in glmer's semantics: anova() (one model's
## sequential table, likelihood-ratio tests between several) and confint()
## (Wald, parametric bootstrap).  The tables and their printing are the
## linear fits' (R/anova.R, R/bootstrap.R).

#' Analysis of deviance for glmmfit models
#'
#' With several models: likelihood-ratio tests of each model against the
#' previous one, the models sorted by their numbers of parameters, in lme4's
#' layout (\code{npar}, \code{AIC}, \code{BIC}, \code{logLik},
#' \code{deviance}, \code{Chisq}, \code{Df}, \code{Pr(>Chisq)}).  The models
#' must be fitted to the same data object (by name, as lme4 checks it), the
#' same subset, the same rows and response and the same family; \code{glm}
#' fits of the same response may be among them, as lme4 allows.  Unlike
#' glmer's, the quadrature log-likelihood (\code{nAGQ > 1}) keeps the
#' family's constant, so AGQ fits may be compared with \code{glm} fits too.
#' With one model: lme4's sequential table of the fixed-effects terms
#' (\code{npar}, \code{Sum Sq}, \code{Mean Sq}, \code{F value}) from the
#' weighted factor \eqn{R_X} at the mode, the scale being 1.
#'
#' @param object a fitted \code{glmmfit} model.
#' @param ... further \code{glmmfit} or \code{glm} models to compare.
#' @param model.names names for the models in the table (one per model, in
#'   the order given), instead of their expressions.
#' @param refit lme4's argument: ignored, since GLMMs are fitted by maximum
#'   likelihood and need no refit.
#' @return A data frame of class \code{"anova"}.
#' @examples
#' data(cbpp, package = "lme4")
#' f1 <- glmmfit(cbind(incidence, size - incidence) ~ period + (1 | herd),
#'               data = cbpp, family = binomial)
#' f0 <- update(f1, . ~ . - period)
#' anova(f0, f1)
#' @export
anova.glmmfit <- function(object, ..., model.names = NULL, refit = TRUE) {
    dots <- list(...)
    is_fit <- vapply(dots, function(d) inherits(d, c("glmmfit", "glm")), NA)
    if (!all(is_fit)) {
        nm <- names(dots)
        if (is.null(nm)) nm <- rep("", length(dots))
        bad <- which(!is_fit)[1L]
        stop(if (nzchar(nm[bad])) sprintf("anova(): unknown argument '%s'", nm[bad])
             else sprintf(paste0("anova(): a glmmfit model can be compared with glmmfit or glm fits, ",
                                 "not with an object of class \"%s\""), class(dots[[bad]])[1L]), call. = FALSE)
    }
    if (!length(dots)) {
        if (!is.null(model.names))
            stop("anova(): 'model.names' names the models of a comparison; there is only one model",
                 call. = FALSE)
        return(glmm_anova_single(object))
    }
    exprs <- as.list(substitute(list(...)))[-1L]
    nms <- c(deparse1(substitute(object)), vapply(exprs, deparse1, ""))
    if (!is.null(model.names)) {
        if (!is.character(model.names) || length(model.names) != length(nms) || anyNA(model.names))
            stop(sprintf("anova(): 'model.names' must be %d names, one per model", length(nms)), call. = FALSE)
        nms <- model.names
    }
    if (anyDuplicated(nms)) stop("anova(): the models' names must differ: give 'model.names'", call. = FALSE)
    fits <- c(list(object), dots)
    glmm_anova_check(fits, nms)
    anova_lrt_table(fits, nms)
}

## lme4's sequential table: the linear fit's, with the GLMM's R_X at the mode.
glmm_anova_single <- function(object) {
    object$RX <- .Call(C_lmm_solution, object$xprod, unname(object$theta), FALSE, 1)$RX
    anova_single(object)
}

## What a glmmfit or glm fit was fitted to: the data and subset expressions,
## the family, the response as the family's deviance takes it, the prior
## weights.
glmm_fit_target <- function(f) {
    call <- stats::getCall(f)
    if (inherits(f, "glmmfit")) list(data = call$data, subset = call$subset, family = f$family$family,
                                     link = f$family$link, y = f$y, prior = f$prior)
    else list(data = call$data, subset = call$subset, family = f$family$family, link = f$family$link,
              y = unname(f$y), prior = unname(f$prior.weights))
}

## The models of a comparison must be fitted to the same observations: each
## compared with the first, and refused by name.
glmm_anova_check <- function(fits, nms, caller = "anova()") {
    t1 <- glmm_fit_target(fits[[1L]])
    for (i in seq_along(fits)[-1L]) {
        ti <- glmm_fit_target(fits[[i]])
        why <- if (!identical(ti$data, t1$data))
                   sprintf("fitted to data '%s', '%s' to '%s'", deparse1(ti$data), nms[1L], deparse1(t1$data))
               else if (!identical(ti$subset, t1$subset)) "fitted to another subset"
               else if (length(ti$y) != length(t1$y))
                   sprintf("fitted to %d observations, '%s' to %d", length(ti$y), nms[1L], length(t1$y))
               else if (!identical(c(ti$family, ti$link), c(t1$family, t1$link)))
                   sprintf("of family %s (%s link), '%s' of %s (%s link)", ti$family, ti$link, nms[1L],
                           t1$family, t1$link)
               else if (!isTRUE(all.equal(ti$y, t1$y, check.attributes = FALSE)) ||
                        !isTRUE(all.equal(ti$prior, t1$prior, check.attributes = FALSE)))
                   sprintf("fitted to another response or other weights than '%s'", nms[1L])
        if (!is.null(why))
            stop(sprintf("%s: all models must be fitted to the same observations: '%s' is %s",
                         caller, nms[i], why), call. = FALSE)
    }
}

#' Confidence intervals for a glmmfit model
#'
#' In lme4's layout: one row per covariance parameter (\code{.sig01},
#' \code{.sig02}, ..., in theta's order; no \code{.sigma}, the scale being
#' fixed), then the fixed effects.  \code{method = "Wald"}: \eqn{\hat\beta
#' \pm z_{1-\alpha/2} SE} with the standard errors of \code{vcov()}, and
#' \code{NA} for the covariance parameters, as lme4; \code{method = "boot"}:
#' intervals from \code{\link{parboot}}'s default statistic (the random
#' effects' standard deviations and correlations, then the fixed effects);
#' \code{method = "profile"}: likelihood-profile intervals, read off
#' \code{\link{profile.glmmfit}} of the parameters in \code{parm} as lme4's
#' (the rows then in the parameters' order, as lme4's profile sorts them).
#'
#' @param object a fitted \code{glmmfit} model.
#' @param parm parameters: names, indices into the full table, or
#'   \code{"beta_"} / \code{"theta_"} (all fixed effects / all covariance
#'   parameters), as in lme4.  Default all.
#' @param level confidence level.
#' @param method \code{"Wald"} (the default), \code{"boot"} or
#'   \code{"profile"}.
#' @param nsim number of bootstrap replicates (\code{method = "boot"}).
#' @param boot.type \code{"perc"}, \code{"basic"} or \code{"norm"}.
#' @param ... with \code{method = "boot"}: \code{use.u}, \code{seed},
#'   \code{parallel}, \code{ncpus}, \code{progress} of \code{\link{parboot}}.
#'   With \code{method = "profile"}: \code{zeta} (see
#'   \code{\link{confint.glmmfit_profile}}) and the arguments of
#'   \code{\link{profile.glmmfit}}; unless \code{alphamax} is given the
#'   profile extends past the level (\code{alphamax = min(0.01, (1 - level) / 2)}).
#' @return A matrix with one row per parameter and columns for the lower and
#'   upper limits (named as percentages, e.g. \code{"2.5 \%"}).
#' @examples
#' data(cbpp, package = "lme4")
#' fit <- glmmfit(cbind(incidence, size - incidence) ~ period + (1 | herd),
#'                data = cbpp, family = binomial)
#' confint(fit)
#' confint(fit, method = "boot", nsim = 100, seed = 1)
#' confint(fit, parm = ".sig01", method = "profile")
#' @export
confint.glmmfit <- function(object, parm, level = 0.95, method = c("Wald", "boot", "profile"),
                            nsim = 500, boot.type = c("perc", "basic", "norm"), ...) {
    method <- match.arg(method)
    boot.type <- match.arg(boot.type)
    if (!is.numeric(level) || length(level) != 1L || !is.finite(level) || level <= 0 || level >= 1)
        stop("'level' must be a single number between 0 and 1", call. = FALSE)
    vnames <- sprintf(".sig%02d", seq_along(object$theta))
    bnames <- names(object$beta)
    all <- c(vnames, bnames)
    rows <- if (missing(parm)) all else select_parm(parm, all, vnames, bnames)
    dots <- list(...)
    if (method == "profile") return(glmm_confint_profile(object, rows, level, dots))
    if (method == "Wald") {
        refuse_dots("confint", dots, GLMM_CONFINT_REFUSED)
        ci <- glmm_confint_wald(object, level, vnames)
    } else ci <- glmm_confint_boot(object, level, nsim, boot.type, vnames, dots)
    ci[rows, , drop = FALSE]
}

## lme4's arguments of confint.merMod that glmmfit's does not take, and why
GLMM_CONFINT_REFUSED <- c(zeta = "zeta is an argument of method = \"profile\" only",
                          FUN = "call parboot() with FUN and confint() its result",
                          oldNames = "the rows are named .sig01, ... as lme4's default")
## confint(method = "profile"): the profile of the rows asked for, extended
## past the level when alphamax is not given, read at the level or at zeta.
## lme4's quiet and oldNames = TRUE change nothing here.
glmm_confint_profile <- function(object, rows, level, dots) {
    if (isFALSE(dots$oldNames)) refuse_dots("confint", dots["oldNames"], GLMM_CONFINT_REFUSED)
    zeta <- dots$zeta
    dots$zeta <- dots$quiet <- dots$oldNames <- NULL
    if (is.null(dots$alphamax)) dots$alphamax <- min(0.01, (1 - level) / 2)
    pr <- do.call(profile.glmmfit, c(list(object, which = rows), dots))
    if (is.null(zeta)) confint.glmmfit_profile(pr, level = level)
    else confint.glmmfit_profile(pr, zeta = zeta)
}

## the arguments confint(method = "boot") passes on to parboot()
GLMM_CONFINT_PARBOOT <- c("use.u", "seed", "parallel", "ncpus", "progress")

glmm_confint_wald <- function(object, level, vnames) {
    a <- (1 - level) / 2
    beta <- object$beta
    se <- sqrt(diag(vcov(object)))
    z <- stats::qnorm(1 - a)
    ci <- rbind(matrix(NA_real_, length(vnames), 2L), cbind(beta - z * se, beta + z * se))
    dimnames(ci) <- list(c(vnames, names(beta)), boot_format_perc(c(a, 1 - a)))
    ci
}

## parboot()'s statistic is (beta, SDs and correlations): lme4's order puts
## the covariance parameters first.  lme4's quiet = TRUE silences the count
## of failed replicates.
glmm_confint_boot <- function(object, level, nsim, type, vnames, dots) {
    nm <- names(dots)
    if (is.null(nm)) nm <- rep("", length(dots))
    quiet <- isTRUE(dots$quiet)
    pass <- nm %in% GLMM_CONFINT_PARBOOT
    refuse_dots("confint", dots[!pass & nm != "quiet"], GLMM_CONFINT_REFUSED)
    run <- function() do.call(parboot, c(list(object, nsim = nsim), dots[pass]))
    b <- if (quiet) suppressWarnings(run()) else run()
    p <- length(object$beta)
    ord <- c(p + seq_along(vnames), seq_len(p))
    ci <- if (quiet) suppressWarnings(confint(b, parm = ord, level = level, type = type))
          else confint(b, parm = ord, level = level, type = type)
    rownames(ci) <- c(vnames, names(object$beta))
    ci
}

## ---- parametric bootstrap likelihood-ratio test ----------------------------------

## A likelihood-ratio statistic this small is 0: the alternative's optimum on
## the null's boundary, where the two criteria agree up to PIRLS's
## convergence (~1e-11 relative, i.e. ~1e-9 on deviances of a few hundred)
GLMM_LRT_ZERO <- 1e-8

## pbtest() of a glmmfit alternative (R/bootstrap.R's pbtest() hands it
## over): responses from the null (a glmmfit or glm fit), both models
## refitted to each; the p-value and result as pbtest()'s.
glmm_pbtest <- function(fit0, fit1, nsim, seed, dname) {
    if (!inherits(fit0, c("glmmfit", "glm")))
        stop("'fit0' must be a glmmfit() or glm() fit of the same response as 'fit1'", call. = FALSE)
    nsim <- boot_check_count(nsim, "nsim")
    glmm_anova_check(list(fit0, fit1), c("fit0", "fit1"), "pbtest()")
    npar <- vapply(list(fit0, fit1), function(f) attr(logLik(f), "df"), 1)
    df <- npar[2L] - npar[1L]
    if (df <= 0) stop("'fit0' must have fewer parameters than 'fit1' (nested models)", call. = FALSE)
    zap <- function(x) ifelse(abs(x) < GLMM_LRT_ZERO, 0, x)
    LRT <- zap(-2 * as.numeric(logLik(fit0)) + 2 * as.numeric(logLik(fit1)))
    rng <- boot_rng_setup(seed)
    if (!is.null(rng$restore)) on.exit(assign(".Random.seed", rng$restore, envir = .GlobalEnv))
    sims <- if (inherits(fit0, "glmmfit")) glmm_simulate_responses(fit0, nsim, FALSE)
            else glm_null_draws(fit0, nsim)
    lrt <- zap(vapply(sims, function(y) glmm_null_deviance(fit0, y) - glmm_refit_deviance(fit1, y), 0))
    pbtest_result(LRT, lrt, df, dname, nsim, rng$state)
}

## -2 log L of a glmmfit refitted to y (NA when the refit fails or does not
## converge: the replicate is not counted)
glmm_refit_deviance <- function(fit, y) {
    f <- tryCatch(glmm_refit_core(fit, glmm_new_response(fit, y)), error = function(e) NULL)
    if (is.null(f) || !glmm_refit_converged(f)) NA_real_ else f$deviance_value
}

glmm_null_deviance <- function(fit0, y) {
    if (inherits(fit0, "glmmfit")) return(glmm_refit_deviance(fit0, y))
    g <- suppressWarnings(stats::glm.fit(stats::model.matrix(fit0), y, weights = fit0$prior.weights,
                                         offset = fit0$offset, family = fit0$family))
    ## glm.fit's aic is -2 log L + 2 rank
    if (!g$converged) NA_real_ else g$aic - 2 * g$rank
}

## nsim responses from a binomial or Poisson glm, drawn as stats::simulate()
## draws them (binomial: proportions of the prior weights' trials).
glm_null_draws <- function(fit0, nsim) {
    mu <- fitted(fit0)
    n <- length(mu)
    w <- fit0$prior.weights
    fam <- fit0$family$family
    v <- if (fam == "binomial") {
        if (any(w %% 1 != 0 | w == 0))
            stop("pbtest(): the glm's prior weights (binomial trials) must be positive whole numbers",
                 call. = FALSE)
        stats::rbinom(n * nsim, w, mu) / w
    } else if (fam == "poisson") stats::rpois(n * nsim, mu)
    else stop(sprintf("pbtest(): a glm null of the %s family is not supported", fam), call. = FALSE)
    unname(split(v, rep(seq_len(nsim), each = n)))
}
