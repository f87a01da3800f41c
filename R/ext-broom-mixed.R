## tidy() in broom.mixed's conventions: fixed effects with Satterthwaite's
## (or Kenward-Roger's) df and p-values, variance parameters on either scale,
## the conditional modes (ran_vals) and the per-group coefficients
## (ran_coefs).  Registered with generics/broom in .onLoad (zzz.R), as
## glance and augment (R/broom.R).

#' @rdname lmmfit-tidiers
#' @param scales for \code{tidy}, as in \pkg{broom.mixed}: \code{NULL} (the
#'   standard deviations and correlations of the random effects), or one
#'   value per element of \code{effects}: for \code{"ran_pars"},
#'   \code{"sdcor"} or \code{"vcov"} (variances and covariances, terms
#'   \code{var__*} and \code{cov__*}); \code{NA} for the other effects.
#'   Anything else is an error.
#' @param ddf.method for \code{tidy}: the df and p-values of the fixed
#'   effects' t tests: \code{"Satterthwaite"} (the default, as
#'   \pkg{broom.mixed} on an \pkg{lmerTest} fit), \code{"Kenward-Roger"}
#'   (REML fits; with Kenward-Roger's adjusted standard errors) or
#'   \code{"lme4"} (no \code{df} and \code{p.value} columns, as for a plain
#'   \code{lmer} fit).  Fits with a residual variance or correlation
#'   structure have Satterthwaite's df only (Kenward-Roger falls back to it,
#'   with a message).
#' @param conf.method for \code{tidy}: only \code{"Wald"} (t intervals with
#'   the df of \code{ddf.method}, normal ones with \code{"lme4"}); use
#'   \code{\link{confint.lmmfit}} for profile or bootstrap intervals.
#' @param exponentiate for \code{tidy}: exponentiate the fixed effects and
#'   their confidence limits.
#' @param ran_prefix for \code{tidy}: the prefixes of the variance
#'   parameters' terms, default \code{c("sd", "cor")} (\code{c("var",
#'   "cov")} with \code{scales = "vcov"}).
#' @details \code{tidy}'s \code{effects} may also include \code{"ran_vals"}
#'   (the conditional modes of the random effects, one row per level and
#'   term, with their conditional standard deviations as \code{std.error}
#'   and, with \code{conf.int}, normal intervals) and \code{"ran_coefs"}
#'   (fixed plus random effects per level, as \code{coef(fit)}).
#' @export
tidy.lmmfit <- function(x, effects = c("fixed", "ran_pars"), scales = NULL, conf.int = FALSE,
                        conf.level = 0.95, conf.method = "Wald",
                        ddf.method = c("Satterthwaite", "Kenward-Roger", "lme4"),
                        exponentiate = FALSE, ran_prefix = NULL, ...) {
    effects <- match.arg(effects, c("fixed", "ran_pars", "ran_vals", "ran_coefs"), several.ok = TRUE)
    ddf.method <- match.arg(ddf.method)
    if (!identical(conf.method, "Wald"))
        stop("tidy() of an lmmfit fit gives Wald intervals only: use confint(fit, method = \"profile\" or \"boot\")",
             call. = FALSE)
    if (!is.numeric(conf.level) || length(conf.level) != 1L || !(conf.level > 0 && conf.level < 1))
        stop("'conf.level' must be a number between 0 and 1", call. = FALSE)
    scale_of <- setNames(rep(NA_character_, length(effects)), effects)
    if (!is.null(scales)) {
        if (length(scales) != length(effects))
            stop("if scales are specified, values (or NA) must be provided for each effect", call. = FALSE)
        scale_of[] <- scales
        bad <- !is.na(scale_of) & !(names(scale_of) == "ran_pars" & scale_of %in% c("sdcor", "vcov"))
        if (any(bad))
            stop(sprintf("unknown scale %s for effects %s: only \"sdcor\" or \"vcov\" for \"ran_pars\", NA otherwise",
                         paste0("'", scale_of[bad], "'", collapse = ", "),
                         paste0("'", names(scale_of)[bad], "'", collapse = ", ")), call. = FALSE)
    }
    out <- list()
    if ("fixed" %in% effects) out$fixed <- tidy_fixed(x, conf.int, conf.level, ddf.method, exponentiate)
    if ("ran_pars" %in% effects) {
        sc <- if (is.na(scale_of[["ran_pars"]])) "sdcor" else scale_of[["ran_pars"]]
        out$ran_pars <- tidy_ran_pars(x, sc, ran_prefix, conf.int)
    }
    if ("ran_vals" %in% effects) out$ran_vals <- tidy_ran_vals(x, conf.int, conf.level)
    if ("ran_coefs" %in% effects) out$ran_coefs <- tidy_ran_coefs(x)
    res <- bind_rows_fill(out[intersect(c("fixed", "ran_pars", "ran_vals", "ran_coefs"), names(out))])
    ## as broom.mixed: no group column in a table of fixed effects alone
    if (identical(effects, "fixed")) res$group <- NULL
    ## and no empty std.error and statistic columns without fixed effects
    if (!"fixed" %in% effects)
        for (cn in c("std.error", "statistic")) if (all(is.na(res[[cn]]))) res[[cn]] <- NULL
    rownames(res) <- NULL
    res
}

tidy_fixed <- function(x, conf.int, conf.level, ddf.method, exponentiate) {
    b <- fixef(x)
    p <- length(b)
    if (ddf.method == "Kenward-Roger" && has_resid_structure(x)) {
        message("tidy(): Kenward-Roger's method is not available for a fit with a residual variance or ",
                "correlation structure: using Satterthwaite's")
        ddf.method <- "Satterthwaite"
    }
    if (ddf.method == "lme4") {
        se <- sqrt(diag(vcov(x)))
        df <- NULL
    } else {
        st <- ddf_setup(x, ddf.method)
        rows <- lapply(seq_len(p), function(i) contrast_1d(x, diag(p)[, i], st))
        se <- vapply(rows, `[[`, 0, "Std. Error")
        df <- vapply(rows, `[[`, 0, "df")
    }
    fx <- data.frame(effect = "fixed", group = NA_character_, term = names(b),
                     estimate = unname(b), std.error = unname(se),
                     statistic = unname(b / se), stringsAsFactors = FALSE)
    if (!is.null(df)) {
        fx$df <- unname(df)
        fx$p.value <- 2 * stats::pt(abs(fx$statistic), df, lower.tail = FALSE)
    }
    if (conf.int) {
        q <- if (is.null(df)) stats::qnorm((1 + conf.level) / 2) else stats::qt((1 + conf.level) / 2, df)
        fx$conf.low <- fx$estimate - q * fx$std.error
        fx$conf.high <- fx$estimate + q * fx$std.error
    }
    if (exponentiate) {
        fx$estimate <- exp(fx$estimate)
        if (conf.int) {
            fx$conf.low <- exp(fx$conf.low)
            fx$conf.high <- exp(fx$conf.high)
        }
    }
    fx
}

tidy_ran_pars <- function(x, scale, ran_prefix, conf.int) {
    ## groups named as VarCorr names them ("g.1" for a second term of g, as
    ## broom.mixed on lmer fits)
    vc <- as.data.frame(VarCorr(x))
    prefix <- if (!is.null(ran_prefix)) ran_prefix
              else if (scale == "vcov") c("var", "cov") else c("sd", "cor")
    if (length(prefix) != 2L) stop("'ran_prefix' must have two elements", call. = FALSE)
    est <- if (scale == "vcov") vc$vcov else vc$sdcor
    term <- ifelse(is.na(vc$var1), paste0(prefix[1L], "__Observation"),
                   ifelse(is.na(vc$var2), paste0(prefix[1L], "__", vc$var1),
                          paste0(prefix[2L], "__", vc$var1, ".", vc$var2)))
    rp <- data.frame(effect = "ran_pars", group = vc$grp, term = term,
                     estimate = est, std.error = NA_real_, statistic = NA_real_,
                     stringsAsFactors = FALSE)
    if (conf.int) rp$conf.low <- rp$conf.high <- NA_real_
    rp
}

tidy_ran_vals <- function(x, conf.int, conf.level) {
    re <- as.data.frame(ranef(x, condVar = TRUE))
    rv <- data.frame(effect = "ran_vals", group = as.character(re$grpvar), level = as.character(re$grp),
                     term = as.character(re$term), estimate = re$condval,
                     std.error = if (is.null(re$condsd)) NA_real_ else re$condsd,
                     stringsAsFactors = FALSE)
    if (conf.int) {
        q <- stats::qnorm((1 + conf.level) / 2)
        rv$conf.low <- rv$estimate - q * rv$std.error
        rv$conf.high <- rv$estimate + q * rv$std.error
    }
    rv
}

tidy_ran_coefs <- function(x) {
    cf <- coef(x)
    pieces <- lapply(names(cf), function(g) {
        d <- cf[[g]]
        data.frame(effect = "ran_coefs", group = g, level = rep(rownames(d), ncol(d)),
                   term = rep(colnames(d), each = nrow(d)), estimate = unlist(d, use.names = FALSE),
                   stringsAsFactors = FALSE)
    })
    do.call(rbind, pieces)
}

## rbind() of data frames with different columns, the missing ones NA, in
## broom.mixed's column order.
bind_rows_fill <- function(dfs) {
    order <- c("effect", "group", "level", "term", "estimate", "std.error", "statistic", "df", "p.value",
               "conf.low", "conf.high")
    cols <- unique(unlist(lapply(dfs, names)))
    cols <- c(intersect(order, cols), setdiff(cols, order))
    filled <- lapply(dfs, function(d) {
        for (cn in setdiff(cols, names(d))) d[[cn]] <- if (cn %in% c("group", "level", "term", "effect"))
            NA_character_ else NA_real_
        d[cols]
    })
    do.call(rbind, filled)
}
