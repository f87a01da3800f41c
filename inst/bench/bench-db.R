## Fitting from a database table bigger than one wants in memory (issue 25):
## an SQLite file with `rows` rows and `groups` groups, y ~ x + z + (x | g),
## fitted by lmmfit(data = lmm_db(con, "t")).  Reports the time in the
## database (the aggregate queries) and in the fit, and R's peak memory: the
## R heap's maximum (gc()'s "max used", since a reset just before the fit) and
## the process's peak resident size (VmHWM, which includes SQLite's page
## cache).  The fit runs in a fresh R process, so building the table does not
## count towards its memory.
##
##   R_LIBS=/tmp/lib Rscript inst/bench/bench-db.R [rows] [groups] [file] [check]
##
## rows (default 1e7), groups (default 1e5), file (default
## /tmp/lmmfit-bench-<rows>.sqlite, built once and reused), check ("check"
## also fits the table in memory, for rows <= 2e6, and prints the agreement).
## With file = "postgres" the table goes to a temporary PostgreSQL server
## instead (started and stopped by the test helper; run from the repository
## root), built and fitted in one process: R's heap peak is then measured
## from a reset just before the fit (the server's memory is its own).

args <- commandArgs(TRUE)
rows <- if (length(args) >= 1L) as.numeric(args[1L]) else 1e7
groups <- if (length(args) >= 2L) as.numeric(args[2L]) else 1e5
file <- if (length(args) >= 3L && nzchar(args[3L])) args[3L] else sprintf("/tmp/lmmfit-bench-%.0f.sqlite", rows)
check <- length(args) >= 4L && args[4L] == "check"
fit_only <- nzchar(Sys.getenv("LMMFIT_BENCH_FIT_ONLY"))

## Rows generated and written per step: the table is built without holding it.
BUILD_CHUNK_ROWS <- 1e6
## The largest table fitted in memory as well for the agreement check.
CHECK_MAX_ROWS <- 2e6

suppressPackageStartupMessages({ library(lmmfit); library(DBI); library(RSQLite) })
formula <- y ~ x + z + (x | g)

build_table <- function(file, rows, groups, con = NULL) {
    if (is.null(con)) {
        con <- dbConnect(SQLite(), file)
        on.exit(dbDisconnect(con))
    }
    if (dbExistsTable(con, "t") && dbGetQuery(con, "SELECT COUNT(*) AS n FROM t")$n == rows) return(invisible())
    if (dbExistsTable(con, "t")) dbRemoveTable(con, "t")
    set.seed(25)
    b0 <- rnorm(groups); b1 <- rnorm(groups, sd = 0.5)
    done <- 0
    t0 <- proc.time()[["elapsed"]]
    while (done < rows) {
        m <- min(BUILD_CHUNK_ROWS, rows - done)
        g <- sample.int(groups, m, TRUE)
        x <- rnorm(m); z <- runif(m)
        d <- data.frame(g = g, x = x, z = z, y = 1 + 0.5 * x - z + b0[g] + b1[g] * x + rnorm(m))
        dbWriteTable(con, "t", d, append = done > 0, row.names = FALSE)
        done <- done + m
    }
    cat(sprintf("built %s: %.0f rows, %.0f groups in %.1f s\n", file, rows, groups, proc.time()[["elapsed"]] - t0))
}

peak_rss_mb <- function() {
    s <- readLines("/proc/self/status")
    as.numeric(sub("[^0-9]*([0-9]+).*", "\\1", grep("^VmHWM", s, value = TRUE))) / 1024
}

fit_table <- function(file, con = NULL) {
    if (is.null(con)) {
        con <- dbConnect(SQLite(), file, flags = SQLITE_RO)
        on.exit(dbDisconnect(con))
    }
    invisible(gc(reset = TRUE))
    t0 <- proc.time()[["elapsed"]]
    fit <- lmmfit(formula, data = lmm_db(con, "t"))
    total <- proc.time()[["elapsed"]] - t0
    g <- gc()
    heap_mb <- sum(g[, ncol(g)])                 # "max used" (Mb) of Ncells and Vcells
    cat(sprintf("%s: rows %.0f  groups %.0f  database %.1f s  fit %.2f s  total %.1f s  R heap peak %.0f MB  process peak RSS %.0f MB\n",
                if (inherits(con, "SQLiteConnection")) "SQLite" else class(con)[1L],
                nobs(fit), ngrps(fit)[["g"]], fit$timing[["database"]], fit$timing[["fit"]], total, heap_mb,
                peak_rss_mb()))
    print(fixef(fit)); print(VarCorr(fit))
    if (check) {
        if (nobs(fit) > CHECK_MAX_ROWS) stop("the in-memory check is for tables of at most ", CHECK_MAX_ROWS, " rows")
        d <- dbGetQuery(con, "SELECT * FROM t")
        fm <- lmmfit(formula, d)
        ## relative to the vector's size: a theta element near 0 (no correlation) has no relative digits
        rel <- function(a, b) max(abs(a - b)) / max(abs(b))
        cat(sprintf("in memory vs database: deviance %.1e  fixef %.1e  theta %.1e (max |difference| / max |value|)\n",
                    rel(deviance(fit), deviance(fm)), rel(fixef(fit), fixef(fm)), rel(fit$theta, fm$theta)))
        print(rbind(database = fit$theta, memory = fm$theta), digits = 12)
    }
}

bench_postgres <- function() {
    suppressPackageStartupMessages(library(testthat))
    source("tests/testthat/helper-postgres.R")
    con <- local_postgres()                       # stopped when this function returns
    build_table("postgres", rows, groups, con)
    fit_table("postgres", con)
}

if (identical(file, "postgres")) {
    bench_postgres()
} else if (fit_only) {
    fit_table(file)
} else {
    build_table(file, rows, groups)
    ## the fit in a fresh process: its memory is the fit's alone
    me <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
    Sys.setenv(LMMFIT_BENCH_FIT_ONLY = "1")
    status <- system2(file.path(R.home("bin"), "Rscript"),
                      c(shQuote(me), sprintf("%.0f", rows), sprintf("%.0f", groups), shQuote(file), if (check) "check"))
    if (status != 0L) stop("the fit failed")
}
