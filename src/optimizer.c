/* lmm_drive(), the one driver of every model's covariance parameters: it
 * works in conditioned parameters (theta.c), searches with L-BFGS-B and
 * Newton steps (minimize.c), and checks boundary points to second order.
 * The plain fit's objective and lmm_optimize() are in fit.c; AR(1), the
 * residual structures and the GLMMs pass their own objectives. */
#include <float.h>
#include <math.h>
#include <string.h>
#include "lapack.h"
#include <Rinternals.h>
#include "model.h"
#include "lmmfit.h"
#include "theta.h"
#include "minimize.h"
#include "boundary.h"

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
                               lmm_objective fn, void *ex, double *grad, double *scaled,
                               double *curvature)
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
        if (curvature) curvature[i] = curv;
    }
}

/* With the end point's exact gradient (when the final Newton steps had
 * one), the reported gradient is it, and the scaled one its ratio to the
 * square root of the stencil's curvature: finite differences at 2e-4 carry
 * truncation and rounding errors far above an exact gradient's at an
 * optimum pinned by Newton steps. */
static int space_gradient(const double *x, double *g, void *ex);
typedef struct search_ws_s search_ws;
static void exact_derivatives(search_ws *w, const double *x, const double *curv, double *grad,
                              double *scaled);

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
    /* the problem's exact gradient in the lambdas (and the further
     * parameters), else NULL, and its arguments (k_j x k_j each, at Rstart) */
    int (*lambda_gradient)(const double *lam, const double *extra, double *G, double *gextra, void *ex);
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
    s->lambda_gradient = pb->lambda_gradient;
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
    if (s->lambda_gradient(s->glam, x + s->ntheta, s->gG, g + s->ntheta, s->ex) != 0) return 1;
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

/* Bounds for the Newton polish: the entries below a zero diagonal entry are
 * held where they are (lmm_escape_boundary() judges those directions), so that
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

/* The objective along one coordinate i of the optimizer's parameters */
typedef struct {
    fit_space *sp;
    const double *x;
    int i, npar;
    double *xt;
} coordinate_ws;

static double coordinate_objective(const double *xi, void *ex)
{
    coordinate_ws *c = (coordinate_ws *) ex;
    memcpy(c->xt, c->x, (size_t) c->npar * sizeof(double));
    c->xt[c->i] = *xi;
    return space_objective(c->xt, c->sp);
}

/* Newton steps with an exact gradient after the search (each one checked;
 * two or three reach the parameters' precision from a converged polish). */
#define GRADIENT_NEWTON_STEPS 5

/* How many times the search may leave the boundary and start again: each
 * time lowers the deviance, and no design has needed more than two. */
#define MAX_ROUNDS 8
/* Problems with at most this many parameters get the Newton polish: its
 * finite-difference Hessian costs about 2 n^2 evaluations. */
#define SMALL_PROBLEM 10

/* The search's state: the space, the boundary workspace, the bounds (and
 * the polish's, with the zero columns pinned). */
struct search_ws_s {
    const lmm_xprod *xp;
    fit_space *sp;
    escape_ws *ew;
    int npar, small, gradient_when_small, newton_only;
    double *lower, *upper, *plo, *pup;
    int newtoned;        /* the final Newton steps ran (with an exact gradient) */
    /* the polish by the exact gradient's Newton steps (the problem's
     * gradient_polish): the last point where they converged and their
     * Hessian's diagonal there */
    int by_gradient, gn_valid;
    double *gn_x, *hdiag;
};

/* Newton steps from the exact gradient as the polish: from the loose
 * phase's end they converge in two or three steps, with a Hessian of n
 * gradients instead of the difference polish's 2 n^2 evaluations. */
#define GRADIENT_POLISH_STEPS 10
static int gradient_polish(search_ws *w, double *x)
{
    int conv = 0;
    lmm_gradient_newton(w->npar, x, w->plo, w->pup, space_objective, space_gradient, w->sp,
                        GRADIENT_POLISH_STEPS, &conv, w->hdiag);
    w->gn_valid = conv;
    if (conv) memcpy(w->gn_x, x, (size_t) w->npar * sizeof(double));
    return conv;
}

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
    lmm_gradient_fn gr = sp->lambda_gradient && !w->newton_only ? space_gradient : NULL;
    lmm_minimize(npar, x, w->lower, w->upper, space_objective,
                 w->small && !w->gradient_when_small ? NULL : gr, sp, &loose, res);
    for (int round = 0; ; round++) {
        if (w->small) {
            lmm_canonical_form(xp, x, w->ew->twork);
            pin_zero_columns(xp, npar, x, w->lower, w->upper, w->plo, w->pup);
            done = w->by_gradient ? gradient_polish(w, x)
                                  : lmm_newton_polish(npar, x, w->plo, w->pup, space_objective, sp, 20, POLISH_STEP);
        }
        lmm_snap_to_zero(npar, x, w->lower, space_objective, sp);
        *f = space_objective(x, sp);
        int moved = lmm_escape_boundary(xp, x, f, space_objective, sp, w->ew);
        /* about to settle: would dropping a variance component do better? */
        if (!moved && (done || stalled))
            moved = lmm_drop_column(xp, x, f, space_objective, sp, w->ew);
        if (!moved && (done || stalled)) return 1;
        if (round == MAX_ROUNDS) return 0;
        lmm_minimize(npar, x, w->lower, w->upper, space_objective, gr, sp, ctl, res);
        stalled = !moved && *f - res->fmin < 1e-12 * fmax(1.0, fabs(*f));
    }
}

static void exact_derivatives(search_ws *w, const double *x, const double *curv, double *grad,
                              double *scaled)
{
    if (!w->newtoned) return;
    double *g = (double *) R_alloc((size_t) w->npar, sizeof(double));
    if (space_gradient(x, g, w->sp) != 0) return;
    for (int i = 0; i < w->npar; i++) {
        if (!R_FINITE(g[i])) continue;
        grad[i] = g[i];
        scaled[i] = R_FINITE(curv[i]) && curv[i] > 0 ? g[i] / sqrt(curv[i]) : NA_REAL;
    }
}

/* After the gradient's polish, the curvatures for the scaled gradient:
 * its Hessian's diagonal on the free parameters, the difference stencil
 * (report_derivatives) on the others only. */
static void gradient_curvature(search_ws *w, const double *x, double *curv, double *grad, double *scaled)
{
    double one_grad, one_scaled, one_curv;
    double *xt = (double *) R_alloc((size_t) w->npar, sizeof(double));
    for (int i = 0; i < w->npar; i++) {
        curv[i] = w->hdiag[i];
        if (R_FINITE(curv[i])) continue;
        /* a one-coordinate problem along i */
        coordinate_ws c = {w->sp, x, i, w->npar, xt};
        double xi = x[i];
        report_derivatives(1, &xi, w->lower + i, w->upper + i, coordinate_objective, &c, &one_grad,
                           &one_scaled, &one_curv);
        curv[i] = one_curv;
        grad[i] = one_grad;
        scaled[i] = one_scaled;
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
    for (int cand = 0, got; (got = lmm_dropped_point(xp, x0, npar, cand, y)) != 0; cand++) {
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
    /* the structures' parameters are all bounded: unscaled, L-BFGS-B's first
     * step went to the box's corner (where the covariance is singular) and
     * the loose phase failed at once (gls with AR(1) and varIdent) */
    loose.unit_gradient = 1;
    if (small) {
        loose.forward = 1;
        loose.fdstep = fmax(ctl->fdstep, LOOSE_FDSTEP);
    }
    lmm_minimize(ne, x, lower, upper, extras_objective, NULL, &e, &loose, res);
    int settled = small ? lmm_newton_polish(ne, x, lower, upper, extras_objective, &e, 20, POLISH_STEP)
                        : 0;
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
        report_derivatives(ne, x, lower, upper, extras_objective, &e, grad + nt, scaled + nt, NULL);
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
    lmm_escape_ws_init(&ew, xp, npar);
    search_ws w = {xp, &sp, &ew, npar, npar <= SMALL_PROBLEM, pb->gradient_when_small,
                   pb->gradient_newton_only,
                   (double *) R_alloc((size_t) npar, sizeof(double)),
                   (double *) R_alloc((size_t) npar, sizeof(double)),
                   (double *) R_alloc((size_t) npar, sizeof(double)),
                   (double *) R_alloc((size_t) npar, sizeof(double)), 0,
                   pb->gradient_polish && sp.lambda_gradient && !pb->gradient_newton_only, 0,
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
    if (settled && pb->gradient_newton && sp.lambda_gradient && w.small) {
        /* the zero columns held, as in the polish; not again where the
         * gradient's polish converged at this very point */
        lmm_canonical_form(xp, x, ew.twork);
        pin_zero_columns(xp, npar, x, lower, upper, w.plo, w.pup);
        if (!(w.by_gradient && w.gn_valid && !memcmp(w.gn_x, x, (size_t) npar * sizeof(double))))
            lmm_gradient_newton(npar, x, w.plo, w.pup, space_objective, space_gradient, &sp,
                                GRADIENT_NEWTON_STEPS, NULL, w.by_gradient ? w.hdiag : NULL);
        w.newtoned = 1;
    }
    map_space(&sp, x, par, 0);
    res->fmin = pb->fn(par, pb->ex);
    if (grad) {
        /* in the optimizer's parameters: free of the covariates' units, and
         * on the stencil of the polish's last iteration (remembered by the
         * plain fit's objective) */
        double *curv = (double *) R_alloc((size_t) npar, sizeof(double));
        if (w.by_gradient && w.newtoned) gradient_curvature(&w, x, curv, grad, scaled);
        else report_derivatives(npar, x, lower, upper, space_objective, &sp, grad, scaled, curv);
        exact_derivatives(&w, x, curv, grad, scaled);
        /* a derivative pointing out of the feasible region at an active
         * bound is no sign of a failed optimisation */
        for (int i = 0; i < npar; i++) {
            int outward = (x[i] <= lower[i] && grad[i] > 0) || (x[i] >= upper[i] && grad[i] < 0);
            if (R_FINITE(grad[i]) && outward) grad[i] = scaled[i] = 0.0;
        }
    }
    res->settled = settled;
}
