## lmmfit() on data that stay where they are: a database table (lmm_db(), a
## dbplyr table) fitted from the aggregates the database computes.

## lmmfit()'s arguments a fit from aggregates cannot honour (refused by name).
DB_REFUSED_ARGS <- c("subset", "na.action", "offset", "contrasts", "correlation", "start")

## Is `data` outside R's memory: a table in a database (lmm_db() or a dbplyr
## lazy table) or CSV files (lmm_csv())?
is_db_data <- function(data) inherits(data, c("lmm_db", "tbl_lazy", "lmm_csv"))

## lmmfit() on data outside memory.
lmmfit_outside <- function(formula, data, REML, control, call) {
    if (inherits(data, "lmm_csv")) lmmfit_csv(formula, data, REML, control, call)
    else lmmfit_db(formula, data, REML, control, call)
}

## The weights column named in lmmfit()'s call, after refusing by name the
## arguments a fit from aggregates cannot honour.
db_weights_arg <- function(call, where) {
    given <- intersect(DB_REFUSED_ARGS, names(call))
    if (length(given))
        stop(sprintf("%s %s not supported when fitting from %s: filter or transform the data first",
                     paste0("'", given, "'", collapse = ", "), if (length(given) > 1L) "are" else "is", where),
             call. = FALSE)
    weights <- call$weights
    if (!is.null(weights) && !is.name(weights))
        stop(sprintf("'weights' must name a column when fitting from %s", where), call. = FALSE)
    if (!is.null(weights)) as.character(weights)
}

## The connection and SQL source of database data.
db_source <- function(data) {
    if (inherits(data, "lmm_db") && !is.null(data$path))
        return(list(con = DBI::dbConnect(RSQLite::SQLite(), data$path, flags = RSQLite::SQLITE_RO),
                    table = data$table, opened = TRUE))
    if (inherits(data, "lmm_db")) return(data)
    db_require("dbplyr")
    list(con = dbplyr::remote_con(data), table = as.character(dbplyr::sql_render(data)))
}

## The fit from a database: the queries of lmm_sql() run on the connection,
## their results turned into statistics and fitted.  `call` is lmmfit()'s.
lmmfit_db <- function(formula, data, REML, control, call) {
    weights <- db_weights_arg(call, "a database table (use a query: lmm_db(con, \"SELECT ...\"))")
    src <- db_source(data)
    if (isTRUE(src$opened)) on.exit(DBI::dbDisconnect(src$con))
    t0 <- proc.time()[["elapsed"]]
    plan <- lmm_sql(formula, src$con, src$table, weights = weights)
    results <- lapply(plan$queries, function(q) DBI::dbGetQuery(src$con, q))
    agg <- sql_aggregates(plan, results)
    t1 <- proc.time()[["elapsed"]]
    fit <- fit_from_aggregates(agg, REML, control, formula, call)
    fit$timing <- c(database = t1 - t0, fit = proc.time()[["elapsed"]] - t1)
    fit$dropped_rows <- plan$dropped
    fit
}

## A fit from aggregates, with what the fitted-object methods need.
fit_from_aggregates <- function(agg, REML, control, formula, call) {
    agg_fit_object(aggregates_to_stats(agg), REML, control, formula, call)
}
