## The SQL that computes a model's aggregates (db-aggregates.R) in a
## database: only SUM, COUNT, CASE WHEN, WHERE and GROUP BY, so that the same
## queries run on SQLite, PostgreSQL, DuckDB, Spark SQL and BigQuery.  First
## passes find the columns' types, the NULLs, the factor levels and the
## means (the centres); the aggregate queries then sum centred columns.

## Rows fetched to learn the columns' types (the query keeps only the
## model's columns, and DBI fetches need no LIMIT, which not every engine has).
SQL_TYPE_SAMPLE_ROWS <- 1000L

## Digits of a number written into SQL: 17 significant digits round-trip a double.
sql_number <- function(x) sprintf("%.17g", x)

#' SQL queries for a linear mixed model's aggregates
#'
#' \code{lmm_sql()} writes the queries that compute, in a database, the
#' aggregates of \code{\link{lmm_aggregates}} for a model; run them anywhere
#' (on an engine lmmfit does not connect to, such as Spark or BigQuery), then
#' hand the results to \code{sql_aggregates()} and the aggregates to
#' \code{\link{aggregates_to_stats}} and \code{\link{lmmfit_stats}}.
#' \code{lmm_db()} names a table for \code{lmmfit(formula, data = lmm_db(con,
#' "table"))}, which does all of that on the connection.
#'
#' The queries use only \code{SUM}, \code{COUNT}, \code{CASE WHEN},
#' \code{WHERE} and \code{GROUP BY}.  Preliminary queries on \code{con} learn
#' the columns' types (from a sample of rows), count the NULLs, find the
#' levels of the factors of the fixed part (text columns, or \code{factor(x)})
#' and the means of the model's columns; the aggregate queries then sum
#' products of columns centred at those means, so a table whose columns sit
#' far from their origin fits as accurately as in memory.  Fixed-effect terms
#' may be numeric columns, factors, their interactions, and \code{log()},
#' \code{log10()}, \code{log2()}, \code{exp()}, \code{sqrt()}, \code{abs()},
#' \code{+}, \code{-}, \code{*}, \code{/}, integer powers and \code{I()} of
#' them; other terms stop with a message naming them.  Rows with a NULL in a
#' model column are dropped, as \code{na.omit} drops them, and their count is
#' reported; a NULL in a grouping column is an error (give those rows a level,
#' or filter them in a query).  The natural logarithm is \code{LN()}; on a
#' SQLite connection without it, RSQLite's math extension is loaded (its
#' \code{log()} is natural).
#'
#' @param formula a mixed-model formula as in \code{\link{lmmfit}}.
#' @param con a DBI connection; for \code{lmm_db()} also the path of an SQLite
#'   file (the embedded default), opened read-only for the fit and closed after.
#' @param table a table name, a \code{DBI::Id(schema = , table = )}, or an SQL
#'   query (starting with \code{SELECT} or \code{WITH}).
#' @param weights optional: the name of a column of prior weights.
#' @param plan an \code{"lmm_sql"} object.
#' @param results a list of data frames: the results of \code{plan$queries}
#'   in their order (names ignored).
#' @return \code{lmm_sql()}: an object of class \code{"lmm_sql"}: a list with
#'   \code{queries} (a named character vector: \code{overall}, then
#'   \code{levels_1}, ..., then \code{pair_1_2}, ...), \code{model} (the
#'   aggregates' \code{model} part), \code{dropped} (rows dropped for NULLs)
#'   and \code{nrow} (rows kept).  \code{sql_aggregates()}: an
#'   \code{"lmm_aggregates"} object.  \code{lmm_db()}: an object of class
#'   \code{"lmm_db"}.
#' @examples
#' if (requireNamespace("RSQLite", quietly = TRUE)) {
#'   data(sleepstudy, package = "lme4")
#'   con <- DBI::dbConnect(RSQLite::SQLite(), ":memory:")
#'   DBI::dbWriteTable(con, "sleep", sleepstudy)
#'   plan <- lmm_sql(Reaction ~ Days + (Days | Subject), con, "sleep")
#'   cat(plan$queries[["levels_1"]], "\n")
#'   ## run the queries anywhere, then
#'   results <- lapply(plan$queries, function(q) DBI::dbGetQuery(con, q))
#'   lmmfit_stats(aggregates_to_stats(sql_aggregates(plan, results)))
#'   ## or all in one step
#'   lmmfit(Reaction ~ Days + (Days | Subject), data = lmm_db(con, "sleep"))
#'   DBI::dbDisconnect(con)
#' }
#' @export
lmm_sql <- function(formula, con, table, weights = NULL) {
    db_require("DBI")
    src <- sql_source(con, table)
    parsed <- parse_lmm_formula(formula)
    env <- sql_environment(con, src, parsed, weights)
    ## the rows kept decide the factors' levels, so with factors the count
    ## comes first; without, one pass counts and sums (for the means)
    factors <- sql_has_factors(parsed, env)
    if (factors) sql_count_rows(env, parsed)
    fixed <- sql_columns(terms(parsed$fixed), env)
    fixed$names <- check_fixed_names(fixed$names, parsed$fixed, env)
    y <- sql_expression(formula[[2L]], env, deparse1(formula[[2L]]))
    retms <- lapply(parsed$terms, function(s) sql_term(s, env))
    icpt <- identical(fixed$names[1L], "(Intercept)")
    ## the means pass: one query for every column's sum
    zsum <- unlist(lapply(retms, function(t) if (t$shiftable) t$exprs[-1L]))
    exprs <- unique(c(fixed$exprs[-1L][icpt], y, zsum))
    centres <- if (factors) sql_means(con, env, exprs) else sql_count_rows(env, parsed, exprs)
    mean_of <- function(e) centres[[e]]
    xshift <- if (icpt) c(0, vapply(fixed$exprs[-1L], mean_of, 0)) else numeric(length(fixed$exprs))
    yshift <- if (icpt) mean_of(y) else 0
    terms <- lapply(retms, function(t)
        list(group = t$group, columns = t$names,
             shift = if (t$shiftable) c(0, vapply(t$exprs[-1L], mean_of, 0)) else numeric(length(t$exprs))))
    model <- list(response = deparse1(formula[[2L]]), fixed = fixed$names, xshift = unname(xshift),
                  yshift = yshift, xlev = if (length(env$xlev)) env$xlev, weights = weights,
                  terms = terms)
    cols <- c(centre_sql(fixed$exprs, xshift), centre_sql(y, yshift))
    zcols <- Map(function(t, m) centre_sql(t$exprs, m$shift), retms, terms)
    queries <- sql_aggregate_queries(env, cols, zcols, retms)
    structure(list(queries = queries, model = model, groups = lapply(retms, `[[`, "keys"),
                   dropped = env$dropped, nrow = env$nrow), class = "lmm_sql")
}

## The SQL source: a quoted table name, or a query as a derived table.
sql_source <- function(con, table) {
    if (inherits(table, "Id")) return(as.character(DBI::dbQuoteIdentifier(con, table)))   # schema.table
    if (!is.character(table) || length(table) != 1L || !nzchar(table))
        stop("'table' must be a table name, a DBI::Id() or an SQL query", call. = FALSE)
    if (grepl("^\\s*(select|with)\\b", table, ignore.case = TRUE)) sprintf("(%s) lmm_src", table)
    else as.character(DBI::dbQuoteIdentifier(con, table))
}

db_require <- function(pkg)
    if (!requireNamespace(pkg, quietly = TRUE))
        stop(sprintf("package '%s' is needed to fit from a database: install.packages(\"%s\")", pkg, pkg),
             call. = FALSE)

#' @export
print.lmm_sql <- function(x, ...) {
    cat(sprintf("SQL for the aggregates of a linear mixed model (%d queries; %.0f rows, %.0f dropped for NULLs)\n",
                length(x$queries), x$nrow, x$dropped))
    for (nm in names(x$queries)) cat(sprintf("-- %s\n%s;\n", nm, x$queries[[nm]]))
    invisible(x)
}

## Means of SQL expressions over the rows kept, one query, named by expression.
sql_means <- function(con, env, exprs) {
    if (!length(exprs)) return(list())
    r <- DBI::dbGetQuery(con, sprintf("SELECT %s FROM %s WHERE %s",
                                      paste(sprintf("SUM(%s) AS m_%d", exprs, seq_along(exprs)), collapse = ", "),
                                      env$src, env$where))
    setNames(lapply(seq_along(exprs), function(i) as.double(r[[sprintf("m_%d", i)]]) / env$nrow), exprs)
}

## Columns centred at their shifts (the shift written to round-trip).
centre_sql <- function(exprs, shifts)
    ifelse(shifts == 0, exprs, sprintf("(%s - %s)", exprs, vapply(shifts, sql_literal, "")))

## The aggregate queries: overall, per level of each term, per pair of terms.
sql_aggregate_queries <- function(env, cols, zcols, retms) {
    w <- if (!is.null(env$weights)) env$quoted[[env$weights]] else "1"
    sum_of <- function(a, b, alias) sprintf("SUM(%s) AS %s", sql_product(a, b, w), alias)
    px <- length(cols)
    ij <- which(upper.tri(diag(px), diag = TRUE), arr.ind = TRUE)
    logw <- if (is.null(env$weights)) "0.0 AS sumlogw" else {
        if (is.na(env$ln)) stop("weights need the natural logarithm, which this database lacks (LN)", call. = FALSE)
        sprintf("SUM(%s(%s)) AS sumlogw", env$ln, w)
    }
    from <- sprintf("FROM %s WHERE %s", env$src, env$where)
    q <- c(overall = sprintf("SELECT COUNT(*) AS n, %s, %s %s", logw,
                             paste(sum_of(cols[ij[, 1L]], cols[ij[, 2L]], sprintf("s_%d_%d", ij[, 1L], ij[, 2L])),
                                   collapse = ", "), from))
    keys <- function(t, prefix) {
        k <- env$quoted[retms[[t]]$keys]
        list(select = paste(sprintf("%s AS %s_%d", k, prefix, seq_along(k)), collapse = ", "), group = k)
    }
    for (t in seq_along(retms)) {
        z <- zcols[[t]]; k <- length(z)
        ab <- which(upper.tri(diag(k), diag = TRUE), arr.ind = TRUE)
        aj <- expand.grid(j = seq_len(px), a = seq_len(k))
        kk <- keys(t, "lv")
        q[[sprintf("levels_%d", t)]] <- sprintf("SELECT %s, COUNT(*) AS n, %s, %s %s GROUP BY %s", kk$select,
            paste(sum_of(z[ab[, 1L]], z[ab[, 2L]], sprintf("zz_%d_%d", ab[, 1L], ab[, 2L])), collapse = ", "),
            paste(sum_of(z[aj$a], cols[aj$j], sprintf("zx_%d_%d", aj$a, aj$j)), collapse = ", "),
            from, paste(kk$group, collapse = ", "))
    }
    nt <- length(retms)
    for (s in seq_len(nt - 1L)) for (t in (s + 1L):nt) {
        ab <- expand.grid(b = seq_along(zcols[[t]]), a = seq_along(zcols[[s]]))
        k1 <- keys(s, "la"); k2 <- keys(t, "lb")
        q[[sprintf("pair_%d_%d", s, t)]] <- sprintf("SELECT %s, %s, COUNT(*) AS n, %s %s GROUP BY %s",
            k1$select, k2$select,
            paste(sum_of(zcols[[s]][ab$a], zcols[[t]][ab$b], sprintf("zz_%d_%d", ab$a, ab$b)), collapse = ", "),
            from, paste(unique(c(k1$group, k2$group)), collapse = ", "))
    }
    q
}

#' @rdname lmm_sql
#' @export
sql_aggregates <- function(plan, results) {
    if (!inherits(plan, "lmm_sql")) stop("'plan' must be an lmm_sql object", call. = FALSE)
    if (!is.list(results) || length(results) != length(plan$queries) ||
        !all(vapply(results, is.data.frame, NA)))
        stop(sprintf("'results' must be a list of %d data frames, one per query", length(plan$queries)),
             call. = FALSE)
    results <- setNames(results, names(plan$queries))
    label <- function(d, prefix) {
        k <- d[grep(sprintf("^%s_[0-9]+$", prefix), names(d))]
        list(label = do.call(paste, c(unname(lapply(k, as.character)), sep = ":")), order = do.call(order, unname(k)))
    }
    nt <- length(plan$model$terms)
    levels <- lapply(seq_len(nt), function(t) {
        d <- results[[sprintf("levels_%d", t)]]
        lb <- label(d, "lv")
        d <- d[lb$order, , drop = FALSE]
        out <- data.frame(level = lb$label[lb$order], stringsAsFactors = FALSE)
        cbind(out, d[setdiff(names(d), grep("^lv_", names(d), value = TRUE))])
    })
    pairs <- list()
    for (nm in grep("^pair_", names(results), value = TRUE)) {
        d <- results[[nm]]
        out <- data.frame(level1 = label(d, "la")$label, level2 = label(d, "lb")$label, stringsAsFactors = FALSE)
        pairs[[sub("^pair_", "", nm)]] <- cbind(out, d[!grepl("^l[ab]_", names(d))])
    }
    ov <- results$overall
    ov[] <- lapply(ov, as.double)
    structure(list(model = plan$model, overall = ov, levels = levels, pairs = pairs), class = "lmm_aggregates")
}

#' @rdname lmm_sql
#' @export
lmm_db <- function(con, table) {
    db_require("DBI")
    if (is.character(con) && length(con) == 1L) {
        ## the embedded default: an SQLite file, opened read-only for each fit
        if (!file.exists(con)) stop(sprintf("SQLite file '%s' does not exist", con), call. = FALSE)
        db_require("RSQLite")
        return(structure(list(path = con, table = table), class = "lmm_db"))
    }
    if (!inherits(con, "DBIConnection"))
        stop("'con' must be a DBI connection or the path of an SQLite file", call. = FALSE)
    sql_source(con, table)
    structure(list(con = con, table = table), class = "lmm_db")
}
