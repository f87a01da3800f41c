## Benchmark suite: lmmfit against lme4::lmer from 100 rows to a million,
## side by side in one R process.  Not a test.
##
## Usage (from the repository root, with lmmfit and lme4 installed):
##     Rscript inst/bench/bench-suite.R [CSV]
## The CSV path is the first argument, else the environment variable
## LMMFIT_BENCH_SUITE_CSV, else inst/bench/results/bench-suite.csv (next to
## this script; the folder is git- and build-ignored).
## Environment variables:
##   LMMFIT_BENCH_QUICK=1   skip the slow problems (InstEval, 1M rows, 200k crossed)
##   LMMFIT_BENCH_ONLY=a,b  run only the named problems
##   LMMFIT_BENCH_REPS=k    multiply the number of repeats by k (at least 1 is run)
##
## Every problem is fitted by REML with each package's default settings.  One
## untimed fit of each comes first: its objective, messages and warnings are
## reported, and its peak memory measured.  Then the timed repeats alternate
## lme4 and lmmfit, so that load from other processes hits both alike; the
## table shows medians of wall-clock and CPU (user + system) seconds per fit.
##
## Peak memory of a fit, in MB, beside the size of the data frame
## (object.size): the growth of the peak resident size (VmHWM) of a fresh R
## process that holds the data and fits once (peak_rss_child() below), and the
## growth of R's heap in this process (gc()'s "max used", see measured_fit()).

script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
bench_dir <- if (length(script) == 1L) dirname(script) else file.path("inst", "bench")
source(file.path(bench_dir, "common.R"))
csv <- bench_csv("bench-suite", "LMMFIT_BENCH_SUITE_CSV", bench_dir)
quick <- nzchar(Sys.getenv("LMMFIT_BENCH_QUICK")) && Sys.getenv("LMMFIT_BENCH_QUICK") != "0"
only <- strsplit(Sys.getenv("LMMFIT_BENCH_ONLY"), ",", fixed = TRUE)[[1L]]
rep_scale <- bench_rep_scale()

## ---- simulated data -----------------------------------------------------------

## (time | id): 2,500 subjects measured at times 0..3.
sim_long <- function(nid = 2500L, ntime = 4L, seed = 101L) {
    set.seed(seed)
    id <- factor(rep(seq_len(nid), each = ntime))
    time <- rep(seq_len(ntime) - 1, nid)
    b0 <- rnorm(nid, sd = 1.5); b1 <- rnorm(nid, sd = 0.4)
    y <- 5 + 0.8 * time + b0[id] + b1[id] * time + rnorm(nid * ntime)
    data.frame(y = y, time = time, id = id)
}

## (x | f): n rows in ngroups groups of equal size.
sim_slope <- function(n = 1000000L, ngroups = 10000L, seed = 202L) {
    set.seed(seed)
    f <- factor(rep_len(seq_len(ngroups), n))
    x <- rnorm(n)
    b0 <- rnorm(ngroups, sd = 2); b1 <- rnorm(ngroups, sd = 0.5)
    g <- as.integer(f)
    y <- 10 + 2 * x + b0[g] + (0.3 * b0[g] / 4 + b1[g]) * x + rnorm(n)
    data.frame(y = y, x = x, f = f)
}

## (1 | g) + (0 + f | g): an intercept and a 10-level factor's effects varying
## by the same 30 groups, 600 rows (issue 26: 56 covariance parameters).
sim_samegroup <- function(ng = 30L, nf = 10L, n = 600L, seed = 606L) {
    set.seed(seed)
    g <- rep(seq_len(ng), each = n %/% ng)
    f <- sample.int(nf, n, replace = TRUE)
    x <- rnorm(n)
    y <- 1 + x + rnorm(ng)[g] + matrix(rnorm(ng * nf, sd = 0.5), ng)[cbind(g, f)] + rnorm(n)
    data.frame(y = y, x = x, g = factor(g), f = factor(f))
}

## (1 | a) + (1 | b): two crossed factors with na and nb levels, assigned at random.
sim_crossed <- function(n = 200000L, na = 5000L, nb = 1000L, seed = 303L) {
    set.seed(seed)
    a <- factor(sample.int(na, n, replace = TRUE), levels = seq_len(na))
    b <- factor(sample.int(nb, n, replace = TRUE), levels = seq_len(nb))
    x <- rnorm(n)
    y <- 1 + 0.5 * x + rnorm(na, sd = 1)[a] + rnorm(nb, sd = 0.7)[b] + rnorm(n, sd = 2)
    data.frame(y = y, x = x, a = a, b = b)
}

## Pupils in classes in schools in districts in regions, with globally unique
## ids at every level: nclass classes of equal size, nested in nschool
## schools, in ndistrict districts, in nregion regions; a slope on x varies
## by school.
sim_nested <- function(n = 40000L, nclass = 8000L, nschool = 2000L, ndistrict = 200L,
                       nregion = 20L, seed = 404L) {
    set.seed(seed)
    cls <- rep_len(seq_len(nclass), n)
    sch <- (cls - 1L) %% nschool + 1L           # each class in one school
    dis <- (sch - 1L) %% ndistrict + 1L         # each school in one district
    reg <- (dis - 1L) %% nregion + 1L
    x <- rnorm(n)
    y <- 2 + 0.5 * x + rnorm(nregion, sd = 0.5)[reg] + rnorm(ndistrict, sd = 0.7)[dis] +
        rnorm(nschool)[sch] + rnorm(nschool, sd = 0.3)[sch] * x + rnorm(nclass, sd = 0.8)[cls] +
        rnorm(n, sd = 2)
    data.frame(y = y, x = x, region = factor(reg), district = factor(dis),
               school = factor(sch), class = factor(cls))
}

## Partially crossed: npupil pupils seen in nwave waves, each in a school;
## a share `move` of the pupils changes school once, at a random wave.
sim_partial <- function(npupil = 6000L, nwave = 3L, nschool = 600L, move = 0.2, seed = 505L) {
    set.seed(seed)
    home <- sample.int(nschool, npupil, replace = TRUE)
    movers <- runif(npupil) < move
    other <- sample.int(nschool, npupil, replace = TRUE)
    at <- sample.int(nwave - 1L, npupil, replace = TRUE) + 1L   # first wave in the new school
    pupil <- rep(seq_len(npupil), each = nwave)
    wave <- rep(seq_len(nwave), npupil)
    school <- ifelse(movers[pupil] & wave >= at[pupil], other[pupil], home[pupil])
    x <- rnorm(length(pupil))
    y <- 1 + 0.3 * x + 0.2 * wave + rnorm(npupil)[pupil] + rnorm(nschool, sd = 0.6)[school] +
        rnorm(length(pupil))
    data.frame(y = y, x = x, wave = wave, pupil = factor(pupil), school = factor(school))
}

problems <- list(
    list(name = "sleepstudy", slow = FALSE, reps = 20L, inner = 5L,
         formula = Reaction ~ Days + (Days | Subject), data = function() lme4::sleepstudy),
    list(name = "Penicillin", slow = FALSE, reps = 20L, inner = 5L,
         formula = diameter ~ 1 + (1 | plate) + (1 | sample), data = function() lme4::Penicillin),
    list(name = "Pastes", slow = FALSE, reps = 20L, inner = 5L,
         formula = strength ~ 1 + (1 | batch/cask), data = function() lme4::Pastes),
    list(name = "long10k", slow = FALSE, reps = 10L, inner = 1L,
         formula = y ~ time + (time | id), data = function() sim_long()),
    list(name = "InstEval", slow = TRUE, reps = 3L, inner = 1L,
         formula = y ~ service + (1 | s) + (1 | d) + (1 | dept:service),
         data = function() lme4::InstEval),
    list(name = "slope1M", slow = TRUE, reps = 3L, inner = 1L,
         formula = y ~ x + (x | f), data = function() sim_slope()),
    list(name = "crossed200k", slow = TRUE, reps = 3L, inner = 1L,
         formula = y ~ x + (1 | a) + (1 | b), data = function() sim_crossed()),
    list(name = "nested40k", slow = FALSE, reps = 5L, inner = 1L,
         formula = y ~ x + (1 | school) + (1 | class), data = function() sim_nested()),
    list(name = "nested40k-slope", slow = FALSE, reps = 5L, inner = 1L,
         formula = y ~ x + (x | school) + (1 | class), data = function() sim_nested()),
    list(name = "nested40k-3", slow = FALSE, reps = 5L, inner = 1L,
         formula = y ~ x + (1 | district/school/class), data = function() sim_nested()),
    list(name = "nested1M", slow = TRUE, reps = 3L, inner = 1L,
         formula = y ~ x + (1 | region) + (1 | district) + (x | school) + (1 | class),
         data = function() sim_nested(1000000L, 50000L, 10000L, 500L, 20L)),
    list(name = "samegroup600", slow = FALSE, reps = 5L, inner = 1L,
         formula = y ~ x + (1 | g) + (0 + f | g), data = function() sim_samegroup()),
    list(name = "partial18k", slow = FALSE, reps = 5L, inner = 1L,
         formula = y ~ x + wave + (1 | pupil) + (1 | school), data = function() sim_partial())
)
if (quick) problems <- Filter(function(p) !p$slow, problems)
if (length(only)) problems <- Filter(function(p) p$name %in% only, problems)

## ---- measuring ----------------------------------------------------------------


proc_kb <- function(field) {
    st <- tryCatch(readLines("/proc/self/status"), error = function(e) character())
    v <- grep(paste0("^", field, ":"), st, value = TRUE)
    if (length(v) != 1L) return(NA_real_)
    as.numeric(gsub("[^0-9]", "", v))
}

## Value of f(), its messages/warnings, and the growth of R's heap in MB
## (gc()'s "max used", which includes the C code's R_alloc scratch) over what
## was in use before the fit.  R samples "max used" only when it collects
## garbage, counting the garbage not yet collected, so this figure depends on
## when collections happen: peak_rss_child() is the steadier measure.
measured_fit <- function(f) {
    g0 <- gc(reset = TRUE)
    heap0 <- sum(g0[, 2L])
    notes <- character()
    value <- withCallingHandlers(f(),
        warning = function(w) { notes <<- c(notes, conditionMessage(w)); invokeRestart("muffleWarning") },
        message = function(m) { notes <<- c(notes, trimws(conditionMessage(m))); invokeRestart("muffleMessage") })
    g1 <- gc()
    heap <- sum(g1[, ncol(g1)]) - heap0     # "max used" (Mb) since the reset
    list(value = value, notes = notes, peak_mb = heap)
}

## Peak memory of one fit by `pkg` of problem `name`, in MB: a fresh R process
## (this script, in child mode) makes the data, collects garbage, resets its
## peak resident size (VmHWM, through /proc/self/clear_refs) and fits once;
## the figure is the growth of VmHWM over the resident size before the fit.
## glibc's mmap threshold is fixed so that large blocks are always mapped
## afresh and returned when freed: otherwise the space the data's own
## construction freed would be reused and hide part of the fit's peak.
## NA without Linux's /proc.
peak_rss_child <- function(name, pkg) {
    if (!file.exists("/proc/self/clear_refs") || length(script) != 1L) return(NA_real_)
    out <- suppressWarnings(system2(file.path(R.home("bin"), "Rscript"), shQuote(script),
        stdout = TRUE, stderr = FALSE,
        env = c(sprintf("LMMFIT_BENCH_CHILD=%s,%s", name, pkg), "MALLOC_MMAP_THRESHOLD_=131072")))
    v <- as.numeric(sub("^PEAK_RSS_MB ", "", grep("^PEAK_RSS_MB ", out, value = TRUE)))
    if (length(v) == 1L) v else NA_real_
}

child <- strsplit(Sys.getenv("LMMFIT_BENCH_CHILD"), ",", fixed = TRUE)[[1L]]
if (length(child) == 2L) {
    p <- Filter(function(p) p$name == child[1L], problems)[[1L]]
    data <- p$data()
    invisible(gc()); invisible(gc())
    cat("5\n", file = "/proc/self/clear_refs")
    rss0 <- proc_kb("VmRSS")
    fit <- quiet(if (child[2L] == "lme4") lme4::lmer(p$formula, data = data, REML = TRUE)
                 else lmmfit::lmmfit(p$formula, data = data, REML = TRUE))
    cat(sprintf("PEAK_RSS_MB %.2f\n", (proc_kb("VmHWM") - rss0) / 1024))
    quit(save = "no")
}

rows <- list()
notes <- list()
for (p in problems) {
    data <- p$data()
    fit_lme4 <- function() lme4::lmer(p$formula, data = data, REML = TRUE)
    fit_lmm <- function() lmmfit::lmmfit(p$formula, data = data, REML = TRUE)
    reps <- max(1L, as.integer(round(p$reps * rep_scale)))
    cat(sprintf("%-12s n = %d, %d repeats x %d fits ... ", p$name, nrow(data), reps, p$inner))
    m <- measured_fit(fit_lme4)
    f <- measured_fit(fit_lmm)
    rss_lme4 <- peak_rss_child(p$name, "lme4")
    rss_lmm <- peak_rss_child(p$name, "lmmfit")
    for (x in m$notes) notes[[length(notes) + 1L]] <- sprintf("%s, lme4: %s", p$name, x)
    for (x in f$notes) notes[[length(notes) + 1L]] <- sprintf("%s, lmmfit: %s", p$name, x)
    t_lme4 <- t_lmm <- matrix(NA_real_, reps, 2L, dimnames = list(NULL, c("wall", "cpu")))
    for (r in seq_len(reps)) {
        t_lme4[r, ] <- time_batch(function() quiet(fit_lme4()), p$inner)
        t_lmm[r, ] <- time_batch(function() quiet(fit_lmm()), p$inner)
    }
    med <- function(t, j) median(t[, j])
    crit_lme4 <- lme4::REMLcrit(m$value)
    crit_lmm <- f$value$deviance_value
    rows[[p$name]] <- data.frame(
        problem = p$name, n = nrow(data), reps = reps, fits_per_rep = p$inner,
        lme4_sec = med(t_lme4, "wall"), lmmfit_sec = med(t_lmm, "wall"),
        ratio = med(t_lme4, "wall") / med(t_lmm, "wall"),
        lme4_cpu = med(t_lme4, "cpu"), lmmfit_cpu = med(t_lmm, "cpu"),
        cpu_ratio = med(t_lme4, "cpu") / med(t_lmm, "cpu"),
        lme4_REMLcrit = crit_lme4, lmmfit_REMLcrit = crit_lmm, diff = crit_lmm - crit_lme4,
        lme4_feval = m$value@optinfo$feval, lmmfit_feval = f$value$optinfo$feval,
        data_mb = as.numeric(object.size(data)) / 2^20,
        lme4_peak_mb = m$peak_mb, lmmfit_peak_mb = f$peak_mb,
        lme4_rss_mb = rss_lme4, lmmfit_rss_mb = rss_lmm,
        mem_ratio = rss_lmm / (as.numeric(object.size(data)) / 2^20),
        blas = basename(extSoftVersion()[["BLAS"]]),
        stringsAsFactors = FALSE)
    cat("done\n")
    rm(m, f, data); gc(FALSE)
}
res <- do.call(rbind, rows)
rownames(res) <- NULL

## ---- report -------------------------------------------------------------------

cat(sprintf("\n%s | R %s | lme4 %s | lmmfit %s | %s cores | BLAS %s | LAPACK %s\n",
            format(Sys.time(), "%Y-%m-%d"), getRversion(), packageVersion("lme4"),
            packageVersion("lmmfit"), parallel::detectCores(),
            basename(extSoftVersion()[["BLAS"]]), basename(La_library())))
cat("seconds per fit, medians over repeats: *_sec wall clock, *_cpu user + system;\n",
    "ratio = lme4 / lmmfit; diff = lmmfit - lme4 REML criterion (<= 0: lmmfit as good or better);\n",
    "*_rss_mb: peak resident size growth of a fresh process fitting once; mem_ratio = lmmfit_rss_mb / data_mb;\n",
    "*_peak_mb: R heap growth in this process (gc max used, sampled at collections); data_mb: the data frame\n\n", sep = "")
show <- res
for (v in c("lme4_sec", "lmmfit_sec", "lme4_cpu", "lmmfit_cpu")) show[[v]] <- sprintf("%.4f", show[[v]])
for (v in c("ratio", "cpu_ratio")) show[[v]] <- sprintf("%.1f", show[[v]])
for (v in c("lme4_REMLcrit", "lmmfit_REMLcrit")) show[[v]] <- sprintf("%.6f", show[[v]])
for (v in c("data_mb", "lme4_peak_mb", "lmmfit_peak_mb", "lme4_rss_mb", "lmmfit_rss_mb", "mem_ratio"))
    show[[v]] <- sprintf("%.1f", show[[v]])
show$diff <- sprintf("%.2e", show$diff)
print(show[c("problem", "n", "lme4_sec", "lmmfit_sec", "ratio", "lme4_cpu", "lmmfit_cpu", "cpu_ratio")],
      row.names = FALSE, right = TRUE)
cat("\n")
print(show[c("problem", "lme4_REMLcrit", "lmmfit_REMLcrit", "diff", "lme4_feval", "lmmfit_feval",
             "data_mb", "lme4_rss_mb", "lmmfit_rss_mb", "mem_ratio", "lme4_peak_mb", "lmmfit_peak_mb")],
      row.names = FALSE, right = TRUE)
if (length(notes)) cat("\nmessages and warnings of the reported fits:\n", paste0("  ", unlist(notes), "\n"), sep = "")
bad <- res$problem[res$diff > 1e-6]
if (length(bad)) cat("\nWARNING: lmmfit's optimum is worse than lme4's by > 1e-6 on:", bad, "\n")

dir.create(dirname(csv), recursive = TRUE, showWarnings = FALSE)
write.csv(res, csv, row.names = FALSE)
cat("\nwritten:", csv, "\n")
