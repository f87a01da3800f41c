## Within/between decomposition of covariates: wb(x, g) in an lmmfit formula.

#' Within/between decomposition of a covariate in an lmmfit formula
#'
#' In the fixed part of an \code{\link{lmmfit}} formula, \code{wb(x, g)} splits
#' the covariate \code{x} into two columns: \code{x_between}, the mean of
#' \code{x} in the row's group of \code{g}, and \code{x_within}, the deviation
#' \code{x - x_between} (Mundlak 1978; Bell and Jones 2015).  The coefficient
#' of \code{x_within} is the fixed-effects ("within") estimate of the slope,
#' the same as \code{lm(y ~ x + g)} gives; that of \code{x_between} is the
#' slope across group means.  Their difference is what
#' \code{\link{hausman}(fit, method = "mundlak")} tests.
#'
#' The columns are named after the variable: \code{wb(x, g)} gives
#' \code{x_between} and \code{x_within}; for an expression such as
#' \code{wb(log(x), g)} the names are \code{`log(x)_between`} and
#' \code{`log(x)_within`} (the coefficients keep the backticks, as R names
#' any non-syntactic variable).  Several covariates may be decomposed
#' (\code{wb(x1, g) + wb(x2, g)}) and \code{wb()} terms may enter interactions
#' (\code{wb(x, g):z} expands to \code{x_between:z + x_within:z}).  \code{g}
#' may be a factor, a character, integer or logical vector; it must have no
#' missing values.  \code{x} must be numeric.  The group means are computed in
#' C in one pass over the rows.
#'
#' \strong{Which rows enter the group means.}  The means are computed over
#' the rows of \code{data} that have no missing value in \code{x} (rows with a
#' missing \code{g} are an error), \emph{before} \code{subset} and
#' \code{na.action} act on the model frame.  So rows removed by \code{subset},
#' or dropped because another variable of the model (the response, say) is
#' missing, still count in the group means of \code{x}: \code{x_between} is
#' the mean of the whole group in \code{data}.  To have means over the fitted
#' rows only, subset \code{data} (and drop its incomplete rows) before calling
#' \code{lmmfit}.
#'
#' \strong{Prediction.}  \code{predict(fit, newdata)} rebuilds the two
#' columns from the \emph{training} group means: a row of a group seen in
#' training gets that group's training mean as \code{x_between} (and
#' \code{x - mean} as \code{x_within}).  A row of a group not seen in training
#' gets the new group's own mean of \code{x} over the rows of \code{newdata}.
#'
#' Outside an lmmfit formula \code{wb()} has no meaning: calling it is an error.
#'
#' @param x a numeric covariate.
#' @param g the grouping variable (factor, character, integer or logical).
#' @return Nothing: \code{wb()} is only a marker inside \code{lmmfit}
#'   formulas, and calling it directly signals an error.  The fitted model
#'   stores what prediction needs (per \code{wb()} term the variable, the
#'   grouping variable and the training group means) as \code{fit$wb}.
#' @references Mundlak, Y. (1978). On the pooling of time series and cross
#'   section data. \emph{Econometrica} 46, 69--85.
#'
#'   Bell, A. and Jones, K. (2015). Explaining fixed effects: random effects
#'   modeling of time-series cross-sectional and panel data.
#'   \emph{Political Science Research and Methods} 3, 133--153.
#' @seealso \code{\link{hausman}}, \code{\link{fixed_vs_random}}
#' @examples
#' d <- data.frame(y = c(-0.5, 0, 0.5, -0.6, 0, 0.6, -0.2, 0.1, 0.4, -0.5, -0.1, 0.4),
#'                 x = c(2, 3, 4, -4, -3, -2, 13, 14, 15, -15, -14, -13),
#'                 f = factor(rep(1:4, each = 3)))
#' fit <- lmmfit(y ~ wb(x, f) + (1 | f), data = d)
#' fixef(fit)
#' @export
wb <- function(x, g) {
    stop("wb() is only meaningful inside an lmmfit() formula, as in ",
         "lmmfit(y ~ wb(x, g) + (1 | g), data): there it splits x into its group ",
         "means (x_between) and the deviations from them (x_within)", call. = FALSE)
}

## Is e a call to wb() (or lmmfit::wb())?
is_wb_call <- function(e) {
    if (!is.call(e)) return(FALSE)
    h <- e[[1L]]
    identical(h, quote(wb)) ||
        (is.call(h) && (identical(h[[1L]], quote(`::`)) || identical(h[[1L]], quote(`:::`))) &&
         identical(h[[2L]], quote(lmmfit)) && identical(h[[3L]], quote(wb)))
}

## All wb() calls in an expression; a wb() inside a random-effects bar is an error.
find_wb <- function(e, in_bar = FALSE) {
    if (!is.call(e)) return(list())
    if (is_wb_call(e)) {
        if (in_bar)
            stop("wb() can only be used in the fixed part of the formula, not inside a ",
                 "random-effects term (x | g); the columns x_between and x_within it ",
                 "creates may be named in random-effects terms", call. = FALSE)
        return(list(e))
    }
    bar <- is_bar(e)
    out <- list()
    for (i in seq_along(e)[-1L]) out <- c(out, find_wb(e[[i]], in_bar || bar))
    out
}

## wb(x, g) with its arguments matched by name or position.
wb_args <- function(e) {
    h <- e[[1L]]
    e[[1L]] <- quote(wb)
    m <- tryCatch(match.call(function(x, g) NULL, e), error = function(err)
        stop(sprintf("wb() takes two arguments, the covariate and the grouping variable: %s",
                     deparse1(e)), call. = FALSE))
    if (is.null(m$x) || is.null(m$g) || length(m) != 3L)
        stop(sprintf("wb() takes two arguments, the covariate and the grouping variable, as in wb(x, g): %s",
                     deparse1(e)), call. = FALSE)
    list(x = m$x, g = m$g)
}

## Replace every wb() call in e by the matching `(x_between + x_within)`.
replace_wb <- function(e, keys, repl) {
    if (!is.call(e)) return(e)
    if (is_wb_call(e)) {
        a <- wb_args(e)
        k <- paste(deparse1(a$x), deparse1(a$g), sep = "\r")
        return(repl[[match(k, keys)]])
    }
    for (i in seq_along(e)[-1L]) if (!is.null(e[[i]])) e[[i]] <- replace_wb(e[[i]], keys, repl)
    e
}

## Evaluate a wb() argument in data, with the formula's environment behind it.
wb_eval <- function(expr, data, env, what) {
    tryCatch(eval(expr, data, env), error = function(e)
        stop(sprintf("wb(): cannot evaluate the %s '%s': %s", what, deparse1(expr),
                     conditionMessage(e)), call. = FALSE))
}

wb_check_x <- function(x, xname) {
    if (is.factor(x) || !is.numeric(x) || !is.null(dim(x)))
        stop(sprintf(paste0("wb(): the covariate '%s' must be a numeric vector, not %s; ",
                            "a factor or character variable has no group mean"),
                     xname, if (is.factor(x)) "a factor" else if (!is.null(dim(x))) "a matrix"
                             else paste("of type", typeof(x))), call. = FALSE)
    as.double(x)
}

wb_check_g <- function(g, gname, n, xname) {
    if (!is.null(dim(g)) || !(is.atomic(g) && !is.null(g)))
        stop(sprintf("wb(): the grouping variable '%s' must be a factor or a vector", gname),
             call. = FALSE)
    if (length(g) != n)
        stop(sprintf("wb(): the covariate '%s' has %d values but the grouping variable '%s' has %d",
                     xname, n, gname, length(g)), call. = FALSE)
    if (anyNA(g))
        stop(sprintf(paste0("wb(): the grouping variable '%s' has %d missing value%s: ",
                            "every row must belong to a group (remove those rows from data first)"),
                     gname, sum(is.na(g)), if (sum(is.na(g)) > 1L) "s" else ""), call. = FALSE)
    if (is.factor(g)) droplevels(g) else factor(g)
}

## The C decomposition: list(means, between, within) for x and a factor g.
wb_decompose <- function(x, g) {
    .Call(C_lmm_wb, as.double(x), as.integer(g), nlevels(g))
}

## NULL when the formula has no wb() term; otherwise list(formula, data, info)
## with the wb() calls replaced by ordinary columns of the augmented data.
wb_expand <- function(formula, data, env) {
    if (!inherits(formula, "formula")) return(NULL)
    calls <- find_wb(formula[[length(formula)]])
    if (!length(calls)) return(NULL)
    if (length(formula) == 3L && length(find_wb(formula[[2L]])))
        stop("wb() cannot be used in the response", call. = FALSE)
    fenv <- environment(formula)
    if (is.null(fenv)) fenv <- env
    if (!is.null(data) && !is.list(data) && !is.environment(data))
        data <- as.data.frame(data)
    nrow_data <- if (is.data.frame(data)) nrow(data) else NA_integer_

    keys <- character()
    info <- list()
    cols <- list()
    for (cl in calls) {
        a <- wb_args(cl)
        key <- paste(deparse1(a$x), deparse1(a$g), sep = "\r")
        if (key %in% keys) next
        xname <- deparse1(a$x)
        gname <- deparse1(a$g)
        bn <- paste0(xname, "_between")
        wn <- paste0(xname, "_within")
        if (bn %in% names(cols)) {
            other <- info[[match(bn, vapply(info, `[[`, "", "between"))]]
            stop(sprintf(paste0("wb(%s, %s) and wb(%s, %s) would both create the columns %s and %s: ",
                                "decompose each covariate by one grouping variable"),
                         xname, other$gname, xname, gname, bn, wn), call. = FALSE)
        }
        x <- wb_check_x(wb_eval(a$x, data, fenv, "covariate"), xname)
        if (!is.na(nrow_data) && length(x) != nrow_data)
            stop(sprintf("wb(): the covariate '%s' has %d values but data has %d rows",
                         xname, length(x), nrow_data), call. = FALSE)
        g <- wb_check_g(wb_eval(a$g, data, fenv, "grouping variable"), gname, length(x), xname)
        d <- wb_decompose(x, g)
        means <- setNames(d$means, levels(g))
        keys <- c(keys, key)
        cols[[bn]] <- d$between
        cols[[wn]] <- d$within
        info[[length(info) + 1L]] <- list(x = a$x, g = a$g, xname = xname, gname = gname,
                                          between = bn, within = wn, means = means)
    }
    repl <- lapply(info, function(i) call("(", call("+", as.name(i$between), as.name(i$within))))

    ## The augmented data: the wb() columns added to data (or, without data,
    ## a data frame of those columns alone; other variables come from the
    ## formula's environment as usual).
    if (is.null(data) || is.environment(data)) {
        if (is.environment(data))
            stop("wb(): 'data' must be a data frame or a list when the formula has wb() terms",
                 call. = FALSE)
        data <- as.data.frame(cols, optional = TRUE)
        names(data) <- names(cols)
    } else {
        clash <- intersect(names(cols), names(data))
        if (length(clash))
            warning(sprintf("wb(): the column%s %s of data %s replaced by the wb() decomposition",
                            if (length(clash) > 1L) "s" else "", paste(clash, collapse = ", "),
                            if (length(clash) > 1L) "are" else "is"), call. = FALSE)
        for (nm in names(cols)) data[[nm]] <- cols[[nm]]
    }
    newformula <- formula
    newformula[[length(formula)]] <- replace_wb(formula[[length(formula)]], keys, repl)
    environment(newformula) <- fenv
    list(formula = newformula, data = data, info = info)
}

## newdata with the wb() columns a fitted model needs, from its training means.
## Rows of groups seen in training use the training mean; rows of a group
## not seen in training use that group's own mean of x in newdata.  A row
## with a missing group (or missing x) gets NA in both columns.
wb_newdata <- function(object, newdata) {
    info <- object$wb
    if (is.null(info) || !length(info)) return(newdata)
    if (!is.list(newdata)) newdata <- as.data.frame(newdata)
    env <- environment(object$formula)
    if (is.null(env)) env <- parent.frame()
    for (i in info) {
        x <- wb_check_x(wb_eval(i$x, newdata, env, "covariate"), i$xname)
        g <- wb_eval(i$g, newdata, env, "grouping variable")
        if (!is.null(dim(g)) || length(g) != length(x))
            stop(sprintf("wb(): in newdata the covariate '%s' has %d values but the grouping variable '%s' has %d",
                         i$xname, length(x), i$gname, NROW(g)), call. = FALSE)
        gc <- as.character(g)
        between <- unname(i$means[match(gc, names(i$means))])
        new <- !is.na(gc) & !(gc %in% names(i$means))
        if (any(new)) {
            gn <- factor(gc[new])
            between[new] <- wb_decompose(x[new], gn)$between
        }
        newdata[[i$between]] <- between
        newdata[[i$within]] <- x - between
    }
    newdata
}
