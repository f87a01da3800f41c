## The optimum, every time (issue 14): lmmfit's objective is never worse than
## lme4's converged tightly, on random designs (helper-optimum.R), and it does
## not depend on the units of the covariates.
##
## The battery's size is LMMFIT_OPTIMUM_N (default 200, ~30 s on one core; 8
## under LMMFIT_TEST_LEVEL=valgrind, so that make valgrind runs the boundary
## moves and restarts; 0 skips it), its first seed
## LMMFIT_OPTIMUM_SEED (default 1; the seeds are consecutive), its processes
## LMMFIT_OPTIMUM_CORES (default 1), and LMMFIT_OPTIMUM_CSV, when set, is a
## file the cases are written to.  make fuzz runs it at OPTIMUM_N (10,000) cases;
## tools/optimum-battery.R runs it outside testthat and reports more.

test_that("optimum battery: lmmfit is never worse than lme4's tight optimum on random designs", {
    n <- test_count("LMMFIT_OPTIMUM_N", 200L, 8L)
    if (n == 0L) skip("LMMFIT_OPTIMUM_N is 0")
    need_lme4()
    first <- as.integer(Sys.getenv("LMMFIT_OPTIMUM_SEED", "1"))
    cores <- as.integer(Sys.getenv("LMMFIT_OPTIMUM_CORES", "1"))
    cases <- run_battery(seq(first, length.out = n), cores = cores)
    csv <- Sys.getenv("LMMFIT_OPTIMUM_CSV", "")
    if (nzchar(csv)) utils::write.csv(cases, csv, row.names = FALSE)
    outcome <- battery_outcome(cases)
    message(paste(battery_summary(cases), collapse = "\n"))

    expect_identical(nrow(cases), n)
    ## every design is fitted by lmmfit, and worse than lme4 by at most OPTIMUM_TOL
    bad <- cases[outcome %in% c("worse", "lmmfit error"), , drop = FALSE]
    bad <- bad[order(-bad$diff), , drop = FALSE]
    expect(nrow(bad) == 0L, sprintf(
        "%d of %d designs end worse than lme4's optimum by more than %g (or fail), worst first:\n%s%s",
        nrow(bad), n, OPTIMUM_TOL, paste(utils::head(battery_describe(bad), 30), collapse = "\n"),
        if (nrow(bad) > 30) sprintf("\n... and %d more", nrow(bad) - 30) else ""))
    ## the comparison has power: lme4 gives a value for nearly every design
    ## (it may refuse a design lmmfit fits, but not many)
    no_ref <- cases[outcome == "no lme4 value", , drop = FALSE]
    expect(nrow(no_ref) <= n %/% 20, sprintf(
        "lme4 gave no value on %d of %d designs:\n%s", nrow(no_ref), n,
        paste(utils::head(sprintf("seed %d (%s): %s", no_ref$seed, no_ref$formula, no_ref$lme4_error), 10),
              collapse = "\n")))
})

## Changes of units.  Let a covariate column be multiplied by s (> 0).
## * The ML deviance is unchanged at the optimum: the fixed effect absorbs s,
##   and the random-effect columns scaled by s are matched by the relative
##   covariance factor scaled by 1/s (the set of covariance matrices is the
##   same).
## * The REML criterion contains log|X' V^-1 X| (lme4: log|R_X|^2).  With
##   X -> X S, S = diag(1, .., s, .., 1), that is log|S X' V^-1 X S| =
##   log|X' V^-1 X| + 2 log s, and nothing else changes: the criterion rises
##   by 2 log s per rescaled column (checked against lme4 below).
## * A shift x -> x + c, with an intercept in both parts, is X -> X T and
##   Z_i -> Z_i T with T unit triangular: determinant 1, the same optimum.
reml_log_jacobian <- function(scales) 2 * sum(log(scales))

## The powers of ten a covariate is rescaled by (the issue: 1e-8 .. 1e8), and
## the shifts (the issue: up to 1e6).
UNIT_POWERS <- setdiff(seq(-8, 8, by = 2), 0)
UNIT_SHIFTS <- c(1e2, 1e4, 1e6)

## lmmfit's objective on `data` and on each of `changes` (a list of
## list(label, data, log_jacobian)), for REML and ML: a data frame with the
## expected objective (the unchanged fit's, plus the log-Jacobian under REML),
## the one reached, their difference, and what lmmfit said.
units_table <- function(formula, data, changes) {
    rows <- list()
    for (REML in c(FALSE, TRUE)) {
        ref <- lmmfit_quiet(formula, data, REML)
        for (ch in changes) {
            got <- lmmfit_quiet(formula, ch$data, REML)
            expected <- ref$objective + if (REML) ch$log_jacobian else 0
            rows[[length(rows) + 1L]] <- data.frame(
                change = ch$label, REML = REML, expected = expected, objective = got$objective,
                diff = got$objective - expected,
                said = paste(c(if (!is.na(got$error)) paste("error:", got$error), got$warnings), collapse = "; "),
                stringsAsFactors = FALSE)
        }
    }
    do.call(rbind, rows)
}

expect_units_invariant <- function(tab, what) {
    bad <- tab[!(is.finite(tab$diff) & abs(tab$diff) <= OPTIMUM_TOL), , drop = FALSE]
    expect(nrow(bad) == 0L, sprintf(
        "%s: %d of %d changes of units move the %s by more than %g:\n%s", what, nrow(bad), nrow(tab),
        "optimum (ML deviance, or REML criterion less the log-Jacobian)", OPTIMUM_TOL,
        paste(sprintf("  %s, %s: expected %.8f, got %.8f (diff %+.3g)%s", bad$change,
                      ifelse(bad$REML, "REML", "ML"), bad$expected, bad$objective, bad$diff,
                      ifelse(nzchar(bad$said), paste0(" [", bad$said, "]"), "")), collapse = "\n")))
}

test_that("the REML log-Jacobian of a rescaled covariate is 2 log s; a shift changes nothing (lme4)", {
    ## The premise of the units tests, on scales where lme4 itself converges.
    need_lme4()
    ss <- lme4::sleepstudy
    f <- Reaction ~ Days + (Days | Subject)
    for (REML in c(TRUE, FALSE)) {
        base <- lme4_tight(f, ss, REML)
        for (s in c(0.01, 0.1, 10, 100)) {
            d <- ss
            d$Days <- d$Days * s
            change <- lme4_tight(f, d, REML) - base
            expect_lte(abs(change - if (REML) reml_log_jacobian(s) else 0), OPTIMUM_TOL,
                       label = sprintf("lme4's change of objective less the log-Jacobian, Days x %g, REML %s",
                                       s, REML))
        }
        d <- ss
        d$Days <- d$Days + 100
        expect_lte(abs(lme4_tight(f, d, REML) - base), OPTIMUM_TOL,
                   label = sprintf("lme4's change of objective with Days + 100, REML %s", REML))
    }
})

test_that("units: sleepstudy's optimum is the same with Days rescaled by 1e-8 .. 1e8 or shifted by up to 1e6", {
    need_lme4()
    ss <- lme4::sleepstudy
    f <- Reaction ~ Days + (Days | Subject)
    ## the unchanged fit is the optimum
    for (REML in c(FALSE, TRUE))
        expect_lte(lmmfit_quiet(f, ss, REML)$objective - lme4_tight(f, ss, REML), OPTIMUM_TOL)
    rescaled <- lapply(UNIT_POWERS, function(k) {
        d <- ss
        d$Days <- d$Days * 10^k
        list(label = sprintf("Days x 1e%+d", k), data = d, log_jacobian = reml_log_jacobian(10^k))
    })
    shifted <- lapply(UNIT_SHIFTS, function(c) {
        d <- ss
        d$Days <- d$Days + c
        list(label = sprintf("Days + %g", c), data = d, log_jacobian = 0)
    })
    expect_units_invariant(units_table(f, ss, c(rescaled, shifted)), "sleepstudy")
})

test_that("units: a two-slope design's optimum is the same with x and z rescaled or shifted", {
    need_lme4()
    ## Seed 8 of the battery's two-slope kind: 410 rows, an interior optimum
    ## (every diagonal entry of lme4's relative factor above 0.06).
    d <- optimum_design(8, "slope2")
    for (REML in c(FALSE, TRUE))
        expect_lte(lmmfit_quiet(d$formula, d$data, REML)$objective -
                       lme4_tight(d$formula, d$data, REML), OPTIMUM_TOL)
    ## x and z in different units at once: x by 10^k, z by 10^(-k/2)
    rescaled <- lapply(UNIT_POWERS, function(k) {
        dd <- d$data
        dd$x <- dd$x * 10^k
        dd$z <- dd$z * 10^(-k / 2)
        list(label = sprintf("x x 1e%+d, z x 1e%+g", k, -k / 2), data = dd,
             log_jacobian = reml_log_jacobian(c(10^k, 10^(-k / 2))))
    })
    shifted <- lapply(UNIT_SHIFTS, function(c) {
        dd <- d$data
        dd$x <- dd$x + c
        dd$z <- dd$z - c
        list(label = sprintf("x + %g, z - %g", c, c), data = dd, log_jacobian = 0)
    })
    expect_units_invariant(units_table(d$formula, d$data, c(rescaled, shifted)), "two-slope design (seed 8)")
})
