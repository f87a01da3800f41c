## Shared by the inst/bench/bench-*.R scripts (sourced, not run on its own):
## the packages, where the CSV goes, the repeat scale, and the timer.

suppressPackageStartupMessages({
    library(lmmfit)
    library(lme4)
})

## The CSV path: the script's first argument, else the environment variable
## `envvar`, else inst/bench/results/<name>.csv beside the script.
bench_csv <- function(name, envvar, script_dir) {
    args <- commandArgs(trailingOnly = TRUE)
    if (length(args) >= 1L) return(args[[1L]])
    Sys.getenv(envvar, file.path(script_dir, "results", paste0(name, ".csv")))
}

## LMMFIT_BENCH_REPS scales every problem's number of timed repeats.
bench_rep_scale <- function() {
    s <- as.numeric(Sys.getenv("LMMFIT_BENCH_REPS", "1"))
    if (!is.finite(s) || s <= 0) stop("LMMFIT_BENCH_REPS must be a positive number")
    s
}

## Wall-clock and CPU (user + system) seconds per fit of `inner` fits.
## Sys.time has microsecond resolution; proc.time's CPU times only 1 ms, so the
## small problems run several fits per timed repeat.  On a machine shared with
## other work the CPU time is the steadier measure: BLAS here is single-threaded.
time_batch <- function(f, inner) {
    gc(FALSE)
    c0 <- proc.time(); t0 <- Sys.time()
    for (i in seq_len(inner)) f()
    t1 <- Sys.time(); c1 <- proc.time() - c0
    c(wall = as.numeric(t1 - t0, units = "secs") / inner,
      cpu = (c1[["user.self"]] + c1[["sys.self"]]) / inner)
}

## Median CPU seconds per call of f over `reps` timed repeats of `inner` calls.
bench_cpu <- function(f, reps, inner = 1L) {
    median(vapply(seq_len(reps), function(r) time_batch(f, inner)[["cpu"]], 0))
}

## Peak megabytes R allocates while f runs (gc's "max used", reset first).
bench_peak_mb <- function(f) {
    gc(reset = TRUE, full = TRUE)
    base <- sum(gc()[, 2L])
    f()
    sum(gc()[, 6L]) - base
}

## Fit quietly (singular-fit messages and convergence warnings would otherwise
## repeat for every timed fit); the untimed first fits record them once.
quiet <- function(expr) suppressMessages(suppressWarnings(expr))
