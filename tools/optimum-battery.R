#!/usr/bin/env Rscript
## The optimum battery of issue 14 at size, outside testthat: N random designs
## (tests/testthat/helper-optimum.R), each fitted by the installed lmmfit and
## by lme4 converged tightly (the better of nloptwrap and bobyqa), on several
## processes.  Writes every case to a CSV and prints a summary: how many fits
## are better than lme4's, equal (within 1e-6) or worse, the worst ones, the
## evaluation counts and the times.  Exits with status 1 when any fit is worse
## or fails, so that it can gate a run.
##
##   Rscript tools/optimum-battery.R [N] [CSV] [--seed=FIRST] [--cores=K]
##   R_LIBS=/tmp/lib Rscript tools/optimum-battery.R 300 /tmp/battery.csv
##
## N defaults to LMMFIT_OPTIMUM_N or 10000; CSV to optimum-battery.csv; the
## seeds are FIRST, FIRST + 1, ... (default 1, as in test-optimum.R); K
## defaults to 2 (LMMFIT_OPTIMUM_CORES).  A case of seed s is rebuilt with
## optimum_design(s) after sourcing the helper.

args <- commandArgs(trailingOnly = TRUE)
option <- function(name, default) {
    hit <- grep(sprintf("^--%s=", name), args, value = TRUE)
    if (length(hit)) sub(sprintf("^--%s=", name), "", hit[length(hit)]) else default
}
positional <- grep("^--", args, value = TRUE, invert = TRUE)
n <- as.integer(if (length(positional) >= 1) positional[1] else Sys.getenv("LMMFIT_OPTIMUM_N", "10000"))
csv <- if (length(positional) >= 2) positional[2] else "optimum-battery.csv"
first <- as.integer(option("seed", "1"))
cores <- as.integer(option("cores", Sys.getenv("LMMFIT_OPTIMUM_CORES", "2")))
if (is.na(n) || n < 1L || is.na(first) || is.na(cores) || cores < 1L)
    stop("usage: Rscript tools/optimum-battery.R [N] [CSV] [--seed=FIRST] [--cores=K]")

## the helper, next to the test that uses it
file_arg <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
top <- if (length(file_arg)) normalizePath(file.path(dirname(file_arg), "..")) else getwd()
source(file.path(top, "tests", "testthat", "helper-optimum.R"))
for (pkg in c("lmmfit", "lme4"))
    if (!requireNamespace(pkg, quietly = TRUE)) stop("package '", pkg, "' is not installed")

cat(sprintf("optimum battery: %d designs (seeds %d..%d), lmmfit %s from %s, lme4 %s, %d processes\n",
            n, first, first + n - 1L, utils::packageVersion("lmmfit"),
            dirname(find.package("lmmfit")), utils::packageVersion("lme4"), cores))
t0 <- proc.time()[["elapsed"]]
cases <- run_battery(seq(first, length.out = n), cores = cores)
wall <- proc.time()[["elapsed"]] - t0
utils::write.csv(cases, csv, row.names = FALSE)

outcome <- battery_outcome(cases)
writeLines(battery_summary(cases))
cat(sprintf("  wall time %.0f s on %d processes: %.4f s per case; extrapolated to 10,000 cases: %.1f min\n",
            wall, cores, wall / n, wall / n * 1e4 / 60))
cat("  by kind: cases, worse, better\n")
for (k in sort(unique(cases$kind))) {
    o <- outcome[cases$kind == k]
    cat(sprintf("    %-8s %6d %6d (%4.1f%%) %6d (%4.1f%%)\n", k, length(o), sum(o == "worse"),
                100 * mean(o == "worse"), sum(o == "better"), 100 * mean(o == "better")))
}
for (reml in c(TRUE, FALSE)) {
    o <- outcome[cases$REML == reml]
    cat(sprintf("    %-8s %6d %6d (%4.1f%%) %6d (%4.1f%%)\n", if (reml) "REML" else "ML", length(o),
                sum(o == "worse"), 100 * mean(o == "worse"), sum(o == "better"), 100 * mean(o == "better")))
}

show <- function(title, rows) {
    if (!nrow(rows)) return(invisible())
    cat(title, "\n")
    writeLines(paste0("    ", battery_describe(rows)))
}
worse <- cases[outcome == "worse", , drop = FALSE]
show(sprintf("  the worst %d of %d worse fits:", min(15, nrow(worse)), nrow(worse)),
     utils::head(worse[order(-worse$diff), , drop = FALSE], 15))
show("  lmmfit errors:", utils::head(cases[outcome == "lmmfit error", , drop = FALSE], 15))
better <- cases[outcome == "better", , drop = FALSE]
show(sprintf("  the %d largest of %d fits better than lme4's:", min(5, nrow(better)), nrow(better)),
     utils::head(better[order(better$diff), , drop = FALSE], 5))
no_ref <- cases[outcome == "no lme4 value", , drop = FALSE]
if (nrow(no_ref))
    cat(sprintf("  lme4 gave no value on %d designs, e.g. seed %d: %s\n", nrow(no_ref), no_ref$seed[1],
                no_ref$lme4_error[1]))
cat(sprintf("  all cases: %s\n", normalizePath(csv)))
quit(status = if (any(outcome %in% c("worse", "lmmfit error"))) 1L else 0L)
