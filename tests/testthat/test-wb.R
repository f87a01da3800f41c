## wb(x, g): the within/between decomposition in an lmmfit formula.

## Seed 002: y varies within groups with x, x varies mostly between groups.
## Group means by hand (tapply), the independent source for the columns.
hand_wb <- function(x, g) {
    m <- as.vector(tapply(x, g, mean, na.rm = TRUE)[as.character(g)])
    list(between = m, within = x - m)
}

test_that("seed 002: wb(x, f) gives the published between and within slopes", {
    d <- seed002_data()
    fit <- lmmfit(y ~ wb(x, f) + (1 | f), data = d)
    expect_identical(names(fixef(fit)), c("(Intercept)", "x_between", "x_within"))
    se <- sqrt(diag(vcov(fit)))
    ## the printed values of the seed, to their digits
    expect_equal(round(unname(fixef(fit)), 6), c(0.008333, 0.005691, 0.462500))
    expect_equal(round(unname(se), 6), c(0.030135, 0.002977, 0.036908))
    ## the within slope is the fixed-effects slope
    expect_equal(fixef(fit)[["x_within"]], coef(lm(y ~ x + f, data = d))[["x"]], tolerance = 1e-8)
    expect_equal(fixef(fit)[["x_within"]], 0.4625, tolerance = 1e-8)
    ## training means stored for predict
    expect_equal(fit$wb[[1]]$means, c(`1` = 3, `2` = -3, `3` = 14, `4` = -14))
})

test_that("seed 002: equal to lme4 fitted on hand-made between/within columns", {
    need_lme4()
    d <- seed002_data()
    h <- hand_wb(d$x, d$f)
    d$x_b <- h$between
    d$x_w <- h$within
    ref <- lme4::lmer(y ~ x_b + x_w + (1 | f), data = d, REML = TRUE)
    fit <- lmmfit(y ~ wb(x, f) + (1 | f), data = d)
    expect_equal(unname(fixef(fit)), unname(lme4::fixef(ref)), tolerance = 1e-5)
    expect_equal(unname(sqrt(diag(vcov(fit)))), unname(sqrt(diag(as.matrix(vcov(ref))))),
                 tolerance = 1e-5)
    expect_equal(deviance(fit), lme4_objective(ref), tolerance = 1e-6)
    expect_equal(sigma(fit), sigma(ref), tolerance = 1e-5)
})

test_that("several covariates, character and factor groups, unbalanced: as lme4 on hand-made columns", {
    need_lme4()
    set.seed(11)
    n <- 60
    g <- sample(letters[1:7], n, replace = TRUE)          # character, unbalanced
    u <- rnorm(7)[match(g, letters)]
    x1 <- rnorm(n) + 2 * u
    x2 <- runif(n) * 3 - u
    y <- 1 + 0.5 * x1 - 0.3 * x2 + u + rnorm(n, sd = 0.5)
    d <- data.frame(y, x1, x2, g, stringsAsFactors = FALSE)
    h1 <- hand_wb(x1, g); h2 <- hand_wb(x2, g)
    d2 <- transform(d, x1_b = h1$between, x1_w = h1$within, x2_b = h2$between, x2_w = h2$within)
    ref <- lme4::lmer(y ~ x1_b + x1_w + x2_b + x2_w + (1 | g), data = d2)
    fit <- lmmfit(y ~ wb(x1, g) + wb(x2, g) + (1 | g), data = d)
    expect_identical(names(fixef(fit)),
                     c("(Intercept)", "x1_between", "x1_within", "x2_between", "x2_within"))
    expect_equal(unname(fixef(fit)), unname(lme4::fixef(ref)), tolerance = 1e-5)
    expect_equal(unname(sqrt(diag(vcov(fit)))), unname(sqrt(diag(as.matrix(vcov(ref))))),
                 tolerance = 1e-5)
    expect_equal(deviance(fit), lme4_objective(ref), tolerance = 1e-6)
    ## the same with g as a factor (and a different grouping name in the bar)
    d$gf <- factor(d$g)
    fit2 <- lmmfit(y ~ wb(x1, gf) + wb(x2, gf) + (1 | gf), data = d, REML = FALSE)
    ref2 <- lme4::lmer(y ~ x1_b + x1_w + x2_b + x2_w + (1 | g), data = d2, REML = FALSE)
    expect_equal(unname(fixef(fit2)), unname(lme4::fixef(ref2)), tolerance = 1e-5)
    expect_equal(deviance(fit2), lme4_objective(ref2), tolerance = 1e-6)
})

test_that("wb() columns: names for expressions, interactions, integer groups, no data argument", {
    need_lme4()
    set.seed(3)
    d <- data.frame(g = rep(1:6, times = c(4, 5, 6, 4, 5, 6)))   # integer group codes
    d$x <- runif(nrow(d), 1, 5) + d$g
    d$z <- rnorm(nrow(d))
    d$y <- log(d$x) + 0.2 * d$z + rnorm(6)[d$g] + rnorm(nrow(d), sd = 0.3)
    fit <- lmmfit(y ~ wb(log(x), g) * z + (1 | g), data = d)
    ## non-syntactic names keep R's backticks, as for any such variable
    expect_identical(names(fixef(fit)),
                     c("(Intercept)", "`log(x)_between`", "`log(x)_within`", "z",
                       "`log(x)_between`:z", "`log(x)_within`:z"))
    h <- hand_wb(log(d$x), d$g)
    d2 <- transform(d, lb = h$between, lw = h$within)
    ref <- lme4::lmer(y ~ (lb + lw) * z + (1 | g), data = d2)
    expect_equal(unname(fixef(fit)), unname(lme4::fixef(ref)), tolerance = 1e-5)

    ## without data: variables from the formula's environment
    y <- d$y; x <- d$x; grp <- d$g
    fit3 <- lmmfit(y ~ wb(x, grp) + (1 | grp))
    hx <- hand_wb(x, grp)
    xb <- hx$between; xw <- hx$within
    ref3 <- lme4::lmer(y ~ xb + xw + (1 | grp))
    expect_equal(unname(fixef(fit3)), unname(lme4::fixef(ref3)), tolerance = 1e-5)

    ## named arguments, and lmmfit::wb
    fit4 <- lmmfit(y ~ lmmfit::wb(g = grp, x = x) + (1 | grp))
    expect_equal(fixef(fit4), fixef(fit3), tolerance = 1e-10)
})

test_that("wb_expand: the rewritten formula and the added columns", {
    d <- seed002_data()
    e <- lmmfit:::wb_expand(y ~ wb(x, f) + (1 | f), d, environment())
    expect_identical(deparse1(e$formula), "y ~ (x_between + x_within) + (1 | f)")
    h <- hand_wb(d$x, d$f)
    expect_equal(e$data$x_between, h$between)
    expect_equal(e$data$x_within, h$within)
    expect_identical(e$info[[1]]$gname, "f")
    expect_null(lmmfit:::wb_expand(y ~ x + (1 | f), d, environment()))
    ## an existing column of that name is replaced, with a warning
    d$x_within <- 0
    expect_warning(e2 <- lmmfit:::wb_expand(y ~ wb(x, f) + (1 | f), d, environment()),
                   "x_within of data is replaced")
    expect_equal(e2$data$x_within, h$within)
})

test_that("the C decomposition: means over non-missing x, NA for an empty group", {
    x <- c(1, 2, NA, 4, NA, 10, 20)
    g <- factor(c("a", "a", "a", "b", "c", "d", "d"))
    r <- lmmfit:::wb_decompose(x, g)
    expect_equal(r$means, c(1.5, 4, NA, 15))
    expect_equal(r$between, c(1.5, 1.5, 1.5, 4, NA, 15, 15))
    expect_equal(r$within, c(-0.5, 0.5, NA, 0, NA, -5, 5))
    ## large n against tapply
    set.seed(5)
    x <- rnorm(1e5); g <- factor(sample(500, 1e5, replace = TRUE))
    r <- lmmfit:::wb_decompose(x, g)
    expect_equal(r$means, unname(c(tapply(x, g, mean))), tolerance = 1e-12)
    expect_error(.Call(lmmfit:::C_lmm_wb, c(1, 2), c(1L, NA), 1L), "missing value \\(row 2\\)")
    expect_error(.Call(lmmfit:::C_lmm_wb, c(1, 2), c(1L, 3L), 2L), "outside 1..2")
    expect_error(.Call(lmmfit:::C_lmm_wb, c("a", "b"), c(1L, 1L), 1L), "numeric")
})

test_that("missing x: group means over the other rows, the row itself dropped by na.action", {
    need_lme4()
    d <- seed002_data()
    d$x[2] <- NA
    fit <- lmmfit(y ~ wb(x, f) + (1 | f), data = d)
    expect_equal(nobs(fit), 11L)
    expect_equal(fit$wb[[1]]$means[["1"]], 3)          # mean of 2 and 4
    h <- hand_wb(d$x, d$f)
    d2 <- transform(d, x_b = h$between, x_w = h$within)
    ref <- lme4::lmer(y ~ x_b + x_w + (1 | f), data = d2)
    expect_equal(unname(fixef(fit)), unname(lme4::fixef(ref)), tolerance = 1e-5)
})

test_that("subset: group means come from all rows of data (the documented rule)", {
    need_lme4()
    set.seed(8)
    d <- data.frame(g = factor(rep(1:8, each = 6)), x = rnorm(48), keep = rep(c(TRUE, TRUE, FALSE), 16))
    d$x <- d$x + as.integer(d$g) / 2
    d$y <- 0.7 * d$x + rnorm(8)[d$g] + rnorm(48, sd = 0.4)
    fit <- lmmfit(y ~ wb(x, g) + (1 | g), data = d, subset = keep)
    h <- hand_wb(d$x, d$g)                             # over all 48 rows
    d2 <- transform(d, x_b = h$between, x_w = h$within)
    ref <- lme4::lmer(y ~ x_b + x_w + (1 | g), data = d2, subset = keep)
    expect_equal(nobs(fit), 32L)
    expect_equal(unname(fixef(fit)), unname(lme4::fixef(ref)), tolerance = 1e-5)
})

test_that("predict(newdata) uses the training means; a new group uses its own mean", {
    d <- seed002_data()
    fit <- lmmfit(y ~ wb(x, f) + (1 | f), data = d)
    expect_equal(predict(fit, newdata = d), fitted(fit), tolerance = 1e-10)
    nd <- data.frame(x = c(100, 5, 7, 9), f = factor(c("1", "9", "9", "9")))
    a <- lmmfit:::wb_newdata(fit, nd)
    expect_equal(a$x_between, c(3, 7, 7, 7))            # training mean of group 1; own mean of new group 9
    expect_equal(a$x_within, c(97, -2, 0, 2))
    b <- fixef(fit)
    p <- predict(fit, newdata = nd, re.form = NA)
    expect_equal(unname(p), unname(b[1] + b[2] * a$x_between + b[3] * a$x_within), tolerance = 1e-12)
    ## a model without wb() leaves newdata alone
    fit0 <- lmmfit(y ~ x + (1 | f), data = d)
    expect_identical(lmmfit:::wb_newdata(fit0, nd), nd)
})

test_that("bad input gives clear errors", {
    d <- seed002_data()
    d$fna <- d$f; d$fna[4] <- NA
    expect_error(lmmfit(y ~ wb(x, fna) + (1 | f), data = d),
                 "grouping variable 'fna' has 1 missing value")
    d$xc <- as.character(d$x)
    expect_error(lmmfit(y ~ wb(xc, f) + (1 | f), data = d), "'xc' must be a numeric vector")
    expect_error(lmmfit(y ~ wb(f, f) + (1 | f), data = d), "'f' must be a numeric vector, not a factor")
    expect_error(wb(d$x, d$f), "only meaningful inside an lmmfit\\(\\) formula")
    expect_error(lmmfit(y ~ x + (wb(x, f) | f), data = d), "fixed part")
    expect_error(lmmfit(y ~ wb(x) + (1 | f), data = d), "two arguments")
    expect_error(lmmfit(y ~ wb(x, f, f) + (1 | f), data = d), "two arguments")
    expect_error(lmmfit(y ~ wb(nosuchvar, f) + (1 | f), data = d), "cannot evaluate the covariate 'nosuchvar'")
    d$h <- factor(rep(1:2, 6))
    expect_error(lmmfit(y ~ wb(x, f) + wb(x, h) + (1 | f), data = d), "both create the columns x_between")
})
