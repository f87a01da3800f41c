## The data checks of R/checks.R and the C scans behind them (src/checks.c),
## which answer without the n-length temporaries of their R equivalents.

C <- function(name) getDLLRegisteredRoutines("lmmfit")$.Call[[name]]

test_that("lmm_all_finite() agrees with all(is.finite())", {
    x <- c(1, 2.5, -3)
    for (v in list(x, c(x, NA), c(x, NaN), c(x, Inf), c(-Inf, x), numeric(0),
                   matrix(x, 3, 2), 1:3, c(1L, NA), factor(c("a", NA)), factor("a"))) {
        expect_identical(.Call(C("lmm_all_finite"), v), all(is.finite(unclass(v))), info = deparse(v))
    }
    expect_error(.Call(C("lmm_all_finite"), "a"), "numeric")
})

test_that("lmm_levels_used() is TRUE exactly when factor() would change nothing", {
    used <- function(f) .Call(C("lmm_levels_used"), f)
    expect_true(used(factor(c("b", "a", "b"))))
    expect_false(used(factor(c("b", "a"), levels = c("a", "b", "c"))))   # unused level
    expect_false(used(factor(c("b", NA, "a"))))                          # NA
    expect_false(used(factor(character(0), levels = "a")))
    expect_true(used(factor(character(0))))
    for (f in list(factor(c(1, 3, 3)), droplevels(factor(c(1, 3), levels = 1:3))))
        expect_identical(used(f), identical(f, factor(f)))
    expect_error(used(1:3), "factor")
})

test_that("lmm_column_scales() gives sd() of the non-0/1 columns, NA for the others", {
    set.seed(3)
    X <- cbind(1, rnorm(50, 10, 3), rbinom(50, 1, 0.4), runif(50), 0)
    s <- .Call(C("lmm_column_scales"), X)
    expect_equal(s[c(2, 4)], apply(X[, c(2, 4)], 2, sd), tolerance = 1e-12)
    expect_true(all(is.na(s[c(1, 3, 5)])))
})

test_that("check_scales() messages on a 1e4-fold spread of standard deviations and not below it", {
    set.seed(4)
    X <- cbind(`(Intercept)` = 1, a = rnorm(100), b = rnorm(100, sd = 2e4), d = rbinom(100, 1, 0.5))
    expect_message(lmmfit:::check_scales(X), "from .* \\(a\\) to .* \\(b\\)")
    X[, "b"] <- X[, "b"] / 10
    expect_silent(lmmfit:::check_scales(X))
})

test_that("the triangular factor of a tall X has X's cross-products, and drop_aliased() uses it", {
    set.seed(5)
    n <- 70000L
    X <- cbind(`(Intercept)` = 1, a = rnorm(n), b = rnorm(n, 5), c = runif(n))
    R <- .Call(C("lmm_x_rfactor"), X)
    expect_equal(unname(crossprod(R)), unname(crossprod(X)), tolerance = 1e-12)
    expect_true(all(R[lower.tri(R)] == 0))
    ## an aliased column: the same one lm() drops, with lm()'s message
    X <- cbind(X, e = 2 * X[, "a"] - X[, "c"])
    attr(X, "assign") <- 0:4
    expect_message(Xd <- lmmfit:::drop_aliased(X), "dropping 1 column / coefficient: e")
    expect_identical(colnames(Xd), c("(Intercept)", "a", "b", "c"))
    expect_identical(attr(Xd, "assign"), 0:3)
    y <- rnorm(n)
    expect_identical(names(which(is.na(coef(lm(y ~ 0 + X))))), "Xe")
})
