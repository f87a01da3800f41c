## Registration of methods for generics of suggested-but-not-required
## packages: when their namespace loads (now or later), the methods join it.

.onLoad <- function(libname, pkgname) {
    s3_register("generics", "tidy", "lmmfit", tidy.lmmfit)
    s3_register("generics", "glance", "lmmfit", glance.lmmfit)
    s3_register("generics", "augment", "lmmfit", augment.lmmfit)
    ## an older broom defines its generics itself rather than re-exporting
    ## those of generics
    s3_register("broom", "tidy", "lmmfit", tidy.lmmfit)
    s3_register("broom", "glance", "lmmfit", glance.lmmfit)
    s3_register("broom", "augment", "lmmfit", augment.lmmfit)
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
