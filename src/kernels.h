/* Dense kernels of the C core (chol.c), and small inline products. */
#ifndef LMMFIT_KERNELS_H
#define LMMFIT_KERNELS_H

#include <stddef.h>

/* Lower Cholesky factor of a small k x k matrix in place, its strict upper
 * triangle zeroed.  A pivot at or below zero_tol times its column's diagonal
 * entry either stops the factorisation (semidefinite = 0: returns the
 * column, 1-based, as dpotrf; 0 on success) or is a zero column
 * (semidefinite = 1: returns how many there are). */
int lmm_small_chol(int k, double *M, int semidefinite, double zero_tol);

/* Lower Cholesky factor of an n x n matrix in place (blocked, cache-aware,
 * threaded with OpenMP); 0 or the failing leading minor, as dpotrf.  work:
 * lmm_dense_chol_work(n) doubles, so that an evaluation allocates nothing. */
size_t lmm_dense_chol_work(int n);
int lmm_dense_chol(int n, double *A, int lda, double *work);
/* The same with the blocked kernel from order small_n (lmm_dense_chol: 160,
 * where R's reference dpotrf and the kernel break even for a dense block). */
int lmm_dense_chol_above(int n, double *A, int lda, double *work, int small_n);

/* B := B L^{-T} (B m x n, m small; L the lower factor of order n), as
 * dtrsm("R", "L", "T", "N") with the same operations in the same order.
 * work: n m doubles. */
void lmm_dense_solve_right_lt(int m, int n, const double *L, int ldl, double *B, int ldb,
                              double *work);

/* out = B L for B (m x k, column major) and a lower triangular k x k L:
 * the product with a tile's lambda or with a factor's inverse. */
static inline void lmm_times_lower(int m, int k, const double *B, const double *L, double *out)
{
    for (int c = 0; c < k; c++)
        for (int a = 0; a < m; a++) {
            double s = 0;
            for (int t = c; t < k; t++) s += B[a + (size_t) t * m] * L[t + c * k];
            out[a + (size_t) c * m] = s;
        }
}

#endif
