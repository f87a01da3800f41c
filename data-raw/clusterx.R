## Generates data/clusterx.rda: the 12 rows of seed 002 (as its dput() output).
##   Rscript data-raw/clusterx.R     (from the package's top directory)
clusterx <- data.frame(
    y = c(-0.5, 0, 0.5, -0.6, 0, 0.6, -0.2, 0.1, 0.4, -0.5, -0.1, 0.4),
    x = c(2, 3, 4, -4, -3, -2, 13, 14, 15, -15, -14, -13),
    f = factor(rep(1:4, each = 3), levels = c("1", "2", "3", "4")))
save(clusterx, file = "data/clusterx.rda", compress = "xz")
