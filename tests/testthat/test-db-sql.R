## Fits from an SQLite table (RSQLite) against the in-memory fit: the SQL
## aggregates path for every formula feature, transformations, NULLs, dbplyr
## tables, the queries' portability and bad input.

skip_if_not_installed("DBI")
skip_if_not_installed("RSQLite")
skip_if_not_installed("withr")

d <- db_test_table()
con <- DBI::dbConnect(RSQLite::SQLite(), ":memory:")
DBI::dbWriteTable(con, "t", d)

test_that("a fit from an SQLite table equals the in-memory fit (transformations and weights included)", {
    expect_db_matches_memory(con, d)
})

test_that("a query as the table, and a dbplyr table, fit the rows they select", {
    f <- y ~ x + (1 | g) + (1 | h)
    fm <- lmmfit(f, d[d$x > -1, ])
    expect_same_fit(lmmfit(f, data = lmm_db(con, "SELECT * FROM t WHERE x > -1")), fm)
    skip_if_not_installed("dbplyr")
    skip_if_not_installed("dplyr")
    tb <- dplyr::filter(dplyr::tbl(con, "t"), x > -1)
    expect_same_fit(lmmfit(f, data = tb), fm)
})

test_that("integer columns are summed as doubles (no 64-bit overflow) and a DBI::Id names a table", {
    big <- data.frame(g = rep(1:50, each = 4L), x = rep(c(3000000000, 1, 2, 5), 50L))
    big$x <- as.integer(big$x %% 2000000000)         # integers whose squares overflow 64-bit sums
    set.seed(3); big$y <- rnorm(200L) + rnorm(50L)[big$g]
    DBI::dbWriteTable(con, "ints", big)
    f <- y ~ 0 + x + (0 + x | g)
    expect_same_fit(suppressMessages(lmmfit(f, data = lmm_db(con, DBI::Id(table = "ints")))),
                    suppressMessages(lmmfit(f, big)))
})

test_that("the path of an SQLite file is the embedded default", {
    path <- tempfile(fileext = ".sqlite")
    withr::defer(unlink(path))
    fcon <- DBI::dbConnect(RSQLite::SQLite(), path)
    DBI::dbWriteTable(fcon, "t", d)
    DBI::dbDisconnect(fcon)
    f <- y ~ x + (x | g)
    expect_same_fit(lmmfit(f, data = lmm_db(path, "t")), lmmfit(f, d))
    expect_error(lmm_db(file.path(tempdir(), "none.sqlite"), "t"), "does not exist")
})

test_that("rows with NULLs are dropped as na.omit drops them, and counted", {
    d2 <- d; d2$x[c(3, 50)] <- NA; d2$y[7] <- NA
    DBI::dbWriteTable(con, "t_na", d2)
    expect_message(fs <- lmmfit(y ~ x + (1 | g), data = lmm_db(con, "t_na")),
                   "3 of 2000 rows dropped for NULLs \\(na.omit\\): y \\(1\\), x \\(2\\)")
    expect_same_fit(fs, lmmfit(y ~ x + (1 | g), d2))
    expect_equal(fs$dropped_rows, 3)
})

test_that("the queries use only portable SQL", {
    plan <- lmm_sql(y ~ x * f + log(pos) + (x | g) + (1 | a/b), con, "t", weights = "w")
    sql <- toupper(paste(plan$queries, collapse = " "))
    words <- unique(regmatches(sql, gregexpr("[A-Z_]+(?=\\()", sql, perl = TRUE))[[1L]])
    ## SQLite's math extension names the natural logarithm LOG
    expect_true(all(words %in% c("SUM", "COUNT", "LN", "LOG")), info = paste(words, collapse = " "))
    expect_false(grepl("OVER|PARTITION|LIMIT|WINDOW", sql))
    ## the documented path: the queries run anywhere, results handed back
    ## (unweighted: with these weights the in-memory optimum is itself
    ## reproducible only to 2e-8 in theta under a permutation of the rows)
    f <- y ~ x * f + log(pos) + (x | g) + (1 | a/b)
    plan <- lmm_sql(f, con, "t")
    res <- lapply(plan$queries, function(q) DBI::dbGetQuery(con, q))
    expect_same_fit(lmmfit_stats(aggregates_to_stats(sql_aggregates(plan, res))), lmmfit(f, d))
})

test_that("bad input stops with a message naming the column or term", {
    d3 <- d; d3$txt <- as.character(d3$x); d3$g[5] <- NA
    DBI::dbWriteTable(con, "bad", d3)
    DBI::dbWriteTable(con, "empty", d[0, ])
    expect_error(lmmfit(y ~ nosuch + (1 | g), data = lmm_db(con, "t")), "column 'nosuch' is not in the table")
    expect_error(lmmfit(y ~ log(txt) + (1 | h), data = lmm_db(con, "bad")), "'log\\(txt\\)'.*'txt' is text")
    expect_error(lmmfit(y ~ x + (1 | g), data = lmm_db(con, "empty")), "table is empty")
    expect_error(lmmfit(y ~ x + (1 | g), data = lmm_db(con, "bad")), "grouping column 'g' has 1 NULL value")
    expect_error(lmmfit(y ~ splines::ns(x, 3) + (1 | g), data = lmm_db(con, "t")),
                 "term 'splines::ns\\(x, 3\\)' cannot be computed in SQL")
    expect_error(lmmfit(y ~ x + (1 | g), data = lmm_db(con, "t"), subset = x > 0), "'subset' is not supported")
    expect_error(lmm_db(42, "t"), "DBI connection or the path of an SQLite file")
})

DBI::dbDisconnect(con)
