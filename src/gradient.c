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
#include "gradient.h"

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

/* ---- Every model the factor walks: the selected inverse ----------------
 *
 * The same derivative for several terms, nested stages and a dense tail.
 * With W = A_ZZ Lambda Z (Z = M^{-1}, M = Lambda' A_ZZ Lambda + I),
 * H = M^{-1} Lambda' A_ZX (q x px) and R = A_ZX - A_ZZ Lambda H, the
 * derivative in the (r, c) entry of term j's lambda is
 *   d d / d lambda_j,rc = sum over term j's levels g of [2 W_gg - 2 R_g P H_g']_rc
 * (the one-term formula above, term by term: tr(M^{-1} dM) = 2 tr(W' dLambda)
 * and d S = -(R' dLambda H + H' dLambda' R)).  W_gg = sum_i A_gi lambda_i Z_ig
 * needs Z only where A_ZZ is not zero, which the factor's pattern covers:
 * the selected inverse (selinv.c).  H is a back-substitution with the
 * factor, R one product with A_ZZ.  Matrices beside the random effects are
 * kept px x q, as the factor keeps L^{-1} Lambda' A_ZX. */

/* The global coordinate of rest row r. */
#define REST(xp, r) ((xp)->q1 + (r))

/* The gradient's cost beyond its factorisation, in evaluations: its
 * back-substitutions and products, and the dense tail's inverse by LAPACK's
 * dpotri, slower per flop with the reference BLAS than the factor's own
 * kernel.  Measured: 1.5 without a tail; crossed slopes with tails of 100,
 * 300 and 600 rows 2.5, 4 and 11; InstEval's 1,142 rows 14.4. */
#define MODEL_GRADIENT_BASE_COST 1.5
#define MODEL_GRADIENT_TAIL_ROWS 85.0

double lmm_model_gradient_cost(const lmm_xprod *xp)
{
    return MODEL_GRADIENT_BASE_COST + xp->qd / MODEL_GRADIENT_TAIL_ROWS;
}

void lmm_model_gradient_alloc(const lmm_xprod *xp, lmm_model_gradient_ws *ws)
{
    int kmax = 1, px = xp->px;
    for (int j = 0; j < xp->nterms; j++) if (xp->ncol[j] > kmax) kmax = xp->ncol[j];
    size_t pq = (size_t) px * (xp->q1 + xp->q2);
    lmm_selinv_alloc(xp, &ws->si);
    ws->Ht = (double *) R_alloc(pq, sizeof(double));
    ws->Vt = (double *) R_alloc(pq, sizeof(double));
    ws->Rt = (double *) R_alloc(pq, sizeof(double));
    ws->PHt = (double *) R_alloc(pq, sizeof(double));
    ws->P = (double *) R_alloc((size_t) 2 * px * px, sizeof(double));
    /* the tail's scratch: qd x kmax, and a sparse tail's solve (qd (px + 1)) */
    size_t nal = (size_t) xp->qd * (kmax > px + 1 ? kmax : px + 1);
    ws->AL = (double *) R_alloc(nal > 0 ? nal : 1, sizeof(double));
}

/* X := X L^{-1} for X px x k (leading dimension px), L lower k x k. */
static void right_solve_l(int px, int k, const double *L, double *X)
{
    for (int c = k - 1; c >= 0; c--) {
        double *xc = X + (size_t) c * px, d = L[c + c * k];
        for (int t = c + 1; t < k; t++) {
            double l = L[t + c * k];
            const double *xt = X + (size_t) t * px;
            for (int i = 0; i < px; i++) xc[i] -= xt[i] * l;
        }
        for (int i = 0; i < px; i++) xc[i] /= d;
    }
}

/* One level of the back-substitution: Ht_g := (Ht_g - Ht_C B) L^{-1}. */
static void back_level_cols(int px, int k, const double *L, const double *B, int m,
                            const int *rows, const double *Ht2, double *Hg)
{
    for (int c = 0; c < k; c++)
        for (int a = 0; a < m; a++) {
            double b = B[a + (size_t) c * m];
            if (b == 0.0) continue;
            const double *h = Ht2 + (size_t) rows[a] * px;
            for (int i = 0; i < px; i++) Hg[i + (size_t) c * px] -= h[i] * b;
        }
    right_solve_l(px, k, L, Hg);
}

/* Ht = H' = (L^{-T} L^{-1} Lambda' A_ZX)': the factor's solved columns
 * carried back through the tail, the later stages and stage 0 (work: 2 qd
 * doubles, for a sparse tail). */
static void back_substitute(const lmm_xprod *xp, const lmm_factor *fa, double *Ht, double *work)
{
    int px = xp->px, q1 = xp->q1, qd = xp->qd;
    memcpy(Ht, fa->LX1, (size_t) px * q1 * sizeof(double));
    if (xp->q2 > 0) memcpy(Ht + (size_t) px * q1, fa->LX2, (size_t) px * xp->q2 * sizeof(double));
    double *Ht2 = Ht + (size_t) px * q1, *Htail = Ht2 + (size_t) xp->dstart * px;
    if (qd > 0 && fa->tail) {
        /* one column of H at a time through the sparse tail's factor */
        double *x = work, *w = work + qd;
        for (int i = 0; i < px; i++) {
            for (int r = 0; r < qd; r++) x[r] = Htail[i + (size_t) r * px];
            lmm_tail_solve_lt(fa->tail, fa->tailbuf, x, w);
            for (int r = 0; r < qd; r++) Htail[i + (size_t) r * px] = x[r];
        }
    } else if (qd > 0) {
        double one = 1.0;
        F77_CALL(dtrsm)("R", "L", "N", "N", &px, &qd, &one, fa->Ltail, &qd, Htail, &px
                        FCONE FCONE FCONE FCONE);
    }
    for (int s = xp->nstage - 1; s >= 0; s--) {
        const lmm_stage *st = xp->stage + s;
        int k = st->k;
        for (int h = 0; h < st->nlev; h++) {
            int m = st->Cp[h + 1] - st->Cp[h];
            const double *L = s == 0 ? fa->L11 + (size_t) h * k * k : fa->L22 + st->tiles + (size_t) h * k * k;
            const double *B = s == 0 ? fa->L21x + (size_t) st->Cp[h] * k
                                     : fa->L22 + st->coup + (size_t) st->Cp[h] * k;
            double *Hg = s == 0 ? Ht + (size_t) h * k * px : Ht2 + (size_t) (st->off + h * k) * px;
            back_level_cols(px, k, L, B, m, st->Ci + st->Cp[h], Ht2, Hg);
        }
    }
}

/* The lambda of the term holding global coordinate u, and u's position in
 * its tile. */
static const double *coord_lambda(const lmm_xprod *xp, const lmm_factor *fa, int u, int *term, int *pos)
{
    if (u < xp->q1) { *term = 0; *pos = u % xp->ncol[0]; }
    else { *term = xp->rterm[u - xp->q1]; *pos = xp->rpos[u - xp->q1]; }
    return fa->lambda + fa->lamoff[*term];
}

/* Vt = (Lambda H)' = Ht Lambda' tile by tile (lambda lower triangular). */
static void lambda_cols(const lmm_xprod *xp, const lmm_factor *fa, const double *Ht, double *Vt)
{
    int px = xp->px, q = xp->q1 + xp->q2;
    for (int u = 0; u < q;) {
        int j, pos;
        const double *lam = coord_lambda(xp, fa, u, &j, &pos);
        int k = xp->ncol[j];
        for (int p = 0; p < k; p++) {
            double *v = Vt + (size_t) (u + p) * px;
            for (int i = 0; i < px; i++) v[i] = 0.0;
            for (int pp = 0; pp <= p; pp++) {
                double l = lam[p + pp * k];
                const double *h = Ht + (size_t) (u + pp) * px;
                for (int i = 0; i < px; i++) v[i] += h[i] * l;
            }
        }
        u += k;
    }
}

/* Yt -= Vt A_ZZ over A_ZZ's layout: every level's tile and the rows beside
 * it (both ways), then the dense tail (lower triangle). */
static void minus_times_a(const lmm_xprod *xp, const double *Vt, double *Yt)
{
    int px = xp->px;
    for (int s = 0; s < xp->nstage; s++) {
        const lmm_stage *st = xp->stage + s;
        int k = st->k;
        for (int h = 0; h < st->nlev; h++) {
            int m = st->Cp[h + 1] - st->Cp[h], g0 = s == 0 ? h * k : REST(xp, st->off + h * k);
            const int *rows = st->Ci + st->Cp[h];
            const double *a = s == 0 ? xp->A11 + (size_t) h * k * k : xp->A22 + st->tiles + (size_t) h * k * k;
            const double *Ab = s == 0 ? xp->A21x + (size_t) st->Cp[h] * k
                                      : xp->A22 + st->coup + (size_t) st->Cp[h] * k;
            for (int c = 0; c < k; c++) {
                double *y = Yt + (size_t) (g0 + c) * px;
                for (int cp = 0; cp < k; cp++) {
                    double v = a[cp + c * k];
                    const double *x = Vt + (size_t) (g0 + cp) * px;
                    for (int i = 0; i < px; i++) y[i] -= x[i] * v;
                }
                for (int e = 0; e < m; e++) {
                    double v = Ab[e + (size_t) c * m];
                    if (v == 0.0) continue;
                    const double *x = Vt + (size_t) REST(xp, rows[e]) * px, *xg = Vt + (size_t) (g0 + c) * px;
                    double *yr = Yt + (size_t) REST(xp, rows[e]) * px;
                    for (int i = 0; i < px; i++) { y[i] -= x[i] * v; yr[i] -= xg[i] * v; }
                }
            }
        }
    }
    int qd = xp->qd;
    if (qd > 0) {
        double one = 1.0, mone = -1.0;
        size_t t0 = (size_t) REST(xp, xp->dstart) * px;
        F77_CALL(dsymm)("R", "L", &px, &qd, &mone, xp->A22 + xp->doff, &qd, Vt + t0, &px, &one,
                        Yt + t0, &px FCONE FCONE);
    }
}

/* A symmetric matrix's (a, b) entry from its lower triangle. */
static inline double sym_at(const double *X, int ld, int a, int b)
{
    return a >= b ? X[a + (size_t) b * ld] : X[b + (size_t) a * ld];
}

/* W_gg += A_{g,i} lambda_i Z_{i,g} and W_ii += A_{i,g} lambda_g Z_{g,i} for
 * one level g (tile k, term s) and the rows i beside it (Ab, Zb: m x k),
 * with the level's own tile; W per term at lamoff. */
static void level_w(const lmm_xprod *xp, const lmm_factor *fa, int s, int k, const double *a,
                    const double *Zt, int m, const int *rows, const double *Ab, const double *Zb,
                    double *scratch, double *T, double *W)
{
    const double *lam = fa->lambda + fa->lamoff[s];
    double *Ws = W + fa->lamoff[s];
    /* T = a lambda; Ws += T Zt */
    lmm_times_lower(k, k, a, lam, T);
    for (int c = 0; c < k; c++)
        for (int r = 0; r < k; r++) {
            double v = 0;
            for (int t = 0; t < k; t++) v += T[r + t * k] * Zt[t + c * k];
            Ws[r + c * k] += v;
        }
    if (m == 0) return;
    /* scratch = Ab lambda (m x k) */
    lmm_times_lower(m, k, Ab, lam, scratch);
    for (int e0 = 0; e0 < m;) {
        int j = xp->rterm[rows[e0]], kj = xp->ncol[j];
        const double *lj = fa->lambda + fa->lamoff[j];
        double *Wj = W + fa->lamoff[j];
        /* Wj += (Ab lambda)_blk Zb_blk' */
        for (int pp = 0; pp < kj; pp++)
            for (int p = 0; p < kj; p++) {
                double v = 0;
                for (int c = 0; c < k; c++)
                    v += scratch[e0 + p + (size_t) c * m] * Zb[e0 + pp + (size_t) c * m];
                Wj[p + pp * kj] += v;
            }
        /* T = lambda_j Zb_blk (kj x k); Ws += Ab_blk' T */
        for (int c = 0; c < k; c++)
            for (int p = 0; p < kj; p++) {
                double v = 0;
                for (int t = 0; t <= p; t++) v += lj[p + t * kj] * Zb[e0 + t + (size_t) c * m];
                T[p + c * kj] = v;
            }
        for (int c = 0; c < k; c++)
            for (int r = 0; r < k; r++) {
                double v = 0;
                for (int p = 0; p < kj; p++) v += Ab[e0 + p + (size_t) r * m] * T[p + c * kj];
                Ws[r + c * k] += v;
            }
        e0 += kj;
    }
}

/* W over the dense tail: W_ii += sum_i' A_{i,i'} lambda_i' Z_{i',i} for
 * every tail tile i (AL: qd x kmax scratch). */
static void tail_w(const lmm_xprod *xp, const lmm_factor *fa, const lmm_selinv_ws *si, double *AL,
                   double *W)
{
    int qd = xp->qd, d0 = xp->dstart;
    const double *A = xp->A22 + xp->doff, *Z = si->Z22 + xp->doff;
    for (int s0 = 0; s0 < qd;) {
        int j = xp->rterm[d0 + s0], kq = xp->ncol[j];
        const double *lj = fa->lambda + fa->lamoff[j];
        /* AL = A[, tile s0] lambda_j (qd x kq) */
        for (int c = 0; c < kq; c++)
            for (int a = 0; a < qd; a++) {
                double v = 0;
                for (int t = c; t < kq; t++) v += sym_at(A, qd, a, s0 + t) * lj[t + c * kq];
                AL[a + (size_t) c * qd] = v;
            }
        for (int a = 0; a < qd; a++) {
            int ja = xp->rterm[d0 + a], ka = xp->ncol[ja], r = xp->rpos[d0 + a], sa = a - r;
            double *Wa = W + fa->lamoff[ja];
            for (int c = 0; c < ka; c++) {
                double v = 0;
                for (int t = 0; t < kq; t++) v += AL[a + (size_t) t * qd] * sym_at(Z, qd, s0 + t, sa + c);
                Wa[r + c * ka] += v;
            }
        }
        s0 += kq;
    }
}

/* The weights (a, b) of log|S| and log|S_pp| in the criterion, to first
 * order: profiled, as above; with sigma fixed, pwrss / sigma^2 enters as
 * (pwrss / sigma^2) (log|S| - log|S_pp|) and REML's log|S_pp| once more. */
static void schur_weights(const lmm_xprod *xp, const lmm_factor *fa, int reml, double sigma,
                          double *a, double *b)
{
    double n = xp->nobs, p = xp->p;
    if (sigma > 0) {
        *a = fa->pwrss / (sigma * sigma);
        *b = *a - (reml ? 1.0 : 0.0);
    } else {
        *a = reml ? n - p : n;
        *b = reml ? n - p - 1 : n;
    }
}

void lmm_logdet_gradient(const lmm_xprod *xp, const lmm_factor *fa, lmm_selinv_ws *si, double *AL,
                         double *G)
{
    /* W into G, level by level and over the tail */
    memset(G, 0, (size_t) fa->lamoff[xp->nterms] * sizeof(double));
    for (int s = 0; s < xp->nstage; s++) {
        const lmm_stage *st = xp->stage + s;
        int k = st->k;
        for (int h = 0; h < st->nlev; h++) {
            int m = st->Cp[h + 1] - st->Cp[h];
            size_t tk = (size_t) h * k * k, bk = (size_t) st->Cp[h] * k;
            const double *A = s == 0 ? xp->A11 + tk : xp->A22 + st->tiles + tk;
            const double *Zt = s == 0 ? si->Z11 + tk : si->Z22 + st->tiles + tk;
            const double *Ab = s == 0 ? xp->A21x + bk : xp->A22 + st->coup + bk;
            const double *Zb = s == 0 ? si->Z21x + bk : si->Z22 + st->coup + bk;
            level_w(xp, fa, s, k, A, Zt, m, st->Ci + st->Cp[h], Ab, Zb, si->Bt, si->T, G);
        }
    }
    if (xp->qd > 0) tail_w(xp, fa, si, AL, G);
    for (int e = 0; e < fa->lamoff[xp->nterms]; e++) G[e] *= 2.0;
}

int lmm_model_gradient(const lmm_xprod *xp, const lmm_factor *fa, int reml, double sigma,
                       lmm_model_gradient_ws *ws, double *G)
{
    int px = xp->px, p = xp->p, q = xp->q1 + xp->q2;
    lmm_selinv_ws *si = &ws->si;
    if (fa->pwrss <= 0 || lmm_selinv(xp, fa, si) != 0) return 1;
    double a, b;
    schur_weights(xp, fa, reml, sigma, &a, &b);
    if (weight_matrix(px, p, fa->LXX, a, b, ws->P, ws->P + (size_t) px * px)) return 1;
    /* H, Lambda H, R = A_ZX - A_ZZ Lambda H, P H */
    back_substitute(xp, fa, ws->Ht, ws->AL);
    lambda_cols(xp, fa, ws->Ht, ws->Vt);
    memcpy(ws->Rt, xp->AX1, (size_t) px * xp->q1 * sizeof(double));
    if (xp->q2 > 0) memcpy(ws->Rt + (size_t) px * xp->q1, xp->AX2, (size_t) px * xp->q2 * sizeof(double));
    minus_times_a(xp, ws->Vt, ws->Rt);
    double one = 1.0, zero = 0.0;
    F77_CALL(dgemm)("N", "N", &px, &q, &px, &one, ws->P, &px, ws->Ht, &px, &zero, ws->PHt, &px
                    FCONE FCONE);
    /* G = 2 W - 2 sum R_g P H_g', tile by tile */
    lmm_logdet_gradient(xp, fa, si, ws->AL, G);
    for (int u = 0; u < q;) {
        int j, pos;
        coord_lambda(xp, fa, u, &j, &pos);
        int k = xp->ncol[j];
        double *Gj = G + fa->lamoff[j];
        for (int c = 0; c < k; c++)
            for (int r = 0; r < k; r++) {
                const double *rr = ws->Rt + (size_t) (u + r) * px, *ph = ws->PHt + (size_t) (u + c) * px;
                double v = 0;
                for (int i = 0; i < px; i++) v += rr[i] * ph[i];
                Gj[r + c * k] -= 2.0 * v;
            }
        u += k;
    }
    return 0;
}

/* .Call entry: the exact gradient with respect to theta (each lambda lower
 * triangular: the lower triangle of its G) of the profiled criterion, or
 * with sigma (a positive number, else NULL) of the criterion at that
 * residual sd: with `selected` FALSE, one term and sigma profiled, the
 * one-term formula; otherwise the selected inverse's. */
SEXP lmm_exact_gradient(SEXP sxp, SEXP theta, SEXP sreml, SEXP sselected, SEXP ssigma)
{
    lmm_xprod xp;
    lmm_unpack_xprod(sxp, &xp);
    int nt = lmm_ntheta(&xp), reml = lmm_arg_flag(sreml, "REML");
    double sigma = 0;
    if (!isNull(ssigma)) {
        sigma = isReal(ssigma) && XLENGTH(ssigma) == 1 ? REAL(ssigma)[0] : NA_REAL;
        if (!(sigma > 0) || !R_FINITE(sigma)) error(_("'sigma' must be NULL or one positive number"));
    }
    int selected = lmm_arg_flag(sselected, "selected") || xp.nterms > 1 || sigma > 0;
    const double *th = lmm_arg_finite(theta, nt, "theta");
    SEXP ans = PROTECT(allocVector(REALSXP, nt));
    if (!selected) {
        int k = xp.ncol[0];
        double *lam = (double *) R_alloc((size_t) k * k, sizeof(double));
        double *G = (double *) R_alloc((size_t) k * k, sizeof(double));
        double *work = (double *) R_alloc(lmm_term_gradient_work(&xp), sizeof(double));
        lmm_theta_unpack(k, th, lam);
        if (lmm_term_gradient(&xp, lam, reml, G, work) != 0)
            error(_("the model is not positive definite at this theta"));
        lmm_theta_pack(k, G, REAL(ans));
        UNPROTECT(1);
        return ans;
    }
    lmm_factor fa;
    lmm_factor_alloc(&xp, &fa);
    if (lmm_factorize(&xp, th, &fa) != 0) error(_("the model is not positive definite at this theta"));
    lmm_model_gradient_ws ws;
    lmm_model_gradient_alloc(&xp, &ws);
    double *G = (double *) R_alloc((size_t) fa.lamoff[xp.nterms], sizeof(double));
    if (lmm_model_gradient(&xp, &fa, reml, sigma, &ws, G) != 0)
        error(_("the model is not positive definite at this theta"));
    for (int j = 0, i = 0; j < xp.nterms; j++) {
        int k = xp.ncol[j];
        lmm_theta_pack(k, G + fa.lamoff[j], REAL(ans) + i);
        i += k * (k + 1) / 2;
    }
    UNPROTECT(1);
    return ans;
}
