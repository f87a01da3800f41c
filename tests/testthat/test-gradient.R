## The exact gradient of the deviance (src/gradient.c: the one-term formula,
## and the selected inverse's for every model without a sparse tail) against
## finite differences of the deviance itself, and the optimizer that uses it
## against lme4.

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
            g <- .Call(lmmfit:::C_lmm_exact_gradient, fit$xprod, th, reml, FALSE, NULL)
            g_sel <- .Call(lmmfit:::C_lmm_exact_gradient, fit$xprod, th, reml, TRUE, NULL)
            expect_lt(max(abs(g - g_sel)) / max(abs(g)), 1e-10)
            g_fd <- fd_gradient(fit$xprod, th, reml)
            expect_lt(max(abs(g - g_fd)) / max(abs(g_fd)), GRADIENT_TOL)
        }
    }
    ## a zero column of lambda (on the boundary): still the one-sided limit
    fit <- suppressMessages(lmmfit(y ~ x + (f | g), d))
    th <- fit$theta + 0.1
    th[1] <- 0
    g <- .Call(lmmfit:::C_lmm_exact_gradient, fit$xprod, th, TRUE, FALSE, NULL)
    e <- 1e-6
    fwd <- (.Call(lmmfit:::C_lmm_deviance, fit$xprod, cbind(replace(th, 1, e)), TRUE) -
            .Call(lmmfit:::C_lmm_deviance, fit$xprod, cbind(th), TRUE)) / e
    expect_equal(g[1], fwd, tolerance = 1e-4)
})

test_that("the selected inverse's gradient equals finite differences on every design class", {
    need_lme4()
    set.seed(23)
    n <- 600L
    d <- data.frame(g = factor(rep(1:30, each = 20)), f = factor(sample(5L, n, TRUE)), x = rnorm(n),
                    a = factor(sample(40L, n, TRUE)), b = factor(sample(15L, n, TRUE)),
                    w = runif(n, 0.5, 2))
    d$h <- factor(paste(d$g, sample(3L, n, TRUE)))
    d$y <- d$x + rnorm(30)[d$g] + rnorm(40)[d$a] + rnorm(15)[d$b] + rnorm(n)
    cases <- list(y ~ x + (1 | g) + (0 + f | g),          # two stages, one grouping
                  y ~ x + (1 | a) + (1 | b),              # crossed: a dense tail
                  y ~ x + (x | a) + (x | b),              # crossed slopes
                  y ~ x + (1 | g/h),                      # nested
                  y ~ x + (x | g) + (1 | h) + (1 | b),    # nested stages and a tail
                  y ~ x + (1 | a) + (x | b) + (1 | g))    # a tail of mixed tiles
    for (f in cases) for (reml in c(TRUE, FALSE)) for (w in list(NULL, d$w)) {
        fit <- suppressMessages(lmmfit(f, d, REML = reml, weights = w))
        th <- fit$theta * runif(length(fit$theta), 0.5, 1.5) + 0.05 * lmmfit:::theta_is_diag(fit$reterms)
        g <- .Call(lmmfit:::C_lmm_exact_gradient, fit$xprod, th, reml, TRUE, NULL)
        g_fd <- fd_gradient(fit$xprod, th, reml)
        expect_lt(max(abs(g - g_fd)) / max(abs(g_fd)), GRADIENT_TOL)
    }
    ## the criterion at a fixed residual sd (meta-analysis's known variances)
    fit <- suppressMessages(lmmfit(y ~ x + (x | g) + (1 | h) + (1 | b), d))
    th <- fit$theta * runif(length(fit$theta), 0.5, 1.5) + 0.05 * lmmfit:::theta_is_diag(fit$reterms)
    for (reml in c(TRUE, FALSE)) for (s in c(0.7, 1.3)) {
        dev_at <- function(t) .Call(lmmfit:::C_lmm_solution, fit$xprod, t, reml, s)$deviance
        g_fd <- vapply(seq_along(th), function(i) {
            e <- replace(numeric(length(th)), i, 1e-5 * max(1, abs(th[i])))
            (dev_at(th + e) - dev_at(th - e)) / (2 * e[i])
        }, 0)
        g <- .Call(lmmfit:::C_lmm_exact_gradient, fit$xprod, th, reml, TRUE, s)
        expect_lt(max(abs(g - g_fd)) / max(abs(g_fd)), GRADIENT_TOL)
    }
    ## a sparse tail (pupils of whom some change school: partially crossed),
    ## its inverse formed from the expanded factor
    npupil <- 1500L; nschool <- 150L
    home <- sample.int(nschool, npupil, TRUE)
    pupil <- rep(seq_len(npupil), each = 3L)
    movers <- runif(npupil) < 0.15
    school <- ifelse(movers[pupil] & rep(1:3, npupil) == 3L, sample.int(nschool, npupil, TRUE)[pupil],
                     home[pupil])
    dp <- data.frame(y = rnorm(length(pupil)) + rnorm(npupil)[pupil], pupil = factor(pupil),
                     school = factor(school))
    fp <- suppressMessages(lmmfit(y ~ (1 | pupil) + (1 | school), dp))
    expect_false(is.null(.Call(lmmfit:::C_lmm_solution, fp$xprod, as.double(fp$theta), TRUE, NULL)$tail_order))
    for (reml in c(TRUE, FALSE)) {
        th <- fp$theta * c(0.7, 1.3)
        g <- .Call(lmmfit:::C_lmm_exact_gradient, fp$xprod, th, reml, TRUE, NULL)
        expect_lt(max(abs(g - fd_gradient(fp$xprod, th, reml))) / max(abs(g)), GRADIENT_TOL)
    }
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

test_that("from 100,000 rows Newton steps with the exact gradient pin theta: the rows' order does not move it", {
    ## the polish stops at the deviance's rounding noise, 1e-12 |f|: on these
    ## rows the same data permuted moved theta by 2e-8 relative before
    set.seed(26)
    n <- 100000L; ng <- 1000L
    d <- data.frame(g = factor(sample(ng, n, TRUE)), x = rnorm(n), z = runif(n))
    d$y <- 1 + d$x + 0.5 * d$z + rnorm(ng)[d$g] + 0.3 * rnorm(ng)[d$g] * d$x + rnorm(n)
    fit <- lmmfit(y ~ x + z + (x | g), d)
    perm <- lmmfit(y ~ x + z + (x | g), d[sample(n), ])
    expect_equal(perm$theta, fit$theta, tolerance = 1e-11)
    ## the reported gradient is the exact one: zero to the optimum's precision
    g <- .Call(lmmfit:::C_lmm_exact_gradient, fit$xprod, fit$theta, TRUE, FALSE, NULL)
    expect_lt(max(abs(g)), 1e-6)
    expect_lt(max(abs(fit$optinfo$gradient)), 1e-6)
})
