## lme4's conventions in lmmfit(): `start =` and `control = lmerControl()`,
## each checked against what lme4 does on the same data.

## Relative agreement of REML/ML criteria reached from the same start.
START_DEV_TOL <- 1e-6
## lmmfit's optimum may be lower than lme4's, never higher by more than this.
START_NOT_WORSE_TOL <- 1e-8

## Every condition an expression signals (messages, warnings, the error), and
## its value when it has one.
conditions_of <- function(expr) {
    msgs <- character(); warns <- character(); err <- NULL
    value <- withCallingHandlers(
        tryCatch(expr, error = function(e) { err <<- conditionMessage(e); NULL }),
        warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
        message = function(m) { msgs <<- c(msgs, conditionMessage(m)); invokeRestart("muffleMessage") })
    list(value = value, messages = msgs, warnings = warns, error = err)
}

## lme4's lmer with its optimizer run tightly (the reference optimum).
lmer_tight <- function(formula, data, ...) {
    lme4::lmer(formula, data, ..., control = lme4::lmerControl(
        optimizer = "bobyqa", calc.derivs = FALSE, optCtrl = list(rhoend = 1e-12, maxfun = 1e5)))
}

test_that("start = theta (vector, list, named) reaches lme4's optimum from the same start", {
    need_lme4()
    data(sleepstudy, package = "lme4")
    cases <- list(
        list(f = Reaction ~ Days + (Days | Subject), start = c(1, 0, 1)),
        list(f = Reaction ~ Days + (Days | Subject), start = list(theta = c(0.5, 0.1, 0.2))),
        list(f = Reaction ~ Days + (Days | Subject), start = c(2, -0.5, 0.05)),
        list(f = Reaction ~ Days + (1 | Subject) + (0 + Days | Subject), start = c(0.3, 3)))
    for (REML in c(TRUE, FALSE)) for (cs in cases) {
        info <- paste(deparse1(cs$f), deparse1(cs$start), "REML =", REML)
        fit <- lmmfit(cs$f, sleepstudy, REML = REML, start = cs$start)
        m <- lmer_tight(cs$f, sleepstudy, REML = REML, start = cs$start)
        dev_m <- if (REML) lme4::REMLcrit(m) else deviance(m)
        expect_equal(fit$deviance_value, dev_m, tolerance = START_DEV_TOL, info = info)
        expect_lte(fit$deviance_value, dev_m + START_NOT_WORSE_TOL * abs(dev_m))
        expect_equal(unname(fixef(fit)), unname(lme4::fixef(m)), tolerance = 1e-4, info = info)
    }
    ## a named start is matched by name, whatever its order
    fit0 <- lmmfit(Reaction ~ Days + (Days | Subject), sleepstudy, start = c(1, 0, 1))
    fitn <- lmmfit(Reaction ~ Days + (Days | Subject), sleepstudy,
                   start = c(Subject.Days = 1, `Subject.(Intercept)` = 1, `Subject.Days.(Intercept)` = 0))
    expect_identical(fitn$theta, fit0$theta)
    ## the start is really used: the optimizer begins where it is told
    sol <- lmmfit(Reaction ~ Days + (Days | Subject), sleepstudy, start = fit0$theta)
    expect_equal(sol$theta, fit0$theta, tolerance = 1e-6)
    ## start = getME(, "theta") of an lme4 fit works as in lme4
    m <- lmer_tight(Reaction ~ Days + (Days | Subject), sleepstudy)
    fit <- lmmfit(Reaction ~ Days + (Days | Subject), sleepstudy, start = lme4::getME(m, "theta"))
    expect_lte(fit$deviance_value, lme4::REMLcrit(m) + START_NOT_WORSE_TOL * lme4::REMLcrit(m))
})

test_that("an unnamed start is read in lme4's order of the terms, which may differ from lmmfit's", {
    need_lme4()
    d <- lme4::sleepstudy
    d$fac <- factor(ifelse(d$Days %% 2 == 0, "even", "odd"))
    d$g40 <- factor(rep(1:40, length.out = nrow(d)))
    forms <- list(Reaction ~ Days + (1 | Subject) + (0 + fac | Subject),
                  Reaction ~ Days + (1 | Subject) + (0 + Days | Subject) + (1 | g40),
                  Reaction ~ Days + (1 | Subject) + (0 + fac | Subject) + (1 | g40),
                  Reaction ~ Days + (0 + fac | Subject) + (1 | Subject) + (1 | g40),
                  Reaction ~ Days + (1 | g40) + (Days || Subject))
    for (f in forms) {
        info <- deparse1(f)
        fit <- suppressMessages(lmmfit(f, d))
        ## lme4's theta names, in lme4's order, from its own term structure
        cnms <- lme4::lFormula(f, d)$reTrms$cnms
        lme4_names <- unlist(lapply(seq_along(cnms), function(i) {
            cn <- cnms[[i]]; k <- length(cn)
            unlist(lapply(seq_len(k), function(c) vapply(c:k, function(r)
                if (r == c) paste(names(cnms)[i], cn[r], sep = ".")
                else paste(names(cnms)[i], cn[r], cn[c], sep = "."), "")))
        }))
        expect_identical(names(fit$theta)[lmmfit:::lme4_theta_order(fit$reterms)], lme4_names, info = info)
        ## so lme4's unnamed theta starts where its named theta does
        th <- setNames(seq_along(lme4_names) / 10 + 0.5, lme4_names)
        a <- suppressMessages(lmmfit(f, d, start = th))
        b <- suppressMessages(lmmfit(f, d, start = unname(th)))
        expect_identical(a$theta, b$theta, info = info)
    }
})

test_that("a bad start = is refused with an error naming 'start'", {
    data(sleepstudy, package = "lme4")
    f <- Reaction ~ Days + (Days | Subject)
    expect_error(lmmfit(f, sleepstudy, start = c(1, 0)), "'start' has 2 values; the model has 3 theta")
    expect_error(lmmfit(f, sleepstudy, start = c(1, NA, 1)), "'start' must hold finite values")
    expect_error(lmmfit(f, sleepstudy, start = c(1, 0, Inf)), "'start' must hold finite values")
    expect_error(lmmfit(f, sleepstudy, start = c(1, 0, -0.5)), "'start': the diagonal elements of theta must be >= 0 \\(Subject.Days")
    expect_error(lmmfit(f, sleepstudy, start = c(-1, 0, 1)), "diagonal elements.*Subject.\\(Intercept\\)")
    ## an off-diagonal element may be negative
    expect_s3_class(lmmfit(f, sleepstudy, start = c(1, -0.3, 1)), "lmmfit")
    expect_error(lmmfit(f, sleepstudy, start = "1"), "'start' must be a numeric vector of 3 theta values")
    expect_error(lmmfit(f, sleepstudy, start = list(theta = c(1, 0, 1), fixef = 250)),
                 "'start' as a list must have one component, 'theta'.*'fixef'")
    expect_error(lmmfit(f, sleepstudy, start = list(c(1, 0, 1))), "'start' as a list.*unnamed")
    expect_error(lmmfit(f, sleepstudy, start = c(a = 1, b = 0, c = 1)), "'start' is named but its names")
    ## AR(1) residuals start from their own values: start is refused with correlation
    sleepstudy$time <- sleepstudy$Days
    expect_error(lmmfit(Reaction ~ Days + (1 | Subject), sleepstudy, start = 1,
                        correlation = ar1(~ time | Subject)), "'start' cannot be combined with 'correlation")
})

test_that("control = lmerControl() with lme4's defaults fits as lmmfit_control(), which still works", {
    need_lme4()
    data(sleepstudy, package = "lme4")
    f <- Reaction ~ Days + (Days | Subject)
    fit <- lmmfit(f, sleepstudy)
    fit_l <- lmmfit(f, sleepstudy, control = lme4::lmerControl())
    expect_identical(fit_l$theta, fit$theta)
    expect_identical(fit_l$control, lmmfit_control())
    expect_identical(lmmfit(f, sleepstudy, control = lmmfit_control(maxit = 500L))$control$maxit, 500L)
    ## the convergence tolerances are lmmfit's
    fit_t <- lmmfit(f, sleepstudy, control = lme4::lmerControl(
        check.conv.singular = lme4::.makeCC(action = "message", tol = 1e-3),
        check.conv.grad = lme4::.makeCC(action = "warning", tol = 1e-2)))
    expect_identical(fit_t$control$singular_tol, 1e-3)
    expect_identical(fit_t$control$check_grad_tol, 1e-2)
})

test_that("lmerControl settings lmmfit cannot honour are refused by name, only when not lme4's defaults", {
    need_lme4()
    data(sleepstudy, package = "lme4")
    f <- Reaction ~ Days + (Days | Subject)
    refused <- list(
        optimizer = lme4::lmerControl(optimizer = "bobyqa"),
        optCtrl = lme4::lmerControl(optCtrl = list(maxfun = 10)),
        calc.derivs = lme4::lmerControl(calc.derivs = FALSE),
        restart_edge = lme4::lmerControl(restart_edge = FALSE),
        boundary.tol = lme4::lmerControl(boundary.tol = 0),
        use.last.params = lme4::lmerControl(use.last.params = TRUE),
        check.nobs.vs.rankZ = lme4::lmerControl(check.nobs.vs.rankZ = "warning"),
        check.formula.LHS = lme4::lmerControl(check.formula.LHS = "ignore"),
        check.scaleX = lme4::lmerControl(check.scaleX = "message+rescale"),
        check.conv.hess = lme4::lmerControl(check.conv.hess = "ignore"))
    for (nm in names(refused))
        expect_error(lmmfit(f, sleepstudy, control = refused[[nm]]),
                     paste0("control = lmerControl\\(", nm, ".*cannot honour"), info = nm)
    ## the same settings at lme4's defaults are accepted
    expect_s3_class(lmmfit(f, sleepstudy, control = lme4::lmerControl(
        optimizer = "nloptwrap", calc.derivs = TRUE, check.nobs.vs.rankZ = "ignore",
        check.formula.LHS = "stop", check.conv.grad = "warning")), "lmmfit")
    expect_error(lmmfit(f, sleepstudy, control = lme4::glmerControl()), "glmerControl")
})

test_that("lme4's check.conv.singular and check.conv.grad actions are honoured as lme4 does", {
    need_lme4()
    ## seed 002's design: the group variance is exactly zero (a singular fit)
    set.seed(2)
    d <- data.frame(g = factor(rep(1:10, each = 5)), x = rnorm(50))
    d$y <- 1 + d$x + rnorm(50)
    f <- y ~ x + (1 | g)
    expect_true(lme4::isSingular(suppressMessages(lme4::lmer(f, d))))
    msg <- "boundary \\(singular\\) fit"
    for (a in c("message", "warning", "stop", "ignore")) {
        ctl <- lme4::lmerControl(check.conv.singular = a)
        ours <- tryCatch(withCallingHandlers(lmmfit(f, d, control = ctl),
                                             message = function(m) stop("message: ", conditionMessage(m)),
                                             warning = function(w) stop("warning: ", conditionMessage(w))),
                         error = function(e) conditionMessage(e))
        theirs <- tryCatch(withCallingHandlers(lme4::lmer(f, d, control = ctl),
                                               message = function(m) stop("message: ", conditionMessage(m)),
                                               warning = function(w) stop("warning: ", conditionMessage(w))),
                           error = function(e) conditionMessage(e))
        if (a == "ignore") {
            expect_s3_class(ours, "lmmfit")
            expect_s4_class(theirs, "lmerMod")
        } else {
            expect_match(ours, paste0(if (a != "stop") paste0(a, ": "), msg), info = a)
            expect_match(theirs, paste0(if (a != "stop") paste0(a, ": "), msg), info = a)
        }
    }
    ## a failed gradient check (a tolerance no fit meets) with each action
    fit_i <- lmmfit(Reaction ~ Days + (Days | Subject), lme4::sleepstudy,
                    control = lme4::lmerControl(check.conv.grad = lme4::.makeCC("ignore", tol = 0)))
    expect_s3_class(fit_i, "lmmfit")
    expect_error(lmmfit(Reaction ~ Days + (Days | Subject), lme4::sleepstudy,
                        control = lme4::lmerControl(check.conv.grad = lme4::.makeCC("stop", tol = 0))),
                 "converge")
    expect_error(lmmfit(Reaction ~ Days + (Days | Subject), lme4::sleepstudy,
                        control = lme4::lmerControl(check.conv.grad = lme4::.makeCC("bogus", tol = 2e-3))),
                 "check.conv.grad = list\\(action")
})

## One grouping-factor check: lmmfit with lmerControl(check = action) does
## what lme4 does: the same error or warning text, and a fit with the same
## criterion when it goes on.
expect_check_as_lme4 <- function(check, f, data, actions = c("stop", "warning", "ignore"),
                                 extra = list()) {
    for (a in actions) {
        ctrl <- do.call(lme4::lmerControl, c(setNames(list(a), check), extra))
        info <- paste(check, "=", a)
        ours <- conditions_of(lmmfit(f, data, control = ctrl))
        ref <- conditions_of(lme4::lmer(f, data, control = ctrl))
        expect_identical(ours$error, ref$error, info = info)
        ## lme4's check warnings (not its optimizer's convergence warnings)
        ref_checks <- grep("converge|Hessian|eigenvalue", ref$warnings, value = TRUE, invert = TRUE)
        expect_identical(ours$warnings, ref_checks, info = info)
        if (is.null(ref$error)) {
            expect_s3_class(ours$value, "lmmfit")
            ## lmmfit's optimum is never worse than lme4's
            expect_lte(ours$value$deviance_value, lme4::REMLcrit(ref$value) + 1e-6 * abs(lme4::REMLcrit(ref$value)))
        }
    }
}

test_that("check.nlev.gtr.1, check.nobs.vs.nlev, check.nlev.gtreq.5, check.nobs.vs.nRE as lme4", {
    need_lme4()
    data(sleepstudy, package = "lme4")
    d <- sleepstudy
    d$one <- factor("a")
    d$obs <- factor(seq_len(nrow(d)))
    d$g3 <- factor(rep(1:3, length.out = nrow(d)))
    d$g100 <- factor(rep(1:100, length.out = nrow(d)))
    expect_check_as_lme4("check.nlev.gtr.1", Reaction ~ Days + (1 | one), d)
    ## one level per observation: check.nobs.vs.nRE must be relaxed too for lme4 to fit
    expect_check_as_lme4("check.nobs.vs.nlev", Reaction ~ Days + (1 | obs), d,
                         extra = list(check.nobs.vs.nRE = "ignore"))
    expect_check_as_lme4("check.nobs.vs.nlev", Reaction ~ Days + (1 | obs), d, actions = "stop")
    expect_check_as_lme4("check.nlev.gtreq.5", Reaction ~ Days + (1 | g3), d)
    ## 100 levels x 2 columns = 200 random effects for 180 observations
    expect_check_as_lme4("check.nobs.vs.nRE", Reaction ~ Days + (Days | g100), d)
    ## the defaults: lme4's errors, with lme4's messages
    ours <- conditions_of(lmmfit(Reaction ~ Days + (1 | one), d, control = lme4::lmerControl()))
    expect_identical(ours$error, "grouping factors must have > 1 sampled level")
    ## without lmerControl lmmfit keeps its own checks and messages
    expect_error(lmmfit(Reaction ~ Days + (1 | one), d), "grouping factor 'one' has only one level")
})

test_that("check.rankX: drop with a message, a warning or silently, or stop, as lme4", {
    need_lme4()
    data(sleepstudy, package = "lme4")
    d <- sleepstudy
    d$Days2 <- 2 * d$Days
    f <- Reaction ~ Days + Days2 + (1 | Subject)
    for (a in c("message+drop.cols", "warn+drop.cols", "silent.drop.cols", "stop.deficient")) {
        ctrl <- lme4::lmerControl(check.rankX = a)
        ours <- conditions_of(lmmfit(f, d, control = ctrl))
        ref <- conditions_of(lme4::lmer(f, d, control = ctrl))
        info <- a
        ## lmmfit's text adds the names of the dropped columns to lme4's
        expect_identical(length(ours$messages), length(ref$messages), info = info)
        expect_identical(length(ours$warnings), length(ref$warnings), info = info)
        for (k in seq_along(ref$messages))
            expect_true(startsWith(ours$messages[k], trimws(ref$messages[k])), info = info)
        for (k in seq_along(ref$warnings))
            expect_true(startsWith(ours$warnings[k], ref$warnings[k]), info = info)
        expect_identical(ours$error, ref$error, info = info)
        if (is.null(ref$error)) {
            expect_identical(names(fixef(ours$value)), names(lme4::fixef(ref$value)), info = info)
            expect_equal(ours$value$deviance_value, lme4::REMLcrit(ref$value), tolerance = 1e-6, info = info)
        }
    }
    ## "ignore": lmmfit cannot fit a rank-deficient X, and says so by name
    expect_error(lmmfit(f, d, control = lme4::lmerControl(check.rankX = "ignore")),
                 "check.rankX = \"ignore\"")
    ## ... but a full-rank X fits as usual
    expect_s3_class(lmmfit(Reaction ~ Days + (1 | Subject), d,
                           control = lme4::lmerControl(check.rankX = "ignore")), "lmmfit")
})

test_that("check.scaleX: lme4's warning, error or nothing on badly scaled predictors", {
    need_lme4()
    data(sleepstudy, package = "lme4")
    d <- sleepstudy
    set.seed(3)
    d$big <- rnorm(nrow(d), sd = 1e5)
    f <- Reaction ~ Days + big + (1 | Subject)
    for (a in c("warning", "stop", "ignore")) {
        ctrl <- lme4::lmerControl(check.scaleX = a)
        ours <- conditions_of(lmmfit(f, d, control = ctrl))
        ref <- conditions_of(lme4::lmer(f, d, control = ctrl))
        ref_checks <- grep("converge|Hessian|eigenvalue", ref$warnings, value = TRUE, invert = TRUE)
        expect_identical(ours$error, ref$error, info = a)
        expect_identical(ours$warnings, ref_checks, info = a)
        expect_identical(ours$messages, character(), info = a)
    }
    ## well scaled: no warning from either
    ours <- conditions_of(lmmfit(Reaction ~ Days + (1 | Subject), d, control = lme4::lmerControl()))
    expect_identical(ours$warnings, character())
    ## without lmerControl, lmmfit's own message
    expect_message(lmmfit(f, d), "very different scales")
})
