## The fixed-effects counterpart of a random-intercept model, and the two
## coefficient tables side by side.

## The random-effects term with an intercept for the grouping factor `group`
## (by default the only grouping factor with a random intercept).
intercept_term <- function(fit, group = NULL, caller) {
    has_int <- vapply(fit$reterms, function(t) "(Intercept)" %in% colnames(t$Z), NA)
    labels <- paste0("(", vapply(fit$reterms, `[[`, "", "label"), ")", collapse = ", ")
    if (!any(has_int))
        stop(sprintf(paste0("%s needs a model with a random intercept, such as y ~ x + (1 | g); ",
                            "this model's random-effects terms, %s, have none"), caller, labels),
             call. = FALSE)
    groups <- vapply(fit$reterms[has_int], `[[`, "", "group")
    if (is.null(group)) {
        if (length(unique(groups)) > 1L)
            stop(sprintf("%s: several grouping factors have random intercepts (%s); choose one with 'group'",
                         caller, paste(unique(groups), collapse = ", ")), call. = FALSE)
        group <- groups[1L]
    } else if (!is.character(group) || length(group) != 1L || !(group %in% groups)) {
        stop(sprintf("%s: 'group' must name a grouping factor with a random intercept: one of %s",
                     caller, paste(unique(groups), collapse = ", ")), call. = FALSE)
    }
    fit$reterms[has_int][[match(group, groups)]]
}

## Columns of X (other than the intercept) that vary within the levels of g:
## the ones a model with g as a fixed effect can estimate.  A column is
## constant within groups when its within part is negligible beside it.
time_varying <- function(X, g) {
    cn <- colnames(X)
    keep <- vapply(seq_len(ncol(X)), function(j) {
        if (cn[j] == "(Intercept)") return(FALSE)
        x <- X[, j]
        w <- wb_decompose(x, g)$within
        nx <- sqrt(sum(x^2))
        nx > 0 && sqrt(sum(w^2)) > 1e-7 * nx
    }, NA)
    cn[keep]
}

## lm() of the fixed part with the grouping factor of `term` as a fixed effect
## (sum contrasts, so that the intercept is the mean over groups), on the
## fitted model's rows, weights and offset.  Columns constant within groups
## are left out: the group effects absorb them.
fe_counterpart_fit <- function(fit, term) {
    X <- fit$X
    g <- term$factor
    tv <- time_varying(X, g)
    y <- fit$y
    if (!is.null(fit$offset)) y <- y - fit$offset
    d <- data.frame(.y = y, X[, tv, drop = FALSE], .g = g, check.names = FALSE)
    xn <- if (length(tv)) paste0(".x", seq_along(tv)) else character()
    names(d) <- c(".y", xn, ".g")
    rhs <- paste(c(if (!("(Intercept)" %in% colnames(X))) "0", xn, ".g"), collapse = " + ")
    args <- list(formula = stats::as.formula(paste(".y ~", rhs), env = baseenv()), data = d,
                 contrasts = list(.g = "contr.sum"))
    if (!is.null(fit$weights)) {
        d$.w <- fit$weights
        args$data <- d
        args$weights <- quote(.w)
    }
    lmf <- do.call(stats::lm, args)
    ## Back to the model's own names: its columns, and the group's name for
    ## the group effects (as lm(y ~ x + g) would name them).
    nm <- names(lmf$coefficients)
    ix <- match(nm, xn)
    nm[!is.na(ix)] <- tv[ix[!is.na(ix)]]
    isg <- startsWith(nm, ".g")
    nm[isg] <- paste0(term$group, substring(nm[isg], 3L))
    names(lmf$coefficients) <- nm
    if (!is.null(lmf$effects)) names(lmf$effects)[seq_along(nm)] <- nm[lmf$qr$pivot]
    lmf$call <- call("lm", str2lang(paste(deparse1(fit$formula[[2L]]), "~",
                                          paste(c(if (length(tv)) tv else NULL, term$group),
                                                collapse = " + "))))
    list(lm = lmf, time_varying = tv, group = term$group)
}

#' Fixed or random: a mixed model beside its fixed-effects counterpart
#'
#' Refits a random-intercept \code{lmmfit} model with the grouping factor as a
#' fixed effect, by \code{\link[stats]{lm}} with sum contrasts for the group
#' (so that its intercept is the mean over groups, the quantity the mixed
#' model's intercept estimates), and shows the estimates and standard errors
#' of the two models side by side for the coefficients they share.
#'
#' The fixed-effects model uses the same rows, weights and offset as the
#' mixed model.  Covariates constant within every group (group-level
#' covariates) are absorbed by the group effects: they are left out of the
#' fixed-effects model and listed in the printout.  Other random-effects
#' terms of the mixed model (random slopes, other grouping factors) have no
#' counterpart in the fixed-effects model.
#'
#' The slopes of covariates that vary within groups typically have nearly the
#' same standard errors in the two models, while the intercept's standard
#' error is far smaller in the fixed-effects model: there it is the precision
#' of the mean of \emph{these} groups, in the mixed model that of the mean of
#' the population of groups they were drawn from.
#'
#' @param fit a fitted \code{lmmfit} model with a random intercept.
#' @param group the grouping factor to treat as fixed, as named in the
#'   formula; needed only when several grouping factors have random intercepts.
#' @return An object of class \code{"fixed_vs_random"}: a list with
#'   \code{table} (a matrix with columns \code{Mixed.Estimate},
#'   \code{Mixed.Std.Error}, \code{Fixed.Estimate}, \code{Fixed.Std.Error} for
#'   the shared coefficients), \code{lm} (the fixed-effects fit),
#'   \code{mixed} (the mixed model), \code{group}, and \code{absorbed} (the
#'   coefficients the fixed-effects model cannot estimate).
#' @seealso \code{\link{hausman}}, \code{\link{wb}}
#' @examples
#' set.seed(1)
#' d <- do.call(rbind, lapply(1:10, function(p) {
#'     x <- rnorm(10) + p
#'     data.frame(x = x, y = -x + 10 + 2 * p + rnorm(10, sd = 0.1), p = p)
#' }))
#' d$p <- factor(d$p)
#' fixed_vs_random(lmmfit(y ~ x + (1 | p), data = d))
#' @export
fixed_vs_random <- function(fit, group = NULL) {
    if (!inherits(fit, "lmmfit")) stop("'fit' must be a model fitted by lmmfit()", call. = FALSE)
    term <- intercept_term(fit, group, "fixed_vs_random()")
    fe <- fe_counterpart_fit(fit, term)
    bf <- stats::coef(fe$lm)
    shared <- intersect(names(fit$beta), names(bf)[!is.na(bf)])
    Vm <- vcov(fit)
    Vf <- stats::vcov(fe$lm)
    tab <- cbind(Mixed.Estimate = fit$beta[shared], Mixed.Std.Error = sqrt(diag(Vm))[shared],
                 Fixed.Estimate = bf[shared], Fixed.Std.Error = sqrt(diag(Vf))[shared])
    rownames(tab) <- shared
    others <- vapply(fit$reterms, function(t) !identical(t, term), NA)
    structure(list(table = tab, lm = fe$lm, mixed = fit, group = fe$group,
                   absorbed = setdiff(names(fit$beta), shared),
                   other_terms = vapply(fit$reterms[others], `[[`, "", "label"),
                   sigma = c(mixed = sigma(fit), fixed = stats::sigma(fe$lm))),
              class = "fixed_vs_random")
}

#' @rdname fixed_vs_random
#' @param x a \code{fixed_vs_random} object.
#' @param digits significant digits.
#' @param ... ignored.
#' @export
print.fixed_vs_random <- function(x, digits = max(3L, getOption("digits") - 3L), ...) {
    cat(sprintf("Random intercepts (1 | %s) vs %s as a fixed effect (lm, sum contrasts)\n\n",
                x$group, x$group))
    tab <- x$table
    ## each model's estimates and standard errors formatted together, so that
    ## they share their number of decimals
    pair <- function(est, se) {
        f <- format(c(est, se), digits = digits)
        list(f[seq_along(est)], f[length(est) + seq_along(se)])
    }
    cols <- c(pair(tab[, 1L], tab[, 2L]), pair(tab[, 3L], tab[, 4L]))
    heads <- c("Estimate", "Std. Error", "Estimate", "Std. Error")
    widths <- mapply(function(v, h) max(nchar(c(v, h))), cols, heads)
    rn <- rownames(tab)
    wr <- max(nchar(c(rn, "")))
    gap <- "    "
    line <- function(r, cells)
        paste0(formatC(r, width = -wr), " ", formatC(cells[1L], width = widths[1L]), " ",
               formatC(cells[2L], width = widths[2L]), gap,
               formatC(cells[3L], width = widths[3L]), " ", formatC(cells[4L], width = widths[4L]))
    cat(formatC("", width = wr), " ",
        formatC("Mixed model", width = -(widths[1L] + widths[2L] + 1L)), gap,
        "Fixed effects (lm)\n", sep = "")
    cat(line("", heads), "\n", sep = "")
    for (i in seq_along(rn))
        cat(line(rn[i], vapply(cols, `[`, "", i)), "\n", sep = "")
    cat(sprintf("\nResidual std. error: mixed %s, fixed %s\n",
                format(x$sigma[["mixed"]], digits = digits), format(x$sigma[["fixed"]], digits = digits)))
    if (length(x$absorbed))
        cat(sprintf("Absorbed by the %s effects (constant within %s): %s\n", x$group, x$group,
                    paste(x$absorbed, collapse = ", ")))
    if (length(x$other_terms))
        cat(sprintf("Random-effects terms without a fixed-effects counterpart: %s\n",
                    paste0("(", x$other_terms, ")", collapse = ", ")))
    invisible(x)
}
