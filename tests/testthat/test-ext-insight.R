## insight, performance and parameters on an lmmfit fit against the same
## functions on the lmer fit of the same model.

ext_models <- list(list(Reaction ~ Days + (Days | Subject), "sleepstudy"),
                   list(yield ~ nitro + (1 | Block / Variety), "Oats"),
                   list(diameter ~ 1 + (1 | plate) + (1 | sample), "Penicillin"),
                   list(y ~ x + trt + (1 | g), "singular"))

test_that("insight finds the formula, random effects, parameters and model information as for lmer", {
    need_lme4(); skip_if_not_installed("insight")
    for (m in ext_models) {
        p <- ext_pair(m[[1]], m[[2]])
        info <- deparse1(m[[1]])
        expect_equal(insight::find_formula(p$ours), insight::find_formula(p$ref), ignore_attr = TRUE,
                     info = info)
        expect_equal(lapply(insight::find_formula(p$ours), format),
                     lapply(insight::find_formula(p$ref), format), info = info)
        expect_equal(insight::find_random(p$ours), insight::find_random(p$ref), info = info)
        expect_equal(insight::find_random(p$ours, split_nested = TRUE, flatten = TRUE),
                     insight::find_random(p$ref, split_nested = TRUE, flatten = TRUE), info = info)
        expect_true(insight::is_mixed_model(p$ours))
        expect_equal(insight::find_predictors(p$ours, effects = "all"),
                     insight::find_predictors(p$ref, effects = "all"), info = info)
        expect_equal(insight::find_parameters(p$ours), insight::find_parameters(p$ref), info = info)
        expect_equal(insight::get_parameters(p$ours), insight::get_parameters(p$ref), tolerance = 1e-6,
                     info = info)
        expect_equal(lapply(insight::get_parameters(p$ours, effects = "random"), as.matrix),
                     lapply(insight::get_parameters(p$ref, effects = "random"), function(d) {
                         d <- as.matrix(d); attr(d, "postVar") <- NULL; d }),
                     tolerance = 1e-5, info = info)
        expect_equal(insight::get_statistic(p$ours), insight::get_statistic(p$ref), tolerance = 1e-6,
                     info = info)
        expect_equal(insight::get_df(p$ours), insight::get_df(p$ref), info = info)
        expect_equal(as.numeric(insight::get_loglikelihood(p$ours)), as.numeric(insight::get_loglikelihood(p$ref)),
                     tolerance = 1e-8, info = info)
        mi_ours <- insight::model_info(p$ours)
        mi_ref <- insight::model_info(p$ref)
        for (nm in c("is_mixed", "is_linear", "is_binomial", "is_count", "family", "link_function",
                     "is_bayesian", "is_multivariate"))
            expect_equal(mi_ours[[nm]], mi_ref[[nm]], info = paste(info, nm))
    }
})

test_that("Satterthwaite and Kenward-Roger df in insight::get_df match lmer's", {
    need_lme4(); skip_if_not_installed("insight"); skip_if_not_installed("lmerTest")
    skip_if_not_installed("pbkrtest")
    p <- ext_pair(Reaction ~ Days + (Days | Subject), "sleepstudy")
    expect_equal(unname(insight::get_df(p$ours, type = "satterthwaite")),
                 unname(insight::get_df(p$ref, type = "satterthwaite")), tolerance = 1e-5)
    expect_equal(unname(insight::get_df(p$ours, type = "kenward")),
                 unname(insight::get_df(p$ref, type = "kenward")), tolerance = 1e-5, ignore_attr = TRUE)
    expect_equal(insight::get_df(p$ours, type = "normal"), Inf)
})

test_that("get_variance, icc, r2 and r2_nakagawa match performance on lmer", {
    need_lme4(); skip_if_not_installed("insight"); skip_if_not_installed("performance")
    for (m in ext_models[1:3]) {
        p <- ext_pair(m[[1]], m[[2]])
        info <- deparse1(m[[1]])
        expect_equal(insight::get_variance(p$ours), insight::get_variance(p$ref), tolerance = 1e-5,
                     info = info)
        for (comp in c("fixed", "random", "residual", "intercept"))
            expect_equal(insight::get_variance(p$ours, component = comp),
                         insight::get_variance(p$ref, component = comp), tolerance = 1e-5, info = info)
        expect_equal(unclass(performance::icc(p$ours)), unclass(performance::icc(p$ref)), tolerance = 1e-6,
                     info = info)
        expect_equal(unclass(performance::r2_nakagawa(p$ours)), unclass(performance::r2_nakagawa(p$ref)),
                     tolerance = 1e-6, info = info)
        expect_equal(unclass(performance::r2(p$ours)), unclass(performance::r2(p$ref)), tolerance = 1e-6,
                     info = info)
        if (is.null(insight::find_random_slopes(p$ref)))
            expect_equal(unclass(performance::icc(p$ours, by_group = TRUE)),
                         unclass(performance::icc(p$ref, by_group = TRUE)), tolerance = 1e-6, info = info)
    }
    ## lmmfit's own icc() agrees with performance's adjusted ICC for a
    ## single random intercept
    p <- ext_pair(yield ~ nitro + (1 | Block / Variety), "Oats")
    expect_equal(sum(icc(p$ours)), performance::icc(p$ours)$ICC_adjusted, tolerance = 1e-10)
})

test_that("a singular fit: check_singularity is TRUE, ICC and conditional R2 are NA, as for lmer", {
    need_lme4(); skip_if_not_installed("insight"); skip_if_not_installed("performance")
    p <- ext_pair(y ~ x + trt + (1 | g), "singular")
    expect_true(lme4::isSingular(p$ref))
    expect_true(performance::check_singularity(p$ours))
    expect_identical(performance::check_singularity(p$ours), performance::check_singularity(p$ref))
    ## and a regular fit is not singular
    q <- ext_pair(Reaction ~ Days + (Days | Subject), "sleepstudy")
    expect_false(performance::check_singularity(q$ours))
    expect_warning(v_ours <- insight::get_variance(p$ours), "singular")
    v_ref <- suppressWarnings(insight::get_variance(p$ref))
    expect_equal(v_ours, v_ref, tolerance = 1e-6)
    expect_equal(insight::get_variance(p$ours, tolerance = 0), insight::get_variance(p$ref, tolerance = 0),
                 tolerance = 1e-6)
    expect_identical(suppressWarnings(performance::icc(p$ours)), suppressWarnings(performance::icc(p$ref)))
    capture.output(r2o <- suppressWarnings(suppressMessages(performance::r2_nakagawa(p$ours))))
    capture.output(r2r <- suppressWarnings(suppressMessages(performance::r2_nakagawa(p$ref))))
    expect_equal(unclass(r2o), unclass(r2r), tolerance = 1e-6)
})

test_that("check_convergence and model_performance work as for lmer", {
    need_lme4(); skip_if_not_installed("insight"); skip_if_not_installed("performance")
    for (m in ext_models[1:3]) {
        p <- ext_pair(m[[1]], m[[2]])
        expect_true(performance::check_convergence(p$ours))
        expect_true(attr(performance::check_convergence(p$ours), "gradient") < 1e-3)
        mp_ours <- performance::model_performance(p$ours)
        mp_ref <- performance::model_performance(p$ref)
        expect_s3_class(mp_ours, "performance_model")
        expect_equal(names(mp_ours), names(mp_ref))
        expect_equal(unlist(mp_ours), unlist(mp_ref), tolerance = 1e-6, info = deparse1(m[[1]]))
    }
    p <- ext_pair(y ~ x + trt + (1 | g), "singular")
    capture.output(mp_ours <- suppressWarnings(suppressMessages(performance::model_performance(p$ours))))
    capture.output(mp_ref <- suppressWarnings(suppressMessages(performance::model_performance(p$ref))))
    expect_equal(names(mp_ours), names(mp_ref))
    expect_equal(unlist(mp_ours), unlist(mp_ref), tolerance = 1e-6)
})

test_that("insight::get_predicted matches lmer's (with and without random effects)", {
    need_lme4(); skip_if_not_installed("insight")
    p <- ext_pair(yield ~ Variety * nitro + (1 | Block), "Oats")
    d <- p$data[c(1, 5, 30, 61), ]
    for (ir in list("default", FALSE, TRUE)) for (pr in c("expectation", "prediction")) for (ci in list(NULL, 0.9)) {
        expect_equal(as.data.frame(insight::get_predicted(p$ours, data = d, include_random = ir, predict = pr, ci = ci)),
                     as.data.frame(insight::get_predicted(p$ref, data = d, include_random = ir, predict = pr, ci = ci)),
                     tolerance = 1e-6, info = paste(ir, pr, ci))
    }
    d$Block <- NULL
    expect_equal(as.data.frame(insight::get_predicted(p$ours, data = d)),
                 as.data.frame(insight::get_predicted(p$ref, data = d)), tolerance = 1e-6)
})

test_that("parameters: model_parameters, p_value, standard_error, ci, degrees_of_freedom as for lmer", {
    need_lme4(); skip_if_not_installed("parameters"); skip_if_not_installed("insight")
    skip_if_not_installed("lmerTest"); skip_if_not_installed("pbkrtest")
    for (m in ext_models) {
        p <- ext_pair(m[[1]], m[[2]])
        info <- deparse1(m[[1]])
        mp_ours <- parameters::model_parameters(p$ours)
        mp_ref <- suppressMessages(parameters::model_parameters(p$ref))
        expect_s3_class(mp_ours, "parameters_model")
        cols <- c("Parameter", "Coefficient", "SE", "CI", "CI_low", "CI_high", "t", "df_error", "p",
                  "Effects", "Group")
        expect_same_table(mp_ours, mp_ref, cols = cols, tolerance = 1e-5, info = info)
        ## the printed tables agree (the footers differ: lmer's has a note on
        ## the intervals of the random-effect variances)
        out_ours <- capture.output(print(mp_ours))
        out_ref <- suppressMessages(capture.output(print(mp_ref)))
        n <- min(which(out_ref == "")[-1L], length(out_ref))
        expect_equal(out_ours[seq_len(n)], out_ref[seq_len(n)], info = info)
        for (method in c("residual", "wald", "normal", "satterthwaite", "kenward")) {
            i <- paste(info, method)
            expect_equal(parameters::p_value(p$ours, method = method), parameters::p_value(p$ref, method = method),
                         tolerance = 1e-5, info = i)
            expect_equal(parameters::standard_error(p$ours, method = method),
                         parameters::standard_error(p$ref, method = method), tolerance = 1e-5, info = i)
            expect_equal(parameters::ci(p$ours, method = method), parameters::ci(p$ref, method = method),
                         tolerance = 1e-5, ignore_attr = TRUE, info = i)
            expect_equal(unname(parameters::degrees_of_freedom(p$ours, method = method)),
                         unname(parameters::degrees_of_freedom(p$ref, method = method)), tolerance = 1e-5,
                         ignore_attr = TRUE, info = i)
        }
        for (method in c("satterthwaite", "kenward")) {
            mo <- parameters::model_parameters(p$ours, ci_method = method, effects = "fixed")
            mr <- suppressMessages(parameters::model_parameters(p$ref, ci_method = method, effects = "fixed"))
            expect_equal(names(mo), names(mr))
            expect_same_table(mo, mr, tolerance = 1e-5, info = paste(info, method))
        }
    }
})

test_that("sjPlot's tab_model (built on insight, parameters, performance) shows lmer's table", {
    need_lme4(); skip_if_not_installed("sjPlot"); skip_if_not_installed("parameters")
    skip_if_not_installed("performance")
    text_of <- function(tab) gsub("\\s+", " ", gsub("<[^>]+>", " ", tab$page.content))
    for (m in ext_models[1:3]) {
        p <- ext_pair(m[[1]], m[[2]])
        expect_identical(text_of(sjPlot::tab_model(p$ours)), text_of(sjPlot::tab_model(p$ref)),
                         info = deparse1(m[[1]]))
    }
    p <- ext_pair(Reaction ~ Days + (Days | Subject), "sleepstudy")
    expect_equal(sjPlot::plot_model(p$ours)$data$estimate, sjPlot::plot_model(p$ref)$data$estimate,
                 tolerance = 1e-6)
})

test_that("get_variance of an uncorrelated (x || g) model counts every term", {
    need_lme4(); skip_if_not_installed("insight")
    p <- ext_pair(Reaction ~ Days + (Days || Subject), "sleepstudy")
    v <- insight::get_variance(p$ours)
    v_ref <- insight::get_variance(p$ref)
    ## the same components, except var.random: insight 0.19 counts only the
    ## intercept term of an lmer fit's (Days || Subject); Johnson's definition
    ## (the mean over the observations of z' Sigma z) has both
    for (nm in setdiff(names(v_ref), "var.random")) expect_equal(v[[nm]], v_ref[[nm]], tolerance = 1e-5, info = nm)
    expect_equal(v$var.random, unname(v$var.intercept + v$var.slope * mean(lme4::sleepstudy$Days^2)),
                 tolerance = 1e-10)
    q <- ext_pair(Reaction ~ Days + (Days | Subject), "sleepstudy")
    expect_equal(insight::get_variance(q$ours)$var.random, insight::get_variance(q$ref)$var.random, tolerance = 1e-5)
})
