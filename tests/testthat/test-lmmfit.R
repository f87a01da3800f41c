## Fits compared with lme4, fitted in the same test, REML and ML.
##
## lme4 is fitted twice: with its defaults (the objective it reaches is the bar
## our optimizer must clear) and with bobyqa run to rhoend = 1e-12, which lands
## on the exact optimum.  The parameters are compared with the exact optimum:
## lme4's default nloptwrap stops loosely enough that its variance components
## can differ from the optimum by more than 1e-4 relative (the crossed model
## below, ML: 3.7e-4), and testing against that would test lme4's stopping rule.

lmer_exact_control <- function() {
    lme4::lmerControl(optimizer = "bobyqa", calc.derivs = FALSE,
                      optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
}

## Largest relative difference; a zero reference must be matched exactly.
max_rel_diff <- function(x, ref) {
    d <- abs(x - ref)
    max(ifelse(d == 0, 0, d / abs(ref)))
}

## Largest difference of two covariance matrices relative to the standard
## deviations of the reference (relative for variances, about the same as an
## absolute difference of correlations for covariances).
max_cov_diff <- function(V, V0) {
    s <- sqrt(diag(V0))
    d <- abs(V - V0)
    S <- outer(s, s)
    max(ifelse(d == 0, 0, d / S))
}

## `extra`: further arguments as unevaluated expressions, e.g. alist(weights = w),
## evaluated in `data` by model.frame as usual.
expect_matches_lme4 <- function(formula, data, REML, extra = list()) {
    what <- sprintf("%s (%s)%s", deparse1(formula), if (REML) "REML" else "ML",
                    if (length(extra)) paste0(" ", deparse1(extra)) else "")
    fit_with <- function(fun, ...)
        eval(as.call(c(fun, list(formula, data = quote(data), REML = REML), extra, list(...))))
    msgs <- character()
    fit <- withCallingHandlers(fit_with(quote(lmmfit)), message = function(c) {
        msgs <<- c(msgs, conditionMessage(c))
        invokeRestart("muffleMessage")
    })
    ## (lme4's default optimizer and tolerances; calc.derivs only adds the
    ## post-fit gradient check, which does not move the optimum)
    m_def <- suppressWarnings(suppressMessages(
        fit_with(quote(lme4::lmer), control = lme4::lmerControl(calc.derivs = FALSE))))
    m <- suppressMessages(fit_with(quote(lme4::lmer), control = lmer_exact_control()))

    ## the objective: never worse than lme4's (default or exact) by > 1e-6
    expect_lte(fit$deviance_value, lme4_objective(m_def) + 1e-6,
               label = paste(what, "objective vs lme4 default"))
    expect_lte(fit$deviance_value, lme4_objective(m) + 1e-6,
               label = paste(what, "objective vs lme4 exact"))
    expect_lte(abs(fit$deviance_value - lme4_objective(m)), 1e-6,
               label = paste(what, "|objective - lme4 exact|"))

    ## theta, in lme4's order
    th0 <- lme4::getME(m, "theta")
    expect_identical(length(fit$theta), length(th0), label = paste(what, "length(theta)"))
    expect_lte(max(abs(fit$theta - th0) / pmax(1, abs(th0))), 1e-4,
               label = paste(what, "theta"))

    ## fixed effects
    expect_identical(names(fixef(fit)), names(lme4::fixef(m)), label = paste(what, "fixef names"))
    expect_lte(max_rel_diff(fixef(fit), lme4::fixef(m)), 1e-5, label = paste(what, "fixef"))

    ## variance components
    vc <- VarCorr(fit)
    vc0 <- lme4::VarCorr(m)
    expect_identical(names(vc), names(vc0), label = paste(what, "VarCorr names"))
    for (g in intersect(names(vc), names(vc0))) {
        V0 <- vc0[[g]]
        V <- vc[[g]]
        expect_identical(dimnames(V), dimnames(V0)[1:2], label = paste(what, g, "dimnames"))
        expect_lte(max_cov_diff(unclass(V)[, , drop = FALSE], V0[, , drop = FALSE]), 1e-4,
                   label = paste(what, g, "covariance"))
        expect_lte(max_rel_diff(attr(V, "stddev"), attr(V0, "stddev")), 1e-4,
                   label = paste(what, g, "stddev"))
        expect_lte(max(abs(attr(V, "correlation") - attr(V0, "correlation"))), 1e-4,
                   label = paste(what, g, "correlation"))
    }
    expect_lte(max_rel_diff(attr(vc, "sc"), attr(vc0, "sc")), 1e-4, label = paste(what, "attr sc"))
    expect_lte(max_rel_diff(sigma(fit), sigma(m)), 1e-4, label = paste(what, "sigma"))
    df <- as.data.frame(vc)
    df0 <- as.data.frame(vc0)
    expect_identical(df$grp, df0$grp, label = paste(what, "as.data.frame grp"))
    expect_identical(df$var1, df0$var1, label = paste(what, "as.data.frame var1"))
    expect_identical(df$var2, df0$var2, label = paste(what, "as.data.frame var2"))
    isvar <- is.na(df0$var2)
    expect_lte(max_rel_diff(df$vcov[isvar], df0$vcov[isvar]), 1e-4, label = paste(what, "variances"))
    expect_lte(max_rel_diff(df$sdcor[isvar], df0$sdcor[isvar]), 1e-4, label = paste(what, "std devs"))
    if (any(!isvar))
        expect_lte(max(abs(df$sdcor[!isvar] - df0$sdcor[!isvar])), 1e-4,
                   label = paste(what, "correlations"))

    ## vcov of the fixed effects
    V <- vcov(fit)
    V0 <- as.matrix(vcov(m))
    expect_identical(dimnames(V), dimnames(V0), label = paste(what, "vcov dimnames"))
    expect_lte(max_cov_diff(V, V0), 1e-4, label = paste(what, "vcov"))

    ## likelihood summaries and sizes
    ll <- logLik(fit)
    ll0 <- logLik(m)
    expect_lte(abs(as.numeric(ll) - as.numeric(ll0)), 1e-6, label = paste(what, "logLik"))
    expect_identical(attr(ll, "df"), as.integer(attr(ll0, "df")), label = paste(what, "logLik df"))
    expect_identical(as.integer(attr(ll, "nobs")), as.integer(attr(ll0, "nobs")), label = paste(what, "logLik nobs"))
    expect_lte(abs(AIC(fit) - AIC(m)), 1e-6, label = paste(what, "AIC"))
    expect_lte(abs(BIC(fit) - BIC(m)), 1e-6, label = paste(what, "BIC"))
    expect_identical(nobs(fit), nobs(m), label = paste(what, "nobs"))
    expect_equal(ngrps(fit), lme4::ngrps(m), label = paste(what, "ngrps"))
    expect_identical(isSingular(fit), lme4::isSingular(m), label = paste(what, "isSingular"))
    ## lme4's fit-time message on a singular fit, and no other message
    expect_identical(msgs, if (lme4::isSingular(m)) "boundary (singular) fit: see help('isSingular')\n"
                           else character(), label = paste(what, "messages"))
    if (!REML)
        expect_lte(abs(deviance(fit) - deviance(m)), 1e-6, label = paste(what, "deviance"))

    ## fitted values and residuals
    expect_equal(fitted(fit), fitted(m), tolerance = 1e-6, label = paste(what, "fitted"))
    expect_equal(residuals(fit), residuals(m), tolerance = 1e-6, label = paste(what, "residuals"))
    invisible(list(fit = fit, lme4 = m))
}

## --- data --------------------------------------------------------------------

## Three crossed factors (30, 12 and 5 levels), 600 of the 1800 cells, a
## covariate with a random slope on the 12-level factor.
sim_crossed <- function() {
    set.seed(20240601)
    d <- expand.grid(a = factor(1:30), b = factor(1:12), c = factor(1:5))
    d <- d[sample(nrow(d), 600), ]
    rownames(d) <- NULL
    d$x <- rnorm(600)
    ea <- rnorm(30); eb <- rnorm(12, sd = 0.8); ec <- rnorm(5, sd = 0.6); sb <- rnorm(12, sd = 0.4)
    d$y <- 1 + 0.5 * d$x + ea[d$a] + eb[d$b] + sb[d$b] * d$x + ec[d$c] + rnorm(600)
    d
}

## Classes nested in schools, 1 to 4 classes per school, 3 to 9 pupils per school.
sim_nested <- function() {
    set.seed(7)
    d <- data.frame(school = factor(rep(1:15, times = 3 + (1:15 %% 4) * 2)))
    d$class <- factor(paste(d$school, sample(1:3, nrow(d), TRUE), sep = "."))
    d$x <- rnorm(nrow(d))
    d$y <- 2 + d$x + rnorm(15)[d$school] + rnorm(nlevels(d$class), sd = 0.8)[d$class] +
        rnorm(nrow(d), sd = 0.5)
    d
}

## --- tests -------------------------------------------------------------------

test_that("sleepstudy models match lme4 (REML and ML)", {
    need_lme4()
    data("sleepstudy", package = "lme4", envir = environment())
    for (REML in c(TRUE, FALSE)) {
        expect_matches_lme4(Reaction ~ Days + (Days | Subject), sleepstudy, REML)
        expect_matches_lme4(Reaction ~ Days + (Days || Subject), sleepstudy, REML)
        expect_matches_lme4(Reaction ~ Days + (1 | Subject), sleepstudy, REML)
        expect_matches_lme4(Reaction ~ Days + (0 + Days | Subject), sleepstudy, REML)
    }
})

test_that("Penicillin (two crossed intercepts) matches lme4", {
    need_lme4()
    data("Penicillin", package = "lme4", envir = environment())
    for (REML in c(TRUE, FALSE))
        expect_matches_lme4(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin, REML)
})

test_that("Pastes (nested, two spellings) matches lme4 and the spellings agree", {
    need_lme4()
    data("Pastes", package = "lme4", envir = environment())
    for (REML in c(TRUE, FALSE)) {
        a <- expect_matches_lme4(strength ~ 1 + (1 | batch/cask), Pastes, REML)$fit
        b <- expect_matches_lme4(strength ~ 1 + (1 | batch) + (1 | cask:batch), Pastes, REML)$fit
        expect_identical(a$deviance_value, b$deviance_value)
        expect_identical(unname(a$theta), unname(b$theta))
    }
})

test_that("Dyestuff2 is fitted on the boundary (theta exactly 0) as lme4", {
    need_lme4()
    data("Dyestuff2", package = "lme4", envir = environment())
    for (REML in c(TRUE, FALSE)) {
        r <- expect_matches_lme4(Yield ~ 1 + (1 | Batch), Dyestuff2, REML)
        expect_identical(unname(r$fit$theta), 0)
        expect_identical(unname(lme4::getME(r$lme4, "theta")), 0)
        expect_true(isSingular(r$fit))
    }
})

test_that("three crossed factors with a random slope match lme4", {
    need_lme4()
    d <- sim_crossed()
    for (REML in c(TRUE, FALSE)) {
        r <- expect_matches_lme4(y ~ x + (1 | a) + (1 + x | b) + (1 | c), d, REML)
        expect_false(isSingular(r$fit))
    }
})

test_that("an unbalanced nested model matches lme4", {
    need_lme4()
    d <- sim_nested()
    expect_gt(length(unique(table(d$class))), 2L)   # really unbalanced
    for (REML in c(TRUE, FALSE)) {
        r <- expect_matches_lme4(y ~ x + (1 | school/class), d, REML)
        expect_false(isSingular(r$fit))
    }
})

test_that("weights, offsets and subset match lme4", {
    need_lme4()
    data("sleepstudy", package = "lme4", envir = environment())
    ss <- sleepstudy
    set.seed(3)
    ss$w <- runif(nrow(ss), 0.5, 2)
    ss$off <- rnorm(nrow(ss), sd = 5)
    for (REML in c(TRUE, FALSE)) {
        expect_matches_lme4(Reaction ~ Days + (Days | Subject), ss, REML, alist(weights = w))
        expect_matches_lme4(Reaction ~ Days + (Days | Subject), ss, REML, alist(offset = off))
        r <- expect_matches_lme4(Reaction ~ Days + offset(off) + (1 | Subject), ss, REML,
                                 alist(subset = Days >= 2))
        expect_identical(nobs(r$fit), 144L)
    }
})

test_that("the ML deviance of a REML fit is lme4's deviance(REML = FALSE)", {
    need_lme4()
    data("sleepstudy", package = "lme4", envir = environment())
    fit <- lmmfit(Reaction ~ Days + (Days | Subject), sleepstudy)
    m <- lme4::lmer(Reaction ~ Days + (Days | Subject), sleepstudy, control = lmer_exact_control())
    ## lme4: ldL2 + n (1 + log(2 pi pwrss / n)) at the REML estimates
    expect_lte(abs(deviance(fit, REML = FALSE) - deviance(m, REML = FALSE)), 1e-6)
    expect_lte(abs(as.numeric(logLik(fit, REML = FALSE)) - as.numeric(logLik(m, REML = FALSE))), 1e-6)
    expect_identical(deviance(fit, REML = TRUE), fit$deviance_value)
    expect_lte(abs(deviance(fit, REML = TRUE) - lme4::REMLcrit(m)), 1e-6)
})

test_that("the fast model frame equals model.frame() and gives the same fit", {
    need_lme4()
    ss <- lme4::sleepstudy
    f <- Reaction ~ Days + (Days | Subject)
    fr <- lmmfit:::simple_model_frame(lmmfit:::parse_lmm_formula(f)$frame, ss, quote(lmmfit()))
    expect_false(is.null(fr))
    mf <- model.frame(lmmfit:::parse_lmm_formula(f)$frame, ss, drop.unused.levels = TRUE)
    expect_equal(as.list(fr), as.list(mf), ignore_attr = TRUE)
    ## an na.action argument forces model.frame(): same fit either way
    fast <- lmmfit(f, ss)
    slow <- lmmfit(f, ss, na.action = na.omit)
    expect_equal(fast$deviance_value, slow$deviance_value, tolerance = 1e-12)
    expect_equal(fixef(fast), fixef(slow), tolerance = 1e-12)
    expect_equal(fitted(fast), fitted(slow), tolerance = 1e-10)
    ## not taken: missing values, unused levels, expressions, a subset
    d <- ss; d$Reaction[3] <- NA
    expect_null(lmmfit:::simple_model_frame(lmmfit:::parse_lmm_formula(f)$frame, d, quote(lmmfit())))
    d <- ss[ss$Subject != "308", ]
    expect_null(lmmfit:::simple_model_frame(lmmfit:::parse_lmm_formula(f)$frame, d, quote(lmmfit())))
    expect_equal(ngrps(lmmfit(f, d)), c(Subject = 17L))
    g <- log(Reaction) ~ Days + (1 | Subject)
    expect_null(lmmfit:::simple_model_frame(lmmfit:::parse_lmm_formula(g)$frame, ss, quote(lmmfit())))
    expect_null(lmmfit:::simple_model_frame(lmmfit:::parse_lmm_formula(f)$frame, ss,
                                            quote(lmmfit(subset = Days > 0))))
})

test_that("nested and interaction groupings of integer variables are factor interactions, as lme4", {
    need_lme4()
    set.seed(42)
    d <- data.frame(g = rep(1:4, each = 6), h = rep(1:3, 8))
    d$y <- rnorm(24) + rep(rnorm(4), each = 6)
    for (f in list(y ~ 1 + (1 | g/h), y ~ 1 + (1 | g) + (1 | g:h))) {
        fit <- suppressMessages(lmmfit(f, d))
        m <- suppressMessages(lme4::lmer(f, d))
        expect_lte(fit$deviance_value, lme4_objective(m) + 1e-6)
        expect_equal(fit$deviance_value, lme4_objective(m), tolerance = 1e-6)
        expect_equal(unname(ngrps(fit)[c("h:g", "g:h")[c("h:g", "g:h") %in% names(ngrps(fit))]]), 12L)
        expect_equal(fixef(fit), lme4::fixef(m), tolerance = 1e-5)
    }
})

test_that("a large fit holds one n-row copy of the data at most: X, shared by Z when they agree", {
    skip_if_not(capabilities("profmem"))
    set.seed(6)
    n <- 100000L
    d <- data.frame(x = rnorm(n), f = factor(rep_len(seq_len(1000L), n)))
    d$y <- 1 + d$x + rnorm(1000L)[d$f] + rnorm(1000L, sd = 0.5)[d$f] * d$x + rnorm(n)
    out <- tempfile()
    Rprofmem(out, threshold = 4 * n)          # allocations of n integers or more
    fit <- lmmfit(y ~ x + (x | f), d)
    Rprofmem(NULL)
    bytes <- as.numeric(sub(" :.*", "", grep("^[0-9]+ :", readLines(out), value = TRUE)))
    unlink(out)
    ## X (n x 2 doubles) and the C code's one n-integer scratch array (the
    ## rows in order of the first term; the grouping codes are read in place)
    expect_lte(sum(bytes), 8 * 2 * n + 4 * n + 1000)
    expect_identical(fit$reterms[[1]]$Z, fit$X)
    ## and the numbers are those of an unshared, conventionally built fit
    need_lme4()
    l <- suppressWarnings(lme4::lmer(y ~ x + (x | f), d, REML = TRUE))
    expect_lte(fit$deviance_value - lme4::REMLcrit(l), 1e-6)
    expect_equal(unname(fit$beta), unname(lme4::fixef(l)), tolerance = 1e-5)
})

test_that("an optimization's memory does not grow with its number of evaluations", {
    ## two crossed factors: a dense block of order 300, factored by the
    ## package's blocked kernel (panels of 64 columns, ~150 KB each), whose
    ## scratch once came from R_alloc at every evaluation and stayed until
    ## the .Call returned
    set.seed(7)
    n <- 6000L
    d <- data.frame(a = factor(sample(400L, n, TRUE)), b = factor(sample(300L, n, TRUE)))
    d$y <- rnorm(400L)[d$a] + rnorm(300L)[d$b] + rnorm(n)
    fit <- lmmfit(y ~ 1 + (1 | a) + (1 | b), d)
    old <- .Call(lmmfit:::C_lmm_dense_chol_lapack, FALSE)   # the blocked kernel
    on.exit(.Call(lmmfit:::C_lmm_dense_chol_lapack, old))
    out <- tempfile()
    Rprofmem(out, threshold = 50000)
    opt <- .Call(lmmfit:::C_lmm_optimize, fit$xprod, c(1, 1), TRUE, fit$control)
    Rprofmem(NULL)
    sizes <- as.numeric(sub(" :.*", "", grep("^[0-9]+ :", readLines(out), value = TRUE)))
    unlink(out)
    expect_gt(opt$feval, 20L)
    ## the factor (its dense block, 300^2 doubles, and the workspace) and the
    ## deviance memory: a fixed number of allocations, not one per evaluation
    expect_lte(length(sizes), 6L)
    expect_lte(sum(sizes), 3 * 8 * 300^2)
})

test_that("intercept-only terms of a fit share one column of ones", {
    skip_if_not(capabilities("profmem"))
    set.seed(7)
    n <- 100000L
    ## nested (c in b in a): no dense block, whose allocations would pass
    ## the threshold without being n-row copies
    cc <- rep_len(1:3000, n); bb <- (cc - 1L) %% 700L + 1L; aa <- (bb - 1L) %% 50L + 1L
    d <- data.frame(x = rnorm(n), a = factor(aa), b = factor(bb), c = factor(cc))
    d$y <- d$x + rnorm(50)[d$a] + rnorm(700)[d$b] + rnorm(3000)[d$c] + rnorm(n)
    out <- tempfile()
    Rprofmem(out, threshold = 4 * n)
    fit <- suppressMessages(lmmfit(y ~ x + (1 | a) + (1 | b) + (1 | c), d))
    Rprofmem(NULL)
    bytes <- as.numeric(sub(" :.*", "", grep("^[0-9]+ :", readLines(out), value = TRUE)))
    unlink(out)
    ## X (n x 2), one column of ones, the C code's two n-integer arrays (the
    ## rows in order of the first term, then of each later stage in turn)
    expect_lte(sum(bytes), 8 * 2 * n + 8 * n + 2 * 4 * n + 1000)
    expect_identical(fit$reterms[[1]]$Z, fit$reterms[[3]]$Z)
})
