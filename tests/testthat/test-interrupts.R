## Long computations check for user interrupts (R_CheckUserInterrupt): a time
## limit (raised at the next check) stops them, their scratch memory (R_alloc)
## is released, and the session stays usable.  make valgrind runs this file
## under memcheck, which reports any leak of an interrupted call.

interrupted <- function(expr, limit = 0.5) {
    t0 <- proc.time()[["elapsed"]]
    setTimeLimit(elapsed = limit, transient = TRUE)
    on.exit(setTimeLimit(elapsed = Inf))
    e <- tryCatch({ force(expr); NULL }, error = function(e) e)
    setTimeLimit(elapsed = Inf)
    list(error = e, seconds = proc.time()[["elapsed"]] - t0)
}
## generous bound on the time to the first interrupt check after the limit
## (valgrind slows everything ~50 fold)
slack <- if (test_level() == "full") 5 else 120

small_fit <- function() {
    d <- data.frame(g = factor(rep(1:8, each = 6)), x = rep(1:6, 8))
    set.seed(3)
    d$y <- 2 + 0.3 * d$x + rnorm(8)[d$g] + rnorm(48)
    suppressMessages(lmmfit(y ~ x + (1 | g), d))
}

test_that("a long parametric bootstrap stops at a time limit and the session stays usable", {
    fit <- small_fit()
    r <- interrupted(parboot(fit, nsim = 1e5, seed = 1))
    expect_s3_class(r$error, "error")
    expect_match(conditionMessage(r$error), "time limit")
    expect_lt(r$seconds, slack)
    ## a normal fit and bootstrap afterwards give the results of a fresh session
    fit2 <- small_fit()
    expect_identical(fixef(fit2), fixef(fit))
    expect_identical(fit2$theta, fit$theta)
    b1 <- parboot(fit, nsim = 3, seed = 2)
    b2 <- parboot(fit, nsim = 3, seed = 2)
    expect_identical(b1$t, b2$t)
})

test_that("the RNG skip-ahead (10^10 draws) stops at a time limit", {
    r <- interrupted(.Call(getDLLRegisteredRoutines("lmmfit")$.Call$lmm_boot_skip, 1e10))
    expect_s3_class(r$error, "error")
    expect_match(conditionMessage(r$error), "time limit")
    expect_lt(r$seconds, slack)
    expect_true(is.finite(sum(rnorm(3))))
})

test_that("a large fit (a 2000-column dense block) stops at a time limit", {
    skip_if_slow_level()
    set.seed(4)
    n <- 20000
    d <- data.frame(a = factor(sample(2000, n, TRUE)), b = factor(sample(2000, n, TRUE)), x = rnorm(n))
    d$y <- rnorm(2000)[d$a] + rnorm(2000)[d$b] + rnorm(n)
    r <- interrupted(lmmfit(y ~ x + (1 | a) + (1 | b), d), limit = 1)
    expect_s3_class(r$error, "error")
    expect_match(conditionMessage(r$error), "time limit")
    expect_lt(r$seconds, slack)
    fit <- small_fit()
    expect_equal(unname(fixef(fit)), unname(fixef(small_fit())))
})
