## Fits from CSV files read in chunks (readr) against the in-memory fit:
## chunks and files summed, files read in parallel, NAs, bad input.

skip_if_not_installed("readr")
skip_if_not_installed("withr")

d <- db_test_table()
d$b <- paste0("b", d$b)                # a text factor (factor() is refused for files)
dir <- tempfile("lmmfit-csv-")
dir.create(dir)
withr::defer(unlink(dir, recursive = TRUE))
## written with 17 significant digits, so the files hold the data exactly
write_exact <- function(x, path) {
    num <- vapply(x, is.double, NA)
    x[num] <- lapply(x[num], function(v) sprintf("%.17g", v))
    utils::write.csv(x, path, row.names = FALSE, quote = FALSE)
}
one <- file.path(dir, "all.csv")
write_exact(d, one)
parts <- file.path(dir, sprintf("part%d.csv", 1:3))
split_rows <- split(seq_len(nrow(d)), rep(1:3, length.out = nrow(d)))
for (i in 1:3) write_exact(d[split_rows[[i]], ], parts[i])

test_that("a fit from a CSV file read in chunks equals the in-memory fit", {
    for (f in c(db_test_formulas, list(y ~ log(pos) + I(x^2) + b + (1 | g) + (1 | h), big ~ x + (1 | g) + (1 | h)))) {
        fm <- suppressMessages(lmmfit(f, d))
        fs <- suppressMessages(lmmfit(f, data = lmm_csv(one, chunk_rows = 700L, progress = FALSE)))
        expect_same_fit(fs, fm)
    }
    fm <- lmmfit(y ~ x + (x | g), d, weights = w)
    expect_same_fit(lmmfit(y ~ x + (x | g), data = lmm_csv(one, chunk_rows = 500L, progress = FALSE), weights = w), fm)
})

test_that("several files, read in parallel or one by one with a progress bar, add up", {
    f <- y ~ x * f + (x | g) + (1 | a/b)
    fm <- lmmfit(f, d)
    expect_same_fit(lmmfit(f, data = lmm_csv(parts, chunk_rows = 400L, cores = 2L, progress = FALSE)), fm)
    out <- capture.output(fs <- suppressMessages(lmmfit(f, data = lmm_csv(parts, chunk_rows = 400L, progress = TRUE))))
    expect_true(any(grepl("100%", out)))
    expect_same_fit(fs, fm)
})

test_that("missing values drop their rows and are counted; bad input is refused by name", {
    d2 <- d; d2$x[c(2, 900)] <- NA
    p <- file.path(dir, "na.csv"); write_exact(d2, p)
    expect_message(fs <- lmmfit(y ~ x + (1 | g) + (1 | h), data = lmm_csv(p, chunk_rows = 600L, progress = FALSE)),
                   "2 of 2000 rows dropped for missing values \\(na.omit\\): x \\(2\\)")
    expect_same_fit(fs, lmmfit(y ~ x + (1 | g) + (1 | h), d2))
    d3 <- d; d3$g[10] <- NA
    p3 <- file.path(dir, "gna.csv"); write_exact(d3, p3)
    expect_error(lmmfit(y ~ x + (1 | g), data = lmm_csv(p3, progress = FALSE)), "grouping column 'g' has 1 missing value")
    expect_error(lmmfit(y ~ nosuch + (1 | g), data = lmm_csv(one, progress = FALSE)), "column 'nosuch' is not in the file")
    expect_error(lmmfit(y ~ log(h) + (1 | g), data = lmm_csv(one, progress = FALSE)), "term 'log\\(h\\)' uses column 'h', which is text, as a number")
    pe <- file.path(dir, "empty.csv"); writeLines(paste(names(d), collapse = ","), pe)
    expect_error(lmmfit(y ~ x + (1 | g), data = lmm_csv(pe, progress = FALSE)), "empty")
    expect_error(lmmfit(y ~ factor(a) + (1 | g), data = lmm_csv(one, progress = FALSE)), "factor\\(\\) in the formula")
    expect_error(lmm_csv(file.path(dir, "none.csv")), "does not exist")
})
