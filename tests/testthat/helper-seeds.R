## The data of the seed documents' worked examples (/work/shared/seeds),
## regenerated exactly as the seeds describe, for every test that uses them.

## Seed 001: ten groups of ten points, y = -x + 10 + 2 p + noise.
seed001_data <- function() {
    set.seed(1)
    generatepoint <- function(ppt, n) {
        x <- rnorm(n) + ppt
        y <- -x + 10 + 2 * ppt + rnorm(n, sd = .1)
        data.frame(x, y, p = ppt)
    }
    data <- do.call(rbind, lapply(1:10, generatepoint, 10))
    data$p <- factor(data$p)
    data
}

## Seed 002: the 12 rows of its dput().
seed002_data <- function() {
    data.frame(y = c(-0.5, 0, 0.5, -0.6, 0, 0.6, -0.2, 0.1, 0.4, -0.5, -0.1, 0.4),
               x = c(2, 3, 4, -4, -3, -2, 13, 14, 15, -15, -14, -13),
               f = factor(rep(1:4, each = 3)))
}
