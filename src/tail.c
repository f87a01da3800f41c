/* The numeric part of a sparse tail (its plan: tail_plan.c).  Per
 * evaluation the tail is scaled into the plan's order, updated and factored
 * over the pattern only, the columns before the trailing full block
 * left-looking and the block by the dense kernel: no step costs the square
 * of the tail's order, and the factor is held in compact storage (the
 * pattern's values, then the full block). */
#include <math.h>
#include <string.h>
#include "lapack.h"
#include <Rinternals.h>
#include "model.h"
#include "kernels.h"
#include "tail.h"

/* The full trailing block goes to the blocked kernel from this order (not
 * lmm_dense_chol's 160): measured on 600 schools with 20% movers (a block of
 * 134), the kernel made an evaluation 24% faster than reference dpotrf. */
#define TAIL_FRONT_KERNEL_MIN 64

R_xlen_t lmm_tail_nvalues(const lmm_tail_plan *pl)
{
    return pl->nsparse + (R_xlen_t) pl->nt * pl->nt;
}

int lmm_tail_full_order(const lmm_tail_plan *pl)
{
    return pl->nt;
}

/* Column j (< from) of the factor: its diagonal entry, then its rows. */
static inline double *column(const lmm_tail_plan *pl, double *P, int j)
{
    return P + pl->colp[j] + j;
}

/* Entry (a, b) of the full block, a >= b >= from. */
static inline double *full(const lmm_tail_plan *pl, double *P, int a, int b)
{
    return P + pl->nsparse + (a - pl->from) + (size_t) (b - pl->from) * pl->nt;
}

/* Entry (a, b) of the symmetric natural block A from its lower triangle,
 * the one the dense path reads too. */
static inline double lower(const double *A, int qd, int a, int b)
{
    return a >= b ? A[a + (size_t) b * qd] : A[b + (size_t) a * qd];
}

void lmm_tail_scale(const lmm_tail_plan *pl, const double *A, const double *dl, double *P)
{
    int qd = pl->qd, from = pl->from;
    const int *perm = pl->perm;
    for (int j = 0; j < qd; j++) {
        int nj = perm[j];
        const double *aj = A + (size_t) nj * qd;
        double dj = dl[nj];
        if (j < from) {
            double *x = column(pl, P, j);
            x[0] = aj[nj] * dj * dj + 1.0;
            const int *rows = pl->rowi + pl->colp[j];
            int m = pl->colp[j + 1] - pl->colp[j];
            for (int i = 0; i < m; i++) {
                int ni = perm[rows[i]];
                x[1 + i] = lower(A, qd, ni, nj) * dl[ni] * dj;
            }
        } else {
            double *t = full(pl, P, j, j);
            t[0] = aj[nj] * dj * dj + 1.0;
            for (int i = j + 1; i < qd; i++) {
                int ni = perm[i];
                t[i - j] = lower(A, qd, ni, nj) * dl[ni] * dj;
            }
        }
    }
}

/* Column c's update of the full block: minus the outer product of its rows
 * in the block. */
static void update_full(const lmm_tail_plan *pl, double *P, int c)
{
    const double *x = column(pl, P, c) + 1;
    const int *rows = pl->rowi + pl->colp[c];
    int m = pl->colp[c + 1] - pl->colp[c];
    for (int b = pl->nlow[c]; b < m; b++) {
        double lb = x[b];
        if (lb == 0.0) continue;
        double *t = full(pl, P, rows[b], rows[b]) - rows[b];
        for (int a = b; a < m; a++) t[rows[a]] -= x[a] * lb;
    }
}

/* The columns before the full block, left-looking: column c gathers the
 * updates of the columns j < c with c among their rows (all of j's rows from
 * c on) in a dense vector w (zero on entry and on exit) and is then scaled;
 * the columns j are found through linked lists, list c holding those whose
 * next row above the full block is c (head, next; at: the position of that
 * row in j's rows).  Each finished column updates the full block (pairs of
 * its rows in it) at once. */
static int factor_columns(const lmm_tail_plan *pl, double *P, double *w, int *head, int *next,
                          int *at)
{
    int from = pl->from;
    for (int c = 0; c < from; c++) head[c] = -1;
    for (int c = 0; c < from; c++) {
        double *x = column(pl, P, c);
        const int *rows = pl->rowi + pl->colp[c];
        int m = pl->colp[c + 1] - pl->colp[c], ml = pl->nlow[c];
        w[c] = x[0];
        for (int i = 0; i < m; i++) w[rows[i]] = x[1 + i];
        for (int j = head[c]; j >= 0;) {
            int nj = next[j], pos = at[j], mj = pl->colp[j + 1] - pl->colp[j];
            const double *xj = column(pl, P, j) + 1;
            const int *rj = pl->rowi + pl->colp[j];
            double l = xj[pos];
            for (int i = pos; i < mj; i++) w[rj[i]] -= xj[i] * l;
            if (++pos < pl->nlow[j]) {
                at[j] = pos;
                next[j] = head[rj[pos]];
                head[rj[pos]] = j;
            }
            j = nj;
        }
        double d = w[c];
        w[c] = 0.0;
        if (!(d > 0)) {
            for (int i = 0; i < m; i++) w[rows[i]] = 0.0;
            return c + 1;
        }
        d = sqrt(d);
        x[0] = d;
        double inv = 1.0 / d;
        for (int i = 0; i < m; i++) {
            x[1 + i] = w[rows[i]] * inv;
            w[rows[i]] = 0.0;
        }
        update_full(pl, P, c);
        if (ml > 0) {
            at[c] = 0;
            next[c] = head[rows[0]];
            head[rows[0]] = c;
        }
    }
    return 0;
}

int lmm_tail_factor(const lmm_tail_plan *pl, double *P, double *work, int *iwork)
{
    int qd = pl->qd, from = pl->from;
    memset(work, 0, (size_t) qd * sizeof(double));
    int info = factor_columns(pl, P, work, iwork, iwork + qd, iwork + 2 * (size_t) qd);
    if (info != 0) return info;
    if (pl->nt > 0) {
        info = lmm_dense_chol_above(pl->nt, full(pl, P, from, from), pl->nt, work,
                                    TAIL_FRONT_KERNEL_MIN);
        if (info != 0) return from + info;
    }
    return 0;
}

double lmm_tail_logdet(const lmm_tail_plan *pl, double *P)
{
    double ld = 0;
    for (int j = 0; j < pl->qd; j++) ld += 2.0 * log(P[lmm_tail_pos(pl, j, j)]);
    return ld;
}

/* X := X L^{-T} for X (px x qd) with its columns in the plan's order. */
static void solve_right_lt_permuted(const lmm_tail_plan *pl, int px, double *P, double *X)
{
    int qd = pl->qd, from = pl->from;
    for (int k = 0; k < qd; k++) {
        double *xk = X + (size_t) k * px;
        const double *l;
        const int *rows = NULL;
        int m;
        if (k < from) {
            l = column(pl, P, k);
            rows = pl->rowi + pl->colp[k];
            m = pl->colp[k + 1] - pl->colp[k];
        } else {
            l = full(pl, P, k, k);
            m = qd - k - 1;
        }
        double inv = 1.0 / l[0];
        for (int i = 0; i < px; i++) xk[i] *= inv;
        for (int a = 0; a < m; a++) {
            double la = l[1 + a];
            if (la == 0.0) continue;
            double *xa = X + (size_t) (rows ? rows[a] : k + 1 + a) * px;
            for (int i = 0; i < px; i++) xa[i] -= xk[i] * la;
        }
    }
}

void lmm_tail_solve_right_lt(const lmm_tail_plan *pl, int px, double *P, double *X, double *work)
{
    const int *perm = pl->perm;
    size_t w = (size_t) px * sizeof(double);
    for (int a = 0; a < pl->qd; a++) memcpy(work + (size_t) a * px, X + (size_t) perm[a] * px, w);
    solve_right_lt_permuted(pl, px, P, work);
    for (int a = 0; a < pl->qd; a++) memcpy(X + (size_t) perm[a] * px, work + (size_t) a * px, w);
}

/* x := L^{-T} x for x in the plan's order. */
static void solve_lt_permuted(const lmm_tail_plan *pl, double *P, double *x)
{
    int from = pl->from, nt = pl->nt, one = 1;
    if (nt > 0)
        F77_CALL(dtrsv)("L", "T", "N", &nt, full(pl, P, from, from), &nt, x + from, &one
                        FCONE FCONE FCONE);
    for (int k = from - 1; k >= 0; k--) {
        const double *l = column(pl, P, k);
        const int *rows = pl->rowi + pl->colp[k];
        int m = pl->colp[k + 1] - pl->colp[k];
        double s = x[k];
        for (int a = 0; a < m; a++) s -= l[1 + a] * x[rows[a]];
        x[k] = s / l[0];
    }
}

void lmm_tail_solve_lt(const lmm_tail_plan *pl, double *P, double *x, double *work)
{
    const int *perm = pl->perm;
    for (int a = 0; a < pl->qd; a++) work[a] = x[perm[a]];
    solve_lt_permuted(pl, P, work);
    for (int a = 0; a < pl->qd; a++) x[perm[a]] = work[a];
}

void lmm_tail_expand(const lmm_tail_plan *pl, double *P, double *D)
{
    int qd = pl->qd, from = pl->from;
    memset(D, 0, (size_t) qd * qd * sizeof(double));
    for (int j = 0; j < qd; j++) {
        double *dj = D + (size_t) j * qd;
        if (j < from) {
            const double *l = column(pl, P, j);
            const int *rows = pl->rowi + pl->colp[j];
            int m = pl->colp[j + 1] - pl->colp[j];
            dj[j] = l[0];
            for (int a = 0; a < m; a++) dj[rows[a]] = l[1 + a];
        } else {
            memcpy(dj + j, full(pl, P, j, j), (size_t) (qd - j) * sizeof(double));
        }
    }
}
