/* The linear mixed model with a residual structure (resid.h): each
 * evaluation whitens the rows of [X y Z] by (S C S)^{-1/2} at the
 * structure's parameters, re-accumulates their cross-products into the
 * plain model's pattern (kept: a correlation group is nested in every
 * random-effects grouping, so its rows share their levels) and evaluates
 * the one deviance module with log|S C S| as the sum of log weights.  The
 * parameters (theta, then the structure's) go to the one optimizer driver.
 * Structures whose cross-products are a fixed combination of a few pieces
 * skip the re-accumulation: varIdent and compound symmetry here
 * (resid_pieces.c), AR(1) on integer times in ar1.c. */
#include <limits.h>
#include <math.h>
#include <string.h>
#include <Rinternals.h>
#include "model.h"
#include "resid.h"
#include "resid_pieces.h"
#include "resid_crossed.h"
#include "minimize.h"
#include "lmmfit.h"

/* ---- unpacking the structure ------------------------------------------- */

static int list_int(SEXP l, const char *name)
{
    SEXP names = getAttrib(l, R_NamesSymbol);
    for (int i = 0; i < LENGTH(l); i++)
        if (!strcmp(CHAR(STRING_ELT(names, i)), name)) return asInteger(VECTOR_ELT(l, i));
    error(_("corrupt residual structure: no '%s'"), name);
}

static SEXP list_elt(SEXP l, const char *name)
{
    SEXP names = getAttrib(l, R_NamesSymbol);
    if (isNull(names)) error(_("corrupt residual structure: unnamed list"));
    for (int i = 0; i < LENGTH(l); i++)
        if (!strcmp(CHAR(STRING_ELT(names, i)), name)) return VECTOR_ELT(l, i);
    return R_NilValue;
}

/* The parameters a component of this kind and data has. */
static int comp_npar(int is_cor, const resid_comp *c)
{
    if (is_cor) switch (c->kind) {
        case RESID_COR_ARMA: return c->p + c->q;
        case RESID_COR_SYMM: return c->span * (c->span - 1) / 2;
        default: return c->kind <= RESID_COR_CS ? 1 : 1 + c->flag;
        }
    switch (c->kind) {
    case 0: return c->nstrata - 1;
    case 1: case 2: return c->nstrata;
    case 3: return 2 * c->nstrata;
    default: return 0;
    }
}

/* An integer time: exactly integer and small enough that differences of
 * two are exact. */
static int integer_time(double t) { return t == floor(t) && fabs(t) <= RESID_MAX_INTEGER_TIME; }

/* ARMA's orders; corSymm's number of positions T, the largest, each an
 * integer in 1..RESID_SYMM_MAX_T. */
static void unpack_cor_orders(SEXP s, resid_comp *c)
{
    if (c->kind == RESID_COR_ARMA) {
        c->p = list_int(s, "p");
        c->q = list_int(s, "q");
        if (c->p < 0 || c->q < 0 || c->p + c->q < 1) error(_("corrupt residual structure: ARMA orders"));
        if (c->p > RESID_ARMA_MAX_ORDER || c->q > RESID_ARMA_MAX_ORDER)
            error(_("corARMA(): orders above %d are not supported"), RESID_ARMA_MAX_ORDER);
    }
    if (c->kind == RESID_COR_SYMM) {
        for (R_xlen_t t = 0; t < c->n; t++) {
            double v = c->x[t];
            if (!integer_time(v) || v < 1 || v > RESID_SYMM_MAX_T)
                error(_("corrupt residual structure: corSymm positions"));
            if (v > c->span) c->span = (int) v;
        }
    }
}

static void unpack_comp(SEXP s, R_xlen_t n, int is_cor, resid_comp *c)
{
    if (!isNewList(s)) error(_("corrupt residual structure: a component is not a list"));
    c->kind = list_int(s, "kind");
    if (c->kind < 0 || c->kind >= (is_cor ? resid_ncor_kinds : resid_nvar_kinds))
        error(_("corrupt residual structure: unknown kind %d"), c->kind);
    c->n = n;
    SEXP x = list_elt(s, "x"), st = list_elt(s, "strata");
    c->x = NULL;
    c->ncoord = 0;
    if (!isNull(x)) {
        if (!isReal(x) || XLENGTH(x) % (n > 0 ? n : 1) || XLENGTH(x) == 0)
            error(_("corrupt residual structure: covariate"));
        c->x = REAL(x);
        c->ncoord = (int) (XLENGTH(x) / n);
        for (R_xlen_t t = 0; t < XLENGTH(x); t++)
            if (!R_FINITE(c->x[t])) error(_("corrupt residual structure: non-finite covariate"));
    }
    c->strata = NULL;
    c->nstrata = 1;
    if (!isNull(st)) {
        if (!isInteger(st) || XLENGTH(st) != n) error(_("corrupt residual structure: strata"));
        c->strata = INTEGER(st);
        c->nstrata = list_int(s, "nstrata");
        for (R_xlen_t t = 0; t < n; t++)
            if (c->strata[t] < 1 || c->strata[t] > c->nstrata) error(_("corrupt residual structure: strata"));
    }
    c->flag = is_cor ? list_int(s, "nugget") : 0;
    c->mmax = 0;
    c->logx = NULL;
    /* the power kinds take log|x| at every evaluation: formed once */
    if (!is_cor && (c->kind == 1 || c->kind == 3) && c->x) {
        double *lx = (double *) R_alloc((size_t) (n > 0 ? n : 1), sizeof(double));
        for (R_xlen_t t = 0; t < n; t++) lx[t] = log(fabs(c->x[t]));
        c->logx = lx;
    }
    c->p = c->q = c->span = 0;
    /* compound symmetry and varIdent read no covariate */
    int needs_x = is_cor ? c->kind != RESID_COR_CS : c->kind >= 1;
    if (needs_x && !c->x) error(_("corrupt residual structure: a component needs its covariate"));
    if (is_cor) unpack_cor_orders(s, c);
    c->npar = comp_npar(is_cor, c);
}

/* ARMA and corSymm index their correlations by integer times (positions):
 * each group's rows strictly increasing in them.  ARMA's span, the largest
 * lag within a group, sizes its table of autocorrelations. */
static void check_integer_times(const resid_model *rm, resid_comp *c)
{
    if (c->kind != RESID_COR_ARMA && c->kind != RESID_COR_SYMM) return;
    double span = 0;
    for (int g = 0; g < rm->ngroups; g++) {
        const int *rows = rm->order + rm->gstart[g];
        int m = rm->gstart[g + 1] - rm->gstart[g];
        for (int i = 0; i < m; i++)
            if (!integer_time(c->x[rows[i]]) || (i > 0 && !(c->x[rows[i]] > c->x[rows[i - 1]])))
                error(_("corrupt residual structure: times not increasing integers within a group"));
        span = fmax(span, c->x[rows[m - 1]] - c->x[rows[0]]);
    }
    if (c->kind == RESID_COR_SYMM) return;
    if (span > RESID_ARMA_MAX_LAG)
        error(_("corARMA(): the times within a group span %.0f units, more than %d"), span, RESID_ARMA_MAX_LAG);
    c->span = (int) span;
}

/* spec: list(order, gstart, cor, var[, fixed_theta]) from R/resid-components.R. */
static void unpack_resid(SEXP spec, R_xlen_t n, resid_model *rm)
{
    if (!isNewList(spec)) error(_("corrupt residual structure"));
    rm->n = n;
    SEXP cor = list_elt(spec, "cor"), var = list_elt(spec, "var");
    rm->cor = NULL;
    rm->ngroups = 0;
    rm->mmax = 1;
    rm->npar = 0;
    if (!isNull(cor)) {
        resid_comp *c = (resid_comp *) R_alloc(1, sizeof(resid_comp));
        unpack_comp(cor, n, 1, c);
        SEXP so = list_elt(spec, "order"), sg = list_elt(spec, "gstart");
        if (!isInteger(so) || XLENGTH(so) != n || !isInteger(sg) || XLENGTH(sg) < 1)
            error(_("corrupt residual structure: groups"));
        int *order = (int *) R_alloc((size_t) (n > 0 ? n : 1), sizeof(int));
        char *seen = (char *) R_alloc((size_t) (n > 0 ? n : 1), 1);
        memset(seen, 0, (size_t) n);
        for (R_xlen_t t = 0; t < n; t++) {
            int r = INTEGER(so)[t];
            if (r < 1 || r > n || seen[r - 1]) error(_("corrupt residual structure: row order"));
            seen[r - 1] = 1;
            order[t] = r - 1;
        }
        const int *gs = INTEGER(sg);
        rm->ngroups = LENGTH(sg) - 1;
        if (gs[0] != 0 || gs[rm->ngroups] != n) error(_("corrupt residual structure: group pointers"));
        for (int g = 0; g < rm->ngroups; g++) {
            int m = gs[g + 1] - gs[g];
            if (m < 1) error(_("corrupt residual structure: group pointers"));
            if (m > rm->mmax) rm->mmax = m;
        }
        if (resid_cor_kinds[c->kind].dense && rm->mmax > LMM_MAX_DENSE)
            error(_("a group of a %s correlation has more than %d observations"),
                  resid_cor_kinds[c->kind].name, LMM_MAX_DENSE);
        c->mmax = rm->mmax;
        rm->cor = c;
        rm->order = order;
        rm->gstart = gs;
        check_integer_times(rm, c);
        rm->npar += c->npar;
    }
    if (!isNewList(var)) error(_("corrupt residual structure: variance components"));
    rm->nvar = LENGTH(var);
    resid_comp *v = (resid_comp *) R_alloc((size_t) (rm->nvar > 0 ? rm->nvar : 1), sizeof(resid_comp));
    for (int i = 0; i < rm->nvar; i++) {
        unpack_comp(VECTOR_ELT(var, i), n, 0, v + i);
        rm->npar += v[i].npar;
    }
    rm->var = v;
}

/* ---- the whitened model ------------------------------------------------ */

typedef struct {
    lmm_xprod xp;              /* the plain model's pattern; values in buf */
    lmm_value_layout lay;
    double *buf;
    lmm_factor *fa;
    lmm_accum_ws aws;
    resid_model rm;
    R_xlen_t n;
    int p, nterms, nc, reml, ntheta, nevals;
    const double *orig;        /* n x nc: X, y, then each term's Z, as given */
    double *data;              /* n x nc: their whitened copy */
    double **cols;             /* nc pointers into data */
    const double **Zw;         /* each term's whitened Z */
    const int **codes;
    int *start, *order;        /* rows by level of the first term */
    double *ls, *blk, *work;
    double sumlogw0;
    resid_pieces *pieces;      /* the structure's piece basis, or NULL */
    resid_cross cx;            /* terms crossed with the correlation grouping */
    lmm_memo *memo;            /* the optimizer's objective remembers its last values (or NULL) */
} resid_fit;

/* Values the objective remembers (minimize.h's lmm_memo): measured on a
 * 10,000-row gls with AR(1) and varIdent, a sixth of its evaluations
 * repeated points (the reported derivatives on the polish's last stencil,
 * the loose phase's start). */
#define RESID_MEMORY 32

static void resid_fit_setup(SEXP sxp, SEXP sX, SEXP sy, SEXP scodes, SEXP sZ, SEXP spec, resid_fit *f)
{
    lmm_unpack_xprod(sxp, &f->xp);
    R_xlen_t n = XLENGTH(sy);
    int p = f->xp.p, nterms = f->xp.nterms;
    if (!isReal(sX) || !isMatrix(sX) || !isReal(sy)) error(_("'X' and 'y' must be numeric"));
    if (nrows(sX) != n || ncols(sX) != p || n != f->xp.nobs) error(_("'X' and 'y' do not match the cross-products"));
    if (!isNewList(scodes) || !isNewList(sZ) || LENGTH(scodes) != nterms || LENGTH(sZ) != nterms)
        error(_("'codes' and 'Z' must be lists with one entry per random-effects term"));
    f->n = n;
    f->p = p;
    f->nterms = nterms;
    int nc = p + 1;
    for (int j = 0; j < nterms; j++) nc += f->xp.ncol[j];
    f->nc = nc;
    if ((double) n * nc > R_XLEN_T_MAX) error(_("the data are too large"));
    double *orig = (double *) R_alloc((size_t) n * nc, sizeof(double));
    f->data = (double *) R_alloc((size_t) n * nc, sizeof(double));
    f->cols = (double **) R_alloc((size_t) nc, sizeof(double *));
    f->Zw = (const double **) R_alloc((size_t) nterms, sizeof(double *));
    f->codes = (const int **) R_alloc((size_t) nterms, sizeof(int *));
    const double **Zraw = (const double **) R_alloc((size_t) (nterms > 0 ? nterms : 1), sizeof(double *));
    memcpy(orig, REAL(sX), (size_t) n * p * sizeof(double));
    memcpy(orig + (size_t) n * p, REAL(sy), (size_t) n * sizeof(double));
    int at = p + 1;
    for (int j = 0; j < nterms; j++) {
        SEXP cj = VECTOR_ELT(scodes, j), zj = VECTOR_ELT(sZ, j);
        int k = f->xp.ncol[j];
        if (!isInteger(cj) || XLENGTH(cj) != n) error(_("grouping codes of term %d have the wrong type or length"), j + 1);
        if (!isReal(zj) || !isMatrix(zj) || nrows(zj) != n || ncols(zj) != k)
            error(_("model matrix of term %d has the wrong type or size"), j + 1);
        for (R_xlen_t t = 0; t < n; t++)
            if (INTEGER(cj)[t] < 1 || INTEGER(cj)[t] > f->xp.nlev[j])
                error(_("grouping codes of term %d are out of range"), j + 1);
        f->codes[j] = INTEGER(cj);
        Zraw[j] = REAL(zj);
        memcpy(orig + (size_t) n * at, REAL(zj), (size_t) n * k * sizeof(double));
        f->Zw[j] = f->data + (size_t) n * at;
        at += k;
    }
    for (int j = 0; j < nc; j++) f->cols[j] = f->data + (size_t) n * j;
    f->orig = orig;
    unpack_resid(spec, n, &f->rm);
    /* a crossed term's columns are assembled by group (resid_crossed.c),
     * not accumulated by row */
    if (resid_cross_setup(&f->rm, &f->xp, f->codes, Zraw, &f->cx))
        for (int j = 0, a = p + 1; j < nterms; a += f->xp.ncol[j], j++)
            if (f->cx.crossed[j]) memset(orig + (size_t) n * a, 0, (size_t) n * f->xp.ncol[j] * sizeof(double));
    f->start = (int *) R_alloc((size_t) f->xp.nlev[0] + 1, sizeof(int));
    f->order = (int *) R_alloc((size_t) (n > 0 ? n : 1), sizeof(int));
    lmm_order_by_level(n, f->codes[0], f->xp.nlev[0], f->start, f->order);
    lmm_accum_ws_alloc(&f->xp, p, &f->aws);
    f->ls = (double *) R_alloc((size_t) (n > 0 ? n : 1), sizeof(double));
    f->blk = (double *) R_alloc((size_t) f->rm.mmax * nc, sizeof(double));
    f->work = (double *) R_alloc(resid_work_size(&f->rm), sizeof(double));
    f->sumlogw0 = f->xp.sumlogw;

    f->ntheta = lmm_ntheta(&f->xp);
    f->nevals = 0;
    f->memo = NULL;
    /* the factor's symbolic part from the plain model, before the values
     * move into the buffer: whitening keeps the pattern */
    f->fa = (lmm_factor *) R_alloc(1, sizeof(lmm_factor));
    lmm_factor_alloc(&f->xp, f->fa);
    lmm_value_layout_of(&f->xp, &f->lay);
    f->buf = (double *) R_alloc((size_t) (f->lay.off[6] > 0 ? f->lay.off[6] : 1), sizeof(double));
    /* spec$pieces = FALSE forces the general path (the tests compare them) */
    SEXP sp = list_elt(spec, "pieces");
    f->pieces = NULL;
    if (!f->cx.ncrossed && (isNull(sp) || lmm_arg_flag(sp, "pieces"))) {
        const double **Zo = (const double **) R_alloc((size_t) (nterms > 0 ? nterms : 1), sizeof(double *));
        for (int j = 0, a = p + 1; j < nterms; a += f->xp.ncol[j], j++) Zo[j] = orig + (size_t) n * a;
        resid_piece_data d = {n, &f->xp, orig, orig + (size_t) n * p, f->codes, Zo};
        resid_pieces *pc = (resid_pieces *) R_alloc(1, sizeof(resid_pieces));
        if (resid_pieces_build(&f->rm, &d, &f->lay, pc)) f->pieces = pc;
    }
    lmm_point_values(&f->xp, &f->lay, f->buf);
}

/* The whitened cross-products at the structure's parameters into the
 * buffer; returns log|S C S| (R_PosInf: not positive definite there). */
static double resid_refresh(resid_fit *f, const double *rpar)
{
    if (f->pieces) {
        double ld = resid_pieces_combine(f->pieces, rpar, f->buf);
        if (!R_FINITE(ld)) return R_PosInf;
        f->xp.sumlogw = f->sumlogw0 - ld;
        return ld;
    }
    double ld = resid_transform(&f->rm, rpar, f->orig, f->cols, f->nc, f->ls, f->blk, f->work, 0);
    if (!R_FINITE(ld)) return R_PosInf;
    const lmm_value_layout *lay = &f->lay;
    memset(f->buf, 0, (size_t) lay->off[6] * sizeof(double));
    lmm_accumulate(f->n, f->p, f->data, f->data + (size_t) f->n * f->p, NULL, NULL, NULL,
                   f->codes, f->Zw, &f->xp, f->start, f->order,
                   f->buf + lay->off[0], f->buf + lay->off[1], f->buf + lay->off[2],
                   f->buf + lay->off[3], f->buf + lay->off[4], f->buf + lay->off[5], &f->aws);
    if (f->cx.ncrossed &&
        !R_FINITE(resid_cross_assemble(&f->cx, &f->rm, rpar, &f->xp, f->aws.roff, f->codes, f->n,
                                       (const double *const *) f->cols, f->Zw, f->ls, f->work,
                                       f->buf + lay->off[1], f->buf + lay->off[2], f->buf + lay->off[4])))
        return R_PosInf;
    f->xp.sumlogw = f->sumlogw0 - ld;
    return ld;
}

static double resid_objective(const double *x, void *ex)
{
    resid_fit *f = (resid_fit *) ex;
    double dev;
    if (f->memo && lmm_memo_find(f->memo, x, &dev)) return dev;
    f->nevals++;
    dev = R_FINITE(resid_refresh(f, x + f->ntheta)) ? lmm_deviance(&f->xp, x, f->reml, f->fa) : R_PosInf;
    if (f->memo) lmm_memo_store(f->memo, x, dev);
    return dev;
}

static const double *structure_par(SEXP spar, const resid_fit *f, int offset)
{
    int np = f->rm.npar;
    if (!isReal(spar) || LENGTH(spar) != offset + np)
        error(_("parameters must be a numeric vector of length %d"), offset + np);
    for (int i = 0; i < offset + np; i++)
        if (!R_FINITE(REAL(spar)[i])) error(_("parameters must be finite"));
    return REAL(spar) + offset;
}

/* ---- entry points ------------------------------------------------------ */

/* The whitened model's cross-products at the structure's parameters par (a
 * list in lmm_crossprod's layout, sumlogw including -log|S C S|) and
 * log|S C S|. */
SEXP lmm_resid_xprod(SEXP sxp, SEXP sX, SEXP sy, SEXP scodes, SEXP sZ, SEXP spec, SEXP spar)
{
    int nprot = 0;
    resid_fit f;
    resid_fit_setup(sxp, sX, sy, scodes, sZ, spec, &f);
    double ld = resid_refresh(&f, structure_par(spar, &f, 0));
    if (!R_FINITE(ld)) error(_("the residual covariance is not positive definite at these parameters"));
    SEXP out = PROTECT(lmm_xprod_with_values(sxp, &f.lay, f.buf)); nprot++;
    SET_VECTOR_ELT(out, 4, ScalarReal(f.xp.sumlogw));
    const char *names[] = {"xprod", "logdet", ""};
    SEXP ans = PROTECT(mkNamed(VECSXP, names)); nprot++;
    SET_VECTOR_ELT(ans, 0, out);
    SET_VECTOR_ELT(ans, 1, ScalarReal(ld));
    UNPROTECT(nprot);
    return ans;
}

/* Minimise the profiled criterion over (theta, the structure's parameters). */
SEXP lmm_resid_optimize(SEXP sxp, SEXP sX, SEXP sy, SEXP scodes, SEXP sZ, SEXP spec, SEXP spar,
                        SEXP sreml, SEXP control)
{
    int nprot = 0;
    resid_fit f;
    resid_fit_setup(sxp, sX, sy, scodes, sZ, spec, &f);
    f.reml = lmm_arg_flag(sreml, "REML");
    lmm_optctl ctl;
    lmm_unpack_control(control, &ctl);
    if (ctl.sigma != 0) error(_("a residual structure with a known residual sd is not supported"));
    int nt = f.ntheta, npar = nt + f.rm.npar;
    structure_par(spar, &f, nt);
    SEXP par = PROTECT(duplicate(spar)); nprot++;
    double *x = REAL(par);
    double *lower = (double *) R_alloc((size_t) (f.rm.npar > 0 ? f.rm.npar : 1), sizeof(double));
    double *upper = (double *) R_alloc((size_t) (f.rm.npar > 0 ? f.rm.npar : 1), sizeof(double));
    resid_bounds(&f.rm, lower, upper);
    for (int i = 0; i < f.rm.npar; i++) x[nt + i] = fmax(lower[i], fmin(upper[i], x[nt + i]));
    /* the whitened cross-products at the start: the driver conditions theta on them */
    if (!R_FINITE(resid_refresh(&f, x + nt)))
        error(_("the residual covariance is not positive definite at the starting values"));
    /* a model without random effects (gls) comes with one placeholder
     * term whose theta stays 0 */
    SEXP sfixed = list_elt(spec, "fixed_theta");
    int fixed_theta = !isNull(sfixed) && lmm_arg_flag(sfixed, "fixed_theta");
    if (fixed_theta && f.rm.npar == 0) error(_("a model without random effects needs a residual structure"));
    lmm_problem pb = {&f.xp, f.rm.npar, lower, upper, resid_objective, &f, NULL, fixed_theta, 0, 0, 0, 0, 0};
    f.memo = (lmm_memo *) R_alloc(1, sizeof(lmm_memo));
    lmm_memo_alloc(f.memo, npar, RESID_MEMORY);
    SEXP grad = PROTECT(allocVector(REALSXP, npar)); nprot++;
    SEXP scaled = PROTECT(allocVector(REALSXP, npar)); nprot++;
    lmm_optres res;
    lmm_drive(&pb, x, &ctl, &res, REAL(grad), REAL(scaled));

    const char *names[] = {"par", "deviance", "feval", "convergence", "message", "gradient",
                           "scaled_gradient", "settled", "lower", "upper", ""};
    SEXP ans = PROTECT(mkNamed(VECSXP, names)); nprot++;
    lmm_fill_drive_result(ans, par, &res, f.nevals, grad, scaled);
    SEXP slo = PROTECT(allocVector(REALSXP, f.rm.npar)); nprot++;
    SEXP sup = PROTECT(allocVector(REALSXP, f.rm.npar)); nprot++;
    if (f.rm.npar) {
        memcpy(REAL(slo), lower, (size_t) f.rm.npar * sizeof(double));
        memcpy(REAL(sup), upper, (size_t) f.rm.npar * sizeof(double));
    }
    SET_VECTOR_ELT(ans, 8, slo);
    SET_VECTOR_ELT(ans, 9, sup);
    UNPROTECT(nprot);
    return ans;
}

/* The columns of M (n x k, data order) whitened by (S C S)^{-1/2}, or with
 * color = TRUE multiplied by (S C S)^{1/2}; attribute "logdet". */
SEXP lmm_resid_transform(SEXP spec, SEXP spar, SEXP sM, SEXP scolor)
{
    int nprot = 0;
    if (!isReal(sM) || !isMatrix(sM)) error(_("'M' must be a numeric matrix"));
    R_xlen_t n = nrows(sM);
    int k = ncols(sM), color = lmm_arg_flag(scolor, "color");
    resid_model rm;
    unpack_resid(spec, n, &rm);
    if (!isReal(spar) || LENGTH(spar) != rm.npar) error(_("parameters must be a numeric vector of length %d"), rm.npar);
    SEXP out = PROTECT(duplicate(sM)); nprot++;
    double **cols = (double **) R_alloc((size_t) (k > 0 ? k : 1), sizeof(double *));
    for (int j = 0; j < k; j++) cols[j] = REAL(out) + (size_t) n * j;
    double *ls = (double *) R_alloc((size_t) (n > 0 ? n : 1), sizeof(double));
    double *blk = (double *) R_alloc((size_t) rm.mmax * (k > 0 ? k : 1), sizeof(double));
    double *work = (double *) R_alloc(resid_work_size(&rm), sizeof(double));
    double ld = resid_transform(&rm, REAL(spar), NULL, cols, k, ls, blk, work, color);
    if (!R_FINITE(ld)) error(_("the residual covariance is not positive definite at these parameters"));
    setAttrib(out, install("logdet"), ScalarReal(ld));
    UNPROTECT(nprot);
    return out;
}
