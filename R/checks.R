## Checks of the data that give advice rather than errors.

## A message when the continuous fixed-effect columns have standard deviations
## differing by more than a factor 'tol' (lme4 warns the same way).  Columns
## that hold only 0 and 1 (intercept, dummies) and constant columns are
## ignored.  The fit itself does not need rescaling: this is advice for the
## reader of the coefficients.
check_scales <- function(X, tol = 1e4) {
    if (!is.matrix(X) || ncol(X) < 2L) return(invisible(FALSE))
    if (!is.double(X)) storage.mode(X) <- "double"
    ## one pass per column in C: this runs on every fit
    s <- setNames(.Call(C_lmm_column_scales, X), colnames(X))
    s <- s[is.finite(s) & s > 0]
    if (length(s) < 2L) return(invisible(FALSE))
    if (max(s) / min(s) > tol) {
        message(sprintf(paste0("Some predictor variables are on very different scales ",
                               "(standard deviations from %.3g (%s) to %.3g (%s)): consider rescaling"),
                        min(s), names(s)[which.min(s)], max(s), names(s)[which.max(s)]))
        return(invisible(TRUE))
    }
    invisible(FALSE)
}
