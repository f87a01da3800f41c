## Test levels, for running the suite under slow tools (make valgrind).
##   LMMFIT_TEST_LEVEL = "full" (the default: everything runs)
##                     | "valgrind" (make valgrind: the slowest parts skip)
## A slow test (or a slow part of one) calls skip_if_slow_level() first; the
## checks it makes are never loosened, only skipped under the slow tools.
test_level <- function() {
    lev <- Sys.getenv("LMMFIT_TEST_LEVEL", "full")
    if (!lev %in% c("full", "valgrind"))
        stop("LMMFIT_TEST_LEVEL must be 'full' or 'valgrind', not '", lev, "'")
    lev
}
skip_if_slow_level <- function() {
    if (test_level() != "full") testthat::skip(sprintf("slow: skipped at LMMFIT_TEST_LEVEL=%s", test_level()))
}

## A count for randomised tests: the environment variable `var` when set, else
## `full` (or `reduced` under the slow tools).
test_count <- function(var, full, reduced = full) {
    v <- Sys.getenv(var, "")
    if (nzchar(v)) {
        n <- suppressWarnings(as.integer(v))
        if (is.na(n) || n < 0L) stop(var, " must be a non-negative integer")
        return(n)
    }
    if (test_level() == "full") full else reduced
}
