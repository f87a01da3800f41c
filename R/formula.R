## Parsing lme4's formula syntax: random-effect bars -> terms.

is_bar <- function(e) {
    is.call(e) && (identical(e[[1L]], quote(`|`)) || identical(e[[1L]], quote(`||`)))
}

## The bar terms of a right-hand side, in the order they appear: only bars
## reached through `+` and parentheses count, as in lme4.
find_bars <- function(e) {
    if (!is.call(e)) return(list())
    if (is_bar(e)) return(list(e))
    head <- e[[1L]]
    if (identical(head, quote(`(`))) return(find_bars(e[[2L]]))
    if (identical(head, quote(`+`)))
        return(c(find_bars(e[[2L]]), if (length(e) > 2L) find_bars(e[[3L]])))
    list()
}

## The right-hand side without its bar terms (NULL when nothing is left).
drop_bars <- function(e) {
    if (!is.call(e)) return(e)
    if (is_bar(e)) return(NULL)
    head <- e[[1L]]
    if (identical(head, quote(`(`))) {
        inner <- drop_bars(e[[2L]])
        if (is.null(inner)) return(NULL)
        e[[2L]] <- inner
        return(e)
    }
    if (identical(head, quote(`+`)) && length(e) == 3L) {
        l <- drop_bars(e[[2L]])
        r <- drop_bars(e[[3L]])
        if (is.null(l)) return(r)
        if (is.null(r)) return(l)
        e[[2L]] <- l
        e[[3L]] <- r
    }
    e
}

## Every bar replaced by `+`, so that model.frame() collects all variables.
bars_to_plus <- function(e) {
    if (!is.call(e)) return(e)
    if (is_bar(e)) e[[1L]] <- quote(`+`)
    for (i in seq_along(e)[-1L]) if (!is.null(e[[i]])) e[[i]] <- bars_to_plus(e[[i]])
    e
}

## `a/b/c` -> list(a, b:a, c:b:a), named as lme4 names the nested factors.
expand_slash <- function(g) {
    if (is.call(g) && identical(g[[1L]], quote(`/`))) {
        outer <- expand_slash(g[[2L]])
        last <- outer[[length(outer)]]
        return(c(outer, list(call(":", g[[3L]], last))))
    }
    list(g)
}

## One (lhs, group) pair per random-effects term, with `||` split into one
## term per column and nested grouping expanded.
expand_bars <- function(bars) {
    out <- list()
    for (b in bars) {
        lhs <- b[[2L]]
        groups <- expand_slash(b[[3L]])
        lhss <- if (identical(b[[1L]], quote(`||`))) split_double_bar(lhs) else list(lhs)
        for (g in groups) for (l in lhss) out[[length(out) + 1L]] <- list(lhs = l, group = g)
    }
    out
}

split_double_bar <- function(lhs) {
    tt <- terms(eval(call("~", lhs)))
    labs <- attr(tt, "term.labels")
    ans <- lapply(labs, function(l) call("+", 0, str2lang(l)))
    if (attr(tt, "intercept") == 1L) ans <- c(list(1), ans)
    if (!length(ans)) stop("a '||' term has no columns", call. = FALSE)
    ans
}

## The pieces of a mixed-model formula.  random_optional: a model with a
## residual structure may have no random effects (nlme's gls).
parse_lmm_formula <- function(formula, random_optional = FALSE) {
    if (!inherits(formula, "formula") || length(formula) != 3L)
        stop("'formula' must be a two-sided formula such as y ~ x + (1 | g)", call. = FALSE)
    rhs <- formula[[3L]]
    bars <- find_bars(rhs)
    if (!length(bars) && !random_optional)
        stop("no random-effects terms in the formula: add one such as (1 | group), ",
             "or give a residual structure (correlation or a variance function in weights) ",
             "for a generalised least-squares fit, or use lm()", call. = FALSE)
    fixed_rhs <- drop_bars(rhs)
    if (is.null(fixed_rhs)) fixed_rhs <- 1
    env <- environment(formula)
    fixed <- formula
    fixed[[3L]] <- fixed_rhs
    frame <- formula
    frame[[3L]] <- bars_to_plus(rhs)
    list(fixed = fixed, frame = frame, terms = expand_bars(bars), env = env)
}

## A model-frame formula with extra variables (expressions) added to its right side.
add_frame_terms <- function(frame, exprs) {
    for (e in exprs) frame[[3L]] <- call("+", frame[[3L]], e)
    frame
}
