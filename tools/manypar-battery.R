#!/usr/bin/env Rscript
## One-term models with many covariance parameters ((0 + f | g), (f | g),
## (0 + f + x | g) with f of 4 to 8 levels: 10 to 45 parameters), which
## tools/optimum-battery.R's designs do not include, fitted by the installed
## lmmfit and by lme4 converged tightly (tests/testthat/helper-optimum.R).
## Prints every case and how many fits are worse (> 1e-6), better, or failed.
##
##   R_LIBS=/tmp/lib Rscript tools/manypar-battery.R FIRST_SEED N OUT.rds
file_arg <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
source(file.path(dirname(file_arg), "..", "tests", "testthat", "helper-optimum.R"))
library(lmmfit)
args <- commandArgs(TRUE)
if (length(args) != 3L) stop("usage: Rscript tools/manypar-battery.R FIRST_SEED N OUT.rds")
first <- as.integer(args[1]); N <- as.integer(args[2])
res <- do.call(rbind, lapply(first:(first + N - 1), function(seed) {
    set.seed(seed)
    ng <- sample(15:60, 1); nf <- sample(4:8, 1); n <- ng * sample(8:30, 1)
    d <- data.frame(g = factor(sample(ng, n, TRUE)), f = factor(sample(nf, n, TRUE)), x = rnorm(n))
    L <- matrix(rnorm(nf * nf, sd = 0.4), nf); if (runif(1) < 0.5) L[, sample(nf, 2)] <- 0
    b <- matrix(rnorm(ng * nf), ng) %*% t(L)
    d$y <- 1 + 0.5 * d$x + b[cbind(as.integer(d$g), as.integer(d$f))] + rnorm(n)
    f <- if (seed %% 3 == 0) y ~ x + (f | g)
         else if (seed %% 3 == 1) y ~ x + (0 + f | g) else y ~ x + (0 + f + x | g)
    REML <- seed %% 2 == 0
    t0 <- proc.time()[[3]]
    fit <- tryCatch(suppressMessages(suppressWarnings(lmmfit(f, d, REML = REML))), error = function(e) NULL)
    t1 <- proc.time()[[3]]
    ref <- lme4_tight(f, d, REML)
    data.frame(seed, npar = if (is.null(fit)) NA else length(fit$theta), REML,
               lmmfit = if (is.null(fit)) NA else fit$deviance_value, lme4 = as.numeric(ref),
               feval = if (is.null(fit)) NA else fit$optinfo$feval, sec = t1 - t0)
}))
res$diff <- res$lmmfit - res$lme4
print(res)
cat("worse (> 1e-6):", sum(res$diff > 1e-6, na.rm = TRUE), " better:", sum(res$diff < -1e-6, na.rm = TRUE),
    " errors:", sum(is.na(res$lmmfit)), "\n")
cat("total lmmfit sec", sum(res$sec), " median feval", median(res$feval), "\n")
saveRDS(res, args[3])
