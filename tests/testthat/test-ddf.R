## Satterthwaite and Kenward-Roger degrees of freedom against lmerTest and
## pbkrtest (through lmerTest, which calls pbkrtest for Kenward-Roger).

ddf_data <- local({
    set.seed(101)
    ## crossed: 12 subjects x 10 items, a subject-level factor, an item covariate, a row covariate
    cr <- expand.grid(subj = factor(1:12), item = factor(1:10))
    cr$grp <- factor(ifelse(as.integer(cr$subj) %% 3 == 0, "a", ifelse(as.integer(cr$subj) %% 3 == 1, "b", "c")))
    cr$x <- rnorm(nrow(cr))
    cr$y <- 1 + 0.5 * cr$x + c(a = 0, b = 0.4, c = -0.3)[as.character(cr$grp)] +
        rnorm(12, sd = 0.7)[cr$subj] + rnorm(10, sd = 0.5)[cr$item] + rnorm(nrow(cr))
    cr <- cr[-sample(nrow(cr), 17), ]
    ## unbalanced nested: schools / classes, treatment at class level, a covariate
    ns <- 6; nc <- c(2, 3, 4, 2, 3, 5)
    cls <- unlist(lapply(seq_len(ns), function(s) paste0(s, ".", seq_len(nc[s]))))
    school <- factor(sub("\\..*", "", cls))
    size <- sample(3:9, length(cls), replace = TRUE)
    ne <- data.frame(class = factor(rep(cls, size)), school = rep(school, size))
    ne$trt <- factor(rep(sample(c("ctl", "trt"), length(cls), replace = TRUE), size))
    ne$z <- rnorm(nrow(ne))
    ne$y <- 2 + 0.8 * (ne$trt == "trt") + 0.3 * ne$z + rnorm(ns, sd = 0.6)[ne$school] +
        rnorm(length(cls), sd = 0.5)[ne$class] + rnorm(nrow(ne), sd = 0.8)
    list(crossed = cr, nested = ne)
})

ddf_models <- list(
    sleep = list(formula = Reaction ~ Days + (Days | Subject), data = "sleepstudy"),
    crossed = list(formula = y ~ x + grp + (1 | subj) + (1 | item), data = "crossed"),
    nested = list(formula = y ~ trt * z + (1 | school / class), data = "nested"),
    penicillin = list(formula = diameter ~ 1 + (1 | plate) + (1 | sample), data = "Penicillin")
)

ddf_cache <- new.env()
ddf_pair <- function(spec) {
    key <- deparse1(spec$formula)
    if (!is.null(ddf_cache[[key]])) return(ddf_cache[[key]])
    dat <- switch(spec$data, sleepstudy = lme4::sleepstudy, Penicillin = lme4::Penicillin,
                  ddf_data[[spec$data]])
    ddf_cache[[key]] <- list(ours = lmmfit(spec$formula, dat),
         ref = lmerTest::lmer(spec$formula, dat, control = lme4::lmerControl(optimizer = "bobyqa",
                              optCtrl = list(rhobeg = 2e-3, rhoend = 2e-12))))
}

test_that("Satterthwaite and Kenward-Roger t-tests match lmerTest / pbkrtest", {
    need_lme4(); need("lmerTest"); need("pbkrtest")
    for (nm in names(ddf_models)) {
        pr <- ddf_pair(ddf_models[[nm]])
        for (ddf in c("Satterthwaite", "Kenward-Roger")) {
            ours <- coef(summary(pr$ours, ddf = ddf))
            ref <- coef(summary(pr$ref, ddf = ddf))
            expect_equal(colnames(ours), c("Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"))
            expect_equal(ours[, "df"], ref[, "df"], tolerance = 1e-4, info = paste(nm, ddf))
            expect_equal(ours[, "Std. Error"], ref[, "Std. Error"], tolerance = 1e-5, info = paste(nm, ddf))
            expect_equal(ours[, "Pr(>|t|)"], ref[, "Pr(>|t|)"], tolerance = 1e-4, info = paste(nm, ddf))
        }
    }
})

test_that("F-tests of terms (type 3 and type 1) match lmerTest's anova", {
    need_lme4(); need("lmerTest"); need("pbkrtest")
    for (nm in c("crossed", "nested")) {
        pr <- ddf_pair(ddf_models[[nm]])
        for (ddf in c("Satterthwaite", "Kenward-Roger")) for (type in c(3, 1)) {
            ours <- anova_ddf(pr$ours, type = type, ddf = ddf)
            ref <- anova(pr$ref, type = type, ddf = ddf)
            info <- paste(nm, ddf, type)
            expect_equal(rownames(ours), rownames(ref), info = info)
            expect_equal(ours$NumDF, ref$NumDF, info = info)
            expect_equal(ours$DenDF, ref$DenDF, tolerance = 1e-4, info = info)
            expect_equal(ours[["F value"]], ref[["F value"]], tolerance = 1e-5, info = info)
            expect_equal(ours[["Pr(>F)"]], ref[["Pr(>F)"]], tolerance = 1e-4, info = info)
            ## anova(fit, ddf = ) reaches the same table
            expect_identical(anova(pr$ours, type = type, ddf = ddf), ours, info = info)
        }
    }
})

test_that("lmm_contrast matches lmerTest::contest (t and F, both methods)", {
    need_lme4(); need("lmerTest"); need("pbkrtest")
    pr <- ddf_pair(ddf_models$crossed)
    L1 <- c(0, 1, 0.5, -0.5)
    L2 <- rbind(c(0, 1, 0, 0), c(0, 0, 1, -1), c(1, 0, 0, 0))
    for (ddf in c("Satterthwaite", "Kenward-Roger")) {
        t1 <- lmm_contrast(pr$ours, L1, ddf = ddf)
        r1 <- lmerTest::contest(pr$ref, L1, ddf = ddf, joint = FALSE)
        expect_equal(t1$df, r1$df, tolerance = 1e-4)
        expect_equal(t1[["t value"]], r1[["t value"]], tolerance = 1e-5)
        expect_equal(t1[["Pr(>|t|)"]], r1[["Pr(>|t|)"]], tolerance = 1e-4)
        f2 <- lmm_contrast(pr$ours, L2, ddf = ddf, rhs = c(0.5, 0, 1))
        r2 <- suppressWarnings(lmerTest::contest(pr$ref, L2, ddf = ddf, rhs = c(0.5, 0, 1)))
        expect_equal(f2$DenDF, r2$DenDF, tolerance = 1e-4)
        expect_equal(f2[["F value"]], r2[["F value"]], tolerance = 1e-5)
        expect_equal(f2$NumDF, r2$NumDF)
    }
})

## The accuracy of the Hessian from second differences of the deviance
## (steps of 10%, Richardson-refined over four halvings): on sleepstudy its
## (2, 2) entry is 418.900725 where the Jacobian of the exact gradient gives
## 418.899535 (numDeriv's of the same gradient: 418.899532), 2.8e-6 relative.
SECOND_DIFFERENCE_TOL <- 1e-5

test_that("the derivatives from C match a direct evaluation and the fit", {
    need_lme4()
    fit <- lmmfit(Reaction ~ Days + (Days | Subject), lme4::sleepstudy)
    vp <- c(unname(fit$theta), sigma(fit))
    d <- .Call(C_lmm_ddf_derivs, fit$xprod, vp, TRUE, c(1e-3, 1e-1), "differences")
    expect_equal(d$vcov, unname(vcov(fit)), tolerance = 1e-10)
    expect_equal(d$deviance, deviance(fit), tolerance = 1e-10)
    ## the (theta, sigma) deviance at sigma-hat is the profiled REML criterion, and
    ## its derivative in sigma vanishes there: (d(s + h) - d(s - h)) / 2h ~ 0
    h <- 1e-4 * vp[4]
    dv <- function(v) .Call(C_lmm_vcov_dev, fit$xprod, v, TRUE)$deviance
    expect_lt(abs(dv(vp + c(0, 0, 0, h)) - dv(vp - c(0, 0, 0, h))) / (2 * h), 1e-6)
    ## Hessian's sigma-sigma entry in closed form: 6 pwrss / s^4 - 2 (n - p) / s^2
    n <- nobs(fit); s <- vp[4]
    expect_equal(d$hessian[4, 4], 6 * fit$pwrss / s^4 - 2 * (n - 2) / s^2, tolerance = 1e-7)
    ## Jacobian in sigma: 2 vcov / sigma
    expect_equal(d$jacobian[, , 4], 2 * unname(vcov(fit)) / s, tolerance = 1e-7)
    ## the Hessian as the Jacobian of the exact gradient: the closed form, and
    ## numDeriv's Richardson Jacobian of the same gradient (theta's from C,
    ## itself checked against differences of the deviance in test-gradient.R)
    dg <- .Call(C_lmm_ddf_derivs, fit$xprod, vp, TRUE, c(1e-3, 1e-1), "gradient")
    expect_equal(dg$hessian[4, 4], 6 * fit$pwrss / s^4 - 2 * (n - 2) / s^2, tolerance = 1e-9)
    if (requireNamespace("numDeriv", quietly = TRUE)) {
        grad_vp <- function(v) {
            pw <- .Call(C_lmm_solution, fit$xprod, v[1:3], TRUE, v[4])$pwrss
            c(.Call(C_lmm_exact_gradient, fit$xprod, v[1:3], TRUE, TRUE, v[4]),
              2 * (n - 2) / v[4] - 2 * pw / v[4]^3)
        }
        ref <- numDeriv::jacobian(grad_vp, vp, method.args = list(d = 1e-3, r = 6))
        expect_equal(dg$hessian, (ref + t(ref)) / 2, tolerance = 1e-7)
    }
    ## second differences at 10% steps agree to their own accuracy
    expect_equal(d$hessian, dg$hessian, tolerance = SECOND_DIFFERENCE_TOL)
    expect_error(.Call(C_lmm_ddf_derivs, fit$xprod, vp, TRUE, c(1e-3, 1e-1), "exact"), "auto")
})

test_that("the Hessian from the exact gradient equals second differences on several terms, ML and REML", {
    need_lme4()
    set.seed(27)
    n <- 400L
    d <- data.frame(g = factor(sample(25L, n, TRUE)), h = factor(sample(12L, n, TRUE)), x = rnorm(n))
    d$y <- 1 + d$x + rnorm(25)[d$g] + 0.4 * rnorm(25)[d$g] * d$x + rnorm(12, sd = 0.7)[d$h] + rnorm(n)
    for (reml in c(TRUE, FALSE)) {
        fit <- lmmfit(y ~ x + (x | g) + (1 | h), d, REML = reml)
        vp <- c(unname(fit$theta), sigma(fit))
        dd <- .Call(C_lmm_ddf_derivs, fit$xprod, vp, reml, c(1e-3, 1e-1), "differences")
        dg <- .Call(C_lmm_ddf_derivs, fit$xprod, vp, reml, c(1e-3, 1e-1), "gradient")
        expect_equal(dd$hessian, dg$hessian, tolerance = SECOND_DIFFERENCE_TOL)
        expect_equal(dg$jacobian, dd$jacobian, tolerance = 1e-12)
    }
})

test_that("summary keeps lme4's layout and adds df and p-values", {
    need_lme4()
    fit <- lmmfit(Reaction ~ Days + (Days | Subject), lme4::sleepstudy)
    out <- capture.output(print(summary(fit)))
    expect_true(any(grepl("^Fixed effects:", out)))
    expect_true(any(grepl("Pr\\(>\\|t\\|\\)", out)))
    expect_true(any(grepl("Signif. codes", out)))
    none <- coef(summary(fit, ddf = "none"))
    expect_equal(colnames(none), c("Estimate", "Std. Error", "t value"))
    expect_false(any(grepl("Pr\\(", capture.output(print(summary(fit, ddf = "none"))))))
})

test_that("bad input gives clear errors", {
    need_lme4()
    fit <- lmmfit(Reaction ~ Days + (Days | Subject), lme4::sleepstudy)
    expect_error(lmm_contrast(fit, c(1, 2, 3)), "length 2")
    expect_error(lmm_contrast(fit, matrix(1, 2, 3)), "2 columns")
    expect_error(lmm_contrast(fit, "a"), "numeric")
    expect_error(summary(fit, ddf = "foo"), "should be one of")
    ml <- lmmfit(Reaction ~ Days + (Days | Subject), lme4::sleepstudy, REML = FALSE)
    expect_error(lmm_contrast(ml, c(0, 1), ddf = "Kenward-Roger"), "REML")
    expect_error(anova_ddf(fit, type = 2), "1 or 3")
})
