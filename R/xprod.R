## The cross-products list of the C core (src/crossprod.c, src/model.h):
## helpers that read its blocked layout from R.  Terms 1..nstage-1 after the
## first are block-diagonal "stages" (each term before them nested in them),
## whose tiles and beside-values sit in A22 ahead of the dense tail.

## Largest number of block-diagonal stages the cross-products may use: all
## that nesting allows, unless the option lmmfit.max_stages says fewer (1
## keeps every term after the first in the dense block, as lmmfit 0.2.0 did;
## the tests compare the two layouts).
max_stages <- function() {
    s <- getOption("lmmfit.max_stages", .Machine$integer.max)
    if (!is.numeric(s) || length(s) != 1L || is.na(s) || s < 1)
        stop("option 'lmmfit.max_stages' must be a positive integer", call. = FALSE)
    as.integer(min(s, .Machine$integer.max))
}

## The cross-products with their sparse tail's plan kept as attribute
## "tail_plan" (src/tail_plan.c: an order of the tail's levels and the
## factor's pattern), so that the symbolic analysis is done once per fit,
## not once per .Call (optimizer, solution, condVar, bootstrap, profiles).
## A cache only: the C code checks a kept plan against the cross-products and
## finds one afresh when it is absent or does not fit.
with_tail_plan <- function(xp) {
    if (xp$nstage >= length(xp$nlev)) return(xp)    # no tail: every term is a stage
    attr(xp, "tail_plan") <- .Call(C_lmm_tail_plan, xp)
    xp
}

## Where each later stage's pieces sit: per stage j (2..nstage, 1-based term
## index) its rest offset, pointers, rows and value offsets; then the tail.
xprod_layout <- function(xp) {
    nlev <- xp$nlev; ncol <- xp$ncol; ns <- xp$nstage
    stages <- list(); off <- 0L; pb <- 0L; ib <- 0L; vo <- 0
    for (j in seq_len(ns)[-1L]) {
        k <- ncol[j]; L <- nlev[j]
        Cp <- xp$A22p[pb + seq_len(L + 1L)]
        Ci <- xp$A22i[ib + seq_len(Cp[L + 1L])]
        stages[[length(stages) + 1L]] <- list(off = off, k = k, nlev = L, Cp = Cp, Ci = Ci,
                            tiles = vo, coup = vo + L * k * k)
        vo <- vo + L * k * k + Cp[L + 1L] * k
        off <- off + L * k; pb <- pb + L + 1L; ib <- ib + Cp[L + 1L]
    }
    q2 <- sum(nlev[-1L] * ncol[-1L])
    list(stages = stages, dstart = off, qd = q2 - off, doff = vo, q2 = q2)
}

## The rest block (terms after the first) as a dense symmetric q2 x q2 matrix.
rest_dense <- function(xp) {
    lay <- xprod_layout(xp)
    q2 <- lay$q2; qd <- lay$qd
    S <- matrix(0, q2, q2)
    for (st in lay$stages) {
        k <- st$k
        for (h in seq_len(st$nlev)) {
            idx <- st$off + (h - 1L) * k + seq_len(k)
            S[idx, idx] <- xp$A22[st$tiles + (h - 1L) * k * k + seq_len(k * k)]
            m <- st$Cp[h + 1L] - st$Cp[h]
            if (m > 0L) {
                rows <- st$Ci[st$Cp[h] + seq_len(m)] + 1L
                B <- matrix(xp$A22[st$coup + st$Cp[h] * k + seq_len(m * k)], m, k)
                S[rows, idx] <- B
                S[idx, rows] <- t(B)
            }
        }
    }
    if (qd > 0L) {
        idx <- lay$dstart + seq_len(qd)
        S[idx, idx] <- xp$A22[lay$doff + seq_len(qd * qd)]
    }
    S
}

## The diagonal of the rest block (length q2), without forming it.
rest_diag <- function(xp) {
    lay <- xprod_layout(xp)
    d <- numeric(lay$q2)
    for (st in lay$stages) {
        k <- st$k
        for (c in seq_len(k))
            d[st$off + (seq_len(st$nlev) - 1L) * k + c] <-
                xp$A22[st$tiles + (seq_len(st$nlev) - 1L) * k * k + (c - 1L) * (k + 1L) + 1L]
    }
    if (lay$qd > 0L)
        d[lay$dstart + seq_len(lay$qd)] <- xp$A22[lay$doff + (seq_len(lay$qd) - 1L) * (lay$qd + 1L) + 1L]
    d
}
