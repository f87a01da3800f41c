/* The covariance parameters theta: one place for their layout, their bounds,
 * the map to each term's relative covariance factor lambda (lower
 * triangular, k x k), and the two maps the optimizer needs on top of that:
 *
 *   - the canonical form.  When a diagonal entry of lambda is zero, the
 *     entries below it are not identified: the covariance lambda lambda'
 *     is the same for many of them.  The canonical lambda is the Cholesky
 *     factor of lambda lambda' with a zero column wherever its pivot is
 *     zero, so that a boundary point has one representation (and, at it, the
 *     directions that leave the boundary are the column's entries).
 *   - the conditioning.  Each term's columns are whitened by their Gram
 *     matrix over all rows (Z_j' Z_j / n = R_j' R_j, R_j upper triangular),
 *     so that the optimizer works on parameters that do not depend on the
 *     units or the origin of a slope covariate: with Zt = Z R^{-1} the model's
 *     covariance Sigma = lambda lambda' is R^{-1} Sigma_t R^{-T}. */
#include <math.h>
#include <string.h>
#include "lapack.h"
#include <Rinternals.h>
#include "model.h"
#include "lmmfit.h"
#include "theta.h"
#include "kernels.h"

/* A pivot of a relative covariance below this fraction of its diagonal is
 * rounding, not variance: lambda lambda' loses about 1e-16 relative per
 * product, and a correlation of 1 - 1e-13 is beyond what any data identify. */
#define PSD_PIVOT_TOL 1e-13

int lmm_ntheta(const lmm_xprod *xp)
{
    int nt = 0;
    for (int j = 0; j < xp->nterms; j++) nt += xp->ncol[j] * (xp->ncol[j] + 1) / 2;
    return nt;
}

/* Diagonal elements of each lambda are bounded below by zero, the rest are free. */
void lmm_theta_lower(const lmm_xprod *xp, double *lower)
{
    int i = 0;
    for (int j = 0; j < xp->nterms; j++) {
        int k = xp->ncol[j];
        for (int c = 0; c < k; c++)
            for (int r = c; r < k; r++) lower[i++] = (r == c) ? 0.0 : R_NegInf;
    }
}

void lmm_theta_unpack(int k, const double *theta, double *lam)
{
    for (int c = 0, i = 0; c < k; c++)
        for (int r = 0; r < k; r++) lam[r + c * k] = (r >= c) ? theta[i++] : 0.0;
}

void lmm_theta_pack(int k, const double *lam, double *theta)
{
    for (int c = 0, i = 0; c < k; c++)
        for (int r = c; r < k; r++) theta[i++] = lam[r + c * k];
}

/* S = M M' (k x k, M full). */
static void outer_self(int k, const double *M, double *S)
{
    for (int c = 0; c < k; c++)
        for (int r = c; r < k; r++) {
            double s = 0;
            for (int m = 0; m < k; m++) s += M[r + m * k] * M[c + m * k];
            S[r + c * k] = S[c + r * k] = s;
        }
}

/* One term's theta replaced by its canonical form; returns 1 when the term
 * has a zero diagonal entry (only such terms are touched). */
int lmm_theta_canonical_term(int k, double *theta, double *work)
{
    int boundary = 0;
    for (int c = 0, i = 0; c < k; i += k - c, c++) boundary |= theta[i] == 0.0;
    if (!boundary) return 0;
    double *lam = work, *S = work + k * k;
    lmm_theta_unpack(k, theta, lam);
    outer_self(k, lam, S);
    lmm_small_chol(k, S, 1, PSD_PIVOT_TOL);
    lmm_theta_pack(k, S, theta);
    return 1;
}

/* The conditioning of one term: R (k x k upper triangular, column major)
 * with Z_j' Z_j / nobs = R' R, from the cross-products (the first term's
 * tiles, or the diagonal tiles of the rest block).  Returns 0 when R is the
 * identity (intercept-only terms: nothing to condition), else 1; a Gram
 * matrix that is not positive definite (collinear columns) gets its
 * diagonal's square roots, and a zero column a scale of 1. */
int lmm_term_conditioner(const lmm_xprod *xp, int j, double *R)
{
    int k = xp->ncol[j];
    memset(R, 0, (size_t) k * k * sizeof(double));
    if (j == 0) {
        for (int g = 0; g < xp->nlev[0]; g++) {
            const double *a = xp->A11 + (size_t) g * k * k;
            for (int e = 0; e < k * k; e++) R[e] += a[e];
        }
    } else if (j < xp->nstage) {
        const lmm_stage *st = xp->stage + j;
        for (int h = 0; h < st->nlev; h++) {
            const double *a = xp->A22 + st->tiles + (size_t) h * k * k;
            for (int e = 0; e < k * k; e++) R[e] += a[e];
        }
    } else {
        int qd = xp->qd;
        const double *D = xp->A22 + xp->doff;
        for (int r = xp->dstart; r < xp->q2; r++) {
            if (xp->rterm[r] != j) continue;
            int c = xp->rpos[r], r0 = r - c - xp->dstart;
            for (int cp = 0; cp < k; cp++)
                R[c + cp * k] += D[(r - xp->dstart) + (size_t) (r0 + cp) * qd];
        }
    }
    double n = xp->nobs > 0 ? (double) xp->nobs : 1.0;
    for (int e = 0; e < k * k; e++) R[e] /= n;
    double diag[LMM_MAX_COND_K];
    if (k > LMM_MAX_COND_K) return 0;
    for (int c = 0; c < k; c++) diag[c] = R[c + c * k];
    int info = 0;
    F77_CALL(dpotrf)("U", &k, R, &k, &info FCONE);
    if (info != 0) {
        memset(R, 0, (size_t) k * k * sizeof(double));
        for (int c = 0; c < k; c++) R[c + c * k] = diag[c] > 0 ? sqrt(diag[c]) : 1.0;
    }
    for (int c = 0; c < k; c++)
        for (int r = c + 1; r < k; r++) R[r + c * k] = 0.0;
    int identity = 1;
    for (int c = 0; c < k; c++)
        for (int r = 0; r <= c; r++) identity &= R[r + c * k] == (r == c ? 1.0 : 0.0);
    return !identity;
}

/* M := R^{-1} M (k x k), R the upper triangular conditioner. */
void lmm_conditioner_solve(int k, const double *R, double *M)
{
    for (int col = 0; col < k; col++)
        for (int r = k - 1; r >= 0; r--) {
            double s = M[r + col * k];
            for (int c = r + 1; c < k; c++) s -= R[r + c * k] * M[c + col * k];
            M[r + col * k] = s / R[r + r * k];
        }
}

/* G := R^{-T} G (k x k): a gradient in lambda = R^{-1} lambda_t carried to
 * lambda_t. */
void lmm_conditioner_solve_t(int k, const double *R, double *G)
{
    for (int col = 0; col < k; col++)
        for (int r = 0; r < k; r++) {
            double v = G[r + col * k];
            for (int c = 0; c < r; c++) v -= R[c + r * k] * G[c + col * k];
            G[r + col * k] = v / R[r + r * k];
        }
}

/* theta of a term from conditioned parameters tt: lambda is the canonical
 * factor of R^{-1} lambda_t lambda_t' R^{-T}.  work: 2 k^2. */
void lmm_theta_from_conditioned(int k, const double *R, const double *tt, double *theta,
                                double *work)
{
    double *M = work;
    lmm_theta_unpack(k, tt, M);
    lmm_conditioner_solve(k, R, M);
    lmm_theta_of_lambda(k, M, theta, work + k * k);
}

/* theta of a term from any factor lam of its relative covariance: the
 * canonical factor of lam lam'.  work: k^2. */
void lmm_theta_of_lambda(int k, const double *lam, double *theta, double *work)
{
    outer_self(k, lam, work);
    lmm_small_chol(k, work, 1, PSD_PIVOT_TOL);
    lmm_theta_pack(k, work, theta);
}

int lmm_theta_of_lambdas(int nterms, const int *ncol, const int *lamoff, const double *lam, int as_is,
                         double *th, double *work)
{
    int changed = 0;
    for (int j = 0, i = 0; j < nterms; j++) {
        int k = ncol[j];
        const double *l = lam + lamoff[j];
        int tri = 1;
        for (int c = 0; c < k && tri; c++) {
            tri = l[c + c * k] > 0;
            for (int r = 0; r < c && tri; r++) tri = l[r + c * k] == 0.0;
        }
        if (as_is && tri) {
            lmm_theta_pack(k, l, th + i);
            changed = 1;
        } else lmm_theta_of_lambda(k, l, th + i, work);
        i += k * (k + 1) / 2;
    }
    return changed;
}

/* The derivative G in lam of a function of lam lam' from its derivative G0
 * in the canonical factor lam0 of lam lam' (k x k each).  lam = lam0 Q with
 * Q orthogonal, and the derivative is 2 Psi lam for the symmetric
 * derivative Psi in lam lam', so G = G0 Q.  On the columns J where lam0 has
 * a pivot Q's rows are lam0[J, J]^{-1} lam[J, ]; the others meet zero
 * columns of G0 (Psi times a zero column).  work: k^2. */
void lmm_lambda_gradient_at(int k, const double *lam, const double *lam0, const double *G0,
                            double *G, double *work)
{
    double *Y = work;
    for (int r = 0; r < k; r++) {
        double d = lam0[r + r * k];
        for (int c = 0; c < k; c++) {
            if (!(d > 0)) { Y[r + c * k] = 0.0; continue; }
            double v = lam[r + c * k];
            for (int t = 0; t < r; t++) v -= lam0[r + t * k] * Y[t + c * k];
            Y[r + c * k] = v / d;
        }
    }
    for (int c = 0; c < k; c++)
        for (int r = 0; r < k; r++) {
            double v = 0;
            for (int t = 0; t < k; t++) if (lam0[t + t * k] > 0) v += G0[r + t * k] * Y[t + c * k];
            G[r + c * k] = v;
        }
}

/* The inverse map: conditioned parameters of a term from its theta
 * (lambda_t the canonical factor of R lambda lambda' R'). */
void lmm_theta_to_conditioned(int k, const double *R, const double *theta, double *tt,
                              double *work)
{
    double *M = work, *S = work + k * k;
    lmm_theta_unpack(k, theta, M);
    /* M := R M */
    for (int col = 0; col < k; col++)
        for (int r = 0; r < k; r++) {
            double s = 0;
            for (int c = r; c < k; c++) s += R[r + c * k] * M[c + col * k];
            M[r + col * k] = s;
        }
    outer_self(k, M, S);
    lmm_small_chol(k, S, 1, PSD_PIVOT_TOL);
    lmm_theta_pack(k, S, tt);
}

/* .Call entry: theta mapped term by term through the conditioners Rs (a
 * list, NULL for a term left as it is): to the conditioned parameters when
 * to_space is TRUE, back to theta otherwise. */
SEXP lmm_theta_transform(SEXP stheta, SEXP sncol, SEXP sRs, SEXP sto)
{
    if (!isInteger(sncol) || !isNewList(sRs) || LENGTH(sRs) != LENGTH(sncol))
        error(_("'ncol' must be an integer vector and 'R' a list, one entry per term"));
    int nterms = LENGTH(sncol), to = lmm_arg_flag(sto, "to_space"), nt = 0, kmax = 1;
    const int *ncol = INTEGER(sncol);
    for (int j = 0; j < nterms; j++) {
        if (ncol[j] < 1 || ncol[j] > LMM_MAX_COND_K) error(_("'ncol' out of range"));
        nt += ncol[j] * (ncol[j] + 1) / 2;
        if (ncol[j] > kmax) kmax = ncol[j];
    }
    const double *theta = lmm_arg_finite(stheta, nt, "theta");
    SEXP ans = PROTECT(allocVector(REALSXP, nt));
    double *out = REAL(ans), *work = (double *) R_alloc((size_t) 2 * kmax * kmax, sizeof(double));
    for (int j = 0, i = 0; j < nterms; i += ncol[j] * (ncol[j] + 1) / 2, j++) {
        int k = ncol[j];
        SEXP Rj = VECTOR_ELT(sRs, j);
        if (isNull(Rj)) {
            memcpy(out + i, theta + i, (size_t) k * (k + 1) / 2 * sizeof(double));
            continue;
        }
        const double *R = lmm_arg_finite(Rj, (R_xlen_t) k * k, "R");
        for (int c = 0; c < k; c++)
            if (!(R[c + c * k] > 0)) error(_("a conditioner's diagonal must be positive"));
        if (to) lmm_theta_to_conditioned(k, R, theta + i, out + i, work);
        else lmm_theta_from_conditioned(k, R, theta + i, out + i, work);
    }
    UNPROTECT(1);
    return ans;
}
