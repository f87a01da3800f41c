## R formula terms as SQL expressions: the model's columns (fixed effects,
## each random-effects term's columns, the response) written in portable SQL,
## with what the database must tell first (column types, NULLs, levels).

## Integer powers x^k are written as products; beyond this the expression
## grows without purpose (a power that large is better a column of its own).
SQL_MAX_POWER <- 8L

## What the first passes learn about the table: its columns' types, the
## filter that drops rows with NULLs (na.omit), the rows kept, the natural
## logarithm's name, and a cache of factor levels.
sql_environment <- function(con, src, parsed, weights) {
    vars <- unique(c(all.vars(parsed$frame), weights))
    res <- DBI::dbSendQuery(con, sprintf("SELECT * FROM %s WHERE 1 = 0", src))
    cols <- names(DBI::dbFetch(res, n = 0L))
    DBI::dbClearResult(res)
    miss <- setdiff(vars, cols)
    if (length(miss))
        stop(sprintf("column%s %s %s not in the table", if (length(miss) > 1L) "s" else "",
                     paste0("'", miss, "'", collapse = ", "), if (length(miss) > 1L) "are" else "is"),
             call. = FALSE)
    q <- vapply(vars, function(v) as.character(DBI::dbQuoteIdentifier(con, v)), "")
    res <- DBI::dbSendQuery(con, sprintf("SELECT %s FROM %s", paste(q, collapse = ", "), src))
    sample <- DBI::dbFetch(res, n = SQL_TYPE_SAMPLE_ROWS)
    DBI::dbClearResult(res)
    type <- vapply(sample, function(v) if (is.character(v) || is.factor(v)) "text"
                                       else if (is.numeric(v) || all(is.na(v))) "number" else "other", "")
    env <- new.env(parent = emptyenv())
    env$con <- con; env$src <- src; env$quoted <- q; env$type <- type; env$levels <- list(); env$xlev <- list()
    ## integer columns are read as doubles (1.0 * x): SUM() of integer products
    ## overflows 64 bits on large tables (SQLite stops with an error)
    env$integer <- vapply(sample, is.integer, NA)
    env$weights <- weights
    env$where <- paste(sprintf("%s IS NOT NULL", q), collapse = " AND ")
    if (!is.null(weights) && type[[weights]] != "number")
        stop(sprintf("the weights column '%s' is not numeric", weights), call. = FALSE)
    env$ln <- if (any(c("log", "log10", "log2") %in% all.names(parsed$frame)) || !is.null(weights))
        sql_natural_log(con)
    env
}

## Counts the rows, the NULLs per column and the rows kept; a NULL in a
## grouping column is an error, other NULLs drop their rows (na.omit).  The
## same pass finds the centres of `exprs` (when no factor levels must be known
## first): their means over the rows where each is not NULL, near enough the
## means over the rows kept (any centre is exact; one near the mean keeps the
## digits).  COUNT(column) and plain SUM()s cost less than CASE WHEN per row.
sql_count_rows <- function(env, parsed, exprs = character()) {
    q <- env$quoted
    nonnull <- sprintf("COUNT(%s) AS nn_%d", q, seq_along(q))
    sums <- sprintf("SUM(%s) AS m_%d, COUNT(%s) AS k_%d", exprs, seq_along(exprs), exprs, seq_along(exprs))
    r <- DBI::dbGetQuery(env$con, sprintf("SELECT COUNT(*) AS n_all, SUM(CASE WHEN %s THEN 1 ELSE 0 END) AS n_kept, %s FROM %s",
                                          env$where, paste(c(nonnull, sums), collapse = ", "), env$src))
    if (!isTRUE(r$n_all > 0)) stop("the table is empty: no rows to fit", call. = FALSE)
    nnull <- setNames(vapply(seq_along(q), function(i) as.double(r$n_all) - as.double(r[[sprintf("nn_%d", i)]]), 0),
                      names(q))
    gvars <- unique(unlist(lapply(parsed$terms, function(s) all.vars(s$group))))
    bad <- gvars[nnull[gvars] > 0]
    if (length(bad))
        stop(sprintf("grouping column '%s' has %.0f NULL value%s: give those rows a level, or fit a query that drops them",
                     bad[1L], nnull[[bad[1L]]], if (nnull[[bad[1L]]] > 1) "s" else ""), call. = FALSE)
    env$nrow <- as.double(r$n_kept)
    env$dropped <- as.double(r$n_all) - env$nrow
    if (env$nrow == 0) stop("no rows left to fit: every row has a NULL in a model column", call. = FALSE)
    if (env$dropped > 0) {
        hit <- nnull[nnull > 0]
        message(sprintf("%.0f of %.0f rows dropped for NULLs (na.omit): %s", env$dropped, as.double(r$n_all),
                        paste(sprintf("%s (%.0f)", names(hit), hit), collapse = ", ")))
    }
    setNames(lapply(seq_along(exprs), function(i) {
        k <- as.double(r[[sprintf("k_%d", i)]])
        if (k > 0) as.double(r[[sprintf("m_%d", i)]]) / k else 0
    }), exprs)
}

## Does the model have factors whose levels the database must give (text
## columns or factor() in the fixed part or a term's columns)?
sql_has_factors <- function(parsed, env) {
    parts <- c(list(parsed$fixed[[3L]]), lapply(parsed$terms, `[[`, "lhs"))
    vars <- unique(unlist(lapply(parts, all.vars)))
    any(env$type[intersect(vars, names(env$type))] == "text") ||
        "factor" %in% unlist(lapply(parts, all.names))
}

## The natural logarithm's name on this connection: LN (standard, PostgreSQL,
## DuckDB, Spark, BigQuery); on SQLite without it, RSQLite's math extension,
## whose log() is natural.  Refused with a message when neither works.
sql_natural_log <- function(con) {
    works <- function(fn) isTRUE(tryCatch(abs(DBI::dbGetQuery(con, sprintf("SELECT %s(2.0) AS v", fn))$v -
                                              log(2)) < 1e-12, error = function(e) FALSE))
    if (works("LN")) return("LN")
    if (inherits(con, "SQLiteConnection")) {
        try(RSQLite::initExtension(con, "math"), silent = TRUE)
        if (works("LOG")) return("LOG")
    }
    NA_character_
}

## A numeric R expression as SQL; `term` names the formula term for messages.
sql_expression <- function(e, env, term) {
    bad <- function(why) stop(sprintf("the term '%s' cannot be computed in SQL: %s", term, why), call. = FALSE)
    tr <- function(e) {
        if (is.name(e)) {
            v <- as.character(e)
            if (!v %in% names(env$type)) bad(sprintf("'%s' is not a column of the table", v))
            if (env$type[[v]] != "number") bad(sprintf("column '%s' is %s, not numeric", v,
                                                      if (env$type[[v]] == "text") "text" else "not a number"))
            return(if (env$integer[[v]]) sprintf("(1.0 * %s)", env$quoted[[v]]) else env$quoted[[v]])
        }
        if (is.numeric(e) && length(e) == 1L) return(sql_literal(e))
        if (!is.call(e)) bad(sprintf("'%s' is not a column or a number", deparse1(e)))
        fn <- deparse1(e[[1L]]); a <- as.list(e)[-1L]
        unary <- function(f) { if (length(a) != 1L) bad(sprintf("%s() takes one argument here", fn))
                               sprintf("%s(%s)", f, tr(a[[1L]])) }
        ln <- function() { if (is.na(env$ln)) bad("this database has no natural logarithm (LN)")
                           env$ln }
        switch(fn,
               "(" = sprintf("(%s)", tr(a[[1L]])),
               "I" = tr(a[[1L]]),
               "+" = , "-" = if (length(a) == 1L) sprintf("(%s%s)", fn, tr(a[[1L]]))
                             else sprintf("(%s %s %s)", tr(a[[1L]]), fn, tr(a[[2L]])),
               "*" = sprintf("(%s * %s)", tr(a[[1L]]), tr(a[[2L]])),
               ## 1.0 * keeps integer columns from integer division
               "/" = sprintf("(1.0 * %s / %s)", tr(a[[1L]]), tr(a[[2L]])),
               "^" = {
                   k <- a[[2L]]
                   if (!is.numeric(k) || k != round(k) || k < 1 || k > SQL_MAX_POWER)
                       bad(sprintf("only integer powers 1 to %d are written in SQL", SQL_MAX_POWER))
                   sprintf("(%s)", paste(rep(tr(a[[1L]]), k), collapse = " * "))
               },
               log = { if (length(a) != 1L) bad("log() with a base: use log10() or log2()")
                       unary(ln()) },
               log10 = sprintf("(%s / %s(10.0))", unary(ln()), ln()),
               log2 = sprintf("(%s / %s(2.0))", unary(ln()), ln()),
               exp = unary("EXP"), sqrt = unary("SQRT"), abs = unary("ABS"),
               bad(sprintf("%s() is not among the functions written in SQL (log, log10, log2, exp, sqrt, abs, I, ^)",
                           fn)))
    }
    tr(e)
}

## A number as an SQL literal with a decimal point (so no integer arithmetic).
sql_literal <- function(x) {
    s <- sql_number(x)
    if (!grepl("[.eE]", s)) s <- paste0(s, ".0")
    if (x < 0) sprintf("(%s)", s) else s
}

## The levels of a categorical variable (a text column, or factor(x) of a
## numeric one), from the rows kept, in factor()'s order.
sql_levels <- function(col, env) {
    if (!is.null(env$levels[[col]])) return(env$levels[[col]])
    q <- env$quoted[[col]]
    r <- DBI::dbGetQuery(env$con, sprintf("SELECT %s AS lv FROM %s WHERE %s GROUP BY %s",
                                          q, env$src, env$where, q))
    lv <- sort(r$lv)
    env$levels[[col]] <- lv
    lv
}

## The columns one variable of a term contributes: a numeric expression, or
## a factor's contrast (coding 1) or indicator (coding 2) columns.
sql_variable_columns <- function(v, label, coding, env) {
    col <- if (is.name(v)) as.character(v)
           else if (is.call(v) && identical(v[[1L]], as.name("factor")) && length(v) == 2L && is.name(v[[2L]]))
               as.character(v[[2L]])
    categorical <- !is.null(col) && col %in% names(env$type) && (env$type[[col]] == "text" || !is.name(v))
    if (!categorical) return(list(names = label, exprs = sql_expression(v, env, label)))
    lv <- sql_levels(col, env)
    env$xlev[[label]] <- as.character(lv)          # for predictions
    cm <- if (coding == 2L) diag(length(lv)) else stats::contrasts(factor(lv, levels = lv))
    cn <- if (coding == 2L) lv else if (is.null(colnames(cm))) seq_len(ncol(cm)) else colnames(cm)
    lit <- if (env$type[[col]] == "text") as.character(DBI::dbQuoteString(env$con, as.character(lv)))
           else vapply(lv, sql_literal, "")
    exprs <- vapply(seq_len(ncol(cm)), function(j) {
        nz <- which(cm[, j] != 0)
        sprintf("CASE %s ELSE 0.0 END", paste(sprintf("WHEN %s = %s THEN %s", env$quoted[[col]], lit[nz],
                                                      vapply(cm[nz, j], sql_literal, "")), collapse = " "))
    }, "")
    list(names = paste0(label, cn), exprs = exprs)
}

## The model-matrix columns of a terms object as SQL, in model.matrix()'s
## order and with its names (the first variable of a term varies fastest).
sql_columns <- function(tt, env) {
    fac <- attr(tt, "factors")
    vars <- as.list(attr(tt, "variables"))[-1L]
    names <- exprs <- character()
    if (attr(tt, "intercept") == 1L) { names <- "(Intercept)"; exprs <- "1" }
    for (j in seq_len(if (length(fac)) ncol(fac) else 0L)) {
        cols <- list(names = "", exprs = "1")
        for (v in which(fac[, j] > 0)) {
            part <- sql_variable_columns(vars[[v]], rownames(fac)[v], fac[v, j], env)
            cols <- list(names = as.vector(outer(cols$names, part$names, function(a, b)
                              ifelse(nzchar(a), paste(a, b, sep = ":"), b))),
                         exprs = as.vector(outer(cols$exprs, part$exprs, sql_product)))
        }
        names <- c(names, cols$names); exprs <- c(exprs, cols$exprs)
    }
    list(names = names, exprs = exprs)
}

## The product of SQL factors, leaving out the constant 1.
sql_product <- function(...) {
    f <- list(...)
    n <- max(lengths(f))
    out <- rep_len(f[[1L]], n)
    for (g in f[-1L]) {
        g <- rep_len(g, n)
        out <- ifelse(out == "1", g, ifelse(g == "1", out, sprintf("%s * %s", out, g)))
    }
    out
}

## The names model.matrix() gives the fixed part, from a few made-up rows
## with the same levels: a check that the SQL columns are the same columns.
check_fixed_names <- function(names, fixed, env) {
    tt <- delete.response(terms(fixed))
    vars <- all.vars(tt)
    rows <- max(2L, unlist(lapply(env$levels, length)))
    frame <- lapply(vars, function(v) {
        if (!is.null(env$levels[[v]]))
            if (env$type[[v]] == "text") factor(rep_len(env$levels[[v]], rows), levels = env$levels[[v]])
            else rep_len(env$levels[[v]], rows)
        else seq(1, 2, length.out = rows)
    })
    mm <- colnames(model.matrix(tt, stats::setNames(as.data.frame(frame), vars)))
    if (!identical(mm, names))
        stop(sprintf("internal: the SQL columns (%s) are not model.matrix()'s (%s)", paste(names, collapse = ", "),
                     paste(mm, collapse = ", ")), call. = FALSE)
    names
}

## A random-effects term as SQL: its columns, whether they may be centred
## (a first intercept column), its grouping columns (a, or a:b).
sql_term <- function(spec, env) {
    gname <- deparse1(spec$group)
    keys <- all.vars(spec$group)
    ok <- function(e) is.name(e) || (is.call(e) && identical(e[[1L]], as.name(":")) && all(vapply(as.list(e)[-1L], ok, NA)))
    if (!ok(spec$group))
        stop(sprintf("the grouping factor '%s' cannot be computed in SQL: use columns and ':'", gname), call. = FALSE)
    cols <- if (identical(spec$lhs, 1) || identical(spec$lhs, 1L)) list(names = "(Intercept)", exprs = "1")
            else sql_columns(terms(eval(call("~", spec$lhs))), env)
    list(group = gname, keys = keys, names = cols$names, exprs = cols$exprs,
         shiftable = length(cols$names) > 1L && cols$names[1L] == "(Intercept)")
}
