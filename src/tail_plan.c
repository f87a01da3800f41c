/* The symbolic part of a sparse tail: which storage the tail of the factor
 * (the crossed terms, after the stages) gets.  Partially crossed designs
 * (pupils who change school) leave a tail whose Schur complement links only
 * the levels that share a level eliminated before them.  Found once per fit:
 * the tail's graph (co-occurrence in the data, and the cliques the stages'
 * eliminations leave), a minimum-degree order of its levels and the pattern
 * of the factor in that order.  Tails with vector-valued terms stay dense.
 *
 * The plan is kept with the cross-products (attribute "tail_plan", from
 * lmm_tail_plan_R), so that every later .Call of a fit reuses it; a kept
 * plan is checked (an order, a pattern closed under elimination, covering
 * the tail's nonzeros and the stages' cliques) and found afresh when it does
 * not fit.  The pattern is that of the values seen at set-up; the values
 * that change later (the bootstrap's response, AR(1)'s whitening of rows
 * that share every level) keep it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <Rinternals.h>
#include "model.h"
#include "lmmfit.h"
#include "tail.h"

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

/* Marks a and b adjacent (tail coordinates, a != b); returns 1 if new. */
static int link(unsigned char *adj, int qd, int a, int b)
{
    unsigned char *e = adj + (size_t) a * qd + b;
    if (*e) return 0;
    *e = 1;
    adj[(size_t) b * qd + a] = 1;
    return 1;
}

/* Calls visit(a, b, ctx) for every pair of tail coordinates (a > b) linked
 * before any elimination: the nonzeros of the tail's block, then the
 * cliques of the tail rows beside each level of every stage (pairs may
 * repeat).  Stops at the first visit that returns 0 and returns 0; else 1. */
static int each_linked_pair(const lmm_xprod *xp, int (*visit)(int, int, void *), void *ctx)
{
    int qd = xp->qd, dstart = xp->dstart;
    const double *D = xp->A22 + xp->doff;
    for (int j = 0; j < qd; j++)
        for (int i = j + 1; i < qd; i++)
            if (D[i + (size_t) j * qd] != 0.0 && !visit(i, j, ctx)) return 0;
    for (int s = 0; s < xp->nstage; s++) {
        const lmm_stage *st = xp->stage + s;
        for (int g = 0; g < st->nlev; g++) {
            const int *rows = st->Ci + st->Cp[g];
            int m = st->Cp[g + 1] - st->Cp[g], e = 0;
            while (e < m && rows[e] < dstart) e++;
            for (int b = e; b < m; b++)
                for (int a = b + 1; a < m; a++)
                    if (!visit(rows[a] - dstart, rows[b] - dstart, ctx)) return 0;
        }
    }
    return 1;
}

typedef struct { unsigned char *adj; int *deg, qd; } graph_ctx;

static int add_edge(int a, int b, void *ctx)
{
    graph_ctx *g = (graph_ctx *) ctx;
    if (link(g->adj, g->qd, a, b)) { g->deg[a]++; g->deg[b]++; }
    return 1;
}

/* The tail's graph (adjacency bytes and degrees); returns its number of
 * edges. */
static double tail_graph(const lmm_xprod *xp, unsigned char *adj, int *deg)
{
    int qd = xp->qd;
    memset(deg, 0, (size_t) qd * sizeof(int));
    graph_ctx g = {adj, deg, qd};
    each_linked_pair(xp, add_edge, &g);
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

/* The factor's compact storage (see lmm_tail_pos): the trailing full
 * block (from the first column after which every column is full) and each
 * column's rows above it. */
static void set_storage(lmm_tail_plan *pl)
{
    int qd = pl->qd, from = qd;
    while (from > 0 && pl->colp[from] - pl->colp[from - 1] == qd - from) from--;
    pl->from = from;
    pl->nt = qd - from;
    pl->nsparse = (R_xlen_t) pl->colp[from] + from;
    int *nlow = (int *) R_alloc((size_t) (from > 0 ? from : 1), sizeof(int));
    for (int j = 0; j < from; j++) {
        const int *r = pl->rowi + pl->colp[j];
        int m = pl->colp[j + 1] - pl->colp[j], i = 0;
        while (i < m && r[i] < from) i++;
        nlow[j] = i;
    }
    pl->nlow = nlow;
}

/* Column j < from holds its diagonal entry at colp[j] + j and then its
 * rows; the full block follows, dense, column major. */
R_xlen_t lmm_tail_pos(const lmm_tail_plan *pl, int a, int b)
{
    if (b >= pl->from)
        return pl->nsparse + (a - pl->from) + (R_xlen_t) (b - pl->from) * pl->nt;
    R_xlen_t x = (R_xlen_t) pl->colp[b] + b;
    if (a == b) return x;
    const int *r = pl->rowi + pl->colp[b];
    int lo = 0, hi = pl->colp[b + 1] - pl->colp[b], m = hi;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (r[mid] < a) lo = mid + 1; else hi = mid;
    }
    return lo < m && r[lo] == a ? x + 1 + lo : -1;
}

/* The most flops a sparse path may take: a share of the dense kernel's. */
static double flop_budget(int qd)
{
    return TAIL_SPARSE_GAIN * (double) qd * qd * qd / 3.0;
}

/* Whether the plan's flops (the columns before the full block, then the
 * block) are within the budget. */
static int worth_it(const lmm_tail_plan *pl)
{
    double tail = pl->nt, flops = tail * tail * tail / 3.0;
    for (int j = 0; j < pl->from; j++) {
        double m = pl->colp[j + 1] - pl->colp[j];
        flops += m * m;
    }
    return flops <= flop_budget(pl->qd);
}

/* A fresh plan: NULL when the tail is better factored dense. */
static const lmm_tail_plan *find_plan(const lmm_xprod *xp)
{
    int qd = xp->qd;
    size_t q2 = (size_t) qd * qd;
    unsigned char *adj = (unsigned char *) R_alloc(q2, 1);
    memset(adj, 0, q2);
    int *deg = (int *) R_alloc((size_t) qd, sizeof(int));
    double edges = tail_graph(xp, adj, deg);
    if (edges > TAIL_EDGE_SHARE * qd * (qd - 1.0) / 2) return NULL;
    int *perm = (int *) R_alloc((size_t) qd, sizeof(int));
    int *pinv = (int *) R_alloc((size_t) qd, sizeof(int));
    int *colp = (int *) R_alloc((size_t) qd + 1, sizeof(int));
    /* the pattern may hold at most a share of the dense triangle, else the
     * sparse path cannot win */
    int cap = (int) (q2 / 2 < INT_MAX ? q2 / 2 : INT_MAX);
    int *rowi = (int *) R_alloc((size_t) cap > 0 ? (size_t) cap : 1, sizeof(int));
    int *work = (int *) R_alloc((size_t) qd, sizeof(int));
    if (min_degree(qd, adj, deg, perm, colp, rowi, cap, work, flop_budget(qd)) < 0)
        return NULL;
    for (int a = 0; a < qd; a++) pinv[perm[a]] = a;
    /* rows in permuted coordinates, increasing */
    for (int j = 0; j < qd; j++) {
        int *r = rowi + colp[j], m = colp[j + 1] - colp[j];
        for (int i = 0; i < m; i++) r[i] = pinv[r[i]];
        qsort(r, (size_t) m, sizeof(int), cmp_int);
    }
    lmm_tail_plan *pl = (lmm_tail_plan *) R_alloc(1, sizeof(lmm_tail_plan));
    *pl = (lmm_tail_plan) {qd, perm, pinv, colp, rowi, 0, 0, NULL, 0};
    set_storage(pl);
    return worth_it(pl) ? pl : NULL;
}

/* Whether the pattern is closed under elimination: the rows of each column
 * after its first are among the rows of that first row's column (its parent
 * in the elimination tree); the fill of every step then stays inside. */
static int closed(const lmm_tail_plan *pl)
{
    int qd = pl->qd;
    int *mark = (int *) R_alloc((size_t) qd, sizeof(int));
    int *head = (int *) R_alloc((size_t) qd, sizeof(int));
    int *next = (int *) R_alloc((size_t) qd, sizeof(int));
    for (int j = 0; j < qd; j++) mark[j] = head[j] = -1;
    for (int j = 0; j < qd; j++)
        if (pl->colp[j + 1] > pl->colp[j]) {
            int parent = pl->rowi[pl->colp[j]];
            next[j] = head[parent];
            head[parent] = j;
        }
    for (int parent = 0; parent < qd; parent++) {
        if (head[parent] < 0) continue;
        for (int i = pl->colp[parent]; i < pl->colp[parent + 1]; i++) mark[pl->rowi[i]] = parent;
        for (int j = head[parent]; j >= 0; j = next[j])
            for (int i = pl->colp[j] + 1; i < pl->colp[j + 1]; i++)
                if (mark[pl->rowi[i]] != parent) return 0;
    }
    return 1;
}

/* Whether the pattern holds the pair of natural tail coordinates (a, b). */
static int holds(int a, int b, void *ctx)
{
    const lmm_tail_plan *pl = (const lmm_tail_plan *) ctx;
    int pa = pl->pinv[a], pb = pl->pinv[b];
    return lmm_tail_pos(pl, pa > pb ? pa : pb, pa > pb ? pb : pa) >= 0;
}

/* Whether the pattern covers every pair the data link. */
static int covers(const lmm_tail_plan *pl, const lmm_xprod *xp)
{
    return each_linked_pair(xp, holds, (void *) pl);
}

/* A kept plan (qd, perm, colp, rowi; see lmm_tail_plan_R), or NULL when it
 * is not a plan of this tail. */
static const lmm_tail_plan *kept_plan(const lmm_xprod *xp)
{
    int qd = xp->qd;
    const int *v = xp->tailplan;
    R_xlen_t len = xp->tailplan_len;
    if (len < 2 * (R_xlen_t) qd + 2 || v[0] != qd) return NULL;
    const int *perm = v + 1, *colp = v + 1 + qd, *rowi = colp + qd + 1;
    if (colp[0] != 0) return NULL;
    for (int j = 0; j < qd; j++)     /* compared before subtracting: NA is INT_MIN */
        if (colp[j + 1] < colp[j] || colp[j + 1] - colp[j] > qd - 1 - j) return NULL;
    if (len != 2 * (R_xlen_t) qd + 2 + colp[qd]) return NULL;
    int *pinv = (int *) R_alloc((size_t) qd, sizeof(int));
    for (int a = 0; a < qd; a++) pinv[a] = -1;
    for (int a = 0; a < qd; a++) {
        if (perm[a] < 0 || perm[a] >= qd || pinv[perm[a]] >= 0) return NULL;
        pinv[perm[a]] = a;
    }
    for (int j = 0; j < qd; j++)
        for (int i = colp[j]; i < colp[j + 1]; i++)
            if (rowi[i] <= (i > colp[j] ? rowi[i - 1] : j) || rowi[i] >= qd) return NULL;
    lmm_tail_plan *pl = (lmm_tail_plan *) R_alloc(1, sizeof(lmm_tail_plan));
    *pl = (lmm_tail_plan) {qd, perm, pinv, colp, rowi, 0, 0, NULL, 0};
    if (!closed(pl)) return NULL;
    set_storage(pl);
    /* a valid plan that costs more than the dense path (one made by hand)
     * is not kept either */
    return covers(pl, xp) && worth_it(pl) ? pl : NULL;
}

/* Whether the tail may have a plan at all. */
static int plannable(const lmm_xprod *xp)
{
    if (xp->qd < TAIL_SPARSE_MIN || xp->qd > TAIL_SPARSE_MAX) return 0;
    for (int j = xp->nstage; j < xp->nterms; j++) if (xp->ncol[j] != 1) return 0;
    return 1;
}

const lmm_tail_plan *lmm_tail_plan_build(const lmm_xprod *xp)
{
    if (!plannable(xp)) return NULL;
    if (xp->tailplan) {
        /* a kept decision for the dense path needs no check: it is exact
         * for any pattern */
        if (xp->tailplan_len == 1 && xp->tailplan[0] == xp->qd) return NULL;
        const lmm_tail_plan *pl = kept_plan(xp);
        if (pl) return pl;
    }
    return find_plan(xp);
}

/* .Call entry: a fresh plan of the cross-products' tail, as one integer
 * vector (qd, perm, colp, rowi; 0-based); qd alone when the tail was
 * considered and is better factored dense (InstEval: the search is not
 * repeated in every .Call); NULL when it cannot have a plan. */
SEXP lmm_tail_plan_R(SEXP sxp)
{
    lmm_xprod xp;
    lmm_unpack_xprod(sxp, &xp);
    if (!plannable(&xp)) return R_NilValue;
    const lmm_tail_plan *pl = find_plan(&xp);
    if (!pl) return ScalarInteger(xp.qd);
    int qd = pl->qd;
    R_xlen_t nnz = pl->colp[qd];
    SEXP ans = PROTECT(allocVector(INTSXP, 2 * (R_xlen_t) qd + 2 + nnz));
    int *v = INTEGER(ans);
    v[0] = qd;
    memcpy(v + 1, pl->perm, (size_t) qd * sizeof(int));
    memcpy(v + 1 + qd, pl->colp, ((size_t) qd + 1) * sizeof(int));
    memcpy(v + 2 + 2 * (size_t) qd, pl->rowi, (size_t) nnz * sizeof(int));
    UNPROTECT(1);
    return ans;
}

const int *lmm_tail_perm(const lmm_tail_plan *pl)
{
    return pl->perm;
}

const int *lmm_tail_pinv(const lmm_tail_plan *pl)
{
    return pl->pinv;
}

