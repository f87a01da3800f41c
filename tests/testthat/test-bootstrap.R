## Parametric bootstrap: parboot(), simulate(), refit(), confint_boot(), pbtest().
##
## Oracles: the published bootMer SDs of seed 001 (nsim = 10000), lme4::bootMer
## and lme4::lmer fitted here, refits by lmmfit() itself on the simulated data,
## and the documented draw order reproduced with rnorm().

sleep_data <- function() {
    need_lme4()
    lme4::sleepstudy
}

## Largest relative difference (a zero reference must be matched exactly).
rel_diff <- function(x, ref) {
    d <- abs(x - ref)
    max(ifelse(d == 0, 0, d / abs(ref)))
}

## The default statistic from the public accessors (independent of the R and C
## code that computes it in the package): fixef, then per VarCorr term the
## lower triangle column by column (SD on the diagonal, correlation below),
## then sigma.
stat_by_accessors <- function(f) {
    vc <- VarCorr(f)
    v <- unlist(lapply(vc, function(m) {
        sd <- attr(m, "stddev")
        C <- unclass(m) / outer(sd, sd)
        out <- numeric()
        for (c in seq_along(sd)) for (r in c:length(sd)) out <- c(out, if (r == c) sd[c] else C[r, c])
        out
    }))
    unname(c(fixef(f), v, sigma(f)))
}

test_that("seed 001: bootstrap SDs match the published bootMer values within Monte-Carlo error", {
    data <- seed001_data()
    fit <- lmmfit(y ~ x + (1 | p), data = data)
    nsim <- 2000
    ## relative SE of a sample SD ~ 1/sqrt(2(m - 1)); the published values are
    ## themselves from 10000 replicates
    rse <- sqrt(1 / (2 * (nsim - 1)) + 1 / (2 * (10000 - 1)))
    b0 <- parboot(fit, nsim = nsim, seed = 101)
    b1 <- parboot(fit, nsim = nsim, use.u = TRUE, seed = 102)
    expect_identical(colnames(b0$t), c("(Intercept)", "x", "sd_(Intercept)|p", "sigma"))
    expect_identical(c(b0$nfail, b0$nnonconv, b1$nfail, b1$nnonconv), c(0L, 0L, 0L, 0L))
    sd0 <- apply(b0$t[, 1:2], 2, sd)
    sd1 <- apply(b1$t[, 1:2], 2, sd)
    pub0 <- c(1.915025294, 0.009903413)
    pub1 <- c(0.055405505, 0.009868006)
    expect_lt(max(abs(sd0 / pub0 - 1)), 4 * rse)
    expect_lt(max(abs(sd1 / pub1 - 1)), 4 * rse)
    ## use.u = TRUE holds b at b-hat: the fixed effects centre on beta-hat.  Not
    ## exactly: beta* depends on the re-estimated theta* non-linearly, and the
    ## measured bias (-0.005 for the intercept, 4 MC SEs at nsim = 2000; the
    ## same for refits by lmmfit() of the same responses) is a property of the
    ## estimator.  It is a small fraction of the spread.
    expect_true(all(abs(colMeans(b1$t[, 1:2]) - fixef(fit)) < 0.15 * sd1))
    expect_true(all(abs(colMeans(b0$t[, 1:2]) - fixef(fit)) < 0.15 * sd0))
    ## the SD of the mixed-model intercept is the Wald SE's order, the use.u one the lm's
    expect_gt(sd0[[1]] / sd1[[1]], 20)
})

test_that("simulate() follows the documented draw order: u* then e*", {
    need_lme4()
    ## two crossed terms, prior weights and an offset
    d <- lme4::Penicillin
    set.seed(3)
    d$w <- runif(nrow(d), 0.5, 2)
    d$off <- rnorm(nrow(d), sd = 0.1)
    fit <- lmmfit(diameter ~ 1 + (1 | plate) + (1 | sample), data = d, weights = w,
                  offset = off)
    n <- nrow(d)
    s <- sigma(fit)
    sims <- simulate(fit, nsim = 2, seed = 42)
    set.seed(42)
    lam <- lmmfit:::theta_to_lambda(fit$theta, fit$reterms)
    for (i in 1:2) {
        u <- rnorm(length(fit$u))
        e <- rnorm(n)
        eta <- drop(fit$X %*% fit$beta) + d$off
        off <- 0L
        for (j in seq_along(fit$reterms)) {
            t <- fit$reterms[[j]]
            k <- ncol(t$Z)
            U <- matrix(u[off + seq_len(t$nlev * k)], t$nlev, k, byrow = TRUE)
            off <- off + t$nlev * k
            B <- s * U %*% t(lam[[j]])
            eta <- eta + rowSums(t$Z * B[as.integer(t$factor), , drop = FALSE])
        }
        expect_equal(sims[[i]], unname(eta + s * e / sqrt(d$w)), tolerance = 1e-12)
    }
    ## use.u = TRUE: fitted values plus noise, only n draws per replicate
    simu <- simulate(fit, nsim = 1, seed = 42, use.u = TRUE)
    set.seed(42)
    expect_equal(simu[[1]], unname(fitted(fit)) + s * rnorm(n) / sqrt(d$w), tolerance = 1e-12)
    ## seed = restores the generator; the seed attribute as simulate.lm
    set.seed(9); r1 <- runif(1)
    set.seed(9); invisible(simulate(fit, seed = 1)); r2 <- runif(1)
    expect_identical(r1, r2)
    expect_identical(as.integer(attr(sims, "seed")), 42L)
    expect_identical(dim(sims), c(n, 2L))
})

test_that("replicate i equals a refit of column i of simulate(), and seeds reproduce", {
    data <- seed001_data()
    fit <- lmmfit(y ~ x + (1 | p), data = data)
    for (use.u in c(FALSE, TRUE)) {
        b <- parboot(fit, nsim = 3, use.u = use.u, seed = 5)
        expect_identical(b$t, parboot(fit, nsim = 3, use.u = use.u, seed = 5)$t)
        set.seed(5)
        expect_identical(b$t, parboot(fit, nsim = 3, use.u = use.u)$t)
        expect_false(isTRUE(all.equal(b$t, parboot(fit, nsim = 3, use.u = use.u, seed = 6)$t)))
        sims <- simulate(fit, nsim = 3, seed = 5, use.u = use.u)
        for (i in c(1L, 3L)) {
            d2 <- data
            d2$y <- sims[[i]]
            ## (a) the same cross-products and warm start through the fit's own core
            core <- lmmfit:::lmm_fit_core(fit$X, d2$y, NULL, NULL, fit$reterms, TRUE,
                                          fit$control, theta0 = fit$theta)
            core <- c(core, list(y = d2$y, reterms = fit$reterms, REML = TRUE))
            expect_lte(rel_diff(b$t[i, ], stat_by_accessors(structure(core, class = "lmmfit"))), 1e-6)
            ## (b) lmmfit() from its default start on the new data: the same
            ## optimum (criterion to 1e-6).  The criterion is so flat in theta here
            ## (sd_p/sigma = 67) that two optimizers agree on the SD only to ~1e-5,
            ## as lmmfit and lme4 do: the package's 1e-5 for fixed effects and
            ## 1e-4 for variance components.
            hand <- suppressMessages(lmmfit(y ~ x + (1 | p), data = d2))
            st <- stat_by_accessors(hand)
            expect_lte(rel_diff(b$t[i, c(1, 2, 4)], st[c(1, 2, 4)]), 1e-5)
            expect_lte(rel_diff(b$t[i, 3], st[3]), 1e-4)
            r <- refit(fit, sims[[i]])
            expect_lte(abs(r$deviance_value - hand$deviance_value), 1e-6)
            ## refit() forms y - X beta-hat in R where parboot() draws Z b* + e*
            ## in C, so the two responses differ by rounding; both optima are
            ## located to ~1e-8 relative.
            expect_equal(unname(b$t[i, ]), stat_by_accessors(r), tolerance = 1e-7)
        }
    }
})

test_that("sleepstudy: replicates equal refits by hand; C statistic equals FUN on the light fit", {
    sleep <- sleep_data()
    fit <- lmmfit(Reaction ~ Days + (Days | Subject), data = sleep)
    b <- parboot(fit, nsim = 30, seed = 7)
    expect_identical(colnames(b$t), c("(Intercept)", "Days", "sd_(Intercept)|Subject",
                                      "cor_(Intercept).Days|Subject", "sd_Days|Subject", "sigma"))
    expect_equal(b$t0, setNames(stat_by_accessors(fit), colnames(b$t)), tolerance = 1e-12)
    sims <- simulate(fit, nsim = 30, seed = 7)
    d2 <- sleep
    d2$Reaction <- sims[[1]]
    hand <- suppressMessages(lmmfit(Reaction ~ Days + (Days | Subject), data = d2))
    st <- stat_by_accessors(hand)
    expect_lte(rel_diff(b$t[1, c(1, 2, 6)], st[c(1, 2, 6)]), 1e-5)
    expect_lte(max(abs(b$t[1, 3:5] - st[3:5]) / pmax(1, abs(st[3:5]))), 1e-4)
    ## FUN on the light fit sees the same refit
    bf <- parboot(fit, FUN = stat_by_accessors, nsim = 30, seed = 7)
    expect_identical(b$status, bf$status)
    ok <- b$status == 0L
    expect_gt(sum(ok), 25)
    expect_lte(max(abs(bf$t[ok, ] - b$t[ok, ]) / pmax(1, abs(b$t[ok, ]))), 1e-10)
    ## the light fit is a working lmmfit object
    bv <- parboot(fit, FUN = function(f) c(vcov(f)[2, 2], length(residuals(f)), logLik(f)),
                  nsim = 2, seed = 7)
    r1 <- refit(fit, sims[[1]])
    ## (refit() and parboot() form the shifted response by different roundings)
    expect_equal(unname(bv$t[1, ]), c(vcov(r1)[2, 2], nrow(sleep), logLik(r1)), tolerance = 1e-8)
    expect_equal(unname(bv$t[1, ]), c(vcov(hand)[2, 2], nrow(sleep), logLik(hand)), tolerance = 1e-5)
})

test_that("multicore gives the serial result for the same seed", {
    skip_on_os("windows")
    data <- seed001_data()
    fit <- lmmfit(y ~ x + (1 | p), data = data)
    b <- parboot(fit, nsim = 101, seed = 11)
    bm <- parboot(fit, nsim = 101, seed = 11, parallel = "multicore", ncpus = 2)
    expect_identical(bm$t, b$t)
    bf <- parboot(fit, FUN = fixef, nsim = 21, use.u = TRUE, seed = 11)
    bfm <- parboot(fit, FUN = fixef, nsim = 21, use.u = TRUE, seed = 11,
                   parallel = "multicore", ncpus = 2)
    expect_identical(bfm$t, bf$t)
    ## the generator ends where the serial run leaves it
    set.seed(4); invisible(parboot(fit, nsim = 7)); a <- runif(1)
    set.seed(4); invisible(parboot(fit, nsim = 7, parallel = "multicore", ncpus = 2)); b2 <- runif(1)
    expect_identical(a, b2)
})

test_that("agrees with lme4::bootMer in distribution (seed 001)", {
    need_lme4()
    data <- seed001_data()
    fit <- lmmfit(y ~ x + (1 | p), data = data)
    m <- lme4::lmer(y ~ x + (1 | p), data = data)
    mb <- 150
    stat <- function(x) c(lme4::fixef(x), sigma(x))
    bm <- suppressMessages(suppressWarnings(lme4::bootMer(m, stat, nsim = mb, seed = 21)))
    ours <- parboot(fit, nsim = 2000, seed = 22)$t[, c(1, 2, 4)]
    theirs <- bm$t
    for (j in 1:3) {
        s1 <- sd(ours[, j]); s2 <- sd(theirs[, j])
        expect_lt(abs(mean(ours[, j]) - mean(theirs[, j])), 4 * sqrt(s1^2 / 2000 + s2^2 / mb))
        expect_lt(abs(log(s1 / s2)), 4 * sqrt(1 / (2 * 1999) + 1 / (2 * (mb - 1))))
    }
})

test_that("failed and non-converged replicates are NA rows and counted", {
    data <- seed001_data()
    fit <- lmmfit(y ~ x + (1 | p), data = data)
    ## FUN failing on every third call (t0 is call 1)
    calls <- 0
    bad <- function(f) { calls <<- calls + 1; if (calls %% 3 == 0) stop("boom"); fixef(f) }
    b <- parboot(fit, FUN = bad, nsim = 9, seed = 1)
    expect_identical(b$nfail, 3L)
    expect_identical(which(b$status == 2L), c(2L, 5L, 8L))
    expect_true(all(is.na(b$t[b$status == 2L, ])))
    expect_false(anyNA(b$t[b$status == 0L, ]))
    expect_identical(b$messages, "boom")
    expect_output(print(b), "3 replicates failed")
    expect_output(print(summary(b)), "failed: 3")
    ## an impossible gradient tolerance: nothing converges, every row NA
    fit2 <- fit
    fit2$control$check_grad_tol <- 1e-300
    b2 <- parboot(fit2, nsim = 5, seed = 1)
    expect_identical(b2$nnonconv, 5L)
    expect_true(all(is.na(b2$t)))
    expect_output(print(b2), "5 did not converge")
    expect_warning(ci <- confint(b2), "fewer than 2")
    expect_true(all(is.na(ci)))
})

test_that("confidence intervals: percentile, basic, normal; confint_boot in lme4's order", {
    sleep <- sleep_data()
    fit <- lmmfit(Reaction ~ Days + (Days | Subject), data = sleep)
    b <- parboot(fit, nsim = 200, seed = 3)
    ok <- is.finite(b$t[, "Days"])
    x <- b$t[ok, "Days"]
    t0 <- b$t0[["Days"]]
    q <- quantile(x, c(0.05, 0.95), type = 6, names = FALSE)
    expect_equal(unname(confint(b, "Days", level = 0.9)[1, ]), q)
    expect_equal(unname(confint(b, 2, level = 0.9, type = "basic")[1, ]), 2 * t0 - rev(q))
    expect_equal(unname(confint(b, "Days", level = 0.9, type = "norm")[1, ]),
                 2 * t0 - mean(x) + c(-1, 1) * qnorm(0.95) * sd(x))
    expect_identical(colnames(confint(b)), c("2.5 %", "97.5 %"))
    ci <- confint_boot(fit, nsim = 200, seed = 3)
    expect_identical(rownames(ci), c(".sig01", ".sig02", ".sig03", ".sigma", "(Intercept)", "Days"))
    expect_equal(unname(ci), unname(confint(b)[c(3:6, 1:2), ]), ignore_attr = TRUE)
    ci2 <- confint_boot(fit, parm = c("beta_", "sd_Days|Subject"), nsim = 200, seed = 3, oldNames = FALSE)
    expect_identical(rownames(ci2), c("(Intercept)", "Days", "sd_Days|Subject"))
    expect_equal(unname(ci2), unname(confint(b)[c(1, 2, 5), ]), ignore_attr = TRUE)
    expect_identical(rownames(confint_boot(fit, parm = "theta_", nsim = 20, seed = 3)),
                     c(".sig01", ".sig02", ".sig03", ".sigma"))
    expect_error(confint(b, "nope"), "unknown parameter")
    ## confint.lmmfit's method = "boot" is this engine
    expect_equal(confint(fit, parm = "Days", method = "boot", nsim = 200, seed = 3),
                 ci["Days", , drop = FALSE], ignore_attr = TRUE)
})

test_that("pbtest: LRT against lme4 ML and lm; bootstrap p-value; boundary null (seed 002)", {
    need_lme4()
    ## seed 001: a huge random intercept, against lm
    data <- seed001_data()
    fit1 <- lmmfit(y ~ x + (1 | p), data = data)
    fit0 <- lm(y ~ x, data = data)
    m1 <- lme4::lmer(y ~ x + (1 | p), data = data, REML = FALSE)
    pt <- pbtest(fit0, fit1, nsim = 50, seed = 1)
    expect_s3_class(pt, "htest")
    lrt <- 2 * (as.numeric(logLik(m1)) - as.numeric(logLik(fit0)))
    expect_lte(abs(pt$statistic[["LRT"]] - lrt), 1e-6)
    expect_identical(pt$parameter[["df"]], 1L)
    expect_equal(pt$p.value, 1 / 51)
    expect_equal(pt$p.value.chisq, pchisq(lrt, 1, lower.tail = FALSE), tolerance = 1e-6)
    expect_output(print(pt), "chi-square")

    ## seed 002: the variance estimate is 0, LRT = 0, p = 1; the bootstrap LRTs
    ## equal ML refits by lme4 (exact optimizer) of the same simulated responses
    d <- seed002_data()
    f1 <- suppressMessages(lmmfit(y ~ x + (1 | f), data = d))
    f0 <- lm(y ~ x, data = d)
    nsim <- 25
    pt2 <- pbtest(f0, f1, nsim = nsim, seed = 2)
    expect_identical(pt2$statistic[["LRT"]], 0)
    expect_identical(pt2$p.value, 1)
    expect_identical(pt2$nfail, 0L)
    set.seed(2)
    n <- nrow(d)
    sigma0 <- sqrt(sum(residuals(f0)^2) / n)
    Y <- fitted(f0) + matrix(rnorm(n * nsim), n, nsim) * sigma0
    ctl <- lme4::lmerControl(optimizer = "bobyqa", calc.derivs = FALSE,
                             optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
    ref <- vapply(seq_len(nsim), function(i) {
        di <- d
        di$y <- Y[, i]
        ## (bobyqa may warn that a trust-region step failed near the boundary)
        m <- suppressWarnings(suppressMessages(
            lme4::lmer(y ~ x + (1 | f), data = di, REML = FALSE, control = ctl)))
        -2 * as.numeric(logLik(lm(y ~ x, data = di))) - deviance(m)
    }, 0)
    ref[abs(ref) < 1e-8] <- 0
    expect_lte(max(abs(pt2$LRT_boot - ref)), 1e-6)
    expect_true(any(ref == 0) && any(ref > 0))

    ## lmmfit nulls: REML fits are refitted by ML
    sleep <- sleep_data()
    g1 <- lmmfit(Reaction ~ Days + (Days | Subject), data = sleep)
    g0 <- lmmfit(Reaction ~ Days + (1 | Subject), data = sleep)
    n1 <- lme4::lmer(Reaction ~ Days + (Days | Subject), data = sleep, REML = FALSE)
    n0 <- lme4::lmer(Reaction ~ Days + (1 | Subject), data = sleep, REML = FALSE)
    pt3 <- pbtest(g0, g1, nsim = 20, seed = 1)
    expect_lte(abs(pt3$statistic[["LRT"]] - (deviance(n0) - deviance(n1))), 1e-6)
    expect_identical(pt3$parameter[["df"]], 2L)
    expect_equal(pt3$p.value, (1 + sum(pt3$LRT_boot >= pt3$statistic, na.rm = TRUE)) / (pt3$nvalid + 1))
    expect_error(pbtest(g1, g0, nsim = 5), "fewer parameters")
    expect_error(pbtest(lm(Reaction ~ 1, sleep[-1, ]), g1, nsim = 5), "same response")
})

test_that("refit(): new response and REML switch match fits from scratch", {
    need_lme4()
    sleep <- sleep_data()
    fit <- lmmfit(Reaction ~ Days + (Days | Subject), data = sleep)
    ml <- refit(fit, REML = FALSE)
    m <- lme4::lmer(Reaction ~ Days + (Days | Subject), data = sleep, REML = FALSE,
                    control = lme4::lmerControl(optimizer = "bobyqa",
                                                optCtrl = list(rhoend = 1e-12, maxfun = 1e5)))
    expect_false(ml$REML)
    expect_lte(abs(deviance(ml) - deviance(m)), 1e-6)
    expect_lte(rel_diff(fixef(ml), lme4::fixef(m)), 1e-6)
    y2 <- sleep$Reaction + 10 * sleep$Days * (as.integer(sleep$Subject) %% 2)
    r <- refit(fit, y2)
    d2 <- sleep
    d2$Reaction <- y2
    hand <- suppressWarnings(lmmfit(Reaction ~ Days + (Days | Subject), data = d2))
    expect_lte(abs(r$deviance_value - hand$deviance_value), 1e-6)
    expect_lte(rel_diff(fixef(r), fixef(hand)), 1e-6)
    expect_equal(unname(residuals(r)), unname(residuals(hand)), tolerance = 1e-4)
    expect_equal(refit(fit, data.frame(y = y2))$beta, r$beta)
    expect_error(refit(fit, y2[-1]), "179 values for 180")
    expect_error(refit(fit, replace(y2, 3, NA)), "NA")
})

test_that("methods: print, summary, as.data.frame, plot; bad input", {
    data <- seed001_data()
    fit <- lmmfit(y ~ x + (1 | p), data = data)
    b <- parboot(fit, nsim = 40, seed = 1)
    expect_output(print(b), "40 replicates, use.u = FALSE")
    s <- summary(b)
    expect_equal(s$table$std.error, unname(apply(b$t, 2, sd)))
    expect_equal(s$table$bias, unname(colMeans(b$t) - b$t0))
    expect_output(print(s), "usable: 40")
    df <- as.data.frame(b)
    expect_identical(dim(df), c(40L, 4L))
    expect_identical(names(df), colnames(b$t))
    grDevices::pdf(NULL)
    on.exit(grDevices::dev.off())
    expect_identical(plot(b), b)
    expect_identical(plot(b, which = "x"), b)
    expect_error(parboot(lm(y ~ x, data)), "lmmfit")
    expect_error(parboot(fit, nsim = 0), "nsim")
    expect_error(parboot(fit, use.u = NA), "use.u")
    expect_error(parboot(fit, FUN = function(f) if (runif(1) < 2) 1 else 2, nsim = 2, parallel = "x"))
    expect_error(simulate(fit, nsim = 1.5), "nsim")
    ## FUN whose length changes: those replicates fail, with the message
    k <- 0
    b3 <- parboot(fit, FUN = function(f) { k <<- k + 1; if (k == 2) 1:3 else 1:2 }, nsim = 3, seed = 1)
    expect_identical(b3$nfail, 1L)
    expect_match(b3$messages, "returned 3 values instead of 2")
})

test_that("warm-started refits leave a near-zero variance when zero is not the minimum", {
    ## replicates 106 and 447 of this seed once stopped at theta ~ 1e-6 for the
    ## slope (a stationary point: the deviance depends on it through its
    ## square) although the optimum is interior (sleepstudy replicate 447:
    ## 1709.23 against 1709.87)
    need_lme4()
    fit <- lmmfit(Reaction ~ Days + (Days | Subject), lme4::sleepstudy)
    b <- parboot(fit, nsim = 447, seed = 1)
    expect_identical(sum(b$status != 0L), 0L)
    sims <- simulate(fit, nsim = 447, seed = 1)
    for (k in c(106L, 447L)) {
        d <- lme4::sleepstudy
        d$Reaction <- sims[[k]]
        cold <- suppressMessages(lmmfit(Reaction ~ Days + (Days | Subject), d))
        warm <- refit(fit, sims[[k]])
        m <- suppressMessages(lme4::lmer(Reaction ~ Days + (Days | Subject), d))
        expect_lte(warm$deviance_value, lme4_objective(m) + 1e-6)
        expect_equal(warm$deviance_value, cold$deviance_value, tolerance = 1e-8)
        expect_equal(unname(b$t[k, "sigma"]), sigma(warm), tolerance = 1e-6)
    }
})
