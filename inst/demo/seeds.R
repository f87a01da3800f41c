## A short tour of lmmfit on three small problems.
##   Rscript inst/demo/seeds.R        (after `make install`; `make demo` does both)
library(lmmfit)

## (a) Ten groups whose intercepts differ a lot, one common slope of -1.
##     The mixed model's intercept has a much larger standard error than a
##     fixed-effects fit's, while the slope's standard error is the same:
##     the intercept is for a new group drawn from the population of groups.
##     (`tenclusters` is seed 001's data, regenerated exactly: see ?tenclusters.)
data <- tenclusters
cat("\n== (a) y ~ x + (1 | p): 10 groups, 10 points each\n\n")
fit_a <- lmmfit(y ~ x + (1 | p), data = data)
print(summary(fit_a))
cat("\nFixed-effects fit for comparison (sum-to-zero contrasts for p):\n")
print(coef(summary(lm(y ~ x + p, data = data, contrasts = list(p = "contr.sum"))))[1:2, ])

## (b) Twelve points in four groups: x varies mostly between groups, y mostly
##     within them.  The group variance is estimated at exactly zero (a
##     boundary fit), so the mixed model reproduces lm(y ~ x).
##     (`clusterx` holds seed 002's twelve rows: see ?clusterx.)
d2 <- clusterx
cat("\n== (b) y ~ x + (1 | f): 12 points, 4 groups\n\n")
fit_b <- lmmfit(y ~ x + (1 | f), data = d2)
print(summary(fit_b))
cat("\nisSingular:", isSingular(fit_b), "\n")
cat("lm(y ~ x) for comparison:\n")
print(coef(lm(y ~ x, data = d2)))

## (c) lme4's sleepstudy: correlated random intercepts and slopes.
if (requireNamespace("lme4", quietly = TRUE)) {
    cat("\n== (c) Reaction ~ Days + (Days | Subject), lme4::sleepstudy\n\n")
    fit_c <- lmmfit(Reaction ~ Days + (Days | Subject), data = lme4::sleepstudy)
    print(summary(fit_c))
} else {
    cat("\n(c) skipped: lme4 is not installed (it provides the sleepstudy data)\n")
}
