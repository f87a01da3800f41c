## A PostgreSQL server for the tests: Debian's server binaries, a temporary
## data directory, a loopback port; stopped by a deferred teardown (on
## failure too).  The server refuses to run as root, so as root it runs as
## the 'postgres' user (runuser); as anyone else it runs as that user.

## Seconds pg_ctl waits for the server to start or stop.
PG_WAIT_SECONDS <- 60L

## The directory of initdb/pg_ctl, or "" when no server is installed.
pg_bin_dir <- function() {
    env <- Sys.getenv("LMMFIT_PG_BIN")
    if (nzchar(env)) return(env)
    cand <- sort(Sys.glob("/usr/lib/postgresql/*/bin/initdb"), decreasing = TRUE)
    if (length(cand)) dirname(cand[1L]) else ""
}

## Runs a server binary, as 'postgres' when we are root; the exit status.
## The sanitizer run preloads ASan into R (tools/sanitize.sh): the server's
## binaries must not inherit it (postgres -V hangs under it), so they run
## without LD_PRELOAD and the sanitizers' options.
pg_run <- function(bin, args, as_postgres, log) {
    argv <- if (as_postgres) c("runuser", "-u", "postgres", "--", bin, args) else c(bin, args)
    argv <- c("-u", "LD_PRELOAD", "-u", "ASAN_OPTIONS", "-u", "UBSAN_OPTIONS", argv)
    system2("env", shQuote(argv), stdout = log, stderr = log)
}

## Starts a server and returns a DBI connection to it; the server is stopped
## and its directory removed when `envir` ends.  Skips the calling test when
## there is no server binary, no RPostgreSQL, or (as root) no 'postgres' user.
local_postgres <- function(envir = parent.frame()) {
    testthat::skip_if_not_installed("RPostgreSQL")
    bin <- pg_bin_dir()
    if (!nzchar(bin) || !file.exists(file.path(bin, "pg_ctl")))
        testthat::skip("no PostgreSQL server binaries (apt-get install postgresql, or set LMMFIT_PG_BIN)")
    root <- identical(unname(Sys.info()[["effective_user"]]), "root")
    if (root && system2("id", c("-u", "postgres"), stdout = FALSE, stderr = FALSE) != 0L)
        testthat::skip("running as root and there is no 'postgres' user to run the server as")
    dir <- tempfile("lmmfit-pg-", tmpdir = "/tmp")
    dir.create(dir, mode = "0700")
    if (root) system2("chown", c("postgres:", shQuote(dir)))
    log <- tempfile("pg-commands-")                  # ours (the server's own log is in dir)
    data <- file.path(dir, "data")
    if (pg_run(file.path(bin, "initdb"), c("-D", data, "-A", "trust", "-U", "lmmfit", "-E", "UTF8", "--no-sync"),
               root, log) != 0L)
        stop("initdb failed: ", paste(readLines(log), collapse = "\n"))
    port <- NA
    for (try in 1:5) {
        p <- sample(20000:40000, 1L)
        ok <- pg_run(file.path(bin, "pg_ctl"), c("-D", data, "-l", file.path(dir, "server.log"), "-w", "-t", PG_WAIT_SECONDS, "-o",
                                                 sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", p, dir),
                                                 "start"), root, log) == 0L
        if (ok) { port <- p; break }
    }
    stopper <- function() {
        pg_run(file.path(bin, "pg_ctl"), c("-D", data, "-m", "fast", "-w", "-t", PG_WAIT_SECONDS, "stop"), root,
               FALSE)
        unlink(c(dir, log), recursive = TRUE)
    }
    withr::defer(stopper(), envir = envir)
    if (is.na(port))
        stop("the PostgreSQL server did not start: ",
             paste(c(readLines(log), readLines(file.path(dir, "server.log"), warn = FALSE)), collapse = "\n"))
    con <- DBI::dbConnect(RPostgreSQL::PostgreSQL(), host = "127.0.0.1", port = port, user = "lmmfit",
                          dbname = "postgres")
    withr::defer(DBI::dbDisconnect(con), envir = envir)      # (runs before the server stops)
    con
}
