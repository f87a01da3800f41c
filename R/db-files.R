## lmmfit() on CSV files read in chunks: each chunk's aggregates
## (db-aggregates.R) are added up, so memory is bounded by the chunk; several
## files are read in parallel and their aggregates combined.  Two passes: the
## first finds the columns' types, the NAs and the factors' levels (the rows
## kept decide them, as na.omit then drop.unused.levels do in memory); the
## second sums, centred at the first chunk's means.

## Rows read per chunk by default: a million rows of ten numeric columns is
## 80 MB, small beside a machine's memory and large enough to amortise a read.
CSV_CHUNK_ROWS <- 1000000L

## Rows of the first file that decide the columns' types.
CSV_TYPE_SAMPLE_ROWS <- 10000L

#' CSV files as the data of a fit
#'
#' \code{lmmfit(formula, data = lmm_csv(files))} fits from CSV files too big
#' for memory: they are read in chunks (by \code{readr::read_csv_chunked}),
#' each chunk's \code{\link{lmm_aggregates}} are added up, and the model is
#' fitted from the total (\code{\link{aggregates_to_stats}}).  Memory is
#' bounded by the chunk.  Several files are read in parallel
#' (\code{parallel::mclapply}, forked processes where the platform has them)
#' and their aggregates combined.  Rows with a missing value in a model column
#' are dropped (as \code{na.omit}) and counted; a missing grouping value is an
#' error.  Factors in the fixed part must be text columns (\code{factor(x)}
#' of a numeric column is refused: its levels would differ by chunk).
#' @param files paths of CSV files with a header row and the same columns.
#' @param chunk_rows rows read at a time.
#' @param cores files read at once.
#' @param progress show a progress bar (reading one file at a time).
#' @return An object of class \code{"lmm_csv"}.
#' @examples
#' f <- tempfile(fileext = ".csv")
#' data(sleepstudy, package = "lme4")
#' write.csv(sleepstudy, f, row.names = FALSE)
#' if (requireNamespace("readr", quietly = TRUE))
#'   lmmfit(Reaction ~ Days + (Days | Subject), data = lmm_csv(f, chunk_rows = 50))
#' @export
lmm_csv <- function(files, chunk_rows = CSV_CHUNK_ROWS, cores = 1L, progress = interactive()) {
    if (!is.character(files) || !length(files)) stop("'files' must be paths of CSV files", call. = FALSE)
    miss <- files[!file.exists(files)]
    if (length(miss)) stop(sprintf("file '%s' does not exist", miss[1L]), call. = FALSE)
    if (!is.numeric(chunk_rows) || length(chunk_rows) != 1L || chunk_rows < 1)
        stop("'chunk_rows' must be a positive number", call. = FALSE)
    structure(list(files = files, chunk_rows = as.integer(chunk_rows), cores = as.integer(cores),
                   progress = isTRUE(progress)), class = "lmm_csv")
}

## The fit from CSV files; `call` is lmmfit()'s (its refused arguments checked).
lmmfit_csv <- function(formula, data, REML, control, call) {
    db_require("readr")
    weights <- db_weights_arg(call, "CSV files")
    parsed <- parse_lmm_formula(formula)
    if ("factor" %in% all.names(parsed$frame))
        stop("factor() in the formula is not supported when fitting from files (its levels would differ by chunk): ",
             "store the column as text", call. = FALSE)
    ctx <- csv_context(data, parsed, weights)
    csv_check_text_terms(formula, parsed, ctx$text)
    t0 <- proc.time()[["elapsed"]]
    scan <- csv_map(data, function(f, tick) csv_scan_file(f, ctx, tick), "scanning")
    ctx <- csv_levels(ctx, scan)
    ctx$model <- csv_model(ctx, formula)
    parts <- csv_map(data, function(f, tick) csv_file_aggregates(f, ctx, tick), "summing",
                     rows = vapply(scan, `[[`, 0, "rows"))
    agg <- csv_order_levels(Reduce(combine_aggregates, parts), ctx)
    t1 <- proc.time()[["elapsed"]]
    fit <- fit_from_aggregates(agg, REML, control, formula, call)
    fit$timing <- c(reading = t1 - t0, fit = proc.time()[["elapsed"]] - t1)
    fit$dropped_rows <- ctx$dropped
    fit
}

## The columns the model needs, their types (from the first rows of the
## first file), and the reading settings.
csv_context <- function(data, parsed, weights) {
    vars <- unique(c(all.vars(parsed$frame), weights))
    head <- as.data.frame(readr::read_csv(data$files[1L], n_max = CSV_TYPE_SAMPLE_ROWS, show_col_types = FALSE,
                                          progress = FALSE))
    miss <- setdiff(vars, names(head))
    if (length(miss))
        stop(sprintf("column%s %s %s not in the file", if (length(miss) > 1L) "s" else "",
                     paste0("'", miss, "'", collapse = ", "), if (length(miss) > 1L) "are" else "is"),
             call. = FALSE)
    text <- vapply(head[vars], function(v) is.character(v) || is.factor(v), NA)
    types <- do.call(readr::cols_only, lapply(text, function(t) if (t) readr::col_character() else readr::col_double()))
    groups <- unique(unlist(lapply(parsed$terms, function(s) all.vars(s$group))))
    list(parsed = parsed, vars = vars, text = text, types = types, groups = groups, weights = weights,
         chunk_rows = data$chunk_rows, files = data$files,
         frame_formula = if (is.null(weights)) parsed$frame else add_frame_terms(parsed$frame, list(as.name(weights))))
}

## Applies FUN(file, tick) to each file: in parallel when asked, else one at
## a time with a progress bar over `rows` (the files' row counts, once known;
## by file before), which tick(rows read in this file) advances.
csv_map <- function(data, FUN, what, rows = NULL) {
    files <- data$files
    quiet <- function(n) NULL
    if (data$cores > 1L && length(files) > 1L && .Platform$OS.type == "unix") {
        out <- parallel::mclapply(files, FUN, tick = quiet, mc.cores = data$cores)
        err <- vapply(out, inherits, NA, "try-error")
        if (any(err)) stop(conditionMessage(attr(out[[which(err)[1L]]], "condition")), call. = FALSE)
        return(out)
    }
    if (!data$progress) return(lapply(files, FUN, tick = quiet))
    message(sprintf("lmmfit: %s %d file%s", what, length(files), if (length(files) > 1L) "s" else ""))
    total <- if (is.null(rows)) length(files) else sum(rows)
    bar <- utils::txtProgressBar(min = 0, max = max(total, 1), style = 3)
    on.exit(close(bar))
    done <- 0
    lapply(seq_along(files), function(i) {
        out <- FUN(files[i], tick = function(n) if (!is.null(rows)) utils::setTxtProgressBar(bar, done + n))
        done <<- done + if (is.null(rows)) 1 else rows[i]
        utils::setTxtProgressBar(bar, done)
        out
    })
}

## Reads a file in chunks, calling FUN(chunk) on each (a data frame).
csv_chunks <- function(file, ctx, FUN, tick) {
    seen <- 0
    cb <- function(chunk, pos) {
        seen <<- seen + nrow(chunk)
        FUN(as.data.frame(chunk))
        tick(seen)
    }
    readr::read_csv_chunked(file, readr::SideEffectChunkCallback$new(cb), chunk_size = ctx$chunk_rows,
                            col_types = ctx$types, progress = FALSE)
    invisible(NULL)
}

## The first pass over a file: its rows, NAs per column, rows kept and the
## levels (among the rows kept) of the text columns that are not groupings.
csv_scan_file <- function(file, ctx, tick) {
    out <- list(rows = 0, kept = 0, na = setNames(numeric(length(ctx$vars)), ctx$vars), levels = list())
    lev_vars <- setdiff(ctx$vars[ctx$text], ctx$groups)
    csv_chunks(file, ctx, function(chunk) {
        na <- vapply(chunk[ctx$vars], function(v) sum(is.na(v)), 0)
        ok <- stats::complete.cases(chunk[ctx$vars])
        out$rows <<- out$rows + nrow(chunk); out$kept <<- out$kept + sum(ok); out$na <<- out$na + na
        for (v in lev_vars) out$levels[[v]] <<- union(out$levels[[v]], unique(chunk[[v]][ok]))
    }, tick)
    out
}

## The files' scans combined: errors for missing groups and empty data, the
## NAs reported, the factors' levels in factor()'s order.
csv_levels <- function(ctx, scan) {
    rows <- sum(vapply(scan, `[[`, 0, "rows")); kept <- sum(vapply(scan, `[[`, 0, "kept"))
    na <- Reduce(`+`, lapply(scan, `[[`, "na"))
    if (!rows) stop("the file is empty: no rows to fit", call. = FALSE)
    bad <- ctx$groups[na[ctx$groups] > 0]
    if (length(bad))
        stop(sprintf("grouping column '%s' has %.0f missing value%s: give those rows a level, or drop them",
                     bad[1L], na[[bad[1L]]], if (na[[bad[1L]]] > 1) "s" else ""), call. = FALSE)
    if (!kept) stop("no rows left to fit: every row has a missing value in a model column", call. = FALSE)
    ctx$dropped <- rows - kept
    if (ctx$dropped > 0) {
        hit <- na[na > 0]
        message(sprintf("%.0f of %.0f rows dropped for missing values (na.omit): %s", ctx$dropped, rows,
                        paste(sprintf("%s (%.0f)", names(hit), hit), collapse = ", ")))
    }
    lev_vars <- setdiff(ctx$vars[ctx$text], ctx$groups)
    ctx$levels <- lapply(setNames(lev_vars, lev_vars), function(v)
        sort(unique(unlist(lapply(scan, function(s) s$levels[[v]])))))
    ctx
}

## A chunk's model frame: NAs omitted, the text columns of the fixed and
## random parts factors with the files' levels (so every chunk has the same
## model-matrix columns), the grouping columns as they are.
csv_frame <- function(chunk, ctx) {
    for (v in names(ctx$levels)) chunk[[v]] <- factor(chunk[[v]], levels = ctx$levels[[v]])
    model.frame(ctx$frame_formula, chunk, na.action = stats::na.omit, drop.unused.levels = FALSE)
}

## The aggregates' model, its shifts the means of the first chunk's columns
## (any shift is exact; one near the mean keeps the digits).
csv_model <- function(ctx, formula) {
    first <- NULL
    csv_chunks_first(ctx, function(chunk) first <<- csv_frame(chunk, ctx))
    mats <- frame_matrices(ctx$parsed, first, ctx$weights)
    icpt <- identical(colnames(mats$X)[1L], "(Intercept)")
    list(response = deparse1(formula[[2L]]), fixed = colnames(mats$X),
         xshift = if (icpt) unname(c(0, colMeans(mats$X)[-1L])) else numeric(ncol(mats$X)),
         yshift = if (icpt) mean(mats$y) else 0, xlev = if (length(ctx$levels)) ctx$levels,
         weights = ctx$weights,
         terms = lapply(mats$terms, function(t) list(group = t$group, columns = colnames(t$Z),
                                                     shift = slope_shifts(t$Z))))
}

## The first chunk of the first file with a kept row (its first rows are read).
csv_chunks_first <- function(ctx, FUN) {
    d <- as.data.frame(readr::read_csv(ctx$files[1L], n_max = ctx$chunk_rows, col_types = ctx$types,
                                       progress = FALSE))
    if (!any(stats::complete.cases(d[ctx$vars])))
        stop("the first chunk of the first file has no complete row: choose a larger 'chunk_rows'", call. = FALSE)
    FUN(d)
}

## The second pass over a file: the sum of its chunks' aggregates.
csv_file_aggregates <- function(file, ctx, tick) {
    acc <- NULL
    csv_chunks(file, ctx, function(chunk) {
        frame <- csv_frame(chunk, ctx)
        if (!nrow(frame)) return()
        mats <- frame_matrices(ctx$parsed, frame, ctx$weights)
        a <- aggregate_rows(ctx$model, mats$X, mats$y, mats$w, lapply(mats$terms, `[[`, "factor"),
                            lapply(mats$terms, `[[`, "Z"))
        acc <<- combine_aggregates(acc, a)
    }, tick)
    acc
}

## The levels of each term in factor()'s order over the whole data: numeric
## grouping columns numerically, text ones as sort() does, a:b by a then b.
csv_order_levels <- function(agg, ctx) {
    agg$levels <- Map(function(d, t) {
        keys <- all.vars(str2lang(t$group))
        parts <- if (length(keys) > 1L) do.call(rbind, strsplit(d$level, ":", fixed = TRUE))
                 else matrix(d$level, ncol = 1L)
        cols <- lapply(seq_along(keys), function(i) if (ctx$text[[keys[i]]]) parts[, i] else as.numeric(parts[, i]))
        d[do.call(order, unname(cols)), , drop = FALSE]
    }, agg$levels, agg$model$terms)
    agg
}

## A text column may be a factor (alone or in an a:b interaction), never a
## number inside a term such as log(h): stop naming the term and the column.
csv_check_text_terms <- function(formula, parsed, text) {
    labels <- c(deparse1(formula[[2L]]), attr(terms(parsed$fixed), "term.labels"),
                unlist(lapply(parsed$terms, function(s) attr(terms(eval(call("~", s$lhs))), "term.labels"))))
    parts <- function(e) if (is.call(e) && identical(e[[1L]], as.name(":"))) c(parts(e[[2L]]), parts(e[[3L]]))
                         else list(e)
    for (lab in labels) for (e in parts(str2lang(lab))) {
        if (is.name(e)) next
        bad <- intersect(all.vars(e), names(text)[text])
        if (length(bad))
            stop(sprintf("the term '%s' uses column '%s', which is text, as a number", lab, bad[1L]), call. = FALSE)
    }
}
