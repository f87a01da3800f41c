## The fitted object of a fit from aggregates (here an SQLite table): its
## methods against the in-memory fit's, and the methods that need the rows
## refused by name.

skip_if_not_installed("DBI")
skip_if_not_installed("RSQLite")

## Satterthwaite's degrees of freedom come from finite differences of the
## deviance's Hessian in theta, whose step (lmmfit_control()$fdstep = 1e-6)
## leaves them exact to about 1e-7 relative: two fits agreeing to 1e-10 in
## theta agree to that in the df.
DDF_AGREEMENT_TOL <- 1e-6

d <- db_test_table()
con <- DBI::dbConnect(RSQLite::SQLite(), ":memory:")
DBI::dbWriteTable(con, "t", d)
f <- y ~ x * f + (x | g) + (1 | h)
fm <- lmmfit(f, d)
fs <- lmmfit(f, data = lmm_db(con, "t"))

test_that("the accessors, summary and ranef equal the in-memory fit's", {
    tol <- DB_AGREEMENT_TOL
    expect_s3_class(fs, "lmmfit_agg")
    expect_equal(fixef(fs), fixef(fm), tolerance = tol)
    expect_equal(vcov(fs), vcov(fm), tolerance = tol)
    expect_equal(sigma(fs), sigma(fm), tolerance = tol)
    expect_equal(nobs(fs), nobs(fm))
    expect_equal(df.residual(fs), df.residual(fm))
    expect_equal(ngrps(fs), ngrps(fm))
    expect_equal(as.data.frame(VarCorr(fs)), as.data.frame(VarCorr(fm)), tolerance = tol)
    for (crit in list(logLik, AIC, BIC)) expect_equal(crit(fs), crit(fm), tolerance = tol)
    expect_equal(logLik(fs, REML = FALSE), logLik(fm, REML = FALSE), tolerance = tol)
    expect_equal(deviance(fs, REML = FALSE), deviance(fm, REML = FALSE), tolerance = tol)
    rs <- ranef(fs, condVar = TRUE); rm <- ranef(fm, condVar = TRUE)
    for (g in names(rm)) {
        expect_equal(as.matrix(rs[[g]]), as.matrix(rm[[g]]), tolerance = tol)
        expect_equal(attr(rs[[g]], "postVar"), attr(rm[[g]], "postVar"), tolerance = tol)
    }
    ss <- coef(summary(fs)); sm <- coef(summary(fm))
    expect_equal(ss[, c("Estimate", "Std. Error", "t value")], sm[, c("Estimate", "Std. Error", "t value")],
                 tolerance = tol)
    expect_equal(ss[, "df"], sm[, "df"], tolerance = DDF_AGREEMENT_TOL)
    out <- capture.output(print(summary(fs)))
    expect_false(any(grepl("Scaled residuals", out)))
    expect_true(any(grepl("Number of obs: 2000", out)))
    expect_equal(confint(fs, method = "Wald"), confint(fm, method = "Wald"), tolerance = tol)
})

test_that("anova compares fits from the same table by likelihood ratio (ML refits from the statistics)", {
    f0 <- y ~ x * f + (1 | g) + (1 | h)
    a_s <- suppressMessages(anova(lmmfit(f0, data = lmm_db(con, "t")), fs))
    a_m <- suppressMessages(anova(lmmfit(f0, d), fm))
    ## (the tables' headings name the calls, which differ)
    expect_equal(unname(as.matrix(a_s)), unname(as.matrix(a_m)), tolerance = DB_AGREEMENT_TOL)
    expect_true(all(is.finite(a_s$Chisq[2L])))
})

test_that("anova of one fit (F tests, types 1 and 3) and profile intervals equal the in-memory fit's", {
    for (args in list(list(), list(type = 1), list(ddf = "lme4"), list(ddf = "Kenward-Roger"))) {
        a_s <- do.call(anova, c(list(fs), args)); a_m <- do.call(anova, c(list(fm), args))
        expect_equal(rownames(a_s), rownames(a_m))
        num <- setdiff(names(a_m), "DenDF")
        expect_equal(unname(as.matrix(a_s[num])), unname(as.matrix(a_m[num])), tolerance = DDF_AGREEMENT_TOL)
        if ("DenDF" %in% names(a_m)) expect_equal(a_s$DenDF, a_m$DenDF, tolerance = DDF_AGREEMENT_TOL)
    }
    f1 <- y ~ x + (1 | g) + (1 | h)
    expect_equal(confint(lmmfit(f1, data = lmm_db(con, "t")), method = "profile"),
                 confint(lmmfit(f1, d), method = "profile"), tolerance = DDF_AGREEMENT_TOL)
})

test_that("predict(newdata) equals the in-memory predictions, new levels included", {
    nd <- d[c(1, 5, 900), ]
    nd$g[3] <- 999L
    expect_equal(predict(fs, nd, allow.new.levels = TRUE), predict(fm, nd, allow.new.levels = TRUE),
                 tolerance = DB_AGREEMENT_TOL)
    expect_equal(predict(fs, nd, re.form = NA), predict(fm, nd, re.form = NA), tolerance = DB_AGREEMENT_TOL)
    expect_error(predict(fs, nd), "new levels of 'g'")
})

test_that("methods that need the rows say so by name", {
    for (m in c("residuals", "fitted", "simulate", "model.frame", "plot", "hatvalues"))
        expect_error(match.fun(m)(fs), sprintf("%s\\(\\) needs the data's rows", m))
    expect_error(predict(fs), "predict without 'newdata'\\(\\) needs the data's rows")
    expect_error(parboot(fs, nsim = 2), "parboot\\(\\) needs the data's rows.*simulates a response for every row")
    expect_error(confint(fs, method = "boot"), "needs the data's rows")
    fw <- lmmfit(y ~ x * f + (1 | g), data = lmm_db(con, "t"), weights = w)
    expect_error(anova(fw, type = 1), "type 1 F tests of a weighted fit from aggregates")
})

DBI::dbDisconnect(con)
