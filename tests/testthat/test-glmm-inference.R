## anova(), update() and confint() of glmmfit models against lme4 on glmer
## fits converged tightly (see test-glmm-fit.R); confint(method = "boot")
## against the quantiles of parboot()'s replicates.
skip_if_not_installed("lme4")
suppressPackageStartupMessages(library(lme4))
## the criterion, -2 log L (deviance() is lme4's conditional deviance)
crit <- function(fit) -2 * as.numeric(logLik(fit))

data(cbpp, package = "lme4")
cbpp_formula <- cbind(incidence, size - incidence) ~ period + (1 | herd)
cbpp_null <- cbind(incidence, size - incidence) ~ 1 + (1 | herd)

## glmer converged tightly, called directly (not through do.call) so that
## its call names the data 'cbpp', which lme4's anova() compares
tight_control <- function()
    glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-13,
                 optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-14, xtol_rel = 1e-14, maxeval = 1e5))
g1 <- suppressWarnings(glmer(cbpp_formula, data = cbpp, family = binomial, control = tight_control()))
g0 <- suppressWarnings(glmer(cbpp_null, data = cbpp, family = binomial, control = tight_control()))
f1 <- glmmfit(cbpp_formula, data = cbpp, family = binomial)
f0 <- glmmfit(cbpp_null, data = cbpp, family = binomial)
cbpp_glm <- glm(cbind(incidence, size - incidence) ~ period, family = binomial, data = cbpp)

## Our deviances agree with tight glmer's to ~1e-10 relative on cbpp
## (measured: 7e-11), so every column of the table agrees to 1e-6
## relative; Chisq, a difference of deviances, measured 1e-9 (2e-10 and
## 1e-9 against the null and the glm).
expect_anova_equal <- function(ours, theirs) {
    expect_identical(rownames(ours), rownames(theirs))
    expect_identical(names(ours), names(theirs))
    expect_identical(ours$npar, theirs$npar)
    expect_identical(ours$Df, theirs$Df)
    for (col in c("AIC", "BIC", "logLik", "deviance", "Chisq", "Pr(>Chisq)"))
        expect_equal(ours[[col]], theirs[[col]], tolerance = 1e-6)
}

test_that("anova() of nested glmmfit models is lme4's likelihood-ratio table", {
    ## given in decreasing size: the table sorts by npar as lme4's does
    a <- anova(f1, f0)
    expect_s3_class(a, "anova")
    expect_anova_equal(a, anova(g1, g0, model.names = c("f1", "f0")))
    expect_identical(attr(a, "heading")[1:2], c("Data: cbpp", "Models:"))
    expect_identical(rownames(a), c("f0", "f1"))
    ## the statistic and its p-value in closed form
    expect_equal(a$Chisq[2], crit(f0) - crit(f1), tolerance = 1e-12)
    expect_equal(a$`Pr(>Chisq)`[2], pchisq(crit(f0) - crit(f1), 3, lower.tail = FALSE),
                 tolerance = 1e-12)
    expect_identical(rownames(anova(f0, f1, model.names = c("null", "period"))), c("null", "period"))
    expect_output(print(a), "Pr\\(>Chisq\\)")
})

test_that("anova() compares a glmmfit with a glm fit of the same response as lme4", {
    expect_anova_equal(anova(f1, cbpp_glm), anova(g1, cbpp_glm, model.names = c("f1", "cbpp_glm")))
    ## three models, one an AGQ fit (its log-likelihood keeps the binomial's
    ## constant, so it is commensurate with glm's): the glm is the smallest
    f25 <- glmmfit(cbpp_formula, data = cbpp, family = binomial, nAGQ = 9)
    a <- anova(f1, cbpp_glm, f25, model.names = c("laplace", "glm", "agq"))
    expect_identical(rownames(a), c("glm", "laplace", "agq"))
    expect_equal(a$logLik, c(logLik(cbpp_glm), logLik(f1), logLik(f25)), tolerance = 1e-12, ignore_attr = TRUE)
})

test_that("anova() of one model is lme4's sequential table", {
    ## (R_X at the mode: measured 2e-8 relative to glmer's in Sum Sq)
    a <- anova(f1)
    b <- anova(g1)
    expect_identical(rownames(a), rownames(b))
    expect_identical(a$npar, b$npar)
    for (col in c("Sum Sq", "Mean Sq", "F value")) expect_equal(a[[col]], b[[col]], tolerance = 1e-6)
})

test_that("anova() refuses models fitted to other observations, by name", {
    d <- cbpp
    fd <- glmmfit(cbpp_null, data = d, family = binomial)
    expect_error(anova(f1, fd), "'fd' is fitted to data 'd', 'f1' to 'cbpp'")
    fs <- glmmfit(cbpp_null, data = cbpp, family = binomial, subset = size > 5)
    expect_error(anova(f1, fs), "'fs' is fitted to another subset")
    fr <- glmmfit(cbind(size - incidence, incidence) ~ 1 + (1 | herd), data = cbpp, family = binomial)
    expect_error(anova(f1, fr), "'fr' is fitted to another response or other weights than 'f1'")
    fp <- glmmfit(cbind(incidence, size - incidence) ~ 1 + (1 | herd), data = cbpp,
                  family = binomial(link = "probit"))
    expect_error(anova(f1, fp), "'fp' is of family binomial \\(probit link\\), 'f1' of binomial \\(logit link\\)")
    gl <- glm(incidence ~ period, family = poisson, data = cbpp)
    expect_error(anova(f1, gl), "'gl' is of family poisson")
    expect_error(anova(f1, lm(incidence ~ period, cbpp)), "not with an object of class \"lm\"")
    expect_error(anova(f1, test = "F"), "unknown argument 'test'")
    expect_error(anova(f1, f1), "names must differ")
    expect_error(anova(f1, model.names = "a"), "only one model")
})

test_that("update() refits through the call", {
    u <- update(f1, . ~ . - period)
    expect_equal(crit(u), crit(f0), tolerance = 1e-10)
    expect_equal(fixef(u), fixef(f0), tolerance = 1e-10)
    u25 <- update(f1, nAGQ = 25)
    direct <- glmmfit(cbpp_formula, data = cbpp, family = binomial, nAGQ = 25)
    expect_identical(u25$nAGQ, 25L)
    expect_equal(crit(u25), crit(direct), tolerance = 1e-10)
    up <- update(f1, family = binomial(link = "probit"))
    expect_identical(family(up)$link, "probit")
})

test_that("Wald intervals are lme4's, NA for theta", {
    ## (vcov: the finite-difference Hessian's, 2e-6 relative from glmer's on
    ## cbpp's canonical link, where glmer's stored Hessian is right)
    ci <- confint(f1)
    ref <- confint(g1, method = "Wald")
    expect_identical(dimnames(ci), dimnames(ref))
    expect_true(all(is.na(ci[".sig01", ])))
    expect_equal(ci[-1, ], ref[-1, ], tolerance = 1e-5)
    ## the closed form at level 0.9 from our own standard errors
    se <- sqrt(diag(vcov(f1)))
    expect_equal(unname(confint(f1, "period2", level = 0.9)[1, ]),
                 unname(fixef(f1)["period2"] + c(-1, 1) * qnorm(0.95) * se["period2"]), tolerance = 1e-14)
    expect_identical(rownames(confint(f1, "beta_")), names(fixef(f1)))
    expect_identical(rownames(confint(f1, "theta_")), ".sig01")
    expect_identical(rownames(confint(f1, c(3, 1))), c("period2", ".sig01"))
    expect_identical(colnames(confint(f1, level = 0.9)), c("5 %", "95 %"))
})

test_that("bootstrap intervals are the percentiles of parboot()'s replicates", {
    nsim <- 40
    ci <- confint(f1, method = "boot", nsim = nsim, seed = 7)
    b <- parboot(f1, nsim = nsim, seed = 7)
    expect_identical(rownames(ci), c(".sig01", names(fixef(f1))))
    q <- function(j, p) quantile(b$t[, j], p, type = 6, names = FALSE)
    expect_equal(unname(ci[".sig01", ]), c(q("sd_(Intercept)|herd", 0.025), q("sd_(Intercept)|herd", 0.975)),
                 tolerance = 1e-14)
    expect_equal(unname(ci["period3", ]), c(q("period3", 0.025), q("period3", 0.975)), tolerance = 1e-14)
    ## lme4's quiet = TRUE changes nothing when every replicate is usable
    expect_identical(confint(f1, method = "boot", nsim = nsim, seed = 7, quiet = TRUE), ci)
    basic <- confint(f1, "period3", method = "boot", nsim = nsim, seed = 7, boot.type = "basic")
    expect_equal(unname(basic[1, ]), 2 * fixef(f1)[["period3"]] - c(q("period3", 0.975), q("period3", 0.025)),
                 tolerance = 1e-14)
})

test_that("confint() refuses what it does not do, by name", {
    ## (method = "profile": test-glmm-profile.R; zeta is its argument only)
    expect_error(confint(f1, level = 2), "'level' must be")
    expect_error(confint(f1, "nope"), "unknown parameter in 'parm': nope")
    expect_error(confint(f1, zeta = 2), "'zeta' is not supported.*method = \"profile\" only")
    expect_error(confint(f1, method = "boot", nsim = 2, FUN = fixef), "'FUN' is not supported")
    expect_warning(confint(f1, bogus = 1), "'bogus' ignored")
})

test_that("pbtest() of a random effect: replicates refit simulate()'s responses of the null", {
    nsim <- 100
    p <- pbtest(cbpp_glm, f1, nsim = nsim, seed = 1)
    expect_s3_class(p, "htest")
    expect_equal(unname(p$statistic), anova(f1, cbpp_glm)$Chisq[2], tolerance = 1e-12)
    expect_identical(unname(p$parameter), 1)
    expect_identical(p$nfail, 0L)
    expect_equal(p$p.value, (1 + sum(p$LRT_boot >= p$statistic)) / (nsim + 1), tolerance = 1e-14)
    ## the null's boundary: about half the replicates' LRT is 0
    expect_gt(sum(p$LRT_boot == 0), nsim / 4)
    ## each replicate from stats::simulate() of the glm, refitted by glm()
    ## and refit(): one at LRT = 0, one above
    s <- simulate(cbpp_glm, nsim = nsim, seed = 1)
    for (i in c(which(p$LRT_boot == 0)[1], which(p$LRT_boot > 0)[1])) {
        d <- cbpp
        d$incidence <- s[[i]][, 1]
        g_i <- glm(cbind(incidence, size - incidence) ~ period, family = binomial, data = d)
        lrt <- -2 * as.numeric(logLik(g_i)) - crit(suppressMessages(refit(f1, s[[i]])))
        expect_equal(p$LRT_boot[i], if (abs(lrt) < 1e-8) 0 else lrt, tolerance = 1e-8)
    }
    ## a glmmfit null: its own simulate() and refits
    p0 <- pbtest(f0, f1, nsim = 10, seed = 2)
    s0 <- simulate(f0, nsim = 10, seed = 2)
    expect_equal(p0$LRT_boot[10], crit(refit(f0, s0[[10]])) - crit(refit(f1, s0[[10]])),
                 tolerance = 1e-12)
    expect_output(print(p0), "chi-square\\(3\\) p-value")
    expect_error(pbtest(f1, f0, nsim = 2), "fewer parameters")
    expect_error(pbtest(lm(incidence ~ period, cbpp), f1, nsim = 2),
                 "'fit0' must be a glmmfit\\(\\) or glm\\(\\) fit")
    fd <- glmmfit(cbpp_null, data = transform(cbpp), family = binomial)
    expect_error(pbtest(fd, f1, nsim = 2),
                 "pbtest\\(\\): .* 'fit1' is fitted to data 'cbpp', 'fit0' to 'transform\\(cbpp\\)'")
})
