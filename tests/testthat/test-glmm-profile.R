## profile() and confint(method = "profile") of glmmfit models against
## lme4's profile() of glmer fits converged tightly, in the same test.
##
## lme4's profile of a GLMM evaluates -2 log L through getME(fit, "devfun"),
## which builds the criterion with glmerControl()'s default tolPwrss = 1e-7
## whatever the fit's control: its PIRLS then stops short, and its
## criterion is too high by up to ~2e-3 (measured on cbpp: 5.7e-4 at the
## estimates, where a from-scratch Laplace in R agrees with ours to 6e-13),
## which moves its intervals by up to 1.5e-4 relative.  The reference
## profiles below therefore run lme4's own code with that one setting
## tightened to the fit's 1e-13 (a trace on lme4:::devfun2's exit); one
## test compares with the stock profile too.
skip_if_not_installed("lme4")
suppressPackageStartupMessages(library(lme4))

tight_control <- function()
    glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-13,
                 optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-14, xtol_rel = 1e-14, maxeval = 1e5))
## lme4's code evaluated with its profiles' criterion (lme4:::devfun2) as
## tightly converged as the fit's PIRLS
with_tight_lme4 <- function(expr) {
    suppressMessages(trace("devfun2", where = asNamespace("lme4"), print = FALSE,
                           exit = quote(assign("tolPwrss", 1e-13,
                                               envir = environment(environment(returnValue())$d0)))))
    on.exit(suppressMessages(untrace("devfun2", where = asNamespace("lme4"))))
    expr
}
tight_lme4_profile <- function(g, ...) with_tight_lme4(profile(g, ...))

data(cbpp, package = "lme4")
cbpp_formula <- cbind(incidence, size - incidence) ~ period + (1 | herd)
g_cbpp <- glmer(cbpp_formula, data = cbpp, family = binomial, control = tight_control())
f_cbpp <- glmmfit(cbpp_formula, data = cbpp, family = binomial)

test_that("the cbpp profile and its intervals are lme4's (every parameter)", {
    pg <- tight_lme4_profile(g_cbpp)
    pf <- profile(f_cbpp)
    expect_s3_class(pf, c("glmmfit_profile", "lmmfit_profile", "data.frame"))
    expect_identical(names(pf), names(pg))
    expect_identical(levels(pf$.par), c(".sig01", "(Intercept)", "period2", "period3", "period4"))
    ## both follow the same step rule from the same estimates: the same
    ## number of points, at values agreeing to the points' precision (lme4's
    ## per-point optimizer runs at nloptwrap's default tolerances, the fit's
    ## optCtrl not reaching profile(); measured: 6e-7 in the parameters,
    ## 2e-6 in zeta)
    expect_identical(table(pf$.par), table(factor(pg$.par, levels = levels(pf$.par))))
    for (p in levels(pf$.par)) {
        expect_equal(pf[pf$.par == p, p], pg[pg$.par == p, p], tolerance = 1e-5, info = p)
        expect_equal(pf$.zeta[pf$.par == p], pg$.zeta[pg$.par == p], tolerance = 1e-5, info = p)
    }
    ## interpolated by the same splines on those points, the intervals agree
    ## to 1e-6 relative (measured: 4e-9)
    ci <- confint(pf)
    ref <- confint(pg)
    expect_identical(dimnames(ci), dimnames(ref))
    expect_equal(ci, ref, tolerance = 1e-6)
    expect_equal(confint(pf, level = 0.9), confint(pg, level = 0.9), tolerance = 1e-6)
    expect_equal(confint(pf, parm = "beta_"), confint(pg, parm = "beta_"), tolerance = 1e-6)
    expect_equal(confint(pf, parm = 2:3), confint(pg, parm = 2:3), tolerance = 1e-6)
    expect_equal(confint(pf, zeta = c(-1, 1)), confint(pg, zeta = c(-1, 1)), tolerance = 1e-6)
    expect_null(colnames(confint(pf, zeta = c(-1, 1))))
    ## lme4's as.data.frame(): .focal, .par in the profile's order
    df <- as.data.frame(pf)
    dg <- as.data.frame(pg)
    expect_identical(class(df), "data.frame")
    expect_identical(names(df), names(dg))
    expect_identical(levels(df$.par), levels(dg$.par))
    expect_equal(df$.focal, dg$.focal, tolerance = 1e-5)
    ## the linear profile's base-graphics plot
    tf <- tempfile(fileext = ".pdf"); grDevices::pdf(tf)
    expect_invisible(plot(pf))
    grDevices::dev.off(); unlink(tf)
})

test_that("the stock lme4 profile differs from ours only by its PIRLS tolerance", {
    ## lme4 as users run it: its criterion 1e-7-converged (see the top), its
    ## .sig01 interval up to 6.5e-5 relative from ours (measured: 8e-6 lower,
    ## 6.5e-5 upper); 3e-4 is twice the largest difference measured over
    ## all cbpp parameters (1.5e-4)
    ci <- confint(profile(f_cbpp, which = ".sig01"))
    expect_equal(ci, confint(profile(g_cbpp, which = ".sig01")), tolerance = 3e-4)
})

test_that("confint(fit, method = 'profile') reads the profile as lme4's confint()", {
    ci <- confint(f_cbpp, parm = c("period2", ".sig01"), method = "profile")
    ## lme4 profiles and reports in the parameters' order
    expect_identical(rownames(ci), c(".sig01", "period2"))
    expect_equal(ci, confint(profile(f_cbpp, which = c(".sig01", "period2"))), tolerance = 1e-12)
    ## past lme4's default alphamax the profile is extended to the level
    ci999 <- confint(f_cbpp, parm = "period2", level = 0.999, method = "profile")
    expect_true(all(is.finite(ci999)))
    expect_true(ci999[1] < ci[2, 1] && ci999[2] > ci[2, 2])
    expect_null(colnames(confint(f_cbpp, parm = "period2", method = "profile", zeta = c(-1, 1))))
})

test_that("nAGQ = 9 profiles the quadrature criterion as lme4", {
    g9 <- glmer(cbpp_formula, data = cbpp, family = binomial, nAGQ = 9, control = tight_control())
    f9 <- glmmfit(cbpp_formula, data = cbpp, family = binomial, nAGQ = 9)
    which <- c(".sig01", "period2")
    ## as the Laplace fit's: same points, same splines (measured: 5e-10)
    expect_equal(confint(profile(f9, which = which)), confint(tight_lme4_profile(g9, which = which)),
                 tolerance = 1e-6)
    ## and not the Laplace profile
    expect_gt(abs(confint(profile(f9, which = ".sig01"))[2] - confint(profile(f_cbpp, which = ".sig01"))[2]),
              1e-3)
})

test_that("a Poisson profile (grouseticks) is lme4's", {
    data(grouseticks, package = "lme4")
    fo <- TICKS ~ YEAR + cHEIGHT + (1 | BROOD)
    g <- glmer(fo, data = grouseticks, family = poisson, control = tight_control())
    f <- glmmfit(fo, data = grouseticks, family = poisson)
    which <- c(".sig01", "cHEIGHT")
    ## measured 5e-7 relative: lme4's per-point nloptwrap stops at its
    ## default tolerances (the fit's optCtrl does not reach profile()),
    ## which on this larger criterion (403 rows, 118 broods) leaves ~1e-7
    ## in its points; 1e-5 is 20 times that
    expect_equal(confint(profile(f, which = which)), confint(tight_lme4_profile(g, which = which)),
                 tolerance = 1e-5)
})

test_that("a random-slope profile is lme4's where lme4's points are minima", {
    set.seed(1)
    ng <- 20
    d <- data.frame(g = factor(rep(seq_len(ng), each = 8)), x = rep(seq(-1, 1, length.out = 8), ng))
    b0 <- rnorm(ng, 0, 0.5); b1 <- rnorm(ng, 0, 0.4)
    d$y <- rpois(nrow(d), exp(0.5 + 0.3 * d$x + b0[d$g] + b1[d$g] * d$x))
    g <- glmer(y ~ x + (x | g), data = d, family = poisson, control = tight_control())
    f <- glmmfit(y ~ x + (x | g), data = d, family = poisson)
    ## the correlation's profile reaches -1 and flattens there: as lme4's,
    ## its spline cannot be inverted and its limits are read linearly
    which <- c(".sig02", ".sig03")
    pg <- suppressWarnings(tight_lme4_profile(g, which = which))
    expect_warning(pf <- profile(f, which = which), "non-monotonic profile for .sig02")
    expect_warning(ci <- confint(pf), "bad spline fit for .sig02: falling back to linear interpolation")
    ref <- suppressWarnings(confint(pg))
    ## measured: 5e-8 relative (.sig02), 1e-9 (.sig03 upper)
    expect_identical(ci[".sig02", 1], -1)
    expect_equal(ci[".sig02", ], ref[".sig02", ], tolerance = 1e-6)
    expect_equal(ci[".sig03", 2], ref[".sig03", 2], tolerance = 1e-6)
    ## the slope's sd profiled down to 0: there lme4's optimizer (started
    ## at the correlation's bound -1) stops 0.013 above the minimum over the
    ## other parameters, as lme4's own criterion shows at our point; its
    ## last knot, and so its lower limit (2.7e-4 relative), move with it
    sd0 <- function(p) { r <- p[p$.par == ".sig03", ]; unlist(r[r$.sig03 == 0, 2:6]) }
    dd <- with_tight_lme4(lme4:::devfun2(g, useSc = FALSE, signames = TRUE))
    expect_lt(dd(sd0(pf)), dd(sd0(as.data.frame(pg))) - 0.01)
    expect_equal(ci[".sig03", 1], ref[".sig03", 1], tolerance = 1e-3)
})

test_that("an sd estimated at 0 has lower limit 0, as lme4", {
    set.seed(7)
    d <- data.frame(g = factor(rep(1:10, each = 10)), x = rnorm(100))
    d$y <- rbinom(100, 1, plogis(0.2 + 0.5 * d$x))
    g <- suppressMessages(glmer(y ~ x + (1 | g), data = d, family = binomial, control = tight_control()))
    f <- suppressMessages(glmmfit(y ~ x + (1 | g), data = d, family = binomial))
    expect_identical(unname(getME(g, "theta")), 0)
    expect_identical(unname(f$theta), 0)
    which <- c(".sig01", "(Intercept)")
    pf <- profile(f, which = which)
    pg <- tight_lme4_profile(g, which = which)
    ## the profile starts at the bound: no point below it
    expect_identical(min(pf$.sig01[pf$.par == ".sig01"]), 0)
    ci <- confint(pf)
    ref <- confint(pg)
    expect_identical(ci[".sig01", 1], 0)
    expect_identical(ref[".sig01", 1], 0)
    ## measured: 3e-9
    expect_equal(ci[".sig01", 2], ref[".sig01", 2], tolerance = 1e-6)
    ## (Intercept): beyond zeta ~ 2.3 the minimum over the other parameters
    ## jumps from sd = 0 to a second, lower one at sd ~ 0.4, which lme4's
    ## optimizer, warm-started at sd = 0, does not reach: at our first point
    ## there lme4's own criterion confirms our zeta, below lme4's profile
    ## at that value.  The kink then bends both splines differently
    ## (our lower limit 2.2e-2 relative from lme4's), so the fixed effects'
    ## limits are not compared here.
    mine <- pf[pf$.par == "(Intercept)", ]
    jump <- mine[mine$.sig01 > 0.1 & mine$.zeta > 0, ][1L, ]
    dd <- with_tight_lme4(lme4:::devfun2(g, useSc = FALSE, signames = TRUE))
    base <- -2 * c(logLik(g))
    expect_equal(dd(unlist(jump[2:4])) - base, jump$.zeta^2, tolerance = 1e-8)
    theirs <- pg[pg$.par == "(Intercept)", ]
    ## how far below depends on where that first point lands on the grid
    ## (measured: 2.1333 against 2.2500 at (Intercept) = 0.760; an earlier
    ## grid's point at 0.849 had 2.4367 against 2.6675)
    lme4_there <- approx(theirs[["(Intercept)"]], theirs$.zeta, jump[["(Intercept)"]])$y
    expect_lt(jump$.zeta, lme4_there - 0.1)
})

test_that("bad input to profile() and its confint() errors clearly", {
    expect_error(profile(f_cbpp, which = "nope"), "unknown parameter.*nope")
    expect_error(profile(f_cbpp, which = 9), "between 1 and 5")
    expect_error(profile(f_cbpp, alphamax = 0), "alphamax")
    expect_error(profile(f_cbpp, prof.scale = "varcov"), "varcov")
    expect_error(profile(f_cbpp, optimizer = "bobyqa"), "optimizer")
    f0 <- glmmfit(cbpp_formula, data = cbpp, family = binomial, nAGQ = 0)
    expect_error(profile(f0), "nAGQ = 0")
    pf <- profile(f_cbpp, which = "period2")
    expect_error(confint(pf, parm = "nope"), "unknown parameter.*nope")
    expect_error(confint(pf, parm = ".sig01"), "not profiled: .sig01")
    expect_error(confint(pf, parm = 2), "between 1 and 1")
    expect_error(confint(pf, level = 2), "between 0 and 1")
    expect_error(confint(f_cbpp, parm = "nope", method = "profile"), "unknown parameter.*nope")
    expect_error(confint(f_cbpp, method = "Wald", zeta = c(-1, 1)), "zeta")
})

test_that("a fit without fixed effects profiles its one sd (which lme4 cannot)", {
    fo <- cbind(incidence, size - incidence) ~ 0 + (1 | herd)
    g <- glmer(fo, data = cbpp, family = binomial, control = tight_control())
    f <- glmmfit(fo, data = cbpp, family = binomial)
    ## lme4's profile has no other parameter to optimise and fails at every
    ## point (its limits NA); ours evaluates the criterion there
    expect_true(all(is.na(suppressWarnings(confint(tight_lme4_profile(g))))))
    ci <- confint(profile(f))
    ## the limits in lme4's criterion: zeta at them is the normal quantiles
    ## up to the cubic spline's interpolation error between points ~0.5
    ## apart in zeta (measured: 1.3e-4 and 7e-5, 5e-5 relative)
    dd <- with_tight_lme4(lme4:::devfun2(g, useSc = FALSE, signames = TRUE))
    z <- c(-1, 1) * sqrt(vapply(ci[1, ], dd, 0) + 2 * c(logLik(g)))
    expect_equal(unname(z), qnorm(c(0.025, 0.975)), tolerance = 2e-4)
})
