/* The profiled deviance: the blocked Cholesky factor of
 *   [ Lambda' A_ZZ Lambda + I   Lambda' A_ZX ]
 *   [ A_XZ Lambda               A_XX         ]   (the response is the last X column)
 * for one theta (DESIGN.md section 2).  Only cross-products are touched. */
#include <math.h>
#include <string.h>
#include "lapack.h"
#include <Rinternals.h>
#include "model.h"
#include "lmmfit.h"
#include "kernels.h"
#include "theta.h"

/* The position of each row of rows[from .. m) in the sorted list L (length
 * ml), into out; an error when one is missing (the pattern not closed under
 * elimination: the terms were not nested as the stage layout claims). */
static void positions_in(const int *rows, int from, int m, const int *L, int ml, int *out)
{
    int i = 0;
    for (int e = from; e < m; e++) {
        while (i < ml && L[i] < rows[e]) i++;
        if (i == ml || L[i] != rows[e])
            error(_("corrupt cross-product list: a stage's pattern is not closed under elimination"));
        *out++ = i;
    }
}

/* The symbolic part of the factorisation, once per fit: for every level of
 * every stage, the place in the later stages' beside-values of each pair of
 * its rows (see lmm_factor).  Two passes: count, then fill. */
static void build_slots(const lmm_xprod *xp, lmm_factor *fa)
{
    int ns = xp->nstage;
    R_xlen_t nlev_all = 0;
    fa->slotoff = (R_xlen_t *) R_alloc((size_t) ns, sizeof(R_xlen_t));
    for (int s = 0; s < ns; s++) { fa->slotoff[s] = nlev_all; nlev_all += xp->stage[s].nlev; }
    fa->slotstart = (R_xlen_t *) R_alloc((size_t) nlev_all + 1, sizeof(R_xlen_t));
    for (int pass = 0; pass < 2; pass++) {
        R_xlen_t total = 0;
        for (int s = 0; s < ns; s++) {
            const lmm_stage *st = xp->stage + s;
            for (int g = 0; g < st->nlev; g++) {
                const int *rows = st->Ci + st->Cp[g];
                int m = st->Cp[g + 1] - st->Cp[g];
                if (pass == 0) fa->slotstart[fa->slotoff[s] + g] = total;
                for (int e = 0; e < m && rows[e] < xp->dstart;) {
                    const lmm_stage *sj = xp->stage + xp->rterm[rows[e]];
                    int h = (rows[e] - sj->off) / sj->k;
                    if (pass == 1)
                        positions_in(rows, e + sj->k, m, sj->Ci + sj->Cp[h], sj->Cp[h + 1] - sj->Cp[h],
                                     fa->slot + total);
                    total += m - e - sj->k;
                    e += sj->k;
                }
            }
        }
        if (pass == 0) {
            fa->slotstart[nlev_all] = total;
            fa->slot = (int *) R_alloc((size_t) (total > 0 ? total : 1), sizeof(int));
        }
    }
}

/* For a sparse tail: per level of every stage, where each pair (b <= a) of
 * its tail rows lands in the tail's compact storage, in update_after's
 * order; level g of stage s has its run from tailslotstart[slotoff[s] + g].
 * Found once per factor, so that an evaluation neither permutes nor
 * searches. */
static void build_tail_slots(const lmm_xprod *xp, lmm_factor *fa)
{
    R_xlen_t nlev_all = fa->slotoff[xp->nstage - 1] + xp->stage[xp->nstage - 1].nlev;
    fa->tailslotstart = (R_xlen_t *) R_alloc((size_t) nlev_all + 1, sizeof(R_xlen_t));
    const int *pinv = lmm_tail_pinv(fa->tail);
    int dstart = xp->dstart;
    for (int pass = 0; pass < 2; pass++) {
        R_xlen_t total = 0;
        for (int s = 0; s < xp->nstage; s++) {
            const lmm_stage *st = xp->stage + s;
            for (int g = 0; g < st->nlev; g++) {
                const int *rows = st->Ci + st->Cp[g];
                int m = st->Cp[g + 1] - st->Cp[g], e = 0;
                if (pass == 0) fa->tailslotstart[fa->slotoff[s] + g] = total;
                while (e < m && rows[e] < dstart) e++;
                for (int b = e; b < m; b++) {
                    int pb = pinv[rows[b] - dstart];
                    for (int a = b; a < m; a++, total++) {
                        if (pass == 0) continue;
                        int pa = pinv[rows[a] - dstart];
                        fa->tailslot[total] =
                            (int) lmm_tail_pos(fa->tail, pa > pb ? pa : pb, pa > pb ? pb : pa);
                    }
                }
            }
        }
        if (pass == 0) {
            fa->tailslotstart[nlev_all] = total;
            fa->tailslot = (int *) R_alloc((size_t) (total > 0 ? total : 1), sizeof(int));
        }
    }
}

void lmm_factor_alloc(const lmm_xprod *xp, lmm_factor *fa)
{
    int nterms = xp->nterms, k1 = xp->ncol[0], kmax = 1;
    fa->lamoff = (int *) R_alloc((size_t) nterms + 1, sizeof(int));
    fa->lamoff[0] = 0;
    for (int j = 0; j < nterms; j++) {
        fa->lamoff[j + 1] = fa->lamoff[j] + xp->ncol[j] * xp->ncol[j];
        if (xp->ncol[j] > kmax) kmax = xp->ncol[j];
    }
    fa->lambda = (double *) R_alloc((size_t) fa->lamoff[nterms], sizeof(double));
    R_xlen_t m = xp->A21p[xp->nlev[0]];
    fa->L11 = (double *) R_alloc((size_t) xp->nlev[0] * k1 * k1, sizeof(double));
    fa->L21x = (double *) R_alloc((size_t) (m > 0 ? m * k1 : 1), sizeof(double));
    /* with a sparse tail's plan the dense tail of L22 is never used */
    fa->tail = lmm_tail_plan_build(xp);
    R_xlen_t n22 = fa->tail ? xp->doff : xp->n22;
    fa->L22 = (double *) R_alloc((size_t) (n22 > 0 ? n22 : 1), sizeof(double));
    fa->LX1 = (double *) R_alloc((size_t) xp->px * xp->q1, sizeof(double));
    fa->LX2 = (double *) R_alloc((size_t) (xp->q2 > 0 ? (size_t) xp->px * xp->q2 : 1), sizeof(double));
    fa->LXX = (double *) R_alloc((size_t) xp->px * xp->px, sizeof(double));
    /* one workspace for the phases of an evaluation (used one after the
     * other): a tile product, the tail's scaling, the dense Cholesky's
     * panels and the X-and-y columns' solve */
    size_t qd = (size_t) xp->qd, nw = (size_t) kmax * kmax;
    if (qd > nw) nw = qd;
    /* the dense kernel gets the whole tail, or a sparse tail's full block */
    size_t nchol = lmm_dense_chol_work(fa->tail ? lmm_tail_full_order(fa->tail) : xp->qd);
    if (nchol > nw) nw = nchol;
    if (qd * xp->px > nw) nw = qd * xp->px;
    build_slots(xp, fa);
    fa->tailbuf = NULL;
    fa->tailiw = NULL;
    fa->Ltail = fa->L22 + xp->doff;
    if (fa->tail) {
        /* zero once: the full block's upper triangle is never written */
        size_t nv = (size_t) lmm_tail_nvalues(fa->tail);
        fa->tailbuf = (double *) R_alloc(nv, sizeof(double));
        memset(fa->tailbuf, 0, nv * sizeof(double));
        fa->tailiw = (int *) R_alloc(3 * qd, sizeof(int));
        build_tail_slots(xp, fa);
        fa->Ltail = NULL;
    }
    fa->work = (double *) R_alloc(nw, sizeof(double));
}

static void fill_lambda(const lmm_xprod *xp, const double *theta, lmm_factor *fa)
{
    for (int j = 0, i = 0; j < xp->nterms; j++) {
        int k = xp->ncol[j];
        lmm_theta_unpack(k, theta + i, fa->lambda + fa->lamoff[j]);
        i += k * (k + 1) / 2;
    }
}

/* Rows [i0, i0 + k) of a column-major (nr x nc) matrix M, holding one tile of
 * a term with lambda `lam`, replaced by lam' times them. */
static void tile_rows_lambda_t(double *M, int nr, int nc, int i0, int k, const double *lam)
{
    for (int col = 0; col < nc; col++) {
        double *v = M + i0 + (size_t) col * nr;
        for (int c = 0; c < k; c++) {
            double s = 0;
            for (int cp = c; cp < k; cp++) s += lam[cp + c * k] * v[cp];
            v[c] = s;        /* v[c] is no longer needed by later c (cp >= c) */
        }
    }
}

/* Columns [j0, j0 + k) of a column-major (nr x nc) matrix replaced by M lam. */
static void tile_cols_lambda(double *M, int nr, int j0, int k, const double *lam)
{
    for (int row = 0; row < nr; row++) {
        for (int c = 0; c < k; c++) {
            double s = 0;
            for (int cp = c; cp < k; cp++) s += M[row + (size_t) (j0 + cp) * nr] * lam[cp + c * k];
            M[row + (size_t) (j0 + c) * nr] = s;
        }
    }
}

/* In a column-major (nr x k) matrix B, solve X L' = B for X in place (L lower k x k). */
static void right_solve_lt(double *B, int nr, int ld, int k, const double *L)
{
    for (int c = 0; c < k; c++) {
        double d = L[c + c * k];
        for (int row = 0; row < nr; row++) {
            double s = B[row + (size_t) c * ld];
            for (int cp = 0; cp < c; cp++) s -= B[row + (size_t) cp * ld] * L[c + cp * k];
            B[row + (size_t) c * ld] = s / d;
        }
    }
}

static int factor_schur(const lmm_xprod *xp, lmm_factor *fa);

/* One random-effects term of one or two columns (q2 = 0: the commonest
 * models, (1 | g) and (x | g)): per level the factor of the k1 x k1 tile, the
 * X-and-y block beside it, and its share of the Schur complement L_XX, in one
 * pass with the tile arithmetic written out.  Same operations, in the same
 * order, as the general path and the reference dsyrk (only without their
 * loop overhead, most of an evaluation's time with thousands of levels).
 * Returns 1 when a tile is not positive definite, -1 when not applicable. */
static int factor_one_small_term(const lmm_xprod *xp, lmm_factor *fa, double *ldL2)
{
    int k = xp->ncol[0], px = xp->px, nlev = xp->nlev[0];
    if (xp->nterms != 1 || k > 2 || px > 64) return -1;
    const double *lam = fa->lambda;
    double *LXX = fa->LXX, x0[64], x1[64], diagprod = 1.0, ld = 0.0;
    memcpy(LXX, xp->AXX, (size_t) px * px * sizeof(double));
    for (int g = 0; g < nlev; g++) {
        const double *a = xp->A11 + (size_t) g * k * k;
        const double *ax = xp->AX1 + (size_t) g * k * px;
        double *L = fa->L11 + (size_t) g * k * k, *C = fa->LX1 + (size_t) g * k * px;
        if (k == 1) {
            double l = lam[0], L00 = sqrt(l * l * a[0] + 1.0);
            L[0] = L00;
            diagprod *= L00;
            for (int i = 0; i < px; i++) x0[i] = C[i] = (0.0 + ax[i] * l) / L00;
            for (int j = 0; j < px; j++) {
                double *col = LXX + (size_t) j * px, t = -x0[j];
                for (int i = j; i < px; i++) col[i] += t * x0[i];
            }
        } else {
            double l00 = lam[0], l10 = lam[1], l11 = lam[3];
            /* T = a lambda, M = lambda' T + I, L L' = M */
            double t00 = 0.0 + a[0] * l00 + a[2] * l10, t10 = 0.0 + a[1] * l00 + a[3] * l10;
            double t11 = 0.0 + a[3] * l11;
            double m00 = 1.0 + l00 * t00 + l10 * t10, m10 = 0.0 + l11 * t10;
            double m11 = 1.0 + l11 * t11;
            if (!(m00 > 0)) return 1;
            double L00 = sqrt(m00), L10 = m10 / L00, d = m11 - L10 * L10;
            if (!(d > 0)) return 1;
            double L11 = sqrt(d);
            L[0] = L00; L[1] = L10; L[2] = 0.0; L[3] = L11;
            diagprod *= L00;
            if (diagprod > 1e250) { ld += 2.0 * log(diagprod); diagprod = 1.0; }
            diagprod *= L11;
            for (int i = 0; i < px; i++) {
                double b0 = 0.0 + ax[i] * l00 + ax[i + px] * l10, b1 = 0.0 + ax[i + px] * l11;
                double y0 = b0 / L00, y1 = (b1 - y0 * L10) / L11;
                x0[i] = C[i] = y0;
                x1[i] = C[i + px] = y1;
            }
            for (int j = 0; j < px; j++) {
                double *col = LXX + (size_t) j * px, t0 = -x0[j], t1 = -x1[j];
                for (int i = j; i < px; i++) col[i] = (col[i] + t0 * x0[i]) + t1 * x1[i];
            }
        }
        if (diagprod > 1e250) { ld += 2.0 * log(diagprod); diagprod = 1.0; }
    }
    *ldL2 = ld + 2.0 * log(diagprod);
    return 0;
}

/* out = lam' a lam + I for a k x k tile a (T: k x k scratch). */
static void scale_tile(int k, const double *lam, const double *a, double *T, double *out)
{
    for (int c = 0; c < k; c++)
        for (int r = 0; r < k; r++) {
            double s = 0;
            for (int cp = c; cp < k; cp++) s += a[r + cp * k] * lam[cp + c * k];
            T[r + c * k] = s;
        }
    for (int c = 0; c < k; c++)
        for (int r = 0; r < k; r++) {
            double s = (r == c) ? 1.0 : 0.0;
            for (int rp = r; rp < k; rp++) s += lam[rp + r * k] * T[rp + c * k];
            out[r + c * k] = s;
        }
}

/* The rows beside a level (m x k, rows `rows`) replaced by
 * Lambda_rows' B lam (lam: the level's own term). */
static void scale_beside(const lmm_xprod *xp, const lmm_factor *fa, double *B, int m, int k,
                         const int *rows, const double *lam)
{
    tile_cols_lambda(B, m, 0, k, lam);
    for (int i = 0; i < m; i++) {
        int r = rows[i];
        if (xp->rpos[r] == 0) {
            int j = xp->rterm[r];
            tile_rows_lambda_t(B, m, k, i, xp->ncol[j], fa->lambda + fa->lamoff[j]);
        }
    }
}

/* The sum over the k columns of B (m x k) of B[a, ] B[b, ]. */
static inline double row_dot(const double *B, int m, int k, int a, int b)
{
    double s = 0;
    for (int c = 0; c < k; c++) s += B[a + c * m] * B[b + c * m];
    return s;
}

/* The right-looking update after a level is eliminated: with B its solved
 * beside-rows (m x k, rows `rows`) and C its X-and-y block (px x k), subtract
 * B B' from the later stages' tiles and beside-values (at the symbolic
 * slots) and from the tail, and B C' from the X-and-y columns of the rows. */
static void update_after(const lmm_xprod *xp, lmm_factor *fa, int m, int k, const int *rows,
                         const double *B, const double *C, const int *slot,
                         const int *tslot)
{
    int px = xp->px, dstart = xp->dstart, qd = xp->qd, e = 0;
    while (e < m && rows[e] < dstart) {
        const lmm_stage *st = xp->stage + xp->rterm[rows[e]];
        int kt = st->k, h = (rows[e] - st->off) / kt, mh = st->Cp[h + 1] - st->Cp[h];
        double *T = fa->L22 + st->tiles + (size_t) h * kt * kt;
        double *Bh = fa->L22 + st->coup + (size_t) st->Cp[h] * kt;
        for (int b = 0; b < kt; b++) {
            for (int a = b; a < kt; a++) T[a + b * kt] -= row_dot(B, m, k, e + a, e + b);
            for (int e2 = e + kt; e2 < m; e2++)
                Bh[slot[e2 - e - kt] + (size_t) b * mh] -= row_dot(B, m, k, e2, e + b);
        }
        slot += m - e - kt;
        e += kt;
    }
    if (fa->tail) {
        /* the tail in the plan's compact storage, at the pairs' slots */
        double *P = fa->tailbuf;
        for (int b = e; b < m; b++)
            for (int a = b; a < m; a++) P[*tslot++] -= row_dot(B, m, k, a, b);
        e = m;
    }
    double *D = fa->L22 + xp->doff;
    for (int b = e; b < m; b++) {
        double *Dc = D + (size_t) (rows[b] - dstart) * qd - dstart;
        if (k == 1) {
            double bb = B[b];
            for (int a = b; a < m; a++) Dc[rows[a]] -= B[a] * bb;
        } else {
            for (int a = b; a < m; a++) Dc[rows[a]] -= row_dot(B, m, k, a, b);
        }
    }
    for (int b = 0; b < m; b++) {
        double *Xcol = fa->LX2 + (size_t) rows[b] * px;
        for (int c = 0; c < k; c++) {
            double bb = B[b + c * m];
            if (bb == 0.0) continue;
            for (int i = 0; i < px; i++) Xcol[i] -= C[i + c * px] * bb;
        }
    }
}

/* The log determinant of a tile's factor, folded into a running product:
 * the diagonal of a Cholesky factor of a matrix >= I is >= 1, so multiply
 * and take one log per ~1e250 instead of one per level (the logs were a third
 * of an evaluation's time with thousands of small levels). */
static void fold_diag(const double *L, int k, double *diagprod, double *ldL2)
{
    for (int c = 0; c < k; c++) {
        *diagprod *= L[c + c * k];
        if (*diagprod > 1e250) { *ldL2 += 2.0 * log(*diagprod); *diagprod = 1.0; }
    }
}

/* The rest (later stages and tail) and its X-and-y columns, scaled by Lambda
 * and with I added, before any level is eliminated. */
static void scale_rest(const lmm_xprod *xp, lmm_factor *fa)
{
    int px = xp->px, q2 = xp->q2, qd = xp->qd, dstart = xp->dstart;
    if (q2 == 0) return;
    memcpy(fa->LX2, xp->AX2, (size_t) px * q2 * sizeof(double));
    for (int r = 0; r < q2; r++) {
        if (xp->rpos[r] != 0) continue;
        int j = xp->rterm[r];
        tile_cols_lambda(fa->LX2, px, r, xp->ncol[j], fa->lambda + fa->lamoff[j]);
    }
    for (int s = 1; s < xp->nstage; s++) {
        const lmm_stage *st = xp->stage + s;
        const double *lam = fa->lambda + fa->lamoff[s];
        int k = st->k;
        for (int h = 0; h < st->nlev; h++) {
            R_xlen_t t = st->tiles + (R_xlen_t) h * k * k;
            scale_tile(k, lam, xp->A22 + t, fa->work, fa->L22 + t);
            int m = st->Cp[h + 1] - st->Cp[h];
            if (m == 0) continue;
            R_xlen_t o = st->coup + (R_xlen_t) st->Cp[h] * k;
            memcpy(fa->L22 + o, xp->A22 + o, (size_t) m * k * sizeof(double));
            scale_beside(xp, fa, fa->L22 + o, m, k, st->Ci + st->Cp[h], lam);
        }
    }
    if (qd == 0) return;
    const double *A = xp->A22 + xp->doff;
    double *S = fa->L22 + xp->doff;
    if (fa->tail) {
        double *dl = fa->work;
        for (int r = 0; r < qd; r++) dl[r] = fa->lambda[fa->lamoff[xp->rterm[dstart + r]]];
        lmm_tail_scale(fa->tail, A, dl, fa->tailbuf);
        return;
    }
    int scalar = 1;
    for (int j = xp->nstage; j < xp->nterms; j++) scalar &= xp->ncol[j] == 1;
    if (scalar) {
        /* all tail terms (1 | g): S = D A D, D diagonal, in one pass over
         * the lower triangle (the upper one is not referenced) */
        double *dl = fa->work;
        for (int r = 0; r < qd; r++) dl[r] = fa->lambda[fa->lamoff[xp->rterm[dstart + r]]];
        for (int c = 0; c < qd; c++) {
            const double *a = A + (size_t) c * qd;
            double *sc = S + (size_t) c * qd, dc = dl[c];
            for (int r = c; r < qd; r++) sc[r] = a[r] * dl[r] * dc;
        }
    } else {
        memcpy(S, A, (size_t) qd * qd * sizeof(double));
        for (int r = 0; r < qd; r++) {
            if (xp->rpos[dstart + r] != 0) continue;
            int j = xp->rterm[dstart + r], k = xp->ncol[j];
            const double *lam = fa->lambda + fa->lamoff[j];
            tile_cols_lambda(S, qd, r, k, lam);
            tile_rows_lambda_t(S, qd, qd, r, k, lam);
        }
    }
    for (int r = 0; r < qd; r++) S[r + (size_t) r * qd] += 1.0;
}

/* Up to this many X-and-y columns, L_XX's update by the random effects'
 * columns is the loop below: the reference dsyrk spends its time in loop
 * overhead when px is small and q large. */
#define SMALL_PX 16

/* LXX (lower triangle, px x px) minus the sum over the q columns x of X
 * (px x q) of x x'. */
static void subtract_outer(int px, int q, const double *X, double *LXX)
{
    for (int c = 0; c < q; c++) {
        const double *x = X + (size_t) c * px;
        for (int j = 0; j < px; j++) {
            double t = x[j];
            if (t == 0.0) continue;
            double *col = LXX + (size_t) j * px;
            for (int i = j; i < px; i++) col[i] -= t * x[i];
        }
    }
}

/* The factor of the tail and the tail's X-and-y columns solved with it: in
 * the plan's order over its pattern (the tail scaled and updated in
 * fa->tailbuf), or dense (in L22, where fa->Ltail points).  0, or nonzero
 * when the tail is not positive definite. */
static int factor_tail(const lmm_xprod *xp, lmm_factor *fa)
{
    int px = xp->px, qd = xp->qd;
    double *S = fa->L22 + xp->doff, *X = fa->LX2 + (size_t) xp->dstart * px;
    if (fa->tail) {
        if (lmm_tail_factor(fa->tail, fa->tailbuf, fa->work, fa->tailiw) != 0) return 1;
        lmm_tail_solve_right_lt(fa->tail, px, fa->tailbuf, X, fa->work);
        return 0;
    }
    if (lmm_dense_chol(qd, S, qd, fa->work) != 0) return 1;
    lmm_dense_solve_right_lt(px, qd, S, qd, X, px, fa->work);
    return 0;
}

/* Scales and solves the beside-rows B (m x 1) and the X-and-y block C
 * (px x 1) of a level of a (1 | g) first term with tile factor l: the
 * scaling and the 1 x 1 solve written out (their general loops cost more
 * than the arithmetic with thousands of levels). */
static void solve_first_scalar(const lmm_xprod *xp, const lmm_factor *fa, double l, double *B,
                               int m, const int *rows, double *C)
{
    double f = fa->lambda[0] / l;
    for (int i = 0; i < xp->px; i++) C[i] *= f;
    for (int a = 0; a < m; a++) {
        int r = rows[a], j = xp->rterm[r];
        B[a] *= xp->rpos[r] == 0 && xp->ncol[j] == 1 ? fa->lambda[fa->lamoff[j]] * f : f;
    }
    for (int a = 0; a < m; a++) {
        int r = rows[a], j = xp->rterm[r];
        if (xp->rpos[r] == 0 && xp->ncol[j] > 1)
            tile_rows_lambda_t(B, m, 1, a, xp->ncol[j], fa->lambda + fa->lamoff[j]);
    }
}

/* Stage 0, the first term: per level the factor of its tile, the blocks
 * beside it, and their update of everything after.  0, or 1 when a tile is
 * not positive definite. */
static int eliminate_first(const lmm_xprod *xp, lmm_factor *fa, double *diagprod, double *ldL2)
{
    int k1 = xp->ncol[0], px = xp->px;
    const double *lam1 = fa->lambda;
    memcpy(fa->LX1, xp->AX1, (size_t) px * xp->q1 * sizeof(double));
    R_xlen_t m_all = xp->A21p[xp->nlev[0]];
    if (m_all > 0) memcpy(fa->L21x, xp->A21x, (size_t) m_all * k1 * sizeof(double));
    for (int g = 0; g < xp->nlev[0]; g++) {
        const double *a = xp->A11 + (size_t) g * k1 * k1;
        double *L = fa->L11 + (size_t) g * k1 * k1;
        if (k1 == 1) {
            L[0] = sqrt(lam1[0] * lam1[0] * a[0] + 1.0);
        } else {
            scale_tile(k1, lam1, a, fa->work, L);
            if (lmm_small_chol(k1, L, 0, 0.0)) return 1;
        }
        fold_diag(L, k1, diagprod, ldL2);
        int i0 = xp->A21p[g], m = xp->A21p[g + 1] - i0;
        const int *rows = xp->A21i + i0;
        double *B = fa->L21x + (size_t) i0 * k1, *C = fa->LX1 + (size_t) g * k1 * px;
        if (k1 == 1) {
            solve_first_scalar(xp, fa, L[0], B, m, rows, C);
        } else {
            tile_cols_lambda(C, px, 0, k1, lam1);
            right_solve_lt(C, px, px, k1, L);
            if (m > 0) {
                scale_beside(xp, fa, B, m, k1, rows, lam1);
                right_solve_lt(B, m, m, k1, L);
            }
        }
        if (m > 0)
            update_after(xp, fa, m, k1, rows, B, C, fa->slot + fa->slotstart[g],
                         fa->tail ? fa->tailslot + fa->tailslotstart[g] : NULL);
    }
    return 0;
}

/* The later stages, nested: the same per level, in place in L22 (scaled
 * and updated already). */
static int eliminate_later(const lmm_xprod *xp, lmm_factor *fa, double *diagprod, double *ldL2)
{
    int px = xp->px;
    for (int s = 1; s < xp->nstage; s++) {
        const lmm_stage *st = xp->stage + s;
        int k = st->k;
        for (int h = 0; h < st->nlev; h++) {
            double *L = fa->L22 + st->tiles + (size_t) h * k * k;
            if (lmm_small_chol(k, L, 0, 0.0)) return 1;
            fold_diag(L, k, diagprod, ldL2);
            int m = st->Cp[h + 1] - st->Cp[h];
            double *B = fa->L22 + st->coup + (size_t) st->Cp[h] * k;
            double *C = fa->LX2 + (size_t) (st->off + h * k) * px;
            right_solve_lt(C, px, px, k, L);
            if (m > 0) {
                right_solve_lt(B, m, m, k, L);
                R_xlen_t lev = fa->slotoff[s] + h;
                update_after(xp, fa, m, k, st->Ci + st->Cp[h], B, C, fa->slot + fa->slotstart[lev],
                             fa->tail ? fa->tailslot + fa->tailslotstart[lev] : NULL);
            }
        }
    }
    return 0;
}

int lmm_factorize(const lmm_xprod *xp, const double *theta, lmm_factor *fa)
{
    fill_lambda(xp, theta, fa);
    double ld_one;
    int one_term = factor_one_small_term(xp, fa, &ld_one);
    if (one_term == 1) return 1;
    if (one_term == 0) {
        fa->ldL2 = ld_one;
        return factor_schur(xp, fa);
    }
    int px = xp->px, q1 = xp->q1, q2 = xp->q2, qd = xp->qd;
    double ldL2 = 0, diagprod = 1.0;
    scale_rest(xp, fa);
    if (eliminate_first(xp, fa, &diagprod, &ldL2) || eliminate_later(xp, fa, &diagprod, &ldL2))
        return 1;
    ldL2 += 2.0 * log(diagprod);
    /* The tail: sparse in its plan's order when it has one, else dense. */
    if (qd > 0 && factor_tail(xp, fa) != 0) return 2;
    if (fa->tail) ldL2 += lmm_tail_logdet(fa->tail, fa->tailbuf);
    else for (int r = 0; r < qd; r++) ldL2 += 2.0 * log(fa->Ltail[r + (size_t) r * qd]);

    /* The fixed effects and the response: the Schur complement. */
    double one = 1.0, mone = -1.0;
    memcpy(fa->LXX, xp->AXX, (size_t) px * px * sizeof(double));
    if (px <= SMALL_PX) {
        subtract_outer(px, q1, fa->LX1, fa->LXX);
        subtract_outer(px, q2, fa->LX2, fa->LXX);
    } else {
        F77_CALL(dsyrk)("L", "N", &px, &q1, &mone, fa->LX1, &px, &one, fa->LXX, &px FCONE FCONE);
        if (q2 > 0)
            F77_CALL(dsyrk)("L", "N", &px, &q2, &mone, fa->LX2, &px, &one, fa->LXX, &px FCONE FCONE);
    }
    fa->ldL2 = ldL2;
    return factor_schur(xp, fa);
}

/* The factor of the Schur complement L_XX (formed in fa->LXX), its log
 * determinant and the penalised residual sum of squares. */
static int factor_schur(const lmm_xprod *xp, lmm_factor *fa)
{
    int px = xp->px, info;
    F77_CALL(dpotrf)("L", &px, fa->LXX, &px, &info FCONE);
    /* a failure at the last pivot is a response fitted exactly: R_X is
     * complete (a criterion with sigma known is still defined there) */
    if (info != 0 && info != px) {
        fa->ldRX2 = NA_REAL;
        fa->pwrss = 0;
        return 3;
    }
    double ld = 0;
    for (int i = 0; i < xp->p; i++) ld += 2.0 * log(fa->LXX[i + i * px]);
    fa->ldRX2 = ld;
    if (info == px) {
        fa->LXX[(px - 1) + (px - 1) * px] = 0;
        fa->pwrss = 0;
        return FACTOR_EXACT_FIT;
    }
    double d = fa->LXX[(px - 1) + (px - 1) * px];
    fa->pwrss = d * d;
    return 0;
}

/* The deviance module: the one place the criterion is written.  With sigma
 * given (profiles, the Satterthwaite derivatives; meta-analysis with known
 * variances fixes it at 1):
 *   ML:   d = ldL2 + pwrss / sigma^2 + n log(2 pi sigma^2) - sum(log w)
 *   REML: d = ldL2 + ldRX2 + pwrss / sigma^2 + (n - p) log(2 pi sigma^2) - sum(log w)
 * and profiled, at sigma-hat^2 = pwrss / n (ML) or pwrss / (n - p) (REML). */
static double residual_df(const lmm_xprod *xp, int reml)
{
    return reml ? (double) xp->nobs - xp->p : (double) xp->nobs;
}

double lmm_deviance_at_sigma(const lmm_xprod *xp, const lmm_factor *fa, int reml, double sigma)
{
    double s2 = sigma * sigma;
    double dev = fa->ldL2 + fa->pwrss / s2 + residual_df(xp, reml) * log(2.0 * M_PI * s2) - xp->sumlogw;
    if (reml) dev += fa->ldRX2;
    return dev;
}

double lmm_sigma_hat(const lmm_xprod *xp, double pwrss, int reml)
{
    return sqrt(pwrss / residual_df(xp, reml));
}

double lmm_deviance_from_factor(const lmm_xprod *xp, const lmm_factor *fa, int reml)
{
    return lmm_deviance_at_sigma(xp, fa, reml, lmm_sigma_hat(xp, fa->pwrss, reml));
}

double lmm_deviance(const lmm_xprod *xp, const double *theta, int reml, lmm_factor *fa)
{
    if (lmm_factorize(xp, theta, fa) != 0) return R_PosInf;
    return lmm_deviance_from_factor(xp, fa, reml);
}

double lmm_deviance_sigma(const lmm_xprod *xp, const double *theta, int reml, double sigma,
                          lmm_factor *fa)
{
    if (sigma == 0) return lmm_deviance(xp, theta, reml, fa);
    int code = lmm_factorize(xp, theta, fa);
    if (code != 0 && code != FACTOR_EXACT_FIT) return R_PosInf;
    return lmm_deviance_at_sigma(xp, fa, reml, sigma);
}

/* u for one level: L' u = c - B' u[rows] (c already in u). */
static void back_level(double *ug, int k, const double *L, const double *B, int m,
                       const int *rows, const double *u2)
{
    for (int c = 0; c < k; c++) {
        double s = ug[c];
        for (int a = 0; a < m; a++) s -= B[a + c * m] * u2[rows[a]];
        ug[c] = s;
    }
    for (int c = k - 1; c >= 0; c--) {
        double s = ug[c];
        for (int r = c + 1; r < k; r++) s -= L[r + c * k] * ug[r];
        ug[c] = s / L[c + c * k];
    }
}

/* ug := L^{-1} ug for one level's tile, then the rows beside it lose
 * B ug (the forward counterpart of back_level) */
static void forward_level(double *ug, int k, const double *L, const double *B, int m, const int *rows,
                          double *u2)
{
    for (int c = 0; c < k; c++) {
        double s = ug[c];
        for (int r = 0; r < c; r++) s -= L[c + r * k] * ug[r];
        ug[c] = s / L[c + c * k];
    }
    for (int a = 0; a < m; a++) {
        double s = 0;
        for (int c = 0; c < k; c++) s += B[a + c * m] * ug[c];
        u2[rows[a]] -= s;
    }
}

/* u := L^{-T} u: the tail, the later stages from the last, stage 0 */
static void back_substitute_u(const lmm_xprod *xp, const lmm_factor *fa, double *u)
{
    int k1 = xp->ncol[0], qd = xp->qd;
    double *u2 = u + xp->q1;
    if (qd > 0) {
        int one = 1;
        double *ut = u2 + xp->dstart;
        if (fa->tail) {
            lmm_tail_solve_lt(fa->tail, fa->tailbuf, ut, fa->work);
        } else {
            F77_CALL(dtrsv)("L", "T", "N", &qd, fa->Ltail, &qd, ut, &one FCONE FCONE FCONE);
        }
    }
    for (int s = xp->nstage - 1; s >= 1; s--) {
        const lmm_stage *st = xp->stage + s;
        int k = st->k;
        for (int h = 0; h < st->nlev; h++)
            back_level(u2 + st->off + h * k, k, fa->L22 + st->tiles + (size_t) h * k * k,
                       fa->L22 + st->coup + (size_t) st->Cp[h] * k, st->Cp[h + 1] - st->Cp[h],
                       st->Ci + st->Cp[h], u2);
    }
    for (int g = 0; g < xp->nlev[0]; g++) {
        int i0 = xp->A21p[g];
        back_level(u + (size_t) g * k1, k1, fa->L11 + (size_t) g * k1 * k1,
                   fa->L21x + (size_t) i0 * k1, xp->A21p[g + 1] - i0, xp->A21i + i0, u2);
    }
}

int lmm_factor_solve(const lmm_xprod *xp, const lmm_factor *fa, double *x)
{
    int k1 = xp->ncol[0], q1 = xp->q1, qd = xp->qd, one = 1;
    if (fa->tail) return 1;
    double *x2 = x + q1;
    for (int g = 0; g < xp->nlev[0]; g++) {
        int i0 = xp->A21p[g];
        forward_level(x + (size_t) g * k1, k1, fa->L11 + (size_t) g * k1 * k1, fa->L21x + (size_t) i0 * k1,
                      xp->A21p[g + 1] - i0, xp->A21i + i0, x2);
    }
    for (int s = 1; s < xp->nstage; s++) {
        const lmm_stage *st = xp->stage + s;
        int k = st->k;
        for (int h = 0; h < st->nlev; h++)
            forward_level(x2 + st->off + h * k, k, fa->L22 + st->tiles + (size_t) h * k * k,
                          fa->L22 + st->coup + (size_t) st->Cp[h] * k, st->Cp[h + 1] - st->Cp[h],
                          st->Ci + st->Cp[h], x2);
    }
    if (qd > 0) F77_CALL(dtrsv)("L", "N", "N", &qd, fa->Ltail, &qd, x2 + xp->dstart, &one FCONE FCONE FCONE);
    back_substitute_u(xp, fa, x);
    return 0;
}

void lmm_solve_coef(const lmm_xprod *xp, const lmm_factor *fa, double *beta, double *u)
{
    int p = xp->p, px = xp->px, q1 = xp->q1, q2 = xp->q2, y = px - 1;
    const double *LXX = fa->LXX;
    /* L_XX' beta = c_X */
    for (int i = p - 1; i >= 0; i--) {
        double s = LXX[y + i * px];
        for (int l = i + 1; l < p; l++) s -= LXX[l + i * px] * beta[l];
        beta[i] = s / LXX[i + i * px];
    }
    /* c - LX' beta, for every random effect */
    for (int r = 0; r < q1 + q2; r++) {
        const double *col = r < q1 ? fa->LX1 + (size_t) r * px : fa->LX2 + (size_t) (r - q1) * px;
        double s = col[y];
        for (int i = 0; i < p; i++) s -= col[i] * beta[i];
        u[r] = s;
    }
    back_substitute_u(xp, fa, u);
}

/* The upper triangular p x p R_X = t(L_XX[1:p, 1:p]), with vcov(beta) =
 * sigma^2 (R_X' R_X)^{-1}, into a p x p column-major array. */
void lmm_rx_from_factor(const lmm_xprod *xp, const lmm_factor *fa, double *RX)
{
    int p = xp->p, px = xp->px;
    for (int c = 0; c < p; c++)
        for (int r = 0; r < p; r++)
            RX[r + (size_t) c * p] = (r <= c) ? fa->LXX[c + (size_t) r * px] : 0.0;
}

static const char *factor_failure(int code)
{
    switch (code) {
    case 1: case 2: return _("the random-effects factor is not positive definite");
    case 3: return _("the fixed-effects model matrix is rank deficient at this theta");
    case FACTOR_EXACT_FIT: return _("the response is fitted exactly (zero residual sum of squares)");
    default: return _("the Cholesky factorisation failed");
    }
}

/* The deviance at theta, or at each column of a matrix of thetas (one
 * factor set up for them all). */
SEXP lmm_deviance_R(SEXP sxp, SEXP theta, SEXP reml)
{
    lmm_xprod xp;
    lmm_unpack_xprod(sxp, &xp);
    int nt = lmm_ntheta(&xp), m = 1;
    if (isMatrix(theta)) {
        if (nrows(theta) != nt) error(_("'theta' must have %d rows"), nt);
        m = ncols(theta);
    }
    lmm_arg_finite(theta, (R_xlen_t) nt * m, "theta");
    int r = lmm_arg_flag(reml, "REML");
    lmm_factor fa;
    lmm_factor_alloc(&xp, &fa);
    SEXP ans = PROTECT(allocVector(REALSXP, m));
    for (int i = 0; i < m; i++) REAL(ans)[i] = lmm_deviance(&xp, REAL(theta) + (size_t) i * nt, r, &fa);
    UNPROTECT(1);
    return ans;
}

/* Everything the R side needs after the optimum is found. */
SEXP lmm_solution(SEXP sxp, SEXP theta, SEXP sreml, SEXP ssigma)
{
    int nprot = 0, reml = lmm_arg_flag(sreml, "REML");
    /* NULL: sigma profiled; a positive number: the known residual sd */
    double sigma = 0;
    if (!isNull(ssigma)) {
        if (!isNumeric(ssigma) || XLENGTH(ssigma) != 1) error(_("'sigma' must be NULL or one positive number"));
        sigma = asReal(ssigma);
        if (!(sigma > 0) || !R_FINITE(sigma)) error(_("'sigma' must be NULL or a positive number"));
    }
    lmm_xprod xp;
    lmm_unpack_xprod(sxp, &xp);
    lmm_arg_finite(theta, lmm_ntheta(&xp), "theta");
    lmm_factor fa;
    lmm_factor_alloc(&xp, &fa);
    int code = lmm_factorize(&xp, REAL(theta), &fa);
    if (code != 0 && !(code == FACTOR_EXACT_FIT && sigma > 0)) error("%s", factor_failure(code));
    int p = xp.p, q = xp.q1 + xp.q2;
    SEXP beta = PROTECT(allocVector(REALSXP, p)); nprot++;
    SEXP u = PROTECT(allocVector(REALSXP, q)); nprot++;
    lmm_solve_coef(&xp, &fa, REAL(beta), REAL(u));
    SEXP RX = PROTECT(allocMatrix(REALSXP, p, p)); nprot++;
    lmm_rx_from_factor(&xp, &fa, REAL(RX));
    const char *names[] = {"deviance", "beta", "u", "RX", "ldL2", "ldRX2", "pwrss", "tail_order", ""};
    SEXP ans = PROTECT(mkNamed(VECSXP, names)); nprot++;
    SET_VECTOR_ELT(ans, 0, ScalarReal(sigma > 0 ? lmm_deviance_at_sigma(&xp, &fa, reml, sigma)
                                               : lmm_deviance_from_factor(&xp, &fa, reml)));
    SET_VECTOR_ELT(ans, 1, beta);
    SET_VECTOR_ELT(ans, 2, u);
    SET_VECTOR_ELT(ans, 3, RX);
    SET_VECTOR_ELT(ans, 4, ScalarReal(fa.ldL2));
    SET_VECTOR_ELT(ans, 5, ScalarReal(fa.ldRX2));
    SET_VECTOR_ELT(ans, 6, ScalarReal(fa.pwrss));
    /* the order the tail was factored in (1-based natural tail coordinates),
     * NULL when dense in its own order */
    if (fa.tail) {
        const int *perm = lmm_tail_perm(fa.tail);
        SEXP ord = allocVector(INTSXP, xp.qd);
        SET_VECTOR_ELT(ans, 7, ord);
        for (int a = 0; a < xp.qd; a++) INTEGER(ord)[a] = perm[a] + 1;
    }
    UNPROTECT(nprot);
    return ans;
}
