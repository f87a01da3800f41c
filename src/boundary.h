/* Leaving the boundary of the covariance parameters (boundary.c). */
#ifndef LMMFIT_BOUNDARY_H
#define LMMFIT_BOUNDARY_H

#include "model.h"

#define ESCAPE_GAIN 1e-10      /* a relative decrease past the deviance's rounding noise */

/* The escapes' workspace, for nt parameters of xp's terms. */
typedef struct {
    int nt, kmax, lwork;
    double *xt, *best, *canon, *Q, *eig, *dir, *lwork_buf, *twork;
} escape_ws;
void lmm_escape_ws_init(escape_ws *w, const lmm_xprod *xp, int nt);
/* x (theta, term by term) put in canonical form (theta.c); 1 when changed. */
int lmm_canonical_form(const lmm_xprod *xp, double *x, double *work);
/* A second-order escape from the zero columns of x when one lowers *f;
 * 1 when x moved. */
int lmm_escape_boundary(const lmm_xprod *xp, double *x, double *f, lmm_objective fn, void *ex,
                        escape_ws *w);
/* The candidate points of dropping a column or a diagonal entry of some
 * lambda (see boundary.c); 1, -1 for no new point, 0 past the last. */
int lmm_dropped_point(const lmm_xprod *xp, const double *x, int n, int cand, double *y);
/* x replaced by the best dropped point when it lowers *f; 1 when it did. */
int lmm_drop_column(const lmm_xprod *xp, double *x, double *f, lmm_objective fn, void *ex,
                    escape_ws *w);

#endif
