/* Bound-constrained minimisation entirely in C: R's L-BFGS-B (R_ext/Applic.h)
 * driven by a finite-difference gradient (one-sided at active bounds).  The
 * objective is any C function of the parameters; lmm_optimize() wraps the
 * profiled deviance of a plain fit, and other models (AR(1) residuals, the
 * bootstrap's refits) pass their own objective. */
#include <float.h>
#include <math.h>
#include <string.h>
#include "lapack.h"
#include <Rinternals.h>
#include <R_ext/Applic.h>
#include "model.h"
#include "lmmfit.h"

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
    fd_gradient(e->pr, n, x, grad, e->work);
    for (int i = 0; i < n; i++) if (!R_FINITE(grad[i])) grad[i] = 0;
}

void lmm_minimize(int n, double *x, const double *lower, const double *upper,
                  lmm_objective fn, void *ex, const lmm_optctl *ctl, lmm_optres *res)
{
    fd_problem pr = {fn, ex, lower, upper, ctl->fdstep, 0, ctl->forward,
                     (double *) R_alloc((size_t) n, sizeof(double)), NA_REAL, n, 0.0};
    lbfgsb_ex lex = {&pr, (double *) R_alloc((size_t) n, sizeof(double))};
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

void lmm_fd_gradient(int n, const double *x, const double *lower, const double *upper,
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
 * decreases.  Small problems only (the Hessian costs 2 n^2 evaluations). */
typedef struct { lmm_objective fn; void *ex; int count; } counted_fn;

/* The polish's relative step: its stencils are at twice this. */
#define POLISH_STEP 1e-4

static double counted(const double *x, void *ex)
{
    counted_fn *c = (counted_fn *) ex;
    c->count++;
    return c->fn(x, c->ex);
}

/* Returns 1 when the Newton decrement (the predicted decrease of the
 * objective) became negligible: the optimum is reached to the objective's
 * precision. */
static int newton_polish_impl(int n, double *x, const double *lower, const double *upper,
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

int lmm_newton_polish(int n, double *x, const double *lower, const double *upper,
                      lmm_objective fn, void *ex, int maxit, double h, int *fevals)
{
    counted_fn c = {fn, ex, 0};
    int done = newton_polish_impl(n, x, lower, upper, counted, &c, maxit, h);
    if (fevals) *fevals += c.count;
    return done;
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
    int nt, nevals, nmem;   /* nevals: factorisations actually done */
    double *mem_x, *mem_f;  /* NULL: no memory */
} deviance_ex;

static void deviance_ex_init(deviance_ex *d, const lmm_xprod *xp, lmm_factor *fa, int reml,
                             int remember)
{
    d->xp = xp;
    d->fa = fa;
    d->reml = reml;
    d->nt = lmm_ntheta(xp);
    d->nevals = d->nmem = 0;
    d->mem_x = remember ? (double *) R_alloc((size_t) DEV_MEMORY * d->nt, sizeof(double)) : NULL;
    d->mem_f = remember ? (double *) R_alloc(DEV_MEMORY, sizeof(double)) : NULL;
}

static double deviance_objective(const double *theta, void *ex)
{
    deviance_ex *d = (deviance_ex *) ex;
    size_t bytes = (size_t) d->nt * sizeof(double);
    int held = d->nmem < DEV_MEMORY ? d->nmem : DEV_MEMORY;
    for (int k = 0; d->mem_x && k < held; k++)
        if (!memcmp(d->mem_x + (size_t) k * d->nt, theta, bytes)) return d->mem_f[k];
    /* an evaluation with a large dense block takes milliseconds to seconds:
     * check for an interrupt at every one (eval_fn checks every 64th) */
    if (d->xp->q2 >= 256 || d->xp->nlev[0] >= 65536) R_CheckUserInterrupt();
    double f = lmm_deviance(d->xp, theta, d->reml, d->fa);
    d->nevals++;
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

/* A diagonal element of lambda at zero is a stationary point of the deviance
 * whatever the data (it depends on that element through its square), and
 * near zero the gradient is proportionally small, so a gradient method that
 * lands there stays even when zero is a maximum along that direction.  Probe
 * a few values off the bound for every diagonal element below 1e-3; return 1
 * and move theta when one of them is lower. */
static int escape_zero(int nt, double *theta, const double *lower, double f0,
                       lmm_objective fn, void *ex)
{
    static const double probes[] = {1e-3, 1e-2, 1e-1, 1.0};
    int moved = 0;
    for (int i = 0; i < nt; i++) {
        if (lower[i] != 0.0 || theta[i] >= 1e-3) continue;
        double start = theta[i], best = f0, at = start;
        for (size_t k = 0; k < sizeof(probes) / sizeof(probes[0]); k++) {
            theta[i] = probes[k];
            double f = fn(theta, ex);
            if (f < best - 1e-10 * fmax(1.0, fabs(f0))) { best = f; at = probes[k]; }
        }
        theta[i] = at;
        if (at != start) { moved = 1; f0 = best; }
    }
    return moved;
}

/* Diagonal elements of lambda left just above zero are set to zero when the
 * deviance there is no higher: the optimum is on the bound (a singular fit),
 * which a finite-difference method approaches but need not reach. */
void lmm_snap_to_zero(int n, double *x, const double *lower, lmm_objective fn, void *ex)
{
    double f = fn(x, ex);
    for (int i = 0; i < n; i++) {
        if (lower[i] != 0.0 || x[i] <= 0.0 || x[i] >= 1e-3) continue;
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

void lmm_optimize(const lmm_xprod *xp, double *theta, int reml,
                  const lmm_optctl *ctl, lmm_optres *res, double *grad, double *scaled)
{
    int nt = lmm_ntheta(xp);
    lmm_factor fa;
    lmm_factor_alloc(xp, &fa);
    deviance_ex ex;
    deviance_ex_init(&ex, xp, &fa, reml, 1);
    double *lower = (double *) R_alloc((size_t) nt, sizeof(double));
    double *upper = theta_upper(nt);
    lmm_theta_lower(xp, lower);
    /* L-BFGS-B to a loose tolerance, then Newton steps: the flat tail of the
     * deviance costs L-BFGS-B many evaluations and Newton a few, and its
     * wider finite-difference stencil sees through the rounding noise.  A
     * zero that is not a minimum, or a polish that cannot finish, sends the
     * search back to L-BFGS-B at full precision. */
    int small = nt <= 10, done = 0;
    lmm_optctl loose = *ctl;
    if (small) {
        /* the loose phase needs only a rough gradient: forward differences */
        loose.factr = fmax(ctl->factr, 1e10);
        loose.forward = 1;
        loose.fdstep = fmax(ctl->fdstep, 1e-7);
    }
    /* L-BFGS-B's stopping rule is relative to |f|: on a deviance of 1e5 its
     * loose phase would stop a whole unit from the optimum.  Measured from the
     * starting value instead, the rule is relative to the decrease achieved. */
    loose.shift = 1;
    lmm_minimize(nt, theta, lower, upper, deviance_objective, &ex, &loose, res);
    for (int round = 0; round < 3; round++) {
        if (small) done = lmm_newton_polish(nt, theta, lower, upper, deviance_objective, &ex,
                                            20, POLISH_STEP, NULL);
        double f = deviance_objective(theta, &ex);
        int moved = escape_zero(nt, theta, lower, f, deviance_objective, &ex);
        if (done && !moved) break;
        double before = f;
        lmm_minimize(nt, theta, lower, upper, deviance_objective, &ex, ctl, res);
        if (!small && !moved && before - res->fmin < 1e-12 * fmax(1.0, fabs(before))) break;
    }
    lmm_snap_to_zero(nt, theta, lower, deviance_objective, &ex);
    res->fmin = deviance_objective(theta, &ex);
    if (grad) report_derivatives(nt, theta, lower, upper, deviance_objective, &ex, grad, scaled);
    res->fncount = ex.nevals;     /* factorisations done, not values remembered */
}

/* The gradient at a bootstrap refit's optimum (a fit's own comes from
 * lmm_optimize()): central differences with a step of at least 1e-4
 * relative, past the deviance's rounding noise. */
void lmm_gradient(const lmm_xprod *xp, const double *theta, int reml, double h,
                  lmm_factor *fa, double *grad)
{
    int nt = lmm_ntheta(xp);
    deviance_ex ex;
    deviance_ex_init(&ex, xp, fa, reml, 0);
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
    if (ctl->maxit < 1 || !(ctl->factr > 0) || !(ctl->fdstep > 0))
        error(_("'maxit', 'factr' and 'fdstep' must be positive"));
}

/* The gradient over the square root of the diagonal curvature, as lme4
 * scales its convergence check: an absolute gradient says little on a
 * deviance of 1e5 or more, where the finite-difference gradient's rounding
 * noise alone can exceed any fixed tolerance.  NA where the curvature is not
 * positive.  Second differences at a step of 1e-3 relative (one-sided at a
 * bound): 2 evaluations per parameter. */
void lmm_fd_scaled_gradient(int n, const double *x, const double *lower, const double *upper,
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
    deviance_ex_init(&ex, xp, fa, reml, 0);
    double *lower = (double *) R_alloc((size_t) nt, sizeof(double));
    lmm_theta_lower(xp, lower);
    lmm_fd_scaled_gradient(nt, theta, lower, theta_upper(nt), deviance_objective, &ex, grad, scaled);
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
                           "scaled_gradient", ""};
    SEXP ans = PROTECT(mkNamed(VECSXP, names)); nprot++;
    SET_VECTOR_ELT(ans, 0, theta);
    SET_VECTOR_ELT(ans, 1, ScalarReal(res.fmin));
    SET_VECTOR_ELT(ans, 2, ScalarInteger(res.fncount));
    SET_VECTOR_ELT(ans, 3, ScalarInteger(res.fail));
    SET_VECTOR_ELT(ans, 4, mkString(res.msg));
    SET_VECTOR_ELT(ans, 5, grad);
    SET_VECTOR_ELT(ans, 6, scaled);
    UNPROTECT(nprot);
    return ans;
}
