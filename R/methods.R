## Accessors lme4 users reach for.

#' @importFrom nlme fixef ranef VarCorr
#' @importFrom stats napredict naresid na.pass delete.response .getXlevels update
#' @export
nlme::fixef
#' @export
nlme::ranef
#' @export
nlme::VarCorr

#' Extract parts of an lmmfit model
#'
#' The accessors lme4 users know: \code{fixef}, \code{VarCorr}, \code{sigma},
#' \code{vcov}, \code{logLik}, \code{deviance}, \code{nobs}, \code{ngrps},
#' \code{formula}, \code{isSingular}.
#'
#' @param object,x a fitted \code{lmmfit} model.
#' @param ... ignored.
#' @name lmmfit-accessors
NULL

#' @rdname lmmfit-accessors
#' @param add.dropped for \code{fixef}: include the coefficients of columns
#'   dropped as aliased (rank deficiency), as \code{NA}, in the order of the
#'   full model matrix (as lme4).
#' @method fixef lmmfit
#' @export
fixef.lmmfit <- function(object, add.dropped = FALSE, ...) {
    if (!isTRUE(add.dropped) || is.null(object$dropped)) return(object$beta)
    cn <- colnames(model.matrix(object$fixed_terms, object$frame, contrasts.arg = object$contrasts))
    out <- setNames(rep(NA_real_, length(cn)), cn)
    out[names(object$beta)] <- object$beta
    out
}

#' @rdname lmmfit-accessors
#' @export
sigma.lmmfit <- function(object, ...) {
    sigma_hat(object$pwrss, length(object$y), length(object$beta), object$REML)
}

#' @rdname lmmfit-accessors
#' @param correlation ignored (for compatibility with lme4's \code{vcov}).
#' @export
vcov.lmmfit <- function(object, correlation = FALSE, ...) {
    ## no fixed effects (y ~ 0 + (1 | g)): an empty matrix, as lme4
    if (!length(object$beta)) return(matrix(numeric(), 0L, 0L))
    V <- sigma(object)^2 * chol2inv(object$RX)
    dimnames(V) <- list(names(object$beta), names(object$beta))
    V
}

#' @rdname lmmfit-accessors
#' @param REML for \code{logLik}: the REML log-likelihood (for REML fits, as
#'   lme4) or, with \code{REML = FALSE}, the ML log-likelihood at the estimates.
#' @export
logLik.lmmfit <- function(object, REML = object$REML, ...) {
    dev <- if (isTRUE(REML) == object$REML) object$deviance_value
           else if (REML) stop("the REML log-likelihood of an ML fit is not defined here", call. = FALSE)
           else ml_deviance_at_estimates(object)
    structure(-dev / 2, nobs = length(object$y), nall = length(object$y),
              df = n_parameters(object), REML = isTRUE(REML), class = "logLik")
}

## Fixed effects, covariance parameters, residual SD and any residual
## structure's parameters (correlation, variance function).
n_parameters <- function(object) {
    length(object$beta) + length(object$theta) + 1L + length(object$corpar) + length(unlist(object$varpar))
}

## The ML deviance of an REML fit at its covariance estimates, as lme4's
## deviance(fit, REML = FALSE) and logLik(fit, REML = FALSE): the profiled ML
## deviance at the REML theta (sigma profiled out, i.e. sigma^2 = pwrss / n,
## beta and u at their conditional modes).
ml_deviance_at_estimates <- function(object) {
    n <- length(object$y)
    sumlogw <- if (is.null(object$weights)) 0 else sum(log(object$weights))
    logdetR <- if (is.null(object$logdetR)) 0 else object$logdetR
    profiled_deviance(object$ldL2, object$pwrss, n, sumlogw) + logdetR
}

#' @rdname lmmfit-accessors
#' @export
deviance.lmmfit <- function(object, REML = NULL, ...) {
    if (is.null(REML)) REML <- object$REML
    if (isTRUE(REML)) {
        if (!object$REML) stop("REML criterion is not available for an ML fit", call. = FALSE)
        return(object$deviance_value)
    }
    if (object$REML) ml_deviance_at_estimates(object) else object$deviance_value
}

#' @rdname lmmfit-accessors
#' @export
nobs.lmmfit <- function(object, ...) length(object$y)

#' @rdname lmmfit-accessors
#' @export
formula.lmmfit <- function(x, ...) x$formula

#' @rdname lmmfit-accessors
#' @export
df.residual.lmmfit <- function(object, ...) {
    length(object$y) - n_parameters(object)
}

#' @rdname lmmfit-accessors
#' @export
ngrps <- function(object, ...) UseMethod("ngrps")

#' @rdname lmmfit-accessors
#' @export
ngrps.lmmfit <- function(object, ...) {
    g <- vapply(object$reterms, `[[`, 1L, "nlev")
    names(g) <- vapply(object$reterms, `[[`, "", "group")
    g[!duplicated(names(g))]
}

#' @rdname lmmfit-accessors
#' @param tol tolerance on the diagonal of the relative covariance factors.
#' @export
isSingular <- function(x, tol = 1e-4, ...) UseMethod("isSingular")

#' @rdname lmmfit-accessors
#' @export
isSingular.lmmfit <- function(x, tol = 1e-4, ...) {
    any(x$theta[theta_is_diag(x$reterms)] < tol)
}

## Random effects b = Lambda u, one (levels x columns) matrix per term.
random_effects <- function(object) {
    lam <- theta_to_lambda(object$theta, object$reterms)
    off <- 0L
    lapply(seq_along(object$reterms), function(j) {
        t <- object$reterms[[j]]
        k <- ncol(t$Z)
        idx <- off + seq_len(t$nlev * k)
        off <<- off + t$nlev * k
        U <- matrix(object$u[idx], nrow = t$nlev, ncol = k, byrow = TRUE)
        B <- U %*% t(lam[[j]])
        dimnames(B) <- list(levels(t$factor), colnames(t$Z))
        B
    })
}

## The linear predictor: fixed part, random part, offset.
linear_predictor <- function(object, random = TRUE) {
    eta <- drop(object$X %*% object$beta)
    if (random) {
        b <- random_effects(object)
        for (j in seq_along(b)) {
            t <- object$reterms[[j]]
            eta <- eta + rowSums(t$Z * b[[j]][as.integer(t$factor), , drop = FALSE])
        }
    }
    if (!is.null(object$offset)) eta <- eta + object$offset
    eta
}

#' @rdname lmmfit-accessors
#' @details \code{fitted} and \code{residuals} have one value per row of the
#'   model frame; with \code{na.action = na.exclude} they are padded with
#'   \code{NA} at the excluded rows (\code{\link{naresid}}), as in lme4.
#' @export
fitted.lmmfit <- function(object, ...) {
    f <- linear_predictor(object)
    names(f) <- rownames(object$frame)
    napredict(object$na.action, f)
}

#' @rdname lmmfit-accessors
#' @param type \code{"response"} (\code{y} minus the fitted values; the
#'   default, also available as \code{"working"}) or \code{"pearson"} (divided
#'   by a variance function's standard-deviation multiplier and times the
#'   square root of the prior weights; also available as
#'   \code{"deviance"}, the same for a linear mixed model).
#'   \code{"normalized"}: the residuals whitened by the residual correlation
#'   structure and divided by sigma, as nlme's (for a model without one, the
#'   Pearson residuals over sigma).
#' @param scaled divide by the residual standard deviation.
#' @export
residuals.lmmfit <- function(object, type = c("response", "pearson", "working", "deviance", "normalized"),
                             scaled = FALSE, ...) {
    type <- match.arg(type)
    if (type == "normalized") {
        r <- normalized_residuals(object)
        names(r) <- rownames(object$frame)
        return(naresid(object$na.action, r))
    }
    r <- object$y - linear_predictor(object)
    if (type %in% c("pearson", "deviance") && !is.null(object$weights)) r <- r * sqrt(object$weights)
    if (type %in% c("pearson", "deviance") && !is.null(object$resid)) r <- r / resid_sd_multiplier(object)
    if (scaled) r <- r / sigma(object)
    names(r) <- rownames(object$frame)
    naresid(object$na.action, r)
}

#' Model frame, model matrices and terms of an lmmfit model
#'
#' \code{model.frame} returns the frame the model was fitted to (every
#' variable of the fixed and random parts, after \code{subset} and
#' \code{na.action}); \code{model.matrix} the fixed-effects matrix \code{X}
#' (\code{type = "fixed"}) or the random-effects matrix \code{Z}
#' (\code{type = "random"}, a dense base matrix with lme4's column order:
#' term by term, level-major); \code{terms} the terms of the fixed part.
#'
#' @param formula,object,x a fitted \code{lmmfit} model.
#' @param type \code{"fixed"} or \code{"random"}.
#' @param fixed.only for \code{terms}: must be \code{TRUE} (only the fixed
#'   part has terms).  For \code{model.frame}: \code{TRUE} keeps only the
#'   response and the variables of the fixed part (as lme4).
#' @param ... ignored.
#' @return A data frame, a matrix, or a \code{terms} object.
#' @examples
#' data(Orthodont, package = "nlme")
#' fit <- lmmfit(distance ~ age + (1 | Subject), data = Orthodont)
#' dim(model.matrix(fit))
#' dim(model.matrix(fit, type = "random"))
#' @name lmmfit-model-parts
NULL

#' @rdname lmmfit-model-parts
#' @export
model.frame.lmmfit <- function(formula, fixed.only = FALSE, ...) {
    if (!isTRUE(fixed.only)) return(formula$frame)
    vars <- vapply(as.list(attr(formula$fixed_terms, "variables"))[-1L], deparse1, "")
    fr <- formula$frame
    keep <- names(fr) %in% vars
    out <- fr[, keep, drop = FALSE]
    attr(out, "terms") <- formula$fixed_terms
    out
}

#' @rdname lmmfit-model-parts
#' @export
model.matrix.lmmfit <- function(object, type = c("fixed", "random"), ...) {
    type <- match.arg(type)
    if (type == "fixed") object$X else dense_Z(object)
}

#' @rdname lmmfit-model-parts
#' @export
terms.lmmfit <- function(x, fixed.only = TRUE, ...) {
    if (!isTRUE(fixed.only)) stop("only the fixed part of an lmmfit model has terms", call. = FALSE)
    x$fixed_terms
}

#' Variance components of an lmmfit model
#'
#' @param x a fitted \code{lmmfit} model.
#' @param sigma ignored.
#' @param ... ignored.
#' @return A named list of covariance matrices, one per random-effects term,
#'   each with attributes \code{stddev} and \code{correlation}; the residual
#'   standard deviation is attribute \code{sc}.
#' @method VarCorr lmmfit
#' @export
VarCorr.lmmfit <- function(x, sigma = 1, ...) {
    s <- sigma(x)
    vc <- theta_to_covariances(x$theta, x$reterms, s)
    names(vc) <- make.unique(vapply(x$reterms, `[[`, "", "group"), sep = ".")
    structure(vc, sc = s, useSc = TRUE, class = "VarCorr.lmmfit")
}

#' @export
print.VarCorr.lmmfit <- function(x, digits = max(3, getOption("digits") - 2),
                                 comp = "Std.Dev.", ...) {
    print(format_varcorr(x, digits, comp), quote = FALSE, right = FALSE, ...)
    invisible(x)
}

## lme4's layout of the random-effects table, as a character matrix.
format_varcorr <- function(vc, digits, comp = c("Variance", "Std.Dev.")) {
    grp <- character(); nm <- character(); v <- numeric(); sd <- numeric(); corr <- list()
    for (g in names(vc)) {
        m <- vc[[g]]
        k <- nrow(m)
        grp <- c(grp, g, rep("", k - 1L))
        nm <- c(nm, rownames(m))
        v <- c(v, diag(m))
        sd <- c(sd, attr(m, "stddev"))
        C <- attr(m, "correlation")
        for (i in seq_len(k)) corr[[length(corr) + 1L]] <- if (i > 1L) C[i, seq_len(i - 1L)] else numeric()
    }
    ## a family with a fixed scale (binomial, Poisson) has no residual row
    if (!isFALSE(attr(vc, "useSc"))) {
        s <- attr(vc, "sc")
        grp <- c(grp, "Residual"); nm <- c(nm, ""); v <- c(v, s^2); sd <- c(sd, s)
        corr[[length(corr) + 1L]] <- numeric()
    }
    out <- cbind(Groups = grp, Name = nm)
    if ("Variance" %in% comp) out <- cbind(out, Variance = format(v, digits = digits))
    if ("Std.Dev." %in% comp) out <- cbind(out, Std.Dev. = format(sd, digits = digits))
    maxc <- max(lengths(corr))
    if (maxc > 0L) {
        cm <- matrix("", length(corr), maxc)
        for (i in seq_along(corr)) if (length(corr[[i]]))
            cm[i, seq_along(corr[[i]])] <- formatC(corr[[i]], digits = 2, format = "f")
        colnames(cm) <- c("Corr", rep("", maxc - 1L))
        out <- cbind(out, cm)
    }
    rownames(out) <- rep("", nrow(out))
    out
}

#' @export
as.data.frame.VarCorr.lmmfit <- function(x, row.names = NULL, optional = FALSE, ...) {
    rows <- list()
    for (g in names(x)) {
        m <- x[[g]]
        sd <- attr(m, "stddev")
        C <- attr(m, "correlation")
        nm <- rownames(m)
        for (i in seq_along(nm))
            rows[[length(rows) + 1L]] <- data.frame(grp = g, var1 = nm[i], var2 = NA_character_,
                                                    vcov = m[i, i], sdcor = sd[i])
        for (i in seq_along(nm)) for (j in seq_along(nm)) if (i < j)
            rows[[length(rows) + 1L]] <- data.frame(grp = g, var1 = nm[i], var2 = nm[j],
                                                    vcov = m[i, j], sdcor = C[i, j])
    }
    s <- attr(x, "sc")
    if (!isFALSE(attr(x, "useSc")))
        rows[[length(rows) + 1L]] <- data.frame(grp = "Residual", var1 = NA_character_,
                                                var2 = NA_character_, vcov = s^2, sdcor = s)
    do.call(rbind, rows)
}
