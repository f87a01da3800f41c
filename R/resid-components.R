## The parsed structures (R/resid-struct.R) evaluated on the model frame:
## the component list of the C core, the starting values, and the map from
## the optimizer's parameters to nlme's reported ones.

## The correlation component: groups (rows in time order), its covariate,
## the checks a structure needs of its data.
resid_cor_component <- function(cor, frame, env, reterms) {
    cls <- cor$class
    what <- paste0(cls, "()")
    if (is.null(cor$parts$group)) cor$parts <- resid_default_group(cor$parts, reterms, what)
    g <- if (is.factor(cor$parts$group_factor)) cor$parts$group_factor
         else resid_factor(cor$parts$group, frame, env, what)
    gname <- deparse1(cor$parts$group)
    n <- nrow(frame)
    coords <- if (length(cor$parts$covs))
        vapply(cor$parts$covs, function(e) resid_numeric(e, frame, env, what), numeric(n))
    if (!is.null(coords)) coords <- matrix(coords, n)
    ## serial: ordered in a time or position (corSymm's), each once in a group
    serial <- cls %in% c("corAR1", "corCAR1", "corARMA", "corSymm")
    tm <- if (serial) resid_cor_times(cls, cor$parts, coords, g)
    o <- if (serial) order(as.integer(g), tm) else order(as.integer(g))
    gs <- as.integer(g)[o]
    same <- c(FALSE, gs[-1L] == gs[-n])
    if (serial && any(same & c(0, diff(tm[o])) == 0)) {
        i <- which(same & c(0, diff(tm[o])) == 0)[1L]
        stop(sprintf("%s: %s that repeat within a group: %s = %s occurs more than once in %s '%s'",
                     what, if (cls == "corSymm") "positions" else "times", deparse1(cor$parts$covs[[1L]]),
                     format(tm[o][i]), gname, levels(g)[gs[i]]), call. = FALSE)
    }
    ## terms with fewer levels may cross the grouping (src/resid_crossed.c)
    if (length(reterms) && !is_nested_in(g, reterms[[1L]]$factor))
        stop(sprintf(paste0("%s: the correlation grouping '%s' must be nested in the random-effects ",
                            "grouping factor with the most levels, '%s', which varies within it (terms ",
                            "with fewer levels may cross it: add (1 | %s) if it is the subjects' grouping)"),
                     what, gname, reterms[[1L]]$group, gname), call. = FALSE)
    if (!serial && !is.null(coords) && !cor$nugget) spatial_check_distinct(coords, o, gs, what)
    if (cls == "corARMA") arma_check_lags(cor, tm, g)
    if (cls == "corSymm") corsymm_check_positions(tm, g, cor$parts)
    x <- if (serial) tm else if (cls %in% c("corExp", "corGaus", "corSpher")) coords
    list(kind = RESID_COR_KINDS[[cls]], x = x, strata = NULL, nstrata = 1L, nugget = as.integer(cor$nugget),
         p = if (is.null(cor$p)) 0L else cor$p, q = if (is.null(cor$q)) 0L else cor$q,
         npos = if (cls == "corSymm") as.integer(max(tm)),
         class = cls, group = gname, form = cor$parts$form, order = o,
         gstart = c(0L, cumsum(tabulate(gs, nlevels(g)))), coords = coords, g = g)
}

## A serial structure's times: the covariate, or with form = ~ 1 | g the
## row's position within its group; integer valued where the structure is
## defined on integer times.
resid_cor_times <- function(cls, parts, coords, g) {
    tm <- if (is.null(coords)) {
        pos <- integer(length(g))
        pos[order(as.integer(g))] <- run_positions(sort(as.integer(g)))
        as.double(pos)
    } else coords[, 1L]
    if (cls == "corSymm" && any(abs(tm - round(tm)) > INTEGER_TIME_TOL * pmax(1, abs(tm)) | tm < 1))
        stop(sprintf(paste0("corSymm(): the position '%s' must be an integer 1, 2, ..., T (or form = ~ 1 | g: ",
                            "the order of the rows within each group)"), deparse1(parts$covs[[1L]])), call. = FALSE)
    if (cls == "corSymm") return(round(tm))
    if (cls %in% c("corAR1", "corARMA") && any(abs(tm - round(tm)) > INTEGER_TIME_TOL * pmax(1, abs(tm))))
        stop(sprintf(paste0("%s(): the time '%s' must be integer valued (%s is defined on integer ",
                            "times; %s)"), cls, deparse1(parts$covs[[1L]]),
                     if (cls == "corAR1") "AR(1)" else "ARMA",
                     if (cls == "corAR1") "use corCAR1() for real-valued times"
                     else "form = ~ 1 | g takes the order of the rows within each group"),
             call. = FALSE)
    ## ARMA indexes its autocorrelations by the lag: exact integers
    if (cls == "corARMA") round(tm) else tm
}
## times this close (relative) to an integer are integers
INTEGER_TIME_TOL <- 1e-8

## corSymm: T(T - 1)/2 correlations, each of positions 1..T observed (as
## nlme asks) and each pair together in some group (a pair never seen
## together has a correlation the data do not inform).  src/resid.h's
## RESID_SYMM_MAX_T is the same limit.
CORSYMM_MAX_T <- 20L
corsymm_check_positions <- function(tm, g, parts) {
    T <- max(tm)
    pname <- if (length(parts$covs)) sprintf("the position '%s'", deparse1(parts$covs[[1L]]))
             else "the largest group (its row order)"
    if (T > CORSYMM_MAX_T)
        stop(sprintf(paste0("corSymm(): %s reaches %d; at most %d positions are supported (a general ",
                            "correlation of T positions has T(T-1)/2 parameters)"), pname, as.integer(T),
                     CORSYMM_MAX_T), call. = FALSE)
    missing <- setdiff(seq_len(T), tm)
    if (length(missing))
        stop(sprintf("corSymm(): the positions must be 1, 2, ..., T: %s never occurs", missing[1L]), call. = FALSE)
    seen <- matrix(FALSE, T, T)
    for (v in split(tm, as.integer(g))) seen[v, v] <- TRUE
    if (!all(seen)) {
        ij <- which(!seen, arr.ind = TRUE)[1L, ]
        stop(sprintf(paste0("corSymm(): positions %d and %d never occur in the same group: their correlation ",
                            "is not estimable"), min(ij), max(ij)), call. = FALSE)
    }
}

## ARMA(p, q) has p + q parameters; a group spanning L time units shows the
## autocorrelations at lags 1..L at most, so p + q > L cannot be estimated.
arma_check_lags <- function(cor, tm, g) {
    L <- max(vapply(split(tm, as.integer(g)), function(v) max(v) - min(v), 1))
    if (cor$p + cor$q > L)
        stop(sprintf(paste0("corARMA(p = %d, q = %d): %d parameters, but the largest lag within a group is %d: ",
                            "they are not estimable"), cor$p, cor$q, cor$p + cor$q, as.integer(L)), call. = FALSE)
}

## nlme's lme gives a correlation without a grouping (form = ~ 1, the
## default of its constructors) the innermost grouping of the random
## effects: here the grouping factor nested in every other one (terms come
## by decreasing levels, so the first such is the finest).  Crossed
## groupings have none.
## Whether factor a is nested in factor b: each level of a meets one of b.
is_nested_in <- function(a, b) {
    ka <- as.integer(a)
    !anyDuplicated(ka[!duplicated(ka + (as.integer(b) - 1) * max(ka))])
}

## The random-effects term nested in every other one (the innermost
## grouping), or NULL when the groupings are crossed.
innermost_term <- function(reterms) {
    for (t in reterms)
        if (all(vapply(reterms, function(u) is_nested_in(t$factor, u$factor), TRUE))) return(t)
    NULL
}

resid_default_group <- function(parts, reterms, what) {
    ## without random effects (gls) the whole data are one group, as in nlme
    if (!length(reterms)) return(parts)
    t <- innermost_term(reterms)
    if (!is.null(t)) {
        parts$group <- str2lang(t$group)
        parts$group_factor <- t$factor
        rhs <- if (length(parts$covs)) Reduce(function(a, b) call("+", a, b), parts$covs) else 1
        parts$form <- stats::as.formula(call("~", call("|", rhs, parts$group)), env = globalenv())
        return(parts)
    }
    stop(sprintf(paste0("%s: the correlation has no grouping and the random-effects groupings are crossed ",
                        "(none is nested in the others): give it, e.g. form = ~ 1 | %s"),
                 what, reterms[[1L]]$group), call. = FALSE)
}

## Spatial correlations without a nugget: two observations of a group at the
## same place would be perfectly correlated.
spatial_check_distinct <- function(coords, o, gs, what) {
    key <- do.call(paste, c(list(gs), lapply(seq_len(ncol(coords)), function(j) coords[o, j])))
    if (anyDuplicated(key))
        stop(sprintf(paste0("%s: two observations of a group share their coordinates (zero distance): ",
                            "add a nugget (nugget = TRUE) or drop the duplicates"), what), call. = FALSE)
}

## A variance component: its covariate and strata, and their checks.
resid_var_component <- function(v, frame, env) {
    cls <- v$class
    what <- paste0(cls, "()")
    x <- if (length(v$parts$covs)) resid_numeric(v$parts$covs[[1L]], frame, env, what)
    strata <- if (!is.null(v$parts$group)) resid_factor(v$parts$group, frame, env, what)
    if (cls == "varIdent") {
        small <- table(strata) < 2L
        if (any(small))
            stop(sprintf("varIdent(): the stratum '%s' has one observation: its variance is not estimable",
                         names(which(small))[1L]), call. = FALSE)
        if (nlevels(strata) < 2L) stop("varIdent(): the strata have one level", call. = FALSE)
    }
    if (cls %in% c("varPower", "varConstPower") && any(x == 0))
        stop(sprintf("%s(): the variance covariate '%s' is zero for some observations (a zero variance)",
                     cls, deparse1(v$parts$covs[[1L]])), call. = FALSE)
    if (cls == "varFixed" && any(x <= 0))
        stop(sprintf("varFixed(): the variance covariate '%s' must be positive", deparse1(v$parts$covs[[1L]])),
             call. = FALSE)
    K <- if (is.null(strata)) 1L else nlevels(strata)
    npar <- switch(cls, varIdent = K - 1L, varPower = , varExp = K, varConstPower = 2L * K, varFixed = 0L)
    list(kind = RESID_VAR_KINDS[[cls]], x = x, strata = if (!is.null(strata)) as.integer(strata),
         nstrata = K, class = cls, form = v$parts$form, levels = levels(strata), npar = npar)
}

## Starting values of the correlation's parameters (optimizer scale: CAR1's
## is log(-log(Phi)), a spatial range's its log, ARMA's partial
## autocorrelations), nlme's where it has one.  A spatial likelihood is
## often multimodal in the range: the fit starts from nlme's start (90% of
## the smallest distance) and from the median distance, and keeps the
## better end point.  A list of starts.
resid_cor_start <- function(comp) {
    if (comp$class == "corARMA") return(arma_starts(comp$p, comp$q))
    if (comp$class == "corSymm") return(list(numeric(comp$npos * (comp$npos - 1L) / 2)))    # independence, as nlme
    if (!comp$class %in% c("corExp", "corGaus", "corSpher"))
        return(list(switch(comp$class, corAR1 = 0, corCAR1 = log(-log(0.2)), corCompSymm = 0)))
    r <- spatial_start_ranges(comp)
    lapply(r, function(ri) c(log(ri), if (comp$nugget) SPATIAL_NUGGET_START))
}

## ARMA: independence (nlme's start).  With both parts, independence lies
## on the ridge phi = -theta where the two factors cancel to white noise
## whatever their size, a saddle the optimizer may leave the wrong way: a
## second start has a clear autoregression (the first partial
## autocorrelation ARMA_START_PACF), and the better end point is kept.
ARMA_START_PACF <- 0.5
arma_starts <- function(p, q) {
    zero <- numeric(p + q)
    if (p == 0L || q == 0L) return(list(zero))
    list(zero, replace(zero, 1L, ARMA_START_PACF))
}

## The smallest nonzero distance within groups (times 0.9, as nlme) and
## their median (from the first SPATIAL_START_ROWS rows of each group).
SPATIAL_START_ROWS <- 200L
spatial_start_ranges <- function(comp) {
    d <- unlist(lapply(split(comp$order, as.integer(comp$g)[comp$order]), function(rows) {
        rows <- rows[seq_len(min(length(rows), SPATIAL_START_ROWS))]
        if (length(rows) > 1L) as.vector(stats::dist(comp$coords[rows, , drop = FALSE]))
    }))
    d <- d[d > 0]
    if (!length(d)) return(1)
    unique(c(0.9 * min(d), stats::median(d)))
}

resid_var_start <- function(comp) {
    rep(0, comp$npar)     # equal variances; varConstPower: const 1, power 0
}

## The structure for the C core and what the fit reports.
resid_structure <- function(cor, var, frame, env, reterms) {
    cc <- if (!is.null(cor)) resid_cor_component(cor, frame, env, reterms)
    vc <- lapply(var, resid_var_component, frame = frame, env = env)
    spec <- list(order = if (!is.null(cc)) cc$order, gstart = if (!is.null(cc)) as.integer(cc$gstart),
                 cor = if (!is.null(cc)) cc[c("kind", "x", "strata", "nstrata", "nugget", "p", "q")],
                 var = lapply(vc, function(v) v[c("kind", "x", "strata", "nstrata")]))
    cs <- if (!is.null(cc)) resid_cor_start(cc) else list(numeric(0))
    vs <- unlist(lapply(vc, resid_var_start))
    starts <- lapply(cs, function(s) as.double(c(s, vs)))
    list(spec = spec, cor = cc, var = vc, starts = starts, ncor = length(cs[[1L]]))
}

## ARMA's coefficients from the partial autocorrelations (src/resid_cor.c):
## Phi1..Phip, Theta1..Thetaq, as coef(corARMA, unconstrained = FALSE).
## Durbin-Levinson's step adds the order-j coefficient r_j to the others,
## a_i - r_j a_(j-i); the MA part's polynomial is taken at -z.
pacf_to_coef <- function(r) {
    a <- r
    for (j in seq_along(r)[-1L]) {
        i <- seq_len(j - 1L)
        a[i] <- a[i] - r[j] * a[j - i]
    }
    a
}
arma_coefficients <- function(par, p, q) {
    theta <- pacf_to_coef(par[p + seq_len(q)]) * (-1)^(seq_len(q) + 1)
    c(setNames(pacf_to_coef(par[seq_len(p)]), sprintf("Phi%d", seq_len(p))),
      setNames(theta, sprintf("Theta%d", seq_len(q))))
}

## corSymm's correlations (src/resid_cor.c: C = L L', row i of L from the
## partial correlations z_i1..z_i,i-1), the lower triangle by columns as
## coef(corSymm, unconstrained = FALSE), named by the positions' pairs.
corsymm_matrix <- function(z, T) {
    Z <- matrix(0, T, T)
    Z[lower.tri(Z)] <- z
    L <- diag(T)
    for (i in seq_len(T)[-1L]) {
        rem <- cumprod(c(1, 1 - Z[i, seq_len(i - 1L)]^2))
        L[i, seq_len(i)] <- c(Z[i, seq_len(i - 1L)], 1) * sqrt(rem)
    }
    tcrossprod(L)
}
corsymm_correlations <- function(z, T) {
    C <- corsymm_matrix(z, T)
    ij <- which(lower.tri(C), arr.ind = TRUE)
    setNames(C[lower.tri(C)], sprintf("Rho(%d,%d)", ij[, 1L], ij[, 2L]))
}

## The optimizer's parameters as nlme reports them: the correlation's
## (Phi, Rho, range and nugget) and each variance function's (the sd ratios
## of varIdent, powers, exponents, varConstPower's const and power).
resid_report <- function(rs, par) {
    corpar <- NULL
    if (!is.null(rs$cor)) {
        p <- par[seq_len(rs$ncor)]
        corpar <- switch(rs$cor$class, corAR1 = c(Phi = p), corCAR1 = c(Phi = exp(-exp(p))), corCompSymm = c(Rho = p),
                         corARMA = arma_coefficients(p, rs$cor$p, rs$cor$q),
                         corSymm = corsymm_correlations(p, rs$cor$npos),
                         c(range = exp(p[1L]), if (rs$cor$nugget) c(nugget = p[2L])))
    }
    at <- rs$ncor
    varpar <- lapply(rs$var, function(v) {
        p <- par[at + seq_len(v$npar)]
        at <<- at + v$npar
        lv <- v$levels
        switch(v$class,
               varIdent = setNames(exp(p), lv[-1L]),
               varPower = setNames(p, if (is.null(lv)) "power" else lv),
               varExp = setNames(p, if (is.null(lv)) "expon" else lv),
               varConstPower = {
                   K <- length(p) / 2
                   setNames(c(exp(p[seq_len(K)]), p[K + seq_len(K)]),
                            if (is.null(lv)) c("const", "power")
                            else c(paste0("const.", lv), paste0("power.", lv)))
               },
               varFixed = numeric(0))
    })
    list(corpar = corpar, varpar = varpar)
}
