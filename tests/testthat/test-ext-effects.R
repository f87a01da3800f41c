## effects (and ggeffects' ggeffect/ggemmeans, built on effects and emmeans)
## on an lmmfit fit against the same on the lmer fit of the same model.

## effects refits the fixed part of an lmer fit by evaluating its call where
## only the global environment is visible: the data must be there.
with_global_data <- function(name, value, code) {
    old <- get0(name, envir = globalenv(), inherits = FALSE)
    assign(name, value, envir = globalenv())
    on.exit(if (is.null(old)) rm(list = name, envir = globalenv()) else assign(name, old, envir = globalenv()))
    force(code)
}

effects_pair <- function(formula) {
    ref <- suppressMessages(lme4::lmer(formula, data = ext_effects_oats, control = ext_lmer_control()))
    ours <- suppressMessages(lmmfit(formula, data = ext_effects_oats))
    list(ours = ours, ref = ref)
}

test_that("Effect, allEffects and predictorEffects match effects on lmer", {
    need_lme4(); skip_if_not_installed("effects")
    with_global_data("ext_effects_oats", ext_data("Oats"), {
        for (f in list(yield ~ Variety * nitro + (1 | Block), yield ~ Variety + nitro_f + (1 | Block / Variety))) {
            p <- effects_pair(f)
            info <- deparse1(f)
            foc <- if ("nitro" %in% all.vars(f)) c("Variety", "nitro") else c("Variety", "nitro_f")
            expect_same_table(as.data.frame(effects::Effect(foc, p$ours)),
                              as.data.frame(effects::Effect(foc, p$ref)), info = info)
            a_ours <- effects::allEffects(p$ours)
            a_ref <- effects::allEffects(p$ref)
            expect_equal(names(a_ours), names(a_ref))
            for (nm in names(a_ref))
                expect_same_table(as.data.frame(a_ours[[nm]]), as.data.frame(a_ref[[nm]]), info = paste(info, nm))
            pe_ours <- effects::predictorEffects(p$ours)
            pe_ref <- effects::predictorEffects(p$ref)
            for (nm in names(pe_ref))
                expect_same_table(as.data.frame(pe_ours[[nm]]), as.data.frame(pe_ref[[nm]]), info = paste(info, nm))
        }
        p <- effects_pair(yield ~ Variety * nitro + (1 | Block))
        expect_same_table(as.data.frame(effects::Effect("nitro", p$ours, xlevels = list(nitro = c(0, 0.25, 0.6)))),
                          as.data.frame(effects::Effect("nitro", p$ref, xlevels = list(nitro = c(0, 0.25, 0.6)))))
        expect_same_table(as.data.frame(effects::Effect("Variety", p$ours, confidence.level = 0.9)),
                          as.data.frame(effects::Effect("Variety", p$ref, confidence.level = 0.9)))
    })
})

test_that("ggeffects: ggeffect matches lmer's; ggemmeans gives lmer's estimates", {
    need_lme4(); skip_if_not_installed("effects"); skip_if_not_installed("ggeffects")
    skip_if_not_installed("emmeans")
    with_global_data("ext_effects_oats", ext_data("Oats"), {
        p <- effects_pair(yield ~ Variety * nitro + (1 | Block))
        expect_same_table(as.data.frame(ggeffects::ggeffect(p$ours, c("nitro", "Variety"))),
                          as.data.frame(ggeffects::ggeffect(p$ref, c("nitro", "Variety"))))
        ## ggeffects asks emmeans for asymptotic intervals of lmer fits, and
        ## for its default ("link") of other classes: lmmfit's default df method
        g_ours <- as.data.frame(ggeffects::ggemmeans(p$ours, c("nitro", "Variety")))
        g_ref <- as.data.frame(ggeffects::ggemmeans(p$ref, c("nitro", "Variety")))
        expect_same_table(g_ours, g_ref, cols = c("x", "predicted", "std.error", "group"))
    })
})
