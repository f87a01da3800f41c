## multcomp's glht on an lmmfit fit against glht on the lmer fit of the same
## model: estimates, standard errors, z statistics, adjusted p-values and
## simultaneous confidence intervals.

glht_table <- function(g, test = multcomp::adjusted("single-step"), seed = 1) {
    set.seed(seed)
    s <- summary(g, test = test)$test
    data.frame(estimate = unname(s$coefficients), se = unname(s$sigma), z = unname(s$tstat),
               p = unname(s$pvalues))
}

test_that("glht with mcp(), symbolic and matrix hypotheses matches glht on lmer", {
    need_lme4(); skip_if_not_installed("multcomp")
    p <- ext_pair(yield ~ Variety + nitro_f + (1 | Block / Variety), "Oats")
    hyps <- list(multcomp::mcp(Variety = "Tukey"), multcomp::mcp(nitro_f = "Dunnett"),
                 c("VarietyVictory = 0", "nitro_f0.6 - nitro_f0.2 = 10"))
    for (h in hyps) {
        g_ours <- multcomp::glht(p$ours, linfct = h)
        g_ref <- multcomp::glht(p$ref, linfct = h)
        expect_equal(g_ours$linfct, g_ref$linfct)
        expect_equal(g_ours$df, g_ref$df)
        for (adj in c("none", "holm", "bonferroni"))
            expect_same_table(glht_table(g_ours, multcomp::adjusted(adj)),
                              glht_table(g_ref, multcomp::adjusted(adj)), info = adj)
        ## single-step p-values and intervals come from a randomised
        ## integration (mvtnorm): same seed, nearly the same numbers
        expect_same_table(glht_table(g_ours), glht_table(g_ref), tolerance = 1e-4)
        set.seed(2); ci_ours <- confint(g_ours)$confint
        set.seed(2); ci_ref <- confint(g_ref)$confint
        expect_equal(unname(ci_ours), unname(ci_ref), tolerance = 1e-4)
        ## the global tests
        expect_equal(summary(g_ours, test = multcomp::Chisqtest())$test$SSH,
                     summary(g_ref, test = multcomp::Chisqtest())$test$SSH, tolerance = 1e-6)
        expect_equal(summary(g_ours, test = multcomp::Ftest())$test$fstat,
                     summary(g_ref, test = multcomp::Ftest())$test$fstat, tolerance = 1e-6)
        expect_equal(summary(g_ours, test = multcomp::Ftest())$test$df,
                     summary(g_ref, test = multcomp::Ftest())$test$df)
    }
    L <- rbind(c(0, 1, -1, 0, 0, 0), c(0, 0, 0, 1, 1, 0))
    colnames(L) <- names(fixef(p$ours))
    expect_same_table(glht_table(multcomp::glht(p$ours, L), multcomp::adjusted("none")),
                      glht_table(multcomp::glht(p$ref, L), multcomp::adjusted("none")))
})

test_that("glht on random-slope and singular fits, and with df, matches lmer", {
    need_lme4(); skip_if_not_installed("multcomp")
    p <- ext_pair(Reaction ~ Days + (Days | Subject), "sleepstudy")
    expect_same_table(glht_table(multcomp::glht(p$ours, "Days = 10"), multcomp::adjusted("none")),
                      glht_table(multcomp::glht(p$ref, "Days = 10"), multcomp::adjusted("none")))
    ## a t reference distribution when df is given
    g_ours <- multcomp::glht(p$ours, "Days = 10", df = 17)
    g_ref <- multcomp::glht(p$ref, "Days = 10", df = 17)
    expect_equal(g_ours$df, 17)
    expect_same_table(glht_table(g_ours, multcomp::adjusted("none")), glht_table(g_ref, multcomp::adjusted("none")))
    p <- ext_pair(y ~ x + trt + (1 | g), "singular")
    expect_same_table(glht_table(multcomp::glht(p$ours, multcomp::mcp(trt = "Tukey")), multcomp::adjusted("holm")),
                      glht_table(multcomp::glht(p$ref, multcomp::mcp(trt = "Tukey")), multcomp::adjusted("holm")))
    expect_error(multcomp::glht(p$ours, "x = 0", vcov. = diag(2)), "matrix")
})
