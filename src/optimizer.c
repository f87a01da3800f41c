/* Bound-constrained minimisation entirely in C: R's L-BFGS-B (R_ext/Applic.h)
 * driven by a finite-difference gradient (one-sided at active bounds), Newton
 * steps with a finite-difference Hessian, and lmm_drive(), the one driver of
 * every model's covariance parameters: it works in conditioned parameters
 * (theta.c) and checks boundary points to second order.  lmm_optimize()
 * drives the profiled deviance of a plain fit (and the bootstrap's refits);
 * AR(1) residuals pass their own objective with phi as an extra parameter. */
#include <float.h>
#include <math.h>
#include <string.h>
#include "lapack.h"
#include <Rinternals.h>
#include <R_ext/Applic.h>
#include "model.h"
#include "lmmfit.h"
#include "theta.h"
#include "gradient.h"

typedef struct {
    lmm_objective fn;
    void *ex;
    const double *lower, *upper;
    double h;
    int nfeval;
    int forward;
    /* the last point L-BFGS-B evaluated: its gradient call comes at the same point */
    double *last_x, last_f;
    int n;
    double shift;        /* subtracted from every value L-BFGS-B sees */
} fd_problem;

static double eval_fn(fd_problem *pr, const double *x)
{
    pr->nfeval++;
    if ((pr->nfeval & 63) == 0) R_CheckUserInterrupt();
    return pr->fn(x, pr->ex);
}

static void fd_gradient(fd_problem *pr, int n, const double *x, double *grad, double *work)
{
    memcpy(work, x, (size_t) n * sizeof(double));
    double f0 = NA_REAL;
    if (pr->last_x && !memcmp(pr->last_x, x, (size_t) n * sizeof(double))) f0 = pr->last_f;
    for (int i = 0; i < n; i++) {
        double step = pr->h * fmax(1.0, fabs(x[i]));
        int down_ok = x[i] - step >= pr->lower[i], up_ok = x[i] + step <= pr->upper[i];
        if (down_ok && up_ok && !pr->forward) {
            work[i] = x[i] + step;
            double fp = eval_fn(pr, work);
            work[i] = x[i] - step;
            double fm = eval_fn(pr, work);
            grad[i] = (fp - fm) / (2.0 * step);
        } else {
            if (ISNA(f0)) f0 = eval_fn(pr, x);
            work[i] = up_ok ? x[i] + step : x[i] - step;
            grad[i] = (eval_fn(pr, work) - f0) / (work[i] - x[i]);
        }
        work[i] = x[i];
    }
}

typedef struct {
    fd_problem *pr;
    double *work;
    lmm_gradient_fn gr;  /* NULL: finite differences */
} lbfgsb_ex;

static double lbfgsb_fn(int n, double *x, void *ex)
{
    fd_problem *pr = ((lbfgsb_ex *) ex)->pr;
    double f = eval_fn(pr, x);
    if (pr->last_x) {
        /* the unshifted value: the gradient's other points are unshifted too */
        memcpy(pr->last_x, x, (size_t) n * sizeof(double));
        pr->last_f = f;
    }
    f -= pr->shift;
    /* L-BFGS-B cannot step back from an infinite value: make failure merely bad. */
    return R_FINITE(f) ? f : DBL_MAX / 4;
}

static void lbfgsb_gr(int n, double *x, double *grad, void *ex)
{
    lbfgsb_ex *e = (lbfgsb_ex *) ex;
    if (!e->gr || e->gr(x, grad, e->pr->ex) != 0) fd_gradient(e->pr, n, x, grad, e->work);
    for (int i = 0; i < n; i++) if (!R_FINITE(grad[i])) grad[i] = 0;
}

void lmm_minimize(int n, double *x, const double *lower, const double *upper,
                  lmm_objective fn, lmm_gradient_fn gr, void *ex, const lmm_optctl *ctl,
                  lmm_optres *res)
{
    fd_problem pr = {fn, ex, lower, upper, ctl->fdstep, 0, ctl->forward,
                     (double *) R_alloc((size_t) n, sizeof(double)), NA_REAL, n, 0.0};
    lbfgsb_ex lex = {&pr, (double *) R_alloc((size_t) n, sizeof(double)), gr};
    int *nbd = (int *) R_alloc((size_t) n, sizeof(int));
    for (int i = 0; i < n; i++) {
        int lo = R_FINITE(lower[i]), up = R_FINITE(upper[i]);
        nbd[i] = lo && up ? 2 : lo ? 1 : up ? 3 : 0;
        if (x[i] < lower[i]) x[i] = lower[i];
        if (x[i] > upper[i]) x[i] = upper[i];
    }
    if (ctl->shift) {
        double f0 = eval_fn(&pr, x);
        if (R_FINITE(f0)) pr.shift = f0;
    }
    char msg[60];
    int fail = 0, fncount = 0, grcount = 0;
    double fmin;
    lbfgsb(n, 5, x, (double *) lower, (double *) upper, nbd, &fmin, lbfgsb_fn, lbfgsb_gr,
           &fail, &lex, ctl->factr, ctl->pgtol, &fncount, &grcount, ctl->maxit, msg,
           ctl->trace, 1);
    res->fmin = fn(x, ex);
    res->fncount = pr.nfeval;
    res->grcount = grcount;
    res->fail = fail;
    strncpy(res->msg, msg, sizeof(res->msg) - 1);
    res->msg[sizeof(res->msg) - 1] = '\0';
}

static void lmm_fd_gradient(int n, const double *x, const double *lower, const double *upper,
                            lmm_objective fn, void *ex, double h, double *grad)
{
    fd_problem pr = {fn, ex, lower, upper, h, 0, 0, NULL, NA_REAL, n, 0.0};
    fd_gradient(&pr, n, x, grad, (double *) R_alloc((size_t) n, sizeof(double)));
}

/* Newton polish after L-BFGS-B, which stops early (or slowly) on these
 * ill-conditioned surfaces (phi trades off against a random slope).
 * Finite-difference gradient and Hessian over the parameters not within a
 * step of a bound, a Newton step (with a ridge when the Hessian is not
 * positive definite) projected onto the bounds, halved until the objective
 * decreases.  Small problems only (the Hessian costs 2 n^2 evaluations).
 * Its evaluations are counted by the objectives themselves (the plain fit's
 * and AR(1)'s), like every other phase's. */

/* The polish's relative step: its stencils are at twice this. */
#define POLISH_STEP 1e-4
/* Diagonal entries of lambda below this (relative to the residual standard
 * deviation, in the optimizer's conditioned parameters) are candidates for
 * the boundary: the deviance depends on them through their square, so it is
 * flat to within rounding there and a gradient method stalls on its way. */
#define NEAR_ZERO_DIAG 1e-3

/* Returns 1 when the Newton decrement (the predicted decrease of the
 * objective) became negligible: the optimum is reached to the objective's
 * precision. */
static int newton_polish(int n, double *x, const double *lower, const double *upper,
                         lmm_objective fn, void *ex, int maxit, double h)
{
    double *g = (double *) R_alloc((size_t) n, sizeof(double));
    double *H = (double *) R_alloc((size_t) n * n, sizeof(double));
    double *Hf = (double *) R_alloc((size_t) n * n, sizeof(double));
    double *step = (double *) R_alloc((size_t) n, sizeof(double));
    double *xt = (double *) R_alloc((size_t) n, sizeof(double));
    double *hs = (double *) R_alloc((size_t) n, sizeof(double));
    int *fr = (int *) R_alloc((size_t) n, sizeof(int));
    int *fr_H = (int *) R_alloc((size_t) n, sizeof(int));
    double *fplus = (double *) R_alloc((size_t) n, sizeof(double));
    double *hdiag = (double *) R_alloc((size_t) n, sizeof(double));
    int have_H = 0, nf_H = 0;
    double gmax_prev = R_PosInf;
    double f0 = fn(x, ex);
    if (!R_FINITE(f0)) return 0;
    for (int it = 0; it < maxit; it++) {
        R_CheckUserInterrupt();
        /* the objective's rounding noise is about 1e-13 |f|: below 100 times
         * 1e-12 |f| a predicted decrease cannot be checked by evaluation */
        double fnoise = 1e-12 * fmax(1.0, fabs(f0));
        /* free parameters: far enough inside the bounds for a central Hessian */
        int nf = 0;
        for (int i = 0; i < n; i++) {
            hs[i] = h * fmax(1.0, fabs(x[i]));
            if (x[i] - 2 * hs[i] < lower[i] || x[i] + 2 * hs[i] > upper[i]) continue;
            fr[nf++] = i;
        }
        if (nf == 0) return 1;
        /* central differences at 2 hs: the deviance's rounding noise (about
         * 1e-12 relative on large or badly centred data) swamps the gradient at
         * smaller steps, while the truncation error is O(h^2).  The same points
         * give the Hessian's diagonal. */
        memcpy(xt, x, (size_t) n * sizeof(double));
        for (int a = 0; a < nf; a++) {
            int i = fr[a];
            xt[i] = x[i] + 2 * hs[i]; fplus[a] = fn(xt, ex);
            xt[i] = x[i] - 2 * hs[i]; double fm = fn(xt, ex);
            xt[i] = x[i];
            g[i] = (fplus[a] - fm) / (4 * hs[i]);
            hdiag[a] = (fplus[a] - 2 * f0 + fm) / (4 * hs[i] * hs[i]);
        }
        double gmax = 0;
        for (int a = 0; a < nf; a++) gmax = fmax(gmax, fabs(g[fr[a]]));
        /* the off-diagonal Hessian is kept from the last iteration while the
         * free set is unchanged and the last full Newton step shrank the
         * gradient well; otherwise one evaluation per pair (forward
         * differences from the gradient's points: O(h) error, which slows
         * Newton's convergence a little but does not move its fixed point) */
        int same = have_H && nf == nf_H;
        for (int a = 0; same && a < nf; a++) same = fr[a] == fr_H[a];
        if (!(same && gmax < 0.25 * gmax_prev)) {
            have_H = 0;
            memcpy(xt, x, (size_t) n * sizeof(double));
            for (int a = 0; a < nf; a++) {
                int i = fr[a];
                for (int b = 0; b < a; b++) {
                    int j = fr[b];
                    xt[i] = x[i] + 2 * hs[i]; xt[j] = x[j] + 2 * hs[j];
                    double fij = fn(xt, ex);
                    xt[i] = x[i]; xt[j] = x[j];
                    double v = (fij - fplus[a] - fplus[b] + f0) / (4 * hs[i] * hs[j]);
                    if (!R_FINITE(v)) return 0;
                    H[a + b * nf] = H[b + a * nf] = v;
                }
            }
            have_H = 1;
            nf_H = nf;
            memcpy(fr_H, fr, (size_t) nf * sizeof(int));
        }
        for (int a = 0; a < nf; a++) {
            if (!R_FINITE(hdiag[a])) return 0;
            H[a + a * nf] = hdiag[a];
        }
        gmax_prev = gmax;
        /* Cholesky of H + ridge, increasing the ridge until it succeeds */
        double ridge = 0, dmax = 0;
        for (int a = 0; a < nf; a++) dmax = fmax(dmax, fabs(H[a + a * nf]));
        int info = 1, tries;
        for (tries = 0; tries < 30; tries++) {
            memcpy(Hf, H, (size_t) nf * nf * sizeof(double));
            for (int a = 0; a < nf; a++) Hf[a + a * nf] += ridge;
            F77_CALL(dpotrf)("L", &nf, Hf, &nf, &info FCONE);
            if (info == 0) break;
            ridge = ridge == 0 ? 1e-8 * fmax(dmax, 1.0) : ridge * 10;
        }
        if (info != 0) return 0;
        for (int a = 0; a < nf; a++) step[a] = -g[fr[a]];
        int one = 1;
        F77_CALL(dpotrs)("L", &nf, &one, Hf, &nf, step, &nf, &info FCONE);
        if (info != 0) return 0;
        double dec = 0;
        for (int a = 0; a < nf; a++) dec -= 0.5 * step[a] * g[fr[a]];
        /* Converged when the Newton step no longer moves the parameters (the
         * predicted decrease far below the noise, or a relative step of 1e-9):
         * on a flat optimum a decrease "below the noise" still allows steps
         * of 1e-5 relative, so that alone is not enough. */
        double smax = 0;
        for (int a = 0; a < nf; a++) smax = fmax(smax, fabs(step[a]) / fmax(1.0, fabs(x[fr[a]])));
        if (ridge == 0 && (dec < 1e-2 * fnoise || smax < 1e-9)) return 1;
        if (ridge == 0 && dec < 100 * fnoise) {
            /* too small a step to verify: take the Newton step as it is */
            for (int a = 0; a < nf; a++) {
                int i = fr[a];
                x[i] = fmin(upper[i], fmax(lower[i], x[i] + step[a]));
            }
            f0 = fn(x, ex);
            continue;
        }
        double t = 1.0, fnew = R_PosInf;
        for (int ls = 0; ls < 30; ls++, t *= 0.5) {
            memcpy(xt, x, (size_t) n * sizeof(double));
            for (int a = 0; a < nf; a++) {
                int i = fr[a];
                xt[i] = fmin(upper[i], fmax(lower[i], x[i] + t * step[a]));
            }
            fnew = fn(xt, ex);
            if (fnew < f0) break;
        }
        if (!(fnew < f0)) return ridge == 0 && dec < 1e4 * fnoise;
        memcpy(x, xt, (size_t) n * sizeof(double));
        f0 = fnew;
        if (t < 1.0 || ridge > 0) have_H = 0;
    }
    return 0;
}

/* The profiled deviance of a plain fit as an lmm_objective, remembering its
 * last DEV_MEMORY values: the phases of lmm_optimize() ask again for points
 * already evaluated (L-BFGS-B's start, the Newton polish's last stencil,
 * which is also the stencil of the reported derivatives), and with a large
 * dense block each evaluation costs tens of milliseconds. */
#define DEV_MEMORY 64
typedef struct {
    const lmm_xprod *xp;
    lmm_factor *fa;
    int reml;
    double sigma;           /* > 0: fixed residual sd; 0: profiled */
    int nt, nevals, nmem;   /* nevals: factorisations actually done */
    double *mem_x, *mem_f;  /* NULL: no memory */
    int ngrads;             /* exact gradients, each about two evaluations' work */
    double *gwork;          /* the one-term gradient's workspace, or NULL */
    /* the selected inverse's gradient (several terms), else NULL; it needs
     * the factor at theta: the last one factored (fa_theta, when fa_ok) is
     * reused, as L-BFGS-B asks for the gradient where it just evaluated */
    lmm_model_gradient_ws *mg;
    double *fa_theta, *gtheta, *G0, *gtmp;
    int fa_ok;
} deviance_ex;

static void deviance_ex_init(deviance_ex *d, const lmm_xprod *xp, lmm_factor *fa, int reml,
                             double sigma, int remember)
{
    d->xp = xp;
    d->fa = fa;
    d->reml = reml;
    d->sigma = sigma;
    d->nt = lmm_ntheta(xp);
    d->nevals = d->nmem = 0;
    d->mem_x = remember ? (double *) R_alloc((size_t) DEV_MEMORY * d->nt, sizeof(double)) : NULL;
    d->mem_f = remember ? (double *) R_alloc(DEV_MEMORY, sizeof(double)) : NULL;
    d->ngrads = 0;
    d->gwork = NULL;
    d->mg = NULL;
    d->fa_ok = 0;
}

/* The selected inverse's gradient for this fit (several terms). */
static void deviance_ex_selected(deviance_ex *d)
{
    int nl = d->fa->lamoff[d->xp->nterms], kmax = 1;
    for (int j = 0; j < d->xp->nterms; j++) if (d->xp->ncol[j] > kmax) kmax = d->xp->ncol[j];
    d->mg = (lmm_model_gradient_ws *) R_alloc(1, sizeof(lmm_model_gradient_ws));
    lmm_model_gradient_alloc(d->xp, d->mg);
    d->fa_theta = (double *) R_alloc((size_t) d->nt, sizeof(double));
    d->gtheta = (double *) R_alloc((size_t) d->nt, sizeof(double));
    d->G0 = (double *) R_alloc((size_t) nl, sizeof(double));
    d->gtmp = (double *) R_alloc((size_t) kmax * kmax, sizeof(double));
}

/* Whether one evaluation (or gradient) takes milliseconds to seconds: a
 * large dense block or very many levels.  Those check for an interrupt at
 * every call (eval_fn checks every 64th). */
static int long_evaluation(const lmm_xprod *xp)
{
    return xp->q2 >= 256 || xp->nlev[0] >= 65536;
}

/* theta from the lambdas lam (any k x k each, at lamoff) into th: each
 * term's canonical factor of lam lam', or with as_is a lower triangular lam
 * with a positive diagonal taken as it is (an unconditioned term's, as the
 * objective saw it).  Returns 0 when as_is changed nothing. */
static int theta_of_lambdas(deviance_ex *d, const double *lam, int as_is, double *th)
{
    const lmm_xprod *xp = d->xp;
    int changed = 0;
    for (int j = 0, i = 0; j < xp->nterms; j++) {
        int k = xp->ncol[j];
        const double *l = lam + d->fa->lamoff[j];
        int tri = 1;
        for (int c = 0; c < k && tri; c++) {
            tri = l[c + c * k] > 0;
            for (int r = 0; r < c && tri; r++) tri = l[r + c * k] == 0.0;
        }
        if (as_is && tri) { lmm_theta_pack(k, l, th + i); changed = 1; }
        else lmm_theta_of_lambda(k, l, th + i, d->gtmp);
        i += k * (k + 1) / 2;
    }
    return changed;
}

/* Whether the factor held is the one at th. */
static int factored_at(const deviance_ex *d, const double *th)
{
    return d->fa_ok && !memcmp(d->fa_theta, th, (size_t) d->nt * sizeof(double));
}

/* The selected inverse's gradient at the lambdas lam: the factor at their
 * theta (the last one factored when it is that: the objective's own point),
 * the gradient in its lambdas, carried to lam term by term. */
static int selected_lambda_gradient(deviance_ex *d, const double *lam, double *G)
{
    const lmm_xprod *xp = d->xp;
    const int *lo = d->fa->lamoff;
    theta_of_lambdas(d, lam, 0, d->gtheta);
    if (!factored_at(d, d->gtheta) &&
        !(theta_of_lambdas(d, lam, 1, d->gtheta) && factored_at(d, d->gtheta))) {
        d->nevals++;
        d->fa_ok = 0;
        if (lmm_factorize(xp, d->gtheta, d->fa) != 0) return 1;
        memcpy(d->fa_theta, d->gtheta, (size_t) d->nt * sizeof(double));
        d->fa_ok = 1;
    }
    if (lmm_model_gradient(xp, d->fa, d->reml, d->mg, d->G0) != 0) return 1;
    for (int j = 0; j < xp->nterms; j++)
        lmm_lambda_gradient_at(xp->ncol[j], lam + lo[j], d->fa->lambda + lo[j], d->G0 + lo[j],
                               G + lo[j], d->gtmp);
    return 0;
}

/* The exact gradient in lambda of the deviance (gradient.c): one term's
 * formula, or the selected inverse's. */
static int deviance_lambda_gradient(const double *lam, double *G, void *ex)
{
    deviance_ex *d = (deviance_ex *) ex;
    if (long_evaluation(d->xp)) R_CheckUserInterrupt();
    d->ngrads++;
    if (d->mg) return selected_lambda_gradient(d, lam, G);
    return lmm_term_gradient(d->xp, lam, d->reml, G, d->gwork);
}

static double deviance_objective(const double *theta, void *ex)
{
    deviance_ex *d = (deviance_ex *) ex;
    size_t bytes = (size_t) d->nt * sizeof(double);
    int held = d->nmem < DEV_MEMORY ? d->nmem : DEV_MEMORY;
    for (int k = 0; d->mem_x && k < held; k++)
        if (!memcmp(d->mem_x + (size_t) k * d->nt, theta, bytes)) return d->mem_f[k];
    if (long_evaluation(d->xp)) R_CheckUserInterrupt();
    double f = lmm_deviance_sigma(d->xp, theta, d->reml, d->sigma, d->fa);
    d->nevals++;
    if (d->mg) {
        d->fa_ok = R_FINITE(f);
        memcpy(d->fa_theta, theta, bytes);
    }
    if (d->mem_x) {
        int slot = d->nmem++ % DEV_MEMORY;
        memcpy(d->mem_x + (size_t) slot * d->nt, theta, bytes);
        d->mem_f[slot] = f;
    }
    return f;
}

static double *theta_upper(int nt)
{
    double *upper = (double *) R_alloc((size_t) nt, sizeof(double));
    for (int i = 0; i < nt; i++) upper[i] = R_PosInf;
    return upper;
}

/* Diagonal elements of lambda left just above zero are set to zero when the
 * deviance there is no higher: the optimum is on the bound (a singular fit),
 * which a finite-difference method approaches but need not reach. */
static void lmm_snap_to_zero(int n, double *x, const double *lower, lmm_objective fn, void *ex)
{
    double f = fn(x, ex);
    for (int i = 0; i < n; i++) {
        if (lower[i] != 0.0 || x[i] <= 0.0 || x[i] >= NEAR_ZERO_DIAG) continue;
        double keep = x[i];
        x[i] = 0.0;
        double f0 = fn(x, ex);
        if (f0 <= f) f = f0;
        else x[i] = keep;
    }
}

/* The gradient and the gradient over the square root of the diagonal
 * curvature (NA where that is not positive), from one stencil: central
 * differences at 2e-4 relative (one-sided, at 2e-4 and 4e-4, within that of a
 * bound), the points and step of the Newton polish's last iteration, so that
 * after a polish they are remembered rather than evaluated again.  lme4
 * likewise takes both from one stencil (at 1e-4). */
static void report_derivatives(int n, const double *x, const double *lower, const double *upper,
                               lmm_objective fn, void *ex, double *grad, double *scaled)
{
    double *xt = (double *) R_alloc((size_t) n, sizeof(double));
    memcpy(xt, x, (size_t) n * sizeof(double));
    double f0 = fn(x, ex);
    for (int i = 0; i < n; i++) {
        double h = 2 * POLISH_STEP * fmax(1.0, fabs(x[i])), curv;
        if (x[i] - h >= lower[i] && x[i] + h <= upper[i]) {
            xt[i] = x[i] + h; double fp = fn(xt, ex);
            xt[i] = x[i] - h; double fm = fn(xt, ex);
            grad[i] = (fp - fm) / (2 * h);
            curv = (fp - 2 * f0 + fm) / (h * h);
        } else {
            double s = x[i] + 2 * h <= upper[i] ? h : -h;
            xt[i] = x[i] + s; double f1 = fn(xt, ex);
            xt[i] = x[i] + 2 * s; double f2 = fn(xt, ex);
            grad[i] = (f1 - f0) / s;
            curv = (f2 - 2 * f1 + f0) / (h * h);
        }
        xt[i] = x[i];
        if (!R_FINITE(grad[i])) grad[i] = NA_REAL;
        scaled[i] = (R_FINITE(curv) && curv > 0 && R_FINITE(grad[i])) ? grad[i] / sqrt(curv) : NA_REAL;
    }
}

/* ---- The driver for every model ------------------------------------- */

/* The optimizer's parameters: theta conditioned term by term (theta.c), so
 * that the search, its finite-difference steps and its tolerances do not
 * depend on the units or the origin of a slope covariate, then the
 * problem's further parameters as they are.  Intercept-only terms need no
 * conditioning; when no term does, the parameters are the problem's own. */
typedef struct {
    lmm_objective fn;
    void *ex;
    int nterms, any, ntheta, npar;
    const int *ncol;
    int *start;          /* each term's first theta index (nterms + 1) */
    int *cond;           /* 1: the term is conditioned */
    double *R;           /* the terms' conditioners, k x k each, at Rstart */
    int *Rstart;
    double *par;         /* the parameters of the last evaluation */
    double *work;        /* 2 kmax^2 */
    /* the problem's exact gradient in the lambdas, else NULL, and its
     * arguments (k_j x k_j each, at Rstart) */
    int (*lambda_gradient)(const double *lam, double *G, void *ex);
    double *glam, *gG;
} fit_space;

static void fit_space_init(fit_space *s, const lmm_problem *pb)
{
    const lmm_xprod *xp = pb->xp;
    int nterms = xp->nterms, kmax = 1;
    s->fn = pb->fn;
    s->ex = pb->ex;
    s->nterms = nterms;
    s->ncol = xp->ncol;
    s->start = (int *) R_alloc((size_t) nterms + 1, sizeof(int));
    s->Rstart = (int *) R_alloc((size_t) nterms + 1, sizeof(int));
    s->cond = (int *) R_alloc((size_t) nterms, sizeof(int));
    s->start[0] = s->Rstart[0] = 0;
    for (int j = 0; j < nterms; j++) {
        int k = xp->ncol[j];
        s->start[j + 1] = s->start[j] + k * (k + 1) / 2;
        s->Rstart[j + 1] = s->Rstart[j] + k * k;
        if (k > kmax) kmax = k;
    }
    s->ntheta = s->start[nterms];
    s->npar = s->ntheta + pb->nextra;
    s->R = (double *) R_alloc((size_t) s->Rstart[nterms], sizeof(double));
    s->par = (double *) R_alloc((size_t) s->npar, sizeof(double));
    s->work = (double *) R_alloc((size_t) 2 * kmax * kmax, sizeof(double));
    s->lambda_gradient = pb->nextra == 0 ? pb->lambda_gradient : NULL;
    s->glam = (double *) R_alloc((size_t) s->Rstart[nterms], sizeof(double));
    s->gG = (double *) R_alloc((size_t) s->Rstart[nterms], sizeof(double));
    s->any = 0;
    for (int j = 0; j < nterms; j++) {
        s->cond[j] = lmm_term_conditioner(xp, j, s->R + s->Rstart[j]);
        s->any |= s->cond[j];
    }
}

/* The problem's parameters from the optimizer's (to_space = 0) or back. */
static void map_space(fit_space *s, const double *from, double *to, int to_space)
{
    for (int j = 0; j < s->nterms; j++) {
        int k = s->ncol[j], i = s->start[j];
        if (!s->cond[j]) memcpy(to + i, from + i, (size_t) (s->start[j + 1] - i) * sizeof(double));
        else if (to_space) lmm_theta_to_conditioned(k, s->R + s->Rstart[j], from + i, to + i, s->work);
        else lmm_theta_from_conditioned(k, s->R + s->Rstart[j], from + i, to + i, s->work);
    }
    memcpy(to + s->ntheta, from + s->ntheta, (size_t) (s->npar - s->ntheta) * sizeof(double));
}

static double space_objective(const double *x, void *ex)
{
    fit_space *s = (fit_space *) ex;
    if (!s->any) return s->fn(x, s->ex);
    map_space(s, x, s->par, 0);
    return s->fn(s->par, s->ex);
}

/* The exact gradient in the optimizer's parameters x: each term's lambda_x
 * from x; the deviance depends on a lambda only through lambda lambda', so
 * at lambda = R^{-1} lambda_x (the conditioned map up to an orthogonal
 * factor) its gradient in lambda_x is R^{-T} G. */
static int space_gradient(const double *x, double *g, void *ex)
{
    fit_space *s = (fit_space *) ex;
    for (int j = 0; j < s->nterms; j++) {
        int k = s->ncol[j];
        double *lam = s->glam + s->Rstart[j];
        lmm_theta_unpack(k, x + s->start[j], lam);
        if (s->cond[j]) lmm_conditioner_solve(k, s->R + s->Rstart[j], lam);
    }
    if (s->lambda_gradient(s->glam, s->gG, s->ex) != 0) return 1;
    for (int j = 0; j < s->nterms; j++) {
        int k = s->ncol[j];
        double *G = s->gG + s->Rstart[j];
        if (s->cond[j]) lmm_conditioner_solve_t(k, s->R + s->Rstart[j], G);
        lmm_theta_pack(k, G, g + s->start[j]);
    }
    return 0;
}

/* The start: the given theta, or the identity in the conditioned space
 * (unit variances and no correlation for whitened columns) when that has
 * the lower deviance.  A caller's default start, the identity in theta, is
 * arbitrary in the units of a slope covariate: in seconds rather than days
 * it starts the search 1e5 away from the optimum. */
static void start_in_space(fit_space *s, double *x, double *work)
{
    for (int j = 0; j < s->nterms; j++) {
        int k = s->ncol[j];
        for (int c = 0, i = s->start[j]; c < k; c++)
            for (int r = c; r < k; r++) work[i++] = r == c ? 1.0 : 0.0;
    }
    memcpy(work + s->ntheta, x + s->ntheta, (size_t) (s->npar - s->ntheta) * sizeof(double));
    double f_given = space_objective(x, s), f_unit = space_objective(work, s);
    if (f_unit < f_given || !R_FINITE(f_given))
        memcpy(x, work, (size_t) s->npar * sizeof(double));
}

/* Leaving the boundary.  Where a diagonal entry of lambda is zero the
 * gradient says nothing: in the canonical form (theta.c) the column below it
 * is zero too, the deviance depends on that column c only through c c', and
 * so to second order through c' G c, G the derivative of the deviance with
 * respect to the term's covariance.  A quasi-Newton method sees a zero
 * gradient there and stops, minimum or not (lme4's BOBYQA samples around the
 * point and usually leaves).  Here G is estimated on each zero column from
 * its m (m + 1) / 2 second differences, and when it has a negative
 * eigenvalue the search moves along that eigenvector: a true descent
 * direction.  The diagonal direction alone is probed as well, at sizes where
 * the quadratic term no longer rules. */
#define ESCAPE_QSTEP 1e-2      /* the probes' size: O(t^4) terms stay 1e-4 relative */
#define ESCAPE_GAIN 1e-10      /* a relative decrease past the deviance's rounding noise */
static const double escape_sizes[] = {1e-3, 1e-2, 1e-1, 1.0, 10.0};
#define N_ESCAPE_SIZES ((int) (sizeof(escape_sizes) / sizeof(escape_sizes[0])))

typedef struct {
    int nt, kmax, lwork;
    double *xt, *best, *canon, *Q, *eig, *dir, *lwork_buf, *twork;
} escape_ws;

static void escape_ws_init(escape_ws *w, const lmm_xprod *xp, int nt)
{
    int kmax = 1;
    for (int j = 0; j < xp->nterms; j++) if (xp->ncol[j] > kmax) kmax = xp->ncol[j];
    w->nt = nt;
    w->kmax = kmax;
    w->lwork = 3 * kmax + 8;
    w->xt = (double *) R_alloc((size_t) nt, sizeof(double));
    w->best = (double *) R_alloc((size_t) nt, sizeof(double));
    w->canon = (double *) R_alloc((size_t) nt, sizeof(double));
    w->Q = (double *) R_alloc((size_t) kmax * kmax, sizeof(double));
    w->eig = (double *) R_alloc((size_t) kmax, sizeof(double));
    w->dir = (double *) R_alloc((size_t) kmax, sizeof(double));
    w->lwork_buf = (double *) R_alloc((size_t) w->lwork, sizeof(double));
    w->twork = (double *) R_alloc((size_t) 2 * kmax * kmax, sizeof(double));
}

/* f at x with the m entries at x + i0 replaced by s * dir. */
static double along(escape_ws *w, const double *x, int i0, int m, const double *dir, double s,
                    lmm_objective fn, void *ex)
{
    memcpy(w->xt, x, (size_t) w->nt * sizeof(double));
    for (int a = 0; a < m; a++) w->xt[i0 + a] = s * dir[a];
    return fn(w->xt, ex);
}

/* Turning a direction of the covariance.  In canonical form a rank-one share
 * l l' of a term's covariance sits in a later column c' while column j < c'
 * is zero; the same covariance has l in column j's lower part instead (and
 * column c' zero), and from there a small diagonal entry d turns l towards
 * axis j to first order (d l_j' terms), in one sense or the other with the
 * sign of l: a move the canonical form shows only to second order.  Probes
 * both senses from every such pair; keeps the best point in w->best. */
/* d relative to l's diagonal entry: a turn of about that many radians,
 * small enough for the first-order term to rule at one of them */
static const double rotate_steps[] = {1e-4, 1e-3, 1e-2, 1e-1};
#define N_ROTATE_STEPS ((int) (sizeof(rotate_steps) / sizeof(rotate_steps[0])))

static void rotate_column(escape_ws *w, const double *x, int t0, int k, int j, double *fbest,
                          lmm_objective fn, void *ex)
{
    int dj = t0 + j * k - j * (j - 1) / 2;          /* x index of (j, j) */
    for (int cp = j + 1; cp < k; cp++) {
        int dc = t0 + cp * k - cp * (cp - 1) / 2;   /* x index of (cp, cp) */
        if (x[dc] == 0.0) continue;
        for (int sense = -1; sense <= 1; sense += 2)
            for (int e = 0; e < N_ROTATE_STEPS; e++) {
                memcpy(w->xt, x, (size_t) w->nt * sizeof(double));
                for (int r = cp; r < k; r++) {      /* column cp's rows move to column j */
                    w->xt[dj + (r - j)] = sense * x[dc + (r - cp)];
                    w->xt[dc + (r - cp)] = 0.0;
                }
                w->xt[dj] = rotate_steps[e] * x[dc];
                double f = fn(w->xt, ex);
                if (f < *fbest) {
                    *fbest = f;
                    memcpy(w->best, w->xt, (size_t) w->nt * sizeof(double));
                }
            }
    }
}

/* Try the moves from one zero column (entries x[i0 .. i0 + m), the first the
 * diagonal); keeps the best point found in w->best, its value in *fbest. */
static void escape_column(escape_ws *w, const double *x, int i0, int m, double f0, double *fbest,
                          lmm_objective fn, void *ex)
{
    double *dir = w->dir, *Q = w->Q, t = ESCAPE_QSTEP;
    int canonical = 1;
    for (int a = 1; a < m; a++) canonical &= x[i0 + a] == 0.0;
    int ndir = 1;
    if (canonical && m > 1) {
        /* Q = G on the column: q(v) = (f(t v) - f0) / t^2 */
        for (int a = 0; a < m; a++) {
            memset(dir, 0, (size_t) m * sizeof(double));
            dir[a] = 1;
            Q[a + a * m] = (along(w, x, i0, m, dir, t, fn, ex) - f0) / (t * t);
        }
        for (int a = 0; a < m; a++)
            for (int b = 0; b < a; b++) {
                memset(dir, 0, (size_t) m * sizeof(double));
                dir[a] = dir[b] = 1;
                double q = (along(w, x, i0, m, dir, t, fn, ex) - f0) / (t * t);
                Q[a + b * m] = Q[b + a * m] = 0.5 * (q - Q[a + a * m] - Q[b + b * m]);
            }
        int info = 0, lwork = w->lwork;
        F77_CALL(dsyev)("V", "L", &m, Q, &m, w->eig, w->lwork_buf, &lwork, &info FCONE FCONE);
        ndir = (info == 0 && R_FINITE(w->eig[0]) && w->eig[0] < 0) ? 2 : 1;
    }
    for (int d = 0; d < ndir; d++) {
        if (d == 0) {            /* the diagonal entry alone */
            memset(dir, 0, (size_t) m * sizeof(double));
            dir[0] = 1;
        } else {                 /* the eigenvector of the most negative curvature */
            double sgn = Q[0] < 0 ? -1.0 : 1.0;
            for (int a = 0; a < m; a++) dir[a] = sgn * Q[a];
        }
        for (int e = 0; e < N_ESCAPE_SIZES; e++) {
            double f = along(w, x, i0, m, dir, escape_sizes[e], fn, ex);
            if (f < *fbest) {
                *fbest = f;
                memcpy(w->best, w->xt, (size_t) w->nt * sizeof(double));
            }
        }
    }
}

/* Every term with a zero diagonal entry in its canonical form (theta.c);
 * returns 1 when there is one.  The deviance is unchanged. */
static int canonical_form(const lmm_xprod *xp, double *x, double *work)
{
    int any = 0;
    for (int j = 0, i = 0; j < xp->nterms; i += xp->ncol[j] * (xp->ncol[j] + 1) / 2, j++)
        any |= lmm_theta_canonical_term(xp->ncol[j], x + i, work);
    return any;
}

/* The boundary as the moves above see it: diagonal entries below
 * NEAR_ZERO_DIAG set to zero (there the deviance depends on them through
 * their square: a gradient method that lands near zero stays, whether zero
 * is a minimum or a maximum along them), then the canonical form.  Moves from
 * every zero column of that point; returns 1 and moves x (and *f) when one
 * lowers the deviance past its rounding noise, else leaves x, or takes the
 * boundary point itself when it is no worse.  */
static int escape_boundary(const lmm_xprod *xp, double *x, double *f, lmm_objective fn, void *ex,
                           escape_ws *w)
{
    int nt = w->nt;
    double *base = w->canon;
    memcpy(base, x, (size_t) nt * sizeof(double));
    /* the canonical form moves what stood below a zeroed diagonal entry into
     * the columns after it, whose diagonal may then be near zero in turn */
    int any = canonical_form(xp, base, w->twork);
    for (int pass = 0; pass <= w->kmax; pass++) {
        int zeroed = 0;
        for (int j = 0, i = 0; j < xp->nterms; i += xp->ncol[j] * (xp->ncol[j] + 1) / 2, j++) {
            int k = xp->ncol[j];
            for (int c = 0, d = i; c < k; d += k - c, c++)
                if (base[d] > 0.0 && base[d] < NEAR_ZERO_DIAG) { base[d] = 0.0; zeroed = 1; }
        }
        if (!zeroed) break;
        any = canonical_form(xp, base, w->twork);
    }
    if (!any) return 0;
    /* the moves are judged against the current point, which need not be as
     * low as the boundary point they start from */
    double noise = ESCAPE_GAIN * fmax(1.0, fabs(*f));
    double fbase = fn(base, ex), fbest = *f;
    for (int j = 0, i = 0; j < xp->nterms; j++) {
        int k = xp->ncol[j], t0 = i;
        for (int c = 0; c < k; i += k - c, c++) {
            if (base[i] != 0.0) continue;
            escape_column(w, base, i, k - c, fbase, &fbest, fn, ex);
            rotate_column(w, base, t0, k, c, &fbest, fn, ex);
        }
    }
    if (fbest < *f - noise) {
        memcpy(x, w->best, (size_t) nt * sizeof(double));
        *f = fbest;
        return 1;
    }
    if (fbase <= *f) {
        memcpy(x, base, (size_t) nt * sizeof(double));
        *f = fbase;
    }
    return 0;
}

/* The other way to the boundary: an interior local minimum can lie above a
 * point where a column of some lambda, or its diagonal entry, is zero (a
 * variance component dropped; the deviance can have a minimum on each side
 * of the barrier that a slowly vanishing variance makes).  Each is tried;
 * returns 1 and moves x (and *f) to the lowest such point when it is lower
 * past the rounding noise. */
/* The candidate points of dropping: candidate 2 * c' + w of x (c' the
 * column's index over all terms, w = 0 the whole column, 1 its diagonal entry
 * alone) written into y; returns 1 for a candidate, -1 for one that is no
 * new point (a zero diagonal; the diagonal alone of a last column), 0 past
 * the last. */
static int dropped_point(const lmm_xprod *xp, const double *x, int n, int cand, double *y)
{
    int target = cand / 2, diag_only = cand % 2;
    for (int j = 0, i = 0, col = 0; j < xp->nterms; j++) {
        int k = xp->ncol[j];
        for (int c = 0; c < k; i += k - c, c++, col++) {
            if (col != target) continue;
            if (x[i] == 0.0 || (diag_only && c == k - 1)) return -1;
            memcpy(y, x, (size_t) n * sizeof(double));
            for (int a = 0; a < (diag_only ? 1 : k - c); a++) y[i + a] = 0.0;
            return 1;
        }
    }
    return 0;
}

static int drop_column(const lmm_xprod *xp, double *x, double *f, lmm_objective fn, void *ex,
                       escape_ws *w)
{
    int nt = w->nt, got;
    double noise = ESCAPE_GAIN * fmax(1.0, fabs(*f)), fbest = *f;
    for (int cand = 0; (got = dropped_point(xp, x, nt, cand, w->xt)) != 0; cand++) {
        if (got < 0) continue;
        double fd = fn(w->xt, ex);
        if (fd < fbest) {
            fbest = fd;
            memcpy(w->best, w->xt, (size_t) nt * sizeof(double));
        }
    }
    if (!(fbest < *f - noise)) return 0;
    memcpy(x, w->best, (size_t) nt * sizeof(double));
    *f = fbest;
    return 1;
}

/* Bounds for the Newton polish: the entries below a zero diagonal entry are
 * held where they are (escape_boundary() judges those directions), so that
 * the polish's Hessian covers the identified parameters only.  x must be in
 * canonical form: there those entries are zero, and what they held has moved
 * to the columns after them, where the polish sees it. */
static void pin_zero_columns(const lmm_xprod *xp, int npar, const double *x, const double *lower,
                             const double *upper, double *plo, double *pup)
{
    memcpy(plo, lower, (size_t) npar * sizeof(double));
    memcpy(pup, upper, (size_t) npar * sizeof(double));
    for (int j = 0, i = 0; j < xp->nterms; j++) {
        int k = xp->ncol[j];
        for (int c = 0; c < k; i += k - c, c++)
            if (x[i] == 0.0)
                for (int a = 1; a < k - c; a++) plo[i + a] = pup[i + a] = x[i + a];
    }
}

/* How many times the search may leave the boundary and start again: each
 * time lowers the deviance, and no design has needed more than two. */
#define MAX_ROUNDS 8
/* Problems with at most this many parameters get the Newton polish: its
 * finite-difference Hessian costs about 2 n^2 evaluations. */
#define SMALL_PROBLEM 10

/* The search's state: the space, the boundary workspace, the bounds (and
 * the polish's, with the zero columns pinned). */
typedef struct {
    const lmm_xprod *xp;
    fit_space *sp;
    escape_ws *ew;
    int npar, small, gradient_when_small;
    double *lower, *upper, *plo, *pup;
} search_ws;

/* The loose phase's L-BFGS-B tolerance (in units of machine epsilon): a
 * relative decrease of 2e-6 per iteration, where the Newton polish takes
 * over. */
#define LOOSE_FACTR 1e10
/* The loose phase's smallest forward-difference step: a rough gradient is
 * enough there, and a wider step sees through the deviance's rounding. */
#define LOOSE_FDSTEP 1e-7

/* One search from x (in place): L-BFGS-B to a loose tolerance, then Newton
 * steps: the flat tail of the deviance costs L-BFGS-B many evaluations and
 * Newton a few, and its wider finite-difference stencil sees through the
 * rounding noise.  A boundary point that is not a minimum, or a polish that
 * cannot finish, sends the search back to L-BFGS-B at full precision.
 * Returns 1 when the end point passed its checks; *f its value. */
static int search(search_ws *w, double *x, const lmm_optctl *ctl, lmm_optres *res, double *f)
{
    const lmm_xprod *xp = w->xp;
    fit_space *sp = w->sp;
    int npar = w->npar, done = 0, stalled = 0;
    lmm_optctl loose = *ctl;
    if (w->small) {
        /* the loose phase needs only a rough gradient: forward differences */
        loose.factr = fmax(ctl->factr, LOOSE_FACTR);
        loose.forward = 1;
        loose.fdstep = fmax(ctl->fdstep, LOOSE_FDSTEP);
    }
    /* L-BFGS-B's stopping rule is relative to |f|: on a deviance of 1e5 its
     * loose phase would stop a whole unit from the optimum.  Measured from the
     * starting value instead, the rule is relative to the decrease achieved. */
    loose.shift = 1;
    lmm_gradient_fn gr = sp->lambda_gradient ? space_gradient : NULL;
    lmm_minimize(npar, x, w->lower, w->upper, space_objective,
                 w->small && !w->gradient_when_small ? NULL : gr, sp, &loose, res);
    for (int round = 0; ; round++) {
        if (w->small) {
            canonical_form(xp, x, w->ew->twork);
            pin_zero_columns(xp, npar, x, w->lower, w->upper, w->plo, w->pup);
            done = newton_polish(npar, x, w->plo, w->pup, space_objective, sp, 20, POLISH_STEP);
        }
        lmm_snap_to_zero(npar, x, w->lower, space_objective, sp);
        *f = space_objective(x, sp);
        int moved = escape_boundary(xp, x, f, space_objective, sp, w->ew);
        /* about to settle: would dropping a variance component do better? */
        if (!moved && (done || stalled))
            moved = drop_column(xp, x, f, space_objective, sp, w->ew);
        if (!moved && (done || stalled)) return 1;
        if (round == MAX_ROUNDS) return 0;
        lmm_minimize(npar, x, w->lower, w->upper, space_objective, gr, sp, ctl, res);
        stalled = !moved && *f - res->fmin < 1e-12 * fmax(1.0, fabs(*f));
    }
}

/* Whether some diagonal entry of some lambda is zero (a singular fit). */
static int on_boundary(const lmm_xprod *xp, const double *x)
{
    for (int j = 0, i = 0; j < xp->nterms; j++) {
        int k = xp->ncol[j];
        for (int c = 0; c < k; i += k - c, c++)
            if (x[i] == 0.0) return 1;
    }
    return 0;
}

/* A singular end point can be a local minimum on the boundary (the
 * covariance of rank one, say) with the optimum inside, in another basin:
 * no local move shows it (measured: 35 of 10,000 random designs, up to 5
 * units of deviance).  So a search that ends singular is repeated from the
 * interior: the same point with each zero diagonal entry set to
 * RESTART_DIAG; the identity in the conditioned parameters; and the end
 * point's standard deviations without its correlations.  The lowest end
 * point is kept.  Fits that end inside pay nothing. */
#define N_RESTARTS 3
#define RESTART_DIAG 1.0   /* a random-effect SD equal to the residual SD, in
                              the conditioned (unit-free) parameters */

static void restart_from_interior(search_ws *w, double *x, double *f, int *settled,
                                  const lmm_optctl *ctl, lmm_optres *res, int nrestarts)
{
    const lmm_xprod *xp = w->xp;
    int npar = w->npar;
    double *y = (double *) R_alloc((size_t) npar, sizeof(double));
    double noise = ESCAPE_GAIN * fmax(1.0, fabs(*f));
    for (int start = 0; start < nrestarts; start++) {
        memcpy(y, x, (size_t) npar * sizeof(double));
        for (int j = 0, i = 0; j < xp->nterms; j++) {
            int k = xp->ncol[j];
            for (int c = 0, d = i; c < k; d += k - c, c++) {
                /* each effect's standard deviation in the end point */
                double sd = 0;
                for (int cc = 0, e = i; cc <= c; e += k - cc, cc++) sd += x[e + c - cc] * x[e + c - cc];
                sd = sqrt(sd);
                for (int r = c; r < k; r++) {
                    double *v = y + d + r - c;
                    switch (start) {
                    case 0: if (r == c && *v == 0.0) *v = RESTART_DIAG; break;
                    case 1: *v = r == c ? 1.0 : 0.0; break;
                    default: *v = r == c ? (sd > 0 ? sd : RESTART_DIAG) : 0.0; break;
                    }
                }
            }
            i += k * (k + 1) / 2;
        }
        double fy;
        lmm_optres ry = *res;
        int sy = search(w, y, ctl, &ry, &fy);
        if (fy < *f - noise) {
            memcpy(x, y, (size_t) npar * sizeof(double));
            *f = fy;
            *settled = sy;
            *res = ry;
        }
    }
}

/* The reverse: an end point inside can hide a lower optimum on a boundary
 * face (a covariance of lower rank, measured: 1 of 1,500 random designs,
 * 0.05 units).  Where dropping a column of some lambda, or its diagonal
 * entry, costs less than FACE_MARGIN units of deviance, the search is
 * repeated from that point (it then runs on the face, where the dropped
 * entry has no gradient); the lowest end point is kept.  A component whose
 * dropping costs more is clearly needed: nothing is searched. */
#define FACE_MARGIN 1.0

static void search_faces(search_ws *w, double *x, double *f, int *settled,
                         const lmm_optctl *ctl, lmm_optres *res)
{
    const lmm_xprod *xp = w->xp;
    int npar = w->npar;
    double *y = (double *) R_alloc((size_t) npar, sizeof(double));
    double *x0 = (double *) R_alloc((size_t) npar, sizeof(double));
    memcpy(x0, x, (size_t) npar * sizeof(double));
    double noise = ESCAPE_GAIN * fmax(1.0, fabs(*f)), f0 = *f;
    for (int cand = 0, got; (got = dropped_point(xp, x0, npar, cand, y)) != 0; cand++) {
        if (got < 0 || !(space_objective(y, w->sp) < f0 + FACE_MARGIN)) continue;
        double fy;
        lmm_optres ry = *res;
        int sy = search(w, y, ctl, &ry, &fy);
        if (fy < *f - noise) {
            memcpy(x, y, (size_t) npar * sizeof(double));
            *f = fy;
            *settled = sy;
            *res = ry;
        }
    }
}

/* A problem with theta held fixed: only the extra parameters move, in
 * their own units, with no search of theta's boundary.  The stages of
 * search(): a loose L-BFGS-B run (forward differences for small problems),
 * the Newton polish for small problems, and L-BFGS-B at full precision only
 * when the polish could not finish. */
typedef struct {
    const lmm_problem *pb;
    double *full;        /* theta, then the extra parameters being tried */
    int nt;
} extras_ws;

static double extras_objective(const double *x, void *ex)
{
    extras_ws *e = (extras_ws *) ex;
    memcpy(e->full + e->nt, x, (size_t) e->pb->nextra * sizeof(double));
    return e->pb->fn(e->full, e->pb->ex);
}

static void drive_extras(const lmm_problem *pb, double *par, const lmm_optctl *ctl, lmm_optres *res,
                         double *grad, double *scaled)
{
    int nt = lmm_ntheta(pb->xp), ne = pb->nextra;
    extras_ws e = {pb, (double *) R_alloc((size_t) nt + ne, sizeof(double)), nt};
    memcpy(e.full, par, (size_t) (nt + ne) * sizeof(double));
    double *x = par + nt;
    const double *lower = pb->extra_lower, *upper = pb->extra_upper;
    int small = ne <= SMALL_PROBLEM;
    lmm_optctl loose = *ctl;
    loose.factr = fmax(ctl->factr, LOOSE_FACTR);
    loose.shift = 1;
    if (small) {
        loose.forward = 1;
        loose.fdstep = fmax(ctl->fdstep, LOOSE_FDSTEP);
    }
    lmm_minimize(ne, x, lower, upper, extras_objective, NULL, &e, &loose, res);
    int settled = small ? newton_polish(ne, x, lower, upper, extras_objective, &e, 20, POLISH_STEP) : 0;
    lmm_optres full = *res;
    full.fail = 0;
    if (!settled) lmm_minimize(ne, x, lower, upper, extras_objective, NULL, &e, ctl, &full);
    *res = full;
    res->fmin = extras_objective(x, &e);
    if (grad) {
        for (int i = 0; i < nt; i++) {
            grad[i] = 0;
            scaled[i] = NA_REAL;
        }
        report_derivatives(ne, x, lower, upper, extras_objective, &e, grad + nt, scaled + nt);
        for (int i = 0; i < ne; i++) {
            double *g = grad + nt + i;
            int outward = (x[i] <= lower[i] && *g > 0) || (x[i] >= upper[i] && *g < 0);
            if (R_FINITE(*g) && outward) *g = scaled[nt + i] = 0.0;
        }
    }
    res->settled = settled || full.fail == 0;
}

void lmm_drive(const lmm_problem *pb, double *par, const lmm_optctl *ctl, lmm_optres *res,
               double *grad, double *scaled)
{
    if (pb->fixed_theta) {
        drive_extras(pb, par, ctl, res, grad, scaled);
        return;
    }
    const lmm_xprod *xp = pb->xp;
    fit_space sp;
    fit_space_init(&sp, pb);
    int nt = sp.ntheta, npar = sp.npar;
    escape_ws ew;
    escape_ws_init(&ew, xp, npar);
    search_ws w = {xp, &sp, &ew, npar, npar <= SMALL_PROBLEM, pb->gradient_when_small,
                   (double *) R_alloc((size_t) npar, sizeof(double)),
                   (double *) R_alloc((size_t) npar, sizeof(double)),
                   (double *) R_alloc((size_t) npar, sizeof(double)),
                   (double *) R_alloc((size_t) npar, sizeof(double))};
    double *lower = w.lower, *upper = w.upper;
    double *x = (double *) R_alloc((size_t) npar, sizeof(double));
    lmm_theta_lower(xp, lower);
    for (int i = 0; i < nt; i++) upper[i] = R_PosInf;
    for (int i = 0; i < pb->nextra; i++) {
        lower[nt + i] = pb->extra_lower[i];
        upper[nt + i] = pb->extra_upper[i];
    }
    map_space(&sp, par, x, 1);
    if (sp.any) start_in_space(&sp, x, ew.xt);
    double f;
    int settled = search(&w, x, ctl, res, &f);
    if (on_boundary(xp, x)) restart_from_interior(&w, x, &f, &settled, ctl, res, pb->local ? 1 : N_RESTARTS);
    else if (!pb->local) search_faces(&w, x, &f, &settled, ctl, res);
    map_space(&sp, x, par, 0);
    res->fmin = pb->fn(par, pb->ex);
    if (grad) {
        /* in the optimizer's parameters: free of the covariates' units, and
         * on the stencil of the polish's last iteration (remembered by the
         * plain fit's objective) */
        report_derivatives(npar, x, lower, upper, space_objective, &sp, grad, scaled);
        /* a derivative pointing out of the feasible region at an active
         * bound is no sign of a failed optimisation */
        for (int i = 0; i < npar; i++) {
            int outward = (x[i] <= lower[i] && grad[i] > 0) || (x[i] >= upper[i] && grad[i] < 0);
            if (R_FINITE(grad[i]) && outward) grad[i] = scaled[i] = 0.0;
        }
    }
    res->settled = settled;
}

/* One term of at least this many columns is optimised with its exact
 * gradient.  (1 | g) and (x | g) have an evaluation written out
 * (factor_one_small_term) that the gradient's general loops do not beat:
 * with them 2,500 groups of (time | id) took 10.9 ms per fit instead of 8.7
 * (50 evaluations instead of 60); from 3 columns (6 parameters) fewer
 * evaluations win: -46% of them and -27% CPU on the optimum battery's
 * (x + z | g) designs. */
#define EXACT_GRADIENT_MIN_COLUMNS 3
/* From this many covariance parameters the exact gradient drives the loose
 * phase of problems small enough for the Newton polish as well.  Below it,
 * forward differences cost about what the gradient does (n + 1 evaluations
 * against one and a gradient of about two), and measured they less often
 * lead onto a boundary that then costs rounds of escapes: nested40k-slope (4
 * parameters) took 113 evaluations with differences and 271 with the
 * gradient; on 200 random 6-parameter crossed and nested slope designs
 * (tools/multiterm-battery.R) the gradient took 36% fewer.  One term of 3
 * columns has 6 parameters: the same rule. */
#define LOOSE_GRADIENT_MIN_THETA 6
/* Several terms with at least this many covariance parameters are
 * optimised with the selected inverse's gradient (gradient.c), unless the
 * tail is factored sparse: its inverse is formed dense, which costs more
 * than the sparse factorisation saves. */
#define SELECTED_GRADIENT_MIN_THETA 3

void lmm_optimize(const lmm_xprod *xp, double *theta, int reml,
                  const lmm_optctl *ctl, lmm_optres *res, double *grad, double *scaled)
{
    lmm_factor fa;
    lmm_factor_alloc(xp, &fa);
    deviance_ex dev;
    deviance_ex_init(&dev, xp, &fa, reml, ctl->sigma, 1);
    lmm_problem pb = {xp, 0, NULL, NULL, deviance_objective, &dev, NULL, 0, 0, 0};
    /* (gradient.c differentiates the profiled criterion only) */
    if (xp->nterms == 1 && xp->ncol[0] >= EXACT_GRADIENT_MIN_COLUMNS && ctl->sigma == 0) {
        /* one term: its exact gradient costs about two evaluations, finite
         * differences one or two per parameter (with many parameters they
         * also crawl along a singular optimum) */
        dev.gwork = (double *) R_alloc(lmm_term_gradient_work(xp), sizeof(double));
        pb.lambda_gradient = deviance_lambda_gradient;
        pb.gradient_when_small = 1;
    } else if (xp->nterms > 1 && lmm_ntheta(xp) >= SELECTED_GRADIENT_MIN_THETA && ctl->sigma == 0 &&
               fa.tail == NULL) {
        deviance_ex_selected(&dev);
        pb.lambda_gradient = deviance_lambda_gradient;
        pb.gradient_when_small = lmm_ntheta(xp) >= LOOSE_GRADIENT_MIN_THETA;
    }
    lmm_drive(&pb, theta, ctl, res, grad, scaled);
    /* factorisations done (not values remembered), an exact gradient
     * counted as the two evaluations' work it takes */
    res->fncount = dev.nevals + 2 * dev.ngrads;
}

/* The gradient at a bootstrap refit's optimum (a fit's own comes from
 * lmm_optimize()): central differences with a step of at least 1e-4
 * relative, past the deviance's rounding noise. */
void lmm_gradient(const lmm_xprod *xp, const double *theta, int reml, double h,
                  lmm_factor *fa, double *grad)
{
    int nt = lmm_ntheta(xp);
    deviance_ex ex;
    deviance_ex_init(&ex, xp, fa, reml, 0, 0);
    double *lower = (double *) R_alloc((size_t) nt, sizeof(double));
    lmm_theta_lower(xp, lower);
    lmm_fd_gradient(nt, theta, lower, theta_upper(nt), deviance_objective, &ex, fmax(h, 1e-4), grad);
}

static double list_real(SEXP list, const char *name, double dflt)
{
    SEXP names = getAttrib(list, R_NamesSymbol);
    if (isNull(names)) return dflt;
    for (int i = 0; i < LENGTH(list); i++)
        if (!strcmp(CHAR(STRING_ELT(names, i)), name)) {
            double v = asReal(VECTOR_ELT(list, i));
            if (ISNAN(v)) error(_("control value '%s' must be a number"), name);
            return v;
        }
    return dflt;
}

void lmm_unpack_control(SEXP control, lmm_optctl *ctl)
{
    if (TYPEOF(control) != VECSXP || (LENGTH(control) > 0 && isNull(getAttrib(control, R_NamesSymbol))))
        error(_("'control' must be a named list"));
    double maxit = list_real(control, "maxit", 1000);
    ctl->maxit = maxit > 1e8 ? 100000000 : maxit < 1 ? 0 : (int) maxit;
    ctl->factr = list_real(control, "factr", 10);
    ctl->pgtol = list_real(control, "pgtol", 0);
    ctl->fdstep = list_real(control, "fdstep", 1e-6);
    ctl->trace = list_real(control, "trace", 0) != 0;
    ctl->forward = 0;
    ctl->shift = 0;
    ctl->sigma = list_real(control, "sigma", 0);
    if (!(ctl->sigma >= 0) || !R_FINITE(ctl->sigma))
        error(_("control value 'sigma' must be a positive number (or 0: profiled)"));
    if (ctl->maxit < 1 || !(ctl->factr > 0) || !(ctl->fdstep > 0))
        error(_("'maxit', 'factr' and 'fdstep' must be positive"));
}

/* The gradient over the square root of the diagonal curvature, as lme4
 * scales its convergence check: an absolute gradient says little on a
 * deviance of 1e5 or more, where the finite-difference gradient's rounding
 * noise alone can exceed any fixed tolerance.  NA where the curvature is not
 * positive.  Second differences at a step of 1e-3 relative (one-sided at a
 * bound): 2 evaluations per parameter. */
static void lmm_fd_scaled_gradient(int n, const double *x, const double *lower, const double *upper,
                                   lmm_objective fn, void *ex, const double *grad, double *scaled)
{
    double *xt = (double *) R_alloc((size_t) n, sizeof(double));
    memcpy(xt, x, (size_t) n * sizeof(double));
    double f0 = fn(x, ex);
    for (int i = 0; i < n; i++) {
        double h = 1e-3 * fmax(1.0, fabs(x[i])), curv;
        if (x[i] - h >= lower[i] && x[i] + h <= upper[i]) {
            xt[i] = x[i] + h; double fp = fn(xt, ex);
            xt[i] = x[i] - h; double fm = fn(xt, ex);
            curv = (fp - 2 * f0 + fm) / (h * h);
        } else {
            double s = x[i] + 2 * h <= upper[i] ? h : -h;
            xt[i] = x[i] + s; double f1 = fn(xt, ex);
            xt[i] = x[i] + 2 * s; double f2 = fn(xt, ex);
            curv = (f2 - 2 * f1 + f0) / (h * h);
        }
        xt[i] = x[i];
        scaled[i] = (R_FINITE(curv) && curv > 0) ? grad[i] / sqrt(curv) : NA_REAL;
    }
}

void lmm_scaled_gradient(const lmm_xprod *xp, const double *theta, int reml,
                         const double *grad, lmm_factor *fa, double *scaled)
{
    int nt = lmm_ntheta(xp);
    deviance_ex ex;
    deviance_ex_init(&ex, xp, fa, reml, 0, 0);
    double *lower = (double *) R_alloc((size_t) nt, sizeof(double));
    lmm_theta_lower(xp, lower);
    lmm_fd_scaled_gradient(nt, theta, lower, theta_upper(nt), deviance_objective, &ex, grad, scaled);
}

void lmm_fill_drive_result(SEXP ans, SEXP par, const lmm_optres *res, int feval, SEXP grad, SEXP scaled)
{
    SET_VECTOR_ELT(ans, 0, par);
    SET_VECTOR_ELT(ans, 1, ScalarReal(res->fmin));
    SET_VECTOR_ELT(ans, 2, ScalarInteger(feval));
    SET_VECTOR_ELT(ans, 3, ScalarInteger(res->fail));
    SET_VECTOR_ELT(ans, 4, mkString(res->msg));
    SET_VECTOR_ELT(ans, 5, grad);
    SET_VECTOR_ELT(ans, 6, scaled);
    SET_VECTOR_ELT(ans, 7, ScalarLogical(res->settled));
}

SEXP lmm_optimize_R(SEXP sxp, SEXP stheta, SEXP sreml, SEXP control)
{
    int nprot = 0;
    lmm_xprod xp;
    lmm_unpack_xprod(sxp, &xp);
    int nt = lmm_ntheta(&xp), reml = lmm_arg_flag(sreml, "REML");
    lmm_arg_finite(stheta, nt, "theta");
    lmm_optctl ctl;
    lmm_unpack_control(control, &ctl);
    SEXP theta = PROTECT(duplicate(stheta)); nprot++;
    SEXP grad = PROTECT(allocVector(REALSXP, nt)); nprot++;
    SEXP scaled = PROTECT(allocVector(REALSXP, nt)); nprot++;
    lmm_optres res;
    lmm_optimize(&xp, REAL(theta), reml, &ctl, &res, REAL(grad), REAL(scaled));

    const char *names[] = {"theta", "deviance", "feval", "convergence", "message", "gradient",
                           "scaled_gradient", "settled", ""};
    SEXP ans = PROTECT(mkNamed(VECSXP, names)); nprot++;
    lmm_fill_drive_result(ans, theta, &res, res.fncount, grad, scaled);
    UNPROTECT(nprot);
    return ans;
}
