/* Conditional covariances of the random effects given the data, as lme4's
 * condVar: for each level, lambda [(L_Z L_Z')^{-1}]_block lambda' (times
 * sigma^2 on the R side), where L_Z is the random-effects part of the factor.
 *
 * Sigma = (L_Z L_Z')^{-1} is needed only on the pattern of L_Z (its "selected
 * inverse"), found backwards: the dense tail by dpotri; then, for each level
 * of a stage, from the last stage to the first, with L = [T 0; B L_R] (T its
 * tile, B its beside-rows R),
 *   Sigma_Rh = -Sigma_RR B T^{-1},   Sigma_hh = T^{-T} (I + B' Sigma_RR B) T^{-1},
 * where Sigma_RR among the rows R is on the pattern already (nesting keeps it
 * closed).  No dense q x q inverse is formed. */
#include <string.h>
#include "lapack.h"
#include <Rinternals.h>
#include "model.h"
#include "lmmfit.h"

/* lam * M * lam' for k x k matrices (lam lower triangular), into out. */
static void sandwich(const double *lam, const double *M, int k, double *tmp, double *out)
{
    for (int c = 0; c < k; c++)
        for (int r = 0; r < k; r++) {
            double s = 0;
            for (int l = 0; l <= r; l++) s += lam[r + l * k] * M[l + c * k];
            tmp[r + c * k] = s;
        }
    for (int c = 0; c < k; c++)
        for (int r = 0; r < k; r++) {
            double s = 0;
            for (int l = 0; l <= c; l++) s += tmp[r + l * k] * lam[c + l * k];
            out[r + c * k] = s;
        }
}

/* In place: M <- L^{-T} M L^{-1} for a k x k symmetric M and lower L. */
static void whiten_inverse(const double *L, double *M, int k)
{
    /* M <- M L^{-1}: solve X L = M row by row (columns from the last) */
    for (int r = 0; r < k; r++)
        for (int c = k - 1; c >= 0; c--) {
            double s = M[r + c * k];
            for (int l = c + 1; l < k; l++) s -= M[r + l * k] * L[l + c * k];
            M[r + c * k] = s / L[c + c * k];
        }
    /* M <- L^{-T} M: solve L' X = M column by column */
    for (int c = 0; c < k; c++)
        for (int r = k - 1; r >= 0; r--) {
            double s = M[r + c * k];
            for (int l = r + 1; l < k; l++) s -= L[l + r * k] * M[l + c * k];
            M[r + c * k] = s / L[r + r * k];
        }
}

/* X T = W in place for W (m x k, leading dimension m) and a lower k x k T. */
static void right_solve_l(double *W, int m, int k, const double *T)
{
    for (int r = 0; r < m; r++)
        for (int c = k - 1; c >= 0; c--) {
            double s = W[r + c * m];
            for (int l = c + 1; l < k; l++) s -= W[r + l * m] * T[l + c * k];
            W[r + c * m] = s / T[c + c * k];
        }
}

/* W = Sigma_RR B for the rows R of one level (B: m x k), Sigma read from the
 * selected inverse Sg (A22's layout, tiles full, the tail full). */
static void sigma_times(const lmm_xprod *xp, const double *Sg, int m, int k, const int *rows,
                        const double *B, const int *slot, double *W)
{
    int dstart = xp->dstart, qd = xp->qd, e = 0;
    memset(W, 0, (size_t) m * k * sizeof(double));
    while (e < m && rows[e] < dstart) {
        const lmm_stage *st = xp->stage + xp->rterm[rows[e]];
        int kt = st->k, h = (rows[e] - st->off) / kt, mh = st->Cp[h + 1] - st->Cp[h];
        const double *T = Sg + st->tiles + (size_t) h * kt * kt;
        const double *Bh = Sg + st->coup + (size_t) st->Cp[h] * kt;
        for (int c = 0; c < k; c++)
            for (int a = 0; a < kt; a++)
                for (int b = 0; b < kt; b++) W[e + a + c * m] += T[a + b * kt] * B[e + b + c * m];
        for (int e2 = e + kt; e2 < m; e2++) {
            int pos = slot[e2 - e - kt];
            for (int b = 0; b < kt; b++) {
                double v = Bh[pos + (size_t) b * mh];
                for (int c = 0; c < k; c++) {
                    W[e2 + c * m] += v * B[e + b + c * m];
                    W[e + b + c * m] += v * B[e2 + c * m];
                }
            }
        }
        slot += m - e - kt;
        e += kt;
    }
    const double *SD = Sg + xp->doff;
    for (int c = 0; c < k; c++)
        for (int b = e; b < m; b++) {
            double bb = B[b + c * m];
            if (bb == 0.0) continue;
            const double *col = SD + (size_t) (rows[b] - dstart) * qd - dstart;
            for (int a = e; a < m; a++) W[a + c * m] += col[rows[a]] * bb;
        }
}

/* M = I + B' W (k x k) for B, W m x k. */
static void one_plus_cross(const double *B, const double *W, int m, int k, double *M)
{
    for (int c = 0; c < k; c++)
        for (int r = 0; r < k; r++) {
            double s = (r == c) ? 1.0 : 0.0;
            for (int a = 0; a < m; a++) s += B[a + r * m] * W[a + c * m];
            M[r + c * k] = s;
        }
}

/* The selected inverse of the rest (the later stages and the tail) into Sg. */
static void rest_selected_inverse(const lmm_xprod *xp, const lmm_factor *fa, double *Sg,
                                  double *W, double *M)
{
    int qd = xp->qd;
    if (qd > 0) {
        /* the tail's inverse, from its factor in the plan's order when the
         * factorisation used one, then put back in the natural order */
        const int *perm = fa->tail ? lmm_tail_perm(fa->tail) : NULL;
        double *SD = Sg + xp->doff;
        double *P = SD;
        if (perm) {
            P = (double *) R_alloc((size_t) qd * qd, sizeof(double));
            lmm_tail_expand(fa->tail, fa->tailbuf, P);
        } else {
            memcpy(P, fa->Ltail, (size_t) qd * qd * sizeof(double));
        }
        int info;
        F77_CALL(dpotri)("L", &qd, P, &qd, &info FCONE);
        lmm_lapack_check(info, "dpotri", _("conditional variances"));
        for (int c = 0; c < qd; c++)
            for (int r = c + 1; r < qd; r++) P[c + (size_t) r * qd] = P[r + (size_t) c * qd];
        if (perm)
            for (int c = 0; c < qd; c++)
                for (int r = 0; r < qd; r++) SD[perm[r] + (size_t) perm[c] * qd] = P[r + (size_t) c * qd];
    }
    for (int s = xp->nstage - 1; s >= 1; s--) {
        const lmm_stage *st = xp->stage + s;
        int k = st->k;
        for (int h = 0; h < st->nlev; h++) {
            int m = st->Cp[h + 1] - st->Cp[h];
            const double *T = fa->L22 + st->tiles + (size_t) h * k * k;
            const double *B = fa->L22 + st->coup + (size_t) st->Cp[h] * k;
            sigma_times(xp, Sg, m, k, st->Ci + st->Cp[h], B,
                        fa->slot + fa->slotstart[fa->slotoff[s] + h], W);
            one_plus_cross(B, W, m, k, M);
            whiten_inverse(T, M, k);
            memcpy(Sg + st->tiles + (size_t) h * k * k, M, (size_t) k * k * sizeof(double));
            right_solve_l(W, m, k, T);
            double *Sb = Sg + st->coup + (size_t) st->Cp[h] * k;
            for (R_xlen_t i = 0; i < (R_xlen_t) m * k; i++) Sb[i] = -W[i];
        }
    }
}

SEXP lmm_condvar(SEXP sxp, SEXP theta)
{
    int nprot = 0;
    lmm_xprod xp;
    lmm_unpack_xprod(sxp, &xp);
    lmm_arg_finite(theta, lmm_ntheta(&xp), "theta");
    lmm_factor fa;
    lmm_factor_alloc(&xp, &fa);
    if (lmm_factorize(&xp, REAL(theta), &fa) != 0)
        error(_("the model cannot be factorised at these parameters"));
    int k1 = xp.ncol[0], nlev1 = xp.nlev[0], kmax = 0, mmax = 0;
    for (int j = 0; j < xp.nterms; j++) if (xp.ncol[j] > kmax) kmax = xp.ncol[j];
    for (int s = 0; s < xp.nstage; s++)
        for (int g = 0; g < xp.stage[s].nlev; g++) {
            int m = xp.stage[s].Cp[g + 1] - xp.stage[s].Cp[g];
            if (m > mmax) mmax = m;
        }
    double *M = (double *) R_alloc((size_t) kmax * kmax, sizeof(double));
    double *tmp = (double *) R_alloc((size_t) kmax * kmax, sizeof(double));
    double *W = (double *) R_alloc((size_t) (mmax > 0 ? mmax : 1) * kmax, sizeof(double));
    double *Sg = (double *) R_alloc((size_t) (xp.n22 > 0 ? xp.n22 : 1), sizeof(double));
    rest_selected_inverse(&xp, &fa, Sg, W, M);

    SEXP ans = PROTECT(allocVector(VECSXP, xp.nterms)); nprot++;
    SEXP a0 = PROTECT(alloc3DArray(REALSXP, k1, k1, nlev1)); nprot++;
    for (int g = 0; g < nlev1; g++) {
        int i0 = xp.A21p[g], m = xp.A21p[g + 1] - i0;
        const double *B = fa.L21x + (size_t) i0 * k1;
        sigma_times(&xp, Sg, m, k1, xp.A21i + i0, B, fa.slot + fa.slotstart[g], W);
        one_plus_cross(B, W, m, k1, M);
        whiten_inverse(fa.L11 + (size_t) g * k1 * k1, M, k1);
        sandwich(fa.lambda, M, k1, tmp, REAL(a0) + (size_t) g * k1 * k1);
    }
    SET_VECTOR_ELT(ans, 0, a0);

    for (int j = 1, r0 = 0; j < xp.nterms; j++) {
        int k = xp.ncol[j];
        SEXP aj = PROTECT(alloc3DArray(REALSXP, k, k, xp.nlev[j]));
        for (int h = 0; h < xp.nlev[j]; h++, r0 += k) {
            if (j < xp.nstage) {
                memcpy(M, Sg + xp.stage[j].tiles + (size_t) h * k * k, (size_t) k * k * sizeof(double));
            } else {
                const double *SD = Sg + xp.doff;
                int d0 = r0 - xp.dstart, qd = xp.qd;
                for (int c = 0; c < k; c++)
                    for (int r = 0; r < k; r++) M[r + c * k] = SD[(d0 + r) + (size_t) (d0 + c) * qd];
            }
            sandwich(fa.lambda + fa.lamoff[j], M, k, tmp, REAL(aj) + (size_t) h * k * k);
        }
        SET_VECTOR_ELT(ans, j, aj);
        UNPROTECT(1);
    }
    UNPROTECT(nprot);
    return ans;
}
