/* Dense kernels of the C core (chol.c). */
#ifndef LMMFIT_KERNELS_H
#define LMMFIT_KERNELS_H

/* Lower Cholesky factor of an n x n matrix in place (blocked, cache-aware,
 * threaded with OpenMP); 0 or the failing leading minor, as dpotrf. */
int lmm_dense_chol(int n, double *A, int lda);

#endif
