## Every registered .Call entry point validates its arguments: called from R
## with wrong types, lengths, NULLs or corrupt cross-product lists it stops
## with an ordinary R error (a simpleError with a message), never a crash,
## and never reads outside its arguments (make sanitize / make valgrind run
## this file under ASan/UBSan and memcheck).

routines <- getDLLRegisteredRoutines("lmmfit")$.Call
call_entry <- function(name, args) do.call(.Call, c(list(routines[[name]]), args))
call_error <- function(name, args) tryCatch({ call_entry(name, args); NULL }, error = function(e) e)

## Valid arguments for each entry point, from two small fits.
entry_args <- local({
    set.seed(1)
    n <- 60
    d <- data.frame(g = factor(rep(1:6, each = 10)), h = factor(rep(1:5, 12)), x = rep(0:9, 6) / 3)
    d$y <- 1 + 0.5 * d$x + rnorm(6)[d$g] + rnorm(6, sd = 0.3)[d$g] * d$x + rnorm(5, sd = 0.5)[d$h] + rnorm(n)
    fit <- suppressMessages(lmmfit(y ~ x + (x | g) + (1 | h), d))
    fit1 <- suppressMessages(lmmfit(y ~ x + (x | g), d))
    X <- fit$X; storage.mode(X) <- "double"
    y <- as.double(fit$y)
    theta <- as.double(fit$theta)
    ctl <- fit$control
    codes <- lapply(fit$reterms, function(t) as.integer(t$factor))
    Z <- lapply(fit$reterms, `[[`, "Z")
    nlev <- vapply(fit$reterms, `[[`, 1L, "nlev")
    ## AR(1) pieces within g (nested in the one grouping factor of fit1)
    prev <- as.integer(ifelse(duplicated(d$g), seq_len(n) - 1L, 0L))
    gap <- as.integer(prev > 0L)
    codes1 <- list(as.integer(d$g))
    Z1 <- list(fit1$reterms[[1]]$Z)
    pcs <- .Call(routines$lmm_ar1_pieces, X, y, codes1, Z1, fit1$xprod, prev, gap)
    ## a residual structure within g: CAR(1) in x, a variance per level of h
    rs <- lmmfit:::resid_structure(lmmfit:::resid_parse_cor(nlme::corCAR1(form = ~ x | g)),
                                   lmmfit:::resid_parse_var(nlme::varIdent(form = ~ 1 | h)),
                                   d, environment(), fit1$reterms)
    rpar <- rs$starts[[1]]
    spec <- lmmfit:::boot_spec(fit)
    vp <- c(theta, sigma(fit))
    sdc <- c(1, 0.1, 0.2, 0.5, sigma(fit))
    ## a binomial GLMM's model on the same design
    d$yb <- as.double(d$y > median(d$y))
    gfit <- suppressMessages(glmmfit(yb ~ x + (1 | g), d, family = binomial))
    rule <- lmmfit:::gauss_hermite_rule(3L)
    list(
        lmm_crossprod = list(X, y, NULL, codes, Z, nlev, c(0, mean(d$x)), c(0.1, 0.2), 100L),
        lmm_x_rfactor = list(X),
        lmm_all_finite = list(y),
        lmm_levels_used = list(d$g),
        lmm_column_scales = list(X),
        lmm_deviance = list(fit$xprod, theta, TRUE),
        lmm_exact_gradient = list(fit$xprod, theta, TRUE, TRUE, NULL),
        lmm_optimize = list(fit$xprod, theta, TRUE, ctl),
        lmm_theta_transform = list(theta, c(2L, 1L), list(matrix(c(1, 0, 2, 1), 2), NULL), TRUE),
        lmm_solution = list(fit$xprod, theta, TRUE, NULL),
        lmm_condvar = list(fit$xprod, theta),
        lmm_tail_plan = list(fit$xprod),
        lmm_ar1_pieces = list(X, y, codes1, Z1, fit1$xprod, prev, gap),
        lmm_ar1_xprod = list(fit1$xprod, pcs$pieces, pcs$gaps, pcs$npairs, 0.3),
        lmm_ar1_optimize = list(fit1$xprod, pcs$pieces, pcs$gaps, pcs$npairs,
                                c(as.double(fit1$theta), 0.1), TRUE, ctl, 0.99),
        lmm_resid_xprod = list(fit1$xprod, X, y, codes1, Z1, rs$spec, rpar),
        lmm_resid_optimize = list(fit1$xprod, X, y, codes1, Z1, rs$spec, c(as.double(fit1$theta), rpar),
                                  TRUE, ctl),
        lmm_resid_transform = list(rs$spec, rpar, cbind(y, X), FALSE),
        lmm_glmm_eval = list(gfit$model, as.double(gfit$theta), as.double(gfit$beta), gfit$u, 3L, rule),
        lmm_glmm_optimize = list(gfit$model, as.double(gfit$theta), as.double(gfit$beta), 3L, rule, ctl),
        lmm_boot_run = list(spec, NULL, 2L, FALSE, TRUE, ctl),
        lmm_boot_simulate = list(spec, 2L, FALSE),
        lmm_boot_skip = list(10),
        lmm_refit = list(spec, y - drop(X %*% fit$beta), theta, TRUE, ctl),
        lmm_wb = list(as.double(d$x), as.integer(d$g), 6L),
        lmm_vcov_dev = list(fit$xprod, vp, TRUE),
        lmm_ddf_derivs = list(fit$xprod, vp, TRUE, c(1e-3, 1e-1), "auto"),
        lmm_profile_vc = list(fit$xprod, 1L, 1, sdc, ctl),
        lmm_sdcor_deviance = list(fit$xprod, sdc),
        lmm_profile_beta = list(fit$xprod, 1L, 250, theta, ctl),
        lmm_chol = list(crossprod(matrix(c(2, 1, 0, 1, 3, 1, 0, 1, 4), 3))),
        lmm_dense_chol_lapack = list(NULL))
})

## Bad values tried in every argument position.
bad_values <- list(NULL = NULL, chr = "a", int3 = 1:3, nonfinite = c(NaN, Inf), list0 = list(),
                   list2 = list(1, "a"), num0 = numeric(0), na = NA, big = 1e10, neg = -1L,
                   fun = sum, env = globalenv(), sym = quote(x))
## Values that are legitimately accepted in some positions: NULL weights (no
## weights), NULL Y (simulate in C), a control list with all defaults, and
## large or negative values where any finite number is meaningful.
accepted <- list(
    lmm_crossprod = list(`3` = "NULL"),
    ## NULL asks without setting; the number 0 or 1 is a flag (left as it was)
    lmm_dense_chol_lapack = list(`1` = "NULL"),
    ## any numeric vector is a question with an answer (TRUE or FALSE)
    lmm_all_finite = list(`1` = c("int3", "nonfinite", "num0", "na", "big", "neg")),
    lmm_optimize = list(`4` = "list0"),
    ## NULL: sigma profiled; any positive number is a known residual sd
    lmm_solution = list(`4` = c("NULL", "big")),
    lmm_exact_gradient = list(`5` = c("NULL", "big")),    # sigma: profiled, or fixed at 1e10
    lmm_ar1_optimize = list(`7` = "list0"),
    lmm_resid_optimize = list(`9` = "list0"),
    ## NULL beta: solved with u (nAGQ = 0's criterion); NULL u0: from 0; a
    ## theta where PIRLS fails answers NA with the failure's code
    lmm_glmm_eval = list(`2` = "big", `3` = "NULL", `4` = "NULL"),
    lmm_glmm_optimize = list(`6` = "list0"),
    lmm_boot_run = list(`2` = "NULL", `6` = "list0"),
    lmm_refit = list(`5` = "list0"),
    lmm_profile_vc = list(`3` = c("big", "neg"), `5` = "list0"),
    lmm_profile_beta = list(`3` = c("big", "neg"), `5` = "list0"),
    lmm_boot_skip = list(`1` = "big"))    # valid: 1e10 draws (interruptible, see test-interrupts.R)

test_that("every registered entry point is covered here, with its registered argument count", {
    expect_setequal(names(routines), names(entry_args))
    for (nm in intersect(names(routines), names(entry_args)))
        expect_identical(routines[[nm]]$numParameters, length(entry_args[[nm]]), info = nm)
})

test_that("every entry point works on valid arguments", {
    for (nm in names(entry_args)) {
        e <- call_error(nm, entry_args[[nm]])
        expect_null(e, info = nm)
    }
})

test_that("a wrong number of arguments is an R error", {
    for (nm in names(routines)) {
        k <- routines[[nm]]$numParameters
        expect_error(do.call(.Call, c(list(routines[[nm]]), rep(list(NULL), k + 1L))), info = nm)
        if (k > 0L) expect_error(do.call(.Call, c(list(routines[[nm]]), rep(list(NULL), k - 1L))), info = nm)
    }
})

test_that("wrong types, lengths, NULLs and non-finite values in any argument are clean R errors", {
    ## one expectation per entry point: the list of calls that did not stop
    ## with a simpleError carrying a message (empty when all is well)
    for (nm in names(entry_args)) {
        args <- entry_args[[nm]]
        wrong <- character(0)
        for (i in seq_along(args)) for (b in names(bad_values)) {
            if (b %in% accepted[[nm]][[as.character(i)]]) next
            a <- args
            a[i] <- list(bad_values[[b]])
            e <- call_error(nm, a)
            if (!inherits(e, "simpleError") || !nzchar(conditionMessage(e)))
                wrong <- c(wrong, sprintf("argument %d <- %s", i, b))
        }
        expect_identical(wrong, character(0), label = paste(nm, "calls without a clean error"))
    }
})

test_that("a corrupt cross-product list is an R error wherever it is passed", {
    xp <- entry_args$lmm_deviance[[1]]
    th <- entry_args$lmm_deviance[[2]]
    corrupt <- list()
    for (i in seq_along(xp)) for (b in c("NULL", "chr", "num0", "na", "list0")) {
        z <- xp; z[i] <- list(bad_values[[b]]); corrupt[[sprintf("%s <- %s", names(xp)[i], b)]] <- z
    }
    for (i in seq_along(xp)) {   # one element too many or too few
        v <- xp[[i]]
        z <- xp; z[[i]] <- c(v, v[1]); corrupt[[paste(names(xp)[i], "longer")]] <- z
        if (length(v) > 1L) { z <- xp; z[[i]] <- v[-1]; corrupt[[paste(names(xp)[i], "shorter")]] <- z }
    }
    mk <- function(...) { z <- xp; m <- list(...); for (k in names(m)) z[[k]] <- m[[k]]; z }
    p <- xp$A21p
    corrupt <- c(corrupt, list(
        "16 elements but unnamed/short" = unname(xp)[-16],
        "nlev negative" = mk(nlev = -xp$nlev),
        "nlev NA" = mk(nlev = c(NA, xp$nlev[-1])),
        "ncol zero" = mk(ncol = 0L * xp$ncol),
        "q1 beyond 2^31" = mk(nlev = c(.Machine$integer.max, xp$nlev[-1])),
        "q2 beyond the dense limit" = mk(nlev = c(xp$nlev[1], 50000L)),
        "p negative" = mk(p = -1L),
        "p NA" = mk(p = NA_integer_),
        "nobs NA" = mk(nobs = NA_integer_),
        "nobs not above p" = mk(nobs = xp$p),
        "sumlogw NaN" = mk(sumlogw = NaN),
        "A21p not from 0" = mk(A21p = p + 1L),
        "A21p decreasing" = mk(A21p = replace(p, 2L, p[3L] + 1L)),
        "A21p out of range" = mk(A21p = replace(p, length(p), p[length(p)] + 1000L)),
        "A21i out of range" = mk(A21i = replace(xp$A21i, 1L, 1000000L)),
        "A21i negative" = mk(A21i = replace(xp$A21i, 1L, -1L)),
        "A21i unsorted" = mk(A21i = replace(xp$A21i, 1:2, xp$A21i[2:1])),
        "A21i integer values as double" = mk(A21i = as.double(xp$A21i)),
        "A11 integer" = mk(A11 = as.integer(xp$A11))))
    for (entry in c("lmm_deviance", "lmm_solution", "lmm_condvar", "lmm_optimize", "lmm_vcov_dev",
                    "lmm_ddf_derivs", "lmm_sdcor_deviance", "lmm_profile_vc", "lmm_profile_beta",
                    "lmm_tail_plan")) {
        wrong <- character(0)
        for (nm in names(corrupt)) {
            a <- entry_args[[entry]]
            a[[1]] <- corrupt[[nm]]
            e <- call_error(entry, a)
            if (!inherits(e, "simpleError") || !nzchar(conditionMessage(e))) wrong <- c(wrong, nm)
        }
        expect_identical(wrong, character(0), label = paste(entry, "accepting corrupt cross-products"))
    }
})

test_that("size guards: more than 2^31 random effects, or a dense block beyond 46340^2, are clean errors", {
    ## the level counts are nominal: the guards act before anything of that
    ## size is allocated, so this runs in no time and memory
    a <- entry_args$lmm_crossprod
    big1 <- a; big1[[6]] <- c(.Machine$integer.max, a[[6]][2])      # q1 = (2^31 - 1) * 2
    expect_error(call_entry("lmm_crossprod", big1), "too many random effects")
    big2 <- a; big2[[6]] <- c(a[[6]][1], 50000L)                    # q2^2 > 2^31
    expect_error(call_entry("lmm_crossprod", big2), "too many random effects")
    w0 <- a; w0[[3]] <- c(0, rep(1, length(a[[2]]) - 1L))
    expect_error(call_entry("lmm_crossprod", w0), "positive")
    ## codes outside 1..nlev, and NA codes
    bad <- a; bad[[4]][[1]][3] <- 7L
    expect_error(call_entry("lmm_crossprod", bad), "out of range")
    bad[[4]][[1]][3] <- NA_integer_
    expect_error(call_entry("lmm_crossprod", bad), "out of range")
})

test_that("corrupt staged cross-products (nested terms) are clean errors", {
    set.seed(2)
    d <- data.frame(s = factor(rep(1:6, each = 10)), x = rnorm(60))
    d$c <- factor(paste(d$s, rep(1:2, 30)))
    d$y <- d$x + rnorm(6)[d$s] + rnorm(12)[d$c] + rnorm(60)
    fit <- suppressMessages(lmmfit(y ~ x + (x | s) + (1 | c), d))
    xp <- fit$xprod
    expect_identical(xp$nstage, 2L)
    th <- as.double(fit$theta)
    mk <- function(...) { z <- xp; m <- list(...); for (k in names(m)) z[[k]] <- m[[k]]; z }
    p <- xp$A22p; i <- xp$A22i
    corrupt <- list(
        "nstage beyond the terms" = mk(nstage = 3L),
        "nstage 1 with stage pieces" = mk(nstage = 1L),
        "nstage 0" = mk(nstage = 0L),
        "A22p not from 0" = mk(A22p = p + 1L),
        "A22p short" = mk(A22p = p[-1]),
        "A22p beyond A22i" = mk(A22p = replace(p, length(p), 3L)),
        "A22i beyond q2" = mk(A22i = replace(i, 1L, 1000L)),
        "A22i negative" = mk(A22i = replace(i, 1L, -1L)),
        "A22 short" = mk(A22 = xp$A22[-1]),
        "A22 integer" = mk(A22 = as.integer(xp$A22)),
        "A21i into a tile's second row" = mk(A21i = replace(xp$A21i, 1L, xp$A21i[1L] + 1L)))
    ## a crossed design claiming a stage: its pattern is not closed
    d$r <- factor(sample(1:4, 60, replace = TRUE))
    cr <- suppressMessages(lmmfit(y ~ x + (1 | c) + (1 | r), d))$xprod
    expect_identical(cr$nstage, 1L)
    crs <- cr
    crs$nstage <- 2L
    crs$A22p <- rep(0L, 5L)
    crs$A22 <- diag(matrix(cr$A22, 4L))
    expect_error(call_entry("lmm_deviance", list(crs, c(1, 1), TRUE)), "not closed")
    for (entry in c("lmm_deviance", "lmm_solution", "lmm_condvar")) {
        wrong <- character(0)
        for (nm in names(corrupt)) {
            e <- call_error(entry, list(corrupt[[nm]], th, TRUE, NULL)[seq_along(entry_args[[entry]])])
            if (!inherits(e, "simpleError") || !nzchar(conditionMessage(e))) wrong <- c(wrong, nm)
        }
        expect_identical(wrong, character(0), label = paste(entry, "accepting corrupt staged cross-products"))
    }
})
