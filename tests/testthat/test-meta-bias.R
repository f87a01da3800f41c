## Egger's regression test and trim-and-fill against metafor's regtest() and
## trimfill() on the BCG trials and on simulated sets with publication bias.

## metafor 3.8 keeps its data sets in metadat.

## Our REML/ML are converged tightly; metafor's fits are given tight controls
## too, so the two agree to rounding and the optimizers' last steps.
BIAS_TOL <- 1e-6
METAFOR_TIGHT <- list(threshold = 1e-12, maxiter = 1000)

bias_bcg <- function() {
    d <- metafor::escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = metadat::dat.bcg)
    data.frame(yi = as.numeric(d$yi), vi = as.numeric(d$vi), trial = d$trial,
               label = paste(d$author, d$year), ablat = d$ablat)
}

## Positive true effects; small studies survive only when significant (or by
## luck), so that studies are missing on the left.  flip = TRUE mirrors the
## set: studies missing on the right.
bias_suppressed <- function(seed, flip = FALSE, k = 60) {
    set.seed(seed)
    vi <- runif(k, 0.004, 0.25)
    y <- rnorm(k, rnorm(k, 0.2, 0.15), sqrt(vi))
    published <- y / sqrt(vi) > 1.96 | vi < 0.04 | runif(k) < 0.15
    data.frame(yi = if (flip) -y[published] else y[published], vi = vi[published],
               id = seq_len(sum(published)))
}

bias_fit_pair <- function(d, method = "REML", test = "z") {
    list(ours = metafit(yi ~ 1 + (1 | id), vi = vi, data = d, method = method, test = test),
         theirs = metafor::rma(yi, vi, data = d, method = method, test = test, control = METAFOR_TIGHT))
}

expect_regtest_agrees <- function(ours, theirs) {
    expect_equal(ours$zval, theirs$zval, tolerance = BIAS_TOL)
    expect_equal(ours$pval, theirs$pval, tolerance = BIAS_TOL)
    expect_equal(ours$est, unname(theirs$est), tolerance = BIAS_TOL)
    expect_equal(ours$ci.lb, theirs$ci.lb, tolerance = BIAS_TOL)
    expect_equal(ours$ci.ub, theirs$ci.ub, tolerance = BIAS_TOL)
    expect_equal(as.numeric(ours$dfs), as.numeric(theirs$dfs))
}

test_that("regtest matches metafor on the BCG trials (sei and vi, z and knha)", {
    skip_if_not_installed("metafor")
    skip_if_not_installed("metadat")
    d <- bias_bcg()
    for (test in c("z", "knha")) {
        ours <- metafit(yi ~ 1 + (1 | trial), vi = vi, data = d, test = test, slab = label)
        theirs <- metafor::rma(yi, vi, data = d, test = test, control = METAFOR_TIGHT)
        for (predictor in c("sei", "vi")) {
            r <- regtest(ours, predictor = predictor)
            expect_s3_class(r, "regtest.metafit")
            expect_regtest_agrees(r, metafor::regtest(theirs, predictor = predictor))
        }
    }
})

test_that("regtest matches metafor on a set with publication bias", {
    skip_if_not_installed("metafor")
    skip_if_not_installed("metadat")
    d <- bias_suppressed(1)
    for (test in c("z", "knha")) {
        fits <- bias_fit_pair(d, test = test)
        for (predictor in c("sei", "vi")) {
            r <- regtest(fits$ours, predictor = predictor)
            expect_regtest_agrees(r, metafor::regtest(fits$theirs, predictor = predictor))
        }
    }
    ## the set is asymmetric enough for the test to see it
    expect_lt(regtest(bias_fit_pair(d)$ours)$pval, 0.01)
})

test_that("regtest matches metafor for DL, the common-effect model and a moderator", {
    skip_if_not_installed("metafor")
    skip_if_not_installed("metadat")
    d <- bias_bcg()
    dl <- metafit(yi ~ 1 + (1 | trial), vi = vi, data = d, method = "DL")
    expect_regtest_agrees(regtest(dl), metafor::regtest(metafor::rma(yi, vi, data = d, method = "DL")))
    fe <- metafit(yi ~ 1, vi = vi, data = d, method = "FE")
    expect_regtest_agrees(regtest(fe), metafor::regtest(metafor::rma(yi, vi, data = d, method = "FE")))
    ## with a moderator the predictor is added to it, and there is no limit estimate
    mod <- metafit(yi ~ ablat + (1 | trial), vi = vi, data = d)
    r <- regtest(mod)
    m <- metafor::regtest(metafor::rma(yi, vi, mods = ~ablat, data = d, control = METAFOR_TIGHT))
    expect_equal(r$zval, m$zval, tolerance = BIAS_TOL)
    expect_equal(r$pval, m$pval, tolerance = BIAS_TOL)
    expect_null(r$est)
    expect_null(m$est)
})

test_that("regtest with sample sizes matches metafor", {
    skip_if_not_installed("metafor")
    skip_if_not_installed("metadat")
    d <- bias_bcg()
    ni <- with(metadat::dat.bcg, tpos + tneg + cpos + cneg)
    ours <- metafit(yi ~ 1 + (1 | trial), vi = vi, data = d)
    theirs <- metafor::rma(yi, vi, data = d, control = METAFOR_TIGHT)
    for (predictor in c("ni", "ninv")) {
        r <- regtest(ours, predictor = predictor, ni = ni)
        m <- metafor::regtest(theirs, predictor = predictor, ni = ni)
        expect_equal(r$zval, m$zval, tolerance = BIAS_TOL)
        expect_equal(r$pval, m$pval, tolerance = BIAS_TOL)
    }
    expect_null(regtest(ours, predictor = "ni", ni = ni)$est)
    expect_equal(regtest(ours, predictor = "ninv", ni = ni)$est, unname(metafor::regtest(theirs,
                 predictor = "ninv", ni = ni)$est), tolerance = BIAS_TOL)
})

test_that("regtest prints as metafor does", {
    skip_if_not_installed("metafor")
    skip_if_not_installed("metadat")
    d <- bias_bcg()
    r <- regtest(metafit(yi ~ 1 + (1 | trial), vi = vi, data = d))
    expect_output(print(r), "Test for Funnel Plot Asymmetry: z = -0.8033, p = 0.4218", fixed = TRUE)
    expect_output(print(r), "Limit Estimate (as sei -> 0):   b = -0.5104 (CI: -1.1182, 0.0974)", fixed = TRUE)
    rk <- regtest(metafit(yi ~ 1 + (1 | trial), vi = vi, data = d, test = "knha"))
    expect_output(print(rk), "t = -0.7812, df = 11, p = 0.4512", fixed = TRUE)
})

test_that("regtest refuses bad input", {
    d <- data.frame(yi = c(0.1, 0.5, 0.3, 0.9), vi = c(0.01, 0.05, 0.02, 0.1), id = 1:4)
    fit <- metafit(yi ~ 1 + (1 | id), vi = vi, data = d)
    expect_error(regtest(lm(yi ~ 1, d)), "no applicable method|metafit")
    expect_error(regtest.metafit(list(a = 1)), "metafit fit")
    expect_error(regtest(fit, predictor = "ni"), "needs the sample sizes")
    expect_error(regtest(fit, predictor = "ninv", ni = c(10, 20)), "4 positive sample sizes")
    expect_error(regtest(fit, predictor = "nonsense"), "should be one of")
    expect_error(regtest(fit, model = "lm"), "unused argument")
})

## Our trim and fill against metafor's, whose fits are made tight through
## trimfill()'s dots (otherwise its refits use metafor's default threshold).
expect_trimfill_agrees <- function(ours, theirs) {
    expect_identical(ours$k0, as.integer(theirs$k0))
    expect_identical(ours$side, theirs$side)
    expect_equal(ours$se.k0, theirs$se.k0, tolerance = BIAS_TOL)
    expect_equal(unname(ours$beta), as.numeric(theirs$beta), tolerance = BIAS_TOL)
    expect_equal(unname(ours$coef_table$se), theirs$se, tolerance = BIAS_TOL)
    expect_equal(ours$tau2, theirs$tau2, tolerance = BIAS_TOL)
    expect_equal(sort(ours$model$y), sort(as.numeric(theirs$yi)), tolerance = BIAS_TOL)
    expect_identical(sum(ours$fill), sum(theirs$fill))
}

test_that("trimfill matches metafor for L0 and R0 with studies missing on the left", {
    skip_if_not_installed("metafor")
    skip_if_not_installed("metadat")
    fits <- bias_fit_pair(bias_suppressed(1))
    for (estimator in c("L0", "R0")) {
        ours <- trimfill(fits$ours, estimator = estimator)
        theirs <- metafor::trimfill(fits$theirs, estimator = estimator, control = METAFOR_TIGHT)
        expect_gt(ours$k0, 0L)
        expect_identical(ours$side, "left")
        expect_trimfill_agrees(ours, theirs)
    }
    expect_equal(trimfill(fits$ours, estimator = "R0")$p.k0,
                 metafor::trimfill(fits$theirs, estimator = "R0")$p.k0, tolerance = BIAS_TOL)
})

test_that("trimfill matches metafor for L0 and R0 with studies missing on the right", {
    skip_if_not_installed("metafor")
    skip_if_not_installed("metadat")
    fits <- bias_fit_pair(bias_suppressed(8, flip = TRUE))
    for (estimator in c("L0", "R0")) {
        ours <- trimfill(fits$ours, estimator = estimator)
        theirs <- metafor::trimfill(fits$theirs, estimator = estimator, control = METAFOR_TIGHT)
        expect_gt(ours$k0, 0L)
        expect_identical(ours$side, "right")
        expect_trimfill_agrees(ours, theirs)
        ## the filled studies mirror the largest (here: most negative) ones
        expect_true(all(ours$model$y[ours$fill] > ours$beta[[1L]]))
    }
})

test_that("trimfill matches metafor on the BCG trials, for DL and FE, and on a forced side", {
    skip_if_not_installed("metafor")
    skip_if_not_installed("metadat")
    d <- bias_bcg()
    for (method in c("REML", "DL", "FE")) {
        ours <- if (method == "FE") metafit(yi ~ 1, vi = vi, data = d, method = "FE")
                else metafit(yi ~ 1 + (1 | trial), vi = vi, data = d, method = method)
        theirs <- metafor::rma(yi, vi, data = d, method = method, control = METAFOR_TIGHT)
        for (side in list(NULL, "left", "right")) for (estimator in c("L0", "R0")) {
            a <- trimfill(ours, side = side, estimator = estimator)
            ## metafor's se of L0 is NaN (with a warning) where ours is NA
            b <- suppressWarnings(if (is.null(side))
                     metafor::trimfill(theirs, estimator = estimator, control = METAFOR_TIGHT)
                 else metafor::trimfill(theirs, side = side, estimator = estimator, control = METAFOR_TIGHT))
            expect_trimfill_agrees(a, b)
        }
    }
    ## metafor's choice on BCG: one study missing on the right
    tf <- trimfill(metafit(yi ~ 1 + (1 | trial), vi = vi, data = d))
    expect_identical(c(tf$k0, sum(tf$fill)), c(1L, 1L))
    expect_identical(tf$side, "right")
})

test_that("trimfill keeps the fit's Knapp-Hartung test for the filled data", {
    skip_if_not_installed("metafor")
    skip_if_not_installed("metadat")
    fits <- bias_fit_pair(bias_suppressed(1), test = "knha")
    ours <- trimfill(fits$ours)
    ## metafor 3.8's trimfill() fits the filled data with test "z" unless told
    theirs <- metafor::trimfill(fits$theirs, control = METAFOR_TIGHT, test = "knha")
    expect_identical(ours$test, "knha")
    expect_trimfill_agrees(ours, theirs)
})

test_that("trimfill returns a metafit fit on the augmented data and prints k0 first", {
    skip_if_not_installed("metafor")
    skip_if_not_installed("metadat")
    fit <- metafit(yi ~ 1 + (1 | id), vi = vi, data = bias_suppressed(1))
    tf <- trimfill(fit)
    expect_s3_class(tf, c("metafit_trimfill", "metafit"), exact = TRUE)
    expect_identical(tf$model$k, fit$model$k + tf$k0)
    expect_identical(tf$fill, rep(c(FALSE, TRUE), c(fit$model$k, tf$k0)))
    expect_equal(tf$model$y[!tf$fill], fit$model$y)
    out <- capture.output(print(tf))
    expect_match(out[2L], sprintf("^Estimated number of missing studies on the left side: %d \\(SE = %s\\)$",
                                  tf$k0, formatC(tf$se.k0, digits = 4, format = "f")))
    expect_true(any(grepl("Random-Effects Model (k = ", out, fixed = TRUE)))
    r0 <- capture.output(print(trimfill(fit, estimator = "R0")))
    expect_true(any(grepl("Test of H0: no missing studies on the left side:      p-val = ", r0, fixed = TRUE)))
    ## with no studies missing the fit is the original one
    none <- trimfill(fit, side = "right")
    expect_identical(none$k0, 0L)
    expect_equal(none$beta, fit$beta)
})

test_that("trimfill refuses moderators, other objects and bad arguments", {
    d <- data.frame(yi = c(0.1, 0.5, 0.3, 0.9, 0.4), vi = c(0.01, 0.05, 0.02, 0.1, 0.03), id = 1:5,
                    x = c(1, 2, 3, 4, 5))
    mod <- metafit(yi ~ x + (1 | id), vi = vi, data = d)
    expect_error(trimfill(mod), "without moderators.*x")
    expect_error(trimfill.metafit(data.frame(yi = 1)), "metafit fit")
    fit <- metafit(yi ~ 1 + (1 | id), vi = vi, data = d)
    expect_error(trimfill(fit, side = "up"), "should be one of")
    expect_error(trimfill(fit, estimator = "Q0"), "should be one of")
    expect_error(trimfill(fit, maxiter = 0), "positive number")
    expect_error(trimfill(fit, ilim = c(0, 1)), "unused argument")
})
