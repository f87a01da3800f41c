/* Conditional covariances of the random effects given the data, as lme4's
 * condVar: for each level, lambda [(L_Z L_Z')^{-1}]_block lambda' (times
 * sigma^2 on the R side), where L_Z is the random-effects part of the factor.
 * The blocks of (L_Z L_Z')^{-1} are its selected inverse's tiles (selinv.c):
 * no dense q x q inverse is formed. */
#include <string.h>
#include "lapack.h"
#include <Rinternals.h>
#include "model.h"
#include "lmmfit.h"
#include "selinv.h"

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
    lmm_selinv_ws si;
    lmm_selinv_alloc(&xp, &si);
    if (lmm_selinv(&xp, &fa, &si) != 0)
        error(_("conditional variances: the inverse of the crossed random effects' block failed (dpotri)"));
    int kmax = 1;
    for (int j = 0; j < xp.nterms; j++) if (xp.ncol[j] > kmax) kmax = xp.ncol[j];
    double *M = (double *) R_alloc((size_t) kmax * kmax, sizeof(double));
    double *tmp = (double *) R_alloc((size_t) kmax * kmax, sizeof(double));
    SEXP ans = PROTECT(allocVector(VECSXP, xp.nterms)); nprot++;
    for (int j = 0, r0 = 0; j < xp.nterms; j++) {
        int k = xp.ncol[j];
        SEXP aj = PROTECT(alloc3DArray(REALSXP, k, k, xp.nlev[j]));
        for (int h = 0; h < xp.nlev[j]; h++) {
            size_t tk = (size_t) h * k * k;
            if (j == 0) {
                memcpy(M, si.Z11 + tk, (size_t) k * k * sizeof(double));
            } else if (j < xp.nstage) {
                memcpy(M, si.Z22 + xp.stage[j].tiles + tk, (size_t) k * k * sizeof(double));
            } else {
                /* a tile on the tail's diagonal (lower triangle stored) */
                const double *D = si.Z22 + xp.doff;
                int d0 = r0 - xp.dstart, qd = xp.qd;
                for (int c = 0; c < k; c++)
                    for (int r = c; r < k; r++)
                        M[r + c * k] = M[c + r * k] = D[(d0 + r) + (size_t) (d0 + c) * qd];
            }
            if (j > 0) r0 += k;
            sandwich(fa.lambda + fa.lamoff[j], M, k, tmp, REAL(aj) + tk);
        }
        SET_VECTOR_ELT(ans, j, aj);
        UNPROTECT(1);
    }
    UNPROTECT(nprot);
    return ans;
}
