## Grouping factors (R/reterms.R): a:b and a/b are built from the level
## combinations that occur, as lme4 builds them.

nested_data <- function(seed = 1, n = 3000) {
    set.seed(seed)
    dis <- sample(20, 200, TRUE); sch <- sample(200, 600, TRUE); cls <- sample(600, n, TRUE)
    d <- data.frame(class = cls, school = sch[cls], district = dis[sch[cls]])
    d$x <- rnorm(n)
    d$y <- d$x + rnorm(200)[d$school] + 0.7 * rnorm(600)[d$class] + 0.5 * rnorm(20)[d$district] + rnorm(n)
    d
}

test_that("a:b has one level per combination that occurs, in R's order and with its labels", {
    a <- factor(c("x", "y", "x", "z", "y"), levels = c("z", "y", "x"))
    b <- factor(c(2, 1, 2, 1, 3))
    g <- lmmfit:::observed_interaction(a, b)
    ref <- droplevels(a:b)
    expect_identical(levels(g), levels(ref))
    expect_identical(as.integer(g), as.integer(ref))
    ## level products beyond R's vector length: R's `:` cannot build them
    n <- 1000L
    big <- factor(sample(60000L, n, TRUE), levels = seq_len(60000L))
    big2 <- factor(sample(60000L, n, TRUE), levels = seq_len(60000L))
    d <- data.frame(a = big, b = big2)
    g <- lmmfit:::eval_grouping(quote(a:b), d, globalenv())
    expect_identical(nlevels(g), length(unique(paste(d$a, d$b))))
    expect_identical(as.character(g), paste(d$a, d$b, sep = ":"))
})

test_that("(1 | a/b/c) fits as lme4 does, with lme4's level names", {
    need_lme4()
    d <- nested_data()
    f <- lmmfit(y ~ x + (1 | district/school/class), d)
    m <- lme4::lmer(y ~ x + (1 | district/school/class), d)
    expect_lt(abs(f$deviance_value - lme4::REMLcrit(m)), 1e-6)
    expect_setequal(names(ranef(f)), names(lme4::ranef(m)))
    for (nm in names(lme4::ranef(m)))
        expect_identical(rownames(ranef(f)[[nm]]), rownames(lme4::ranef(m)[[nm]]))
})

test_that("implicit and explicit nesting give the same fit", {
    d <- nested_data(2)
    d$sid <- factor(d$school)
    d$cid <- factor(d$class)          # class ids are unique across schools
    f1 <- lmmfit(y ~ x + (1 | sid) + (1 | cid), d)
    f2 <- lmmfit(y ~ x + (1 | sid) + (1 | sid:cid), d)
    f3 <- lmmfit(y ~ x + (1 | sid/cid), d)
    expect_lt(abs(f2$deviance_value - f1$deviance_value), 1e-8)
    expect_lt(abs(f3$deviance_value - f1$deviance_value), 1e-8)
    expect_equal(unname(f2$theta), unname(f1$theta), tolerance = 1e-6)
})
