## lme4 is the oracle for most tests.  On a developer's machine without it the
## comparisons skip; in CI (CI=true) a missing lme4 is a failure, so that
## comparisons can never silently stop running.
need <- function(pkg) {
    if (requireNamespace(pkg, quietly = TRUE)) return(invisible(TRUE))
    if (nzchar(Sys.getenv("CI"))) stop(sprintf("package '%s' is required in CI but is not installed", pkg))
    testthat::skip(sprintf("%s is not installed", pkg))
}
need_lme4 <- function() need("lme4")

## The REML criterion or ML deviance lme4 minimised.
lme4_objective <- function(fit) {
    if (lme4::isREML(fit)) lme4::REMLcrit(fit) else deviance(fit)
}
