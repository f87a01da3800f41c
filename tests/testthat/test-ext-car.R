## car's Anova, linearHypothesis and deltaMethod on an lmmfit fit against the
## same on the lmer fit of the same model.

expect_same_anova <- function(ours, ref, info = NULL) {
    expect_s3_class(ours, "anova")
    expect_equal(attr(ours, "heading"), attr(ref, "heading"), info = info)
    expect_equal(rownames(ours), rownames(ref), info = info)
    expect_same_table(ours, ref, info = info, df_cols = c("Df.res", "Pr(>F)", "Res.Df"),
                      df_tolerance = 1e-5)
}

test_that("Anova (types II and III, Wald chi-square and Kenward-Roger F) matches car on lmer", {
    need_lme4(); skip_if_not_installed("car"); skip_if_not_installed("pbkrtest")
    models <- list(list(yield ~ Variety * nitro_f + (1 | Block / Variety), "Oats"),
                   list(yield ~ Variety * nitro + (1 | Block), "Oats"),
                   list(Reaction ~ Days + (Days | Subject), "sleepstudy"),
                   list(y ~ x * trt + (1 | g), "singular"))
    for (m in models) {
        p <- ext_pair(m[[1]], m[[2]])
        for (type in c("II", "III")) for (ts in c("Chisq", "F")) {
            info <- paste(deparse1(m[[1]]), type, ts)
            expect_same_anova(car::Anova(p$ours, type = type, test.statistic = ts),
                              car::Anova(p$ref, type = type, test.statistic = ts), info = info)
        }
    }
    ## type given as a number; a user's covariance for the Wald tests
    p <- ext_pair(yield ~ Variety * nitro + (1 | Block), "Oats")
    expect_same_anova(car::Anova(p$ours, type = 3), car::Anova(p$ref, type = 3))
    V <- 1.5 * vcov(p$ours)
    expect_same_anova(car::Anova(p$ours, vcov. = V),
                      suppressMessages(car::Anova(p$ref, vcov. = 1.5 * as.matrix(vcov(p$ref)))))
    ## F tests need REML, as car says of lmer fits
    pml <- ext_pair(yield ~ Variety * nitro + (1 | Block), "Oats", REML = FALSE)
    expect_same_anova(car::Anova(pml$ours), car::Anova(pml$ref))
    expect_error(car::Anova(pml$ours, test.statistic = "F"), "REML")
})

test_that("linearHypothesis matches car on lmer (Wald chi-square and Kenward-Roger F)", {
    need_lme4(); skip_if_not_installed("car"); skip_if_not_installed("pbkrtest")
    p <- ext_pair(Reaction ~ Days + (Days | Subject), "sleepstudy")
    for (h in list("Days = 10", c("Days = 10", "(Intercept) = 250"), "2 * Days - (Intercept) = 0"))
        expect_same_anova(car::linearHypothesis(p$ours, h), car::linearHypothesis(p$ref, h),
                          info = paste(h, collapse = ", "))
    ## the F test (car ignores a nonzero rhs for lmer fits, so only rhs = 0 is compared)
    expect_same_anova(car::linearHypothesis(p$ours, "Days = 0", test = "F"),
                      car::linearHypothesis(p$ref, "Days = 0", test = "F"))
    p <- ext_pair(yield ~ Variety * nitro + (1 | Block), "Oats")
    L <- matrix(0, 2, length(fixef(p$ours)))
    L[1, 2] <- 1; L[2, 3] <- 1
    expect_same_anova(car::linearHypothesis(p$ours, L), car::linearHypothesis(p$ref, L))
    expect_same_anova(car::linearHypothesis(p$ours, L, test = "F"), car::linearHypothesis(p$ref, L, test = "F"))
    h <- c("VarietyMarvellous = VarietyVictory", "VarietyMarvellous:nitro = 0")
    expect_same_anova(car::linearHypothesis(p$ours, h), car::linearHypothesis(p$ref, h))
    expect_same_anova(car::linearHypothesis(p$ours, h, test = "F"), car::linearHypothesis(p$ref, h, test = "F"))

    ## a nonzero rhs in the F test is honoured: the same as lmm_contrast's
    lh <- car::linearHypothesis(p$ours, c("nitro = 0.5", "VarietyVictory = -5"), test = "F")
    L <- car::makeHypothesis(names(fixef(p$ours)), c("nitro = 0.5", "VarietyVictory = -5"))
    ref <- lmm_contrast(p$ours, L[, -ncol(L)], ddf = "Kenward-Roger", rhs = L[, ncol(L)])
    expect_equal(lh$F[2], ref$`F value`, tolerance = 1e-10)
    expect_equal(lh$Res.Df[2], ref$DenDF, tolerance = 1e-10)
})

test_that("deltaMethod matches car on lmer", {
    need_lme4(); skip_if_not_installed("car")
    p <- ext_pair(Reaction ~ Days + (Days | Subject), "sleepstudy")
    for (g in c("Days / (Intercept)", "exp(Days / 10)", "(Intercept) + 5 * Days"))
        expect_same_table(car::deltaMethod(p$ours, g), car::deltaMethod(p$ref, g), info = g)
    expect_same_table(car::deltaMethod(p$ours, "b1 / b0", parameterNames = c("b0", "b1")),
                      car::deltaMethod(p$ref, "b1 / b0", parameterNames = c("b0", "b1")))
    k <- 3
    expect_same_table(car::deltaMethod(p$ours, "Days * k"), car::deltaMethod(p$ref, "Days * k"))
})
