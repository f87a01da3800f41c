/* Random-effects terms crossed with the correlation grouping (resid_fit.c):
 * subjects with serially correlated residuals crossed with items, which
 * nlme cannot fit.
 *
 * Whitening a correlation group mixes its rows, so a whitened row of a
 * crossed term's Z has entries at several of the term's levels: the rows'
 * one-level-per-term accumulation (lmm_accumulate) cannot hold it.  A
 * crossed term lives in the dense tail, where every pair of its levels has
 * a place, and its part of the cross-products is assembled group by group:
 * the group's rows of Z_j as a dense block E over the levels present
 * (m x r), scaled by the variance functions and whitened by the group's
 * C_g^{-1/2}, and then
 *     E'E            into the dense tail,
 *     [X y]_w' E     into AX2,
 *     Z_0w' E        into the first term's beside-values of the group's level
 *                    (the group is nested in the first term, so its rows
 *                    share that level and the pattern holds the pairs),
 *     Z_lw' E        into the tail, for the tail terms nested in the group.
 * The terms' other blocks come from the accumulation, with the crossed
 * terms' columns zero there. */
#include <string.h>
#include "resid_crossed.h"
#include "lmmfit.h"

/* Whether term j's level varies within some correlation group. */
static int varies_within(const resid_model *rm, const int *code)
{
    for (int g = 0; g < rm->ngroups; g++) {
        const int *rows = rm->order + rm->gstart[g];
        int m = rm->gstart[g + 1] - rm->gstart[g];
        for (int i = 1; i < m; i++)
            if (code[rows[i]] != code[rows[0]]) return 1;
    }
    return 0;
}

int resid_cross_setup(const resid_model *rm, const lmm_xprod *xp, const int *const *codes,
                      const double *const *Zraw, resid_cross *cx)
{
    int nt = xp->nterms;
    cx->crossed = (int *) R_alloc((size_t) nt, sizeof(int));
    cx->ncrossed = 0;
    cx->Zraw = Zraw;
    int kc = 0;
    for (int j = 0; j < nt; j++) {
        cx->crossed[j] = rm->cor ? varies_within(rm, codes[j]) : 0;
        if (!cx->crossed[j]) continue;
        if (j == 0)
            error(_("the correlation grouping must be nested in the random-effects grouping factor with the "
                    "most levels; terms crossed with it are supported when they have fewer levels"));
        if (xp->nstage > 1)
            error(_("a random-effects term crossed with the correlation grouping cannot be combined with "
                    "nested stages of random effects"));
        cx->ncrossed++;
        kc += xp->ncol[j];
    }
    if (!cx->ncrossed) return 0;
    if (xp->tailplan)
        error(_("a random-effects term crossed with the correlation grouping needs the dense tail"));
    cx->rmax = rm->mmax * kc;
    cx->E = (double *) R_alloc((size_t) rm->mmax * cx->rmax, sizeof(double));
    cx->lcoord = (int *) R_alloc((size_t) cx->rmax, sizeof(int));
    return cx->ncrossed;
}

/* The group's crossed levels as rest coordinates (whole tiles) into lcoord,
 * and E (m x r, zero elsewhere) from the raw Z scaled by the row factors;
 * returns r. */
static int local_block(const resid_cross *cx, const lmm_xprod *xp, const int *roff, const int *const *codes,
                       R_xlen_t n, const int *rows, int m, const double *rowfac)
{
    int r = 0;
    for (int j = 1; j < xp->nterms; j++) {
        if (!cx->crossed[j]) continue;
        int kj = xp->ncol[j], first = r;
        for (int i = 0; i < m; i++) {
            int base = roff[j] + (codes[j][rows[i]] - 1) * kj, a = first;
            while (a < r && cx->lcoord[a] != base) a += kj;
            if (a == r) {
                for (int c = 0; c < kj; c++) cx->lcoord[r + c] = base + c;
                memset(cx->E + (size_t) r * m, 0, (size_t) kj * m * sizeof(double));
                r += kj;
            }
            for (int c = 0; c < kj; c++)
                cx->E[i + (size_t) (a + c) * m] = cx->Zraw[j][rows[i] + n * c] * rowfac[rows[i]];
        }
    }
    return r;
}

static double dot_rows(const double *col, const int *rows, int m, const double *e)
{
    double s = 0;
    for (int i = 0; i < m; i++) s += col[rows[i]] * e[i];
    return s;
}

/* The position of rest row rj in the first term's beside-list of level g. */
static int beside_position(const lmm_xprod *xp, int g, int rj)
{
    int lo = xp->A21p[g], hi = xp->A21p[g + 1] - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (xp->A21i[mid] == rj) return mid - xp->A21p[g];
        if (xp->A21i[mid] < rj) lo = mid + 1; else hi = mid - 1;
    }
    error(_("internal error: a crossed level is not in the first term's pattern"));
}

double resid_cross_assemble(const resid_cross *cx, const resid_model *rm, const double *par,
                            const lmm_xprod *xp, const int *roff, const int *const *codes, R_xlen_t n,
                            const double *const *cols, const double *const *Zw, const double *rowfac,
                            double *work, double *A21x, double *A22, double *AX2)
{
    const resid_comp *c = rm->cor;
    const resid_cor_kind *kind = resid_cor_kinds + c->kind;
    int px = xp->px, k1 = xp->ncol[0], qd = xp->qd, dstart = xp->dstart;
    double *D = A22 + xp->doff;
    for (int g = 0; g < rm->ngroups; g++) {
        const int *rows = rm->order + rm->gstart[g];
        int m = rm->gstart[g + 1] - rm->gstart[g];
        int r = local_block(cx, xp, roff, codes, n, rows, m, rowfac);
        if (m >= 2 && !R_FINITE(kind->whiten(c, par, rows, m, cx->E, r, work))) return R_PosInf;
        int g0 = codes[0][rows[0]] - 1, mg = xp->A21p[g0 + 1] - xp->A21p[g0];
        double *a21 = A21x + (size_t) xp->A21p[g0] * k1;
        for (int a = 0; a < r; a++) {
            const double *ea = cx->E + (size_t) a * m;
            int rj = cx->lcoord[a], at = beside_position(xp, g0, rj);
            for (int cc = 0; cc < k1; cc++) a21[at + cc * mg] += dot_rows(Zw[0] + n * cc, rows, m, ea);
            for (int i = 0; i < px; i++) AX2[i + (size_t) rj * px] += dot_rows(cols[i], rows, m, ea);
            double *dcol = D + (size_t) (rj - dstart) * qd;
            for (int b = 0; b < r; b++) {
                const double *eb = cx->E + (size_t) b * m;
                double s = 0;
                for (int i = 0; i < m; i++) s += ea[i] * eb[i];
                dcol[cx->lcoord[b] - dstart] += s;
            }
            /* the tail terms nested in the group: one level for all its rows */
            for (int l = 1; l < xp->nterms; l++) {
                if (cx->crossed[l]) continue;
                int base = roff[l] + (codes[l][rows[0]] - 1) * xp->ncol[l];
                for (int cl = 0; cl < xp->ncol[l]; cl++) {
                    double s = dot_rows(Zw[l] + n * cl, rows, m, ea);
                    dcol[base + cl - dstart] += s;
                    D[(size_t) (base + cl - dstart) * qd + (rj - dstart)] += s;
                }
            }
        }
    }
    return 0;
}
