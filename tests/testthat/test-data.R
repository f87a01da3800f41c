## The data sets: shapes, and each equal to its documented generation (the
## seeds' own code or values for tenclusters and clusterx; the recipes of
## data-raw/, repeated here, for schools and trial).

test_that("tenclusters is seed 001's data, regenerated exactly by its code", {
    d <- seed001_data()   # the seed's code, in helper-seeds.R
    expect_identical(dim(tenclusters), c(100L, 3L))
    expect_identical(tenclusters, d)
    expect_identical(levels(tenclusters$p), as.character(1:10))
    ## the seed's lme4 output: intercept 21.040772, slope -1.007014
    fit <- lmmfit(y ~ x + (1 | p), data = tenclusters)
    expect_lte(abs(fixef(fit)[["(Intercept)"]] - 21.040772), 5e-7)
    expect_lte(abs(fixef(fit)[["x"]] - -1.007014), 5e-7)
})

test_that("clusterx is seed 002's 12 rows, as its dput() gives them", {
    ## the seed's dput() output, verbatim
    data <- structure(list(y = c(-0.5, 0, 0.5, -0.6, 0, 0.6, -0.2, 0.1, 0.4,
    -0.5, -0.1, 0.4), x = c(2, 3, 4, -4, -3, -2, 13, 14, 15, -15,
    -14, -13), f = structure(c(1L, 1L, 1L, 2L, 2L, 2L, 3L, 3L, 3L,
    4L, 4L, 4L), .Label = c("1", "2", "3", "4"), class = "factor")),
    .Names = c("y","x","f"), row.names = c(NA, -12L), class = "data.frame")
    expect_identical(dim(clusterx), c(12L, 3L))
    expect_identical(clusterx, data)
    ## the seed's lm(y ~ x + f): within slope 0.46250
    expect_equal(unname(coef(lm(y ~ x + f, data = clusterx))[2]), 0.4625, tolerance = 1e-12)
})

test_that("schools is data-raw/schools.R's simulation", {
    set.seed(2024)
    school <- rep(1:10, each = 20)
    baseline <- rnorm(10, mean = 50, sd = 10)
    slope <- rnorm(10, mean = 5, sd = 1.5)
    hours <- round(runif(200, min = 1, max = 10), 1)
    score <- baseline[school] + slope[school] * hours + rnorm(200, sd = 3)
    d <- data.frame(score = round(score, 1), hours = hours,
                    school = factor(paste("School", LETTERS[school])))
    expect_identical(dim(schools), c(200L, 3L))
    expect_identical(schools, d)
    expect_identical(levels(schools$school), paste("School", LETTERS[1:10]))
    expect_true(all(table(schools$school) == 20L))
    expect_true(all(schools$hours >= 1 & schools$hours <= 10))
    ## random intercepts and slopes: neither variance is at zero
    fit <- lmmfit(score ~ hours + (hours | school), data = schools)
    expect_false(isSingular(fit))
})

test_that("trial is data-raw/trial.R's simulation: 2,500 subjects x 4 times", {
    set.seed(2)
    n_id <- 2500L
    id <- rep(seq_len(n_id), each = 4L)
    time <- rep(0:3, n_id)
    treat <- sample(rep(0:1, each = n_id / 2L))
    b0 <- rnorm(n_id, sd = 0.5)
    b1 <- rnorm(n_id, sd = 0.25)
    z <- matrix(rnorm(n_id * 4L), 4L, n_id)
    e <- z
    for (t in 2:4) e[t, ] <- 0.7 * e[t - 1L, ] + sqrt(1 - 0.7^2) * z[t, ]
    y <- 0.1 + 0.5 * time - 0.4 * treat[id] + b0[id] + b1[id] * time + as.vector(e)
    d <- data.frame(id = factor(id), time = time,
                    treatment = factor(c("control", "treatment")[treat[id] + 1L],
                                       levels = c("control", "treatment")),
                    y = round(y, 3))
    expect_identical(dim(trial), c(10000L, 4L))
    expect_identical(trial, d)
    expect_identical(nlevels(trial$id), 2500L)
    expect_true(all(table(trial$id) == 4L))
    expect_true(all(tapply(trial$time, trial$id, function(t) identical(t, 0:3))))
    ## treatment is a subject-level variable, half the subjects each
    expect_true(all(tapply(trial$treatment, trial$id, function(v) length(unique(v))) == 1L))
    expect_identical(as.vector(table(trial$treatment)), c(5000L, 5000L))
})

test_that("schools is balanced: the one-way REML variance is the ANOVA estimator", {
    ## as the fixed-or-random vignette says: (MS_B - MS_W) / n, n = 20 per school
    a <- anova(lm(score ~ school, data = schools))
    anova_est <- (a["school", "Mean Sq"] - a["Residuals", "Mean Sq"]) / 20
    fit <- lmmfit(score ~ 1 + (1 | school), data = schools)
    expect_equal(VarCorr(fit)$school[1, 1], anova_est, tolerance = 1e-6)
    expect_equal(sigma(fit)^2, a["Residuals", "Mean Sq"], tolerance = 1e-6)
})
