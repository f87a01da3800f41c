/* The minimisers the driver is built from (minimize.c). */
#ifndef LMMFIT_MINIMIZE_H
#define LMMFIT_MINIMIZE_H

#include "model.h"

/* The polish's relative step: its stencils are at twice this. */
#define POLISH_STEP 1e-4
/* Diagonal entries of lambda below this (relative to the residual standard
 * deviation, in the optimizer's conditioned parameters) are candidates for
 * the boundary: the deviance depends on them through their square, so it is
 * flat to within rounding there and a gradient method stalls on its way. */
#define NEAR_ZERO_DIAG 1e-3

/* An objective's memory of its last values: the driver's phases ask again
 * for points already evaluated (L-BFGS-B's start, the Newton polish's last
 * stencil, which is also the stencil of the reported derivatives). */
typedef struct {
    int len, size, count;
    double *x, *f;
} lmm_memo;
/* room for the last size points of len parameters */
void lmm_memo_alloc(lmm_memo *m, int len, int size);
/* 1 with *f the remembered value when x was evaluated, else 0 */
int lmm_memo_find(const lmm_memo *m, const double *x, double *f);
void lmm_memo_store(lmm_memo *m, const double *x, double f);

/* Finite-difference gradient of fn at x (central, one-sided within h of a
 * bound; relative step h). */
void lmm_fd_gradient(int n, const double *x, const double *lower, const double *upper,
                     lmm_objective fn, void *ex, double h, double *grad);
/* Newton steps with a finite-difference Hessian from x (in place), at most
 * maxit, relative step h; 1 when the predicted decrease became negligible. */
int lmm_newton_polish(int n, double *x, const double *lower, const double *upper,
                      lmm_objective fn, void *ex, int maxit, double h);
/* Newton steps with the exact gradient gr from a converged polish's x (in
 * place), at most maxit; returns the steps taken.  Optionally *converged
 * (1: the last step was below the parameters' precision) and hdiag (the
 * Hessian's diagonal, NA off the free parameters). */
int lmm_gradient_newton(int n, double *x, const double *lower, const double *upper,
                        lmm_objective fn, lmm_gradient_fn gr, void *ex, int maxit,
                        int *converged, double *hdiag);

#endif
