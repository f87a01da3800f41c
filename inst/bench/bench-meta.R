## Benchmark: meta-analysis with known sampling variances, metafit() against
## metafor's rma (tens of studies, seed 003's size) and rma.mv (a multilevel
## model of many effects), side by side in one R process.
##
## Usage (from the repository root, with lmmfit and metafor installed):
##     Rscript inst/bench/bench-meta.R [k_effects] [n_studies]
## The multilevel problem defaults to 100,000 effects in 5,000 studies
## (effects within studies, (1 | study/effect) = rma.mv's
## random = ~ 1 | study/effect, sparse = TRUE).  LMMFIT_BENCH_REPS=k
## multiplies the number of repeats.  Reported: median CPU seconds per fit,
## the ratio, the REML log-likelihoods and the peak memory R allocated
## (gc()'s "max used") for each package's fit.

script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
bench_dir <- if (length(script) == 1L) dirname(script) else file.path("inst", "bench")
source(file.path(bench_dir, "common.R"))
suppressPackageStartupMessages(library(metafor))
args <- commandArgs(trailingOnly = TRUE)
k_big <- if (length(args) >= 1L) as.integer(args[[1L]]) else 100000L
n_studies <- if (length(args) >= 2L) as.integer(args[[2L]]) else 5000L
rep_scale <- bench_rep_scale()

report <- function(label, ours, theirs, ll_ours, ll_theirs, mem) {
    cat(sprintf("%-44s metafit %9.5f s   metafor %9.5f s   ratio %6.1fx   logLik %.6f vs %.6f   peak MB %s\n",
                label, ours, theirs, theirs / ours, ll_ours, ll_theirs,
                paste(sprintf("%.0f", mem), collapse = " / ")))
}

## Seed 003's size: the 13 BCG trials, random-effects model and meta-regression.
dat <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
reps <- max(3L, round(7 * rep_scale))
for (case in list(list("BCG, REML, k = 13", yi ~ 1 + (1 | trial), NULL, "REML"),
                  list("BCG, REML, ablat moderator, k = 13", yi ~ ablat + (1 | trial), ~ ablat, "REML"),
                  list("BCG, DerSimonian-Laird, k = 13", yi ~ 1 + (1 | trial), NULL, "DL"))) {
    fo <- case[[2L]]; mods <- case[[3L]]; method <- case[[4L]]
    ours <- function() metafit(fo, vi = vi, data = dat, method = method)
    theirs <- function() if (is.null(mods)) rma(yi, vi, data = dat, method = method)
                         else rma(yi, vi, mods = mods, data = dat, method = method)
    a <- ours(); b <- theirs()
    report(case[[1L]], bench_cpu(ours, reps, 200L), bench_cpu(theirs, reps, 50L),
           a$fit_stats["ll", "REML"], b$fit.stats["ll", "REML"], c(bench_peak_mb(ours), bench_peak_mb(theirs)))
}

## The multilevel model: effects in studies, a moderator.
set.seed(3)
study <- sample(rep_len(seq_len(n_studies), k_big))
big <- data.frame(study = factor(study), effect = factor(seq_len(k_big)), x = rnorm(k_big),
                  vi = rchisq(k_big, 10) / 10 * 0.05)
big$yi <- 0.2 + 0.1 * big$x + rnorm(n_studies, 0, 0.3)[study] + rnorm(k_big, 0, 0.15) + rnorm(k_big, 0, sqrt(big$vi))
ours <- function() metafit(yi ~ x + (1 | study/effect), vi = vi, data = big)
theirs <- function() rma.mv(yi, vi, mods = ~ x, random = ~ 1 | study/effect, data = big, sparse = TRUE)
breps <- max(1L, round(3 * rep_scale))
t_ours <- bench_cpu(ours, breps)
a <- ours()
t_theirs <- bench_cpu(theirs, 1L)
b <- theirs()
report(sprintf("multilevel, %d effects in %d studies", k_big, n_studies), t_ours, t_theirs,
       a$fit_stats["ll", "REML"], b$fit.stats["ll", "REML"], c(bench_peak_mb(ours), bench_peak_mb(theirs)))
