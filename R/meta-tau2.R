## Between-study variance of the model with one random effect per study
## (metafor's rma): the moment estimators, the standard error of tau^2 of each
## method, and the Q-profile interval.  Everything is written in terms of the
## weighted residual projection P = W - W X (X'W X)^-1 X'W without forming
## it: its traces reduce to p x p products, so k may be large.

## Paule-Mandel and the Q-profile limits solve Q(tau^2) = target: to this
## relative accuracy in tau^2 (uniroot's own default is 1e-4 absolute).
META_ROOT_TOL <- 1e-12

## The residual of the weighted least-squares fit (p x p normal equations:
## X is a handful of moderators, well conditioned after lm's own checks).
meta_gls_residual <- function(y, X, w) {
    Xw <- X * w
    drop(y - X %*% solve(crossprod(Xw, X), crossprod(Xw, y)))
}

## The generalized Q statistic sum w (y - X b_w)^2 at weights w.
meta_q <- function(y, X, w) sum(w * meta_gls_residual(y, X, w)^2)

## tr(M diag(a) M diag(b)) with M = I - H, H the hat matrix of the weighted
## fit (weights w), from A = X'W X: sum(ab) - 2 tr(A^-1 X' diag(w ab) X) +
## tr(A^-1 X' diag(w a) X A^-1 X' diag(w b) X).
meta_trace_pair <- function(a, b, w, X) {
    Ainv <- solve(crossprod(X * sqrt(w)))
    xd <- function(d) crossprod(X * d, X)
    sum(a * b) - 2 * sum(diag(Ainv %*% xd(w * a * b))) +
        sum(diag(Ainv %*% xd(w * a) %*% Ainv %*% xd(w * b)))
}

## tr(M diag(a)) = sum(a) - tr(A^-1 X' diag(w a) X).
meta_trace_one <- function(a, w, X) {
    sum(a) - sum(diag(solve(crossprod(X * sqrt(w)), crossprod(X * (w * a), X))))
}

## P's traces at weights w: tr(P), tr(P P), tr(P V), tr(P V P V), tr(P V P).
## (P = D M D with D^2 = W, so P V = D M U D^-1 with U = diag(w vi).)
meta_traces <- function(w, vi, X) {
    u <- w * vi
    list(P = meta_trace_one(w, w, X), PP = meta_trace_pair(w, w, w, X),
         PV = meta_trace_one(u, w, X), PVPV = meta_trace_pair(u, u, w, X),
         PVP = meta_trace_pair(u, w, w, X))
}

## The moment estimators: tau^2 (truncated at 0, as metafor does) and its
## standard error, each as the estimator's own formula.
meta_moment_tau2 <- function(method, y, vi, X) {
    k <- length(y); p <- ncol(X)
    switch(method,
        DL = {
            w <- 1 / vi
            tr <- meta_traces(w, vi, X)
            tau2 <- max(0, (meta_q(y, X, w) - (k - p)) / tr$P)
            se <- sqrt((2 * (k - p) + 4 * tau2 * tr$P + 2 * tau2^2 * tr$PP) / tr$P^2)
            list(tau2 = tau2, se = se)
        },
        HE = {
            w <- rep(1, k)
            tr <- meta_traces(w, vi, X)
            tau2 <- max(0, (meta_q(y, X, w) - tr$PV) / (k - p))
            se <- sqrt((2 * tr$PVPV + 4 * tau2 * tr$PV + 2 * tau2^2 * (k - p)) / (k - p)^2)
            list(tau2 = tau2, se = se)
        },
        SJ = {
            ## the initial value: the effects' variance, with divisor k
            tau0 <- stats::var(y) * (k - 1) / k
            w <- 1 / (vi + tau0)
            tr <- meta_traces(w, vi, X)
            tau2 <- max(0, tau0 * meta_q(y, X, w) / (k - p))
            se <- sqrt(tau0^2 / (k - p)^2 * (2 * tr$PVPV + 4 * tau2 * tr$PVP + 2 * tau2^2 * tr$PP))
            list(tau2 = tau2, se = se)
        },
        PM = {
            tau2 <- meta_q_root(y, vi, X, k - p)
            w <- 1 / (vi + tau2)
            list(tau2 = tau2, se = sqrt(2 * k^2 / (k - p) / sum(w)^2))
        })
}

## The tau^2 >= 0 at which the generalized Q equals target (0 when Q(0) is
## already below it: Q decreases in tau^2).
meta_q_root <- function(y, vi, X, target) {
    f <- function(t2) meta_q(y, X, 1 / (vi + t2)) - target
    if (f(0) <= 0) return(0)
    hi <- max(stats::var(y), mean(vi))
    while (f(hi) > 0) hi <- 2 * hi
    stats::uniroot(f, c(0, hi), tol = META_ROOT_TOL * hi)$root
}

## The standard error of a likelihood estimate of tau^2 (the inverse
## expected information).
meta_likelihood_se <- function(method, tau2, vi, X) {
    w <- 1 / (vi + tau2)
    if (method == "ML") sqrt(2 / sum(w^2)) else sqrt(2 / meta_trace_pair(w, w, w, X))
}

## The "typical" within-study variance (k - p) / tr(P) at weights 1/vi: I^2
## and H^2 compare tau^2 with it.
meta_typical_variance <- function(vi, X) {
    (length(vi) - ncol(X)) / meta_trace_one(1 / vi, 1 / vi, X)
}

## The Q-profile interval of tau^2 (Viechtbauer 2007): the tau^2 at which
## the generalized Q crosses the chi-square(k - p) quantiles.
meta_qprofile <- function(y, vi, X, level) {
    df <- length(y) - ncol(X)
    a <- (1 - level) / 2
    c(lower = meta_q_root(y, vi, X, stats::qchisq(1 - a, df)),
      upper = meta_q_root(y, vi, X, stats::qchisq(a, df)))
}

## Fisher scoring steps on the exact likelihood score in tau^2, after the
## optimizer: function values locate a flat optimum only to about the root of
## their rounding noise (tau^2 to some 1e-7 relative), the score to its own
## rounding.  REML: score -tr(P)/2 + |P y|^2/2, information tr(P P)/2; ML:
## -sum(w)/2 + |P y|^2/2 and sum(w^2)/2 (P y = W r, r the GLS residual).
## A step that would leave tau^2 >= 0 is taken only while it shrinks.
META_SCORE_STEPS <- 3L
meta_score_polish <- function(tau2, y, vi, X, method) {
    for (it in seq_len(META_SCORE_STEPS)) {
        w <- 1 / (vi + tau2)
        r <- meta_gls_residual(y, X, w)
        py2 <- sum((w * r)^2)
        if (method == "REML") {
            score <- -meta_trace_one(w, w, X) / 2 + py2 / 2
            info <- meta_trace_pair(w, w, w, X) / 2
        } else {
            score <- -sum(w) / 2 + py2 / 2
            info <- sum(w^2) / 2
        }
        step <- score / info
        if (!is.finite(step) || tau2 + step <= 0 || abs(step) > META_POLISH_MAX * tau2) break
        tau2 <- tau2 + step
        if (abs(step) <= META_ROOT_TOL * tau2) break
    }
    tau2
}
## The optimizer's tau^2 is within 1e-6 of the optimum; a larger scoring step
## means the score is not locally quadratic there, and the optimizer's point stands.
META_POLISH_MAX <- 1e-3
