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

void lmm_factor_alloc(const lmm_xprod *xp, lmm_factor *fa)
{
    int nterms = xp->nterms, k1 = xp->ncol[0];
    fa->lamoff = (int *) R_alloc((size_t) nterms + 1, sizeof(int));
    fa->lamoff[0] = 0;
    for (int j = 0; j < nterms; j++) fa->lamoff[j + 1] = fa->lamoff[j] + xp->ncol[j] * xp->ncol[j];
    fa->lambda = (double *) R_alloc((size_t) fa->lamoff[nterms], sizeof(double));
    R_xlen_t m = xp->A21p[xp->nlev[0]];
    fa->L11 = (double *) R_alloc((size_t) xp->nlev[0] * k1 * k1, sizeof(double));
    fa->L21x = (double *) R_alloc((size_t) (m > 0 ? m * k1 : 1), sizeof(double));
    fa->L22 = (double *) R_alloc((size_t) (xp->q2 > 0 ? (size_t) xp->q2 * xp->q2 : 1), sizeof(double));
    fa->LX1 = (double *) R_alloc((size_t) xp->px * xp->q1, sizeof(double));
    fa->LX2 = (double *) R_alloc((size_t) (xp->q2 > 0 ? (size_t) xp->px * xp->q2 : 1), sizeof(double));
    fa->LXX = (double *) R_alloc((size_t) xp->px * xp->px, sizeof(double));
    /* one workspace for the phases of an evaluation (used one after the
     * other): the first term's tile product, the rest block's scaling, the
     * dense Cholesky's panels and the X-and-y columns' solve */
    size_t q2 = (size_t) xp->q2, nw = (size_t) k1 * k1;
    if (q2 > nw) nw = q2;
    if (lmm_dense_chol_work(xp->q2) > nw) nw = lmm_dense_chol_work(xp->q2);
    if (q2 * xp->px > nw) nw = q2 * xp->px;
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

    int k1 = xp->ncol[0], px = xp->px, q1 = xp->q1, q2 = xp->q2, nlev1 = xp->nlev[0];
    const double *lam1 = fa->lambda;
    double ldL2 = 0;

    /* The first term: one small factor per level, and the blocks beside it. */
    memcpy(fa->LX1, xp->AX1, (size_t) px * q1 * sizeof(double));
    R_xlen_t m_all = xp->A21p[nlev1];
    if (m_all > 0) memcpy(fa->L21x, xp->A21x, (size_t) m_all * k1 * sizeof(double));
    double *T = fa->work;
    /* log det of the first term's factor: the diagonal of a Cholesky factor of
     * a matrix >= I is >= 1, so multiply and take one log per ~1e250 instead
     * of one per level (the logs were a third of an evaluation's time with
     * thousands of small levels) */
    double diagprod = 1.0;
    for (int g = 0; g < nlev1; g++) {
        const double *a = xp->A11 + (size_t) g * k1 * k1;
        double *L = fa->L11 + (size_t) g * k1 * k1;
        if (k1 == 1) {
            L[0] = sqrt(lam1[0] * lam1[0] * a[0] + 1.0);
        } else {
            /* T = a lam1; L = lam1' T + I */
            for (int c = 0; c < k1; c++)
                for (int r = 0; r < k1; r++) {
                    double s = 0;
                    for (int cp = c; cp < k1; cp++) s += a[r + cp * k1] * lam1[cp + c * k1];
                    T[r + c * k1] = s;
                }
            for (int c = 0; c < k1; c++)
                for (int r = 0; r < k1; r++) {
                    double s = (r == c) ? 1.0 : 0.0;
                    for (int rp = r; rp < k1; rp++) s += lam1[rp + r * k1] * T[rp + c * k1];
                    L[r + c * k1] = s;
                }
            if (lmm_small_chol(k1, L, 0, 0.0)) return 1;
        }
        for (int c = 0; c < k1; c++) {
            diagprod *= L[c + c * k1];
            if (diagprod > 1e250) { ldL2 += 2.0 * log(diagprod); diagprod = 1.0; }
        }

        /* rest rows beside this level: Lambda2' A21 lam1 L^{-T} */
        int i0 = xp->A21p[g], m = xp->A21p[g + 1] - i0;
        if (m > 0) {
            double *B = fa->L21x + (size_t) i0 * k1;
            tile_cols_lambda(B, m, 0, k1, lam1);
            for (int i = 0; i < m; i++) {
                int r = xp->A21i[i0 + i];
                if (xp->rpos[r] == 0) {
                    int j = xp->rterm[r];
                    tile_rows_lambda_t(B, m, k1, i, xp->ncol[j], fa->lambda + fa->lamoff[j]);
                }
            }
            right_solve_lt(B, m, m, k1, L);
        }
        /* X and y beside this level */
        double *C = fa->LX1 + (size_t) g * k1 * px;
        tile_cols_lambda(C, px, 0, k1, lam1);
        right_solve_lt(C, px, px, k1, L);
    }

    ldL2 += 2.0 * log(diagprod);

    /* The rest: dense. */
    if (q2 > 0) {
        double *S = fa->L22;
        memcpy(fa->LX2, xp->AX2, (size_t) px * q2 * sizeof(double));
        int scalar = 1;
        for (int j = 1; j < xp->nterms; j++) scalar &= xp->ncol[j] == 1;
        if (scalar) {
            /* all rest terms (1 | g): S = D A22 D, D diagonal, in one pass
             * over the lower triangle (the upper one is not referenced) */
            double *dl = fa->work;
            for (int r = 0; r < q2; r++) dl[r] = fa->lambda[fa->lamoff[xp->rterm[r]]];
            for (int c = 0; c < q2; c++) {
                const double *a = xp->A22 + (size_t) c * q2;
                double *sc = S + (size_t) c * q2, dc = dl[c];
                for (int r = c; r < q2; r++) sc[r] = a[r] * dl[r] * dc;
                double *xc = fa->LX2 + (size_t) c * px;
                for (int i = 0; i < px; i++) xc[i] *= dc;
            }
        } else {
            memcpy(S, xp->A22, (size_t) q2 * q2 * sizeof(double));
            for (int r = 0; r < q2; r++) {
                if (xp->rpos[r] != 0) continue;
                int j = xp->rterm[r], k = xp->ncol[j];
                const double *lam = fa->lambda + fa->lamoff[j];
                tile_cols_lambda(S, q2, r, k, lam);
                tile_rows_lambda_t(S, q2, q2, r, k, lam);
                tile_cols_lambda(fa->LX2, px, r, k, lam);
            }
        }
        for (int r = 0; r < q2; r++) S[r + (size_t) r * q2] += 1.0;
        /* minus the contributions through the first term (lower triangle only) */
        for (int g = 0; g < nlev1; g++) {
            int i0 = xp->A21p[g], m = xp->A21p[g + 1] - i0;
            const double *B = fa->L21x + (size_t) i0 * k1;
            const int *rows = xp->A21i + i0;
            const double *C = fa->LX1 + (size_t) g * k1 * px;
            if (k1 == 1) {
                for (int b = 0; b < m; b++) {
                    double *Scol = S + (size_t) rows[b] * q2, bb = B[b];
                    for (int a = b; a < m; a++) Scol[rows[a]] -= B[a] * bb;
                    double *Xcol = fa->LX2 + (size_t) rows[b] * px;
                    for (int i = 0; i < px; i++) Xcol[i] -= C[i] * bb;
                }
                continue;
            }
            for (int b = 0; b < m; b++) {
                double *Scol = S + (size_t) rows[b] * q2;
                for (int a = b; a < m; a++) {
                    double s = 0;
                    for (int c = 0; c < k1; c++) s += B[a + c * m] * B[b + c * m];
                    Scol[rows[a]] -= s;
                }
                double *Xcol = fa->LX2 + (size_t) rows[b] * px;
                for (int c = 0; c < k1; c++) {
                    double bb = B[b + c * m];
                    if (bb == 0.0) continue;
                    for (int i = 0; i < px; i++) Xcol[i] -= C[i + c * px] * bb;
                }
            }
        }
        if (lmm_dense_chol(q2, S, q2, fa->work) != 0) return 2;
        for (int r = 0; r < q2; r++) ldL2 += 2.0 * log(S[r + (size_t) r * q2]);
        lmm_dense_solve_right_lt(px, q2, S, q2, fa->LX2, px, fa->work);
    }

    /* The fixed effects and the response: the Schur complement. */
    double one = 1.0, mone = -1.0;
    memcpy(fa->LXX, xp->AXX, (size_t) px * px * sizeof(double));
    F77_CALL(dsyrk)("L", "N", &px, &q1, &mone, fa->LX1, &px, &one, fa->LXX, &px FCONE FCONE);
    if (q2 > 0)
        F77_CALL(dsyrk)("L", "N", &px, &q2, &mone, fa->LX2, &px, &one, fa->LXX, &px FCONE FCONE);
    fa->ldL2 = ldL2;
    return factor_schur(xp, fa);
}

/* The factor of the Schur complement L_XX (formed in fa->LXX), its log
 * determinant and the penalised residual sum of squares. */
static int factor_schur(const lmm_xprod *xp, lmm_factor *fa)
{
    int px = xp->px, info;
    F77_CALL(dpotrf)("L", &px, fa->LXX, &px, &info FCONE);
    if (info != 0) {
        /* a failure at the last pivot is a response fitted exactly */
        fa->ldRX2 = NA_REAL;
        fa->pwrss = 0;
        return info == px ? 4 : 3;
    }
    double ld = 0;
    for (int i = 0; i < xp->p; i++) ld += 2.0 * log(fa->LXX[i + i * px]);
    fa->ldRX2 = ld;
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

void lmm_solve_coef(const lmm_xprod *xp, const lmm_factor *fa, double *beta, double *u)
{
    int p = xp->p, px = xp->px, k1 = xp->ncol[0], q1 = xp->q1, q2 = xp->q2, y = px - 1;
    const double *LXX = fa->LXX;
    /* L_XX' beta = c_X */
    for (int i = p - 1; i >= 0; i--) {
        double s = LXX[y + i * px];
        for (int l = i + 1; l < p; l++) s -= LXX[l + i * px] * beta[l];
        beta[i] = s / LXX[i + i * px];
    }
    /* L22' u2 = c_2 - LX2[0:p, ]' beta */
    double *u2 = u + q1;
    for (int r = 0; r < q2; r++) {
        const double *col = fa->LX2 + (size_t) r * px;
        double s = col[y];
        for (int i = 0; i < p; i++) s -= col[i] * beta[i];
        u2[r] = s;
    }
    if (q2 > 0) {
        int one = 1;
        F77_CALL(dtrsv)("L", "T", "N", &q2, fa->L22, &q2, u2, &one FCONE FCONE FCONE);
    }
    /* L11_g' u1_g = c_1g - L21_g' u2 - LX1_g[0:p, ]' beta */
    for (int g = 0; g < xp->nlev[0]; g++) {
        int i0 = xp->A21p[g], m = xp->A21p[g + 1] - i0;
        const double *B = fa->L21x + (size_t) i0 * k1;
        const double *C = fa->LX1 + (size_t) g * k1 * px;
        const double *L = fa->L11 + (size_t) g * k1 * k1;
        double *ug = u + (size_t) g * k1;
        for (int c = 0; c < k1; c++) {
            double s = C[y + c * px];
            for (int i = 0; i < p; i++) s -= C[i + c * px] * beta[i];
            for (int a = 0; a < m; a++) s -= B[a + c * m] * u2[xp->A21i[i0 + a]];
            ug[c] = s;
        }
        for (int c = k1 - 1; c >= 0; c--) {
            double s = ug[c];
            for (int r = c + 1; r < k1; r++) s -= L[r + c * k1] * ug[r];
            ug[c] = s / L[c + c * k1];
        }
    }
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
    case 4: return _("the response is fitted exactly (zero residual sum of squares)");
    default: return _("the Cholesky factorisation failed");
    }
}

SEXP lmm_deviance_R(SEXP sxp, SEXP theta, SEXP reml)
{
    lmm_xprod xp;
    lmm_unpack_xprod(sxp, &xp);
    lmm_arg_finite(theta, lmm_ntheta(&xp), "theta");
    int r = lmm_arg_flag(reml, "REML");
    lmm_factor fa;
    lmm_factor_alloc(&xp, &fa);
    return ScalarReal(lmm_deviance(&xp, REAL(theta), r, &fa));
}

/* Everything the R side needs after the optimum is found. */
SEXP lmm_solution(SEXP sxp, SEXP theta, SEXP sreml)
{
    int nprot = 0, reml = lmm_arg_flag(sreml, "REML");
    lmm_xprod xp;
    lmm_unpack_xprod(sxp, &xp);
    lmm_arg_finite(theta, lmm_ntheta(&xp), "theta");
    lmm_factor fa;
    lmm_factor_alloc(&xp, &fa);
    int code = lmm_factorize(&xp, REAL(theta), &fa);
    if (code != 0) error("%s", factor_failure(code));
    int p = xp.p, q = xp.q1 + xp.q2;
    SEXP beta = PROTECT(allocVector(REALSXP, p)); nprot++;
    SEXP u = PROTECT(allocVector(REALSXP, q)); nprot++;
    lmm_solve_coef(&xp, &fa, REAL(beta), REAL(u));
    SEXP RX = PROTECT(allocMatrix(REALSXP, p, p)); nprot++;
    lmm_rx_from_factor(&xp, &fa, REAL(RX));
    const char *names[] = {"deviance", "beta", "u", "RX", "ldL2", "ldRX2", "pwrss", ""};
    SEXP ans = PROTECT(mkNamed(VECSXP, names)); nprot++;
    SET_VECTOR_ELT(ans, 0, ScalarReal(lmm_deviance_from_factor(&xp, &fa, reml)));
    SET_VECTOR_ELT(ans, 1, beta);
    SET_VECTOR_ELT(ans, 2, u);
    SET_VECTOR_ELT(ans, 3, RX);
    SET_VECTOR_ELT(ans, 4, ScalarReal(fa.ldL2));
    SET_VECTOR_ELT(ans, 5, ScalarReal(fa.ldRX2));
    SET_VECTOR_ELT(ans, 6, ScalarReal(fa.pwrss));
    UNPROTECT(nprot);
    return ans;
}
