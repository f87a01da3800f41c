## Shared by the test-ext-*.R files: pairs of fits of the same model by
## lme4::lmer (the oracle, optimised tightly so that its optimum agrees with
## lmmfit's to about 1e-8) and by lmmfit, cached by formula and data.

ext_lmer_control <- function() {
    lme4::lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 2e-3, rhoend = 2e-12),
                      check.conv.singular = "ignore")
}

ext_data <- function(name) {
    switch(name,
           sleepstudy = lme4::sleepstudy,
           Penicillin = lme4::Penicillin,
           Oats = local({
               d <- as.data.frame(nlme::Oats)
               d$Block <- factor(d$Block, ordered = FALSE)
               d$Variety <- factor(d$Variety, ordered = FALSE)
               d$nitro_f <- factor(d$nitro)
               d
           }),
           ## a random intercept whose variance is estimated at zero: the
           ## group effects are pure noise much smaller than the residual
           singular = local({
               set.seed(20261201)
               d <- data.frame(g = factor(rep(1:8, each = 6)), x = rnorm(48),
                               trt = factor(rep(c("a", "b", "c"), 16)))
               d$y <- 2 + 0.5 * d$x + c(a = 0, b = 0.7, c = -0.4)[as.character(d$trt)] + rnorm(48)
               ## remove the between-group variation of the noise altogether
               r <- resid(lm(y ~ x + trt, d))
               d$y <- d$y - ave(r, d$g) + 0.001 * rnorm(8)[d$g]
               d
           }),
           stop("unknown data set ", name))
}

ext_cache <- new.env()
ext_pair <- function(formula, data, REML = TRUE) {
    key <- paste(deparse1(formula), data, REML)
    if (!is.null(ext_cache[[key]])) return(ext_cache[[key]])
    dat <- ext_data(data)
    ## the data where the formula's environment finds it, so that the fits'
    ## calls can be re-evaluated (lmerTest, update(), emmeans do)
    env <- new.env(parent = environment(formula))
    env$dat <- dat
    environment(formula) <- env
    ## with lmerTest, its lmer (which keeps what Satterthwaite's df need, as
    ## emmeans and parameters ask of it); lme4's otherwise
    lmer <- if (requireNamespace("lmerTest", quietly = TRUE)) lmerTest::lmer else lme4::lmer
    ## the calls hold the formula and settings themselves and the data by
    ## name, found in env
    ref <- suppressMessages(suppressWarnings(
        do.call(lmer, list(formula = formula, data = quote(dat), REML = REML, control = ext_lmer_control()),
                envir = env)))
    ours <- suppressMessages(do.call(lmmfit, list(formula = formula, data = quote(dat), REML = REML),
                                     envir = env))
    ext_cache[[key]] <- list(ours = ours, ref = ref, data = dat)
}

## Compare two data frames of results column by column (numbers with a
## relative tolerance, everything else exactly).  Satterthwaite's degrees of
## freedom come from finite-difference derivatives, in lmerTest as in lmmfit:
## they (and the p-values that depend on them) agree to about 1e-6, so the
## columns in 'df_cols' get 'df_tolerance' (every package shown here prints
## them to 3 or 4 significant digits).
expect_same_table <- function(ours, ref, tolerance = 1e-6, cols = NULL, info = NULL,
                              df_tolerance = 2e-5,
                              df_cols = c("df", "df2", "DenDF", "Df.res", "p.value", "Pr(>F)",
                                          "Pr(>|t|)", "df_error", "p", "lower.CL", "upper.CL",
                                          "CI_low", "CI_high", "conf.low", "conf.high")) {
    ours <- as.data.frame(ours); ref <- as.data.frame(ref)
    if (is.null(cols)) cols <- names(ref)
    expect_equal(nrow(ours), nrow(ref), info = info)
    for (cn in cols) {
        expect_true(cn %in% names(ours), info = paste(info, cn))
        if (is.numeric(ref[[cn]]))
            expect_equal(unname(ours[[cn]]), unname(ref[[cn]]),
                         tolerance = if (cn %in% df_cols) df_tolerance else tolerance, info = paste(info, cn))
        else expect_equal(as.character(ours[[cn]]), as.character(ref[[cn]]), info = paste(info, cn))
    }
}
