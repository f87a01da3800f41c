/* Conditional covariances of the random effects given the data, as lme4's
 * condVar: for each level, lambda [(L_Z L_Z')^{-1}]_block lambda' (times
 * sigma^2 on the R side), where L_Z is the random-effects part of the factor.
 *
 * With L_Z = [L11 0; L21 L22] and P = (L22 L22')^{-1}, the block of level g of
 * the first term is L11_g^{-T} (I + L21_g' P L21_g) L11_g^{-1}; a rest tile's
 * block is the matching diagonal block of P.  Only the rows of P that a level
 * touches are read, so no dense q x q inverse is formed. */
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
    int k1 = xp.ncol[0], q2 = xp.q2, nlev1 = xp.nlev[0];

    /* P = (L22 L22')^{-1}, lower triangle valid after dpotri; symmetrise. */
    double *P = NULL;
    if (q2 > 0) {
        P = (double *) R_alloc((size_t) q2 * q2, sizeof(double));
        memcpy(P, fa.L22, (size_t) q2 * q2 * sizeof(double));
        int info;
        F77_CALL(dpotri)("L", &q2, P, &q2, &info FCONE);
        lmm_lapack_check(info, "dpotri", _("conditional variances"));
        for (int c = 0; c < q2; c++)
            for (int r = c + 1; r < q2; r++) P[c + (size_t) r * q2] = P[r + (size_t) c * q2];
    }

    SEXP ans = PROTECT(allocVector(VECSXP, xp.nterms)); nprot++;
    int kmax = 0;
    for (int j = 0; j < xp.nterms; j++) if (xp.ncol[j] > kmax) kmax = xp.ncol[j];
    double *M = (double *) R_alloc((size_t) kmax * kmax, sizeof(double));
    double *tmp = (double *) R_alloc((size_t) kmax * kmax, sizeof(double));

    SEXP a0 = PROTECT(alloc3DArray(REALSXP, k1, k1, nlev1)); nprot++;
    for (int g = 0; g < nlev1; g++) {
        int i0 = xp.A21p[g], m = xp.A21p[g + 1] - i0;
        const double *B = fa.L21x + (size_t) i0 * k1;
        const int *rows = xp.A21i + i0;
        for (int c = 0; c < k1; c++)
            for (int r = 0; r < k1; r++) {
                double s = (r == c) ? 1.0 : 0.0;
                for (int a = 0; a < m; a++) {
                    double pa = 0;
                    for (int b = 0; b < m; b++) pa += P[rows[a] + (size_t) rows[b] * q2] * B[b + c * m];
                    s += B[a + r * m] * pa;
                }
                M[r + c * k1] = s;
            }
        whiten_inverse(fa.L11 + (size_t) g * k1 * k1, M, k1);
        sandwich(fa.lambda, M, k1, tmp, REAL(a0) + (size_t) g * k1 * k1);
    }
    SET_VECTOR_ELT(ans, 0, a0);

    for (int j = 1, r0 = 0; j < xp.nterms; j++) {
        int k = xp.ncol[j];
        SEXP aj = PROTECT(alloc3DArray(REALSXP, k, k, xp.nlev[j]));
        for (int h = 0; h < xp.nlev[j]; h++, r0 += k) {
            for (int c = 0; c < k; c++)
                for (int r = 0; r < k; r++) M[r + c * k] = P[(r0 + r) + (size_t) (r0 + c) * q2];
            sandwich(fa.lambda + fa.lamoff[j], M, k, tmp, REAL(aj) + (size_t) h * k * k);
        }
        SET_VECTOR_ELT(ans, j, aj);
        UNPROTECT(1);
    }
    UNPROTECT(nprot);
    return ans;
}
