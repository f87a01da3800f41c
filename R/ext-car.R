## Support for car's Anova(), linearHypothesis() and deltaMethod(): methods
## for car's S3 generics, registered in .onLoad (zzz.R) when car's namespace
## loads.  car's default methods take the coefficients from coef(), which for
## a mixed model (lmmfit as lme4) gives the coefficients per group, so each
## method here works on fixef() and vcov() of the fixed effects.

#' car support for lmmfit models
#'
#' With \pkg{car} installed, \code{car::Anova}, \code{car::linearHypothesis}
#' and \code{car::deltaMethod} work on an \code{lmmfit} fit as on an
#' \code{lme4::lmer} fit: Wald chi-square tests of the fixed effects by
#' default, or, with \code{test.statistic = "F"} (\code{test = "F"} for
#' \code{linearHypothesis}), F tests with Kenward-Roger's scaled statistic and
#' denominator degrees of freedom (REML fits only), which lmmfit computes
#' itself (\pkg{pbkrtest} is not needed).  The output has \pkg{car}'s layout.
#'
#' \code{Anova}: type II tests obey marginality (each term is tested after the
#' terms it is contained in are projected out, in the metric of the
#' covariance of the fixed effects the test uses, Kenward-Roger's adjusted one
#' for F tests, as \pkg{car} does); type III tests are of
#' each term's coefficients, intercept included, in the model's own coding (use
#' sum-to-zero contrasts for them to be meaningful).
#'
#' \code{linearHypothesis}: unlike \pkg{car}'s method for \code{lmer} fits,
#' the F test honours a nonzero right-hand side.
#'
#' @param mod,model,object a fitted \code{lmmfit} model.
#' @param type \code{"II"} or \code{"III"} (or 2, 3).
#' @param test.statistic,test \code{"Chisq"} (Wald) or \code{"F"}
#'   (Kenward-Roger).
#' @param vcov. covariance matrix of the fixed effects (or a function of the
#'   model returning it) for the Wald tests; ignored, with a warning, by the F
#'   tests, which use Kenward-Roger's adjusted covariance.
#' @param singular.ok accepted for compatibility: lmmfit has already dropped
#'   aliased columns from the fixed effects.
#' @param hypothesis.matrix,rhs the hypothesis, as for
#'   \code{car::linearHypothesis}: a matrix (or vector) of linear
#'   combinations of \code{fixef(model)}, or character equations.
#' @param verbose print the hypothesis matrix and the estimated linear
#'   functions.
#' @param g.,parameterNames,envir as for \code{car::deltaMethod}.
#' @param ... passed on to \code{car::deltaMethod}; ignored otherwise.
#' @return An \code{"anova"} data frame (\code{Anova}, \code{linearHypothesis}),
#'   or \code{car::deltaMethod}'s data frame.
#' @examples
#' if (requireNamespace("car", quietly = TRUE)) {
#'     data(Orthodont, package = "nlme")
#'     fit <- lmmfit(distance ~ age * Sex + (1 | Subject), data = Orthodont)
#'     car::Anova(fit)
#'     car::linearHypothesis(fit, "age = 0.5")
#'     car::deltaMethod(fit, "age / (Intercept)")
#' }
#' @name lmmfit-car
#' @keywords internal
NULL

#' @rdname lmmfit-car
Anova.lmmfit <- function(mod, type = c("II", "III", 2, 3), test.statistic = c("Chisq", "F"),
                         vcov. = vcov(mod), singular.ok, ...) {
    type <- match.arg(as.character(type), c("II", "III", "2", "3"))
    type <- c("2" = "II", "3" = "III", II = "II", III = "III")[[type]]
    test.statistic <- match.arg(test.statistic)
    if (length(mod$beta) == 0L) stop("the model has no fixed effects to test", call. = FALSE)
    if (test.statistic == "F" && !missing(vcov.))
        warning("test.statistic = \"F\" uses Kenward-Roger's adjusted covariance: 'vcov.' is ignored",
                call. = FALSE)
    ## the metric of type II's projections: the covariance the tests use
    if (test.statistic == "F") {
        st <- kenward_roger_setup(mod)
        Ls <- car_term_hypotheses(mod, type, st$vcov_adj)
        rows <- lapply(Ls, function(L) contrast_md(mod, L, st))
        tab <- data.frame(F = vapply(rows, `[[`, 0, "F value"), Df = vapply(rows, `[[`, 0, "NumDF"),
                          Df.res = vapply(rows, `[[`, 0, "DenDF"), `Pr(>F)` = vapply(rows, `[[`, 0, "Pr(>F)"),
                          check.names = FALSE)
        what <- "Wald F tests with Kenward-Roger df"
    } else {
        V <- car_vcov(mod, vcov.)
        Ls <- car_term_hypotheses(mod, type, V)
        rows <- lapply(Ls, function(L) wald_chisq(mod$beta, V, L))
        tab <- data.frame(Chisq = vapply(rows, `[[`, 0, "chisq"), Df = vapply(rows, `[[`, 0, "df"),
                          check.names = FALSE)
        tab$`Pr(>Chisq)` <- stats::pchisq(tab$Chisq, tab$Df, lower.tail = FALSE)
        what <- "Wald chisquare tests"
    }
    rownames(tab) <- names(Ls)
    structure(tab, heading = c(sprintf("Analysis of Deviance Table (Type %s %s)\n", type, what),
                               paste("Response:", deparse1(mod$formula[[2L]]))),
              class = c("anova", "data.frame"))
}

## The covariance of the fixed effects for the Wald tests: the fit's, or the
## user's matrix, or the user's function of the model.
car_vcov <- function(mod, vcov.) {
    V <- if (is.function(vcov.)) vcov.(mod) else vcov.
    V <- as.matrix(V)
    p <- length(mod$beta)
    if (!identical(dim(V), c(p, p))) stop(sprintf("'vcov.' must be a %d x %d matrix", p, p), call. = FALSE)
    V
}

## Wald chi-square statistic of L beta = rhs, with the rank of L V L' as df.
wald_chisq <- function(beta, V, L, rhs = 0) {
    d <- drop(L %*% beta) - rhs
    e <- eigen(L %*% V %*% t(L), symmetric = TRUE)
    pos <- e$values > max(e$values[1L], 0) * 1e-10
    z <- drop(crossprod(e$vectors[, pos, drop = FALSE], d))
    list(chisq = sum(z^2 / e$values[pos]), df = sum(pos))
}

## The hypothesis matrix of each fixed-effect term.  Type III: the rows of
## the identity for the term's coefficients (the intercept included).
## Type II: within the span of the term's and its relatives' coefficients
## (the terms that contain it), the directions orthogonal, in the metric of V,
## to the relatives' coefficients alone.
car_term_hypotheses <- function(mod, type, V) {
    X <- mod$X
    asgn <- attr(X, "assign")
    p <- ncol(X)
    labels <- attr(mod$fixed_terms, "term.labels")
    fac <- attr(mod$fixed_terms, "factors")
    I <- diag(p)
    out <- list()
    if (type == "III" && any(asgn == 0L)) out[["(Intercept)"]] <- I[asgn == 0L, , drop = FALSE]
    for (j in seq_along(labels)) {
        own <- which(asgn == j)
        if (!length(own)) next
        if (type == "III") {
            out[[labels[j]]] <- I[own, , drop = FALSE]
            next
        }
        contains <- vapply(seq_along(labels), function(k)
            k != j && all(fac[fac[, j] > 0, k] > 0), NA)
        rel <- which(asgn %in% which(contains))
        if (!length(rel)) {
            out[[labels[j]]] <- I[own, , drop = FALSE]
            next
        }
        A <- t(I[rel, , drop = FALSE])             # p x a
        B <- t(I[c(rel, own), , drop = FALSE])     # p x b
        M <- crossprod(A, V %*% B)                 # a x b: we need B c with M c = 0
        s <- svd(M, nu = 0, nv = ncol(M))
        r <- sum(s$d > max(s$d) * 1e-10)
        N <- s$v[, seq.int(r + 1L, ncol(M)), drop = FALSE]
        L <- t(B %*% N)
        L[abs(L) < 1e-14] <- 0
        out[[labels[j]]] <- L
    }
    out
}

#' @rdname lmmfit-car
linearHypothesis.lmmfit <- function(model, hypothesis.matrix, rhs = NULL, test = c("Chisq", "F"),
                                    vcov. = NULL, singular.ok = FALSE, verbose = FALSE, ...) {
    test <- match.arg(test)
    b <- model$beta
    if (length(b) == 0L) stop("the model has no fixed effects to test", call. = FALSE)
    if (test == "F" && !is.null(vcov.))
        warning("test = \"F\" uses Kenward-Roger's adjusted covariance: 'vcov.' is ignored", call. = FALSE)
    V <- if (is.null(vcov.)) vcov(model) else car_vcov(model, vcov.)
    if (is.character(hypothesis.matrix)) {
        H <- rbind(car::makeHypothesis(names(b), hypothesis.matrix, rhs))
        L <- H[, -ncol(H), drop = FALSE]
        rhs <- H[, ncol(H)]
    } else {
        L <- if (is.null(dim(hypothesis.matrix))) t(hypothesis.matrix) else hypothesis.matrix
        if (ncol(L) != length(b))
            stop(sprintf("the hypothesis matrix must have %d columns (one per fixed effect)", length(b)),
                 call. = FALSE)
        if (is.null(rhs)) rhs <- rep(0, nrow(L))
    }
    colnames(L) <- names(b)
    q <- nrow(L)
    if (verbose) {
        cat("\nHypothesis matrix:\n"); print(L)
        cat("\nRight-hand-side vector:\n"); print(rhs)
        cat("\nEstimated linear function (hypothesis.matrix %*% coef - rhs)\n")
        print(drop(L %*% b - rhs)); cat("\n")
    }
    if (test == "Chisq") {
        w <- wald_chisq(b, V, L, rhs)
        tab <- data.frame(Df = c(NA, w$df), Chisq = c(NA, w$chisq),
                          `Pr(>Chisq)` = c(NA, stats::pchisq(w$chisq, w$df, lower.tail = FALSE)),
                          check.names = FALSE)
    } else {
        if (!model$REML) stop("F test available only for linear mixed model fit by REML", call. = FALSE)
        st <- kenward_roger_setup(model)
        r <- contrast_md(model, L, st, rhs)
        ft <- list(F = r$`F value`, NumDF = r$NumDF, DenDF = r$DenDF, P = r$`Pr(>F)`)
        tab <- data.frame(Res.Df = c(ft$DenDF + ft$NumDF, ft$DenDF), Df = c(NA, ft$NumDF),
                          F = c(NA, ft$F), `Pr(>F)` = c(NA, ft$P), check.names = FALSE)
    }
    rownames(tab) <- c("1", "2")
    structure(tab, heading = c("Linear hypothesis test\n\nHypothesis:",
                               car::printHypothesis(L, rhs, names(b)), "",
                               paste0("Model 1: restricted model\nModel 2: ", deparse1(model$formula)),
                               if (is.null(vcov.)) "" else "\nNote: Coefficient covariance matrix supplied.\n"),
              class = c("anova", "data.frame"))
}

#' @rdname lmmfit-car
deltaMethod.lmmfit <- function(object, g., vcov. = vcov(object), parameterNames = names(fixef(object)),
                               ..., envir = parent.frame()) {
    V <- car_vcov(object, vcov.)
    b <- fixef(object)
    names(b) <- parameterNames
    car::deltaMethod(b, g., vcov. = V, ..., envir = envir)
}
