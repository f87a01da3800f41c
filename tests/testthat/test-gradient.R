## The exact gradient of a one-term model's deviance (src/gradient.c) against
## finite differences of the deviance itself, and the optimizer that uses it
## (models of one random-effects term of three or more columns) against lme4.

## Central differences of the deviance in theta: their error is O(h^2) plus
## rounding over h, about 1e-8 relative here.
fd_gradient <- function(xp, th, reml, h = 1e-5) vapply(seq_along(th), function(i) {
    e <- replace(numeric(length(th)), i, h * max(1, abs(th[i])))
    dev <- .Call(lmmfit:::C_lmm_deviance, xp, cbind(th + e, th - e), reml)
    (dev[1] - dev[2]) / (2 * e[i])
}, 0)
## Agreement of the two, relative to the largest component.
GRADIENT_TOL <- 1e-6

test_that("the exact gradient equals finite differences, REML and ML, weighted or not", {
    need_lme4()
    set.seed(21)
    n <- 400L; ng <- 30L
    d <- data.frame(g = factor(sample(ng, n, TRUE)), f = factor(sample(4L, n, TRUE)), x = rnorm(n),
                    w = runif(n, 0.5, 2))
    d$y <- rnorm(n) + rnorm(ng)[d$g] + d$x * rnorm(ng)[d$g]
    cases <- list(list(Reaction ~ Days + (Days | Subject), lme4::sleepstudy, NULL),
                  list(y ~ x + (0 + f | g), d, NULL), list(y ~ x + (f | g), d, NULL),
                  list(y ~ 1 + (1 | g), d, NULL), list(y ~ x + (x | g), d, d$w))
    for (cs in cases) {
        fit <- suppressMessages(lmmfit(cs[[1]], cs[[2]], weights = cs[[3]]))
        for (reml in c(TRUE, FALSE)) {
            th <- fit$theta * runif(length(fit$theta), 0.5, 1.5) + 0.05
            g <- .Call(lmmfit:::C_lmm_exact_gradient, fit$xprod, th, reml)
            g_fd <- fd_gradient(fit$xprod, th, reml)
            expect_lt(max(abs(g - g_fd)) / max(abs(g_fd)), GRADIENT_TOL)
        }
    }
    ## a zero column of lambda (on the boundary): still the one-sided limit
    fit <- suppressMessages(lmmfit(y ~ x + (f | g), d))
    th <- fit$theta + 0.1
    th[1] <- 0
    g <- .Call(lmmfit:::C_lmm_exact_gradient, fit$xprod, th, TRUE)
    e <- 1e-6
    fwd <- (.Call(lmmfit:::C_lmm_deviance, fit$xprod, cbind(replace(th, 1, e)), TRUE) -
            .Call(lmmfit:::C_lmm_deviance, fit$xprod, cbind(th), TRUE)) / e
    expect_equal(g[1], fwd, tolerance = 1e-4)
    expect_error(.Call(lmmfit:::C_lmm_exact_gradient, lmmfit(diameter ~ (1 | plate) + (1 | sample),
                                                              lme4::Penicillin)$xprod, c(1, 1), TRUE),
                 "one random-effects term")
})

test_that("a one-term model with many parameters reaches lme4's tight optimum in few evaluations", {
    need_lme4()
    ## 6 levels of f in each of 40 groups: 21 covariance parameters; with
    ## finite differences this fit took 12,500-12,900 evaluations, with the
    ## exact gradient about 1,500
    set.seed(22)
    ng <- 40L; nf <- 6L; n <- 800L
    d <- data.frame(g = factor(sample(ng, n, TRUE)), f = factor(sample(nf, n, TRUE)), x = rnorm(n))
    L <- matrix(rnorm(nf * nf, sd = 0.5), nf)
    b <- matrix(rnorm(ng * nf), ng) %*% t(L)
    d$y <- 1 + 0.5 * d$x + b[cbind(as.integer(d$g), as.integer(d$f))] + rnorm(n)
    for (reml in c(TRUE, FALSE)) {
        fit <- suppressMessages(lmmfit(y ~ x + (0 + f | g), d, REML = reml))
        ref <- lme4_tight(y ~ x + (0 + f | g), d, reml)
        expect_lte(fit$deviance_value - as.numeric(ref), 1e-6)
        expect_lt(fit$optinfo$feval, 4000L)
        m <- lme4::lmer(y ~ x + (0 + f | g), d, REML = reml, control = lme4::lmerControl(
            optimizer = "nloptwrap", calc.derivs = FALSE, check.conv.singular = "ignore",
            optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-14, xtol_rel = 1e-14, maxeval = 1e5)))
        crit <- if (reml) lme4::REMLcrit(m) else deviance(m)
        ## the same optimum (lme4 alone sometimes stops short): the same estimates
        if (abs(fit$deviance_value - crit) < 1e-6)
            expect_equal(unname(fixef(fit)), unname(lme4::fixef(m)), tolerance = 1e-5)
    }
})
