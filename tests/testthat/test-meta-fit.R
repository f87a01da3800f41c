## metafit() against metafor::rma on the BCG trials: every method, with and
## without the moderator, z and Knapp-Hartung tests.

compare_rma <- function(a, b) {
    expect_rel(a$beta, b$beta)
    expect_rel(sqrt(diag(a$vb)), b$se)
    expect_rel(a$coef_table$stat, b$zval)
    expect_rel(a$coef_table$pval, b$pval)
    expect_rel(a$coef_table$ci.lb, b$ci.lb)
    expect_rel(a$coef_table$ci.ub, b$ci.ub)
    expect_rel(a$QE, b$QE)
    expect_rel(a$QEp, b$QEp)
    expect_rel(a$I2, b$I2)
    expect_rel(a$H2, b$H2)
    if (a$method != "FE") {
        expect_rel(a$tau2, b$tau2)
        expect_rel(a$se.tau2, b$se.tau2)
    }
    if (length(a$beta) > 1L) {
        expect_rel(a$QM$stat, b$QM)
        expect_rel(a$QM$pval, b$QMp)
        if (a$method != "FE") expect_rel(a$R2, b$R2)
    }
    expect_rel(as.matrix(a$fit_stats), as.matrix(b$fit.stats))
}

test_that("the BCG random-effects model by REML gives the published numbers", {
    dat <- bcg_rr()
    fit <- metafit(yi ~ 1 + (1 | trial), vi = vi, data = dat)
    ## Viechtbauer (2010) and metafor's documentation print these
    expect_equal(round(fit$tau2, 4), 0.3132)
    expect_equal(round(fit$se.tau2, 4), 0.1664)
    expect_equal(round(fit$I2, 2), 92.22)
    expect_equal(round(fit$H2, 2), 12.86)
    expect_equal(round(fit$QE, 4), 152.2330)
    expect_equal(round(unname(fit$beta), 4), -0.7145)
    expect_equal(round(unname(fit$coef_table$se), 4), 0.1798)
    expect_equal(round(unname(c(fit$coef_table$ci.lb, fit$coef_table$ci.ub)), 4), c(-1.0669, -0.3622))
})

test_that("every method, with and without the moderator, z and Knapp-Hartung, agrees with rma", {
    dat <- bcg_rr()
    for (method in c("REML", "ML", "DL", "PM", "HE", "SJ", "FE")) for (test in c("z", "knha")) {
        for (mods in c(FALSE, TRUE)) {
            f <- if (mods) yi ~ ablat + (1 | trial) else yi ~ 1 + (1 | trial)
            a <- if (method == "FE" && test == "knha") suppressWarnings(metafit(f, vi = vi, data = dat,
                     method = method, test = test)) else metafit(f, vi = vi, data = dat, method = method, test = test)
            b <- suppressWarnings(if (mods) metafor::rma(yi, vi, mods = ~ ablat, data = dat, method = method,
                                                         test = test, control = RMA_TIGHT)
                                  else metafor::rma(yi, vi, data = dat, method = method, test = test,
                                                    control = RMA_TIGHT))
            compare_rma(a, b)
        }
    }
})

test_that("a formula without random terms is the common-effect model", {
    dat <- bcg_rr()
    a <- metafit(yi ~ ablat, vi = vi, data = dat)
    expect_identical(a$method, "FE")
    compare_rma(a, metafor::rma(yi, vi, mods = ~ ablat, data = dat, method = "FE"))
    expect_error(metafit(yi ~ ablat, vi = vi, data = dat, method = "REML"), "no random-effects term")
})

test_that("our REML optimum is never worse than rma's tightly converged one", {
    dat <- bcg_rr()
    for (method in c("REML", "ML")) {
        a <- metafit(yi ~ ablat + (1 | trial), vi = vi, data = dat, method = method)
        b <- metafor::rma(yi, vi, mods = ~ ablat, data = dat, method = method, control = RMA_TIGHT)
        expect_gte(as.numeric(logLik(a)), as.numeric(logLik(b)) - OPTIMUM_TOL / 2)
    }
})

test_that("the three-level model of Konstantopoulos (2011) agrees with rma.mv", {
    need("metafor")
    dat <- meta_dat("dat.konstantopoulos2011")
    for (method in c("REML", "ML")) {
        a <- metafit(yi ~ year + (1 | district/school), vi = vi, data = dat, method = method)
        b <- metafor::rma.mv(yi, vi, mods = ~ year, random = ~ 1 | district/school, data = dat,
                             method = method, control = RMA_MV_TIGHT)
        expect_rel(vapply(a$components, function(cm) cm$cov[1L], 0), b$sigma2)
        expect_rel(a$beta, b$beta)
        expect_rel(sqrt(diag(a$vb)), b$se)
        expect_rel(a$QE, b$QE)
        expect_rel(a$QM$stat, b$QM)
        expect_rel(as.matrix(a$fit_stats), as.matrix(b$fit.stats))
        expect_gte(as.numeric(logLik(a)), as.numeric(logLik(b)) - OPTIMUM_TOL / 2)
    }
})

test_that("dependent effects with a known covariance matrix agree with rma.mv (Berkey 1998)", {
    need("metafor")
    dat <- meta_dat("dat.berkey1998")
    V <- metafor::vcalc(vi = 1, cluster = author, rvars = c(v1i, v2i), data = dat)
    a <- metafit(yi ~ 0 + outcome + (0 + outcome | trial), V = V, data = dat)
    b <- metafor::rma.mv(yi, V, mods = ~ outcome - 1, random = ~ outcome | trial, struct = "UN",
                         data = dat, control = RMA_MV_TIGHT)
    S <- a$components[[1L]]$cov
    expect_rel(diag(S), b$tau2)
    expect_rel(stats::cov2cor(S)[2, 1], b$rho)
    expect_rel(a$beta, b$beta)
    expect_rel(sqrt(diag(a$vb)), b$se)
    expect_rel(a$QE, b$QE)
    expect_rel(a$QM$stat, b$QM)
    expect_rel(as.matrix(a$fit_stats["ll", ]), as.matrix(b$fit.stats["ll", ]))
    ## V as a list of its blocks gives the same fit
    blocks <- lapply(split(seq_len(nrow(dat)), dat$trial), function(i) V[i, i])
    a2 <- metafit(yi ~ 0 + outcome + (0 + outcome | trial), V = blocks, data = dat)
    expect_equal(a2$beta, a$beta, tolerance = 1e-10)
})

test_that("a diagonal V is the same as vi", {
    dat <- bcg_rr()
    a <- metafit(yi ~ 1 + (1 | trial), vi = vi, data = dat)
    b <- metafit(yi ~ 1 + (1 | trial), V = diag(dat$vi), data = dat)
    expect_equal(b$tau2, a$tau2, tolerance = 1e-10)
    expect_equal(b$beta, a$beta, tolerance = 1e-10)
})

test_that("bad input gets a clear error", {
    dat <- bcg_rr()
    expect_error(metafit(yi ~ 1 + (1 | trial), data = dat), "exactly one of 'vi'")
    expect_error(metafit(yi ~ 1 + (1 | trial), vi = -vi, data = dat), "must be positive")
    d0 <- dat; d0$vi[3] <- 0
    expect_error(metafit(yi ~ 1 + (1 | trial), vi = vi, data = d0), "zero or negative")
    dna <- dat; dna$yi[2] <- NA
    expect_warning(f <- metafit(yi ~ 1 + (1 | trial), vi = vi, data = dna), "1 effect with missing values omitted")
    expect_identical(nobs(f), 12L)
    expect_error(metafit(yi ~ 1 + (1 | trial), vi = vi, data = dna, na.action = na.fail), "missing values")
    expect_error(metafit(yi ~ 1 + (1 | trial), vi = vi, data = dat[1, ]), "at least two effects")
    expect_error(metafit(yi ~ 1 + (1 | trial), vi = vi, data = dat, method = "EB"), "'method' must be one of")
    expect_error(metafit(yi ~ 1 + (1 | trial), vi = vi, data = dat, test = "adhoc"), "'test' must be one of")
    V <- diag(dat$vi); V[1, 2] <- V[2, 1] <- 1
    expect_error(metafit(yi ~ 1 + (1 | trial), V = V, data = dat), "not positive definite")
    V[1, 2] <- 0.01
    expect_error(metafit(yi ~ 1 + (1 | trial), V = V, data = dat), "symmetric")
    need("metafor")
    dm <- meta_dat("dat.konstantopoulos2011")
    expect_error(metafit(yi ~ 1 + (1 | district/school), vi = vi, data = dm, method = "DL"), "moment estimator")
    expect_error(metafit(yi ~ 1 + (1 | district/school), vi = vi, data = dm, test = "knha"), "knha")
    ## correlated effects across studies of a random term
    Vb <- diag(dm$vi); Vb[1, 12] <- Vb[12, 1] <- 0.5 * sqrt(dm$vi[1] * dm$vi[12])
    expect_true(dm$district[1] != dm$district[12])
    expect_error(metafit(yi ~ 1 + (1 | district), V = Vb, data = dm), "varies within a block")
})

test_that("identical studies: no heterogeneity, as rma finds", {
    d <- data.frame(yi = rep(0.3, 6), vi = rep(0.04, 6), s = 1:6)
    a <- metafit(yi ~ 1 + (1 | s), vi = vi, data = d)
    expect_equal(a$tau2, 0)
    expect_equal(unname(a$beta), 0.3)
    expect_equal(a$QE, 0, tolerance = 1e-12)
    need("metafor")
    b <- metafor::rma(yi, vi, data = d)
    expect_rel(sqrt(diag(a$vb)), b$se)
})
