## The empirical autocorrelation (nlme's ACF) and semivariogram (nlme's
## Variogram) of a fit's within-group residuals, as methods for nlme's
## generics returning nlme's classes, and base-graphics pictures of them
## with what the fitted residual structure implies drawn over them.
##
## Definitions (written from them, not from nlme's code):
##  ACF at lag k: rho(k) = c(k) / c(0), c(k) = sum of r_i r_{i+k} over the
##    pairs k positions apart within a group, divided by their number.
##  Semivariogram of a pair: (r_i - r_j)^2 / 2 at their distance d_ij; binned
##    by the mean (or the Cressie-Hawkins robust estimate) of a bin's pairs at
##    the median of its distances.

#' @importFrom nlme ACF Variogram
#' @export
nlme::ACF
#' @export
nlme::Variogram

RESID_PLOT_TYPES <- c("pearson", "response", "normalized")

## Cressie and Hawkins (1980): 2 gamma(h) = mean(|r_i - r_j|^(1/2))^4 / (0.457 + 0.494 / N_h).
CRESSIE_HAWKINS <- c(0.457, 0.494)

## The residuals the methods take, one per row of the model frame, on nlme's
## scales: "response" raw, "pearson" over sigma and the variance function
## (and 1/sqrt(prior weight)), "normalized" whitened by the correlation too.
structure_residuals <- function(fit, type) {
    r <- residuals(fit, type = type, scaled = type == "pearson")
    if (inherits(fit$na.action, "exclude")) r <- r[-fit$na.action]
    unname(as.numeric(r))
}

## Unnamed arguments and names a method does not take: an error by name.
refuse_extra_args <- function(fun, dots, hint = "") {
    if (!length(dots)) return(invisible())
    nm <- names(dots)
    if (is.null(nm)) nm <- rep("", length(dots))
    stop(sprintf("%s(): unused argument%s %s%s", fun, if (length(nm) > 1L) "s" else "",
                 paste0("'", ifelse(nzchar(nm), nm, "<unnamed>"), "'", collapse = ", "), hint),
         call. = FALSE)
}

## The fit's correlation structure as these methods need it: its class, its
## grouping (a factor over the rows, levels in factor()'s order, as nlme
## splits), the coordinates its correlation depends on (one time column for
## the serial structures: the covariate, or the positions; the spatial
## coordinates; NULL for compound symmetry), its parameters.  NULL without one.
cor_structure_info <- function(fit) {
    if (!is.null(fit$ar1)) {
        st <- fit$ar1
        return(list(class = "corAR1", g = st$g, gname = st$group, coords = matrix(as.double(st$tm)),
                    covariate = if (!identical(st$time, "1")) st$time, corpar = fit$corpar, nugget = 0))
    }
    cc <- fit$resid$cor
    if (is.null(cc)) return(NULL)
    parts <- resid_form_parts(cc$form, paste0(cc$class, "()"))
    n <- length(fit$y)
    g <- if (is.null(parts$group)) factor(rep.int(1L, n))
         else factor(resid_eval(parts$group, fit$frame, environment(fit$formula), paste0(cc$class, "()")))
    serial <- cc$class %in% c("corAR1", "corCAR1")
    coords <- if (serial) matrix(as.double(cc$x)) else if (cc$class != "corCompSymm") cc$coords
    list(class = cc$class, g = g, gname = cc$group, coords = coords,
         covariate = if (serial && length(parts$covs)) deparse1(parts$covs[[1L]]),
         corpar = fit$corpar, nugget = if (isTRUE(cc$nugget == 1L)) fit$corpar[["nugget"]] else 0)
}

is_serial <- function(info) !is.null(info) && info$class %in% c("corAR1", "corCAR1")
is_spatial <- function(info) !is.null(info) && info$class %in% c("corExp", "corGaus", "corSpher")

## A spatial structure's correlation at u = d / range (before the nugget).
spatial_cor <- function(class, u) {
    switch(class, corExp = exp(-u), corGaus = exp(-u^2),
           corSpher = ifelse(u < 1, 1 - 1.5 * u + 0.5 * u^3, 0))
}

## The fitted correlation between rows i and j (vectors, i != j): zero
## across the structure's groups.
structure_cor <- function(info, i, j) {
    p <- info$corpar
    rho <- switch(info$class,
                  corAR1 = , corCAR1 = p[["Phi"]]^abs(info$coords[i, 1L] - info$coords[j, 1L]),
                  corCompSymm = rep(p[["Rho"]], length(i)),
                  {
                      d <- sqrt(rowSums((info$coords[i, , drop = FALSE] - info$coords[j, , drop = FALSE])^2))
                      (1 - info$nugget) * spatial_cor(info$class, d / p[["range"]])
                  })
    rho[as.integer(info$g)[i] != as.integer(info$g)[j]] <- 0
    rho
}

## The innermost random-effects grouping: the factor nested in all the others.
innermost_grouping <- function(fit, what) {
    terms <- fit$reterms
    if (!length(terms)) return(list(g = factor(rep.int(1L, length(fit$y))), gname = "(all data)"))
    t <- innermost_term(terms)
    if (is.null(t))
        stop(sprintf(paste0("%s: the random-effects groupings (%s) are crossed, so there is no ",
                            "innermost group; give the grouping as form = ~ 1 | g"),
                     what, paste(vapply(terms, `[[`, "", "group"), collapse = ", ")), call. = FALSE)
    list(g = factor(t$factor), gname = t$group)
}

## The data a 'form' is evaluated in: the model frame when it has the
## variables, else 'data' (by default the fit's data, getData()), its rows
## matched to the model frame's by name.
form_data <- function(fit, form, data, what) {
    if (is.null(data) && all(all.vars(form) %in% names(fit$frame))) return(fit$frame)
    if (is.null(data)) {
        if (is.null(fit$call$data))
            stop(sprintf("%s: the variables of 'form' are not in the model frame; give 'data'", what),
                 call. = FALSE)
        data <- getData(fit)
    }
    if (!is.data.frame(data)) data <- as.data.frame(data)
    rows <- match(rownames(fit$frame), rownames(data))
    if (anyNA(rows))
        stop(sprintf("%s: the rows of the model frame cannot be matched to the rows of 'data' (by row name)",
                     what), call. = FALSE)
    data[rows, , drop = FALSE]
}

## A one-sided form ~ covariates | g as the structures read it
## (resid_form_parts()), with the covariates as one expression.
plot_form_parts <- function(form, what) {
    parts <- resid_form_parts(form, what)
    cov <- if (length(parts$covs)) Reduce(function(a, b) call("+", a, b), parts$covs)
    list(cov = cov, group = parts$group)
}

## A form's grouping on the data, as a structure's (a:b and a/b are
## interactions of factors).
form_grouping <- function(group, d, fit, what) resid_factor(group, d, environment(fit$formula), what)

## The default lag grouping: the correlation structure's, else the innermost
## random-effects grouping.
lag_grouping <- function(fit, info, what) {
    if (!is.null(info)) return(list(g = info$g, gname = info$gname))
    innermost_grouping(fit, what)
}

check_whole <- function(x, name, what, min = 0) {
    if (!is.numeric(x) || length(x) != 1L || !is.finite(x) || x != round(x) || x < min)
        stop(sprintf("%s: '%s' must be a whole number >= %d", what, name, min), call. = FALSE)
    as.integer(x)
}

## The ACF and, for pearson and response residuals of a fit with a
## correlation structure, the fitted correlation at each lag (the mean over
## the lag's pairs of the structure's correlation between the pair).
acf_compute <- function(object, maxLag, resType, form) {
    what <- "ACF()"
    r <- structure_residuals(object, resType)
    info <- cor_structure_info(object)
    lg <- NULL
    key <- if (is_serial(info)) info$coords[, 1L] else seq_along(r)
    if (!is.null(form)) {
        fp <- plot_form_parts(form, what)
        d <- form_data(object, form, NULL, what)
        if (!is.null(fp$group)) lg <- list(g = form_grouping(fp$group, d, object, what),
                                           gname = deparse1(fp$group))
        key <- seq_along(r)
        if (!is.null(fp$cov)) {
            key <- tryCatch(eval(fp$cov, d, environment(object$formula)), error = function(e)
                stop(sprintf("%s: cannot evaluate the time '%s': %s", what, deparse1(fp$cov),
                             conditionMessage(e)), call. = FALSE))
            if (!is.numeric(key) || length(key) != length(r) || anyNA(key))
                stop(sprintf("%s: the time '%s' must be numeric, one value per observation, no NAs", what,
                             deparse1(fp$cov)), call. = FALSE)
        }
    }
    if (is.null(lg)) lg <- lag_grouping(object, info, what)
    g <- as.integer(lg$g)
    o <- order(g, key)
    rs <- r[o]
    gs <- g[o]
    n <- length(rs)
    maxL <- max(tabulate(gs, nlevels(lg$g))) - 1L
    if (is.null(maxLag)) maxLag <- min(maxL, as.integer(10 * log10(maxL + 1)))
    maxLag <- check_whole(maxLag, "maxLag", what)
    if (maxLag > maxL)
        stop(sprintf("%s: maxLag = %d, but the largest group of %s has %d observations (lags up to %d)",
                     what, maxLag, lg$gname, maxL + 1L, maxL), call. = FALSE)
    model <- !is.null(info) && resType != "normalized"
    sums <- numeric(maxLag + 1L)
    counts <- numeric(maxLag + 1L)
    mcor <- if (model) c(1, numeric(maxLag))
    for (k in 0:maxLag) {
        i <- seq_len(n - k)
        i <- i[gs[i] == gs[i + k]]
        sums[k + 1L] <- sum(rs[i] * rs[i + k])
        counts[k + 1L] <- length(i)
        if (model && k > 0L) mcor[k + 1L] <- mean(structure_cor(info, o[i], o[i + k]))
    }
    c_k <- sums / counts
    val <- structure(data.frame(lag = 0:maxLag, ACF = c_k / c_k[1L]), n.used = counts,
                     class = c("ACF", "data.frame"))
    list(acf = val, model = mcor, info = info, gname = lg$gname)
}

#' Empirical autocorrelation of an lmmfit model's residuals
#'
#' nlme's \code{ACF()} for \code{lmmfit} fits: the empirical autocorrelation
#' function of the within-group residuals, to judge a serial correlation
#' structure (\code{correlation = nlme::corAR1()}, \code{corCAR1()},
#' \code{\link{ar1}()}), as nlme's \code{ACF.lme} computes it.  At lag
#' \code{k} it is \code{c(k) / c(0)}, where \code{c(k)} is the sum of the
#' products \code{r[i] * r[i + k]} of the residuals \code{k} positions apart
#' within a group, over all groups, divided by the number of such pairs.
#' The lags are positions within a group, not time differences.
#'
#' The groups are those of the fit's correlation structure when it has one
#' (nested in the random effects), else the innermost random-effects
#' grouping (the one nested in all the others), as nlme's innermost level.
#' Within a group the residuals are in the order of a serial structure's time
#' covariate, else in the order of the data (nlme takes the order of the data;
#' the two agree for data sorted by time within groups).
#'
#' @param object a fitted \code{lmmfit} model.
#' @param maxLag the largest lag; by default, as nlme, the smaller of the
#'   largest group's largest lag and \code{10 * log10(largest lag + 1)}.  A
#'   lag beyond the largest group's is an error.
#' @param resType the residuals: \code{"pearson"} (over sigma and the variance
#'   function, nlme's default), \code{"response"} (raw), or
#'   \code{"normalized"} (also whitened by the fitted correlation: close to
#'   zero beyond lag 0 when the structure fits).
#' @param form optional one-sided formula \code{~ t | g}, \code{~ 1 | g} or
#'   \code{~ t}: a grouping \code{g} replaces the default one, a covariate
#'   \code{t} orders the residuals within groups (the lags stay positions).
#'   Its variables are taken from the model frame, else from the fit's data.
#' @param ... nothing else: other arguments are an error.
#' @return A data frame of class \code{c("ACF", "data.frame")} with columns
#'   \code{lag} and \code{ACF} and attribute \code{n.used} (the number of
#'   residual pairs at each lag), as nlme's, so that nlme's \code{plot} method
#'   draws it.  \code{\link{plot_acf}} draws it in base graphics.
#' @seealso \code{\link{plot_acf}}, \code{\link{Variogram.lmmfit}}
#' @examples
#' fit <- lmmfit(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time) + (1 | Mare),
#'               data = nlme::Ovary, correlation = nlme::corAR1(form = ~ 1 | Mare))
#' ACF(fit, maxLag = 10)
#' ACF(fit, maxLag = 10, resType = "normalized")
#' @export
ACF.lmmfit <- function(object, maxLag, resType = c("pearson", "response", "normalized"), form, ...) {
    refuse_extra_args("ACF", list(...))
    resType <- match.arg(resType)
    acf_compute(object, if (missing(maxLag)) NULL else maxLag, resType, if (missing(form)) NULL else form)$acf
}

## Pairs of rows within groups, each group's rows in the given order, pairs
## in dist()'s order: (2,1), (3,1), ..., (n,1), (3,2), ...  Groups in level
## order, those of one row left out.
within_group_pairs <- function(g, rows = seq_along(g)) {
    byg <- split(rows, g[rows])
    byg <- byg[lengths(byg) > 1L]
    one <- function(idx) {
        m <- length(idx)
        j <- rep.int(seq_len(m - 1L), (m - 1L):1L)
        i <- sequence((m - 1L):1L, from = 2:m)
        cbind(i = idx[i], j = idx[j])
    }
    list(pairs = do.call(rbind, c(list(matrix(integer(0), 0L, 2L, dimnames = list(NULL, c("i", "j")))),
                                  lapply(byg, one))),
         sizes = lengths(byg), groups = names(byg))
}

pair_distance <- function(X, p, metric) {
    D <- abs(X[p[, "i"], , drop = FALSE] - X[p[, "j"], , drop = FALSE])
    switch(metric, euclidean = sqrt(rowSums(D^2)), maximum = apply(D, 1L, max), manhattan = rowSums(D))
}

## The semivariogram: the pairs, their distances, the binning; the model's
## semivariogram as nlme attaches it.
variogram_compute <- function(object, distance, form, resType, data, na.action, maxDist, length.out,
                              collapse, nint, breaks, robust, metric, nint_given) {
    what <- "Variogram()"
    r <- structure_residuals(object, resType)
    n <- length(r)
    info <- cor_structure_info(object)
    lg <- NULL
    rows <- seq_len(n)
    own <- is.null(form) && is.null(distance)     # the structure's own distances
    X <- NULL
    if (!is.null(form)) {
        fp <- plot_form_parts(form, what)
        d <- form_data(object, form, data, what)
        if (!is.null(fp$group)) lg <- list(g = form_grouping(fp$group, d, object, what),
                                           gname = deparse1(fp$group))
        if (!is.null(fp$cov)) {
            cf <- eval(substitute(~ COV - 1, list(COV = fp$cov)))
            environment(cf) <- environment(object$formula)
            mf <- stats::model.frame(cf, d, na.action = na.action)
            rows <- match(rownames(mf), rownames(d))
            X <- unclass(stats::model.matrix(cf, mf))
            Xf <- matrix(NA_real_, n, ncol(X))
            Xf[rows, ] <- X
            X <- Xf
        }
    } else if (is.null(distance)) {
        if (is_serial(info) || is_spatial(info)) X <- info$coords
        metric <- "euclidean"
    }
    if (is.null(lg)) lg <- lag_grouping(object, info, what)
    wp <- within_group_pairs(lg$g, rows)
    p <- wp$pairs
    dst <- if (!is.null(distance)) {
        dl <- if (is.list(distance)) distance else list(distance)
        dv <- as.numeric(unlist(lapply(dl, as.vector)))
        if (is.list(distance) && (length(dl) != length(wp$sizes) ||
                                  any(lengths(dl) != choose(wp$sizes, 2))))
            stop(sprintf(paste0("%s: 'distance' must have one element per group of %s with two or more ",
                                "observations (%d), each with the group's %s pair distances in dist()'s order"),
                         what, lg$gname, length(wp$sizes), "n(n-1)/2"), call. = FALSE)
        if (length(dv) != nrow(p))
            stop(sprintf("%s: 'distance' has %d values for the %d residual pairs within groups of %s",
                         what, length(dv), nrow(p), lg$gname), call. = FALSE)
        if (any(!is.finite(dv)) || any(dv < 0))
            stop(sprintf("%s: 'distance' must be finite and non-negative", what), call. = FALSE)
        dv
    } else if (!is.null(X)) {
        pair_distance(X, p, metric)
    } else {
        ## positions within groups, in the order of the data
        pos <- numeric(n)
        for (idx in split(rows, lg$g[rows])) pos[idx] <- seq_along(idx)
        abs(pos[p[, "i"]] - pos[p[, "j"]])
    }
    dr <- r[p[, "i"]] - r[p[, "j"]]
    all_dst <- dst
    if (!is.null(maxDist)) {
        if (!is.numeric(maxDist) || length(maxDist) != 1L || is.na(maxDist))
            stop(sprintf("%s: 'maxDist' must be a number", what), call. = FALSE)
        keep <- dst <= maxDist
        dst <- dst[keep]
        dr <- dr[keep]
    }
    if (!length(dst)) stop(sprintf("%s: no residual pairs within groups of %s%s", what, lg$gname,
                                   if (!is.null(maxDist)) " at distances up to maxDist" else ""),
                           call. = FALSE)
    vg <- dr^2 / 2
    if (collapse == "none") {
        val <- data.frame(variog = vg, dist = dst)
    } else {
        udist <- sort(unique(dst))
        bin <- if (!is.null(breaks)) {
            if (!is.numeric(breaks) || length(breaks) < 2L || any(!is.finite(breaks)) || is.unsorted(breaks, strictly = TRUE))
                stop(sprintf("%s: 'breaks' must be increasing finite numbers, at least two", what), call. = FALSE)
            if (nint_given && nint != length(breaks) - 1L)
                stop(sprintf("%s: nint = %d is not consistent with the %d intervals of 'breaks'", what, nint,
                             length(breaks) - 1L), call. = FALSE)
            if (breaks[1L] > udist[1L]) breaks <- c(udist[1L], breaks)
            if (breaks[length(breaks)] < udist[length(udist)]) breaks <- c(breaks, udist[length(udist)])
            cut(dst, breaks, include.lowest = TRUE, labels = FALSE)
        } else if (nint < length(udist)) {
            breaks <- if (collapse == "quantiles") unique(stats::quantile(dst, seq(0, 1, 1 / nint), names = FALSE))
                      else seq(udist[1L], udist[length(udist)], length.out = nint + 1L)
            cut(dst, breaks, include.lowest = TRUE, labels = FALSE)
        } else match(dst, udist)
        bins <- sort(unique(bin))
        np <- tabulate(bin, max(bins))[bins]
        vgb <- if (robust) {
            s <- vapply(split(sqrt(abs(dr)), bin), mean, 0)
            s^4 / (2 * (CRESSIE_HAWKINS[1L] + CRESSIE_HAWKINS[2L] / np))
        } else vapply(split(vg, bin), mean, 0)
        val <- data.frame(variog = unname(vgb), dist = unname(vapply(split(dst, bin), stats::median, 0)),
                          n.pairs = np)
    }
    row.names(val) <- seq_len(nrow(val))
    mod <- NULL
    if (own && resType != "normalized" && (is_serial(info) || is_spatial(info))) {
        sig2 <- if (resType == "pearson") 1 else sigma(object)^2
        rg <- range(all_dst)
        grid <- seq(rg[1L], rg[2L], length.out = length.out)
        if (info$class == "corAR1") grid <- unique(round(grid))    # AR(1) is defined at integer lags
        cp <- info$corpar
        gam <- if (is_serial(info)) 1 - cp[["Phi"]]^grid
               else info$nugget + (1 - info$nugget) * (1 - spatial_cor(info$class, grid / cp[["range"]]))
        mod <- structure(data.frame(variog = sig2 * gam, dist = grid), class = c("Variogram", "data.frame"))
    }
    val <- structure(val, class = c("Variogram", "data.frame"), collapse = collapse != "none")
    if (!is.null(mod)) attr(val, "modelVariog") <- mod
    val
}

#' Empirical semivariogram of an lmmfit model's residuals
#'
#' nlme's \code{Variogram()} for \code{lmmfit} fits: the semivariogram of the
#' within-group residuals against the distance between them, to judge a
#' spatial or serial correlation structure (\code{correlation =
#' nlme::corExp()}, \code{corGaus()}, \code{corSpher()}, \code{corCAR1()},
#' \code{corAR1()}), as nlme's \code{Variogram.lme}.  Each pair of residuals
#' of one group gives \code{(r[i] - r[j])^2 / 2} at its distance
#' \code{d[i, j]}; binned (\code{collapse}), a bin's value is the mean of its
#' pairs' (or, \code{robust = TRUE}, Cressie and Hawkins' robust estimate
#' \code{mean(|r[i] - r[j]|^(1/2))^4 / (2 (0.457 + 0.494 / N))} of its
#' \code{N} pairs), at the median of its distances.
#'
#' The groups are those of the fit's correlation structure (else the innermost
#' random-effects grouping), or \code{form}'s grouping when it has one.  The
#' distances are, in this order: \code{distance} when given; those of
#' \code{form}'s covariates (in \code{metric}); a spatial structure's
#' Euclidean distances between its coordinates; a serial structure's time
#' differences (\code{corCAR1(form = ~ time | g)}: \code{|time[i] -
#' time[j]|}; nlme uses the positions here unless given \code{form = ~
#' time}); else the differences of the positions within the group (nlme's
#' \code{form = ~ 1}).
#'
#' For Pearson and response residuals of a fit with a spatial or serial
#' structure, and the structure's own distances, the fitted model's
#' semivariogram is attached as attribute \code{"modelVariog"} (a
#' \code{"Variogram"} data frame of \code{length.out} points over the range of
#' the distances): \code{s2 (nugget + (1 - nugget) (1 - rho(d)))} with the
#' structure's correlation \code{rho} (\code{Phi^d} for the serial ones), and
#' \code{s2} 1 for Pearson residuals, \code{sigma^2} for response ones, as nlme
#' attaches it for its spatial structures.  Normalized residuals have a
#' semivariogram of 1 when the structure fits.
#'
#' Binning departs from nlme 3.1 in two details: the lowest interval includes
#' its lower end (nlme's \code{cut()} leaves out the pairs at the smallest
#' distance, such as all lag-1 pairs of positional distances), and
#' \code{breaks} are used as given, extended to the range of the distances
#' (nlme extends them to the second smallest distance and falls back to one
#' bin per distance when there are fewer distances than intervals).
#'
#' @param object a fitted \code{lmmfit} model.
#' @param distance optional distances of the residual pairs within groups: a
#'   list with one element per group of two or more observations (in the
#'   grouping's level order), each the group's pair distances in
#'   \code{dist()}'s order (a \code{dist} object will do), or one vector of
#'   all of them in that order.
#' @param form optional one-sided formula \code{~ covariates | g} (or
#'   \code{~ covariates}, \code{~ 1 | g}): the distances between the rows'
#'   covariates (\code{~ 1}: between their positions in the group), grouped by
#'   \code{g} when given.
#' @param resType the residuals: \code{"pearson"} (nlme's default),
#'   \code{"response"} or \code{"normalized"}; see \code{\link{ACF.lmmfit}}.
#' @param data a data frame in which to evaluate \code{form} (default: the
#'   model frame when it has the variables, else the fit's data); its rows are
#'   matched to the fit's by row name.  Only with \code{form}.
#' @param na.action what to do with missing values of \code{form}'s
#'   covariates: \code{na.fail} (default) or e.g. \code{na.omit} (those rows'
#'   residuals are left out).  Only with \code{form}.
#' @param maxDist optional largest distance: pairs further apart are left out.
#' @param length.out the number of points of the model semivariogram.
#' @param collapse \code{"quantiles"} (bins of about equal numbers of pairs,
#'   the default), \code{"fixed"} (bins of equal width) or \code{"none"} (one
#'   row per pair).  With as many intervals as distinct distances or more,
#'   one bin per distance.
#' @param nint the number of bins.
#' @param breaks optional bin limits (increasing); \code{nint}, if given, must
#'   be \code{length(breaks) - 1}.
#' @param robust \code{TRUE} for Cressie and Hawkins' robust estimator in
#'   each bin (needs \code{collapse} other than \code{"none"}).
#' @param metric the distance between \code{form}'s covariates:
#'   \code{"euclidean"}, \code{"maximum"} or \code{"manhattan"}.  Only with
#'   \code{form}.
#' @param ... nothing else: other arguments are an error.
#' @return A data frame of class \code{c("Variogram", "data.frame")} with
#'   columns \code{variog}, \code{dist} and (when binned) \code{n.pairs}, and
#'   attributes \code{collapse} and, as described, \code{modelVariog}, as
#'   nlme's, so that nlme's \code{plot} method draws it.
#'   \code{\link{plot_variogram}} draws it in base graphics.
#' @seealso \code{\link{plot_variogram}}, \code{\link{ACF.lmmfit}}
#' @references Cressie, N. and Hawkins, D. M. (1980) Robust estimation of the
#'   variogram. \emph{Mathematical Geology} 12, 115--125.
#' @examples
#' fit <- lmmfit(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time) + (1 | Mare),
#'               data = nlme::Ovary, correlation = nlme::corCAR1(form = ~ Time | Mare))
#' Variogram(fit)
#' Variogram(fit, resType = "normalized", nint = 10, robust = TRUE)
#' @export
Variogram.lmmfit <- function(object, distance, form, resType = c("pearson", "response", "normalized"), data,
                             na.action = stats::na.fail, maxDist, length.out = 50,
                             collapse = c("quantiles", "fixed", "none"), nint = 20, breaks, robust = FALSE,
                             metric = c("euclidean", "maximum", "manhattan"), ...) {
    what <- "Variogram()"
    refuse_extra_args("Variogram", list(...))
    nint_given <- !missing(nint)
    resType <- match.arg(resType)
    collapse <- match.arg(collapse)
    metric_given <- !missing(metric)
    metric <- match.arg(metric)
    if (!missing(distance) && !missing(form))
        stop(sprintf("%s: give 'distance' or 'form', not both", what), call. = FALSE)
    if (missing(form)) {
        given <- c(data = !missing(data), na.action = !missing(na.action), metric = metric_given)
        if (any(given))
            stop(sprintf("%s: '%s' applies to the distances computed from 'form'; it is not used without it",
                         what, names(which(given))[1L]), call. = FALSE)
    }
    if (!is.logical(robust) || length(robust) != 1L || is.na(robust))
        stop(sprintf("%s: 'robust' must be TRUE or FALSE", what), call. = FALSE)
    if (robust && collapse == "none")
        stop(sprintf(paste0("%s: robust = TRUE needs collapse = \"quantiles\" or \"fixed\": the robust ",
                            "estimator is computed per bin"), what), call. = FALSE)
    nint <- check_whole(nint, "nint", what, min = 1)
    length.out <- check_whole(length.out, "length.out", what, min = 2)
    if (is.character(na.action)) na.action <- get(na.action, mode = "function")
    variogram_compute(object, if (missing(distance)) NULL else distance, if (missing(form)) NULL else form,
                      resType, if (missing(data)) NULL else data, na.action,
                      if (missing(maxDist)) NULL else maxDist, length.out, collapse, nint,
                      if (missing(breaks)) NULL else breaks, robust, metric, nint_given)
}

## The fitted structure, for the line under a plot's title.
structure_label <- function(info) {
    if (is.null(info)) return("no residual correlation structure")
    p <- info$corpar
    sprintf("fitted %s: %s", info$class, paste(names(p), "=", signif(p, 3), collapse = ", "))
}

## What the plots say the residuals are.
resid_type_label <- function(resType) {
    c(pearson = "Pearson", response = "response", normalized = "normalized")[[resType]]
}

#' Pictures of the residual autocorrelation and semivariogram
#'
#' Base-graphics pictures of \code{\link{ACF.lmmfit}} and
#' \code{\link{Variogram.lmmfit}}, to judge a fit's residual correlation
#' structure (or the need for one).
#'
#' \code{plot_acf} draws the autocorrelation at each lag as a vertical bar,
#' the approximate pointwise bounds \code{+-qnorm(1 - alpha / 2) /
#' sqrt(n.used)} of an uncorrelated series (dashed; nlme's \code{alpha}), and,
#' for Pearson and response residuals of a fit with a correlation structure,
#' the fitted correlation at each lag (red; the mean over the lag's pairs of
#' the structure's correlation between them: \code{Phi^k} for AR(1) at
#' consecutive times).  For normalized residuals the model expects bars
#' within the bounds beyond lag 0.
#'
#' \code{plot_variogram} draws the semivariogram as points with a loess smooth
#' (as nlme's \code{plot.Variogram}: \code{span = 0.6}, degree 1, the robust
#' "symmetric" family; for \code{collapse = "none"} the least-squares
#' "gaussian" family, since a robust smooth of single pairs' skewed values
#' follows their median, about half their mean) and the fitted model's semivariogram (red): for a
#' serial or spatial structure on its own distances \code{1 - rho(d)} (with
#' the nugget) for Pearson residuals (times \code{sigma^2} for response ones);
#' for normalized residuals, or a fit without a serial or spatial structure,
#' the constant level the model implies (1; \code{1 - Rho} for compound
#' symmetry), dashed.
#'
#' The line under each title names the fitted correlation structure and its
#' parameters (\code{\link{corpar}}).
#'
#' @param fit a fitted \code{lmmfit} model.
#' @param ... arguments of \code{\link{ACF.lmmfit}} (\code{maxLag},
#'   \code{resType}, \code{form}) or of \code{\link{Variogram.lmmfit}}
#'   (\code{resType}, \code{form}, \code{collapse}, \code{nint},
#'   \code{robust}, \code{maxDist}, ...).
#' @param alpha the bounds' significance level; 0 for none.
#' @param model logical: draw the fitted model's correlation or
#'   semivariogram.
#' @param smooth logical: draw the loess smooth.
#' @param span the smooth's span.
#' @param col colours of the empirical values (bars or points), of the
#'   bounds or the smooth, and of the model.
#' @param main,xlab,ylab titles; \code{NULL} for the defaults.
#' @param ylim the vertical range; by default everything drawn.
#' @return Invisibly, \code{plot_acf}: a data frame with columns \code{lag},
#'   \code{ACF}, \code{n.used}, \code{bound} (the bounds' half width,
#'   \code{NA} at lag 0 and for \code{alpha = 0}) and \code{model} (the fitted
#'   correlation, \code{NA} when not drawn).  \code{plot_variogram}: a list
#'   with \code{variogram} (the \code{"Variogram"} object), \code{smooth} (the
#'   smooth's \code{x} and \code{y}, or \code{NULL}) and \code{model} (the
#'   model's semivariogram drawn, a data frame with \code{dist} and
#'   \code{variog}, or \code{NULL}).
#' @seealso \code{\link{ACF.lmmfit}}, \code{\link{Variogram.lmmfit}}
#' @examples
#' fit <- lmmfit(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time) + (1 | Mare),
#'               data = nlme::Ovary, correlation = nlme::corCAR1(form = ~ Time | Mare))
#' plot_acf(fit, maxLag = 12)
#' plot_variogram(fit)
#' plot_variogram(fit, resType = "normalized")
#' @name resid-correlation-plots
NULL

#' @rdname resid-correlation-plots
#' @export
plot_acf <- function(fit, ..., alpha = 0.05, model = TRUE, col = c("grey20", "blue", "red"),
                     main = NULL, xlab = "Lag", ylab = "Autocorrelation", ylim = NULL) {
    if (!inherits(fit, "lmmfit")) stop("'fit' must be a model fitted by lmmfit()", call. = FALSE)
    if (!is.numeric(alpha) || length(alpha) != 1L || !(alpha >= 0 && alpha < 1))
        stop("plot_acf(): 'alpha' must be a number in [0, 1)", call. = FALSE)
    args <- list(...)
    refuse_extra_args("plot_acf", args[setdiff(names(args), c("maxLag", "resType", "form"))],
                      " (the arguments of ACF() are maxLag, resType and form)")
    resType <- match.arg(args$resType, RESID_PLOT_TYPES)
    res <- acf_compute(fit, args$maxLag, resType, args$form)
    a <- res$acf
    lag <- a$lag
    nu <- attr(a, "n.used")
    bound <- if (alpha > 0) c(NA, stats::qnorm(1 - alpha / 2) / sqrt(nu[-1L])) else rep(NA_real_, length(lag))
    mc <- if (model && !is.null(res$model)) res$model else rep(NA_real_, length(lag))
    col <- rep_len(col, 3L)
    if (is.null(ylim)) ylim <- range(c(0, a$ACF, bound, -bound, mc), na.rm = TRUE)
    if (is.null(main)) main <- sprintf("ACF of %s residuals", resid_type_label(resType))
    graphics::plot(lag, a$ACF, type = "n", ylim = ylim, xlab = xlab, ylab = ylab, main = main,
                   xaxt = "n")
    graphics::axis(1L, at = pretty(lag)[pretty(lag) == round(pretty(lag))])
    graphics::mtext(structure_label(res$info), side = 3L, line = 0.3, cex = 0.75)
    graphics::abline(h = 0, col = "grey50")
    graphics::segments(lag, 0, lag, a$ACF, lwd = if (length(lag) > 40L) 2 else 4, col = col[1L], lend = 1)
    leg <- c("empirical"); lty <- 1; lwd <- 4; pch <- NA; lcol <- col[1L]
    if (alpha > 0) {
        graphics::lines(lag[-1L], bound[-1L], lty = 2, col = col[2L])
        graphics::lines(lag[-1L], -bound[-1L], lty = 2, col = col[2L])
        leg <- c(leg, sprintf("%g%% bounds (no correlation)", 100 * (1 - alpha)))
        lty <- c(lty, 2); lwd <- c(lwd, 1); pch <- c(pch, NA); lcol <- c(lcol, col[2L])
    }
    if (!all(is.na(mc))) {
        graphics::lines(lag, mc, col = col[3L], lwd = 1.5)
        graphics::points(lag, mc, col = col[3L], pch = 19, cex = 0.8)
        leg <- c(leg, sprintf("fitted %s", res$info$class))
        lty <- c(lty, 1); lwd <- c(lwd, 1.5); pch <- c(pch, 19); lcol <- c(lcol, col[3L])
    }
    ## the bars are drawn down to zero: their tops and the axis both occupy a corner
    ok <- !is.na(mc)
    graphics::legend(emptiest_corner(c(lag, lag, lag[ok]), c(a$ACF, 0 * a$ACF, mc[ok])),
                     leg, lty = lty, lwd = lwd, pch = pch, col = lcol, bg = "white", box.col = "grey80",
                     cex = 0.8)
    invisible(data.frame(lag = lag, ACF = a$ACF, n.used = nu, bound = bound, model = mc))
}

#' @rdname resid-correlation-plots
#' @export
plot_variogram <- function(fit, ..., smooth = TRUE, span = 0.6, model = TRUE,
                           col = c("grey20", "blue", "red"), main = NULL, xlab = "Distance",
                           ylab = "Semivariogram", ylim = NULL) {
    if (!inherits(fit, "lmmfit")) stop("'fit' must be a model fitted by lmmfit()", call. = FALSE)
    args <- list(...)
    vargs <- setdiff(names(formals(Variogram.lmmfit)), c("object", "..."))
    refuse_extra_args("plot_variogram", args[setdiff(names(args), vargs)],
                      " (see ?Variogram.lmmfit for the arguments of Variogram())")
    if (!is.numeric(span) || length(span) != 1L || !(span > 0))
        stop("plot_variogram(): 'span' must be a positive number", call. = FALSE)
    resType <- match.arg(args$resType, RESID_PLOT_TYPES)
    v <- do.call(Variogram.lmmfit, c(list(fit), args))
    info <- cor_structure_info(fit)
    mv <- if (model) attr(v, "modelVariog")
    ## the constant the model implies, when it does not depend on distance
    flat <- NULL
    if (model && is.null(mv)) {
        if (resType == "normalized") flat <- 1
        else if (is.null(info) || info$class == "corCompSymm")
            flat <- (if (resType == "pearson") 1 else sigma(fit)^2) *
                (if (is.null(info)) 1 else 1 - info$corpar[["Rho"]])
    }
    ## binned values: nlme's robust smooth; single pairs (a skewed, chi-square
    ## like spread about their mean) a least-squares one, which follows the mean
    sm <- NULL
    if (smooth && length(unique(v$dist)) > 3L)
        sm <- stats::loess.smooth(v$dist, v$variog, span = span, degree = 1,
                                  family = if (isTRUE(attr(v, "collapse"))) "symmetric" else "gaussian",
                                  evaluation = 50)
    col <- rep_len(col, 3L)
    many <- !isTRUE(attr(v, "collapse")) && nrow(v) > 500L
    xl <- c(0, max(v$dist))
    if (is.null(ylim)) {
        top <- max(c(v$variog, if (!is.null(mv)) mv$variog[mv$dist <= xl[2L]], flat, sm$y))
        if (many) top <- max(c(stats::quantile(v$variog, 0.98, names = FALSE), mv$variog, flat, sm$y))
        ylim <- c(0, 1.05 * top)
    }
    if (is.null(main)) main <- sprintf("Semivariogram of %s residuals", resid_type_label(resType))
    pcol <- if (many) grDevices::adjustcolor(col[1L], alpha.f = 0.25) else col[1L]
    graphics::plot(v$dist, v$variog, xlim = xl, ylim = ylim, xlab = xlab, ylab = ylab, main = main,
                   pch = if (many) 16 else 19, cex = if (many) 0.4 else 0.9, col = pcol)
    graphics::mtext(structure_label(info), side = 3L, line = 0.3, cex = 0.75)
    leg <- if (isTRUE(attr(v, "collapse"))) "binned pairs" else "pairs"
    lty <- NA; lwd <- NA; pch <- 19; lcol <- col[1L]
    if (!is.null(sm)) {
        graphics::lines(sm, col = col[2L], lwd = 2)
        leg <- c(leg, "loess smooth"); lty <- c(lty, 1); lwd <- c(lwd, 2); pch <- c(pch, NA)
        lcol <- c(lcol, col[2L])
    }
    drawn_model <- NULL
    if (!is.null(mv)) {
        graphics::lines(mv$dist, mv$variog, col = col[3L], lwd = 2)
        drawn_model <- data.frame(variog = mv$variog, dist = mv$dist)
        leg <- c(leg, sprintf("fitted %s", info$class)); lty <- c(lty, 1); lwd <- c(lwd, 2)
    } else if (!is.null(flat)) {
        graphics::abline(h = flat, col = col[3L], lwd = 2, lty = 2)
        drawn_model <- data.frame(variog = flat, dist = xl)
        leg <- c(leg, if (resType == "normalized") "model (uncorrelated)" else "fitted model")
        lty <- c(lty, 2); lwd <- c(lwd, 2)
    }
    if (!is.null(drawn_model)) { pch <- c(pch, NA); lcol <- c(lcol, col[3L]) }
    graphics::legend(emptiest_corner(c(v$dist, sm$x, drawn_model$dist), c(v$variog, sm$y, drawn_model$variog)),
                     leg, lty = lty, lwd = lwd, pch = pch, col = lcol, bg = "white", box.col = "grey80",
                     cex = 0.8)
    invisible(list(variogram = v, smooth = sm, model = drawn_model))
}
