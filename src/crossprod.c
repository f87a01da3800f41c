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

/* The grouping codes are R's factor codes, 1-based, read in place (a
 * 0-based copy would cost n integers per term): LEVEL() is the 0-based level
 * of row t. */
#define LEVEL(codes, t) ((codes)[t] - 1)

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *) a, y = *(const int *) b;
    return (x > y) - (x < y);
}

/* Rows of the data sorted by level of a term (a counting sort). */
void lmm_order_by_level(R_xlen_t n, const int *code, int nlev0, int *start, int *order)
{
    memset(start, 0, (size_t) (nlev0 + 1) * sizeof(int));
    for (R_xlen_t t = 0; t < n; t++) start[code[t]]++;            /* code[t] - 1 + 1 */
    for (int g = 0; g < nlev0; g++) start[g + 1] += start[g];
    int *fill = (int *) R_alloc((size_t) nlev0, sizeof(int));
    memcpy(fill, start, (size_t) nlev0 * sizeof(int));
    for (R_xlen_t t = 0; t < n; t++) order[fill[code[t] - 1]++] = (int) t;
}

/* The pattern beside the levels of term `first`: for each of its levels, the
 * tiles of the later terms that co-occur with it (rows in the rest space,
 * increasing, whole tiles).  The rows of each level are order[start[g] ..
 * start[g+1]).  Returns the number of rows in total; Cp gets the pointers
 * (nlev[first] + 1), *Ci_out the rows. */
static R_xlen_t beside_pattern(int first, int nterms, const int *const *codes,
                               const int *nlev, const int *ncol, const int *roff,
                               const int *start, const int *order, int *Cp, int **Ci_out)
{
    int nblocks = 0;
    for (int j = first + 1; j < nterms; j++) nblocks += nlev[j];
    int *boff = (int *) R_alloc((size_t) nterms, sizeof(int));
    for (int j = first + 1, b = 0; j < nterms; j++) { boff[j] = b; b += nlev[j]; }
    int *mark = (int *) R_alloc((size_t) (nblocks > 0 ? nblocks : 1), sizeof(int));
    for (int b = 0; b < nblocks; b++) mark[b] = -1;

    /* Pass 1: count distinct tiles per level, and their rows. */
    R_xlen_t total = 0, ntiles = 0;
    Cp[0] = 0;
    for (int g = 0; g < nlev[first]; g++) {
        for (int s = start[g]; s < start[g + 1]; s++) {
            R_xlen_t t = order[s];
            for (int j = first + 1; j < nterms; j++) {
                int b = boff[j] + LEVEL(codes[j], t);
                if (mark[b] != g) { mark[b] = g; total += ncol[j]; ntiles++; }
            }
        }
        if (total > INT_MAX) error(_("the crossed random-effects structure is too large"));
        Cp[g + 1] = (int) total;
    }
    /* Pass 2: list the tiles' first rows, sorted, then expand to rows. */
    int *tiles = (int *) R_alloc((size_t) (ntiles > 0 ? ntiles : 1), sizeof(int));
    int *Ci = (int *) R_alloc((size_t) (total > 0 ? total : 1), sizeof(int));
    for (int b = 0; b < nblocks; b++) mark[b] = -1;
    for (int g = 0; g < nlev[first]; g++) {
        int nt = 0;
        for (int s = start[g]; s < start[g + 1]; s++) {
            R_xlen_t t = order[s];
            for (int j = first + 1; j < nterms; j++) {
                int b = boff[j] + LEVEL(codes[j], t);
                if (mark[b] != g) {
                    mark[b] = g;
                    tiles[nt++] = roff[j] + LEVEL(codes[j], t) * ncol[j];
                }
            }
        }
        qsort(tiles, (size_t) nt, sizeof(int), cmp_int);
        int pos = Cp[g];
        for (int i = 0; i < nt; i++) {
            /* the tile's term: the last term whose offset is <= the row */
            int j = nterms - 1;
            while (j > 1 && roff[j] > tiles[i]) j--;
            for (int c = 0; c < ncol[j]; c++) Ci[pos++] = tiles[i] + c;
        }
    }
    *Ci_out = Ci;
    return total;
}

/* Whether each level of term i occurs with one level of term j only. */
static int is_nested(R_xlen_t n, const int *ci, int nlev_i, const int *cj, int *map)
{
    for (int g = 0; g < nlev_i; g++) map[g] = -1;
    for (R_xlen_t t = 0; t < n; t++) {
        int *m = map + LEVEL(ci, t);
        if (*m < 0) *m = cj[t];
        else if (*m != cj[t]) return 0;
    }
    return 1;
}

/* The number of block-diagonal stages (at most smax): the first term, then
 * each following term in which every term before it is nested. */
static int count_stages(R_xlen_t n, int nterms, const int *const *codes, const int *nlev,
                        int smax)
{
    int maxlev = 1;
    for (int j = 0; j < nterms; j++) if (nlev[j] > maxlev) maxlev = nlev[j];
    int *map = (int *) R_alloc((size_t) maxlev, sizeof(int));
    int ns = 1;
    for (int j = 1; j < nterms && j < smax; j++) {
        for (int i = 0; i < j; i++)
            if (!is_nested(n, codes[i], nlev[i], codes[j], map)) return ns;
        ns = j + 1;
    }
    return ns;
}

/* Numeric pass.  w may be NULL (unit weights).  Outputs must be zeroed (or hold
 * sums to add to).  Rows visited: order[start[g] .. start[g+1]) for each level g
 * of the first term; they must fit the pattern of pat (its values are not
 * read).  Also used by ar1.c.  With xshift and b0 (else both NULL) the rows
 * are those of the conditioned data, x - xshift and y - (x - xshift)'b0,
 * formed here row by row so that no n-length copy of X or y is needed.
 * ws: scratch from lmm_accum_ws_alloc() (NULL: allocated here). */
void lmm_accum_ws_alloc(const lmm_xprod *pat, int p, lmm_accum_ws *ws)
{
    int nterms = pat->nterms, q2 = pat->q2, ns = pat->nstage;
    ws->xr = (double *) R_alloc((size_t) p + 1, sizeof(double));
    ws->roff = (int *) R_alloc((size_t) nterms, sizeof(int));
    rest_offsets(nterms, pat->nlev, pat->ncol, ws->roff);
    ws->pos = (int *) R_alloc((size_t) ns * (q2 > 0 ? q2 : 1), sizeof(int));
    ws->hcur = (int *) R_alloc((size_t) ns, sizeof(int));
}

void lmm_accumulate(R_xlen_t n, int p, const double *X, const double *y, const double *w,
                    const double *xshift, const double *b0,
                    const int *const *codes, const double *const *Z, const lmm_xprod *pat,
                    const int *start, const int *order,
                    double *A11, double *A21x, double *A22, double *AX1, double *AX2,
                    double *AXX, const lmm_accum_ws *ws)
{
    int nterms = pat->nterms, q2 = pat->q2, ns = pat->nstage, qd = pat->qd, dstart = pat->dstart;
    const int *nlev = pat->nlev, *ncol = pat->ncol;
    int k1 = ncol[0], px = p + 1;
    lmm_accum_ws own;
    if (!ws) {
        lmm_accum_ws_alloc(pat, p, &own);
        ws = &own;
    }
    double *xr = ws->xr;
    const int *roff = ws->roff;
    /* pos[s * q2 + r]: where rest row r sits in the beside-list of stage s's
     * current level (stage 0: level g; a later stage: the one level that g
     * is nested in) */
    int *pos = ws->pos, *hcur = ws->hcur;

    for (int g = 0; g < nlev[0]; g++) {
        if (start[g] == start[g + 1]) continue;
        R_xlen_t t0 = order[start[g]];
        for (int s = 0; s < ns; s++) {
            const lmm_stage *st = pat->stage + s;
            int h = s == 0 ? g : LEVEL(codes[s], t0);
            hcur[s] = h;
            for (int i = st->Cp[h]; i < st->Cp[h + 1]; i++) pos[(size_t) s * q2 + st->Ci[i]] = i - st->Cp[h];
        }
        int m = pat->A21p[g + 1] - pat->A21p[g];
        double *a11 = A11 + (size_t) g * k1 * k1;
        double *a21 = A21x + (size_t) pat->A21p[g] * k1;
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
            /* rest terms with the first, with X, y, and with each other: a
             * later stage's tile and beside-values, or the dense tail */
            for (int j = 1; j < nterms; j++) {
                int kj = ncol[j], row0 = roff[j] + LEVEL(codes[j], t) * kj;
                const lmm_stage *st = j < ns ? pat->stage + j : NULL;
                for (int cj = 0; cj < kj; cj++) {
                    double zj = wt * Z[j][t + cj * n];
                    if (zj == 0.0) continue;
                    int rj = row0 + cj, at = pos[rj];
                    for (int c = 0; c < k1; c++) a21[at + c * m] += zj * Z[0][t + c * n];
                    double *ax = AX2 + (size_t) rj * px;
                    for (int i = 0; i < px; i++) ax[i] += zj * xr[i];
                    if (st) {
                        int h = hcur[j], mh = st->Cp[h + 1] - st->Cp[h];
                        double *tile = A22 + st->tiles + (size_t) h * kj * kj;
                        double *bes = A22 + st->coup + (size_t) st->Cp[h] * kj;
                        const int *pj = pos + (size_t) j * q2;
                        for (int cl = 0; cl < kj; cl++) tile[cl + cj * kj] += zj * Z[j][t + cl * n];
                        for (int l = j + 1; l < nterms; l++) {
                            int col0 = roff[l] + LEVEL(codes[l], t) * ncol[l];
                            for (int cl = 0; cl < ncol[l]; cl++)
                                bes[pj[col0 + cl] + (size_t) cj * mh] += zj * Z[l][t + cl * n];
                        }
                    } else {
                        double *dcol = A22 + pat->doff + (size_t) (rj - dstart) * qd;
                        for (int l = ns; l < nterms; l++) {
                            int col0 = roff[l] + LEVEL(codes[l], t) * ncol[l] - dstart;
                            for (int cl = 0; cl < ncol[l]; cl++)
                                dcol[col0 + cl] += zj * Z[l][t + cl * n];
                        }
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

void lmm_value_layout_of(const lmm_xprod *xp, lmm_value_layout *lay)
{
    R_xlen_t k1 = xp->ncol[0], m = xp->A21p[xp->nlev[0]];
    R_xlen_t len[6] = {(R_xlen_t) xp->nlev[0] * k1 * k1, m * k1, xp->n22,
                       (R_xlen_t) xp->px * xp->q1, (R_xlen_t) xp->px * xp->q2,
                       (R_xlen_t) xp->px * xp->px};
    lay->off[0] = 0;
    for (int i = 0; i < 6; i++) lay->off[i + 1] = lay->off[i] + len[i];
}

void lmm_point_values(lmm_xprod *xp, const lmm_value_layout *lay, double *buf)
{
    xp->A11 = buf + lay->off[0];
    xp->A21x = buf + lay->off[1];
    xp->A22 = buf + lay->off[2];
    xp->AX1 = buf + lay->off[3];
    xp->AX2 = buf + lay->off[4];
    xp->AXX = buf + lay->off[5];
}

SEXP lmm_xprod_with_values(SEXP sxp, const lmm_value_layout *lay, const double *buf)
{
    SEXP out = PROTECT(shallow_duplicate(sxp));
    const int slot[6] = {5, 8, 9, 10, 11, 12};   /* A11, A21x, A22, AX1, AX2, AXX */
    for (int i = 0; i < 6; i++) {
        R_xlen_t len = lay->off[i + 1] - lay->off[i];
        SEXP v = allocVector(REALSXP, len);
        SET_VECTOR_ELT(out, slot[i], v);
        if (len > 0) memcpy(REAL(v), buf + lay->off[i], (size_t) len * sizeof(double));
    }
    UNPROTECT(1);
    return out;
}

static SEXP alloc_zero(SEXPTYPE type, R_xlen_t len)
{
    SEXP ans = allocVector(type, len);
    if (type == REALSXP) memset(REAL(ans), 0, (size_t) len * sizeof(double));
    else memset(INTEGER(ans), 0, (size_t) len * sizeof(int));
    return ans;
}

/* One term's grouping codes (checked, made 0-based) and model matrix. */
static void unpack_term(SEXP cj, SEXP zj, R_xlen_t n, int nlev, int j, const int **codes,
                        const double **Z, int *ncol)
{
    /* factors welcome: their codes are the integers wanted */
    if (TYPEOF(cj) != INTSXP || XLENGTH(cj) != n) error(_("grouping codes of term %d have the wrong type or length"), j + 1);
    if (!isReal(zj) || !isMatrix(zj) || nrows(zj) != n) error(_("model matrix of term %d has the wrong type or size"), j + 1);
    if (nlev < 1) error(_("term %d has no levels"), j + 1);
    *ncol = ncols(zj);
    if (*ncol < 1) error(_("term %d has no columns"), j + 1);
    const int *cc = INTEGER(cj);
    for (R_xlen_t t = 0; t < n; t++)
        if (cc[t] < 1 || cc[t] > nlev) error(_("grouping codes of term %d are out of range"), j + 1);
    *codes = cc;
    *Z = REAL(zj);
}

/* The cross-products list with its pattern and zero values (the layout of
 * model.h; lmm_unpack_xprod() reads it). */
static SEXP new_xprod(SEXP snlev, const int *ncol, R_xlen_t n, int p, R_xlen_t m, SEXP sA21p,
                      SEXP sA21i, R_xlen_t n22, int q2, int ns, SEXP sA22p, SEXP sA22i)
{
    int nterms = LENGTH(snlev), k1 = ncol[0], px = p + 1;
    R_xlen_t q1 = (R_xlen_t) INTEGER(snlev)[0] * k1;
    const char *names[] = {"nlev", "ncol", "nobs", "p", "sumlogw", "A11", "A21p", "A21i",
                           "A21x", "A22", "AX1", "AX2", "AXX", "nstage", "A22p", "A22i", ""};
    SEXP ans = PROTECT(mkNamed(VECSXP, names));
    SET_VECTOR_ELT(ans, 0, duplicate(snlev));
    SEXP sncol = allocVector(INTSXP, nterms);
    SET_VECTOR_ELT(ans, 1, sncol);
    memcpy(INTEGER(sncol), ncol, (size_t) nterms * sizeof(int));
    SET_VECTOR_ELT(ans, 2, ScalarInteger((int) n));
    SET_VECTOR_ELT(ans, 3, ScalarInteger(p));
    SET_VECTOR_ELT(ans, 4, ScalarReal(0.0));
    SET_VECTOR_ELT(ans, 5, alloc_zero(REALSXP, q1 * k1));
    SET_VECTOR_ELT(ans, 6, sA21p);
    SET_VECTOR_ELT(ans, 7, sA21i);
    SET_VECTOR_ELT(ans, 8, alloc_zero(REALSXP, m * k1));
    SET_VECTOR_ELT(ans, 9, alloc_zero(REALSXP, n22));
    SET_VECTOR_ELT(ans, 10, alloc_zero(REALSXP, (R_xlen_t) px * q1));
    SET_VECTOR_ELT(ans, 11, alloc_zero(REALSXP, (R_xlen_t) px * q2));
    SET_VECTOR_ELT(ans, 12, alloc_zero(REALSXP, (R_xlen_t) px * px));
    SET_VECTOR_ELT(ans, 13, ScalarInteger(ns));
    SET_VECTOR_ELT(ans, 14, sA22p);
    SET_VECTOR_ELT(ans, 15, sA22i);
    UNPROTECT(1);
    return ans;
}

/* The patterns beside the levels of the later stages 1 .. ns-1, concatenated:
 * pointers (nlev + 1 per stage, each from 0) and rows. */
static void stage_patterns(R_xlen_t n, int nterms, int ns, const int *const *codes,
                           const int *nlev, const int *ncol, const int *roff,
                           SEXP *sCp, SEXP *sCi, R_xlen_t *nnz)
{
    R_xlen_t np = 0, ni = 0;
    for (int j = 1; j < ns; j++) np += nlev[j] + 1;
    int **Ci = (int **) R_alloc((size_t) ns, sizeof(int *));
    R_xlen_t *len = (R_xlen_t *) R_alloc((size_t) ns, sizeof(R_xlen_t));
    *sCp = PROTECT(allocVector(INTSXP, np));
    int *Cp = INTEGER(*sCp);
    /* (no n-long scratch unless there are later stages) */
    int *order = ns > 1 ? (int *) R_alloc((size_t) (n > 0 ? n : 1), sizeof(int)) : NULL;
    for (int j = 1; j < ns; j++) {
        int *start = (int *) R_alloc((size_t) nlev[j] + 1, sizeof(int));
        lmm_order_by_level(n, codes[j], nlev[j], start, order);
        len[j] = beside_pattern(j, nterms, codes, nlev, ncol, roff, start, order, Cp, Ci + j);
        nnz[j] = len[j];
        Cp += nlev[j] + 1;
        ni += len[j];
    }
    *sCi = PROTECT(allocVector(INTSXP, ni));
    int *out = INTEGER(*sCi);
    for (int j = 1; j < ns; j++) {
        if (len[j] > 0) memcpy(out, Ci[j], (size_t) len[j] * sizeof(int));
        out += len[j];
    }
    UNPROTECT(2);
}

SEXP lmm_crossprod(SEXP sX, SEXP sy, SEXP sw, SEXP scodes, SEXP sZ, SEXP snlev,
                   SEXP sxshift, SEXP sb0, SEXP smax_stages)
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
    int smax = lmm_arg_int(smax_stages, "max_stages", 1, INT_MAX);
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
    for (int j = 0; j < nterms; j++)
        unpack_term(VECTOR_ELT(scodes, j), VECTOR_ELT(sZ, j), n, nlev[j], j, codes + j, Z + j, ncol + j);
    int ns = count_stages(n, nterms, codes, nlev, smax);
    /* sizes in double before any int arithmetic on them */
    double q2d = 0, qdd = 0, q1d = (double) nlev[0] * ncol[0];
    for (int j = 1; j < nterms; j++) {
        q2d += (double) nlev[j] * ncol[j];
        if (j >= ns) qdd += (double) nlev[j] * ncol[j];
    }
    if (q1d * ncol[0] > INT_MAX || q1d * (p + 1) > R_XLEN_T_MAX || q2d > INT_MAX)
        error(_("too many random effects in the largest term (%.0f)"), q1d);
    if (qdd > LMM_MAX_DENSE) /* the tail, qd x qd dense, must stay addressable and sane */
        error(_("too many random effects in crossed terms (%.0f) for the dense block"), qdd);
    int *roff = (int *) R_alloc((size_t) nterms, sizeof(int));
    rest_offsets(nterms, nlev, ncol, roff);
    int q2 = (int) q2d, qd = (int) qdd;

    int *start = (int *) R_alloc((size_t) nlev[0] + 1, sizeof(int));
    int *order = (int *) R_alloc((size_t) n, sizeof(int));
    lmm_order_by_level(n, codes[0], nlev[0], start, order);

    SEXP sA21p = PROTECT(allocVector(INTSXP, nlev[0] + 1)); nprot++;
    int *A21i_scratch;
    R_xlen_t m = beside_pattern(0, nterms, codes, nlev, ncol, roff, start, order,
                                INTEGER(sA21p), &A21i_scratch);
    SEXP sA21i = PROTECT(allocVector(INTSXP, m)); nprot++;
    if (m > 0) memcpy(INTEGER(sA21i), A21i_scratch, (size_t) m * sizeof(int));
    SEXP sA22p, sA22i;
    R_xlen_t *nnz = (R_xlen_t *) R_alloc((size_t) ns, sizeof(R_xlen_t));
    stage_patterns(n, nterms, ns, codes, nlev, ncol, roff, &sA22p, &sA22i, nnz);
    PROTECT(sA22p); PROTECT(sA22i); nprot += 2;
    R_xlen_t n22 = (R_xlen_t) qd * qd;
    for (int j = 1; j < ns; j++) n22 += (R_xlen_t) nlev[j] * ncol[j] * ncol[j] + nnz[j] * ncol[j];

    SEXP ans = PROTECT(new_xprod(snlev, ncol, n, p, m, sA21p, sA21i, n22, q2, ns, sA22p, sA22i));
    nprot++;
    /* the pattern is checked and its stages described by the one unpacker;
     * then the values are summed into the list's own vectors */
    lmm_xprod pat;
    lmm_unpack_xprod(ans, &pat);
    lmm_accumulate(n, p, REAL(sX), REAL(sy), w, xshift, b0, codes, Z, &pat, start, order,
                   REAL(VECTOR_ELT(ans, 5)), REAL(VECTOR_ELT(ans, 8)), REAL(VECTOR_ELT(ans, 9)),
                   REAL(VECTOR_ELT(ans, 10)), REAL(VECTOR_ELT(ans, 11)), REAL(VECTOR_ELT(ans, 12)), NULL);
    double sumlogw = 0;
    if (w) for (R_xlen_t t = 0; t < n; t++) sumlogw += log(w[t]);
    REAL(VECTOR_ELT(ans, 4))[0] = sumlogw;
    UNPROTECT(nprot);
    return ans;
}

/* Rows beside one level: increasing, in [lo, q2), in whole tiles (the
 * factorisation transforms a tile's k rows from its first). */
static int rows_ok(const int *rows, int m, int lo, int q2, const int *rterm, const int *rpos,
                   const int *ncol)
{
    for (int i = 0; i < m; i++) {
        int r = rows[i];
        if (r < lo || r >= q2 || (i > 0 && r <= rows[i - 1])) return 0;
        if (rpos[r] > 0 && (i == 0 || rows[i - 1] != r - 1)) return 0;
        int k = ncol[rterm[r]];
        if (rpos[r] == 0 && k > 1 && (i + k > m || rows[i + k - 1] != r + k - 1)) return 0;
    }
    return 1;
}

/* Pointers (nlev + 1 from 0, nondecreasing, each level's count at most q2). */
static int pointers_ok(const int *Cp, int nlev, int q2)
{
    if (Cp[0] != 0) return 0;
    for (int g = 0; g < nlev; g++)
        if (Cp[g + 1] < Cp[g] || Cp[g + 1] - Cp[g] > q2) return 0;
    return 1;
}

/* The stage descriptors: stage 0 from A21, the later ones from A22p/A22i,
 * their values' offsets in A22, and the dense tail after them. */
static void describe_stages(SEXP s, lmm_xprod *xp)
{
    int ns = xp->nstage, q2 = xp->q2;
    lmm_stage *st = (lmm_stage *) R_alloc((size_t) ns, sizeof(lmm_stage));
    st[0] = (lmm_stage) {0, xp->nlev[0], xp->ncol[0], -1, xp->A21p, xp->A21i, 0, 0};
    SEXP sp = VECTOR_ELT(s, 14), si = VECTOR_ELT(s, 15);
    if (!isInteger(sp) || !isInteger(si)) error(_("corrupt cross-product list: 'A22p'/'A22i'"));
    R_xlen_t pbase = 0, ibase = 0, voff = 0;
    int off = 0;
    for (int j = 1; j < ns; j++) {
        int nl = xp->nlev[j], k = xp->ncol[j];
        if (pbase + nl + 1 > XLENGTH(sp)) error(_("corrupt cross-product list: 'A22p'"));
        const int *Cp = INTEGER(sp) + pbase;
        if (!pointers_ok(Cp, nl, q2) || ibase + Cp[nl] > XLENGTH(si))
            error(_("corrupt cross-product list: 'A22p'"));
        const int *Ci = INTEGER(si) + ibase;
        st[j] = (lmm_stage) {j, nl, k, off, Cp, Ci, voff, voff + (R_xlen_t) nl * k * k};
        voff = st[j].coup + (R_xlen_t) Cp[nl] * k;
        off += nl * k;
        for (int h = 0; h < nl; h++)
            if (!rows_ok(Ci + Cp[h], Cp[h + 1] - Cp[h], off, q2, xp->rterm, xp->rpos, xp->ncol))
                error(_("corrupt cross-product list: 'A22i'"));
        pbase += nl + 1;
        ibase += Cp[nl];
    }
    if (pbase != XLENGTH(sp) || ibase != XLENGTH(si))
        error(_("corrupt cross-product list: 'A22p'/'A22i'"));
    xp->dstart = off;
    xp->qd = q2 - off;
    xp->doff = voff;
    xp->n22 = voff + (R_xlen_t) xp->qd * xp->qd;
    xp->stage = st;
}

/* Unpack the list made by lmm_crossprod into the typed struct, checking it. */
void lmm_unpack_xprod(SEXP s, lmm_xprod *xp)
{
    if (!isNewList(s) || LENGTH(s) != 16) error(_("not an lmmfit cross-product list"));
    SEXP nlev = VECTOR_ELT(s, 0), ncol = VECTOR_ELT(s, 1);
    if (!isInteger(nlev) || !isInteger(ncol) || LENGTH(nlev) != LENGTH(ncol) || LENGTH(nlev) < 1)
        error(_("corrupt cross-product list: 'nlev'/'ncol'"));
    xp->nterms = LENGTH(nlev);
    xp->nlev = INTEGER(nlev);
    xp->ncol = INTEGER(ncol);
    SEXP sns = VECTOR_ELT(s, 13);
    if (!isInteger(sns) || XLENGTH(sns) != 1 || INTEGER(sns)[0] < 1 || INTEGER(sns)[0] > xp->nterms)
        error(_("corrupt cross-product list: 'nstage'"));
    xp->nstage = INTEGER(sns)[0];
    double q1d = 0, q2d = 0, qdd = 0;
    for (int j = 0; j < xp->nterms; j++) {
        if (xp->nlev[j] < 1 || xp->ncol[j] < 1 || xp->ncol[j] > LMM_MAX_DENSE)   /* NA is negative */
            error(_("corrupt cross-product list: 'nlev'/'ncol'"));
        double qj = (double) xp->nlev[j] * xp->ncol[j];
        if (j == 0) q1d = qj;
        else q2d += qj;
        if (j >= xp->nstage) qdd += qj;
    }
    if (q1d * xp->ncol[0] > INT_MAX || q2d > INT_MAX || qdd > LMM_MAX_DENSE)
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
        xp->p > LMM_MAX_DENSE || xp->nobs <= xp->p || !R_FINITE(xp->sumlogw))
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
    if (XLENGTH(A21p) != (R_xlen_t) xp->nlev[0] + 1 || !pointers_ok(INTEGER(A21p), xp->nlev[0], q2))
        error(_("corrupt cross-product list: 'A21p'"));
    R_xlen_t m = INTEGER(A21p)[xp->nlev[0]];
    xp->A21p = INTEGER(A21p);
    xp->A21i = INTEGER(VECTOR_ELT(s, 7));
    if (XLENGTH(VECTOR_ELT(s, 7)) != m) error(_("corrupt cross-product list: sizes do not agree"));
    int *rterm = (int *) R_alloc((size_t) (q2 > 0 ? q2 : 1), sizeof(int));
    int *rpos = (int *) R_alloc((size_t) (q2 > 0 ? q2 : 1), sizeof(int));
    for (int j = 1, r = 0; j < xp->nterms; j++)
        for (int h = 0; h < xp->nlev[j]; h++)
            for (int c = 0; c < xp->ncol[j]; c++, r++) { rterm[r] = j; rpos[r] = c; }
    xp->rterm = rterm;
    xp->rpos = rpos;
    for (int g = 0; g < xp->nlev[0]; g++)
        if (!rows_ok(xp->A21i + xp->A21p[g], xp->A21p[g + 1] - xp->A21p[g], 0, q2, rterm, rpos,
                     xp->ncol))
            error(_("corrupt cross-product list: 'A21i'"));
    describe_stages(s, xp);
    if (XLENGTH(VECTOR_ELT(s, 5)) != (R_xlen_t) xp->nlev[0] * k1 * k1 ||
        XLENGTH(VECTOR_ELT(s, 8)) != m * k1 ||
        XLENGTH(VECTOR_ELT(s, 9)) != xp->n22 ||
        XLENGTH(VECTOR_ELT(s, 10)) != (R_xlen_t) px * q1 ||
        XLENGTH(VECTOR_ELT(s, 11)) != (R_xlen_t) px * q2 ||
        XLENGTH(VECTOR_ELT(s, 12)) != (R_xlen_t) px * px)
        error(_("corrupt cross-product list: sizes do not agree"));
    xp->A11 = REAL(VECTOR_ELT(s, 5));
    xp->A21x = REAL(VECTOR_ELT(s, 8));
    xp->A22 = REAL(VECTOR_ELT(s, 9));
    xp->AX1 = REAL(VECTOR_ELT(s, 10));
    xp->AX2 = REAL(VECTOR_ELT(s, 11));
    xp->AXX = REAL(VECTOR_ELT(s, 12));
    SEXP plan = getAttrib(s, install("tail_plan"));
    xp->tailplan = isInteger(plan) ? INTEGER(plan) : NULL;
    xp->tailplan_len = isInteger(plan) ? XLENGTH(plan) : 0;
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
