## Models without random effects (nlme's gls): lmmfit(y ~ x, data,
## correlation = , weights = <varFunc>) fits them with the residual
## structures' code (R/resid-fit.R, src/resid_fit.c) and the one driver.

## A model without random effects (nlme's gls) is the engine's model with
## one placeholder term, a zero column on a one-level factor with theta
## held at 0: Lambda = 0, L = I, and the criterion is the generalised
## least-squares one.  The fit reports no random-effects terms.
gls_placeholder <- function(n)
    list(list(group = "(none)", factor = factor(rep.int(1L, n)),
              Z = matrix(0, n, 1L, dimnames = list(NULL, "(Intercept)")), nlev = 1L, label = "0 | (none)"))

drop_placeholder <- function(fit) {
    fit$theta <- fit$optinfo$theta <- setNames(numeric(0), character(0))
    fit$u <- numeric(0)
    fit$optinfo$gradient <- fit$optinfo$scaled_gradient <- numeric(0)
    fit
}

## Whether a fit is a generalised least-squares one (no random effects).
is_gls <- function(fit) !length(fit$reterms)
