/* Cross-products of the data, formed once per fit in one pass over the rows
 * (DESIGN.md section 2).  After this nothing touches n-length data. */
#include <stdlib.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include "lapack.h"
#include <Rinternals.h>
#include "model.h"
#include "lmmfit.h"

/* Offsets of each rest term (terms 1..R-1) in the rest space. */
static void rest_offsets(int nterms, const int *nlev, const int *ncol, int *roff)
{
    int off = 0;
    roff[0] = 0;
    for (int j = 1; j < nterms; j++) {
        roff[j] = off;
        off += nlev[j] * ncol[j];
    }
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *) a, y = *(const int *) b;
    return (x > y) - (x < y);
}

/* Rows of the data sorted by level of the first term (a counting sort). */
static void order_by_first(R_xlen_t n, const int *code0, int nlev0, int *start, int *order)
{
    memset(start, 0, (size_t) (nlev0 + 1) * sizeof(int));
    for (R_xlen_t t = 0; t < n; t++) start[code0[t] + 1]++;
    for (int g = 0; g < nlev0; g++) start[g + 1] += start[g];
    int *fill = (int *) R_alloc((size_t) nlev0, sizeof(int));
    memcpy(fill, start, (size_t) nlev0 * sizeof(int));
    for (R_xlen_t t = 0; t < n; t++) order[fill[code0[t]]++] = (int) t;
}

/* The sparsity pattern of the rest-by-first block: for each level g of the
 * first term, the rest tiles that co-occur with it.  Returns the number of
 * rest rows stored in total; A21p gets the row pointers, *A21i a scratch array. */
static R_xlen_t a21_pattern(int nterms, const int *const *codes,
                            const int *nlev, const int *ncol, const int *roff,
                            const int *start, const int *order, int *A21p, int **A21i_out)
{
    int nblocks = 0;
    for (int j = 1; j < nterms; j++) nblocks += nlev[j];
    int *boff = (int *) R_alloc((size_t) nterms, sizeof(int));
    for (int j = 1, b = 0; j < nterms; j++) { boff[j] = b; b += nlev[j]; }
    int *mark = (int *) R_alloc((size_t) (nblocks > 0 ? nblocks : 1), sizeof(int));
    for (int b = 0; b < nblocks; b++) mark[b] = -1;

    /* Pass 1: count distinct tiles per level, and their rows. */
    R_xlen_t total = 0, ntiles = 0;
    A21p[0] = 0;
    for (int g = 0; g < nlev[0]; g++) {
        for (int s = start[g]; s < start[g + 1]; s++) {
            R_xlen_t t = order[s];
            for (int j = 1; j < nterms; j++) {
                int b = boff[j] + codes[j][t];
                if (mark[b] != g) { mark[b] = g; total += ncol[j]; ntiles++; }
            }
        }
        if (total > INT_MAX) error(_("the crossed random-effects structure is too large"));
        A21p[g + 1] = (int) total;
    }
    /* Pass 2: list the tiles' first rows, sorted, then expand to rows. */
    int *tiles = (int *) R_alloc((size_t) (ntiles > 0 ? ntiles : 1), sizeof(int));
    int *A21i = (int *) R_alloc((size_t) (total > 0 ? total : 1), sizeof(int));
    for (int b = 0; b < nblocks; b++) mark[b] = -1;
    for (int g = 0; g < nlev[0]; g++) {
        int nt = 0;
        for (int s = start[g]; s < start[g + 1]; s++) {
            R_xlen_t t = order[s];
            for (int j = 1; j < nterms; j++) {
                int b = boff[j] + codes[j][t];
                if (mark[b] != g) {
                    mark[b] = g;
                    tiles[nt++] = roff[j] + codes[j][t] * ncol[j];
                }
            }
        }
        qsort(tiles, (size_t) nt, sizeof(int), cmp_int);
        int pos = A21p[g];
        for (int i = 0; i < nt; i++) {
            /* the tile's term: the last term whose offset is <= the row */
            int j = nterms - 1;
            while (j > 1 && roff[j] > tiles[i]) j--;
            for (int c = 0; c < ncol[j]; c++) A21i[pos++] = tiles[i] + c;
        }
    }
    *A21i_out = A21i;
    return total;
}

/* Numeric pass.  w may be NULL (unit weights).  Outputs must be zeroed (or hold
 * sums to add to).  Rows visited: order[start[g] .. start[g+1]) for each level g
 * of the first term; they must fit the pattern A21p/A21i.  Also used by ar1.c.
 * With xshift and b0 (else both NULL) the rows are those of the conditioned
 * data, x - xshift and y - (x - xshift)'b0, formed here row by row so that
 * no n-length copy of X or y is needed. */
void lmm_accumulate(R_xlen_t n, int p, const double *X, const double *y, const double *w,
                    const double *xshift, const double *b0,
                    int nterms, const int *const *codes, const double *const *Z,
                    const int *nlev, const int *ncol, const int *roff, int q2,
                    const int *start, const int *order, const int *A21p, const int *A21i,
                    double *A11, double *A21x, double *A22, double *AX1, double *AX2,
                    double *AXX)
{
    int k1 = ncol[0], px = p + 1;
    double *xr = (double *) R_alloc((size_t) px, sizeof(double));
    int *pos = (int *) R_alloc((size_t) (q2 > 0 ? q2 : 1), sizeof(int));

    for (int g = 0; g < nlev[0]; g++) {
        /* where each rest row of this level's pattern sits in its value block */
        int m = A21p[g + 1] - A21p[g];
        for (int i = 0; i < m; i++) pos[A21i[A21p[g] + i]] = i;
        double *a11 = A11 + (size_t) g * k1 * k1;
        double *a21 = A21x + (size_t) A21p[g] * k1;
        for (int s = start[g]; s < start[g + 1]; s++) {
            R_xlen_t t = order[s];
            double wt = w ? w[t] : 1.0;
            for (int i = 0; i < p; i++) xr[i] = X[t + i * n];
            xr[p] = y[t];
            if (xshift) {
                double fit = 0;
                for (int i = 0; i < p; i++) {
                    xr[i] -= xshift[i];
                    fit += xr[i] * b0[i];
                }
                xr[p] -= fit;
            }
            /* first term with itself and with X, y */
            for (int c = 0; c < k1; c++) {
                double zc = wt * Z[0][t + c * n];
                if (zc == 0.0) continue;
                for (int r = 0; r < k1; r++) a11[r + c * k1] += zc * Z[0][t + r * n];
                double *ax = AX1 + (size_t) (g * k1 + c) * px;
                for (int i = 0; i < px; i++) ax[i] += zc * xr[i];
            }
            /* rest terms with the first, with each other, with X, y */
            for (int j = 1; j < nterms; j++) {
                int row0 = roff[j] + codes[j][t] * ncol[j];
                for (int cj = 0; cj < ncol[j]; cj++) {
                    double zj = wt * Z[j][t + cj * n];
                    if (zj == 0.0) continue;
                    int rj = row0 + cj, at = pos[rj];
                    for (int c = 0; c < k1; c++) a21[at + c * m] += zj * Z[0][t + c * n];
                    double *ax = AX2 + (size_t) rj * px;
                    for (int i = 0; i < px; i++) ax[i] += zj * xr[i];
                    for (int l = 1; l < nterms; l++) {
                        int col0 = roff[l] + codes[l][t] * ncol[l];
                        for (int cl = 0; cl < ncol[l]; cl++)
                            A22[rj + (size_t) (col0 + cl) * q2] += zj * Z[l][t + cl * n];
                    }
                }
            }
            for (int c = 0; c < px; c++) {
                double xc = wt * xr[c];
                for (int r = c; r < px; r++) AXX[r + c * px] += xc * xr[r];
            }
        }
    }
    for (int c = 0; c < px; c++)
        for (int r = c + 1; r < px; r++) AXX[c + r * px] = AXX[r + c * px];
}

static SEXP alloc_zero(SEXPTYPE type, R_xlen_t len)
{
    SEXP ans = allocVector(type, len);
    if (type == REALSXP) memset(REAL(ans), 0, (size_t) len * sizeof(double));
    else memset(INTEGER(ans), 0, (size_t) len * sizeof(int));
    return ans;
}

SEXP lmm_crossprod(SEXP sX, SEXP sy, SEXP sw, SEXP scodes, SEXP sZ, SEXP snlev,
                   SEXP sxshift, SEXP sb0)
{
    int nprot = 0;
    if (!isReal(sX) || !isMatrix(sX)) error(_("'X' must be a numeric matrix"));
    if (!isReal(sy)) error(_("'y' must be a numeric vector"));
    if (!isNewList(scodes) || !isNewList(sZ) || !isInteger(snlev))
        error(_("'codes' and 'Z' must be lists and 'nlev' an integer vector"));
    R_xlen_t n = XLENGTH(sy);
    int p = ncols(sX), nterms = LENGTH(scodes);
    if (nrows(sX) != n) error(_("'X' and 'y' have different numbers of rows"));
    if (n > INT_MAX) error(_("more than %d observations are not supported"), INT_MAX);
    if (nterms < 1 || LENGTH(sZ) != nterms || LENGTH(snlev) != nterms)
        error(_("'codes', 'Z' and 'nlev' must have one entry per random-effects term"));
    const double *w = NULL;
    if (!isNull(sw)) {
        if (!isReal(sw) || XLENGTH(sw) != n) error(_("'weights' must be numeric, one per observation"));
        w = REAL(sw);
        for (R_xlen_t t = 0; t < n; t++)
            if (!(w[t] > 0 && w[t] < R_PosInf)) error(_("'weights' must be positive and finite"));
    }
    const double *xshift = NULL, *b0 = NULL;
    if (!isNull(sxshift) || !isNull(sb0)) {
        xshift = lmm_arg_finite(sxshift, p, "xshift");
        b0 = lmm_arg_finite(sb0, p, "b0");
    }
    const int *nlev = INTEGER(snlev);
    const int **codes = (const int **) R_alloc((size_t) nterms, sizeof(int *));
    const double **Z = (const double **) R_alloc((size_t) nterms, sizeof(double *));
    int *ncol = (int *) R_alloc((size_t) nterms, sizeof(int));
    for (int j = 0; j < nterms; j++) {
        SEXP cj = VECTOR_ELT(scodes, j), zj = VECTOR_ELT(sZ, j);
        /* factors welcome: their codes are the integers wanted */
        if (TYPEOF(cj) != INTSXP || XLENGTH(cj) != n) error(_("grouping codes of term %d have the wrong type or length"), j + 1);
        if (!isReal(zj) || !isMatrix(zj) || nrows(zj) != n) error(_("model matrix of term %d has the wrong type or size"), j + 1);
        if (nlev[j] < 1) error(_("term %d has no levels"), j + 1);
        ncol[j] = ncols(zj);
        if (ncol[j] < 1) error(_("term %d has no columns"), j + 1);
        const int *cc = INTEGER(cj);
        for (R_xlen_t t = 0; t < n; t++)
            if (cc[t] < 1 || cc[t] > nlev[j]) error(_("grouping codes of term %d are out of range"), j + 1);
        /* R's factor codes are 1-based; the core works 0-based */
        int *c0 = (int *) R_alloc((size_t) n, sizeof(int));
        for (R_xlen_t t = 0; t < n; t++) c0[t] = cc[t] - 1;
        codes[j] = c0;
        Z[j] = REAL(zj);
    }
    /* sizes in double before any int arithmetic on them */
    double q2d = 0, q1d = (double) nlev[0] * ncol[0];
    for (int j = 1; j < nterms; j++) q2d += (double) nlev[j] * ncol[j];
    if (q1d * ncol[0] > INT_MAX || q1d * (p + 1) > R_XLEN_T_MAX)
        error(_("too many random effects in the largest term (%.0f)"), q1d);
    if (q2d > 46340) /* q2 x q2 dense must stay addressable and sane */
        error(_("too many random effects outside the largest term (%.0f) for the dense block"), q2d);
    int *roff = (int *) R_alloc((size_t) nterms, sizeof(int));
    rest_offsets(nterms, nlev, ncol, roff);
    int q1 = (int) q1d, q2 = (int) q2d, px = p + 1, k1 = ncol[0];

    int *start = (int *) R_alloc((size_t) nlev[0] + 1, sizeof(int));
    int *order = (int *) R_alloc((size_t) n, sizeof(int));
    order_by_first(n, codes[0], nlev[0], start, order);

    SEXP sA21p = PROTECT(allocVector(INTSXP, nlev[0] + 1)); nprot++;
    int *A21i_scratch;
    R_xlen_t m = a21_pattern(nterms, codes, nlev, ncol, roff, start, order,
                             INTEGER(sA21p), &A21i_scratch);
    SEXP sA21i = PROTECT(allocVector(INTSXP, m)); nprot++;
    if (m > 0) memcpy(INTEGER(sA21i), A21i_scratch, (size_t) m * sizeof(int));

    SEXP sA11 = PROTECT(alloc_zero(REALSXP, (R_xlen_t) nlev[0] * k1 * k1)); nprot++;
    SEXP sA21x = PROTECT(alloc_zero(REALSXP, m * k1)); nprot++;
    SEXP sA22 = PROTECT(alloc_zero(REALSXP, (R_xlen_t) q2 * q2)); nprot++;
    SEXP sAX1 = PROTECT(alloc_zero(REALSXP, (R_xlen_t) px * q1)); nprot++;
    SEXP sAX2 = PROTECT(alloc_zero(REALSXP, (R_xlen_t) px * q2)); nprot++;
    SEXP sAXX = PROTECT(alloc_zero(REALSXP, (R_xlen_t) px * px)); nprot++;
    lmm_accumulate(n, p, REAL(sX), REAL(sy), w, xshift, b0, nterms, codes, Z, nlev, ncol, roff, q2,
               start, order, INTEGER(sA21p), INTEGER(sA21i),
               REAL(sA11), REAL(sA21x), REAL(sA22), REAL(sAX1), REAL(sAX2), REAL(sAXX));

    double sumlogw = 0;
    if (w) for (R_xlen_t t = 0; t < n; t++) sumlogw += log(w[t]);

    SEXP sncol = PROTECT(allocVector(INTSXP, nterms)); nprot++;
    memcpy(INTEGER(sncol), ncol, (size_t) nterms * sizeof(int));
    const char *names[] = {"nlev", "ncol", "nobs", "p", "sumlogw", "A11", "A21p", "A21i",
                           "A21x", "A22", "AX1", "AX2", "AXX", ""};
    SEXP ans = PROTECT(mkNamed(VECSXP, names)); nprot++;
    SET_VECTOR_ELT(ans, 0, duplicate(snlev));
    SET_VECTOR_ELT(ans, 1, sncol);
    SET_VECTOR_ELT(ans, 2, ScalarInteger((int) n));
    SET_VECTOR_ELT(ans, 3, ScalarInteger(p));
    SET_VECTOR_ELT(ans, 4, ScalarReal(sumlogw));
    SET_VECTOR_ELT(ans, 5, sA11);
    SET_VECTOR_ELT(ans, 6, sA21p);
    SET_VECTOR_ELT(ans, 7, sA21i);
    SET_VECTOR_ELT(ans, 8, sA21x);
    SET_VECTOR_ELT(ans, 9, sA22);
    SET_VECTOR_ELT(ans, 10, sAX1);
    SET_VECTOR_ELT(ans, 11, sAX2);
    SET_VECTOR_ELT(ans, 12, sAXX);
    UNPROTECT(nprot);
    return ans;
}

/* Unpack the list made by lmm_crossprod into the typed struct, checking it. */
void lmm_unpack_xprod(SEXP s, lmm_xprod *xp)
{
    if (!isNewList(s) || LENGTH(s) != 13) error(_("not an lmmfit cross-product list"));
    SEXP nlev = VECTOR_ELT(s, 0), ncol = VECTOR_ELT(s, 1);
    if (!isInteger(nlev) || !isInteger(ncol) || LENGTH(nlev) != LENGTH(ncol) || LENGTH(nlev) < 1)
        error(_("corrupt cross-product list: 'nlev'/'ncol'"));
    xp->nterms = LENGTH(nlev);
    xp->nlev = INTEGER(nlev);
    xp->ncol = INTEGER(ncol);
    double q1d = 0, q2d = 0;
    for (int j = 0; j < xp->nterms; j++) {
        if (xp->nlev[j] < 1 || xp->ncol[j] < 1 || xp->ncol[j] > 46340)   /* NA is negative */
            error(_("corrupt cross-product list: 'nlev'/'ncol'"));
        if (j == 0) q1d = (double) xp->nlev[0] * xp->ncol[0];
        else q2d += (double) xp->nlev[j] * xp->ncol[j];
    }
    if (q1d * xp->ncol[0] > INT_MAX || q2d > 46340)
        error(_("corrupt cross-product list: too many random effects"));
    for (int i = 2; i <= 4; i++) {
        SEXP e = VECTOR_ELT(s, i);
        if (!(isInteger(e) || isReal(e)) || XLENGTH(e) != 1)
            error(_("corrupt cross-product list: element %d has the wrong type"), i + 1);
    }
    xp->nobs = asInteger(VECTOR_ELT(s, 2));
    xp->p = asInteger(VECTOR_ELT(s, 3));
    xp->sumlogw = asReal(VECTOR_ELT(s, 4));
    if (xp->nobs == NA_INTEGER || xp->nobs < 1 || xp->p == NA_INTEGER || xp->p < 0 ||
        xp->p > 46340 || xp->nobs <= xp->p || !R_FINITE(xp->sumlogw))
        error(_("corrupt cross-product list: 'nobs', 'p' or 'sumlogw'"));
    xp->px = xp->p + 1;
    xp->q1 = (int) q1d;
    xp->q2 = (int) q2d;
    int k1 = xp->ncol[0], px = xp->px, q1 = xp->q1, q2 = xp->q2;
    for (int i = 5; i <= 12; i++) {
        SEXP e = VECTOR_ELT(s, i);
        if ((i == 6 || i == 7) ? !isInteger(e) : !isReal(e))
            error(_("corrupt cross-product list: element %d has the wrong type"), i + 1);
    }
    SEXP A21p = VECTOR_ELT(s, 6);
    if (XLENGTH(A21p) != (R_xlen_t) xp->nlev[0] + 1 || INTEGER(A21p)[0] != 0)
        error(_("corrupt cross-product list: 'A21p'"));
    for (int g = 0; g < xp->nlev[0]; g++)   /* each level's rows: at most the rest space */
        if (INTEGER(A21p)[g + 1] < INTEGER(A21p)[g] || INTEGER(A21p)[g + 1] - INTEGER(A21p)[g] > q2)
            error(_("corrupt cross-product list: 'A21p'"));
    R_xlen_t m = INTEGER(A21p)[xp->nlev[0]];
    if (XLENGTH(VECTOR_ELT(s, 5)) != (R_xlen_t) xp->nlev[0] * k1 * k1 ||
        XLENGTH(VECTOR_ELT(s, 7)) != m || XLENGTH(VECTOR_ELT(s, 8)) != m * k1 ||
        XLENGTH(VECTOR_ELT(s, 9)) != (R_xlen_t) q2 * q2 ||
        XLENGTH(VECTOR_ELT(s, 10)) != (R_xlen_t) px * q1 ||
        XLENGTH(VECTOR_ELT(s, 11)) != (R_xlen_t) px * q2 ||
        XLENGTH(VECTOR_ELT(s, 12)) != (R_xlen_t) px * px)
        error(_("corrupt cross-product list: sizes do not agree"));
    xp->A11 = REAL(VECTOR_ELT(s, 5));
    xp->A21p = INTEGER(A21p);
    xp->A21i = INTEGER(VECTOR_ELT(s, 7));
    xp->A21x = REAL(VECTOR_ELT(s, 8));
    xp->A22 = REAL(VECTOR_ELT(s, 9));
    xp->AX1 = REAL(VECTOR_ELT(s, 10));
    xp->AX2 = REAL(VECTOR_ELT(s, 11));
    xp->AXX = REAL(VECTOR_ELT(s, 12));
    for (R_xlen_t i = 0; i < m; i++)
        if (xp->A21i[i] < 0 || xp->A21i[i] >= q2) error(_("corrupt cross-product list: 'A21i'"));
    int *rterm = (int *) R_alloc((size_t) (q2 > 0 ? q2 : 1), sizeof(int));
    int *rpos = (int *) R_alloc((size_t) (q2 > 0 ? q2 : 1), sizeof(int));
    for (int j = 1, r = 0; j < xp->nterms; j++)
        for (int h = 0; h < xp->nlev[j]; h++)
            for (int c = 0; c < xp->ncol[j]; c++, r++) { rterm[r] = j; rpos[r] = c; }
    /* each level's rows increase and come in whole tiles (the factorisation
     * transforms a tile's k rows from its first) */
    for (int g = 0; g < xp->nlev[0]; g++)
        for (int i = xp->A21p[g]; i < xp->A21p[g + 1]; i++) {
            int r = xp->A21i[i], first = i == xp->A21p[g];
            if ((!first && r <= xp->A21i[i - 1]) ||
                (rpos[r] > 0 && (first || xp->A21i[i - 1] != r - 1)))
                error(_("corrupt cross-product list: 'A21i'"));
            if (rpos[r] == 0 && xp->ncol[rterm[r]] > 1 &&
                (i + xp->ncol[rterm[r]] > xp->A21p[g + 1] || xp->A21i[i + xp->ncol[rterm[r]] - 1] != r + xp->ncol[rterm[r]] - 1))
                error(_("corrupt cross-product list: 'A21i'"));
        }
    xp->rterm = rterm;
    xp->rpos = rpos;
}

/* The triangular factor R of X = QR (so R'R = X'X), by Householder QR of
 * blocks of rows stacked under the R of the rows before them.  R has the
 * column geometry of X, so drop_aliased() can make lm()'s rank decision on
 * it without qr() copying a tall X. */
SEXP lmm_x_rfactor(SEXP sX)
{
    if (!isReal(sX) || !isMatrix(sX)) error(_("'X' must be a numeric matrix"));
    R_xlen_t n = nrows(sX);
    int p = ncols(sX);
    SEXP ans = PROTECT(allocMatrix(REALSXP, p, p));
    double *R = REAL(ans);
    if (p == 0) { UNPROTECT(1); return ans; }
    memset(R, 0, (size_t) p * p * sizeof(double));
    const double *X = REAL(sX);
    int chunk = p > 4096 ? p : 4096, ld = p + chunk, info = 0, lwork = -1;
    double *A = (double *) R_alloc((size_t) ld * p, sizeof(double));
    double *tau = (double *) R_alloc((size_t) p, sizeof(double)), wq = 0;
    F77_CALL(dgeqrf)(&ld, &p, A, &ld, tau, &wq, &lwork, &info);
    lmm_lapack_check(info, "dgeqrf", "the QR factorisation of X");
    lwork = (int) wq > p ? (int) wq : p;
    double *work = (double *) R_alloc((size_t) lwork, sizeof(double));
    int have = 0;                       /* rows of R found so far */
    for (R_xlen_t s = 0; s < n; s += chunk) {
        int m = (int) (n - s < chunk ? n - s : chunk), rows = have + m;
        for (int j = 0; j < p; j++) {
            double *a = A + (size_t) j * ld;
            for (int i = 0; i < have; i++) a[i] = R[i + (size_t) j * p];
            memcpy(a + have, X + s + (size_t) j * n, (size_t) m * sizeof(double));
        }
        F77_CALL(dgeqrf)(&rows, &p, A, &ld, tau, work, &lwork, &info);
        lmm_lapack_check(info, "dgeqrf", "the QR factorisation of X");
        have = rows < p ? rows : p;
        for (int j = 0; j < p; j++)
            for (int i = 0; i < have; i++)
                R[i + (size_t) j * p] = i <= j ? A[i + (size_t) j * ld] : 0.0;
        if ((s / chunk) % 64 == 63) R_CheckUserInterrupt();
    }
    UNPROTECT(1);
    return ans;
}
