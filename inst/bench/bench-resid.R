## Benchmark: residual variance functions and correlation structures, lmmfit
## against nlme (lme and gls) on the same models, side by side in one R
## process: the issue's list at 10,000 rows (seed 004's design, an
## Ovary-like ARMA(1,1), Orthodont-like varIdent, BodyWeight-like varPower,
## an irregularly timed CAR(1), a spatial corExp, gls with compound
## symmetry), then the 100,000-row AR(1) / CAR(1) panels, and a crossed
## design with AR(1) residuals against glmmTMB when it is installed.
##
## Usage (from the repository root, with lmmfit and nlme installed):
##     Rscript inst/bench/bench-resid.R [n_rows] [n_big]
## Defaults 10,000 and 100,000 rows (n_big = 0 skips the large panels).
## LMMFIT_BENCH_REPS=k multiplies the number of repeats.  Reported per
## model: median CPU seconds of each package, the ratio, both
## log-likelihoods, and the peak memory R allocated during one lmmfit fit.

script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
bench_dir <- if (length(script) == 1L) dirname(script) else file.path("inst", "bench")
source(file.path(bench_dir, "common.R"))
suppressPackageStartupMessages({library(lmmfit); library(nlme)})
args <- commandArgs(trailingOnly = TRUE)
n_rows <- if (length(args) >= 1L) as.integer(args[[1L]]) else 10000L
n_big <- if (length(args) >= 2L) as.integer(args[[2L]]) else 100000L
rep_scale <- bench_rep_scale()
reps <- max(1L, round(3 * rep_scale))

## Panels of m occasions per subject: integer times 0..m-1 (or sorted real
## times in [0, 10]), random intercepts, a two-level stratum with residual
## sds 1 and 1.6, AR(1)-type residuals, covariates x and age.
simulate_panel <- function(n, m = 8L, real_times = FALSE, seed = 24L) {
    set.seed(seed)
    ns <- n %/% m
    id <- rep(seq_len(ns), each = m)
    time <- if (real_times) unlist(lapply(seq_len(ns), function(i) sort(runif(m, 0, 10))))
            else rep(seq_len(m) - 1, ns)
    sex <- rep(sample(c("F", "M"), ns, replace = TRUE), each = m)
    sdv <- ifelse(sex == "F", 1, 1.6)
    e <- numeric(length(id))
    for (i in seq_len(ns)) {
        k <- (i - 1L) * m + seq_len(m)
        e[k] <- drop(t(chol(0.5^abs(outer(time[k], time[k], "-")))) %*% rnorm(m))
    }
    x <- rnorm(length(id))
    data.frame(id = factor(id), time = time, sex = factor(sex), x = x, age = runif(length(id), 1, 5),
               y = 1 + 0.5 * x + rnorm(ns)[id] + sdv * e)
}

## Sites of 16 points in the unit square, exponential correlation (range
## 0.3) with a nugget, site intercepts.
simulate_sites <- function(n, m = 16L, seed = 5L) {
    set.seed(seed)
    S <- n %/% m
    d <- data.frame(site = factor(rep(seq_len(S), each = m)), x = runif(S * m), y = runif(S * m))
    e <- unlist(lapply(seq_len(S), function(s) {
        D <- as.matrix(dist(cbind(d$x[(s - 1L) * m + seq_len(m)], d$y[(s - 1L) * m + seq_len(m)])))
        drop(t(chol(0.3 * diag(m) + exp(-D / 0.3))) %*% rnorm(m))
    }))
    d$z <- e + rnorm(S)[d$site] + d$x
    d
}

supported <- function(cor) !inherits(tryCatch(lmmfit(y ~ x + (1 | id), simulate_panel(80L), correlation = cor),
                                              error = function(e) e), "error")

row <- function(label, ours, theirs, reps) {
    a <- quiet(ours()); b <- quiet(theirs())
    to <- bench_cpu(function() quiet(ours()), reps)
    tt <- bench_cpu(function() quiet(theirs()), reps)
    cat(sprintf("%-30s lmmfit %7.3f s  ref %8.3f s  ratio %6.1fx  logLik %.4f vs %.4f  peak MB %.0f\n",
                label, to, tt, tt / to, logLik(a), logLik(b), bench_peak_mb(function() quiet(ours()))))
}

int_panel <- simulate_panel(n_rows)
real_panel <- simulate_panel(n_rows, real_times = TRUE)
sites <- simulate_sites(n_rows)
cat(sprintf("%d rows; median CPU s of %d repeats; ref = nlme\n", n_rows, reps))
row("seed 004: corAR1, (time | id)",
    function() lmmfit(y ~ time + sex + (time | id), int_panel, correlation = corAR1(form = ~ time | id)),
    function() lme(y ~ time + sex, random = ~ time | id, data = int_panel,
                   correlation = corAR1(form = ~ time | id)), reps)
arma <- corARMA(form = ~ time | id, p = 1, q = 1)
if (supported(arma)) {
    row("Ovary-like: corARMA(1, 1)",
        function() lmmfit(y ~ x + (1 | id), int_panel, correlation = arma),
        function() lme(y ~ x, random = ~ 1 | id, data = int_panel, correlation = arma), reps)
} else cat("corARMA: not supported by this lmmfit\n")
row("Orthodont-like: varIdent",
    function() lmmfit(y ~ x + (1 | id), real_panel, weights = varIdent(form = ~ 1 | sex)),
    function() lme(y ~ x, random = ~ 1 | id, data = real_panel, weights = varIdent(form = ~ 1 | sex)), reps)
row("BodyWeight-like: varPower",
    function() lmmfit(y ~ x + (1 | id), real_panel, weights = varPower(form = ~ age)),
    function() lme(y ~ x, random = ~ 1 | id, data = real_panel, weights = varPower(form = ~ age)), reps)
row("irregular times: corCAR1",
    function() lmmfit(y ~ x + (1 | id), real_panel, correlation = corCAR1(form = ~ time | id)),
    function() lme(y ~ x, random = ~ 1 | id, data = real_panel, correlation = corCAR1(form = ~ time | id)),
    reps)
row("corCAR1 + varIdent",
    function() lmmfit(y ~ x + (1 | id), real_panel, correlation = corCAR1(form = ~ time | id),
                      weights = varIdent(form = ~ 1 | sex)),
    function() lme(y ~ x, random = ~ 1 | id, data = real_panel, correlation = corCAR1(form = ~ time | id),
                   weights = varIdent(form = ~ 1 | sex)), reps)
row("spatial: corExp + nugget",
    function() lmmfit(z ~ x + (1 | site), sites, correlation = corExp(form = ~ x + y | site, nugget = TRUE)),
    function() lme(z ~ x, random = ~ 1 | site, data = sites,
                   correlation = corExp(form = ~ x + y | site, nugget = TRUE)), max(1L, reps %/% 3L))
row("gls: corCompSymm",
    function() lmmfit(y ~ x + sex, real_panel, correlation = corCompSymm(form = ~ 1 | id)),
    function() gls(y ~ x + sex, real_panel, correlation = corCompSymm(form = ~ 1 | id)), reps)
row("gls: corAR1 + varIdent",
    function() lmmfit(y ~ x + sex, int_panel, correlation = corAR1(form = ~ time | id),
                      weights = varIdent(form = ~ 1 | sex)),
    function() gls(y ~ x + sex, int_panel, correlation = corAR1(form = ~ time | id),
                   weights = varIdent(form = ~ 1 | sex)), reps)

if (n_big > 0L) {
    big_int <- simulate_panel(n_big)
    big_real <- simulate_panel(n_big, real_times = TRUE)
    cat(sprintf("\n%d rows; one nlme fit each\n", n_big))
    row("panel: corAR1",
        function() lmmfit(y ~ x + (1 | id), big_int, correlation = corAR1(form = ~ time | id)),
        function() lme(y ~ x, random = ~ 1 | id, data = big_int, correlation = corAR1(form = ~ time | id)), 1L)
    row("panel: corCAR1",
        function() lmmfit(y ~ x + (1 | id), big_real, correlation = corCAR1(form = ~ time | id)),
        function() lme(y ~ x, random = ~ 1 | id, data = big_real, correlation = corCAR1(form = ~ time | id)),
        1L)
}

## A crossed design with AR(1) residuals within subjects, which nlme cannot
## fit: subject and item intercepts, items crossed with subjects (glmmTMB's
## residual AR(1) is an ar1() random-effects term on the occasions with the
## dispersion fixed near 0).
if (requireNamespace("glmmTMB", quietly = TRUE)) {
    cr <- simulate_panel(min(n_rows, 4000L))
    cr$item <- factor(sample(1:20, nrow(cr), replace = TRUE))
    cr$y <- cr$y + rnorm(20)[cr$item]
    cr$occasion <- factor(cr$time)
    ours <- tryCatch(lmmfit(y ~ x + (1 | id) + (1 | item), cr, correlation = ar1(~ time | id)), error = function(e) e)
    if (inherits(ours, "error")) {
        cat(sprintf("\ncrossed (1 | id) + (1 | item) with AR(1) within id: lmmfit refuses (%s)\n", conditionMessage(ours)))
    } else {
        row("crossed + AR(1) vs glmmTMB",
            function() lmmfit(y ~ x + (1 | id) + (1 | item), cr, correlation = ar1(~ time | id)),
            function() glmmTMB::glmmTMB(y ~ x + (1 | id) + (1 | item) + ar1(0 + occasion | id), data = cr,
                                        dispformula = ~ 0, REML = TRUE), 1L)
    }
} else cat("\nglmmTMB not installed: the crossed AR(1) comparison is skipped\n")
