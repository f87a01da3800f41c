## No masking: with lme4, lmerTest, performance and lmmfit attached in every
## order, the functions the packages share (isSingular, ngrps, getME, refit,
## isREML, isLMM, icc, fixef, ranef, VarCorr, getData) work on an lmmfit fit
## and on an lmer fit alike.  Each order runs in a fresh R process (Rscript),
## with this process's library paths; the values are compared with those of
## the packages' own namespaces, computed here.

ATTACH_TOL <- 1e-6

## The script each subprocess runs: attach the packages in the order given,
## fit the models, call each shared function by its bare name (whichever
## package's comes first on the search path) and save the results.
attach_script <- '
args <- commandArgs(TRUE)
out <- args[1L]
pkgs <- args[-1L]
for (p in pkgs) suppressPackageStartupMessages(library(p, character.only = TRUE))
data(sleepstudy, package = "lme4")
d <- sleepstudy
d$g2 <- factor(rep(1:9, 20))
d$y2 <- d$Reaction + rep(c(-3, 1, 4), 60)
fits <- list(
    lmm_slope = suppressMessages(lmmfit::lmmfit(Reaction ~ Days + (Days | Subject), d)),
    lmm_int = suppressMessages(lmmfit::lmmfit(Reaction ~ Days + (1 | Subject), d)),
    lmm_sing = suppressMessages(lmmfit::lmmfit(Reaction ~ Days + (Days | Subject) + (1 | g2), d)),
    mer_slope = suppressMessages(lme4::lmer(Reaction ~ Days + (Days | Subject), d)),
    mer_int = suppressMessages(lme4::lmer(Reaction ~ Days + (1 | Subject), d)),
    mer_sing = suppressMessages(lme4::lmer(Reaction ~ Days + (Days | Subject) + (1 | g2), d)))
if ("lmerTest" %in% pkgs)
    fits$lt_slope <- suppressMessages(lmerTest::lmer(Reaction ~ Days + (Days | Subject), d))
run <- function(expr) tryCatch(eval(expr, globalenv()),
                               error = function(e) structure(conditionMessage(e), class = "failed"))
res <- list()
for (nm in names(fits)) {
    assign("x", fits[[nm]], envir = globalenv())
    assign("y2", d$y2, envir = globalenv())
    res[[nm]] <- list(
        isSingular = run(quote(isSingular(x))),
        ngrps = run(quote(ngrps(x))),
        theta = run(quote(getME(x, "theta"))),
        isREML = run(quote(isREML(x))),
        isLMM = run(quote(isLMM(x))),
        refit = run(quote(unname(fixef(refit(x, y2))))),
        fixef = run(quote(fixef(x))),
        ranef = run(quote(as.matrix(ranef(x)[[1]]))),
        VarCorr = run(quote(as.data.frame(VarCorr(x))$vcov)),
        getData = run(quote(dim(getData(x)))))
    if (grepl("_int$", nm) && "performance" %in% pkgs) {
        ## performance::icc gives a list (adjusted and unadjusted ICC),
        ## lmmfit::icc the adjusted ICC per factor
        res[[nm]]["icc"] <- list(run(quote({
            r <- suppressWarnings(icc(x))
            if (is.null(r)) structure("icc() returned NULL", class = "failed")
            else if (is.list(r)) r$ICC_adjusted else unname(r)
        })))
    }
}
res$search <- search()
saveRDS(res, out)
'

run_attach_order <- function(pkgs) {
    script <- tempfile(fileext = ".R")
    out <- tempfile(fileext = ".rds")
    on.exit(unlink(c(script, out)))
    writeLines(attach_script, script)
    rscript <- file.path(R.home("bin"), "Rscript")
    ## R CMD check's R_TESTS names a startup file the subprocess must not read
    env <- c(paste0("R_LIBS=", paste(.libPaths(), collapse = .Platform$path.sep)), "R_TESTS=")
    log <- suppressWarnings(system2(rscript, c("--vanilla", shQuote(script), shQuote(out), pkgs),
                                    stdout = TRUE, stderr = TRUE, env = env))
    if (!file.exists(out)) stop("the subprocess failed:\n", paste(log, collapse = "\n"))
    readRDS(out)
}

## The values the shared functions must give, from each package's namespace.
expected_values <- function() {
    data(sleepstudy, package = "lme4", envir = environment())
    d <- sleepstudy
    d$g2 <- factor(rep(1:9, 20))
    d$y2 <- d$Reaction + rep(c(-3, 1, 4), 60)
    lmm <- function(f) suppressMessages(lmmfit::lmmfit(f, d))
    mer <- function(f) suppressMessages(lme4::lmer(f, d))
    f_slope <- Reaction ~ Days + (Days | Subject)
    f_int <- Reaction ~ Days + (1 | Subject)
    f_sing <- Reaction ~ Days + (Days | Subject) + (1 | g2)
    one_lmm <- function(fit, icc = FALSE) list(
        isSingular = lmmfit::isSingular(fit), ngrps = lmmfit::ngrps(fit),
        theta = lmmfit::lmm_get(fit, "theta"), isREML = TRUE, isLMM = TRUE,
        refit = unname(lmmfit::fixef(lmmfit::refit(fit, d$y2))),
        fixef = lmmfit::fixef(fit), ranef = as.matrix(lmmfit::ranef(fit)[[1]]),
        VarCorr = as.data.frame(lmmfit::VarCorr(fit))$vcov, getData = dim(d),
        icc = if (icc) unname(lmmfit::icc(fit)))
    one_mer <- function(m, icc = FALSE) list(
        isSingular = lme4::isSingular(m), ngrps = lme4::ngrps(m), theta = lme4::getME(m, "theta"),
        isREML = lme4::isREML(m), isLMM = lme4::isLMM(m),
        refit = unname(lme4::fixef(suppressMessages(lme4::refit(m, d$y2)))),
        fixef = lme4::fixef(m), ranef = as.matrix(lme4::ranef(m)[[1]]),
        VarCorr = as.data.frame(lme4::VarCorr(m))$vcov, getData = dim(d),
        icc = if (icc && requireNamespace("performance", quietly = TRUE))
                  suppressWarnings(performance::icc(m))$ICC_adjusted)
    list(lmm_slope = one_lmm(lmm(f_slope)), lmm_int = one_lmm(lmm(f_int), icc = TRUE),
         lmm_sing = one_lmm(lmm(f_sing)), mer_slope = one_mer(mer(f_slope)),
         mer_int = one_mer(mer(f_int), icc = TRUE), mer_sing = one_mer(mer(f_sing)),
         lt_slope = one_mer(mer(f_slope)))
}

## All orderings of a set of package names.
permutations <- function(x) {
    if (length(x) <= 1L) return(list(x))
    do.call(c, lapply(seq_along(x), function(i) lapply(permutations(x[-i]), function(p) c(x[i], p))))
}

test_that("lmmfit's isSingular, ngrps, refit, getME, isREML, isLMM, icc mask nothing, in any attach order", {
    need_lme4()
    need("lmerTest")
    pkgs <- c("lme4", "lmerTest", "lmmfit")
    if (requireNamespace("performance", quietly = TRUE)) pkgs <- c(pkgs, "performance")
    exp <- expected_values()
    ## the singular model is singular for both, the others for neither
    expect_true(exp$lmm_sing$isSingular)
    expect_true(exp$mer_sing$isSingular)
    expect_false(exp$lmm_slope$isSingular)
    ## performance::icc() on an lmmfit fit (performance attached after
    ## lmmfit) needs insight's methods for lmmfit fits: checked when present
    perf_icc <- "performance" %in% pkgs && isTRUE(tryCatch(
        is.numeric(suppressWarnings(performance::icc(suppressMessages(lmmfit(
            Reaction ~ Days + (1 | Subject), lme4::sleepstudy))))$ICC_adjusted),
        error = function(e) FALSE))
    for (ord in permutations(pkgs)) {
        res <- run_attach_order(ord)
        lbl <- paste(ord, collapse = " < ")
        expect_true(all(paste0("package:", ord) %in% res$search), label = lbl)
        perf_on_top <- "performance" %in% ord && match("performance", ord) > match("lmmfit", ord)
        for (model in names(exp)) {
            if (model == "lt_slope" && !"lmerTest" %in% ord) next
            got <- res[[model]]
            want <- exp[[model]]
            fns <- names(want)[!vapply(want, is.null, NA)]
            if (!"performance" %in% ord ||
                (startsWith(model, "lmm") && perf_on_top && !perf_icc)) fns <- setdiff(fns, "icc")
            expect_true(all(fns %in% names(got)), label = sprintf("%s: results of %s after %s",
                                                                 model, paste(fns, collapse = ", "), lbl))
            for (fn in intersect(fns, names(got))) {
                what <- sprintf("%s(%s) after library() of %s", fn, model, lbl)
                expect_false(inherits(got[[fn]], "failed"),
                             label = paste(what, "failed:", if (inherits(got[[fn]], "failed")) got[[fn]]))
                if (inherits(got[[fn]], "failed")) next
                ## lmer fits are compared with lme4 fitted in the same way;
                ## lmmfit fits with lmmfit's namespace (same fits, same numbers)
                expect_equal(got[[fn]], want[[fn]], tolerance = ATTACH_TOL, ignore_attr = TRUE,
                             label = what)
            }
        }
    }
    if ("performance" %in% pkgs && !perf_icc)
        skip("performance::icc() does not handle lmmfit fits yet (insight has no methods for them)")
})
