## The fitted object of a fit from aggregates (a database, files, or a
## user's own sums): class c("lmmfit_agg", "lmmfit").  It holds what lmmfit's
## methods read apart from the rows (the cross-products, the estimates, the
## terms with their levels), so summary, fixef, ranef(condVar), VarCorr, vcov,
## logLik/AIC/BIC, anova and predict(newdata) work as for any fit; methods
## that need the rows stop with a message naming them.

## The fit core from statistics (lmmfit_stats() and the aggregates' fits).
stats_fit_core <- function(stats, REML, control) {
    check_stats(stats)
    if (!is.logical(REML) || length(REML) != 1L || is.na(REML))
        stop("'REML' must be TRUE or FALSE", call. = FALSE)
    xp <- stats$xprod
    terms <- stats_reterms(stats)
    ## statistics from aggregates carry the conditioning of the data they were
    ## summed from (centred columns keep their digits); others are as given
    cen <- stats$centring
    st <- if (is.null(cen)) list(xprod = xp, centring = identity_centring(xp$p), fixed = stats$fixed)
          else list(xprod = xp, centring = cen$transform, slope_centring = cen$slope,
                    centred_xprod = cen$centred_xprod, fixed = stats$fixed)
    list(core = fit_from_stats(st, terms, REML, control), terms = terms)
}

## The fitted object from statistics, with lmmfit()'s messages for singular
## and unconverged fits.
agg_fit_object <- function(stats, REML, control, formula, call) {
    fc <- stats_fit_core(stats, REML, control)
    info <- attr(stats, "model")
    reterms <- Map(function(t, s) list(group = t$group, nlev = t$nlev, Z = t$Z,
                                       factor = factor(s$levels, levels = s$levels),
                                       label = sprintf("%s | %s", paste(s$columns, collapse = " + "), t$group)),
                   fc$terms, stats$terms)
    fixed_terms <- if (!is.null(formula)) terms(parse_lmm_formula(formula)$fixed)
    fit <- structure(c(fc$core, list(
        call = call, formula = formula, REML = REML, control = control, reterms = reterms,
        fixed_terms = fixed_terms, X = matrix(0, 0L, length(stats$fixed), dimnames = list(NULL, stats$fixed)),
        nobs = as.integer(stats$xprod$nobs), sumlogw = stats$xprod$sumlogw, stats = stats,
        dropped = info$dropped, xlev = info$xlev, formula_pos = info$formula_pos,
        weights_column = info$weights)),
        class = c("lmmfit_agg", "lmmfit"))
    ## the model matrix's column-to-term map (anova's tables), from made-up rows
    if (!is.null(fixed_terms))
        attr(fit$X, "assign") <- tryCatch(attr(agg_design_rows(fit)$X, "assign"), error = function(e) NULL)
    act <- function(a, default) if (is.null(a)) default else a
    if (isSingular(fit, control$singular_tol))
        lme4_check_action(act(control$singular_action, "message"), "boundary (singular) fit: see help('isSingular')")
    for (m in convergence_messages(fit)) lme4_check_action(act(control$check_grad_action, "warning"), m)
    fit
}

#' @export
nobs.lmmfit_agg <- function(object, ...) object$nobs

#' @export
sigma.lmmfit_agg <- function(object, ...) sigma_hat(object$pwrss, object$nobs, length(object$beta), object$REML)

#' @export
df.residual.lmmfit_agg <- function(object, ...) object$nobs - n_parameters(object)

#' @export
logLik.lmmfit_agg <- function(object, REML = object$REML, ...) {
    dev <- if (isTRUE(REML) == object$REML) object$deviance_value
           else if (REML) stop("the REML log-likelihood of an ML fit is not defined here", call. = FALSE)
           else profiled_deviance(object$ldL2, object$pwrss, object$nobs, object$sumlogw)
    structure(-dev / 2, nobs = object$nobs, nall = object$nobs, df = n_parameters(object),
              REML = isTRUE(REML), class = "logLik")
}

#' @export
deviance.lmmfit_agg <- function(object, REML = NULL, ...) {
    if (is.null(REML)) REML <- object$REML
    if (isTRUE(REML)) {
        if (!object$REML) stop("REML criterion is not available for an ML fit", call. = FALSE)
        return(object$deviance_value)
    }
    -2 * as.numeric(logLik(object, REML = FALSE))
}

## An ML refit from the statistics (anova's likelihood-ratio tests).
agg_refit_ml <- function(object) {
    if (!object$REML) return(object)
    out <- agg_fit_object(object$stats, FALSE, object$control, object$formula, object$call)
    out$call$REML <- FALSE
    out
}

## Methods that need the rows: a message naming the method.
needs_rows <- function(method) {
    force(method)
    function(...) stop(sprintf(paste0("%s() needs the data's rows, which a fit from aggregates (a database table, ",
                                      "files or lmmfit_stats()) does not hold: fit the rows in memory, or compute ",
                                      "it where the data are (y - predict(fit, newdata = rows))"), method),
                       call. = FALSE)
}
#' @export
residuals.lmmfit_agg <- needs_rows("residuals")
#' @export
fitted.lmmfit_agg <- needs_rows("fitted")
#' @export
simulate.lmmfit_agg <- needs_rows("simulate")
#' @export
refit.lmmfit_agg <- needs_rows("refit")
#' @export
model.frame.lmmfit_agg <- needs_rows("model.frame")
#' @export
model.matrix.lmmfit_agg <- needs_rows("model.matrix")
#' @export
plot.lmmfit_agg <- needs_rows("plot")
#' @export
influence.lmmfit_agg <- needs_rows("influence")
#' @export
hatvalues.lmmfit_agg <- needs_rows("hatvalues")
#' @export
cooks.distance.lmmfit_agg <- needs_rows("cooks.distance")
#' @export
rstudent.lmmfit_agg <- needs_rows("rstudent")
#' @export
weights.lmmfit_agg <- needs_rows("weights")
#' @export
update.lmmfit_agg <- needs_rows("update")

#' @export
confint.lmmfit_agg <- function(object, parm, level = 0.95, method = c("Wald", "boot", "profile"), ...) {
    method <- match.arg(method)
    if (method == "boot") needs_rows("confint(method = \"boot\")")()
    NextMethod()
}

#' @export
predict.lmmfit_agg <- function(object, newdata = NULL, re.form = NULL, allow.new.levels = FALSE, ...) {
    if (is.null(newdata)) needs_rows("predict without 'newdata'")()
    if (length(list(...))) stop(sprintf("predict() of a fit from aggregates does not take %s",
                                        paste0("'", names(list(...)), "'", collapse = ", ")), call. = FALSE)
    random <- is.null(re.form)
    if (!random && !(length(re.form) == 1L && is.na(re.form)))
        stop("predict() of a fit from aggregates takes re.form = NULL (all terms) or NA (none)", call. = FALSE)
    newdata <- as.data.frame(newdata)
    parsed <- parse_lmm_formula(object$formula)
    tt <- delete.response(terms(parsed$fixed))
    mf <- model.frame(tt, newdata, na.action = stats::na.pass, xlev = object$xlev)
    X <- model.matrix(tt, mf)
    miss <- setdiff(names(object$beta), colnames(X))
    if (length(miss)) stop(sprintf("cannot build fixed-effect column%s %s from 'newdata'",
                                   if (length(miss) > 1L) "s" else "", paste(miss, collapse = ", ")), call. = FALSE)
    eta <- drop(X[, names(object$beta), drop = FALSE] %*% object$beta)
    if (random) {
        b <- random_effects(object)
        specs <- parsed$terms[object$formula_pos]
        for (j in seq_along(object$reterms)) {
            t <- object$reterms[[j]]; s <- specs[[j]]
            Z <- re_model_matrix(s$lhs, newdata, t$group)
            g <- as.character(eval_grouping(s$group, newdata, parsed$env))
            idx <- match(g, levels(t$factor))
            if (anyNA(idx[!is.na(g)]) && !allow.new.levels)
                stop(sprintf("new levels of '%s' in 'newdata' (%s): use allow.new.levels = TRUE", t$group,
                             paste(head(unique(g[is.na(idx) & !is.na(g)]), 3L), collapse = ", ")), call. = FALSE)
            contrib <- rowSums(Z * b[[j]][idx, colnames(Z), drop = FALSE])
            eta <- eta + ifelse(is.na(idx) & !is.na(g), 0, contrib)
        }
    }
    setNames(eta, rownames(newdata))
}

## Made-up rows with the fit's factor levels and its fixed-effects columns
## (their model matrix and frame): what depends on the coding alone, as the
## term-to-column map and the type 3 contrasts, is computed on them.  The
## values are deterministic (no RNG): numeric variables in (1, 2), factors
## cycling through their levels at different strides.
AGG_DESIGN_MIN_ROWS <- 200L
AGG_DESIGN_MAX_ROWS <- 20000L       # enough to span any model matrix one would F-test
agg_design_rows <- function(object) {
    tt <- delete.response(object$fixed_terms)
    vars <- all.vars(object$fixed_terms)          # the response's too (term_contrasts() wants it)
    xlev <- object$xlev
    n <- min(AGG_DESIGN_MAX_ROWS, max(AGG_DESIGN_MIN_ROWS, 10L * length(object$beta), 3 * prod(lengths(xlev))))
    i <- seq_len(n)
    frame <- lapply(seq_along(vars), function(k) {
        v <- vars[k]; stride <- c(1L, 3L, 7L, 11L, 13L, 17L)[(k - 1L) %% 6L + 1L]
        lev <- if (!is.null(xlev[[v]])) xlev[[v]] else xlev[[sprintf("factor(%s)", v)]]
        if (is.null(lev)) return(1 + ((i * (2 * k + 1)) %% 101) / 101)
        vals <- lev[((i - 1L) %/% stride) %% length(lev) + 1L]
        if (!is.null(xlev[[v]])) factor(vals, levels = lev) else as.numeric(vals)
    })
    frame <- stats::setNames(as.data.frame(frame), vars)
    X <- model.matrix(tt, model.frame(tt, frame, xlev = xlev))
    if (!identical(colnames(X), names(object$beta)) || qr(X)$rank < ncol(X))
        stop("the fixed-effects columns cannot be rebuilt from the fit's levels for F tests", call. = FALSE)
    list(X = X, frame = frame)
}

## X'X of the data, from the statistics (in the data's units).
agg_xtx <- function(object) {
    p <- length(object$beta)
    matrix(object$xprod$AXX, p + 1L)[seq_len(p), seq_len(p), drop = FALSE]
}
