## predict() against lme4, fitted in the same test.

lmer_exact <- function(...) {
    suppressMessages(lme4::lmer(..., control = lme4::lmerControl(
        optimizer = "bobyqa", calc.derivs = FALSE, optCtrl = list(rhoend = 1e-12, maxfun = 1e5))))
}

sleep_data <- function() {
    data(sleepstudy, package = "lme4", envir = environment())
    set.seed(3)
    d <- sleepstudy
    d$f <- factor(sample(c("a", "b", "c"), nrow(d), replace = TRUE))
    d$expo <- runif(nrow(d), 1, 3)
    d
}

test_that("predict without newdata: all, none and some random effects", {
    need_lme4()
    d <- sleep_data()
    f <- Reaction ~ Days + f + (Days || Subject)
    fit <- lmmfit(f, d)
    m <- lmer_exact(f, d)
    expect_equal(predict(fit), predict(m), tolerance = 1e-7)
    expect_equal(predict(fit), fitted(fit))
    expect_equal(predict(fit, re.form = NA), predict(m, re.form = NA), tolerance = 1e-7)
    expect_equal(predict(fit, re.form = ~0), predict(m, re.form = NA), tolerance = 1e-7)
    expect_equal(predict(fit, re.form = ~(1 | Subject)), predict(m, re.form = ~(1 | Subject)),
                 tolerance = 1e-7)
    expect_equal(predict(fit, re.form = ~(0 + Days | Subject)),
                 predict(m, re.form = ~(0 + Days | Subject)), tolerance = 1e-7)
    expect_error(predict(fit, re.form = ~(1 | f)), "not a random-effects term")
})

test_that("predict with newdata: levels, contrasts, new groups, missing values", {
    need_lme4()
    d <- sleep_data()
    f <- Reaction ~ Days + f + (Days | Subject)
    fit <- lmmfit(f, d, contrasts = list(f = "contr.sum"))
    m <- lmer_exact(f, d, contrasts = list(f = "contr.sum"))
    ## only some factor levels present in newdata; rows in another order
    nd <- d[c(5, 17, 40, 3), ]
    nd <- nd[nd$f != "b", ]
    expect_equal(predict(fit, nd), predict(m, nd), tolerance = 1e-7)
    expect_identical(names(predict(fit, nd)), rownames(nd))
    expect_equal(predict(fit, nd, re.form = NA), predict(m, nd, re.form = NA), tolerance = 1e-7)
    ## a character grouping variable in newdata
    nd2 <- nd
    nd2$Subject <- as.character(nd2$Subject)
    expect_equal(predict(fit, nd2), predict(m, nd), tolerance = 1e-7)

    ## a new subject: an error unless allowed, then zero random effects
    nd3 <- data.frame(Days = c(2, 7), f = factor(c("a", "c")), Subject = c("308", "999"))
    expect_error(predict(fit, nd3), "new level.*999.*allow.new.levels")
    p <- predict(fit, nd3, allow.new.levels = TRUE)
    expect_equal(p, predict(m, nd3, allow.new.levels = TRUE), tolerance = 1e-7)
    expect_equal(p[[2]], predict(fit, nd3[2, ], re.form = NA)[[1]])

    ## missing variables: a clear error naming them
    expect_error(predict(fit, nd[, c("Days", "Subject")]), "lacks variable needed for prediction: f")
    expect_error(predict(fit, nd[, c("f", "Days")]), "lacks variable.*Subject")
    ## ... but not needed without random effects
    expect_equal(predict(fit, nd[, c("Days", "f")], re.form = NA), predict(m, nd, re.form = NA),
                 tolerance = 1e-7)
    ## a missing covariate gives NA for that row only
    nd4 <- nd
    nd4$Days[2] <- NA
    p4 <- predict(fit, nd4)
    expect_true(is.na(p4[[2]]))
    expect_equal(p4[-2], predict(m, nd)[-2], tolerance = 1e-7)
    ## a level of a fixed factor not seen in fitting
    nd5 <- nd3[1, ]
    nd5$f <- factor("zz")
    expect_error(predict(fit, nd5), "new level")
})

test_that("predict with newdata keeps data-dependent transformations and offsets", {
    need_lme4()
    d <- sleep_data()
    nd <- d[c(1, 22, 95, 180), ]
    nd$Days <- nd$Days + 0.5
    f <- Reaction ~ poly(Days, 2) + scale(expo) + (1 | Subject)
    fit <- lmmfit(f, d)
    m <- lmer_exact(f, d)
    expect_equal(predict(fit, nd), predict(m, nd), tolerance = 1e-7)

    ## offset() in the formula
    f <- Reaction ~ Days + offset(10 * expo) + (Days | Subject)
    fit <- lmmfit(f, d)
    m <- lmer_exact(f, d)
    expect_equal(predict(fit), predict(m), tolerance = 1e-7)
    expect_equal(predict(fit, nd), predict(m, nd), tolerance = 1e-7)
    expect_equal(predict(fit, nd, re.form = NA), predict(m, nd, re.form = NA), tolerance = 1e-7)
    ## the offset argument: the same model, evaluated in newdata too
    fit2 <- lmmfit(Reaction ~ Days + (Days | Subject), d, offset = 10 * expo)
    expect_equal(predict(fit2), predict(m), tolerance = 1e-7)
    expect_equal(predict(fit2, nd), predict(m, nd), tolerance = 1e-7)
})

test_that("predict on a crossed model and under na.exclude", {
    need_lme4()
    data(Penicillin, package = "lme4")
    fit <- lmmfit(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin)
    m <- lmer_exact(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin)
    nd <- Penicillin[c(3, 50, 77), ]
    expect_equal(predict(fit, nd), predict(m, nd), tolerance = 1e-7)
    expect_equal(predict(fit, nd, re.form = ~(1 | sample)), predict(m, nd, re.form = ~(1 | sample)),
                 tolerance = 1e-7)

    d <- sleep_data()
    d$Reaction[c(4, 50)] <- NA
    fit <- lmmfit(Reaction ~ Days + (1 | Subject), d, na.action = na.exclude)
    m <- lmer_exact(Reaction ~ Days + (1 | Subject), d, na.action = na.exclude)
    p <- predict(fit)
    expect_length(p, nrow(d))
    expect_true(all(is.na(p[c(4, 50)])))
    expect_equal(p, predict(m), tolerance = 1e-7)
    expect_equal(predict(fit, re.form = NA), predict(m, re.form = NA), tolerance = 1e-7)
})
