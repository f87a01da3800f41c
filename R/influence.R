## Deletion influence diagnostics: influence() and its dfbeta, dfbetas and
## cooks.distance methods, in the layout of lme4's influence.merMod.

#' Deletion influence diagnostics for an lmmfit model
#'
#' \code{influence(fit, groups)} refits the model with each level of the
#' grouping factor(s) \code{groups} deleted in turn (each observation, when
#' \code{groups} is omitted) and records the fixed effects, the variance
#' components and the covariance matrix of the fixed effects of every refit,
#' in the layout of lme4's \code{influence} method for \code{lmer} fits.
#' The refits are iterated to convergence (lmmfit has no \code{maxfun}).
#'
#' \code{dfbeta} gives \eqn{\hat\beta_{(-i)} - \hat\beta} (or, with
#' \code{which = "var.cov"}, the change in the variance components),
#' \code{dfbetas} that over the standard errors of the refit, and
#' \code{cooks.distance} \eqn{(G - p)/(G p)\, d_i' V^{-1} d_i}, \eqn{d_i} the
#' change in the fixed effects, \eqn{V} the covariance matrix of the full
#' fit's fixed effects, \eqn{G} the number of deleted groups and \eqn{p}
#' the number of fixed effects (lme4's scaling).
#'
#' The variance components are \code{sigma^2}, then for each random-effects
#' term its variances \code{v[name]} and covariances \code{C[row,col]}, in
#' the order of the lower triangle of the covariance matrix, column by
#' column.
#'
#' @param model a fitted \code{lmmfit} model; for the other functions, the
#'   result of \code{influence}.
#' @param groups names of grouping variables of the data: each combination
#'   of their levels is deleted in turn; omitted, each observation.
#' @param data the data the model was fitted to (by default evaluated again
#'   from the fit's call, see \code{getData}).
#' @param do.coef \code{FALSE}: only the hat values (no refits).
#' @param ncores number of processes for the refits (forked, via
#'   \code{parallel::mclapply}; 1 on Windows).
#' @param which \code{"fixed"} (the fixed effects) or \code{"var.cov"} (the
#'   variance components).
#' @param ... \code{maxfun} and \code{start} (lme4's arguments) are refused
#'   with an error; anything else is an error too.
#' @return \code{influence}: a list of class \code{"influence.lmmfit"} with
#'   \code{fixed.effects}, \code{fixed.effects[-groups]} (one row per deleted
#'   group), \code{var.cov.comps}, \code{var.cov.comps[-groups]},
#'   \code{vcov}, \code{vcov[-groups]} (a list), \code{groups},
#'   \code{deleted} (a factor of the deleted groups, one value per group),
#'   \code{converged} and \code{function.evals}.
#' @examples
#' data(Orthodont, package = "nlme")
#' fit <- lmmfit(distance ~ age + (1 | Subject), data = Orthodont)
#' inf <- influence(fit, "Subject")
#' head(dfbeta(inf))
#' head(cooks.distance(inf))
#' @importFrom stats influence
#' @export
influence.lmmfit <- function(model, groups, data, do.coef = TRUE,
                             ncores = getOption("mc.cores", 1L), ...) {
    dots <- list(...)
    if (length(dots)) {
        nm <- names(dots)
        if (is.null(nm)) nm <- rep("", length(dots))
        known <- intersect(nm, c("maxfun", "start"))
        if (length(known))
            stop(sprintf(paste0("influence(): argument%s %s of lme4's influence() %s not supported by ",
                                "lmmfit, whose refits are iterated to convergence from their own start"),
                         if (length(known) > 1L) "s" else "", paste0("'", known, "'", collapse = ", "),
                         if (length(known) > 1L) "are" else "is"), call. = FALSE)
        stop(sprintf("influence(): unused argument%s %s", if (length(dots) > 1L) "s" else "",
                     paste0("'", ifelse(nzchar(nm), nm, "<unnamed>"), "'", collapse = ", ")),
             call. = FALSE)
    }
    if (!isTRUE(do.coef)) return(list(hat = hatvalues(model)))
    if (has_resid_structure(model))
        stop("influence() is not available for models with a residual variance or correlation structure", call. = FALSE)
    if (missing(data)) data <- getData(model)
    if (!is.data.frame(data)) data <- as.data.frame(data)
    rows <- match(rownames(model$frame), rownames(data))
    if (anyNA(rows))
        stop("influence(): the rows of the model frame cannot be matched to the rows of 'data'",
             call. = FALSE)
    if (missing(groups) || is.null(groups)) {
        gname <- "case"
        deleted <- factor(rownames(model$frame), levels = rownames(model$frame))
    } else {
        if (!is.character(groups) || !all(groups %in% names(data)))
            stop(sprintf("influence(): 'groups' must name columns of the data; not found: %s",
                         paste(setdiff(as.character(groups), names(data)), collapse = ", ")), call. = FALSE)
        gname <- paste(groups, collapse = ":")
        deleted <- interaction(lapply(data[rows, groups, drop = FALSE], as.factor),
                               sep = ":", drop = TRUE, lex.order = TRUE)
    }
    levs <- levels(deleted)
    cl <- model$call
    cl$data <- quote(.lmmfit_influence_data)
    env <- new.env(parent = if (is.null(environment(model$formula))) parent.frame()
                            else environment(model$formula))
    one <- function(lev) {
        drop_rows <- rows[deleted == lev]
        assign(".lmmfit_influence_data", data[-drop_rows, , drop = FALSE], envir = env)
        f <- tryCatch(suppressWarnings(suppressMessages(eval(cl, env))),
                      error = function(e) e)
        if (inherits(f, "error"))
            return(list(beta = rep(NA_real_, length(model$beta)), vc = rep(NA_real_, length(vc_comps(model))),
                        vcov = matrix(NA_real_, length(model$beta), length(model$beta)),
                        converged = FALSE, feval = NA_integer_))
        list(beta = f$beta[names(model$beta)], vc = vc_comps(f), vcov = vcov(f)[names(model$beta), names(model$beta)],
             converged = !length(convergence_messages(f)),
             feval = if (is.null(f$optinfo$feval)) NA_integer_ else as.integer(f$optinfo$feval))
    }
    ncores <- as.integer(ncores)
    res <- if (ncores > 1L && .Platform$OS.type != "windows")
               parallel::mclapply(levs, one, mc.cores = ncores) else lapply(levs, one)
    beta <- do.call(rbind, lapply(res, `[[`, "beta"))
    dimnames(beta) <- list(levs, names(model$beta))
    vc <- do.call(rbind, lapply(res, `[[`, "vc"))
    dimnames(vc) <- list(levs, names(vc_comps(model)))
    out <- list(model$beta, beta, vc_comps(model), vc, vcov(model),
                setNames(lapply(res, `[[`, "vcov"), levs), if (gname == "case") "case" else groups,
                factor(levs, levels = levs),
                setNames(vapply(res, `[[`, NA, "converged"), levs),
                setNames(vapply(res, `[[`, 1L, "feval"), levs))
    names(out) <- c("fixed.effects", sprintf("fixed.effects[-%s]", gname), "var.cov.comps",
                    sprintf("var.cov.comps[-%s]", gname), "vcov", sprintf("vcov[-%s]", gname),
                    "groups", "deleted", "converged", "function.evals")
    structure(out, class = "influence.lmmfit")
}

## sigma^2 and each term's variances and covariances (lower triangle, column
## by column), named as lme4's influence() names them.
vc_comps <- function(fit) {
    vc <- VarCorr(fit)
    out <- c(`sigma^2` = sigma(fit)^2)
    for (m in vc) {
        nm <- rownames(m)
        k <- nrow(m)
        for (c in seq_len(k)) for (r in c:k) {
            v <- m[r, c]
            names(v) <- if (r == c) sprintf("v[%s]", nm[r]) else sprintf("C[%s,%s]", nm[r], nm[c])
            out <- c(out, v)
        }
    }
    out
}

## The per-deletion matrices of an influence.lmmfit object.
infl_part <- function(model, what) model[[which(startsWith(names(model), paste0(what, "[-")))]]

#' @rdname influence.lmmfit
#' @importFrom stats dfbeta
#' @method dfbeta influence.lmmfit
#' @export
dfbeta.influence.lmmfit <- function(model, which = c("fixed", "var.cov"), ...) {
    which <- match.arg(which)
    if (which == "fixed") sweep(infl_part(model, "fixed.effects"), 2L, model$fixed.effects)
    else sweep(infl_part(model, "var.cov.comps"), 2L, model$var.cov.comps)
}

#' @rdname influence.lmmfit
#' @importFrom stats dfbetas
#' @method dfbetas influence.lmmfit
#' @export
dfbetas.influence.lmmfit <- function(model, ...) {
    d <- dfbeta(model)
    se <- do.call(rbind, lapply(infl_part(model, "vcov"), function(v) sqrt(diag(v))))
    d / se
}

#' @rdname influence.lmmfit
#' @method cooks.distance influence.lmmfit
#' @export
cooks.distance.influence.lmmfit <- function(model, ...) {
    d <- dfbeta(model)
    G <- nrow(d)
    p <- ncol(d)
    q <- rowSums((d %*% solve(model$vcov)) * d)
    unname(q * (G - p) / (G * p))
}

#' @export
print.influence.lmmfit <- function(x, ...) {
    cat(sprintf("Deletion influence of %d %s on %d fixed effects (lmmfit)\n",
                nrow(dfbeta(x)), paste(x$groups, collapse = ":"), length(x$fixed.effects)))
    cat("components:", paste(names(x), collapse = ", "), "\n")
    invisible(x)
}
