/* The exact gradient of the profiled deviance for every model whose factor
 * has no sparse tail (gradient.c; one term: model.h's lmm_term_gradient). */
#ifndef LMMFIT_GRADIENT_H
#define LMMFIT_GRADIENT_H

#include "model.h"
#include "selinv.h"

/* Workspace, allocated once per fit: the selected inverse, then px x q
 * matrices beside the random effects (H', (Lambda H)', R', (P H)'), P and
 * its scratch (2 px^2), and a tail's qd x kmax scratch. */
typedef struct {
    lmm_selinv_ws si;
    double *Ht, *Vt, *Rt, *PHt, *P, *AL;
} lmm_model_gradient_ws;

/* What one gradient costs beyond its factorisation, in evaluations (a
 * measured estimate, for the rules that choose it over differences). */
double lmm_model_gradient_cost(const lmm_xprod *xp);
void lmm_model_gradient_alloc(const lmm_xprod *xp, lmm_model_gradient_ws *ws);
/* d d / d lambda_j for every term j (k_j x k_j each, at fa->lamoff[j]) at
 * the factor's lower triangular lambdas, of the profiled criterion (sigma
 * 0) or of the criterion at the residual sd sigma, from a complete factor
 * (fa as lmm_factorize() left it: code 0); 0, or 1 when it cannot be had
 * there. */
int lmm_model_gradient(const lmm_xprod *xp, const lmm_factor *fa, int reml, double sigma,
                       lmm_model_gradient_ws *ws, double *G);

/* d log|Lambda' A Lambda + I| / d lambda_j with A held (2 W above), from
 * the selected inverse si of the factor fa (AL: qd x kmax scratch) */
void lmm_logdet_gradient(const lmm_xprod *xp, const lmm_factor *fa, lmm_selinv_ws *si, double *AL,
                         double *G);

#endif
