## The covariance parameters theta in R: the one place their layout, names,
## bounds, the relative covariance factors Lambda and the standard
## deviation / correlation scale are written (the C side: src/theta.c).
## theta holds, term by term, the lower triangle of each term's k x k
## relative covariance factor lambda, column by column; the diagonal is
## bounded below by 0, the rest is free.

## Columns per term (terms: reterms, or anything with a Z whose columns name them).
term_ncol <- function(terms) vapply(terms, function(t) ncol(t$Z), 1L)

## Per element of theta: whether it is a diagonal entry of its lambda.
theta_is_diag <- function(terms) {
    unlist(lapply(term_ncol(terms), function(k) {
        m <- diag(k) == 1
        m[lower.tri(m, diag = TRUE)]
    }))
}

## Names of the theta vector, one per lower-triangle element of each term.
theta_names <- function(terms) {
    unlist(lapply(terms, function(t) {
        cn <- colnames(t$Z)
        k <- length(cn)
        out <- character()
        for (c in seq_len(k)) for (r in c:k)
            out <- c(out, if (r == c) paste(t$group, cn[r], sep = ".")
                          else paste(t$group, cn[r], cn[c], sep = "."))
        out
    }))
}

## The identity: every lambda the identity matrix.
theta_start <- function(terms) as.double(theta_is_diag(terms))

## Lower bounds: 0 on the diagonal, -Inf below it.
theta_lower <- function(terms) ifelse(theta_is_diag(terms), 0, -Inf)

## Per-term lower-triangular relative covariance factors from theta.
theta_to_lambda <- function(theta, terms) {
    out <- vector("list", length(terms))
    i <- 0L
    for (j in seq_along(terms)) {
        k <- ncol(terms[[j]]$Z)
        m <- matrix(0, k, k, dimnames = list(colnames(terms[[j]]$Z), colnames(terms[[j]]$Z)))
        nk <- k * (k + 1L) / 2L
        m[lower.tri(m, diag = TRUE)] <- theta[i + seq_len(nk)]
        i <- i + nk
        out[[j]] <- m
    }
    out
}

## Per term, the covariance sigma^2 lambda lambda' with attributes stddev
## and correlation (a correlation with a zero standard deviation is 0).
theta_to_covariances <- function(theta, terms, sigma) {
    lapply(theta_to_lambda(theta, terms), function(l) {
        V <- sigma^2 * tcrossprod(l)
        sd <- sqrt(diag(V))
        C <- V / outer(sd, sd)
        C[!is.finite(C)] <- 0
        diag(C) <- 1
        structure(V, stddev = sd, correlation = C)
    })
}

## theta from x's sds and correlations (then sigma), through a Cholesky
## factor that allows semidefinite correlation matrices (|r| = 1 on the
## bounds: a zero pivot gives a zero column), so the deviance stays
## continuous up to the bounds the minimisations may touch.
sdcor_to_theta <- function(x, terms) {
    s <- x[[length(x)]]
    i <- 0L
    unlist(lapply(terms, function(t) {
        k <- ncol(t$Z)
        nk <- k * (k + 1L) / 2L
        m <- matrix(0, k, k)
        m[lower.tri(m, diag = TRUE)] <- x[i + seq_len(nk)]
        i <<- i + nk
        C <- m
        diag(C) <- 1
        C[upper.tri(C)] <- t(C)[upper.tri(C)]
        L <- (diag(m) / s) * psd_chol(C)
        L[lower.tri(L, diag = TRUE)]
    }))
}

psd_chol <- function(C) {
    k <- nrow(C)
    L <- matrix(0, k, k)
    for (j in seq_len(k)) {
        prev <- seq_len(j - 1L)
        L[j, j] <- sqrt(max(C[j, j] - sum(L[j, prev]^2), 0))
        for (r in seq_len(k - j) + j)
            L[r, j] <- if (L[j, j] > 0) (C[r, j] - sum(L[r, prev] * L[j, prev])) / L[j, j] else 0
    }
    L
}

## Per term, the lower triangle of the covariance (column by column) as
## standard deviations (diagonal) and correlations (below), then sigma
## (lme4's .sig01, .sig02, ... order).  An undefined correlation (a zero
## standard deviation) is `undefined`.
theta_to_sdcor <- function(theta, terms, sigma, undefined = 0) {
    out <- unlist(lapply(theta_to_covariances(theta, terms, sigma), function(V) {
        sd <- attr(V, "stddev")
        k <- nrow(V)
        v <- numeric()
        for (c in seq_len(k)) for (r in c:k)
            v <- c(v, if (r == c) sd[r] else if (sd[r] > 0 && sd[c] > 0) V[r, c] / (sd[r] * sd[c])
                      else undefined)
        v
    }))
    c(out, sigma)
}
