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
 * Hessian is the Jacobian of d's exact gradient (gradient.c in theta, closed
 * form in sigma) where that gradient costs less than the second differences
 * (8 nv gradients against 8 nv^2 evaluations), else second differences at
 * large steps (default 10% of each parameter): their rounding error grows as
 * 1/h^2 and the extrapolation removes the truncation error. */
#include <math.h>
#include <string.h>
#include "lapack.h"
#include <Rinternals.h>
#include "model.h"
#include "lmmfit.h"
#include "gradient.h"

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

/* The gradient of d in varpar at x into g: theta's from the selected
 * inverse at that sigma, sigma's in closed form,
 *   d d / d sigma = 2 df / sigma - 2 pwrss / sigma^3  (df = n, or n - p). */
static void vp_gradient(vp_fun *f, lmm_model_gradient_ws *ws, double *G, const double *x, double *g)
{
    const lmm_xprod *xp = f->xp;
    int nt = f->nv - 1;
    double sigma = x[nt];
    memcpy(f->work, x, (size_t) f->nv * sizeof(double));
    int code = sigma > 0 ? lmm_factorize(xp, f->work, f->fa) : 10;
    if (code != 0) error(_("computing the Hessian of the deviance: %s"), vp_failure(code));
    if (lmm_model_gradient(xp, f->fa, f->reml, sigma, ws, G) != 0)
        error(_("computing the Hessian of the deviance: the gradient is not defined at these parameters"));
    for (int j = 0, i = 0; j < xp->nterms; j++) {
        int k = xp->ncol[j];
        for (int c = 0; c < k; c++)
            for (int r = c; r < k; r++) g[i++] = G[f->fa->lamoff[j] + r + c * k];
    }
    double df = f->reml ? (double) xp->nobs - xp->p : (double) xp->nobs;
    g[nt] = 2.0 * df / sigma - 2.0 * f->fa->pwrss / (sigma * sigma * sigma);
}

/* The Hessian of d as the Jacobian of its gradient: central differences at
 * the first derivatives' steps g0, Richardson-refined, symmetrised. */
static void vp_hessian_from_gradient(vp_fun *f, const double *x0, const double *g0, double *hess)
{
    int nv = f->nv;
    lmm_model_gradient_ws ws;
    lmm_model_gradient_alloc(f->xp, &ws);
    double *G = (double *) R_alloc((size_t) f->fa->lamoff[f->xp->nterms], sizeof(double));
    double *x = (double *) R_alloc((size_t) nv, sizeof(double));
    double *gp = (double *) R_alloc((size_t) nv, sizeof(double));
    double *gm = (double *) R_alloc((size_t) nv, sizeof(double));
    double *T[RICH_LEVELS];
    for (int k = 0; k < RICH_LEVELS; k++) T[k] = (double *) R_alloc((size_t) nv, sizeof(double));
    for (int j = 0; j < nv; j++) {
        R_CheckUserInterrupt();
        for (int k = 0; k < RICH_LEVELS; k++) {
            double h = g0[j] / (double) (1 << k);
            memcpy(x, x0, (size_t) nv * sizeof(double));
            x[j] = x0[j] + h;
            vp_gradient(f, &ws, G, x, gp);
            x[j] = x0[j] - h;
            vp_gradient(f, &ws, G, x, gm);
            for (int i = 0; i < nv; i++) T[k][i] = (gp[i] - gm[i]) / (2.0 * h);
        }
        richardson(T, RICH_LEVELS, nv);
        memcpy(hess + (size_t) j * nv, T[0], (size_t) nv * sizeof(double));
    }
    for (int j = 0; j < nv; j++)
        for (int i = 0; i < j; i++)
            hess[i + j * nv] = hess[j + i * nv] = 0.5 * (hess[i + j * nv] + hess[j + i * nv]);
}

/* Jacobian (m x nv) of F and Hessian (nv x nv) of its last component. */
static void vp_derivs(vp_fun *f, const double *x0, const double *rel, int use_gradient, double *jac,
                      double *hess)
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
    if (use_gradient) {
        vp_hessian_from_gradient(f, x0, g0, hess);
        return;
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
SEXP lmm_ddf_derivs(SEXP sxp, SEXP varpar, SEXP sreml, SEXP srel, SEXP shessian)
{
    int nprot = 0, reml = lmm_arg_flag(sreml, "REML");
    /* "auto": the gradient's Jacobian where it is cheaper; "gradient" or
     * "differences" to choose */
    if (!isString(shessian) || LENGTH(shessian) != 1)
        error(_("'hessian' must be \"auto\", \"gradient\" or \"differences\""));
    const char *how = CHAR(STRING_ELT(shessian, 0));
    if (strcmp(how, "auto") && strcmp(how, "gradient") && strcmp(how, "differences"))
        error(_("'hessian' must be \"auto\", \"gradient\" or \"differences\""));
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
    /* 8 nv gradients (each an evaluation and its further cost) against
     * about 8 nv^2 evaluations */
    int use_gradient = !strcmp(how, "gradient") ||
        (!strcmp(how, "auto") && 1.0 + lmm_model_gradient_cost(&xp) < nv);
    vp_derivs(&f, REAL(varpar), rel, use_gradient, jac, REAL(H));

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
