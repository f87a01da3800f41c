## The layout-free aggregates of a linear mixed model: the sums a GROUP BY
## returns (DESIGN.md section 11), and the one path from them to the blocked
## statistics object the C core fits from.  SQL results, chunks of a file and
## a user's own engine (Spark, BigQuery) all arrive here.

#' Aggregates of a linear mixed model: the sums a GROUP BY returns
#'
#' A Gaussian mixed model's fit needs only sums of products of the model's
#' columns over rows: overall, per level of each grouping factor, and per
#' co-occurring pair of levels of two grouping factors.  An object of class
#' \code{"lmm_aggregates"} holds exactly those sums as plain data frames, in
#' a form any engine can compute with \code{SUM}, \code{COUNT} and
#' \code{GROUP BY}; \code{aggregates_to_stats()} turns it into the
#' \code{\link{lmm_stats}} object that \code{\link{lmmfit_stats}()} fits.
#' \code{lmm_aggregates()} computes it in R from a data frame (the reference
#' implementation, and how chunks of a file are summed); \code{\link{lmm_sql}()}
#' writes the queries that compute it in a database.
#'
#' Write \eqn{c = [X, y]} for the fixed-effects columns followed by the
#' response (columns \eqn{1, ..., p+1}), \eqn{z^{(t)}} for the \eqn{k_t}
#' columns of random-effects term \eqn{t}, and \eqn{w} for the prior weights
#' (1 without).  Every column may be shifted by a constant before summing
#' (the shifts are recorded in \code{model}); shifting by the column means
#' keeps the digits of data far from their origin.  The object is a list:
#' \describe{
#'   \item{\code{model}}{\code{response} (its name), \code{fixed} (the
#'     names of the \eqn{p} fixed-effects columns, \code{"(Intercept)"} for
#'     the intercept), \code{xshift} (the shift of each fixed column: 0 for
#'     the intercept, and all 0 without an intercept), \code{yshift} (the
#'     response's; 0 without an intercept), optionally \code{xlev} (the
#'     levels of the fixed part's factors, as \code{.getXlevels()}, for
#'     predictions) and \code{weights} (the weights column's name), and
#'     \code{terms}: per
#'     random-effects term a list of \code{group} (the grouping factor, as
#'     written: \code{"g"}, \code{"a:b"}), \code{columns} (its columns'
#'     names) and \code{shift} (each column's shift; non-zero only for columns
#'     after a first \code{"(Intercept)"} column).}
#'   \item{\code{overall}}{one row: \code{n} (the number of rows),
#'     \code{sumlogw} (the sum of the log weights, 0 without) and
#'     \code{s_i_j} \eqn{= \sum w c_i c_j} for \eqn{1 \le i \le j \le p+1}.}
#'   \item{\code{levels}}{per term (in \code{model$terms}' order) a data
#'     frame with a row per level of its grouping factor: \code{level} (the
#'     level's label; \code{"a1:b2"} for \code{a:b}), \code{n}, \code{zz_a_b}
#'     \eqn{= \sum w z_a z_b} (\eqn{1 \le a \le b \le k}) and \code{zx_a_j}
#'     \eqn{= \sum w z_a c_j} (\eqn{1 \le j \le p+1}).  The rows' order is
#'     the order of the levels in the fit (ranef's order).}
#'   \item{\code{pairs}}{per pair of terms \eqn{s < t}, named
#'     \code{"s_t"}, a data frame with a row per pair of levels that occur
#'     together in some row: \code{level1} (term s's), \code{level2} (term
#'     t's), \code{n} and \code{zz_a_b} \eqn{= \sum w z^{(s)}_a z^{(t)}_b}
#'     (\eqn{1 \le a \le k_s}, \eqn{1 \le b \le k_t}).}
#' }
#' In SQL, with \code{g} and \code{h} the grouping columns of terms 1 and 2
#' and \code{(1 | g) + (1 | h)}:
#' \preformatted{
#'   SELECT g AS level, COUNT(*) AS n, SUM(1) AS zz_1_1,
#'          SUM(x) AS zx_1_2, SUM(y) AS zx_1_3 FROM t GROUP BY g
#'   SELECT g AS level1, h AS level2, COUNT(*) AS n, SUM(1) AS zz_1_1
#'     FROM t GROUP BY g, h
#' }
#' (\code{\link{lmm_sql}()} writes the full set, centred.)
#' @param formula a mixed-model formula, as in \code{\link{lmmfit}}.
#' @param data a data frame.
#' @param weights optional prior weights: the name of a column of
#'   \code{data}.
#' @param agg an \code{"lmm_aggregates"} object.
#' @return \code{lmm_aggregates()}: an \code{"lmm_aggregates"} object.
#'   \code{aggregates_to_stats()}: an \code{\link{lmm_stats}} object.
#' @examples
#' data(sleepstudy, package = "lme4")
#' agg <- lmm_aggregates(Reaction ~ Days + (Days | Subject), sleepstudy)
#' head(agg$levels[[1]])
#' lmmfit_stats(aggregates_to_stats(agg))
#' @export
lmm_aggregates <- function(formula, data, weights = NULL) {
    if (!is.data.frame(data)) stop("'data' must be a data frame", call. = FALSE)
    parsed <- parse_lmm_formula(formula)
    if (!is.null(weights) && !(is.character(weights) && length(weights) == 1L && weights %in% names(data)))
        stop("'weights' must be the name of a column of 'data'", call. = FALSE)
    ff <- if (is.null(weights)) parsed$frame else add_frame_terms(parsed$frame, list(as.name(weights)))
    frame <- model.frame(ff, data, na.action = stats::na.omit, drop.unused.levels = TRUE)
    if (!nrow(frame)) stop("no observations left to fit (zero rows after na.omit)", call. = FALSE)
    mats <- frame_matrices(parsed, frame, weights)
    X <- mats$X; y <- mats$y
    icpt <- identical(colnames(X)[1L], "(Intercept)")
    xshift <- if (icpt) c(0, colMeans(X)[-1L]) else numeric(ncol(X))
    model <- list(response = deparse1(formula[[2L]]), fixed = colnames(X), xshift = unname(xshift),
                  yshift = if (icpt) mean(y) else 0,
                  xlev = .getXlevels(terms(parsed$fixed), frame), weights = weights,
                  terms = lapply(mats$terms, function(t)
                      list(group = t$group, columns = colnames(t$Z), shift = slope_shifts(t$Z))))
    aggregate_rows(model, X, y, mats$w, lapply(mats$terms, `[[`, "factor"), lapply(mats$terms, `[[`, "Z"))
}

## The model's matrices from a model frame (NAs already omitted), without
## lmmfit()'s checks of the levels: a chunk of a file may hold one level.
frame_matrices <- function(parsed, frame, weights = NULL) {
    X <- model.matrix(terms(parsed$fixed, data = frame), frame)
    attr(X, "assign") <- attr(X, "contrasts") <- NULL
    w <- if (!is.null(weights)) as.double(frame[[weights]])
    if (!is.null(w) && any(!is.finite(w) | w <= 0)) stop("'weights' must be finite and positive", call. = FALSE)
    terms <- lapply(parsed$terms, function(s) {
        gname <- deparse1(s$group)
        list(group = gname, factor = factor(eval_grouping(s$group, frame, parsed$env)),
             Z = re_model_matrix(s$lhs, frame, gname))
    })
    list(X = X, y = as.double(frame[[1L]]), w = w, terms = terms)
}

## The shifts of a term's columns: the means of those after a first
## intercept column (only they can be shifted and shifted back exactly).
slope_shifts <- function(Z) {
    k <- ncol(Z)
    if (k < 2L || !identical(colnames(Z)[1L], "(Intercept)")) return(numeric(k))
    unname(c(0, colMeans(Z)[-1L]))
}

## The aggregates of rows given as matrices, with the shifts of `model`:
## groups are factors (their levels the levels' labels and order).
aggregate_rows <- function(model, X, y, w, groups, Zs) {
    C <- cbind(sweep(X, 2L, model$xshift), y - model$yshift)
    wC <- if (is.null(w)) C else C * w
    px <- ncol(C)
    ij <- which(upper.tri(diag(px), diag = TRUE), arr.ind = TRUE)
    S <- crossprod(C, wC)
    overall <- data.frame(n = nrow(C), sumlogw = if (is.null(w)) 0 else sum(log(w)))
    overall[sprintf("s_%d_%d", ij[, 1L], ij[, 2L])] <- as.list(S[ij])
    Zc <- Map(function(Z, t) sweep(Z, 2L, t$shift), Zs, model$terms)
    wt <- if (is.null(w)) 1 else w
    levs <- Map(function(g, Z) {
        k <- ncol(Z); ab <- which(upper.tri(diag(k), diag = TRUE), arr.ind = TRUE)
        cnt <- tabulate(g, nlevels(g))
        d <- data.frame(level = levels(g)[cnt > 0L], n = cnt[cnt > 0L])
        zz <- rowsum(Z[, ab[, 1L], drop = FALSE] * Z[, ab[, 2L], drop = FALSE] * wt, g, reorder = TRUE)
        d[sprintf("zz_%d_%d", ab[, 1L], ab[, 2L])] <- as.data.frame(unname(zz))
        aj <- expand.grid(j = seq_len(px), a = seq_len(k))
        zx <- rowsum(Z[, aj$a, drop = FALSE] * wC[, aj$j, drop = FALSE], g, reorder = TRUE)
        d[sprintf("zx_%d_%d", aj$a, aj$j)] <- as.data.frame(unname(zx))
        d
    }, groups, Zc)
    pairs <- list()
    nt <- length(groups)
    for (s in seq_len(nt - 1L)) for (t in (s + 1L):nt) {
        gs <- groups[[s]]; gt <- groups[[t]]
        key <- (as.double(as.integer(gs)) - 1) * nlevels(gt) + as.integer(gt)
        u <- sort(unique(key))
        d <- data.frame(level1 = levels(gs)[(u - 1) %/% nlevels(gt) + 1],
                        level2 = levels(gt)[(u - 1) %% nlevels(gt) + 1], n = tabulate(match(key, u), length(u)))
        ab <- expand.grid(b = seq_len(ncol(Zc[[t]])), a = seq_len(ncol(Zc[[s]])))
        zz <- rowsum(Zc[[s]][, ab$a, drop = FALSE] * Zc[[t]][, ab$b, drop = FALSE] * wt, key, reorder = TRUE)
        d[sprintf("zz_%d_%d", ab$a, ab$b)] <- as.data.frame(unname(zz))
        pairs[[sprintf("%d_%d", s, t)]] <- d
    }
    structure(list(model = model, overall = overall, levels = unname(levs), pairs = pairs),
              class = "lmm_aggregates")
}

#' @export
print.lmm_aggregates <- function(x, ...) {
    cat(sprintf("Aggregates of a linear mixed model: %s ~ %s; %.0f rows\n", x$model$response,
                paste(x$model$fixed, collapse = " + "), x$overall$n))
    for (i in seq_along(x$model$terms)) {
        t <- x$model$terms[[i]]
        cat(sprintf("  (%s | %s): %d levels\n", paste(t$columns, collapse = " + "), t$group,
                    nrow(x$levels[[i]])))
    }
    if (length(x$pairs))
        cat(sprintf("  level pairs: %s\n", paste(sprintf("%s (%d)", names(x$pairs),
                                                         vapply(x$pairs, nrow, 1L)), collapse = ", ")))
    invisible(x)
}

## The aggregates of two disjoint sets of rows of one model (the same shifts):
## the sums added, levels and pairs matched by their labels (levels new to
## `a` follow its own, in b's order).
combine_aggregates <- function(a, b) {
    if (is.null(a)) return(b)
    if (is.null(b)) return(a)
    if (!identical(a$model, b$model)) stop("internal: aggregates of different models or shifts", call. = FALSE)
    sum_by <- function(d, key, keycols) {
        num <- setdiff(names(d), keycols)
        s <- rowsum(as.matrix(d[num]), factor(key, levels = unique(key)), reorder = TRUE)
        out <- d[match(rownames(s), key), keycols, drop = FALSE]
        rownames(out) <- NULL
        cbind(out, as.data.frame(s, row.names = NULL))
    }
    ov <- a$overall
    ov[] <- Map(`+`, a$overall, b$overall[names(a$overall)])
    levels <- Map(function(x, y) { d <- rbind(x, y); sum_by(d, d$level, "level") }, a$levels, b$levels)
    pairs <- Map(function(x, y) { d <- rbind(x, y); sum_by(d, paste(d$level1, d$level2, sep = "\r"),
                                                           c("level1", "level2")) }, a$pairs, b$pairs)
    structure(list(model = a$model, overall = ov, levels = levels, pairs = pairs[names(a$pairs)]),
              class = "lmm_aggregates")
}
