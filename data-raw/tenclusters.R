## Generates data/tenclusters.rda: seed 001's data, regenerated exactly by the
## seed's own code: 10 clusters of 10 points, intercepts 10 + 2p, slope -1.
##   Rscript data-raw/tenclusters.R  (from the package's top directory)
set.seed(1)
generatepoint <- function(ppt, n) {
    x <- rnorm(n) + ppt
    y <- -x + 10 + 2 * ppt + rnorm(n, sd = .1)
    data.frame(x, y, p = ppt)
}
tenclusters <- do.call(rbind, lapply(1:10, generatepoint, 10))
tenclusters$p <- factor(tenclusters$p)
save(tenclusters, file = "data/tenclusters.rda", compress = "xz")
