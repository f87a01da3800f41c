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
## and the median elapsed time reported; the lme4 and lmmfit repeats are
## interleaved so that load from other processes affects both alike.  One
## untimed warm-up fit of each comes first.  The objective is the REML
## criterion: lmmfit's fit$deviance_value and lme4::REMLcrit(m); their
## difference (lmmfit - lme4) is <= 0 when lmmfit's optimum is at least as good.

suppressPackageStartupMessages({
    library(lmmfit)
    library(lme4)
})

args <- commandArgs(trailingOnly = TRUE)
script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
default_csv <- if (length(script) == 1L)
    file.path(dirname(script), "results", "bench-fit.csv") else
    file.path("inst", "bench", "results", "bench-fit.csv")
csv <- if (length(args) >= 1L) args[[1L]] else Sys.getenv("LMMFIT_BENCH_CSV", default_csv)
rep_scale <- as.numeric(Sys.getenv("LMMFIT_BENCH_REPS", "1"))
if (!is.finite(rep_scale) || rep_scale <= 0) stop("LMMFIT_BENCH_REPS must be a positive number")

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
         data = lme4::sleepstudy, reps = 20L),
    list(name = "Penicillin", formula = diameter ~ 1 + (1 | plate) + (1 | sample),
         data = lme4::Penicillin, reps = 20L),
    list(name = "sim200k", formula = y ~ x + (x | f),
         data = simulate_big(), reps = 5L)
)

## ---- timing -----------------------------------------------------------------

## wall-clock seconds (Sys.time has microsecond resolution; proc.time only 1 ms)
elapsed <- function(expr) {
    t0 <- Sys.time()
    force(expr)
    as.numeric(Sys.time() - t0, units = "secs")
}

fit_lme4 <- function(p) lme4::lmer(p$formula, data = p$data, REML = TRUE)
fit_lmmfit <- function(p) lmmfit::lmmfit(p$formula, data = p$data, REML = TRUE)

rows <- list()
for (p in problems) {
    reps <- max(1L, as.integer(round(p$reps * rep_scale)))
    cat(sprintf("%-12s n = %d, %d repeats ... ", p$name, nrow(p$data), reps))
    ## warm-up (and the fits whose objectives are reported)
    m <- fit_lme4(p)
    f <- fit_lmmfit(p)
    t_lme4 <- t_lmm <- numeric(reps)
    for (r in seq_len(reps)) {
        gc(FALSE)
        t_lme4[r] <- elapsed(fit_lme4(p))
        gc(FALSE)
        t_lmm[r] <- elapsed(fit_lmmfit(p))
    }
    crit_lme4 <- lme4::REMLcrit(m)
    crit_lmm <- f$deviance_value
    rows[[p$name]] <- data.frame(
        problem = p$name, n = nrow(p$data), reps = reps,
        lme4_sec = median(t_lme4), lmmfit_sec = median(t_lmm),
        ratio = median(t_lme4) / median(t_lmm),
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
cat("median elapsed seconds; ratio = lme4 / lmmfit; diff = lmmfit - lme4 objective (REML criterion)\n\n")
show <- res
show$lme4_sec <- sprintf("%.4f", show$lme4_sec)
show$lmmfit_sec <- sprintf("%.4f", show$lmmfit_sec)
show$ratio <- sprintf("%.1f", show$ratio)
show$lme4_REMLcrit <- sprintf("%.6f", show$lme4_REMLcrit)
show$lmmfit_deviance <- sprintf("%.6f", show$lmmfit_deviance)
show$diff <- sprintf("%.2e", show$diff)
print(show, row.names = FALSE, right = TRUE)

dir.create(dirname(csv), recursive = TRUE, showWarnings = FALSE)
write.csv(res, csv, row.names = FALSE)
cat("\nwritten:", csv, "\n")
