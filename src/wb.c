/* Within/between decomposition of a covariate (DESIGN.md section 6):
 * the group means of x, and per row the mean of its group ("between") and
 * the deviation from it ("within").  The means come from one pass over the
 * rows; a second pass writes the two columns. */
#include <R.h>
#include <Rinternals.h>
#include "lmmfit.h"

/* Group means of x over the rows where x is not NA/NaN; a group with no such
 * row gets NA.  g holds 1-based codes in 1..ng.  between and within may be
 * NULL; otherwise between[i] = mean of row i's group and within[i] = x[i] -
 * between[i] (NA where x[i] is NA or the group has no mean).  scratch holds
 * ng integers.  Returns 0, or the 1-based row of the first invalid code. */
static R_xlen_t wb_decompose(const double *x, const int *g, R_xlen_t n, int ng,
                             double *means, int *count, double *between, double *within)
{
    for (int k = 0; k < ng; k++) { means[k] = 0.0; count[k] = 0; }
    for (R_xlen_t i = 0; i < n; i++) {
        int k = g[i];
        if (k == NA_INTEGER || k < 1 || k > ng) return i + 1;
        if (ISNAN(x[i])) continue;
        means[k - 1] += x[i];
        count[k - 1]++;
        if ((i & 0xFFFF) == 0xFFFF) R_CheckUserInterrupt();
    }
    for (int k = 0; k < ng; k++) means[k] = count[k] > 0 ? means[k] / count[k] : NA_REAL;
    if (between == NULL || within == NULL) return 0;
    for (R_xlen_t i = 0; i < n; i++) {
        double m = means[g[i] - 1];
        between[i] = m;
        within[i] = (ISNAN(x[i]) || ISNAN(m)) ? NA_REAL : x[i] - m;
    }
    return 0;
}

/* .Call entry: x (double), g (integer codes 1..ngroups), ngroups.
 * Returns list(means = per group, between = per row, within = per row). */
SEXP lmm_wb(SEXP x, SEXP g, SEXP ngroups)
{
    int nprot = 0;
    if (!isReal(x)) error(_("wb(): 'x' must be a numeric (double) vector"));
    if (!isInteger(g)) error(_("wb(): the group codes must be an integer vector"));
    if (XLENGTH(x) != XLENGTH(g))
        error(_("wb(): 'x' has %lld values but the grouping variable has %lld"),
              (long long) XLENGTH(x), (long long) XLENGTH(g));
    if (!isInteger(ngroups) || LENGTH(ngroups) != 1 || INTEGER(ngroups)[0] == NA_INTEGER ||
        INTEGER(ngroups)[0] < 0)
        error(_("wb(): 'ngroups' must be one non-negative integer"));
    R_xlen_t n = XLENGTH(x);
    int ng = INTEGER(ngroups)[0];

    SEXP means = PROTECT(allocVector(REALSXP, ng)); nprot++;
    SEXP between = PROTECT(allocVector(REALSXP, n)); nprot++;
    SEXP within = PROTECT(allocVector(REALSXP, n)); nprot++;
    int *count = (int *) R_alloc((size_t) (ng > 0 ? ng : 1), sizeof(int));
    R_xlen_t bad = wb_decompose(REAL(x), INTEGER(g), n, ng, REAL(means), count,
                                REAL(between), REAL(within));
    if (bad > 0) {
        if (INTEGER(g)[bad - 1] == NA_INTEGER)
            error(_("wb(): the grouping variable has a missing value (row %lld)"), (long long) bad);
        error(_("wb(): group code %d in row %lld is outside 1..%d"),
              INTEGER(g)[bad - 1], (long long) bad, ng);
    }

    SEXP ans = PROTECT(allocVector(VECSXP, 3)); nprot++;
    SEXP nms = PROTECT(allocVector(STRSXP, 3)); nprot++;
    SET_VECTOR_ELT(ans, 0, means);
    SET_VECTOR_ELT(ans, 1, between);
    SET_VECTOR_ELT(ans, 2, within);
    SET_STRING_ELT(nms, 0, mkChar("means"));
    SET_STRING_ELT(nms, 1, mkChar("between"));
    SET_STRING_ELT(nms, 2, mkChar("within"));
    setAttrib(ans, R_NamesSymbol, nms);
    UNPROTECT(nprot);
    return ans;
}
