## Reading nlme's structures, and bad input: clear errors, nothing ignored.

test_that("unsupported structures and arguments are refused by name", {
    Ovary <- nlme::Ovary
    fo <- follicles ~ Time + (1 | Mare)
    expect_error(lmmfit(fo, data = Ovary, correlation = nlme::corLin(form = ~ Time | Mare)),
                 "corLin\\(\\) is not supported")
    expect_error(lmmfit(fo, data = Ovary, correlation = nlme::corAR1(0.3, form = ~ 1 | Mare, fixed = TRUE)),
                 "fixed = TRUE")
    expect_error(lmmfit(fo, data = Ovary, correlation = nlme::corCAR1(0.5, form = ~ Time | Mare)),
                 "value = ...")
    expect_error(lmmfit(fo, data = Ovary, weights = nlme::varPower()), "fitted values")
    expect_error(lmmfit(fo, data = Ovary, weights = nlme::varExp(form = ~ fitted(.))), "fitted values")
    expect_error(lmmfit(fo, data = Ovary, correlation = nlme::corExp(form = ~ Time | Mare, metric = "man")),
                 "metric")
    expect_error(lmmfit(fo, data = Ovary, correlation = "ar1"), "must be a correlation structure")
})

test_that("bad data for a structure get clear errors", {
    Ovary <- nlme::Ovary
    fo <- follicles ~ Time + (1 | Mare)
    dup <- Ovary
    dup$Time[2] <- dup$Time[1]
    expect_error(lmmfit(fo, data = dup, correlation = nlme::corCAR1(form = ~ Time | Mare)),
                 "times that repeat within a group")
    expect_error(lmmfit(fo, data = Ovary, correlation = nlme::corAR1(form = ~ Time | Mare)),
                 "must be integer valued")
    d <- nlme::Orthodont
    d$grp <- rep(c("a", "b"), length.out = nrow(d))
    d$grp[1] <- "lonely"
    expect_error(lmmfit(distance ~ age + (1 | Subject), data = d, weights = nlme::varIdent(form = ~ 1 | grp)),
                 "stratum 'lonely' has one observation")
    expect_error(lmmfit(distance ~ age + (1 | Subject), data = d,
                        correlation = nlme::corCompSymm(form = ~ 1 | Sex)),
                 "must be nested in the random-effects grouping factor with the most levels")
    d$zero <- d$age - 8
    expect_error(lmmfit(distance ~ age + (1 | Subject), data = d, weights = nlme::varPower(form = ~ zero)),
                 "zero for some observations")
    d$x <- 1; d$y <- 1
    expect_error(lmmfit(distance ~ age + (1 | Subject), data = d,
                        correlation = nlme::corExp(form = ~ x + y | Subject)), "zero distance")
})

test_that("nlme's a/b grouping is the interaction a:b", {
    parts <- resid_form_parts(~ time | a/b, "test")
    expect_identical(parts$group, quote(a:b))
    expect_length(parts$covs, 1L)
    ## numeric codes: the interaction, not R's sequence or division
    frame <- data.frame(a = rep(1:2, each = 4), b = rep(1:2, 4), c = rep(1:2, each = 2))
    g <- resid_factor(resid_form_parts(~ 1 | a/b/c, "test")$group, frame, environment(), "test")
    expect_equal(nlevels(g), 8L)
    expect_equal(as.integer(g), as.integer(factor(paste(frame$a, frame$b, frame$c), unique(paste(frame$a, frame$b, frame$c)))))
})

test_that("a correlation without a grouping takes the random effects' innermost one, as lme does", {
    Ovary <- nlme::Ovary
    fo <- follicles ~ sin(2 * pi * Time) + (1 | Mare)
    a <- lmmfit(fo, data = Ovary, correlation = nlme::corCompSymm())
    b <- lmmfit(fo, data = Ovary, correlation = nlme::corCompSymm(form = ~ 1 | Mare))
    expect_equal(deviance(a), deviance(b), tolerance = 1e-10)
    expect_true(any(grepl("Formula: ~1 \\| Mare", capture.output(summary(a)))))
    ## nested terms: the finest grouping
    d <- nlme::Orthodont
    a <- lmmfit(distance ~ age + (1 | Sex/Subject), data = d, correlation = nlme::corCompSymm())
    b <- lmmfit(distance ~ age + (1 | Sex/Subject), data = d, correlation = nlme::corCompSymm(form = ~ 1 | Subject))
    expect_equal(deviance(a), deviance(b), tolerance = 1e-10)
    ## crossed terms: no innermost grouping
    d$h <- rep(1:2, length.out = nrow(d))
    expect_error(lmmfit(distance ~ age + (1 | Subject) + (1 | h), data = d, correlation = nlme::corCompSymm()),
                 "no grouping and the random-effects groupings are crossed")
})
