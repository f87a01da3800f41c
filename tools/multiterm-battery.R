#!/usr/bin/env Rscript
## Random multi-term designs (issue 26): several random-effect terms,
## crossed, nested, partially crossed, with slopes and with singular optima,
## fitted by the installed lmmfit, by lme4 with its defaults (timed) and by
## lme4 converged tightly (the reference optimum: tests/testthat/helper-optimum.R).
## Prints every case, how many fits are worse than the tight optimum
## (> 1e-6), better, or failed, and the median and worst ratio of lmmfit's
## CPU time to lme4's default fit.
##
##   R_LIBS=/tmp/lib Rscript tools/multiterm-battery.R FIRST_SEED N OUT.rds
file_arg <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
source(file.path(dirname(file_arg), "..", "tests", "testthat", "helper-optimum.R"))
library(lmmfit)
args <- commandArgs(TRUE)
if (length(args) != 3L) stop("usage: Rscript tools/multiterm-battery.R FIRST_SEED N OUT.rds")
first <- as.integer(args[1]); N <- as.integer(args[2])

## The kinds of design: one grouping with an intercept and a factor's levels
## beside it (the issue's slow case), crossed slopes, crossed intercepts with
## their interaction, nested slopes, and pupils changing school (a sparse tail).
KINDS <- c("samegroup", "crossed", "interaction", "nested", "partial")
FORMULAS <- list(samegroup = y ~ x + (1 | g) + (0 + f | g), crossed = y ~ x + (x | g) + (x | h),
                 interaction = y ~ x + (1 | g) + (1 | h) + (1 | g:h), nested = y ~ x + (x | g) + (x | g:h),
                 partial = y ~ x + (x | g) + (1 | h))

design <- function(seed) {
    set.seed(seed)
    kind <- KINDS[(seed %% length(KINDS)) + 1L]
    ng <- sample(15:60, 1); nf <- sample(3:10, 1)
    nh <- if (kind == "nested") sample(2:4, 1) else sample(4:25, 1)
    ## more rows than random effects (lme4's and lmmfit's identifiability check)
    n <- ng * sample(max(10L, 2L * (nf + 1L)):30, 1)
    g <- sample(ng, n, TRUE)
    h <- if (kind == "partial") {
        home <- sample(nh, ng, TRUE)
        ifelse(runif(n) < 0.1, sample(nh, n, TRUE), home[g])
    } else sample(nh, n, TRUE)
    d <- data.frame(g = factor(g), h = factor(h), f = factor(sample(nf, n, TRUE)), x = rnorm(n))
    ## some variance components zero: singular optima
    sd <- function(k) { s <- exp(runif(k, log(0.05), log(1))); s[runif(k) < 0.25] <- 0; s }
    sg <- sd(2); sh <- sd(2); sf <- sd(1)
    bg <- matrix(rnorm(ng * 2), ng) * rep(sg, each = ng)
    bh <- matrix(rnorm(nh * 2), nh) * rep(sh, each = nh)
    bf <- matrix(rnorm(ng * nf, sd = sf), ng)
    d$y <- 1 + 0.5 * d$x + bg[g, 1] + bg[g, 2] * d$x + bh[h, 1] + bh[h, 2] * d$x +
        bf[cbind(g, as.integer(d$f))] + rnorm(n)
    list(kind = kind, formula = FORMULAS[[kind]], data = d, REML = seed %% 2 == 0)
}

## lme4's default optimizer and settings, without the checks that refuse
## designs with few rows per random effect
LME4_DEFAULT_QUIET <- lme4::lmerControl(check.nobs.vs.nRE = "ignore", check.nobs.vs.nlev = "ignore",
                                        check.nlev.gtreq.5 = "ignore")
cpu <- function(expr) { t <- proc.time(); force(expr); t <- proc.time() - t; t[[1]] + t[[2]] }
res <- do.call(rbind, lapply(first:(first + N - 1), function(seed) {
    ds <- design(seed)
    fit <- NULL
    t_lmm <- cpu(fit <- tryCatch(suppressMessages(suppressWarnings(lmmfit(ds$formula, ds$data, REML = ds$REML))),
                                 error = function(e) NULL))
    t_lme4 <- cpu(suppressMessages(suppressWarnings(lme4::lmer(ds$formula, ds$data, REML = ds$REML,
                                                               control = LME4_DEFAULT_QUIET))))
    ref <- lme4_tight(ds$formula, ds$data, ds$REML)
    data.frame(seed, kind = ds$kind, npar = if (is.null(fit)) NA else length(fit$theta), REML = ds$REML,
               lmmfit = if (is.null(fit)) NA else fit$deviance_value, lme4 = as.numeric(ref),
               feval = if (is.null(fit)) NA else fit$optinfo$feval, sec = t_lmm, sec_lme4 = t_lme4)
}))
res$diff <- res$lmmfit - res$lme4
res$ratio <- res$sec / pmax(res$sec_lme4, 1e-3)
print(res)
cat("worse (> 1e-6):", sum(res$diff > 1e-6, na.rm = TRUE), " better:", sum(res$diff < -1e-6, na.rm = TRUE),
    " errors:", sum(is.na(res$lmmfit)), "\n")
cat("CPU time lmmfit / lme4 default: median", format(median(res$ratio), digits = 3),
    " worst", format(max(res$ratio), digits = 3), "\n")
print(aggregate(cbind(ratio, feval) ~ kind, res, median))
saveRDS(res, args[3])
