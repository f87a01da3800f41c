## The hooks of other packages for glmmfit fits, registered in .onLoad
## (zzz.R) as for linear fits: emmeans on the link and response scales,
## car's Wald chi-square tests, broom's tidiers.  They share the linear
## fits' code where the question is the same (the terms' hypotheses, the
## random-effect tables) and differ where a GLMM's inference does: z
## statistics (no residual degrees of freedom), no residual row.

#' Other packages' methods for glmmfit models
#'
#' With the packages installed: \code{emmeans::emmeans()} (and the rest of
#' \pkg{emmeans}) on the link scale, or the response scale with
#' \code{type = "response"} (asymptotic, z-based inference, as for
#' \code{glmer} fits); \code{car::Anova()} (type II or III Wald chi-square
#' tests); \code{tidy()}, \code{glance()} and \code{augment()} in
#' \pkg{broom.mixed}'s layout.
#'
#' @param object,mod,x a fitted \code{glmmfit} model.
#' @param trms,xlev,grid supplied by \pkg{emmeans}.
#' @param vcov. optional covariance of the fixed effects (matrix or function).
#' @param type \code{Anova}'s type, \code{"II"} or \code{"III"}.
#' @param test.statistic only \code{"Chisq"}: a GLMM has no F tests.
#' @param effects,conf.int,conf.level,exponentiate as for \code{tidy} of a
#'   linear fit (\code{\link{lmmfit-tidiers}}).
#' @param data,newdata for \code{augment}: ignored, or new data.
#' @param ... passed on, or ignored.
#' @name glmmfit-ext
#' @keywords internal
NULL

#' @rdname glmmfit-ext
recover_data.glmmfit <- function(object, ...) {
    emmeans::recover_data(object$call, trms = delete.response(object$fixed_terms),
                          na.action = object$na.action, frame = object$frame, ...)
}

#' @rdname glmmfit-ext
emm_basis.glmmfit <- function(object, trms, xlev, grid, vcov., ...) {
    mf <- model.frame(trms, grid, na.action = na.pass, xlev = xlev)
    X <- model.matrix(trms, mf, contrasts.arg = object$contrasts)
    ## columns dropped as aliased: not estimable there (emmeans' convention)
    bhat <- setNames(rep(NA_real_, ncol(X)), colnames(X))
    bhat[names(object$beta)] <- object$beta
    V <- if (missing(vcov.)) vcov(object) else if (is.function(vcov.)) vcov.(object) else vcov.
    nbasis <- if (anyNA(bhat)) nonestimable_basis(object) else matrix(NA)
    misc <- emmeans::.std.link.labels(object$family, list())
    list(X = X, bhat = bhat, nbasis = nbasis, V = V, dffun = function(k, dfargs) Inf, dfargs = list(),
         misc = misc)
}

#' @rdname glmmfit-ext
Anova.glmmfit <- function(mod, type = c("II", "III", 2, 3), test.statistic = "Chisq", vcov. = vcov(mod), ...) {
    if (!identical(test.statistic, "Chisq"))
        stop("a generalized linear mixed model has Wald chi-square tests only (test.statistic = \"Chisq\")",
             call. = FALSE)
    Anova.lmmfit(mod, type = type, test.statistic = "Chisq", vcov. = vcov., ...)
}

#' @rdname glmmfit-ext
tidy.glmmfit <- function(x, effects = c("fixed", "ran_pars"), conf.int = FALSE, conf.level = 0.95,
                         exponentiate = FALSE, ...) {
    effects <- match.arg(effects, c("fixed", "ran_pars", "ran_vals", "ran_coefs"), several.ok = TRUE)
    if (!is.numeric(conf.level) || length(conf.level) != 1L || !(conf.level > 0 && conf.level < 1))
        stop("'conf.level' must be a number between 0 and 1", call. = FALSE)
    out <- list()
    if ("fixed" %in% effects) out$fixed <- glmm_tidy_fixed(x, conf.int, conf.level, exponentiate)
    if ("ran_pars" %in% effects) out$ran_pars <- tidy_ran_pars(x, "sdcor", NULL, conf.int)
    if ("ran_vals" %in% effects) out$ran_vals <- tidy_ran_vals(x, conf.int, conf.level)
    if ("ran_coefs" %in% effects) out$ran_coefs <- tidy_ran_coefs(x)
    res <- bind_rows_fill(out)
    if (identical(effects, "fixed")) res$group <- NULL
    rownames(res) <- NULL
    res
}

glmm_tidy_fixed <- function(x, conf.int, conf.level, exponentiate) {
    se <- sqrt(diag(vcov(x)))
    est <- x$beta
    out <- data.frame(effect = "fixed", group = NA_character_, term = names(est), estimate = unname(est),
                      std.error = unname(se), statistic = unname(est / se),
                      p.value = unname(2 * pnorm(-abs(est / se))), stringsAsFactors = FALSE)
    if (conf.int) {
        q <- qnorm((1 + conf.level) / 2)
        out$conf.low <- out$estimate - q * out$std.error
        out$conf.high <- out$estimate + q * out$std.error
    }
    if (exponentiate) {
        for (cn in intersect(c("estimate", "conf.low", "conf.high"), names(out))) out[[cn]] <- exp(out[[cn]])
        out$std.error <- out$std.error * out$estimate
    }
    out
}

#' @rdname glmmfit-ext
glance.glmmfit <- function(x, ...) {
    ll <- logLik(x)
    data.frame(nobs = nobs(x), sigma = sigma(x), logLik = as.numeric(ll), AIC = stats::AIC(ll), BIC = stats::BIC(ll),
               deviance = deviance(x), df.residual = df.residual(x))
}

#' @rdname glmmfit-ext
augment.glmmfit <- function(x, data = NULL, newdata = NULL, ...) {
    if (!is.null(newdata)) {
        out <- newdata
        out$.fitted <- predict(x, newdata = newdata, ...)
        return(out)
    }
    out <- x$frame
    attr(out, "terms") <- NULL
    out$.fitted <- x$eta
    out$.resid <- residuals(x, type = "deviance")
    out$.fixed <- drop(x$X %*% x$beta) + if (is.null(x$offset)) 0 else x$offset
    out$.mu <- x$mu
    out
}
