/* A blocked dense Cholesky factorisation (lower, column major) for the
 * crossed-random-effects block of the profiled deviance, where one
 * factorisation of a matrix of order ~1000 per evaluation dominates the fit.
 *
 * Right-looking: for each panel of NB columns, factor the diagonal block
 * (LAPACK dpotrf, small), solve the panel below it (by tiles of rows kept
 * in the L1 cache), then subtract the panel's outer product P P' from the trailing
 * lower triangle.  The update carries almost all the flops: P is packed once
 * into micro-panels of MR rows and of NR rows (k-major, zero padded), the
 * trailing matrix is walked in row blocks of MC rows (whose packed panel stays
 * in the L2 cache) and within a block in MR x NR tiles, each computed by a
 * register-blocked micro-kernel.  On x86-64 with AVX2 and FMA (checked at run
 * time) the micro-kernel uses those instructions; elsewhere it is plain C.
 * With OpenMP and LMMFIT_THREADS=k in the environment the row blocks and the
 * panel solve are shared among k threads (each thread writes its own rows:
 * results do not depend on the number of threads).  Small matrices go straight to dpotrf. */
#include <stdlib.h>
#include <string.h>
#include "lapack.h"
#include <Rinternals.h>
#include "model.h"
#include "lmmfit.h"
#include "kernels.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define LMM_HAVE_AVX2_KERNEL 1
#include <immintrin.h>
#endif

#define NB 64           /* panel width */
#define MR 8            /* micro-tile rows */
#define NR 4            /* micro-tile columns */
#define MC 256          /* rows per cache block (multiple of MR) */
#define SMALL_N 160     /* below this, dpotrf */

/* c (MR x NR tile of a column-major matrix with leading dimension ldc) minus
 * the product of the packed micro-panels a (kb x MR) and b (kb x NR).  With
 * `mask`, only the rows r >= c - diag of the tile are written (diagonal tiles). */
static void kernel_c(int kb, const double *a, const double *b, double *c, size_t ldc,
                     int mr, int nr, int diag)
{
    double acc[MR * NR];
    memset(acc, 0, sizeof(acc));
    for (int p = 0; p < kb; p++) {
        const double *ap = a + (size_t) p * MR, *bp = b + (size_t) p * NR;
        for (int j = 0; j < NR; j++) {
            double bj = bp[j];
            for (int i = 0; i < MR; i++) acc[i + j * MR] += ap[i] * bj;
        }
    }
    for (int j = 0; j < nr; j++)
        for (int i = 0; i < mr; i++)
            if (i >= j + diag) c[i + j * ldc] -= acc[i + j * MR];
}

#ifdef LMM_HAVE_AVX2_KERNEL
__attribute__((target("avx2,fma")))
static void kernel_avx2(int kb, const double *a, const double *b, double *c, size_t ldc,
                        int mr, int nr, int diag)
{
    __m256d c00 = _mm256_setzero_pd(), c01 = _mm256_setzero_pd(),
            c10 = _mm256_setzero_pd(), c11 = _mm256_setzero_pd(),
            c20 = _mm256_setzero_pd(), c21 = _mm256_setzero_pd(),
            c30 = _mm256_setzero_pd(), c31 = _mm256_setzero_pd();
    for (int p = 0; p < kb; p++) {
        __m256d a0 = _mm256_loadu_pd(a), a1 = _mm256_loadu_pd(a + 4);
        __m256d b0 = _mm256_broadcast_sd(b), b1 = _mm256_broadcast_sd(b + 1);
        c00 = _mm256_fmadd_pd(a0, b0, c00); c01 = _mm256_fmadd_pd(a1, b0, c01);
        c10 = _mm256_fmadd_pd(a0, b1, c10); c11 = _mm256_fmadd_pd(a1, b1, c11);
        __m256d b2 = _mm256_broadcast_sd(b + 2), b3 = _mm256_broadcast_sd(b + 3);
        c20 = _mm256_fmadd_pd(a0, b2, c20); c21 = _mm256_fmadd_pd(a1, b2, c21);
        c30 = _mm256_fmadd_pd(a0, b3, c30); c31 = _mm256_fmadd_pd(a1, b3, c31);
        a += MR; b += NR;
    }
    if (mr == MR && nr == NR && diag <= -(NR - 1)) {
        double *c0 = c, *c1 = c + ldc, *c2 = c + 2 * ldc, *c3 = c + 3 * ldc;
        _mm256_storeu_pd(c0, _mm256_sub_pd(_mm256_loadu_pd(c0), c00));
        _mm256_storeu_pd(c0 + 4, _mm256_sub_pd(_mm256_loadu_pd(c0 + 4), c01));
        _mm256_storeu_pd(c1, _mm256_sub_pd(_mm256_loadu_pd(c1), c10));
        _mm256_storeu_pd(c1 + 4, _mm256_sub_pd(_mm256_loadu_pd(c1 + 4), c11));
        _mm256_storeu_pd(c2, _mm256_sub_pd(_mm256_loadu_pd(c2), c20));
        _mm256_storeu_pd(c2 + 4, _mm256_sub_pd(_mm256_loadu_pd(c2 + 4), c21));
        _mm256_storeu_pd(c3, _mm256_sub_pd(_mm256_loadu_pd(c3), c30));
        _mm256_storeu_pd(c3 + 4, _mm256_sub_pd(_mm256_loadu_pd(c3 + 4), c31));
        return;
    }
    double acc[MR * NR];
    _mm256_storeu_pd(acc, c00); _mm256_storeu_pd(acc + 4, c01);
    _mm256_storeu_pd(acc + 8, c10); _mm256_storeu_pd(acc + 12, c11);
    _mm256_storeu_pd(acc + 16, c20); _mm256_storeu_pd(acc + 20, c21);
    _mm256_storeu_pd(acc + 24, c30); _mm256_storeu_pd(acc + 28, c31);
    for (int j = 0; j < nr; j++)
        for (int i = 0; i < mr; i++)
            if (i >= j + diag) c[i + j * ldc] -= acc[i + j * MR];
}
#endif

/* The panel solve X L' = P in place for rows [r0, r1) of P (m x kb, leading
 * dimension ld), L the kb x kb lower factor of the diagonal block with
 * reciprocal diagonal dinv: tiles of MR rows, solved column by column while
 * the tile stays in the L1 cache. */
static void panel_solve_c(int r0, int r1, int kb, double *P, size_t ld, const double *L,
                          size_t ldl, const double *dinv)
{
    for (int i = r0; i < r1; i += MR) {
        int mr = r1 - i < MR ? r1 - i : MR;
        for (int c = 0; c < kb; c++) {
            double acc[MR];
            double *pc = P + i + (size_t) c * ld;
            for (int r = 0; r < mr; r++) acc[r] = pc[r];
            for (int t = 0; t < c; t++) {
                double l = L[c + (size_t) t * ldl];
                const double *pt = P + i + (size_t) t * ld;
                for (int r = 0; r < mr; r++) acc[r] -= pt[r] * l;
            }
            for (int r = 0; r < mr; r++) pc[r] = acc[r] * dinv[c];
        }
    }
}

#ifdef LMM_HAVE_AVX2_KERNEL
__attribute__((target("avx2,fma")))
static void panel_solve_avx2(int r0, int r1, int kb, double *P, size_t ld, const double *L,
                             size_t ldl, const double *dinv)
{
    int i = r0;
    for (; i + MR <= r1; i += MR) {
        for (int c = 0; c < kb; c++) {
            double *pc = P + i + (size_t) c * ld;
            __m256d a0 = _mm256_loadu_pd(pc), a1 = _mm256_loadu_pd(pc + 4);
            for (int t = 0; t < c; t++) {
                __m256d l = _mm256_broadcast_sd(L + c + (size_t) t * ldl);
                const double *pt = P + i + (size_t) t * ld;
                a0 = _mm256_fnmadd_pd(_mm256_loadu_pd(pt), l, a0);
                a1 = _mm256_fnmadd_pd(_mm256_loadu_pd(pt + 4), l, a1);
            }
            __m256d d = _mm256_broadcast_sd(dinv + c);
            _mm256_storeu_pd(pc, _mm256_mul_pd(a0, d));
            _mm256_storeu_pd(pc + 4, _mm256_mul_pd(a1, d));
        }
    }
    if (i < r1) panel_solve_c(i, r1, kb, P, ld, L, ldl, dinv);
}
#endif

typedef void (*panel_solver)(int, int, int, double *, size_t, const double *, size_t, const double *);

static panel_solver pick_solver(void)
{
#ifdef LMM_HAVE_AVX2_KERNEL
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return panel_solve_avx2;
#endif
    return panel_solve_c;
}

typedef void (*micro_kernel)(int, const double *, const double *, double *, size_t, int, int, int);

static micro_kernel pick_kernel(void)
{
#ifdef LMM_HAVE_AVX2_KERNEL
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return kernel_avx2;
#endif
    return kernel_c;
}

/* Threads: LMMFIT_THREADS (default 1, at most OpenMP's limit), and one
 * thread for small trailing matrices.  The default stays serial because on a
 * machine shared with other work OpenMP's barriers spin away more CPU than
 * the second thread saves. */
static int nthreads_for(int m)
{
#ifdef _OPENMP
    const char *env = getenv("LMMFIT_THREADS");
    int nt = env ? atoi(env) : 1, mx = omp_get_max_threads();
    if (nt > mx) nt = mx;
    if (nt < 1 || m < 384) nt = 1;
    return nt;
#else
    (void) m;
    return 1;
#endif
}

/* Packs rows [0, m) of the (m x kb) panel P (leading dimension ld) into
 * micro-panels of w rows: panel t holds rows t*w .. t*w + w - 1, k-major,
 * zero padded. */
static void pack(int m, int kb, const double *P, size_t ld, int w, double *out)
{
    for (int t = 0; t * w < m; t++) {
        int r0 = t * w, rw = m - r0 < w ? m - r0 : w;
        double *o = out + (size_t) t * w * kb;
        for (int p = 0; p < kb; p++) {
            const double *col = P + r0 + (size_t) p * ld;
            int i = 0;
            for (; i < rw; i++) o[(size_t) p * w + i] = col[i];
            for (; i < w; i++) o[(size_t) p * w + i] = 0.0;
        }
    }
}

/* Trailing update: C (m x m, lower triangle) -= P P', with P packed. */
static void trailing_update(int m, int kb, const double *Pa, const double *Pb,
                            double *C, size_t ldc, micro_kernel kern, int nthr)
{
    int nblk = (m + MC - 1) / MC;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthr) if (nthr > 1)
#else
    (void) nthr;
#endif
    for (int bi = nblk - 1; bi >= 0; bi--) {   /* largest blocks first */
        int i0 = bi * MC, i1 = i0 + MC < m ? i0 + MC : m;
        for (int j = 0; j < i1; j += NR) {
            int nr = m - j < NR ? m - j : NR;
            const double *bp = Pb + (size_t) (j / NR) * NR * kb;
            /* first tile of this block that reaches the lower triangle */
            int istart = j > i0 ? (j / MR) * MR : i0;
            for (int i = istart; i < i1; i += MR) {
                int mr = i1 - i < MR ? i1 - i : MR;
                kern(kb, Pa + (size_t) (i / MR) * MR * kb, bp, C + i + (size_t) j * ldc, ldc,
                     mr, nr, j - i);
            }
        }
    }
}

/* 1: every order goes to LAPACK's dpotrf.  Set at load time (zzz.R) when R
 * uses an optimised LAPACK (OpenBLAS, MKL, ...), whose threaded dpotrf beats
 * the kernel here, which is made for R's reference LAPACK: with OpenBLAS the
 * kernel's per-panel dpotrf calls also wake OpenBLAS's threads for nothing. */
static int dense_use_lapack = 0;

/* Sets the choice (NULL: leaves it) and returns the previous one. */
SEXP lmm_dense_chol_lapack(SEXP use)
{
    int old = dense_use_lapack;
    if (!isNull(use)) dense_use_lapack = lmm_arg_flag(use, "use");
    return ScalarLogical(old);
}

int lmm_small_chol(int k, double *M, int semidefinite, double zero_tol)
{
    int zeros = 0;
    for (int c = 0; c < k; c++) {
        double scale = M[c + c * k], d = scale;
        for (int cp = 0; cp < c; cp++) d -= M[c + cp * k] * M[c + cp * k];
        if (!(d > zero_tol * scale)) {
            if (!semidefinite) return c + 1;
            for (int r = c; r < k; r++) M[r + c * k] = 0.0;
            zeros++;
        } else {
            d = sqrt(d);
            M[c + c * k] = d;
            for (int r = c + 1; r < k; r++) {
                double s = M[r + c * k];
                for (int cp = 0; cp < c; cp++) s -= M[r + cp * k] * M[c + cp * k];
                M[r + c * k] = s / d;
            }
        }
        for (int r = 0; r < c; r++) M[r + c * k] = 0.0;
    }
    return semidefinite ? zeros : 0;
}

/* The lower Cholesky factor of the n x n matrix A (leading dimension lda) in
 * place; the strict upper triangle is not referenced.  Returns 0, or the
 * order of the leading minor that is not positive definite (as dpotrf). */
size_t lmm_dense_chol_work(int n)
{
    return n > 0 ? (size_t) (2 * n + MR + NR) * NB : 0;
}

int lmm_dense_chol(int n, double *A, int lda, double *work)
{
    return lmm_dense_chol_above(n, A, lda, work, SMALL_N);
}

int lmm_dense_chol_above(int n, double *A, int lda, double *work, int small_n)
{
    int info = 0;
    if (n < small_n || dense_use_lapack) {
        F77_CALL(dpotrf)("L", &n, A, &lda, &info FCONE);
        return info;
    }
    micro_kernel kern = pick_kernel();
    panel_solver solve = pick_solver();
    double dinv[NB];
    double *Pa = work, *Pb = work + (size_t) (n + MR) * NB;
    size_t ld = (size_t) lda;
    for (int k = 0; k < n; k += NB) {
        int kb = n - k < NB ? n - k : NB;
        double *D = A + k + (size_t) k * ld;
        F77_CALL(dpotrf)("L", &kb, D, &lda, &info FCONE);
        if (info != 0) return k + info;
        int m = n - k - kb;
        if (m == 0) break;
        double *P = D + kb;                      /* rows below the diagonal block */
        int nthr = nthreads_for(m);
        for (int c = 0; c < kb; c++) dinv[c] = 1.0 / D[c + (size_t) c * ld];
        int chunk = ((m + nthr - 1) / nthr + MR - 1) / MR * MR;
#ifdef _OPENMP
#pragma omp parallel for schedule(static, 1) num_threads(nthr) if (nthr > 1)
#endif
        for (int t = 0; t < nthr; t++) {
            int r0 = t * chunk, r1 = r0 + chunk < m ? r0 + chunk : m;
            if (r1 > r0) solve(r0, r1, kb, P, ld, D, ld, dinv);
        }
        pack(m, kb, P, ld, MR, Pa);
        pack(m, kb, P, ld, NR, Pb);
        trailing_update(m, kb, Pa, Pb, P + (size_t) kb * ld, ld, kern, nthr);
        R_CheckUserInterrupt();
    }
    return 0;
}

/* B := B L^{-T} for the m x n matrix B (leading dimension ldb; m small: the
 * X-and-y columns beside the dense block) and the lower n x n factor L, as
 * dtrsm("R", "L", "T", "N") computes it, column k of L at a time, in the same
 * order of operations.  Worked on the transpose, so that the update by column
 * k runs down contiguous columns of L and of B' (vectorisable axpys) rather
 * than across the m rows of B, which is all the reference dtrsm can do.  With
 * an optimised LAPACK (dense_use_lapack) its dtrsm does it. */
void lmm_dense_solve_right_lt(int m, int n, const double *L, int ldl, double *B, int ldb,
                              double *work)
{
    if (m <= 0 || n <= 0) return;
    if (dense_use_lapack) {
        /* an optimised dtrsm is blocked for this shape too */
        double one = 1.0;
        F77_CALL(dtrsm)("R", "L", "T", "N", &m, &n, &one, L, &ldl, B, &ldb
                        FCONE FCONE FCONE FCONE);
        return;
    }
    double *Bt = work;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) Bt[j + (size_t) i * n] = B[i + (size_t) j * ldb];
    for (int k = 0; k < n; k++) {
        const double *restrict Lk = L + (size_t) k * ldl;
        double t = 1.0 / Lk[k];
        int i = 0;
        for (; i + 1 < m; i += 2) {     /* two columns of B' per pass over Lk */
            double *restrict b0 = Bt + (size_t) i * n, *restrict b1 = b0 + n;
            double c0 = t * b0[k], c1 = t * b1[k];
            b0[k] = c0;
            b1[k] = c1;
            for (int j = k + 1; j < n; j++) {
                b0[j] -= Lk[j] * c0;
                b1[j] -= Lk[j] * c1;
            }
        }
        for (; i < m; i++) {
            double *restrict b = Bt + (size_t) i * n, c = t * b[k];
            b[k] = c;
            for (int j = k + 1; j < n; j++) b[j] -= Lk[j] * c;
        }
    }
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) B[i + (size_t) j * ldb] = Bt[j + (size_t) i * n];
}

/* Test hook: the factor of a symmetric matrix (lower triangle used), upper
 * triangle zeroed; an error when it is not positive definite. */
SEXP lmm_chol_R(SEXP A)
{
    if (!isReal(A) || !isMatrix(A) || nrows(A) != ncols(A))
        error(_("'A' must be a square numeric matrix"));
    int n = nrows(A);
    SEXP L = PROTECT(duplicate(A));
    double *x = REAL(L);
    double *work = (double *) R_alloc(lmm_dense_chol_work(n) + 1, sizeof(double));
    int info = lmm_dense_chol(n, x, n > 0 ? n : 1, work);
    if (info != 0) error(_("the matrix is not positive definite (leading minor %d)"), info);
    for (int c = 1; c < n; c++)
        for (int r = 0; r < c; r++) x[r + (size_t) c * n] = 0.0;
    UNPROTECT(1);
    return L;
}
