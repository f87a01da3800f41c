## Meta-analysis tests (deviances: OPTIMUM_TOL of helper-optimum.R): metafor is the oracle, converged tightly (its
## default stopping rules leave tau^2 about 1e-5 short).
## The issue's agreement target on every printed number: 1e-6 relative.
META_TOL <- 1e-6
RMA_TIGHT <- list(threshold = 1e-14, maxiter = 1000L, tol = 1e-13)
RMA_MV_TIGHT <- list(optimizer = "bobyqa", rhoend = 1e-12, maxfun = 1e5)

## The BCG trials' log risk ratios, from metafor's copy of the data.
bcg_rr <- function() {
    need("metafor")
    metafor::escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = meta_dat("dat.bcg"))
}

## A relative comparison that treats values near zero absolutely.
expect_rel <- function(object, expected, tol = META_TOL, ...)
    expect_equal(unname(as.numeric(object)), unname(as.numeric(expected)), tolerance = tol, ...)

## metafor's datasets (in the metadat package since metafor 3.8).
meta_dat <- function(name) {
    need("metafor")
    if (requireNamespace("metadat", quietly = TRUE)) getExportedValue("metadat", name)
    else getExportedValue("metafor", name)
}
