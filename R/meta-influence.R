## Leave-one-out refits and the influence diagnostics built on them
## (Viechtbauer and Cheung 2010), for one random effect per study.

## The fit without the effects not in keep, by the same method and test.
meta_refit_rows <- function(object, keep) {
    md <- object$data
    md$y <- md$y[keep]
    md$vi <- md$vi[keep]
    md$X <- md$X[keep, , drop = FALSE]
    md$frame <- droplevels(md$frame[keep, , drop = FALSE])
    md$slab <- md$slab[keep]
    meta_fit_data(md, object$method, object$test, object$level, object$control)
}

## leave1out() and influence(): rma's model, and enough studies to leave one out.
meta_check_uni <- function(object, what) {
    meta_require_uni(object, what)
    if (object$model$k < 3L) stop(sprintf("%s needs at least 3 effects", what), call. = FALSE)
}

#' Leave-one-out meta-analyses
#'
#' Refits the model k times, each time without one study, by the same
#' method and test.
#'
#' @param object a \code{metafit} fit with one random effect per study (or a
#'   common-effect model).
#' @param ... unused.
#' @details A generic, so that \pkg{metafor}'s \code{leave1out} (which masks
#'   it when metafor is attached later) also dispatches here: the method is
#'   registered with metafor's generic when metafor loads.
#' @return A data frame, one row per omitted study: the pooled estimate (of
#'   the first coefficient), its SE, test statistic, p-value and CI, Q and
#'   its p-value, tau^2, I^2 and H^2.
#' @export
leave1out <- function(object, ...) UseMethod("leave1out")

#' @rdname leave1out
#' @export
leave1out.metafit <- function(object, ...) {
    meta_check_uni(object, "leave1out()")
    k <- object$model$k
    rows <- lapply(seq_len(k), function(i) {
        f <- meta_refit_rows(object, -i)
        ct <- lapply(f$coef_table, `[`, 1L)
        data.frame(estimate = ct$estimate, se = ct$se, stat = ct$stat, pval = ct$pval,
                   ci.lb = ct$ci.lb, ci.ub = ct$ci.ub, Q = f$QE, Qp = f$QEp,
                   tau2 = if (object$method == "FE") 0 else f$tau2, I2 = f$I2, H2 = f$H2)
    })
    out <- do.call(rbind, rows)
    rownames(out) <- object$model$slab
    out
}

#' Influence diagnostics of a meta-analysis
#'
#' Case-deletion diagnostics of each study (Viechtbauer and Cheung 2010):
#' externally standardized residuals, DFFITS, Cook's distances, covariance
#' ratios, tau^2 and Q when the study is left out, hat values, weights and
#' DFBETAS.
#'
#' @param model a \code{metafit} fit with one random effect per study.
#' @param ... unused.
#' @return A data frame, one row per study: \code{rstudent}, \code{dffits},
#'   \code{cook.d}, \code{cov.r}, \code{tau2.del}, \code{QE.del},
#'   \code{hat}, \code{weight}, and \code{dfbs.<coefficient>}.
#' @references Viechtbauer W, Cheung MW-L (2010) Outlier and influence
#'   diagnostics for meta-analysis. Research Synthesis Methods 1, 112-125.
#' @export
influence.metafit <- function(model, ...) {
    object <- model
    meta_check_uni(object, "influence()")
    m <- object$model
    tau2 <- if (object$method == "FE") 0 else object$tau2
    w <- 1 / (m$vi + tau2)
    A <- crossprod(m$X * sqrt(w))
    hat <- unname(w * rowSums((m$X %*% solve(A)) * m$X))
    svb <- solve(object$vb)
    rows <- lapply(seq_len(m$k), function(i) {
        f <- meta_refit_rows(object, -i)
        t2 <- if (object$method == "FE") 0 else f$tau2
        xi <- m$X[i, ]
        d <- object$beta - f$beta
        pred_del <- sum(xi * f$beta)
        ## DFBETAS scale by the variance of b with every study at the
        ## deletion's tau^2 (Viechtbauer and Cheung's definition)
        vb_del <- f$s2w * solve(crossprod(m$X / sqrt(m$vi + t2)))
        dfbs <- setNames(unname(d / sqrt(diag(vb_del))), paste0("dfbs.", meta_coef_names(names(f$beta))))
        c(rstudent = (m$y[i] - pred_del) / sqrt(m$vi[i] + t2 + drop(xi %*% f$vb %*% xi)),
          dffits = (sum(xi * object$beta) - pred_del) / sqrt(hat[i] * (t2 + m$vi[i])),
          cook.d = drop(d %*% svb %*% d), cov.r = det(f$vb) / det(object$vb),
          tau2.del = t2, QE.del = f$QE, dfbs)
    })
    out <- as.data.frame(do.call(rbind, rows))
    out$hat <- hat
    out$weight <- 100 * w / sum(w)
    rownames(out) <- m$slab
    out[c("rstudent", "dffits", "cook.d", "cov.r", "tau2.del", "QE.del", "hat", "weight",
          grep("^dfbs", names(out), value = TRUE))]
}
