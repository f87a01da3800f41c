## Registration of methods for generics of suggested-but-not-required
## packages: when their namespace loads (now or later), the methods join it.

.onLoad <- function(libname, pkgname) {
    .Call(C_lmm_dense_chol_lapack, dense_chol_uses_lapack())
    s3_register("generics", "tidy", "lmmfit", tidy.lmmfit)
    s3_register("generics", "glance", "lmmfit", glance.lmmfit)
    s3_register("generics", "augment", "lmmfit", augment.lmmfit)
    ## an older broom defines its generics itself rather than re-exporting
    ## those of generics
    s3_register("broom", "tidy", "lmmfit", tidy.lmmfit)
    s3_register("broom", "glance", "lmmfit", glance.lmmfit)
    s3_register("broom", "augment", "lmmfit", augment.lmmfit)
    s3_register("generics", "tidy", "metafit", tidy.metafit)
    s3_register("generics", "glance", "metafit", glance.metafit)
    s3_register("broom", "tidy", "metafit", tidy.metafit)
    s3_register("broom", "glance", "metafit", glance.metafit)
    s3_register("metafor", "leave1out", "metafit", leave1out.metafit)
    s3_register("metafor", "regtest", "metafit", regtest.metafit)
    s3_register("metafor", "trimfill", "metafit", trimfill.metafit)
    ## lme4's generics (getME, ngrps, refit, ...) and lattice's plots
    register_idiom_methods()
    ## refit() of a glmmfit through lme4's generic too, when lme4 masks lmmfit's
    s3_register("lme4", "refit", "glmmfit", refit.glmmfit)
    ## the extension points of the packages users reach for after fitting
    ## (R/ext-*.R)
    s3_register("emmeans", "recover_data", "lmmfit", recover_data.lmmfit)
    s3_register("emmeans", "emm_basis", "lmmfit", emm_basis.lmmfit)
    s3_register("car", "Anova", "lmmfit", Anova.lmmfit)
    s3_register("car", "linearHypothesis", "lmmfit", linearHypothesis.lmmfit)
    s3_register("car", "deltaMethod", "lmmfit", deltaMethod.lmmfit)
    s3_register("multcomp", "modelparm", "lmmfit", modelparm.lmmfit)
    s3_register("effects", "effSources", "lmmfit", effSources.lmmfit)
    ## generalized fits (R/glmm-ext.R)
    s3_register("emmeans", "recover_data", "glmmfit", recover_data.glmmfit)
    s3_register("emmeans", "emm_basis", "glmmfit", emm_basis.glmmfit)
    s3_register("car", "Anova", "glmmfit", Anova.glmmfit)
    lapply(c("generics", "broom"), function(pkg) {
        s3_register(pkg, "tidy", "glmmfit", tidy.glmmfit)
        s3_register(pkg, "glance", "glmmfit", glance.glmmfit)
        s3_register(pkg, "augment", "glmmfit", augment.glmmfit)
    })
    ## (lapply, not for: s3_register()'s arguments are evaluated when the
    ## package loads, possibly later)
    easystats <- list(insight = c("find_formula", "find_parameters", "get_parameters", "get_statistic",
                                  "get_df", "get_loglikelihood", "get_variance", "get_predicted"),
                      performance = c("check_singularity", "check_convergence", "r2", "model_performance"),
                      parameters = c("model_parameters", "p_value", "standard_error", "degrees_of_freedom"),
                      bayestestR = "ci")
    for (pkg in names(easystats))
        lapply(easystats[[pkg]], function(g, pkg)
            s3_register(pkg, g, "lmmfit", get(paste0(g, ".lmmfit"), mode = "function")), pkg = pkg)
    ## generalized fits (R/glmm-insight.R)
    glmm_easystats <- list(insight = c("find_formula", "get_data", "find_parameters", "get_parameters", "get_statistic",
                                       "get_df", "get_loglikelihood", "get_variance"),
                           performance = c("check_singularity", "r2", "model_performance"),
                           parameters = "model_parameters")
    for (pkg in names(glmm_easystats))
        lapply(glmm_easystats[[pkg]], function(g, pkg)
            s3_register(pkg, g, "glmmfit", get(paste0(g, ".glmmfit"), mode = "function")), pkg = pkg)
    invisible()
}

## Register 'method' for 'generic' of package 'pkg' as soon as pkg's
## namespace is loaded, if the generic lives in that namespace.
s3_register <- function(pkg, generic, class, method) {
    register <- function(...) {
        ns <- asNamespace(pkg)
        if (exists(generic, envir = ns, mode = "function", inherits = FALSE) &&
            identical(environmentName(environment(get(generic, envir = ns))), pkg))
            registerS3method(generic, class, method, envir = ns)
    }
    setHook(packageEvent(pkg, "onLoad"), register)
    if (isNamespaceLoaded(pkg)) register()
    invisible()
}

## Whether the dense block's Cholesky goes to LAPACK's dpotrf at every order
## (TRUE) or to the package's blocked kernel above order 160 (FALSE).  The
## option lmmfit.dense_chol or the environment variable LMMFIT_DENSE_CHOL
## ("lapack", "blocked" or "auto") decides; "auto" takes LAPACK when R uses an
## optimised one, recognised by name, whose threaded dpotrf is faster than the
## kernel (made for R's reference LAPACK).
dense_chol_uses_lapack <- function(choice = getOption("lmmfit.dense_chol",
                                                      Sys.getenv("LMMFIT_DENSE_CHOL", "auto"))) {
    choice <- match.arg(tolower(choice), c("auto", "lapack", "blocked"))
    if (choice != "auto") return(choice == "lapack")
    libs <- c(tryCatch(extSoftVersion()[["BLAS"]], error = function(e) ""),
              tryCatch(La_library(), error = function(e) ""))
    any(grepl("openblas|mkl|blis|atlas|accelerate|veclib|armpl", libs, ignore.case = TRUE))
}
