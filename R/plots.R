## Pictures of the seeds, in base graphics: OLS / random-intercept / random
## intercept + slope lines, caterpillar plots of the random effects, shrinkage
## of per-group estimates, and residual diagnostics.  Each function returns
## the numbers it drew, invisibly.

## Colours for k groups.
group_colours <- function(k) {
    if (k <= 10L) grDevices::palette.colors(10L, "Tableau 10")[seq_len(k)]
    else grDevices::hcl.colors(k, "Dark 3")
}

## The corner of the plot region with the fewest points, for a legend.
emptiest_corner <- function(x, y) {
    usr <- graphics::par("usr")
    u <- (x - usr[1L]) / (usr[2L] - usr[1L])
    v <- (y - usr[3L]) / (usr[4L] - usr[3L])
    n <- c(topleft = sum(u < 0.4 & v > 0.65), topright = sum(u > 0.6 & v > 0.65),
           bottomleft = sum(u < 0.4 & v < 0.35), bottomright = sum(u > 0.6 & v < 0.35))
    names(n)[which.min(n)]
}

## Grid of panels for n plots.
panel_grid <- function(n) {
    if (n <= 3L) c(1L, n) else { nc <- ceiling(sqrt(n)); c(ceiling(n / nc), nc) }
}

#' One line, parallel lines, free lines: OLS and two mixed models
#'
#' Draws the three pictures of "mixed effects vs fixed effects" side by side
#' for a response, one covariate and a grouping factor: ordinary least
#' squares (one line for everyone, \code{lm(y ~ x)}), a random-intercept
#' model (one line per group, all parallel: \code{lmmfit(y ~ x + (1 | g))})
#' and a random intercept + slope model (each group its own intercept and
#' slope: \code{lmmfit(y ~ x + (x | g))}).  Points are coloured by group, and
#' each group's line has its group's colour and spans that group's range of
#' \code{x}.  The group lines are the group coefficients of the fits,
#' \code{coef(fit)}: fixed effects plus the conditional modes of the random
#' effects.
#'
#' @param formula a formula \code{y ~ x | g}: response, one covariate (a
#'   variable or an expression such as \code{log(x)}), grouping factor.
#' @param data a data frame with the variables of \code{formula}.
#' @param which the panels to draw, any of \code{"ols"}, \code{"intercept"}
#'   and \code{"slope"} (default all three, in that order).
#' @param REML passed to \code{\link{lmmfit}}.
#' @param col colours of the groups (recycled); by default a qualitative
#'   palette.
#' @param pch plotting symbol of the points.
#' @param legend logical: add a legend of the groups to the first panel.
#' @param layout logical: arrange the panels side by side with
#'   \code{par(mfrow)} (restored on exit); \code{FALSE} to draw them into the
#'   current layout, one after the other.
#' @param main titles of the panels (one per panel drawn), or \code{NULL} for
#'   the defaults.
#' @param ... further graphical parameters passed to \code{plot}.
#' @return Invisibly, a list with \code{lines}: for each panel drawn a matrix
#'   of intercepts and slopes, one row per line (\code{"ols"} one row,
#'   \code{"all"}; the others one row per group, the columns of
#'   \code{coef(fit)}); \code{fits}: the fitted models (\code{lm} and
#'   \code{lmmfit} objects); and \code{colours}, the colour of each group.
#' @seealso \code{\link{plot_shrinkage}}, \code{\link{schools}}
#' @examples
#' plot_lines(score ~ hours | school, data = schools)
#' @export
plot_lines <- function(formula, data, which = c("ols", "intercept", "slope"), REML = TRUE,
                       col = NULL, pch = 19, legend = TRUE, layout = TRUE, main = NULL, ...) {
    if (!inherits(formula, "formula") || length(formula) != 3L)
        stop("plot_lines(): 'formula' must be a two-sided formula y ~ x | g", call. = FALSE)
    rhs <- formula[[3L]]
    if (!is.call(rhs) || !identical(rhs[[1L]], as.name("|")))
        stop("plot_lines(): 'formula' must be y ~ x | g: a response, one covariate and a grouping factor",
             call. = FALSE)
    if (missing(data) || !is.data.frame(data))
        stop("plot_lines(): 'data' must be a data frame", call. = FALSE)
    which <- unique(match.arg(which, several.ok = TRUE))
    yv <- formula[[2L]]
    xv <- rhs[[2L]]
    gv <- rhs[[3L]]
    env <- environment(formula)
    y <- eval(yv, data, env)
    x <- eval(xv, data, env)
    g <- eval(gv, data, env)
    if (!is.numeric(y) || !is.numeric(x))
        stop("plot_lines(): the response and the covariate must be numeric", call. = FALSE)
    if (length(y) != nrow(data) || length(x) != nrow(data) || length(g) != nrow(data))
        stop("plot_lines(): the response, covariate and group must each have one value per row of 'data'",
             call. = FALSE)
    g <- factor(g)
    ok <- is.finite(y) & is.finite(x) & !is.na(g)
    g <- droplevels(g[ok])
    if (nlevels(g) < 2L)
        stop("plot_lines(): the grouping factor needs at least two levels", call. = FALSE)
    ## the models, with the variables as named in the formula
    f_ols <- eval(bquote(.(yv) ~ .(xv)))
    f_int <- eval(bquote(.(yv) ~ .(xv) + (1 | .(gv))))
    f_slope <- eval(bquote(.(yv) ~ .(xv) + (.(xv) | .(gv))))
    environment(f_ols) <- environment(f_int) <- environment(f_slope) <- env
    fits <- list()
    if ("ols" %in% which) fits$ols <- stats::lm(f_ols, data = data)
    if ("intercept" %in% which) fits$intercept <- lmmfit(f_int, data = data, REML = REML)
    if ("slope" %in% which) fits$slope <- lmmfit(f_slope, data = data, REML = REML)
    gname <- deparse1(gv)
    lines_of <- function(fit) {
        if (inherits(fit, "lm")) {
            m <- matrix(stats::coef(fit), 1L, dimnames = list("all", names(stats::coef(fit))))
            return(m)
        }
        as.matrix(coef(fit)[[gname]])[levels(g), , drop = FALSE]
    }
    coefs <- lapply(fits, lines_of)
    k <- nlevels(g)
    cols <- if (is.null(col)) group_colours(k) else rep_len(col, k)
    names(cols) <- levels(g)
    titles <- c(ols = "OLS: one line for all",
                intercept = "Random intercept: parallel lines",
                slope = "Random intercept + slope: free lines")[which]
    if (!is.null(main)) titles <- rep_len(as.character(main), length(which))
    if (layout) {
        op <- graphics::par(mfrow = panel_grid(length(which)))
        on.exit(graphics::par(op), add = TRUE)
    }
    xo <- x[ok]
    yo <- y[ok]
    xr <- tapply(xo, g, range, simplify = FALSE)
    for (i in seq_along(which)) {
        graphics::plot(xo, yo, col = cols[as.integer(g)], pch = pch, main = titles[[i]],
                       xlab = deparse1(xv), ylab = deparse1(yv), ...)
        m <- coefs[[which[i]]]
        if (which[i] == "ols") {
            graphics::abline(a = m[1L, 1L], b = m[1L, 2L], lwd = 3)
        } else {
            for (lv in levels(g)) {
                r <- xr[[lv]]
                graphics::segments(r[1L], m[lv, 1L] + m[lv, 2L] * r[1L],
                                   r[2L], m[lv, 1L] + m[lv, 2L] * r[2L], col = cols[[lv]], lwd = 2)
            }
        }
        if (legend && i == 1L)
            graphics::legend(emptiest_corner(xo, yo), legend = levels(g), col = cols, pch = pch, bty = "n",
                             cex = 0.7, ncol = if (k > 5L) 2L else 1L)
    }
    invisible(list(lines = coefs, fits = fits, colours = cols))
}

#' Caterpillar plot of the random effects
#'
#' For each grouping factor and each of its random-effects columns, a panel
#' with the conditional mode of every level (a dot) and its prediction
#' interval, the mode plus or minus \code{qnorm((1 + level) / 2)} conditional
#' standard deviations (from the \code{postVar} attribute; without it, dots
#' only).  Levels are sorted by their first column's value, as lme4's
#' \code{dotplot} sorts them, and the panels of one factor share that order.
#'
#' @param x a \code{"ranef.lmmfit"} object, from \code{ranef(fit)} (with
#'   \code{condVar = TRUE}, the default, for the intervals).
#' @param level coverage of the intervals.
#' @param labels logical: label the levels on the vertical axis (by default
#'   when a factor has at most 60 levels).
#' @param layout logical: arrange all panels in one figure with
#'   \code{par(mfrow)} (restored on exit).
#' @param ... further graphical parameters passed to \code{plot}.
#' @return Invisibly, a data frame with one row per level and column drawn
#'   and columns \code{grpvar}, \code{term}, \code{grp}, \code{condval},
#'   \code{condsd}, \code{lower}, \code{upper} (the interval drawn; \code{NA}
#'   without conditional variances) and \code{y} (the vertical position).
#' @seealso \code{\link{ranef.lmmfit}}
#' @examples
#' fit <- lmmfit(score ~ hours + (hours | school), data = schools)
#' plot(ranef(fit))
#' @method plot ranef.lmmfit
#' @export
plot.ranef.lmmfit <- function(x, level = 0.95, labels = NULL, layout = TRUE, ...) {
    if (!is.numeric(level) || length(level) != 1L || !(level > 0 && level < 1))
        stop("'level' must be a number between 0 and 1", call. = FALSE)
    if (!all(vapply(x, is.data.frame, NA)))
        stop("plot() needs ranef(fit) with drop = FALSE", call. = FALSE)
    z <- stats::qnorm((1 + level) / 2)
    panels <- list()
    for (gname in names(x)) {
        df <- x[[gname]]
        pv <- attr(df, "postVar")
        sds <- NULL
        if (!is.null(pv)) {
            arrs <- if (is.list(pv)) pv else list(pv)
            sds <- do.call(cbind, lapply(arrs, function(a)
                matrix(sqrt(apply(a, 3L, diag)), nrow = dim(a)[3L], byrow = dim(a)[1L] > 1L)))
        }
        ord <- order(df[[1L]])
        pos <- integer(nrow(df))
        pos[ord] <- seq_len(nrow(df))
        for (j in seq_len(ncol(df))) {
            sd_j <- if (is.null(sds)) rep(NA_real_, nrow(df)) else sds[, j]
            panels[[length(panels) + 1L]] <- data.frame(
                grpvar = gname, term = colnames(df)[j], grp = rownames(df),
                condval = df[[j]], condsd = sd_j,
                lower = df[[j]] - z * sd_j, upper = df[[j]] + z * sd_j,
                y = pos, stringsAsFactors = FALSE)
        }
    }
    if (layout) {
        op <- graphics::par(mfrow = panel_grid(length(panels)))
        on.exit(graphics::par(op), add = TRUE)
    }
    for (p in panels) {
        n <- nrow(p)
        lab <- if (is.null(labels)) n <= 60L else isTRUE(labels)
        xl <- range(c(p$condval, p$lower, p$upper), na.rm = TRUE)
        oldmar <- NULL
        if (lab && layout) {
            w <- max(nchar(p$grp)) * 0.7 * graphics::par("cin")[1L]
            oldmar <- graphics::par(mai = pmax(graphics::par("mai"), c(0, w + 0.2, 0, 0)))
        }
        graphics::plot(p$condval, p$y, xlim = xl, ylim = c(0.5, n + 0.5), yaxt = "n",
                       xlab = "conditional mode", ylab = if (lab) "" else p$grpvar[1L],
                       main = sprintf("%s: %s", p$grpvar[1L], p$term[1L]), type = "n", ...)
        graphics::abline(v = 0, col = "grey60", lty = 2)
        if (!all(is.na(p$lower)))
            graphics::segments(p$lower, p$y, p$upper, p$y, col = "grey40")
        graphics::points(p$condval, p$y, pch = 19, cex = if (n > 200L) 0.3 else 0.8, col = "blue")
        if (lab) graphics::axis(2L, at = p$y, labels = p$grp, las = 1L, cex.axis = 0.7)
        if (!is.null(oldmar)) graphics::par(oldmar)
    }
    out <- do.call(rbind, panels)
    rownames(out) <- NULL
    invisible(out)
}

#' Shrinkage: per-group least squares against the mixed model
#'
#' The "regularizing effect" of a mixed model.  For each level of a grouping
#' factor, the intercept and the slope of one covariate are estimated twice:
#' by least squares on that group's data alone (\code{lm} within the group)
#' and by the mixed model (the group's coefficients, \code{coef(fit)}).  Each
#' group is drawn as an arrow from its least-squares estimate (open circle)
#' to its mixed-model estimate (filled dot); the population estimate (the
#' fixed effects) is a cross.  Groups with few or noisy observations are
#' pulled furthest toward the population.
#'
#' The per-group regressions use the columns of the fixed-effects design
#' that vary within groups (the intercept, the chosen covariate, any other
#' such covariates), the model's prior weights, and the response minus any
#' offset.  Columns constant within every group (group-level covariates such
#' as a treatment assigned per subject) cannot be estimated within a group:
#' their contribution is part of each group's least-squares intercept, so
#' for the comparison it is added to the mixed model's intercept too (the
#' group's coefficient times the group's value), and to the population
#' intercept at its average over groups.  Without such columns the mixed
#' estimates drawn are exactly \code{coef(fit)}.  Groups whose own regression
#' is not estimable (too few observations, or the covariate constant in the
#' group) are left out.
#'
#' @param fit a fitted \code{lmmfit} model with a fixed intercept.
#' @param x the covariate whose slope is drawn, a column name of the fixed
#'   effects; by default the first random slope of \code{group}'s terms, or
#'   else the first fixed-effect column that varies within groups.
#' @param group the grouping factor, as named in the formula; needed only when
#'   the model has several.
#' @param groups levels to draw (default all); the estimates are returned for
#'   these.
#' @param col colours of the least-squares and mixed estimates and of the
#'   population estimate.
#' @param ... further graphical parameters passed to \code{plot}.
#' @return Invisibly, a list with \code{lm} and \code{mixed} (matrices, one
#'   row per group drawn, columns \code{"(Intercept)"} and \code{x}),
#'   \code{population} (intercept and slope of the cross), \code{n} (the
#'   number of observations per group), \code{group} and \code{x}.
#' @seealso \code{\link{coef.lmmfit}}, \code{\link{plot_lines}}
#' @examples
#' fit <- lmmfit(score ~ hours + (hours | school), data = schools)
#' plot_shrinkage(fit)
#' @export
plot_shrinkage <- function(fit, x = NULL, group = NULL, groups = NULL,
                           col = c("grey45", "blue", "red"), ...) {
    if (!inherits(fit, "lmmfit")) stop("'fit' must be a model fitted by lmmfit()", call. = FALSE)
    X <- fit$X
    if (!("(Intercept)" %in% colnames(X)))
        stop("plot_shrinkage() needs a model with a fixed intercept", call. = FALSE)
    gnames <- unique(vapply(fit$reterms, `[[`, "", "group"))
    if (is.null(group)) {
        if (length(gnames) > 1L)
            stop(sprintf("plot_shrinkage(): the model has several grouping factors (%s); choose one with 'group'",
                         paste(gnames, collapse = ", ")), call. = FALSE)
        group <- gnames
    } else if (!is.character(group) || length(group) != 1L || !(group %in% gnames)) {
        stop(sprintf("plot_shrinkage(): 'group' must be one of %s", paste(gnames, collapse = ", ")),
             call. = FALSE)
    }
    terms_g <- Filter(function(t) identical(t$group, group), fit$reterms)
    g <- terms_g[[1L]]$factor
    within <- time_varying(X, g)
    if (is.null(x)) {
        slopes <- setdiff(unlist(lapply(terms_g, function(t) colnames(t$Z))), "(Intercept)")
        slopes <- intersect(slopes, within)
        x <- if (length(slopes)) slopes[1L] else if (length(within)) within[1L] else
            stop("plot_shrinkage(): no fixed-effect covariate varies within the groups of ", group,
                 call. = FALSE)
    } else if (!is.character(x) || length(x) != 1L || !(x %in% colnames(X))) {
        stop(sprintf("plot_shrinkage(): 'x' must name a fixed-effect column: one of %s",
                     paste(setdiff(colnames(X), "(Intercept)"), collapse = ", ")), call. = FALSE)
    } else if (!(x %in% within)) {
        stop(sprintf("plot_shrinkage(): '%s' is constant within the groups of %s: it has no within-group slope",
                     x, group), call. = FALSE)
    }
    ## per-group least squares on the within-varying columns
    cols_w <- c("(Intercept)", within)
    y <- fit$y
    if (!is.null(fit$offset)) y <- y - fit$offset
    w <- fit$weights
    rows <- split(seq_along(y), g)
    lev <- levels(g)
    if (!is.null(groups)) {
        groups <- as.character(groups)
        bad <- setdiff(groups, lev)
        if (length(bad))
            stop(sprintf("plot_shrinkage(): 'groups' has levels not in %s: %s", group,
                         paste(utils::head(bad, 5L), collapse = ", ")), call. = FALSE)
        lev <- groups
    }
    ols <- t(vapply(lev, function(lv) {
        i <- rows[[lv]]
        Xi <- X[i, cols_w, drop = FALSE]
        yi <- y[i]
        if (!is.null(w)) { sw <- sqrt(w[i]); Xi <- Xi * sw; yi <- yi * sw }
        if (length(i) <= ncol(Xi)) return(c(NA_real_, NA_real_))
        qx <- qr(Xi)
        if (qx$rank < ncol(Xi)) return(c(NA_real_, NA_real_))
        b <- qr.coef(qx, yi)
        c(b[1L], b[match(x, cols_w)])
    }, numeric(2L)))
    if (length(lev) == 1L) ols <- matrix(ols, 1L)
    dimnames(ols) <- list(lev, c("(Intercept)", x))
    ## the mixed model's group coefficients, with the contribution of
    ## group-level columns added to the intercept
    cf <- as.matrix(coef(fit)[[group]])
    between <- setdiff(colnames(X), cols_w)
    gv <- if (length(between))
        vapply(between, function(cn) as.vector(tapply(X[, cn], g, mean)), numeric(nlevels(g)))
    else matrix(0, nlevels(g), 0L)
    gv <- matrix(gv, nlevels(g), length(between), dimnames = list(levels(g), between))
    ## (the columns not in cols_w are constant within every group: their
    ## group means are their group values)
    add <- if (length(between)) rowSums(cf[levels(g), between, drop = FALSE] * gv) else
        setNames(numeric(nlevels(g)), levels(g))
    mixed <- cbind(cf[lev, "(Intercept)"] + add[lev], cf[lev, x])
    dimnames(mixed) <- list(lev, c("(Intercept)", x))
    beta <- fit$beta
    pop <- c(beta[["(Intercept)"]] + if (length(between)) sum(beta[between] * colMeans(gv)) else 0,
             beta[[x]])
    names(pop) <- c("(Intercept)", x)
    keep <- stats::complete.cases(ols)
    if (any(!keep))
        message(sprintf("plot_shrinkage(): %d group(s) without a least-squares estimate left out",
                        sum(!keep)))
    ols <- ols[keep, , drop = FALSE]
    mixed <- mixed[keep, , drop = FALSE]
    nobs_g <- lengths(rows)[rownames(ols)]
    xl <- range(c(ols[, 1L], mixed[, 1L], pop[1L]))
    yl <- range(c(ols[, 2L], mixed[, 2L], pop[2L]))
    yl[2L] <- yl[2L] + 0.4 * diff(yl)      # headroom for the legend
    graphics::plot(ols[, 1L], ols[, 2L], xlim = xl, ylim = yl, type = "n",
                   xlab = "intercept", ylab = paste("slope of", x),
                   main = sprintf("Shrinkage of the %s estimates", group), ...)
    moved <- sqrt(((ols[, 1L] - mixed[, 1L]) / diff(xl))^2 + ((ols[, 2L] - mixed[, 2L]) / diff(yl))^2) > 1e-3
    if (any(moved))
        graphics::arrows(ols[moved, 1L], ols[moved, 2L], mixed[moved, 1L], mixed[moved, 2L],
                         length = 0.06, col = col[1L])
    small <- nrow(ols) > 200L
    graphics::points(ols[, 1L], ols[, 2L], pch = 1, col = col[1L], cex = if (small) 0.4 else 1)
    graphics::points(mixed[, 1L], mixed[, 2L], pch = 19, col = col[2L], cex = if (small) 0.4 else 1)
    graphics::points(pop[1L], pop[2L], pch = 3, col = col[3L], cex = 2.5, lwd = 3)
    graphics::legend(if (emptiest_corner(c(ols[, 1L], mixed[, 1L]), c(ols[, 2L], mixed[, 2L])) ==
                         "topleft") "topleft" else "topright",
                     c("own least squares", "mixed model", "population"),
                     pch = c(1, 19, 3), col = col, bg = "white", box.col = "grey80", cex = 0.8)
    invisible(list(lm = ols, mixed = mixed, population = pop, n = nobs_g, group = group, x = x))
}

#' Diagnostic plots of an lmmfit model
#'
#' Residuals against fitted values (\code{which = 1}, with a lowess smooth),
#' a normal quantile-quantile plot of the residuals (\code{which = 2}), and
#' normal quantile-quantile plots of the conditional modes of the random
#' effects (\code{which = 3}, one panel per grouping factor and column), as
#' \code{plot.lm}'s \code{which} selects its panels.
#'
#' The residuals are Pearson residuals (times the square root of the prior
#' weights); for a model with a residual correlation structure
#' (\code{\link{ar1}}), the normalized residuals (whitened, over sigma), as
#' nlme plots them.  Fitted values include the random effects.
#'
#' @param x a fitted \code{lmmfit} model.
#' @param which which panels: any of 1, 2, 3.
#' @param layout logical: arrange all panels in one figure with
#'   \code{par(mfrow)} (restored on exit).
#' @param ... further graphical parameters passed to \code{plot}.
#' @return Invisibly, a list with (for the panels drawn) \code{fitted} and
#'   \code{residuals} (panels 1 and 2), \code{qq_residuals} (the theoretical
#'   and sample quantiles of panel 2, as \code{qqnorm} returns them) and
#'   \code{qq_ranef} (a list of those, one per panel of 3, named
#'   \code{"group: column"}).
#' @examples
#' fit <- lmmfit(score ~ hours + (hours | school), data = schools)
#' plot(fit)
#' @method plot lmmfit
#' @export
plot.lmmfit <- function(x, which = 1:3, layout = TRUE, ...) {
    if (!is.numeric(which) || !length(which) || any(!(which %in% 1:3)))
        stop("'which' must be a subset of 1:3", call. = FALSE)
    which <- sort(unique(as.integer(which)))
    ar <- has_resid_structure(x)
    rtype <- if (ar) "normalized" else "pearson"
    res <- residuals(x, type = rtype)
    fv <- fitted(x)
    ok <- !is.na(res) & !is.na(fv)
    res <- res[ok]
    fv <- fv[ok]
    re <- if (3L %in% which) ranef(x, condVar = FALSE) else list()
    re_panels <- list()
    for (gname in names(re)) for (cn in colnames(re[[gname]]))
        re_panels[[paste0(gname, ": ", cn)]] <- stats::setNames(re[[gname]][[cn]], rownames(re[[gname]]))
    npan <- (1L %in% which) + (2L %in% which) + length(re_panels)
    if (layout) {
        op <- graphics::par(mfrow = panel_grid(npan))
        on.exit(graphics::par(op), add = TRUE)
    }
    ylab <- if (ar) "normalized residuals" else "Pearson residuals"
    out <- list()
    if (1L %in% which) {
        graphics::plot(fv, res, xlab = "fitted values", ylab = ylab, main = "Residuals vs fitted",
                       pch = if (length(res) > 2000L) "." else 1, ...)
        graphics::abline(h = 0, lty = 3, col = "grey50")
        if (length(unique(fv)) > 3L) graphics::lines(stats::lowess(fv, res), col = "red")
        out$fitted <- fv
        out$residuals <- res
    }
    if (2L %in% which) {
        qq <- stats::qqnorm(res, main = "Normal Q-Q: residuals", ylab = ylab,
                            pch = if (length(res) > 2000L) "." else 1, ...)
        stats::qqline(res, col = "red")
        out$residuals <- res
        out$qq_residuals <- qq
    }
    if (3L %in% which) {
        out$qq_ranef <- lapply(names(re_panels), function(nm) {
            v <- re_panels[[nm]]
            qq <- stats::qqnorm(v, main = paste("Normal Q-Q:", nm), ylab = "conditional modes",
                                pch = if (length(v) > 2000L) "." else 1, ...)
            stats::qqline(v, col = "red")
            qq
        })
        names(out$qq_ranef) <- names(re_panels)
    }
    invisible(out)
}
