## lme4's generics and accessor names on lmmfit fits, without masking lme4.
##
## lmmfit exports generics of the same names as lme4's (getME, isSingular,
## ngrps, refit, isREML, isLMM) and performance's icc, so that they work
## without lme4 installed.  Whichever package is attached last, every one of
## them works on both kinds of fit:
##   * lmmfit's generics dispatch lmmfit fits to lmmfit's methods and hand
##     every other object to the function of the same name in lme4 (or
##     performance), when that package is installed;
##   * lmmfit's methods are also registered on lme4's generics when lme4's
##     namespace loads (see register_idiom_methods(), called from .onLoad),
##     and lme4's isSingular() works through getME(x, "theta") and
##     getME(x, "lower").

## Default tolerance of isSingular(), as lme4's.
SINGULAR_TOL <- 1e-4
## Normal quantile of the 95% intervals drawn by dotplot() and qqmath() of
## random effects.
RANEF_PLOT_Z <- stats::qnorm(0.975)

## Methods lmmfit registers on generics of suggested packages.
register_idiom_methods <- function() {
    ## lapply, not for: s3_register() evaluates its arguments only when lme4
    ## loads, so each must have its own binding of the generic's name
    lapply(c("getME", "ngrps", "refit", "isREML", "isLMM", "isGLMM", "isNLMM", "refitML"), function(g)
        s3_register("lme4", g, "lmmfit", get(paste0(g, ".lmmfit"), mode = "function")))
    s3_register("lattice", "dotplot", "ranef.lmmfit", dotplot.ranef.lmmfit)
    s3_register("lattice", "qqmath", "ranef.lmmfit", qqmath.ranef.lmmfit)
    invisible()
}

## The function 'name' of the suggested package 'pkg', for an object lmmfit
## does not handle; a clear error when the package is not installed.
suggested_function <- function(pkg, name, object) {
    if (!requireNamespace(pkg, quietly = TRUE))
        stop(sprintf(paste0("%s() of an object of class \"%s\": lmmfit's %s() handles lmmfit fits; ",
                            "for other models it calls package '%s', which is not installed"),
                     name, class(object)[1L], name, pkg), call. = FALSE)
    getExportedValue(pkg, name)
}

## ---- generics shared with lme4 ---------------------------------------------

#' lme4's generics for lmmfit fits, without masking lme4
#'
#' \code{getME}, \code{isSingular}, \code{ngrps}, \code{refit},
#' \code{isREML} and \code{isLMM} are lme4's names.  lmmfit exports them so
#' that they work on lmmfit fits without lme4; for any other object (an
#' \code{lmer} fit, say) they call lme4's function of the same name.  When
#' lme4 is loaded, lmmfit's methods are also registered on lme4's generics.
#' So, with lme4, lmerTest and lmmfit attached in any order, each of these
#' works on both kinds of fit.
#'
#' @param object,x a fitted model: an \code{lmmfit} fit, or any model lme4's
#'   function of the same name accepts (lme4 must then be installed).
#' @param tol tolerance of \code{isSingular}: a fit is singular when a
#'   diagonal element of a relative covariance factor (a \code{theta} with
#'   lower bound 0) is below it.
#' @param ... passed to the method (or to lme4's function).
#' @return \code{isSingular}, \code{isREML}, \code{isLMM}: \code{TRUE} or
#'   \code{FALSE}.  \code{ngrps}: the number of levels of each grouping
#'   factor.
#' @seealso \code{\link{getME}}, \code{\link{refit}}, \code{\link{icc}}.
#' @examples
#' data(Orthodont, package = "nlme")
#' fit <- lmmfit(distance ~ age + (age | Subject), data = Orthodont)
#' isSingular(fit)
#' isREML(fit)
#' ngrps(fit)
#' @name lme4-generics
NULL

#' @rdname lme4-generics
#' @export
isREML <- function(x, ...) UseMethod("isREML")

#' @rdname lme4-generics
#' @export
isREML.lmmfit <- function(x, ...) isTRUE(x$REML)

#' @rdname lme4-generics
#' @export
isREML.default <- function(x, ...) suggested_function("lme4", "isREML", x)(x, ...)

#' @rdname lme4-generics
#' @export
isLMM <- function(x, ...) UseMethod("isLMM")

#' @rdname lme4-generics
#' @export
isLMM.lmmfit <- function(x, ...) TRUE

#' @rdname lme4-generics
#' @export
isLMM.default <- function(x, ...) suggested_function("lme4", "isLMM", x)(x, ...)

## registered on lme4's generics only (lmmfit does not export these names)
isGLMM.lmmfit <- function(x, ...) FALSE
isNLMM.lmmfit <- function(x, ...) FALSE
refitML.lmmfit <- function(x, ...) refit_as_ml(x)

#' @rdname lme4-generics
#' @export
ngrps.default <- function(object, ...) suggested_function("lme4", "ngrps", object)(object, ...)

#' @rdname lme4-generics
#' @export
isSingular.default <- function(x, tol = SINGULAR_TOL, ...) {
    suggested_function("lme4", "isSingular", x)(x, tol = tol)
}

#' @rdname refit
#' @export
refit.default <- function(object, newresp = NULL, ...) {
    f <- suggested_function("lme4", "refit", object)
    if (missing(newresp)) f(object, ...) else f(object, newresp, ...)
}

## ---- getME ---------------------------------------------------------------------

## Every name getME() knows, in lme4's order.
GETME_NAMES <- c("X", "Z", "Zt", "Ztlist", "mmList", "y", "mu", "u", "b", "Gp", "Tp", "L",
                 "Lambda", "Lambdat", "Lind", "Tlist", "A", "RX", "RZX", "sigma", "flist",
                 "fixef", "beta", "theta", "ST", "REML", "is_REML", "n_rtrms", "n_rfacs",
                 "N", "n", "p", "q", "p_i", "l_i", "q_i", "k", "m_i", "m", "cnms", "devcomp",
                 "offset", "lower", "devfun", "glmer.nb.theta")

#' Extract components of a fitted model (lme4's getME)
#'
#' \code{getME(fit, name)} gives the component \code{name} of an lmmfit fit
#' under lme4's name and in lme4's form: the model matrices \code{Z},
#' \code{Zt}, \code{Lambda}, \code{Lambdat} and \code{A} as sparse
#' \pkg{Matrix} matrices when \pkg{Matrix} is installed (base matrices
#' otherwise), \code{devcomp} as lme4's list of \code{cmp} and \code{dims}.
#' For any other object it calls \code{lme4::getME}.
#'
#' The components are those of \code{lme4::getME} (see there), with these
#' differences: \code{"L"} is the dense lower-triangular Cholesky factor of
#' \eqn{\Lambda' Z' W Z \Lambda + I} without lme4's fill-reducing
#' permutation, and \code{"RZX"} the matching cross term \eqn{L^{-1}
#' \Lambda' Z' W X} (both as \code{\link{lmm_get}}); \code{"devfun"} and
#' \code{"glmer.nb.theta"} are refused with an error.  \code{"ALL"}, or
#' several names, give a named list.
#'
#' @param object a fitted model.
#' @param name the name(s) of the component(s).
#' @param ... ignored.
#' @return The component, or a named list of components.
#' @examples
#' data(Orthodont, package = "nlme")
#' fit <- lmmfit(distance ~ age + (age | Subject), data = Orthodont)
#' getME(fit, "theta")
#' getME(fit, c("sigma", "lower"))
#' @export
getME <- function(object, name, ...) UseMethod("getME")

#' @rdname getME
#' @export
getME.default <- function(object, name, ...) {
    f <- suggested_function("lme4", "getME", object)
    if (missing(name)) f(object, ...) else f(object, name, ...)
}

#' @rdname getME
#' @export
getME.lmmfit <- function(object, name, ...) {
    if (missing(name)) stop("getME(): 'name' is missing; the names are: ",
                            paste(GETME_NAMES, collapse = ", "), call. = FALSE)
    if (!is.character(name) || !length(name) || anyNA(name))
        stop("getME(): 'name' must be a character vector of component names", call. = FALSE)
    if (is_gls(object))
        stop("getME(): a generalised least-squares fit has no random effects, so no components of ",
             "lme4's merMod; use fixef(), vcov(), sigma(), corpar(), varpar()", call. = FALSE)
    if (identical(name, "ALL")) name <- setdiff(GETME_NAMES, c("devfun", "glmer.nb.theta"))
    bad <- setdiff(name, GETME_NAMES)
    if (length(bad))
        stop(sprintf("getME(): unknown component%s %s; the names are: %s",
                     if (length(bad) > 1L) "s" else "", paste0("'", bad, "'", collapse = ", "),
                     paste(GETME_NAMES, collapse = ", ")), call. = FALSE)
    if (length(name) > 1L) return(setNames(lapply(name, function(nm) getme_one(object, nm)), name))
    getme_one(object, name)
}

## Whether to return sparse Matrix objects, as lme4 does.
use_matrix <- function() requireNamespace("Matrix", quietly = TRUE)

## The n x q random-effects model matrix, sparse when Matrix is available.
sparse_Z <- function(object) {
    if (!use_matrix()) return(dense_Z(object))
    n <- length(object$y)
    i <- j <- x <- vector("list", 0L)
    off <- 0L
    for (t in object$reterms) {
        k <- ncol(t$Z)
        lev <- as.integer(t$factor)
        for (c in seq_len(k)) {
            i[[length(i) + 1L]] <- seq_len(n)
            j[[length(j) + 1L]] <- off + (lev - 1L) * k + c
            x[[length(x) + 1L]] <- as.double(t$Z[, c])
        }
        off <- off + t$nlev * k
    }
    Matrix::sparseMatrix(i = unlist(i), j = unlist(j), x = unlist(x), dims = c(n, off),
                         dimnames = list(rownames(object$frame), z_colnames(object)))
}

## The q x q relative covariance factor, sparse when Matrix is available.
sparse_Lambda <- function(object) {
    L <- dense_Lambda(object)
    if (use_matrix()) Matrix::Matrix(L, sparse = TRUE) else L
}

## The transpose of a base or Matrix matrix (Matrix's t() is an S4 method
## that base::t() does not reach).
transpose <- function(x) if (inherits(x, "Matrix")) Matrix::t(x) else t(x)

## Index of each lower-triangle element of a k x k matrix in theta's
## (column-major) order within its term.
lower_index <- function(k) {
    m <- matrix(0L, k, k)
    m[lower.tri(m, diag = TRUE)] <- seq_len(k * (k + 1L) / 2L)
    m
}

## Per-term counts, named as lme4 names them.
term_labels <- function(object) vapply(object$reterms, `[[`, "", "label")
term_groups_chr <- function(object) vapply(object$reterms, `[[`, "", "group")

getme_one <- function(object, name) {
    re <- object$reterms
    k_j <- vapply(re, function(t) ncol(t$Z), 1L)
    l_j <- vapply(re, `[[`, 1L, "nlev")
    m_j <- k_j * (k_j + 1L) / 2L
    n <- length(object$y)
    switch(name,
           X = , y = , theta = , RX = , flist = , cnms = , L = lmm_get(object, name),
           Z = sparse_Z(object),
           Zt = transpose(sparse_Z(object)),
           A = transpose(sparse_Lambda(object)) %*% transpose(sparse_Z(object)),
           Lambda = sparse_Lambda(object),
           Lambdat = transpose(sparse_Lambda(object)),
           Ztlist = {
               Zt <- transpose(sparse_Z(object))
               out <- list(); nms <- character(); off <- 0L
               for (j in seq_along(re)) {
                   cn <- colnames(re[[j]]$Z)
                   for (c in seq_along(cn)) {
                       rows <- off + (seq_len(l_j[j]) - 1L) * k_j[j] + c
                       out[[length(out) + 1L]] <- Zt[rows, , drop = FALSE]
                       nms <- c(nms, paste(re[[j]]$group, cn[c], sep = "."))
                   }
                   off <- off + l_j[j] * k_j[j]
               }
               setNames(out, nms)
           },
           mmList = setNames(lapply(re, function(t) {
               Z <- t$Z
               dimnames(Z) <- list(rownames(object$frame), colnames(t$Z))
               Z
           }), term_labels(object)),
           mu = unname(linear_predictor(object)),
           u = object$u,
           b = {
               b <- drop(dense_Lambda(object) %*% object$u)
               if (use_matrix()) Matrix::Matrix(b, ncol = 1L) else matrix(b, ncol = 1L)
           },
           Gp = as.integer(c(0L, cumsum(k_j * l_j))),
           Tp = setNames(c(0, cumsum(m_j)), c("beg__", term_groups_chr(object))),
           Lind = unlist(lapply(seq_along(re), function(j) {
               li <- lower_index(k_j[j])
               ## nonzeros of Lambdat column by column: Lambda's row r, columns 1..r
               one <- unlist(lapply(seq_len(k_j[j]), function(r) li[r, seq_len(r)]))
               rep(one, l_j[j]) + sum(m_j[seq_len(j - 1L)])
           })),
           Tlist = setNames(lapply(theta_to_lambda(object$theta, re), unname), term_groups_chr(object)),
           ST = setNames(lapply(theta_to_lambda(object$theta, re), function(l) {
               l <- unname(l)
               d <- diag(l)
               s <- l %*% diag(1 / ifelse(d == 0, 1, d), nrow = length(d))
               diag(s) <- d
               s
           }), term_groups_chr(object)),
           RZX = {
               L <- lmm_get(object, "L")
               ZL <- dense_Z(object) %*% dense_Lambda(object)
               w <- if (is.null(object$weights)) rep(1, n) else object$weights
               R <- forwardsolve(L, crossprod(ZL, w * object$X))
               dimnames(R) <- list(z_colnames(object), colnames(object$X))
               R
           },
           sigma = sigma(object),
           fixef = object$beta,
           beta = unname(object$beta),
           REML = if (object$REML) length(object$beta) else 0L,
           is_REML = isTRUE(object$REML),
           n_rtrms = length(re),
           n_rfacs = length(unique(term_groups_chr(object))),
           N = nrow(object$X), n = n, p = length(object$beta), q = length(object$u),
           p_i = setNames(k_j, term_labels(object)),
           l_i = setNames(l_j, term_groups_chr(object))[!duplicated(term_groups_chr(object))],
           q_i = setNames(k_j * l_j, term_labels(object)),
           k = length(re),
           m_i = setNames(as.double(m_j), term_labels(object)),
           m = length(object$theta),
           devcomp = lme4_devcomp(object),
           offset = if (is.null(object$offset)) rep(0, n) else object$offset,
           lower = setNames(theta_lower(object$reterms), names(object$theta)),
           devfun = ,
           glmer.nb.theta = stop(sprintf("getME(): component '%s' is not available for an lmmfit fit%s",
                                         name, if (name == "devfun") paste0(
                                             " (lmmfit's deviance is evaluated in C; refit(), ",
                                             "profile() and lmm_get() give its uses)") else ""),
                                 call. = FALSE))
}

## lme4's devcomp: the deviance components and the dimensions of the model.
lme4_devcomp <- function(object) {
    n <- length(object$y)
    p <- length(object$beta)
    w <- if (is.null(object$weights)) rep(1, n) else object$weights
    r <- object$y - linear_predictor(object)
    wrss <- sum(w * r^2)
    ussq <- sum(object$u^2)
    cmp <- c(ldL2 = object$ldL2, ldRX2 = object$ldRX2, wrss = wrss, ussq = ussq,
             pwrss = object$pwrss, drsum = NA_real_,
             REML = if (object$REML) object$deviance_value else NA_real_,
             dev = if (object$REML) NA_real_ else object$deviance_value,
             sigmaML = sigma_hat(object$pwrss, n), sigmaREML = sigma_hat(object$pwrss, n, p, TRUE))
    dims <- c(N = nrow(object$X), n = n, p = p, nmp = n - p, q = length(object$u),
              nth = length(object$theta), useSc = 1L, reTrms = length(object$reterms),
              spFe = 0L, REML = if (object$REML) p else 0L, GLMM = 0L, NLMM = 0L)
    storage.mode(dims) <- "integer"
    list(cmp = cmp, dims = dims)
}

## ---- methods lme4 users call ------------------------------------------------

#' Further methods lme4 users call on a fit
#'
#' \code{family} (gaussian, identity link), \code{weights} (the prior
#' weights, ones without them), \code{getData} (the data the model was
#' fitted to, evaluated again from the call), \code{extractAIC} (the AIC of
#' the maximum-likelihood fit, refitting a REML fit by ML as lme4 does, so
#' that \code{drop1} compares models by likelihood ratio), \code{hatvalues},
#' \code{rstudent} and \code{cooks.distance}.
#'
#' The hat matrix maps the response (less any offset) to the fitted values
#' \eqn{X\hat\beta + Z\hat b} of the penalised least-squares problem:
#' \eqn{H = A (A' W A + D)^{-1} A' W} with \eqn{A = [Z\Lambda, X]}, \eqn{W}
#' the prior weights and \eqn{D} the identity on the \eqn{q} random-effects
#' columns, zero on the fixed ones.  It is computed densely (memory
#' \eqn{n(p + q)}).  \code{hatvalues(fit, fullHatMatrix = TRUE)} gives, as
#' lme4, the symmetric \eqn{W^{1/2} H W^{-1/2}} (H itself without weights),
#' which maps \eqn{W^{1/2} y} to \eqn{W^{1/2}} times the fitted values.  \code{rstudent} gives the Pearson residuals over
#' \eqn{\hat\sigma\sqrt{1 - h_i}}, \code{cooks.distance} \eqn{r_i^2 h_i /
#' (p \hat\sigma^2 (1 - h_i)^2)} (\eqn{r_i} the Pearson residuals), as lme4.
#'
#' @param object,model,fit a fitted \code{lmmfit} model.
#' @param type for \code{weights}: \code{"prior"} or \code{"working"} (the
#'   same for a linear mixed model).
#' @param fullHatMatrix return the whole \eqn{n \times n}{n x n} hat matrix
#'   rather than its diagonal.
#' @param scale must be 0 (as in \code{extractAIC} of \code{lm}).
#' @param k the penalty per parameter of the AIC.
#' @param ... ignored.
#' @return \code{family}: a \code{\link{family}} object; \code{hatvalues},
#'   \code{rstudent}, \code{cooks.distance}, \code{weights}: one value per
#'   observation of the fit; \code{extractAIC}: the equivalent degrees of
#'   freedom and the AIC.
#' @examples
#' data(Orthodont, package = "nlme")
#' fit <- lmmfit(distance ~ age + (1 | Subject), data = Orthodont)
#' family(fit)
#' head(hatvalues(fit))
#' extractAIC(fit)
#' drop1(fit, test = "Chisq")
#' @name lmmfit-lme4-methods
NULL

#' @rdname lmmfit-lme4-methods
#' @importFrom stats family gaussian
#' @export
family.lmmfit <- function(object, ...) gaussian()

#' @rdname lmmfit-lme4-methods
#' @importFrom stats weights
#' @export
weights.lmmfit <- function(object, type = c("prior", "working"), ...) {
    match.arg(type)
    if (is.null(object$weights)) rep(1, length(object$y)) else object$weights
}

#' @rdname lmmfit-lme4-methods
#' @importFrom nlme getData
#' @export
getData.lmmfit <- function(object) {
    d <- object$call$data
    if (is.null(d)) stop("getData(): the model was fitted without a 'data' argument", call. = FALSE)
    env <- environment(object$formula)
    if (is.null(env)) env <- parent.frame()
    eval(d, env)
}

#' @rdname lmmfit-lme4-methods
#' @importFrom stats extractAIC
#' @export
extractAIC.lmmfit <- function(fit, scale = 0, k = 2, ...) {
    if (!identical(scale, 0) && !identical(scale, 0L))
        stop("extractAIC(): 'scale' must be 0 for an lmmfit fit (sigma is estimated)", call. = FALSE)
    ll <- logLik(refit_as_ml(fit))
    edf <- attr(ll, "df")
    c(edf, -2 * as.numeric(ll) + k * edf)
}

## The dense factor B = C^{-T} A' of the penalised least-squares problem
## (C' C = A' W A + D), the columns of A' scaled by sqrt(w): H = B' B
## (symmetrised hat matrix).
hat_factor <- function(object) {
    ## the hat matrix of the whitened model is not one of these observations
    if (has_resid_structure(object))
        stop("hatvalues() and cooks.distance() are not available for fits with a residual variance or ",
             "correlation structure", call. = FALSE)
    n <- length(object$y)
    w <- if (is.null(object$weights)) rep(1, n) else object$weights
    A <- cbind(dense_Z(object) %*% dense_Lambda(object), object$X) * sqrt(w)
    q <- length(object$u)
    M <- crossprod(A)
    diag(M) <- diag(M) + c(rep(1, q), rep(0, ncol(object$X)))
    C <- chol(M)
    list(B = backsolve(C, t(A), transpose = TRUE), w = w)
}

#' @rdname lmmfit-lme4-methods
#' @importFrom stats hatvalues
#' @export
hatvalues.lmmfit <- function(model, fullHatMatrix = FALSE, ...) {
    hf <- hat_factor(model)
    nm <- rownames(model$frame)
    if (isTRUE(fullHatMatrix)) {
        ## the symmetric form B'B = W^{1/2} H W^{-1/2}, as lme4
        H <- crossprod(hf$B)
        dimnames(H) <- list(nm, nm)
        return(H)
    }
    setNames(colSums(hf$B^2), nm)
}

#' @rdname lmmfit-lme4-methods
#' @importFrom stats rstudent
#' @export
rstudent.lmmfit <- function(model, ...) {
    r <- pearson_unpadded(model)
    r / (sigma(model) * sqrt(1 - hatvalues(model)))
}

#' @rdname lmmfit-lme4-methods
#' @importFrom stats cooks.distance
#' @export
cooks.distance.lmmfit <- function(model, ...) {
    h <- hatvalues(model)
    r <- pearson_unpadded(model)
    r^2 * h / (sigma(model)^2 * length(model$beta) * (1 - h)^2)
}

## Pearson residuals, one per observation of the fit (no na.exclude padding).
pearson_unpadded <- function(object) {
    r <- object$y - linear_predictor(object)
    if (!is.null(object$weights)) r <- r * sqrt(object$weights)
    setNames(r, rownames(object$frame))
}

#' @export
nlme::getData

## ---- lattice plots of random effects --------------------------------------------

## One random-effects data frame in long form: the values, their term, their
## level (ordered by the first column's values, as lme4's plots) and the
## conditional standard deviations (NA without condVar).
ranef_long <- function(df) {
    if (!is.data.frame(df)) stop("plots of random effects need ranef(drop = FALSE)", call. = FALSE)
    nl <- nrow(df)
    cn <- colnames(df)
    pv <- attr(df, "postVar")
    se <- if (is.null(pv)) rep(NA_real_, nl * length(cn)) else {
        arrs <- if (is.list(pv)) pv else list(pv)
        as.vector(do.call(cbind, lapply(arrs, function(a)
            matrix(sqrt(apply(a, 3L, diag)), nrow = dim(a)[3L], byrow = dim(a)[1L] > 1L))))
    }
    data.frame(values = unlist(df, use.names = FALSE),
               ind = factor(rep(cn, each = nl), levels = cn),
               .nn = factor(rep(rownames(df), length(cn)), levels = rownames(df)[order(df[[1L]])]),
               se = se, stringsAsFactors = FALSE)
}

#' Dot plots and normal quantile plots of random effects
#'
#' lattice's \code{dotplot} and \code{qqmath} of \code{ranef(fit)}, one
#' trellis plot per grouping factor with one panel per random-effects
#' column, as lme4's: the levels ordered by their first random effect, with
#' intervals of \eqn{\pm} \code{qnorm(0.975)} conditional standard
#' deviations when \code{ranef} was called with \code{condVar = TRUE} (its
#' default).  Needs the \pkg{lattice} package.
#'
#' @param x the result of \code{\link{ranef.lmmfit}}.
#' @param data ignored (lattice's argument).
#' @param main \code{TRUE}: each plot titled by its grouping factor;
#'   otherwise passed to lattice.
#' @param transf for \code{dotplot}: a function applied to the random effects
#'   and the ends of their intervals (e.g. \code{exp}).
#' @param ... passed to \code{lattice::dotplot} or \code{lattice::xyplot} /
#'   \code{lattice::qqmath}.
#' @return A named list of \code{"trellis"} objects, one per grouping factor.
#' @examples
#' if (requireNamespace("lattice", quietly = TRUE)) {
#'   data(Orthodont, package = "nlme")
#'   fit <- lmmfit(distance ~ age + (age | Subject), data = Orthodont)
#'   lattice::dotplot(ranef(fit))
#'   lattice::qqmath(ranef(fit))
#' }
#' @name ranef-plots
NULL

## registered on lattice's dotplot generic when lattice loads; exported
## under its full name, as lme4 exports dotplot.ranef.mer
#' @rdname ranef-plots
#' @usage dotplot.ranef.lmmfit(x, data, main = TRUE, transf = I, ...)
#' @export dotplot.ranef.lmmfit
dotplot.ranef.lmmfit <- function(x, data, main = TRUE, transf = I, ...) {
    if (!requireNamespace("lattice", quietly = TRUE))
        stop("dotplot() of random effects needs package 'lattice'", call. = FALSE)
    z <- RANEF_PLOT_Z
    out <- lapply(names(x), function(g) {
        d <- ranef_long(x[[g]])
        panel <- function(x, y, se, subscripts, ...) {
            if (!all(is.na(se))) {
                s <- se[subscripts]
                lattice::panel.segments(transf(x - z * s), as.numeric(y), transf(x + z * s),
                                        as.numeric(y), col = "black")
            }
            lattice::panel.xyplot(transf(x), y, pch = 16, ...)
        }
        lattice::dotplot(.nn ~ values | ind, data = d, se = d$se, panel = panel,
                         scales = list(x = list(relation = "free")),
                         main = if (isTRUE(main)) g else if (!isFALSE(main)) main, xlab = NULL, ...)
    })
    setNames(out, names(x))
}

## registered on lattice's qqmath generic when lattice loads
#' @rdname ranef-plots
#' @usage qqmath.ranef.lmmfit(x, data, main = TRUE, ...)
#' @export qqmath.ranef.lmmfit
qqmath.ranef.lmmfit <- function(x, data, main = TRUE, ...) {
    if (!requireNamespace("lattice", quietly = TRUE))
        stop("qqmath() of random effects needs package 'lattice'", call. = FALSE)
    z <- RANEF_PLOT_Z
    out <- lapply(names(x), function(g) {
        d <- ranef_long(x[[g]])
        ttl <- if (isTRUE(main)) g else if (!isFALSE(main)) main
        if (all(is.na(d$se)))
            return(lattice::qqmath(~ values | ind, data = d, main = ttl,
                                   scales = list(y = list(relation = "free")), ...))
        ## within each column: sorted values against normal quantiles
        d <- do.call(rbind, lapply(split(d, d$ind), function(p) {
            p <- p[order(p$values), , drop = FALSE]
            p$nq <- stats::qnorm(stats::ppoints(nrow(p)))
            p
        }))
        panel <- function(x, y, se, subscripts, ...) {
            s <- se[subscripts]
            lattice::panel.segments(x - z * s, y, x + z * s, y, col = "black")
            lattice::panel.xyplot(x, y, pch = 16, ...)
        }
        lattice::xyplot(nq ~ values | ind, data = d, se = d$se, panel = panel, main = ttl,
                        xlab = NULL, ylab = "Standard normal quantiles",
                        scales = list(x = list(relation = "free")), ...)
    })
    setNames(out, names(x))
}

#' @rdname lmmfit-lme4-methods
#' @param scope,trace as \code{\link{drop1}}.
#' @param test \code{"none"} or \code{"Chisq"} (likelihood-ratio tests of
#'   maximum-likelihood fits); lme4's \code{"user"} (with \code{sumFun}) is
#'   refused with an error.
#' @param sumFun lme4's argument for \code{test = "user"}: not supported.
#' @details \code{drop1} is \code{stats::drop1} on \code{extractAIC}, with
#'   lme4's column names (\code{npar}, \code{Pr(Chi)}).
#' @importFrom stats drop1
#' @export
drop1.lmmfit <- function(object, scope, scale = 0, test = c("none", "Chisq", "user"), k = 2,
                         trace = FALSE, sumFun = NULL, ...) {
    test <- match.arg(test)
    if (test == "user" || !is.null(sumFun))
        stop("drop1(): test = \"user\" and 'sumFun' (lme4's user-defined summaries) are not supported ",
             "for lmmfit fits; use test = \"Chisq\"", call. = FALSE)
    tab <- NextMethod(test = test)
    names(tab)[names(tab) == "Df"] <- "npar"
    names(tab)[names(tab) == "Pr(>Chi)"] <- "Pr(Chi)"
    tab
}

## ---- lme4's formula conventions ---------------------------------------------

## A formula given as a single string becomes a formula (in the caller's
## environment), and '.' on the right side (outside random-effects terms)
## stands for every column of 'data' not on the left side, as in lme4.
lme4_formula <- function(formula, data, env) {
    if (is.character(formula)) {
        if (length(formula) != 1L || is.na(formula))
            stop("'formula' given as a string must be a single string such as \"y ~ x + (1 | g)\"",
                 call. = FALSE)
        formula <- stats::as.formula(formula, env = env)
    }
    if (!inherits(formula, "formula") || length(formula) != 3L) return(formula)
    if (!"." %in% all.names(formula[[3L]])) return(formula)
    if (!is.data.frame(data))
        stop("'.' in the formula needs a data frame 'data' to stand for its columns", call. = FALSE)
    others <- setdiff(names(data), all.vars(formula[[2L]]))
    if (!length(others)) stop("'.' in the formula stands for no column of 'data'", call. = FALSE)
    dot <- Reduce(function(a, b) call("+", a, b), lapply(others, as.name))
    expand <- function(e) {
        if (identical(e, as.name("."))) return(dot)
        if (!is.call(e) || is_bar(e)) return(e)
        for (i in seq_along(e)[-1L]) if (!is.null(e[[i]])) e[[i]] <- expand(e[[i]])
        e
    }
    formula[[3L]] <- expand(formula[[3L]])
    formula
}

## The formula with each '||' term written out as its uncorrelated terms,
## (x || g) -> ((1 | g) + (0 + x | g)), as lme4 stores it.
expand_double_bars <- function(formula) {
    expand <- function(e) {
        if (!is.call(e)) return(e)
        if (identical(e[[1L]], quote(`||`))) {
            parts <- lapply(split_double_bar(e[[2L]]), function(l) call("(", call("|", l, e[[3L]])))
            return(call("(", Reduce(function(a, b) call("+", a, b), parts)))
        }
        if (is_bar(e)) return(e)
        for (i in seq_along(e)[-1L]) if (!is.null(e[[i]])) e[[i]] <- expand(e[[i]])
        e
    }
    formula[[length(formula)]] <- expand(formula[[length(formula)]])
    formula
}

#' Update and re-fit an lmmfit model
#'
#' As \code{\link{update}}: the call of the fit, with a formula updated by
#' \code{\link{update.formula}} and any other argument replaced, evaluated
#' again.  As in lme4, the \code{||} terms of the model's formula are first
#' written out as their uncorrelated terms, so that one of them can be
#' removed: \code{update(fit, . ~ . - (0 + Days | Subject))} of a model with
#' \code{(Days || Subject)} keeps \code{(1 | Subject)}.
#'
#' @param object a fitted \code{lmmfit} model.
#' @param formula. changes to the formula (see \code{\link{update.formula}}).
#' @param ... arguments of \code{\link{lmmfit}} to add or replace.
#' @param evaluate \code{FALSE}: return the call instead of evaluating it.
#' @return The new fit (or its call).
#' @examples
#' data(Orthodont, package = "nlme")
#' fit <- lmmfit(distance ~ age + (age || Subject), data = Orthodont)
#' formula(update(fit, . ~ . - (0 + age | Subject)))
#' @export
update.lmmfit <- function(object, formula., ..., evaluate = TRUE) {
    call <- object$call
    if (is.null(call)) stop("update(): the fit has no call to update", call. = FALSE)
    extras <- match.call(expand.dots = FALSE)$...
    if (!missing(formula.)) {
        old <- formula(object)
        if (is.character(old)) old <- stats::as.formula(old)
        call$formula <- stats::update.formula(expand_double_bars(old), formula.)
    }
    for (a in names(extras)) call[[a]] <- extras[[a]]
    if (evaluate) eval(call, parent.frame()) else call
}

## ---- simulate() at new data -----------------------------------------------------

## Responses simulated at 'newdata', in lme4's order of random numbers: with
## new random effects (conditional = FALSE), first the spherical random
## effects of every replicate (a q x nsim matrix, q the columns of Z built
## from newdata: each term's levels present in newdata, in the fitted order,
## then any new levels, sorted), then the residuals (an n x nsim matrix);
## conditional on the fitted random effects, the residuals only.  Rows whose
## prediction is missing give NA.
simulate_newdata <- function(object, nsim, newdata, conditional, allow.new.levels, na.action) {
    if (!is.data.frame(newdata)) newdata <- as.data.frame(newdata)
    s <- sigma(object)
    n <- nrow(newdata)
    if (conditional) {
        mu <- predict.lmmfit(object, newdata, re.form = NULL, allow.new.levels = allow.new.levels)
        Y <- mu + s * matrix(stats::rnorm(n * nsim), n, nsim)
    } else {
        mu <- predict.lmmfit(object, newdata, re.form = NA)
        env <- environment(object$fixed_terms)
        if (is.null(env)) env <- parent.frame()
        specs <- reterm_specs(object)
        lam <- theta_to_lambda(object$theta, object$reterms)
        blocks <- lapply(seq_along(object$reterms), function(j) {
            t <- object$reterms[[j]]
            g <- as.character(eval(specs[[j]]$group, newdata, env))
            known <- levels(t$factor)
            new <- setdiff(unique(g[!is.na(g)]), known)
            if (length(new) && !allow.new.levels)
                stop(sprintf(paste0("simulate(): new level%s in 'newdata' for grouping factor '%s': %s; ",
                                    "use allow.new.levels = TRUE"), if (length(new) > 1L) "s" else "",
                             t$group, paste(utils::head(new, 5L), collapse = ", ")), call. = FALSE)
            levs <- c(known[known %in% g], sort(new))
            zt <- with_predvars(terms(eval(call("~", specs[[j]]$lhs))), object$frame)
            zmf <- model.frame(zt, newdata, na.action = stats::na.pass, xlev = .getXlevels(zt, object$frame))
            Zj <- model.matrix(zt, zmf)
            list(lev = match(g, levs), nlev = length(levs), Z = Zj, lambda = lam[[j]])
        })
        q <- sum(vapply(blocks, function(b) b$nlev * ncol(b$Z), 1))
        U <- matrix(stats::rnorm(q * nsim), q, nsim)
        E <- matrix(stats::rnorm(n * nsim), n, nsim)
        Y <- mu + s * E
        off <- 0L
        for (b in blocks) {
            k <- ncol(b$Z)
            for (i in seq_len(nsim)) {
                ## b* = sigma * lambda u*, one row per level
                Bs <- s * matrix(U[off + seq_len(b$nlev * k), i], b$nlev, k, byrow = TRUE) %*% t(b$lambda)
                Bi <- Bs[b$lev, , drop = FALSE]
                Bi[is.na(b$lev), ] <- 0
                Y[, i] <- Y[, i] + rowSums(b$Z * Bi)
            }
            off <- off + b$nlev * k
        }
    }
    Y[is.na(mu), ] <- NA
    out <- as.data.frame(Y)
    names(out) <- paste0("sim_", seq_len(nsim))
    rownames(out) <- rownames(newdata)
    if (anyNA(mu) && !identical(na.action, stats::na.pass) && !identical(na.action, "na.pass")) {
        kept <- attr(prediction_na_action(setNames(mu, rownames(newdata)), na.action), "kept")
        out <- out[kept, , drop = FALSE]
    }
    out
}
