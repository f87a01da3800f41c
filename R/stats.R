## The statistics object: the sufficient statistics of a Gaussian mixed model,
## apart from the data (DESIGN.md section 7).  Version 1 of the schema.

LMM_STATS_VERSION <- 1L

#' Sufficient statistics of a linear mixed model
#'
#' The cross-products \eqn{A = [Z X y]' W [Z X y]} of a model with their
#' metadata are all a Gaussian fit needs: \code{lmm_stats()} takes them from
#' a fit, \code{lmmfit_stats()} fits a model from them alone (no data), and
#' \code{combine_stats()} adds the statistics of disjoint parts of the data
#' (their level sets merged; their terms matched by grouping factor and columns,
#' which each part may order differently, and ordered as a fit of the whole orders
#' them, by decreasing levels, ties in \code{a}'s order), so that data too big for
#' one machine's memory,
#' or held in a database, can be fitted from per-part aggregates.
#'
#' An object of class \code{"lmm_stats"} is a list:
#' \describe{
#'   \item{\code{version}}{the schema version, 1.}
#'   \item{\code{xprod}}{the cross-products in the blocked layout of the C
#'     core, in the data's units (no centring): \code{nlev}, \code{ncol} per
#'     random-effects term, in the order the core eliminates them;
#'     \code{nobs}, \code{p}, \code{sumlogw} (sum of log prior weights);
#'     \code{A11} (the first term's \code{ncol x ncol} tiles, one per level),
#'     \code{A21p}, \code{A21i}, \code{A21x} (the rows of the other terms
#'     beside each level of the first, 0-based, and their values);
#'     \code{nstage} (how many terms, the first included, are block diagonal:
#'     each term before such a term is nested in it); \code{A22p},
#'     \code{A22i} (the rows beside each level of those later stages) and
#'     \code{A22} (their tiles, their beside-values, then the remaining terms
#'     as one dense block); \code{AX1}, \code{AX2} (\code{[X y]'Z}, one
#'     column per random effect) and \code{AXX} (\code{[X y]'[X y]}).
#'     The list may carry an attribute \code{tail_plan}: a cache of the
#'     remaining terms' sparse symbolic analysis (or their order alone when
#'     they are best factored dense), checked before it is used and found
#'     afresh when absent.}
#'   \item{\code{terms}}{per random-effects term: \code{group} (the grouping
#'     factor's name), \code{columns} (its model matrix's column names) and
#'     \code{levels} (the level names, in the order of the blocks).}
#'   \item{\code{fixed}}{the names of the fixed-effects columns.}
#'   \item{\code{response}}{the response's name.}
#'   \item{\code{centring}}{\code{NULL}: the statistics are about the data as
#'     given (lmmfit centres the columns of \code{X} and the response inside
#'     the fit, where digits are kept; here nothing is centred).  Statistics
#'     made from aggregates (\code{\link{aggregates_to_stats}}) keep the
#'     conditioning the fit uses instead: \code{xprod} is then of the
#'     conditioned data (\code{X T}, \code{T} the centring of its
#'     non-intercept columns by \code{xshift}, and the response's
#'     least-squares residual \code{y - X T b0}), and \code{centring} holds
#'     \code{transform} (\code{xshift}, \code{T}, \code{Tinv}, \code{b0}),
#'     \code{slope} (the centring of random slopes far from their origin, or
#'     \code{NULL}) and \code{centred_xprod} (the cross-products with those
#'     slopes centred).  \code{combine_stats()} maps such statistics back to
#'     the data's units first.}
#' }
#' @param object a fit of \code{\link{lmmfit}} (without a residual
#'   correlation structure).
#' @param stats,a,b objects of class \code{"lmm_stats"}.
#' @param REML,control as in \code{\link{lmmfit}}.
#' @return \code{lmm_stats()} and \code{combine_stats()}: an
#'   \code{"lmm_stats"} object.  \code{lmmfit_stats()}: a list of class
#'   \code{"lmm_stats_fit"} with \code{theta}, \code{beta}, \code{sigma},
#'   \code{vcov}, \code{deviance} (the REML criterion or -2 log-likelihood),
#'   \code{sdcor} (standard deviations and correlations as
#'   \code{as.data.frame(VarCorr(fit))}'s \code{sdcor}), \code{REML} and
#'   \code{optinfo}.
#' @examples
#' data(sleepstudy, package = "lme4")
#' a <- lmm_stats(lmmfit(Reaction ~ Days + (Days | Subject), sleepstudy[sleepstudy$Days < 5, ]))
#' b <- lmm_stats(lmmfit(Reaction ~ Days + (Days | Subject), sleepstudy[sleepstudy$Days >= 5, ]))
#' lmmfit_stats(combine_stats(a, b))
#' @export
lmm_stats <- function(object) {
    if (!inherits(object, "lmmfit")) stop("'object' must be a fit of lmmfit()", call. = FALSE)
    if (has_resid_structure(object))
        stop("the statistics of a fit with a residual variance or correlation structure are not sufficient ",
             "for it (they depend on its parameter)", call. = FALSE)
    terms <- lapply(object$reterms, function(t)
        list(group = t$group, columns = colnames(t$Z), levels = levels(t$factor)))
    structure(list(version = LMM_STATS_VERSION, xprod = object$xprod, terms = terms,
                   fixed = colnames(object$X),
                   response = deparse(object$formula[[2L]]), centring = NULL),
              class = "lmm_stats")
}

## Checks an lmm_stats object's schema (the C unpacker checks the layout).
check_stats <- function(stats, what = "stats") {
    if (!inherits(stats, "lmm_stats") || !identical(stats$version, LMM_STATS_VERSION))
        stop(sprintf("'%s' must be an lmm_stats object of schema version %d", what, LMM_STATS_VERSION),
             call. = FALSE)
    xp <- stats$xprod
    if (length(stats$terms) != length(xp$nlev) ||
        !all(vapply(stats$terms, function(t) length(t$levels), 1L) == xp$nlev) ||
        !all(lengths(lapply(stats$terms, `[[`, "columns")) == xp$ncol) ||
        length(stats$fixed) != xp$p)
        stop(sprintf("'%s': the metadata do not match the cross-products", what), call. = FALSE)
    invisible(stats)
}

## The terms in the form the theta helpers take (a zero-row Z gives the columns).
stats_reterms <- function(stats) {
    lapply(stats$terms, function(t)
        list(group = t$group, nlev = length(t$levels),
             Z = matrix(0, 0L, length(t$columns), dimnames = list(NULL, t$columns))))
}

#' @rdname lmm_stats
#' @export
lmmfit_stats <- function(stats, REML = TRUE, control = lmmfit_control()) {
    fc <- stats_fit_core(stats, REML, control)
    core <- fc$core; terms <- fc$terms; xp <- stats$xprod
    sigma <- sigma_hat(core$pwrss, xp$nobs, xp$p, REML)
    Rinv <- backsolve(core$RX, diag(nrow(core$RX)))
    V <- sigma^2 * tcrossprod(Rinv)
    dimnames(V) <- list(stats$fixed, stats$fixed)
    structure(list(theta = core$theta, beta = core$beta, sigma = sigma, vcov = V,
                   deviance = core$deviance_value, sdcor = theta_to_sdcor(core$theta, terms, sigma),
                   REML = REML, nobs = xp$nobs, optinfo = core$optinfo),
              class = "lmm_stats_fit")
}

#' @export
print.lmm_stats <- function(x, ...) {
    cat(sprintf("Sufficient statistics of a linear mixed model (lmm_stats, schema %d)\n", x$version))
    cat(sprintf("  response %s; %d observations; %d fixed-effect columns\n", x$response,
                x$xprod$nobs, x$xprod$p))
    for (t in x$terms)
        cat(sprintf("  (%s | %s): %d levels\n", paste(t$columns, collapse = " + "), t$group,
                    length(t$levels)))
    invisible(x)
}

#' @export
print.lmm_stats_fit <- function(x, ...) {
    cat(sprintf("Linear mixed model fitted from its statistics by %s\n",
                if (x$REML) "REML" else "maximum likelihood"))
    cat(sprintf("%s criterion: %.4f  (%d observations)\n",
                if (x$REML) "REML" else "-2 log-likelihood", x$deviance, x$nobs))
    cat("Fixed effects:\n")
    print(x$beta, ...)
    cat(sprintf("Residual standard deviation: %.6g\n", x$sigma))
    invisible(x)
}

## ---- combining the statistics of disjoint parts --------------------------------

## For each of a's terms, the index of the same term (grouping factor and
## columns) among b's, which may be in another order (each part orders its
## terms by its own level counts); NULL when the terms differ.
match_terms <- function(ta, tb) {
    key <- function(tt) make.unique(vapply(tt, function(t)
        paste(t$group, paste(t$columns, collapse = "\r"), sep = "\n"), ""))
    ib <- match(key(ta), key(tb))
    if (length(ta) != length(tb) || anyNA(ib)) NULL else ib
}

## The random-effects Gram matrix Z'WZ of a layout as triplets (lower
## triangle with the diagonal, 0-based coordinates: the first term, then the
## rest space), and [X y]'Z as one px x q matrix.
xprod_triplets <- function(xp) {
    nlev <- xp$nlev; ncol <- xp$ncol; k1 <- ncol[1L]; q1 <- nlev[1L] * k1; px <- xp$p + 1L
    lay <- xprod_layout(xp)
    out <- list()
    tiles <- function(vals, nl, k, off) {       # nl diagonal k x k tiles from `off`
        g <- rep(seq_len(nl) - 1L, each = k * k); e <- rep(seq_len(k * k) - 1L, nl)
        r <- e %% k; c <- e %/% k; keep <- r >= c
        list(i = off + g[keep] * k + r[keep], j = off + g[keep] * k + c[keep], x = vals[keep])
    }
    beside <- function(Cp, Ci, vals, k, coloff, rowoff) {   # the rows beside each level
        m <- diff(Cp); nl <- length(m)
        if (!sum(m)) return(NULL)
        c <- unlist(lapply(seq_len(nl), function(h) rep(seq_len(k) - 1L, each = m[h])))
        row <- unlist(lapply(seq_len(nl), function(h) rep(Ci[Cp[h] + seq_len(m[h])], k)))
        g <- rep(seq_len(nl) - 1L, m * k)
        list(i = rowoff + row, j = coloff + g * k + c, x = vals)
    }
    out[[1L]] <- tiles(xp$A11, nlev[1L], k1, 0)
    out[[2L]] <- beside(xp$A21p, xp$A21i, xp$A21x, k1, 0, q1)
    for (st in lay$stages) {
        nt <- st$nlev * st$k * st$k
        out[[length(out) + 1L]] <- tiles(xp$A22[st$tiles + seq_len(nt)], st$nlev, st$k, q1 + st$off)
        nb <- st$Cp[st$nlev + 1L] * st$k
        out[[length(out) + 1L]] <- beside(st$Cp, st$Ci, xp$A22[st$coup + seq_len(nb)], st$k,
                                          q1 + st$off, q1)
    }
    if (lay$qd > 0L) {
        qd <- lay$qd
        D <- matrix(xp$A22[lay$doff + seq_len(qd * qd)], qd, qd)
        w <- which(lower.tri(D, diag = TRUE) & (D != 0 | diag(qd) == 1), arr.ind = TRUE)
        out[[length(out) + 1L]] <- list(i = q1 + lay$dstart + w[, 1L] - 1L,
                                        j = q1 + lay$dstart + w[, 2L] - 1L, x = D[w])
    }
    out <- Filter(Negate(is.null), out)
    list(i = unlist(lapply(out, `[[`, "i")), j = unlist(lapply(out, `[[`, "j")),
         x = unlist(lapply(out, `[[`, "x")),
         AX = cbind(matrix(xp$AX1, px), matrix(xp$AX2, px)), AXX = matrix(xp$AXX, px))
}

## The blocked layout of the C core from Gram triplets (i >= j, 0-based,
## summed), [X y]'Z and [X y]'[X y]: stages by nesting, as lmm_crossprod()
## decides them from the rows.
layout_from_triplets <- function(tr, nlev, ncol, nobs, p, sumlogw) {
    nt <- length(nlev); q <- nlev * ncol; off <- c(0, cumsum(q))[seq_len(nt)]
    q1 <- q[1L]; q2 <- sum(q) - q1
    ti <- findInterval(tr$i, off); tj <- findInterval(tr$j, off)
    li <- (tr$i - off[ti]) %/% ncol[ti]; lj <- (tr$j - off[tj]) %/% ncol[tj]
    ci <- (tr$i - off[ti]) %% ncol[ti]; cj <- (tr$j - off[tj]) %% ncol[tj]
    nested <- function(a, b) {
        s <- tj == a & ti == b
        !anyDuplicated(unique(data.frame(lj[s], li[s]))[[1L]])
    }
    ns <- 1L
    for (b in seq_len(nt)[-1L]) if (all(vapply(seq_len(b - 1L), nested, TRUE, b = b))) ns <- b else break
    rest <- function(v) v - q1                      # rest coordinate of a global one
    ## the rows beside each level of stage term s, in whole tiles, and their values
    beside <- function(s) {
        k <- ncol[s]; nl <- nlev[s]
        e <- which(tj == s & ti > s)
        tf <- rest(off[ti[e]] + li[e] * ncol[ti[e]])          # first row of each entry's tile
        key <- unique(data.frame(g = lj[e], tf = tf, kt = ncol[ti[e]]))
        key <- key[order(key$g, key$tf), , drop = FALSE]
        rows <- unlist(Map(function(f, k) f + seq_len(k) - 1L, key$tf, key$kt), use.names = FALSE)
        lev <- rep(key$g, key$kt)
        m <- tabulate(lev + 1L, nl)
        Cp <- c(0L, cumsum(m))
        x <- numeric(length(rows) * k)
        ## (keys in double: exact far beyond any level count times q2)
        pos <- match(lj[e] * (q2 + 1) + rest(tr$i[e]), lev * (q2 + 1) + rows) - 1L - Cp[lj[e] + 1L]
        x[Cp[lj[e] + 1L] * k + pos + cj[e] * m[lj[e] + 1L] + 1L] <- tr$x[e]
        list(Cp = as.integer(Cp), Ci = as.integer(rows), x = x)
    }
    tiles <- function(s) {
        k <- ncol[s]; e <- which(tj == s & ti == s)
        A <- numeric(nlev[s] * k * k)
        A[lj[e] * k * k + ci[e] + cj[e] * k + 1L] <- tr$x[e]
        A[lj[e] * k * k + cj[e] + ci[e] * k + 1L] <- tr$x[e]
        A
    }
    b1 <- beside(1L)
    A22p <- A22i <- integer(); A22 <- numeric()
    for (s in seq_len(ns)[-1L]) {
        b <- beside(s)
        A22p <- c(A22p, b$Cp); A22i <- c(A22i, b$Ci); A22 <- c(A22, tiles(s), b$x)
    }
    dstart <- if (ns > 1L) sum(q[2:ns]) else 0
    qd <- q2 - dstart
    if (qd > 0L) {
        D <- matrix(0, qd, qd)
        e <- which(tj > ns)
        D[cbind(tr$i[e] - q1 - dstart + 1, tr$j[e] - q1 - dstart + 1)] <- tr$x[e]
        D[cbind(tr$j[e] - q1 - dstart + 1, tr$i[e] - q1 - dstart + 1)] <- tr$x[e]
        A22 <- c(A22, D)
    }
    px <- p + 1L
    list(nlev = as.integer(nlev), ncol = as.integer(ncol), nobs = as.integer(nobs), p = as.integer(p),
         sumlogw = sumlogw, A11 = tiles(1L), A21p = b1$Cp, A21i = b1$Ci, A21x = b1$x, A22 = A22,
         AX1 = as.vector(tr$AX[, seq_len(q1)]), AX2 = as.vector(tr$AX[, q1 + seq_len(q2)]),
         AXX = as.vector(tr$AXX), nstage = as.integer(ns), A22p = A22p, A22i = A22i)
}

#' @rdname lmm_stats
#' @export
combine_stats <- function(a, b) {
    check_stats(a, "a"); check_stats(b, "b")
    a <- stats_as_given(a); b <- stats_as_given(b)
    ib <- match_terms(a$terms, b$terms)
    if (!identical(a$fixed, b$fixed) || !identical(a$response, b$response) || is.null(ib))
        stop("'a' and 'b' are statistics of different models (response, fixed-effects columns ",
             "or random-effects terms differ)", call. = FALSE)
    levs <- Map(function(la, lb) {
        lv <- union(la, lb)
        if (!is.unsorted(la) && !is.unsorted(lb)) sort(lv) else lv
    }, lapply(a$terms, `[[`, "levels"), lapply(b$terms[ib], `[[`, "levels"))
    ## the whole's order of the terms (build_reterms()'s: decreasing levels,
    ## then more columns first); ties keep a's order
    ncol <- a$xprod$ncol; nlev <- lengths(levs)
    ord <- order(-nlev, -ncol)
    levs <- levs[ord]; ncol <- ncol[ord]; nlev <- nlev[ord]
    off <- c(0, cumsum(nlev * ncol))
    ## each part's coordinates (its terms in its own order) in the merged
    ## space; idx[t]: the part's index of merged term t
    coords <- function(st, idx) unlist(lapply(seq_along(st$terms), function(s) {
        t <- match(s, idx); k <- ncol[t]; g <- match(st$terms[[s]]$levels, levs[[t]]) - 1L
        off[t] + rep(g * k, each = k) + rep(seq_len(k) - 1L, length(g))
    }))
    Q <- off[length(off)]
    ta <- xprod_triplets(a$xprod); tb <- xprod_triplets(b$xprod)
    ma <- coords(a, ord); mb <- coords(b, ib[ord])
    i <- c(ma[ta$i + 1L], mb[tb$i + 1L]); j <- c(ma[ta$j + 1L], mb[tb$j + 1L])
    lo <- pmin(i, j); hi <- pmax(i, j)
    key <- hi * Q + lo                           # exact in double up to 2^53
    x <- rowsum(c(ta$x, tb$x), key, reorder = TRUE)
    k <- as.numeric(rownames(x))
    AX <- matrix(0, nrow(ta$AX), Q)
    AX[, ma + 1L] <- AX[, ma + 1L] + ta$AX
    AX[, mb + 1L] <- AX[, mb + 1L] + tb$AX
    tr <- list(i = k %/% Q, j = k %% Q, x = as.vector(x), AX = AX, AXX = ta$AXX + tb$AXX)
    xp <- layout_from_triplets(tr, nlev, ncol, a$xprod$nobs + b$xprod$nobs, a$xprod$p,
                               a$xprod$sumlogw + b$xprod$sumlogw)
    terms <- Map(function(t, lv) { t$levels <- lv; t }, a$terms[ord], levs)
    structure(list(version = LMM_STATS_VERSION, xprod = xp, terms = terms, fixed = a$fixed,
                   response = a$response, centring = NULL), class = "lmm_stats")
}

## Statistics of the data as given, from conditioned ones (those from
## aggregates): the form parts with different centrings can be added in.
stats_as_given <- function(stats) {
    if (is.null(stats$centring)) return(stats)
    stats$xprod <- untransform_xprod(stats$xprod, stats$centring$transform)
    stats$centring <- NULL
    stats
}
