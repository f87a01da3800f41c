#!/usr/bin/env bash
# Install what lmmfit needs to build, check, run its demo and its benchmarks,
# skipping anything already present (fast when nothing is missing).
#
#   tools/install-deps.sh
#
# Debian packages first (one 'apt-get update', then one 'apt-get install' of
# the missing ones); any R package Debian could not supply falls back to CRAN.
# Works as root, non-interactively (or through sudo when not root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# R package -> Debian package.  testthat is listed so a bare machine gets it
# too; broom and generics back the tidier tests.  Every package named in
# DESCRIPTION (Depends, Imports, LinkingTo, Suggests) is added to these.
r_pkgs=(lme4 roxygen2 knitr rmarkdown lmerTest pbkrtest plm testthat broom generics
        emmeans car multcomp insight performance parameters broom.mixed effects ggeffects sjPlot
        merTools RLRsim metafor metadat DBI RSQLite RPostgreSQL dbplyr dplyr readr withr)
deb_of() { echo "r-cran-$(echo "$1" | tr '[:upper:]' '[:lower:]')"; }
top=$(cd "$(dirname "$0")/.." && pwd)

missing_r() {
    Rscript --vanilla -e 'args <- commandArgs(TRUE); desc <- args[1]; p <- args[-1]
        if (file.exists(desc)) {
            d <- read.dcf(desc, fields = c("Depends", "Imports", "LinkingTo", "Suggests"))
            d <- unlist(strsplit(d[!is.na(d)], ","))
            d <- trimws(sub("\\(.*", "", d))
            p <- unique(c(p, d[nzchar(d)]))
        }
        base <- rownames(installed.packages(priority = "base"))
        p <- setdiff(p, c("R", base))
        ok <- vapply(p, function(x) requireNamespace(x, quietly = TRUE), logical(1))
        cat(sprintf("MISSING %s\n", p[!ok]), sep = "")' "$top/DESCRIPTION" "${r_pkgs[@]}" 2>/dev/null |
        sed -n 's/^MISSING //p'
}

if ! command -v Rscript >/dev/null 2>&1; then
    echo "install-deps: Rscript not found; install R first (apt-get install r-base-dev)" >&2
    exit 1
fi

mapfile -t miss < <(missing_r)
need_pandoc=0
command -v pandoc >/dev/null 2>&1 || need_pandoc=1
# make valgrind needs valgrind; make sanitize needs gcc's ASan/UBSan runtimes
# (Debian's gcc ships them: libasan/libubsan come with the gcc package).
need_valgrind=0
command -v valgrind >/dev/null 2>&1 || need_valgrind=1
# R CMD check --as-cran warns when qpdf is missing once the package has vignettes
need_qpdf=0
command -v qpdf >/dev/null 2>&1 || need_qpdf=1
# the database tests start a PostgreSQL server from Debian's server binaries
need_postgres=0
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need_postgres=1

if [ "${#miss[@]}" -eq 0 ] && [ "$need_pandoc" -eq 0 ] && [ "$need_valgrind" -eq 0 ] && [ "$need_qpdf" -eq 0 ] &&
   [ "$need_postgres" -eq 0 ]; then
    echo "install-deps: everything is installed"
    exit 0
fi
echo "install-deps: missing R packages: ${miss[*]:-none}; pandoc missing: $need_pandoc; valgrind missing: $need_valgrind; qpdf missing: $need_qpdf; postgresql missing: $need_postgres"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
fi

debs=()
for p in "${miss[@]}"; do debs+=("$(deb_of "$p")"); done
[ "$need_pandoc" -eq 1 ] && debs+=(pandoc)
[ "$need_valgrind" -eq 1 ] && debs+=(valgrind)
[ "$need_qpdf" -eq 1 ] && debs+=(qpdf)
[ "$need_postgres" -eq 1 ] && debs+=(postgresql)

if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; }; then
    $SUDO apt-get update -qq || echo "install-deps: apt-get update failed; trying anyway" >&2
    if ! $SUDO apt-get install -y -q "${debs[@]}" </dev/null; then
        # One unknown name fails the whole transaction: retry one at a time.
        for d in "${debs[@]}"; do
            $SUDO apt-get install -y -q "$d" </dev/null || echo "install-deps: apt could not install $d" >&2
        done
    fi
else
    echo "install-deps: no apt-get (or not root and no sudo); using CRAN only" >&2
fi

# CRAN fallback for whatever is still missing.
mapfile -t miss < <(missing_r)
if [ "${#miss[@]}" -gt 0 ]; then
    echo "install-deps: from CRAN: ${miss[*]}"
    Rscript --vanilla -e 'p <- commandArgs(TRUE)
        lib <- .libPaths()[1]
        if (file.access(lib, 2) != 0) {
            lib <- Sys.getenv("R_LIBS_USER"); dir.create(lib, recursive = TRUE, showWarnings = FALSE)
        }
        install.packages(p, lib = lib, repos = "https://cloud.r-project.org",
                         Ncpus = max(1L, parallel::detectCores()))' "${miss[@]}" </dev/null
fi

mapfile -t miss < <(missing_r)
command -v pandoc >/dev/null 2>&1 || echo "install-deps: warning: pandoc is still missing (needed for rmarkdown vignettes)" >&2
command -v valgrind >/dev/null 2>&1 || echo "install-deps: warning: valgrind is still missing (needed by make valgrind)" >&2
if [ "${#miss[@]}" -gt 0 ]; then
    echo "install-deps: could not install: ${miss[*]}" >&2
    exit 1
fi
echo "install-deps: done"
