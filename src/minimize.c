/* Bound-constrained minimisation entirely in C: R's L-BFGS-B (R_ext/Applic.h)
 * driven by a given gradient or by finite differences (one-sided at active
 * bounds), and Newton steps with a finite-difference Hessian: the pieces the
 * driver (optimizer.c) is built from. */
#include <math.h>
#include <string.h>
#include <Rinternals.h>
#include <R_ext/Applic.h>
#include "lapack.h"
#include "model.h"
#include "lmmfit.h"
#include "minimize.h"

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
    double scale;        /* then multiplying it (and its gradient) */
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
    f = (f - pr->shift) * pr->scale;
    /* L-BFGS-B cannot step back from an infinite value: make failure merely bad. */
    return R_FINITE(f) ? f : DBL_MAX / 4;
}

static void lbfgsb_gr(int n, double *x, double *grad, void *ex)
{
    lbfgsb_ex *e = (lbfgsb_ex *) ex;
    if (!e->gr || e->gr(x, grad, e->pr->ex) != 0) fd_gradient(e->pr, n, x, grad, e->work);
    for (int i = 0; i < n; i++) grad[i] = R_FINITE(grad[i]) ? grad[i] * e->pr->scale : 0;
}

void lmm_minimize(int n, double *x, const double *lower, const double *upper,
                  lmm_objective fn, lmm_gradient_fn gr, void *ex, const lmm_optctl *ctl,
                  lmm_optres *res)
{
    fd_problem pr = {fn, ex, lower, upper, ctl->fdstep, 0, ctl->forward,
                     (double *) R_alloc((size_t) n, sizeof(double)), NA_REAL, n, 0.0, 1.0};
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
    if (ctl->unit_gradient) {
        /* the gradient L-BFGS-B is about to take at the start (an
         * objective that remembers its values gives it back free) */
        double gmax = 0;
        if (gr == NULL || gr(x, lex.work, ex) != 0)
            fd_gradient(&pr, n, x, lex.work, (double *) R_alloc((size_t) n, sizeof(double)));
        for (int i = 0; i < n; i++) if (R_FINITE(lex.work[i])) gmax = fmax(gmax, fabs(lex.work[i]));
        if (gmax > 1) pr.scale = 1 / gmax;
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

void lmm_memo_alloc(lmm_memo *m, int len, int size)
{
    m->len = len;
    m->size = size;
    m->count = 0;
    m->x = (double *) R_alloc((size_t) size * (len > 0 ? len : 1), sizeof(double));
    m->f = (double *) R_alloc((size_t) size, sizeof(double));
}

int lmm_memo_find(const lmm_memo *m, const double *x, double *f)
{
    int held = m->count < m->size ? m->count : m->size;
    size_t bytes = (size_t) m->len * sizeof(double);
    for (int k = 0; k < held; k++)
        if (!memcmp(m->x + (size_t) k * m->len, x, bytes)) {
            *f = m->f[k];
            return 1;
        }
    return 0;
}

void lmm_memo_store(lmm_memo *m, const double *x, double f)
{
    int slot = m->count++ % m->size;
    memcpy(m->x + (size_t) slot * m->len, x, (size_t) m->len * sizeof(double));
    m->f[slot] = f;
}

void lmm_fd_gradient(int n, const double *x, const double *lower, const double *upper,
                     lmm_objective fn, void *ex, double h, double *grad)
{
    fd_problem pr = {fn, ex, lower, upper, h, 0, 0, NULL, NA_REAL, n, 0.0, 1.0};
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


/* Returns 1 when the Newton decrement (the predicted decrease of the
 * objective) became negligible: the optimum is reached to the objective's
 * precision. */
int lmm_newton_polish(int n, double *x, const double *lower, const double *upper,
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

/* Newton steps with the exact gradient gr, after the polish has converged
 * to the objective's precision (x in place).  There the polish's stopping
 * rule, a predicted decrease below the deviance's rounding noise
 * (1e-12 |f|), still allows relative errors of 1e-5 in the parameters on a
 * flat optimum of a large data set; an exact gradient is not limited by
 * that noise.  The Hessian comes from forward differences of gr at a
 * relative step GN_HSTEP over the free parameters (more than two steps
 * inside their bounds), once; a step is kept when the objective does not
 * rise past its noise and the gradient shrinks.  Stops when the relative
 * step is below GN_STEP_TOL, or after maxit steps; returns the steps
 * taken. */
#define GN_HSTEP 1e-6
#define GN_STEP_TOL 1e-12
#define GN_NOISE_STEP 1e-9
int lmm_gradient_newton(int n, double *x, const double *lower, const double *upper,
                        lmm_objective fn, lmm_gradient_fn gr, void *ex, int maxit,
                        int *converged, double *hdiag)
{
    int conv_local;
    if (!converged) converged = &conv_local;
    *converged = 0;
    if (hdiag)
        for (int i = 0; i < n; i++) hdiag[i] = NA_REAL;
    double *g = (double *) R_alloc((size_t) n, sizeof(double));
    double *gt = (double *) R_alloc((size_t) n, sizeof(double));
    double *xt = (double *) R_alloc((size_t) n, sizeof(double));
    double *H = (double *) R_alloc((size_t) n * n, sizeof(double));
    double *step = (double *) R_alloc((size_t) n, sizeof(double));
    int *fr = (int *) R_alloc((size_t) n, sizeof(int));
    int nf = 0, taken = 0, info = 0, one = 1;
    for (int i = 0; i < n; i++) {
        double h = GN_HSTEP * fmax(1.0, fabs(x[i]));
        if (x[i] - 2 * h >= lower[i] && x[i] + 2 * h <= upper[i]) fr[nf++] = i;
    }
    double f0 = fn(x, ex);
    if (nf == 0 || !R_FINITE(f0) || gr(x, g, ex) != 0) return 0;
    memcpy(xt, x, (size_t) n * sizeof(double));
    for (int b = 0; b < nf; b++) {
        int j = fr[b];
        double h = GN_HSTEP * fmax(1.0, fabs(x[j]));
        xt[j] = x[j] + h;
        if (gr(xt, gt, ex) != 0) return 0;
        xt[j] = x[j];
        for (int a = 0; a < nf; a++) H[a + b * nf] = (gt[fr[a]] - g[fr[a]]) / h;
    }
    for (int b = 0; b < nf; b++)
        for (int a = 0; a < b; a++) H[a + b * nf] = H[b + a * nf] = 0.5 * (H[a + b * nf] + H[b + a * nf]);
    if (hdiag)
        for (int a = 0; a < nf; a++) hdiag[fr[a]] = H[a + a * nf];
    F77_CALL(dpotrf)("L", &nf, H, &nf, &info FCONE);
    if (info != 0) return 0;
    for (int it = 0; it < maxit; it++) {
        double gnorm = 0, smax = 0;
        for (int a = 0; a < nf; a++) {
            step[a] = -g[fr[a]];
            gnorm = fmax(gnorm, fabs(g[fr[a]]));
        }
        F77_CALL(dpotrs)("L", &nf, &one, H, &nf, step, &nf, &info FCONE);
        if (info != 0) return taken;
        memcpy(xt, x, (size_t) n * sizeof(double));
        for (int a = 0; a < nf; a++) {
            int i = fr[a];
            xt[i] = x[i] + step[a];
            if (xt[i] < lower[i] || xt[i] > upper[i]) return taken;
            smax = fmax(smax, fabs(step[a]) / fmax(1.0, fabs(x[i])));
        }
        if (smax < GN_STEP_TOL) {
            *converged = 1;
            return taken;
        }
        double ft = fn(xt, ex);
        /* a step refused at the gradient's noise floor still leaves x
         * converged to the difference polish's own precision */
        *converged = smax < GN_NOISE_STEP;
        if (!(ft <= f0 + 1e-12 * fmax(1.0, fabs(f0))) || gr(xt, gt, ex) != 0) return taken;
        double gtnorm = 0;
        for (int a = 0; a < nf; a++) gtnorm = fmax(gtnorm, fabs(gt[fr[a]]));
        if (!(gtnorm < gnorm)) return taken;
        *converged = 0;
        memcpy(x, xt, (size_t) n * sizeof(double));
        memcpy(g, gt, (size_t) n * sizeof(double));
        f0 = ft;
        taken++;
    }
    return taken;
}

