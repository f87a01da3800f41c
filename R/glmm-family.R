## The family component of a GLMM: R's family object checked and mapped to
## the C core's codes (src/glmm_family.c), and the response put in the
## form the family's deviance takes (glm()'s conventions).

GLMM_FAMILIES <- c(binomial = 0L, poisson = 1L, negbin = 2L, Gamma = 3L, inverse.gaussian = 4L)
GLMM_LINKS <- c(logit = 0L, probit = 1L, cloglog = 2L, cauchit = 3L, log = 4L, identity = 5L,
                inverse = 6L, sqrt = 7L, "1/mu^2" = 8L)
## the links each family takes in C (those R's own family functions offer)
GLMM_FAMILY_LINKS <- list(binomial = c("logit", "probit", "cloglog", "cauchit", "log"),
                          poisson = c("log", "sqrt", "identity"),
                          negbin = c("log", "sqrt", "identity"),
                         Gamma = c("inverse", "identity", "log"),
                         inverse.gaussian = c("1/mu^2", "inverse", "identity", "log"))
## the families whose scale is a parameter (their dispersion, estimated as
## glmer does from the deviance; sigma() reports it)
GLMM_DISPERSION_FAMILIES <- c("Gamma", "inverse.gaussian")
## glm()'s tolerance for a binomial count that is not a whole number
## (binomial()$initialize warns "non-integer #successes" past it)
BINOMIAL_INTEGER_TOL <- 1e-3

## A family argument as glm() takes it: a family object, its function or
## its name.
as_family <- function(family) {
    if (is.character(family)) family <- get(family, mode = "function", envir = parent.frame(2L))
    if (is.function(family)) family <- family()
    if (!inherits(family, "family") || is.null(family$family))
        stop("'family' must be a family object, a family function or its name (as glm() takes)", call. = FALSE)
    family
}

## The C core's description of family: list(family, link, nb_theta), or an
## error naming what is not supported.
glmm_family_spec <- function(family) {
    name <- family$family
    if (grepl("^quasi", name))
        stop(sprintf(paste0("the %s family has no likelihood, so neither a Laplace nor a quadrature ",
                            "approximation: quasi families are not supported (glmer refuses them too)"),
                     name), call. = FALSE)
    nb <- grepl("^Negative Binomial", name)
    key <- if (nb) "negbin" else name
    if (!key %in% names(GLMM_FAMILIES))
        stop(sprintf(paste0("family '%s' is not supported by glmmfit(): binomial, poisson, Gamma, ",
                            "inverse.gaussian and negative binomial (MASS::negative.binomial(theta)) are"),
                     name), call. = FALSE)
    link <- family$link
    if (!link %in% GLMM_FAMILY_LINKS[[key]])
        stop(sprintf("the %s family's '%s' link is not supported: use one of %s", key, link,
                     paste(GLMM_FAMILY_LINKS[[key]], collapse = ", ")), call. = FALSE)
    theta <- if (nb) nb_family_theta(family) else 1
    list(family = GLMM_FAMILIES[[key]], link = GLMM_LINKS[[link]], nb_theta = as.double(theta))
}

## MASS::negative.binomial(theta) keeps theta in its environment.
nb_family_theta <- function(family) {
    th <- tryCatch(get(".Theta", envir = environment(family$variance)), error = function(e) NULL)
    if (is.null(th)) th <- suppressWarnings(as.numeric(sub(".*\\((.*)\\).*", "\\1", family$family)))
    if (!is.numeric(th) || length(th) != 1L || !is.finite(th) || th <= 0)
        stop("cannot read the negative binomial family's theta", call. = FALSE)
    th
}

## The response as the family's deviance takes it: y, the prior weights
## (for a binomial, times the trials) and the binomial's trials (glm()'s
## m: the trials when any exceeds 1, else the weights).  Bad values stop
## with what is wrong.
glmm_response <- function(y, prior, family) {
    n <- NROW(y)
    if (is.null(prior)) prior <- rep(1, n)
    name <- family$family
    if (name == "binomial") return(binomial_response(y, prior))
    if (name %in% GLMM_DISPERSION_FAMILIES) return(positive_response(y, prior, name))
    if (is.factor(y) || is.logical(y) || !is.numeric(y) || !is.null(dim(y)))
        stop(sprintf("the response of a %s model must be a numeric vector of counts", name), call. = FALSE)
    y <- as.double(y)
    if (any(!is.finite(y))) stop("the response has NA, NaN or infinite values", call. = FALSE)
    if (any(y < 0)) stop(sprintf("negative counts are not allowed in a %s model", name), call. = FALSE)
    if (any(abs(y - round(y)) > BINOMIAL_INTEGER_TOL))
        warning(sprintf("non-integer counts in a %s model", name), call. = FALSE)
    list(y = y, prior = prior, trials = NULL)
}

## Gamma and inverse Gaussian responses: positive reals (their densities and
## deviances are not defined at 0).
positive_response <- function(y, prior, name) {
    if (is.factor(y) || is.logical(y) || !is.numeric(y) || !is.null(dim(y)))
        stop(sprintf("the response of a %s model must be a numeric vector", name), call. = FALSE)
    y <- as.double(y)
    if (any(!is.finite(y))) stop("the response has NA, NaN or infinite values", call. = FALSE)
    if (any(y <= 0))
        stop(sprintf("a %s response must be positive: %d of the values are zero or negative", name,
                     sum(y <= 0)), call. = FALSE)
    list(y = y, prior = as.double(prior), trials = NULL)
}

## 1: the fit's family has a dispersion parameter
glmm_has_dispersion <- function(object) object$family$family %in% GLMM_DISPERSION_FAMILIES

binomial_response <- function(y, prior) {
    if (is.matrix(y) && ncol(y) == 2L) {
        if (!is.numeric(y) || any(!is.finite(y)) || any(y < 0))
            stop("cbind(successes, failures) must hold non-negative finite counts", call. = FALSE)
        m <- as.double(y[, 1L] + y[, 2L])
        if (any(m == 0)) stop("rows with zero trials (successes + failures = 0): drop them with 'subset'",
                              call. = FALSE)
        yy <- y[, 1L] / m
        wt <- prior * m
        trials <- m
    } else {
        if (is.factor(y)) y <- y != levels(y)[1L]
        if (is.logical(y)) y <- as.double(y)
        if (!is.numeric(y) || !is.null(dim(y)))
            stop("a binomial response must be 0/1, logical, a factor, proportions with 'weights' as ",
                 "the trials, or cbind(successes, failures)", call. = FALSE)
        if (any(!is.finite(y))) stop("the response has NA, NaN or infinite values", call. = FALSE)
        if (any(y < 0 | y > 1))
            stop("a binomial response must lie in [0, 1]: give counts as cbind(successes, failures)",
                 call. = FALSE)
        yy <- as.double(y)
        wt <- prior
        trials <- prior
    }
    if (any(abs(trials * yy - round(trials * yy)) > BINOMIAL_INTEGER_TOL))
        warning("non-integer #successes in a binomial glm!", call. = FALSE)
    list(y = yy, prior = as.double(wt), trials = as.double(trials))
}

## The Gauss-Hermite rule for the standard normal with nq nodes (the
## eigenvalues of the Jacobi matrix of the probabilists' Hermite
## polynomials; weights the squared first components): an nq x 2 matrix
## of nodes and weights summing to 1.
gauss_hermite_rule <- function(nq) {
    if (nq <= 1L) return(cbind(0, 1))
    J <- matrix(0, nq, nq)
    off <- sqrt(seq_len(nq - 1L))
    J[cbind(seq_len(nq - 1L), 2:nq)] <- off
    J[cbind(2:nq, seq_len(nq - 1L))] <- off
    e <- eigen(J, symmetric = TRUE)
    ord <- order(e$values)
    t <- e$values[ord]
    ## the rule is symmetric: exact zeros and mirrored nodes
    t <- (t - rev(t)) / 2
    w <- e$vectors[1L, ord]^2
    w <- (w + rev(w)) / 2
    cbind(t, w / sum(w))
}
