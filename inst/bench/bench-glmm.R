## Benchmark: generalized linear mixed models, glmmfit() against lme4's
## glmer (its defaults: bobyqa then Nelder-Mead as glmerControl() sets them,
## and glmer with bobyqa at maxfun 1e5 as the issue names it), side by
## side in one R process: the problems of issue 22.
##
## Usage (from the repository root):
##     Rscript inst/bench/bench-glmm.R [n_big] [n_huge]
## n_big: rows of the simulated binomial (default 100,000, 5,000 groups);
## n_huge: rows of the nested 4-level binomial with a slope (default 0:
## skipped; the issue's case is 1,000,000).  LMMFIT_BENCH_REPS=k multiplies
## the repeats.  Reported: median CPU seconds per fit, the ratio, both
## criteria (-2 log L; glmer's for nAGQ > 1 omits the binomial constant, so
## the AGQ line shows the fixed effects' largest difference instead), our
## evaluations (the first stage's among them) against glmer's optinfo$feval
## (its second stage's: its first stage's are not recorded), and the peak
## megabytes R allocated (gc()'s "max used").

script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
bench_dir <- if (length(script) == 1L) dirname(script) else file.path("inst", "bench")
source(file.path(bench_dir, "common.R"))
args <- commandArgs(trailingOnly = TRUE)
n_big <- if (length(args) >= 1L) as.integer(args[[1L]]) else 100000L
n_huge <- if (length(args) >= 2L) as.integer(args[[2L]]) else 0L
rep_scale <- bench_rep_scale()
bobyqa <- glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5))

crit <- function(fit) -2 * as.numeric(logLik(fit))
report <- function(label, ours, theirs, fit, g, mem) {
    d1 <- crit(fit)
    d2 <- -2 * as.numeric(logLik(g))
    cat(sprintf(paste0("%-46s glmmfit %8.4f s  glmer %8.4f s  ratio %6.1fx  -2logL %.6f vs %.6f",
                       "  |dfixef| %.1e  feval %d (stage 1 %d) vs %d  peak MB %s\n"),
                label, ours, theirs, theirs / ours, d1, d2, max(abs(fixef(fit) - fixef(g))),
                fit$optinfo$feval, fit$optinfo$feval_stage1, as.integer(g@optinfo$feval),
                paste(sprintf("%.0f", mem), collapse = " / ")))
}

run <- function(label, formula, data, family, nAGQ = 1L, reps = 5L, inner = 1L) {
    ours <- function() quiet(glmmfit(formula, data, family = family, nAGQ = nAGQ))
    theirs <- function() quiet(glmer(formula, data, family = family, nAGQ = nAGQ, control = bobyqa))
    fit <- ours(); g <- theirs()
    reps <- max(3L, round(reps * rep_scale))
    t1 <- bench_cpu(ours, reps, inner)
    t2 <- bench_cpu(theirs, max(3L, reps %/% 2L), max(1L, inner %/% 5L))
    report(label, t1, t2, fit, g, c(bench_peak_mb(ours), bench_peak_mb(theirs)))
}

data(cbpp, package = "lme4")
cb <- cbind(incidence, size - incidence) ~ period + (1 | herd)
run("cbpp, Laplace", cb, cbpp, binomial, reps = 7L, inner = 20L)
run("cbpp, nAGQ = 25", cb, cbpp, binomial, nAGQ = 25L, reps = 7L, inner = 20L)
data(VerbAgg, package = "lme4")
run("VerbAgg, crossed (1 | id) + (1 | item)", r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item),
    VerbAgg, binomial, reps = 3L)
data(grouseticks, package = "lme4")
run("grouseticks, Poisson, three terms",
    TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION), grouseticks, poisson, reps = 5L,
    inner = 2L)

set.seed(22)
ng <- n_big %/% 20L
big <- data.frame(f = factor(sample(ng, n_big, TRUE)), x = rnorm(n_big))
big$y <- rbinom(n_big, 1, plogis(-0.3 + 0.7 * big$x + rnorm(ng)[big$f]))
run(sprintf("binomial, %d rows, %d groups", n_big, ng), y ~ x + (1 | f), big, binomial, reps = 3L)

if (n_huge > 0L) {
    ## the engine's nested design: 4 levels (a > b > c > d), a slope on the finest
    na <- 50L
    lev <- c(na, na * 10L, na * 100L, n_huge %/% 10L)
    d <- data.frame(id = seq_len(n_huge))
    d$dd <- factor(sample(lev[4L], n_huge, TRUE))
    cc <- (as.integer(d$dd) - 1L) %% lev[3L]
    d$c <- factor(cc)
    d$b <- factor(cc %% lev[2L])
    d$a <- factor(cc %% lev[1L])
    d$x <- rnorm(n_huge)
    eta <- -0.2 + 0.5 * d$x + rnorm(lev[1L], 0, 0.5)[d$a] + rnorm(lev[2L], 0, 0.4)[d$b] +
        rnorm(lev[3L], 0, 0.3)[d$c] + (rnorm(lev[4L], 0, 0.3) + rnorm(lev[4L], 0, 0.2) * d$x)[d$dd]
    d$y <- rbinom(n_huge, 1, plogis(eta))
    cat(sprintf("model frame: %.0f MB\n", as.numeric(object.size(d)) / 2^20))
    run(sprintf("binomial, %d rows, 4-level nesting + slope", n_huge),
        y ~ x + (x | dd) + (1 | c) + (1 | b) + (1 | a), d, binomial, reps = 1L)
}
