## Random-effects terms: grouping factors and their model matrices, in the
## order the C core wants them (decreasing number of levels).

build_reterms <- function(specs, frame, env) {
    n <- nrow(frame)
    terms <- lapply(specs, function(s) {
        gname <- deparse1(s$group)
        g <- tryCatch(eval(s$group, frame, env), error = function(e)
            stop(sprintf("cannot evaluate the grouping factor '%s': %s", gname,
                         conditionMessage(e)), call. = FALSE))
        if (length(g) != n)
            stop(sprintf("grouping factor '%s' has %d values for %d observations",
                         gname, length(g), n), call. = FALSE)
        if (anyNA(g))
            stop(sprintf("grouping factor '%s' contains missing values", gname), call. = FALSE)
        ## factor() only when needed: it is the costliest step on large data
        if (!is.factor(g) || anyNA(match(seq_along(levels(g)), unclass(g))) || is.ordered(g))
            g <- factor(g)
        Z <- re_model_matrix(s$lhs, frame, gname)
        if (any(!is.finite(Z)))
            stop(sprintf("the random-effects model matrix of (%s | %s) has non-finite values",
                         deparse1(s$lhs), gname), call. = FALSE)
        list(group = gname, factor = g, Z = Z, nlev = nlevels(g),
             label = sprintf("%s | %s", deparse1(s$lhs), gname))
    })
    nlev <- vapply(terms, `[[`, 1L, "nlev")
    terms <- terms[order(-nlev)]   # order() is stable: ties keep formula order
    check_reterms(terms, n)
    terms
}

check_reterms <- function(terms, n) {
    for (t in terms) {
        if (t$nlev < 2L)
            stop(sprintf("grouping factor '%s' has only one level: a random effect needs > 1 sampled level",
                         t$group), call. = FALSE)
        if (t$nlev >= n)
            stop(sprintf(paste0("number of levels of each grouping factor must be < number of ",
                                "observations (grouping factor '%s' has %d levels for %d observations)"),
                         t$group, t$nlev, n), call. = FALSE)
        q <- t$nlev * ncol(t$Z)
        if (q >= n)
            stop(sprintf(paste0("number of observations (=%d) <= number of random effects (=%d) ",
                                "for term (%s); the random-effects parameters and the residual ",
                                "variance are probably unidentifiable"), n, q, t$label), call. = FALSE)
    }
}

## Names of the theta vector, one per lower-triangle element of each term.
theta_names <- function(terms) {
    unlist(lapply(terms, function(t) {
        cn <- colnames(t$Z)
        k <- length(cn)
        out <- character()
        for (c in seq_len(k)) for (r in c:k)
            out <- c(out, if (r == c) paste(t$group, cn[r], sep = ".")
                          else paste(t$group, cn[r], cn[c], sep = "."))
        out
    }))
}

theta_start <- function(terms) {
    unlist(lapply(terms, function(t) {
        k <- ncol(t$Z)
        m <- diag(k)
        m[lower.tri(m, diag = TRUE)]
    }))
}

## Per-term lower-triangular relative covariance factors from theta.
theta_to_lambda <- function(theta, terms) {
    out <- vector("list", length(terms))
    i <- 0L
    for (j in seq_along(terms)) {
        k <- ncol(terms[[j]]$Z)
        m <- matrix(0, k, k, dimnames = list(colnames(terms[[j]]$Z), colnames(terms[[j]]$Z)))
        nk <- k * (k + 1L) / 2L
        m[lower.tri(m, diag = TRUE)] <- theta[i + seq_len(nk)]
        i <- i + nk
        out[[j]] <- m
    }
    out
}

## The model matrix of a random-effects term's left-hand side.  The common
## (1 | g) needs no model.matrix() call.
re_model_matrix <- function(lhs, frame, gname) {
    if (identical(lhs, 1) || identical(lhs, 1L))
        return(matrix(1, nrow(frame), 1L, dimnames = list(NULL, "(Intercept)")))
    ## plain numeric variables, e.g. (Days | Subject) or (0 + x | g): no
    ## model.matrix() needed either
    tt <- terms(eval(call("~", lhs)))
    labs <- attr(tt, "term.labels")
    if (length(labs) && all(labs %in% names(frame)) &&
        all(vapply(frame[labs], function(v) is.numeric(v) && is.null(dim(v)), NA))) {
        cols <- lapply(frame[labs], as.double)
        if (attr(tt, "intercept") == 1L) cols <- c(list(`(Intercept)` = rep(1, nrow(frame))), cols)
        return(matrix(unlist(cols, use.names = FALSE), nrow(frame), length(cols),
                      dimnames = list(NULL, names(cols))))
    }
    Z <- tryCatch(model.matrix(eval(call("~", lhs)), frame), error = function(e)
        stop(sprintf("cannot build the random-effects model matrix of (%s | %s): %s",
                     deparse1(lhs), gname, conditionMessage(e)), call. = FALSE))
    attr(Z, "assign") <- attr(Z, "contrasts") <- NULL
    dimnames(Z) <- list(NULL, colnames(Z))
    storage.mode(Z) <- "double"
    Z
}
