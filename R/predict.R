## Predictions from a fitted model, for its own data or for new data.

## A terms object whose variables are evaluated as in the training frame
## (the 'predvars' of poly(), scale(), ns() ... fixed at their training values).
with_predvars <- function(tt, frame) {
    ft <- attr(frame, "terms")
    av <- attr(ft, "variables")
    pv <- attr(ft, "predvars")
    if (is.null(pv)) return(tt)
    vars <- attr(tt, "variables")
    if (length(vars) < 2L) return(tt)
    train <- vapply(as.list(av)[-1L], deparse1, "")
    out <- vars
    for (i in seq_along(vars)[-1L]) {
        k <- match(deparse1(vars[[i]]), train)
        if (!is.na(k)) out[[i]] <- pv[[k + 1L]]
    }
    attr(tt, "predvars") <- out
    tt
}

## Stop when newdata lacks variables that the needed expressions use.
check_newdata_vars <- function(exprs, newdata, env) {
    vars <- unique(unlist(lapply(exprs, all.vars)))
    miss <- setdiff(vars, names(newdata))
    ## constants such as pi may come from the formula's environment
    miss <- miss[!vapply(miss, function(v) exists(v, envir = env) &&
                             length(get(v, envir = env)) == 1L, NA)]
    if (length(miss))
        stop(sprintf("'newdata' lacks variable%s needed for prediction: %s",
                     if (length(miss) > 1L) "s" else "", paste(miss, collapse = ", ")),
             call. = FALSE)
}

## Which random-effects terms (indices into object$reterms) re.form selects.
select_reterms <- function(object, re.form) {
    all <- seq_along(object$reterms)
    if (is.null(re.form)) return(all)
    if (length(re.form) == 1L && is.na(re.form)) return(integer())
    if (!inherits(re.form, "formula"))
        stop("'re.form' must be NULL, NA, ~0 or a formula of random-effects terms such as ~(1 | g)",
             call. = FALSE)
    bars <- find_bars(re.form[[length(re.form)]])
    if (!length(bars)) return(integer())
    specs <- expand_bars(bars)
    ## match by grouping factor and random-effects columns
    keys <- vapply(object$reterms, function(t) paste(t$group, paste(colnames(t$Z), collapse = "\r")), "")
    env <- environment(object$fixed_terms)
    sel <- integer()
    cols <- list()
    for (s in specs) {
        g <- deparse1(s$group)
        cn <- tryCatch(colnames(model.matrix(with_predvars(terms(eval(call("~", s$lhs))), object$frame),
                                             object$frame)),
                       error = function(e) NULL)
        k <- match(paste(g, paste(cn, collapse = "\r")), keys)
        if (is.na(k)) {
            ## as lme4: some columns of a model term, e.g. (1 | g) of (x | g)
            part <- which(vapply(object$reterms, function(t)
                t$group == g && length(cn) > 0L && all(cn %in% colnames(t$Z)), NA))
            if (length(part)) {
                cols[[as.character(part[1L])]] <- cn
                sel <- c(sel, part[1L])
                next
            }
            stop(sprintf("re.form term (%s | %s) is not a random-effects term of the model",
                         deparse1(s$lhs), g), call. = FALSE)
        }
        sel <- c(sel, which(keys == keys[k]))
    }
    structure(sort(unique(sel)), cols = cols)
}

## The random effects with the columns re.form leaves out of a term set to
## zero ('cols': term index -> the columns kept).
mask_re_columns <- function(b, cols) {
    for (j in names(cols)) {
        B <- b[[as.integer(j)]]
        B[, setdiff(colnames(B), cols[[j]])] <- 0
        b[[as.integer(j)]] <- B
    }
    b
}

## The specification (lhs, group) of each fitted term, in object$reterms order.
reterm_specs <- function(object) {
    specs <- object$re_specs
    if (is.null(specs)) specs <- parse_lmm_formula(formula(object))$terms
    labels <- vapply(specs, function(s) sprintf("%s | %s", deparse1(s$lhs), deparse1(s$group)), "")
    specs[match(vapply(object$reterms, `[[`, "", "label"), labels)]
}

#' Predictions from an lmmfit model
#'
#' Predicted values, with or without random effects, for the data the model
#' was fitted to or for new data, as \code{lme4}'s \code{predict} method.
#'
#' Fixed effects in \code{newdata} are built with the training data's factor
#' levels, contrasts and data-dependent transformations (\code{poly},
#' \code{scale}, ...).  Offsets are honoured: \code{offset()} terms of the
#' formula and the \code{offset} argument of the fit, both evaluated in
#' \code{newdata}.  Rows of \code{newdata} with missing covariates give
#' \code{NA}.
#'
#' @param object a fitted \code{lmmfit} model.
#' @param newdata optional data frame to predict for; by default the fitted
#'   values of the training data (padded with \code{NA} under
#'   \code{na.exclude}).
#' @param re.form which random effects to include: \code{NULL} (all),
#'   \code{NA} or \code{~0} (none: the population-level prediction), or a
#'   formula of some of the model's random-effects terms, e.g.
#'   \code{~(1 | Subject)}.  As in lme4, a term may name some of the
#'   columns of a model term: \code{~(1 | Subject)} of a model with
#'   \code{(age | Subject)} includes only the random intercepts.
#' @param allow.new.levels logical: may \code{newdata} contain levels of a
#'   grouping factor (or missing levels) not seen in fitting?  They get zero
#'   random effects.  When \code{FALSE} (default) they are an error.
#' @param type \code{"link"} or \code{"response"}: the same for a linear
#'   mixed model (accepted for compatibility with lme4).
#' @param se.fit logical: also return standard errors.  Only for
#'   population-level predictions (\code{re.form = NA} or \code{~0}): the
#'   standard error of \eqn{x'\hat\beta}, \eqn{\sqrt{x' V x}} with \eqn{V} =
#'   \code{vcov(object)}; with random effects included it is an error.
#' @param na.action for \code{newdata}: what to do with rows whose
#'   prediction is \code{NA} (missing covariates): \code{na.pass} (the
#'   default, as lme4) keeps them as \code{NA}, \code{na.omit} drops them,
#'   \code{na.exclude} keeps them as \code{NA}, \code{na.fail} stops.
#' @param ... lme4's \code{newparams}, \code{random.only} and \code{terms}
#'   are refused with an error; other arguments are ignored with a warning.
#' @return A named numeric vector of predictions; with \code{se.fit = TRUE}
#'   a list with components \code{fit} and \code{se.fit}.
#' @examples
#' data(Orthodont, package = "nlme")
#' fit <- lmmfit(distance ~ age + (age | Subject), data = Orthodont)
#' nd <- data.frame(age = c(8, 14), Subject = c("M01", "NEW"))
#' predict(fit, nd, allow.new.levels = TRUE)
#' predict(fit, nd, re.form = NA)
#' @export
predict.lmmfit <- function(object, newdata = NULL, re.form = NULL,
                           allow.new.levels = FALSE, type = c("link", "response"),
                           se.fit = FALSE, na.action = na.pass, ...) {
    type <- match.arg(type)
    refuse_dots("predict", list(...), c(newparams = "lmmfit predicts at the fitted parameters only",
                                        random.only = "use predict(re.form = NA) and subtract",
                                        terms = "per-term predictions are not available"))
    sel <- select_reterms(object, re.form)
    if (isTRUE(se.fit)) {
        if (length(sel))
            stop("predict(se.fit = TRUE) gives standard errors of population-level predictions only: ",
                 "use re.form = NA", call. = FALSE)
        eta <- predict.lmmfit(object, newdata, re.form = NA, allow.new.levels = allow.new.levels)
        if (!is.null(newdata)) eta <- prediction_na_action(eta, na.action)
        X <- if (is.null(newdata)) object$X else newdata_X(object, newdata)
        se <- sqrt(pmax(rowSums((X %*% vcov(object)) * X), 0))
        if (is.null(newdata)) return(list(fit = eta, se.fit = napredict(object$na.action,
                                                                         setNames(se, rownames(object$frame)))))
        se <- setNames(se, rownames(newdata))[attr(eta, "kept")]
        if (!is.null(attr(eta, "na_obj"))) se <- napredict(attr(eta, "na_obj"), se)
        attr(eta, "na_obj") <- attr(eta, "kept") <- NULL
        return(list(fit = eta, se.fit = se))
    }
    if (is.null(newdata)) {
        eta <- drop(object$X %*% object$beta)
        if (!is.null(object$offset)) eta <- eta + object$offset
        if (length(sel)) {
            b <- mask_re_columns(random_effects(object), attr(sel, "cols"))
            for (j in sel) {
                t <- object$reterms[[j]]
                eta <- eta + rowSums(t$Z * b[[j]][as.integer(t$factor), , drop = FALSE])
            }
        }
        names(eta) <- rownames(object$frame)
        return(napredict(object$na.action, eta))
    }
    newdata <- wb_newdata(object, newdata)
    if (!is.data.frame(newdata)) newdata <- as.data.frame(newdata)
    env <- environment(object$fixed_terms)
    if (is.null(env)) env <- parent.frame()

    ## fixed part: training levels, contrasts, predvars; offsets
    tt <- with_predvars(delete.response(object$fixed_terms), object$frame)
    off_expr <- object$call$offset
    specs <- reterm_specs(object)[sel]
    check_newdata_vars(c(list(attr(tt, "variables")), if (!is.null(off_expr)) list(off_expr),
                         lapply(specs, `[[`, "lhs"), lapply(specs, `[[`, "group")),
                       newdata, env)
    xlev <- .getXlevels(tt, object$frame)
    mf <- model.frame(tt, newdata, na.action = stats::na.pass, xlev = xlev)
    X <- model.matrix(tt, mf, contrasts.arg = object$contrasts)
    miss <- setdiff(colnames(object$X), colnames(X))
    if (length(miss))
        stop(sprintf("cannot build fixed-effect column%s %s from 'newdata'",
                     if (length(miss) > 1L) "s" else "", paste(miss, collapse = ", ")), call. = FALSE)
    eta <- drop(X[, colnames(object$X), drop = FALSE] %*% object$beta)
    off <- model.offset(mf)
    if (!is.null(off)) eta <- eta + off
    if (!is.null(off_expr)) eta <- eta + eval(off_expr, newdata, env)

    ## random part
    if (length(sel)) {
        b <- mask_re_columns(random_effects(object), attr(sel, "cols"))
        for (i in seq_along(sel)) {
            j <- sel[i]
            t <- object$reterms[[j]]
            s <- specs[[i]]
            g <- eval(s$group, newdata, env)
            if (length(g) != nrow(newdata))
                stop(sprintf("grouping factor '%s' has %d values in 'newdata' with %d rows",
                             t$group, length(g), nrow(newdata)), call. = FALSE)
            lev <- match(as.character(g), levels(t$factor))
            if (!allow.new.levels && anyNA(lev)) {
                new <- unique(as.character(g)[is.na(lev)])
                stop(sprintf(paste0("new level%s in 'newdata' for grouping factor '%s': %s; ",
                                    "use allow.new.levels = TRUE to predict %s with zero random effects"),
                             if (length(new) > 1L) "s" else "", t$group,
                             paste(head(new, 5L), collapse = ", "),
                             if (length(new) > 1L) "them" else "it"), call. = FALSE)
            }
            zt <- with_predvars(terms(eval(call("~", s$lhs))), object$frame)
            zmf <- model.frame(zt, newdata, na.action = stats::na.pass,
                               xlev = .getXlevels(zt, object$frame))
            Z <- model.matrix(zt, zmf)
            if (!identical(colnames(Z), colnames(t$Z)))
                stop(sprintf("cannot rebuild the columns of (%s) from 'newdata'", t$label), call. = FALSE)
            Bj <- b[[j]][lev, , drop = FALSE]
            Bj[is.na(lev), ] <- 0
            eta <- eta + rowSums(Z * Bj)
        }
    }
    names(eta) <- rownames(newdata)
    eta <- prediction_na_action(eta, na.action)
    attr(eta, "na_obj") <- attr(eta, "kept") <- NULL
    eta
}

## The fixed-effects model matrix of newdata (training levels, contrasts and
## predvars), NA rows kept.
newdata_X <- function(object, newdata) {
    newdata <- wb_newdata(object, newdata)
    if (!is.data.frame(newdata)) newdata <- as.data.frame(newdata)
    tt <- with_predvars(delete.response(object$fixed_terms), object$frame)
    mf <- model.frame(tt, newdata, na.action = stats::na.pass, xlev = .getXlevels(tt, object$frame))
    X <- model.matrix(tt, mf, contrasts.arg = object$contrasts)
    X[, colnames(object$X), drop = FALSE]
}

## Apply predict()'s na.action to predictions with NA (missing covariates):
## the result, and as attribute "kept" the positions kept.
prediction_na_action <- function(eta, na.action) {
    kept <- seq_along(eta)
    if (anyNA(eta)) {
        na_obj <- attr(match.fun(na.action)(data.frame(.eta = eta, row.names = names(eta))), "na.action")
        if (!is.null(na_obj)) {
            kept <- kept[-na_obj]
            eta <- napredict(na_obj, eta[kept])
            attr(eta, "na_obj") <- na_obj
        }
    }
    attr(eta, "kept") <- kept
    eta
}

## Stop, naming it, at an argument of lme4's that lmmfit does not support
## ('refused': name = reason); warn, naming them, of any other argument in
## '...' (ignored).
refuse_dots <- function(fun, dots, refused = character()) {
    if (!length(dots)) return(invisible())
    nm <- names(dots)
    if (is.null(nm)) nm <- rep("", length(dots))
    hit <- intersect(nm, names(refused))
    if (length(hit))
        stop(sprintf("%s(): lme4's argument '%s' is not supported by lmmfit (%s)", fun, hit[1L],
                     refused[[hit[1L]]]), call. = FALSE)
    warning(sprintf("%s(): argument%s %s ignored (not used by lmmfit's method)", fun,
                    if (length(nm) > 1L) "s" else "",
                    paste0("'", ifelse(nzchar(nm), nm, "<unnamed>"), "'", collapse = ", ")), call. = FALSE)
}
