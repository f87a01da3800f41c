## fixed_vs_random(): the mixed model beside lm() with the group as a fixed effect.

test_that("seed 001: the two coefficient tables match lme4 and lm with sum contrasts", {
    need_lme4()
    data <- seed001_data()
    fit <- lmmfit(y ~ x + (1 | p), data = data)
    fv <- fixed_vs_random(fit)
    mod <- lme4::lmer(y ~ x + (1 | p), data = data)
    d2 <- data
    contrasts(d2$p) <- contr.sum(10)
    fmod <- lm(y ~ x + p, data = d2)
    tab <- fv$table
    expect_identical(rownames(tab), c("(Intercept)", "x"))
    expect_equal(unname(tab[, "Mixed.Estimate"]), unname(lme4::fixef(mod)), tolerance = 1e-5)
    expect_equal(unname(tab[, "Mixed.Std.Error"]), unname(sqrt(diag(as.matrix(vcov(mod))))),
                 tolerance = 1e-5)
    expect_equal(unname(tab[, "Fixed.Estimate"]), unname(coef(fmod)[1:2]), tolerance = 1e-8)
    expect_equal(unname(tab[, "Fixed.Std.Error"]), unname(sqrt(diag(vcov(fmod)))[1:2]),
                 tolerance = 1e-8)
    ## the seed's lm values, as printed there
    expect_equal(round(unname(tab[, "Fixed.Estimate"]), 6), c(21.043157, -1.007443))
    expect_equal(round(unname(tab[, "Fixed.Std.Error"]), 6), c(0.055888, 0.009934))
    ## the lm inside has lm's names and estimates for the group effects
    expect_equal(coef(fv$lm), setNames(coef(fmod), c("(Intercept)", "x", paste0("p", 1:9))),
                 tolerance = 1e-8)
    ## the printout shows those numbers: read them back and compare with the
    ## oracles to the printed precision
    out <- capture.output(print(fv))
    num <- function(line) {
        tok <- strsplit(trimws(sub("^\\(Intercept\\)|^x ", "", line)), " +")[[1]]
        list(v = as.numeric(tok), dec = nchar(sub("^[^.]*\\.?", "", tok)))
    }
    oracle <- rbind(c(lme4::fixef(mod)[[1]], sqrt(vcov(mod)[1, 1]), coef(fmod)[[1]], sqrt(vcov(fmod)[1, 1])),
                    c(lme4::fixef(mod)[[2]], sqrt(vcov(mod)[2, 2]), coef(fmod)[[2]], sqrt(vcov(fmod)[2, 2])))
    rows <- c(grep("^\\(Intercept\\) ", out), grep("^x ", out))
    expect_length(rows, 2L)
    for (r in 1:2) {
        p <- num(out[rows[r]])
        expect_length(p$v, 4L)
        expect_true(all(abs(p$v - oracle[r, ]) <= 0.5 * 10^-p$dec + 1e-5 * abs(oracle[r, ])))
        expect_gte(min(p$dec), 6L)               # 0.009933 shown to 4 significant digits
    }
    expect_true(any(grepl(format(sigma(fmod), digits = 4), out, fixed = TRUE)))
})

test_that("group-level covariates are absorbed; weights are honoured", {
    need_lme4()
    data <- seed001_data()
    data$z <- as.numeric(data$p)^2 / 10           # constant within p
    set.seed(2)
    data$w <- runif(nrow(data), 0.5, 2)
    fit <- lmmfit(y ~ x + z + (1 | p), data = data, weights = w)
    fv <- fixed_vs_random(fit)
    expect_identical(fv$absorbed, "z")
    expect_output(print(fv), "Absorbed by the p effects \\(constant within p\\): z")
    ref <- lme4::lmer(y ~ x + z + (1 | p), data = data, weights = w)
    d2 <- data
    contrasts(d2$p) <- contr.sum(10)
    fmod <- lm(y ~ x + p, data = d2, weights = w)
    expect_equal(unname(fv$table[, "Mixed.Estimate"]), unname(lme4::fixef(ref)[c("(Intercept)", "x")]),
                 tolerance = 1e-5)
    expect_equal(unname(fv$table[, "Fixed.Estimate"]), unname(coef(fmod)[1:2]), tolerance = 1e-8)
    expect_equal(unname(fv$table[, "Fixed.Std.Error"]), unname(sqrt(diag(vcov(fmod)))[1:2]),
                 tolerance = 1e-8)
})

test_that("bad input: no random intercept, several candidates", {
    data <- seed001_data()
    data$q <- factor(rep(1:5, 20))
    fit <- lmmfit(y ~ x + (0 + x | p), data = data)
    expect_error(fixed_vs_random(fit), "needs a model with a random intercept")
    fit2 <- lmmfit(y ~ x + (1 | p) + (1 | q), data = data)
    expect_error(fixed_vs_random(fit2), "several grouping factors.*'group'")
    fv <- fixed_vs_random(fit2, group = "p")
    expect_output(print(fv), "without a fixed-effects counterpart: \\(1 \\| q\\)")
})
