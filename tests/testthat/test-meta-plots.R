## The forest and funnel plots draw into a device without error and return
## the numbers they drew.

## Sums of percent weights and transformed limits are exact up to rounding.
PLOT_TOL <- 1e-10

plot_data <- function(k = 12, seed = 3) {
    set.seed(seed)
    vi <- runif(k, 0.01, 0.2)
    data.frame(yi = rnorm(k, -0.4, sqrt(vi + 0.05)), vi = vi, id = seq_len(k),
               label = sprintf("Study %02d", seq_len(k)), x = seq_len(k))
}

## Runs a plot into a PNG in a temporary file, returns its value, and
## checks that the device received a picture.
draw_png <- function(expr, width = 800, height = 600) {
    file <- tempfile(fileext = ".png")
    grDevices::png(file, width = width, height = height)
    value <- tryCatch(expr, finally = grDevices::dev.off())
    expect_gt(file.size(file), 0)
    unlink(file)
    value
}

test_that("forest_plot returns the studies, weights and the pooled estimate it drew", {
    d <- plot_data()
    fit <- metafit(yi ~ 1 + (1 | id), vi = vi, data = d, slab = label)
    out <- draw_png(forest_plot(fit))
    expect_named(out, c("studies", "summary", "xlim"))
    expect_identical(out$studies$label, d$label)
    expect_equal(out$studies$estimate, d$yi)
    expect_equal(out$studies$ci.ub - out$studies$ci.lb, 2 * qnorm(0.975) * sqrt(d$vi))
    expect_equal(out$studies$weight, unname(weights(fit)))
    expect_equal(sum(out$studies$weight), 100, tolerance = PLOT_TOL)
    ## top to bottom, above the diamond and the prediction interval
    expect_true(all(diff(out$studies$row) == -1))
    expect_gt(min(out$studies$row), 2)
    p <- predict(fit)
    expect_equal(out$summary$estimate, p$pred)
    expect_equal(c(out$summary$pi.lb, out$summary$pi.ub), c(p$pi.lb, p$pi.ub))
    expect_true(out$xlim[1L] <= min(out$studies$ci.lb) && out$xlim[2L] >= max(out$studies$ci.ub))
})

test_that("forest_plot transforms estimates and limits, and orders the studies", {
    d <- plot_data()
    fit <- metafit(yi ~ 1 + (1 | id), vi = vi, data = d, slab = label)
    out <- draw_png(forest_plot(fit, transf = exp, xlab = "Risk ratio", order = "estimate", main = "RR"))
    expect_equal(out$studies$estimate, exp(sort(d$yi)), tolerance = PLOT_TOL)
    expect_identical(out$studies$label, d$label[order(d$yi)])
    expect_equal(out$summary$estimate, exp(predict(fit)$pred), tolerance = PLOT_TOL)
    by_precision <- draw_png(forest_plot(fit, order = "precision", showweights = FALSE, digits = 3))
    expect_identical(by_precision$studies$label, d$label[order(d$vi)])
    given <- rev(seq_len(nrow(d)))
    expect_identical(draw_png(forest_plot(fit, order = given))$studies$label, d$label[given])
})

test_that("forest_plot draws a common-effect fit without prediction interval", {
    d <- plot_data()
    fit <- metafit(yi ~ 1, vi = vi, data = d, method = "FE")
    out <- draw_png(forest_plot(fit, xlim = c(-1, 0.5)))
    expect_true(is.na(out$summary$pi.lb))
    expect_equal(out$xlim, c(-1, 0.5))
    expect_equal(out$studies$weight, 100 * (1 / d$vi) / sum(1 / d$vi))
})

test_that("forest_plot of a meta-regression draws the studies and no diamond", {
    d <- plot_data()
    fit <- metafit(yi ~ x + (1 | id), vi = vi, data = d)
    out <- draw_png(forest_plot(fit))
    expect_null(out$summary)
    expect_identical(nrow(out$studies), nrow(d))
    expect_identical(min(out$studies$row), 1L)
})

test_that("forest_plot fits 40 studies into a small device, and two panels", {
    d <- plot_data(k = 40)
    fit <- metafit(yi ~ 1 + (1 | id), vi = vi, data = d, slab = label)
    out <- draw_png(forest_plot(fit), width = 480, height = 480)
    expect_identical(nrow(out$studies), 40L)
    two <- draw_png({
        op <- par(mfrow = c(1, 2))
        on.exit(par(op))
        list(forest_plot(fit), forest_plot(fit, transf = exp))
    }, width = 1200)
    expect_length(two, 2L)
    ## the margins changed for the text are given back
    mai <- draw_png({
        before <- par("mai")
        forest_plot(fit)
        rbind(before, par("mai"))
    })
    expect_equal(mai[1L, ], mai[2L, ])
})

test_that("funnel_plot returns effects and standard errors, and marks filled studies", {
    d <- plot_data(k = 20)
    fit <- metafit(yi ~ 1 + (1 | id), vi = vi, data = d)
    out <- draw_png(funnel_plot(fit))
    expect_equal(out$x, d$yi)
    expect_equal(out$y, sqrt(d$vi))
    expect_false(any(out$fill))
    expect_equal(attr(out, "refline"), fit$beta[[1L]])
    ## studies missing on the right: the largest effects suppressed
    keep <- d$yi < quantile(d$yi, 0.8) | d$vi < 0.05
    tf <- trimfill(metafit(yi ~ 1 + (1 | id), vi = vi, data = d[keep, ]))
    expect_gt(tf$k0, 0L)
    filled <- draw_png(funnel_plot(tf, main = "Trim and fill"))
    expect_identical(sum(filled$fill), tf$k0)
    expect_equal(filled$x[filled$fill], tf$model$y[tf$fill])
    expect_equal(attr(filled, "refline"), tf$beta[[1L]])
})

test_that("funnel_plot uses variances, residuals and a given centre", {
    d <- plot_data(k = 20)
    fit <- metafit(yi ~ 1 + (1 | id), vi = vi, data = d)
    out <- draw_png(funnel_plot(fit, yaxis = "vi", refline = 0, level = 0.9))
    expect_equal(out$y, d$vi)
    expect_identical(attr(out, "refline"), 0)
    reg <- metafit(yi ~ x + (1 | id), vi = vi, data = d)
    res <- draw_png(funnel_plot(reg))
    expect_equal(res$x, unname(residuals(reg)))
    expect_identical(attr(res, "refline"), 0)
})

test_that("the plots refuse bad input", {
    d <- plot_data()
    fit <- metafit(yi ~ 1 + (1 | id), vi = vi, data = d)
    expect_error(forest_plot(lm(yi ~ 1, d)), "needs a metafit fit")
    expect_error(funnel_plot(d), "needs a metafit fit")
    expect_error(forest_plot(fit, transf = "exp"), "'transf' must be a function")
    expect_error(forest_plot(fit, order = c(1, 1, 2)), "permutation")
    expect_error(forest_plot(fit, digits = -1), "'digits'")
    expect_error(funnel_plot(fit, yaxis = "seinv"), "should be one of")
    expect_error(funnel_plot(fit, level = 150), "'level'")
    d$school <- rep(1:4, each = 3)
    multilevel <- metafit(yi ~ 1 + (1 | school/id), vi = vi, data = d)
    expect_error(forest_plot(multilevel), "one random effect per study")
    expect_error(funnel_plot(multilevel), "one random effect per study")
})
