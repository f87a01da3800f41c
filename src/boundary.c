/* Leaving the boundary of the covariance parameters (the driver's, optimizer.c):
 * second-order escapes from zero columns of a lambda, rotations of a column,
 * the canonical form of a boundary point, and dropping a variance component
 * when that lowers the objective. */
#include <math.h>
#include <string.h>
#include "lapack.h"
#include <Rinternals.h>
#include "model.h"
#include "lmmfit.h"
#include "theta.h"
#include "boundary.h"
#include "minimize.h"

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
static const double escape_sizes[] = {1e-3, 1e-2, 1e-1, 1.0, 10.0};
#define N_ESCAPE_SIZES ((int) (sizeof(escape_sizes) / sizeof(escape_sizes[0])))


void lmm_escape_ws_init(escape_ws *w, const lmm_xprod *xp, int nt)
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
int lmm_canonical_form(const lmm_xprod *xp, double *x, double *work)
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
int lmm_escape_boundary(const lmm_xprod *xp, double *x, double *f, lmm_objective fn, void *ex,
                        escape_ws *w)
{
    int nt = w->nt;
    double *base = w->canon;
    memcpy(base, x, (size_t) nt * sizeof(double));
    /* the canonical form moves what stood below a zeroed diagonal entry into
     * the columns after it, whose diagonal may then be near zero in turn */
    int any = lmm_canonical_form(xp, base, w->twork);
    for (int pass = 0; pass <= w->kmax; pass++) {
        int zeroed = 0;
        for (int j = 0, i = 0; j < xp->nterms; i += xp->ncol[j] * (xp->ncol[j] + 1) / 2, j++) {
            int k = xp->ncol[j];
            for (int c = 0, d = i; c < k; d += k - c, c++)
                if (base[d] > 0.0 && base[d] < NEAR_ZERO_DIAG) { base[d] = 0.0; zeroed = 1; }
        }
        if (!zeroed) break;
        any = lmm_canonical_form(xp, base, w->twork);
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
int lmm_dropped_point(const lmm_xprod *xp, const double *x, int n, int cand, double *y)
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

int lmm_drop_column(const lmm_xprod *xp, double *x, double *f, lmm_objective fn, void *ex,
                    escape_ws *w)
{
    int nt = w->nt, got;
    double noise = ESCAPE_GAIN * fmax(1.0, fabs(*f)), fbest = *f;
    for (int cand = 0; (got = lmm_dropped_point(xp, x, nt, cand, w->xt)) != 0; cand++) {
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
