/* Likelihood profiles (as lme4's profile(), on the ML deviance).
 *
 * Variance components are profiled on lme4's "sdcor" scale: per term the lower
 * triangle of the covariance matrix, column by column, holds standard
 * deviations on the diagonal and correlations below it, followed by the
 * residual standard deviation sigma.  For such a vector the relative factor
 * of term j is the Cholesky factor of Sigma_j / sigma^2, and the ML deviance,
 * not profiled over sigma, is
 *   d = ldL2 + pwrss / sigma^2 + n log(2 pi sigma^2) - sum(log w).
 * With one component fixed the others are optimised here in C (lmm_minimize).
 *
 * A fixed effect beta_j is profiled by moving x_j beta_j to the response:
 * the cross-products of the reduced problem follow from the full ones, and
 * the profiled ML deviance is minimised over theta. */
#include <math.h>
#include <string.h>
#include "lapack.h"
#include <Rinternals.h>
#include "model.h"
#include "lmmfit.h"

/* sdcor vector (ntheta values, then sigma) to theta; 0 on success. */
static int sdcor_to_theta(const lmm_xprod *xp, const double *par, double *theta, double *S)
{
    int nt = lmm_ntheta(xp), i0 = 0;
    double sigma = par[nt];
    if (!(sigma > 0)) return 1;
    for (int j = 0; j < xp->nterms; j++) {
        int k = xp->ncol[j];
        const double *pj = par + i0;
        double *sd = S + k * k;          /* k scratch values after the k x k matrix */
        for (int c = 0, i = 0; c < k; c++)
            for (int r = c; r < k; r++, i++) if (r == c) sd[c] = pj[i];
        for (int c = 0, i = 0; c < k; c++)
            for (int r = c; r < k; r++, i++) {
                double v = (r == c) ? sd[c] * sd[c] : pj[i] * sd[r] * sd[c];
                S[r + c * k] = v / (sigma * sigma);
            }
        /* Cholesky tolerant of semi-definite matrices (zero standard deviations) */
        for (int c = 0; c < k; c++) {
            double d = S[c + c * k];
            for (int l = 0; l < c; l++) d -= S[c + l * k] * S[c + l * k];
            double scale = sd[c] * sd[c] / (sigma * sigma);
            if (d < -1e-10 * (scale > 0 ? scale : 1.0)) return 2;
            d = d > 0 ? sqrt(d) : 0.0;
            S[c + c * k] = d;
            for (int r = c + 1; r < k; r++) {
                double s = S[r + c * k];
                for (int l = 0; l < c; l++) s -= S[r + l * k] * S[c + l * k];
                S[r + c * k] = d > 0 ? s / d : 0.0;
            }
        }
        for (int c = 0, i = 0; c < k; c++)
            for (int r = c; r < k; r++, i++) theta[i0 + i] = S[r + c * k];
        i0 += k * (k + 1) / 2;
    }
    return 0;
}

typedef struct {
    const lmm_xprod *xp;
    lmm_factor *fa;
    int which, npar;     /* the fixed component (0-based) and the full length */
    double value;
    double *par, *theta, *S;
} vc_problem;

static void vc_fill(vc_problem *pr, const double *x)
{
    for (int i = 0, l = 0; i < pr->npar; i++) pr->par[i] = (i == pr->which) ? pr->value : x[l++];
}

static double vc_deviance_full(vc_problem *pr)
{
    const lmm_xprod *xp = pr->xp;
    if (sdcor_to_theta(xp, pr->par, pr->theta, pr->S) != 0) return R_PosInf;
    if (lmm_factorize(xp, pr->theta, pr->fa) != 0) return R_PosInf;
    return lmm_deviance_at_sigma(xp, pr->fa, 0, pr->par[pr->npar - 1]);
}

static double vc_objective(const double *x, void *ex)
{
    vc_problem *pr = (vc_problem *) ex;
    vc_fill(pr, x);
    return vc_deviance_full(pr);
}

/* Bounds of the sdcor components: sd >= 0, -1 <= cor <= 1, sigma > 0. */
static void sdcor_bounds(const lmm_xprod *xp, double sigma0, double *lower, double *upper)
{
    int i = 0;
    for (int j = 0; j < xp->nterms; j++) {
        int k = xp->ncol[j];
        for (int c = 0; c < k; c++)
            for (int r = c; r < k; r++, i++) {
                lower[i] = (r == c) ? 0.0 : -1.0;
                upper[i] = (r == c) ? R_PosInf : 1.0;
            }
    }
    lower[i] = 1e-8 * sigma0;
    upper[i] = R_PosInf;
}

static SEXP named_result(double dev, SEXP par, SEXP beta)
{
    const char *names[] = {"deviance", "par", "beta", ""};
    SEXP ans = PROTECT(mkNamed(VECSXP, names));
    SET_VECTOR_ELT(ans, 0, ScalarReal(dev));
    SET_VECTOR_ELT(ans, 1, par);
    SET_VECTOR_ELT(ans, 2, beta);
    UNPROTECT(1);
    return ans;
}

/* The ML deviance minimised over the sdcor vector with component `which`
 * (1-based; 0 = none fixed) held at `value`, starting from `start`. */
SEXP lmm_profile_vc(SEXP sxp, SEXP swhich, SEXP svalue, SEXP start, SEXP control)
{
    int nprot = 0;
    lmm_xprod xp;
    lmm_unpack_xprod(sxp, &xp);
    int nt = lmm_ntheta(&xp), npar = nt + 1, which = lmm_arg_int(swhich, "which", 0, npar) - 1;
    lmm_arg_finite(start, npar, "start");
    if (!(REAL(start)[nt] > 0)) error(_("the residual standard deviation in 'start' must be positive"));
    double value = which >= 0 ? lmm_arg_real(svalue, "value") : 0.0;
    lmm_optctl ctl;
    lmm_unpack_control(control, &ctl);

    int kmax = 1;
    for (int j = 0; j < xp.nterms; j++) if (xp.ncol[j] > kmax) kmax = xp.ncol[j];
    lmm_factor fa;
    lmm_factor_alloc(&xp, &fa);
    vc_problem pr = {&xp, &fa, which, npar, value,
                     (double *) R_alloc((size_t) npar, sizeof(double)),
                     (double *) R_alloc((size_t) nt, sizeof(double)),
                     (double *) R_alloc((size_t) kmax * (kmax + 1), sizeof(double))};
    double *lo = (double *) R_alloc((size_t) npar, sizeof(double));
    double *up = (double *) R_alloc((size_t) npar, sizeof(double));
    sdcor_bounds(&xp, REAL(start)[nt], lo, up);
    if (which >= 0 && (value < lo[which] || value > up[which]))
        error(_("the profiled value is outside the parameter's range"));

    int nfree = which >= 0 ? npar - 1 : npar;
    double *x = (double *) R_alloc((size_t) nfree, sizeof(double));
    double *xl = (double *) R_alloc((size_t) nfree, sizeof(double));
    double *xu = (double *) R_alloc((size_t) nfree, sizeof(double));
    for (int i = 0, l = 0; i < npar; i++) {
        if (i == which) continue;
        x[l] = REAL(start)[i];
        xl[l] = lo[i];
        xu[l] = up[i];
        l++;
    }
    lmm_optres res;
    if (nfree > 0) lmm_minimize(nfree, x, xl, xu, vc_objective, NULL, &pr, &ctl, &res);
    vc_fill(&pr, x);
    double dev = vc_deviance_full(&pr);

    SEXP par = PROTECT(allocVector(REALSXP, npar)); nprot++;
    memcpy(REAL(par), pr.par, (size_t) npar * sizeof(double));
    SEXP beta = PROTECT(allocVector(REALSXP, xp.p)); nprot++;
    if (R_FINITE(dev)) {
        double *u = (double *) R_alloc((size_t) (xp.q1 + xp.q2), sizeof(double));
        lmm_solve_coef(&xp, &fa, REAL(beta), u);
    } else {
        for (int i = 0; i < xp.p; i++) REAL(beta)[i] = NA_REAL;
    }
    SEXP ans = named_result(dev, par, beta);
    UNPROTECT(nprot);
    return ans;
}

/* The ML deviance at a given sdcor vector (not optimised). */
SEXP lmm_sdcor_deviance(SEXP sxp, SEXP spar)
{
    lmm_xprod xp;
    lmm_unpack_xprod(sxp, &xp);
    int nt = lmm_ntheta(&xp), npar = nt + 1;
    lmm_arg_finite(spar, npar, "par");
    int kmax = 1;
    for (int j = 0; j < xp.nterms; j++) if (xp.ncol[j] > kmax) kmax = xp.ncol[j];
    lmm_factor fa;
    lmm_factor_alloc(&xp, &fa);
    vc_problem pr = {&xp, &fa, -1, npar, 0.0,
                     (double *) R_alloc((size_t) npar, sizeof(double)),
                     (double *) R_alloc((size_t) nt, sizeof(double)),
                     (double *) R_alloc((size_t) kmax * (kmax + 1), sizeof(double))};
    vc_fill(&pr, REAL(spar));
    return ScalarReal(vc_deviance_full(&pr));
}

/* Cross-products of the problem with column j of X moved to the response at
 * beta_j = b: y - b x_j against Z and the other columns of X. */
static void reduced_xprod(const lmm_xprod *xp, int j, double b, lmm_xprod *xr)
{
    int px = xp->px, y = px - 1, pr = px - 1, q1 = xp->q1, q2 = xp->q2;
    *xr = *xp;
    xr->p = xp->p - 1;
    xr->px = pr;
    int *map = (int *) R_alloc((size_t) pr, sizeof(int));
    for (int i = 0, l = 0; i < px; i++) if (i != j) map[l++] = i;
    double *AX1 = (double *) R_alloc((size_t) pr * (q1 > 0 ? q1 : 1), sizeof(double));
    double *AX2 = (double *) R_alloc((size_t) pr * (q2 > 0 ? q2 : 1), sizeof(double));
    double *AXX = (double *) R_alloc((size_t) pr * pr, sizeof(double));
    for (int c = 0; c < q1; c++) {
        const double *a = xp->AX1 + (size_t) c * px;
        for (int i = 0; i < pr; i++) AX1[i + (size_t) c * pr] = a[map[i]];
        AX1[(pr - 1) + (size_t) c * pr] = a[y] - b * a[j];
    }
    for (int c = 0; c < q2; c++) {
        const double *a = xp->AX2 + (size_t) c * px;
        for (int i = 0; i < pr; i++) AX2[i + (size_t) c * pr] = a[map[i]];
        AX2[(pr - 1) + (size_t) c * pr] = a[y] - b * a[j];
    }
    const double *A = xp->AXX;
    for (int c = 0; c < pr; c++)
        for (int r = 0; r < pr; r++) {
            int rr = map[r], cc = map[c];
            double v = A[rr + cc * px];
            if (rr == y && cc == y) v = A[y + y * px] - 2.0 * b * A[j + y * px] + b * b * A[j + j * px];
            else if (rr == y) v -= b * A[j + cc * px];
            else if (cc == y) v -= b * A[rr + j * px];
            AXX[r + c * pr] = v;
        }
    xr->AX1 = AX1;
    xr->AX2 = AX2;
    xr->AXX = AXX;
}

/* Profile of fixed effect j (1-based) at value b: the ML deviance minimised
 * over theta from theta0, with theta, sigma and the full beta there. */
SEXP lmm_profile_beta(SEXP sxp, SEXP sj, SEXP svalue, SEXP stheta, SEXP control)
{
    int nprot = 0;
    lmm_xprod xp;
    lmm_unpack_xprod(sxp, &xp);
    int nt = lmm_ntheta(&xp), p = xp.p;
    if (p < 1) error(_("the model has no fixed effects to profile"));
    int j = lmm_arg_int(sj, "j", 1, p) - 1;
    double b = lmm_arg_real(svalue, "value");
    lmm_arg_finite(stheta, nt, "theta");
    lmm_optctl ctl;
    lmm_unpack_control(control, &ctl);
    lmm_xprod xr;
    reduced_xprod(&xp, j, b, &xr);

    SEXP theta = PROTECT(duplicate(stheta)); nprot++;
    lmm_optres res;
    lmm_optimize(&xr, REAL(theta), 0, &ctl, &res, NULL, NULL);
    lmm_factor fa;
    lmm_factor_alloc(&xr, &fa);
    double dev = lmm_deviance(&xr, REAL(theta), 0, &fa);
    SEXP beta = PROTECT(allocVector(REALSXP, p)); nprot++;
    double sigma = NA_REAL;
    if (R_FINITE(dev)) {
        double *br = (double *) R_alloc((size_t) (p > 1 ? p - 1 : 1), sizeof(double));
        double *u = (double *) R_alloc((size_t) (xr.q1 + xr.q2), sizeof(double));
        lmm_solve_coef(&xr, &fa, br, u);
        for (int i = 0, l = 0; i < p; i++) REAL(beta)[i] = (i == j) ? b : br[l++];
        sigma = lmm_sigma_hat(&xr, fa.pwrss, 0);
    } else {
        for (int i = 0; i < p; i++) REAL(beta)[i] = NA_REAL;
    }
    const char *names[] = {"deviance", "theta", "sigma", "beta", ""};
    SEXP ans = PROTECT(mkNamed(VECSXP, names)); nprot++;
    SET_VECTOR_ELT(ans, 0, ScalarReal(dev));
    SET_VECTOR_ELT(ans, 1, theta);
    SET_VECTOR_ELT(ans, 2, ScalarReal(sigma));
    SET_VECTOR_ELT(ans, 3, beta);
    UNPROTECT(nprot);
    return ans;
}
