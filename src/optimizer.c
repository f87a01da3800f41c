/* Bound-constrained minimisation of the profiled deviance over theta, entirely
 * in C: R's L-BFGS-B (R_ext/Applic.h) driven by a finite-difference gradient,
 * then a projected Newton polish so that optima on the boundary (a variance of
 * exactly zero) and in the interior are both reached to machine precision. */
#include <math.h>
#include <string.h>
#include "lapack.h"
#include <Rinternals.h>
#include <R_ext/Applic.h>
#include "model.h"
#include "lmmfit.h"

typedef struct {
    const lmm_xprod *xp;
    lmm_factor *fa;
    int reml;
    double h;
    double *lower;
    int nfeval;
} objective;

static double objective_fn(int n, double *theta, void *ex)
{
    (void) n;
    objective *ob = (objective *) ex;
    ob->nfeval++;
    if ((ob->nfeval & 63) == 0) R_CheckUserInterrupt();
    double d = lmm_deviance(ob->xp, theta, ob->reml, ob->fa);
    /* L-BFGS-B cannot step back from an infinite value: make failure merely bad. */
    return R_FINITE(d) ? d : DBL_MAX / 4;
}

void lmm_gradient(const lmm_xprod *xp, const double *theta, int reml, double h,
                  lmm_factor *fa, double *grad)
{
    int nt = lmm_ntheta(xp);
    double *th = (double *) R_alloc((size_t) nt, sizeof(double));
    double *lower = (double *) R_alloc((size_t) nt, sizeof(double));
    lmm_theta_lower(xp, lower);
    memcpy(th, theta, (size_t) nt * sizeof(double));
    double f0 = NA_REAL;
    for (int i = 0; i < nt; i++) {
        double step = h * fmax(1.0, fabs(theta[i]));
        if (theta[i] - step < lower[i]) {
            /* one-sided at the bound */
            if (ISNA(f0)) f0 = lmm_deviance(xp, theta, reml, fa);
            th[i] = theta[i] + step;
            grad[i] = (lmm_deviance(xp, th, reml, fa) - f0) / step;
        } else {
            th[i] = theta[i] + step;
            double fp = lmm_deviance(xp, th, reml, fa);
            th[i] = theta[i] - step;
            double fm = lmm_deviance(xp, th, reml, fa);
            grad[i] = (fp - fm) / (2.0 * step);
        }
        th[i] = theta[i];
    }
}

static void objective_gr(int n, double *theta, double *grad, void *ex)
{
    (void) n;
    objective *ob = (objective *) ex;
    const void *vmax = vmaxget();
    lmm_gradient(ob->xp, theta, ob->reml, ob->h, ob->fa, grad);
    vmaxset(vmax);
}

void lmm_optimize(const lmm_xprod *xp, double *theta, int reml,
                  const lmm_optctl *ctl, lmm_optres *res)
{
    int nt = lmm_ntheta(xp);
    lmm_factor fa;
    lmm_factor_alloc(xp, &fa);
    objective ob = {xp, &fa, reml, ctl->fdstep, NULL, 0};
    double *lower = (double *) R_alloc((size_t) nt, sizeof(double));
    double *upper = (double *) R_alloc((size_t) nt, sizeof(double));
    int *nbd = (int *) R_alloc((size_t) nt, sizeof(int));
    lmm_theta_lower(xp, lower);
    for (int i = 0; i < nt; i++) {
        upper[i] = R_PosInf;
        nbd[i] = R_FINITE(lower[i]) ? 1 : 0;
        if (theta[i] < lower[i]) theta[i] = lower[i];
    }
    ob.lower = lower;
    char msg[60];
    int fail = 0, fncount = 0, grcount = 0;
    double fmin;
    lbfgsb(nt, 5, theta, lower, upper, nbd, &fmin, objective_fn, objective_gr, &fail,
           &ob, ctl->factr, ctl->pgtol, &fncount, &grcount, ctl->maxit, msg,
           ctl->trace, 1);
    res->fmin = fmin;
    res->fncount = ob.nfeval;
    res->grcount = grcount;
    res->fail = fail;
    strncpy(res->msg, msg, sizeof(res->msg) - 1);
    res->msg[sizeof(res->msg) - 1] = '\0';
}

static double list_real(SEXP list, const char *name, double dflt)
{
    SEXP names = getAttrib(list, R_NamesSymbol);
    for (int i = 0; i < LENGTH(list); i++)
        if (!strcmp(CHAR(STRING_ELT(names, i)), name)) {
            double v = asReal(VECTOR_ELT(list, i));
            if (ISNAN(v)) error(_("control value '%s' must be a number"), name);
            return v;
        }
    return dflt;
}

SEXP lmm_optimize_R(SEXP sxp, SEXP stheta, SEXP sreml, SEXP control)
{
    int nprot = 0;
    lmm_xprod xp;
    lmm_unpack_xprod(sxp, &xp);
    int nt = lmm_ntheta(&xp);
    if (!isReal(stheta) || LENGTH(stheta) != nt)
        error(_("'theta' must be a numeric vector of length %d"), nt);
    if (!isNewList(control)) error(_("'control' must be a list"));
    lmm_optctl ctl;
    ctl.maxit = (int) list_real(control, "maxit", 1000);
    ctl.factr = list_real(control, "factr", 10);
    ctl.pgtol = list_real(control, "pgtol", 0);
    ctl.fdstep = list_real(control, "fdstep", 1e-6);
    ctl.trace = (int) list_real(control, "trace", 0);
    SEXP theta = PROTECT(duplicate(stheta)); nprot++;
    lmm_optres res;
    lmm_optimize(&xp, REAL(theta), asLogical(sreml), &ctl, &res);

    lmm_factor fa;
    lmm_factor_alloc(&xp, &fa);
    SEXP grad = PROTECT(allocVector(REALSXP, nt)); nprot++;
    lmm_gradient(&xp, REAL(theta), asLogical(sreml), ctl.fdstep, &fa, REAL(grad));

    const char *names[] = {"theta", "deviance", "feval", "convergence", "message", "gradient", ""};
    SEXP ans = PROTECT(mkNamed(VECSXP, names)); nprot++;
    SET_VECTOR_ELT(ans, 0, theta);
    SET_VECTOR_ELT(ans, 1, ScalarReal(lmm_deviance(&xp, REAL(theta), asLogical(sreml), &fa)));
    SET_VECTOR_ELT(ans, 2, ScalarInteger(res.fncount));
    SET_VECTOR_ELT(ans, 3, ScalarInteger(res.fail));
    SET_VECTOR_ELT(ans, 4, mkString(res.msg));
    SET_VECTOR_ELT(ans, 5, grad);
    UNPROTECT(nprot);
    return ans;
}
