/* The dense tail of the factor (the crossed terms, after the stages) when it
 * is sparse: partially crossed designs (pupils who change school) leave a
 * tail whose Schur complement links only the levels that share a level
 * eliminated before them.  Found once per fit (symbolic): the tail's graph
 * (co-occurrence in the data, and the cliques the stages' eliminations
 * leave), a minimum-degree order of its levels and the pattern of the
 * factor in that order.  Per evaluation (numeric) the tail is scaled into
 * that order, updated and factored over the pattern only, with the trailing
 * block that the order leaves full handed to the dense kernel: no step
 * costs the square of the tail's order.
 *
 * The factor is stored dense (zeros outside the pattern, set once), in the
 * permuted order: consumers that treat it as a dense triangle (solves,
 * dpotri) work on it once they permute their vectors.  The pattern is that
 * of the values seen at set-up; the values that change later (the
 * bootstrap's response, AR(1)'s whitening of rows that share every level)
 * keep it.  Tails with vector-valued terms stay dense. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include "lapack.h"
#include <Rinternals.h>
#include "model.h"
#include "lmmfit.h"
#include "kernels.h"

/* Below this order the dense kernel is as fast as any plan. */
#define TAIL_SPARSE_MIN 96
/* Above this order the plan's byte maps (order^2) would cost more memory
 * than a sparse tail is likely to save; such tails stay dense. */
#define TAIL_SPARSE_MAX 4096
/* The sparse path is taken when its flop count is below this share of the
 * dense factorisation's: column-by-column updates run several times slower
 * per flop than the blocked dense kernel. */
#define TAIL_SPARSE_GAIN 0.2
/* A tail graph with more than this share of all pairs linked before any
 * elimination fills in (crossed designs: InstEval, two random factors of
 * 2,000 levels with 10 rows each, 4.5%) is dense: the ordering is not even
 * tried, its cost would be wasted (pupils changing school: 0.7-2.7%). */
#define TAIL_EDGE_SHARE 0.03
/* The full trailing block goes to the blocked kernel from this order (not
 * lmm_dense_chol's 160): measured on 600 schools with 20% movers (a block of
 * 134), the kernel made an evaluation 24% faster than reference dpotrf. */
#define TAIL_FRONT_KERNEL_MIN 64

struct lmm_tail_plan_s {
    int qd;
    int *perm;              /* permuted position -> natural tail coordinate */
    int *pinv;              /* natural -> permuted */
    int *colp, *rowi;       /* rows below the diagonal of each permuted column, increasing */
    unsigned char *inpat;   /* qd x qd, lower triangle, permuted: 1 where the factor may be nonzero */
    int dense_from;         /* first column of the trailing full block */
};

/* Marks a and b adjacent (tail coordinates, a != b); returns 1 if new. */
static int link(unsigned char *adj, int qd, int a, int b)
{
    unsigned char *e = adj + (size_t) a * qd + b;
    if (*e) return 0;
    *e = 1;
    adj[(size_t) b * qd + a] = 1;
    return 1;
}

/* The tail's graph: nonzeros of its block (lower triangle) and, for every
 * level of every stage, the clique of the tail rows beside it.  Returns the
 * number of edges. */
static double tail_graph(const lmm_xprod *xp, unsigned char *adj, int *deg)
{
    int qd = xp->qd, dstart = xp->dstart;
    const double *D = xp->A22 + xp->doff;
    memset(deg, 0, (size_t) qd * sizeof(int));
    for (int j = 0; j < qd; j++)
        for (int i = j + 1; i < qd; i++)
            if (D[i + (size_t) j * qd] != 0.0 && link(adj, qd, i, j)) { deg[i]++; deg[j]++; }
    for (int s = 0; s < xp->nstage; s++) {
        const lmm_stage *st = xp->stage + s;
        for (int g = 0; g < st->nlev; g++) {
            const int *rows = st->Ci + st->Cp[g];
            int m = st->Cp[g + 1] - st->Cp[g], e = 0;
            while (e < m && rows[e] < dstart) e++;
            for (int b = e; b < m; b++)
                for (int a = b + 1; a < m; a++)
                    if (link(adj, qd, rows[a] - dstart, rows[b] - dstart)) {
                        deg[rows[a] - dstart]++; deg[rows[b] - dstart]++;
                    }
        }
    }
    double edges = 0;
    for (int i = 0; i < qd; i++) edges += deg[i];
    return edges / 2;
}

/* Minimum-degree elimination of the graph: the order (perm), and for each
 * step the neighbours the eliminated vertex still had (natural
 * coordinates, into nbr at nbrp[step]).  Returns the flop estimate. */
static double min_degree(int qd, unsigned char *adj, int *deg, int *perm, int *nbrp, int *nbr,
                         int nbr_cap, int *alive_list, double max_flops)
{
    unsigned char *dead = (unsigned char *) R_alloc((size_t) qd, 1);
    memset(dead, 0, (size_t) qd);
    double flops = 0;
    int used = 0;
    for (int step = 0; step < qd; step++) {
        int v = -1;
        for (int i = 0; i < qd; i++)
            if (!dead[i] && (v < 0 || deg[i] < deg[v])) v = i;
        int m = 0;
        const unsigned char *row = adj + (size_t) v * qd;
        for (int i = 0; i < qd; i++) if (row[i] && !dead[i]) alive_list[m++] = i;
        perm[step] = v;
        nbrp[step] = used;
        if (used + m > nbr_cap) return -1;     /* too much fill: stay dense */
        memcpy(nbr + used, alive_list, (size_t) m * sizeof(int));
        used += m;
        flops += (double) m * m;
        if (flops > max_flops) return -1;      /* the sparse path cannot win */
        for (int b = 0; b < m; b++) {
            deg[alive_list[b]]--;
            for (int a = b + 1; a < m; a++)
                if (link(adj, qd, alive_list[a], alive_list[b])) { deg[alive_list[a]]++; deg[alive_list[b]]++; }
        }
        dead[v] = 1;
        if (step % 16 == 15) R_CheckUserInterrupt();
    }
    nbrp[qd] = used;
    return flops;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *) a, y = *(const int *) b;
    return (x > y) - (x < y);
}

const lmm_tail_plan *lmm_tail_plan_build(const lmm_xprod *xp)
{
    int qd = xp->qd;
    if (qd < TAIL_SPARSE_MIN || qd > TAIL_SPARSE_MAX) return NULL;
    for (int j = xp->nstage; j < xp->nterms; j++) if (xp->ncol[j] != 1) return NULL;
    size_t q2 = (size_t) qd * qd;
    unsigned char *adj = (unsigned char *) R_alloc(q2, 1);
    memset(adj, 0, q2);
    int *deg = (int *) R_alloc((size_t) qd, sizeof(int));
    double edges = tail_graph(xp, adj, deg);
    if (edges > TAIL_EDGE_SHARE * qd * (qd - 1.0) / 2) return NULL;
    lmm_tail_plan *pl = (lmm_tail_plan *) R_alloc(1, sizeof(lmm_tail_plan));
    pl->qd = qd;
    pl->perm = (int *) R_alloc((size_t) qd, sizeof(int));
    pl->pinv = (int *) R_alloc((size_t) qd, sizeof(int));
    pl->colp = (int *) R_alloc((size_t) qd + 1, sizeof(int));
    /* the pattern may hold at most a share of the dense triangle, else the
     * sparse path cannot win */
    int cap = (int) (q2 / 2 < INT_MAX ? q2 / 2 : INT_MAX);
    pl->rowi = (int *) R_alloc((size_t) cap > 0 ? (size_t) cap : 1, sizeof(int));
    int *work = (int *) R_alloc((size_t) qd, sizeof(int));
    double dense = (double) qd * qd * qd / 3.0;
    double flops = min_degree(qd, adj, deg, pl->perm, pl->colp, pl->rowi, cap, work,
                              TAIL_SPARSE_GAIN * dense);
    if (flops < 0) return NULL;
    for (int a = 0; a < qd; a++) pl->pinv[pl->perm[a]] = a;
    /* the trailing full block: from the first column after which every
     * column is full */
    int from = qd;
    while (from > 0 && pl->colp[from] - pl->colp[from - 1] == qd - from) from--;
    pl->dense_from = from;
    double tail = (double) (qd - from), sparse_flops = 0;
    for (int j = 0; j < from; j++) {
        double m = pl->colp[j + 1] - pl->colp[j];
        sparse_flops += m * m;
    }
    sparse_flops += tail * tail * tail / 3.0;
    if (sparse_flops > TAIL_SPARSE_GAIN * dense) return NULL;
    /* rows in permuted coordinates, increasing; the byte map of the pattern */
    pl->inpat = (unsigned char *) R_alloc(q2, 1);
    memset(pl->inpat, 0, q2);
    for (int j = 0; j < qd; j++) {
        int *r = pl->rowi + pl->colp[j], m = pl->colp[j + 1] - pl->colp[j];
        for (int i = 0; i < m; i++) r[i] = pl->pinv[r[i]];
        qsort(r, (size_t) m, sizeof(int), cmp_int);
        pl->inpat[j + (size_t) j * qd] = 1;
        for (int i = 0; i < m; i++) pl->inpat[r[i] + (size_t) j * qd] = 1;
    }
    return pl;
}

const int *lmm_tail_perm(const lmm_tail_plan *pl)
{
    return pl->perm;
}

const int *lmm_tail_pinv(const lmm_tail_plan *pl)
{
    return pl->pinv;
}

void lmm_tail_scale(const lmm_tail_plan *pl, const double *A, const double *dl, double *P)
{
    int qd = pl->qd;
    const int *perm = pl->perm;
    for (int j = 0; j < qd; j++) {
        int nj = perm[j];
        const double *aj = A + (size_t) nj * qd;
        double *pj = P + (size_t) j * qd, dj = dl[nj];
        pj[j] = aj[nj] * dj * dj + 1.0;
        const int *rows = pl->rowi + pl->colp[j];
        int m = pl->colp[j + 1] - pl->colp[j];
        for (int i = 0; i < m; i++) {
            int ni = perm[rows[i]];
            pj[rows[i]] = aj[ni] * dl[ni] * dj;
        }
    }
}

int lmm_tail_factor(const lmm_tail_plan *pl, double *P, double *work)
{
    int qd = pl->qd, from = pl->dense_from;
    for (int j = 0; j < from; j++) {
        double *cj = P + (size_t) j * qd, d = cj[j];
        if (!(d > 0)) return j + 1;
        d = sqrt(d);
        cj[j] = d;
        const int *rows = pl->rowi + pl->colp[j];
        int m = pl->colp[j + 1] - pl->colp[j];
        double inv = 1.0 / d;
        for (int i = 0; i < m; i++) cj[rows[i]] *= inv;
        for (int ib = 0; ib < m; ib++) {
            double lb = cj[rows[ib]];
            if (lb == 0.0) continue;
            double *cb = P + (size_t) rows[ib] * qd;
            for (int ia = ib; ia < m; ia++) cb[rows[ia]] -= cj[rows[ia]] * lb;
        }
    }
    if (from < qd) {
        int info = lmm_dense_chol_above(qd - from, P + from + (size_t) from * qd, qd, work,
                                        TAIL_FRONT_KERNEL_MIN);
        if (info != 0) return from + info;
    }
    return 0;
}

void lmm_tail_solve_right_lt(const lmm_tail_plan *pl, int px, const double *L, double *X)
{
    int qd = pl->qd;
    for (int k = 0; k < qd; k++) {
        const double *lk = L + (size_t) k * qd;
        double *xk = X + (size_t) k * px, inv = 1.0 / lk[k];
        for (int i = 0; i < px; i++) xk[i] *= inv;
        /* rows below k: the pattern's, or all of them in the full block */
        if (k < pl->dense_from) {
            const int *rows = pl->rowi + pl->colp[k];
            int m = pl->colp[k + 1] - pl->colp[k];
            for (int a = 0; a < m; a++) {
                double l = lk[rows[a]];
                double *xa = X + (size_t) rows[a] * px;
                for (int i = 0; i < px; i++) xa[i] -= xk[i] * l;
            }
        } else {
            for (int a = k + 1; a < qd; a++) {
                double l = lk[a];
                double *xa = X + (size_t) a * px;
                for (int i = 0; i < px; i++) xa[i] -= xk[i] * l;
            }
        }
    }
}
