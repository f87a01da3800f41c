## lme4's argument conventions in lmmfit(): `start =` and
## `control = lme4::lmerControl(...)`.

## ---- start -------------------------------------------------------------------

## The starting theta from lmer's `start` argument: a numeric vector of theta
## in lme4's order (below), or a list with the single component `theta`.  A
## named vector is matched by name instead (lme4's names, as
## getME(lmer_fit, "theta") gives them).  NULL when `start` is NULL.
##
## lme4's order of the terms: the formula's, unless the numbers of levels of
## the grouping factors are not already non-increasing in it; then the terms
## sorted by decreasing number of levels, ties in reverse formula order
## (lme4 reverses an increasing sort).  lmmfit sorts ties by columns
## instead, so the two orders can differ; within a term both take the lower
## triangle of the relative covariance factor by columns.
lme4_theta_order <- function(reterms) {
    sizes <- vapply(reterms, function(t) (ncol(t$Z) * (ncol(t$Z) + 1L)) %/% 2L, 1L)
    ends <- cumsum(sizes)
    block <- lapply(seq_along(reterms), function(j) seq_len(sizes[j]) + ends[j] - sizes[j])
    ## theta index (lmmfit's order) of each element of lme4's theta
    unlist(block[lme4_term_order(reterms)])
}

## lme4's order of the terms (above) as indices into reterms: also the
## order of lme4's u and b, which simulate() draws in.
lme4_term_order <- function(reterms) {
    pos <- attr(reterms, "formula_pos")
    if (is.null(pos)) return(seq_along(reterms))
    nl_formula <- vapply(reterms, `[[`, 1L, "nlev")[order(pos)]
    lme4_terms <- if (any(diff(nl_formula) > 0L)) rev(order(nl_formula)) else seq_along(nl_formula)
    match(lme4_terms, pos)
}

lme4_start <- function(start, reterms) {
    if (is.null(start)) return(NULL)
    if (is.list(start)) {
        nm <- names(start)
        if (is.null(nm) || any(!nzchar(nm)) || !identical(nm, "theta"))
            stop(paste0("'start' as a list must have one component, 'theta' (lmer takes no other ",
                        "starting values); got: ",
                        if (is.null(nm)) "an unnamed list" else paste(sprintf("'%s'", nm), collapse = ", ")),
                 call. = FALSE)
        start <- start$theta
    }
    names_theta <- theta_names(reterms)
    nt <- length(names_theta)
    if (!is.numeric(start) || !is.null(dim(start)))
        stop(sprintf("'start' must be a numeric vector of %d theta values (%s), or list(theta = ...)",
                     nt, paste(names_theta, collapse = ", ")), call. = FALSE)
    if (length(start) != nt)
        stop(sprintf("'start' has %d values; the model has %d theta parameters (%s)",
                     length(start), nt, paste(names_theta, collapse = ", ")), call. = FALSE)
    if (!is.null(names(start)) && all(nzchar(names(start)))) {
        idx <- match(names_theta, names(start))
        if (anyNA(idx) || anyDuplicated(names(start)))
            stop(sprintf("'start' is named but its names are not the model's theta names (%s)",
                         paste(names_theta, collapse = ", ")), call. = FALSE)
        start <- start[idx]
    } else {
        ## lme4's order to lmmfit's
        start[lme4_theta_order(reterms)] <- start
    }
    start <- as.double(unname(start))
    if (any(!is.finite(start)))
        stop("'start' must hold finite values (no NA, NaN or Inf)", call. = FALSE)
    diag <- theta_is_diag(reterms)
    if (any(start[diag] < 0))
        stop(sprintf("'start': the diagonal elements of theta must be >= 0 (%s: %s)",
                     paste(names_theta[diag & start < 0], collapse = ", "),
                     paste(format(start[diag & start < 0]), collapse = ", ")), call. = FALSE)
    start
}

## ---- control = lmerControl() --------------------------------------------------

## The actions lmmfit takes for lme4's "ignore"/"warning"/"stop" checks.
LME4_CHECK_LEVELS <- c("ignore", "warning", "stop")
## lme4's threshold of check.scaleX: standard deviations of the continuous
## columns of X differing by more than this factor, or one beyond it from 1.
LME4_SCALEX_TOL <- 1000
## The rank tolerance lme4 (and drop_aliased()) use for X.
LME4_RANKX_TOL <- 1e-7

## Each checkControl setting lmmfit honours, with the values it can take.
LME4_CHECKS <- list(
    check.nobs.vs.nlev = LME4_CHECK_LEVELS,
    check.nlev.gtr.1 = LME4_CHECK_LEVELS,
    check.nlev.gtreq.5 = LME4_CHECK_LEVELS,
    check.nobs.vs.nRE = LME4_CHECK_LEVELS,
    check.rankX = c("message+drop.cols", "silent.drop.cols", "warn+drop.cols", "stop.deficient", "ignore"),
    check.scaleX = c("warning", "stop", "ignore"))

## Translate an lme4 lmerControl() into lmmfit's settings: list(control =
## lmmfit_control(...), checks = the data checks).  Settings lmmfit cannot
## honour are refused by name, but only when they differ from lme4's
## defaults, so that lmerControl() and lmerControl(check.nlev.gtreq.5 =
## "warning") work unchanged.
lme4_control <- function(control) {
    if (!inherits(control, "lmerControl"))
        stop(sprintf("'control' is an lme4 %s(): lmmfit fits linear mixed models; use lme4::lmerControl() or lmmfit_control()",
                     class(control)[1L]), call. = FALSE)
    if (!requireNamespace("lme4", quietly = TRUE))
        stop("'control' is an lme4 lmerControl() but package 'lme4' is not installed; use lmmfit_control()",
             call. = FALSE)
    def <- lme4::lmerControl()
    refuse <- function(what)
        stop(sprintf(paste0("control = lmerControl(%s): lmmfit cannot honour this setting (it has its own ",
                            "optimizer); leave it at lme4's default, or use lmmfit_control()"), what),
             call. = FALSE)
    show <- function(v) paste(deparse(v, width.cutoff = 60L), collapse = " ")
    for (nm in setdiff(names(control), c("checkControl", "checkConv")))
        if (!identical(control[[nm]], def[[nm]])) refuse(sprintf("%s = %s", nm, show(control[[nm]])))
    cc <- control$checkControl
    checks <- list()
    for (nm in names(cc)) {
        val <- cc[[nm]]
        ok <- LME4_CHECKS[[nm]]
        if (!is.null(ok) && is.character(val) && length(val) == 1L && val %in% ok) {
            checks[[nm]] <- val
        } else if (!identical(val, def$checkControl[[nm]])) {
            refuse(sprintf("%s = %s", nm, show(val)))
        }
    }
    conv <- control$checkConv
    dconv <- def$checkConv
    for (nm in names(conv)) {
        for (el in names(conv[[nm]])) {
            if (nm %in% c("check.conv.grad", "check.conv.singular") && el %in% c("tol", "action")) next
            if (!identical(conv[[nm]][[el]], dconv[[nm]][[el]]))
                refuse(sprintf("%s = list(%s = %s)", nm, el, show(conv[[nm]][[el]])))
        }
    }
    tol_ok <- function(x) is.numeric(x) && length(x) == 1L && is.finite(x) && x >= 0
    gtol <- conv$check.conv.grad$tol
    stol <- conv$check.conv.singular$tol
    if (!tol_ok(gtol)) refuse(sprintf("check.conv.grad = list(tol = %s)", show(gtol)))
    if (!tol_ok(stol)) refuse(sprintf("check.conv.singular = list(tol = %s)", show(stol)))
    ## lme4's actions for the two checks lmmfit makes
    actions <- c("ignore", "message", "warning", "stop")
    ga <- conv$check.conv.grad$action
    sa <- conv$check.conv.singular$action
    if (!(is.character(ga) && length(ga) == 1L && ga %in% actions))
        refuse(sprintf("check.conv.grad = list(action = %s)", show(ga)))
    if (!(is.character(sa) && length(sa) == 1L && sa %in% actions))
        refuse(sprintf("check.conv.singular = list(action = %s)", show(sa)))
    list(control = lmmfit_control(check_grad_tol = gtol, singular_tol = stol,
                                  check_grad_action = ga, singular_action = sa),
         checks = checks)
}

## Signal `msg` as the check's action asks ("ignore": nothing).
lme4_check_action <- function(action, msg) {
    switch(action, message = message(msg), warning = warning(msg, call. = FALSE),
           stop = stop(msg, call. = FALSE))
    invisible()
}

## lme4's checks of the grouping factors and random-effects dimensions
## (check.nlev.gtr.1, check.nobs.vs.nlev, check.nlev.gtreq.5 on the distinct
## grouping factors, then check.nobs.vs.nRE on each term), with lme4's
## messages.
lme4_check_reterms <- function(terms, n, checks) {
    grp <- vapply(terms, `[[`, "", "group")
    nlev <- vapply(terms, `[[`, 1L, "nlev")
    keep <- !duplicated(grp)
    grp <- grp[keep]; nlev <- nlev[keep]
    act <- function(nm) if (is.null(checks[[nm]])) "ignore" else checks[[nm]]
    if (any(nlev < 2L))
        lme4_check_action(act("check.nlev.gtr.1"), "grouping factors must have > 1 sampled level")
    if (any(nlev >= n))
        lme4_check_action(act("check.nobs.vs.nlev"),
                          sprintf(paste0("number of levels of each grouping factor must be < number of ",
                                         "observations (problems: %s)"), paste(grp[nlev >= n], collapse = ", ")))
    if (any(nlev < 5L))
        lme4_check_action(act("check.nlev.gtreq.5"),
                          "grouping factors with < 5 sampled levels may give unreliable estimates")
    for (t in terms) {
        q <- t$nlev * ncol(t$Z)
        if (n <= q)
            lme4_check_action(act("check.nobs.vs.nRE"),
                              sprintf(paste0("number of observations (=%d) <= number of random effects (=%d) ",
                                             "for term (%s); the random-effects parameters and the residual ",
                                             "variance (or scale parameter) are probably unidentifiable"),
                                      n, q, t$label))
    }
    invisible()
}

## lme4's check.scaleX: a warning (or error) when the continuous columns of X
## (those not all 0 or 1) have standard deviations more than a factor
## LME4_SCALEX_TOL apart, or one of them beyond that factor from 1.
lme4_check_scaleX <- function(X, action) {
    if (identical(action, "ignore") || !is.matrix(X) || ncol(X) == 0L) return(invisible(FALSE))
    cont <- apply(X, 2L, function(z) !all(z %in% c(0, 1)))
    if (!any(cont)) return(invisible(FALSE))
    sds <- apply(X[, cont, drop = FALSE], 2L, stats::sd)
    ratios <- abs(log(outer(sds, sds, "/")[lower.tri(diag(length(sds)))]))
    if (any(c(ratios, abs(log(sds))) > log(LME4_SCALEX_TOL))) {
        lme4_check_action(action, "Some predictor variables are on very different scales: consider rescaling")
        return(invisible(TRUE))
    }
    invisible(FALSE)
}
