/* The plain fit's optimisation: the profiled deviance as the driver's
 * objective (remembering its last values), its exact gradients (gradient.c:
 * one term's formula, the selected inverse's for several), the rules that
 * choose between them and finite differences, lmm_optimize() and its .Call
 * entry, and the derivatives reported at a fit's or a refit's optimum. */
#include <math.h>
#include <string.h>
#include <Rinternals.h>
#include "model.h"
#include "lmmfit.h"
#include "theta.h"
#include "gradient.h"
#include "minimize.h"

/* The profiled deviance of a plain fit as an lmm_objective, remembering its
 * last DEV_MEMORY values (minimize.h's lmm_memo): with a large dense block
 * each evaluation costs tens of milliseconds. */
#define DEV_MEMORY 64
typedef struct {
    const lmm_xprod *xp;
    lmm_factor *fa;
    int reml;
    double sigma;           /* > 0: fixed residual sd; 0: profiled */
    int nt, nevals;         /* nevals: factorisations actually done */
    lmm_memo *memo;         /* NULL: no memory */
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
    d->nevals = 0;
    d->memo = NULL;
    if (remember) {
        d->memo = (lmm_memo *) R_alloc(1, sizeof(lmm_memo));
        lmm_memo_alloc(d->memo, d->nt, DEV_MEMORY);
    }
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
    lmm_theta_of_lambdas(xp->nterms, xp->ncol, d->fa->lamoff, lam, 0, d->gtheta, d->gtmp);
    if (!factored_at(d, d->gtheta) &&
        !(lmm_theta_of_lambdas(xp->nterms, xp->ncol, d->fa->lamoff, lam, 1, d->gtheta, d->gtmp) &&
          factored_at(d, d->gtheta))) {
        d->nevals++;
        d->fa_ok = 0;
        if (lmm_factorize(xp, d->gtheta, d->fa) != 0) return 1;
        memcpy(d->fa_theta, d->gtheta, (size_t) d->nt * sizeof(double));
        d->fa_ok = 1;
    }
    if (lmm_model_gradient(xp, d->fa, d->reml, d->sigma, d->mg, d->G0) != 0) return 1;
    for (int j = 0; j < xp->nterms; j++)
        lmm_lambda_gradient_at(xp->ncol[j], lam + lo[j], d->fa->lambda + lo[j], d->G0 + lo[j],
                               G + lo[j], d->gtmp);
    return 0;
}

/* The exact gradient in lambda of the deviance (gradient.c): one term's
 * formula, or the selected inverse's. */
static int deviance_lambda_gradient(const double *lam, const double *extra, double *G, double *gextra, void *ex)
{
    deviance_ex *d = (deviance_ex *) ex;
    (void) extra;        /* a plain fit has no further parameters */
    (void) gextra;
    if (long_evaluation(d->xp)) R_CheckUserInterrupt();
    d->ngrads++;
    if (d->mg) return selected_lambda_gradient(d, lam, G);
    return lmm_term_gradient(d->xp, lam, d->reml, G, d->gwork);
}

static double deviance_objective(const double *theta, void *ex)
{
    deviance_ex *d = (deviance_ex *) ex;
    size_t bytes = (size_t) d->nt * sizeof(double);
    double f;
    if (d->memo && lmm_memo_find(d->memo, theta, &f)) return f;
    if (long_evaluation(d->xp)) R_CheckUserInterrupt();
    f = lmm_deviance_sigma(d->xp, theta, d->reml, d->sigma, d->fa);
    d->nevals++;
    if (d->mg) {
        d->fa_ok = R_FINITE(f);
        memcpy(d->fa_theta, theta, bytes);
    }
    if (d->memo) lmm_memo_store(d->memo, theta, f);
    return f;
}

static double *theta_upper(int nt)
{
    double *upper = (double *) R_alloc((size_t) nt, sizeof(double));
    for (int i = 0; i < nt; i++) upper[i] = R_PosInf;
    return upper;
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
/* From this many rows the end point gets Newton steps with an exact
 * gradient (minimize.c), wherever one costs less than forward differences:
 * the polish stops at the deviance's rounding noise (1e-12 |f|), which on
 * a flat optimum of a large data set leaves theta uncertain to 1e-5
 * relative (the same data with the rows permuted: 2e-5 on 1e6 rows), and a
 * few more evaluations are little against the pass over the rows. */
#define GRADIENT_NEWTON_MIN_NOBS 100000
/* Several terms with at least this many covariance parameters are
 * optimised with the selected inverse's gradient (gradient.c) when it costs
 * less than forward differences (n + 1 evaluations) and the tail is not
 * factored sparse (its inverse is formed dense, which costs more than the
 * sparse factorisation saves). */
#define SELECTED_GRADIENT_MIN_THETA 3
void lmm_optimize(const lmm_xprod *xp, double *theta, int reml,
                  const lmm_optctl *ctl, lmm_optres *res, double *grad, double *scaled)
{
    lmm_factor fa;
    lmm_factor_alloc(xp, &fa);
    deviance_ex dev;
    deviance_ex_init(&dev, xp, &fa, reml, ctl->sigma, 1);
    lmm_problem pb = {xp, 0, NULL, NULL, deviance_objective, &dev, NULL, 0, 0, 0, 0, 0, 0};
    /* (one term's formula differentiates the profiled criterion only) */
    if (xp->nterms == 1 && xp->ncol[0] >= EXACT_GRADIENT_MIN_COLUMNS && ctl->sigma == 0) {
        /* one term: its exact gradient costs about two evaluations, finite
         * differences one or two per parameter (with many parameters they
         * also crawl along a singular optimum) */
        dev.gwork = (double *) R_alloc(lmm_term_gradient_work(xp), sizeof(double));
        pb.lambda_gradient = deviance_lambda_gradient;
        pb.gradient_when_small = 1;
    } else if ((xp->nterms > 1 || ctl->sigma > 0) && lmm_ntheta(xp) >= SELECTED_GRADIENT_MIN_THETA &&
               fa.tail == NULL && lmm_model_gradient_cost(xp) < lmm_ntheta(xp)) {
        deviance_ex_selected(&dev);
        pb.lambda_gradient = deviance_lambda_gradient;
        pb.gradient_when_small = lmm_ntheta(xp) >= LOOSE_GRADIENT_MIN_THETA;
    }
    if (xp->nobs >= GRADIENT_NEWTON_MIN_NOBS) {
        if (!pb.lambda_gradient && xp->nterms == 1 && ctl->sigma == 0) {
            dev.gwork = (double *) R_alloc(lmm_term_gradient_work(xp), sizeof(double));
            pb.lambda_gradient = deviance_lambda_gradient;
            pb.gradient_newton_only = 1;
        } else if (!pb.lambda_gradient && fa.tail == NULL && lmm_model_gradient_cost(xp) < lmm_ntheta(xp)) {
            deviance_ex_selected(&dev);
            pb.lambda_gradient = deviance_lambda_gradient;
            pb.gradient_newton_only = 1;
        }
        pb.gradient_newton = pb.lambda_gradient != NULL;
    }
    lmm_drive(&pb, theta, ctl, res, grad, scaled);
    /* factorisations done (not values remembered, a gradient's own
     * included), and a gradient's further work in evaluations: two for one
     * term's, the estimate above for the selected inverse's */
    double per_grad = dev.mg ? lmm_model_gradient_cost(xp) : 2.0;
    res->fncount = dev.nevals + (int) ceil(per_grad * dev.ngrads);
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
    ctl->unit_gradient = 0;
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
