## emmeans on an lmmfit fit against emmeans on the same model fitted by lmer:
## estimated marginal means, pairwise comparisons, joint tests and trends,
## with each of emmeans' df methods for lmer fits.

test_that("emmeans, pairs and joint_tests match lmer's with each df method", {
    need_lme4(); skip_if_not_installed("emmeans"); skip_if_not_installed("pbkrtest")
    skip_if_not_installed("lmerTest")
    p <- ext_pair(yield ~ Variety * nitro_f + (1 | Block / Variety), "Oats")
    for (md in c("kenward-roger", "satterthwaite", "asymptotic")) {
        e_ours <- emmeans::emmeans(p$ours, ~ Variety, lmer.df = md)
        e_ref <- emmeans::emmeans(p$ref, ~ Variety, lmer.df = md)
        expect_same_table(summary(e_ours), summary(e_ref), info = paste("emmeans", md))
        expect_equal(attr(summary(e_ours), "mesg"), attr(summary(e_ref), "mesg"))
        expect_same_table(summary(pairs(e_ours)), summary(pairs(e_ref)), info = paste("pairs", md))
        expect_same_table(summary(emmeans::contrast(e_ours, "trt.vs.ctrl")),
                          summary(emmeans::contrast(e_ref, "trt.vs.ctrl")), info = paste("contrast", md))
        c_ours <- emmeans::emmeans(p$ours, pairwise ~ Variety | nitro_f, lmer.df = md)
        c_ref <- emmeans::emmeans(p$ref, pairwise ~ Variety | nitro_f, lmer.df = md)
        expect_same_table(summary(c_ours$contrasts), summary(c_ref$contrasts), info = paste("by", md))
        expect_same_table(emmeans::joint_tests(p$ours, lmer.df = md),
                          emmeans::joint_tests(p$ref, lmer.df = md), info = paste("joint", md))
        expect_same_table(emmeans::test(e_ours, joint = TRUE), emmeans::test(e_ref, joint = TRUE),
                          info = paste("joint test", md))
    }
    ## the default is emmeans' option lmer.df ("kenward-roger")
    expect_equal(summary(emmeans::emmeans(p$ours, ~ nitro_f))$df,
                 summary(emmeans::emmeans(p$ref, ~ nitro_f))$df, tolerance = 1e-6)
})

test_that("emtrends and contrasts on random-slope and crossed models match lmer's", {
    need_lme4(); skip_if_not_installed("emmeans"); skip_if_not_installed("pbkrtest")
    skip_if_not_installed("lmerTest")
    p <- ext_pair(Reaction ~ Days + (Days | Subject), "sleepstudy")
    for (md in c("kenward-roger", "satterthwaite")) {
        expect_same_table(summary(emmeans::emtrends(p$ours, ~ 1, var = "Days", lmer.df = md)),
                          summary(emmeans::emtrends(p$ref, ~ 1, var = "Days", lmer.df = md)), info = md)
        expect_same_table(summary(emmeans::emmeans(p$ours, ~ Days, at = list(Days = c(0, 4.5, 9)), lmer.df = md)),
                          summary(emmeans::emmeans(p$ref, ~ Days, at = list(Days = c(0, 4.5, 9)), lmer.df = md)),
                          info = md)
    }
    p <- ext_pair(diameter ~ 1 + (1 | plate) + (1 | sample), "Penicillin")
    expect_same_table(summary(emmeans::emmeans(p$ours, ~ 1)), summary(emmeans::emmeans(p$ref, ~ 1)))
    expect_same_table(summary(emmeans::emmeans(p$ours, ~ 1, lmer.df = "satterthwaite")),
                      summary(emmeans::emmeans(p$ref, ~ 1, lmer.df = "satterthwaite")))
})

test_that("emmeans handles ML fits, user vcov., a singular fit and aliased columns", {
    need_lme4(); skip_if_not_installed("emmeans"); skip_if_not_installed("lmerTest")
    p <- ext_pair(yield ~ Variety + nitro + (1 | Block), "Oats", REML = FALSE)
    expect_same_table(summary(emmeans::emmeans(p$ours, ~ Variety, lmer.df = "satterthwaite")),
                      summary(emmeans::emmeans(p$ref, ~ Variety, lmer.df = "satterthwaite")))
    ## Kenward-Roger needs REML: a message, then Satterthwaite
    expect_message(e <- emmeans::emmeans(p$ours, ~ Variety, lmer.df = "kenward-roger"), "REML")
    expect_equal(attr(summary(e), "mesg")[grepl("method", attr(summary(e), "mesg"))],
                 "Degrees-of-freedom method: satterthwaite")

    p <- ext_pair(yield ~ Variety + nitro + (1 | Block), "Oats")
    V <- 2 * vcov(p$ours)
    s <- summary(emmeans::emmeans(p$ours, ~ Variety, vcov. = V, lmer.df = "asymptotic"))
    s_ref <- summary(emmeans::emmeans(p$ref, ~ Variety, vcov. = 2 * as.matrix(vcov(p$ref)),
                                      lmer.df = "asymptotic"))
    expect_same_table(s, s_ref)

    p <- ext_pair(y ~ x + trt + (1 | g), "singular")
    expect_true(isSingular(p$ours))
    for (md in c("kenward-roger", "satterthwaite"))
        expect_same_table(summary(pairs(emmeans::emmeans(p$ours, ~ trt, lmer.df = md))),
                          summary(pairs(emmeans::emmeans(p$ref, ~ trt, lmer.df = md))), info = md)

    ## a rank-deficient fixed part: the aliased coefficients are NA for emmeans
    d <- ext_data("Oats")
    d$v2 <- d$Variety
    ours <- suppressMessages(lmmfit(yield ~ Variety + v2 + nitro + (1 | Block), d))
    ref <- suppressMessages(suppressWarnings(lme4::lmer(yield ~ Variety + v2 + nitro + (1 | Block), d,
                                                        control = ext_lmer_control())))
    expect_same_table(summary(emmeans::emmeans(ours, ~ Variety)), summary(emmeans::emmeans(ref, ~ Variety)))
    ## and non-estimable grid points are flagged as for lmer
    g_ours <- summary(emmeans::ref_grid(ours))
    g_ref <- summary(emmeans::ref_grid(ref))
    expect_equal(is.na(g_ours$prediction), is.na(g_ref$prediction))
    expect_equal(g_ours$prediction, g_ref$prediction, tolerance = 1e-6)
})

test_that("emmeans on a fit with a residual AR(1) structure: Satterthwaite's df; Kenward-Roger falls back", {
    skip_if_not_installed("emmeans")
    set.seed(3)
    d <- data.frame(id = factor(rep(1:12, each = 6)), time = rep(1:6, 12), trt = rep(c("a", "b"), each = 36))
    d$y <- 1 + 0.5 * (d$trt == "b") + 0.2 * d$time + rnorm(12, sd = 0.5)[d$id] + rnorm(72)
    fit <- suppressMessages(lmmfit(y ~ trt + time + (1 | id), d, correlation = ar1(~ time | id)))
    expect_message(emmeans::emmeans(fit, ~ trt, lmer.df = "kenward-roger"), "correlation structure")
    e <- emmeans::emmeans(fit, ~ trt)
    s <- summary(e)
    X <- rbind(c(1, 0, mean(d$time)), c(1, 1, mean(d$time)))
    expect_equal(s$df, c(lmm_contrast(fit, X[1, ])$df, lmm_contrast(fit, X[2, ])$df), tolerance = 1e-8)
    expect_equal(s$emmean, drop(X %*% fixef(fit)), tolerance = 1e-10)
    expect_equal(s$SE, sqrt(rowSums((X %*% vcov(fit)) * X)), tolerance = 1e-10)
})
