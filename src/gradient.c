/* The exact gradient of the profiled deviance of a model with one
 * random-effects term (k columns, any number of levels), with respect to
 * the entries of its relative covariance factor lambda, which need not be
 * triangular (the optimizer's conditioned parameters map to R^{-1} lambda_x).
 * With M_g = lambda' A_g lambda + I per level (A_g = Z_g'Z_g),
 * F_g = lambda' AX_g' (AX_g = [X y]'Z_g) and the Schur complement
 * S = AXX - sum_g F_g' M_g^{-1} F_g of the fixed effects and the response:
 *   ML:   d = sum_g log|M_g| + n log|S| - n log|S_pp|        + const
 *   REML: d = sum_g log|M_g| + (n-p) log|S| - (n-p-1) log|S_pp| + const
 * (S_pp its leading p x p block; |S| = |S_pp| r^2, r^2 the penalised residual
 * sum of squares).  With E = e_r e_c' the derivative of lambda in its entry
 * (r, c), Q_g = M_g^{-1} lambda' A_g, H_g = M_g^{-1} F_g,
 * R_g = AX_g - F_g' Q_g and P = a S^{-1} - b [S_pp^{-1} 0; 0 0] ((a, b) the
 * weights above):
 *   d d / d lambda_rc = sum_g [2 Q_g - 2 H_g P R_g]_{c, r}
 * from d log|M| = 2 tr(M^{-1} lambda' A E) and
 * d S = -sum_g (E' AX_g')' H_g + H_g' E' AX_g' - H_g' dM_g H_g.
 * One pass over the levels builds S, a second one the gradient: about two
 * evaluations' work, where finite differences take 2 k (k + 1) / 2. */
#include <math.h>
#include <string.h>
#include "lapack.h"
#include <Rinternals.h>
#include "model.h"
#include "kernels.h"
#include "lmmfit.h"
#include "theta.h"

size_t lmm_term_gradient_work(const lmm_xprod *xp)
{
    size_t k = (size_t) xp->ncol[0], px = (size_t) xp->px;
    return (size_t) xp->nlev[0] * (k * k + k * px) + 3 * k * k + 4 * k * px + 3 * px * px;
}

/* T = A lambda (A symmetric, k x k, stored full). */
static void a_lambda(int k, const double *lam, const double *A, double *T)
{
    for (int c = 0; c < k; c++)
        for (int r = 0; r < k; r++) {
            double s = 0;
            for (int j = 0; j < k; j++) s += A[r + j * k] * lam[j + c * k];
            T[r + c * k] = s;
        }
}

/* M = lambda' T + I, T = A lambda. */
static void level_matrix(int k, const double *lam, const double *T, double *M)
{
    for (int c = 0; c < k; c++)
        for (int r = 0; r < k; r++) {
            double s = r == c ? 1.0 : 0.0;
            for (int j = 0; j < k; j++) s += lam[j + r * k] * T[j + c * k];
            M[r + c * k] = s;
        }
}

/* B := L^{-1} B (L lower k x k, B k x m) and, with trans, B := L^{-T} B. */
static void tri_solve(int k, const double *L, double *B, int m, int trans)
{
    for (int col = 0; col < m; col++) {
        double *b = B + (size_t) col * k;
        if (!trans) {
            for (int r = 0; r < k; r++) {
                double s = b[r];
                for (int j = 0; j < r; j++) s -= L[r + j * k] * b[j];
                b[r] = s / L[r + r * k];
            }
        } else {
            for (int r = k - 1; r >= 0; r--) {
                double s = b[r];
                for (int j = r + 1; j < k; j++) s -= L[j + r * k] * b[j];
                b[r] = s / L[r + r * k];
            }
        }
    }
}

/* F = lambda' AX' (k x px) for AX (px x k). */
static void beside(int k, int px, const double *lam, const double *AX, double *F)
{
    for (int i = 0; i < px; i++)
        for (int c = 0; c < k; c++) {
            double s = 0;
            for (int r = 0; r < k; r++) s += lam[r + c * k] * AX[i + r * px];
            F[c + i * k] = s;
        }
}

/* P = a S^{-1} - b [S_pp^{-1} 0; 0 0] from the lower Cholesky factor LS of S
 * (px x px; the leading p x p block of LS is the factor of S_pp). */
static int weight_matrix(int px, int p, const double *LS, double a, double b, double *P, double *W)
{
    int info = 0;
    memcpy(W, LS, (size_t) px * px * sizeof(double));
    F77_CALL(dpotri)("L", &px, W, &px, &info FCONE);
    if (info != 0) return 1;
    for (int c = 0; c < px; c++)
        for (int r = c; r < px; r++) P[r + c * px] = P[c + r * px] = a * W[r + c * px];
    if (p == 0) return 0;
    memcpy(W, LS, (size_t) px * px * sizeof(double));
    F77_CALL(dpotri)("L", &p, W, &px, &info FCONE);
    if (info != 0) return 1;
    for (int c = 0; c < p; c++)
        for (int r = c; r < p; r++) {
            double v = b * W[r + c * px];
            P[r + c * px] -= v;
            if (r != c) P[c + r * px] -= v;
        }
    return 0;
}

/* Pass 1: each level's factor L_g (into Ls) and W_g = L_g^{-1} F_g (into
 * Ws), and the factor of S (into LS); 0, or 1 when not positive definite. */
static int schur_pass(const lmm_xprod *xp, const double *lam, double *Ls, double *Ws, double *T,
                      double *LS)
{
    int k = xp->ncol[0], px = xp->px, info = 0;
    size_t kk = (size_t) k * k, kp = (size_t) k * px;
    memcpy(LS, xp->AXX, (size_t) px * px * sizeof(double));
    for (int g = 0; g < xp->nlev[0]; g++) {
        double *L = Ls + g * kk, *Wg = Ws + g * kp;
        a_lambda(k, lam, xp->A11 + g * kk, T);
        level_matrix(k, lam, T, L);
        if (lmm_small_chol(k, L, 0, 0.0)) return 1;
        beside(k, px, lam, xp->AX1 + g * kp, Wg);
        tri_solve(k, L, Wg, px, 0);
        for (int j = 0; j < px; j++)
            for (int i = j; i < px; i++) {
                double s = 0;
                for (int c = 0; c < k; c++) s += Wg[c + i * k] * Wg[c + j * k];
                LS[i + j * px] -= s;
            }
    }
    F77_CALL(dpotrf)("L", &px, LS, &px, &info FCONE);
    return info != 0;
}

int lmm_term_gradient(const lmm_xprod *xp, const double *lam, int reml, double *G, double *work)
{
    int k = xp->ncol[0], px = xp->px, p = xp->p, nlev = xp->nlev[0];
    size_t kk = (size_t) k * k, kp = (size_t) k * px;
    double *Ls = work, *Ws = Ls + (size_t) nlev * kk;
    double *T = Ws + (size_t) nlev * kp, *Q = T + kk, *C = Q + kk;
    double *F = C + kk, *H = F + kp, *HP = H + kp, *R = HP + kp;
    double *S = R + kp, *P = S + (size_t) px * px, *W = P + (size_t) px * px;
    if (schur_pass(xp, lam, Ls, Ws, T, S)) return 1;
    double n = xp->nobs, a = reml ? n - p : n, b = reml ? n - p - 1 : n;
    if (weight_matrix(px, p, S, a, b, P, W)) return 1;
    /* pass 2: the gradient */
    memset(G, 0, kk * sizeof(double));
    for (int g = 0; g < nlev; g++) {
        const double *L = Ls + g * kk, *A = xp->A11 + g * kk, *AX = xp->AX1 + g * kp;
        a_lambda(k, lam, A, T);
        /* Q = M^{-1} lambda' A = M^{-1} T' */
        for (int c = 0; c < k; c++)
            for (int r = 0; r < k; r++) Q[r + c * k] = T[c + r * k];
        tri_solve(k, L, Q, k, 0);
        tri_solve(k, L, Q, k, 1);
        /* H = M^{-1} F = L^{-T} W */
        memcpy(H, Ws + g * kp, kp * sizeof(double));
        tri_solve(k, L, H, px, 1);
        beside(k, px, lam, AX, F);
        /* HP = H P (k x px) */
        for (int j = 0; j < px; j++)
            for (int c = 0; c < k; c++) {
                double s = 0;
                for (int i = 0; i < px; i++) s += H[c + i * k] * P[i + j * px];
                HP[c + j * k] = s;
            }
        /* R = AX - F' Q (px x k) */
        for (int r = 0; r < k; r++)
            for (int i = 0; i < px; i++) {
                double v = AX[i + r * px];
                for (int j = 0; j < k; j++) v -= F[j + i * k] * Q[j + r * k];
                R[i + r * px] = v;
            }
        /* C = 2 Q - 2 HP R, and dd/dlambda_rc = C[c, r] */
        for (int r = 0; r < k; r++)
            for (int c = 0; c < k; c++) {
                double s = 0;
                for (int i = 0; i < px; i++) s += HP[c + i * k] * R[i + r * px];
                C[c + r * k] = 2.0 * Q[c + r * k] - 2.0 * s;
            }
        for (int c = 0; c < k; c++)
            for (int r = 0; r < k; r++) G[r + c * k] += C[c + r * k];
    }
    return 0;
}

/* .Call entry: the exact gradient with respect to theta of a model with one
 * random-effects term (lambda lower triangular: the lower triangle of G). */
SEXP lmm_exact_gradient(SEXP sxp, SEXP theta, SEXP sreml)
{
    lmm_xprod xp;
    lmm_unpack_xprod(sxp, &xp);
    if (xp.nterms != 1) error(_("the exact gradient is for models with one random-effects term"));
    int nt = lmm_ntheta(&xp), reml = lmm_arg_flag(sreml, "REML"), k = xp.ncol[0];
    const double *th = lmm_arg_finite(theta, nt, "theta");
    double *lam = (double *) R_alloc((size_t) k * k, sizeof(double));
    double *G = (double *) R_alloc((size_t) k * k, sizeof(double));
    double *work = (double *) R_alloc(lmm_term_gradient_work(&xp), sizeof(double));
    lmm_theta_unpack(k, th, lam);
    if (lmm_term_gradient(&xp, lam, reml, G, work) != 0)
        error(_("the model is not positive definite at this theta"));
    SEXP ans = PROTECT(allocVector(REALSXP, nt));
    lmm_theta_pack(k, G, REAL(ans));
    UNPROTECT(1);
    return ans;
}
