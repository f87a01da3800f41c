## Simulation, refits and parboot of fits with residual structures (R/resid-boot.R).

## The number of replicates for the moment checks: the sample covariance of
## 4000 draws estimates each entry to about 0.02 (sd 1/sqrt(4000) ~ 0.016 of
## a unit variance); MOMENT_TOL is 5 such standard errors.
RESID_SIM_N <- 4000L
MOMENT_TOL <- 5 / sqrt(RESID_SIM_N)

test_that("simulated residuals have the fitted structure's covariance", {
    Ovary <- ovary_plain()
    small <- Ovary[Ovary$Mare %in% c("1", "2"), ]
    small$Mare <- droplevels(small$Mare)
    fit <- lmmfit(follicles ~ sin(2 * pi * Time), data = small,
                  correlation = nlme::corCAR1(form = ~ Time | Mare), weights = nlme::varPower(form = ~ I(Time + 1)))
    ## the exact covariance: sigma^2 S C S, C = phi^|dt| within Mare
    s <- sigma(fit)
    sd_t <- (small$Time + 1)^varpar(fit)[["power"]]
    phi <- corpar(fit)[["Phi"]]
    C <- phi^abs(outer(small$Time, small$Time, "-")) * outer(small$Mare, small$Mare, "==")
    V <- s^2 * outer(sd_t, sd_t) * C
    Y <- as.matrix(simulate(fit, nsim = RESID_SIM_N, seed = 1))
    E <- Y - fitted(fit)
    ## relative to the variances' scale
    expect_lt(max(abs(cov(t(E)) - V)) / max(diag(V)), MOMENT_TOL)
    expect_lt(max(abs(rowMeans(E))) / sqrt(max(diag(V))), MOMENT_TOL)
    ## the colouring inverts the whitening exactly
    z <- rnorm(nrow(small))
    e <- lmmfit:::resid_color(fit, z)
    expect_equal(lmmfit:::resid_transform(fit, e), z, tolerance = 1e-10)
})

test_that("simulate(use.u = FALSE) adds new random effects with the fitted variance", {
    Orthodont <- nlme::Orthodont
    fit <- lmmfit(distance ~ age + (1 | Subject), data = Orthodont, weights = nlme::varIdent(form = ~ 1 | Sex))
    Y <- as.matrix(simulate(fit, nsim = RESID_SIM_N, seed = 2))
    ## two rows of one subject: covariance sigma_b^2
    i <- which(Orthodont$Subject == "M01")[1:2]
    vb <- as.numeric(VarCorr(fit)$Subject)
    expect_lt(abs(cov(Y[i[1], ], Y[i[2], ]) - vb) / vb, 3 * MOMENT_TOL)
    ## use.u = TRUE: the conditional modes, so rows of one subject are independent
    Yu <- as.matrix(simulate(fit, nsim = RESID_SIM_N, seed = 2, use.u = TRUE))
    expect_lt(abs(cor(Yu[i[1], ], Yu[i[2], ])), MOMENT_TOL)
    expect_equal(rowMeans(Yu), fitted(fit), tolerance = 0.05, ignore_attr = TRUE)
})

test_that("refit() of a structure fit to its own response is the fit; to another, lmmfit on it", {
    Ovary <- ovary_plain()
    fit <- lmmfit(follicles ~ sin(2 * pi * Time) + (1 | Mare), data = Ovary,
                  correlation = nlme::corAR1(form = ~ 1 | Mare), weights = nlme::varExp(form = ~ Time))
    r0 <- refit(fit, fit$y)
    expect_equal(deviance(r0), deviance(fit), tolerance = 1e-9)
    y2 <- simulate(fit, nsim = 1, seed = 3)[[1L]]
    r <- refit(fit, y2)
    Ovary$y2 <- y2
    direct <- lmmfit(y2 ~ sin(2 * pi * Time) + (1 | Mare), data = Ovary,
                     correlation = nlme::corAR1(form = ~ 1 | Mare), weights = nlme::varExp(form = ~ Time))
    expect_equal(deviance(r), deviance(direct), tolerance = 1e-7)
    expect_equal(fixef(r), fixef(direct), tolerance = RESID_FIXEF_TOL)
    expect_equal(c(corpar(r), unlist(varpar(r))), c(corpar(direct), unlist(varpar(direct))),
                 tolerance = RESID_PAR_TOL)
    ## the ar1() pieces path and gls refit too
    a <- lmmfit(y ~ time + (1 | id), data = trial, correlation = ar1(~ time | id))
    expect_equal(deviance(refit(a, a$y)), deviance(a), tolerance = 1e-9)
    g <- lmmfit(distance ~ age, data = nlme::Orthodont, correlation = nlme::corCompSymm(form = ~ 1 | Subject))
    expect_equal(deviance(refit(g, g$y)), deviance(g), tolerance = 1e-9)
    expect_equal(deviance(refit(g, g$y, REML = FALSE)), deviance(update(g, REML = FALSE)), tolerance = 1e-9)
})

test_that("parboot of a structure fit: replicate i is the refit of simulate()'s column i", {
    Orthodont <- nlme::Orthodont
    fit <- lmmfit(distance ~ age + (1 | Subject), data = Orthodont, weights = nlme::varIdent(form = ~ 1 | Sex))
    b <- parboot(fit, nsim = 4, seed = 7)
    expect_identical(colnames(b$t), names(b$t0))
    expect_true(all(c("sigma", "var_Female") %in% names(b$t0)))
    expect_equal(unname(b$t0[["var_Female"]]), unname(varpar(fit)[["Female"]]))
    Y <- simulate(fit, nsim = 4, seed = 7)
    for (i in 1:4) {
        r <- refit(fit, Y[[i]])
        expect_equal(unname(b$t[i, ]), unname(lmmfit:::resid_boot_stat(r)), tolerance = 1e-8)
    }
    ## a statistic of the user's, and multicore draws equal serial ones
    bf <- parboot(fit, FUN = function(f) corpar(f), nsim = 2, seed = 7)
    expect_equal(dim(bf$t), c(2L, 0L))
    bf <- parboot(fit, FUN = function(f) fixef(f)[["age"]], nsim = 3, seed = 7)
    expect_equal(bf$t[, 1L], b$t[1:3, "age"], tolerance = 1e-8)
    skip_on_os("windows")
    bm <- parboot(fit, nsim = 4, seed = 7, parallel = "multicore", ncpus = 2)
    expect_equal(bm$t, b$t, tolerance = 1e-10)
    ## percentile intervals of the structure's parameters
    ci <- confint(b, "var_Female")
    expect_true(ci[1L] <= ci[2L])
})

## pbtest() with structures.  The oracle refits each replicate with nlme (ML)
## on simulate()'s draws from the null's ML fit at the same seed; the LRTs
## agree to the deviances' tolerance (both optimisers converged tightly, the
## null's ML fits ours by refit() and by a fresh fit differing ~1e-9).
PBTEST_NSIM <- 5L
PBTEST_LRT_TOL <- 1e-6

## The bootstrap p-value and the chi-square one, by hand from the LRTs.
expect_pbtest_pvalues <- function(p, LRT, lrt, df) {
    expect_equal(p$nvalid, sum(is.finite(lrt)))
    expect_equal(p$p.value, (1 + sum(lrt >= LRT)) / (length(lrt) + 1))
    expect_equal(p$p.value.chisq, pchisq(LRT, df, lower.tail = FALSE), tolerance = PBTEST_LRT_TOL)
    expect_equal(unname(p$parameter), df)
}

test_that("pbtest() of mixed models with a variance function: nlme's ML refits of simulate()'s draws", {
    O <- nlme::Orthodont
    vi <- nlme::varIdent(form = ~ 1 | Sex)
    f0 <- lmmfit(distance ~ 1 + (1 | Subject), data = O, weights = vi)
    f1 <- lmmfit(distance ~ age + (1 | Subject), data = O, weights = vi)
    p <- pbtest(f0, f1, nsim = PBTEST_NSIM, seed = 11)
    expect_identical(pbtest(f0, f1, nsim = PBTEST_NSIM, seed = 11)$LRT_boot, p$LRT_boot)
    ml <- function(form, d) nlme::lme(form, random = ~ 1 | Subject, data = d, weights = vi, method = "ML",
                                      control = NLME_TIGHT())
    n0 <- ml(distance ~ 1, O)
    n1 <- ml(distance ~ age, O)
    LRT <- 2 * as.numeric(logLik(n1) - logLik(n0))
    expect_equal(unname(p$statistic), LRT, tolerance = PBTEST_LRT_TOL)
    expect_equal(unname(p$statistic), anova(f0, f1)$Chisq[2L], tolerance = PBTEST_LRT_TOL)
    Y <- simulate(update(f0, REML = FALSE), nsim = PBTEST_NSIM, seed = 11)
    lrt <- vapply(Y, function(y) {
        O$ystar <- y
        2 * as.numeric(logLik(ml(ystar ~ age, O)) - logLik(ml(ystar ~ 1, O)))
    }, 0)
    expect_equal(p$LRT_boot, unname(lrt), tolerance = PBTEST_LRT_TOL)
    expect_pbtest_pvalues(p, LRT, lrt, 1)
})

test_that("pbtest() of lm() against a gls-type AR(1) fit, and of a plain fit against a structure fit", {
    Ovary <- ovary_plain()
    ar <- nlme::corAR1(form = ~ 1 | Mare)
    form <- follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time)
    l0 <- lm(form, data = Ovary)
    g1 <- lmmfit(form, data = Ovary, correlation = ar)
    p <- pbtest(l0, g1, nsim = PBTEST_NSIM, seed = 5)
    gml <- function(d) nlme::gls(form, data = d, correlation = ar, method = "ML",
                                 control = nlme::glsControl(tolerance = 1e-10, msTol = 1e-12))
    LRT <- 2 * as.numeric(logLik(gml(Ovary)) - logLik(l0, REML = FALSE))
    expect_equal(unname(p$statistic), LRT, tolerance = PBTEST_LRT_TOL)
    ## lm's draws: fitted values plus N(0, RSS / n) errors, R's generator in order
    set.seed(5)
    s <- sqrt(mean(residuals(l0)^2))
    Y <- fitted(l0) + matrix(rnorm(nrow(Ovary) * PBTEST_NSIM), ncol = PBTEST_NSIM) * s
    lrt <- apply(Y, 2L, function(y) {
        d <- Ovary
        d$follicles <- y
        2 * as.numeric(logLik(gml(d)) - logLik(lm(form, data = d), REML = FALSE))
    })
    expect_equal(p$LRT_boot, unname(lrt), tolerance = PBTEST_LRT_TOL)
    expect_pbtest_pvalues(p, LRT, lrt, 1)

    ## a plain mixed null (the C refits) against the same model with varIdent
    O <- nlme::Orthodont
    vi <- nlme::varIdent(form = ~ 1 | Sex)
    m0 <- lmmfit(distance ~ age + (1 | Subject), data = O, REML = FALSE)
    m1 <- lmmfit(distance ~ age + (1 | Subject), data = O, weights = vi, REML = FALSE)
    p <- pbtest(m0, m1, nsim = PBTEST_NSIM, seed = 2)
    ml <- function(d, w = NULL) nlme::lme(distance ~ age, random = ~ 1 | Subject, data = d, weights = w,
                                          method = "ML", control = NLME_TIGHT())
    LRT <- 2 * as.numeric(logLik(ml(O, vi)) - logLik(ml(O)))
    expect_equal(unname(p$statistic), LRT, tolerance = PBTEST_LRT_TOL)
    lrt <- vapply(simulate(m0, nsim = PBTEST_NSIM, seed = 2), function(y) {
        O$distance <- y
        2 * as.numeric(logLik(ml(O, vi)) - logLik(ml(O)))
    }, 0)
    expect_equal(p$LRT_boot, unname(lrt), tolerance = PBTEST_LRT_TOL)
    expect_pbtest_pvalues(p, LRT, lrt, 1)
})

test_that("pbtest() with structures refuses models that are not nested or not on one response", {
    O <- nlme::Orthodont
    vi <- nlme::varIdent(form = ~ 1 | Sex)
    f0 <- lmmfit(distance ~ 1 + (1 | Subject), data = O, weights = vi)
    f1 <- lmmfit(distance ~ age + (1 | Subject), data = O, weights = vi)
    expect_error(pbtest(f1, f0, nsim = 2), "fewer parameters")
    expect_error(pbtest(f1, f1, nsim = 2), "fewer parameters")
    O$d2 <- O$distance + 1
    expect_error(pbtest(lmmfit(d2 ~ 1 + (1 | Subject), data = O, weights = vi), f1, nsim = 2),
                 "same response")
    expect_error(pbtest(f0, f1, nsim = 0), "nsim")
})
