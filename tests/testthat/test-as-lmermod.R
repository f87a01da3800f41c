## as_lmerMod(): lme4's lmerMod at lmmfit's estimates.

## lme4 evaluates its own deviance once at lmmfit's theta: everything it then
## reports is computed from the same parameters, so agreement is to rounding.
AS_LMERMOD_TOL <- 1e-6

as_lmermod_data <- local({
    set.seed(7)
    ns <- 6; nc <- c(2, 3, 4, 2, 3, 5)
    cls <- unlist(lapply(seq_len(ns), function(s) paste0(s, ".", seq_len(nc[s]))))
    school <- factor(sub("\\..*", "", cls))
    size <- sample(3:9, length(cls), replace = TRUE)
    ne <- data.frame(class = factor(rep(cls, size)), school = rep(school, size))
    ne$trt <- factor(rep(sample(c("ctl", "trt"), length(cls), replace = TRUE), size))
    ne$z <- rnorm(nrow(ne))
    ne$w <- runif(nrow(ne), 0.5, 2)
    ne$y <- 2 + 0.8 * (ne$trt == "trt") + 0.3 * ne$z + rnorm(ns, sd = 0.6)[ne$school] +
        rnorm(length(cls), sd = 0.5)[ne$class] + rnorm(nrow(ne), sd = 0.8)
    ne
})

expect_lmermod_matches <- function(fit, m, info) {
    expect_s4_class(m, "lmerMod")
    expect_equal(lme4::fixef(m), fixef(fit), tolerance = AS_LMERMOD_TOL, info = info)
    expect_equal(as.numeric(logLik(m)), as.numeric(logLik(fit)), tolerance = AS_LMERMOD_TOL, info = info)
    expect_identical(attr(logLik(m), "df"), attr(logLik(fit), "df"), info = info)
    expect_equal(sigma(m), sigma(fit), tolerance = AS_LMERMOD_TOL, info = info)
    if (fit$REML) expect_equal(lme4::REMLcrit(m), fit$deviance_value, tolerance = AS_LMERMOD_TOL, info = info)
    else expect_equal(deviance(m), fit$deviance_value, tolerance = AS_LMERMOD_TOL, info = info)
    vm <- as.data.frame(lme4::VarCorr(m))
    vf <- as.data.frame(VarCorr(fit))
    ## matched by factor and columns: lmmfit numbers the groups of several terms
    ## on one factor in its own term order ("Subject", "Subject.1"), lme4 in its
    key <- function(v) paste(sub("\\.[0-9]+$", "", v$grp), v$var1, v$var2)
    expect_setequal(key(vm), key(vf))
    i <- match(key(vm), key(vf))
    expect_equal(vm$vcov, vf$vcov[i], tolerance = AS_LMERMOD_TOL, info = info)
    expect_equal(vm$sdcor, vf$sdcor[i], tolerance = AS_LMERMOD_TOL, info = info)
    expect_equal(as.matrix(vcov(m)), as.matrix(vcov(fit)), tolerance = AS_LMERMOD_TOL,
                 ignore_attr = TRUE, info = info)
}

test_that("as_lmerMod() gives lme4's object at lmmfit's estimates", {
    need_lme4()
    data(sleepstudy, package = "lme4")
    data(Penicillin, package = "lme4")
    ne <- as_lmermod_data
    sl <- sleepstudy
    sl$fac <- factor(ifelse(sl$Days %% 2 == 0, "even", "odd"))
    cases <- list(
        list(f = Reaction ~ Days + (Days | Subject), d = quote(sleepstudy)),
        list(f = Reaction ~ Days + (Days || Subject), d = quote(sleepstudy)),
        list(f = diameter ~ 1 + (1 | plate) + (1 | sample), d = quote(Penicillin)),
        list(f = y ~ trt * z + (1 | school / class), d = quote(ne)),
        ## lmmfit orders this model's terms differently from lme4: theta is matched by name
        list(f = Reaction ~ Days + (1 | Subject) + (0 + fac | Subject), d = quote(sl)),
        list(f = log(Reaction) ~ poly(Days, 2) + (1 | Subject), d = quote(sleepstudy)))
    for (REML in c(TRUE, FALSE)) for (cs in cases) {
        info <- paste(deparse1(cs$f), "REML =", REML)
        fit <- suppressMessages(eval(bquote(lmmfit(.(cs$f), data = .(cs$d), REML = .(REML)))))
        m <- as_lmerMod(fit)
        expect_lmermod_matches(fit, m, info)
    }
    ## weights, subset and offset come from the fit's call
    fit <- lmmfit(y ~ trt + (1 | school), data = ne, weights = w, subset = z > -1.5, offset = 0.1 * z)
    m <- as_lmerMod(fit)
    expect_lmermod_matches(fit, m, "weights, subset, offset")
    expect_identical(nobs(m), nobs(fit))
    ## merMod-only tools work on it
    fit <- lmmfit(Reaction ~ Days + (Days | Subject), sleepstudy)
    m <- as_lmerMod(fit)
    expect_equal(as.matrix(lme4::ranef(m)$Subject), as.matrix(ranef(fit)$Subject),
                 tolerance = AS_LMERMOD_TOL, ignore_attr = TRUE)
    expect_identical(lme4::isSingular(m), isSingular(fit))
    expect_equal(unname(lme4::getME(m, "theta")), unname(fit$theta), tolerance = AS_LMERMOD_TOL)
    if (requireNamespace("lmerTest", quietly = TRUE)) {
        mt <- lmerTest::as_lmerModLmerTest(m)
        expect_s4_class(mt, "lmerModLmerTest")
    }
})

test_that("as_lmerMod() refuses what has no lme4 equivalent, and says when lme4 is missing", {
    data(sleepstudy, package = "lme4")
    expect_error(as_lmerMod(lm(Reaction ~ Days, sleepstudy)), "must be an lmmfit fit")
    fit <- lmmfit(Reaction ~ Days + (1 | Subject), sleepstudy)
    d <- sleepstudy
    d$time <- d$Days
    fa <- lmmfit(Reaction ~ Days + (1 | Subject), d, correlation = ar1(~ time | Subject))
    if (requireNamespace("lme4", quietly = TRUE))
        expect_error(as_lmerMod(fa), "residual variance or correlation structure")
    ## lme4 absent: simulated by replacing lmmfit's test of it
    without_lme4(expect_error(as_lmerMod(fit), "as_lmerMod\\(\\) needs package 'lme4', which is not installed"))
})

test_that("update() of an as_lmerMod() object refits, as update() of an lmer fit does", {
    skip_if_not_installed("lme4")
    ss <- lme4::sleepstudy
    m <- as_lmerMod(lmmfit(Reaction ~ Days + (Days | Subject), ss))
    u <- suppressWarnings(update(m, data = ss[ss$Days < 5, ]))
    ref <- lme4::lmer(Reaction ~ Days + (Days | Subject), ss[ss$Days < 5, ])
    expect_equal(lme4::REMLcrit(u), lme4::REMLcrit(ref), tolerance = 1e-6)
    expect_equal(lme4::fixef(u), lme4::fixef(ref), tolerance = 1e-5)
})
