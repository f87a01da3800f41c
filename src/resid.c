/* A residual structure as a whole (resid.h): its parameters' bounds, the
 * rows' standard-deviation multipliers, and the whitening of columns by
 * (S C S)^{-1/2} (or the colouring by its inverse), component by
 * component.  The components themselves are in resid_cor.c and resid_var.c. */
#include <math.h>
#include <string.h>
#include "resid.h"

size_t resid_work_size(const resid_model *rm)
{
    if (!rm->cor) return 1;
    const resid_cor_kind *k = resid_cor_kinds + rm->cor->kind;
    size_t size = k->dense ? (size_t) rm->mmax * rm->mmax : 0;
    if (k->scratch) size += k->scratch(rm->cor);
    return size > 0 ? size : 1;
}

void resid_bounds(const resid_model *rm, double *lower, double *upper)
{
    int at = 0;
    if (rm->cor) {
        resid_cor_kinds[rm->cor->kind].bounds(rm->cor, lower, upper);
        at = rm->cor->npar;
    }
    for (int v = 0; v < rm->nvar; v++) {
        resid_var_kinds[rm->var[v].kind].bounds(rm->var + v, lower + at, upper + at);
        at += rm->var[v].npar;
    }
}

void resid_logsd(const resid_model *rm, const double *par, double *ls)
{
    memset(ls, 0, (size_t) rm->n * sizeof(double));
    const double *p = par + (rm->cor ? rm->cor->npar : 0);
    for (int v = 0; v < rm->nvar; v++) {
        resid_var_kinds[rm->var[v].kind].logsd(rm->var + v, p, rm->n, ls);
        p += rm->var[v].npar;
    }
}

/* Scale the columns by exp(sign * ls), reading src (n x nc, contiguous)
 * when given, else in place; returns sum 2 ls, or R_PosInf.  ls is left
 * holding the factors (one exp per row, not per column). */
static double scale_rows(R_xlen_t n, double *ls, const double *src, double *const *cols, int nc, double sign)
{
    double ld = 0;
    for (R_xlen_t t = 0; t < n; t++) {
        ld += 2 * ls[t];
        ls[t] = exp(sign * ls[t]);
    }
    if (!R_FINITE(ld)) return R_PosInf;
    for (int j = 0; j < nc; j++) {
        const double *s = src ? src + (size_t) n * j : cols[j];
        for (R_xlen_t t = 0; t < n; t++) cols[j][t] = s[t] * ls[t];
    }
    return ld;
}

/* Each group's block through its correlation kind; returns sum log|C_g|. */
static double correlate_groups(const resid_model *rm, const double *par, double *const *cols, int nc,
                               double *blk, double *work, int color)
{
    const resid_comp *c = rm->cor;
    const resid_cor_kind *kind = resid_cor_kinds + c->kind;
    double ld = 0;
    for (int g = 0; g < rm->ngroups; g++) {
        const int *rows = rm->order + rm->gstart[g];
        int m = rm->gstart[g + 1] - rm->gstart[g];
        if (m < 2) continue;
        for (int j = 0; j < nc; j++)
            for (int i = 0; i < m; i++) blk[i + (size_t) j * m] = cols[j][rows[i]];
        double lg = color ? kind->color(c, par, rows, m, blk, nc, work)
                          : kind->whiten(c, par, rows, m, blk, nc, work);
        if (!R_FINITE(lg)) return R_PosInf;
        ld += lg;
        for (int j = 0; j < nc; j++)
            for (int i = 0; i < m; i++) cols[j][rows[i]] = blk[i + (size_t) j * m];
    }
    return ld;
}

double resid_transform(const resid_model *rm, const double *par, const double *src, double *const *cols,
                       int nc, double *ls, double *blk, double *work, int color)
{
    if (src && color)
        for (int j = 0; j < nc; j++) memcpy(cols[j], src + (size_t) rm->n * j, (size_t) rm->n * sizeof(double));
    resid_logsd(rm, par, ls);
    double ld = 0, lc = 0;
    if (!color) ld = scale_rows(rm->n, ls, src, cols, nc, -1.0);
    if (!R_FINITE(ld)) return R_PosInf;
    if (rm->cor) lc = correlate_groups(rm, par, cols, nc, blk, work, color);
    if (!R_FINITE(lc)) return R_PosInf;
    if (color) ld = scale_rows(rm->n, ls, NULL, cols, nc, 1.0);
    return ld + lc;
}
