## The layout-free aggregates -> lmm_stats -> lmmfit_stats() path against the
## in-memory fit, for each formula feature.

d <- db_test_data()

test_that("a fit from aggregates equals the in-memory fit", {
    for (nm in names(db_test_formulas)) {
        f <- db_test_formulas[[nm]]
        fm <- suppressMessages(lmmfit(f, d))
        fs <- suppressMessages(lmmfit_stats(aggregates_to_stats(lmm_aggregates(f, d))))
        expect_same_fit(fs, fm)
        fm_ml <- suppressMessages(lmmfit(f, d, REML = FALSE))
        fs_ml <- suppressMessages(lmmfit_stats(aggregates_to_stats(lmm_aggregates(f, d)), REML = FALSE))
        expect_same_fit(fs_ml, fm_ml)
    }
})

test_that("prior weights carry through the aggregates (sum of log weights included)", {
    f <- y ~ x + (x | g)
    fm <- lmmfit(f, d, weights = w)
    fs <- lmmfit_stats(aggregates_to_stats(lmm_aggregates(f, d, weights = "w")))
    expect_same_fit(fs, fm)
})

test_that("aliased fixed-effect columns are dropped as lmmfit drops them", {
    d2 <- d; d2$x2 <- 2 * d2$x
    expect_message(fm <- lmmfit(y ~ x + x2 + (1 | g), d2), "dropping 1 column")
    expect_message(st <- aggregates_to_stats(lmm_aggregates(y ~ x + x2 + (1 | g), d2)), "dropping 1 column.*x2")
    expect_same_fit(lmmfit_stats(st), fm)
})

test_that("the aggregates are the sums they are documented to be", {
    agg <- lmm_aggregates(y ~ x + (1 | g) + (1 | h), d)
    m <- agg$model
    expect_equal(m$xshift, c(0, mean(d$x)))
    expect_equal(agg$overall$n, nrow(d))
    expect_equal(agg$overall$s_2_3, sum((d$x - mean(d$x)) * (d$y - mean(d$y))))
    lv <- agg$levels[[match("g", vapply(m$terms, `[[`, "", "group"))]]
    expect_equal(lv$zx_1_3[lv$level == "7"], sum(d$y[d$g == 7] - mean(d$y)))
    pr <- agg$pairs[[1L]]
    expect_equal(sum(pr$n), nrow(d))
    expect_equal(nrow(pr), nrow(unique(d[c("g", "h")])))
})

test_that("statistics from aggregates combine with others and keep their answer", {
    f <- y ~ x + (x | g)
    half <- d$x > 0
    st <- combine_stats(aggregates_to_stats(lmm_aggregates(f, d[half, ])),
                        aggregates_to_stats(lmm_aggregates(f, d[!half, ])))
    expect_same_fit(lmmfit_stats(st), lmmfit(f, d))
})

test_that("malformed aggregates are refused with a message naming the part", {
    agg <- lmm_aggregates(y ~ x + (1 | g), d)
    bad <- agg; bad$levels[[1L]]$zx_1_3 <- NULL
    expect_error(aggregates_to_stats(bad), "levels\\[\\[1\\]\\].*zx_1_3")
    bad <- agg; bad$overall$n <- 0
    expect_error(aggregates_to_stats(bad), "empty")
    bad <- agg; bad$levels[[1L]]$level[1L] <- NA
    expect_error(aggregates_to_stats(bad), "grouping factor 'g' contains missing values")
    expect_error(aggregates_to_stats(list()), "lmm_aggregates object")
    agg2 <- lmm_aggregates(y ~ x + (x | g) + (1 | h), d)
    bad <- agg2; bad$pairs[[1L]]$zz_2_1 <- NULL
    expect_error(aggregates_to_stats(bad), "pairs\\[\\[\"1_2\"\\]\\]' lacks column zz_2_1")
    bad <- agg2; bad$pairs <- list()
    expect_error(aggregates_to_stats(bad), "'pairs' must hold the pairs of terms 1_2")
})
