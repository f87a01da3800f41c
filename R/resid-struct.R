## Residual variance and correlation structures: nlme's corStruct and
## varFunc constructors read into the component list the C core takes
## (src/resid.h).  A correlation component whitens each group's block; a
## variance component gives each row's standard-deviation multiplier.  The
## kind codes are the order of the C tables (src/resid_cor.c, resid_var.c).

RESID_COR_KINDS <- c(corAR1 = 0L, corCAR1 = 1L, corCompSymm = 2L, corExp = 3L, corGaus = 4L, corSpher = 5L,
                     corARMA = 6L, corSymm = 7L)
RESID_VAR_KINDS <- c(varIdent = 0L, varPower = 1L, varExp = 2L, varConstPower = 3L, varFixed = 4L)
## nlme's names for the printed structures
RESID_COR_TITLES <- c(corAR1 = "AR(1)", corCAR1 = "Continuous AR(1)", corCompSymm = "Compound symmetry",
                      corExp = "Exponential spatial correlation", corGaus = "Gaussian spatial correlation",
                      corSpher = "Spherical spatial correlation", corARMA = "ARMA(%d,%d)",
                      corSymm = "General")
RESID_VAR_TITLES <- c(varIdent = "Different standard deviations per stratum",
                      varPower = "Power of variance covariate", varExp = "Exponential of variance covariate",
                      varConstPower = "Constant plus power of variance covariate",
                      varFixed = "fixed weights")
## nlme's default starting values, in its internal parametrisation (corARMA:
## one per coefficient): any other 'value' is refused (lmmfit starts from
## its own)
RESID_COR_DEFAULT_VALUE <- c(corAR1 = 0, corCAR1 = stats::qlogis(0.2), corCompSymm = 0, corARMA = 0)
## the nugget's starting value: a tenth of the variance at distance zero
SPATIAL_NUGGET_START <- 0.1

## One-sided formula ~ covariates | group into its parts (expressions).
resid_form_parts <- function(form, what) {
    if (!inherits(form, "formula") || length(form) != 2L)
        stop(sprintf("%s: 'form' must be a one-sided formula such as ~ time | id", what), call. = FALSE)
    rhs <- form[[2L]]
    group <- NULL
    if (is.call(rhs) && identical(rhs[[1L]], quote(`|`))) {
        group <- rhs[[3L]]
        rhs <- rhs[[2L]]
        ## nlme's a/b (the innermost grouping) is the interaction a:b
        while (is.call(group) && identical(group[[1L]], quote(`/`))) group[[1L]] <- quote(`:`)
    }
    covs <- list()
    add <- function(e) {
        if (is.call(e) && identical(e[[1L]], quote(`+`)) && length(e) == 3L) { add(e[[2L]]); add(e[[3L]]) }
        else if (!(is.numeric(e) && identical(as.numeric(e), 1))) covs[[length(covs) + 1L]] <<- e
    }
    add(rhs)
    for (e in covs)
        if (any(c("fitted", ".") %in% all.names(e)))
            stop(sprintf(paste0("%s: a structure depending on the fitted values (%s) is not supported; ",
                                "give a covariate, e.g. form = ~ age"), what, deparse1(e)), call. = FALSE)
    list(form = form, covs = covs, group = group)
}

## A correlation structure: nlme's corStruct object or the package's ar1().
resid_parse_cor <- function(correlation) {
    if (is.null(correlation)) return(NULL)
    if (inherits(correlation, "lmmfit_ar1"))
        return(list(class = "corAR1", parts = resid_form_parts(correlation$form, "ar1()"), nugget = FALSE))
    if (!inherits(correlation, "corStruct"))
        stop("'correlation' must be a correlation structure: ar1(), or one of nlme's ",
             paste0(names(RESID_COR_KINDS), "()", collapse = ", "), call. = FALSE)
    cls <- class(correlation)[1L]
    if (cls == "corIdent")
        stop("correlation = corIdent() (what corARMA(p = 0, q = 0) gives) is no correlation: drop 'correlation'",
             call. = FALSE)
    if (!cls %in% names(RESID_COR_KINDS))
        stop(sprintf("correlation = %s() is not supported; the structures available are %s", cls,
                     paste0(names(RESID_COR_KINDS), "()", collapse = ", ")), call. = FALSE)
    if (isTRUE(attr(correlation, "fixed")))
        stop(sprintf("%s(fixed = TRUE) is not supported: lmmfit estimates the correlation parameters", cls),
             call. = FALSE)
    spatial <- inherits(correlation, "corSpatial")
    value <- as.numeric(unclass(correlation))
    default <- RESID_COR_DEFAULT_VALUE[cls]
    ndefault <- if (cls == "corARMA") length(value) else 1L
    if (length(value) && !(length(value) == ndefault && !is.na(default) && all(abs(value - default) < 1e-12)))
        stop(sprintf("%s(value = ...): starting values are not taken; drop 'value' (lmmfit starts from its own)",
                     cls), call. = FALSE)
    if (spatial && !identical(attr(correlation, "metric"), "euclidean"))
        stop(sprintf("%s(metric = \"%s\") is not supported: only the euclidean metric", cls,
                     attr(correlation, "metric")), call. = FALSE)
    parts <- resid_form_parts(attr(correlation, "formula"), paste0(cls, "()"))
    if (spatial && !length(parts$covs))
        stop(sprintf("%s(): give the coordinates, e.g. form = ~ x + y | site", cls), call. = FALSE)
    if (cls %in% c("corAR1", "corCAR1", "corARMA") && length(parts$covs) > 1L)
        stop(sprintf("%s(): one time covariate, e.g. form = ~ time | id", cls), call. = FALSE)
    if (cls == "corSymm" && length(parts$covs) > 1L)
        stop("corSymm(): one position covariate (1, 2, ..., T), e.g. form = ~ visit | id", call. = FALSE)
    orders <- if (cls == "corARMA") arma_orders(correlation)
    list(class = cls, parts = parts, nugget = spatial && isTRUE(attr(correlation, "nugget")),
         p = orders[1L], q = orders[2L])
}

## corARMA's p and q: non-negative integers, not both zero (nlme's
## constructor turns p = q = 0 into corIdent; an object made otherwise may not).
arma_orders <- function(correlation) {
    pq <- c(attr(correlation, "p"), attr(correlation, "q"))
    if (length(pq) != 2L || anyNA(pq) || any(pq < 0) || any(pq != round(pq)))
        stop("corARMA(): 'p' and 'q' must be non-negative integers", call. = FALSE)
    if (sum(pq) == 0) stop("corARMA(p = 0, q = 0) is no correlation: drop 'correlation'", call. = FALSE)
    as.integer(pq)
}

## Variance functions: nlme's varFunc objects (varComb: several).
resid_parse_var <- function(variance) {
    if (is.null(variance)) return(list())
    if (inherits(variance, "varComb")) return(unlist(lapply(unclass(variance), resid_parse_var), recursive = FALSE))
    cls <- class(variance)[1L]
    if (!cls %in% names(RESID_VAR_KINDS))
        stop(sprintf("weights = %s() is not supported; the variance functions available are %s, and varComb()",
                     cls, paste0(names(RESID_VAR_KINDS), "()", collapse = ", ")), call. = FALSE)
    if (length(unlist(unclass(variance))))
        stop(sprintf("%s(value = ...): starting values are not taken; drop 'value'", cls), call. = FALSE)
    if (any(unlist(attr(variance, "whichFix"))) || length(attr(variance, "fixed")))
        stop(sprintf("%s(fixed = ...) is not supported: lmmfit estimates the variance parameters", cls),
             call. = FALSE)
    parts <- resid_form_parts(attr(variance, "formula"), paste0(cls, "()"))
    if (cls == "varIdent" && (length(parts$covs) || is.null(parts$group)))
        stop("varIdent(): give the strata as form = ~ 1 | stratum", call. = FALSE)
    if (cls != "varIdent" && length(parts$covs) != 1L)
        stop(sprintf("%s(): give one variance covariate, e.g. form = ~ age", cls), call. = FALSE)
    if (cls == "varFixed" && !is.null(parts$group))
        stop("varFixed(): strata are not supported; give form = ~ v", call. = FALSE)
    list(list(class = cls, parts = parts))
}

## The variables the structures need in the model frame.
resid_frame_vars <- function(cor, var) {
    parts <- c(if (!is.null(cor)) list(cor$parts), lapply(var, `[[`, "parts"))
    unlist(lapply(parts, function(p) c(p$covs, if (!is.null(p$group)) list(p$group))), recursive = FALSE)
}

resid_eval <- function(e, frame, env, what) {
    ## an expression such as I(time + 1) is a column of the model frame
    ## (resid_frame_vars()), its variables perhaps not
    nm <- deparse1(e)
    v <- if (nm %in% names(frame)) frame[[nm]] else tryCatch(eval(e, frame, env), error = function(err)
        stop(sprintf("%s: cannot evaluate '%s': %s", what, deparse1(e), conditionMessage(err)), call. = FALSE))
    if (length(v) != nrow(frame))
        stop(sprintf("%s: '%s' has %d values for %d observations", what, deparse1(e), length(v), nrow(frame)),
             call. = FALSE)
    v
}

resid_numeric <- function(e, frame, env, what) {
    v <- resid_eval(e, frame, env, what)
    if (!is.numeric(v) || any(!is.finite(v)))
        stop(sprintf("%s: '%s' must be numeric and finite", what, deparse1(e)), call. = FALSE)
    as.double(v)
}

resid_factor <- function(e, frame, env, what) {
    if (is.null(e)) return(factor(rep.int(1L, nrow(frame))))
    g <- resid_group_value(e, frame, env, what)
    if (anyNA(g)) stop(sprintf("%s: the grouping '%s' has missing values", what, deparse1(e)), call. = FALSE)
    factor(g, levels = unique(g))    # levels in order of appearance, as nlme's strata
}

## A grouping's values; a:b (and nlme's a/b, also nested deeper) is the
## interaction of the variables' factors, numeric codes too, where R's own
## `:` would take numbers for a sequence and `/` for a division.
resid_group_value <- function(e, frame, env, what) {
    if (is.call(e) && length(e) == 3L && (identical(e[[1L]], quote(`:`)) || identical(e[[1L]], quote(`/`))))
        return(interaction(resid_group_value(e[[2L]], frame, env, what),
                           resid_group_value(e[[3L]], frame, env, what), drop = TRUE, lex.order = TRUE))
    resid_eval(e, frame, env, what)
}

## The structures of a fit: the correlation and the variance functions, or
## NULL for none.  AR(1) alone goes to its own evaluation (src/ar1.c: the
## whitened cross-products as a combination of pieces formed once), as the
## ar1() structure it is.
resid_parse <- function(correlation, variance) {
    if (is.null(correlation) && is.null(variance)) return(NULL)
    cor <- resid_parse_cor(correlation)
    var <- resid_parse_var(variance)
    if (!length(var) && !is.null(cor) && cor$class == "corAR1") {
        a <- if (inherits(correlation, "lmmfit_ar1")) correlation else ar1_from_parts(cor$parts)
        if (!is.null(a)) return(list(ar1 = a, cor = cor, var = var))
    }
    list(cor = cor, var = var)
}

## nlme's corAR1(form) as ar1(form) when ar1() takes its grouping.
ar1_from_parts <- function(parts) {
    if (is.null(parts$group)) return(NULL)
    g <- parts$group
    form <- if (length(parts$covs)) call("~", call("|", parts$covs[[1L]], g)) else call("~", call("|", 1, g))
    ar1(eval(form))
}

## The weights argument when it is nlme's variance function (a varFunc
## object, such as varIdent(form = ~ 1 | sex)); NULL when it names prior
## weights (a column of the data or a vector).
variance_function_arg <- function(expr, data, env) {
    if (is.null(expr)) return(NULL)
    v <- tryCatch(eval(expr, if (is.data.frame(data) || is.list(data)) data, env), error = function(e) NULL)
    if (inherits(v, "varFunc")) v else NULL
}
