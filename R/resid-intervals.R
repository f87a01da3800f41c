## Approximate confidence intervals as nlme's intervals(): fixed effects
## with t quantiles, the variance-covariance parameters from the inverse
## Hessian of the log-likelihood on nlme's unconstrained scale of each
## parameter (nlme's apVar), est +- z se there, mapped back.
##
## Written from nlme's documented definitions (Pinheiro & Bates 2000, 2.4.3
## and 4.2.2; ?intervals.lme, ?corClasses, ?pdNatural), not from its code.
## The Hessian is ours: Richardson central differences of the C deviance in
## phi = (theta, structure optimizer parameters, sigma) (resid_derivatives()
## in R/resid-ddf.R), carried to nlme's scale psi by the delta method,
## Cov(psi) = J 2 H^-1 J', J = dpsi / dphi.  At the optimum this is the
## inverse Hessian in psi itself (the gradient vanishes), which nlme takes.

#' @importFrom nlme intervals
#' @export
nlme::intervals

## Relative step of the Jacobian dpsi / dphi (a cheap closed-form map in R):
## central differences with one Richardson step err O(h^4) ~ 1e-12 and
## rounding ~ eps / h ~ 1e-13.
INTERVALS_JAC_STEP <- 1e-3

## exp() stays finite below this: compound symmetry's map back reaches its
## bounds -a and 1 at u = -Inf, Inf instead of NaN.
COMPSYMM_EXP_CAP <- 700

## nlme's unconstrained scale of one reported parameter: the map to it (to)
## and back (from).  log: standard deviations, sd ratios, constants, a
## spatial range, sigma; fisher: log((1 + r) / (1 - r)) for random-effect
## correlations (pdNatural), corAR1's Phi and corSymm's correlations; logit: corCAR1's Phi and a
## nugget; compsymm: log((rho + a) / (1 - rho)), a = 1 / (M - 1) for the
## largest group size M (corCompSymm's bound is rho > -a).
nlme_scale <- function(kind, a = NULL) {
    switch(kind,
           log = list(to = log, from = exp),
           identity = list(to = identity, from = identity),
           fisher = list(to = function(x) log((1 + x) / (1 - x)), from = function(u) tanh(u / 2)),
           logit = list(to = stats::qlogis, from = stats::plogis),
           compsymm = list(to = function(x) log((x + a) / (1 - x)),
                           from = function(u) { e <- exp(pmin(pmax(u, -COMPSYMM_EXP_CAP), COMPSYMM_EXP_CAP))
                                                (e - a) / (e + 1) }))
}

## The correlation structure's parameters: class and scales.  Each scale
## also has opt, the map from nlme's unconstrained value to the optimizer's
## (R/resid-components.R: AR1 Phi itself, CAR1 log(-log Phi), compound
## symmetry Rho, a spatial range's log, a nugget itself), for the profiles.
nlme_cor_scales <- function(fit) {
    ar1 <- c(nlme_scale("fisher"), list(opt = function(u) tanh(u / 2)))
    if (!is.null(fit$ar1)) return(list(class = "corAR1", scales = list(ar1), elementwise = TRUE))
    cc <- fit$resid$cor
    if (is.null(cc)) return(NULL)
    a <- if (cc$class == "corCompSymm") 1 / (max(diff(cc$gstart)) - 1)
    sc <- switch(cc$class,
                 corAR1 = list(ar1),
                 corCAR1 = list(c(nlme_scale("logit"), list(opt = function(u) log(log1p(exp(-u)))))),
                 corCompSymm = { cs <- nlme_scale("compsymm", a = a); list(c(cs, list(opt = cs$from))) },
                 corExp = , corGaus = , corSpher =
                     c(list(c(nlme_scale("log"), list(opt = identity))),
                       if (isTRUE(cc$nugget == 1L)) list(c(nlme_scale("logit"), list(opt = stats::plogis)))),
                 corARMA = rep(list(ar1), cc$p + cc$q),
                 corSymm = rep(list(ar1), cc$npos * (cc$npos - 1L) / 2),
                 stop(sprintf("intervals(): the correlation structure %s() is not handled", cc$class),
                      call. = FALSE))
    out <- list(class = cc$class, scales = sc,
                elementwise = switch(cc$class, corARMA = cc$p <= 1L && cc$q <= 1L, corSymm = cc$npos == 2L, TRUE))
    if (cc$class == "corARMA") out$joint <- nlme_arma_joint(cc)
    out
}

## corARMA: nlme's unconstrained parameters are the partial
## autocorrelations (the optimizer's) on the fisher scale, not maps of each
## reported coefficient (Pinheiro & Bates 2000, 6.3.2).  psi(par): the
## optimizer's to nlme's; back(u): nlme's to the coefficients.  corSymm's
## intervals are on the fisher scale of each correlation (nlme's natural
## parametrisation for them), elementwise.  elementwise (nlme_cor_scales()):
## each reported parameter is a map of one optimizer parameter (opt), as
## the profiles need: corARMA with p, q <= 1 (a first partial
## autocorrelation is the coefficient), corSymm of 2 positions.
nlme_arma_joint <- function(cc) {
    f <- nlme_scale("fisher")
    list(psi = f$to, back = function(u) arma_coefficients(f$from(u), cc$p, cc$q))
}

## The variance functions' parameters: varIdent's ratios and varConstPower's
## constants on the log scale, powers and exponents as they are (nlme's
## unconstrained scale is the optimizer's: opt is the identity).
nlme_var_scales <- function(fit) {
    unlist(lapply(fit$resid$var, function(v) {
        K <- v$npar
        kinds <- switch(v$class, varIdent = rep("log", K), varPower = , varExp = rep("identity", K),
                        varConstPower = rep(c("log", "identity"), each = K / 2), varFixed = character(0),
                        stop(sprintf("intervals(): the variance function %s() is not handled", v$class),
                             call. = FALSE))
        lapply(kinds, function(k) c(nlme_scale(k), list(opt = identity)))
    }), recursive = FALSE)
}

## The fit's variance parameters as nlme reports them, one function of phi:
## per random-effects term the sds and the correlations (pdNatural's order:
## sds, then the lower triangle column by column), the correlation
## structure's, the variance functions', sigma.  With their scales, blocks
## and, for the random effects, their grouping factor and labels.
nlme_parameters <- function(fit) {
    terms <- fit$reterms
    nt <- length(fit$theta)
    cs <- nlme_cor_scales(fit)
    vs <- nlme_var_scales(fit)
    nr <- length(cs$scales) + length(vs)
    re_labels <- lapply(terms, function(t) {
        cn <- colnames(t$Z)
        k <- length(cn)
        pairs <- which(lower.tri(diag(k)), arr.ind = TRUE)
        c(sprintf("sd(%s)", cn), if (k > 1L) sprintf("cor(%s,%s)", cn[pairs[, 2L]], cn[pairs[, 1L]]))
    })
    reported <- function(phi) {
        theta <- phi[seq_len(nt)]
        rpar <- phi[nt + seq_len(nr)]
        sigma <- phi[nt + nr + 1L]
        re <- unlist(lapply(theta_to_covariances(theta, terms, sigma), function(V) {
            C <- attr(V, "correlation")
            c(attr(V, "stddev"), C[lower.tri(C)])
        }))
        st <- if (!is.null(fit$ar1)) rpar else if (nr) {
            rep <- resid_report(fit$resid, rpar)
            c(rep$corpar, unlist(unname(rep$varpar)))
        }
        c(unname(re), unname(st), sigma)
    }
    nre <- lengths(re_labels)
    re_scales <- unlist(lapply(terms, function(t) {
        k <- ncol(t$Z)
        c(rep(list(nlme_scale("log")), k), rep(list(nlme_scale("fisher")), k * (k - 1L) / 2L))
    }), recursive = FALSE)
    cn <- names(fit$corpar)
    ## (corSymm's Rho(i,j), i > j, is nlme's cor(j,i) in its intervals)
    if (identical(cs$class, "corSymm")) cn <- sub("^Rho\\(([0-9]+),([0-9]+)\\)$", "cor(\\2,\\1)", cn)
    st_names <- c(cn, names(varpar(fit)))
    scales <- c(re_scales, cs$scales, vs, list(nlme_scale("log")))
    ## nlme's unconstrained parameters from phi, and the reported ones back
    ## from them: each through its scale, corARMA's jointly from the
    ## optimizer's parameters
    jc <- sum(nre) + seq_along(cs$scales)
    psi <- function(phi) {
        u <- nlme_unconstrained(list(scales = scales), reported(phi))
        if (!is.null(cs$joint)) u[jc] <- cs$joint$psi(phi[nt + seq_along(jc)])
        u
    }
    back <- function(u) {
        x <- vapply(seq_along(u), function(i) scales[[i]]$from(u[[i]]), 0)
        if (!is.null(cs$joint)) x[jc] <- cs$joint$back(u[jc])
        x
    }
    list(reported = reported, psi = psi, back = back, scales = scales,
         block = rep(c("reStruct", "corStruct", "varStruct", "sigma"),
                     c(sum(nre), length(cs$scales), length(vs), 1L)),
         group = c(rep(vapply(terms, `[[`, "", "group"), nre), rep(NA_character_, nr + 1L)),
         labels = c(unlist(re_labels), st_names, "sigma"), nphi = nt + nr + 1L)
}

## The reported parameters mapped to nlme's unconstrained scale.
nlme_unconstrained <- function(pars, x) vapply(seq_along(x), function(i) pars$scales[[i]]$to(x[[i]]), 0)

## Jacobian of f at x by Richardson-extrapolated central differences.
richardson_jacobian <- function(f, x, step) {
    h <- step * pmax(abs(x), 0.1)
    cd <- function(s) vapply(seq_along(x), function(j) {
        e <- replace(numeric(length(x)), j, s[j])
        (f(x + e) - f(x - e)) / (2 * s[j])
    }, f(x))
    J <- (4 * cd(h / 2) - cd(h)) / 3
    if (!is.matrix(J)) J <- matrix(J, length(f(x)))
    J
}

## nlme's apVar: psi at the estimate and its approximate covariance.
nlme_apvar <- function(fit, pars) {
    ph <- resid_phi(fit)
    psi <- pars$psi
    est <- psi(ph$phi)
    if (!all(is.finite(est)))
        stop("intervals(): a standard deviation is zero or a correlation is +-1 at the estimate, where ",
             "nlme's unconstrained scale is not defined; consider which = \"fixed\"", call. = FALSE)
    H <- resid_derivatives(ph, jacobian = FALSE)$H
    if (!all(eigen(H, symmetric = TRUE, only.values = TRUE)$values > 0))
        stop("intervals(): cannot get confidence intervals on var-cov components: the Hessian of the ",
             "deviance is not positive definite (the fit may be on a boundary or not converged); ",
             "consider which = \"fixed\"", call. = FALSE)
    J <- richardson_jacobian(psi, ph$phi, INTERVALS_JAC_STEP)
    V <- J %*% (2 * solve(H)) %*% t(J)
    list(est = est, vcov = (V + t(V)) / 2, reported = pars$reported(ph$phi))
}

## The variance-covariance blocks: est +- z se on nlme's scale, mapped back.
varcov_intervals <- function(fit, level) {
    pars <- nlme_parameters(fit)
    ## (lmmfit's gls always has structure parameters: nlme's chi-square
    ## interval for sigma without them is not needed)
    sig_label <- if (is_gls(fit)) "Residual standard error:" else "Within-group standard error:"
    ap <- nlme_apvar(fit, pars)
    len <- stats::qnorm((1 + level) / 2) * sqrt(diag(ap$vcov))
    ## (as nlme, corARMA's limits are the images of the whole vectors
    ## est -+ len: beyond ARMA(1, 1) they need not bracket the estimate)
    nat <- cbind(pars$back(ap$est - len), ap$reported, pars$back(ap$est + len))
    dimnames(nat) <- list(pars$labels, c("lower", "est.", "upper"))
    out <- list()
    re <- pars$block == "reStruct"
    if (any(re)) {
        ## nlme's order of nested levels, outermost (fewest groups) first
        nlev <- vapply(fit$reterms, `[[`, 1L, "nlev")
        groups <- unique(vapply(fit$reterms, `[[`, "", "group")[order(nlev)])
        out$reStruct <- structure(lapply(setNames(groups, groups), function(g)
            as.data.frame(nat[re & pars$group == g, , drop = FALSE])), label = "Random Effects:")
    }
    labels <- c(corStruct = "Correlation structure:", varStruct = "Variance function:")
    for (b in names(labels)) if (any(pars$block == b))
        out[[b]] <- structure(nat[pars$block == b, , drop = FALSE], label = labels[[b]])
    out$sigma <- structure(nat[pars$block == "sigma", ], label = sig_label)
    out
}

## The fixed effects: est +- t se.  lme: nlme's containment df; gls: n - p,
## with gls's ML vcov (scaled by n / (n - p)).
fixed_intervals <- function(fit, level) {
    beta <- fixef(fit)
    se <- sqrt(diag(as.matrix(vcov(fit))))
    n <- nobs(fit)
    p <- length(beta)
    gls <- is_gls(fit)
    if (gls && !fit$REML) se <- se * sqrt(n / (n - p))
    df <- if (gls) rep(n - p, p) else containment_df(fit)
    len <- stats::qt((1 + level) / 2, df) * se
    m <- cbind(lower = beta - len, est. = beta, upper = beta + len)
    structure(m, dimnames = list(names(beta), colnames(m)), label = if (gls) "Coefficients:" else "Fixed effects:")
}

## nlme's containment df (Pinheiro & Bates 2000, 4.2.2) over the grouping
## factors, nested, outermost first: stratum 1 is the outermost level,
## stratum q + 1 lies within the level-q groups (the last: the residual).
## A column belongs to the stratum after the innermost level within whose
## groups it varies (stratum 1 if none).  A stratum's df: its groups less the
## enclosing level's, less its columns; an intercept takes one from stratum
## 1 (without one, the inner strata gain one) and gets the largest df.
## Crossed factors: nlme has none; the residual df n - p.
containment_df <- function(fit) {
    X <- fit$X
    n <- nrow(X)
    p <- ncol(X)
    tl <- fit$reterms[!duplicated(vapply(fit$reterms, `[[`, "", "group"))]
    gs <- lapply(tl[order(vapply(tl, `[[`, 1L, "nlev"))], function(t) droplevels(t$factor))
    Q <- length(gs)
    nested <- Q < 2L || all(vapply(seq_len(Q - 1L), function(q)
        length(unique(paste(gs[[q + 1L]], gs[[q]]))) == nlevels(gs[[q + 1L]]), NA))
    if (!nested) return(setNames(rep(n - p, p), colnames(X)))
    ngrps <- vapply(gs, nlevels, 1L)
    const <- apply(X, 2L, function(x) all(abs(if (x[1L] == 0) x else x / x[1L] - 1) < sqrt(.Machine$double.eps)))
    varies <- vapply(gs, function(g) { first <- match(g, g); apply(X, 2L, function(x) any(x != x[first])) },
                     logical(p))
    varies <- matrix(varies, p)
    stratum <- 1L + apply(varies, 1L, function(v) if (any(v)) max(which(v)) else 0L)
    dfs <- c(ngrps, n) - c(0L, ngrps) - tabulate(stratum[!const], Q + 1L)
    if (any(const)) dfs[1L] <- dfs[1L] - 1L else dfs[-1L] <- dfs[-1L] + 1L
    setNames(ifelse(const, max(dfs), dfs[stratum]), colnames(X))
}

#' Approximate confidence intervals, as nlme's intervals()
#'
#' nlme's approximate intervals for a fit, with or without a residual
#' variance or correlation structure.  The fixed effects: estimate
#' \eqn{\pm} a t quantile times the standard error, on nlme's containment
#' degrees of freedom for a mixed model (as \code{lme}; for crossed grouping
#' factors, where nlme defines none, the residual df \eqn{n - p}) and on
#' \eqn{n - p} for a model without random effects (as \code{gls}, whose ML
#' standard errors are scaled by \eqn{\sqrt{n / (n - p)}}).  The
#' variance-covariance parameters: estimate \eqn{\pm} a normal quantile
#' times the standard error on nlme's unconstrained scale of each (log for
#' standard deviations, sd ratios, ranges and sigma; \eqn{\log((1 + r) / (1 -
#' r))} for random-effect correlations, \code{corAR1}'s Phi and each of
#' \code{corSymm}'s correlations; logit for \code{corCAR1}'s Phi and a
#' nugget; nlme's bounded transform for \code{corCompSymm}; for
#' \code{corARMA} the partial autocorrelations on the
#' \eqn{\log((1 + r) / (1 - r))} scale, the limits being the coefficients of
#' the whole vectors of limits, as nlme, so that beyond ARMA(1, 1) they need
#' not bracket the estimate; powers and exponents as they are), from the inverse
#' Hessian of the log-likelihood (REML or ML, as the fit) there, mapped back.
#' The Hessian is by Richardson-extrapolated central differences; nlme's is
#' a coarser finite-difference one, so the two agree to about 1e-4.
#'
#' @param object a fitted \code{lmmfit} model.
#' @param level confidence level.
#' @param which \code{"all"}, \code{"var-cov"} or \code{"fixed"} (gls's
#'   \code{"coef"} is taken for \code{"fixed"}).
#' @param ... nothing else: other arguments are an error.
#' @return An object of class \code{c("intervals.lmmfit", "intervals.lme")}
#'   (\code{"intervals.gls"} without random effects), a list of matrices with
#'   columns \code{lower}, \code{est.}, \code{upper}: \code{fixed} (gls:
#'   \code{coef}), \code{reStruct} (a list of data frames, one per grouping
#'   factor, of the sds and correlations), \code{corStruct},
#'   \code{varStruct}, and the vector \code{sigma}; attribute \code{level}.
#' @seealso \code{\link{confint.lmmfit}} for profile-likelihood intervals.
#' @examples
#' data(Orthodont, package = "nlme")
#' fit <- lmmfit(distance ~ age + (1 | Subject), data = Orthodont,
#'               weights = nlme::varIdent(form = ~ 1 | Sex))
#' intervals(fit)
#' @export
intervals.lmmfit <- function(object, level = 0.95, which = c("all", "var-cov", "fixed"), ...) {
    refuse_extra_args("intervals", list(...))
    if (!is.numeric(level) || length(level) != 1L || !is.finite(level) || level <= 0 || level >= 1)
        stop("'level' must be a single number between 0 and 1", call. = FALSE)
    if (identical(which, "coef")) which <- "fixed"
    which <- match.arg(which)
    gls <- is_gls(object)
    val <- list()
    if (which != "var-cov") val[[if (gls) "coef" else "fixed"]] <- fixed_intervals(object, level)
    if (which != "fixed") val <- c(val, varcov_intervals(object, level))
    structure(val, level = level, class = c("intervals.lmmfit", if (gls) "intervals.gls" else "intervals.lme"))
}

#' @rdname intervals.lmmfit
#' @param x an \code{intervals.lmmfit} object.
#' @export
print.intervals.lmmfit <- function(x, ...) {
    cat("Approximate ", attr(x, "level") * 100, "% confidence intervals\n", sep = "")
    for (nm in names(x)) {
        el <- x[[nm]]
        cat("\n ", attr(el, "label"), "\n", sep = "")
        if (nm == "reStruct") {
            for (g in names(el)) {
                cat("  Level:", g, "\n")
                print(as.matrix(el[[g]]), ...)
            }
        } else if (nm == "sigma") print(setNames(as.vector(el), names(el)), ...)
        else print(matrix(el, nrow(el), dimnames = dimnames(el)), ...)
    }
    invisible(x)
}
