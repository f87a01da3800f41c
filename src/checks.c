/* Argument checks shared by the .Call entry points: each returns the value of
 * a length-one argument of the right type, or stops with an R error naming
 * the argument, so that a wrong call from R never reaches the typed code. */
#include <math.h>
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
