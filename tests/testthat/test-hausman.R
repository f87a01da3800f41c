## Hausman's test (classic and Mundlak forms) against lm() + lme4.

## The classic statistic from two fitted models, by hand.
hausman_by_hand <- function(fe, re, nm) {
    d <- coef(fe)[nm] - lme4::fixef(re)[nm]
    D <- vcov(fe)[nm, nm] - as.matrix(vcov(re))[nm, nm]
    list(H = drop(crossprod(d, solve(D, d))), D = D)
}

## The Mundlak/Wald statistic of between = within from an lme4 fit.
wald_by_hand <- function(re, pairs) {
    b <- lme4::fixef(re)
    V <- as.matrix(vcov(re))
    C <- matrix(0, length(pairs), length(b), dimnames = list(NULL, names(b)))
    for (j in seq_along(pairs)) C[j, pairs[[j]]] <- c(1, -1)
    dd <- drop(C %*% b)
    drop(crossprod(dd, solve(C %*% V %*% t(C), dd)))
}

test_that("classic Hausman on Grunfeld equals lm + lme4 REML by hand", {
    need_lme4()
    need("plm")
    data("Grunfeld", package = "plm", envir = environment())
    fit <- lmmfit(inv ~ value + capital + (1 | firm), data = Grunfeld)
    h <- hausman(fit)
    expect_s3_class(h, "htest")
    fe <- lm(inv ~ value + capital + factor(firm), data = Grunfeld)
    ## lme4 warns that value and capital are on different scales
    re <- suppressWarnings(lme4::lmer(inv ~ value + capital + (1 | firm), data = Grunfeld, REML = TRUE))
    ref <- hausman_by_hand(fe, re, c("value", "capital"))
    expect_equal(unname(h$statistic), ref$H, tolerance = 1e-4)
    expect_equal(unname(h$parameter), 2)
    expect_equal(h$p.value, pchisq(ref$H, 2, lower.tail = FALSE), tolerance = 1e-4)
    expect_equal(unname(h$coefficients[, "Fixed"]), unname(coef(fe)[c("value", "capital")]),
                 tolerance = 1e-8)
    expect_equal(unname(h$coefficients[, "Random"]), unname(lme4::fixef(re)[c("value", "capital")]),
                 tolerance = 1e-5)
    ## For comparison: plm::phtest(plm(.., model = "within"), plm(.., model = "random"))
    ## gives chisq = 2.3304, df = 2, p = 0.3119.  plm's random-effects model
    ## estimates the variance components by Swamy-Arora, not REML, hence the
    ## different value (1.79 here).
    expect_equal(unname(h$statistic), 1.7917, tolerance = 1e-4)
    ## ML: the same by-hand statistic from lme4's ML fit
    fit_ml <- lmmfit(inv ~ value + capital + (1 | firm), data = Grunfeld, REML = FALSE)
    re_ml <- suppressWarnings(lme4::lmer(inv ~ value + capital + (1 | firm), data = Grunfeld, REML = FALSE))
    expect_equal(unname(hausman(fit_ml)$statistic),
                 hausman_by_hand(fe, re_ml, c("value", "capital"))$H, tolerance = 1e-4)
})

test_that("Mundlak form on Grunfeld: Wald test of between = within as lme4 on hand-made columns", {
    need_lme4()
    need("plm")
    data("Grunfeld", package = "plm", envir = environment())
    g <- Grunfeld
    for (v in c("value", "capital")) {
        m <- as.vector(ave(g[[v]], g$firm))
        g[[paste0(v, "_b")]] <- m
        g[[paste0(v, "_w")]] <- g[[v]] - m
    }
    re <- suppressWarnings(lme4::lmer(inv ~ value_b + value_w + capital_b + capital_w + (1 | firm), data = g))
    ref <- wald_by_hand(re, list(c("value_b", "value_w"), c("capital_b", "capital_w")))
    ## refitted from the plain model
    fit <- lmmfit(inv ~ value + capital + (1 | firm), data = Grunfeld)
    h <- hausman(fit, method = "mundlak")
    expect_equal(unname(h$statistic), ref, tolerance = 1e-4)
    expect_equal(unname(h$parameter), 2)
    expect_equal(unname(h$coefficients[, "Within"]),
                 unname(lme4::fixef(re)[c("value_w", "capital_w")]), tolerance = 1e-5)
    expect_equal(unname(h$coefficients[, "Between"]),
                 unname(lme4::fixef(re)[c("value_b", "capital_b")]), tolerance = 1e-5)
    ## the fit already uses wb(): tested as it is, same answer
    fit_wb <- lmmfit(inv ~ wb(value, firm) + wb(capital, firm) + (1 | firm), data = Grunfeld)
    h2 <- hausman(fit_wb, method = "mundlak")
    expect_equal(unname(h2$statistic), ref, tolerance = 1e-4)
    expect_match(h2$method, "fitted wb\\(\\) model")
    expect_match(h$method, "refitted")
})

test_that("Mundlak form allows random slopes; seed 002 with a group-level covariate", {
    need_lme4()
    set.seed(4)
    G <- 12; n <- 6
    d <- data.frame(g = factor(rep(1:G, each = n)))
    u <- rnorm(G)
    d$z <- rep(rnorm(G), each = n)                 # constant within groups
    d$x <- rnorm(G * n) + u[d$g]
    d$y <- 1 + 0.5 * d$x + 0.3 * d$z + u[d$g] + rnorm(G)[d$g] * d$x * 0.3 + rnorm(G * n)
    fit <- lmmfit(y ~ x + z + (1 + x | g), data = d)
    h <- hausman(fit, method = "mundlak")
    expect_equal(unname(h$parameter), 1)           # z is not decomposed
    m <- as.vector(ave(d$x, d$g))
    d$x_b <- m; d$x_w <- d$x - m
    re <- lme4::lmer(y ~ x_b + x_w + z + (1 + x | g), data = d)
    expect_equal(unname(h$statistic), wald_by_hand(re, list(c("x_b", "x_w"))), tolerance = 1e-4)
    ## ... but the classic form refuses it
    expect_error(hausman(fit), "only random effect is a random intercept.*mundlak")
})

test_that("classic Hausman with a group-level covariate compares only time-varying slopes", {
    need_lme4()
    set.seed(4)
    G <- 12; n <- 6
    d <- data.frame(g = factor(rep(1:G, each = n)))
    u <- rnorm(G)
    d$z <- rep(rnorm(G), each = n)
    d$x <- rnorm(G * n) + u[d$g]
    d$y <- 1 + 0.5 * d$x + 0.3 * d$z + u[d$g] + rnorm(G * n)
    fit <- lmmfit(y ~ x + z + (1 | g), data = d)
    h <- hausman(fit)
    expect_identical(rownames(h$coefficients), "x")
    fe <- lm(y ~ x + g, data = d)
    re <- lme4::lmer(y ~ x + z + (1 | g), data = d)
    expect_equal(unname(h$statistic), hausman_by_hand(fe, re, "x")$H, tolerance = 1e-4)
})

test_that("a difference matrix that is not positive definite gives a warning", {
    need_lme4()
    set.seed(18)
    G <- 8; n <- 5
    g <- factor(rep(1:G, each = n))
    x1 <- rnorm(G * n) + rnorm(G)[g]; x2 <- rnorm(G * n) + 0.5 * x1
    y <- x1 - x2 + rnorm(G)[g] + rnorm(G * n)
    d <- data.frame(y, x1, x2, g)
    fit <- lmmfit(y ~ x1 + x2 + (1 | g), data = d)
    ref <- hausman_by_hand(lm(y ~ x1 + x2 + g, data = d),
                           lme4::lmer(y ~ x1 + x2 + (1 | g), data = d), c("x1", "x2"))
    expect_lt(min(eigen(ref$D)$values), 0)         # the oracle agrees it is not PD
    expect_warning(h <- hausman(fit), "not positive definite.*mundlak")
    expect_equal(unname(h$statistic), ref$H, tolerance = 1e-4)
    expect_no_warning(hausman(fit, method = "mundlak"))
})

test_that("bad input: no random intercept, nothing time-varying, not an lmmfit", {
    d <- seed002_data()
    fit <- suppressWarnings(lmmfit(y ~ x + (0 + x | f), data = d))
    expect_error(hausman(fit), "needs a model with a random intercept")
    expect_error(hausman(fit, method = "mundlak"), "needs a model with a random intercept")
    d$z <- rep(1:4, each = 3)
    fit2 <- lmmfit(y ~ z + (1 | f), data = d)
    expect_error(hausman(fit2), "no covariate that varies within the levels of f")
    expect_error(hausman(fit2, method = "mundlak"), "no covariate varies within")
    expect_error(hausman(lm(y ~ x, data = d)), "fitted by lmmfit")
    fit3 <- lmmfit(y ~ x + (1 | f), data = d)
    expect_error(hausman(fit3, group = "nope"), "'group' must name")
    expect_error(hausman(fit3, method = "bogus"), "should be one of")
})
