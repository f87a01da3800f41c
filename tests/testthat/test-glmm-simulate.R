## simulate(), refit() and parboot() of glmmfit models.  Oracles: lme4's
## simulate() at our parameters (newparams) and for the same seed, which
## draws the same random numbers in the same order, so the responses must be
## identical; the family's mean and variance in closed form; glmmfit() on
## the simulated response; glmer's refit() converged tightly.
skip_if_not_installed("lme4")
suppressPackageStartupMessages(library(lme4))
## the criterion, -2 log L (deviance() is lme4's conditional deviance)
crit <- function(fit) -2 * as.numeric(logLik(fit))

data(cbpp, package = "lme4")
cbpp_formula <- cbind(incidence, size - incidence) ~ period + (1 | herd)

## glmer converged tightly (see test-glmm-fit.R): the control, also for refit()
tight_control <- function()
    glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-13,
                 optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-14, xtol_rel = 1e-14, maxeval = 1e5))
tight_glmer <- function(formula, data, family, ...)
    suppressWarnings(do.call(glmer, list(formula = formula, data = data, family = family,
                                         control = tight_control(), ...)))

## Our estimates as lme4's newparams, theta by lme4's names (its order of
## the terms can differ from ours).
as_newparams <- function(fit, g)
    list(theta = fit$theta[names(getME(g, "theta"))], beta = setNames(unname(fixef(fit)), names(fixef(g))))

set.seed(20261207)
sim_n <- 300
sim <- data.frame(g = factor(sample(20, sim_n, TRUE)), a = factor(sample(5, sim_n, TRUE)),
                  b = factor(sample(10, sim_n, TRUE)), b2 = factor(sample(10, sim_n, TRUE)),
                  x = rnorm(sim_n), expo = runif(sim_n, 1, 3))
sim_re <- rnorm(20)
sim$y <- rbinom(sim_n, 1, plogis(-0.3 + 0.8 * sim$x + sim_re[sim$g]))
sim$yf <- factor(ifelse(sim$y == 1, "yes", "no"))
sim$cnt <- rpois(sim_n, sim$expo * exp(0.3 + 0.2 * sim$x + 0.5 * sim_re[sim$g]))
sim$trials <- sample(2:6, sim_n, TRUE)
sim$succ <- rbinom(sim_n, sim$trials, plogis(0.2 + 0.5 * sim$x + sim_re[sim$g]))
sim$prop <- sim$succ / sim$trials

test_that("simulate() draws lme4's responses, in the form of the model's response", {
    ## (the Poisson's terms are g, b2, b, a in lme4's order, g, b, b2, a in
    ## ours: the draws of u* must follow lme4's order of the terms)
    cases <- list(list(cbpp_formula, cbpp, binomial, NULL),
                  list(prop ~ x + (1 | g), sim, binomial, sim$trials),
                  list(y ~ x + (x | g), sim, binomial, NULL),
                  list(yf ~ x + (1 | g), sim, binomial(link = "probit"), NULL),
                  list(cnt ~ x + offset(log(expo)) + (1 | a) + (1 | b) + (1 | b2) + (1 | g), sim, poisson, NULL))
    for (cs in cases) {
        args <- list(formula = cs[[1]], data = cs[[2]], family = cs[[3]])
        if (!is.null(cs[[4]])) args$weights <- cs[[4]]
        fit <- suppressMessages(do.call(glmmfit, args))
        g <- suppressMessages(suppressWarnings(do.call(glmer, args)))
        ours <- simulate(fit, nsim = 3, seed = 11)
        theirs <- simulate(g, nsim = 3, seed = 11, newparams = as_newparams(fit, g))
        expect_identical(names(ours), names(theirs))
        expect_identical(rownames(ours), rownames(theirs))
        for (j in 1:3) expect_identical(ours[[j]], theirs[[j]])
    }
    ## the cbind() form: counts with the response's column names
    s <- simulate(glmmfit(cbpp_formula, cbpp, family = binomial), seed = 1)
    expect_identical(dim(s$sim_1), c(nrow(cbpp), 2L))
    expect_identical(rowSums(s$sim_1), as.numeric(cbpp$size))
})

test_that("simulate() pads the rows na.exclude dropped and refit() drops them again", {
    d <- cbpp
    d$incidence[c(3, 10)] <- NA
    fx <- glmmfit(cbpp_formula, d, family = binomial, na.action = na.exclude)
    fo <- glmmfit(cbpp_formula, d, family = binomial, na.action = na.omit)
    sx <- simulate(fx, nsim = 2, seed = 12)
    so <- simulate(fo, nsim = 2, seed = 12)
    expect_identical(rownames(sx), rownames(cbpp))
    expect_true(all(is.na(sx$sim_2[c(3, 10), ])))
    expect_identical(sx$sim_2[-c(3, 10), ], so$sim_2)
    ## (lme4's simulate pads vectors, as here, but not count matrices)
    g <- suppressWarnings(glmer(incidence ~ period + (1 | herd), d, family = poisson, na.action = na.exclude))
    fp <- glmmfit(incidence ~ period + (1 | herd), d, family = poisson, na.action = na.exclude)
    expect_identical(simulate(fp, nsim = 2, seed = 13),
                     simulate(g, nsim = 2, seed = 13, newparams = as_newparams(fp, g)),
                     ignore_attr = c("seed", "na.action"))
    expect_equal(fixef(refit(fx, sx[1])), fixef(refit(fo, so[1])), tolerance = 1e-12)
})

test_that("a negative binomial of given theta simulates lme4's counts", {
    skip_if_not_installed("MASS")
    set.seed(14)
    d <- sim
    d$nb <- MASS::rnegbin(sim_n, exp(1 + 0.3 * d$x + 0.5 * sim_re[d$g]), theta = 2)
    fam <- MASS::negative.binomial(2)
    fit <- glmmfit(nb ~ x + (1 | g), d, family = fam)
    g <- suppressWarnings(glmer(nb ~ x + (1 | g), d, family = fam))
    expect_identical(simulate(fit, nsim = 2, seed = 15),
                     simulate(g, nsim = 2, seed = 15, newparams = as_newparams(fit, g)),
                     ignore_attr = c("seed", "na.action"))
    d$nb <- simulate(fit, seed = 16)$sim_1
    expect_equal(fixef(refit(fit, d$nb)), fixef(glmmfit(nb ~ x + (1 | g), d, family = fam)), tolerance = 1e-8)
})

test_that("use.u = TRUE draws lme4's responses at the conditional modes", {
    fit <- glmmfit(cbpp_formula, cbpp, family = binomial)
    g <- tight_glmer(cbpp_formula, cbpp, family = binomial)
    ## (both at their own modes, which agree to ~1e-6: no draw differs)
    expect_identical(simulate(fit, nsim = 2, seed = 3, use.u = TRUE)$sim_2,
                     simulate(g, nsim = 2, seed = 3, use.u = TRUE)$sim_2)
    expect_identical(simulate(fit, nsim = 2, seed = 3, re.form = NULL),
                     simulate(fit, nsim = 2, seed = 3, use.u = TRUE))
    ## seed = restores the generator; the seed attribute as simulate.lm
    set.seed(9); r1 <- runif(1)
    set.seed(9); invisible(simulate(fit, seed = 1)); r2 <- runif(1)
    expect_identical(r1, r2)
    expect_identical(as.integer(attr(simulate(fit, seed = 42), "seed")), 42L)
})

## Three crossed terms with clearly different variances, for re.form
## naming some of them (lme4 orders them g, b, a: 16, 8 and 4 levels)
nd_data <- local({
    set.seed(20261210)
    n <- 400
    d <- data.frame(a = factor(sample(4, n, TRUE)), b = factor(sample(8, n, TRUE)),
                    g = factor(sample(16, n, TRUE)), x = rnorm(n), expo = runif(n, 1, 3))
    d$cnt <- rpois(n, d$expo * exp(0.5 + 0.3 * d$x + rnorm(4, sd = 0.9)[d$a] + rnorm(8, sd = 0.5)[d$b] +
                                   rnorm(16, sd = 0.25)[d$g]))
    d
})
nd_formula <- cnt ~ x + offset(log(expo)) + (1 | a) + (1 | b) + (1 | g)

test_that("simulate(newdata =) draws lme4's responses at new rows", {
    ## binomial: a 0/1 response, a random slope, new levels; proportions
    ## with trials as weights; cbind() counts with the trials as weights;
    ## a factor response
    nd <- data.frame(x = c(-1, 0, 1, 2, 0.5, 0), g = factor(c(3, 3, 7, 25, 1, 30)),
                     trials = c(2, 5, 3, 4, 6, 1))
    cases <- list(list(y ~ x + (x | g), sim, binomial, NULL),
                  list(prop ~ x + (1 | g), sim, binomial, sim$trials),
                  list(cbind(succ, trials - succ) ~ x + (1 | g), sim, binomial, NULL),
                  list(yf ~ x + (1 | g), sim, binomial(link = "probit"), NULL))
    for (cs in cases) {
        args <- list(formula = cs[[1]], data = cs[[2]], family = cs[[3]])
        if (!is.null(cs[[4]])) args$weights <- cs[[4]]
        fit <- suppressMessages(do.call(glmmfit, args))
        g <- suppressMessages(suppressWarnings(do.call(glmer, args)))
        w <- if (is.null(cs[[4]]) && !is.matrix(fit$frame[[1]])) NULL else nd$trials
        for (rf in list(NA, NULL)) {
            ours <- simulate(fit, nsim = 3, seed = 21, newdata = nd, allow.new.levels = TRUE, re.form = rf,
                             weights = w)
            theirs <- simulate(g, nsim = 3, seed = 21, newdata = nd, allow.new.levels = TRUE, re.form = rf,
                               weights = w, newparams = as_newparams(fit, g))
            info <- paste(deparse1(cs[[1]]), deparse1(rf))
            expect_identical(rownames(ours), rownames(theirs), info = info)
            for (j in 1:3) expect_identical(ours[[j]], theirs[[j]], info = info)
        }
    }
    ## Poisson, crossed terms, offsets from newdata: re.form none, all, or
    ## some terms (lme4 draws the others in its order of them)
    fit <- suppressMessages(glmmfit(nd_formula, nd_data, family = poisson))
    g <- suppressMessages(suppressWarnings(glmer(nd_formula, nd_data, family = poisson)))
    nd2 <- nd_data[c(1:6, 50:60), ]
    for (rf in list(NA, NULL, ~ (1 | a), ~ (1 | a) + (1 | b))) {
        for (newd in list(NULL, nd2)) {
            ours <- simulate(fit, nsim = 2, seed = 22, newdata = newd, re.form = rf)
            theirs <- simulate(g, nsim = 2, seed = 22, newdata = newd, re.form = rf,
                               newparams = as_newparams(fit, g))
            info <- paste(deparse1(rf), is.null(newd))
            for (j in 1:2) expect_identical(ours[[j]], unname(theirs[[j]]), ignore_attr = "names", info = info)
        }
    }
    ## newdata = the fitted rows: the fit's own simulation
    expect_identical(simulate(fit, nsim = 2, seed = 23, newdata = nd_data)$sim_2,
                     unname(simulate(fit, nsim = 2, seed = 23)$sim_2))
})

## re.form = ~ (1 | g) here conditions on lme4's first term: lme4's
## simulate() then gives the simulated terms (b, a) the covariance
## parameters of (g, b) (mkNewReTrms takes theta by the new terms'
## indices), so it is no oracle; the law of the draws is checked in closed
## form instead.  At a row with conditioned predictor eta_c, y given the
## new effects is Poisson(exp(eta_c + b_a + b_b)), b_a + b_b ~ N(0, s2),
## s2 = sd_a^2 + sd_b^2: a lognormal mean m = exp(eta_c + s2 / 2) and
## variance m + m^2 (exp(s2) - 1).  LAW_Z standard errors of the mean over
## nsim draws (for a correct simulator any of the 5 fails with chance
## below 1e-5); the pooled variance ratio within 10% (about 4 of its
## standard errors at these moments).  The test can fail: lme4's draws,
## with sd_g = 0.16 for b and sd_b = 0.56 for a (s2 0.34 for 0.47), give a
## variance ratio of 0.70 and mean z-scores of 3 to 4.6; s2 with the wrong
## pair (g, b) in our draws' place gives z-scores above 5.
LAW_Z <- 5
test_that("simulate(re.form = ) conditioned on some terms has the closed-form law", {
    fit <- suppressMessages(glmmfit(nd_formula, nd_data, family = poisson))
    nd <- nd_data[c(2, 9, 77, 123, 301), ]
    nd$g <- factor(c(1, 5, 9, 99, 16))         # a new level, effect 0 as in predict()
    nsim <- 4000
    Y <- as.matrix(simulate(fit, nsim = nsim, seed = 24, newdata = nd, re.form = ~ (1 | g),
                            allow.new.levels = TRUE))
    eta_c <- predict(fit, nd, re.form = ~ (1 | g), allow.new.levels = TRUE)
    vc <- VarCorr(fit)
    s2 <- vc$a[1, 1] + vc$b[1, 1]
    m <- exp(eta_c + s2 / 2)
    v <- m + m^2 * (exp(s2) - 1)
    expect_lt(max(abs(rowMeans(Y) - m) / sqrt(v / nsim)), LAW_Z)
    expect_lt(abs(mean(apply(Y, 1, var) / v) - 1), 0.1)
})

## Moments at use.u = TRUE, where each response has the family's law at the
## fitted mean: the mean of nsim draws has standard error sqrt(V / nsim),
## and the pooled (y - mu)^2 / V has mean 1 and standard error
## sqrt(sum(kurtosis - 1) / nsim) / n from the family's fourth moment.
## MOMENT_Z standard errors: for a correct simulator the chance that any of
## the 56 + 1 checks fails is below 1e-4 (and the seed is fixed).
MOMENT_Z <- 5
MOMENT_NSIM <- 2000
expect_family_moments <- function(Y, mu, V, kurt) {
    nsim <- ncol(Y)
    expect_lt(max(abs(rowMeans(Y) - mu) / sqrt(V / nsim)), MOMENT_Z)
    ratio <- mean((Y - mu)^2 / V)
    expect_lt(abs(ratio - 1), MOMENT_Z * sqrt(sum(kurt - 1) / nsim) / length(mu))
}

test_that("simulated responses have the family's mean and variance at the fitted means", {
    fit <- glmmfit(cbpp_formula, cbpp, family = binomial)
    s <- simulate(fit, nsim = MOMENT_NSIM, seed = 5, use.u = TRUE)
    Y <- sapply(s, function(m) m[, 1L])
    p <- fitted(fit)
    m <- cbpp$size
    ## binomial(m, p): mean m p, variance m p q, kurtosis 3 + (1 - 6 p q) / (m p q)
    expect_family_moments(Y, m * p, m * p * (1 - p), 3 + (1 - 6 * p * (1 - p)) / (m * p * (1 - p)))
    fp <- glmmfit(prop ~ x + (1 | g), sim, family = binomial, weights = trials)
    P <- as.matrix(simulate(fp, nsim = MOMENT_NSIM, seed = 6, use.u = TRUE))
    p <- fitted(fp)
    m <- sim$trials
    expect_family_moments(P, p, p * (1 - p) / m, 3 + (1 - 6 * p * (1 - p)) / (m * p * (1 - p)))
    fc <- glmmfit(cnt ~ x + offset(log(expo)) + (1 | g), sim, family = poisson)
    C <- as.matrix(simulate(fc, nsim = MOMENT_NSIM, seed = 7, use.u = TRUE))
    mu <- fitted(fc)
    ## Poisson(mu): variance mu, kurtosis 3 + 1 / mu
    expect_family_moments(C, mu, mu, 3 + 1 / mu)
})

test_that("new random effects have the covariance Lambda Lambda'", {
    ## b* = Lambda u* at a chosen theta (a correlated pair): the sample
    ## covariance of nsim draws of one level's (intercept, slope) effects
    ## against Lambda Lambda' in closed form; a sample (co)variance of N
    ## normal pairs has standard error sqrt((V_ii V_jj + V_ij^2) / N)
    fit <- glmmfit(y ~ x + (x | g), sim, family = binomial)
    fit$theta[] <- c(1.2, 0.6, 0.8)
    L <- matrix(c(1.2, 0.6, 0, 0.8), 2)
    V <- tcrossprod(L)
    nsim <- 4000
    set.seed(8)
    eta <- lmmfit:::glmm_new_reff(fit, nsim)
    ## two rows of one level with different x give both effects
    for (lv in levels(sim$g)[c(1, 20)]) {
        rows <- which(sim$g == lv)[1:2]
        B <- solve(cbind(1, sim$x[rows]), eta[rows, ])
        se <- sqrt((outer(diag(V), diag(V)) + V^2) / nsim)
        expect_lt(max(abs(cov(t(B)) - V) / se), MOMENT_Z)
    }
})

test_that("refit() of a simulated response equals glmmfit() on it", {
    ## (refit runs the second stage alone from the fit's estimates, glmmfit
    ## both stages from glm's: two paths to one optimum, whose location on
    ## a flat criterion is reproducible to ~sqrt(1e-16) relative; measured
    ## 4e-8 in theta, 1e-12 in the criterion: estimates to 1e-6, the
    ## criterion to 1e-10 and never worse)
    fit <- glmmfit(cbpp_formula, cbpp, family = binomial)
    s <- simulate(fit, nsim = 1, seed = 21)
    r <- refit(fit, s)
    d <- cbpp
    d$incidence <- s$sim_1[, 1L]
    direct <- glmmfit(cbpp_formula, d, family = binomial)
    expect_equal(crit(r), crit(direct), tolerance = 1e-10)
    expect_lte(crit(r), crit(direct) * (1 + 1e-12))
    expect_equal(fixef(r), fixef(direct), tolerance = 1e-6)
    expect_equal(r$theta, direct$theta, tolerance = 1e-6)
    expect_equal(fitted(r), fitted(direct), tolerance = 1e-6)
    expect_identical(r$frame[[1L]], s$sim_1)
    ## nAGQ = 0 and 25 refit with their own criteria (measured: 4e-10 apart)
    for (q in c(0L, 25L)) {
        fq <- glmmfit(cbpp_formula, cbpp, family = binomial, nAGQ = q)
        rq <- refit(fq, s)
        direct <- glmmfit(cbpp_formula, d, family = binomial, nAGQ = q)
        expect_identical(rq$nAGQ, q)
        expect_equal(crit(rq), crit(direct), tolerance = 1e-10)
        expect_equal(fixef(rq), fixef(direct), tolerance = 1e-6)
        expect_equal(rq$theta, direct$theta, tolerance = 1e-6)
    }
    ## a Poisson count and a proportion response
    fc <- glmmfit(cnt ~ x + offset(log(expo)) + (1 | g), sim, family = poisson)
    d <- sim
    d$cnt <- simulate(fc, seed = 22)$sim_1
    direct <- glmmfit(cnt ~ x + offset(log(expo)) + (1 | g), d, family = poisson)
    expect_equal(fixef(refit(fc, d$cnt)), fixef(direct), tolerance = 1e-6)
    expect_equal(crit(refit(fc, d$cnt)), crit(direct), tolerance = 1e-6)
    fp <- glmmfit(prop ~ x + (1 | g), sim, family = binomial, weights = trials)
    d$prop <- simulate(fp, seed = 23)$sim_1
    direct <- glmmfit(prop ~ x + (1 | g), d, family = binomial, weights = trials)
    expect_equal(crit(refit(fp, d$prop)), crit(direct), tolerance = 1e-6)
    expect_equal(fixef(refit(fp, d$prop)), fixef(direct), tolerance = 1e-6)
    ## a cbind() refit of a proportion model takes the trials from the matrix
    m <- cbind(d$prop * sim$trials, (1 - d$prop) * sim$trials)
    expect_equal(crit(refit(fp, m)), crit(direct), tolerance = 1e-10)
})

test_that("refit() agrees with glmer's refit() on the same simulated response", {
    ## (measured on cbpp: fixed effects 3e-8, theta 1e-8 apart)
    fit <- glmmfit(cbpp_formula, cbpp, family = binomial)
    g <- tight_glmer(cbpp_formula, cbpp, family = binomial)
    s <- simulate(fit, nsim = 1, seed = 31)
    r <- refit(fit, s)
    gr <- suppressWarnings(refit(g, s, control = tight_control()))
    ref <- -2 * as.numeric(logLik(gr))
    expect_lte(crit(r), ref + 1e-6 * ref)
    expect_equal(crit(r), ref, tolerance = 1e-6)
    expect_equal(unname(fixef(r)), unname(fixef(gr)), tolerance = 1e-5)
    expect_equal(unname(r$theta), unname(getME(gr, "theta")), tolerance = 1e-5)
    ## a factor response
    ff <- glmmfit(yf ~ x + (1 | g), sim, family = binomial)
    gf <- tight_glmer(yf ~ x + (1 | g), sim, family = binomial)
    s <- simulate(ff, seed = 32)
    expect_true(is.factor(s$sim_1))
    rf <- refit(ff, s)
    gr <- suppressWarnings(refit(gf, s$sim_1, control = tight_control()))
    expect_equal(crit(rf), -2 * as.numeric(logLik(gr)), tolerance = 1e-6)
    expect_equal(unname(fixef(rf)), unname(fixef(gr)), tolerance = 1e-5)
})

test_that("parboot() is reproducible with a seed and refits simulate()'s responses", {
    fit <- glmmfit(cbpp_formula, cbpp, family = binomial)
    nsim <- 20
    b <- parboot(fit, nsim = nsim, seed = 41)
    expect_s3_class(b, "lmmfit_boot")
    expect_identical(b$t, parboot(fit, nsim = nsim, seed = 41)$t)
    expect_false(isTRUE(all.equal(b$t, parboot(fit, nsim = nsim, seed = 42)$t)))
    expect_identical(names(b$t0), c(names(fixef(fit)), "sd_(Intercept)|herd"))
    expect_equal(unname(b$t0), unname(c(fixef(fit), fit$theta)))
    s <- simulate(fit, nsim = nsim, seed = 41)
    for (i in c(1L, nsim)) {
        r <- refit(fit, s[[i]])
        expect_equal(b$t[i, ], c(fixef(r), r$theta), tolerance = 1e-12, ignore_attr = TRUE)
    }
    bu <- parboot(fit, FUN = fixef, nsim = 5, use.u = TRUE, seed = 43)
    su <- simulate(fit, nsim = 5, seed = 43, use.u = TRUE)
    expect_equal(bu$t[5, ], fixef(refit(fit, su[[5]])), tolerance = 1e-12)
    expect_identical(b$status, integer(nsim))
    ## the refits need no random numbers: two processes give the serial result
    if (.Platform$OS.type != "windows")
        expect_identical(parboot(fit, nsim = nsim, seed = 41, parallel = "multicore", ncpus = 2)$t, b$t)
    expect_output(print(b), "bootstrap of a glmmfit model: 20 replicates, use.u = FALSE, ML refits")
    expect_output(print(summary(b)), "usable: 20; failed: 0")
})

test_that("parboot() counts refits that end at theta = 0 as converged", {
    ## a fit at theta = 0 (cbpp's response drawn from its glm): most
    ## replicates refit to theta = 0 too, where L-BFGS-B's own code reports
    ## an abnormal line search at a settled optimum with zero gradient
    fit <- glmmfit(cbpp_formula, cbpp, family = binomial)
    gl <- glm(cbind(incidence, size - incidence) ~ period, family = binomial, data = cbpp)
    fs <- suppressMessages(refit(fit, simulate(gl, nsim = 1, seed = 1)[[1]]))
    expect_identical(unname(fs$theta), 0)
    b <- parboot(fs, nsim = 30, seed = 3)
    expect_identical(b$status, integer(30))
    zero <- which(b$t[, "sd_(Intercept)|herd"] == 0)
    expect_gt(length(zero), 10)
    r <- suppressMessages(refit(fs, simulate(fs, nsim = 30, seed = 3)[[zero[1]]]))
    expect_equal(b$t[zero[1], ], c(fixef(r), r$theta), tolerance = 1e-12, ignore_attr = TRUE)
})

test_that("bad input to simulate(), refit() and parboot() gets a clear error", {
    fit <- glmmfit(cbpp_formula, cbpp, family = binomial)
    expect_error(simulate(fit, newdata = cbpp), "give the trials of the rows of 'newdata' as 'weights'")
    expect_error(simulate(fit, newdata = cbpp, weights = 1:3), "'weights' must be 56 positive numbers")
    expect_error(simulate(fit, weights = cbpp$size), "'weights' gives the trials of the rows of 'newdata'")
    nd <- data.frame(period = factor(1, levels = 1:4), herd = factor("new"))
    expect_error(simulate(fit, newdata = nd, weights = 3), "new level in 'newdata' for grouping factor 'herd'")
    nd$period[1] <- NA
    expect_error(simulate(fit, newdata = nd, weights = 3, allow.new.levels = TRUE), "missing values")
    expect_error(simulate(fit, newdata = cbpp[0, ]), "no rows")
    expect_error(simulate(fit, newparams = list(theta = 1)), "newparams")
    expect_error(simulate(fit, cond.sim = FALSE), "'cond.sim' is not supported")
    expect_error(simulate(fit, newdata = cbpp, weights = cbpp$size, na.action = na.omit),
                 "'na.action' is not supported")
    expect_error(simulate(fit, re.form = ~ (1 | period)), "not a random-effects term of the model")
    expect_error(simulate(fit, use.u = TRUE, re.form = NA), "conflicts")
    expect_error(simulate(fit, use.u = FALSE, re.form = ~ (1 | herd)), "conflicts")
    fs <- glmmfit(y ~ x + (x | g), sim, family = binomial)
    expect_error(simulate(fs, re.form = ~ (1 | g)), "whole random-effects terms")
    expect_error(simulate(fit, nsim = 0), "'nsim' must be")
    expect_error(refit(fit, 1:3), "3 values for 56 observations")
    expect_error(refit(fit, cbpp$incidence), "must lie in \\[0, 1\\]")
    expect_error(refit(fit, cbpp$incidence, maxit = 5), "'maxit' is not supported")
    fp <- suppressWarnings(glmmfit(prop ~ x + (1 | g), sim, family = binomial, weights = trials + 0.5))
    expect_error(simulate(fp), "non-integer prior weights")
    expect_error(parboot(fit, nsim = 2, FUN = function(f) stop("boom"))$t0, "boom")
    b <- parboot(fit, nsim = 2, seed = 1, FUN = function(f) if (identical(f, fit)) 1 else stop("boom"))
    expect_identical(b$status, c(2L, 2L))
    expect_identical(b$messages, "boom")
})
