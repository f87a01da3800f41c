## Random-effects terms crossed with the residual correlation grouping
## (src/resid_crossed.c), which nlme cannot fit.  The oracle is the dense
## marginal likelihood of the same model, V = sum_j s_j^2 Z_j Z_j' +
## sigma^2 S C S, written out from its definition.

## Subjects with m occasions crossed with items.
crossed_panel <- function(seed = 3, ns = 30, m = 6, nitem = 8) {
    set.seed(seed)
    d <- data.frame(id = factor(rep(seq_len(ns), each = m)), time = rep(seq_len(m) - 1, ns))
    d$item <- factor(sample(seq_len(nitem), nrow(d), replace = TRUE))
    d$sex <- factor(rep(sample(c("F", "M"), ns, replace = TRUE), each = m))
    d$x <- rnorm(nrow(d))
    e <- unlist(lapply(seq_len(ns), function(i) as.numeric(arima.sim(list(ar = 0.6), m))))
    d$y <- 1 + d$x + rnorm(ns)[d$id] + rnorm(nitem)[d$item] + e * ifelse(d$sex == "F", 1, 1.5)
    d
}

## -2 log-likelihood (REML or ML) of y ~ x with intercept variances sd^2
## for id and item and residual covariance sigma^2 S R S.
dense_deviance <- function(d, sd_id, sd_item, sigma, R, s = rep(1, nrow(d)), REML) {
    Zi <- model.matrix(~ 0 + id, d)
    Zt <- model.matrix(~ 0 + item, d)
    V <- sd_id^2 * tcrossprod(Zi) + sd_item^2 * tcrossprod(Zt) + sigma^2 * outer(s, s) * R
    X <- cbind(1, d$x)
    U <- chol(V)
    Xi <- backsolve(U, X, transpose = TRUE)
    yi <- backsolve(U, d$y, transpose = TRUE)
    qx <- qr(Xi)
    r <- qr.resid(qx, yi)
    n <- nrow(d)
    2 * sum(log(diag(U))) + sum(r^2) +
        if (REML) (n - 2) * log(2 * pi) + 2 * sum(log(abs(diag(qr.R(qx))))) else n * log(2 * pi)
}

test_that("AR(1) within subjects crossed with items: the dense likelihood, REML and ML, and its optimum", {
    d <- crossed_panel()
    same_id <- outer(d$id, d$id, "==")
    for (reml in c(TRUE, FALSE)) {
        f <- lmmfit(y ~ x + (1 | id) + (1 | item), d, REML = reml, correlation = nlme::corAR1(form = ~ time | id))
        vc <- as.data.frame(VarCorr(f))
        phi <- corpar(f)[["Phi"]]
        at <- function(p) dense_deviance(d, exp(p[1]), exp(p[2]), exp(p[4]),
                                         tanh(p[3])^abs(outer(d$time, d$time, "-")) * same_id, REML = reml)
        p0 <- c(log(vc$sdcor[vc$grp == "id"]), log(vc$sdcor[vc$grp == "item"]), atanh(phi), log(sigma(f)))
        expect_equal(-2 * as.numeric(logLik(f)), at(p0), tolerance = 1e-10)
        o <- optim(p0, at, control = list(reltol = 1e-14, maxit = 5000))
        expect_gte(o$value, -2 * as.numeric(logLik(f)) - 1e-6)
        ## the ar1() short form is the same fit
        g <- lmmfit(y ~ x + (1 | id) + (1 | item), d, REML = reml, correlation = ar1(~ time | id))
        expect_equal(deviance(g), deviance(f), tolerance = 1e-9)
    }
})

test_that("crossed terms with CAR(1), compound symmetry and a variance function: the dense likelihood", {
    d <- crossed_panel(seed = 4)
    same_id <- outer(d$id, d$id, "==")
    d$t_real <- d$time + runif(nrow(d), 0, 0.5)
    cases <- list(
        list(cor = nlme::corCAR1(form = ~ t_real | id), var = NULL,
             R = function(f) corpar(f)[["Phi"]]^abs(outer(d$t_real, d$t_real, "-")) * same_id),
        list(cor = nlme::corCompSymm(form = ~ 1 | id), var = NULL,
             R = function(f) ifelse(same_id, corpar(f)[["Rho"]], 0) + diag(1 - corpar(f)[["Rho"]], nrow(d))),
        list(cor = nlme::corAR1(form = ~ time | id), var = nlme::varIdent(form = ~ 1 | sex),
             R = function(f) corpar(f)[["Phi"]]^abs(outer(d$time, d$time, "-")) * same_id))
    for (cs in cases) {
        f <- lmmfit(y ~ x + (1 | id) + (1 | item), d, correlation = cs$cor, weights = cs$var)
        vc <- as.data.frame(VarCorr(f))
        s <- if (is.null(cs$var)) rep(1, nrow(d)) else ifelse(d$sex == levels(d$sex)[1L], 1, varpar(f)[[1L]])
        expect_equal(-2 * as.numeric(logLik(f)),
                     dense_deviance(d, vc$sdcor[vc$grp == "id"], vc$sdcor[vc$grp == "item"], sigma(f), cs$R(f),
                                    s, REML = TRUE), tolerance = 1e-10)
    }
    ## the pieces of compound symmetry are not used with crossed terms, and
    ## a crossed term may be the only random effect when the grouping is one
    expect_error(lmmfit(y ~ x + (1 | item), d, correlation = nlme::corAR1(form = ~ time | id)),
                 "must be nested in the random-effects grouping factor with the most levels")
})

test_that("methods of a crossed structure fit: residuals, Satterthwaite, simulate, refit", {
    d <- crossed_panel(seed = 5)
    f <- lmmfit(y ~ x + (1 | id) + (1 | item), d, correlation = nlme::corAR1(form = ~ time | id))
    expect_equal(deviance(refit(f, f$y)), deviance(f), tolerance = 1e-9)
    df <- coef(summary(f, ddf = "Satterthwaite"))[, "df"]
    expect_true(all(is.finite(df) & df > 1 & df < nobs(f)))
    r <- residuals(f, type = "normalized")
    expect_length(r, nrow(d))
    y2 <- simulate(f, nsim = 1, seed = 1)[[1L]]
    d$y2 <- y2
    g <- lmmfit(y2 ~ x + (1 | id) + (1 | item), d, correlation = nlme::corAR1(form = ~ time | id))
    expect_equal(deviance(refit(f, y2)), deviance(g), tolerance = 1e-7)
})
