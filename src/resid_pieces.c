/* Structures whose whitened cross-products are a fixed linear combination
 * of a few pieces, formed once per fit, so that an evaluation combines
 * them instead of whitening and re-accumulating the n rows (resid_fit.c).
 *
 * With a variance per stratum (varIdent: s_k, s_1 = 1) and compound
 * symmetry within groups whose rows share one stratum, group g of size m in
 * stratum k has  B_g' S^-1 C^-1 S^-1 B_g = (B_g'B_g - u u' / m) / (s_k^2 e1)
 * + u u' / (m s_k^2 em(m)),  u = B_g'1,  e1 = 1 - rho, em(m) = 1 + (m - 1) rho
 * (C^-1 = (I - P) / e1 + P / em, P = 11'/m).  So the cross-products are
 *     sum_k W_k / (s_k^2 e1) + sum_{k,m} U_{k,m} (1 / em(m) - 1 / e1) / s_k^2,
 * W_k the rows' own cross-products in stratum k and U_{k,m} those of the
 * group sums u / sqrt(m) of its groups of size m; and
 *     log|S C S| = sum_k n_k 2 log s_k + sum_{k,m} G_{k,m} ((m - 1) log e1 + log em(m)).
 * Without compound symmetry only the W_k remain (e1 = 1); without varIdent,
 * one stratum. */
#include <math.h>
#include <string.h>
#include "resid_pieces.h"
#include "lmmfit.h"

/* The kinds' codes in the tables of resid_cor.c and resid_var.c. */
#define COR_KIND_COMPSYMM 2
#define VAR_KIND_IDENT 0
/* More pieces than this per stratum (distinct group sizes) cost more to
 * form and combine than the rows' re-accumulation saves. */
#define PIECES_MAX_SIZES 16

/* The stratum of each correlation group (its first row's), or -1 when a
 * group's rows are in several strata. */
static int group_strata(const resid_model *rm, const resid_comp *v, int *gk)
{
    for (int g = 0; g < rm->ngroups; g++) {
        const int *rows = rm->order + rm->gstart[g];
        int m = rm->gstart[g + 1] - rm->gstart[g];
        int k = v && v->strata ? v->strata[rows[0]] - 1 : 0;
        for (int i = 1; i < m; i++)
            if ((v && v->strata ? v->strata[rows[i]] - 1 : 0) != k) return -1;
        gk[g] = k;
    }
    return 0;
}

/* Add the cross-products of rows sel[0..ns) of d (its own row numbers) into out. */
static void accumulate_selected(const resid_piece_data *d, const int *sel, R_xlen_t ns, int *start,
                                int *fill, int *order, const lmm_value_layout *lay, double *out)
{
    const lmm_xprod *pat = d->pat;
    int nl = pat->nlev[0];
    const int *c0 = d->codes[0];
    memset(start, 0, (size_t) (nl + 1) * sizeof(int));
    for (R_xlen_t s = 0; s < ns; s++) start[c0[sel[s]]]++;       /* level c0 - 1, plus 1 */
    for (int g = 0; g < nl; g++) start[g + 1] += start[g];
    memcpy(fill, start, (size_t) nl * sizeof(int));
    for (R_xlen_t s = 0; s < ns; s++) order[fill[c0[sel[s]] - 1]++] = sel[s];
    lmm_accumulate(d->n, pat->p, d->X, d->y, NULL, NULL, NULL, d->codes, d->Z, pat, start, order,
                   out + lay->off[0], out + lay->off[1], out + lay->off[2],
                   out + lay->off[3], out + lay->off[4], out + lay->off[5], NULL);
}

/* The group sums u / sqrt(m) of every correlation group, as a data set of
 * ngroups rows with the codes of the group's first row. */
static resid_piece_data group_sums(const resid_model *rm, const resid_piece_data *d)
{
    int G = rm->ngroups, p = d->pat->p, nt = d->pat->nterms;
    resid_piece_data u = {G, d->pat, NULL, NULL, NULL, NULL};
    double *X = (double *) R_alloc((size_t) G * p + G, sizeof(double));
    u.X = X;
    u.y = X + (size_t) G * p;
    const int **codes = (const int **) R_alloc((size_t) nt, sizeof(int *));
    const double **Z = (const double **) R_alloc((size_t) nt, sizeof(double *));
    for (int j = 0; j < nt; j++) {
        int *cj = (int *) R_alloc((size_t) G, sizeof(int));
        double *zj = (double *) R_alloc((size_t) G * d->pat->ncol[j], sizeof(double));
        for (int g = 0; g < G; g++) cj[g] = d->codes[j][rm->order[rm->gstart[g]]];
        memset(zj, 0, (size_t) G * d->pat->ncol[j] * sizeof(double));
        codes[j] = cj;
        Z[j] = zj;
    }
    memset(X, 0, ((size_t) G * p + G) * sizeof(double));
    for (int g = 0; g < G; g++) {
        int m = rm->gstart[g + 1] - rm->gstart[g];
        double f = 1.0 / sqrt((double) m);
        for (int i = 0; i < m; i++) {
            int t = rm->order[rm->gstart[g] + i];
            for (int c = 0; c < p; c++) X[g + (size_t) c * G] += f * d->X[t + (size_t) c * d->n];
            ((double *) u.y)[g] += f * d->y[t];
            for (int j = 0; j < nt; j++)
                for (int c = 0; c < d->pat->ncol[j]; c++)
                    ((double *) Z[j])[g + (size_t) c * G] += f * d->Z[j][t + (size_t) c * d->n];
        }
    }
    u.codes = codes;
    u.Z = Z;
    return u;
}

int resid_pieces_build(const resid_model *rm, const resid_piece_data *d, const lmm_value_layout *lay,
                       resid_pieces *pc)
{
    const resid_comp *cor = rm->cor, *v = rm->nvar == 1 ? rm->var : NULL;
    if (rm->nvar > 1 || (v && v->kind != VAR_KIND_IDENT)) return 0;
    if (cor && cor->kind != COR_KIND_COMPSYMM) return 0;
    if (!cor && !v) return 0;
    int K = v ? v->nstrata : 1;
    int *gk = NULL, nsize = 0, *sizes = NULL, *size_of = NULL;
    if (cor) {
        gk = (int *) R_alloc((size_t) rm->ngroups, sizeof(int));
        if (group_strata(rm, v, gk)) return 0;
        sizes = (int *) R_alloc(PIECES_MAX_SIZES, sizeof(int));
        size_of = (int *) R_alloc((size_t) rm->ngroups, sizeof(int));
        for (int g = 0; g < rm->ngroups; g++) {
            int m = rm->gstart[g + 1] - rm->gstart[g], s = 0;
            while (s < nsize && sizes[s] != m) s++;
            if (s == nsize) {
                if (nsize == PIECES_MAX_SIZES) return 0;
                sizes[nsize++] = m;
            }
            size_of[g] = s;
        }
    }
    R_xlen_t L = lay->off[6];
    pc->K = K;
    pc->nsize = nsize;
    pc->sizes = sizes;
    pc->L = L;
    pc->npieces = K * (1 + nsize);
    pc->P = (double *) R_alloc((size_t) pc->npieces * (L > 0 ? L : 1), sizeof(double));
    memset(pc->P, 0, (size_t) pc->npieces * L * sizeof(double));
    pc->nrow = (double *) R_alloc((size_t) K, sizeof(double));
    pc->ngrp = (double *) R_alloc((size_t) K * (nsize > 0 ? nsize : 1), sizeof(double));
    memset(pc->nrow, 0, (size_t) K * sizeof(double));
    memset(pc->ngrp, 0, (size_t) K * (nsize > 0 ? nsize : 1) * sizeof(double));
    pc->cor_npar = cor ? cor->npar : 0;

    /* the rows of each stratum, then each (stratum, size)'s groups */
    R_xlen_t nmax = d->n > rm->ngroups ? d->n : rm->ngroups;
    int *sel = (int *) R_alloc((size_t) (nmax > 0 ? nmax : 1), sizeof(int));
    int nl = d->pat->nlev[0];
    int *start = (int *) R_alloc((size_t) nl + 1, sizeof(int));
    int *fill = (int *) R_alloc((size_t) nl, sizeof(int));
    int *order = (int *) R_alloc((size_t) (nmax > 0 ? nmax : 1), sizeof(int));
    for (int k = 0; k < K; k++) {
        R_xlen_t ns = 0;
        for (R_xlen_t t = 0; t < d->n; t++)
            if ((v && v->strata ? v->strata[t] - 1 : 0) == k) sel[ns++] = (int) t;
        pc->nrow[k] = (double) ns;
        accumulate_selected(d, sel, ns, start, fill, order, lay, pc->P + (size_t) k * L);
    }
    if (cor) {
        resid_piece_data u = group_sums(rm, d);
        for (int k = 0; k < K; k++)
            for (int s = 0; s < nsize; s++) {
                R_xlen_t ns = 0;
                for (int g = 0; g < rm->ngroups; g++)
                    if (gk[g] == k && size_of[g] == s) sel[ns++] = g;
                pc->ngrp[k * nsize + s] = (double) ns;
                accumulate_selected(&u, sel, ns, start, fill, order, lay,
                                    pc->P + (size_t) (K + k * nsize + s) * L);
            }
    }
    return 1;
}

double resid_pieces_combine(const resid_pieces *pc, const double *rpar, double *buf)
{
    int K = pc->K, S = pc->nsize;
    double rho = pc->cor_npar ? rpar[0] : 0, e1 = 1 - rho, ld = 0;
    const double *lr = rpar + pc->cor_npar;       /* log s_k, k = 2..K */
    if (!(e1 > 0)) return R_PosInf;
    for (int s = 0; s < S; s++)
        if (!(1 + (pc->sizes[s] - 1) * rho > 0)) return R_PosInf;
    memset(buf, 0, (size_t) pc->L * sizeof(double));
    for (int k = 0; k < K; k++) {
        double ls = k > 0 ? lr[k - 1] : 0, is2 = exp(-2 * ls);
        ld += pc->nrow[k] * 2 * ls;
        const double *W = pc->P + (size_t) k * pc->L;
        double c = is2 / e1;
        for (R_xlen_t i = 0; i < pc->L; i++) buf[i] += c * W[i];
        for (int s = 0; s < S; s++) {
            int m = pc->sizes[s];
            double em = 1 + (m - 1) * rho, G = pc->ngrp[k * S + s];
            if (G == 0) continue;
            ld += G * ((m - 1) * log(e1) + log(em));
            const double *U = pc->P + (size_t) (K + k * S + s) * pc->L;
            double cu = is2 * (1 / em - 1 / e1);
            for (R_xlen_t i = 0; i < pc->L; i++) buf[i] += cu * U[i];
        }
    }
    return ld;
}
