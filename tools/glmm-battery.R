#!/usr/bin/env Rscript
## Random GLMM designs: binomial (logit; 0/1 responses, or cbind(successes,
## failures) of 1-10 trials) and Poisson (log; sometimes with an
## offset(log(exposure))), with one scalar intercept, a correlated slope, two
## crossed intercepts, nested intercepts ((1 | b) + (1 | a), b within a) or
## a partially crossed pair with a slope; 200-3000 rows, 5-60 levels per
## factor, true random-effect SDs in [0, 1.5] and exactly 0 sometimes
## (singular optima).  Each is fitted by the installed lmmfit's glmmfit()
## (nAGQ = 1), by glmer with its defaults (timed) and by glmer converged
## tightly (nloptwrap with tolerances 1e-14, tolPwrss 1e-13: the reference
## optimum).  Prints every case, how many of glmmfit's fits are better than
## the tight glmer optimum, equal or worse (-2 log L above glmer's by more
## than 1e-6 * |glmer's|), each worse case and each error in full, and the
## median and worst ratio of glmmfit's CPU time to glmer's default fit.
##
##   R_LIBS=/tmp/lib3 Rscript tools/glmm-battery.R [N_DESIGNS] [SEED]
##
## N_DESIGNS defaults to 200, SEED to 1; design i has seed SEED + i - 1 and
## is rebuilt in a session by source("tools/glmm-battery.R") (which defines
## the functions and runs nothing) and glmm_design(seed).
suppressPackageStartupMessages({ library(lmmfit); library(lme4) })

GLMM_TOL <- 1e-6   # relative, on -2 log L
KINDS <- c("intercept", "slope", "crossed", "nested", "partial")

## The design of `seed`: list(seed, kind, family (its name), formula,
## formula_text, data, sds (the true random-effect SDs)).
glmm_design <- function(seed) {
    set.seed(seed)
    kind <- sample(KINDS, 1)
    fam <- sample(c("binomial", "poisson"), 1)
    n <- sample(200:3000, 1)
    nlev <- function() sample(5:60, 1)
    ## SDs uniform on [0, 1.5], a quarter of them exactly 0
    sd <- function(k) { s <- runif(k, 0, 1.5); s[runif(k) < 0.25] <- 0; s }
    d <- data.frame(x = rnorm(n))
    two <- runif(1) < 0.5
    if (two) d$z <- if (runif(1) < 0.5) as.numeric(runif(n) < 0.5) else rnorm(n)
    eta <- runif(1, -1, 1) + runif(1, -1, 1) * d$x + (if (two) runif(1, -1, 1) * d$z else 0)
    ## intercepts (and slopes on x) of the levels `codes` of a factor of nl levels
    re <- function(codes, nl, slope = FALSE) {
        if (!slope) { s <- sd(1); return(list(eta = rnorm(nl, sd = s)[codes], sds = s)) }
        s <- sd(2); r <- runif(1, -0.9, 0.9)
        b <- matrix(rnorm(nl * 2), nl) %*% chol(matrix(c(1, r, r, 1), 2)) * rep(s, each = nl)
        list(eta = b[codes, 1] + b[codes, 2] * d$x, sds = c(s, r))
    }
    ng <- nlev(); g <- sample(ng, n, TRUE)
    sds <- NULL
    add <- function(r, name) { eta <<- eta + r$eta; sds[[name]] <<- r$sds }
    re_text <- switch(kind,
        intercept = { add(re(g, ng), "g"); "(1 | g)" },
        slope = { add(re(g, ng, TRUE), "g"); "(x | g)" },
        crossed = {
            nh <- nlev(); h <- sample(nh, n, TRUE)
            add(re(g, ng), "g"); add(re(h, nh), "h"); "(1 | g) + (1 | h)"
        },
        nested = {
            ## a: 5-30 levels; b: na to 60 levels, each within one a
            na <- sample(5:30, 1); nb <- sample(max(5L, na):60, 1)
            a_of_b <- c(seq_len(na), sample(na, nb - na, TRUE))
            b <- sample(nb, n, TRUE); a <- a_of_b[b]
            d$a <- factor(sprintf("a%02d", a)); d$b <- factor(sprintf("b%02d", b))
            add(re(b, nb), "b"); add(re(a, na), "a"); "(1 | b) + (1 | a)"
        },
        partial = {
            ## each g has a home h, 5-30% of rows elsewhere
            nh <- nlev(); home <- sample(nh, ng, TRUE)
            h <- ifelse(runif(n) < runif(1, 0.05, 0.3), sample(nh, n, TRUE), home[g])
            add(re(g, ng), "g"); add(re(h, nh, TRUE), "h"); "(1 | g) + (x | h)"
        })
    if (kind != "nested") d$g <- factor(sprintf("g%02d", g))
    if (kind %in% c("crossed", "partial")) d$h <- factor(sprintf("h%02d", h))
    fixed <- if (two) "x + z" else "x"
    if (fam == "binomial") {
        if (runif(1) < 0.4) {
            d$trials <- sample(1:10, n, TRUE)
            d$y <- rbinom(n, d$trials, plogis(eta)); d$fail <- d$trials - d$y
            lhs <- "cbind(y, fail)"
        } else {
            d$y <- rbinom(n, 1, plogis(eta)); lhs <- "y"
        }
    } else if (runif(1) < 0.4) {
        d$exposure <- runif(n, 0.2, 5)
        d$y <- rpois(n, d$exposure * exp(eta)); lhs <- "y"
        fixed <- paste(fixed, "+ offset(log(exposure))")
    } else {
        d$y <- rpois(n, exp(eta)); lhs <- "y"
    }
    formula_text <- paste(lhs, "~", fixed, "+", re_text)
    list(seed = seed, kind = kind, family = fam, formula = as.formula(formula_text, env = globalenv()),
         formula_text = formula_text, data = d, sds = sds)
}

GLMER_TIGHT <- glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-13,
                            optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-14, xtol_rel = 1e-14, maxeval = 1e5))
cpu <- function(expr) { t <- system.time(expr); t[["user.self"]] + t[["sys.self"]] }
quiet <- function(expr) tryCatch(suppressMessages(suppressWarnings(expr)), error = function(e) e)
## the same, keeping the first warning (attribute "warning" of the fit)
quiet_warned <- function(expr) {
    first <- NULL
    fit <- tryCatch(withCallingHandlers(suppressMessages(expr), warning = function(w) {
        if (is.null(first)) first <<- conditionMessage(w)
        invokeRestart("muffleWarning")
    }), error = function(e) e)
    if (!inherits(fit, "error")) attr(fit, "warning") <- first
    fit
}
crit <- function(fit) -2 * as.numeric(logLik(fit))
show_theta <- function(th) paste(sprintf("%s = %.6g", names(th), th), collapse = ", ")

## One case: a one-row data frame, and (attribute "detail") the text of a
## worse case or an error, NULL otherwise.
glmm_case <- function(seed) {
    ds <- glmm_design(seed)
    fam <- get(ds$family)()
    ours <- ref <- def <- NULL
    t_ours <- cpu(ours <- quiet_warned(glmmfit(ds$formula, ds$data, family = fam)))
    t_glmer <- cpu(def <- quiet(glmer(ds$formula, ds$data, family = fam)))
    ref <- quiet(glmer(ds$formula, ds$data, family = fam, control = GLMER_TIGHT))
    err_ours <- if (inherits(ours, "error")) conditionMessage(ours) else NA_character_
    err_ref <- if (inherits(ref, "error")) conditionMessage(ref) else NA_character_
    err_def <- if (inherits(def, "error")) conditionMessage(def) else NA_character_
    c_ours <- if (is.na(err_ours)) crit(ours) else NA_real_
    c_ref <- if (is.na(err_ref)) crit(ref) else NA_real_
    c_def <- if (is.na(err_def)) crit(def) else NA_real_
    warn_ours <- if (is.na(err_ours) && !is.null(attr(ours, "warning"))) attr(ours, "warning") else NA_character_
    diff <- c_ours - c_ref
    outcome <- if (!is.na(err_ours)) "lmmfit error" else if (!is.na(err_ref)) "glmer error"
               else if (diff > GLMM_TOL * abs(c_ref)) "worse"
               else if (diff < -GLMM_TOL * abs(c_ref)) "better" else "equal"
    theta_ours <- if (is.na(err_ours)) ours$theta
    theta_ref <- if (is.na(err_ref)) getME(ref, "theta")
    head <- sprintf("seed %d: %s, family %s, n = %d, levels %s", seed, ds$formula_text, ds$family,
                    nrow(ds$data), paste(vapply(Filter(is.factor, ds$data), nlevels, 0L), collapse = "/"))
    detail <- switch(outcome,
        worse = c(head, sprintf("  -2 logLik: glmmfit %.10f, glmer tight %.10f, diff %+.4g (glmer default %.10f)",
                                c_ours, c_ref, diff, c_def),
                  sprintf("  theta glmmfit: %s", show_theta(theta_ours)),
                  sprintf("  theta glmer:   %s", show_theta(theta_ref))),
        "lmmfit error" = c(head, paste("  glmmfit error:", err_ours)),
        "glmer error" = c(head, paste("  glmer (tight) error:", err_ref),
                          sprintf("  -2 logLik: glmmfit %.10f, glmer default %.10f", c_ours, c_def)))
    if (!is.null(detail) && !is.na(warn_ours)) detail <- c(detail, paste("  glmmfit warned:", warn_ours))
    if (!is.na(err_def) && is.null(detail)) detail <- c(head, paste("  glmer (default) error:", err_def))
    structure(data.frame(seed, kind = ds$kind, family = ds$family, cbind = grepl("cbind", ds$formula_text),
                         offset = grepl("offset", ds$formula_text), n = nrow(ds$data),
                         singular = if (is.na(err_ref)) isSingular(ref) else NA,
                         glmmfit = c_ours, glmer = c_ref, diff, outcome, glmer_def = c_def,
                         warned = !is.na(warn_ours),
                         feval = if (is.na(err_ours)) as.integer(ours$optinfo$feval[1]) else NA_integer_,
                         sec = t_ours, sec_glmer = if (is.na(err_def)) t_glmer else NA_real_,
                         stringsAsFactors = FALSE),
              detail = detail)
}

if (sys.nframe() == 0L) {
    args <- commandArgs(TRUE)
    N <- as.integer(if (length(args) >= 1L) args[1] else 200L)
    first <- as.integer(if (length(args) >= 2L) args[2] else 1L)
    if (length(args) > 2L || is.na(N) || N < 1L || is.na(first))
        stop("usage: Rscript tools/glmm-battery.R [n_designs] [seed]")
    details <- list()
    res <- do.call(rbind, lapply(first:(first + N - 1L), function(seed) {
        r <- glmm_case(seed)
        if (!is.null(attr(r, "detail"))) details[[length(details) + 1L]] <<- attr(r, "detail")
        message(sprintf("seed %d %s %s n=%d %s", seed, r$kind, r$family, r$n, r$outcome))
        r
    }))
    res$ratio <- res$sec / pmax(res$sec_glmer, 1e-3)
    print(res)
    if (length(details)) {
        cat("\nworse cases and errors:\n")
        for (dl in details) cat(dl, sep = "\n")
    }
    counts <- table(factor(res$outcome, levels = c("better", "equal", "worse", "lmmfit error", "glmer error")))
    cat("\nglmm battery:", N, "designs from seed", first, "\n")
    cat(sprintf("better: %d  equal: %d  worse (> %g relative): %d  errors: lmmfit %d, glmer %d (glmer default %d)\n",
                counts[["better"]], counts[["equal"]], GLMM_TOL, counts[["worse"]], counts[["lmmfit error"]],
                counts[["glmer error"]], sum(is.na(res$sec_glmer))))
    dd <- res$glmmfit - res$glmer_def; tol <- GLMM_TOL * abs(res$glmer_def)
    cat(sprintf("against glmer default instead: better %d  equal %d  worse %d;  glmmfit warned in %d designs\n",
                sum(dd < -tol, na.rm = TRUE), sum(abs(dd) <= tol, na.rm = TRUE), sum(dd > tol, na.rm = TRUE),
                sum(res$warned)))
    ok <- is.finite(res$ratio) & !is.na(res$glmmfit)
    cat("CPU time glmmfit / glmer default: median", format(median(res$ratio[ok]), digits = 3),
        " worst", format(max(res$ratio[ok]), digits = 3),
        sprintf(" slower than glmer default: %d of %d\n", sum(res$ratio[ok] > 1), sum(ok)))
    cat(sprintf("CPU seconds in all: glmmfit %.1f, glmer default %.1f\n",
                sum(res$sec[ok]), sum(res$sec_glmer[ok])))
    print(aggregate(cbind(ratio, feval) ~ kind + family, res[ok, ], median))
}
