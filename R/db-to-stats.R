## From the layout-free aggregates (db-aggregates.R) to the statistics object:
## the one path every source of aggregates takes.  The aggregates are parsed
## into small arrays (tiles per level and per pair of levels), re-shifted
## exactly to the columns the fit wants, and laid out as Gram triplets for
## layout_from_triplets(), the layout builder combine_stats() uses.

#' @rdname lmm_aggregates
#' @export
aggregates_to_stats <- function(agg) {
    check_aggregates(agg)
    m <- agg$model
    px <- length(m$fixed) + 1L
    n <- as.double(agg$overall$n)
    S <- symmetric_from_columns(agg$overall, "s", px)
    terms <- Map(parse_term_levels, agg$levels, m$terms, MoreArgs = list(px = px))
    pairs <- lapply(names(agg$pairs), function(nm) parse_pair(agg$pairs[[nm]], nm, terms))
    ## aliased fixed-effects columns dropped as lmmfit() drops them
    keep <- kept_fixed_columns(S, m$xshift, n)
    if (length(keep) < px - 1L) {
        drop <- m$fixed[-keep]
        message(sprintf("fixed-effect model matrix is rank deficient so dropping %d column%s / coefficient%s: %s",
                        length(drop), if (length(drop) > 1L) "s" else "", if (length(drop) > 1L) "s" else "",
                        paste(drop, collapse = ", ")))
        sel <- c(keep, px)
        S <- S[sel, sel, drop = FALSE]
        terms <- lapply(terms, function(t) { t$ZX <- t$ZX[, sel, , drop = FALSE]; t })
        m$fixed <- m$fixed[keep]; m$xshift <- m$xshift[keep]
        px <- length(keep) + 1L
    }
    p <- px - 1L
    if (n <= p) stop(sprintf("%.0f observations cannot estimate %d fixed effects and the variance components",
                             n, p), call. = FALSE)
    check_reterms(lapply(terms, function(t)
        list(group = t$group, nlev = t$nlev, Z = matrix(0, 0L, t$k),
             label = sprintf("%s | %s", paste(t$columns, collapse = " + "), t$group))), n)
    cond <- aggregates_conditioning(S, m$xshift, m$yshift, m$fixed)
    ## the order the core eliminates the terms in (build_reterms()'s)
    ord <- order(-vapply(terms, `[[`, 1L, "nlev"), -vapply(terms, `[[`, 1L, "k"))
    zc <- far_slope_centring(terms, n)
    layout <- function(shift) {
        tt <- Map(function(t, s) shift_term(t, t$shift - s), terms, shift)
        pp <- lapply(pairs, function(pr) shift_pair(pr, terms[[pr$s]]$shift - shift[[pr$s]],
                                                   terms[[pr$t]]$shift - shift[[pr$t]]))
        aggregates_layout(tt, pp, cond$G, S, ord, n, agg$overall$sumlogw, p)
    }
    raw <- lapply(terms, function(t) numeric(t$k))
    xp <- layout(raw)
    xo <- if (!is.null(zc)) layout(zc$shift)
    if (!is.null(zc)) zc <- list(Z = zc$Z[ord], Cinv = zc$Cinv[ord])
    out <- structure(list(version = LMM_STATS_VERSION, xprod = xp,
                   terms = lapply(terms[ord], function(t) list(group = t$group, columns = t$columns,
                                                               levels = t$levels)),
                   fixed = m$fixed, response = m$response,
                   centring = list(transform = cond[c("xshift", "T", "Tinv", "b0")], slope = zc,
                                   centred_xprod = xo)),
              class = "lmm_stats")
    ## what the fitted object needs beyond the statistics: the columns dropped
    ## as aliased, the fixed part's factor levels (for predictions), and each
    ## term's place in the formula
    attr(out, "model") <- list(dropped = if (length(keep) < length(agg$model$fixed)) agg$model$fixed[-keep],
                               xlev = agg$model$xlev, formula_pos = ord, weights = agg$model$weights)
    out
}

## Schema checks of an aggregates object, with messages naming what is wrong.
check_aggregates <- function(agg) {
    if (!inherits(agg, "lmm_aggregates")) stop("'agg' must be an lmm_aggregates object", call. = FALSE)
    m <- agg$model; px <- length(m$fixed) + 1L; nt <- length(m$terms)
    if (!nt) stop("the aggregates have no random-effects terms", call. = FALSE)
    need <- function(d, cols, what) {
        miss <- setdiff(cols, names(d))
        if (!is.data.frame(d) || length(miss))
            stop(sprintf("aggregates: %s lacks column%s %s", what, if (length(miss) > 1L) "s" else "",
                         paste(miss, collapse = ", ")), call. = FALSE)
    }
    ij <- which(upper.tri(diag(px), diag = TRUE), arr.ind = TRUE)
    need(agg$overall, c("n", "sumlogw", sprintf("s_%d_%d", ij[, 1L], ij[, 2L])), "'overall'")
    if (nrow(agg$overall) != 1L) stop("aggregates: 'overall' must have one row", call. = FALSE)
    if (!isTRUE(agg$overall$n > 0)) stop("the aggregates hold no rows (n = 0): the table is empty",
                                         call. = FALSE)
    icpt <- identical(m$fixed[1L], "(Intercept)")
    if (length(m$xshift) != px - 1L || (!icpt && (any(m$xshift != 0) || m$yshift != 0)) ||
        (icpt && m$xshift[1L] != 0))
        stop("aggregates: columns may be shifted only with an intercept (xshift 0 for it)", call. = FALSE)
    if (length(agg$levels) != nt) stop("aggregates: one 'levels' data frame per term is needed", call. = FALSE)
    for (t in seq_len(nt)) {
        k <- length(m$terms[[t]]$columns)
        sh <- m$terms[[t]]$shift
        if (length(sh) != k || (any(sh != 0) && (!identical(m$terms[[t]]$columns[1L], "(Intercept)") ||
                                                 sh[1L] != 0)))
            stop(sprintf("aggregates: term %d's columns may be shifted only after a first intercept", t),
                 call. = FALSE)
        ab <- which(upper.tri(diag(k), diag = TRUE), arr.ind = TRUE)
        aj <- expand.grid(j = seq_len(px), a = seq_len(k))
        need(agg$levels[[t]], c("level", "n", sprintf("zz_%d_%d", ab[, 1L], ab[, 2L]),
                                sprintf("zx_%d_%d", aj$a, aj$j)), sprintf("'levels[[%d]]'", t))
        if (anyNA(agg$levels[[t]]$level))
            stop(sprintf("grouping factor '%s' contains missing values (NULL): drop those rows or give them a level",
                         m$terms[[t]]$group), call. = FALSE)
        if (anyDuplicated(agg$levels[[t]]$level))
            stop(sprintf("aggregates: 'levels[[%d]]' repeats a level", t), call. = FALSE)
    }
    want <- if (nt > 1L) apply(utils::combn(nt, 2L), 2L, paste, collapse = "_") else character()
    if (!setequal(names(agg$pairs), want))
        stop(sprintf("aggregates: 'pairs' must hold the pairs of terms %s", paste(want, collapse = ", ")),
             call. = FALSE)
    for (nm in want) {
        st <- as.integer(strsplit(nm, "_", fixed = TRUE)[[1L]])
        ab <- expand.grid(b = seq_along(m$terms[[st[2L]]]$columns), a = seq_along(m$terms[[st[1L]]]$columns))
        need(agg$pairs[[nm]], c("level1", "level2", "n", sprintf("zz_%d_%d", ab$a, ab$b)),
             sprintf("'pairs[[\"%s\"]]'", nm))
    }
    invisible(agg)
}

## A symmetric matrix from columns <prefix>_i_j (i <= j) of a one-row frame.
symmetric_from_columns <- function(d, prefix, k) {
    ij <- which(upper.tri(diag(k), diag = TRUE), arr.ind = TRUE)
    M <- matrix(0, k, k)
    M[ij] <- as.double(unlist(d[sprintf("%s_%d_%d", prefix, ij[, 1L], ij[, 2L])]))
    M[ij[, 2:1, drop = FALSE]] <- M[ij]
    M
}

## A term's levels frame as arrays: ZZ (levels x k x k) and ZX (levels x px x k).
parse_term_levels <- function(d, term, px) {
    k <- length(term$columns); L <- nrow(d)
    ZZ <- array(0, c(L, k, k))
    for (a in seq_len(k)) for (b in a:k) ZZ[, a, b] <- ZZ[, b, a] <- as.double(d[[sprintf("zz_%d_%d", a, b)]])
    ZX <- array(0, c(L, px, k))
    for (a in seq_len(k)) for (j in seq_len(px)) ZX[, j, a] <- as.double(d[[sprintf("zx_%d_%d", a, j)]])
    list(group = term$group, columns = term$columns, shift = as.double(term$shift), k = k, nlev = L,
         levels = as.character(d$level), count = as.double(d$n), ZZ = ZZ, ZX = ZX)
}

## A pair frame "s_t" as level indices (1-based) and tiles (rows x k_s x k_t).
parse_pair <- function(d, name, terms) {
    st <- as.integer(strsplit(name, "_", fixed = TRUE)[[1L]])
    s <- st[1L]; t <- st[2L]; ks <- terms[[s]]$k; kt <- terms[[t]]$k
    i <- match(as.character(d$level1), terms[[s]]$levels)
    j <- match(as.character(d$level2), terms[[t]]$levels)
    if (anyNA(i) || anyNA(j))
        stop(sprintf("aggregates: pair '%s' names levels its terms' 'levels' frames lack", name), call. = FALSE)
    if (anyDuplicated(data.frame(i, j))) stop(sprintf("aggregates: pair '%s' repeats a pair of levels", name),
                                           call. = FALSE)
    ZZ <- array(0, c(nrow(d), ks, kt))
    for (a in seq_len(ks)) for (b in seq_len(kt)) ZZ[, a, b] <- as.double(d[[sprintf("zz_%d_%d", a, b)]])
    list(s = s, t = t, i = i, j = j, ZZ = ZZ)
}

## Tiles A (rows x ka x kb) of the columns shifted: column a of the left
## side gains da[a] times its first (intercept) column, and likewise on the
## right, so M_a' A M_b with M = I + e1 d'.  Exact re-centring of sums.
shift_tiles <- function(A, da, db) {
    for (a in seq_along(da)[-1L]) if (da[a] != 0) A[, a, ] <- A[, a, ] + da[a] * A[, 1L, ]
    for (b in seq_along(db)[-1L]) if (db[b] != 0) A[, , b] <- A[, , b] + db[b] * A[, , 1L]
    A
}
shift_term <- function(t, d) {
    t$ZZ <- shift_tiles(t$ZZ, d, d)
    t$ZX <- shift_tiles(t$ZX, numeric(dim(t$ZX)[2L]), d)
    t
}
shift_pair <- function(pr, ds, dt) { pr$ZZ <- shift_tiles(pr$ZZ, ds, dt); pr }

## The columns of X lmmfit() keeps: those whose residual after the earlier
## kept ones is not below LME4_RANKX_TOL of their own norm, as the limited
## pivoting of qr() decides (the data's norm: the centred one plus n times
## the squared shift).
kept_fixed_columns <- function(S, xshift, n) {
    p <- nrow(S) - 1L
    keep <- integer()
    for (j in seq_len(p)) {
        r2 <- S[j, j]
        if (length(keep)) {
            b <- tryCatch(solve(S[keep, keep, drop = FALSE], S[keep, j]), error = function(e) NULL)
            if (is.null(b)) next
            r2 <- r2 - sum(S[j, keep] * b)
        }
        norm2 <- S[j, j] + n * xshift[j]^2
        if (norm2 > 0 && r2 > (LME4_RANKX_TOL^2) * norm2) keep <- c(keep, j)
    }
    keep
}

## The conditioning of lmm_fit_core() (conditioning_transform()) from the
## centred sums: X T = X - xshift, and the response made the least-squares
## residual.  The aggregates' response is y - yshift = y - X T c (c: yshift
## at the intercept); b1 is the rest of the least-squares fit, so b0 = c + b1.
## G maps the aggregates' [X y] to the conditioned one.
aggregates_conditioning <- function(S, xshift, yshift, fixed) {
    px <- nrow(S); p <- px - 1L
    T <- Tinv <- diag(p)
    icpt <- match("(Intercept)", fixed)
    if (!is.na(icpt) && p > 1L) {
        T[icpt, -icpt] <- -xshift[-icpt]
        Tinv[icpt, -icpt] <- xshift[-icpt]
    }
    b1 <- tryCatch(drop(solve(S[seq_len(p), seq_len(p), drop = FALSE], S[seq_len(p), px])),
                   error = function(e) rep(0, p))
    if (any(!is.finite(b1))) b1 <- rep(0, p)
    c0 <- numeric(p)
    if (!is.na(icpt)) c0[icpt] <- yshift
    G <- diag(px)
    G[seq_len(p), px] <- -b1
    list(xshift = xshift, T = T, Tinv = Tinv, b0 = unname(c0 + b1), G = G)
}

## The slope centring of re_centring() from the aggregates: a term whose
## first column is the intercept has its later columns centred for the
## optimisation when their mean is more than CENTRING_RATIO standard
## deviations from zero (mean and sd from the term's sums over its levels).
far_slope_centring <- function(terms, n) {
    any_far <- FALSE
    out <- lapply(terms, function(t) {
        k <- t$k
        if (k < 2L || !identical(t$columns[1L], "(Intercept)")) return(NULL)
        tot <- apply(t$ZZ, c(2L, 3L), sum)        # sums over levels: w, w z, w z z'
        sw <- tot[1L, 1L]
        m <- t$shift + tot[1L, ] / sw
        css <- diag(tot) - tot[1L, ]^2 / sw
        s <- sqrt(pmax(css, 0) / (sw * (n - 1) / n))
        far <- seq_len(k) > 1L & s > 0 & abs(m) > CENTRING_RATIO * s
        if (!any(far)) return(NULL)
        any_far <<- TRUE
        ifelse(far, m, 0)
    })
    if (!any_far) return(NULL)
    shift <- lapply(seq_along(terms), function(i) if (is.null(out[[i]])) numeric(terms[[i]]$k) else out[[i]])
    Cinv <- lapply(seq_along(terms), function(i) {
        if (is.null(out[[i]])) return(NULL)
        Ci <- diag(terms[[i]]$k); Ci[1L, ] <- Ci[1L, ] + shift[[i]]; Ci
    })
    list(shift = shift, Cinv = Cinv, Z = lapply(terms, function(t) matrix(0, 0L, t$k)))
}

## The blocked layout from parsed (and shifted) aggregates: the Gram matrix
## Z'WZ as lower triplets in the core's order of the terms, [X y]'Z and
## [X y]'[X y] conditioned by G.
aggregates_layout <- function(terms, pairs, G, S, ord, n, sumlogw, p) {
    px <- p + 1L
    ncol <- vapply(terms, `[[`, 1L, "k")[ord]; nlev <- vapply(terms, `[[`, 1L, "nlev")[ord]
    pos <- match(seq_along(terms), ord)                   # each term's place in the core's order
    off <- c(0, cumsum(nlev * ncol))
    Q <- off[length(off)]
    coord <- function(t, lev, a) off[pos[t]] + (lev - 1) * terms[[t]]$k + (a - 1)
    I <- J <- X <- list()
    AX <- matrix(0, px, Q)
    for (t in seq_along(terms)) {
        tt <- terms[[t]]; k <- tt$k; lev <- seq_len(tt$nlev)
        for (a in seq_len(k)) {
            for (b in seq_len(a)) {
                I[[length(I) + 1L]] <- coord(t, lev, a); J[[length(J) + 1L]] <- coord(t, lev, b)
                X[[length(X) + 1L]] <- tt$ZZ[, a, b]
            }
            AX[, coord(t, lev, a) + 1] <- crossprod(G, t(matrix(tt$ZX[, , a], tt$nlev)))
        }
    }
    for (pr in pairs) {
        for (a in seq_len(terms[[pr$s]]$k)) for (b in seq_len(terms[[pr$t]]$k)) {
            cs <- coord(pr$s, pr$i, a); ct <- coord(pr$t, pr$j, b)
            I[[length(I) + 1L]] <- pmax(cs, ct); J[[length(J) + 1L]] <- pmin(cs, ct)
            X[[length(X) + 1L]] <- pr$ZZ[, a, b]
        }
    }
    tr <- list(i = unlist(I), j = unlist(J), x = unlist(X), AX = AX, AXX = crossprod(G, S %*% G))
    layout_from_triplets(tr, nlev, ncol, n, p, sumlogw)
}
