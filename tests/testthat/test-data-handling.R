## weights, offset, subset, contrasts, na.action, unused levels, scales and
## bad input: against lme4, fitted in the same test.

exact_ctrl <- function() lme4::lmerControl(optimizer = "bobyqa", calc.derivs = FALSE,
                                           optCtrl = list(rhoend = 1e-12, maxfun = 1e5))

sleep_data <- function() {
    data(sleepstudy, package = "lme4", envir = environment())
    set.seed(21)
    d <- sleepstudy
    d$w <- runif(nrow(d), 0.3, 3)
    d$expo <- runif(nrow(d), 1, 2)
    d$f <- factor(sample(c("lo", "mid", "hi"), nrow(d), replace = TRUE))
    d
}

expect_same_fit <- function(fit, m, what) {
    expect_equal(fixef(fit), lme4::fixef(m), tolerance = 1e-5, label = paste(what, "fixef"))
    expect_equal(unname(fit$theta), unname(lme4::getME(m, "theta")), tolerance = 1e-4,
                 label = paste(what, "theta"))
    expect_equal(sigma(fit), sigma(m), tolerance = 1e-5, label = paste(what, "sigma"))
    expect_equal(as.numeric(logLik(fit)), as.numeric(logLik(m)), tolerance = 1e-8,
                 label = paste(what, "logLik"))
}

test_that("prior weights: REML and ML criteria, logLik and deviance as lme4", {
    need_lme4()
    d <- sleep_data()
    for (reml in c(TRUE, FALSE)) {
        fit <- lmmfit(Reaction ~ Days + (Days | Subject), d, weights = w, REML = reml)
        m <- lme4::lmer(Reaction ~ Days + (Days | Subject), d, weights = w, REML = reml,
                        control = exact_ctrl())
        expect_same_fit(fit, m, paste("weights, REML =", reml))
        expect_lte(abs(fit$deviance_value - if (reml) lme4::REMLcrit(m) else deviance(m)), 1e-6)
        ## the ML deviance (at the REML estimates for an REML fit)
        expect_equal(deviance(fit, REML = FALSE), deviance(m, REML = FALSE), tolerance = 1e-9)
        expect_equal(as.numeric(logLik(fit, REML = FALSE)), as.numeric(logLik(m, REML = FALSE)),
                     tolerance = 1e-9)
    }
})

test_that("offsets as argument and in the formula", {
    need_lme4()
    d <- sleep_data()
    m <- lme4::lmer(Reaction ~ Days + offset(20 * expo) + (1 | Subject), d, control = exact_ctrl())
    fit1 <- lmmfit(Reaction ~ Days + offset(20 * expo) + (1 | Subject), d)
    fit2 <- lmmfit(Reaction ~ Days + (1 | Subject), d, offset = 20 * expo)
    expect_same_fit(fit1, m, "offset()")
    expect_same_fit(fit2, m, "offset =")
    m2 <- lme4::lmer(Reaction ~ Days + (1 | Subject), d, offset = 20 * expo, control = exact_ctrl())
    expect_equal(fitted(fit2), fitted(m2), tolerance = 1e-7)
})

test_that("subset drops unused levels; contrasts are honoured", {
    need_lme4()
    d <- sleep_data()
    fit <- lmmfit(Reaction ~ Days + f + (1 | Subject), d, subset = Subject != "308" & Days > 1,
                  contrasts = list(f = "contr.sum"))
    m <- lme4::lmer(Reaction ~ Days + f + (1 | Subject), d, subset = Subject != "308" & Days > 1,
                    contrasts = list(f = "contr.sum"), control = exact_ctrl())
    expect_same_fit(fit, m, "subset + contrasts")
    expect_identical(names(fixef(fit)), names(lme4::fixef(m)))
    expect_equal(nobs(fit), nobs(m))
    expect_equal(nobs(fit), 17L * 8L)
    expect_identical(ngrps(fit)[["Subject"]], 17L)
    expect_false("308" %in% rownames(ranef(fit)$Subject))
    expect_equal(ranef(fit)$Subject, lme4::ranef(m, condVar = TRUE)$Subject, tolerance = 1e-5)
})

test_that("na.omit, na.exclude (padded residuals and fitted) and na.fail", {
    need_lme4()
    d <- sleep_data()
    d$Reaction[c(3, 90)] <- NA
    d$Days[7] <- NA
    fit <- lmmfit(Reaction ~ Days + (Days | Subject), d, na.action = na.omit)
    m <- lme4::lmer(Reaction ~ Days + (Days | Subject), d, na.action = na.omit, control = exact_ctrl())
    expect_same_fit(fit, m, "na.omit")
    expect_length(fitted(fit), 177L)
    expect_equal(residuals(fit), residuals(m), tolerance = 1e-6)

    fit <- lmmfit(Reaction ~ Days + (Days | Subject), d, na.action = na.exclude)
    m <- lme4::lmer(Reaction ~ Days + (Days | Subject), d, na.action = na.exclude, control = exact_ctrl())
    expect_length(fitted(fit), 180L)
    expect_length(residuals(fit), 180L)
    expect_true(all(is.na(residuals(fit)[c(3, 7, 90)])))
    expect_equal(fitted(fit), fitted(m), tolerance = 1e-7)
    expect_equal(residuals(fit), residuals(m), tolerance = 1e-6)
    expect_equal(residuals(fit, type = "pearson", scaled = TRUE),
                 residuals(m, type = "pearson", scaled = TRUE), tolerance = 1e-6)
    expect_error(lmmfit(Reaction ~ Days + (Days | Subject), d, na.action = na.fail), "missing values")
})

test_that("covariates on very different scales fit to lme4's answer, with a message", {
    need_lme4()
    d <- sleep_data()
    d$big <- d$Days * 1e6
    d$z <- d$expo - 1.5
    expect_message(fit <- lmmfit(Reaction ~ big + z + (1 | Subject), d), "very different scales")
    m <- suppressWarnings(lme4::lmer(Reaction ~ big + z + (1 | Subject), d, control = exact_ctrl()))
    expect_same_fit(fit, m, "scaled by 1e6")
    expect_lte(abs(fit$deviance_value - lme4::REMLcrit(m)), 1e-6)
    ## no message on comparable scales
    expect_no_message <- function(expr) expect_silent(expr)
    expect_no_message(lmmfit(Reaction ~ Days + z + (1 | Subject), d))
})

test_that("bad input gives clear errors", {
    d <- sleep_data()
    d1 <- d; d1$Reaction[5] <- Inf
    expect_error(lmmfit(Reaction ~ Days + (1 | Subject), d1), "infinite")
    d2 <- d; d2$Days[9] <- -Inf
    expect_error(lmmfit(Reaction ~ Days + (1 | Subject), d2), "infinite")
    d3 <- d; d3$grp <- factor(NA_character_, levels = c("a", "b"))
    expect_error(lmmfit(Reaction ~ Days + (1 | grp), d3), "no observations left")
    expect_error(lmmfit(Reaction ~ Days + (1 | grp), d3, na.action = na.pass), "missing values")
    expect_error(lmmfit(Reaction ~ Days + (1 | nowhere_to_be_found), d), "nowhere_to_be_found")
    expect_error(lmmfit(Reaction ~ Days + (nothere | Subject), d), "nothere")
    d4 <- d; d4$Reaction <- as.character(d4$Reaction)
    expect_error(lmmfit(Reaction ~ Days + (1 | Subject), d4), "response must be a numeric")
})
