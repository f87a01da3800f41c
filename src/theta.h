/* The covariance parameters theta (theta.c): layout, canonical form at the
 * boundary, and the per-term conditioning the optimizer works in. */
#ifndef LMMFIT_THETA_H
#define LMMFIT_THETA_H

#include "model.h"

/* Terms with more columns than this are optimised unconditioned: the
 * conditioner works on the stack (no model has needed more than a handful). */
#define LMM_MAX_COND_K 64

void lmm_theta_unpack(int k, const double *theta, double *lam);
void lmm_theta_pack(int k, const double *lam, double *theta);
int lmm_theta_canonical_term(int k, double *theta, double *work);
int lmm_term_conditioner(const lmm_xprod *xp, int j, double *R);
void lmm_conditioner_solve(int k, const double *R, double *M);
void lmm_conditioner_solve_t(int k, const double *R, double *G);
void lmm_theta_from_conditioned(int k, const double *R, const double *tt, double *theta,
                                double *work);
void lmm_theta_of_lambda(int k, const double *lam, double *theta, double *work);
/* theta from the lambdas lam (any k x k each, at lamoff) into th: each
 * term's canonical factor of lam lam', or with as_is a lower triangular lam
 * with a positive diagonal taken as it is (an unconditioned term's, as the
 * objective saw it).  Returns 0 when as_is changed nothing.  work: kmax^2. */
int lmm_theta_of_lambdas(int nterms, const int *ncol, const int *lamoff, const double *lam, int as_is,
                         double *th, double *work);
void lmm_lambda_gradient_at(int k, const double *lam, const double *lam0, const double *G0,
                            double *G, double *work);
void lmm_theta_to_conditioned(int k, const double *R, const double *theta, double *tt,
                              double *work);

#endif
