## print / summary / print.summary of a glmmfit, in glmer's layout.

glmm_title <- function(x) {
    how <- if (x$nAGQ > 1L) sprintf("Adaptive Gauss-Hermite Quadrature, nAGQ = %d", x$nAGQ)
           else "Laplace Approximation"
    sprintf("Generalized linear mixed model fit by maximum likelihood (%s) ['glmmfit']", how)
}

glmm_print_header <- function(x) {
    cat(glmm_title(x), "\n", sep = "")
    cat(" Family: ", x$family$family, "  ( ", x$family$link, " )\n", sep = "")
    cat("Formula: ", deparse1(x$formula), "\n", sep = "")
    for (a in c("data", "weights", "offset", "subset")) if (!is.null(x$call[[a]]))
        cat(formatC(paste0(toupper(substring(a, 1, 1)), substring(a, 2), ":"), width = 8), " ",
            deparse1(x$call[[a]]), "\n", sep = "")
}

glmm_criteria <- function(x) {
    ll <- logLik(x)
    c(AIC = AIC(ll), BIC = BIC(ll), logLik = as.numeric(ll), deviance = -2 * as.numeric(ll),
      df.resid = df.residual(x))
}

#' @rdname glmmfit-accessors
#' @param digits significant digits.
#' @export
print.glmmfit <- function(x, digits = max(3, getOption("digits") - 3), ...) {
    glmm_print_header(x)
    print_criteria(glmm_criteria(x), 4L)
    cat("Random effects:\n")
    print(format_varcorr(VarCorr(x), digits, "Std.Dev."), quote = FALSE, right = FALSE)
    print_ngrps(x)
    cat("Fixed Effects:\n")
    print(format(fixef(x), digits = digits), quote = FALSE)
    if (isSingular(x)) cat("boundary (singular) fit: see help('isSingular')\n")
    invisible(x)
}

#' @rdname glmmfit-accessors
#' @export
summary.glmmfit <- function(object, ...) {
    V <- vcov(object)
    se <- sqrt(diag(V))
    z <- object$beta / se
    coefs <- cbind(Estimate = object$beta, `Std. Error` = se, `z value` = z,
                   `Pr(>|z|)` = 2 * pnorm(-abs(z)))
    ## with an estimated scale glmer labels the ratio a t value (its p value
    ## still from the normal)
    if (glmm_has_dispersion(object)) colnames(coefs)[3L] <- "t value"
    structure(list(fit = object, coefficients = coefs, vcov = V, varcor = VarCorr(object),
                   criteria = glmm_criteria(object),
                   scaled_residuals = residuals(object, type = "pearson") / sigma(object)),
              class = "summary.glmmfit")
}

#' @rdname glmmfit-accessors
#' @param signif.stars logical: print significance stars.
#' @export
print.summary.glmmfit <- function(x, digits = max(3, getOption("digits") - 3),
                                  signif.stars = getOption("show.signif.stars"), ...) {
    fit <- x$fit
    glmm_print_header(fit)
    cat("\n")
    print_criteria(x$criteria, 1L)
    cat("\nScaled residuals: \n")
    q <- quantile(x$scaled_residuals, na.rm = TRUE)
    names(q) <- c("Min", "1Q", "Median", "3Q", "Max")
    print(q, digits = digits)
    cat("\nRandom effects:\n")
    print(format_varcorr(x$varcor, digits, c("Variance", "Std.Dev.")), quote = FALSE, right = FALSE)
    print_ngrps(fit)
    cat("\nFixed effects:\n")
    printCoefmat(x$coefficients, digits = digits, signif.stars = signif.stars, has.Pvalue = TRUE)
    p <- ncol(x$vcov)
    if (p > 1L) {
        cat("\nCorrelation of Fixed Effects:\n")
        C <- cov2cor(x$vcov)
        C[upper.tri(C, diag = TRUE)] <- NA
        C <- C[-1L, -p, drop = FALSE]
        out <- format(round(C, 3L), nsmall = 3L)
        out[is.na(C)] <- ""
        dimnames(out) <- list(abbreviate(rownames(C), 6L), abbreviate(colnames(C), 6L))
        print(out, quote = FALSE, right = TRUE)
    }
    if (isSingular(fit)) cat("boundary (singular) fit: see help('isSingular')\n")
    invisible(x)
}
