## The issue 25 equivalence target at scale: every formula feature of the
## database tests, fitted from SQLite, from chunked CSV and (with "postgres")
## from a temporary PostgreSQL server, against the in-memory fit, on `rows`
## rows of the tests' data.  Prints, per formula and source, the relative
## differences (all.equal's) of the deviance, fixef and theta.
##
##   R_LIBS=/tmp/lib Rscript inst/bench/bench-db-equivalence.R [rows] [postgres]
##
## Run from the repository root (the tests' helpers give the data and formulas).

args <- commandArgs(TRUE)
rows <- if (length(args) >= 1L) as.numeric(args[1L]) else 1e6
with_pg <- "postgres" %in% args
## Rows per CSV chunk: several chunks per file, so the sums really are added up.
CSV_BENCH_CHUNK_ROWS <- 250000L

suppressPackageStartupMessages({ library(lmmfit); library(DBI); library(RSQLite); library(testthat) })
source("tests/testthat/helper-db.R")
if (with_pg) source("tests/testthat/helper-postgres.R")

rel <- function(a, b) { r <- all.equal(unname(a), unname(b), tolerance = 0); if (isTRUE(r)) 0 else as.numeric(sub(".*: ", "", r)) }
compare <- function(source, f, fs, fm) {
    data.frame(source = source, formula = deparse1(f), deviance = rel(deviance(fs), deviance(fm)),
               fixef = rel(fixef(fs), fixef(fm)), theta = rel(fs$theta, fm$theta))
}

run <- function() {
    d <- db_test_table_n(rows)
    sq <- dbConnect(SQLite(), ":memory:")
    on.exit(dbDisconnect(sq), add = TRUE)
    dbWriteTable(sq, "t", d)
    csv <- tempfile(fileext = ".csv")
    on.exit(unlink(csv), add = TRUE)
    num <- vapply(d, is.double, NA)
    dw <- d; dw[num] <- lapply(dw[num], function(v) sprintf("%.17g", v))
    utils::write.csv(dw, csv, row.names = FALSE, quote = FALSE)
    pg <- NULL; dpg <- NULL
    if (with_pg) {
        pg <- local_postgres()
        dbWriteTable(pg, "t", d, row.names = FALSE)
        dpg <- dbGetQuery(pg, "SELECT * FROM t")          # the table as stored (15 digits)
    }
    out <- list()
    for (f in c(db_test_formulas, db_transform_formulas)) {
        fm <- suppressMessages(lmmfit(f, d))
        out[[length(out) + 1L]] <- compare("SQLite", f, suppressMessages(lmmfit(f, data = lmm_db(sq, "t"))), fm)
        if (!"factor" %in% all.names(f))
            out[[length(out) + 1L]] <- compare("CSV", f, suppressMessages(
                lmmfit(f, data = lmm_csv(csv, chunk_rows = CSV_BENCH_CHUNK_ROWS, progress = FALSE))), fm)
        if (with_pg)
            out[[length(out) + 1L]] <- compare("PostgreSQL", f, suppressMessages(lmmfit(f, data = lmm_db(pg, "t"))),
                                               suppressMessages(lmmfit(f, dpg)))
    }
    tab <- do.call(rbind, out)
    print(format(tab, digits = 2), row.names = FALSE)
    cat(sprintf("\n%.0f rows: largest differences: deviance %.1e, fixef %.1e, theta %.1e\n", rows,
                max(tab$deviance), max(tab$fixef), max(tab$theta)))
}

## The tests' data at any size (their generator, with the columns the
## transformations need).
db_test_table_n <- function(n) {
    d <- db_test_data(n = as.integer(n))
    d$pos <- d$z * 10
    d$big <- 1e6 + 1e-3 * d$y
    d
}

run()
