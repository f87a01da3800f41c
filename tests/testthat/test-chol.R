## The blocked Cholesky kernel (src/chol.c) of the dense crossed block
## against LAPACK's dpotrf (base::chol), and fits that use it against lme4.

test_that("the blocked Cholesky equals dpotrf to 1e-12", {
    chol_lmm <- function(A) .Call(lmmfit:::C_lmm_chol, A)
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
