/* Quantities behind Satterthwaite's denominator degrees of freedom.
 *
 * The variance parameters are varpar = (theta, sigma).  For them the C core
 * evaluates, from the cross-products alone,
 *   vcov(beta) = sigma^2 (R_X' R_X)^{-1}
 * and the deviance that is not profiled over sigma:
 *   ML:   d = ldL2 + pwrss / sigma^2 + n log(2 pi sigma^2)
 *   REML: d = ldL2 + ldRX2 + pwrss / sigma^2 + (n - p) log(2 pi sigma^2)
 * (minus the sum of log prior weights), with pwrss the penalised residual sum
 * of squares at the conditional estimates for theta.  At the estimates these
 * equal the profiled criteria.  The Jacobian of vec(vcov(beta)) and the
 * Hessian of d with respect to varpar are central finite differences refined
 * by Richardson extrapolation (steps h, h/2, h/4, h/8), all in one call.  The
 * Hessian needs large steps (default 10% of each parameter): its rounding
 * error grows as 1/h^2 and the extrapolation removes the truncation error. */
#include <math.h>
#include <string.h>
#include "lapack.h"
#include <Rinternals.h>
#include "model.h"
#include "lmmfit.h"

#define RICH_LEVELS 4

/* vcov(beta) (p x p, full storage) into V when V is not NULL and the
 * deviance into *dev, at vp = (theta, sigma).  Returns 0 on success. */
static int vp_eval(const lmm_xprod *xp, lmm_factor *fa, const double *vp, int reml,
                   double *V, double *dev)
{
    int nt = lmm_ntheta(xp), p = xp->p, px = xp->px;
    double sigma = vp[nt];
    if (!(sigma > 0)) return 10;
    int code = lmm_factorize(xp, vp, fa);
    if (code != 0) return code;
    *dev = lmm_deviance_at_sigma(xp, fa, reml, sigma);
    double s2 = sigma * sigma;
    if (V && p > 0) {
        for (int c = 0; c < p; c++)
            for (int r = 0; r < p; r++) V[r + c * p] = (r >= c) ? fa->LXX[r + c * px] : 0.0;
        int info;
        F77_CALL(dpotri)("L", &p, V, &p, &info FCONE);
        if (info != 0) return 11;
        for (int c = 0; c < p; c++)
            for (int r = c; r < p; r++) {
                double v = V[r + c * p] * s2;
                V[r + c * p] = v;
                V[c + r * p] = v;
            }
    }
    return 0;
}

static const char *vp_failure(int code)
{
    switch (code) {
    case 10: return _("the residual standard deviation must be positive");
    case 11: return _("the fixed-effects cross-product is singular");
    case 3: return _("the fixed-effects model matrix is rank deficient at these parameters");
    default: return _("the Cholesky factorisation failed at these variance parameters");
    }
}

/* F(vp) = (vec vcov(beta), deviance): m = p * p + 1 values. */
typedef struct {
    const lmm_xprod *xp;
    lmm_factor *fa;
    int reml, m, nv;
    double *work;   /* nv */
} vp_fun;

static void vp_F(vp_fun *f, const double *x, double *out)
{
    memcpy(f->work, x, (size_t) f->nv * sizeof(double));
    int code = vp_eval(f->xp, f->fa, f->work, f->reml, out, out + f->m - 1);
    if (code != 0)
        error(_("computing the derivatives of vcov(beta): %s"), vp_failure(code));
}

/* Richardson extrapolation of a table of estimates T[k] (steps h0 / 2^k) whose
 * error is a series in h^2; each T[k] is a vector of length m.  Result in T[0]. */
static void richardson(double **T, int levels, int m)
{
    for (int lev = 1; lev < levels; lev++) {
        double f = pow(4.0, lev);
        for (int k = 0; k + lev < levels; k++)
            for (int i = 0; i < m; i++) T[k][i] = (f * T[k + 1][i] - T[k][i]) / (f - 1.0);
    }
}

/* Jacobian (m x nv) of F and Hessian (nv x nv) of its last component. */
static void vp_derivs(vp_fun *f, const double *x0, const double *rel, double *jac, double *hess)
{
    int nv = f->nv, m = f->m;
    double *x = (double *) R_alloc((size_t) nv, sizeof(double));
    double *h0 = (double *) R_alloc((size_t) nv, sizeof(double));
    double *g0 = (double *) R_alloc((size_t) nv, sizeof(double));
    double *F0 = (double *) R_alloc((size_t) m, sizeof(double));
    double *Fp = (double *) R_alloc((size_t) m, sizeof(double));
    double *Fm = (double *) R_alloc((size_t) m, sizeof(double));
    double *T[RICH_LEVELS], *D[RICH_LEVELS];
    for (int k = 0; k < RICH_LEVELS; k++) {
        T[k] = (double *) R_alloc((size_t) m, sizeof(double));
        D[k] = (double *) R_alloc(1, sizeof(double));
    }
    /* relative steps, absolute 1e-4 at (near) zero: small ones for the first
     * derivatives, large ones for the second (their rounding error grows as 1/h^2) */
    for (int i = 0; i < nv; i++) {
        h0[i] = fabs(x0[i]) > 1e-4 ? rel[1] * fabs(x0[i]) : 1e-4;
        g0[i] = fabs(x0[i]) > 1e-4 ? rel[0] * fabs(x0[i]) : 1e-4;
    }
    vp_F(f, x0, F0);
    double d0 = F0[m - 1];

    /* first derivatives */
    for (int i = 0; i < nv; i++) {
        for (int k = 0; k < RICH_LEVELS; k++) {
            double h = g0[i] / (double) (1 << k);
            memcpy(x, x0, (size_t) nv * sizeof(double));
            x[i] = x0[i] + h;
            vp_F(f, x, Fp);
            x[i] = x0[i] - h;
            vp_F(f, x, Fm);
            for (int l = 0; l < m; l++) T[k][l] = (Fp[l] - Fm[l]) / (2.0 * h);
        }
        richardson(T, RICH_LEVELS, m);
        memcpy(jac + (size_t) i * m, T[0], (size_t) m * sizeof(double));
    }
    /* the diagonal of the Hessian */
    for (int i = 0; i < nv; i++) {
        for (int k = 0; k < RICH_LEVELS; k++) {
            double h = h0[i] / (double) (1 << k);
            memcpy(x, x0, (size_t) nv * sizeof(double));
            x[i] = x0[i] + h;
            vp_F(f, x, Fp);
            x[i] = x0[i] - h;
            vp_F(f, x, Fm);
            D[k][0] = (Fp[m - 1] - 2.0 * d0 + Fm[m - 1]) / (h * h);
        }
        richardson(D, RICH_LEVELS, 1);
        hess[i + i * nv] = D[0][0];
    }
    /* mixed second derivatives */
    for (int i = 0; i < nv; i++)
        for (int j = i + 1; j < nv; j++) {
            R_CheckUserInterrupt();
            for (int k = 0; k < RICH_LEVELS; k++) {
                double hi = h0[i] / (double) (1 << k), hj = h0[j] / (double) (1 << k), s = 0;
                for (int a = -1; a <= 1; a += 2)
                    for (int b = -1; b <= 1; b += 2) {
                        memcpy(x, x0, (size_t) nv * sizeof(double));
                        x[i] += a * hi;
                        x[j] += b * hj;
                        vp_F(f, x, Fp);
                        s += a * b * Fp[m - 1];
                    }
                D[k][0] = s / (4.0 * hi * hj);
            }
            richardson(D, RICH_LEVELS, 1);
            hess[i + j * nv] = hess[j + i * nv] = D[0][0];
        }
}

/* varpar = (theta, sigma) */
static void check_varpar(const lmm_xprod *xp, SEXP varpar)
{
    lmm_arg_finite(varpar, lmm_ntheta(xp) + 1, "varpar (theta, sigma)");
}

/* vcov(beta) and the deviance at varpar = (theta, sigma). */
SEXP lmm_vcov_dev(SEXP sxp, SEXP varpar, SEXP sreml)
{
    int nprot = 0, reml = lmm_arg_flag(sreml, "REML");
    lmm_xprod xp;
    lmm_unpack_xprod(sxp, &xp);
    check_varpar(&xp, varpar);
    lmm_factor fa;
    lmm_factor_alloc(&xp, &fa);
    int p = xp.p;
    SEXP V = PROTECT(allocMatrix(REALSXP, p, p)); nprot++;
    double dev;
    int code = vp_eval(&xp, &fa, REAL(varpar), reml, REAL(V), &dev);
    if (code != 0) error("%s", vp_failure(code));
    const char *names[] = {"vcov", "deviance", ""};
    SEXP ans = PROTECT(mkNamed(VECSXP, names)); nprot++;
    SET_VECTOR_ELT(ans, 0, V);
    SET_VECTOR_ELT(ans, 1, ScalarReal(dev));
    UNPROTECT(nprot);
    return ans;
}

/* vcov(beta), the deviance, the Jacobian of vcov(beta) (p x p x nv) and the
 * Hessian of the deviance (nv x nv), all at varpar. */
SEXP lmm_ddf_derivs(SEXP sxp, SEXP varpar, SEXP sreml, SEXP srel)
{
    int nprot = 0, reml = lmm_arg_flag(sreml, "REML");
    if (!isReal(srel) || LENGTH(srel) != 2) error(_("'rel' must be two relative steps"));
    const double *rel = REAL(srel);
    lmm_xprod xp;
    lmm_unpack_xprod(sxp, &xp);
    check_varpar(&xp, varpar);
    if (!(rel[0] > 0 && rel[0] < 1 && rel[1] > 0 && rel[1] < 1))
        error(_("the relative steps must be in (0, 1)"));
    if (xp.p < 1) error(_("the model has no fixed effects"));
    lmm_factor fa;
    lmm_factor_alloc(&xp, &fa);
    int p = xp.p, nv = lmm_ntheta(&xp) + 1, m = p * p + 1;
    vp_fun f = {&xp, &fa, reml, m, nv, (double *) R_alloc((size_t) nv, sizeof(double))};

    double *jac = (double *) R_alloc((size_t) m * nv, sizeof(double));
    SEXP H = PROTECT(allocMatrix(REALSXP, nv, nv)); nprot++;
    vp_derivs(&f, REAL(varpar), rel, jac, REAL(H));

    SEXP V = PROTECT(allocMatrix(REALSXP, p, p)); nprot++;
    double dev;
    int code = vp_eval(&xp, &fa, REAL(varpar), reml, REAL(V), &dev);
    if (code != 0) error("%s", vp_failure(code));
    SEXP J = PROTECT(alloc3DArray(REALSXP, p, p, nv)); nprot++;
    for (int i = 0; i < nv; i++)
        memcpy(REAL(J) + (size_t) i * p * p, jac + (size_t) i * m, (size_t) p * p * sizeof(double));
    const char *names[] = {"vcov", "deviance", "jacobian", "hessian", ""};
    SEXP ans = PROTECT(mkNamed(VECSXP, names)); nprot++;
    SET_VECTOR_ELT(ans, 0, V);
    SET_VECTOR_ELT(ans, 1, ScalarReal(dev));
    SET_VECTOR_ELT(ans, 2, J);
    SET_VECTOR_ELT(ans, 3, H);
    UNPROTECT(nprot);
    return ans;
}
