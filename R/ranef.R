## Conditional modes of the random effects, in lme4's layout.

## Group the per-term pieces by grouping factor, in the order the factors
## first appear among the (sorted) terms: lme4's flist order.
term_groups <- function(object) {
    g <- vapply(object$reterms, `[[`, "", "group")
    split(seq_along(g), factor(g, levels = unique(g)))
}

#' Random effects of an lmmfit model
#'
#' The conditional modes of the random effects (\eqn{b = \Lambda u}), one data
#' frame per grouping factor, as \code{lme4::ranef}.  Several terms on the same
#' factor, for example \code{(Days || Subject)}, are combined into one data
#' frame with one column per random-effects column.
#'
#' With \code{condVar = TRUE} each data frame carries the conditional
#' covariances of its random effects given the data and the estimates, as the
#' attribute \code{postVar}: a \code{k x k x nlevels} array when the factor has
#' one term, or a list of such arrays (one per term) when it has several,
#' named as lme4 names them.  They are \eqn{\sigma^2 \lambda [(L_Z L_Z')^{-1}]
#' \lambda'} per level, computed in C from the blocked Cholesky factor.
#'
#' @param object a fitted \code{lmmfit} model.
#' @param condVar logical: attach the conditional covariances (attribute
#'   \code{postVar}).
#' @param drop logical: return named vectors instead of data frames for
#'   factors with a single column.
#' @param whichel names of the grouping factors to return (default all).
#' @param postVar a deprecated synonym of \code{condVar}, as in lme4.
#' @param ... ignored.
#' @return A list of class \code{"ranef.lmmfit"}: one data frame per grouping
#'   factor (rows: levels; columns: random-effects columns).
#' @seealso \code{\link{coef.lmmfit}}
#' @examples
#' data(Orthodont, package = "nlme")
#' fit <- lmmfit(distance ~ age + (age | Subject), data = Orthodont)
#' re <- ranef(fit)
#' head(re$Subject)
#' dim(attr(re$Subject, "postVar"))
#' @method ranef lmmfit
#' @export
ranef.lmmfit <- function(object, condVar = TRUE, drop = FALSE, whichel = NULL,
                         postVar = FALSE, ...) {
    condVar <- isTRUE(condVar) || isTRUE(postVar)
    if (is_gls(object)) return(structure(list(), class = "ranef.lmmfit"))
    b <- random_effects(object)
    cv <- if (condVar) .Call(C_lmm_condvar, object$xprod, object$theta)
    s2 <- sigma(object)^2
    groups <- term_groups(object)
    if (is.null(whichel)) whichel <- names(groups)
    bad <- setdiff(whichel, names(groups))
    if (length(bad))
        stop(sprintf("'whichel' names no grouping factor of the model: %s",
                     paste(bad, collapse = ", ")), call. = FALSE)
    out <- lapply(groups[whichel], function(idx) {
        df <- as.data.frame(do.call(cbind, b[idx]), check.names = FALSE,
                            stringsAsFactors = FALSE)
        if (condVar) {
            pv <- lapply(idx, function(j) {
                a <- cv[[j]] * s2
                dimnames(a) <- NULL
                a
            })
            if (length(idx) == 1L) {
                pv <- pv[[1L]]
            } else {
                ## lme4 names the list by coercing each term's column names
                ## to one string, e.g. 'c("(Intercept)", "Days")'.
                names(pv) <- as.character(lapply(b[idx], colnames))
            }
            attr(df, "postVar") <- pv
        }
        df
    })
    if (drop) {
        out <- lapply(out, function(df) {
            if (ncol(df) != 1L) return(df)
            v <- setNames(df[[1L]], rownames(df))
            if (!is.null(attr(df, "postVar"))) attr(v, "postVar") <- attr(df, "postVar")
            v
        })
    }
    structure(out, class = "ranef.lmmfit")
}

#' @rdname ranef.lmmfit
#' @param x a \code{"ranef.lmmfit"} object.
#' @export
print.ranef.lmmfit <- function(x, ...) {
    cv <- vapply(x, function(el) !is.null(attr(el, "postVar")), NA)
    print(lapply(unclass(x), function(el) {
        attr(el, "postVar") <- NULL
        el
    }), ...)
    if (any(cv))
        cat("with conditional variances for", paste(dQuote(names(x)[cv]), collapse = ", "), "\n")
    invisible(x)
}

#' @rdname ranef.lmmfit
#' @param row.names,optional ignored.
#' @return \code{as.data.frame} gives lme4's long layout: columns
#'   \code{grpvar}, \code{term}, \code{grp}, \code{condval} and (with
#'   conditional variances) \code{condsd}.
#' @export
as.data.frame.ranef.lmmfit <- function(x, row.names = NULL, optional = FALSE, ...) {
    pieces <- lapply(names(x), function(g) {
        df <- x[[g]]
        if (!is.data.frame(df)) stop("as.data.frame() needs ranef(drop = FALSE)", call. = FALSE)
        pv <- attr(df, "postVar")
        sds <- NULL
        if (!is.null(pv)) {
            arrs <- if (is.list(pv)) pv else list(pv)
            sds <- do.call(cbind, lapply(arrs, function(a)
                matrix(sqrt(apply(a, 3L, diag)), nrow = dim(a)[3L], byrow = dim(a)[1L] > 1L)))
        }
        res <- data.frame(grpvar = g,
                          term = factor(rep(colnames(df), each = nrow(df)), levels = colnames(df)),
                          ## lme4 orders the levels by the first column's values
                          grp = factor(rep(rownames(df), ncol(df)),
                                       levels = rownames(df)[order(df[[1L]])]),
                          condval = unlist(df, use.names = FALSE),
                          stringsAsFactors = FALSE)
        if (!is.null(sds)) res$condsd <- as.vector(sds)
        res
    })
    out <- do.call(rbind, pieces)
    rownames(out) <- NULL
    out
}

#' Coefficients per group of an lmmfit model
#'
#' Fixed effects plus the random effects of each level, one data frame per
#' grouping factor, in the layout of lme4's \code{coef} method: every
#' fixed-effect column is present (random-only columns come first, filled with
#' the random effect alone).
#'
#' @param object a fitted \code{lmmfit} model.
#' @param ... ignored.
#' @return A list of data frames of class \code{"coef.lmmfit"}.
#' @examples
#' data(Orthodont, package = "nlme")
#' fit <- lmmfit(distance ~ age + (age | Subject), data = Orthodont)
#' head(coef(fit)$Subject)
#' @export
coef.lmmfit <- function(object, ...) {
    fe <- fixef(object)
    re <- ranef(object, condVar = FALSE)
    rnames <- unique(unlist(lapply(re, colnames)))
    extra <- setdiff(rnames, names(fe))
    base <- c(setNames(rep(0, length(extra)), extra), fe)
    out <- lapply(re, function(r) {
        m <- matrix(base, nrow(r), length(base), byrow = TRUE,
                    dimnames = list(rownames(r), names(base)))
        for (cn in colnames(r)) m[, cn] <- m[, cn] + r[[cn]]
        as.data.frame(m, check.names = FALSE)
    })
    structure(out, class = "coef.lmmfit")
}

#' @rdname coef.lmmfit
#' @param x a \code{"coef.lmmfit"} object.
#' @export
print.coef.lmmfit <- function(x, ...) {
    print(unclass(x), ...)
    invisible(x)
}
