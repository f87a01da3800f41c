## Intervals and comparisons of meta-analyses: confint (the coefficients;
## tau^2, tau, I^2 and H^2 by the Q-profile method), anova (likelihood-ratio
## tests between nested meta-regressions), summary and the broom tidiers.

#' Confidence intervals of a meta-analysis
#'
#' For the coefficients, the Wald (or Knapp-Hartung t) intervals of the fit;
#' for a model with one random effect per study, the Q-profile interval of
#' \eqn{\tau^2} (Viechtbauer 2007) and the intervals of \eqn{\tau},
#' \eqn{I^2} and \eqn{H^2} it implies.
#'
#' @param object a \code{metafit} fit.
#' @param parm unused (all parameters are returned).
#' @param level confidence level (default the fit's).
#' @param ... unused.
#' @return A list of class \code{"confint.metafit"} with matrices
#'   \code{fixed} and (one random effect per study) \code{random}, columns
#'   \code{estimate}, \code{ci.lb}, \code{ci.ub}.
#' @references Viechtbauer W (2007) Confidence intervals for the amount of
#'   heterogeneity in meta-analysis. Stat Med 26, 37-52.
#' @export
confint.metafit <- function(object, parm, level = object$level, ...) {
    if (!missing(parm)) stop("'parm' is not supported: confint() returns every parameter", call. = FALSE)
    level <- meta_level(level)
    ct <- meta_coef_tests(object$beta, object$vb, object$ddf, level)
    fixed <- cbind(estimate = ct$estimate, ci.lb = ct$ci.lb, ci.ub = ct$ci.ub)
    rownames(fixed) <- meta_coef_names(names(object$beta))
    m <- object$model
    random <- NULL
    if (m$uni && object$method != "FE") {
        lim <- meta_qprofile(m$y, m$vi, m$X, level)
        t2 <- c(object$tau2, lim)
        random <- rbind(`tau^2` = t2, tau = sqrt(t2), `I^2(%)` = 100 * t2 / (object$vt + t2),
                        `H^2` = t2 / object$vt + 1)
        colnames(random) <- c("estimate", "ci.lb", "ci.ub")
    }
    structure(list(fixed = fixed, random = random, level = level), class = "confint.metafit")
}

#' @export
print.confint.metafit <- function(x, digits = 4L, ...) {
    cat("\n")
    print(round(x$fixed, digits))
    if (!is.null(x$random)) {
        cat("\n")
        print(round(x$random, digits))
    }
    cat("\n")
    invisible(x)
}

#' Likelihood-ratio test between two nested meta-analyses
#'
#' @param object,object2 two \code{metafit} fits of the same effects, one
#'   nested in the other (fewer moderators or fewer variance components).
#'   Models with different moderators must be fitted by ML: their REML
#'   likelihoods are not comparable.
#' @param ... unused.
#' @return A data frame of class \code{c("anova.metafit", "data.frame")}:
#'   per model df, AIC, BIC, AICc, logLik; the LRT and its p-value; QE and
#'   tau^2 (one random effect per study).
#' @export
anova.metafit <- function(object, object2, ...) {
    if (missing(object2) || !inherits(object2, "metafit"))
        stop("anova() compares two metafit fits: give the second as 'object2'", call. = FALSE)
    if (length(list(...))) stop("anova() compares exactly two metafit fits", call. = FALSE)
    if (object$model$k != object2$model$k || !isTRUE(all.equal(object$model$y, object2$model$y)))
        stop("the two fits are not of the same effects", call. = FALSE)
    fits <- list(object, object2)
    np <- vapply(fits, function(f) attr(logLik(f), "df"), 1)
    if (np[1L] == np[2L]) stop("the two models have as many parameters: they are not nested", call. = FALSE)
    ord <- order(-np)
    full <- fits[[ord[1L]]]; red <- fits[[ord[2L]]]
    if (full$method != red$method) stop("the two fits use different methods", call. = FALSE)
    if (!full$method %in% c("REML", "ML", "FE"))
        stop("likelihood-ratio tests need likelihood fits (method \"ML\" or \"REML\")", call. = FALSE)
    if (full$method == "REML" && !identical(colnames(full$model$X), colnames(red$model$X)))
        stop(paste0("the models have different moderators: REML likelihoods of different fixed parts are ",
                    "not comparable; fit both with method = \"ML\""), call. = FALSE)
    REML <- full$method == "REML"
    ll <- vapply(list(full, red), function(f) as.numeric(logLik(f)), 0)
    fs <- function(f, s) f$fit_stats[s, if (REML) "REML" else "ML"]
    lrt <- 2 * (ll[1L] - ll[2L])
    out <- data.frame(df = np[ord], AIC = c(fs(full, "AIC"), fs(red, "AIC")),
                      BIC = c(fs(full, "BIC"), fs(red, "BIC")), AICc = c(fs(full, "AICc"), fs(red, "AICc")),
                      logLik = ll, LRT = c(NA, lrt),
                      pval = c(NA, stats::pchisq(lrt, np[ord[1L]] - np[ord[2L]], lower.tail = FALSE)),
                      QE = c(full$QE, red$QE), tau2 = c(meta_total_tau2(full), meta_total_tau2(red)),
                      row.names = c("Full", "Reduced"))
    class(out) <- c("anova.metafit", "data.frame")
    out
}

#' @export
print.anova.metafit <- function(x, digits = 4L, ...) {
    cat("\n")
    print(format(as.data.frame(x), digits = digits, nsmall = digits), quote = FALSE, na.encode = FALSE)
    cat("\n")
    invisible(x)
}

#' @export
summary.metafit <- function(object, ...) structure(object, class = c("summary.metafit", "metafit"))

#' @export
print.summary.metafit <- function(x, digits = 4L, ...) {
    cat("\n", meta_title(x), "\n\n", sep = "")
    REML <- x$method == "REML"
    fs <- x$fit_stats[c("ll", "dev", "AIC", "BIC", "AICc"), if (REML) "REML" else "ML"]
    tab <- matrix(fs, 1L, dimnames = list("", c("logLik", "deviance", "AIC", "BIC", "AICc")))
    print(round(tab, digits))
    print.metafit(structure(x, class = "metafit"), digits = digits, ...)
}

## broom's conventions: one row per coefficient (tidy), one row of model
## statistics (glance).  Registered in .onLoad when generics is there.
tidy.metafit <- function(x, conf.int = FALSE, conf.level = x$level, ...) {
    ct <- meta_coef_tests(x$beta, x$vb, x$ddf, meta_level(conf.level))
    out <- data.frame(term = meta_coef_names(names(x$beta)), type = "summary", estimate = ct$estimate,
                      std.error = ct$se, statistic = ct$stat, p.value = ct$pval, row.names = NULL)
    if (conf.int) { out$conf.low <- ct$ci.lb; out$conf.high <- ct$ci.ub }
    out
}

glance.metafit <- function(x, ...) {
    ll <- logLik(x)
    data.frame(nobs = x$model$k, method = x$method, tau2 = meta_total_tau2(x),
               i.squared = if (is.null(x$I2)) NA_real_ else x$I2,
               h.squared = if (is.null(x$H2)) NA_real_ else x$H2,
               cochran.qe = x$QE, p.value.cochran.qe = x$QEp, cochran.qm = x$QM$stat,
               p.value.cochran.qm = x$QM$pval, logLik = as.numeric(ll), AIC = stats::AIC(ll),
               BIC = x$fit_stats["BIC", if (x$method == "REML") "REML" else "ML"], df.residual = x$model$k - x$model$p)
}
