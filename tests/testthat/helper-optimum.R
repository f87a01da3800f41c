## The optimum battery (issue 14): random designs of the kinds users bring,
## each fitted by lmmfit and by lme4 converged tightly (the better of two
## optimizers), so that "lmmfit's optimum is never worse than lme4's" is
## checked on thousands of designs and not only on the documented examples.
## Used by test-optimum.R and by tools/optimum-battery.R (which sources this
## file, so everything here calls lmmfit and lme4 with `::`).

## lmmfit is "worse" ("better") than lme4 when its objective is above (below)
## lme4's best by more than this, on the deviance scale (-2 log L).  It is the
## issue's criterion: far above the rounding error of a deviance in the
## thousands (~1e-12) and of lme4's tight optimum (~1e-9), far below any
## difference that changes an estimate a user reads.
OPTIMUM_TOL <- 1e-6

## The kinds of design and how often battery_case() draws each: the issue's
## two random-slope formulas, and crossed and nested variants of them.
OPTIMUM_KIND_PROB <- c(slope1 = 0.3, slope2 = 0.3, crossed = 0.2, nested = 0.2)

## The issue's ranges: 20-80 groups of 1-40 rows, random-effect SDs between
## 0.01 and 1 (drawn log-uniformly), residual SD 1.
OPTIMUM_GROUPS <- 20:80
OPTIMUM_MAX_GROUP_SIZE <- 40L
OPTIMUM_SD_RANGE <- c(0.01, 1)

## Evaluates `expr` with the RNG seeded by `seed` (R's default generators,
## whatever the session's RNGkind), and restores the caller's RNG state.
with_rng_seed <- function(seed, expr) {
    had <- exists(".Random.seed", envir = globalenv(), inherits = FALSE)
    old_seed <- if (had) get(".Random.seed", envir = globalenv())
    old_kind <- RNGkind()
    on.exit({
        do.call(RNGkind, as.list(old_kind))
        if (had) assign(".Random.seed", old_seed, envir = globalenv())
        else if (exists(".Random.seed", envir = globalenv(), inherits = FALSE))
            rm(".Random.seed", envir = globalenv())
    })
    set.seed(seed, kind = "Mersenne-Twister", normal.kind = "Inversion", sample.kind = "Rejection")
    expr
}

## Row counts of `ng` groups, each 1..OPTIMUM_MAX_GROUP_SIZE, in one of three
## patterns: uniform, skewed towards small groups (most users' data), or a
## few large groups among many tiny ones (the hardest for the slopes).
draw_group_sizes <- function(ng) {
    m <- OPTIMUM_MAX_GROUP_SIZE
    switch(sample(c("uniform", "skewed", "few_large"), 1),
           uniform = sample.int(m, ng, replace = TRUE),
           skewed = pmin(m, 1L + stats::rgeom(ng, prob = stats::runif(1, 0.04, 0.4))),
           few_large = ifelse(stats::runif(ng) < 0.2, sample(25:m, ng, replace = TRUE),
                              sample(1:4, ng, replace = TRUE)))
}

## A slope covariate for rows in groups `g` (integer codes, `sizes` rows
## each): independent normal, a within-group time index (sleepstudy's Days),
## or with a between-group component; sometimes shifted off zero and
## rescaled, as covariates in user units are.
draw_covariate <- function(g, sizes) {
    n <- length(g)
    x <- switch(sample(c("normal", "time", "between"), 1),
                normal = stats::rnorm(n),
                time = sequence(sizes) - 1,
                between = stats::rnorm(length(sizes), sd = stats::runif(1, 0.5, 2))[g] + stats::rnorm(n))
    if (stats::runif(1) < 0.3) x <- x + stats::runif(1, -10, 10)
    if (stats::runif(1) < 0.3) x <- x * 10^stats::runif(1, -1, 1)
    x
}

## A second covariate: independent, correlated with `x` (|r| up to 0.9), or
## a 0/1 indicator (a treatment within groups).
draw_second_covariate <- function(x) {
    n <- length(x)
    switch(sample(c("independent", "correlated", "indicator"), 1),
           independent = stats::rnorm(n),
           correlated = {
               r <- stats::runif(1, -0.9, 0.9)
               sx <- stats::sd(x)
               xs <- if (is.finite(sx) && sx > 0) (x - mean(x)) / sx else stats::rnorm(n)
               r * xs + sqrt(1 - r^2) * stats::rnorm(n)
           },
           indicator = as.numeric(stats::runif(n) < stats::runif(1, 0.2, 0.8)))
}

## Random effects of `ng` groups for `q` correlated terms: SDs log-uniform in
## OPTIMUM_SD_RANGE; uncorrelated half of the time, else a random correlation
## matrix (scaled Wishart, so correlations near +-1 occur too).
draw_random_effects <- function(ng, q) {
    sds <- exp(stats::runif(q, log(OPTIMUM_SD_RANGE[1]), log(OPTIMUM_SD_RANGE[2])))
    corr <- diag(q)
    if (q > 1 && stats::runif(1) < 0.5) corr <- stats::cov2cor(crossprod(matrix(stats::rnorm(q * q), q)))
    b <- matrix(stats::rnorm(ng * q), ng, q) %*% chol(corr)
    sweep(b, 2L, sds, `*`)
}

## One random design: list(seed, kind, formula, formula_text, REML, data).
## `kind` is one of names(OPTIMUM_KIND_PROB), or NULL to draw it from `seed`.
##   slope1:  y ~ x + (x | g)
##   slope2:  y ~ x + z + (x + z | g)
##   crossed: y ~ x + (x | g) + (1 | h), h crossed with g (5-30 levels)
##   nested:  y ~ x + (x | g) + (1 | g:h) or y ~ x + (1 | g/h), 1-4 h per g
## The response has the random effects of the formula fitted (SDs drawn as
## above), fixed effects 1, 1 (, -0.5) and residual SD 1; REML or ML.
optimum_design <- function(seed, kind = NULL) {
    with_rng_seed(seed, {
        if (is.null(kind)) kind <- sample(names(OPTIMUM_KIND_PROB), 1, prob = OPTIMUM_KIND_PROB)
        kind <- match.arg(kind, names(OPTIMUM_KIND_PROB))
        nested_slash <- kind == "nested" && stats::runif(1) < 0.5
        ## the g term: intercept, x (and z)
        q <- if (nested_slash) 1L else if (kind == "slope2") 3L else 2L
        ng <- sample(OPTIMUM_GROUPS, 1)
        ## more rows than random effects in the g term: lmer and lmmfit refuse
        ## a model with fewer (the parameters are not identifiable)
        repeat {
            sizes <- draw_group_sizes(ng)
            if (sum(sizes) > q * ng) break
        }
        g <- rep(seq_len(ng), sizes)
        n <- length(g)
        x <- draw_covariate(g, sizes)
        z <- if (kind == "slope2") draw_second_covariate(x)
        Zg <- if (nested_slash) matrix(1, n, 1) else cbind(1, x, z)
        bg <- draw_random_effects(ng, ncol(Zg))
        y <- 1 + x + (if (!is.null(z)) -0.5 * z else 0) + rowSums(Zg * bg[g, , drop = FALSE]) + stats::rnorm(n)
        formula_text <- switch(kind,
                               slope1 = "y ~ x + (x | g)",
                               slope2 = "y ~ x + z + (x + z | g)",
                               crossed = "y ~ x + (x | g) + (1 | h)",
                               nested = if (nested_slash) "y ~ x + (1 | g/h)" else "y ~ x + (x | g) + (1 | g:h)")
        h <- NULL
        if (kind == "crossed") {
            nh <- sample(5:30, 1)
            h <- sample.int(nh, n, replace = TRUE, prob = stats::rexp(nh))   # unbalanced
            y <- y + draw_random_effects(nh, 1L)[h]
        } else if (kind == "nested") {
            per_group <- sample(1:4, ng, replace = TRUE)
            ## fewer g:h levels than rows, as for g
            repeat {
                h <- unlist(lapply(seq_len(ng), function(j) sample.int(per_group[j], sizes[j], replace = TRUE)))
                gh <- interaction(g, h, drop = TRUE)
                if (nlevels(gh) < n) break
            }
            y <- y + draw_random_effects(nlevels(gh), 1L)[as.integer(gh)]
        }
        data <- data.frame(y = y, x = x, g = factor(sprintf("g%02d", g)))
        if (!is.null(z)) data$z <- z
        if (!is.null(h)) data$h <- factor(sprintf("h%02d", h))
        if (stats::runif(1) < 0.5) data <- data[sample.int(n), , drop = FALSE]   # rows in any order
        rownames(data) <- NULL
        list(seed = seed, kind = kind, formula = stats::as.formula(formula_text, env = globalenv()),
             formula_text = formula_text, REML = stats::runif(1) < 0.5, data = data)
    })
}

## lme4's two optimizers, with tolerances far below lme4's defaults (1e-8
## on theta for nloptwrap, rhoend 2e-7 for bobyqa): each stops only when its
## steps in theta are below 1e-14 (nloptwrap) or 1e-12 (bobyqa), where the
## deviance no longer changes in double precision, or at 1e5 evaluations
## (not reached in the battery: a median of ~400 for both runs together, at
## most ~16,000 in 300 designs).
LME4_TIGHT_OPTIMIZERS <- list(
    nlopt = list(optimizer = "nloptwrap",
                 optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-14, xtol_rel = 1e-14, maxeval = 1e5)),
    bobyqa = list(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5)))

## lme4 converged tightly: one model, optimized from lme4's default start by
## nloptwrap (BOBYQA from NLopt) and by minqa's bobyqa (LME4_TIGHT_OPTIMIZERS).
## Returns the lower of the two objectives: the REML criterion (REML) or the
## deviance (ML), what lme4_objective() reads from a fitted model; NA when
## neither optimizer gave a value.  Attributes: "by_optimizer" (both values),
## "feval" (evaluations, both runs) and "error" (NA, or what lme4 said).
## Built with lme4's modular functions (lFormula, mkLmerDevfun, optimizeLmer,
## as lmer() runs them; the values agree with lmer() with these controls to
## the last bit) so that the model is set up once for both optimizers;
## restart_edge and the boundary check are lmer()'s defaults, and every check
## that could stop or warn is off.
lme4_tight <- function(formula, data, REML) {
    quiet <- lme4::lmerControl(calc.derivs = FALSE, check.conv.singular = "ignore",
                               check.conv.grad = "ignore", check.conv.hess = "ignore",
                               check.nobs.vs.nlev = "ignore", check.nobs.vs.nRE = "ignore",
                               check.nlev.gtreq.5 = "ignore", check.scaleX = "ignore")
    result <- function(values, feval, error) {
        best <- if (any(is.finite(values))) min(values[is.finite(values)]) else NA_real_
        structure(best, by_optimizer = values, feval = feval, error = error)
    }
    values <- vapply(LME4_TIGHT_OPTIMIZERS, function(o) NA_real_, 0)
    setup <- tryCatch({
        lf <- lme4::lFormula(formula, data = data, REML = REML, control = quiet)
        devfun <- do.call(lme4::mkLmerDevfun, lf)
        ## `+ 0`: a copy; lme4's C++ code overwrites the vectors it is given
        list(devfun = devfun, start = environment(devfun)$pp$theta + 0)
    }, error = function(e) e)
    if (inherits(setup, "error")) return(result(values, NA_integer_, conditionMessage(setup)))
    feval <- 0L
    errors <- character(0)
    for (name in names(LME4_TIGHT_OPTIMIZERS)) {
        o <- LME4_TIGHT_OPTIMIZERS[[name]]
        ## start: (a copy of) the default start saved before the first run,
        ## as the model's state is where the previous optimizer left it
        opt <- tryCatch(suppressWarnings(suppressMessages(
            lme4::optimizeLmer(setup$devfun, optimizer = o$optimizer, restart_edge = quiet$restart_edge,
                               boundary.tol = quiet$boundary.tol, start = setup$start + 0,
                               control = o$optCtrl))),
            error = function(e) e)
        if (inherits(opt, "error")) {
            errors <- c(errors, paste0(name, ": ", conditionMessage(opt)))
            next
        }
        values[[name]] <- setup$devfun(opt$par)
        feval <- feval + (if (is.null(opt$feval)) NA_integer_ else as.integer(opt$feval))
    }
    result(values, feval, if (length(errors)) paste(errors, collapse = "; ") else NA_character_)
}

## Elapsed and CPU (user + system) seconds so far: CPU time is the fairer
## measure on a machine shared with other work.
battery_clock <- function() {
    p <- proc.time()
    c(elapsed = p[["elapsed"]], cpu = p[["user.self"]] + p[["sys.self"]])
}

## lmmfit's fit of `formula`, its messages (the singular-fit note) muffled
## and its warnings collected: list(fit, objective, warnings, error, seconds)
## (seconds: elapsed and cpu).
lmmfit_quiet <- function(formula, data, REML) {
    warnings <- character(0)
    t0 <- battery_clock()
    fit <- tryCatch(withCallingHandlers(
        lmmfit::lmmfit(formula, data = data, REML = REML),
        warning = function(w) {
            warnings <<- c(warnings, conditionMessage(w))
            invokeRestart("muffleWarning")
        },
        message = function(m) invokeRestart("muffleMessage")),
        error = function(e) e)
    seconds <- battery_clock() - t0
    if (inherits(fit, "error"))
        return(list(fit = NULL, objective = NA_real_, warnings = warnings,
                    error = conditionMessage(fit), seconds = seconds))
    list(fit = fit, objective = fit$deviance_value, warnings = warnings, error = NA_character_,
         seconds = seconds)
}

## One case of the battery: the design of `seed` fitted by lmmfit and by
## lme4_tight().  A one-row data frame: the design (seed, kind, formula,
## REML, n, groups), both objectives and their difference (lmmfit - lme4;
## positive = lmmfit worse), what lmmfit said (warned, its first warning, an
## error), the evaluation counts and the times in seconds (elapsed, and cpu).
battery_case <- function(seed, kind = NULL) {
    d <- optimum_design(seed, kind)
    ours <- lmmfit_quiet(d$formula, d$data, d$REML)
    t0 <- battery_clock()
    ref <- lme4_tight(d$formula, d$data, d$REML)
    lme4_seconds <- battery_clock() - t0
    feval <- if (!is.null(ours$fit)) ours$fit$optinfo$feval
    data.frame(seed = seed, kind = d$kind, formula = d$formula_text, REML = d$REML,
               n = nrow(d$data), groups = nlevels(d$data$g),
               lmmfit = ours$objective, lme4 = as.numeric(ref), diff = ours$objective - as.numeric(ref),
               lme4_nlopt = attr(ref, "by_optimizer")[["nlopt"]],
               lme4_bobyqa = attr(ref, "by_optimizer")[["bobyqa"]],
               warned = length(ours$warnings) > 0,
               warning = if (length(ours$warnings)) ours$warnings[1] else NA_character_,
               lmmfit_error = ours$error, lme4_error = attr(ref, "error"),
               lmmfit_feval = if (is.null(feval)) NA_integer_ else as.integer(feval),
               lme4_feval = attr(ref, "feval"),
               lmmfit_seconds = ours$seconds[["elapsed"]], lme4_seconds = lme4_seconds[["elapsed"]],
               lmmfit_cpu = ours$seconds[["cpu"]], lme4_cpu = lme4_seconds[["cpu"]],
               stringsAsFactors = FALSE)
}

## Sorts cases into "better" (lmmfit below lme4 by more than OPTIMUM_TOL),
## "equal", "worse", "lmmfit error" and "no lme4 value".
battery_outcome <- function(cases) {
    out <- ifelse(cases$diff > OPTIMUM_TOL, "worse", ifelse(cases$diff < -OPTIMUM_TOL, "better", "equal"))
    out[is.na(cases$lme4)] <- "no lme4 value"
    out[!is.na(cases$lmmfit_error) | (is.na(cases$lmmfit) & !is.na(cases$lme4))] <- "lmmfit error"
    factor(out, levels = c("better", "equal", "worse", "lmmfit error", "no lme4 value"))
}

## One line per case for failure messages and reports.
battery_describe <- function(cases) {
    sprintf("seed %d (%s, %s, %s, n = %d): lmmfit %.8f, lme4 %.8f, diff %+.3g%s%s",
            cases$seed, cases$kind, cases$formula, ifelse(cases$REML, "REML", "ML"), cases$n,
            cases$lmmfit, cases$lme4, cases$diff,
            ifelse(cases$warned, paste0(" [warned: ", cases$warning, "]"), ""),
            ifelse(is.na(cases$lmmfit_error), "", paste0(" [error: ", cases$lmmfit_error, "]")))
}

## A summary of a battery run, as text lines.
battery_summary <- function(cases) {
    outcome <- battery_outcome(cases)
    counts <- table(outcome)
    lines <- sprintf("optimum battery: %d designs; against lme4's tight optimum (tolerance %g): %s",
                     nrow(cases), OPTIMUM_TOL,
                     paste(sprintf("%d %s", as.integer(counts), names(counts)), collapse = ", "))
    worse <- cases[outcome == "worse", , drop = FALSE]
    if (nrow(worse))
        lines <- c(lines, sprintf("  worse: %d warned by lmmfit; by kind: %s", sum(worse$warned),
                                  paste(names(table(worse$kind)), table(worse$kind), sep = " ", collapse = ", ")))
    lines <- c(lines, sprintf(paste("  seconds per case, median (mean): lmmfit %.4f (%.4f) elapsed, %.4f (%.4f) cpu;",
                                    "lme4, both optimizers, %.4f (%.4f) elapsed, %.4f (%.4f) cpu"),
                              stats::median(cases$lmmfit_seconds), mean(cases$lmmfit_seconds),
                              stats::median(cases$lmmfit_cpu), mean(cases$lmmfit_cpu),
                              stats::median(cases$lme4_seconds), mean(cases$lme4_seconds),
                              stats::median(cases$lme4_cpu), mean(cases$lme4_cpu)))
    if (any(!is.na(cases$lmmfit_feval)))
        lines <- c(lines, sprintf("  evaluations: lmmfit %d in all (median %g), lme4 %d in all (both optimizers)",
                                  sum(cases$lmmfit_feval, na.rm = TRUE), stats::median(cases$lmmfit_feval, na.rm = TRUE),
                                  sum(cases$lme4_feval, na.rm = TRUE)))
    lines
}

## The battery over `seeds`: one row per seed (battery_case), on `cores`
## processes (parallel::mclapply, in chunks so that forking costs little).
run_battery <- function(seeds, cores = 1L) {
    one_chunk <- function(chunk) do.call(rbind, lapply(chunk, function(seed) {
        tryCatch(battery_case(seed), error = function(e)
            stop(sprintf("optimum battery: seed %d: %s", seed, conditionMessage(e)), call. = FALSE))
    }))
    if (cores <= 1L || length(seeds) < 2L) return(one_chunk(seeds))
    chunks <- split(seeds, ceiling(seq_along(seeds) / max(1L, min(50L, length(seeds) %/% (4L * cores)))))
    parts <- parallel::mclapply(chunks, one_chunk, mc.cores = cores, mc.preschedule = FALSE)
    failed <- vapply(parts, function(p) inherits(p, "try-error") || is.null(p), NA)
    if (any(failed)) stop(paste(unique(unlist(lapply(parts[failed], as.character))), collapse = "\n"), call. = FALSE)
    do.call(rbind, parts)
}
