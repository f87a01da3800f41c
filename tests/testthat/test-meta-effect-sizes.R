## effect_sizes() against metafor's escalc: every measure, the continuity
## corrections, the bundled BCG data, and bad input.

## Effect sizes are closed forms: the two computations agree to rounding.
ES_TOL <- 1e-12

expect_escalc <- function(ours, theirs) {
    expect_rel(ours$yi, theirs$yi, tol = ES_TOL)
    expect_rel(ours$vi, theirs$vi, tol = ES_TOL)
}

test_that("the bundled bcg data are the published trials", {
    need("metafor")
    ref <- meta_dat("dat.bcg")
    for (v in c("trial", "year", "tpos", "tneg", "cpos", "cneg", "ablat"))
        expect_identical(as.numeric(bcg[[v]]), as.numeric(ref[[v]]), info = v)
    expect_identical(as.character(bcg$alloc), as.character(ref$alloc))
})

test_that("log risk ratios, odds ratios and risk differences agree with escalc", {
    need("metafor")
    for (m in c("RR", "OR", "RD")) {
        ours <- effect_sizes(m, ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
        theirs <- metafor::escalc(m, ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
        expect_escalc(ours, theirs)
        expect_identical(attr(ours, "measure"), m)
        expect_identical(names(ours), c(names(bcg), "yi", "vi"))
    }
    ## group totals in place of the non-events
    ours <- effect_sizes("OR", ai = tpos, n1i = tpos + tneg, ci = cpos, n2i = cpos + cneg, data = bcg)
    expect_escalc(ours, metafor::escalc("OR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg))
})

test_that("the continuity corrections are escalc's", {
    need("metafor")
    d <- data.frame(a = c(0, 3, 5, 2), b = c(20, 17, 15, 0), c = c(4, 0, 6, 3), d = c(16, 20, 14, 17))
    for (to in c("only0", "all", "if0all"))
        for (m in c("RR", "OR", "RD")) {
            ours <- suppressWarnings(effect_sizes(m, ai = a, bi = b, ci = c, di = d, data = d, to = to, add = 0.5))
            theirs <- suppressWarnings(metafor::escalc(m, ai = a, bi = b, ci = c, di = d, data = d, to = to,
                                                       add = 0.5))
            expect_escalc(ours, theirs)
        }
    ours <- effect_sizes("OR", ai = a, bi = b, ci = c, di = d, data = d, add = 1)
    expect_escalc(ours, metafor::escalc("OR", ai = a, bi = b, ci = c, di = d, data = d, add = 1))
    ## without a correction a zero cell gives an infinite log ratio, as in escalc
    none <- effect_sizes("OR", ai = a, bi = b, ci = c, di = d, data = d, to = "none")
    expect_true(is.infinite(none$yi[1L]))
    expect_equal(none$yi[3L], log(5 * 14 / (15 * 6)))
})

test_that("standardized and raw mean differences and Fisher's z agree with escalc", {
    need("metafor")
    set.seed(23)
    k <- 9
    d <- data.frame(m1 = rnorm(k, 10), m2 = rnorm(k, 9.5), s1 = runif(k, 1, 3), s2 = runif(k, 1, 3),
                    n1 = sample(5:60, k), n2 = sample(5:60, k), r = runif(k, -0.9, 0.9), n = sample(10:200, k))
    for (m in c("SMD", "MD"))
        expect_escalc(effect_sizes(m, m1i = m1, m2i = m2, sd1i = s1, sd2i = s2, n1i = n1, n2i = n2, data = d),
                      metafor::escalc(m, m1i = m1, m2i = m2, sd1i = s1, sd2i = s2, n1i = n1, n2i = n2, data = d))
    expect_escalc(effect_sizes("ZCOR", ri = r, ni = n, data = d),
                  metafor::escalc("ZCOR", ri = r, ni = n, data = d))
    ## Hedges' exact correction against its series 1 - 3 / (4m - 1) at large m
    expect_equal(hedges_correction(1e4), 1 - 3 / (4 * 1e4 - 1), tolerance = 1e-9)
})

test_that("the effect sizes feed metafit: seed 003's BCG model as published", {
    es <- effect_sizes("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
    fit <- metafit(yi ~ 1 + (1 | trial), vi = vi, data = es)
    ## Viechtbauer (2010), J Stat Softw 36(3), section 3.3: tau^2 = 0.3132, mu = -0.7145
    expect_equal(round(fit$tau2, 4), 0.3132)
    expect_equal(round(unname(coef(fit)), 4), -0.7145)
})

test_that("bad input to effect_sizes gets a clear error", {
    expect_error(effect_sizes("XYZ", ri = 0.3, ni = 20), "'measure' must be one of")
    expect_error(effect_sizes("RR", ai = 1, bi = 2, ci = 3), "needs 'di'")
    expect_error(effect_sizes("RR", ai = 1, bi = 2, ci = 3, di = 4, ri = 0.2), "does not take 'ri'")
    expect_error(effect_sizes("RR", ai = 5, n1i = 3, ci = 1, di = 2), "non-negative")
    expect_error(effect_sizes("OR", ai = 1:2, bi = 2, ci = 3, di = 4), "different lengths")
    expect_error(effect_sizes("OR", ai = "1", bi = 2, ci = 3, di = 4), "must be numeric")
    expect_error(effect_sizes("OR", ai = 1, bi = 2, ci = 3, di = 4, add = -1), "'add'")
    expect_error(effect_sizes("SMD", m1i = 1, m2i = 0, sd1i = 0, sd2i = 1, n1i = 5, n2i = 5), "positive")
    expect_error(effect_sizes("SMD", m1i = 1, m2i = 0, sd1i = 1, sd2i = 1, n1i = 1, n2i = 5), "at least 2")
    expect_error(effect_sizes("ZCOR", ri = 1, ni = 20), "strictly between")
    expect_error(effect_sizes("ZCOR", ri = 0.2, ni = 3), "above 3")
    expect_warning(effect_sizes("ZCOR", ri = c(0.2, NA), ni = c(20, 30)), "1 study with missing")
    expect_error(metafit(yi ~ 1 + (1 | trial), vi = vi,
                         data = effect_sizes("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg),
                         level = 1), "'level'")
})
