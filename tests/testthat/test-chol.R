## The blocked Cholesky kernel (src/chol.c) of the dense crossed block
## against LAPACK's dpotrf (base::chol), and fits that use it against lme4.

## The kernel in use for the dense block: the blocked one unless told otherwise.
with_dense_chol <- function(lapack, code) {
    old <- .Call(lmmfit:::C_lmm_dense_chol_lapack, lapack)
    on.exit(.Call(lmmfit:::C_lmm_dense_chol_lapack, old))
    force(code)
}

test_that("the blocked Cholesky equals dpotrf to 1e-12", {
    chol_lmm <- function(A) with_dense_chol(FALSE, .Call(lmmfit:::C_lmm_chol, A))
    ## sizes below and above the blocked threshold, not multiples of the tiles
    for (n in c(1L, 7L, 159L, 160L, 161L, 203L, 389L, 517L)) {
        set.seed(n)
        M <- matrix(rnorm(n * (n + 5L)), n + 5L)
        A <- crossprod(M) + diag(0.1, n)
        L <- chol_lmm(A)
        R <- chol(A)                           # LAPACK dpotrf, upper
        expect_equal(L, t(R), tolerance = 1e-12, info = paste("n =", n))
        expect_equal(L[upper.tri(L)], rep(0, n * (n - 1) / 2))
    }
    ## garbage in the strict upper triangle is not referenced
    n <- 300L; set.seed(1)
    A <- crossprod(matrix(rnorm(n * n), n)) + diag(n)
    B <- A; B[upper.tri(B)] <- NaN
    expect_equal(chol_lmm(B), t(chol(A)), tolerance = 1e-12)
})

test_that("the blocked Cholesky reports a matrix that is not positive definite", {
    n <- 250L; set.seed(2)
    M <- matrix(rnorm(n * 100L), n)
    A <- tcrossprod(M)                          # rank 100
    A[200, 200] <- -1
    expect_error(.Call(lmmfit:::C_lmm_chol, A), "not positive definite")
    expect_error(.Call(lmmfit:::C_lmm_chol, matrix(1, 2, 3)), "square")
})

test_that("a crossed fit with a large dense block matches lme4", {
    need_lme4()
    set.seed(11)
    n <- 3000L
    a <- factor(sample.int(600L, n, replace = TRUE))
    b <- factor(sample.int(250L, n, replace = TRUE))    # rest block of order 250
    d <- data.frame(y = rnorm(600L)[a] + rnorm(250L, sd = 0.7)[b] + rnorm(n), a = a, b = b)
    fit <- lmmfit(y ~ 1 + (1 | a) + (1 | b), data = d)
    m <- lme4::lmer(y ~ 1 + (1 | a) + (1 | b), data = d)
    expect_lte(fit$deviance_value - lme4::REMLcrit(m), 1e-6)
    expect_equal(fit$deviance_value, lme4::REMLcrit(m), tolerance = 1e-6)
    expect_equal(unname(fixef(fit)), unname(lme4::fixef(m)), tolerance = 1e-5)
    expect_equal(unname(fit$theta), unname(lme4::getME(m, "theta")), tolerance = 1e-4)
})

test_that("the dense block goes to dpotrf and dtrsm under an optimised LAPACK, and fits agree either way", {
    use <- lmmfit:::dense_chol_uses_lapack
    expect_true(use("lapack"))
    expect_false(use("blocked"))
    expect_error(use("fast"))
    ## "auto" follows the names of the libraries R reports
    expect_identical(use("auto"),
                     any(grepl("openblas|mkl|blis|atlas|accelerate|veclib|armpl",
                               c(extSoftVersion()[["BLAS"]], La_library()), ignore.case = TRUE)))
    n <- 300L; set.seed(3)
    A <- crossprod(matrix(rnorm(n * (n + 3L)), n + 3L))
    expect_equal(with_dense_chol(TRUE, .Call(lmmfit:::C_lmm_chol, A)), t(chol(A)), tolerance = 1e-12)
    ## a crossed fit whose rest block (order 250) is above the kernel's threshold
    set.seed(12)
    a <- factor(sample.int(500L, 2500L, replace = TRUE))
    b <- factor(sample.int(250L, 2500L, replace = TRUE))
    d <- data.frame(y = rnorm(500L)[a] + rnorm(250L, sd = 0.7)[b] + rnorm(2500L), a = a, b = b)
    f1 <- with_dense_chol(TRUE, lmmfit(y ~ 1 + (1 | a) + (1 | b), data = d))
    f2 <- with_dense_chol(FALSE, lmmfit(y ~ 1 + (1 | a) + (1 | b), data = d))
    expect_equal(f1$deviance_value, f2$deviance_value, tolerance = 1e-10)
    expect_equal(f1$theta, f2$theta, tolerance = 1e-5)
    ## the deviance (its pwrss comes from the X-and-y columns solved with the
    ## block's factor: the package's loop, or dtrsm) at points off the optimum
    TH <- rbind(c(0.3, 1, 2.5), c(0.2, 0.8, 1.7))
    dev <- function(lapack) with_dense_chol(lapack, .Call(lmmfit:::C_lmm_deviance, f1$xprod, TH, TRUE))
    expect_equal(dev(TRUE), dev(FALSE), tolerance = 1e-12)
    expect_false(isTRUE(all.equal(dev(TRUE)[1], dev(TRUE)[3], tolerance = 1e-6)))
})
