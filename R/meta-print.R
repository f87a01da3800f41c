## Printing a meta-analysis as metafor prints it: the model, the
## heterogeneity, the test of moderators, the model results.

#' @export
print.metafit <- function(x, digits = 4L, signif.stars = getOption("show.signif.stars"), ...) {
    m <- x$model
    cat("\n", meta_title(x), "\n\n", sep = "")
    if (m$uni && x$method != "FE") meta_print_tau2(x, digits)
    else if (!m$fe_only && x$method != "FE") meta_print_components(x, digits)
    else if (m$uni || m$fe_only) meta_print_i2_fe(x, digits)
    meta_print_q(x, digits)
    if (length(x$btt) && !(length(x$beta) == 1L)) meta_print_qm(x, digits)
    cat("Model Results:\n\n")
    meta_print_coefs(x, digits, signif.stars)
    invisible(x)
}

meta_title <- function(x) {
    m <- x$model
    est <- if (x$method == "FE") "" else sprintf("; tau^2 estimator: %s", x$method)
    if (m$uni || m$fe_only) {
        kind <- if (x$method == "FE") if (m$p > 1L) "Fixed-Effects with Moderators Model" else "Fixed-Effects Model"
                else if (m$p > 1L) "Mixed-Effects Model" else "Random-Effects Model"
        sprintf("%s (k = %d%s)", kind, m$k, est)
    } else sprintf("Multivariate Meta-Analysis Model (k = %d; method: %s)", m$k, x$method)
}

meta_fmt <- function(v, digits) formatC(v, digits = digits, format = "f")

meta_fmt_p <- function(p, digits) {
    if (is.na(p)) return("NA")
    if (p < 10^-digits) paste0("< .", strrep("0", digits - 1L), "1")
    else paste0("= ", meta_fmt(p, digits))
}

meta_print_tau2 <- function(x, digits) {
    res <- x$model$p > 1L
    cat(sprintf("tau^2 (estimated amount of %s heterogeneity): %s (SE = %s)\n",
                if (res) "residual" else "total", meta_fmt(x$tau2, digits), meta_fmt(x$se.tau2, digits)))
    cat(sprintf("tau (square root of estimated tau^2 value): %s\n", meta_fmt(sqrt(x$tau2), digits)))
    cat(sprintf("I^2 (%s): %s%%\n", if (res) "residual heterogeneity / unaccounted variability"
                else "total heterogeneity / total variability", formatC(x$I2, digits = 2L, format = "f")))
    cat(sprintf("H^2 (%s): %s\n", if (res) "unaccounted variability / sampling variability"
                else "total variability / sampling variability", formatC(x$H2, digits = 2L, format = "f")))
    if (!is.null(x$R2)) cat(sprintf("R^2 (amount of heterogeneity accounted for): %s%%\n",
                                    formatC(x$R2, digits = 2L, format = "f")))
    cat("\n")
}

meta_print_i2_fe <- function(x, digits) {
    if (x$model$fe_only && !x$model$uni && x$model$whiten) return(invisible())
    cat(sprintf("I^2 (%s): %s%%\n", if (x$model$p > 1L) "residual heterogeneity / unaccounted variability"
                else "total heterogeneity / total variability", formatC(x$I2, digits = 2L, format = "f")))
    cat(sprintf("H^2 (%s): %s\n\n", if (x$model$p > 1L) "unaccounted variability / sampling variability"
                else "total variability / sampling variability", formatC(x$H2, digits = 2L, format = "f")))
}

meta_print_components <- function(x, digits) {
    cat("Variance Components:\n\n")
    print(meta_component_table(x), digits = digits, right = TRUE)
    cat("\n")
}

## The components as rows: sigma^2 of scalar terms; tau^2 and rho of vector ones.
meta_component_table <- function(x) {
    rows <- lapply(x$components, function(cm) {
        kc <- length(cm$columns)
        v <- diag(cm$cov)
        nm <- if (kc == 1L) cm$group else paste0(cm$group, ": ", cm$columns)
        df <- data.frame(estim = v, sqrt = sqrt(v), nlvls = cm$nlev, factor = nm,
                         stringsAsFactors = FALSE)
        if (kc > 1L) {
            R <- stats::cov2cor(cm$cov)
            idx <- which(lower.tri(R), arr.ind = TRUE)
            df <- rbind(df, data.frame(estim = R[idx], sqrt = NA_real_, nlvls = cm$nlev,
                                       factor = sprintf("%s: rho(%s, %s)", cm$group, cm$columns[idx[, 2]],
                                                        cm$columns[idx[, 1]]),
                                       stringsAsFactors = FALSE))
        }
        df
    })
    out <- do.call(rbind, rows)
    rownames(out) <- NULL
    out
}

meta_print_q <- function(x, digits) {
    df <- x$model$k - x$model$p
    cat(if (x$model$p > 1L) "Test for Residual Heterogeneity:\n" else "Test for Heterogeneity:\n")
    cat(sprintf("%s(df = %d) = %s, p-val %s\n\n", if (x$model$p > 1L) "QE" else "Q", df,
                meta_fmt(x$QE, digits), meta_fmt_p(x$QEp, digits)))
}

meta_print_qm <- function(x, digits) {
    q <- x$QM
    which <- paste(range(x$btt), collapse = ":")
    if (length(x$btt) == 1L) which <- as.character(x$btt)
    cat(sprintf("Test of Moderators (coefficient%s %s):\n", if (length(x$btt) > 1L) "s" else "", which))
    if (is.na(q$ddf)) cat(sprintf("QM(df = %d) = %s, p-val %s\n\n", q$df, meta_fmt(q$stat, digits),
                                  meta_fmt_p(q$pval, digits)))
    else cat(sprintf("F(df1 = %d, df2 = %d) = %s, p-val %s\n\n", q$df, q$ddf, meta_fmt(q$stat, digits),
                     meta_fmt_p(q$pval, digits)))
}

meta_print_coefs <- function(x, digits, signif.stars) {
    tab <- as.data.frame(x$coef_table)
    names(tab)[3L] <- if (is.na(x$ddf)) "zval" else "tval"
    out <- data.frame(lapply(tab, meta_fmt, digits = digits), check.names = FALSE)
    out$pval <- vapply(tab$pval, function(p) if (p < 10^-digits) paste0("<.", strrep("0", digits - 1L), "1")
                                             else meta_fmt(p, digits), "")
    if (!is.na(x$ddf)) out <- cbind(out[1:3], df = x$ddf, out[4:6])
    if (isTRUE(signif.stars)) out[[" "]] <- as.character(stats::symnum(tab$pval, corr = FALSE, na = FALSE,
        cutpoints = c(0, 0.001, 0.01, 0.05, 0.1, 1), symbols = c("***", "**", "*", ".", " ")))
    rownames(out) <- meta_coef_names(names(x$beta))
    print(out, quote = FALSE, right = TRUE)
    if (isTRUE(signif.stars))
        cat("\n---\nSignif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1\n")
    cat("\n")
}

## metafor's name for the intercept
meta_coef_names <- function(nm) replace(nm, nm == "(Intercept)", "intrcpt")
