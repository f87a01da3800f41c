/* Random-effects terms crossed with a residual correlation grouping
 * (resid_crossed.c). */
#ifndef LMMFIT_RESID_CROSSED_H
#define LMMFIT_RESID_CROSSED_H

#include "model.h"
#include "resid.h"

typedef struct {
    int *crossed;            /* per term: 1 when its level varies within a group */
    int ncrossed, rmax;
    const double *const *Zraw;   /* each term's Z as given (data order) */
    double *E;               /* mmax x rmax: a group's crossed block */
    int *lcoord;             /* its columns' rest coordinates */
} resid_cross;

/* Find the crossed terms (errors for designs this cannot assemble: the
 * first term crossed, nested stages, a sparse tail); returns how many. */
int resid_cross_setup(const resid_model *rm, const lmm_xprod *xp, const int *const *codes,
                      const double *const *Zraw, resid_cross *cx);
/* Add the crossed terms' blocks of the whitened cross-products, given the
 * whitened columns (X, y in cols; each term's in Zw) and the row factors of
 * the variance functions; returns 0, or R_PosInf when a group's correlation
 * is not positive definite.  work: resid_work_size() doubles. */
double resid_cross_assemble(const resid_cross *cx, const resid_model *rm, const double *par,
                            const lmm_xprod *xp, const int *roff, const int *const *codes, R_xlen_t n,
                            const double *const *cols, const double *const *Zw, const double *rowfac,
                            double *work, double *A21x, double *A22, double *AX2);

#endif
