## Benchmark: lmmfit::parboot against lme4::bootMer, side by side in one R process.
##
## Usage (from the repository root, with lmmfit and lme4 installed):
##     Rscript inst/bench/bench-boot.R [CSV]
## The CSV path is the first argument, else the environment variable
## LMMFIT_BENCH_CSV, else inst/bench/results/bench-boot.csv (next to this script).
## LMMFIT_BENCH_NSIM_LME4 (default 200) and LMMFIT_BENCH_NSIM (default 10000)
## set the numbers of replicates.
##
## Per-replicate time (elapsed) of bootMer (statistic: fixef, theta, sigma) and
## of parboot (default statistic in C: fixef, SDs/correlations, sigma), for
## seed 001 (y ~ x + (1 | p)) and sleepstudy (Reaction ~ Days + (Days | Subject)),
## both use.u settings.  Also printed: the bootstrap SDs of the fixed effects,
## and for seed 001 the published bootMer SDs (nsim = 10000).

script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
bench_dir <- if (length(script) == 1L) dirname(script) else file.path("inst", "bench")
source(file.path(bench_dir, "common.R"))
csv <- bench_csv("bench-boot", "LMMFIT_BENCH_CSV", bench_dir)
nsim_lme4 <- as.integer(Sys.getenv("LMMFIT_BENCH_NSIM_LME4", "200"))
nsim_ours <- as.integer(Sys.getenv("LMMFIT_BENCH_NSIM", "10000"))

problems <- list(
    list(name = "seed001", formula = y ~ x + (1 | p), data = lmmfit::tenclusters,   # seed 001's data, regenerated exactly
         published = list(`FALSE` = c(1.915025294, 0.009903413), `TRUE` = c(0.055405505, 0.009868006))),
    list(name = "sleepstudy", formula = Reaction ~ Days + (Days | Subject), data = lme4::sleepstudy,
         published = NULL)
)

lme4_stat <- function(x) c(fixef(x), getME(x, "theta"), sigma(x))
elapsed <- function(expr) unname(system.time(expr)[["elapsed"]])

rows <- list()
for (pr in problems) {
    fit <- lmmfit(pr$formula, data = pr$data)
    m <- lmer(pr$formula, data = pr$data)
    p <- length(fixef(fit))
    for (use.u in c(FALSE, TRUE)) {
        ## untimed warm-up of each
        invisible(suppressWarnings(bootMer(m, lme4_stat, nsim = 2, use.u = use.u, seed = 1)))
        invisible(parboot(fit, nsim = 10, use.u = use.u, seed = 1, progress = FALSE))
        bm <- NULL
        t_lme4 <- elapsed(bm <- suppressMessages(suppressWarnings(
            bootMer(m, lme4_stat, nsim = nsim_lme4, use.u = use.u, seed = 1))))
        b <- NULL
        t_ours <- elapsed(b <- parboot(fit, nsim = nsim_ours, use.u = use.u, seed = 1, progress = FALSE))
        per_lme4 <- t_lme4 / nsim_lme4
        per_ours <- t_ours / nsim_ours
        sd_ours <- apply(b$t[, seq_len(p), drop = FALSE], 2, sd, na.rm = TRUE)
        sd_lme4 <- apply(bm$t[, seq_len(p), drop = FALSE], 2, sd, na.rm = TRUE)
        pub <- pr$published[[as.character(use.u)]]
        rows[[length(rows) + 1L]] <- data.frame(
            problem = pr$name, use.u = use.u,
            nsim_lme4 = nsim_lme4, nsim_lmmfit = nsim_ours,
            sec_lme4 = t_lme4, sec_lmmfit = t_ours,
            ms_per_rep_lme4 = 1000 * per_lme4, ms_per_rep_lmmfit = 1000 * per_ours,
            ratio = per_lme4 / per_ours,
            failed = b$nfail, nonconverged = b$nnonconv,
            sd_beta1_lmmfit = sd_ours[[1]], sd_beta2_lmmfit = sd_ours[[2]],
            sd_beta1_lme4 = sd_lme4[[1]], sd_beta2_lme4 = sd_lme4[[2]],
            sd_beta1_published = if (is.null(pub)) NA_real_ else pub[1],
            sd_beta2_published = if (is.null(pub)) NA_real_ else pub[2])
        cat(sprintf("%-10s use.u=%-5s  bootMer %7.3f ms/rep (%d reps)  parboot %7.4f ms/rep (%d reps, %.2f s)  ratio %6.1f\n",
                    pr$name, use.u, 1000 * per_lme4, nsim_lme4, 1000 * per_ours, nsim_ours, t_ours,
                    per_lme4 / per_ours))
        cat(sprintf("           SD of fixed effects: parboot %s; bootMer %s%s\n",
                    paste(format(sd_ours, digits = 5), collapse = " / "),
                    paste(format(sd_lme4, digits = 5), collapse = " / "),
                    if (is.null(pub)) "" else paste0("; published (10000) ",
                                                     paste(format(pub, digits = 5), collapse = " / "))))
    }
}
res <- do.call(rbind, rows)
print(res[, c("problem", "use.u", "ms_per_rep_lme4", "ms_per_rep_lmmfit", "ratio", "sec_lmmfit")],
      digits = 4, row.names = FALSE)
dir.create(dirname(csv), showWarnings = FALSE, recursive = TRUE)
utils::write.csv(res, csv, row.names = FALSE)
cat("results written to", csv, "\n")
