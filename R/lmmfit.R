#' Fit a linear mixed-effects model
#'
#' Fits a linear mixed-effects model by REML or maximum likelihood, with the
#' formula syntax of \code{lme4::lmer}: random-effects terms \code{(expr | g)},
#' uncorrelated terms \code{(expr || g)}, nested \code{(1 | a/b)} and
#' interaction \code{(1 | a:b)} grouping, several terms, crossed or nested.
#'
#' The cross-products of the data are formed once in C; every evaluation of the
#' profiled deviance then works on them alone, with a blocked Cholesky
#' factorisation whose structure is found once per fit: the largest grouping
#' factor, and each later one in which all before it are nested, block
#' diagonal (no dense block for nested designs of any depth); the crossed
#' terms after them sparse in a minimum-degree order when partly crossed,
#' else dense (LAPACK's \code{dpotrf} for small dense blocks, a blocked
#' Cholesky kernel of the package's own for large ones).  The option
#' \code{lmmfit.max_stages = 1} keeps every term after the first in the
#' dense block, as lmmfit 0.2.0 did (for comparisons).  The covariance parameters are optimised
#' in C by a bound-constrained quasi-Newton method (L-BFGS-B) followed by
#' Newton steps with a finite-difference Hessian, in parameters whitened term
#' by term (so the fit does not depend on the units or origin of a slope
#' covariate).  Models with many covariance parameters are searched with the
#' exact gradient of the criterion (from the selected inverse of the
#' random-effects block), and from 100,000 rows the end point gets Newton
#' steps with it and \code{optinfo$gradient} is the exact gradient.
#' Boundary points are checked to second order (the deviance's
#' curvature along a zero column of a relative covariance factor), a fit that
#' ends singular is searched again from the interior, and one that ends inside
#' is searched again from a boundary face it nearly reaches; a fit whose end
#' point did not pass these checks warns (\code{optinfo$settled}).
#' Grouping factors \code{a:b} and \code{a/b} have one level per combination
#' that occurs, as in lme4.
#'
#' @param formula a two-sided formula with at least one random-effects term;
#'   with a residual structure (\code{correlation}, or a variance function in
#'   \code{weights}) it may have none, for nlme's generalised least-squares
#'   model (\code{nlme::gls}): \code{lmmfit(y ~ x, data, correlation =
#'   nlme::corCompSymm(form = ~ 1 | g))}.
#' @param data a data frame containing the variables in \code{formula}; or data
#'   that stay where they are, fitted from the sums the fit needs: a table in a
#'   database (\code{\link{lmm_db}(con, "table")} or a dbplyr table) or CSV
#'   files (\code{\link{lmm_csv}(files)}).  Such fits take \code{weights} as a
#'   column name and refuse \code{subset}, \code{na.action}, \code{offset},
#'   \code{contrasts}, \code{correlation} and \code{start} by name.
#' @param REML logical: fit by restricted maximum likelihood (default) or by
#'   maximum likelihood.
#' @param weights optional prior weights (positive), or nlme's variance
#'   function: \code{nlme::varIdent(form = ~ 1 | stratum)}, \code{varPower(form
#'   = ~ v)}, \code{varExp}, \code{varConstPower} (each optionally by stratum,
#'   \code{~ v | stratum}), \code{varFixed(~ v)} and \code{varComb()} of them.
#'   Variance functions of the fitted values are not supported.  See
#'   \code{\link{varpar}}.
#' @param subset optional expression selecting the rows to use.
#' @param na.action a function for missing values (default \code{getOption("na.action")}).
#' @param offset optional offset; \code{offset()} terms in the formula are also honoured.
#' @param contrasts optional list of contrasts for factors in the fixed part.
#' @param control a list from \code{\link{lmmfit_control}}, or lme4's
#'   \code{lme4::lmerControl()}: its data checks (\code{check.nobs.vs.nlev},
#'   \code{check.nlev.gtr.1}, \code{check.nlev.gtreq.5},
#'   \code{check.nobs.vs.nRE} with \code{"ignore"}, \code{"warning"} or
#'   \code{"stop"}; \code{check.rankX}; \code{check.scaleX} with
#'   \code{"ignore"}, \code{"warning"} or \code{"stop"}) are applied with
#'   lme4's messages and actions, and the tolerances and actions
#'   (\code{"ignore"}, \code{"message"}, \code{"warning"}, \code{"stop"}) of
#'   \code{check.conv.grad} and \code{check.conv.singular} are used.  Other
#'   settings (\code{optimizer}, \code{optCtrl}, \code{calc.derivs},
#'   \code{restart_edge}, \code{boundary.tol}, \code{use.last.params}, the
#'   rescaling options of \code{check.scaleX}, ...) are refused with an error
#'   naming them when they differ from lme4's defaults.
#' @param correlation optional residual correlation structure within groups:
#'   \code{ar1(~ time | id)}, or nlme's \code{corAR1}, \code{corCAR1}
#'   (real-valued times), \code{corCompSymm}, \code{corExp},
#'   \code{corGaus}, \code{corSpher} (coordinates \code{~ x + y | g},
#'   optionally \code{nugget = TRUE}), \code{corARMA(p = , q = )} (integer
#'   times, gaps allowed, or \code{~ 1 | g}: the row order) and
#'   \code{corSymm} (a general correlation of positions 1, ..., T, T at most
#'   20).  The grouping must be nested in every random-effects grouping
#'   factor; a form without one (nlme's default \code{~ 1}) takes the
#'   innermost random-effects grouping, as \code{nlme::lme} does.  Structures combine with any
#'   random-effects part and with a variance function; each evaluation
#'   whitens the data by the structure in C.  Fits with a structure have
#'   Satterthwaite degrees of freedom on request, \code{intervals()},
#'   \code{profile()} of the variance parameters, \code{parboot()} and
#'   \code{pbtest()}; not Kenward-Roger's degrees of freedom.  See
#'   \code{\link{corpar}}.
#' @param start starting values of the covariance parameters, as lme4's
#'   \code{start}: a numeric vector of theta in lme4's order and
#'   parametrisation (as \code{getME(lmer_fit, "theta")}; matched by name when
#'   named, by lme4's order of the terms otherwise) or
#'   \code{list(theta = ...)}.  Diagonal elements must be >= 0.  Not
#'   available with \code{correlation}.
#' @return An object of class \code{"lmmfit"}.
#' @examples
#' data(Orthodont, package = "nlme")
#' fit <- lmmfit(distance ~ age + (age | Subject), data = Orthodont)
#' summary(fit)
#' @export
lmmfit <- function(formula, data = NULL, REML = TRUE, weights, subset, na.action,
                   offset, contrasts = NULL, control = lmmfit_control(),
                   correlation = NULL, start = NULL) {
    call <- match.call()
    ## a table in a database, or files: fitted from their aggregates
    if (is_db_data(data)) return(lmmfit_outside(formula, data, REML, control, call))
    if (!is.null(start) && !is.null(correlation))
        stop("'start' cannot be combined with 'correlation =': the residual correlation structure's fit ",
             "starts from its own values; drop 'start'", call. = FALSE)
    if (!is.null(start) && !missing(weights) && !is.null(variance_function_arg(call$weights, data, parent.frame())))
        stop("'start' cannot be combined with a variance function ('weights ='): the fit starts from its own ",
             "values; drop 'start'", call. = FALSE)
    if (!is.logical(REML) || length(REML) != 1L || is.na(REML))
        stop("'REML' must be TRUE or FALSE", call. = FALSE)
    ## lme4's conventions: a formula given as a string, '.' on the right side
    formula <- lme4_formula(formula, data, parent.frame())
    ## lme4's lmerControl(): its data checks honoured, other settings refused by name
    checks <- NULL
    if (inherits(control, "merControl")) {
        lc <- lme4_control(control)
        control <- lc$control
        checks <- lc$checks
    }
    ## nlme's weights = varFunc (a variance function) rather than prior weights
    variance <- if (!missing(weights)) variance_function_arg(call$weights, data, parent.frame())
    fcall <- call
    if (!is.null(variance)) fcall$weights <- NULL
    structure_spec <- resid_parse(correlation, variance)
    ## wb(x, g) terms become ordinary columns of an augmented data frame.
    wbx <- wb_expand(formula, data, parent.frame())
    parsed <- parse_lmm_formula(if (is.null(wbx)) formula else wbx$formula,
                                random_optional = !is.null(structure_spec))
    ## without random effects, AR(1) is a structure like the others: the
    ## pieces path sums over the random effects' groups
    if (!length(parsed$terms)) structure_spec$ar1 <- NULL
    ## the structures' time, coordinate, covariate and group variables join the model frame
    if (!is.null(structure_spec))
        parsed$frame <- add_frame_terms(parsed$frame, resid_frame_vars(structure_spec$cor, structure_spec$var))

    frame <- lmm_model_frame(fcall, parsed$frame, data, parent.frame(), wbx$data)
    n <- nrow(frame)

    ## the response column itself: model.response() would copy it to name it
    y <- if (attr(attr(frame, "terms"), "response") == 1L) frame[[1L]]
    ## as lme4: a one-column matrix, or a logical response (as 0/1)
    if (is.matrix(y) && ncol(y) == 1L) y <- as.vector(y)
    if (is.logical(y)) y <- as.double(y)
    ## (y[1] first: all(y == 0) would allocate n logicals on every fit)
    if (is.numeric(y) && is.null(dim(y)) && length(y) && isTRUE(y[1L] == 0) && isTRUE(all(y == 0)) &&
        is.null(model.offset(frame)))
        stop("the response is zero everywhere: lmmfit does not fit a response without variation ",
             "(lme4 returns beta = 0 and sigma = 0 for it)", call. = FALSE)
    if (is.null(y) || !is.numeric(y) || !is.null(dim(y)))
        stop("the response must be a numeric vector", call. = FALSE)
    if (!is.double(y) || !is.null(attributes(y))) y <- as.double(y)
    if (!.Call(C_lmm_all_finite, y))
        stop("the response has NA, NaN or infinite values after na.action", call. = FALSE)

    fixed_terms <- terms(parsed$fixed, data = frame)
    X <- model.matrix(fixed_terms, frame, contrasts.arg = contrasts)
    if (!.Call(C_lmm_all_finite, X))
        stop("the fixed-effects model matrix has NA, NaN or infinite values", call. = FALSE)
    xcontr <- attr(X, "contrasts")
    X <- drop_aliased(X, if (is.null(checks$check.rankX)) "message+drop.cols" else checks$check.rankX)
    if (is.null(checks)) check_scales(X) else lme4_check_scaleX(X, checks$check.scaleX)
    dropped <- attr(X, "dropped")
    if (!is.null(dropped)) attr(X, "dropped") <- NULL   # only then: X may be shared

    w <- model.weights(frame)
    if (!is.null(w)) {
        if (!is.numeric(w) || any(!is.finite(w)) || any(w < 0))
            stop("'weights' must be finite and non-negative", call. = FALSE)
        if (any(w == 0))
            stop("zero weights are not supported: drop those observations with 'subset'", call. = FALSE)
        w <- as.double(w)
    }
    off <- model.offset(frame)
    if (!is.null(off)) {
        if (length(off) != n || any(!is.finite(off)))
            stop("the offset must be finite, one value per observation", call. = FALSE)
        off <- as.double(off)
    }

    reterms <- build_reterms(parsed$terms, frame, parsed$env, X, checks)
    if (n <= ncol(X)) stop(sprintf("%d observations cannot estimate %d fixed effects and the variance components",
                                   n, ncol(X)), call. = FALSE)
    theta0 <- lme4_start(start, reterms)
    ## ar1()'s pieces need every term nested in its grouping; crossed terms
    ## take the general path
    if (!is.null(structure_spec$ar1) && ar1_crossed(structure_spec$cor, frame, parsed$env, reterms))
        structure_spec$ar1 <- NULL

    fit <- if (is.null(structure_spec)) lmm_fit_core(X, y, w, off, reterms, REML, control, theta0 = theta0)
           else if (!is.null(structure_spec$ar1))
               ar1_fit_core(X, y, w, off, reterms, REML, control, structure_spec$ar1, frame, parsed$env)
           else resid_fit_core(X, y, w, off, reterms, REML, control,
                               resid_structure(structure_spec$cor, structure_spec$var, frame, parsed$env,
                                               reterms))
    fit <- structure(c(fit, list(
        call = call, formula = formula, fixed_terms = fixed_terms, frame = frame,
        X = X, y = y, weights = w, offset = off, reterms = reterms, REML = REML,
        dropped = dropped, contrasts = xcontr, control = control,
        na.action = attr(frame, "na.action"), wb = wbx$info,
        re_specs = parsed$terms)),
        class = "lmmfit")
    ## (a control list made before the actions existed: lme4's defaults)
    act <- function(a, default) if (is.null(a)) default else a
    if (isSingular(fit, control$singular_tol))
        lme4_check_action(act(control$singular_action, "message"),
                          "boundary (singular) fit: see help('isSingular')")
    for (m in convergence_messages(fit)) lme4_check_action(act(control$check_grad_action, "warning"), m)
    fit
}

#' Control settings for lmmfit
#'
#' @param maxit maximum number of optimizer iterations.
#' @param factr L-BFGS-B convergence tolerance on the relative reduction of the
#'   deviance, in units of machine epsilon.
#' @param fdstep relative step of the finite-difference gradient.
#' @param singular_tol a fit is reported singular when a diagonal element of a
#'   relative covariance factor is below this value (as \code{lme4::isSingular}).
#' @param check_grad_tol warn when the gradient at the optimum exceeds this.
#' @param check_grad_action,singular_action what a failed convergence check or
#'   a singular fit does, as lme4's \code{check.conv.grad} and
#'   \code{check.conv.singular} actions: \code{"ignore"}, \code{"message"},
#'   \code{"warning"} or \code{"stop"}.
#' @param pirls_maxit the most PIRLS iterations per evaluation of a
#'   generalized model's criterion (\code{\link{glmmfit}}).
#' @return A list of settings.
#' @export
lmmfit_control <- function(maxit = 1000L, factr = 10, fdstep = 1e-6, singular_tol = 1e-4,
                           check_grad_tol = 2e-3, check_grad_action = "warning",
                           singular_action = "message", pirls_maxit = 200L) {
    actions <- c("ignore", "message", "warning", "stop")
    check_grad_action <- match.arg(check_grad_action, actions)
    singular_action <- match.arg(singular_action, actions)
    list(maxit = maxit, factr = factr, pgtol = 0, fdstep = fdstep,
         singular_tol = singular_tol, check_grad_tol = check_grad_tol,
         check_grad_action = check_grad_action, singular_action = singular_action,
         pirls_maxit = pirls_maxit)
}

## Drop aliased columns of X, as lm() does, with a message.  For a tall X the
## rank decision is made on the triangular factor of X (the same column
## geometry, p x p), which spares qr() a copy of X.
## action: lme4's check.rankX ("message+drop.cols", the default, also
## "warn+drop.cols", "silent.drop.cols", "stop.deficient"; "ignore" keeps a
## full-rank X and stops on a deficient one, which lmmfit cannot fit).
drop_aliased <- function(X, action = "message+drop.cols") {
    p <- ncol(X)
    if (p == 0L) return(X)
    tall <- nrow(X) > 65536L && nrow(X) > 16 * p
    qx <- qr(if (tall) .Call(C_lmm_x_rfactor, X) else X, tol = LME4_RANKX_TOL)
    if (qx$rank < p) {
        if (action == "stop.deficient")
            stop(sprintf(paste0("the fixed-effects model matrix is column rank deficient (rank(X) = %d < %d = p);\n",
                                "the fixed effects will be jointly unidentifiable"), qx$rank, p), call. = FALSE)
        if (action == "ignore")
            stop(sprintf(paste0("the fixed-effects model matrix is column rank deficient (rank(X) = %d < %d = p): ",
                                "lmmfit cannot fit it as it stands, so lmerControl(check.rankX = \"ignore\") is not ",
                                "supported here; use the default \"message+drop.cols\""), qx$rank, p), call. = FALSE)
        keep <- sort(qx$pivot[seq_len(qx$rank)])
        dropped <- colnames(X)[-keep]
        signal <- switch(action, "warn+drop.cols" = function(m) warning(m, call. = FALSE),
                         "silent.drop.cols" = function(m) NULL, message)
        signal(sprintf("fixed-effect model matrix is rank deficient so dropping %d column%s / coefficient%s: %s",
                        length(dropped), if (length(dropped) > 1L) "s" else "",
                        if (length(dropped) > 1L) "s" else "", paste(dropped, collapse = ", ")))
        assign <- attr(X, "assign")
        X <- X[, keep, drop = FALSE]
        attr(X, "assign") <- assign[keep]
        attr(X, "dropped") <- dropped
    }
    X
}

## The numerical fit from the model's matrices.
##
## The optimiser works on cross-products of better-conditioned data: the
## non-intercept columns of X centred and the response replaced by its
## least-squares residual.  Neither changes the deviance, but both shrink
## y'y, the number the penalised residual sum of squares is subtracted from,
## and with it the rounding noise of every deviance evaluation (20-60 fold on
## the reference problems), which would otherwise limit how well theta is
## located on a flat optimum.  The C code applies the transformation row by
## row, so no copy of X or y is made.  The stored cross-products are mapped
## back to the original data, so everything downstream sees X and y as given.
lmm_fit_core <- function(X, y, w, off, reterms, REML, control, theta0 = NULL) {
    fit_from_stats(stats_from_data(X, y, w, off, reterms), reterms, REML, control, theta0)
}

## The statistics the fit core takes, from the data: the cross-products of
## the conditioned data (xprod) and the conditioning (centring); with slopes
## far from their origin, also the cross-products with those columns
## centred (centred_xprod) and that centring (slope_centring).
stats_from_data <- function(X, y, w, off, reterms) {
    yo <- if (is.null(off)) y else y - off
    if (!is.double(X)) storage.mode(X) <- "double"
    cond <- conditioning_transform(X, yo)
    codes <- lapply(reterms, `[[`, "factor")
    nlev <- vapply(reterms, `[[`, 1L, "nlev")
    xp <- .Call(C_lmm_crossprod, X, yo, w, codes, lapply(reterms, `[[`, "Z"), nlev,
                cond$xshift, cond$b0, max_stages())
    zc <- re_centring(reterms)
    xo <- if (!is.null(zc))
        .Call(C_lmm_crossprod, X, yo, w, codes, zc$Z, nlev, cond$xshift, cond$b0, max_stages())
    list(xprod = xp, centring = cond, slope_centring = zc, centred_xprod = xo, fixed = colnames(X))
}

## No conditioning: the statistics are of the data as given.
identity_centring <- function(p) list(xshift = numeric(p), T = diag(p), Tinv = diag(p), b0 = numeric(p))

## The fit core, from the statistics alone (stats_from_data()'s list; terms:
## the random-effects terms, for their names and columns).  sigma: NULL, the
## residual sd profiled out, or its known value (meta-analysis: 1, the
## sampling variances in the weights).  theta_fixed: theta given (a moment
## estimator's), the solution there without optimising.
fit_from_stats <- function(st, terms, REML, control, theta0 = NULL, sigma = NULL,
                           theta_fixed = NULL) {
    xp <- with_tail_plan(st$xprod)
    cond <- st$centring
    zc <- st$slope_centring
    ## slopes far from their origin are optimised on the centred columns
    xo <- if (is.null(zc)) xp else with_tail_plan(st$centred_xprod)
    if (is.null(theta_fixed)) {
        if (is.null(theta0)) theta0 <- better_start(xp, terms, REML)
        if (!is.null(sigma)) control$sigma <- sigma
        opt <- .Call(C_lmm_optimize, xo, theta_centred(theta0, zc, TRUE), REML, control)
    } else opt <- list(theta = theta_centred(as.double(theta_fixed), zc, TRUE), feval = 0L,
                       convergence = 0L, message = "theta given", settled = TRUE)
    sol <- .Call(C_lmm_solution, xo, opt$theta, REML, sigma)
    if (!is.null(zc)) {
        opt$theta <- theta_centred(opt$theta, zc, FALSE)
        sol$u <- .Call(C_lmm_solution, xp, opt$theta, REML, sigma)$u
    }
    names(opt$theta) <- theta_names(terms)
    beta <- drop(cond$T %*% (sol$beta + cond$b0))
    list(xprod = untransform_xprod(xp, cond), optinfo = opt, theta = opt$theta,
         deviance_value = sol$deviance, beta = setNames(beta, st$fixed), u = sol$u,
         RX = sol$RX %*% cond$Tinv, pwrss = sol$pwrss, ldL2 = sol$ldL2, ldRX2 = sol$ldRX2)
}

## The conditioning: X T = X - xshift (T unit upper triangular: the
## intercept row holds minus the column means, which are xshift) and
## y - X T b0, b0 the least-squares coefficients on X T.  Only p x p pieces are
## formed here: b0 comes from X'X and X'y (it need only be close, the
## transformation is exact for any b0).
conditioning_transform <- function(X, y) {
    p <- ncol(X)
    T <- Tinv <- diag(p)
    xshift <- numeric(p)
    icpt <- match("(Intercept)", colnames(X))
    if (!is.na(icpt) && p > 1L) {
        others <- seq_len(p)[-icpt]
        m <- colMeans(X)[others]
        xshift[others] <- m
        T[icpt, others] <- -m
        Tinv[icpt, others] <- m
    }
    A <- crossprod(T, crossprod(X) %*% T)
    b0 <- tryCatch(drop(solve(A, crossprod(T, crossprod(X, y)))), error = function(e) rep(0, p))
    if (any(!is.finite(b0))) b0 <- rep(0, p)
    list(xshift = unname(xshift), T = T, Tinv = Tinv, b0 = unname(b0))
}

## Cross-products of the transformed data from those of the original:
## [Xc yc] = [X y] G with G = [T  -T b0; 0 1].
transform_xprod <- function(xp, cond) {
    p <- length(cond$b0)
    G <- rbind(cbind(cond$T, -drop(cond$T %*% cond$b0)), c(rep(0, p), 1))
    fwd <- function(A) if (length(A)) as.vector(crossprod(G, matrix(A, p + 1L))) else A
    xp$AX1 <- fwd(xp$AX1)
    xp$AX2 <- fwd(xp$AX2)
    xp$AXX <- as.vector(crossprod(G, matrix(xp$AXX, p + 1L)) %*% G)
    xp
}

## Cross-products of the original [X y] from those of the transformed data:
## [X y] = [Xc yc] G^{-1} with G^{-1} = [T^{-1} b0; 0 1].
untransform_xprod <- function(xp, cond) {
    p <- length(cond$b0)
    Ginv <- rbind(cbind(cond$Tinv, cond$b0), c(rep(0, p), 1))
    back <- function(A) if (length(A)) as.vector(crossprod(Ginv, matrix(A, p + 1L))) else A
    xp$AX1 <- back(xp$AX1)
    xp$AX2 <- back(xp$AX2)
    xp$AXX <- as.vector(crossprod(Ginv, matrix(xp$AXX, p + 1L)) %*% Ginv)
    xp
}

## The model frame of a fit's call: every variable of the fixed and random
## parts (frame_formula) at once, so that weights, subset, offset and
## na.action apply to all of them; unused levels dropped.  expanded: a data
## frame replacing the call's data (wb()'s expansion), else NULL.
lmm_model_frame <- function(call, frame_formula, data, env, expanded = NULL) {
    frame <- simple_model_frame(frame_formula, if (is.null(expanded)) data else expanded, call)
    if (is.null(frame)) {
        mf <- call[c(1L, match(c("data", "weights", "subset", "na.action", "offset"), names(call), 0L))]
        mf[[1L]] <- quote(stats::model.frame)
        mf$formula <- frame_formula
        mf$drop.unused.levels <- TRUE
        if (!is.null(expanded)) mf$data <- expanded
        frame <- eval(mf, env)
    }
    if (nrow(frame) == 0L)
        stop("no observations left to fit (zero rows after subset and na.action)", call. = FALSE)
    frame
}

## model.frame() for the common case, without its copies: a data frame
## holding every variable as a plain column, no subset, weights, offset or
## na.action argument, no missing values and no unused factor levels.  NULL
## when any of that does not hold (model.frame() then does the work).
simple_model_frame <- function(frame_formula, data, call) {
    if (!is.data.frame(data) || any(c("subset", "weights", "offset", "na.action") %in% names(call)))
        return(NULL)
    tt <- terms(frame_formula)
    vars <- as.list(attr(tt, "variables"))[-1L]
    if (!all(vapply(vars, is.name, NA))) return(NULL)
    vars <- vapply(vars, as.character, "")
    if (!all(vars %in% names(data)) || anyDuplicated(names(data)[names(data) %in% vars])) return(NULL)
    frame <- data[vars]
    for (v in frame) {
        if (!is.null(dim(v))) return(NULL)
        ## anyNA() on a factor would allocate: lmm_levels_used() also sees NA
        if (if (is.factor(v)) !.Call(C_lmm_levels_used, v) else anyNA(v)) return(NULL)
    }
    attr(frame, "terms") <- tt
    frame
}
