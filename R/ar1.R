## Residual AR(1) correlation within groups (placeholder until that issue lands).

## The variables (as expressions) a correlation structure needs in the model frame.
correlation_vars <- function(correlation) {
    stop("residual correlation structures are not supported yet", call. = FALSE)
}

ar1_fit_core <- function(X, y, w, off, reterms, REML, control, correlation, frame, env) {
    stop("residual correlation structures are not supported yet", call. = FALSE)
}
