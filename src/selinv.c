/* The selected inverse of the random-effects block: the entries of
 * Z = M^{-1}, M = Lambda' A_ZZ Lambda + I = L L', on the pattern of the
 * factor L only (its tiles, the rows beside each level, the dense tail), from
 * the factor itself (Takahashi, Fagan and Chen 1973; Erisman and Tinney 1975).
 *
 * Order a level g first and the rows C beside it (the later stages' tiles
 * and the tail rows it co-occurs with) after it: L = [L_gg 0; B L_C] with
 * B = L_{C,g}, so L^{-1} = [L_gg^{-1} 0; -L_C^{-1} B L_gg^{-1} L_C^{-1}] and
 *   Z_{C,g} = -Z_{C,C} B L_gg^{-1},
 *   Z_gg    = (L_gg L_gg')^{-1} - (B L_gg^{-1})' Z_{C,g}.
 * Z_{C,C} lies on the pattern of the rows eliminated after g (that is what
 * makes the stages' pattern closed: DESIGN.md section 7), so going through
 * the factor backwards, the tail first (dense: LAPACK's dpotri), then the
 * later stages and stage 0 level by level, every entry a level needs is
 * known when it is reached.  The levels of one stage are independent of
 * each other.  Z is stored in the factor's own layout (selinv.h).  A sparse
 * tail's inverse is formed dense (its factor expanded): for the conditional
 * variances, once per fit; the optimizer's gradient is not used with one. */
#include <string.h>
#include "lapack.h"
#include <Rinternals.h>
#include "model.h"
#include "lmmfit.h"
#include "selinv.h"
#include "kernels.h"


/* The largest number of rows beside any level. */
static int max_beside(const lmm_xprod *xp)
{
    int mmax = 0;
    for (int s = 0; s < xp->nstage; s++) {
        const lmm_stage *st = xp->stage + s;
        for (int g = 0; g < st->nlev; g++) {
            int m = st->Cp[g + 1] - st->Cp[g];
            if (m > mmax) mmax = m;
        }
    }
    return mmax;
}

void lmm_selinv_alloc(const lmm_xprod *xp, lmm_selinv_ws *si)
{
    int k1 = xp->ncol[0], kmax = 1, mmax = max_beside(xp);
    for (int j = 0; j < xp->nterms; j++) if (xp->ncol[j] > kmax) kmax = xp->ncol[j];
    R_xlen_t m1 = xp->A21p[xp->nlev[0]];
    si->Z11 = (double *) R_alloc((size_t) xp->nlev[0] * k1 * k1, sizeof(double));
    si->Z21x = (double *) R_alloc((size_t) (m1 > 0 ? m1 * k1 : 1), sizeof(double));
    si->Z22 = (double *) R_alloc((size_t) (xp->n22 > 0 ? xp->n22 : 1), sizeof(double));
    si->ZCC = (double *) R_alloc((size_t) (mmax > 0 ? (size_t) mmax * mmax : 1), sizeof(double));
    si->Bt = (double *) R_alloc((size_t) (mmax > 0 ? mmax : 1) * kmax, sizeof(double));
    si->T = (double *) R_alloc((size_t) kmax * kmax, sizeof(double));
    si->tailP = NULL;
}

/* The tail's inverse into D (qd x qd, lower triangle, natural order): from
 * the dense factor, or from a sparse tail's factor expanded (in the plan's
 * order, into scratch allocated the first time) and put back in the
 * natural order.  0, or 1 when dpotri fails. */
static int invert_tail(const lmm_xprod *xp, const lmm_factor *fa, lmm_selinv_ws *si, double *D)
{
    int qd = xp->qd, info = 0;
    const int *perm = fa->tail ? lmm_tail_perm(fa->tail) : NULL;
    double *P = D;
    if (perm) {
        if (!si->tailP) si->tailP = (double *) R_alloc((size_t) qd * qd, sizeof(double));
        P = si->tailP;
        lmm_tail_expand(fa->tail, fa->tailbuf, P);
    } else {
        memcpy(P, fa->Ltail, (size_t) qd * qd * sizeof(double));
    }
    F77_CALL(dpotri)("L", &qd, P, &qd, &info FCONE);
    if (info != 0) return 1;
    if (perm)
        for (int c = 0; c < qd; c++)
            for (int r = c; r < qd; r++) {
                int a = perm[r], b = perm[c];
                D[(a > b ? a : b) + (size_t) (a > b ? b : a) * qd] = P[r + (size_t) c * qd];
            }
    return 0;
}

/* Z_{C,C} for the m rows `rows` beside a level (m x m, both triangles),
 * read where the level's update of the rows after it wrote (update_after()
 * in deviance.c): the later stages' tiles and beside-values at the
 * symbolic slots, then the dense tail. */
static void gather_after(const lmm_xprod *xp, const lmm_selinv_ws *si, int m, const int *rows,
                         const int *slot, double *ZCC)
{
    int dstart = xp->dstart, qd = xp->qd, e = 0;
    const double *D = si->Z22 + xp->doff;
    while (e < m && rows[e] < dstart) {
        const lmm_stage *st = xp->stage + xp->rterm[rows[e]];
        int kt = st->k, h = (rows[e] - st->off) / kt, mh = st->Cp[h + 1] - st->Cp[h];
        const double *T = si->Z22 + st->tiles + (size_t) h * kt * kt;
        const double *Bh = si->Z22 + st->coup + (size_t) st->Cp[h] * kt;
        for (int b = 0; b < kt; b++) {
            for (int a = 0; a < kt; a++) ZCC[(e + a) + (size_t) (e + b) * m] = T[a + b * kt];
            for (int e2 = e + kt; e2 < m; e2++) {
                double v = Bh[slot[e2 - e - kt] + (size_t) b * mh];
                ZCC[e2 + (size_t) (e + b) * m] = ZCC[(e + b) + (size_t) e2 * m] = v;
            }
        }
        slot += m - e - kt;
        e += kt;
    }
    for (int b = e; b < m; b++)
        for (int a = b; a < m; a++) {
            double v = D[(rows[a] - dstart) + (size_t) (rows[b] - dstart) * qd];
            ZCC[a + (size_t) b * m] = ZCC[b + (size_t) a * m] = v;
        }
}

/* One level: from its tile factor L (k x k) and the solved rows beside it
 * B (m x k), Z_{C,g} into Zb (m x k) and Z_gg into Zt (k x k, both
 * triangles). */
static void invert_level(const lmm_xprod *xp, lmm_selinv_ws *si, int k, const double *L,
                         const double *B, int m, const int *rows, const int *slot,
                         double *Zb, double *Zt)
{
    double *Bt = si->Bt, *Li = si->T;
    /* Li = L^{-1} (lower) */
    for (int c = 0; c < k; c++) {
        for (int r = 0; r < c; r++) Li[r + c * k] = 0.0;
        Li[c + c * k] = 1.0 / L[c + c * k];
        for (int r = c + 1; r < k; r++) {
            double s = 0;
            for (int t = c; t < r; t++) s += L[r + t * k] * Li[t + c * k];
            Li[r + c * k] = -s / L[r + r * k];
        }
    }
    /* Zt = Li' Li */
    for (int c = 0; c < k; c++)
        for (int r = c; r < k; r++) {
            double s = 0;
            for (int t = r; t < k; t++) s += Li[t + r * k] * Li[t + c * k];
            Zt[r + c * k] = Zt[c + r * k] = s;
        }
    if (m == 0) return;
    /* Bt = B Li (m x k) */
    lmm_times_lower(m, k, B, Li, Bt);
    gather_after(xp, si, m, rows, slot, si->ZCC);
    /* Zb = -ZCC Bt */
    const double *ZCC = si->ZCC;
    for (int c = 0; c < k; c++)
        for (int a = 0; a < m; a++) {
            double s = 0;
            for (int b = 0; b < m; b++) s += ZCC[a + (size_t) b * m] * Bt[b + (size_t) c * m];
            Zb[a + (size_t) c * m] = -s;
        }
    /* Zt -= Bt' Zb */
    for (int c = 0; c < k; c++)
        for (int r = c; r < k; r++) {
            double s = 0;
            for (int a = 0; a < m; a++) s += Bt[a + (size_t) r * m] * Zb[a + (size_t) c * m];
            Zt[r + c * k] -= s;
            if (r != c) Zt[c + r * k] = Zt[r + c * k];
        }
}

int lmm_selinv(const lmm_xprod *xp, const lmm_factor *fa, lmm_selinv_ws *si)
{
    if (xp->qd > 0 && invert_tail(xp, fa, si, si->Z22 + xp->doff)) return 1;
    for (int s = xp->nstage - 1; s >= 0; s--) {
        const lmm_stage *st = xp->stage + s;
        int k = st->k;
        for (int h = 0; h < st->nlev; h++) {
            int m = st->Cp[h + 1] - st->Cp[h];
            const int *rows = st->Ci + st->Cp[h];
            const int *slot = fa->slot + fa->slotstart[fa->slotoff[s] + h];
            if (s == 0) {
                size_t i0 = (size_t) st->Cp[h] * k;
                invert_level(xp, si, k, fa->L11 + (size_t) h * k * k, fa->L21x + i0, m, rows, slot,
                             si->Z21x + i0, si->Z11 + (size_t) h * k * k);
            } else {
                R_xlen_t t = st->tiles + (R_xlen_t) h * k * k, o = st->coup + (R_xlen_t) st->Cp[h] * k;
                invert_level(xp, si, k, fa->L22 + t, fa->L22 + o, m, rows, slot, si->Z22 + o,
                             si->Z22 + t);
            }
        }
        if (s > 0 || xp->nlev[0] > 1024) R_CheckUserInterrupt();
    }
    return 0;
}
