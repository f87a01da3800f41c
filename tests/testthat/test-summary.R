## Accessors and printed output.  Every number printed is parsed back and
## compared with lme4's value (an exact-optimum lme4 fit in the same test):
## it must be that value to the printed digits.  Lines whose layout is fixed
## (criteria, residual quantiles, group counts, correlations) must also read
## exactly as lme4 prints them.

## lme4 at its exact optimum.  Through lmerTest when it is installed (the same
## lme4 fit, plus Satterthwaite df and p-values for summaries that print them).
exact_control <- function() {
    lme4::lmerControl(optimizer = "bobyqa", calc.derivs = FALSE,
                      optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
}
lmer_exact <- function(formula, data, REML = TRUE) {
    if (requireNamespace("lmerTest", quietly = TRUE))
        suppressMessages(lmerTest::lmer(formula, data = data, REML = REML, control = exact_control()))
    else
        suppressMessages(lme4::lmer(formula, data = data, REML = REML, control = exact_control()))
}

## lme4's coefficient table: Estimate, Std. Error, t value.
lme4_coefs <- function(m) {
    b <- lme4::fixef(m)
    se <- sqrt(diag(as.matrix(vcov(m))))
    cbind(Estimate = b, `Std. Error` = se, `t value` = b / se)
}

## The numeric tokens of a printed line, as printed.
num_tokens <- function(line) {
    tok <- strsplit(trimws(line), "[[:space:]]+")[[1]]
    tok[grepl("^-?[0-9]*\\.?[0-9]+(e[-+]?[0-9]+)?$", tok)]
}

## Decimal places of printed numbers ("3.26e-06" has 8).
printed_decimals <- function(tokens) {
    mant <- sub("[eE].*", "", tokens)
    ex <- ifelse(grepl("[eE]", tokens), as.integer(sub(".*[eE]", "", tokens)), 0L)
    ifelse(grepl(".", mant, fixed = TRUE), nchar(sub("^[^.]*\\.", "", mant)), 0L) - ex
}

## Each printed token equals the value to its printed digits (half a unit in
## the last place, plus `rel` relative for the oracle's own uncertainty).
expect_printed_values <- function(tokens, values, label, rel = 1e-6) {
    expect_identical(length(tokens), length(values), label = paste(label, "count"))
    if (length(tokens) != length(values)) return(invisible())
    err <- abs(as.numeric(tokens) - values) - (0.5 * 10^-printed_decimals(tokens) + rel * abs(values))
    expect_lte(max(err), 1e-12, label = sprintf("%s: printed %s for %s", label,
                                                paste(tokens, collapse = " "),
                                                paste(format(values, digits = 10), collapse = " ")))
}

## The lines of a section: those after the line matching `start` (and
## `skip` header lines) up to the first blank line or a line matching `stop`.
section <- function(out, start, skip = 0L, stop = NULL) {
    i <- grep(start, out, fixed = TRUE)[1L]
    if (is.na(i)) return(character())
    rest <- out[-seq_len(i + skip)]
    end <- which(!nzchar(trimws(rest)))
    if (!is.null(stop)) end <- c(end, grep(stop, rest))
    if (length(end)) rest <- rest[seq_len(min(end) - 1L)]
    rest
}

## The numbers lme4's random-effects table shows, in its row order: variance,
## std. dev., correlations with the earlier columns of the term; residual last.
varcorr_numbers <- function(vc, comp = c("Variance", "Std.Dev.")) {
    out <- numeric()
    for (g in names(vc)) {
        V <- vc[[g]]
        sd <- attr(V, "stddev")
        C <- attr(V, "correlation")
        for (i in seq_len(nrow(V)))
            out <- c(out, if ("Variance" %in% comp) V[i, i], if ("Std.Dev." %in% comp) sd[i],
                     if (i > 1L) C[i, seq_len(i - 1L)])
    }
    s <- attr(vc, "sc")
    c(out, if ("Variance" %in% comp) s^2, if ("Std.Dev." %in% comp) s)
}

## Check a summary's printed numbers against an lme4 fit, section by section.
expect_summary_numbers <- function(out, m, label) {
    ## criteria
    if (lme4::isREML(m)) {
        line <- grep("^REML criterion at convergence:", out, value = TRUE)
        expect_length(line, 1L)
        expect_printed_values(num_tokens(sub(".*:", "", line)), lme4::REMLcrit(m),
                              paste(label, "REML criterion"))
    } else {
        crit <- section(out, "AIC", 0L)
        ll <- logLik(m)
        expect_printed_values(num_tokens(crit[1L]),
                              c(AIC(m), BIC(m), as.numeric(ll), deviance(m), df.residual(m)),
                              paste(label, "AIC table"))
    }
    ## scaled residuals
    res <- section(out, "Scaled residuals:", 1L)
    expect_printed_values(num_tokens(res[1L]),
                          unname(quantile(residuals(m, type = "pearson", scaled = TRUE))),
                          paste(label, "scaled residuals"))
    ## random effects
    re <- section(out, "Random effects:", 1L, stop = "^Number of obs")
    expect_printed_values(unlist(lapply(re, num_tokens)), varcorr_numbers(lme4::VarCorr(m)),
                          paste(label, "random effects"))
    ## fixed effects: estimate, std. error, t value from lme4; when the table
    ## has Satterthwaite df and p-values, those from lmerTest (numerical
    ## derivatives there: the df to 1e-5 relative)
    hdr <- out[grep("^Fixed effects:", out)[1L] + 1L]
    fe <- section(out, "Fixed effects:", 1L, stop = "^(---|fit warnings|boundary|optimizer)")
    cf <- lme4_coefs(m)
    expect_identical(length(fe), nrow(cf), label = paste(label, "fixed-effect rows"))
    has_df <- grepl(" df ", paste0(hdr, " "), fixed = TRUE)
    has_p <- grepl("Pr(>|t|)", hdr, fixed = TRUE)
    expect_identical(strsplit(trimws(hdr), " +")[[1]],
                     c("Estimate", "Std.", "Error", if (has_df) "df", "t", "value", if (has_p) "Pr(>|t|)"),
                     label = paste(label, "fixed-effects header"))
    tok <- lapply(fe, num_tokens)
    expect_printed_values(unlist(lapply(tok, `[`, c(1L, 2L, 3L + has_df))),
                          as.vector(t(cf[, 1:3, drop = FALSE])), paste(label, "fixed effects"))
    if (has_df || has_p) {
        need("lmerTest")
        expect_s4_class(m, "lmerModLmerTest")
        ct <- summary(m)$coefficients
        if (has_df)
            expect_printed_values(vapply(tok, `[`, "", 3L), ct[, "df"], paste(label, "Satterthwaite df"),
                                  rel = 1e-5)
        if (has_p) {
            ptok <- vapply(tok, `[`, "", 4L + has_df)
            bound <- grepl("<", fe, fixed = TRUE)
            expect_true(all(ct[bound, "Pr(>|t|)"] < as.numeric(ptok[bound])),
                        label = paste(label, "p-values printed as < bound"))
            if (any(!bound))
                expect_printed_values(ptok[!bound], ct[!bound, "Pr(>|t|)"], paste(label, "p-values"),
                                      rel = 1e-4)
        }
    }
    ## correlation of fixed effects
    p <- nrow(cf)
    if (p > 1L) {
        co <- section(out, "Correlation of Fixed Effects:", 1L, stop = "^(fit warnings|boundary|optimizer)")
        C <- cov2cor(as.matrix(vcov(m)))
        expect_identical(length(co), p - 1L, label = paste(label, "correlation rows"))
        expect_printed_values(unlist(lapply(co, num_tokens)),
                              unlist(lapply(2:p, function(i) C[i, seq_len(i - 1L)])),
                              paste(label, "correlation of fixed effects"))
    }
}

test_that("summary of a REML fit: sections, and numbers equal lme4's", {
    need_lme4()
    data("sleepstudy", package = "lme4", envir = environment())
    fit <- lmmfit(Reaction ~ Days + (Days | Subject), data = sleepstudy)
    m <- lmer_exact(Reaction ~ Days + (Days | Subject), sleepstudy)
    out <- capture.output(summary(fit))
    for (s in c("Linear mixed model fit by REML", "REML criterion at convergence:", "Scaled residuals",
                "Random effects:", "Number of obs: 180, groups:  Subject, 18", "Fixed effects:",
                "Correlation of Fixed Effects:"))
        expect_true(any(grepl(s, out, fixed = TRUE)), label = s)
    expect_false(any(grepl("boundary (singular) fit", out, fixed = TRUE)))
    expect_false(any(grepl("rank deficient", out, fixed = TRUE)))
    expect_false(any(grepl("convergence code", out, fixed = TRUE)))
    expect_true(any(grepl("^Formula: Reaction ~ Days \\+ \\(Days \\| Subject\\)", out)))
    expect_true(any(grepl("^   Data: sleepstudy", out)))
    expect_summary_numbers(out, m, "sleepstudy REML")
})

test_that("summary of an ML fit prints AIC, BIC, logLik, deviance, df.resid as lme4", {
    need_lme4()
    data("sleepstudy", package = "lme4", envir = environment())
    fit <- lmmfit(Reaction ~ Days + (Days | Subject), data = sleepstudy, REML = FALSE)
    m <- lmer_exact(Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE)
    out <- capture.output(summary(fit))
    expect_true(any(grepl("Linear mixed model fit by maximum likelihood", out, fixed = TRUE)))
    expect_false(any(grepl("REML criterion", out, fixed = TRUE)))
    hdr <- grep("AIC", out, value = TRUE)
    expect_length(hdr, 1L)
    expect_identical(strsplit(trimws(hdr), " +")[[1]], c("AIC", "BIC", "logLik", "deviance", "df.resid"))
    expect_summary_numbers(out, m, "sleepstudy ML")
})

test_that("summaries of other models: numbers equal lme4's", {
    need_lme4()
    data("Penicillin", "Pastes", package = "lme4", envir = environment())
    cases <- list(list(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin),
                  list(strength ~ 1 + (1 | batch/cask), Pastes))
    for (cs in cases) for (REML in c(TRUE, FALSE)) {
        fit <- lmmfit(cs[[1]], data = cs[[2]], REML = REML)
        m <- lmer_exact(cs[[1]], cs[[2]], REML)
        out <- capture.output(summary(fit))
        label <- paste(deparse1(cs[[1]]), REML)
        expect_summary_numbers(out, m, label)
        ng <- lme4::ngrps(m)
        expect_true(sprintf("Number of obs: %d, groups:  %s", nobs(m),
                            paste(names(ng), ng, sep = ", ", collapse = "; ")) %in% out, label = label)
    }
})

test_that("the lines with a fixed layout read exactly as lme4 prints them", {
    need_lme4()
    data("sleepstudy", package = "lme4", envir = environment())
    for (REML in c(TRUE, FALSE)) {
        f <- Reaction ~ Days + I(Days^2) + (Days | Subject)
        fit <- lmmfit(f, data = sleepstudy, REML = REML)
        m <- lmer_exact(f, sleepstudy, REML)
        out <- trimws(capture.output(summary(fit)), "right")
        ref <- trimws(capture.output(summary(m)), "right")
        what <- if (REML) "REML" else "ML"
        ## the criteria (one decimal, as lme4)
        if (REML) {
            expect_identical(grep("^REML criterion", out, value = TRUE),
                             grep("^REML criterion", ref, value = TRUE), label = paste(what, "criterion line"))
        } else {
            i <- grep("AIC", out); j <- grep("AIC", ref)
            expect_identical(out[i + 0:1], ref[j + 0:1], label = paste(what, "AIC table"))
        }
        ## scaled residual quantiles
        expect_identical(section(out, "Scaled residuals:", 0L)[1:2], section(ref, "Scaled residuals:", 0L)[1:2],
                         label = paste(what, "scaled residuals"))
        expect_identical(grep("^Number of obs", out, value = TRUE), grep("^Number of obs", ref, value = TRUE))
        ## correlation of fixed effects, with lme4's abbreviations of the names
        expect_identical(section(out, "Correlation of Fixed Effects:", 0L),
                         section(ref, "Correlation of Fixed Effects:", 0L),
                         label = paste(what, "correlation block"))
        ## print(): the criteria as lme4's print() shows them
        pout <- trimws(capture.output(print(fit)), "right")
        pref <- trimws(capture.output(print(m)), "right")
        if (REML) {
            expect_identical(grep("^REML criterion", pout, value = TRUE),
                             grep("^REML criterion", pref, value = TRUE), label = paste(what, "print() criterion"))
        } else {
            i <- grep("AIC", pout); j <- grep("AIC", pref)
            expect_identical(pout[i + 0:1], pref[j + 0:1], label = paste(what, "print() AIC table"))
        }
    }
})

test_that("print() and print(VarCorr()) show lme4's numbers", {
    need_lme4()
    data("sleepstudy", package = "lme4", envir = environment())
    fit <- lmmfit(Reaction ~ Days + (Days | Subject), data = sleepstudy)
    m <- lmer_exact(Reaction ~ Days + (Days | Subject), sleepstudy)
    out <- capture.output(print(fit))
    expect_true(any(grepl("Linear mixed model fit by REML", out, fixed = TRUE)))
    re <- section(out, "Random effects:", 1L, stop = "^Number of obs")
    expect_printed_values(unlist(lapply(re, num_tokens)), varcorr_numbers(lme4::VarCorr(m), "Std.Dev."),
                          "print() random effects")
    i <- grep("^Fixed Effects:", out)
    expect_printed_values(num_tokens(out[i + 2L]), unname(lme4::fixef(m)), "print() fixed effects")
    vout <- capture.output(print(VarCorr(fit)))
    expect_printed_values(unlist(lapply(vout[-1L], num_tokens)),
                          varcorr_numbers(lme4::VarCorr(m), "Std.Dev."), "print(VarCorr())")
    vout <- capture.output(print(VarCorr(fit), comp = c("Variance", "Std.Dev.")))
    expect_printed_values(unlist(lapply(vout[-1L], num_tokens)),
                          varcorr_numbers(lme4::VarCorr(m)), "print(VarCorr(), comp = both)")
    expect_identical(strsplit(trimws(vout[1L]), " +")[[1]], c("Groups", "Name", "Variance", "Std.Dev.", "Corr"))
})

test_that("a singular fit says so in summary() and print()", {
    need_lme4()
    data("Dyestuff2", package = "lme4", envir = environment())
    expect_message(fit <- lmmfit(Yield ~ 1 + (1 | Batch), data = Dyestuff2), "boundary \\(singular\\) fit")
    m <- lmer_exact(Yield ~ 1 + (1 | Batch), Dyestuff2)
    out <- capture.output(summary(fit))
    expect_true("boundary (singular) fit: see help('isSingular')" %in% out)
    expect_true("boundary (singular) fit: see help('isSingular')" %in% capture.output(print(fit)))
    expect_summary_numbers(out, m, "Dyestuff2")
})

test_that("accessors return what lme4's return", {
    need_lme4()
    data("sleepstudy", package = "lme4", envir = environment())
    f <- Reaction ~ Days + (Days | Subject)
    fit <- lmmfit(f, data = sleepstudy)
    m <- lmer_exact(f, sleepstudy)
    expect_s3_class(fit, "lmmfit")
    expect_identical(formula(fit), f)
    expect_identical(nobs(fit), 180L)
    expect_equal(ngrps(fit), c(Subject = 18L))
    expect_equal(df.residual(fit), df.residual(m))
    expect_false(isSingular(fit))
    expect_true(isSingular(fit, tol = 1))          # diagonal theta: 0.97, 0.23
    expect_identical(isSingular(fit, tol = 1), lme4::isSingular(m, tol = 1))

    vc <- VarCorr(fit)
    expect_type(vc, "list")
    expect_identical(names(vc), "Subject")
    expect_identical(dimnames(vc$Subject), list(c("(Intercept)", "Days"), c("(Intercept)", "Days")))
    expect_identical(names(attr(vc$Subject, "stddev")), c("(Intercept)", "Days"))
    expect_equal(attr(vc$Subject, "stddev"), sqrt(diag(unclass(vc$Subject)[, ])), tolerance = 1e-14)
    expect_equal(attr(vc$Subject, "correlation")[2, 1],
                 vc$Subject[2, 1] / prod(attr(vc$Subject, "stddev")), tolerance = 1e-14)
    expect_identical(attr(vc, "sc"), sigma(fit))
    df <- as.data.frame(vc)
    df0 <- as.data.frame(lme4::VarCorr(m))
    expect_identical(names(df), names(df0))
    expect_identical(df$grp, df0$grp)
    expect_identical(df$var1, df0$var1)
    expect_identical(df$var2, df0$var2)
    expect_equal(df$vcov, df0$vcov, tolerance = 1e-4)
    expect_equal(df$sdcor, df0$sdcor, tolerance = 1e-4)

    ## summary object's coefficient table: lme4's columns, and lmerTest's
    ## Satterthwaite df and p-values when present
    cs <- summary(fit)$coefficients
    expect_identical(rownames(cs), names(lme4::fixef(m)))
    expect_equal(cs[, c("Estimate", "Std. Error", "t value")], lme4_coefs(m), tolerance = 1e-4)
    if ("df" %in% colnames(cs)) {
        need("lmerTest")
        ct <- summary(m)$coefficients
        expect_identical(colnames(cs), colnames(ct))
        expect_equal(cs[, "df"], ct[, "df"], tolerance = 1e-5)
        expect_equal(cs[, "Pr(>|t|)"], ct[, "Pr(>|t|)"], tolerance = 1e-4)
    }

    ## fitted values and residuals, response / pearson / scaled
    expect_equal(fitted(fit), fitted(m), tolerance = 1e-6)
    expect_equal(residuals(fit), residuals(m), tolerance = 1e-6)
    expect_equal(residuals(fit, scaled = TRUE), residuals(m, scaled = TRUE), tolerance = 1e-6)
    expect_equal(residuals(fit, type = "pearson"), residuals(m, type = "pearson"), tolerance = 1e-6)
    expect_equal(unname(fitted(fit) + residuals(fit)), sleepstudy$Reaction, tolerance = 1e-12)
})

test_that("weighted fits: pearson residuals and the summary match lme4", {
    need_lme4()
    data("sleepstudy", package = "lme4", envir = environment())
    ss <- sleepstudy
    set.seed(11)
    ss$w <- runif(nrow(ss), 0.5, 2)
    fit <- lmmfit(Reaction ~ Days + (Days | Subject), data = ss, weights = w)
    need("lmerTest")
    m <- suppressMessages(lmerTest::lmer(Reaction ~ Days + (Days | Subject), data = ss, weights = w,
                                         control = exact_control()))
    expect_equal(residuals(fit, type = "pearson"), residuals(m, type = "pearson"), tolerance = 1e-6)
    expect_equal(residuals(fit, type = "pearson", scaled = TRUE),
                 residuals(m, type = "pearson", scaled = TRUE), tolerance = 1e-6)
    out <- capture.output(summary(fit))
    expect_true(any(grepl("^Weights: w", out)))
    expect_summary_numbers(out, m, "weighted sleepstudy")
})

test_that("a model with no fixed effects summarises and prints as lme4's does", {
    need_lme4()
    d <- lme4::sleepstudy
    fit <- lmmfit(Reaction ~ 0 + (1 | Subject), d)
    m <- lme4::lmer(Reaction ~ 0 + (1 | Subject), d)
    ## with no fixed effects the REML criterion is the ML deviance; lme4 then
    ## fits by ML, and its REMLcrit() returns uninitialised memory (seen:
    ## 7.7e218), so its deviance() is the reference
    expect_false(lme4::isREML(m))
    expect_lt(abs(fit$deviance_value - deviance(m)), 1e-6)
    s <- summary(fit)
    expect_identical(dim(s$corr), c(0L, 0L))
    out <- capture.output(print(s))
    expect_true("No fixed effect coefficients" %in% out)
    expect_false(any(grepl("Estimate", out)))
    expect_true("No fixed effect coefficients" %in% capture.output(print(fit)))
    expect_true("No fixed effect coefficients" %in% capture.output(print(m)))
})
