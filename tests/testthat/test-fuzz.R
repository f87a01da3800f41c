## Fuzzing lmmfit(): random small data sets and formulas, with every kind of
## awkward input (one group or as many groups as rows, singletons, NA/NaN/Inf
## in any column, constant and collinear columns, scales from 1e-12 to 1e12,
## empty factor levels, character and logical groupings, zero weights,
## crossed, nested, uncorrelated and slope terms).  Each case must give a fit
## whose estimates are all finite (or come with a warning), or a clean R error
## (a simpleError with a message): no crash, no hang (a time limit per case).
##
## Seeded; the number of cases is LMMFIT_FUZZ_N (default 1500, ~5 s; 200
## under make valgrind).  The full run of the issue (make fuzz, in CI; 10,000
## cases take 30-100 s):
##   LMMFIT_FUZZ_N=10000 Rscript -e 'testthat::test_file("tests/testthat/test-fuzz.R",
##       package = "lmmfit", load_package = "installed")'
## LMMFIT_FUZZ_SEED changes the seed (default 20240610).

fuzz_formulas <- c(
    "y ~ x + (1 | g)", "y ~ x + (x | g)", "y ~ 1 + (1 | g) + (1 | h)", "y ~ x + (1 | g/h)",
    "y ~ x + x2 + (x || g)", "y ~ x + (1 | g:h)", "y ~ x + (0 + x | g)", "y ~ x2 + (1 | h) + (x | g)",
    "y ~ f + (1 | g)", "y ~ x * f + (1 | h)")

fuzz_case <- function() {
    n <- sample(c(1:12, 20, 40, 80), 1)
    kind <- sample(c("one", "all", "two", "some", "singletons"), 1)
    ng <- switch(kind, one = 1L, all = n, two = min(2L, n), some = sample(max(1L, n %/% 2L), 1),
                 singletons = n)
    g <- sample(ng, n, replace = TRUE)
    if (kind == "singletons" && n > 3) g[seq_len(n %/% 2)] <- 1L
    h <- sample(max(1L, sample(6, 1)), n, replace = TRUE)
    d <- data.frame(x = rnorm(n), x2 = rnorm(n), y = rnorm(n))
    d$f <- factor(sample(letters[1:3], n, TRUE), levels = letters[1:4])   # an empty level
    d$y <- d$y + rnorm(ng)[g] * sample(c(0, 1, 10), 1)
    ## groupings as factor (maybe with empty levels), character, logical or integer
    d$g <- switch(sample(4, 1), factor(g, levels = seq_len(ng + sample(0:2, 1))), as.character(g),
                  g %% 2L == 0L, g)
    d$h <- switch(sample(3, 1), factor(h), letters[h], h)
    ## degenerate columns
    switch(sample(6, 1),
           d$x2 <- 2 * d$x,                     # collinear
           d$x <- rep(3, n),                    # constant
           d$y <- rep(1, n),                    # constant response
           d$x2 <- d$x + 1e-10 * rnorm(n),      # nearly collinear
           NULL, NULL)
    ## scales
    if (runif(1) < 0.4) d$y <- d$y * 10^runif(1, -12, 12)
    if (runif(1) < 0.4) d$x <- d$x * 10^runif(1, -12, 12)
    ## non-finite values in a random column
    if (runif(1) < 0.4) {
        col <- sample(c("x", "x2", "y", "g", "h", "f"), 1)
        i <- sample(n, sample(min(n, 3), 1))
        v <- d[[col]]
        if (is.numeric(v)) v[i] <- sample(c(NA, NaN, Inf, -Inf), length(i), TRUE) else v[i] <- NA
        d[[col]] <- v
    }
    w <- NULL
    if (runif(1) < 0.25) w <- sample(c(0, 0.5, 1, 2, 1e6), n, TRUE, prob = c(1, 2, 4, 2, 1))
    list(d = d, w = w, formula = sample(fuzz_formulas, 1), REML = runif(1) < 0.7)
}

## "fit" (all estimates finite), "warned" (a fit with a warning), "error"
## (a clean R error), or a description of what went wrong.
fuzz_run <- function(case, limit = 20) {
    warned <- FALSE
    setTimeLimit(elapsed = limit, transient = TRUE)
    on.exit(setTimeLimit(elapsed = Inf))
    fit <- tryCatch(withCallingHandlers(
        lmmfit(as.formula(case$formula), case$d, REML = case$REML, weights = case$w),
        warning = function(w) { warned <<- TRUE; invokeRestart("muffleWarning") },
        message = function(m) invokeRestart("muffleMessage")),
        error = function(e) e)
    setTimeLimit(elapsed = Inf)
    if (inherits(fit, "error")) {
        msg <- conditionMessage(fit)
        if (grepl("time limit", msg)) return("hang: reached the time limit")
        if (!inherits(fit, "simpleError") || !nzchar(msg))
            return(paste("unclean error:", paste(class(fit), collapse = "/"), msg))
        return("error")
    }
    if (!inherits(fit, "lmmfit")) return("not an lmmfit object")
    est <- c(fixef(fit), fit$theta, sigma(fit), deviance(fit), unlist(lmmfit:::random_effects(fit)))
    if (all(is.finite(est))) return(if (warned) "warned" else "fit")
    if (warned) "warned" else "non-finite estimates without a warning"
}

test_that("fuzz: random data and formulas give a fit or a clean error, never a crash or silent NaN", {
    n <- test_count("LMMFIT_FUZZ_N", 1500L, 200L)
    seed <- as.integer(Sys.getenv("LMMFIT_FUZZ_SEED", "20240610"))
    set.seed(seed)
    cases <- lapply(seq_len(n), function(i) fuzz_case())
    out <- character(n)
    for (i in seq_len(n)) out[i] <- fuzz_run(cases[[i]])
    bad <- which(!out %in% c("fit", "warned", "error"))
    for (i in head(bad, 5)) {
        cat(sprintf("\nfuzz case %d (seed %d): %s\n  formula %s, REML %s, weights %s\n", i, seed, out[i],
                    cases[[i]]$formula, cases[[i]]$REML, !is.null(cases[[i]]$w)))
        print(utils::head(cases[[i]]$d, 12))
    }
    expect_identical(out[bad], character(0))
    ## the fuzzer does reach fits and errors, in both directions
    if (n >= 200) {
        expect_gt(sum(out == "fit"), n / 10)
        expect_gt(sum(out == "error"), n / 10)
    }
})
