## The meta-analysis model on the engine: known variances as weights (or a
## whitening by each study's block of V), sigma fixed at 1, the random terms
## through build_reterms() (a factor may have one level per effect).

## A placeholder term for the common-effect model: one level per effect with
## theta fixed at 0, so that its criterion comes from the one deviance module.
meta_placeholder_term <- function(k) {
    list(list(group = "(effect)", factor = factor(seq_len(k)), Z = matrix(1, k, 1L,
         dimnames = list(NULL, "(Intercept)")), nlev = k, label = "1 | (effect)"))
}

## The known covariance V as blocks (connected components of its pattern),
## each with its rows and lower Cholesky factor; rows: the kept rows of the
## data (V is given for all of them).
meta_known_cov <- function(V, rows) {
    if (is.list(V) && !is.data.frame(V)) V <- meta_block_diag(V)
    if (inherits(V, "Matrix")) V <- as.matrix(V)
    if (!is.matrix(V) || !is.numeric(V) || nrow(V) != ncol(V))
        stop("'V' must be a square numeric matrix (or a list of its diagonal blocks)", call. = FALSE)
    if (is.null(rows) || max(rows) > nrow(V))
        stop(sprintf("'V' is %d x %d but the data have more rows", nrow(V), ncol(V)), call. = FALSE)
    V <- V[rows, rows, drop = FALSE]
    if (any(!is.finite(V))) stop("'V' has non-finite values", call. = FALSE)
    if (!isSymmetric(unname(V), tol = META_SYMMETRY_TOL)) stop("'V' must be symmetric", call. = FALSE)
    blk <- meta_blocks(V != 0)
    chols <- lapply(blk, function(i) {
        L <- tryCatch(t(chol(V[i, i, drop = FALSE])), error = function(e) NULL)
        if (is.null(L))
            stop(sprintf("'V' is not positive definite (its block of effects %s)",
                         paste(i, collapse = ", ")), call. = FALSE)
        L
    })
    list(blocks = blk, chol = chols, diag = all(lengths(blk) == 1L), vi = diag(V))
}

## Relative asymmetry allowed in V: rounding in a covariance computed from
## correlations and standard errors.
META_SYMMETRY_TOL <- 1e-10

meta_block_diag <- function(blocks) {
    if (!all(vapply(blocks, function(b) is.numeric(b) && (length(b) == 1L || is.matrix(b)), NA)))
        stop("a list 'V' must hold the numeric diagonal blocks of the covariance matrix", call. = FALSE)
    blocks <- lapply(blocks, as.matrix)
    n <- sum(vapply(blocks, nrow, 1L))
    V <- matrix(0, n, n)
    at <- 0L
    for (b in blocks) {
        i <- at + seq_len(nrow(b))
        V[i, i] <- b
        at <- at + nrow(b)
    }
    V
}

## Connected components of a symmetric pattern, as a list of row indices.
meta_blocks <- function(pattern) {
    k <- nrow(pattern)
    comp <- rep(0L, k)
    nc <- 0L
    for (s in seq_len(k)) {
        if (comp[s]) next
        nc <- nc + 1L
        todo <- s
        while (length(todo)) {
            comp[todo] <- nc
            todo <- which(colSums(pattern[todo, , drop = FALSE]) > 0 & comp == 0L)
        }
    }
    split(seq_len(k), comp)
}

## The model: terms, whether it is rma.uni's (one random intercept with one
## level per effect, V diagonal), and the statistics the engine takes.
meta_model <- function(md, method, test) {
    k <- length(md$y)
    V <- md$V
    vi <- if (is.null(V)) md$vi else V$vi
    terms <- if (length(md$specs))
        build_reterms(md$specs, md$frame, md$env, md$X, known_variance = TRUE)
    uni <- length(terms) == 1L && ncol(terms[[1L]]$Z) == 1L && all(terms[[1L]]$Z == 1) &&
        terms[[1L]]$nlev == k && (is.null(V) || V$diag)
    fe_only <- !length(terms)
    if (method %in% META_MOMENT_METHODS && !uni)
        stop(sprintf(paste0("method = \"%s\" is a moment estimator for one random effect per study with ",
                            "independent effects (metafor's rma); a multilevel model or a known covariance V ",
                            "is fitted by \"REML\" or \"ML\""), method), call. = FALSE)
    if (test == "knha" && !(uni || fe_only))
        stop("test = \"knha\" is for one random effect per study (metafor's rma); use test = \"t\" here",
             call. = FALSE)
    if (fe_only) terms <- meta_placeholder_term(k)
    whiten <- !is.null(V) && !V$diag
    if (whiten) meta_check_nesting(terms, V$blocks)
    wd <- if (whiten) meta_whiten(md$y, md$X, terms, V)
    st <- if (whiten) stats_from_data(wd$X, wd$y, NULL, NULL, wd$terms)
          else stats_from_data(md$X, md$y, 1 / vi, NULL, terms)
    if (whiten) st$xprod$sumlogw <- wd$sumlogw
    list(y = md$y, vi = vi, V = V, X = md$X, k = k, p = ncol(md$X), terms = terms,
         uni = uni, fe_only = fe_only, whiten = whiten, stats = st, slab = md$slab,
         frame = md$frame, fixed_terms = md$fixed_terms)
}

## Whitening mixes the rows of a block: every random term must then have one
## level throughout each block (the effects of a study share its levels).
meta_check_nesting <- function(terms, blocks) {
    for (t in terms) {
        codes <- as.integer(t$factor)
        mixed <- vapply(blocks, function(i) length(unique(codes[i])) > 1L, NA)
        if (any(mixed))
            stop(sprintf(paste0("the grouping factor '%s' varies within a block of correlated effects of 'V' ",
                                "(effects %s): each block must lie within one level of every random term"),
                         t$group, paste(blocks[[which(mixed)[1L]]], collapse = ", ")), call. = FALSE)
    }
}

## y, X and the terms' model matrices premultiplied by each block's inverse
## Cholesky factor; sumlogw = -log|V| takes the place of the sum of log weights.
meta_whiten <- function(y, X, terms, V) {
    ys <- y
    Xs <- X
    Zs <- lapply(terms, `[[`, "Z")
    logdet <- 0
    for (b in seq_along(V$blocks)) {
        i <- V$blocks[[b]]
        L <- V$chol[[b]]
        logdet <- logdet + 2 * sum(log(diag(L)))
        ys[i] <- forwardsolve(L, y[i])
        Xs[i, ] <- forwardsolve(L, X[i, , drop = FALSE])
        for (j in seq_along(Zs)) Zs[[j]][i, ] <- forwardsolve(L, terms[[j]]$Z[i, , drop = FALSE])
    }
    for (j in seq_along(terms)) terms[[j]]$Z <- Zs[[j]]
    list(y = ys, X = Xs, terms = terms, sumlogw = -logdet)
}

## A starting theta on the scale of the effects: each term's identity factor
## times the root of the spread of the effects beyond their sampling variance.
meta_theta_start <- function(model) {
    spread <- max(stats::var(model$y) - mean(model$vi), mean(model$vi))
    theta_start(model$terms) * sqrt(spread / length(model$terms))
}

## The engine's fit: REML/ML optimised with sigma = 1; a moment estimator's
## tau^2 (or 0 for the common-effect model) taken as theta.
meta_fit_engine <- function(model, method, control) {
    theta_fixed <- if (method == "FE") rep(0, length(theta_start(model$terms)))
                   else if (method %in% META_MOMENT_METHODS)
                       sqrt(meta_moment_tau2(method, model$y, model$vi, model$X)$tau2)
    fit <- fit_from_stats(model$stats, model$terms, REML = method != "ML", control,
                          theta0 = meta_theta_start(model), sigma = 1, theta_fixed = theta_fixed)
    if (model$uni && method %in% c("REML", "ML") && fit$theta[[1L]] > 0) {
        tau2 <- meta_score_polish(fit$theta[[1L]]^2, model$y, model$vi, model$X, method)
        opt <- fit$optinfo
        fit <- fit_from_stats(model$stats, model$terms, REML = method != "ML", control, sigma = 1,
                              theta_fixed = sqrt(tau2))
        fit$optinfo <- opt
        fit$optinfo$theta <- fit$theta
    }
    ## both criteria at the estimate, from the deviance module
    crit <- function(reml) .Call(C_lmm_solution, fit$xprod, as.double(fit$theta), reml, 1)$deviance
    fit$deviance_ml <- crit(FALSE)
    fit$deviance_reml <- crit(TRUE)
    ## Cochran's Q: the weighted residual sum of squares of the common-effect fit
    fit$QE <- .Call(C_lmm_solution, fit$xprod, numeric(length(fit$theta)), FALSE, 1)$pwrss
    fit
}

## rma's model: one random effect per study (or none), effects independent.
## what: the function asking, for the message; arg: its argument's name.
meta_require_uni <- function(fit, what, arg = "object") {
    if (!inherits(fit, "metafit")) stop(sprintf("%s needs a metafit fit as '%s'", what, arg), call. = FALSE)
    m <- fit$model
    if (!(m$uni || m$fe_only) || m$whiten)
        stop(sprintf(paste0("%s is for one random effect per study with independent effects ",
                            "(metafor's rma), not a multilevel model or a known covariance V"), what),
             call. = FALSE)
}

meta_is_random <- function(fit) !(fit$method == "FE" || fit$model$fe_only)

## Anything beyond one intercept is a moderator.
meta_has_moderators <- function(fit) !identical(colnames(fit$model$X), "(Intercept)")
