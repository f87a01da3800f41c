## Fixed or random? Hausman's test and Mundlak's form of it.

#' Hausman test: fixed or random group effects?
#'
#' Tests whether the random intercepts of an \code{lmmfit} model are
#' uncorrelated with the covariates, the assumption under which the
#' random-effects (mixed-model) estimates of the slopes are consistent.
#'
#' \code{method = "classic"} compares the mixed model with its fixed-effects
#' ("within") counterpart, \code{lm} with the grouping factor as a fixed effect
#' (see \code{\link{fixed_vs_random}}), over the coefficients the
#' fixed-effects model can estimate: those of covariates that vary within
#' groups (not the intercept, not group-level covariates).  With \eqn{d} the
#' difference of the two estimates and each model's own covariance matrix,
#' \deqn{H = d' (V_{FE} - V_{RE})^{-1} d}{H = d' (V_FE - V_RE)^{-1} d}
#' is referred to a chi-square distribution with as many degrees of freedom
#' as coefficients compared.  \eqn{V_{RE}}{V_RE} is \code{vcov(fit)} (REML or
#' ML as the fit), \eqn{V_{FE}}{V_FE} is \code{vcov()} of the \code{lm}.  The
#' classic form needs a model whose only random-effects term is the random
#' intercept \code{(1 | g)}.  In finite samples \eqn{V_{FE} - V_{RE}}{V_FE - V_RE} need not be
#' positive definite; then a warning says so (the statistic, computed with a
#' generalized inverse if the difference is singular, is unreliable and may
#' be negative) and points to the Mundlak form.
#'
#' \code{plm::phtest} computes the same statistic for a random-effects model
#' fitted by \code{plm}, whose variance components come from the Swamy-Arora
#' estimator rather than REML or ML: its value differs somewhat.
#'
#' \code{method = "mundlak"} is the regression form of the test (Mundlak
#' 1978): in the model with each time-varying covariate split into its group
#' means and the deviations from them (\code{\link{wb}}), a Wald test that the
#' between and within slopes are equal, chi-square with as many degrees of
#' freedom as covariates.  If the fit already uses \code{wb(x, g)} terms with
#' the tested grouping factor, those pairs are tested in the fit as it is;
#' otherwise the model is refitted (same random effects, weights, REML or ML)
#' with every fixed-effects column that varies within groups replaced by its
#' between and within parts.  It needs no difference of covariance matrices,
#' allows any further random-effects terms, and is always non-negative.
#'
#' @param fit a fitted \code{lmmfit} model with a random intercept.
#' @param method \code{"classic"} or \code{"mundlak"}.
#' @param group the grouping factor whose intercepts are tested, as named in
#'   the formula; needed only when several grouping factors have random
#'   intercepts (\code{"mundlak"} only: the classic form allows one term).
#' @return An object of class \code{"htest"} with \code{statistic} (chi-square),
#'   \code{parameter} (df), \code{p.value}, \code{method}, \code{data.name},
#'   \code{alternative}, and \code{coefficients}, a matrix of the compared
#'   estimates (classic: fixed-effects and random-effects estimates, their
#'   difference and its standard error; Mundlak: between and within slopes,
#'   their difference and its standard error).
#' @references Hausman, J. A. (1978). Specification tests in econometrics.
#'   \emph{Econometrica} 46, 1251--1271.
#'
#'   Mundlak, Y. (1978). On the pooling of time series and cross section data.
#'   \emph{Econometrica} 46, 69--85.
#' @seealso \code{\link{wb}}, \code{\link{fixed_vs_random}}
#' @examples
#' set.seed(2)
#' g <- factor(rep(1:15, each = 6))
#' u <- rnorm(15)[g]
#' x <- rnorm(90) + u            # covariate correlated with the group effect
#' y <- 1 + 0.5 * x + u + rnorm(90)
#' fit <- lmmfit(y ~ x + (1 | g))
#' hausman(fit)
#' hausman(fit, method = "mundlak")
#' @export
hausman <- function(fit, method = c("classic", "mundlak"), group = NULL) {
    if (!inherits(fit, "lmmfit")) stop("'fit' must be a model fitted by lmmfit()", call. = FALSE)
    method <- match.arg(method)
    ## its fixed-effects and Mundlak refits are of the plain model
    if (has_resid_structure(fit))
        stop("hausman() is not available for fits with a residual variance or correlation structure",
             call. = FALSE)
    term <- intercept_term(fit, group, "hausman()")
    dname <- paste(deparse1(fit$formula), collapse = " ")
    if (method == "classic") hausman_classic(fit, term, dname)
    else hausman_mundlak(fit, term, dname)
}

hausman_classic <- function(fit, term, dname) {
    if (length(fit$reterms) != 1L || !identical(colnames(term$Z), "(Intercept)"))
        stop(sprintf(paste0("the classic Hausman test compares a model whose only random effect is ",
                            "a random intercept (1 | %s) with its fixed-effects counterpart; this ",
                            "model has %s: use hausman(fit, method = \"mundlak\")"),
                     term$group, paste0("(", vapply(fit$reterms, `[[`, "", "label"), ")",
                                        collapse = " + ")), call. = FALSE)
    fe <- fe_counterpart_fit(fit, term)
    bf <- stats::coef(fe$lm)
    nm <- intersect(fe$time_varying, names(bf)[!is.na(bf)])
    if (!length(nm))
        stop(sprintf(paste0("no coefficient to compare: the model has no covariate that varies ",
                            "within the levels of %s, so the fixed-effects model estimates none"),
                     term$group), call. = FALSE)
    d <- bf[nm] - fit$beta[nm]
    D <- stats::vcov(fe$lm)[nm, nm, drop = FALSE] - vcov(fit)[nm, nm, drop = FALSE]
    ev <- eigen(D, symmetric = TRUE, only.values = TRUE)$values
    tol <- max(abs(ev)) * length(ev) * .Machine$double.eps * 100
    df <- length(nm)
    if (min(ev) <= tol) {
        warning(sprintf(paste0("V_FE - V_RE is not positive definite (smallest eigenvalue %.3g): ",
                               "the classic Hausman statistic is unreliable here; ",
                               "use hausman(fit, method = \"mundlak\"), which needs no ",
                               "difference of covariance matrices"), min(ev)), call. = FALSE)
    }
    if (min(abs(ev)) > tol) {
        H <- drop(crossprod(d, solve(D, d)))
    } else {
        e <- eigen(D, symmetric = TRUE)
        keep <- abs(e$values) > tol
        df <- sum(keep)
        if (df == 0L) stop("V_FE - V_RE is zero: the two models cannot be compared", call. = FALSE)
        z <- crossprod(e$vectors[, keep, drop = FALSE], d)
        H <- sum(z^2 / e$values[keep])
    }
    se <- sqrt(pmax(diag(D), 0))
    coefs <- cbind(Fixed = bf[nm], Random = fit$beta[nm], Difference = d, `Std. Error` = se)
    rownames(coefs) <- nm
    structure(list(statistic = c(chisq = H), parameter = c(df = df),
                   p.value = stats::pchisq(H, df, lower.tail = FALSE),
                   method = sprintf("Hausman test: %s as fixed effects vs random intercepts (1 | %s)",
                                    term$group, term$group),
                   data.name = dname, alternative = "one model is inconsistent",
                   coefficients = coefs),
              class = "htest")
}

hausman_mundlak <- function(fit, term, dname) {
    info <- Filter(function(i) identical(i$gname, term$group) &&
                               all(c(i$between, i$within) %in% names(fit$beta)), fit$wb)
    if (length(info)) {
        b <- fit$beta
        V <- vcov(fit)
        pairs <- lapply(info, function(i) c(i$between, i$within))
        labels <- vapply(info, `[[`, "", "xname")
        how <- "in the fitted wb() model"
    } else {
        X <- fit$X
        tv <- time_varying(X, term$factor)
        if (!length(tv))
            stop(sprintf(paste0("no covariate varies within the levels of %s: there are no ",
                                "within slopes to compare with between slopes"), term$group),
                 call. = FALSE)
        cols <- list()
        for (cn in colnames(X)) {
            if (cn %in% tv) {
                d <- wb_decompose(X[, cn], term$factor)
                cols[[paste0(cn, "_between")]] <- d$between
                cols[[paste0(cn, "_within")]] <- d$within
            } else cols[[cn]] <- X[, cn]
        }
        Xa <- do.call(cbind, cols)
        colnames(Xa) <- names(cols)
        Xa <- drop_aliased(Xa)
        attr(Xa, "dropped") <- NULL
        core <- lmm_fit_core(Xa, fit$y, fit$weights, fit$offset, fit$reterms, fit$REML,
                             fit$control)
        refit <- structure(c(core, list(y = fit$y, REML = fit$REML)), class = "lmmfit")
        b <- refit$beta
        V <- vcov(refit)
        ok <- paste0(tv, "_between") %in% names(b) & paste0(tv, "_within") %in% names(b)
        if (!any(ok))
            stop("every between column is aliased with other covariates: nothing to test", call. = FALSE)
        labels <- tv[ok]
        pairs <- lapply(labels, function(cn) paste0(cn, c("_between", "_within")))
        how <- "refitted with wb() for the time-varying covariates"
    }
    k <- length(pairs)
    C <- matrix(0, k, length(b), dimnames = list(labels, names(b)))
    for (j in seq_len(k)) C[j, pairs[[j]]] <- c(1, -1)
    dd <- drop(C %*% b)
    CV <- C %*% V %*% t(C)
    W <- drop(crossprod(dd, solve(CV, dd)))
    coefs <- cbind(Between = b[vapply(pairs, `[`, "", 1L)], Within = b[vapply(pairs, `[`, "", 2L)],
                   Difference = dd, `Std. Error` = sqrt(diag(CV)))
    rownames(coefs) <- labels
    structure(list(statistic = c(chisq = W), parameter = c(df = k),
                   p.value = stats::pchisq(W, k, lower.tail = FALSE),
                   method = sprintf("Mundlak test: between = within slopes for %s (random intercept model %s)",
                                    term$group, how),
                   data.name = dname, alternative = "between and within slopes differ",
                   coefficients = coefs),
              class = "htest")
}
