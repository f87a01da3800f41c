/* Dense kernels of the C core (chol.c). */
#ifndef LMMFIT_KERNELS_H
#define LMMFIT_KERNELS_H

/* Lower Cholesky factor of an n x n matrix in place (blocked, cache-aware,
 * threaded with OpenMP); 0 or the failing leading minor, as dpotrf. */
int lmm_dense_chol(int n, double *A, int lda);

/* B := B L^{-T} (B m x n, m small; L the lower factor of order n), as
 * dtrsm("R", "L", "T", "N") with the same operations in the same order. */
void lmm_dense_solve_right_lt(int m, int n, const double *L, int ldl, double *B, int ldb);

#endif
