## The statistics object (R/stats.R): the fit from the statistics alone
## equals the fit from the data, and the statistics of disjoint parts combine
## into those of the whole.

## Statistics of the same rows summed in another order agree to rounding.
STATS_TOL <- 1e-10

test_that("lmmfit_stats() fits as lmmfit() does, from the statistics alone", {
    skip_if_not_installed("lme4")
    ss <- lme4::sleepstudy
    fit <- lmmfit(Reaction ~ Days + (Days | Subject), ss)
    st <- lmm_stats(fit)
    expect_s3_class(st, "lmm_stats")
    expect_identical(st$version, 1L)
    sf <- lmmfit_stats(st)
    ref <- lme4::lmer(Reaction ~ Days + (Days | Subject), ss)
    expect_equal(sf$deviance, deviance(fit), tolerance = 1e-6)
    expect_equal(sf$deviance, lme4::REMLcrit(ref), tolerance = 1e-6)
    expect_equal(sf$beta, fixef(fit), tolerance = 1e-5)
    expect_equal(sf$sigma, sigma(fit), tolerance = 1e-5)
    expect_equal(sf$vcov, as.matrix(vcov(fit)), tolerance = 1e-5)
    ## (per term the lower triangle column by column: sd, cor, sd; lme4: sd, sd, cor)
    expect_equal(unname(sf$sdcor), as.data.frame(VarCorr(ref))$sdcor[c(1, 3, 2, 4)], tolerance = 1e-5)
    ml <- lmmfit_stats(st, REML = FALSE)
    expect_equal(ml$deviance, deviance(lme4::lmer(Reaction ~ Days + (Days | Subject), ss, REML = FALSE)),
                 tolerance = 1e-6)
    expect_output(print(st), "schema 1")
    expect_output(print(sf), "REML criterion")
    expect_error(lmmfit_stats(list()), "lmm_stats object")
})

## The whole's statistics against the combined parts': the same Gram
## triplets, [X y]'Z and [X y]'[X y] after aligning the coordinates.
expect_same_stats <- function(combined, whole) {
    expect_identical(combined$xprod$nstage, whole$xprod$nstage)
    expect_identical(lapply(combined$terms, `[[`, "levels"), lapply(whole$terms, `[[`, "levels"))
    for (el in c("nlev", "ncol", "nobs", "p", "A21p", "A21i", "A22p", "A22i"))
        expect_identical(combined$xprod[[el]], whole$xprod[[el]], label = el)
    for (el in c("A11", "A21x", "A22", "AX1", "AX2", "AXX", "sumlogw"))
        expect_equal(combined$xprod[[el]], whole$xprod[[el]], tolerance = STATS_TOL, label = el)
}

test_that("statistics of two halves combine into those of the whole: nested, crossed, slopes", {
    set.seed(11)
    n <- 900
    ## (labels that sort as strings in their numeric order: the merged level
    ## sets are then in the whole's order, and the layouts comparable entry
    ## by entry; the fit does not depend on the order of the levels)
    lab <- function(v) factor(sprintf("%02d", v))
    d <- data.frame(school = lab(sample(1:30, n, replace = TRUE)), x = rnorm(n),
                    rater = lab(sample(1:8, n, replace = TRUE)), w = runif(n, 0.5, 2))
    d$class <- factor(paste(d$school, sample(1:3, n, replace = TRUE), sep = "."))
    d$y <- 1 + d$x + rnorm(30)[d$school] + rnorm(90)[d$class] + rnorm(8)[d$rater] + rnorm(n)
    half <- rep(c(TRUE, FALSE), length.out = n)
    ## in one half, a school and its classes are missing altogether
    half[d$school == "07"] <- FALSE
    for (f in list(y ~ x + (x | school) + (1 | class), y ~ x + (1 | class) + (1 | school) + (1 | rater),
                   y ~ x + (1 | rater) + (x | class))) {
        whole <- lmm_stats(suppressMessages(lmmfit(f, d, weights = w)))
        a <- lmm_stats(suppressMessages(lmmfit(f, d[half, ], weights = w)))
        b <- lmm_stats(suppressMessages(lmmfit(f, d[!half, ], weights = w)))
        ab <- combine_stats(a, b)
        expect_same_stats(ab, whole)
        fw <- lmmfit_stats(whole); fab <- lmmfit_stats(ab)
        expect_equal(fab$deviance, fw$deviance, tolerance = 1e-8)
        expect_equal(fab$beta, fw$beta, tolerance = 1e-6)
        ## and in the other order: the same statistics
        expect_equal(lmmfit_stats(combine_stats(b, a))$deviance, fw$deviance, tolerance = 1e-8)
        ## levels in no sortable order: the merged set is a's, then b's new ones
        ## (the same renaming in both parts: new labels in no sorted order)
        all <- sort(union(a$terms[[1]]$levels, b$terms[[1]]$levels))
        rename <- function(st) {
            st$terms[[1]]$levels <- paste0("L", (match(st$terms[[1]]$levels, all) * 37L) %% 101L)
            st
        }
        a2 <- rename(a); b2 <- rename(b)
        expect_true(is.unsorted(a2$terms[[1]]$levels))
        ab2 <- combine_stats(a2, b2)
        expect_equal(lmmfit_stats(ab2)$deviance, fw$deviance, tolerance = 1e-8)
    }
})

test_that("parts that order their terms differently combine in the whole's order", {
    ## part a sees 10 teachers and 30 rooms (rooms first), part b 30
    ## teachers and 30 rooms; the whole has 40 teachers (teachers first)
    set.seed(13)
    n <- 1200
    d <- data.frame(teacher = sample(1:40, n, replace = TRUE), room = sample(1:30, n, replace = TRUE),
                    x = rnorm(n))
    d$y <- d$x + rnorm(40)[d$teacher] + rnorm(30, sd = 0.5)[d$room] + rnorm(n)
    d$teacher <- factor(sprintf("%02d", d$teacher)); d$room <- factor(sprintf("%02d", d$room))
    f <- y ~ x + (1 | room) + (x | teacher)
    part <- as.integer(d$teacher) <= 10L
    a <- lmm_stats(lmmfit(f, d[part, ])); b <- lmm_stats(lmmfit(f, d[!part, ]))
    whole <- lmm_stats(fit <- lmmfit(f, d))
    expect_identical(vapply(a$terms, `[[`, "", "group"), c("room", "teacher"))
    expect_identical(vapply(whole$terms, `[[`, "", "group"), c("teacher", "room"))
    for (ab in list(combine_stats(a, b), combine_stats(b, a))) {
        expect_identical(lapply(ab$terms, `[[`, "group"), lapply(whole$terms, `[[`, "group"))
        expect_same_stats(ab, whole)
        sf <- lmmfit_stats(ab)
        expect_equal(sf$deviance, deviance(fit), tolerance = 1e-7)
        expect_equal(unname(sf$theta), unname(fit$theta), tolerance = 1e-5)
    }
    ## a term of one part that the other lacks is another model
    b2 <- lmm_stats(lmmfit(y ~ x + (1 | room) + (1 | teacher), d[!part, ]))
    expect_error(combine_stats(a, b2), "different models")
})

test_that("combining the statistics of different models is refused", {
    ss <- lme4::sleepstudy
    a <- lmm_stats(lmmfit(Reaction ~ Days + (Days | Subject), ss))
    b <- lmm_stats(lmmfit(Reaction ~ 1 + (Days | Subject), ss))
    expect_error(combine_stats(a, b), "different models")
    expect_error(combine_stats(a, list()), "lmm_stats object")
})

test_that("a partially crossed design (a sparse tail) combines and fits from its statistics", {
    ## pupils seen twice, a fifth of them in a second school: the schools'
    ## block is factored in a minimum-degree order over its fill (src/tail.c)
    set.seed(12)
    np <- 600L; ns <- 120L
    home <- sample.int(ns, np, replace = TRUE)
    move <- ifelse(runif(np) < 0.2, sample.int(ns, np, replace = TRUE), home)
    d <- data.frame(pupil = factor(sprintf("%03d", rep(seq_len(np), each = 2L))),
                    school = factor(sprintf("%03d", c(rbind(home, move)))), x = rnorm(2L * np))
    d$y <- d$x + rnorm(np)[d$pupil] + rnorm(ns)[d$school] + rnorm(2L * np)
    f <- y ~ x + (1 | pupil) + (1 | school)
    fit <- lmmfit(f, d)
    sol <- .Call(lmmfit:::C_lmm_solution, fit$xprod, as.double(fit$theta), TRUE, NULL)
    expect_false(is.null(sol$tail_order))
    half <- as.integer(d$pupil) %% 2L == 0L
    ab <- combine_stats(lmm_stats(lmmfit(f, d[half, ])), lmm_stats(lmmfit(f, d[!half, ])))
    expect_same_stats(ab, lmm_stats(fit))
    expect_equal(lmmfit_stats(ab)$deviance, deviance(fit), tolerance = 1e-7)
})
