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
    for (int i = 0; i < n; i++) {
        double step = pr->h * fmax(1.0, fabs(x[i]));
        int down_ok = x[i] - step >= pr->lower[i], up_ok = x[i] + step <= pr->upper[i];
        if (down_ok && up_ok) {
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
    (void) n;
    double f = eval_fn(((lbfgsb_ex *) ex)->pr, x);
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
    fd_problem pr = {fn, ex, lower, upper, ctl->fdstep, 0};
    lbfgsb_ex lex = {&pr, (double *) R_alloc((size_t) n, sizeof(double))};
    int *nbd = (int *) R_alloc((size_t) n, sizeof(int));
    for (int i = 0; i < n; i++) {
        int lo = R_FINITE(lower[i]), up = R_FINITE(upper[i]);
        nbd[i] = lo && up ? 2 : lo ? 1 : up ? 3 : 0;
        if (x[i] < lower[i]) x[i] = lower[i];
        if (x[i] > upper[i]) x[i] = upper[i];
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
    fd_problem pr = {fn, ex, lower, upper, h, 0};
    fd_gradient(&pr, n, x, grad, (double *) R_alloc((size_t) n, sizeof(double)));
}

/* The profiled deviance of a plain fit as an lmm_objective. */
typedef struct {
    const lmm_xprod *xp;
    lmm_factor *fa;
    int reml;
} deviance_ex;

static double deviance_objective(const double *theta, void *ex)
{
    deviance_ex *d = (deviance_ex *) ex;
    return lmm_deviance(d->xp, theta, d->reml, d->fa);
}

static double *theta_upper(int nt)
{
    double *upper = (double *) R_alloc((size_t) nt, sizeof(double));
    for (int i = 0; i < nt; i++) upper[i] = R_PosInf;
    return upper;
}

/* Largest gradient component that could still move x inside the bounds. */
static double projected_gradient(int n, const double *x, const double *lower,
                                 const double *upper, const double *g)
{
    double gmax = 0;
    for (int i = 0; i < n; i++) {
        if (x[i] <= lower[i] && g[i] > 0) continue;
        if (x[i] >= upper[i] && g[i] < 0) continue;
        if (fabs(g[i]) > gmax) gmax = fabs(g[i]);
    }
    return gmax;
}

/* A diagonal element of lambda at exactly zero is a stationary point of the
 * deviance whatever the data (it depends on that element through its square),
 * so a gradient method that lands there stays.  Probe a few values off the
 * bound; return 1 and move theta when one of them is lower. */
static int escape_zero(int nt, double *theta, const double *lower, double f0,
                       lmm_objective fn, void *ex)
{
    static const double probes[] = {1e-2, 1e-1, 1.0};
    int moved = 0;
    for (int i = 0; i < nt; i++) {
        if (lower[i] != 0.0 || theta[i] != 0.0) continue;
        double best = f0, at = 0.0;
        for (size_t k = 0; k < sizeof(probes) / sizeof(probes[0]); k++) {
            theta[i] = probes[k];
            double f = fn(theta, ex);
            if (f < best - 1e-10 * fmax(1.0, fabs(f0))) { best = f; at = probes[k]; }
        }
        theta[i] = at;
        if (at > 0) { moved = 1; f0 = best; }
    }
    return moved;
}

void lmm_optimize(const lmm_xprod *xp, double *theta, int reml,
                  const lmm_optctl *ctl, lmm_optres *res)
{
    int nt = lmm_ntheta(xp);
    lmm_factor fa;
    lmm_factor_alloc(xp, &fa);
    deviance_ex ex = {xp, &fa, reml};
    double *lower = (double *) R_alloc((size_t) nt, sizeof(double));
    double *upper = theta_upper(nt);
    double *grad = (double *) R_alloc((size_t) nt, sizeof(double));
    lmm_theta_lower(xp, lower);
    lmm_minimize(nt, theta, lower, upper, deviance_objective, &ex, ctl, res);
    /* L-BFGS-B can stop short (its line search gives up on the rounding noise
     * of a finite-difference gradient) or sit on a zero that is not a minimum:
     * restart it from where it stopped while either happens. */
    int fevals = res->fncount;
    for (int round = 0; round < 4; round++) {
        int moved = escape_zero(nt, theta, lower, res->fmin, deviance_objective, &ex);
        lmm_fd_gradient(nt, theta, lower, upper, deviance_objective, &ex, ctl->fdstep, grad);
        fevals += 2 * nt + 3 * nt;
        if (!moved && projected_gradient(nt, theta, lower, upper, grad) < 1e-6) break;
        double before = res->fmin;
        lmm_minimize(nt, theta, lower, upper, deviance_objective, &ex, ctl, res);
        fevals += res->fncount;
        if (!moved && before - res->fmin < 1e-12 * fmax(1.0, fabs(before))) break;
    }
    res->fncount = fevals;
}

void lmm_gradient(const lmm_xprod *xp, const double *theta, int reml, double h,
                  lmm_factor *fa, double *grad)
{
    int nt = lmm_ntheta(xp);
    deviance_ex ex = {xp, fa, reml};
    double *lower = (double *) R_alloc((size_t) nt, sizeof(double));
    lmm_theta_lower(xp, lower);
    lmm_fd_gradient(nt, theta, lower, theta_upper(nt), deviance_objective, &ex, h, grad);
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
    if (!isNewList(control)) error(_("'control' must be a list"));
    ctl->maxit = (int) list_real(control, "maxit", 1000);
    ctl->factr = list_real(control, "factr", 10);
    ctl->pgtol = list_real(control, "pgtol", 0);
    ctl->fdstep = list_real(control, "fdstep", 1e-6);
    ctl->trace = (int) list_real(control, "trace", 0);
    if (ctl->maxit < 1 || !(ctl->factr > 0) || !(ctl->fdstep > 0))
        error(_("'maxit', 'factr' and 'fdstep' must be positive"));
}

SEXP lmm_optimize_R(SEXP sxp, SEXP stheta, SEXP sreml, SEXP control)
{
    int nprot = 0;
    lmm_xprod xp;
    lmm_unpack_xprod(sxp, &xp);
    int nt = lmm_ntheta(&xp), reml = asLogical(sreml);
    if (!isReal(stheta) || LENGTH(stheta) != nt)
        error(_("'theta' must be a numeric vector of length %d"), nt);
    if (reml == NA_LOGICAL) error(_("'REML' must be TRUE or FALSE"));
    lmm_optctl ctl;
    lmm_unpack_control(control, &ctl);
    SEXP theta = PROTECT(duplicate(stheta)); nprot++;
    lmm_optres res;
    lmm_optimize(&xp, REAL(theta), reml, &ctl, &res);

    lmm_factor fa;
    lmm_factor_alloc(&xp, &fa);
    SEXP grad = PROTECT(allocVector(REALSXP, nt)); nprot++;
    lmm_gradient(&xp, REAL(theta), reml, ctl.fdstep, &fa, REAL(grad));

    const char *names[] = {"theta", "deviance", "feval", "convergence", "message", "gradient", ""};
    SEXP ans = PROTECT(mkNamed(VECSXP, names)); nprot++;
    SET_VECTOR_ELT(ans, 0, theta);
    SET_VECTOR_ELT(ans, 1, ScalarReal(res.fmin));
    SET_VECTOR_ELT(ans, 2, ScalarInteger(res.fncount));
    SET_VECTOR_ELT(ans, 3, ScalarInteger(res.fail));
    SET_VECTOR_ELT(ans, 4, mkString(res.msg));
    SET_VECTOR_ELT(ans, 5, grad);
    UNPROTECT(nprot);
    return ans;
}
