## What a meta-analyst reads off the fit: the coefficients' tests and
## intervals, the heterogeneity statistics, the log-likelihoods and
## information criteria (metafor's definitions, so that the numbers agree).

meta_inference <- function(fit, model, method, test, level) {
    k <- model$k; p <- model$p
    vb <- chol2inv(fit$RX)
    dimnames(vb) <- list(names(fit$beta), names(fit$beta))
    het <- meta_heterogeneity(fit, model, method)
    ## Knapp-Hartung: the variance scaled by the weighted residual mean square
    s2w <- if (test == "knha") fit$pwrss / (k - p) else 1
    vb <- s2w * vb
    ddf <- if (test == "z") NA_integer_ else k - p
    tests <- meta_coef_tests(fit$beta, vb, ddf, level)
    btt <- meta_moderators(names(fit$beta))
    c(list(beta = fit$beta, vb = vb, ddf = ddf, s2w = s2w, coef_table = tests, btt = btt,
           QM = meta_omnibus(fit$beta, vb, btt, ddf), theta = fit$theta, u = fit$u,
           xprod = fit$xprod, optinfo = fit$optinfo, pwrss = fit$pwrss, QE = fit$QE,
           QEp = stats::pchisq(fit$QE, k - p, lower.tail = FALSE)),
      het, list(fit_stats = meta_fit_stats(fit, model, method)))
}

## Coefficients, SE, z (or t), p-value and CI.
meta_coef_tests <- function(beta, vb, ddf, level) {
    se <- sqrt(diag(vb))
    stat <- beta / se
    crit <- if (is.na(ddf)) stats::qnorm(1 - (1 - level) / 2) else stats::qt(1 - (1 - level) / 2, ddf)
    pval <- if (is.na(ddf)) 2 * stats::pnorm(-abs(stat)) else 2 * stats::pt(-abs(stat), ddf)
    ## (a list: a data frame costs more than the rest of a small fit)
    list(estimate = beta, se = se, stat = stat, pval = pval, ci.lb = beta - crit * se, ci.ub = beta + crit * se)
}

## The coefficients the omnibus test covers: all but the intercept (all when
## there is none).
meta_moderators <- function(nm) {
    b <- which(nm != "(Intercept)")
    if (length(nm) == 1L) seq_along(nm) else b
}

## The Wald test of the coefficients btt: chi-square, or F with k - p df.
meta_omnibus <- function(beta, vb, btt, ddf) {
    m <- length(btt)
    b <- beta[btt]
    QM <- drop(crossprod(b, solve(vb[btt, btt, drop = FALSE], b)))
    if (is.na(ddf)) list(stat = QM, df = m, ddf = NA_integer_, pval = stats::pchisq(QM, m, lower.tail = FALSE))
    else list(stat = QM / m, df = m, ddf = ddf, pval = stats::pf(QM / m, m, ddf, lower.tail = FALSE))
}

## The variance components: tau^2 of each scalar term (rma.mv's sigma^2),
## the covariance of each vector term; for rma.uni's model also I^2, H^2 and
## the standard error of tau^2.
meta_heterogeneity <- function(fit, model, method) {
    k <- model$k; p <- model$p
    comps <- meta_components(fit$theta, model)
    if (!model$uni && !(model$fe_only && !model$whiten))
        return(list(components = comps, tau2 = if (model$fe_only) 0))
    tau2 <- if (model$fe_only) 0 else fit$theta[[1L]]^2
    vt <- meta_typical_variance(model$vi, model$X)
    if (method == "FE") {
        I2 <- max(0, 100 * (fit$QE - (k - p)) / fit$QE)
        H2 <- fit$QE / (k - p)
        se <- NA_real_
    } else {
        I2 <- 100 * tau2 / (vt + tau2)
        H2 <- tau2 / vt + 1
        se <- if (method %in% META_MOMENT_METHODS) meta_moment_tau2(method, model$y, model$vi, model$X)$se
              else meta_likelihood_se(method, tau2, model$vi, model$X)
    }
    list(components = comps, tau2 = tau2, se.tau2 = se, I2 = I2, H2 = H2, vt = vt)
}

## One entry per random term: its covariance (sigma = 1), levels and factor.
meta_components <- function(theta, model) {
    if (model$fe_only) return(NULL)
    lam <- theta_to_lambda(theta, model$terms)
    ## in the formula's order, as metafor lists them
    pos <- attr(model$terms, "formula_pos")
    lapply(if (is.null(pos)) seq_along(lam) else order(pos), function(j) {
        t <- model$terms[[j]]
        list(group = t$group, nlev = t$nlev, columns = colnames(t$Z), cov = tcrossprod(lam[[j]]))
    })
}

## Log-likelihoods, deviance and information criteria as metafor defines
## them: the REML log-likelihood includes +log|X'X| / 2, and the ML
## "deviance" is relative to the saturated model.
meta_fit_stats <- function(fit, model, method) {
    k <- model$k; p <- model$p
    npar <- p + if (method == "FE") 0L else length(fit$theta)
    ll_ml <- -fit$deviance_ml / 2
    ll_reml <- -fit$deviance_reml / 2 + sum(log(abs(diag(chol(crossprod(model$X))))))
    ## the saturated model's log-likelihood: sum of dnorm(y, y, sqrt(vi), log = TRUE)
    saturated <- if (model$whiten) 0 else -0.5 * sum(log(2 * pi * model$vi))
    aicc <- function(ll, n) -2 * ll + 2 * npar * max(n, npar + 2) / (max(n, npar + 2) - npar - 1)
    matrix(c(ll_ml, -2 * (ll_ml - saturated), -2 * ll_ml + 2 * npar, -2 * ll_ml + npar * log(k),
             aicc(ll_ml, k),
             ll_reml, -2 * ll_reml, -2 * ll_reml + 2 * npar, -2 * ll_reml + npar * log(k - p),
             aicc(ll_reml, k - p)),
           5L, dimnames = list(c("ll", "dev", "AIC", "BIC", "AICc"), c("ML", "REML")))
}
