## merTools on an lmmfit fit against merTools on the lmer fit of the same
## model.  merTools accepts merMod objects only and has no extension point
## (see R/ext-mertools.R): the documented route is as_lmerMod(fit), tested
## here.

## lmer's optimum (bobyqa to rhoend 2e-12) and lmmfit's agree to about 1e-8
## in theta; what merTools computes from either, directly or from the same
## random draws, agrees as closely, far inside this.
MERTOOLS_TOL <- 1e-6
## a correlation near zero (sleepstudy's is 0.066) has a relative error
## 1/|r| times its absolute one: correlations are compared on their own
## (absolute) scale
MERTOOLS_COR_TOL <- 1e-6

## The lmer fit is lme4's own, not lmerTest's: thetaExtract() and subBoot()
## test class(x) == "lmerMod", which an lmerModLmerTest object fails.
mertools_cache <- new.env()
mertools_pair <- function(formula, data) {
    key <- paste(deparse1(formula), data)
    if (!is.null(mertools_cache[[key]])) return(mertools_cache[[key]])
    dat <- ext_data(data)
    ref <- suppressMessages(lme4::lmer(formula, data = dat, control = ext_lmer_control()))
    fit <- suppressMessages(lmmfit(formula, data = dat))
    mertools_cache[[key]] <- list(fit = fit, ours = as_lmerMod(fit), ref = ref, data = dat)
}

mertools_models <- list(list(Reaction ~ Days + (Days | Subject), "sleepstudy"),
                        list(diameter ~ 1 + (1 | plate) + (1 | sample), "Penicillin"),
                        list(yield ~ nitro + (1 | Block / Variety), "Oats"))

## Numeric columns with a relative tolerance, the others exactly.
expect_same_frame <- function(ours, ref, info, tolerance = MERTOOLS_TOL) {
    ours <- as.data.frame(ours); ref <- as.data.frame(ref)
    expect_identical(names(ours), names(ref), info = info)
    expect_identical(nrow(ours), nrow(ref), info = info)
    for (cn in names(ref)) {
        if (is.numeric(ref[[cn]])) expect_equal(ours[[cn]], ref[[cn]], tolerance = tolerance, info = paste(info, cn))
        else expect_identical(as.character(ours[[cn]]), as.character(ref[[cn]]), info = paste(info, cn))
    }
}

test_that("merTools refuses an lmmfit fit itself: the route is as_lmerMod()", {
    need_lme4(); skip_if_not_installed("merTools")
    p <- mertools_pair(Reaction ~ Days + (Days | Subject), "sleepstudy")
    expect_error(merTools::REextract(p$fit), "merMod")
    expect_error(merTools::FEsim(p$fit, n.sims = 10), "merMod")
    expect_s4_class(p$ours, "lmerMod")
})

test_that("merTools' deterministic summaries of as_lmerMod(fit) match lmer's", {
    need_lme4(); skip_if_not_installed("merTools")
    for (m in mertools_models) {
        p <- mertools_pair(m[[1]], m[[2]])
        info <- deparse1(m[[1]])
        expect_same_frame(merTools::REextract(p$ours), merTools::REextract(p$ref), info)
        expect_equal(merTools::REsdExtract(p$ours), merTools::REsdExtract(p$ref), tolerance = MERTOOLS_TOL,
                     info = info)
        expect_lt(abs(merTools::REcorrExtract(p$ours) - merTools::REcorrExtract(p$ref)), MERTOOLS_COR_TOL)
        expect_equal(merTools::thetaExtract(p$ours), merTools::thetaExtract(p$ref), tolerance = MERTOOLS_TOL,
                     info = info)
        expect_same_frame(merTools::modelInfo(p$ours), merTools::modelInfo(p$ref), info)
        expect_equal(merTools::RMSE.merMod(p$ours), merTools::RMSE.merMod(p$ref), tolerance = MERTOOLS_TOL,
                     info = info)
        expect_same_frame(merTools::expectedRank(p$ours), merTools::expectedRank(p$ref), info)
        ## REquantile() and draw() pick levels by the order of their
        ## conditional modes, which Penicillin's plates tie exactly (equal
        ## totals): the levels picked must have the same conditional modes
        g <- names(lme4::ranef(p$ref))[1]
        mode_of <- function(lv) lme4::ranef(p$ref)[[g]][as.character(lv), 1]
        q <- c(0.2, 0.5, 0.8)
        expect_equal(mode_of(suppressMessages(merTools::REquantile(p$ours, q, g))),
                     mode_of(suppressMessages(merTools::REquantile(p$ref, q, g))), tolerance = MERTOOLS_TOL,
                     info = info)
        d_ours <- suppressMessages(merTools::draw(p$ours, type = "average"))
        d_ref <- suppressMessages(merTools::draw(p$ref, type = "average"))
        expect_equal(mode_of(d_ours[[g]]), mode_of(d_ref[[g]]), tolerance = MERTOOLS_TOL, info = info)
        keep <- setdiff(names(d_ref), names(lme4::ranef(p$ref)))
        expect_same_frame(d_ours[keep], d_ref[keep], info)
        ## fastdisp() prints the call first, which names lme4's settings
        ## for as_lmerMod's object; the table after it is merTools' rounding
        out_ours <- capture.output(merTools::fastdisp(p$ours))
        out_ref <- capture.output(merTools::fastdisp(p$ref))
        tail_from <- function(out) out[seq(grep("coef.est", out, fixed = TRUE), length(out))]
        expect_identical(tail_from(out_ours), tail_from(out_ref), info = info)
    }
})

test_that("merTools reports lmmfit's own estimates through as_lmerMod()", {
    need_lme4(); skip_if_not_installed("merTools")
    p <- mertools_pair(Reaction ~ Days + (Days | Subject), "sleepstudy")
    re <- merTools::REextract(p$ours)
    own <- ranef(p$fit, condVar = TRUE)$Subject
    expect_equal(re[["(Intercept)"]], own[["(Intercept)"]], tolerance = MERTOOLS_TOL)
    expect_equal(re$Days, own$Days, tolerance = MERTOOLS_TOL)
    expect_equal(re[["(Intercept)_se"]], sqrt(attr(own, "postVar")[1, 1, ]), tolerance = MERTOOLS_TOL)
    expect_equal(re$Days_se, sqrt(attr(own, "postVar")[2, 2, ]), tolerance = MERTOOLS_TOL)
    expect_equal(unname(merTools::REsdExtract(p$ours)), unname(attr(VarCorr(p$fit)$Subject, "stddev")),
                 tolerance = MERTOOLS_TOL)
    info <- merTools::modelInfo(p$ours)
    expect_equal(info$n.obs, nobs(p$fit))
    expect_equal(info$AIC, AIC(p$fit), tolerance = MERTOOLS_TOL)
    expect_equal(info$sigma, sigma(p$fit), tolerance = MERTOOLS_TOL)
})

## arm::sim (behind FEsim and REsim) and predictInterval turn rnorm() and
## rgamma() draws into parameter draws; how many draws they take, and
## rgamma's shape, depend only on the model's dimensions, the same for both
## objects.  So one seed gives both the same draws, transformed by estimates
## that agree to about 1e-8, and the results agree as closely.
test_that("merTools' simulations from as_lmerMod(fit) match lmer's with the same seed", {
    need_lme4(); skip_if_not_installed("merTools")
    for (m in mertools_models) {
        p <- mertools_pair(m[[1]], m[[2]])
        info <- deparse1(m[[1]])
        expect_same_frame(merTools::FEsim(p$ours, n.sims = 300, seed = 11),
                          merTools::FEsim(p$ref, n.sims = 300, seed = 11), info)
        expect_same_frame(merTools::REsim(p$ours, n.sims = 300, seed = 12),
                          merTools::REsim(p$ref, n.sims = 300, seed = 12), info)
        nd <- p$data[c(1, 7, 20, nrow(p$data)), ]
        for (which in c("full", "fixed", "random", "all")) for (resid in c(TRUE, FALSE)) {
            expect_same_frame(
                merTools::predictInterval(p$ours, nd, which = which, include.resid.var = resid,
                                          n.sims = 300, seed = 13),
                merTools::predictInterval(p$ref, nd, which = which, include.resid.var = resid,
                                          n.sims = 300, seed = 13),
                paste(info, which, resid))
        }
    }
    p <- mertools_pair(Reaction ~ Days + (Days | Subject), "sleepstudy")
    nd <- p$data[c(3, 50), c("Days", "Subject")]
    expect_same_frame(merTools::REimpact(p$ours, nd, groupFctr = "Subject", n.sims = 300, seed = 14),
                      merTools::REimpact(p$ref, nd, groupFctr = "Subject", n.sims = 300, seed = 14),
                      "REimpact")
    ## subBoot refits its resamples with lme4::lmer: the same seed draws the
    ## same rows of the model frame, so only the original row can differ
    fe <- function(x) lme4::fixef(x)
    expect_same_frame(suppressMessages(merTools::subBoot(p$ours, FUN = fe, R = 2, seed = 15)),
                      suppressMessages(merTools::subBoot(p$ref, FUN = fe, R = 2, seed = 15)), "subBoot")
})
