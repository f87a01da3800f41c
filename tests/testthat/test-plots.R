## The plots draw into a null device and return what they drew: the numbers
## are checked against lm() and lme4 (and nlme for AR(1) residuals).

## Draws `expr` into a null PDF device; returns its value.
drawn <- function(expr) {
    grDevices::pdf(NULL)
    on.exit(grDevices::dev.off())
    expr
}

## lme4 fitted to its optimum tightly, so that comparisons at 1e-6 are fair.
tight_lmer <- function(formula, data, REML = TRUE) {
    lme4::lmer(formula, data = data, REML = REML,
               control = lme4::lmerControl(optimizer = "bobyqa", calc.derivs = FALSE,
                                           optCtrl = list(rhobeg = 0.1, rhoend = 1e-10, maxfun = 1e5)))
}

test_that("plot_lines draws OLS, parallel and free lines: lm's and lme4's coefficients", {
    need_lme4()
    res <- drawn(plot_lines(score ~ hours | school, data = schools))
    expect_named(res$lines, c("ols", "intercept", "slope"))
    ## OLS: one line, lm's
    expect_equal(res$lines$ols[1, ], coef(lm(score ~ hours, data = schools)), tolerance = 1e-12)
    expect_identical(rownames(res$lines$ols), "all")
    ## random intercept: lme4's group coefficients, parallel lines
    m1 <- tight_lmer(score ~ hours + (1 | school), schools)
    c1 <- as.matrix(coef(m1)$school)
    expect_equal(res$lines$intercept, c1, tolerance = 1e-6)
    expect_equal(unname(res$lines$intercept[, "hours"]), rep(lme4::fixef(m1)[["hours"]], 10),
                 tolerance = 1e-6)
    ## random intercept + slope: lme4's, and the slopes differ
    m2 <- tight_lmer(score ~ hours + (hours | school), schools)
    expect_equal(res$lines$slope, as.matrix(coef(m2)$school), tolerance = 1e-6)
    expect_gt(diff(range(res$lines$slope[, "hours"])), 1)
    ## the fits returned are the ones drawn
    expect_equal(as.matrix(coef(res$fits$slope)$school), res$lines$slope, tolerance = 1e-14)
    expect_length(res$colours, 10L)
    expect_identical(names(res$colours), levels(schools$school))
})

test_that("plot_lines: a subset of panels, expressions, REML = FALSE, bad input", {
    need_lme4()
    res <- drawn(plot_lines(y ~ log(x + 20) | p, data = tenclusters, which = "slope",
                            REML = FALSE, legend = FALSE))
    expect_named(res$lines, "slope")
    m <- suppressMessages(tight_lmer(y ~ log(x + 20) + (log(x + 20) | p), tenclusters, REML = FALSE))
    expect_equal(res$lines$slope, as.matrix(coef(m)$p), tolerance = 1e-5)
    expect_error(plot_lines(y ~ x, data = tenclusters), "y ~ x \\| g")
    expect_error(plot_lines(y ~ x | p, data = list()), "'data' must be a data frame")
    expect_error(plot_lines(y ~ x | p, data = tenclusters, which = "quadratic"), "should be one of")
    d <- transform(tenclusters, p = "one")
    expect_error(plot_lines(y ~ x | p, data = d), "at least two levels")
})

test_that("plot(ranef(fit)) draws lme4's conditional modes and intervals", {
    need_lme4()
    fit <- lmmfit(score ~ hours + (hours | school), data = schools)
    res <- drawn(plot(ranef(fit)))
    m <- tight_lmer(score ~ hours + (hours | school), schools)
    ref <- as.data.frame(lme4::ranef(m, condVar = TRUE))
    key <- paste(res$term, res$grp)
    ref <- ref[match(key, paste(ref$term, ref$grp)), ]
    expect_equal(res$condval, ref$condval, tolerance = 1e-6)
    expect_equal(res$condsd, ref$condsd, tolerance = 1e-5)
    z <- qnorm(0.975)
    expect_equal(res$lower, ref$condval - z * ref$condsd, tolerance = 1e-5)
    expect_equal(res$upper, ref$condval + z * ref$condsd, tolerance = 1e-5)
    ## levels drawn in the order of their intercepts, in both panels
    int <- res[res$term == "(Intercept)", ]
    expect_identical(int$grp[order(int$y)], int$grp[order(int$condval)])
    sl <- res[res$term == "hours", ]
    expect_identical(sl$y, int$y[match(sl$grp, int$grp)])
    ## level = 0.5 narrows the intervals
    res50 <- drawn(plot(ranef(fit), level = 0.5))
    expect_equal(res50$upper - res50$condval, qnorm(0.75) * res$condsd, tolerance = 1e-12)
})

test_that("plot(ranef(fit)): crossed factors, uncorrelated terms, no conditional variances", {
    need_lme4()
    data(Penicillin, package = "lme4")
    fit <- lmmfit(diameter ~ 1 + (1 | plate) + (1 | sample), data = Penicillin)
    res <- drawn(plot(ranef(fit)))
    m <- tight_lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin)
    ref <- as.data.frame(lme4::ranef(m, condVar = TRUE))
    ref <- ref[match(paste(res$grpvar, res$grp), paste(ref$grpvar, ref$grp)), ]
    expect_identical(sort(unique(res$grpvar)), c("plate", "sample"))
    expect_equal(res$condval, ref$condval, tolerance = 1e-5)
    expect_equal(res$condsd, ref$condsd, tolerance = 1e-5)

    data(sleepstudy, package = "lme4")
    fit2 <- lmmfit(Reaction ~ Days + (Days || Subject), data = sleepstudy)
    res2 <- drawn(plot(ranef(fit2)))
    m2 <- tight_lmer(Reaction ~ Days + (Days || Subject), sleepstudy)
    ref2 <- as.data.frame(lme4::ranef(m2, condVar = TRUE))
    ref2 <- ref2[match(paste(res2$term, res2$grp), paste(ref2$term, ref2$grp)), ]
    expect_equal(res2$condval, ref2$condval, tolerance = 1e-5)
    expect_equal(res2$condsd, ref2$condsd, tolerance = 1e-5)

    res3 <- drawn(plot(ranef(fit2, condVar = FALSE)))
    expect_equal(res3$condval, res2$condval, tolerance = 1e-14)
    expect_true(all(is.na(res3$lower)))
    expect_error(plot(ranef(fit, drop = TRUE)), "drop = FALSE")
    expect_error(plot(ranef(fit2), level = 2), "'level'")
})

test_that("plot_shrinkage: per-school lm() against lme4's group coefficients", {
    need_lme4()
    fit <- lmmfit(score ~ hours + (hours | school), data = schools)
    res <- drawn(plot_shrinkage(fit))
    expect_identical(res$x, "hours")
    expect_identical(res$group, "school")
    for (lv in levels(schools$school)) {
        expect_equal(res$lm[lv, ], coef(lm(score ~ hours, data = schools, subset = school == lv)),
                     tolerance = 1e-10)
    }
    m <- tight_lmer(score ~ hours + (hours | school), schools)
    expect_equal(res$mixed, as.matrix(coef(m)$school), tolerance = 1e-6)
    expect_equal(res$population, lme4::fixef(m), tolerance = 1e-6)
    expect_equal(as.vector(res$n), rep(20L, 10))
    ## shrinkage: every school's mixed estimate is nearer the population
    ## (in the metric of the random-effects covariance) than its own lm's
    S <- solve(as.matrix(lme4::VarCorr(m)$school))
    dist <- function(M) apply(sweep(M, 2, res$population), 1, function(v) drop(v %*% S %*% v))
    expect_true(all(dist(res$mixed) < dist(res$lm)))
})

test_that("plot_shrinkage: a subject-level covariate joins the intercept; groups; bad input", {
    need_lme4()
    ids <- levels(trial$id)[1:150]
    d <- droplevels(trial[trial$id %in% ids, ])
    fit <- lmmfit(y ~ time + treatment + (time | id), data = d)
    sel <- ids[1:40]
    res <- drawn(plot_shrinkage(fit, groups = sel))
    expect_identical(rownames(res$lm), sel)
    expect_identical(res$x, "time")
    for (lv in sel[1:10])
        expect_equal(res$lm[lv, ], coef(lm(y ~ time, data = d, subset = id == lv)), tolerance = 1e-10)
    m <- tight_lmer(y ~ time + treatment + (time | id), d)
    cm <- as.matrix(coef(m)$id)[sel, ]
    treated <- as.vector(tapply(d$treatment == "treatment", d$id, mean)[sel])
    expect_equal(unname(res$mixed[, "(Intercept)"]), unname(cm[, "(Intercept)"] + cm[, "treatmenttreatment"] * treated),
                 tolerance = 1e-6)
    expect_equal(unname(res$mixed[, "time"]), unname(cm[, "time"]), tolerance = 1e-6)
    b <- lme4::fixef(m)
    expect_equal(unname(res$population),
                 c(b[["(Intercept)"]] + b[["treatmenttreatment"]] * mean(tapply(d$treatment == "treatment", d$id, mean)),
                   b[["time"]]), tolerance = 1e-6)

    ## a subject with one observation has no least-squares line
    d1 <- d[-which(d$id == ids[1])[-1], ]
    fit1 <- lmmfit(y ~ time + treatment + (time | id), data = d1)
    expect_message(res1 <- drawn(plot_shrinkage(fit1, groups = ids[1:5])), "1 group\\(s\\)")
    expect_identical(rownames(res1$lm), ids[2:5])

    expect_error(plot_shrinkage(fit, x = "treatmenttreatment"), "constant within the groups")
    expect_error(plot_shrinkage(fit, x = "age"), "must name a fixed-effect column")
    expect_error(plot_shrinkage(fit, groups = "nobody"), "'groups' has levels not in id")
    expect_error(plot_shrinkage(lm(y ~ time, d)), "lmmfit")
    data(Penicillin, package = "lme4")
    fitp <- lmmfit(diameter ~ 1 + (1 | plate) + (1 | sample), data = Penicillin)
    expect_error(plot_shrinkage(fitp), "several grouping factors")
})

test_that("plot(fit): residuals, fitted values and Q-Q points are lme4's", {
    need_lme4()
    fit <- lmmfit(score ~ hours + (hours | school), data = schools)
    res <- drawn(plot(fit))
    m <- tight_lmer(score ~ hours + (hours | school), schools)
    expect_equal(unname(res$fitted), unname(fitted(m)), tolerance = 1e-6)
    expect_equal(unname(res$residuals), unname(residuals(m, type = "pearson")), tolerance = 1e-5)
    n <- nrow(schools)
    expect_equal(res$qq_residuals$x, qnorm(ppoints(n))[rank(res$residuals, ties.method = "first")],
                 tolerance = 1e-12)
    expect_named(res$qq_ranef, c("school: (Intercept)", "school: hours"))
    re <- lme4::ranef(m)$school
    expect_equal(unname(res$qq_ranef[["school: hours"]]$y), re$hours, tolerance = 1e-5)
    expect_equal(unname(res$qq_ranef[["school: (Intercept)"]]$y), re[["(Intercept)"]], tolerance = 1e-5)

    one <- drawn(plot(fit, which = 2))
    expect_null(one$qq_ranef)
    expect_null(one$fitted)
    expect_error(plot(fit, which = 4), "subset of 1:3")
})

test_that("plot(fit) with AR(1) residuals draws nlme's normalized residuals", {
    data(Orthodont, package = "nlme")
    d <- as.data.frame(Orthodont)
    fit <- lmmfit(distance ~ age + Sex + (1 | Subject), data = d, correlation = ar1(~ 1 | Subject))
    res <- drawn(plot(fit, which = 1:2))
    n <- nlme::lme(distance ~ age + Sex, random = ~ 1 | Subject, data = d,
                   correlation = nlme::corAR1(form = ~ 1 | Subject))
    expect_equal(unname(res$residuals), as.vector(residuals(n, type = "normalized")), tolerance = 1e-6)
    expect_equal(unname(res$fitted), as.vector(fitted(n)), tolerance = 1e-6)
})
