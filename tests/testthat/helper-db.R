## Data and comparisons shared by the database, file and aggregates tests.

## Agreement required of a fit from aggregates with the in-memory fit: both
## optimise the same deviance from cross-products equal to rounding, so they
## stop within the optimiser's own noise.  The data are made so that the
## in-memory optimum is itself reproducible well inside the tolerance: the
## optimiser stops where the deviance is flat to 1e-14 relative, which with
## few levels leaves theta located to only ~1e-8 (30 levels of g and 12 of h
## gave 2e-8 between the in-memory fit and the same rows permuted, and
## 6e-7 from the exact optimum); 60 and 40 levels are sharper.
DB_AGREEMENT_TOL <- 1e-8

## A modest data set with every feature the aggregates must carry: numeric
## and factor fixed effects, a slope, crossed (g, h) and nested (a/b)
## grouping, weights, a column far from its origin.
db_test_data <- function(n = 2000L, seed = 25L) {
    set.seed(seed)
    d <- data.frame(g = sample(60L, n, TRUE), h = sample(sprintf("h%02d", 1:40), n, TRUE), x = rnorm(n),
                    z = runif(n, 1, 3), f = sample(c("lo", "mid", "hi"), n, TRUE),
                    a = sample(8L, n, TRUE), b = sample(5L, n, TRUE), w = runif(n, 0.5, 2),
                    stringsAsFactors = FALSE)
    d$far <- 1e5 + d$x                          # a slope far from its origin
    d$y <- 1 + d$x + rnorm(60L)[d$g] + d$x * rnorm(60L, sd = 0.5)[d$g] + rnorm(40L)[match(d$h, sprintf("h%02d", 1:40))] +
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
    ## a fit from aggregates (an lmmfit object), or lmmfit_stats()'s list
    if (inherits(fs, "lmmfit")) fs <- list(deviance = deviance(fs), beta = fixef(fs), theta = fs$theta,
                                           sigma = sigma(fs))
    expect_equal(fs$deviance, deviance(fm), tolerance = tol)
    expect_equal(unname(fs$beta), unname(fixef(fm)), tolerance = tol)
    expect_equal(names(fs$beta), names(fixef(fm)))
    expect_equal(unname(fs$theta), unname(fm$theta), tolerance = tol)
    expect_equal(fs$sigma, sigma(fm), tolerance = tol)
}

## The formulas of the transformation tests (each with a sharp optimum: two
## crossed terms), computed in SQL by the database.
db_transform_formulas <- list(
    y ~ log(pos) + I(x^2) + (1 | g) + (1 | h),
    y ~ log10(pos) + sqrt(pos) + x:z + (1 | g) + (1 | h),
    y ~ factor(b) + I(x / z) + (1 | g) + (1 | h),
    big ~ x + (1 | g) + (1 | h),
    log(pos) ~ x + (1 | g) + (1 | h)
)

## The test data with the columns the transformations need.
db_test_table <- function() {
    d <- db_test_data()
    d$pos <- d$z * 10                      # positive, for log()
    d$big <- 1e6 + 1e-3 * d$y              # a response far from its origin
    d
}

## Every equivalence of a database fit with the in-memory fit, on a
## connection holding db_test_table() as table "t".
expect_db_matches_memory <- function(con, d) {
    for (f in c(db_test_formulas, db_transform_formulas)) {
        fm <- suppressMessages(lmmfit(f, d))
        fs <- suppressMessages(lmmfit(f, data = lmm_db(con, "t")))
        expect_same_fit(fs, fm)
    }
    fm <- lmmfit(y ~ x + (x | g), d, weights = w, REML = FALSE)
    fs <- lmmfit(y ~ x + (x | g), data = lmm_db(con, "t"), weights = w, REML = FALSE)
    expect_same_fit(fs, fm)
}
