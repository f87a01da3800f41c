## Benchmark: residual AR(1) within subjects, lmmfit against nlme::lme with
## corAR1, side by side in one R process (seed 004's design).
##
## Usage (from the repository root, with lmmfit and nlme installed):
##     Rscript inst/bench/bench-ar1.R
## LMMFIT_BENCH_REPS=k multiplies the default number of repeats by k.
##
## The design: 2,500 subjects x 4 occasions (10,000 rows), treatment per
## subject, random intercept (sd 0.5) and slope on time (sd 0.25), residual sd 1
## with AR(1) correlation rho = 0.7 within subject, treatment effect -0.5.
## Both fit by REML with their defaults; the repeats are interleaved and the
## median elapsed (and CPU) times reported, with the log-likelihoods and Phi of both.

suppressPackageStartupMessages({
    library(lmmfit)
    library(nlme)
})

rep_scale <- as.numeric(Sys.getenv("LMMFIT_BENCH_REPS", "1"))
if (!is.finite(rep_scale) || rep_scale <= 0) stop("LMMFIT_BENCH_REPS must be a positive number")

simulate_seed004 <- function(nsub = 2500L, nt = 4L, intsd = 0.5, timesd = 0.25, sigma = 1,
                             rho = 0.7, seed = 4L) {
    set.seed(seed)
    id <- rep(seq_len(nsub), each = nt)
    time <- rep(seq_len(nt) - 1L, nsub)
    trt <- rep(sample(0:1, nsub, replace = TRUE), each = nt)
    b0 <- rnorm(nsub, 0, intsd)
    b1 <- rnorm(nsub, 0, timesd)
    e <- matrix(0, nt, nsub)
    e[1L, ] <- rnorm(nsub, 0, sigma)
    for (k in seq_len(nt)[-1L]) e[k, ] <- rho * e[k - 1L, ] + sqrt(1 - rho^2) * rnorm(nsub, 0, sigma)
    y <- 0.5 + 0.5 * time - 0.5 * trt + b0[id] + b1[id] * time + as.vector(e)
    data.frame(id = factor(id), time = time,
               treatment = factor(trt, levels = 0:1, labels = c("control", "treatment")), y = y)
}

d <- simulate_seed004()
fit_lmmfit <- function() lmmfit(y ~ time + treatment + (time | id), data = d,
                                correlation = ar1(~ time | id))
fit_nlme <- function() lme(y ~ time + treatment, random = ~ 1 + time | id, data = d,
                           correlation = corAR1(form = ~ time | id))

## warm-up (untimed)
f <- fit_lmmfit()
m <- fit_nlme()

reps <- max(1L, round(3 * rep_scale))
t_nlme <- c_nlme <- numeric(reps)
t_ours <- c_ours <- numeric(5L * reps)
cpu <- function(st) st[["user.self"]] + st[["sys.self"]]
for (r in seq_len(reps)) {
    st <- system.time(m <- fit_nlme())
    t_nlme[r] <- st[["elapsed"]]; c_nlme[r] <- cpu(st)
    for (k in 1:5) {
        st <- system.time(f <- fit_lmmfit())
        t_ours[(r - 1L) * 5L + k] <- st[["elapsed"]]; c_ours[(r - 1L) * 5L + k] <- cpu(st)
    }
}
ll <- c(lmmfit = -f$deviance_value / 2, nlme = as.numeric(logLik(m)))
phi <- c(lmmfit = corpar(f)[["Phi"]],
         nlme = unname(coef(m$modelStruct$corStruct, unconstrained = FALSE)))
cat(sprintf("seed 004 design: %d rows, %d subjects, REML\n", nrow(d), nlevels(d$id)))
cat(sprintf("  REML logLik   lmmfit %.6f   nlme %.6f   (lmmfit - nlme = %.2e)\n",
            ll[1], ll[2], ll[1] - ll[2]))
cat(sprintf("  Phi           lmmfit %.6f   nlme %.6f\n", phi[1], phi[2]))
cat(sprintf("  fixef max |diff| %.2e\n", max(abs(fixef(f) - fixef(m)))))
cat(sprintf("  median elapsed: nlme %.3f s (%d fits), lmmfit %.4f s (%d fits)\n",
            median(t_nlme), length(t_nlme), median(t_ours), length(t_ours)))
cat(sprintf("  speed ratio (nlme / lmmfit), elapsed: %.1fx\n", median(t_nlme) / median(t_ours)))
cat(sprintf("  speed ratio (nlme / lmmfit), CPU time: %.1fx (less sensitive to a shared machine)\n",
            median(c_nlme) / median(c_ours)))
