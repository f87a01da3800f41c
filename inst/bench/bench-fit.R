## Benchmark: lmmfit against lme4::lmer, side by side in one R process.
##
## Usage (from the repository root, with lmmfit and lme4 installed):
##     Rscript inst/bench/bench-fit.R [CSV]
## The CSV path is the first argument, else the environment variable
## LMMFIT_BENCH_CSV, else inst/bench/results/bench-fit.csv (next to this script).
## LMMFIT_BENCH_REPS=k multiplies the default number of repeats by k (e.g. 0.25
## for a quick look; at least 1 repeat is always run).
##
## Both packages fit by REML with their default settings.  Each fit is repeated
## and the median wall-clock and CPU (user + system) seconds per fit reported;
## the lme4 and lmmfit repeats are interleaved so that load from other
## processes affects both alike.  One untimed warm-up fit of each comes first;
## its messages and warnings are listed under the table.  The objective is the REML
## criterion: lmmfit's fit$deviance_value and lme4::REMLcrit(m); their
## difference (lmmfit - lme4) is <= 0 when lmmfit's optimum is at least as good.

script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
bench_dir <- if (length(script) == 1L) dirname(script) else file.path("inst", "bench")
source(file.path(bench_dir, "common.R"))
csv <- bench_csv("bench-fit", "LMMFIT_BENCH_CSV", bench_dir)
rep_scale <- bench_rep_scale()

## ---- problems ---------------------------------------------------------------

simulate_big <- function(n = 200000L, ngroups = 2000L, seed = 20240601L) {
    set.seed(seed)
    f <- factor(sprintf("g%04d", rep_len(seq_len(ngroups), n)))
    x <- rnorm(n)
    ## true values: beta = (10, 2); random intercept sd 2, random slope sd 0.5,
    ## correlation 0.3; residual sd 1
    sd_b <- c(2, 0.5); rho <- 0.3
    S <- diag(sd_b) %*% matrix(c(1, rho, rho, 1), 2) %*% diag(sd_b)
    b <- matrix(rnorm(2L * ngroups), ngroups) %*% chol(S)
    g <- as.integer(f)
    y <- 10 + 2 * x + b[g, 1L] + b[g, 2L] * x + rnorm(n, sd = 1)
    data.frame(y = y, x = x, f = f)
}

problems <- list(
    list(name = "sleepstudy", formula = Reaction ~ Days + (Days | Subject),
         data = lme4::sleepstudy, reps = 20L, inner = 5L),
    list(name = "Penicillin", formula = diameter ~ 1 + (1 | plate) + (1 | sample),
         data = lme4::Penicillin, reps = 20L, inner = 5L),
    list(name = "sim200k", formula = y ~ x + (x | f),
         data = simulate_big(), reps = 5L, inner = 1L)
)

## ---- timing -----------------------------------------------------------------


fit_lme4 <- function(p) lme4::lmer(p$formula, data = p$data, REML = TRUE)
fit_lmmfit <- function(p) lmmfit::lmmfit(p$formula, data = p$data, REML = TRUE)
with_conditions <- function(expr) {
    notes <- character()
    value <- withCallingHandlers(expr,
        warning = function(w) { notes <<- c(notes, conditionMessage(w)); invokeRestart("muffleWarning") },
        message = function(m) { notes <<- c(notes, trimws(conditionMessage(m))); invokeRestart("muffleMessage") })
    list(value = value, notes = notes)
}

rows <- list()
notes <- list()
for (p in problems) {
    reps <- max(1L, as.integer(round(p$reps * rep_scale)))
    cat(sprintf("%-12s n = %d, %d repeats x %d fits ... ", p$name, nrow(p$data), reps, p$inner))
    ## warm-up, and the fits whose objectives and messages are reported
    m <- with_conditions(fit_lme4(p))
    f <- with_conditions(fit_lmmfit(p))
    for (x in m$notes) notes[[length(notes) + 1L]] <- sprintf("%s, lme4: %s", p$name, x)
    for (x in f$notes) notes[[length(notes) + 1L]] <- sprintf("%s, lmmfit: %s", p$name, x)
    m <- m$value; f <- f$value
    t_lme4 <- t_lmm <- matrix(NA_real_, reps, 2L, dimnames = list(NULL, c("wall", "cpu")))
    for (r in seq_len(reps)) {       # interleaved
        t_lme4[r, ] <- time_batch(function() quiet(fit_lme4(p)), p$inner)
        t_lmm[r, ] <- time_batch(function() quiet(fit_lmmfit(p)), p$inner)
    }
    crit_lme4 <- lme4::REMLcrit(m)
    crit_lmm <- f$deviance_value
    med <- function(t, j) median(t[, j])
    rows[[p$name]] <- data.frame(
        problem = p$name, n = nrow(p$data), reps = reps, fits_per_rep = p$inner,
        lme4_sec = med(t_lme4, "wall"), lmmfit_sec = med(t_lmm, "wall"),
        ratio = med(t_lme4, "wall") / med(t_lmm, "wall"),
        lme4_cpu = med(t_lme4, "cpu"), lmmfit_cpu = med(t_lmm, "cpu"),
        cpu_ratio = med(t_lme4, "cpu") / med(t_lmm, "cpu"),
        lme4_REMLcrit = crit_lme4, lmmfit_deviance = crit_lmm,
        diff = crit_lmm - crit_lme4,
        lme4_feval = m@optinfo$feval, lmmfit_feval = f$optinfo$feval,
        stringsAsFactors = FALSE)
    cat("done\n")
}
res <- do.call(rbind, rows)
rownames(res) <- NULL

## ---- report -----------------------------------------------------------------

cat(sprintf("\n%s | R %s | lme4 %s | lmmfit %s | %s cores | BLAS %s\n",
            format(Sys.time(), "%Y-%m-%d"), getRversion(), packageVersion("lme4"),
            packageVersion("lmmfit"), parallel::detectCores(),
            basename(extSoftVersion()[["BLAS"]])))
cat("seconds per fit, medians over repeats: *_sec wall clock, *_cpu user + system;\n",
    "ratio = lme4 / lmmfit; diff = lmmfit - lme4 objective (REML criterion; <= 0: lmmfit as good or better)\n\n", sep = "")
show <- res
show$lme4_sec <- sprintf("%.4f", show$lme4_sec)
show$lmmfit_sec <- sprintf("%.4f", show$lmmfit_sec)
show$ratio <- sprintf("%.1f", show$ratio)
show$lme4_cpu <- sprintf("%.4f", show$lme4_cpu)
show$lmmfit_cpu <- sprintf("%.4f", show$lmmfit_cpu)
show$cpu_ratio <- sprintf("%.1f", show$cpu_ratio)
show$lme4_REMLcrit <- sprintf("%.6f", show$lme4_REMLcrit)
show$lmmfit_deviance <- sprintf("%.6f", show$lmmfit_deviance)
show$diff <- sprintf("%.2e", show$diff)
print(show[c("problem", "n", "lme4_sec", "lmmfit_sec", "ratio", "lme4_cpu", "lmmfit_cpu", "cpu_ratio")],
      row.names = FALSE, right = TRUE)
cat("\n")
print(show[c("problem", "lme4_REMLcrit", "lmmfit_deviance", "diff", "lme4_feval", "lmmfit_feval")],
      row.names = FALSE, right = TRUE)
if (length(notes)) cat("\nmessages and warnings of the reported fits:\n", paste0("  ", unlist(notes), "\n"), sep = "")

dir.create(dirname(csv), recursive = TRUE, showWarnings = FALSE)
write.csv(res, csv, row.names = FALSE)
cat("\nwritten:", csv, "\n")
