## Pictures of a meta-analysis with one random effect per study, in base
## graphics: the forest plot (each study's estimate and interval, the pooled
## estimate as a diamond) and the funnel plot (effects against their
## precision, with trim-and-fill's filled studies).  Each returns, invisibly,
## the numbers it drew.

## Text never grows beyond the device's default size, and never shrinks
## below this fraction of it (below that a page per study is too small and
## the caller must give the device more height).
FOREST_MIN_CEX <- 0.45

## One study per row: a row is this many text heights, so that the
## whiskers and squares of neighbouring rows do not touch.
FOREST_ROW_LINES <- 1.25

## The largest square (the heaviest study) is this many text heights on a
## side, the lightest at least FOREST_MIN_SQUARE of that, to stay visible.
FOREST_MAX_SQUARE <- 1.6
FOREST_MIN_SQUARE <- 0.2

## Half the diamond's height, in rows.
FOREST_DIAMOND_HALF <- 0.4

## Margins around the text columns and the plot region, in inches.
FOREST_GAP_IN <- 0.15

## Margins in text lines: above the header (room for a title, or none) and
## below the plot for the axis and its label, which shrink with the text
## but no further than FOREST_MIN_AXIS_CEX.
FOREST_TOP_LINES_MAIN <- 2.5
FOREST_TOP_LINES <- 0.5
FOREST_BOTTOM_LINES <- 3.5
FOREST_MIN_AXIS_CEX <- 0.7

## Arrow heads of whiskers cut by xlim, in inches: visible, smaller than a row.
FOREST_ARROW_IN <- 0.06

## The text columns may take at most this share of the device's width: the
## intervals keep the rest.
FOREST_MAX_TEXT_SHARE <- 0.65


#' Forest plot of a meta-analysis
#'
#' One row per study: its label at the left, a square at its estimate with
#' area proportional to its weight in the fitted model, the whiskers of its
#' confidence interval, and at the right "estimate [lower, upper]" and the
#' weight in percent; under the studies the pooled estimate as a diamond
#' spanning its confidence interval and, for a random-effects model, the
#' prediction interval of a new study's true effect as a dotted bar; a
#' vertical reference line.
#'
#' For a meta-regression (a fit with moderators) there is no single pooled
#' estimate: the studies are drawn as above, without the diamond and the
#' prediction interval.  Text shrinks with the number of studies to fit the
#' device: for many studies give the device more height (about 0.2 inch per
#' study).  The graphical parameters changed for the margins are restored on
#' exit.
#'
#' @param fit a \code{metafit} fit with one random effect per study (or a
#'   common-effect model) and independent effects.
#' @param transf optional function applied to the estimates and interval
#'   limits, e.g. \code{exp} for log risk or odds ratios; with \code{exp} the
#'   axis is logarithmic, labelled on the ratio scale.
#' @param refline position of the vertical reference line (on the scale
#'   drawn); default 0, or \code{transf(0)} (1 for \code{exp}); \code{NA} for
#'   none.
#' @param xlab label of the horizontal axis.
#' @param order \code{NULL} (the order of the fit), \code{"estimate"} or
#'   \code{"precision"} (largest variance last), or a permutation of the
#'   studies' indices (top to bottom).
#' @param showweights logical: print each study's weight (percent) at the
#'   right.
#' @param digits number of decimals of the printed estimates and limits.
#' @param main optional title.
#' @param ... further graphical parameters for the plotting symbols and lines
#'   (such as \code{col}); \code{xlim} sets the horizontal range (whiskers
#'   beyond it end in arrows).
#' @return Invisibly, a list: \code{studies}, a data frame with \code{label},
#'   \code{estimate}, \code{ci.lb}, \code{ci.ub} (on the scale drawn),
#'   \code{weight} (percent) and \code{row} (the vertical position); and
#'   \code{summary}, a one-row data frame of the pooled \code{estimate},
#'   \code{ci.lb}, \code{ci.ub}, \code{pi.lb}, \code{pi.ub} (\code{NULL} for
#'   a meta-regression); and \code{xlim}.
#' @examples
#' set.seed(1)
#' d <- data.frame(vi = runif(12, 0.02, 0.2))
#' d$yi <- rnorm(12, -0.4, sqrt(d$vi + 0.05))
#' d$study <- paste("Study", 1:12)
#' fit <- metafit(yi ~ 1 + (1 | study), vi = vi, data = d, slab = study)
#' forest_plot(fit)
#' forest_plot(fit, transf = exp, xlab = "Risk ratio", order = "estimate")
#' @export
forest_plot <- function(fit, transf = NULL, refline = NULL, xlab = NULL, order = NULL,
                        showweights = TRUE, digits = 2, main = NULL, ...) {
    meta_require_uni(fit, "forest_plot()", "fit")
    if (!is.null(transf) && !is.function(transf)) stop("'transf' must be a function, such as exp", call. = FALSE)
    if (!is.numeric(digits) || length(digits) != 1L || digits < 0)
        stop("'digits' must be a non-negative number of decimals", call. = FALSE)
    pooled <- if (!meta_has_moderators(fit)) forest_pooled(fit, transf)
    rows <- forest_rows(fit, transf, order, below = forest_pooled_rows(pooled))
    if (is.null(refline)) refline <- if (is.null(transf)) 0 else transf(0)
    logx <- identical(transf, exp)
    if (is.null(xlab)) xlab <- if (is.null(transf)) "Observed outcome" else "Outcome (transformed)"
    dots <- list(...)
    xlim <- if (!is.null(dots$xlim)) dots$xlim
            else range(c(rows$ci.lb, rows$ci.ub, unlist(pooled), refline), na.rm = TRUE)
    dots$xlim <- NULL
    text_cols <- forest_text(rows, pooled, digits, showweights, fit$level)
    layout <- forest_layout(text_cols, nrow(rows) + forest_pooled_rows(pooled), !is.null(main))
    op <- graphics::par(mai = layout$mai, cex = layout$cex)
    on.exit(graphics::par(op), add = TRUE)
    graphics::plot.new()
    graphics::plot.window(xlim = xlim, ylim = layout$ylim, log = if (logx) "x" else "")
    if (!is.na(refline)) graphics::abline(v = refline, lty = "dashed", col = "grey40")
    forest_draw_studies(rows, xlim, dots)
    if (!is.null(pooled)) forest_draw_pooled(pooled, meta_is_random(fit))
    forest_axis(xlim, logx, xlab)
    forest_write_text(text_cols, layout)
    if (!is.null(main)) graphics::title(main = main, line = 1)
    invisible(list(studies = rows, summary = pooled, xlim = xlim))
}

## The studies in the order drawn (top first), on the scale drawn, above
## the rows of the pooled estimate.
forest_rows <- function(fit, transf, order, below) {
    m <- fit$model
    ## each study's own interval uses the normal quantile, as its vi is known;
    ## the t quantile is for the pooled estimate
    crit <- stats::qnorm(1 - (1 - fit$level) / 2)
    se <- sqrt(m$vi)
    tr <- if (is.null(transf)) identity else transf
    d <- data.frame(label = m$slab, estimate = tr(m$y), ci.lb = tr(m$y - crit * se), ci.ub = tr(m$y + crit * se),
                    weight = unname(weights(fit)), stringsAsFactors = FALSE)
    idx <- forest_order(order, m)
    d <- d[idx, , drop = FALSE]
    rownames(d) <- NULL
    d$row <- rev(seq_len(nrow(d))) + below
    d
}

## Rows under the studies: the prediction interval (row 1), the diamond
## (row 2) and a separating blank; none for a meta-regression.
forest_pooled_rows <- function(pooled) if (is.null(pooled)) 0L else 3L

forest_order <- function(order, m) {
    if (is.null(order)) return(seq_len(m$k))
    if (is.character(order)) {
        order <- match.arg(order, c("estimate", "precision"))
        return(if (order == "estimate") base::order(m$y) else base::order(m$vi))
    }
    if (!is.numeric(order) || !identical(sort(as.integer(order)), seq_len(m$k)))
        stop(sprintf("'order' must be NULL, \"estimate\", \"precision\" or a permutation of 1:%d", m$k),
             call. = FALSE)
    as.integer(order)
}

forest_pooled <- function(fit, transf) {
    p <- stats::predict(fit, transf = transf)
    out <- data.frame(estimate = p$pred, ci.lb = p$ci.lb, ci.ub = p$ci.ub,
                      pi.lb = p$pi.lb, pi.ub = p$pi.ub)
    if (!meta_is_random(fit)) out[c("pi.lb", "pi.ub")] <- NA_real_
    out
}

## The text of the left column (labels) and the right ones (estimate [CI],
## weight), each with a header, and the rows they go on.
forest_text <- function(rows, pooled, digits, showweights, level) {
    fmt <- function(v) formatC(v, digits = digits, format = "f")
    ci <- function(e, lo, hi) sprintf("%s [%s, %s]", fmt(e), fmt(lo), fmt(hi))
    at <- rows$row
    left <- rows$label
    right <- ci(rows$estimate, rows$ci.lb, rows$ci.ub)
    wt <- sprintf("%.1f%%", rows$weight)
    if (!is.null(pooled)) {
        random <- !is.na(pooled$pi.lb)
        at <- c(at, 2)
        left <- c(left, if (random) "RE Model" else "FE Model")
        right <- c(right, ci(pooled$estimate, pooled$ci.lb, pooled$ci.ub))
        wt <- c(wt, "100%")
        if (random) {
            at <- c(at, 1)
            left <- c(left, "Prediction interval")
            right <- c(right, sprintf("[%s, %s]", fmt(pooled$pi.lb), fmt(pooled$pi.ub)))
            wt <- c(wt, "")
        }
    }
    header <- max(rows$row) + 1.5
    list(at = c(header, at), left = c("Study", left),
         right = c(sprintf("Estimate [%g%% CI]", 100 * level), right),
         weight = if (showweights) c("Weight", wt))
}

## Margins wide enough for the text columns and text small enough for one
## row per study in the figure's height (the device's, or one panel's).
forest_layout <- function(text_cols, nrows_body, has_main) {
    fin <- graphics::par("fin")
    csi <- graphics::par("csi")
    nrows <- nrows_body + 1.5
    top <- (if (has_main) FOREST_TOP_LINES_MAIN else FOREST_TOP_LINES) * csi
    bottom <- FOREST_BOTTOM_LINES * csi
    cex <- min(1, (fin[2L] - top - bottom) / nrows / (csi * FOREST_ROW_LINES))
    widths <- function(cex) {
        ## measured in bold, the widest the headers and the pooled row are
        w <- function(s) if (is.null(s)) 0 else max(graphics::strwidth(s, units = "inches", cex = cex, font = 2))
        c(left = w(text_cols$left), right = w(text_cols$right), weight = w(text_cols$weight))
    }
    wd <- widths(cex)
    text_w <- sum(wd) + 4 * FOREST_GAP_IN
    if (text_w > FOREST_MAX_TEXT_SHARE * fin[1L]) {
        cex <- cex * FOREST_MAX_TEXT_SHARE * fin[1L] / text_w
        wd <- widths(cex)
    }
    cex <- max(cex, FOREST_MIN_CEX)
    ## widths at the final size; margins measured unscaled by par(cex)
    wd <- widths(cex)
    mai <- c(bottom * max(cex, FOREST_MIN_AXIS_CEX), wd[["left"]] + 2 * FOREST_GAP_IN, top,
             wd[["right"]] + wd[["weight"]] + 3 * FOREST_GAP_IN)
    list(mai = mai, cex = cex, widths = wd, ylim = c(0.5, nrows_body + 2))
}

forest_draw_studies <- function(rows, xlim, dots) {
    lo <- pmax(rows$ci.lb, xlim[1L])
    hi <- pmin(rows$ci.ub, xlim[2L])
    col <- if (is.null(dots$col)) "black" else dots$col
    graphics::segments(lo, rows$row, hi, rows$row, col = col)
    cut_lo <- rows$ci.lb < xlim[1L]
    cut_hi <- rows$ci.ub > xlim[2L]
    if (any(cut_lo)) graphics::arrows(hi[cut_lo], rows$row[cut_lo], lo[cut_lo], rows$row[cut_lo],
                                      length = FOREST_ARROW_IN, col = col)
    if (any(cut_hi)) graphics::arrows(lo[cut_hi], rows$row[cut_hi], hi[cut_hi], rows$row[cut_hi],
                                      length = FOREST_ARROW_IN, col = col)
    size <- FOREST_MAX_SQUARE * pmax(sqrt(rows$weight / max(rows$weight)), FOREST_MIN_SQUARE)
    inside <- rows$estimate >= xlim[1L] & rows$estimate <= xlim[2L]
    graphics::points(rows$estimate[inside], rows$row[inside], pch = 15, cex = size[inside], col = col)
}

forest_draw_pooled <- function(pooled, random) {
    h <- FOREST_DIAMOND_HALF
    graphics::polygon(c(pooled$ci.lb, pooled$estimate, pooled$ci.ub, pooled$estimate), c(2, 2 + h, 2, 2 - h),
                      col = "grey20", border = "grey20")
    if (random) {
        graphics::segments(pooled$pi.lb, 1, pooled$pi.ub, 1, lty = "dotted", lwd = 2)
        graphics::segments(c(pooled$pi.lb, pooled$pi.ub), 1 - h / 2, c(pooled$pi.lb, pooled$pi.ub), 1 + h / 2)
    }
    graphics::abline(h = forest_pooled_rows(pooled), col = "grey70")
}

forest_axis <- function(xlim, logx, xlab) {
    at <- if (logx) grDevices::axisTicks(log10(xlim), log = TRUE, nint = 6) else pretty(xlim)
    at <- at[at >= xlim[1L] & at <= xlim[2L]]
    graphics::axis(1, at = at, labels = format(at, drop0trailing = TRUE, trim = TRUE))
    graphics::title(xlab = xlab, line = 2.3)
}

## The columns written in the margins: labels left-aligned, the intervals
## and weights right-aligned (their decimals line up).
forest_write_text <- function(text_cols, layout) {
    usr_x <- function(inches) graphics::grconvertX(inches, from = "inches", to = "user")
    plot_left <- graphics::grconvertX(0, from = "npc", to = "inches")
    plot_right <- graphics::grconvertX(1, from = "npc", to = "inches")
    header <- seq_along(text_cols$at) == 1L
    font <- ifelse(header | text_cols$left %in% c("RE Model", "FE Model"), 2, 1)
    graphics::text(usr_x(plot_left - FOREST_GAP_IN - layout$widths[["left"]]), text_cols$at, text_cols$left,
                   adj = c(0, 0.5), xpd = NA, font = font)
    right_end <- plot_right + FOREST_GAP_IN + layout$widths[["right"]]
    graphics::text(usr_x(right_end), text_cols$at, text_cols$right, adj = c(1, 0.5), xpd = NA, font = font)
    if (!is.null(text_cols$weight))
        graphics::text(usr_x(right_end + FOREST_GAP_IN + layout$widths[["weight"]]), text_cols$at,
                       text_cols$weight, adj = c(1, 0.5), xpd = NA, font = font)
}

#' Funnel plot of a meta-analysis
#'
#' The studies' effects against their standard errors (or sampling
#' variances), the precise studies at the top (the axis reversed, 0 at the
#' top), inside the pseudo-confidence region estimate \eqn{\pm z_{(1 +
#' level)/2}} SE in which studies would fall without heterogeneity and
#' bias, and the line of the pooled estimate.  For a meta-regression the
#' residuals take the place of the effects, centred on 0.  For a fit from
#' \code{\link{trimfill}} the filled studies are open circles.
#'
#' @param fit a \code{metafit} fit with one random effect per study (or a
#'   common-effect model) and independent effects, or a
#'   \code{\link{trimfill}} result.
#' @param yaxis \code{"sei"} (standard errors, default) or \code{"vi"}
#'   (sampling variances).
#' @param refline the centre of the region (default the pooled estimate, 0
#'   for residuals).
#' @param level level of the pseudo-confidence region.
#' @param xlab,main axis label and title.
#' @param ... further graphical parameters for the points (such as
#'   \code{col}, \code{cex}).
#' @return Invisibly, a data frame: \code{x} (effect or residual), \code{y}
#'   (standard error or variance), \code{fill} (logical: a filled study),
#'   with the centre of the region as attribute \code{"refline"}.
#' @examples
#' set.seed(1)
#' d <- data.frame(vi = runif(20, 0.01, 0.2))
#' d$yi <- rnorm(20, 0.3, sqrt(d$vi + 0.02))
#' d$study <- 1:20
#' fit <- metafit(yi ~ 1 + (1 | study), vi = vi, data = d)
#' funnel_plot(fit)
#' funnel_plot(trimfill(fit))
#' @export
funnel_plot <- function(fit, yaxis = "sei", refline = NULL, level = 0.95, xlab = NULL, main = NULL, ...) {
    meta_require_uni(fit, "funnel_plot()", "fit")
    yaxis <- match.arg(yaxis, c("sei", "vi"))
    level <- meta_level(level)
    m <- fit$model
    mods <- meta_has_moderators(fit)
    x <- if (mods) unname(residuals(fit)) else m$y
    y <- if (yaxis == "sei") sqrt(m$vi) else m$vi
    fill <- if (is.null(fit$fill)) rep(FALSE, m$k) else fit$fill
    if (is.null(refline)) refline <- if (mods) 0 else fit$beta[[1L]]
    if (is.null(xlab)) xlab <- if (mods) "Residual value" else "Observed outcome"
    region <- funnel_region(refline, max(y), yaxis, level)
    graphics::plot(x, y, type = "n", xlim = range(x, region$x), ylim = c(max(y) * FUNNEL_HEADROOM, 0),
                   xlab = xlab, ylab = if (yaxis == "sei") "Standard error" else "Sampling variance",
                   main = main, las = 1)
    graphics::polygon(region$x, region$y, col = "grey92", border = "grey50", lty = "dashed")
    graphics::segments(refline, 0, refline, max(y) * FUNNEL_HEADROOM, col = "grey30")
    dots <- list(...)
    col <- if (is.null(dots$col)) "black" else dots$col
    cex <- if (is.null(dots$cex)) 1 else dots$cex
    graphics::points(x[!fill], y[!fill], pch = 19, col = col, cex = cex)
    if (any(fill)) {
        graphics::points(x[fill], y[fill], pch = 21, bg = "white", col = col, cex = cex)
        graphics::legend(emptiest_corner(x, y), c("Observed", "Filled"), pch = c(19, 21), pt.bg = "white",
                         bg = "white", inset = 0.02, cex = 0.85)
    }
    invisible(structure(data.frame(x = x, y = y, fill = fill), refline = refline))
}

## Points along the curve (a triangle on the standard-error scale) at
## which effects are z standard errors from the centre; this many for
## the variance scale, whose boundary is curved.
FUNNEL_CURVE_POINTS <- 100L

## The region and the axis reach this far beyond the least precise study,
## so that its point is not on the frame.
FUNNEL_HEADROOM <- 1.05

funnel_region <- function(centre, ymax, yaxis, level) {
    z <- stats::qnorm(1 - (1 - level) / 2)
    y <- seq(0, ymax * FUNNEL_HEADROOM, length.out = FUNNEL_CURVE_POINTS)
    se <- if (yaxis == "sei") y else sqrt(y)
    list(x = c(centre - z * se, rev(centre + z * se)), y = c(y, rev(y)))
}
