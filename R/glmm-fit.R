#' Fit a generalized linear mixed-effects model
#'
#' Fits a generalized linear mixed model by the Laplace approximation or, for
#' one scalar random-effects term, adaptive Gauss-Hermite quadrature, with the
#' formula syntax and the semantics of \code{lme4::glmer}.  The conditional
#' modes are found by penalized iteratively re-weighted least squares in C on
#' the same blocked factor as \code{\link{lmmfit}} (its pattern found once per
#' fit, only the weighted values refreshed per iteration), and the parameters
#' are optimised as glmer does: first the covariance parameters with the fixed
#' effects inside PIRLS (\code{nAGQ = 0}), then both jointly.  With a
#' canonical link (binomial with the logit, Poisson with the log) the second
#' stage uses the exact gradient of the criterion (the Laplace approximation
#' for any terms whose crossed block is not factored sparse, and adaptive
#' quadrature for one scalar term) and is polished by Newton steps on it;
#' it then starts from the fixed effects solved with the modes at the
#' starting theta, without the first stage.  \code{optinfo$gradient} is
#' then the exact one.  Elsewhere the stages take finite differences.
#'
#' @param formula a two-sided formula with at least one random-effects term;
#'   for a binomial model the response may be 0/1, logical, a factor (the
#'   first level is failure), proportions with \code{weights} as the trials,
#'   or \code{cbind(successes, failures)}.
#' @param data a data frame.
#' @param family a family object, function or name: \code{binomial} (links
#'   logit, probit, cloglog, cauchit, log), \code{poisson} (log, sqrt,
#'   identity), or \code{MASS::negative.binomial(theta)} with theta given
#'   (\code{\link{glmmfit_nb}} estimates it), \code{Gamma} (inverse,
#'   identity, log) or \code{inverse.gaussian} (1/mu^2, inverse, identity,
#'   log), whose dispersion is estimated as glmer estimates it (see
#'   \code{\link{sigma.glmmfit}}).  \code{gaussian} with the
#'   identity link returns the linear mixed model of \code{\link{lmmfit}}.
#'   Quasi families are refused: they have no likelihood.
#' @param nAGQ 1 (default): the Laplace approximation; 0: the first stage only
#'   (fixed effects inside PIRLS, faster, slightly different estimates); 2 to
#'   25: adaptive Gauss-Hermite quadrature with that many nodes, for one
#'   scalar random-effects term only (as glmer), and not for Gamma or inverse
#'   Gaussian (glmer's quadrature for them omits the dispersion).
#' @param weights optional prior weights (for a binomial proportion: the
#'   numbers of trials).
#' @param subset,na.action,offset,contrasts as in \code{\link{lmmfit}};
#'   \code{offset()} terms in the formula are honoured.
#' @param start optional starting values: \code{list(theta = , fixef = )} or
#'   a numeric theta.
#' @param control a list from \code{\link{lmmfit_control}}; its element
#'   \code{pirls_maxit} (default 200) bounds PIRLS iterations per evaluation.
#' @return An object of class \code{"glmmfit"}.
#' @importFrom stats glm.fit optimize pnorm predict
#' @examples
#' data(cbpp, package = "lme4")
#' fit <- glmmfit(cbind(incidence, size - incidence) ~ period + (1 | herd),
#'                data = cbpp, family = binomial)
#' summary(fit)
#' @export
glmmfit <- function(formula, data = NULL, family = gaussian, nAGQ = 1L, weights, subset, na.action,
                    offset, contrasts = NULL, start = NULL, control = lmmfit_control()) {
    call <- match.call()
    family <- as_family(family)
    if (family$family == "gaussian" && family$link == "identity") {
        message("glmmfit() with family = gaussian (identity link) fits the linear mixed model: see lmmfit()")
        lcall <- call
        lcall[[1L]] <- quote(lmmfit::lmmfit)
        lcall$family <- lcall$nAGQ <- NULL
        return(eval(lcall, parent.frame()))
    }
    spec <- glmm_family_spec(family)
    nAGQ <- check_nagq(nAGQ)
    if (nAGQ > 1L && family$family %in% GLMM_DISPERSION_FAMILIES)
        stop(sprintf(paste0("nAGQ > 1 is not available for the %s family: its likelihood needs the ",
                            "dispersion, which glmer's quadrature leaves out (it integrates the deviance ",
                            "at dispersion 1, a different criterion from its Laplace one); use nAGQ = 1"),
                     family$family), call. = FALSE)
    formula <- lme4_formula(formula, data, parent.frame())
    parsed <- parse_lmm_formula(formula)
    frame <- glmm_model_frame(call, parsed, data, parent.frame())
    n <- nrow(frame)
    resp <- glmm_response(frame[[1L]], model.weights(frame), family)
    off <- model.offset(frame)
    if (!is.null(off)) {
        if (length(off) != n || any(!is.finite(off)))
            stop("the offset must be finite, one value per observation", call. = FALSE)
        off <- as.double(off)
    }
    fixed_terms <- terms(parsed$fixed, data = frame)
    X <- model.matrix(fixed_terms, frame, contrasts.arg = contrasts)
    if (!.Call(C_lmm_all_finite, X))
        stop("the fixed-effects model matrix has NA, NaN or infinite values", call. = FALSE)
    xcontr <- attr(X, "contrasts")
    X <- drop_aliased(X)
    dropped <- attr(X, "dropped")
    attr(X, "dropped") <- NULL
    storage.mode(X) <- "double"
    ## an observation-level term is allowed: the family fixes the scale
    reterms <- build_reterms(parsed$terms, frame, parsed$env, X, known_variance = TRUE)
    if (nAGQ > 1L && (length(reterms) != 1L || ncol(reterms[[1L]]$Z) != 1L))
        stop("nAGQ > 1 is available for one scalar random-effects term only (as in glmer); use nAGQ = 1",
             call. = FALSE)
    model <- glmm_model(X, resp, off, reterms, spec)
    st <- glmm_start(start, X, resp, off, family, reterms)
    opt <- .Call(C_lmm_glmm_optimize, model, st$theta, st$beta, nAGQ, gauss_hermite_rule(nAGQ), control)
    fit <- glmm_object(opt, model, reterms, X, nAGQ)
    fit <- structure(c(fit, list(
        call = call, formula = formula, fixed_terms = fixed_terms, frame = frame, X = X,
        y = resp$y, prior = resp$prior, trials = resp$trials, offset = off, reterms = reterms,
        family = family, spec = spec, nAGQ = nAGQ, dropped = dropped, contrasts = xcontr,
        control = control, na.action = attr(frame, "na.action"), re_specs = parsed$terms,
        model = model)), class = "glmmfit")
    glmm_check_fit(fit)
    fit
}

check_nagq <- function(nAGQ) {
    if (!is.numeric(nAGQ) || length(nAGQ) != 1L || is.na(nAGQ) || nAGQ != round(nAGQ) ||
        nAGQ < 0 || nAGQ > GLMM_MAX_AGQ)
        stop(sprintf("'nAGQ' must be a whole number from 0 to %d", GLMM_MAX_AGQ), call. = FALSE)
    as.integer(nAGQ)
}
## glmer's bound on the quadrature nodes (src/glmm.h: GLMM_MAX_AGQ)
GLMM_MAX_AGQ <- 25L

## The model frame (lmmfit()'s), with a response.
glmm_model_frame <- function(call, parsed, data, env) {
    frame <- lmm_model_frame(call, parsed$frame, data, env)
    if (attr(attr(frame, "terms"), "response") != 1L) stop("the formula needs a response", call. = FALSE)
    frame
}

## What the C core takes (src/glmm_fit.c): the patterns of the modes' system
## without X (xu) and with it (xj), the rows and the family.
glmm_model <- function(X, resp, off, reterms, spec) {
    codes <- lapply(reterms, function(t) as.integer(t$factor))
    Z <- lapply(reterms, function(t) { z <- t$Z; storage.mode(z) <- "double"; z })
    nlev <- vapply(reterms, `[[`, 1L, "nlev")
    pattern <- function(Xc) with_tail_plan(.Call(C_lmm_crossprod, Xc, resp$y, resp$prior, codes, Z, nlev,
                                                 numeric(ncol(Xc)), numeric(ncol(Xc)), max_stages()))
    list(xu = pattern(X[, 0L, drop = FALSE]), xj = pattern(X), X = X, y = resp$y, prior = resp$prior,
         trials = resp$trials, offset = off, codes = codes, Z = Z, family = spec)
}

## Starting values: theta as lme4 starts (unit diagonal), beta from glm().
glmm_start <- function(start, X, resp, off, family, reterms) {
    theta <- theta_start(reterms)
    beta <- NULL
    if (!is.null(start)) {
        if (is.numeric(start)) start <- list(theta = start)
        if (!is.list(start) || !all(names(start) %in% c("theta", "fixef")))
            stop("'start' must be a numeric theta or list(theta = , fixef = )", call. = FALSE)
        if (!is.null(start$theta)) theta <- lme4_start(list(theta = start$theta), reterms)
        if (!is.null(start$fixef)) {
            if (!is.numeric(start$fixef) || length(start$fixef) != ncol(X))
                stop(sprintf("'start$fixef' must have %d values", ncol(X)), call. = FALSE)
            beta <- as.double(start$fixef)
        }
    }
    if (is.null(beta) && glmm_zero_start(family)) {
        ## the first PIRLS solves beta with u from beta = 0 (mu = 1/2), as
        ## glm.fit()'s IRLS would, in the C kernels: on 100,000 rows glm.fit()
        ## was a quarter of the fit
        beta <- numeric(ncol(X))
    } else if (is.null(beta)) {
        g <- suppressWarnings(glm.fit(X, resp$y, weights = resp$prior, offset = off, family = family))
        beta <- unname(g$coefficients)
        if (any(!is.finite(beta))) stop("the glm() fit for the starting values failed", call. = FALSE)
    }
    list(theta = as.double(theta), beta = beta)
}

## Families whose PIRLS may start at beta = 0: the logit keeps every mu
## inside (0, 1), and its Newton steps from mu = 1/2 are glm's own.
glmm_zero_start <- function(family) family$family == "binomial" && family$link == "logit"

## The fit's components from the C optimizer's result.
glmm_object <- function(opt, model, reterms, X, nAGQ) {
    st <- opt$state
    theta <- setNames(opt$par, theta_names(reterms))
    list(theta = theta, beta = setNames(st$beta, colnames(X)), u = st$u, xprod = st$xprod,
         deviance_value = st$deviance, eta = st$eta, mu = st$mu, working_weights = st$weights,
         sumdev = st$sumdev, pirls = st$pirls,
         optinfo = list(feval = opt$feval, feval_stage1 = opt$feval_stage1, convergence = opt$convergence,
                        message = opt$message, gradient = opt$gradient,
                        scaled_gradient = opt$scaled_gradient, settled = opt$settled,
                        failures = opt$failures))
}

## Problems a fit must report: PIRLS failing at the optimum, a singular fit.
glmm_check_fit <- function(fit) {
    if (fit$pirls[1L] != 0L)
        warning("PIRLS did not converge at the estimates: try control = lmmfit_control(pirls_maxit = ), ",
                "rescale the covariates, or check for complete separation", call. = FALSE)
    else if (isFALSE(fit$optinfo$settled))
        warning(sprintf(paste("the optimizer stopped before confirming a local optimum (PIRLS failed at %d",
                              "of its %d evaluations): the estimates may be wrong; try other starting values",
                              "(start = ) or a simpler random-effects structure"),
                        fit$optinfo$failures, fit$optinfo$feval), call. = FALSE)
    if (isSingular(fit, fit$control$singular_tol))
        message("boundary (singular) fit: see help('isSingular')")
}
