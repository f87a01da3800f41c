## print / summary / print.summary in lme4's layout.

## ddf: the df method of the summary's t-tests; named in the title as
## lmerTest does ("... fit by REML. t-tests use Satterthwaite's method").
fit_title <- function(x, ddf = "none") {
    crit <- if (x$REML) "REML" else "maximum likelihood "
    model <- if (is_gls(x)) "Generalized least squares" else "Linear mixed model"
    if (ddf %in% c("Satterthwaite", "Kenward-Roger"))
        sprintf("%s fit by %s. t-tests use %s's method ['lmmfit']", model, crit, ddf)
    else sprintf("%s fit by %s ['lmmfit']", model, crit)
}

print_header <- function(x, ddf = "none") {
    cat(fit_title(x, ddf), "\n", sep = "")
    cat("Formula: ", deparse1(x$formula), "\n", sep = "")
    if (!is.null(x$call$data)) cat("   Data: ", deparse1(x$call$data), "\n", sep = "")
    if (!is.null(x$call$weights)) cat("Weights: ", deparse1(x$call$weights), "\n", sep = "")
    if (!is.null(x$call$offset)) cat(" Offset: ", deparse1(x$call$offset), "\n", sep = "")
    if (!is.null(x$call$subset)) cat(" Subset: ", deparse1(x$call$subset), "\n", sep = "")
}

## The fit criteria lme4 prints (REML criterion, or the AIC/BIC/logLik table).
fit_criteria <- function(x) {
    if (x$REML) return(c(REML = x$deviance_value))
    ll <- logLik(x)
    c(AIC = AIC(ll), BIC = BIC(ll), logLik = as.numeric(ll), deviance = x$deviance_value,
      df.resid = df.residual(x))
}

## The REML criterion, or lme4's AIC / BIC / logLik / deviance / df.resid line,
## rounded to `decimals` places.
print_criteria <- function(crit, decimals) {
    if (length(crit) == 1L && names(crit) == "REML") {
        cat("REML criterion at convergence: ", format(round(crit, decimals)), "\n", sep = "")
    } else {
        out <- c(formatC(crit[-length(crit)], format = "f", digits = decimals),
                 format(crit[length(crit)]))
        names(out) <- names(crit)
        print(out, quote = FALSE, right = TRUE)
    }
}

## The variance components, or for a fit without random effects (gls) the
## residual standard error alone, as nlme prints it.
print_random_part <- function(fit, varcor, digits, columns, lead) {
    if (is_gls(fit))
        return(cat(sprintf("%sResidual standard error: %s\n", lead, format(sigma(fit), digits = digits))))
    cat(lead, "Random effects:\n", sep = "")
    print(format_varcorr(varcor, digits, columns), quote = FALSE, right = FALSE)
}

print_ngrps <- function(x) {
    ng <- ngrps(x)
    if (!length(ng)) return(cat(sprintf("Number of obs: %d\n", nobs(x))))
    cat(sprintf("Number of obs: %d, groups:  %s\n", nobs(x),
                paste(paste(names(ng), ng, sep = ", "), collapse = "; ")))
}

print_notes <- function(x) {
    if (length(x$dropped))
        cat(sprintf("fit warnings:\nfixed-effect model matrix is rank deficient so dropping %d column%s / coefficient%s (%s)\n",
                    length(x$dropped), if (length(x$dropped) > 1L) "s" else "",
                    if (length(x$dropped) > 1L) "s" else "", paste(x$dropped, collapse = ", ")))
    if (isSingular(x, x$control$singular_tol)) cat("boundary (singular) fit: see help('isSingular')\n")
    msgs <- convergence_messages(x)
    if (length(msgs)) cat(paste0("optimizer (L-BFGS-B) convergence code: ", msgs, "\n"), sep = "")
}

## As lme4: the gradient scaled by the curvature (the C optimiser reports
## gradient / sqrt(diagonal second derivative), in its own unit-free
## parameters, with derivatives pointing out of the feasible region at an
## active bound set to 0) must be below check_grad_tol; where no positive
## curvature is available, the raw gradient is used.  A fit whose end point
## did not pass the optimizer's own checks (optinfo$settled: no move off the
## boundary lowers the deviance, and a Newton step or L-BFGS-B finds no
## further decrease) says so too.
convergence_messages <- function(x) {
    g <- x$optinfo$gradient
    sg <- x$optinfo$scaled_gradient
    if (!is.null(sg) && length(sg) == length(g)) g <- ifelse(is.na(sg), g, sg)
    c(if (length(g) && (any(!is.finite(g)) || max(abs(g)) > x$control$check_grad_tol))
          sprintf("Model failed to converge with max|grad| = %.3g", max(abs(g))),
      if (isFALSE(x$optinfo$settled))
          paste("Model may not have converged: the optimizer stopped before confirming a local optimum;",
                "the random-effects structure may be too rich for the data (simplify it, or compare",
                "with a fit of the uncorrelated model (x || g))"))
}

#' @rdname lmmfit-accessors
#' @param digits number of significant digits.
#' @export
print.lmmfit <- function(x, digits = max(3, getOption("digits") - 3), ...) {
    print_header(x)
    print_criteria(fit_criteria(x), 4L)
    print_random_part(x, VarCorr(x), digits, "Std.Dev.", "")
    print_ngrps(x)
    if (length(fixef(x)) == 0L) cat("No fixed effect coefficients\n")
    else {
        cat("Fixed Effects:\n")
        print.default(format(fixef(x), digits = digits), print.gap = 2L, quote = FALSE)
    }
    print_notes(x)
    invisible(x)
}

#' Summarise an lmmfit model
#'
#' The fixed-effects table gains denominator degrees of freedom and p-values
#' of the t-tests, by Satterthwaite's method (the default, as lmerTest's
#' summary) or Kenward-Roger's (REML fits; the standard errors are then the
#' adjusted ones, as lmerTest), or stays lme4's three columns with
#' \code{ddf = "none"} (or lmerTest's name for it, \code{"lme4"}).  The
#' printed title names the method, as lmerTest's ("t-tests use
#' Satterthwaite's method"); \code{anova(fit)} uses the same method.  See
#' \code{\link{lmm_contrast}}.  Fits with a residual variance or correlation
#' structure print lme4's columns unless \code{ddf = "Satterthwaite"} is asked
#' for (its variance parameters then include the structure's; Kenward-Roger's
#' method is not available for them).
#'
#' @param object a fitted \code{lmmfit} model.
#' @param ddf \code{"Satterthwaite"}, \code{"Kenward-Roger"}, \code{"none"}
#'   or \code{"lme4"} (the same as \code{"none"}).
#' @param x a \code{summary.lmmfit} object.
#' @param digits number of significant digits.
#' @param correlation print the correlation of the fixed effects.
#' @param signif.stars print significance stars beside the p-values.
#' @param ... ignored.
#' @return An object of class \code{summary.lmmfit}; its \code{coefficients}
#'   matrix has columns \code{Estimate}, \code{Std. Error}, \code{df},
#'   \code{t value}, \code{Pr(>|t|)} (the last three only \code{Estimate},
#'   \code{Std. Error}, \code{t value} with \code{ddf = "none"}).
#' @examples
#' data(Orthodont, package = "nlme")
#' fit <- lmmfit(distance ~ age + (age | Subject), data = Orthodont)
#' summary(fit)
#' coef(summary(fit, ddf = "Kenward-Roger"))
#' @export
summary.lmmfit <- function(object, ddf = c("Satterthwaite", "Kenward-Roger", "none", "lme4"), ...) {
    ## fits with a residual variance or correlation structure have no df methods: lme4's table
    if (missing(ddf) && has_resid_structure(object)) ddf <- "none"
    ddf <- match.arg(ddf)
    if (ddf == "lme4") ddf <- "none"     # lmerTest's name for lme4's table
    beta <- fixef(object)
    se <- sqrt(diag(vcov(object)))
    coefs <- cbind(Estimate = beta, `Std. Error` = se, `t value` = beta / se)
    if (ddf != "none" && length(beta)) {
        st <- ddf_setup(object, ddf)
        tab <- do.call(rbind, lapply(seq_along(beta), function(i) {
            l <- numeric(length(beta)); l[i] <- 1
            contrast_1d(object, l, st)
        }))
        coefs <- as.matrix(tab)
        rownames(coefs) <- names(beta)
    }
    V <- vcov(object)
    structure(list(fit = object, coefficients = coefs, varcor = VarCorr(object),
                   criteria = fit_criteria(object),
                   ## (a fit from aggregates has no rows, so no residuals)
                   residuals = if (!inherits(object, "lmmfit_agg"))
                       residuals(object, type = "pearson", scaled = TRUE),
                   ## R 4.2's cov2cor() fails on the 0 x 0 matrix of y ~ 0 + (1 | g)
                   corr = if (length(V)) cov2cor(V) else V,
                   ngrps = ngrps(object), nobs = nobs(object),
                   sigma = sigma(object), singular = isSingular(object, object$control$singular_tol),
                   ddf = ddf),
              class = "summary.lmmfit")
}

#' @rdname summary.lmmfit
#' @export
print.summary.lmmfit <- function(x, digits = max(3, getOption("digits") - 3),
                                 correlation = NULL,
                                 signif.stars = getOption("show.signif.stars"), ...) {
    fit <- x$fit
    print_header(fit, if (is.null(x$ddf)) "none" else x$ddf)
    cat("\n")
    print_criteria(x$criteria, 1L)
    if (!is.null(x$residuals)) {
        cat("\nScaled residuals: \n")
        q <- zapsmall(quantile(x$residuals, names = FALSE), digits + 1L)
        names(q) <- c("Min", "1Q", "Median", "3Q", "Max")
        print(q, digits = digits)
    }
    print_random_part(fit, x$varcor, digits, c("Variance", "Std.Dev."), "\n")
    print_ngrps(fit)
    if (!is.null(fit$resid)) print_resid_structure(fit)
    else if (!is.null(fit$corpar)) print_corpar(fit)
    if (nrow(x$coefficients) == 0L) cat("No fixed effect coefficients\n")
    else cat("\nFixed effects:\n")
    if (nrow(x$coefficients) == 0L) NULL
    else if ("Pr(>|t|)" %in% colnames(x$coefficients))
        printCoefmat(x$coefficients, digits = digits, signif.stars = signif.stars, has.Pvalue = TRUE)
    else printCoefmat(x$coefficients, digits = digits, has.Pvalue = FALSE)
    p <- nrow(x$coefficients)
    if (is.null(correlation)) correlation <- p <= 12L
    if (correlation && p > 1L) {
        cat("\nCorrelation of Fixed Effects:\n")
        C <- format(round(x$corr, 3), nsmall = 3)
        C[!lower.tri(C)] <- ""
        ## lme4's layout: rows abbreviated to 11 characters, columns to 6
        rn <- rownames(C)
        dimnames(C) <- list(abbreviate(rn, minlength = 11), abbreviate(rn, minlength = 6))
        print(C[-1L, -p, drop = FALSE], quote = FALSE)
    }
    print_notes(fit)
    invisible(x)
}
