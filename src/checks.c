/* Argument checks shared by the .Call entry points: each returns the value of
 * a length-one argument of the right type, or stops with an R error naming
 * the argument, so that a wrong call from R never reaches the typed code. */
#include <math.h>
#include <string.h>
#include <Rinternals.h>
#include "lmmfit.h"

/* TRUE or FALSE: a length-one logical (or the number 0 or 1), not NA. */
int lmm_arg_flag(SEXP s, const char *what)
{
    int ok = (isLogical(s) || isInteger(s) || isReal(s)) && XLENGTH(s) == 1;
    int v = NA_LOGICAL;
    if (ok && isLogical(s)) v = LOGICAL(s)[0];
    else if (ok) {
        double d = asReal(s);
        if (d == 0 || d == 1) v = (int) d;
    }
    if (v == NA_LOGICAL) error(_("'%s' must be TRUE or FALSE"), what);
    return v;
}

/* A whole number in [lo, hi], given as one integer or double. */
int lmm_arg_int(SEXP s, const char *what, int lo, int hi)
{
    double v = NA_REAL;
    if ((isInteger(s) || isReal(s) || isLogical(s)) && XLENGTH(s) == 1) v = asReal(s);
    if (!R_FINITE(v) || v != floor(v) || v < lo || v > hi)
        error(_("'%s' must be one whole number between %d and %d"), what, lo, hi);
    return (int) v;
}

/* One finite number. */
double lmm_arg_real(SEXP s, const char *what)
{
    double v = NA_REAL;
    if ((isInteger(s) || isReal(s)) && XLENGTH(s) == 1) v = asReal(s);
    if (!R_FINITE(v)) error(_("'%s' must be one finite number"), what);
    return v;
}

/* A double vector of length len (len < 0: any length) with finite values. */
const double *lmm_arg_finite(SEXP s, R_xlen_t len, const char *what)
{
    if (!isReal(s) || (len >= 0 && XLENGTH(s) != len)) {
        if (len >= 0) error(_("'%s' must be a numeric vector of length %lld"), what, (long long) len);
        error(_("'%s' must be a numeric vector"), what);
    }
    const double *x = REAL(s);
    for (R_xlen_t i = 0; i < XLENGTH(s); i++)
        if (!R_FINITE(x[i])) error(_("'%s' must have finite values"), what);
    return x;
}

/* ---- scans of n-length data that would cost R a temporary each ---------- */

/* TRUE when every value of a numeric vector or matrix is finite (integers:
 * not NA). */
SEXP lmm_all_finite(SEXP x)
{
    R_xlen_t n = XLENGTH(x);
    if (isReal(x)) {
        const double *v = REAL(x);
        for (R_xlen_t i = 0; i < n; i++)
            if (!R_FINITE(v[i])) return ScalarLogical(FALSE);
    } else if (TYPEOF(x) == INTSXP || TYPEOF(x) == LGLSXP) {
        const int *v = TYPEOF(x) == INTSXP ? INTEGER(x) : LOGICAL(x);
        for (R_xlen_t i = 0; i < n; i++)
            if (v[i] == NA_INTEGER) return ScalarLogical(FALSE);
    } else error(_("'x' must be a numeric vector or matrix"));
    return ScalarLogical(TRUE);
}

/* TRUE when a factor (its integer codes) has no NA and uses each of its
 * levels: then factor() would change nothing. */
SEXP lmm_levels_used(SEXP f)
{
    if (!isFactor(f)) error(_("'f' must be a factor"));
    int nlev = LENGTH(getAttrib(f, R_LevelsSymbol));
    R_xlen_t n = XLENGTH(f);
    const int *code = INTEGER(f);
    char *seen = (char *) R_alloc((size_t) nlev + 1, 1);
    memset(seen, 0, (size_t) nlev + 1);
    int nseen = 0;
    for (R_xlen_t i = 0; i < n; i++) {
        int c = code[i];
        if (c == NA_INTEGER || c < 1 || c > nlev) return ScalarLogical(FALSE);
        if (!seen[c]) { seen[c] = 1; nseen++; }
    }
    return ScalarLogical(nseen == nlev);
}

/* For check_scales() and re_centring(): the standard deviation of each
 * column of a double matrix that holds some value other than 0 and 1, NA for
 * the others (the intercept, dummies); the columns' means as attribute. */
SEXP lmm_column_scales(SEXP X)
{
    if (!isReal(X) || !isMatrix(X)) error(_("'X' must be a numeric matrix"));
    R_xlen_t n = nrows(X);
    int p = ncols(X);
    SEXP ans = PROTECT(allocVector(REALSXP, p));
    SEXP means = PROTECT(allocVector(REALSXP, p));
    for (int j = 0; j < p; j++) {
        const double *x = REAL(X) + (size_t) j * n;
        int binary = 1;
        double mean = 0;
        for (R_xlen_t i = 0; i < n; i++) {
            if (x[i] != 0 && x[i] != 1) binary = 0;
            mean += x[i];
        }
        double ss = 0;
        mean /= (double) n;
        for (R_xlen_t i = 0; i < n; i++) ss += (x[i] - mean) * (x[i] - mean);
        REAL(ans)[j] = binary || n < 2 ? NA_REAL : sqrt(ss / (double) (n - 1));
        REAL(means)[j] = mean;
    }
    /* the means too (attribute "mean"): re_centring() needs both, and a
     * second pass over a million-row column costs a few milliseconds */
    setAttrib(ans, install("mean"), means);
    UNPROTECT(2);
    return ans;
}
