/* The selected inverse of the random-effects block (selinv.c). */
#ifndef LMMFIT_SELINV_H
#define LMMFIT_SELINV_H

#include "model.h"

/* Z = (Lambda' A_ZZ Lambda + I)^{-1} on the factor's pattern, in the
 * factor's layout: Z11 as L11 (the first term's tiles), Z21x as L21x (the
 * rows beside them), Z22 as L22 (the later stages' tiles and beside-values,
 * then the tail, lower triangle, in its natural order).  Tiles hold both
 * triangles.  ZCC, Bt and T are one level's scratch, tailP a sparse tail's. */
typedef struct {
    double *Z11, *Z21x, *Z22;
    double *ZCC, *Bt, *T, *tailP;
} lmm_selinv_ws;

void lmm_selinv_alloc(const lmm_xprod *xp, lmm_selinv_ws *si);
/* From a complete factor; 0, or 1 when the tail's inverse failed. */
int lmm_selinv(const lmm_xprod *xp, const lmm_factor *fa, lmm_selinv_ws *si);

#endif
