## Random-effects terms: grouping factors and their model matrices, in the
## order the C core wants them (decreasing number of levels).

## X, when given, is the fixed-effects model matrix: a term whose columns are
## exactly X's, as in y ~ x + (x | g), shares it instead of holding a copy.
## known_variance: the residual variances are known (meta-analysis), so a
## factor may have as many levels as there are observations.
build_reterms <- function(specs, frame, env, X = NULL, checks = NULL, known_variance = FALSE) {
    n <- nrow(frame)
    one <- NULL
    ones <- function() {
        if (is.null(one)) one <<- matrix(1, n, 1L, dimnames = list(NULL, "(Intercept)"))
        one
    }
    terms <- lapply(specs, function(s) {
        gname <- deparse1(s$group)
        g <- tryCatch(eval_grouping(s$group, frame, env), error = function(e)
            stop(sprintf("cannot evaluate the grouping factor '%s': %s", gname,
                         conditionMessage(e)), call. = FALSE))
        if (length(g) != n)
            stop(sprintf("grouping factor '%s' has %d values for %d observations",
                         gname, length(g), n), call. = FALSE)
        if (if (is.factor(g)) !.Call(C_lmm_all_finite, g) else anyNA(g))
            stop(sprintf("grouping factor '%s' contains missing values", gname), call. = FALSE)
        ## factor() only when needed: it is the costliest step on large data
        if (!is.factor(g) || is.ordered(g) || !.Call(C_lmm_levels_used, g))
            g <- factor(g)
        Z <- re_model_matrix(s$lhs, frame, gname, X, ones)
        if (!.Call(C_lmm_all_finite, Z))
            stop(sprintf("the random-effects model matrix of (%s | %s) has non-finite values",
                         deparse1(s$lhs), gname), call. = FALSE)
        list(group = gname, factor = g, Z = Z, nlev = nlevels(g),
             label = sprintf("%s | %s", deparse1(s$lhs), gname))
    })
    ## decreasing levels; among terms with as many levels (terms on one
    ## factor), the one with more columns first: it becomes the block-diagonal
    ## first term and the others the dense block, which is then smaller
    ## ((1 | g) + (0 + f | g) with f of 10 levels: 30 instead of 300).  order()
    ## is stable: remaining ties keep formula order.
    nlev <- vapply(terms, `[[`, 1L, "nlev")
    ncols <- vapply(terms, function(t) ncol(t$Z), 1L)
    ord <- order(-nlev, -ncols)
    terms <- terms[ord]
    ## each term's position in the formula, for lme4's order of theta (lme4_start())
    attr(terms, "formula_pos") <- ord
    check_reterms(terms, n, checks, known_variance)
    terms
}

## checks: lme4's checkControl settings from control = lmerControl() (see
## lme4_control()): lme4's checks, messages and actions instead of these.
check_reterms <- function(terms, n, checks = NULL, known_variance = FALSE) {
    if (!is.null(checks)) return(lme4_check_reterms(terms, n, checks))
    for (t in terms) {
        if (t$nlev < 2L)
            stop(sprintf("grouping factor '%s' has only one level: a random effect needs > 1 sampled level",
                         t$group), call. = FALSE)
        if (known_variance) next
        if (t$nlev >= n)
            stop(sprintf(paste0("number of levels of each grouping factor must be < number of ",
                                "observations (grouping factor '%s' has %d levels for %d observations)"),
                         t$group, t$nlev, n), call. = FALSE)
        q <- t$nlev * ncol(t$Z)
        if (q >= n)
            stop(sprintf(paste0("number of observations (=%d) <= number of random effects (=%d) ",
                                "for term (%s); the random-effects parameters and the residual ",
                                "variance are probably unidentifiable"), n, q, t$label), call. = FALSE)
    }
}

## Slope columns whose mean is more than this many standard deviations from
## zero: their cross-products hold the variance about the mean only in their
## last log10(ratio^2) digits (a ratio of 1e6 leaves 4 of 16), too few for the
## deviance to be located to 1e-6.  Such columns are centred for the
## optimisation, a copy of that term's model matrix (rare: dates, years,
## coordinates); below the ratio the loss is under 1e-8 relative.
CENTRING_RATIO <- 100

## The centring of random-effect slopes far from their origin: NULL when no
## term needs it, else the terms' model matrices with those columns centred
## (Z C, C unit upper triangular) and, per term, C^{-1} (NULL where nothing
## moved) for theta_centred().  Only terms whose first column is the intercept
## can be centred: the map keeps lambda lower triangular then.
re_centring <- function(reterms) {
    Cinv <- vector("list", length(reterms))
    Zs <- lapply(reterms, `[[`, "Z")
    for (j in seq_along(reterms)) {
        Z <- Zs[[j]]
        if (ncol(Z) < 2L || !identical(colnames(Z)[1L], "(Intercept)")) next
        s <- .Call(C_lmm_column_scales, Z)     # NA for 0/1 columns: never far
        m <- attr(s, "mean")
        far <- seq_len(ncol(Z)) > 1L & !is.na(s) & s > 0 & abs(m) > CENTRING_RATIO * s
        if (!any(far)) next
        shift <- ifelse(far, m, 0)
        Zs[[j]] <- sweep(Z, 2L, shift)
        Ci <- diag(ncol(Z))
        Ci[1L, ] <- Ci[1L, ] + shift
        Cinv[[j]] <- Ci
    }
    if (all(vapply(Cinv, is.null, NA))) NULL else list(Z = Zs, Cinv = Cinv)
}

## theta of the centred columns from the model's (to_space = TRUE) or back:
## the covariance of the centred columns is C^{-1} Sigma C^{-T}.
theta_centred <- function(theta, zc, to_space) {
    if (is.null(zc)) return(as.double(theta))
    .Call(C_lmm_theta_transform, as.double(theta), vapply(zc$Z, ncol, 1L), zc$Cinv, to_space)
}

## Moment starting values from the cross-products of the conditioned data
## (the response there is the least-squares residual): for each term with an
## intercept, the one-way ANOVA estimate of the between-level variance
## relative to the within-level variance, ignoring the other terms; the other
## elements as theta_start().  NULL when no term has an intercept.
theta_moment_start <- function(xp, terms) {
    th <- theta_start(terms)
    px <- xp$p + 1L
    rd <- rest_diag(xp)
    yy <- xp$AXX[px * px]
    n <- xp$nobs
    i <- 0L; roff <- 0L; used <- FALSE
    for (j in seq_along(terms)) {
        t <- terms[[j]]; k <- ncol(t$Z); L <- t$nlev
        c0 <- match("(Intercept)", colnames(t$Z))
        if (!is.na(c0)) {
            if (j == 1L) {
                ng <- xp$A11[(seq_len(L) - 1L) * k * k + (c0 - 1L) * (k + 1L) + 1L]
                sg <- xp$AX1[px * ((seq_len(L) - 1L) * k + c0)]
            } else {
                r <- roff + (seq_len(L) - 1L) * k + c0          # 1-based rest rows
                ng <- rd[r]
                sg <- xp$AX2[px * r]
            }
            ssb <- sum(sg^2 / ng)
            s2w <- (yy - ssb) / (n - L)
            s2b <- (ssb - (L - 1) * s2w) / (n - sum(ng^2) / n)
            if (all(is.finite(c(s2w, s2b))) && s2w > 0) {
                ## position of this diagonal element in the term's lower triangle
                pos <- if (c0 == 1L) 1L else sum(k:(k - c0 + 2L)) + 1L
                th[i + pos] <- sqrt(max(s2b / s2w, 0.01))
                used <- TRUE
            }
        }
        if (j > 1L) roff <- roff + L * k
        i <- i + k * (k + 1L) / 2L
    }
    if (used) th else NULL
}

## theta_start() or the moment start, whichever has the lower deviance.
better_start <- function(xp, terms, REML) {
    th0 <- theta_start(terms)
    ## only for scalar terms: with random slopes, starting the intercept apart
    ## from the slope can lead L-BFGS-B to a poorer (singular) optimum
    if (any(vapply(terms, function(t) ncol(t$Z), 1L) != 1L)) return(th0)
    th1 <- tryCatch(theta_moment_start(xp, terms), error = function(e) NULL)
    if (is.null(th1)) return(th0)
    d <- .Call(C_lmm_deviance, xp, cbind(as.double(th0), as.double(th1)), REML)
    d0 <- d[1L]; d1 <- d[2L]
    if (is.finite(d1) && d1 < d0) th1 else th0
}


## The model matrix of a random-effects term's left-hand side.  The common
## (1 | g) and terms of plain numeric variables, e.g. (Days | Subject) or
## (0 + x | g), need no model.matrix() call; when such a term has exactly the
## columns of the fixed-effects matrix X, it is X.
## ones: a function giving the n x 1 column of ones, which the intercept-only
## terms of one fit share (a four-level nested model on a million rows then
## holds one copy, not four; R's copy-on-modify keeps sharing safe).
re_model_matrix <- function(lhs, frame, gname, X = NULL, ones = NULL) {
    n <- nrow(frame)
    if (identical(lhs, 1) || identical(lhs, 1L)) {
        if (!is.null(X) && identical(colnames(X), "(Intercept)")) return(X)
        if (!is.null(ones)) return(ones())
        return(matrix(1, n, 1L, dimnames = list(NULL, "(Intercept)")))
    }
    tt <- terms(eval(call("~", lhs)))
    labs <- attr(tt, "term.labels")
    if (length(labs) && all(labs %in% names(frame)) &&
        all(vapply(frame[labs], function(v) is.numeric(v) && is.null(dim(v)), NA))) {
        icpt <- attr(tt, "intercept") == 1L
        cn <- c(if (icpt) "(Intercept)", labs)
        if (!is.null(X) && identical(colnames(X), cn)) return(X)
        Z <- matrix(1, n, length(cn), dimnames = list(NULL, cn))
        for (j in seq_along(labs)) Z[, j + icpt] <- frame[[labs[j]]]
        return(Z)
    }
    Z <- tryCatch(model.matrix(eval(call("~", lhs)), frame), error = function(e)
        stop(sprintf("cannot build the random-effects model matrix of (%s | %s): %s",
                     deparse1(lhs), gname, conditionMessage(e)), call. = FALSE))
    attr(Z, "assign") <- attr(Z, "contrasts") <- NULL
    dimnames(Z) <- list(NULL, colnames(Z))
    storage.mode(Z) <- "double"
    Z
}

## A term's grouping factor: the grouping expression evaluated on the frame,
## with `a:b` (and so `a/b`) the interaction of the combinations of levels
## that occur, as lme4 makes it, not of all combinations (R's `:` on factors:
## 20 regions x 500 districts x 10,000 schools x 50,000 classes would be
## 5e12 levels).
eval_grouping <- function(group, frame, env) {
    genv <- new.env(parent = env)
    genv[[":"]] <- function(a, b)
        if (is.factor(a) && is.factor(b)) observed_interaction(a, b) else base::`:`(a, b)
    eval(group, factor_columns(frame, group), genv)
}

## The factor a:b over the level pairs that occur, in the order of R's a:b
## (a's levels major), labelled "a:b".  Pairs are keyed in double precision:
## exact up to 2^53 combinations.
observed_interaction <- function(a, b) {
    nb <- nlevels(b)
    key <- (as.double(as.integer(a)) - 1) * nb + as.integer(b)
    pairs <- sort(unique(key))
    ia <- (pairs - 1) %/% nb + 1
    ib <- (pairs - 1) %% nb + 1
    structure(match(key, pairs), levels = paste(levels(a)[ia], levels(b)[ib], sep = ":"),
              class = "factor")
}

## The frame with the variables of a grouping expression turned into factors,
## so that `a:b` (and so `a/b`) is an interaction of factors, as lme4 does,
## even when a or b is an integer or character column (with integers `:`
## would otherwise be R's sequence operator).
factor_columns <- function(frame, group) {
    if (!is.call(group)) return(frame)
    for (v in intersect(all.vars(group), names(frame)))
        if (!is.factor(frame[[v]])) frame[[v]] <- factor(frame[[v]])
    frame
}
