## Data and comparisons shared by the database, file and aggregates tests.

## Agreement required of a fit from aggregates with the in-memory fit: both
## optimise the same deviance from cross-products equal to rounding, so they
## stop within the optimiser's own noise.  The data are made so that the
## in-memory optimum is itself reproducible well inside the tolerance (a fit
## of the rows permuted differs by at most a few 1e-9 in theta here; with 12
## levels of h it differed by 2e-8, which no comparison can beat).
DB_AGREEMENT_TOL <- 1e-8

## A modest data set with every feature the aggregates must carry: numeric
## and factor fixed effects, a slope, crossed (g, h) and nested (a/b)
## grouping, weights, a column far from its origin.
db_test_data <- function(n = 1500L, seed = 25L) {
    set.seed(seed)
    d <- data.frame(g = sample(30L, n, TRUE), h = sample(sprintf("h%02d", 1:40), n, TRUE), x = rnorm(n),
                    z = runif(n, 1, 3), f = sample(c("lo", "mid", "hi"), n, TRUE),
                    a = sample(8L, n, TRUE), b = sample(5L, n, TRUE), w = runif(n, 0.5, 2),
                    stringsAsFactors = FALSE)
    d$far <- 1e5 + d$x                          # a slope far from its origin
    d$y <- 1 + d$x + rnorm(30L)[d$g] + d$x * rnorm(30L, sd = 0.5)[d$g] + rnorm(40L)[match(d$h, sprintf("h%02d", 1:40))] +
        0.5 * (d$f == "hi") + rnorm(8L)[d$a] + rnorm(n)
    d
}

## The formulas of the equivalence tests (weights separately).
db_test_formulas <- list(
    intercept = y ~ x + (1 | g),
    slope = y ~ x + (x | g),
    uncorrelated = y ~ x + (x || g),
    nested = y ~ x + (1 | a/b),
    crossed = y ~ x + (1 | g) + (1 | h),
    factors = y ~ x * f + z + (1 | g) + (1 | h),
    interaction = y ~ x + f:z + (x | g) + (1 | h),
    far_slope = y ~ far + (far | g)
)

## A fit from statistics (lmmfit_stats()) against the in-memory fit.
expect_same_fit <- function(fs, fm, tol = DB_AGREEMENT_TOL) {
    expect_equal(fs$deviance, fm$deviance, tolerance = tol)
    expect_equal(unname(fs$beta), unname(fixef(fm)), tolerance = tol)
    expect_equal(names(fs$beta), names(fixef(fm)))
    expect_equal(unname(fs$theta), unname(fm$theta), tolerance = tol)
    expect_equal(fs$sigma, sigma(fm), tolerance = tol)
}
