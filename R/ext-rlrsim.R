## RLRsim's exactRLRT() and exactLRT() dispatch on nothing: they compare
## class(m) with "lme", "lmerMod" and lmerTest's classes and stop otherwise,
## then read the design through lme4's getME() and the merMod slots.  The
## route is as_lmerMod(), documented on its help page from here;
## tests/testthat/test-ext-rlrsim.R checks that RLRsim gives lme4's numbers
## through it.

#' @name as_lmerMod
#' @rdname as_lmerMod
#' @section RLRsim:
#' \pkg{RLRsim}'s \code{exactRLRT} and \code{exactLRT} accept only
#' \code{lmerMod} (or \pkg{nlme}'s \code{lme}) objects, checked by class:
#' pass \code{as_lmerMod()} of the fits, e.g.
#' \code{RLRsim::exactRLRT(as_lmerMod(fit_slope), as_lmerMod(fit_full),
#' as_lmerMod(fit_null))} for a variance component in a model with several.
#' The observed statistic is then lmmfit's, twice the difference of the
#' restricted (\code{exactRLRT}, REML fits) or full (\code{exactLRT}, ML
#' fits) log-likelihoods; the null distribution \pkg{RLRsim} simulates
#' depends only on the fixed- and random-effects design matrices, so with
#' the same \code{seed} it is the one simulated for the \code{lmer} fit.
#' @examples
#' if (requireNamespace("lme4", quietly = TRUE) && requireNamespace("RLRsim", quietly = TRUE)) {
#'   fit1 <- lmmfit(Reaction ~ Days + (1 | Subject), sleepstudy)
#'   RLRsim::exactRLRT(as_lmerMod(fit1), nsim = 2000, seed = 1)
#' }
NULL
