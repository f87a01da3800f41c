## The deviance module, as src/deviance.c: sigma-hat and the criterion with
## sigma profiled out, from the pieces of a factor (ldL2, pwrss; REML adds
## ldRX2).  Every R-side use calls these rather than writing the formula.

## sqrt(pwrss / n) (ML) or sqrt(pwrss / (n - p)) (REML).
sigma_hat <- function(pwrss, n, p = 0L, REML = FALSE) {
    sqrt(pwrss / (n - if (REML) p else 0L))
}

## The ML deviance (REML = FALSE) or REML criterion at sigma-hat:
## ldL2 [+ ldRX2] + m (1 + log(2 pi pwrss / m)) - sum(log w), m = n [- p].
## A plain linear model is the case ldL2 = 0 (pwrss its residual sum of
## squares).
profiled_deviance <- function(ldL2, pwrss, n, sumlogw = 0, REML = FALSE, ldRX2 = 0, p = 0L) {
    m <- n - if (REML) p else 0L
    ldL2 + (if (REML) ldRX2 else 0) + m * (1 + log(2 * pi * pwrss / m)) - sumlogw
}
