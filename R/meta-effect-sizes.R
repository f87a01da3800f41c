## Effect sizes and their sampling variances from the studies' raw results:
## the step before any meta-analysis (metafor's escalc for the common measures).

EFFECT_MEASURES <- c("RR", "OR", "RD", "SMD", "MD", "ZCOR")
## The arguments each measure takes (2 x 2 counts: ai, bi events and
## non-events in group 1, ci, di in group 2; bi and di may be given as the
## group totals n1i and n2i instead).
EFFECT_ARGS <- list(counts = c("ai", "bi", "ci", "di", "n1i", "n2i"),
                    means = c("m1i", "m2i", "sd1i", "sd2i", "n1i", "n2i"),
                    cor = c("ri", "ni"))

#' Effect sizes and sampling variances from study results
#'
#' Computes each study's effect size \code{yi} and its sampling variance
#' \code{vi}, the input of \code{\link{metafit}}: the log risk ratio
#' (\code{"RR"}), log odds ratio (\code{"OR"}) and risk difference
#' (\code{"RD"}) from 2 x 2 counts, the standardized mean difference with
#' Hedges' exact small-sample correction (\code{"SMD"}, Hedges' g, large-sample
#' variance) and the raw mean difference (\code{"MD"}) from means, SDs and
#' group sizes, and Fisher's z of a correlation (\code{"ZCOR"}).
#'
#' For the 2 x 2 measures, \code{add} is added to every cell of the studies
#' \code{to} names: \code{"only0"} (default) those with a zero cell,
#' \code{"all"} every study, \code{"if0all"} every study when any has a zero
#' cell, \code{"none"} none (a zero cell then gives an infinite or undefined
#' log ratio).  These are metafor's \code{escalc} defaults.
#'
#' @param measure one of \code{"RR"}, \code{"OR"}, \code{"RD"}, \code{"SMD"},
#'   \code{"MD"}, \code{"ZCOR"}.
#' @param ai,bi,ci,di 2 x 2 counts: events and non-events in group 1 (treated)
#'   and group 2 (control).
#' @param n1i,n2i group sizes (for the 2 x 2 measures, in place of \code{bi}
#'   and \code{di}).
#' @param m1i,m2i,sd1i,sd2i group means and standard deviations.
#' @param ri,ni correlations and sample sizes.
#' @param data optional data frame in which the arguments are evaluated; its
#'   columns are returned with \code{yi} and \code{vi} appended.
#' @param add the continuity correction added to the cells (default 1/2).
#' @param to which studies get it (see Details).
#' @return A data frame of class \code{c("effect_sizes", "data.frame")} with
#'   columns \code{yi} and \code{vi} (after the columns of \code{data}) and
#'   attribute \code{"measure"}.
#' @references Borenstein M, Hedges LV, Higgins JPT, Rothstein HR (2009)
#'   Introduction to Meta-Analysis. Wiley.  Hedges LV (1981) Distribution
#'   theory for Glass's estimator of effect size and related estimators.
#'   J Educ Stat 6, 107-128.
#' @examples
#' es <- effect_sizes("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
#' head(es)
#' effect_sizes("SMD", m1i = 10.2, m2i = 9.1, sd1i = 2, sd2i = 2.3, n1i = 20, n2i = 22)
#' @export
effect_sizes <- function(measure, ai, bi, ci, di, n1i, n2i, m1i, m2i, sd1i, sd2i, ri, ni,
                         data = NULL, add = 1 / 2, to = c("only0", "all", "if0all", "none")) {
    if (!is.character(measure) || length(measure) != 1L || !measure %in% EFFECT_MEASURES)
        stop(sprintf("'measure' must be one of %s", paste0("\"", EFFECT_MEASURES, "\"", collapse = ", ")),
             call. = FALSE)
    to <- match.arg(to)
    family <- switch(measure, RR = , OR = , RD = "counts", SMD = , MD = "means", ZCOR = "cor")
    mc <- match.call()
    given <- intersect(unlist(EFFECT_ARGS), names(mc))
    foreign <- setdiff(given, EFFECT_ARGS[[family]])
    if (length(foreign))
        stop(sprintf("measure \"%s\" does not take %s", measure, paste0("'", foreign, "'", collapse = ", ")),
             call. = FALSE)
    env <- parent.frame()
    args <- lapply(setNames(given, given), function(a) eval(mc[[a]], data, env))
    es <- switch(family, counts = effect_counts(measure, args, add, to), means = effect_means(measure, args),
                 cor = effect_cor(args))
    if (anyNA(es$yi) || anyNA(es$vi))
        warning(sprintf("%d stud%s with missing values: yi and vi are NA there", sum(is.na(es$yi + es$vi)),
                        if (sum(is.na(es$yi + es$vi)) == 1L) "y" else "ies"), call. = FALSE)
    out <- if (is.null(data)) data.frame(yi = es$yi, vi = es$vi)
           else { d <- as.data.frame(data); d$yi <- es$yi; d$vi <- es$vi; d }
    structure(out, class = c("effect_sizes", "data.frame"), measure = measure)
}

## The arguments a measure needs, numeric, of one length, within range.
effect_inputs <- function(args, needed, measure) {
    missing_args <- setdiff(needed, names(args))
    if (length(missing_args))
        stop(sprintf("measure \"%s\" needs %s", measure, paste0("'", missing_args, "'", collapse = ", ")),
             call. = FALSE)
    x <- args[needed]
    if (!all(vapply(x, is.numeric, NA))) stop(sprintf("the arguments of \"%s\" must be numeric", measure),
                                              call. = FALSE)
    if (length(unique(lengths(x))) != 1L)
        stop(sprintf("the arguments of \"%s\" have different lengths", measure), call. = FALSE)
    lapply(x, as.double)
}

## 2 x 2 counts: the correction, then the log ratio or difference and its
## delta-method variance.
effect_counts <- function(measure, args, add, to) {
    if (!"bi" %in% names(args) && all(c("ai", "n1i") %in% names(args))) args$bi <- args$n1i - args$ai
    if (!"di" %in% names(args) && all(c("ci", "n2i") %in% names(args))) args$di <- args$n2i - args$ci
    x <- effect_inputs(args, c("ai", "bi", "ci", "di"), measure)
    cells <- do.call(cbind, x)
    if (any(cells < 0, na.rm = TRUE))
        stop("counts must be non-negative (events cannot exceed the group size)", call. = FALSE)
    if (!is.numeric(add) || length(add) != 1L || !is.finite(add) || add < 0)
        stop("'add' must be one non-negative number", call. = FALSE)
    zero <- apply(cells == 0, 1L, any)
    zero[is.na(zero)] <- FALSE
    fix <- switch(to, only0 = zero, all = rep(TRUE, nrow(cells)), if0all = rep(any(zero), nrow(cells)),
                  none = rep(FALSE, nrow(cells)))
    cells[fix, ] <- cells[fix, ] + add
    a <- cells[, 1L]; b <- cells[, 2L]; c <- cells[, 3L]; d <- cells[, 4L]
    n1 <- a + b; n2 <- c + d
    switch(measure,
           RR = list(yi = log(a / n1) - log(c / n2), vi = 1 / a - 1 / n1 + 1 / c - 1 / n2),
           OR = list(yi = log(a * d / (b * c)), vi = 1 / a + 1 / b + 1 / c + 1 / d),
           RD = list(yi = a / n1 - c / n2, vi = a * b / n1^3 + c * d / n2^3))
}

## Hedges' exact correction J(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2)),
## m = n1 + n2 - 2 (about 1 - 3 / (4m - 1)).
hedges_correction <- function(m) exp(lgamma(m / 2) - log(m / 2) / 2 - lgamma((m - 1) / 2))

effect_means <- function(measure, args) {
    x <- effect_inputs(args, c("m1i", "m2i", "sd1i", "sd2i", "n1i", "n2i"), measure)
    if (any(x$sd1i <= 0 | x$sd2i <= 0, na.rm = TRUE)) stop("standard deviations must be positive", call. = FALSE)
    if (any(x$n1i < 2 | x$n2i < 2, na.rm = TRUE)) stop("group sizes must be at least 2", call. = FALSE)
    n1 <- x$n1i; n2 <- x$n2i
    if (measure == "MD")
        return(list(yi = x$m1i - x$m2i, vi = x$sd1i^2 / n1 + x$sd2i^2 / n2))
    sp <- sqrt(((n1 - 1) * x$sd1i^2 + (n2 - 1) * x$sd2i^2) / (n1 + n2 - 2))
    g <- hedges_correction(n1 + n2 - 2) * (x$m1i - x$m2i) / sp
    list(yi = g, vi = 1 / n1 + 1 / n2 + g^2 / (2 * (n1 + n2)))
}

effect_cor <- function(args) {
    x <- effect_inputs(args, c("ri", "ni"), "ZCOR")
    if (any(abs(x$ri) >= 1, na.rm = TRUE)) stop("correlations must lie strictly between -1 and 1", call. = FALSE)
    if (any(x$ni <= 3, na.rm = TRUE)) stop("Fisher's z needs sample sizes above 3", call. = FALSE)
    list(yi = atanh(x$ri), vi = 1 / (x$ni - 3))
}
