## nlme's corARMA(p, q) and corSymm as residual correlation components,
## against nlme::lme (each model fitted by both in the test).

ovary_fixed <- follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time)
ovary_lmm <- follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time) + (1 | Mare)

test_that("corARMA(1, 1), (2, 0) and (0, 1) on Ovary agree with lme, by REML and ML", {
    need("nlme")
    ## nlme's corARMA() defaults to form = ~ 1, which lme groups by Mare:
    ## the autocorrelations at lags in the rows' order within each mare
    ## (Ovary's Time is not integer valued)
    Ovary <- ovary_plain()
    for (pq in list(c(1, 1), c(2, 0), c(0, 1))) for (reml in c(TRUE, FALSE)) {
        cs <- nlme::corARMA(p = pq[1], q = pq[2])
        ours <- lmmfit(ovary_lmm, data = Ovary, REML = reml, correlation = cs)
        theirs <- nlme::lme(ovary_fixed, random = ~ 1 | Mare, data = Ovary, method = if (reml) "REML" else "ML",
                            correlation = cs, control = NLME_TIGHT())
        info <- sprintf("ARMA(%d,%d), REML = %s", pq[1], pq[2], reml)
        expect_nlme_agree(ours, theirs)
        expect_equal(corpar(ours), nlme_corpar(theirs), tolerance = RESID_PAR_TOL, info = info)
        expect_equal(sigma(ours), theirs$sigma, tolerance = RESID_PAR_TOL, info = info)
    }
})

test_that("corARMA on integer times with gaps agrees with lme", {
    need("nlme")
    ## every third observation of each mare dropped: lags of 1 and 2 in the
    ## integer time t (the row's number within the mare)
    Ovary <- ovary_plain()
    Ovary$t <- ave(seq_len(nrow(Ovary)), Ovary$Mare, FUN = seq_along)
    Ovary <- Ovary[Ovary$t %% 3 != 0, ]
    cs <- nlme::corARMA(form = ~ t | Mare, p = 1, q = 1)
    ours <- lmmfit(ovary_lmm, data = Ovary, correlation = cs)
    theirs <- nlme::lme(ovary_fixed, random = ~ 1 | Mare, data = Ovary, correlation = cs, control = NLME_TIGHT())
    expect_nlme_agree(ours, theirs)
    expect_equal(corpar(ours), nlme_corpar(theirs), tolerance = RESID_PAR_TOL)
})

test_that("corARMA(1, 0) is corAR1", {
    Ovary <- ovary_plain()
    a <- lmmfit(ovary_lmm, data = Ovary, correlation = nlme::corARMA(form = ~ 1 | Mare, p = 1))
    b <- lmmfit(ovary_lmm, data = Ovary, correlation = nlme::corAR1(form = ~ 1 | Mare))
    expect_lt(abs(as.numeric(logLik(a)) - as.numeric(logLik(b))), 1e-8)
    expect_equal(unname(corpar(a)), unname(corpar(b)), tolerance = RESID_PAR_TOL)
    expect_named(corpar(a), "Phi1")
})

test_that("ARMA autocorrelations of higher orders are the process's (stats::ARMAacf), gaps and all", {
    d <- data.frame(g = rep(1:2, c(6, 5)), t = c(1, 2, 4, 5, 9, 12, 3, 4, 5, 6, 8))
    cor <- lmmfit:::resid_parse_cor(nlme::corARMA(form = ~ t | g, p = 3, q = 2))
    rs <- lmmfit:::resid_structure(cor, list(), d, environment(), list(list(factor = factor(d$g), group = "g")))
    par <- c(0.5, -0.3, 0.2, 0.4, -0.6)     # partial autocorrelations
    co <- lmmfit:::arma_coefficients(par, 3, 2)
    ## stationary and invertible
    expect_true(all(Mod(polyroot(c(1, -co[1:3]))) > 1))
    expect_true(all(Mod(polyroot(c(1, co[4:5]))) > 1))
    acf <- stats::ARMAacf(ar = co[1:3], ma = co[4:5], lag.max = 11)
    C <- outer(seq_len(11), seq_len(11), function(i, j) ifelse(d$g[i] == d$g[j], acf[abs(d$t[i] - d$t[j]) + 1], 0))
    L <- .Call(lmmfit:::C_lmm_resid_transform, rs$spec, par, diag(11), TRUE)
    expect_equal(tcrossprod(L), C, tolerance = 1e-12)
    W <- .Call(lmmfit:::C_lmm_resid_transform, rs$spec, par, diag(11), FALSE)
    expect_equal(attr(W, "logdet"), as.numeric(determinant(C)$modulus), tolerance = 1e-12)
})

test_that("normalized residuals of an ARMA fit are nlme's", {
    need("nlme")
    Ovary <- ovary_plain()
    cs <- nlme::corARMA(form = ~ 1 | Mare, p = 1, q = 1)
    ours <- lmmfit(ovary_lmm, data = Ovary, correlation = cs)
    theirs <- nlme::lme(ovary_fixed, random = ~ 1 | Mare, data = Ovary, correlation = cs, control = NLME_TIGHT())
    expect_equal(as.numeric(residuals(ours, type = "normalized")), as.numeric(residuals(theirs, type = "normalized")),
                 tolerance = RESID_PAR_TOL)
    out <- capture.output(summary(ours))
    expect_true(any(grepl("^Correlation Structure: ARMA\\(1,1\\)", out)))
})

test_that("corARMA: bad times, orders and arguments get clear errors", {
    Ovary <- ovary_plain()
    expect_error(lmmfit(ovary_lmm, data = Ovary, correlation = nlme::corARMA(form = ~ Time | Mare, p = 1)),
                 "corARMA\\(\\): the time 'Time' must be integer valued")
    Ovary$t <- ave(seq_len(nrow(Ovary)), Ovary$Mare, FUN = seq_along)
    dup <- Ovary
    dup$t[2] <- dup$t[1]
    expect_error(lmmfit(ovary_lmm, data = dup, correlation = nlme::corARMA(form = ~ t | Mare, p = 1)),
                 "times that repeat within a group")
    expect_error(suppressWarnings(lmmfit(ovary_lmm, data = Ovary, correlation = nlme::corARMA(p = 0, q = 0))),
                 "no correlation")
    expect_error(lmmfit(ovary_lmm, data = Ovary, correlation = nlme::corARMA(c(0.3, 0.1), p = 1, q = 1)),
                 "value = ...")
    expect_error(lmmfit(ovary_lmm, data = Ovary, correlation = nlme::corARMA(p = 1, fixed = TRUE)),
                 "fixed = TRUE")
    ## three parameters, groups of two observations
    d <- Ovary[Ovary$t <= 2, ]
    expect_error(lmmfit(ovary_lmm, data = d, correlation = nlme::corARMA(form = ~ t | Mare, p = 2, q = 1)),
                 "not estimable")
    d <- Ovary
    d$t <- d$t * 1e5
    expect_error(lmmfit(ovary_lmm, data = d, correlation = nlme::corARMA(form = ~ t | Mare, p = 1)),
                 "span")
})

test_that("corSymm on Orthodont agrees with lme, by REML and ML", {
    need("nlme")
    ## a random intercept beside a general correlation of the same subject:
    ## tau^2 11' + sigma^2 C has 7 free values for 8 parameters, a ridge
    ## along which the likelihood is flat, so the fits are compared on what
    ## the data identify (logLik, fixed effects, each subject's marginal
    ## covariance), not on the correlations themselves
    Orthodont <- nlme::Orthodont
    cs <- nlme::corSymm(form = ~ 1 | Subject)
    for (reml in c(TRUE, FALSE)) {
        ours <- lmmfit(distance ~ age + Sex + (1 | Subject), data = Orthodont, REML = reml, correlation = cs)
        theirs <- nlme::lme(distance ~ age + Sex, random = ~ 1 | Subject, data = Orthodont, correlation = cs,
                            method = if (reml) "REML" else "ML", control = NLME_TIGHT())
        expect_nlme_agree(ours, theirs)
        V <- unname(VarCorr(ours)$Subject[1, 1]) + sigma(ours)^2 * lmmfit:::corsymm_matrix(ours$resid$par, 4L)
        Vn <- unclass(nlme::getVarCov(theirs, type = "marginal", individuals = "M01")[[1L]])
        expect_equal(V, unname(Vn[, ]), tolerance = RESID_PAR_TOL)
        expect_length(corpar(ours), 6L)
    }
    out <- capture.output(summary(ours))
    expect_true(any(grepl("^Correlation Structure: General", out)))
    expect_true(any(grepl("^ Correlation:", out)))
})

test_that("corSymm's correlations agree with lme where they are identified, groups missing positions", {
    need("nlme")
    d <- symm_clusters()
    cs <- nlme::corSymm(form = ~ visit | cluster/subject)
    for (reml in c(TRUE, FALSE)) {
        ours <- lmmfit(z ~ x + (1 | cluster), data = d, REML = reml, correlation = cs)
        theirs <- nlme::lme(z ~ x, random = ~ 1 | cluster, data = d, correlation = cs,
                            method = if (reml) "REML" else "ML", control = NLME_TIGHT())
        expect_nlme_agree(ours, theirs)
        expect_equal(unname(corpar(ours)), unname(nlme_corpar(theirs)), tolerance = RESID_PAR_TOL)
        expect_equal(sigma(ours), theirs$sigma, tolerance = RESID_PAR_TOL)
    }
    expect_named(corpar(ours)[1:2], c("Rho(2,1)", "Rho(3,1)"))
})

test_that("corSymm: bad positions get clear errors", {
    d <- symm_clusters()
    fo <- z ~ x + (1 | cluster)
    d$half <- d$visit / 2
    expect_error(lmmfit(fo, data = d, correlation = nlme::corSymm(form = ~ half | cluster/subject)),
                 "must be an integer 1, 2, ..., T")
    dup <- d
    i <- which(diff(d$visit) == 1L)[1L]      # rows i and i + 1: one subject's consecutive visits
    dup$visit[i + 1L] <- dup$visit[i]
    expect_error(lmmfit(fo, data = dup, correlation = nlme::corSymm(form = ~ visit | cluster/subject)),
                 "positions that repeat within a group")
    d$v2 <- d$visit + 1L
    expect_error(lmmfit(fo, data = d, correlation = nlme::corSymm(form = ~ v2 | cluster/subject)),
                 "1 never occurs")
    ## positions 1 and 2 never in one group: visits 1 and 3 for some, 2 and 4 for others
    e <- d[(d$subject == 1 & d$visit %in% c(1, 3)) | (d$subject > 1 & d$visit %in% c(2, 4)), ]
    expect_error(lmmfit(fo, data = e, correlation = nlme::corSymm(form = ~ visit | cluster/subject)),
                 "positions 1 and 2 never occur in the same group")
    big <- data.frame(g = rep(1:5, each = lmmfit:::CORSYMM_MAX_T + 1L))
    big$y <- rnorm(nrow(big)) + big$g
    expect_error(lmmfit(y ~ 1 + (1 | g), data = big, correlation = nlme::corSymm(form = ~ 1 | g)),
                 sprintf("at most %d positions", lmmfit:::CORSYMM_MAX_T))
    expect_error(lmmfit(fo, data = d, correlation = nlme::corSymm(c(0.1, 0.2, 0.3), form = ~ 1 | cluster/subject)),
                 "value = ...")
})
