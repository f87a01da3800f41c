## Small-study effects and publication bias for one random effect per study
## (metafor's rma): Egger's regression test of funnel-plot asymmetry (Egger et
## al. 1997, in its meta-regression form, Sterne and Egger 2005) and Duval and
## Tweedie's (2000a, 2000b) trim-and-fill.  Every refit is the fit's own model
## (method, test, level, control), so that the random-effects analysis stays a
## "random-random" one.

## The predictors of the regression test and how print() names them.
BIAS_PREDICTORS <- c(sei = "standard error", vi = "sampling variance", ni = "sample size",
                     ninv = "inverse of the sample size")

## The predictors whose value 0 is a study of infinite precision: only for
## them is the intercept a "limit estimate".
BIAS_LIMIT_PREDICTORS <- c("sei", "vi", "ninv")

## A trimmed data set must keep this many studies for its fit to estimate a
## mean and tau^2 at all.
BIAS_MIN_KEPT <- 3L

#' Regression test for funnel-plot asymmetry
#'
#' Egger's regression test in its meta-regression form (the default of
#' \pkg{metafor}'s \code{regtest}, \code{model = "rma"}): the fitted model is
#' refitted by the same method and test with the standard error (or another
#' measure of precision) added as a moderator, and its coefficient is tested.
#' A slope different from zero means that small studies report different
#' effects from large ones, as publication bias would make them.  For the
#' predictors that are 0 for a study of infinite precision (\code{"sei"},
#' \code{"vi"}, \code{"ninv"}) in a model without other moderators, the
#' intercept is reported as the "limit estimate" (PET for \code{"sei"},
#' PEESE for \code{"vi"}).
#'
#' @param x a \code{metafit} fit with one random effect per study (or a
#'   common-effect model) and independent effects.
#' @param predictor \code{"sei"} (standard errors, the default), \code{"vi"}
#'   (sampling variances), \code{"ni"} (sample sizes) or \code{"ninv"} (their
#'   inverse).
#' @param ni the studies' sample sizes, in the rows of the fit, for
#'   \code{predictor = "ni"} or \code{"ninv"}.
#' @param ... unused.
#' @details A generic, so that \pkg{metafor}'s \code{regtest} (which masks it
#'   when metafor is attached later) also dispatches here once the method is
#'   registered with metafor's generic.  Moderators already in the model stay
#'   in it: the test is then of asymmetry beyond them, and there is no limit
#'   estimate.
#' @return An object of class \code{"regtest.metafit"}: \code{predictor},
#'   \code{zval} (the z or t statistic of the predictor), \code{pval},
#'   \code{dfs} (the t test's degrees of freedom, \code{NA} for z),
#'   \code{est}, \code{ci.lb}, \code{ci.ub} (the limit estimate and its
#'   interval, or \code{NULL}), \code{level}, and \code{fit}, the refitted
#'   model.
#' @references Egger M, Davey Smith G, Schneider M, Minder C (1997) Bias in
#'   meta-analysis detected by a simple, graphical test. BMJ 315, 629-634.
#'   Sterne JAC, Egger M (2005) Regression methods to detect publication and
#'   other bias in meta-analysis. In Rothstein HR, Sutton AJ, Borenstein M
#'   (eds) Publication Bias in Meta-Analysis, Wiley, 99-110.
#' @examples
#' ## small studies published only when significant: asymmetry
#' set.seed(1)
#' d <- data.frame(vi = runif(60, 0.004, 0.25))
#' d$yi <- rnorm(60, 0.2, sqrt(d$vi + 0.02))
#' d <- d[d$yi / sqrt(d$vi) > 1.96 | d$vi < 0.04, ]
#' d$study <- seq_len(nrow(d))
#' fit <- metafit(yi ~ 1 + (1 | study), vi = vi, data = d)
#' regtest(fit)
#' regtest(fit, predictor = "vi")
#' @export
regtest <- function(x, ...) UseMethod("regtest")

#' @rdname regtest
#' @export
regtest.metafit <- function(x, predictor = c("sei", "vi", "ni", "ninv"), ni = NULL, ...) {
    meta_require_uni(x, "regtest()", "x")
    bias_no_dots(list(...), "regtest()")
    predictor <- match.arg(predictor)
    m <- x$model
    z <- bias_predictor(m, predictor, ni)
    mods <- meta_has_moderators(x)
    refit <- bias_refit(x, m$y, m$vi, m$slab, extra = z, keep_X = mods)
    ## the row of one coefficient (coef_table is column-wise: a data frame or a list)
    coef_row <- function(i) lapply(refit$coef_table, function(column) unname(column[[i]]))
    slope <- coef_row(length(refit$beta))
    limit <- if (!mods && predictor %in% BIAS_LIMIT_PREDICTORS) coef_row(1L)
    structure(list(model = "rma", predictor = predictor, zval = slope$stat, pval = slope$pval,
                   dfs = refit$ddf, est = if (!is.null(limit)) limit$estimate,
                   ci.lb = if (!is.null(limit)) limit$ci.lb, ci.ub = if (!is.null(limit)) limit$ci.ub,
                   level = x$level, fe = !meta_is_random(x), fit = refit),
              class = "regtest.metafit")
}

#' @export
print.regtest.metafit <- function(x, digits = 4L, ...) {
    fmt <- function(v) formatC(v, digits = digits, format = "f")
    p <- if (x$pval < 10^-digits) paste("<", sub("^0", "", fmt(10^-digits))) else paste("=", fmt(x$pval))
    stat <- if (is.na(x$dfs)) sprintf("z = %s", fmt(x$zval))
            else sprintf("t = %s, df = %d", fmt(x$zval), as.integer(x$dfs))
    cat("\nRegression Test for Funnel Plot Asymmetry\n\n")
    cat(sprintf("Model:     %s meta-regression model\n", if (x$fe) "fixed-effects" else "mixed-effects"))
    cat(sprintf("Predictor: %s\n\n", BIAS_PREDICTORS[[x$predictor]]))
    cat(sprintf("Test for Funnel Plot Asymmetry: %s, p %s\n", stat, p))
    if (!is.null(x$est))
        cat(sprintf("%-32sb = %s (CI: %s, %s)\n", sprintf("Limit Estimate (as %s -> 0):", x$predictor),
                    fmt(x$est), fmt(x$ci.lb), fmt(x$ci.ub)))
    cat("\n")
    invisible(x)
}

bias_no_dots <- function(dots, what) {
    if (length(dots))
        stop(sprintf("%s: unused argument%s %s", what, if (length(dots) > 1L) "s" else "",
                     paste(names(dots), collapse = ", ")), call. = FALSE)
}


bias_predictor <- function(m, predictor, ni) {
    if (predictor %in% c("sei", "vi"))
        return(if (predictor == "sei") sqrt(m$vi) else m$vi)
    if (is.null(ni))
        stop(sprintf("predictor = \"%s\" needs the sample sizes: give 'ni', one per study of the fit",
                     predictor), call. = FALSE)
    if (!is.numeric(ni) || length(ni) != m$k || any(!is.finite(ni)) || any(ni <= 0))
        stop(sprintf("'ni' must be %d positive sample sizes, in the rows of the fit", m$k), call. = FALSE)
    if (predictor == "ni") as.double(ni) else 1 / as.double(ni)
}

## The fit's model on new data: effects y with variances vi, optionally the
## fit's moderator matrix (keep_X) and one extra moderator (last
## coefficient), by metafit() with the same method, test, level and control.
bias_refit <- function(x, y, vi, slab, extra = NULL, keep_X = FALSE) {
    d <- data.frame(yi = y, vi = vi, study = seq_along(y))
    fixed <- if (keep_X) "0 + X" else "1"
    if (keep_X) d$X <- x$model$X
    if (!is.null(extra)) { d$bias_predictor <- extra; fixed <- paste(fixed, "+ bias_predictor") }
    random <- if (x$model$fe_only) "" else " + (1 | study)"
    f <- stats::as.formula(paste("yi ~", fixed, random))
    metafit(f, vi = vi, data = d, method = x$method, test = x$test, level = x$level, slab = slab,
            control = x$control)
}

#' Trim-and-fill analysis
#'
#' Duval and Tweedie's nonparametric trim-and-fill method: estimates the
#' number \eqn{k_0} of studies missing on one side of the funnel plot, as
#' the most extreme results on the other side would be if they had been
#' suppressed, imputes them as the mirror images of those extreme studies
#' about the estimate without them, and refits the model to the augmented
#' data, as \pkg{metafor}'s \code{trimfill} does.
#'
#' The side, unless given, is the one the regression test points to: the
#' model refitted with the standard errors as moderator (\code{\link{regtest}})
#' has a negative slope when large effects are missing (studies are imputed
#' on the right), else they are imputed on the left.  Then, starting from
#' \eqn{k_0 = 0}, the estimate without the \eqn{k_0} most extreme studies
#' centres all effects, and the ranks of their absolute deviations give the
#' new \eqn{k_0}: \eqn{L_0 = (4 T - k(k+1)) / (2k - 1)} from the Wilcoxon sum
#' \eqn{T} of the ranks of positive deviations (rounded), or \eqn{R_0 =
#' \gamma - 1} from the length \eqn{\gamma} of the run of positive
#' deviations at the top of the ranking; until \eqn{k_0} no longer changes.
#' The standard error of \eqn{L_0} is Duval and Tweedie's variance of
#' \eqn{T}, evaluated at the unrounded \eqn{L_0} (\code{NA} when that is so
#' far below 0 that the variance is negative); that of \eqn{R_0} is
#' \eqn{\sqrt{2 k_0 + 2}}, with the p-value \eqn{2^{-(k_0 + 1)}} of no
#' missing studies.  Every fit uses the method and test of \code{x}.
#'
#' @param x a \code{metafit} fit without moderators (random-effects or
#'   common-effect) with independent effects.
#' @param side \code{"left"} or \code{"right"}: where the missing studies
#'   are imputed; \code{NULL} (default) to choose it from the regression test.
#' @param estimator \code{"L0"} (default) or \code{"R0"}.
#' @param maxiter the maximum number of trim-and-estimate iterations.
#' @param ... unused.
#' @details A generic, so that \pkg{metafor}'s \code{trimfill} (which masks
#'   it when metafor is attached later) also dispatches here once the method
#'   is registered with metafor's generic.  The method should be read as a
#'   sensitivity analysis, not as a corrected estimate.
#' @return The fit to the augmented data (observed studies first, then the
#'   filled ones), of class \code{c("metafit_trimfill", "metafit")}, with
#'   also \code{k0}, \code{se.k0}, \code{p.k0} (\code{R0} only, else
#'   \code{NA}), \code{side}, \code{estimator} and \code{fill} (logical:
#'   which rows are filled).  \code{\link{funnel_plot}} draws the filled
#'   studies as open circles.
#' @references Duval S, Tweedie R (2000a) Trim and fill: a simple
#'   funnel-plot-based method of testing and adjusting for publication bias
#'   in meta-analysis. Biometrics 56, 455-463.  Duval S, Tweedie R (2000b) A
#'   nonparametric "trim and fill" method of accounting for publication bias
#'   in meta-analysis. JASA 95, 89-98.
#' @examples
#' set.seed(1)
#' d <- data.frame(vi = runif(60, 0.004, 0.25))
#' d$yi <- rnorm(60, 0.2, sqrt(d$vi + 0.02))
#' d <- d[d$yi / sqrt(d$vi) > 1.96 | d$vi < 0.04, ]
#' d$study <- seq_len(nrow(d))
#' fit <- metafit(yi ~ 1 + (1 | study), vi = vi, data = d)
#' tf <- trimfill(fit)
#' tf
#' funnel_plot(tf)
#' @export
trimfill <- function(x, ...) UseMethod("trimfill")

#' @rdname trimfill
#' @export
trimfill.metafit <- function(x, side = NULL, estimator = c("L0", "R0"), maxiter = 100, ...) {
    meta_require_uni(x, "trimfill()", "x")
    bias_no_dots(list(...), "trimfill()")
    m <- x$model
    if (meta_has_moderators(x))
        stop(sprintf(paste0("trimfill() is for a model without moderators (an intercept only); this fit has ",
                            "%s"), paste(setdiff(colnames(m$X), "(Intercept)"), collapse = ", ")),
             call. = FALSE)
    estimator <- match.arg(estimator)
    if (!is.numeric(maxiter) || length(maxiter) != 1L || !is.finite(maxiter) || maxiter < 1)
        stop("'maxiter' must be a positive number of iterations", call. = FALSE)
    side <- if (is.null(side)) bias_side(x) else match.arg(side, c("left", "right"))
    est <- tf_estimate_k0(x, side, estimator, maxiter)
    out <- if (est$k0 == 0L) x else tf_fill(x, est, side)
    out[c("k0", "se.k0", "p.k0", "side", "estimator", "fill")] <-
        list(est$k0, est$se, est$p, side, estimator, rep(c(FALSE, TRUE), c(m$k, est$k0)))
    class(out) <- c("metafit_trimfill", "metafit")
    out
}

## Missing studies are on the side opposite to the excess the sei slope shows.
bias_side <- function(x) {
    refit <- bias_refit(x, x$model$y, x$model$vi, x$model$slab, extra = sqrt(x$model$vi))
    if (refit$beta[[2L]] < 0) "right" else "left"
}

## The iteration on k0.  Effects are put on the scale where studies are
## missing on the left (signs flipped for side "right": the models fitted are
## symmetric in the sign of the effects), so that the trimmed studies are
## always the largest; centre, the estimate without them, stays on the
## effects' own scale.
tf_estimate_k0 <- function(x, side, estimator, maxiter) {
    flip <- if (side == "right") -1 else 1
    y <- flip * x$model$y
    k <- length(y)
    by_size <- order(y)
    k0 <- 0L
    for (iter in seq_len(maxiter)) {
        kept <- by_size[seq_len(k - k0)]
        centre <- (if (k0 == 0L) x else meta_refit_rows(x, sort(kept)))$beta[[1L]]
        ranks <- tf_signed_ranks(y - flip * centre)
        k0_new <- tf_k0(ranks, k, estimator)
        if (k0_new$k0 == k0) break
        if (k - k0_new$k0 < BIAS_MIN_KEPT)
            stop(sprintf("trim and fill would trim %d of %d studies: too few remain to estimate the mean",
                         k0_new$k0, k), call. = FALSE)
        k0 <- k0_new$k0
        if (iter == maxiter)
            warning(sprintf("trim and fill did not settle on k0 in maxiter = %d iterations", maxiter),
                    call. = FALSE)
    }
    c(k0_new, list(trimmed = utils::tail(by_size, k0), centre = centre))
}

## The ranks of the absolute deviations, with the deviations' signs (ties
## share their mean rank, as in Wilcoxon's statistic).
tf_signed_ranks <- function(dev) sign(dev) * rank(abs(dev))

## k0 from the signed ranks, with its standard error (and for R0 the
## p-value of k0 = 0: under symmetry the top run is geometric, P(run >= j)
## = 2^-j).
tf_k0 <- function(ranks, k, estimator) {
    if (estimator == "L0") {
        wilcoxon <- sum(ranks[ranks > 0])
        L0 <- (4 * wilcoxon - k * (k + 1)) / (2 * k - 1)
        ## Duval and Tweedie's (2000b) variance of the Wilcoxon sum when L0
        ## studies are missing
        var_w <- (k * (k + 1) * (2 * k + 1) + 10 * L0^3 + 27 * L0^2 + 17 * L0 - 18 * k * L0^2 -
                  18 * k * L0 + 6 * k^2 * L0) / 24
        ## (the polynomial turns negative for L0 far below 0, where the model
        ## of missing studies does not hold: no standard error then)
        se <- if (var_w >= 0) 4 * sqrt(var_w) / (2 * k - 1) else NA_real_
        list(k0 = max(0L, as.integer(round(L0))), se = se, p = NA_real_)
    } else {
        top_run <- k - max(c(0, abs(ranks[ranks < 0])))
        k0 <- max(0L, as.integer(round(top_run - 1)))
        list(k0 = k0, se = sqrt(2 * k0 + 2), p = 0.5^(k0 + 1))
    }
}

## The k0 most extreme studies mirrored about the estimate without them, and
## the fit to the observed and filled studies together.
tf_fill <- function(x, est, side) {
    m <- x$model
    idx <- est$trimmed
    y_fill <- 2 * est$centre - m$y[idx]
    labels <- c(m$slab, paste("Filled", seq_along(idx)))
    fit <- bias_refit(x, c(m$y, y_fill), c(m$vi, m$vi[idx]), labels)
    fit$call <- x$call
    fit
}

#' @export
print.metafit_trimfill <- function(x, digits = 4L, ...) {
    fmt <- function(v) formatC(v, digits = digits, format = "f")
    lead <- sprintf("Estimated number of missing studies on the %s side:", x$side)
    cat(sprintf("\n%s %d (SE = %s)\n", lead, x$k0, fmt(x$se.k0)))
    if (!is.na(x$p.k0))
        cat(sprintf("%-*s p-val = %s\n", nchar(lead),
                    sprintf("Test of H0: no missing studies on the %s side:", x$side), fmt(x$p.k0)))
    print.metafit(x, digits = digits, ...)
    invisible(x)
}
