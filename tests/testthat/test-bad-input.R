## Bad input: each case stops with a message that says what is wrong.

sleep_data <- function() {
    d <- data.frame(Reaction = c(249.56, 258.7047, 250.8006, 321.4398, 356.8519, 414.6901,
                                 382.2038, 290.1486, 430.5853, 466.3535, 222.7339, 205.2658,
                                 202.9778, 204.707, 207.7161, 215.9618, 213.6303, 217.7272,
                                 224.2957, 237.3142, 199.0539, 194.3322, 234.32, 232.8416,
                                 229.3074, 220.4579, 235.4208, 255.7511, 261.0125, 247.5153),
                    Days = rep(0:9, 3), Subject = factor(rep(c("308", "309", "310"), each = 10)))
    d
}

test_that("a formula without random-effects terms is refused", {
    d <- sleep_data()
    expect_error(lmmfit(Reaction ~ Days, data = d), "no random-effects terms")
    ## a bar nested inside another call is not a random-effects term (as in lme4)
    expect_error(lmmfit(Reaction ~ Days + I(Days | Subject), data = d), "no random-effects terms")
})

test_that("a one-sided formula or a bad REML flag is refused", {
    d <- sleep_data()
    expect_error(lmmfit(~ Days + (1 | Subject), data = d), "two-sided formula")
    expect_error(lmmfit(Reaction ~ Days + (1 | Subject), data = d, REML = NA), "'REML' must be TRUE or FALSE")
    expect_error(lmmfit(Reaction ~ Days + (1 | Subject), data = d, REML = c(TRUE, FALSE)),
                 "'REML' must be TRUE or FALSE")
})

test_that("a grouping factor with one level is refused", {
    d <- sleep_data()
    d$one <- factor("a")
    expect_error(lmmfit(Reaction ~ Days + (1 | one), data = d), "'one' has only one level")
    ## also when subset leaves one level
    expect_error(lmmfit(Reaction ~ Days + (1 | Subject), data = d, subset = Subject == "308"),
                 "'Subject' has only one level")
})

test_that("a grouping factor with as many levels as observations is refused", {
    d <- sleep_data()
    d$id <- factor(seq_len(nrow(d)))
    expect_error(lmmfit(Reaction ~ Days + (1 | id), data = d),
                 "levels of each grouping factor must be < number of observations.*'id' has 30 levels for 30 observations")
    ## as many random effects as observations: two per subject, two observations each
    d2 <- d[d$Days < 2, ]
    expect_error(lmmfit(Reaction ~ Days + (Days | Subject), data = d2),
                 "number of observations \\(=6\\) <= number of random effects \\(=6\\)")
})

test_that("non-finite responses are refused after na.action", {
    d <- sleep_data()
    d$Reaction[5] <- Inf
    expect_error(lmmfit(Reaction ~ Days + (1 | Subject), data = d), "response has NA, NaN or infinite values")
    d$Reaction[5] <- -Inf
    expect_error(lmmfit(Reaction ~ Days + (1 | Subject), data = d), "response has NA, NaN or infinite values")
    d$Reaction[5] <- NaN
    expect_error(lmmfit(Reaction ~ Days + (1 | Subject), data = d, na.action = na.pass),
                 "response has NA, NaN or infinite values")
    d$Reaction[5] <- NA
    expect_error(lmmfit(Reaction ~ Days + (1 | Subject), data = d, na.action = na.pass),
                 "response has NA, NaN or infinite values")
    expect_error(lmmfit(Reaction ~ Days + (1 | Subject), data = d, na.action = na.fail),
                 "missing values")
    ## na.omit (the default) drops the row and fits the rest
    fit <- lmmfit(Reaction ~ Days + (1 | Subject), data = d, na.action = na.omit)
    expect_identical(nobs(fit), 29L)
    ref <- lmmfit(Reaction ~ Days + (1 | Subject), data = d[-5, ])
    expect_identical(fit$deviance_value, ref$deviance_value)
})

test_that("non-finite covariates or grouping values are refused", {
    d <- sleep_data()
    d$Days[3] <- Inf
    expect_error(lmmfit(Reaction ~ Days + (1 | Subject), data = d), "fixed-effects model matrix has NA, NaN or infinite")
    expect_error(lmmfit(Reaction ~ 1 + (Days | Subject), data = d), "random-effects model matrix .* non-finite")
    d <- sleep_data()
    d$Subject[4] <- NA
    expect_error(lmmfit(Reaction ~ Days + (1 | Subject), data = d, na.action = na.pass),
                 "grouping factor 'Subject' contains missing values")
})

test_that("zero rows are refused", {
    d <- sleep_data()
    expect_error(lmmfit(Reaction ~ Days + (1 | Subject), data = d, subset = Days > 100),
                 "no observations left")
    expect_error(lmmfit(Reaction ~ Days + (1 | Subject), data = d[0, ]), "no observations left")
    d$Reaction <- NA_real_
    expect_error(lmmfit(Reaction ~ Days + (1 | Subject), data = d), "no observations left")
})

test_that("bad weights are refused", {
    d <- sleep_data()
    expect_error(lmmfit(Reaction ~ Days + (1 | Subject), data = d, weights = rep(-1, 30)),
                 "'weights' must be finite and non-negative")
    expect_error(lmmfit(Reaction ~ Days + (1 | Subject), data = d, weights = c(0, rep(1, 29))),
                 "zero weights")
})

test_that("a non-numeric response or an unknown variable is refused", {
    d <- sleep_data()
    d$txt <- "a"
    expect_error(lmmfit(txt ~ Days + (1 | Subject), data = d), "response must be a numeric vector")
    expect_error(lmmfit(Reaction ~ Days + (1 | nosuchfactor), data = d), "nosuchfactor")
})

test_that("rank-deficient fixed effects: a column is dropped, as lme4 does", {
    need_lme4()
    data("sleepstudy", package = "lme4", envir = environment())
    d <- sleepstudy
    d$Days2 <- d$Days            # a duplicated column
    expect_message(fit <- lmmfit(Reaction ~ Days + Days2 + (Days | Subject), data = d),
                   "rank deficient so dropping 1 column / coefficient.*Days2")
    m <- suppressMessages(lme4::lmer(Reaction ~ Days + Days2 + (Days | Subject), data = d,
                                     control = lme4::lmerControl(optimizer = "bobyqa", calc.derivs = FALSE,
                                                                 optCtrl = list(rhoend = 1e-12, maxfun = 1e5))))
    expect_identical(names(fixef(fit)), names(lme4::fixef(m)))
    expect_identical(names(fixef(fit)), c("(Intercept)", "Days"))
    expect_lte(fit$deviance_value, lme4::REMLcrit(m) + 1e-6)
    expect_equal(fixef(fit), lme4::fixef(m), tolerance = 1e-5)
    expect_equal(vcov(fit), as.matrix(vcov(m)), tolerance = 1e-4)
    expect_equal(sigma(fit), sigma(m), tolerance = 1e-4)
    ## and it is the fit without the duplicate
    ref <- lmmfit(Reaction ~ Days + (Days | Subject), data = d)
    expect_equal(fit$deviance_value, ref$deviance_value, tolerance = 1e-12)
    expect_equal(fixef(fit), fixef(ref), tolerance = 1e-10)
    ## the summary says so
    out <- capture.output(summary(fit))
    expect_true(any(grepl("rank deficient so dropping 1 column / coefficient", out)))
    expect_true(any(grepl("Days2", out)))
    ## a factor whose last level is aliased with another column
    d$Dcat <- factor(d$Days > 4)
    d$Dnum <- as.numeric(d$Days > 4)
    expect_message(fit2 <- lmmfit(Reaction ~ Dnum + Dcat + (1 | Subject), data = d),
                   "dropping 1 column / coefficient.*DcatTRUE")
    m2 <- suppressMessages(lme4::lmer(Reaction ~ Dnum + Dcat + (1 | Subject), data = d))
    expect_identical(names(fixef(fit2)), names(lme4::fixef(m2)))
    expect_equal(fixef(fit2), lme4::fixef(m2), tolerance = 1e-5)
})
