## Evaluates code as if lme4 were not installed: lmmfit's test of it,
## lme4_installed(), is replaced while code runs (code is a promise, forced
## inside).
without_lme4 <- function(code) {
    ns <- asNamespace("lmmfit")
    orig <- get("lme4_installed", envir = ns)
    unlockBinding("lme4_installed", ns)
    assign("lme4_installed", function() FALSE, envir = ns)
    on.exit({
        assign("lme4_installed", orig, envir = ns)
        lockBinding("lme4_installed", ns)
    })
    code
}
