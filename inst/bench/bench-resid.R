## Benchmark: residual variance functions and correlation structures, lmmfit
## against nlme::lme on the same models, side by side in one R process.
##
## Usage (from the repository root, with lmmfit and nlme installed):
##     Rscript inst/bench/bench-resid.R [n_rows]
## Default 10,000 rows (the issue's size).  LMMFIT_BENCH_REPS=k multiplies
## the number of repeats.  Reported per model: median CPU seconds of each
## package, the ratio, both log-likelihoods, and the peak memory R allocated
## during one lmmfit fit (gc()'s "max used").

script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
bench_dir <- if (length(script) == 1L) dirname(script) else file.path("inst", "bench")
source(file.path(bench_dir, "common.R"))
suppressPackageStartupMessages(library(nlme))
args <- commandArgs(trailingOnly = TRUE)
n_rows <- if (length(args)) as.integer(args[[1L]]) else 10000L
rep_scale <- bench_rep_scale()
reps <- max(1L, round(3 * rep_scale))

## Panels: subjects of m occasions at irregular real times, random
## intercepts, a two-level stratum with different residual sds, CAR(1)
## residuals (phi 0.5 per unit of time), a covariate x.
simulate_panel <- function(n, m = 8L, seed = 24L) {
    set.seed(seed)
    ns <- n %/% m
    id <- rep(seq_len(ns), each = m)
    time <- unlist(lapply(seq_len(ns), function(i) sort(runif(m, 0, 10))))
    sex <- rep(sample(c("F", "M"), ns, replace = TRUE), each = m)
    sdv <- ifelse(sex == "F", 1, 1.6)
    e <- numeric(length(id))
    for (i in seq_len(ns)) {
        k <- (i - 1L) * m + seq_len(m)
        C <- 0.5^abs(outer(time[k], time[k], "-"))
        e[k] <- drop(t(chol(C)) %*% rnorm(m))
    }
    x <- rnorm(length(id))
    data.frame(id = factor(id), time = time, sex = factor(sex), x = x, age = runif(length(id), 1, 5),
               y = 1 + 0.5 * x + rnorm(ns)[id] + sdv * e)
}

d <- simulate_panel(n_rows)
cases <- list(
    list("varIdent by sex", NULL, varIdent(form = ~ 1 | sex)),
    list("varPower of age", NULL, varPower(form = ~ age)),
    list("corCAR1 (real times)", corCAR1(form = ~ time | id), NULL),
    list("corCompSymm", corCompSymm(form = ~ 1 | id), NULL),
    list("corCAR1 + varIdent", corCAR1(form = ~ time | id), varIdent(form = ~ 1 | sex)))
cat(sprintf("%d rows, %d subjects; median CPU s of %d repeats\n", nrow(d), nlevels(d$id), reps))
for (cs in cases) {
    cor <- cs[[2L]]; var <- cs[[3L]]
    ours <- function() lmmfit(y ~ x + (1 | id), data = d, correlation = cor, weights = var)
    theirs <- function() lme(y ~ x, random = ~ 1 | id, data = d, correlation = cor, weights = var)
    a <- ours(); b <- theirs()
    to <- bench_cpu(ours, reps); tt <- bench_cpu(theirs, reps)
    cat(sprintf("%-24s lmmfit %7.3f s  nlme %7.3f s  ratio %5.1fx  logLik %.4f vs %.4f  peak MB %.0f\n",
                cs[[1L]], to, tt, tt / to, logLik(a), logLik(b),
                bench_peak_mb(ours)))
}
