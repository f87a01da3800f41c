## intervals() (R/resid-intervals.R): nlme's intervals() is the oracle.

GLS_TIGHT <- function(...) nlme::glsControl(maxIter = 500, msMaxIter = 500, tolerance = 1e-10, msTol = 1e-12,
                                            returnObject = TRUE, ...)
LME_TIGHT <- function(...) nlme::lmeControl(maxIter = 500, msMaxIter = 500, msMaxEval = 2000, tolerance = 1e-10,
                                            msTol = 1e-12, returnObject = TRUE, ...)

## nlme's apVar is a finite-difference Hessian (fdHess, relative step
## eps^(1/3) ~ 6e-6), whose rounding error moves its standard errors by up
## to 6e-4 (Orthodont) and 2.5e-2 (the spatial fit) when the step becomes
## eps^(1/4); ours (Richardson) moves by < 1e-6 when its step is halved or
## doubled.  With step eps^(1/4) nlme agrees with us to 1.6e-4 in the
## standard errors and 1.3e-4 of an interval's width in its endpoints (max
## over the five cases).  The oracle is nlme at that step; the tolerance,
## on |difference| / width, leaves a factor ~4.
NLME_STEP <- .Machine$double.eps^(1 / 4)
INTERVALS_NLME_TOL <- 5e-4

## The interval tables as a flat list of matrices (reStruct by level).
flat_intervals <- function(iv) {
    out <- list()
    for (nm in names(iv)) {
        if (nm == "reStruct") for (g in names(iv[[nm]])) out[[paste(nm, g)]] <- as.matrix(iv[[nm]][[g]])
        else out[[nm]] <- rbind(unclass(iv[[nm]]))
    }
    lapply(out, function(m) { attr(m, "label") <- NULL; m })
}

## Ours against nlme's: the same blocks, rows and estimates; the endpoints'
## differences over the interval's width.
expect_intervals_agree <- function(ours, theirs, tol = INTERVALS_NLME_TOL) {
    a <- flat_intervals(ours)
    b <- flat_intervals(theirs)
    expect_equal(names(a), names(b))
    for (nm in names(b)) {
        expect_equal(dimnames(a[[nm]]), dimnames(b[[nm]]))
        expect_equal(a[[nm]][, 2L], b[[nm]][, 2L], tolerance = RESID_PAR_TOL)
        w <- b[[nm]][, 3L] - b[[nm]][, 1L]
        expect_lt(max(abs(a[[nm]][, c(1L, 3L)] - b[[nm]][, c(1L, 3L)]) / w), tol)
    }
    expect_equal(attr(ours, "level"), attr(theirs, "level"))
}

test_that("lme: Orthodont with varIdent by Sex and a correlated slope agrees with nlme", {
    O <- nlme::Orthodont
    ours <- lmmfit(distance ~ age + Sex + (age | Subject), O, weights = nlme::varIdent(form = ~ 1 | Sex))
    theirs <- nlme::lme(distance ~ age + Sex, O, random = ~ age | Subject,
                        weights = nlme::varIdent(form = ~ 1 | Sex), control = LME_TIGHT(.relStep = NLME_STEP))
    iv <- intervals(ours)
    expect_s3_class(iv, "intervals.lme")
    expect_intervals_agree(iv, nlme::intervals(theirs))
    ## the containment df: age within subjects (80), Sex between them (25)
    expect_equal(unname(lmmfit:::containment_df(ours)), unname(theirs$fixDF$X))
    ## level and which
    expect_intervals_agree(intervals(ours, level = 0.9, which = "var-cov"),
                           nlme::intervals(theirs, level = 0.9, which = "var-cov"))
    expect_equal(names(intervals(ours, which = "fixed")), "fixed")
    out <- capture.output(print(iv))
    expect_equal(out[1L], "Approximate 95% confidence intervals")
    expect_true(all(c("  Level: Subject ", " Variance function:", " Within-group standard error:") %in% out))
})

test_that("lme: Ovary with corAR1 and corCAR1 agrees with nlme", {
    Ovary <- ovary_plain()
    for (cs in list(nlme::corAR1(form = ~ 1 | Mare), nlme::corCAR1(form = ~ Time | Mare))) {
        ours <- lmmfit(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time) + (1 | Mare), Ovary, correlation = cs)
        theirs <- nlme::lme(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), Ovary, random = ~ 1 | Mare,
                            correlation = cs, control = LME_TIGHT(.relStep = NLME_STEP))
        expect_intervals_agree(intervals(ours), nlme::intervals(theirs))
    }
})

test_that("gls: compound symmetry on Orthodont agrees with nlme (REML and ML)", {
    O <- nlme::Orthodont
    for (reml in c(TRUE, FALSE)) {
        ours <- lmmfit(distance ~ age + Sex, O, REML = reml, correlation = nlme::corCompSymm(form = ~ 1 | Subject))
        theirs <- nlme::gls(distance ~ age + Sex, O, method = if (reml) "REML" else "ML",
                            correlation = nlme::corCompSymm(form = ~ 1 | Subject),
                            control = GLS_TIGHT(.relStep = NLME_STEP))
        iv <- intervals(ours)
        expect_s3_class(iv, "intervals.gls")
        expect_intervals_agree(iv, nlme::intervals(theirs))
        expect_equal(names(intervals(ours, which = "coef")), "coef")
    }
})

test_that("lme: a spatial corExp with nugget agrees with nlme", {
    d <- spatial_sites()
    cs <- nlme::corExp(form = ~ x + y | site, nugget = TRUE)
    ours <- lmmfit(z ~ x + (1 | site), d, correlation = cs)
    theirs <- nlme::lme(z ~ x, d, random = ~ 1 | site, correlation = cs, control = LME_TIGHT(.relStep = NLME_STEP))
    expect_intervals_agree(intervals(ours), nlme::intervals(theirs))
})

test_that("fits without a structure and ar1() fits have nlme's intervals too", {
    O <- nlme::Orthodont
    ours <- lmmfit(distance ~ age + (age | Subject), O)
    theirs <- nlme::lme(distance ~ age, O, random = ~ age | Subject, control = LME_TIGHT(.relStep = NLME_STEP))
    expect_intervals_agree(intervals(ours), nlme::intervals(theirs))
    ## nested grouping factors: nlme's containment df at each level (nlme names
    ## the inner level by its own factor, lmmfit by the term's "Variety:Block")
    Oats <- as.data.frame(nlme::Oats)
    Oats$Block <- factor(as.character(Oats$Block))
    nest <- lmmfit(yield ~ nitro + Variety + (1 | Block / Variety), Oats)
    theirs <- nlme::lme(yield ~ nitro + Variety, Oats, random = ~ 1 | Block / Variety)
    expect_equal(unname(lmmfit:::containment_df(nest)), unname(theirs$fixDF$X))
    expect_equal(names(intervals(nest)$reStruct), c("Block", "Variety:Block"))
    ## ar1() is corAR1 on positions
    Ovary <- ovary_plain()
    a <- lmmfit(follicles ~ sin(2 * pi * Time) + (1 | Mare), Ovary, correlation = ar1(~ 1 | Mare))
    b <- lmmfit(follicles ~ sin(2 * pi * Time) + (1 | Mare), Ovary, correlation = nlme::corAR1(form = ~ 1 | Mare))
    expect_equal(flat_intervals(intervals(a)), flat_intervals(intervals(b)), tolerance = RESID_PAR_TOL)
})

test_that("bad arguments are refused by name", {
    fit <- lmmfit(distance ~ age + (1 | Subject), nlme::Orthodont, weights = nlme::varIdent(form = ~ 1 | Sex))
    expect_error(intervals(fit, level = 2), "'level' must be")
    expect_error(intervals(fit, which = "nope"), "should be one of")
    expect_error(intervals(fit, foo = 1), "unused argument 'foo'")
})
