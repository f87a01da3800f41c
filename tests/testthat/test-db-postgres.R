## Fits from a PostgreSQL table (a server the test starts and stops) against
## the in-memory fit: the same equivalences as on SQLite.

skip_if_not_installed("DBI")
skip_if_not_installed("withr")

test_that("a fit from a PostgreSQL table equals the in-memory fit", {
    con <- local_postgres()
    ## RPostgreSQL writes doubles with 15 significant digits: the in-memory
    ## reference is the table as stored, read back (values parse exactly)
    DBI::dbWriteTable(con, "t", db_test_table(), row.names = FALSE)
    d <- DBI::dbGetQuery(con, "SELECT * FROM t")
    expect_db_matches_memory(con, d)
    ## a query as the table, NULLs dropped and counted
    d2 <- d; d2$x[c(3, 50)] <- NA
    DBI::dbWriteTable(con, "t_na", d2, row.names = FALSE)
    d2 <- DBI::dbGetQuery(con, "SELECT * FROM t_na")
    expect_message(fs <- lmmfit(y ~ x + (1 | g) + (1 | h), data = lmm_db(con, "SELECT * FROM t_na WHERE z > 1.5")),
                   "2 of .* rows dropped for NULLs \\(na.omit\\): x \\(2\\)")
    expect_same_fit(fs, lmmfit(y ~ x + (1 | g) + (1 | h), d2[d2$z > 1.5, ]))
    expect_error(lmmfit(y ~ log(h) + (1 | g), data = lmm_db(con, "t")), "'h' is text")
})
