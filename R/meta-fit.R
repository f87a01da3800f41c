## Meta-analysis with known sampling variances (DESIGN.md section 9): the
## Gaussian mixed model with the residual covariance known, V = diag(vi) or a
## block per study, fitted by the same statistics, factor and optimizer as
## lmmfit() with sigma fixed at 1.

META_METHODS <- c("REML", "ML", "DL", "PM", "HE", "SJ", "FE")
META_MOMENT_METHODS <- c("DL", "PM", "HE", "SJ")
META_TESTS <- c("z", "t", "knha")

#' Meta-analysis and meta-regression with known sampling variances
#'
#' Fits the random-effects (or common-effect) meta-analysis model
#' \eqn{y_i = x_i'\beta + z_i'b + e_i}, \eqn{e \sim N(0, V)} with \eqn{V}
#' known, \eqn{b \sim N(0, \Sigma(\theta))}, as \code{metafor::rma} (one
#' random effect per study) and \code{metafor::rma.mv} (multilevel and
#' dependent effects) do, with the formula syntax of \code{\link{lmmfit}}:
#' \code{yi ~ 1 + (1 | study)} is the random-effects model, moderators on the
#' right make it a meta-regression, \code{(1 | district/school)} a
#' three-level model, \code{(0 + outcome | trial)} with \code{V} a model for
#' dependent (multivariate) effects, and a formula without random terms the
#' common-effect ("fixed-effect") model.
#'
#' The fit is the package's linear mixed model with the residual variance
#' known: weights \eqn{1/v_i} (or the rows whitened by the Cholesky factor of
#' each study's block of \code{V}) and sigma fixed at 1, so that a grouping
#' factor may have one level per effect.  REML and ML are optimised by the
#' engine of \code{lmmfit}; the moment estimators of \eqn{\tau^2}
#' (DerSimonian-Laird, Paule-Mandel, Hedges, Sidik-Jonkman) are for one random
#' effect per study, as in \code{rma}.
#'
#' @param formula a two-sided formula: effect sizes on the left, moderators
#'   and random-effects terms on the right.
#' @param vi the known sampling variances, one per effect (evaluated in
#'   \code{data}).
#' @param V alternatively, the known covariance matrix of the effects (in the
#'   rows' order), block diagonal by study: a matrix, or a list of the blocks
#'   in the order of the rows.
#' @param data a data frame.
#' @param method \code{"REML"} (default), \code{"ML"}, \code{"DL"}
#'   (DerSimonian-Laird), \code{"PM"} (Paule-Mandel), \code{"HE"} (Hedges),
#'   \code{"SJ"} (Sidik-Jonkman) or \code{"FE"} (the common-effect model).
#' @param test \code{"z"} (normal), \code{"t"} (t with k - p df) or
#'   \code{"knha"} (Knapp-Hartung: t with k - p df and the variance of the
#'   estimates scaled by the weighted residual mean square).
#' @param level confidence level (0.95, or 95 as metafor accepts).
#' @param subset optional expression selecting the effects to use.
#' @param na.action \code{na.omit} (default: effects with missing values are
#'   dropped with a warning) or \code{na.fail}.
#' @param slab optional study labels (evaluated in \code{data}).
#' @param control a list from \code{\link{lmmfit_control}}.
#' @return An object of class \code{"metafit"}.
#' @references DerSimonian R, Laird N (1986) Meta-analysis in clinical
#'   trials. Controlled Clinical Trials 7, 177-188.  Viechtbauer W (2005)
#'   Bias and efficiency of meta-analytic variance estimators in the
#'   random-effects model. J Educ Behav Stat 30, 261-293.  Knapp G, Hartung J
#'   (2003) Improved tests for a random effects meta-regression with a single
#'   covariate. Stat Med 22, 2693-2710.
#' @examples
#' ## seed 003's example: the 13 BCG trials' log risk ratios
#' es <- effect_sizes("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
#' fit <- metafit(yi ~ 1 + (1 | trial), vi = vi, data = es)
#' fit
#' meta_weights(fit)
#' predict(fit, transf = exp)
#' ## meta-regression on latitude, Knapp-Hartung test
#' metafit(yi ~ ablat + (1 | trial), vi = vi, data = es, test = "knha")
#' @export
metafit <- function(formula, vi, V, data = NULL, method = "REML", test = "z", level = 0.95,
                    subset, na.action, slab, control = lmmfit_control()) {
    call <- match.call()
    method_given <- !missing(method)
    method <- meta_choice(method, META_METHODS, "method")
    test <- meta_choice(test, META_TESTS, "test")
    level <- meta_level(level)
    if (missing(vi) == missing(V))
        stop("give the known sampling variances as exactly one of 'vi' (one per effect) or 'V' ",
             "(their covariance matrix)", call. = FALSE)
    md <- meta_data(formula, call, data, parent.frame(), if (!missing(V)) V)
    if (!length(md$specs) && method != "FE") {
        if (method_given)
            stop(sprintf(paste0("method = \"%s\" estimates between-study variance, but the formula has no ",
                                "random-effects term: add one such as (1 | study), or use method = \"FE\""),
                         method), call. = FALSE)
        method <- "FE"
    }
    meta_fit_data(md, method, test, level, control, call, formula)
}

## The fit from the prepared data (metafit(), and refits on subsets).
meta_fit_data <- function(md, method, test, level, control, call = NULL, formula = NULL) {
    model <- meta_model(md, method, test)
    fit <- meta_fit_engine(model, method, control)
    fit <- meta_inference(fit, model, method, test, level)
    fit$R2 <- meta_r2(fit, model, method, control)
    structure(c(fit, list(call = call, formula = formula, method = method, test = test,
                          level = level, model = model, data = md, control = control)),
              class = "metafit")
}

## The share of heterogeneity the moderators account for (rma's R^2): tau^2
## of the model without them against tau^2 with them, in percent, at least 0.
meta_r2 <- function(fit, model, method, control) {
    if (!model$uni || model$p == 1L || method == "FE" || !"(Intercept)" %in% colnames(model$X))
        return(NULL)
    X0 <- model$X[, "(Intercept)", drop = FALSE]
    tau2_0 <- if (method %in% META_MOMENT_METHODS) meta_moment_tau2(method, model$y, model$vi, X0)$tau2
    else {
        st <- stats_from_data(X0, model$y, 1 / model$vi, NULL, model$terms)
        model0 <- model
        model0$X <- X0
        fit_from_stats(st, model$terms, REML = method != "ML", control, theta0 = meta_theta_start(model0),
                       sigma = 1)$theta[[1L]]^2
    }
    if (tau2_0 <= 0) return(0)
    max(0, 100 * (tau2_0 - fit$tau2) / tau2_0)
}

meta_choice <- function(x, choices, what) {
    if (!is.character(x) || length(x) != 1L || !x %in% choices)
        stop(sprintf("'%s' must be one of %s", what, paste0("\"", choices, "\"", collapse = ", ")),
             call. = FALSE)
    x
}

## metafor accepts a level as a percentage too
meta_level <- function(level) {
    if (!is.numeric(level) || length(level) != 1L || !is.finite(level) || level <= 0 || level == 1 ||
        level >= 100)
        stop("'level' must be a number in (0, 1) (or a percentage in (1, 100))", call. = FALSE)
    if (level > 1) level / 100 else level
}

## The effects, their variances, moderators and random terms after subset
## and missing values.
meta_data <- function(formula, call, data, env, V) {
    formula <- lme4_formula(formula, data, env)
    if (!inherits(formula, "formula") || length(formula) != 3L)
        stop("'formula' must be two-sided, such as yi ~ 1 + (1 | study)", call. = FALSE)
    rhs <- formula[[3L]]
    bars <- find_bars(rhs)
    fixed <- formula
    fixed[[3L]] <- if (is.null(drop_bars(rhs))) 1 else drop_bars(rhs)
    frame_formula <- formula
    frame_formula[[3L]] <- bars_to_plus(rhs)
    mf <- call[c(1L, match(c("data", "subset", "vi", "slab"), names(call), 0L))]
    mf[[1L]] <- quote(stats::model.frame)
    mf$formula <- frame_formula
    mf$na.action <- quote(stats::na.pass)
    mf$drop.unused.levels <- TRUE
    ## which rows survive subset and missing values, to take V's
    if (!is.null(V)) mf$.row <- seq_len(if (is.list(V) && !is.data.frame(V))
                                            sum(vapply(V, NROW, 1L)) else NROW(V))
    frame <- if (is.null(V)) meta_simple_frame(frame_formula, data, call)
    if (is.null(frame)) frame <- meta_drop_missing(eval(mf, env), call, env)
    k <- nrow(frame)
    y <- frame[[1L]]
    if (!is.numeric(y) || !is.null(dim(y)))
        stop("the effect sizes (the formula's left side) must be a numeric vector", call. = FALSE)
    if (k < 2L) stop(sprintf("a meta-analysis needs at least two effects (k = %d)", k), call. = FALSE)
    vi <- frame[["(vi)"]]
    V <- if (!is.null(V)) meta_known_cov(V, frame[["(.row)"]])
    ## a diagonal V is the sampling variances
    if (!is.null(V) && V$diag) { vi <- V$vi; V <- NULL }
    if (is.null(V)) meta_check_vi(vi)
    fixed_terms <- terms(fixed, data = frame)
    X <- if (identical(fixed[[3L]], 1)) matrix(1, k, 1L, dimnames = list(NULL, "(Intercept)"))
         else drop_aliased(model.matrix(fixed_terms, frame))
    if (k <= ncol(X))
        stop(sprintf("%d effects cannot estimate %d coefficients", k, ncol(X)), call. = FALSE)
    slab <- frame[["(slab)"]]
    ## row names need unique labels: repeated ones get a suffix
    slab <- if (is.null(slab)) as.character(seq_len(k)) else make.unique(as.character(slab))
    list(y = as.double(y), vi = if (is.null(V)) as.double(vi), V = V, X = X, frame = frame,
         fixed_terms = fixed_terms, specs = expand_bars(bars), env = environment(formula),
         slab = slab)
}

## The model frame of the common case without model.frame()'s cost (a
## small meta-analysis spends more there than in the fit): every variable a
## plain column of data, vi and slab too, no subset, nothing missing.  NULL
## otherwise.
meta_simple_frame <- function(frame_formula, data, call) {
    if (!is.data.frame(data) || any(c("subset", "na.action") %in% names(call))) return(NULL)
    extras <- call[intersect(c("vi", "slab"), names(call))]
    if (!all(vapply(extras, is.name, NA))) return(NULL)
    tt <- terms(frame_formula)
    vars <- as.list(attr(tt, "variables"))[-1L]
    if (!all(vapply(vars, is.name, NA))) return(NULL)
    vars <- c(vapply(vars, as.character, ""), vapply(extras, as.character, ""))
    if (!all(vars %in% names(data))) return(NULL)
    ## the columns themselves (.subset2: a data frame subclass's `[` method,
    ## escalc's for one, costs more than the whole fit)
    cols <- lapply(vars, function(v) .subset2(data, v))
    for (v in cols)
        if (!is.null(dim(v)) || (if (is.factor(v)) !.Call(C_lmm_levels_used, v) else anyNA(v))) return(NULL)
    names(cols) <- c(head(vars, length(vars) - length(extras)), paste0("(", names(extras), ")"))
    structure(cols, class = "data.frame", row.names = .set_row_names(length(cols[[1L]])), terms = tt)
}

## Effects with a missing value in any variable are dropped with a warning,
## as metafor does; na.action = na.fail stops instead.
meta_drop_missing <- function(frame, call, env) {
    ok <- stats::complete.cases(frame)
    if (all(ok)) return(frame)
    act <- if ("na.action" %in% names(call)) eval(call$na.action, env) else stats::na.omit
    if (is.character(act)) act <- get(act, mode = "function")
    if (identical(act, stats::na.fail))
        stop(sprintf("%d effects have missing values (effect size, 'vi' or a moderator)", sum(!ok)),
             call. = FALSE)
    if (!identical(act, stats::na.omit) && !identical(act, stats::na.exclude))
        stop("'na.action' must be na.omit, na.exclude or na.fail", call. = FALSE)
    warning(sprintf("%d effect%s with missing values omitted from the fit", sum(!ok),
                    if (sum(!ok) > 1L) "s" else ""), call. = FALSE)
    frame[ok, , drop = FALSE]
}

meta_check_vi <- function(vi) {
    if (is.null(vi) || !is.numeric(vi)) stop("'vi' must be numeric: the sampling variances", call. = FALSE)
    if (any(!is.finite(vi))) stop("'vi' has non-finite values", call. = FALSE)
    bad <- which(vi <= 0)
    if (length(bad))
        stop(sprintf(paste0("the sampling variances must be positive: %d %s zero or negative ",
                            "(effect%s %s)"), length(bad), if (length(bad) > 1L) "are" else "is",
                     if (length(bad) > 1L) "s" else "", paste(utils::head(bad, 10L), collapse = ", ")),
             call. = FALSE)
}
