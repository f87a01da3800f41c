## Residual-structure tests: nlme is the oracle, converged tightly (its
## default tolerances leave the structure's parameters about 1e-5 short).
NLME_TIGHT <- function() nlme::lmeControl(maxIter = 500, msMaxIter = 500, msMaxEval = 2000,
                                          tolerance = 1e-10, msTol = 1e-12, returnObject = TRUE)
## The issue's targets: logLik never worse than nlme's by more than 1e-6;
## fixed effects to 1e-5 relative; the structure's parameters, flatter
## directions of the likelihood, to 1e-4 relative.
RESID_LL_TOL <- 1e-6
RESID_FIXEF_TOL <- 1e-5
RESID_PAR_TOL <- 1e-4

## Our fit against nlme's: logLik, its degrees of freedom, the fixed effects.
expect_nlme_agree <- function(ours, theirs) {
    expect_gte(as.numeric(logLik(ours)), as.numeric(logLik(theirs)) - RESID_LL_TOL)
    expect_lt(abs(as.numeric(logLik(ours)) - as.numeric(logLik(theirs))), RESID_LL_TOL)
    expect_equal(attr(logLik(ours), "df"), attr(logLik(theirs), "df"))
    expect_equal(unname(fixef(ours)), unname(nlme::fixef(theirs)), tolerance = RESID_FIXEF_TOL)
}

nlme_corpar <- function(fit) coef(fit$modelStruct$corStruct, unconstrained = FALSE)
nlme_varpar <- function(fit) coef(fit$modelStruct$varStruct, unconstrained = FALSE)

## Exponentially correlated sites: 25 sites of 16 points in the unit square,
## range 0.3, a nugget of 0.3 of the variance, site effects and a slope in x.
spatial_sites <- function(seed = 5, S = 25, m = 16) {
    set.seed(seed)
    d <- data.frame(site = rep(seq_len(S), each = m), x = runif(S * m), y = runif(S * m))
    e <- unlist(lapply(seq_len(S), function(s) {
        i <- d$site == s
        D <- as.matrix(dist(cbind(d$x[i], d$y[i])))
        drop(t(chol(0.3 * diag(m) + exp(-D / 0.3))) %*% rnorm(m))
    }))
    d$z <- e + rnorm(S)[d$site] + d$x
    d
}

## nlme's Ovary with Mare a plain factor (levels 1 to 11).
ovary_plain <- function() {
    d <- as.data.frame(nlme::Ovary)
    d$Mare <- factor(as.character(d$Mare), levels = as.character(1:11))
    d
}

## corSymm within subjects nested in clusters with a random intercept (the
## correlations are identified: the cluster variance shows between
## subjects), a general 4 x 4 correlation over visits, 40 visits missing.
symm_clusters <- function(seed = 3, K = 40, S = 3) {
    set.seed(seed)
    C <- matrix(c(1, 0.6, 0.3, 0.1, 0.6, 1, 0.5, 0.2, 0.3, 0.5, 1, 0.7, 0.1, 0.2, 0.7, 1), 4)
    d <- expand.grid(visit = 1:4, subject = seq_len(S), cluster = seq_len(K))
    d$x <- rnorm(nrow(d))
    e <- as.vector(t(chol(C)) %*% matrix(rnorm(nrow(d)), 4))
    d$z <- 1 + 0.5 * d$x + rnorm(K)[d$cluster] + e
    d[-sample(nrow(d), 40), ]
}

## The ML deviance of y ~ X with Var = sigma^2 (gamma 11' + R) per group, by
## dense algebra independent of the package: profiled over beta, and over
## sigma when sigma is NULL (attribute sigma: the ML sigma at beta-hat).
## Rfun(m, rows) is the group's residual correlation (times variances).
dense_ml_deviance <- function(y, X, g, Rfun, gamma = 0, sigma = NULL) {
    ld <- 0
    Xw <- X
    yw <- y
    for (b in split(seq_along(y), g)) {
        U <- chol(gamma + Rfun(length(b), b))
        ld <- ld + 2 * sum(log(diag(U)))
        Xw[b, ] <- backsolve(U, X[b, , drop = FALSE], transpose = TRUE)
        yw[b] <- backsolve(U, y[b], transpose = TRUE)
    }
    rss <- sum(stats::lm.fit(Xw, yw)$residuals^2)
    n <- length(y)
    d <- if (is.null(sigma)) n * log(2 * pi * rss / n) + n + ld else n * log(2 * pi * sigma^2) + ld + rss / sigma^2
    structure(d, sigma = sqrt(rss / n))
}
ar1_cor <- function(phi) function(m, rows) phi^abs(outer(seq_len(m), seq_len(m), "-"))
cs_cor <- function(rho) function(m, rows) (1 - rho) * diag(m) + rho

## -2 log-likelihood (REML or ML) of y ~ X with Var = sdb^2 11' + sigma^2 C
## per group of rows in order, C the ARMA(ar, ma) autocorrelations.
dense_arma_deviance <- function(y, X, g, ar, ma, sdb, sigma, REML) {
    ld <- 0
    Xw <- X
    yw <- y
    for (b in split(seq_along(y), g)) {
        m <- length(b)
        acf <- stats::ARMAacf(ar = ar, ma = ma, lag.max = m)
        V <- sdb^2 + sigma^2 * matrix(acf[abs(outer(seq_len(m), seq_len(m), "-")) + 1], m)
        U <- chol(V)
        ld <- ld + 2 * sum(log(diag(U)))
        Xw[b, ] <- backsolve(U, X[b, , drop = FALSE], transpose = TRUE)
        yw[b] <- backsolve(U, y[b], transpose = TRUE)
    }
    qx <- qr(Xw)
    n <- length(y) - if (REML) ncol(X) else 0
    n * log(2 * pi) + ld + sum(qr.resid(qx, yw)^2) + if (REML) 2 * sum(log(abs(diag(qr.R(qx))))) else 0
}
