## lme4's generics, methods and argument conventions on lmmfit fits, each
## compared with lme4 fitted in the same test.  Where a quantity depends on
## the estimates, lme4 is evaluated at lmmfit's theta (no optimizer), so the
## two agree to rounding and the comparisons can be tight.

IDIOM_TOL <- 1e-6

## lme4 at lmmfit's covariance estimates: same model, no optimisation.
lmer_at <- function(fit, formula, data, ...) {
    ## do.call: weights and offsets go in as values, not as symbols for
    ## lme4's model.frame() to look up
    suppressMessages(suppressWarnings(do.call(lme4::lmer, list(
        formula, data, REML = fit$REML, start = list(theta = unname(fit$theta)),
        control = lme4::lmerControl(optimizer = NULL, calc.derivs = FALSE), ...))))
}

sleep2 <- function() {
    data(sleepstudy, package = "lme4", envir = environment())
    d <- sleepstudy
    d$g2 <- factor(rep(1:9, 20))
    d$w <- rep(c(0.5, 1, 2), 60)
    d$off <- rep(c(1, -2, 0.5, 3), 45)
    d
}

dense <- function(x) if (inherits(x, "Matrix")) as.matrix(x) else x

expect_getme_lme4 <- function(fit, m) {
    same <- c("X", "Z", "Zt", "y", "mu", "u", "b", "Gp", "Tp", "Lambda", "Lambdat", "Lind",
              "Tlist", "A", "RX", "sigma", "fixef", "beta", "theta", "ST", "REML", "is_REML",
              "n_rtrms", "n_rfacs", "N", "n", "p", "q", "p_i", "l_i", "q_i", "k", "m_i", "m",
              "cnms", "offset", "lower")
    for (nm in same) {
        a <- lme4::getME(fit, nm)
        b <- lme4::getME(m, nm)
        if (is.list(a) && !is.data.frame(a)) {
            expect_identical(names(a), names(b), label = paste("names of", nm))
            for (i in seq_along(b))
                expect_equal(dense(a[[i]]), dense(b[[i]]), tolerance = IDIOM_TOL, ignore_attr = TRUE,
                             label = paste0(nm, "[[", i, "]]"))
        } else {
            expect_equal(dense(a), dense(b), tolerance = IDIOM_TOL, ignore_attr = TRUE, label = nm)
            if (!is.null(names(b))) expect_identical(names(a), names(b), label = paste("names of", nm))
        }
    }
    ## lists of matrices
    for (nm in c("Ztlist", "mmList")) {
        a <- lme4::getME(fit, nm); b <- lme4::getME(m, nm)
        expect_identical(names(a), names(b), label = nm)
        for (i in seq_along(b)) expect_equal(dense(a[[i]]), dense(b[[i]]), ignore_attr = TRUE,
                                             tolerance = IDIOM_TOL, label = paste(nm, i))
    }
    fl <- lme4::getME(fit, "flist"); fl0 <- lme4::getME(m, "flist")
    expect_identical(names(fl), names(fl0))
    for (g in names(fl0)) expect_identical(fl[[g]], fl0[[g]])
    ## devcomp: every component lme4 gives
    dc <- lme4::getME(fit, "devcomp"); dc0 <- lme4::getME(m, "devcomp")
    expect_identical(names(dc$dims), names(dc0$dims))
    expect_equal(dc$dims, dc0$dims)
    expect_identical(names(dc$cmp), names(dc0$cmp))
    expect_equal(dc$cmp, dc0$cmp, tolerance = IDIOM_TOL)
    ## L and RZX: lme4's are permuted; L L' and RZX'RZX are not
    L <- lme4::getME(fit, "L")
    e <- Matrix::expand(lme4::getME(m, "L"))
    LL0 <- as.matrix(Matrix::crossprod(e$P, Matrix::tcrossprod(e$L)) %*% e$P)
    expect_equal(tcrossprod(L), LL0, tolerance = IDIOM_TOL, ignore_attr = TRUE)
    expect_equal(crossprod(lme4::getME(fit, "RZX")), as.matrix(crossprod(lme4::getME(m, "RZX"))),
                 tolerance = IDIOM_TOL, ignore_attr = TRUE)
    ## several names: a named list
    two <- lme4::getME(fit, c("theta", "sigma"))
    expect_identical(names(two), c("theta", "sigma"))
    all <- getME(fit, "ALL")
    expect_true(all(setdiff(names(lme4::getME(m, "ALL")), c("devfun", "glmer.nb.theta")) %in% names(all)))
    expect_error(getME(fit, "devfun"), "'devfun'")
    expect_error(getME(fit, "nonsense"), "unknown component 'nonsense'")
}

test_that("getME with lme4's names gives lme4's components (REML, ML, weights, offset, two terms)", {
    need_lme4()
    d <- sleep2()
    cases <- list(
        list(Reaction ~ Days + (Days | Subject), TRUE, NULL, NULL),
        list(Reaction ~ Days + (Days | Subject) + (1 | g2), FALSE, NULL, NULL),
        list(Reaction ~ Days + (Days || Subject), TRUE, d$w, NULL),
        list(Reaction ~ Days + (1 | Subject), TRUE, NULL, d$off))
    for (cs in cases) {
        f <- cs[[1]]
        w <- cs[[3]]; off <- cs[[4]]
        d$.w <- if (is.null(w)) 1 else w
        d$.off <- if (is.null(off)) 0 else off
        fit <- if (is.null(w) && is.null(off)) suppressMessages(lmmfit(f, d, REML = cs[[2]]))
               else if (!is.null(w)) suppressMessages(lmmfit(f, d, REML = cs[[2]], weights = .w))
               else suppressMessages(lmmfit(f, d, REML = cs[[2]], offset = .off))
        m <- if (is.null(w) && is.null(off)) lmer_at(fit, f, d)
             else if (!is.null(w)) lmer_at(fit, f, d, weights = d$.w)
             else lmer_at(fit, f, d, offset = d$.off)
        expect_getme_lme4(fit, m)
        ## lmmfit's exported getME is the same function on lmmfit fits
        expect_identical(getME(fit, "theta"), lme4::getME(fit, "theta"))
    }
})

test_that("lme4's generics accept lmmfit fits: isSingular, ngrps, refit, refitML, isREML, isLMM, isGLMM, isNLMM", {
    need_lme4()
    d <- sleep2()
    f <- Reaction ~ Days + (Days | Subject) + (1 | g2)
    fit <- suppressMessages(lmmfit(f, d))
    m <- lmer_at(fit, f, d)
    expect_identical(lme4::isSingular(fit), lme4::isSingular(m))
    expect_identical(isSingular(fit), lme4::isSingular(m))
    expect_identical(lme4::isSingular(fit, tol = 1e-20), lme4::isSingular(m, tol = 1e-20))
    expect_equal(lme4::ngrps(fit), lme4::ngrps(m))
    expect_identical(lme4::isREML(fit), TRUE)
    expect_identical(lme4::isLMM(fit), TRUE)
    expect_identical(lme4::isGLMM(fit), FALSE)
    expect_identical(lme4::isNLMM(fit), FALSE)
    expect_identical(isREML(suppressMessages(lmmfit(f, d, REML = FALSE))), FALSE)
    ## refit through lme4's generic, to a new response
    f1 <- Reaction ~ Days + (Days | Subject)
    fit1 <- lmmfit(f1, d)
    m1 <- suppressMessages(lme4::lmer(f1, d, control = lme4::lmerControl(
        optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))))
    y2 <- d$Reaction + rep(c(-3, 1, 4), 60)
    r <- lme4::refit(fit1, y2)
    expect_s3_class(r, "lmmfit")
    ## (lme4's own refit of this model stops early: the oracle is a fresh fit)
    d$y2 <- y2
    r0 <- suppressMessages(lme4::lmer(y2 ~ Days + (Days | Subject), d, control = lme4::lmerControl(
        optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))))
    expect_equal(deviance(r), lme4_objective(r0), tolerance = IDIOM_TOL)
    expect_equal(fixef(r), lme4::fixef(r0), tolerance = 1e-5)
    ## refitML: the ML fit
    rm <- lme4::refitML(fit1)
    expect_false(rm$REML)
    expect_equal(as.numeric(logLik(rm)), as.numeric(logLik(lme4::refitML(m1))), tolerance = IDIOM_TOL)
    ## the lmer fit through lmmfit's generics
    expect_equal(ngrps(m1), lme4::ngrps(m1))
    expect_identical(isREML(m1), TRUE)
    expect_identical(isLMM(m1), TRUE)
    expect_equal(getME(m1, "theta"), lme4::getME(m1, "theta"))
})

test_that("family, weights, getData, hatvalues, rstudent, cooks.distance match lme4 (with and without weights)", {
    need_lme4()
    d <- sleep2()
    f <- Reaction ~ Days + (Days | Subject)
    for (weighted in c(FALSE, TRUE)) {
        fit <- if (weighted) lmmfit(f, d, weights = w) else lmmfit(f, d)
        m <- if (weighted) lmer_at(fit, f, d, weights = d$w) else lmer_at(fit, f, d)
        fam <- family(fit)
        expect_s3_class(fam, "family")
        expect_identical(fam$family, family(m)$family)
        expect_identical(fam$link, family(m)$link)
        expect_equal(weights(fit), weights(m), ignore_attr = TRUE)
        expect_identical(getData(fit), d)
        expect_equal(hatvalues(fit), hatvalues(m), tolerance = IDIOM_TOL)
        expect_equal(hatvalues(fit, fullHatMatrix = TRUE), as.matrix(hatvalues(m, fullHatMatrix = TRUE)),
                     tolerance = IDIOM_TOL, ignore_attr = TRUE)
        expect_equal(rstudent(fit), rstudent(m), tolerance = IDIOM_TOL)
        expect_equal(cooks.distance(fit), cooks.distance(m), tolerance = IDIOM_TOL)
    }
    ## the (symmetrised) hat matrix maps sqrt(w) y to sqrt(w) times the fitted values
    fit <- lmmfit(f, d, weights = w)
    expect_equal(drop(hatvalues(fit, fullHatMatrix = TRUE) %*% (sqrt(d$w) * d$Reaction)),
                 sqrt(d$w) * fitted(fit), tolerance = IDIOM_TOL, ignore_attr = TRUE)
    expect_error(getData(lmmfit(d$Reaction ~ d$Days + (1 | d$Subject))), "without a 'data' argument")
})

test_that("extractAIC refits REML fits by ML, so drop1 gives lme4's likelihood-ratio table", {
    need_lme4()
    d <- sleep2()
    f <- Reaction ~ Days + I(Days^2) + (1 | Subject)
    fit <- lmmfit(f, d)
    m <- suppressMessages(lme4::lmer(f, d, control = lme4::lmerControl(
        optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))))
    expect_equal(extractAIC(fit), extractAIC(m), tolerance = IDIOM_TOL)
    expect_equal(extractAIC(fit, k = log(180)), extractAIC(m, k = log(180)), tolerance = IDIOM_TOL)
    a <- drop1(fit, test = "Chisq")
    a0 <- drop1(m, test = "Chisq")
    expect_identical(names(a), names(a0))
    expect_identical(rownames(a), rownames(a0))
    for (col in names(a0)) expect_equal(a[[col]], a0[[col]], tolerance = 1e-5, label = col)
    expect_error(drop1(fit, test = "user"), "test = \"user\"")
    expect_error(extractAIC(fit, scale = 2), "'scale'")
})

test_that("influence() deletes each group (or case) as lme4's, with dfbeta, dfbetas, cooks.distance", {
    need_lme4()
    d <- sleep2()
    f <- Reaction ~ Days + (Days | Subject)
    fit <- lmmfit(f, d)
    m <- suppressMessages(lme4::lmer(f, d))
    inf <- influence(fit, "Subject")
    inf0 <- influence(m, "Subject")
    expect_identical(names(inf), names(inf0))
    expect_identical(rownames(inf[["fixed.effects[-Subject]"]]), rownames(inf0[["fixed.effects[-Subject]"]]))
    expect_identical(colnames(inf[["var.cov.comps[-Subject]"]]), colnames(inf0[["var.cov.comps[-Subject]"]]))
    expect_identical(inf$deleted, inf0$deleted)
    ## lme4 stops each deletion's refit at its optimizer's tolerance
    expect_equal(inf[["fixed.effects[-Subject]"]], inf0[["fixed.effects[-Subject]"]], tolerance = 1e-5)
    expect_equal(inf[["var.cov.comps[-Subject]"]], inf0[["var.cov.comps[-Subject]"]], tolerance = 1e-3)
    expect_equal(dfbeta(inf), dfbeta(inf0), tolerance = 1e-4)
    expect_equal(dfbetas(inf), dfbetas(inf0), tolerance = 1e-4)
    expect_equal(cooks.distance(inf), cooks.distance(inf0), tolerance = 1e-4)
    expect_equal(dim(dfbeta(inf, "var.cov")), dim(dfbeta(inf0, "var.cov")))
    expect_true(all(inf$converged))
    ## exact check of the bookkeeping: the deletion refits are lmmfit fits
    one <- lmmfit(f, d[d$Subject != "308", ])
    expect_equal(inf[["fixed.effects[-Subject]"]]["308", ], fixef(one), tolerance = 1e-10)
    expect_equal(inf[["vcov[-Subject]"]][["308"]], vcov(one), tolerance = 1e-10)
    ## case deletion
    small <- d[d$Subject %in% c("308", "309", "310"), ]
    small$Subject <- droplevels(small$Subject)
    fs <- lmmfit(Reaction ~ Days + (1 | Subject), small)
    ms <- suppressMessages(lme4::lmer(Reaction ~ Days + (1 | Subject), small))
    is <- influence(fs)
    is0 <- influence(ms)
    expect_identical(names(is), names(is0))
    expect_equal(is[["fixed.effects[-case]"]], is0[["fixed.effects[-case]"]], tolerance = 1e-4)
    expect_error(influence(fit, "Subject", maxfun = 20), "'maxfun'")
})

test_that("predict(se.fit = TRUE) gives sqrt(x' V x) of lme4's V; random effects are refused", {
    need_lme4()
    d <- sleep2()
    f <- Reaction ~ Days + (Days | Subject)
    fit <- lmmfit(f, d)
    m <- lmer_at(fit, f, d)
    V <- as.matrix(vcov(m))
    nd <- data.frame(Days = c(0, 4.5, 9), Subject = "308")
    p <- predict(fit, nd, re.form = NA, se.fit = TRUE)
    X <- cbind(1, nd$Days)
    expect_equal(unname(p$fit), unname(predict(m, nd, re.form = NA)), tolerance = IDIOM_TOL)
    expect_equal(unname(p$se.fit), sqrt(rowSums((X %*% V) * X)), tolerance = IDIOM_TOL)
    p0 <- predict(fit, re.form = NA, se.fit = TRUE)
    expect_length(p0$se.fit, nrow(d))
    expect_error(predict(fit, nd, se.fit = TRUE), "re.form = NA")
})

test_that("predict(newdata, na.action =) as lme4: na.pass, na.omit, na.exclude, na.fail", {
    need_lme4()
    d <- sleep2()
    f <- Reaction ~ Days + (Days | Subject)
    fit <- lmmfit(f, d)
    m <- lmer_at(fit, f, d)
    nd <- d[1:5, ]
    nd$Days[2] <- NA
    for (na in list(na.pass, na.omit, na.exclude))
        expect_equal(predict(fit, nd, na.action = na), predict(m, nd, na.action = na),
                     tolerance = IDIOM_TOL)
    expect_error(predict(fit, nd, na.action = na.fail), "missing values")
    p <- predict(fit, nd, re.form = NA, se.fit = TRUE, na.action = na.omit)
    expect_identical(names(p$fit), names(p$se.fit))
    expect_length(p$fit, 4L)
    expect_error(predict(fit, nd, newparams = list()), "'newparams'")
    expect_warning(predict(fit, nd, bogus = 1), "'bogus' ignored")
})

test_that("lattice's dotplot and qqmath of ranef(fit) draw lme4's values and intervals", {
    need_lme4()
    need("lattice")
    d <- sleep2()
    f <- Reaction ~ Days + (Days | Subject)
    fit <- lmmfit(f, d)
    m <- lmer_at(fit, f, d)
    dp <- lattice::dotplot(ranef(fit))
    dp0 <- lattice::dotplot(lme4::ranef(m, condVar = TRUE))
    expect_identical(names(dp), names(dp0))
    expect_s3_class(dp$Subject, "trellis")
    for (i in seq_along(dp0$Subject$panel.args)) {
        expect_equal(dp$Subject$panel.args[[i]]$x, dp0$Subject$panel.args[[i]]$x, tolerance = IDIOM_TOL)
        expect_identical(dp$Subject$panel.args[[i]]$y, dp0$Subject$panel.args[[i]]$y)
    }
    expect_equal(dp$Subject$panel.args.common$se, dp0$Subject$panel.args.common$se, tolerance = IDIOM_TOL)
    qq <- lattice::qqmath(ranef(fit))
    qq0 <- lattice::qqmath(lme4::ranef(m, condVar = TRUE))
    expect_identical(names(qq), names(qq0))
    for (i in seq_along(qq0$Subject$panel.args)) {
        expect_equal(qq$Subject$panel.args[[i]]$x, qq0$Subject$panel.args[[i]]$x,
                     tolerance = IDIOM_TOL, ignore_attr = TRUE)
        expect_equal(qq$Subject$panel.args[[i]]$y, qq0$Subject$panel.args[[i]]$y, tolerance = IDIOM_TOL)
    }
    ## without conditional variances: plain normal QQ plots
    qn <- lattice::qqmath(ranef(fit, condVar = FALSE))
    qn0 <- lattice::qqmath(lme4::ranef(m, condVar = FALSE))
    for (i in seq_along(qn0$Subject$panel.args))
        expect_equal(qn$Subject$panel.args[[i]]$x, qn0$Subject$panel.args[[i]]$x, tolerance = IDIOM_TOL,
                     ignore_attr = TRUE)
    ## they draw
    pdf(NULL)
    on.exit(dev.off())
    expect_no_error(print(dp$Subject))
    expect_no_error(print(qq$Subject))
})

## ---- lme4's argument conventions ----------------------------------------------

test_that("fixef(add.dropped = TRUE) and model.frame(fixed.only = TRUE) as lme4", {
    need_lme4()
    d <- sleep2()
    d$Days2 <- 2 * d$Days
    f <- Reaction ~ Days + Days2 + (1 | Subject)
    fit <- suppressMessages(lmmfit(f, d))
    m <- suppressMessages(lmer_at(fit, f, d))
    expect_equal(fixef(fit, add.dropped = TRUE), lme4::fixef(m, add.dropped = TRUE), tolerance = IDIOM_TOL)
    expect_identical(names(fixef(fit, add.dropped = TRUE)), names(lme4::fixef(m, add.dropped = TRUE)))
    expect_equal(fixef(fit), lme4::fixef(m), tolerance = IDIOM_TOL)
    mf <- model.frame(fit, fixed.only = TRUE)
    mf0 <- model.frame(m, fixed.only = TRUE)
    expect_identical(names(mf), names(mf0))
    expect_equal(mf, mf0, ignore_attr = TRUE)
    expect_identical(names(model.frame(fit)), names(model.frame(m)))
})

test_that("anova(model.names =) and anova() of an lmmfit fit against an lm fit, as lme4", {
    need_lme4()
    d <- sleep2()
    f0 <- Reaction ~ 1 + (1 | Subject)
    f1 <- Reaction ~ Days + (1 | Subject)
    fit0 <- lmmfit(f0, d, REML = FALSE)
    fit1 <- lmmfit(f1, d, REML = FALSE)
    ## lme4 compares with an lm fit only when both name the same data object
    mer <- function(f) suppressMessages(lme4::lmer(f, d, REML = FALSE, control = lme4::lmerControl(
        optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))))
    m0 <- mer(f0)
    m1 <- mer(f1)
    a <- anova(fit1, fit0, model.names = c("one", "zero"))
    a0 <- anova(m1, m0, model.names = c("one", "zero"))
    expect_identical(rownames(a), rownames(a0))
    for (col in names(a0)) expect_equal(a[[col]], a0[[col]], tolerance = IDIOM_TOL, label = col)
    expect_error(anova(fit1, fit0, model.names = "x"), "'model.names' must be 2 names")
    expect_error(anova(fit1, model.names = "x"), "'model.names'")
    l <- lm(Reaction ~ Days, d)
    a <- anova(fit1, l)
    a0 <- anova(m1, l)
    expect_identical(rownames(a), c("l", "fit1"))
    expect_identical(rownames(a0), c("l", "m1"))
    for (col in names(a0)) expect_equal(a[[col]], a0[[col]], tolerance = IDIOM_TOL, label = col)
    expect_error(anova(fit1, glm(Reaction ~ Days, data = d)), "class \"glm\"")
    expect_error(anova(fit1, lm(Reaction ~ Days, d[-1, ])), "same observations")
})

test_that("a character formula, '.', a one-column matrix or logical response are fitted as lme4", {
    need_lme4()
    d <- sleep2()
    ref <- lmmfit(Reaction ~ Days + (1 | Subject), d)
    ch <- lmmfit("Reaction ~ Days + (1 | Subject)", d)
    expect_equal(fixef(ch), fixef(ref))
    expect_equal(deviance(ch), deviance(ref))
    mc <- lmer_at(ch, "Reaction ~ Days + (1 | Subject)", d)
    expect_equal(fixef(ch), lme4::fixef(mc), tolerance = IDIOM_TOL)
    expect_error(lmmfit(c("y ~ x", "z ~ x"), d), "single string")
    ## '.': every other column of data (lme4 includes the grouping factor too)
    d3 <- d[, c("Reaction", "Days", "Subject")]
    fd <- suppressMessages(lmmfit(Reaction ~ . + (1 | Subject), d3))
    md <- lmer_at(fd, Reaction ~ . + (1 | Subject), d3)
    expect_identical(names(fixef(fd)), names(lme4::fixef(md)))
    expect_equal(fixef(fd), lme4::fixef(md), tolerance = 1e-5)
    ## one-column matrix response
    fm <- lmmfit(cbind(Reaction) ~ Days + (1 | Subject), d)
    expect_equal(fixef(fm), fixef(ref))
    mm <- lmer_at(fm, cbind(Reaction) ~ Days + (1 | Subject), d)
    expect_equal(fixef(fm), lme4::fixef(mm), tolerance = IDIOM_TOL)
    expect_error(lmmfit(cbind(Reaction, Days) ~ 1 + (1 | Subject), d), "numeric vector")
    ## logical response, as 0/1
    d$yl <- d$Reaction > 300
    fl <- lmmfit(yl ~ Days + (1 | Subject), d)
    ml <- lmer_at(fl, yl ~ Days + (1 | Subject), d)
    expect_equal(fixef(fl), lme4::fixef(ml), tolerance = IDIOM_TOL)
    expect_equal(sigma(fl), sigma(ml), tolerance = IDIOM_TOL)
})

test_that("a model without fixed effects: vcov, fixef, profile as lme4; a zero response is refused by name", {
    need_lme4()
    d <- sleep2()
    f <- Reaction ~ 0 + (1 | Subject)
    fit <- lmmfit(f, d, REML = FALSE)
    m <- lmer_at(fit, f, d)
    expect_identical(dim(vcov(fit)), c(0L, 0L))
    expect_identical(dim(as.matrix(vcov(m))), c(0L, 0L))
    expect_length(fixef(fit), 0L)
    expect_equal(sigma(fit), sigma(m), tolerance = IDIOM_TOL)
    expect_equal(as.numeric(logLik(fit)), as.numeric(logLik(m)), tolerance = IDIOM_TOL)
    ## Wald intervals: none for the variance parameters, as lme4
    expect_equal(confint(fit, method = "Wald"), confint(m, method = "Wald"))
    ## profile intervals (lme4 interpolates its profile by splines: 1e-4)
    mo <- suppressMessages(lme4::lmer(f, d, REML = FALSE))
    expect_equal(confint(fit, method = "profile"),
                 suppressWarnings(suppressMessages(confint(mo, method = "profile"))), tolerance = 1e-4)
    d$z <- 0
    expect_error(lmmfit(z ~ Days + (1 | Subject), d), "response is zero everywhere")
})

test_that("refit() with an NA-padded response as lme4; lmerControl, prof.scale, quiet handled by name", {
    need_lme4()
    d <- sleep2()
    d$Reaction[c(3, 50)] <- NA
    f <- Reaction ~ Days + (Days | Subject)
    fit <- lmmfit(f, d, na.action = na.exclude)
    m <- suppressMessages(lme4::lmer(f, d, na.action = na.exclude, control = lme4::lmerControl(
        optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))))
    y2 <- d$Reaction + rep(c(-3, 1, 4), 60)
    expect_length(y2, 180L)
    r <- refit(fit, y2)
    r0 <- suppressMessages(lme4::refit(m, y2))
    expect_equal(fixef(r), lme4::fixef(r0), tolerance = 1e-5)
    ## lme4's refit stops early on this response: the deviance oracle is a fresh fit
    d$y2 <- ifelse(is.na(d$Reaction), NA, y2)
    m2 <- suppressMessages(lme4::lmer(y2 ~ Days + (Days | Subject), d, control = lme4::lmerControl(
        optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))))
    expect_equal(deviance(r), lme4_objective(m2), tolerance = IDIOM_TOL)
    expect_error(refit(fit, y2[-1]), "178 observations")
    expect_error(refit(fit, y2, rename.response = TRUE), "'rename.response'")
    ## lmerControl(): honoured at lme4's defaults (test-lme4-control.R), refused by name otherwise
    expect_error(lmmfit(f, d, control = lme4::lmerControl(optimizer = "bobyqa")), "lmerControl\\(optimizer")
    fit1 <- lmmfit(Reaction ~ Days + (1 | Subject), d)
    expect_error(profile(fit1, prof.scale = "varcov"), "prof.scale")
    expect_no_error(profile(fit1, prof.scale = "sdcor", which = 1))
    expect_silent(ci <- confint(fit1, method = "boot", nsim = 20, seed = 1, quiet = TRUE))
    expect_identical(ci, confint(fit1, method = "boot", nsim = 20, seed = 1))
    expect_error(confint(fit1, method = "boot", nsim = 20, FUN = fixef), "FUN")
})

test_that("re.form naming part of a correlated term, and update() removing a term of a || model, as lme4", {
    need_lme4()
    d <- sleep2()
    f <- Reaction ~ Days + (Days | Subject) + (1 | g2)
    fit <- suppressMessages(lmmfit(f, d))
    m <- lmer_at(fit, f, d)
    for (rf in list(~ (1 | Subject), ~ (0 + Days | Subject), ~ (1 | Subject) + (1 | g2))) {
        expect_equal(predict(fit, re.form = rf), predict(m, re.form = rf), tolerance = IDIOM_TOL)
        nd <- d[c(1, 25, 99), ]
        expect_equal(predict(fit, nd, re.form = rf), predict(m, nd, re.form = rf), tolerance = IDIOM_TOL)
    }
    expect_error(predict(fit, re.form = ~ (1 | Days)), "not a random-effects term")
    ## update() on a || model: its terms can be removed one by one
    f2 <- Reaction ~ Days + (Days || Subject)
    fit2 <- lmmfit(f2, d)
    m2 <- suppressMessages(lme4::lmer(f2, d, control = lme4::lmerControl(
        optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))))
    u <- update(fit2, . ~ . - (0 + Days | Subject))
    u0 <- update(m2, . ~ . - (0 + Days | Subject))
    expect_identical(deparse1(formula(u)), deparse1(formula(u0)))
    expect_equal(deviance(u), lme4_objective(u0), tolerance = IDIOM_TOL)
    expect_equal(as.data.frame(VarCorr(u))$vcov, as.data.frame(lme4::VarCorr(u0))$vcov, tolerance = 1e-5)
    ## other updates are unchanged by the expansion
    u2 <- update(fit2, REML = FALSE)
    expect_false(u2$REML)
    expect_equal(deviance(u2), deviance(update(m2, REML = FALSE)), tolerance = IDIOM_TOL)
    expect_identical(update(fit2, . ~ . + I(Days^2), evaluate = FALSE)[[1]], quote(lmmfit))
})

test_that("without lme4 (or performance), the shared generics say which package other models need", {
    expect_error(lmmfit:::suggested_function("lmmfitNoSuchPackage", "isSingular", lm(dist ~ speed, cars)),
                 "package 'lmmfitNoSuchPackage', which is not installed")
})

test_that("simulate() as lme4 for the same seed: re.form, use.u, newdata, allow.new.levels", {
    need_lme4()
    d <- sleep2()
    f <- Reaction ~ Days + (Days | Subject)
    fit <- lmmfit(f, d)
    m <- lmer_at(fit, f, d)
    ## the fitted data (one replicate: lmmfit's replicates follow parboot's order)
    expect_equal(simulate(fit, seed = 1)[[1]], simulate(m, seed = 1)[[1]], tolerance = IDIOM_TOL)
    expect_equal(simulate(fit, seed = 1, use.u = TRUE)[[1]], simulate(m, seed = 1, use.u = TRUE)[[1]],
                 tolerance = IDIOM_TOL)
    expect_identical(simulate(fit, seed = 1, re.form = NULL), simulate(fit, seed = 1, use.u = TRUE))
    expect_identical(simulate(fit, seed = 1, re.form = NA), simulate(fit, seed = 1))
    expect_identical(simulate(fit, seed = 1, re.form = ~0), simulate(fit, seed = 1))
    ## new data: some subjects, rows reversed; several replicates
    nd <- d[d$Subject %in% c("372", "308", "335"), ][30:1, ]
    for (rf in list(NA, NULL)) {
        a <- simulate(fit, nsim = 3, seed = 2, newdata = nd, re.form = rf)
        a0 <- simulate(m, nsim = 3, seed = 2, newdata = nd, re.form = rf)
        expect_identical(dim(a), dim(a0))
        expect_identical(rownames(a), rownames(a0))
        expect_equal(as.matrix(a), as.matrix(a0), tolerance = IDIOM_TOL, ignore_attr = TRUE)
    }
    ## two terms
    f2 <- Reaction ~ Days + (Days | Subject) + (1 | g2)
    fit2 <- suppressMessages(lmmfit(f2, d))
    m2 <- lmer_at(fit2, f2, d)
    nd2 <- d[c(5, 77, 140, 3, 99), ]
    expect_equal(as.matrix(simulate(fit2, nsim = 2, seed = 3, newdata = nd2)),
                 as.matrix(simulate(m2, nsim = 2, seed = 3, newdata = nd2)), tolerance = IDIOM_TOL,
                 ignore_attr = TRUE)
    ## new levels: refused unless allowed; conditional simulation gives them zero effects, as lme4
    nd3 <- nd
    nd3$Subject <- as.character(nd3$Subject)
    nd3$Subject[1:10] <- "new"
    expect_error(simulate(fit, newdata = nd3), "allow.new.levels")
    expect_equal(as.matrix(simulate(fit, seed = 4, newdata = nd3, re.form = NULL, allow.new.levels = TRUE)),
                 as.matrix(simulate(m, seed = 4, newdata = nd3, re.form = NULL, allow.new.levels = TRUE)),
                 tolerance = IDIOM_TOL, ignore_attr = TRUE)
    ## new random effects for the new level: its rows vary as sigma^2 + z' Sigma z
    big <- simulate(fit, nsim = 4000, seed = 5, newdata = nd3[1:2, ], allow.new.levels = TRUE)
    z <- cbind(1, nd3$Days[1:2])
    v <- sigma(fit)^2 + rowSums((z %*% VarCorr(fit)$Subject) * z)
    expect_equal(apply(as.matrix(big), 1, var), v, tolerance = 0.1, ignore_attr = TRUE)
    ## missing covariates
    nd4 <- nd[1:4, ]
    nd4$Days[2] <- NA
    expect_true(all(is.na(simulate(fit, seed = 6, newdata = nd4)[2, ])))
    expect_identical(nrow(simulate(fit, seed = 6, newdata = nd4, na.action = na.omit)), 3L)
    ## refused by name
    expect_error(simulate(fit, re.form = ~ (1 | Subject)), "'re.form'")
    expect_error(simulate(fit, newparams = list(theta = 1)), "'newparams'")
    expect_error(simulate(fit, allow.new.levels = TRUE), "'allow.new.levels'")
    expect_error(simulate(fit, use.u = TRUE, re.form = NA), "conflicts")
    expect_warning(simulate(fit, bogus = 1), "'bogus' ignored")
})
