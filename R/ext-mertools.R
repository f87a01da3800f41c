## merTools has no extension point for other model classes: its functions
## test for class merMod (stopifnot(inherits(, "merMod")), class() ==
## "lmerMod") or read the object's slots (@frame, @flist, @theta) directly, so
## no S3 method could reach them.  The route is as_lmerMod(), documented on
## its help page from here; tests/testthat/test-ext-mertools.R checks that
## merTools gives lme4's numbers through it.

#' @name as_lmerMod
#' @rdname as_lmerMod
#' @section merTools:
#' \pkg{merTools}' functions (\code{predictInterval}, \code{REsim},
#' \code{FEsim}, \code{REextract}, \code{REsdExtract}, \code{expectedRank},
#' \code{REimpact}, \code{REquantile}, \code{draw}, \code{fastdisp},
#' \code{modelInfo}, \code{subBoot}, ...) accept only \code{merMod} objects:
#' they check the class or read the object's slots, and offer no way to
#' support another model class.  Call them on \code{as_lmerMod(fit)}, e.g.
#' \code{merTools::predictInterval(as_lmerMod(fit), newdata)}.  Their
#' simulations (\code{arm::sim} behind \code{REsim} and \code{FEsim}, and
#' \code{predictInterval}'s draws) start from the fit's estimates and the
#' conditional covariances of its random effects, so with the same seed they
#' give what they give on the \code{lmer} fit of the same model.
#' \code{subBoot} refits its resamples with \code{lme4::lmer} itself.
#' @examples
#' if (requireNamespace("lme4", quietly = TRUE) && requireNamespace("merTools", quietly = TRUE)) {
#'   print(head(merTools::REextract(m), 3))
#'   merTools::predictInterval(m, sleepstudy[c(1, 11), ], n.sims = 200, seed = 1)
#' }
NULL
