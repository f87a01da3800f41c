## Confidence intervals.

#' Confidence intervals for an lmmfit model
#'
#' \code{method = "Wald"} gives lme4's layout: one row per covariance
#' parameter (\code{.sig01}, \code{.sig02}, ..., in theta's order) and
#' \code{.sigma}, all \code{NA} (Wald intervals for variance components are
#' not given, as in lme4), then the fixed effects, \eqn{\hat\beta \pm
#' z_{1-\alpha/2} SE}.  \code{method = "boot"} gives parametric bootstrap
#' percentile intervals (see \code{confint_boot}); \code{method = "profile"}
#' likelihood-profile intervals, when available.
#'
#' @param object a fitted \code{lmmfit} model.
#' @param parm parameters: names (e.g. \code{"Days"}, \code{".sig01"}),
#'   indices into the full table, or \code{"beta_"} (all fixed effects) or
#'   \code{"theta_"} (all variance parameters), as in lme4.  Default all.
#' @param level confidence level.
#' @param method \code{"Wald"}, \code{"boot"} or \code{"profile"}.
#' @param ... passed to the bootstrap or profile method.
#' @return A matrix with one row per parameter and columns for the lower and
#'   upper limits (named as percentages, e.g. \code{"2.5 \%"}).
#' @examples
#' data(Orthodont, package = "nlme")
#' fit <- lmmfit(distance ~ age + (1 | Subject), data = Orthodont)
#' confint(fit)
#' confint(fit, "age")
#' @export
confint.lmmfit <- function(object, parm, level = 0.95, method = c("Wald", "boot", "profile"), ...) {
    method <- match.arg(method)
    if (!is.numeric(level) || length(level) != 1L || !is.finite(level) || level <= 0 || level >= 1)
        stop("'level' must be a single number between 0 and 1", call. = FALSE)
    if (method == "boot") return(confint_boot(object, parm, level, ...))
    if (method == "profile") {
        ns <- environment(confint.lmmfit)
        if (!exists("confint_profile", envir = ns, mode = "function", inherits = FALSE))
            stop("profile confidence intervals are not available in this version of lmmfit: ",
                 "use method = \"Wald\" (fixed effects) or method = \"boot\"", call. = FALSE)
        prof <- get("confint_profile", envir = ns, mode = "function", inherits = FALSE)
        return(prof(object, parm, level, ...))
    }
    a <- (1 - level) / 2
    pct <- paste(format(100 * c(a, 1 - a), trim = TRUE, scientific = FALSE, digits = 3), "%")
    ntheta <- length(object$theta)
    vnames <- c(sprintf(".sig%02d", seq_len(ntheta)), ".sigma")
    beta <- fixef(object)
    se <- sqrt(diag(vcov(object)))
    z <- stats::qnorm(1 - a)
    ci <- rbind(matrix(NA_real_, length(vnames), 2L),
                cbind(beta - z * se, beta + z * se))
    dimnames(ci) <- list(c(vnames, names(beta)), pct)
    if (!missing(parm)) ci <- ci[select_parm(parm, rownames(ci), vnames, names(beta)), , drop = FALSE]
    ci
}

## Rows of the interval table that 'parm' names.
select_parm <- function(parm, all, vnames, bnames) {
    if (is.numeric(parm)) {
        if (any(parm < 1 | parm > length(all) | parm != round(parm)))
            stop(sprintf("'parm' indices must be between 1 and %d", length(all)), call. = FALSE)
        return(all[parm])
    }
    if (!is.character(parm)) stop("'parm' must be names or indices of parameters", call. = FALSE)
    out <- unlist(lapply(parm, function(p) switch(p, beta_ = bnames, theta_ = vnames, p)))
    bad <- setdiff(out, all)
    if (length(bad))
        stop(sprintf("unknown parameter%s in 'parm': %s (known: %s)", if (length(bad) > 1L) "s" else "",
                     paste(bad, collapse = ", "), paste(all, collapse = ", ")), call. = FALSE)
    out
}
