## tidy() of an lmmfit fit against broom.mixed's tidy() of the same model
## fitted by lmerTest::lmer (which adds Satterthwaite's df and p-values).

## rows matched by effect, group, level and term (the order of the variance
## parameters and of the levels may differ)
expect_same_tidy <- function(ours, ref, info = NULL) {
    ours <- as.data.frame(ours); ref <- as.data.frame(ref)
    expect_setequal(names(ours), names(ref))
    key <- function(d) do.call(paste, c(lapply(intersect(c("effect", "group", "level", "term"), names(d)),
                                               function(cn) d[[cn]]), sep = "|"))
    expect_setequal(key(ours), key(ref))
    ours <- ours[match(key(ref), key(ours)), names(ref), drop = FALSE]
    expect_same_table(ours, ref, tolerance = 1e-5, info = info,
                      df_cols = c("df", "p.value", "conf.low", "conf.high"), df_tolerance = 1e-4)
}

test_that("tidy: fixed effects with df and p-values, variance parameters on both scales", {
    need_lme4(); skip_if_not_installed("broom.mixed"); skip_if_not_installed("lmerTest")
    models <- list(list(Reaction ~ Days + (Days | Subject), "sleepstudy"),
                   list(yield ~ nitro + (1 | Block / Variety), "Oats"),
                   list(diameter ~ 1 + (1 | plate) + (1 | sample), "Penicillin"),
                   list(Reaction ~ Days + (Days || Subject), "sleepstudy"),
                   list(y ~ x + trt + (1 | g), "singular"))
    for (m in models) {
        p <- ext_pair(m[[1]], m[[2]])
        info <- deparse1(m[[1]])
        expect_s4_class(p$ref, "lmerModLmerTest")
        expect_same_tidy(broom.mixed::tidy(p$ours), broom.mixed::tidy(p$ref), info = info)
        expect_same_tidy(broom.mixed::tidy(p$ours, conf.int = TRUE, conf.level = 0.9),
                         broom.mixed::tidy(p$ref, conf.int = TRUE, conf.level = 0.9), info = info)
        expect_same_tidy(broom.mixed::tidy(p$ours, effects = "fixed"),
                         broom.mixed::tidy(p$ref, effects = "fixed"), info = info)
        expect_same_tidy(broom.mixed::tidy(p$ours, effects = c("ran_pars", "fixed"), scales = c("vcov", NA)),
                         broom.mixed::tidy(p$ref, effects = c("ran_pars", "fixed"), scales = c("vcov", NA)),
                         info = info)
        expect_same_tidy(broom.mixed::tidy(p$ours, effects = "ran_pars", scales = "vcov"),
                         broom.mixed::tidy(p$ref, effects = "ran_pars", scales = "vcov"), info = info)
        ## without df: broom.mixed on a plain lme4 fit
        expect_same_tidy(broom.mixed::tidy(p$ours, ddf.method = "lme4", conf.int = TRUE),
                         broom.mixed::tidy(as(p$ref, "lmerMod"), conf.int = TRUE),
                         info = info)
    }
})

test_that("tidy: ran_vals and ran_coefs match broom.mixed", {
    need_lme4(); skip_if_not_installed("broom.mixed"); skip_if_not_installed("lmerTest")
    for (m in list(list(Reaction ~ Days + (Days | Subject), "sleepstudy"),
                   list(yield ~ nitro + (1 | Block / Variety), "Oats"))) {
        p <- ext_pair(m[[1]], m[[2]])
        info <- deparse1(m[[1]])
        expect_same_tidy(broom.mixed::tidy(p$ours, effects = "ran_vals", conf.int = TRUE),
                         broom.mixed::tidy(p$ref, effects = "ran_vals", conf.int = TRUE), info = info)
        expect_same_tidy(broom.mixed::tidy(p$ours, effects = "ran_coefs"),
                         broom.mixed::tidy(p$ref, effects = "ran_coefs"), info = info)
        expect_same_tidy(broom.mixed::tidy(p$ours, effects = c("fixed", "ran_vals")),
                         broom.mixed::tidy(p$ref, effects = c("fixed", "ran_vals")), info = info)
    }
})

test_that("tidy: scales are checked, not ignored; Kenward-Roger as lmerTest's", {
    need_lme4(); skip_if_not_installed("lmerTest"); skip_if_not_installed("pbkrtest")
    p <- ext_pair(yield ~ nitro + (1 | Block / Variety), "Oats")
    expect_error(tidy.lmmfit(p$ours, scales = "vcov"), "each effect")
    expect_error(tidy.lmmfit(p$ours, effects = "ran_pars", scales = "sd"), "unknown scale")
    expect_error(tidy.lmmfit(p$ours, effects = c("fixed", "ran_pars"), scales = c("vcov", "vcov")),
                 "unknown scale")
    expect_error(tidy.lmmfit(p$ours, conf.method = "profile"), "Wald")
    v <- tidy.lmmfit(p$ours, effects = "ran_pars", scales = "vcov")
    expect_equal(v$estimate, tidy.lmmfit(p$ours, effects = "ran_pars")$estimate^2, tolerance = 1e-12)
    expect_equal(v$term[v$group == "Residual"], "var__Observation")
    kr <- tidy.lmmfit(p$ours, effects = "fixed", ddf.method = "Kenward-Roger")
    ref <- coef(summary(p$ref, ddf = "Kenward-Roger"))
    expect_equal(kr$std.error, unname(ref[, "Std. Error"]), tolerance = 1e-5)
    expect_equal(kr$df, unname(ref[, "df"]), tolerance = 1e-5)
    expect_equal(kr$p.value, unname(ref[, "Pr(>|t|)"]), tolerance = 1e-5)
    expect_identical(names(tidy.lmmfit(p$ours, ran_prefix = c("s", "r"), effects = "ran_pars")$term[1]),
                     NULL)
    expect_true(all(grepl("^s__", tidy.lmmfit(p$ours, ran_prefix = c("s", "r"), effects = "ran_pars")$term)))
})

test_that("glance has broom.mixed's columns and values", {
    need_lme4(); skip_if_not_installed("broom.mixed")
    for (reml in c(TRUE, FALSE)) {
        p <- ext_pair(Reaction ~ Days + (Days | Subject), "sleepstudy", REML = reml)
        g_ref <- as.data.frame(broom.mixed::glance(p$ref))
        g_ours <- as.data.frame(broom.mixed::glance(p$ours))
        expect_true(all(names(g_ref) %in% names(g_ours)))
        expect_same_table(g_ours[names(g_ref)], g_ref, tolerance = 1e-8, info = paste("REML", reml))
    }
})
