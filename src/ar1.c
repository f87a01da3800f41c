/* Residual AR(1) correlation within groups (DESIGN.md section 5).
 *
 * Within a group, observations sorted by an integer time t_1 < ... < t_T,
 * the errors follow e_1 ~ N(0, s2), e_k | e_{k-1} ~ N(phi^d e_{k-1}, s2 (1 - phi^2d))
 * with d = t_k - t_{k-1} (a gap of d occasions).  The whitened rows
 *     w_1 = x_1,   w_k = (x_k - phi^d x_{k-1}) / sqrt(1 - phi^2d)
 * (x any row of [Z X y]) turn the model into an ordinary LMM, and the
 * -2 log-likelihood (ML or REML) of the original model is that of the whitened
 * one plus log|R| = sum over consecutive pairs of log(1 - phi^2d).
 *
 * When the AR grouping is nested in every random-effects grouping factor, the
 * rows k and k-1 have the same levels in every term, so the whitened
 * cross-products share the pattern of the plain ones:
 *     A(phi) = F + sum_d (M0_d - phi^d M1_d + phi^2d M2_d) / (1 - phi^2d)
 * F: cross-products of the first rows; for the pairs with gap d, M0_d of the
 * later rows, M2_d of their predecessors, M1_d = sum (a b' + b a').  These are
 * formed once; each evaluation of the objective only combines them. */
#include <limits.h>
#include <math.h>
#include <string.h>
#include "lapack.h"
#include <Rinternals.h>
#include "model.h"
#include "lmmfit.h"

/* The data rows and the pattern, for accumulating selected rows. */
typedef struct {
    R_xlen_t n;
    int p;
    const double *X, *y;
    const int *const *codes;     /* R's 1-based factor codes */
    const double *const *Z;
    const lmm_xprod *pat;        /* the pattern the rows are summed into */
    int *start, *order;          /* scratch: nlev[0] + 1, n */
} ar1_rows;

/* Add the cross-products of the rows sel[0..ns) (in the arrays of r) to out. */
static void accumulate_rows(const ar1_rows *r, const double *X, const double *y,
                            const double *const *Z, const int *sel, R_xlen_t ns,
                            const lmm_value_layout *lay, double *out)
{
    int nl = r->pat->nlev[0];
    const int *c0 = r->codes[0];
    memset(r->start, 0, (size_t) (nl + 1) * sizeof(int));
    for (R_xlen_t s = 0; s < ns; s++) r->start[c0[sel[s]]]++;     /* level c0 - 1, plus 1 */
    for (int g = 0; g < nl; g++) r->start[g + 1] += r->start[g];
    int *fill = (int *) R_alloc((size_t) nl, sizeof(int));
    memcpy(fill, r->start, (size_t) nl * sizeof(int));
    for (R_xlen_t s = 0; s < ns; s++) r->order[fill[c0[sel[s]] - 1]++] = sel[s];
    lmm_accumulate(r->n, r->p, X, y, NULL, NULL, NULL, r->codes, Z, r->pat, r->start, r->order,
                   out + lay->off[0], out + lay->off[1], out + lay->off[2],
                   out + lay->off[3], out + lay->off[4], out + lay->off[5], NULL);
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *) a, y = *(const int *) b;
    return (x > y) - (x < y);
}

/* The pieces F, (M0_d, M1_d, M2_d) for each distinct gap d.
 * prev[t]: 0 for the first row of its group, else the 1-based predecessor;
 * gap[t]: the time step from the predecessor (ignored for first rows). */
SEXP lmm_ar1_pieces(SEXP sX, SEXP sy, SEXP scodes, SEXP sZ, SEXP sxp, SEXP sprev, SEXP sgap)
{
    int nprot = 0;
    lmm_xprod xp;
    lmm_unpack_xprod(sxp, &xp);
    if (!isReal(sX) || !isMatrix(sX) || !isReal(sy)) error(_("'X' and 'y' must be numeric"));
    R_xlen_t n = XLENGTH(sy);
    int p = xp.p, nterms = xp.nterms;
    if (nrows(sX) != n || ncols(sX) != p) error(_("'X' does not match the cross-products"));
    if (n != xp.nobs) error(_("'y' does not match the cross-products"));
    if (!isNewList(scodes) || !isNewList(sZ) || LENGTH(scodes) != nterms || LENGTH(sZ) != nterms)
        error(_("'codes' and 'Z' must be lists with one entry per random-effects term"));
    if (!isInteger(sprev) || !isInteger(sgap) || XLENGTH(sprev) != n || XLENGTH(sgap) != n)
        error(_("'prev' and 'gap' must be integer vectors, one per observation"));
    const int *prev = INTEGER(sprev), *gap = INTEGER(sgap);

    const int **codes = (const int **) R_alloc((size_t) nterms, sizeof(int *));
    const double **Z = (const double **) R_alloc((size_t) nterms, sizeof(double *));
    double **Zs = (double **) R_alloc((size_t) nterms, sizeof(double *));
    for (int j = 0; j < nterms; j++) {
        SEXP cj = VECTOR_ELT(scodes, j), zj = VECTOR_ELT(sZ, j);
        if (!isInteger(cj) || XLENGTH(cj) != n) error(_("grouping codes of term %d have the wrong type or length"), j + 1);
        if (!isReal(zj) || !isMatrix(zj) || nrows(zj) != n || ncols(zj) != xp.ncol[j])
            error(_("model matrix of term %d has the wrong type or size"), j + 1);
        const int *cc = INTEGER(cj);
        for (R_xlen_t t = 0; t < n; t++)
            if (cc[t] < 1 || cc[t] > xp.nlev[j]) error(_("grouping codes of term %d are out of range"), j + 1);
        codes[j] = cc;
        Z[j] = REAL(zj);
        Zs[j] = (double *) R_alloc((size_t) n * xp.ncol[j], sizeof(double));
    }
    /* check the predecessors, and that each pair shares its levels in every term
     * (otherwise its cross-products would fall outside the plain pattern) */
    R_xlen_t nfirst = 0;
    for (R_xlen_t t = 0; t < n; t++) {
        if (prev[t] == 0) { nfirst++; continue; }
        if (prev[t] < 1 || prev[t] > n || prev[t] - 1 == t) error(_("invalid predecessor index"));
        if (gap[t] < 1) error(_("time gaps must be positive integers"));
        for (int j = 0; j < nterms; j++)
            if (codes[j][t] != codes[j][prev[t] - 1])
                error(_("the AR(1) grouping must be nested in every random-effects grouping factor"));
    }
    /* distinct gaps */
    R_xlen_t npair = n - nfirst;
    int *gs = (int *) R_alloc((size_t) (npair > 0 ? npair : 1), sizeof(int));
    R_xlen_t i = 0;
    for (R_xlen_t t = 0; t < n; t++) if (prev[t]) gs[i++] = gap[t];
    qsort(gs, (size_t) npair, sizeof(int), cmp_int);
    int G = 0;
    for (R_xlen_t s = 0; s < npair; s++) if (s == 0 || gs[s] != gs[s - 1]) gs[G++] = gs[s];

    lmm_value_layout lay;
    lmm_value_layout_of(&xp, &lay);
    R_xlen_t L = lay.off[6];
    if (L > INT_MAX || (double) L * (1 + 3 * (double) G) > R_XLEN_T_MAX)
        error(_("the AR(1) cross-products are too large"));

    ar1_rows rows = {n, p, REAL(sX), REAL(sy), codes, Z, &xp,
                     (int *) R_alloc((size_t) xp.nlev[0] + 1, sizeof(int)),
                     (int *) R_alloc((size_t) (n > 0 ? n : 1), sizeof(int))};

    /* sums of each row with its predecessor, for M1 = S - M0 - M2 */
    double *Xs = (double *) R_alloc((size_t) (n * p > 0 ? n * p : 1), sizeof(double));
    double *ys = (double *) R_alloc((size_t) n, sizeof(double));
    const double *X = REAL(sX), *y = REAL(sy);
    for (R_xlen_t t = 0; t < n; t++) {
        R_xlen_t u = prev[t] ? prev[t] - 1 : t;
        double f = prev[t] ? 1.0 : 0.0;
        for (int c = 0; c < p; c++) Xs[t + c * n] = X[t + c * n] + f * X[u + c * n];
        ys[t] = y[t] + f * y[u];
        for (int j = 0; j < nterms; j++)
            for (int c = 0; c < xp.ncol[j]; c++)
                Zs[j][t + c * n] = Z[j][t + c * n] + f * Z[j][u + c * n];
    }

    SEXP spieces = PROTECT(allocMatrix(REALSXP, (int) L, 1 + 3 * G)); nprot++;
    double *P = REAL(spieces);
    memset(P, 0, (size_t) L * (1 + 3 * G) * sizeof(double));
    SEXP sgaps = PROTECT(allocVector(INTSXP, G)); nprot++;
    SEXP snp = PROTECT(allocVector(REALSXP, G)); nprot++;
    int *sel = (int *) R_alloc((size_t) (n > 0 ? n : 1), sizeof(int));
    int *selp = (int *) R_alloc((size_t) (n > 0 ? n : 1), sizeof(int));
    double *S = (double *) R_alloc((size_t) (L > 0 ? L : 1), sizeof(double));

    R_xlen_t ns = 0;
    for (R_xlen_t t = 0; t < n; t++) if (!prev[t]) sel[ns++] = (int) t;
    accumulate_rows(&rows, X, y, Z, sel, ns, &lay, P);
    for (int d = 0; d < G; d++) {
        R_CheckUserInterrupt();
        ns = 0;
        for (R_xlen_t t = 0; t < n; t++)
            if (prev[t] && gap[t] == gs[d]) { sel[ns] = (int) t; selp[ns] = prev[t] - 1; ns++; }
        INTEGER(sgaps)[d] = gs[d];
        REAL(snp)[d] = (double) ns;
        double *M0 = P + (size_t) L * (1 + 3 * d), *M1 = M0 + L, *M2 = M1 + L;
        accumulate_rows(&rows, X, y, Z, sel, ns, &lay, M0);
        accumulate_rows(&rows, X, y, Z, selp, ns, &lay, M2);
        memset(S, 0, (size_t) L * sizeof(double));
        accumulate_rows(&rows, Xs, ys, (const double *const *) Zs, sel, ns, &lay, S);
        for (R_xlen_t l = 0; l < L; l++) M1[l] = S[l] - M0[l] - M2[l];
    }
    const char *names[] = {"pieces", "gaps", "npairs", ""};
    SEXP ans = PROTECT(mkNamed(VECSXP, names)); nprot++;
    SET_VECTOR_ELT(ans, 0, spieces);
    SET_VECTOR_ELT(ans, 1, sgaps);
    SET_VECTOR_ELT(ans, 2, snp);
    UNPROTECT(nprot);
    return ans;
}

/* The AR(1) model: the pieces and a buffer for A(phi). */
typedef struct {
    lmm_xprod xp;        /* numeric members point into buf */
    lmm_value_layout lay;
    const double *pieces;
    const int *gaps;
    const double *npairs;
    int G, ntheta, reml;
    int nevals;          /* evaluations of the objective */
    double *buf;
    lmm_factor *fa;
} ar1_model;

/* A(phi) into m->buf; returns log|R| (the log determinant of the correlation). */
static double ar1_combine(ar1_model *m, double phi)
{
    R_xlen_t L = m->lay.off[6];
    double *A = m->buf, ldR = 0;
    memcpy(A, m->pieces, (size_t) L * sizeof(double));
    for (int d = 0; d < m->G; d++) {
        double pd = pow(phi, (double) m->gaps[d]), den = 1.0 - pd * pd;
        double c0 = 1.0 / den, c1 = -pd / den, c2 = pd * pd / den;
        const double *M0 = m->pieces + (size_t) L * (1 + 3 * d), *M1 = M0 + L, *M2 = M1 + L;
        if (pd == 0.0)
            for (R_xlen_t l = 0; l < L; l++) A[l] += M0[l];
        else
            for (R_xlen_t l = 0; l < L; l++) A[l] += c0 * M0[l] + c1 * M1[l] + c2 * M2[l];
        ldR += m->npairs[d] * log1p(-pd * pd);
    }
    return ldR;
}

/* The objective: x = (theta, phi). */
static double ar1_objective(const double *x, void *ex)
{
    ar1_model *m = (ar1_model *) ex;
    double phi = x[m->ntheta];
    m->nevals++;
    if (!(fabs(phi) < 1.0)) return R_PosInf;
    double ldR = ar1_combine(m, phi);
    return lmm_deviance(&m->xp, x, m->reml, m->fa) + ldR;
}

static void ar1_setup(SEXP sxp, SEXP spieces, SEXP sgaps, SEXP snpairs, ar1_model *m)
{
    lmm_unpack_xprod(sxp, &m->xp);
    lmm_value_layout_of(&m->xp, &m->lay);
    if (!isInteger(sgaps) || !isReal(snpairs) || LENGTH(sgaps) != LENGTH(snpairs))
        error(_("corrupt AR(1) pieces: 'gaps'/'npairs'"));
    m->G = LENGTH(sgaps);
    if (!isReal(spieces) || XLENGTH(spieces) != m->lay.off[6] * (1 + 3 * (R_xlen_t) m->G))
        error(_("corrupt AR(1) pieces: sizes do not agree with the cross-products"));
    m->pieces = REAL(spieces);
    m->gaps = INTEGER(sgaps);
    m->npairs = REAL(snpairs);
    for (int d = 0; d < m->G; d++) {
        if (m->gaps[d] < 1) error(_("corrupt AR(1) pieces: gaps"));
        if (!(m->npairs[d] >= 0 && m->npairs[d] <= m->xp.nobs)) error(_("corrupt AR(1) pieces: 'npairs'"));
    }
    m->ntheta = lmm_ntheta(&m->xp);
    /* the factor's symbolic part (a sparse tail's plan) from the values
     * given, before the numeric members point into the (unset) buffer:
     * whitening keeps the pattern */
    m->fa = (lmm_factor *) R_alloc(1, sizeof(lmm_factor));
    lmm_factor_alloc(&m->xp, m->fa);
    m->buf = (double *) R_alloc((size_t) (m->lay.off[6] > 0 ? m->lay.off[6] : 1), sizeof(double));
    lmm_point_values(&m->xp, &m->lay, m->buf);
}

static double check_phi(SEXP sphi)
{
    double phi = lmm_arg_real(sphi, "phi");
    if (!(fabs(phi) < 1.0)) error(_("'phi' must lie strictly between -1 and 1"));
    return phi;
}

/* The cross-products of the whitened model at phi (a list in lmm_crossprod's
 * layout) and log|R|. */
SEXP lmm_ar1_xprod(SEXP sxp, SEXP spieces, SEXP sgaps, SEXP snpairs, SEXP sphi)
{
    int nprot = 0;
    ar1_model m;
    ar1_setup(sxp, spieces, sgaps, snpairs, &m);
    double ldR = ar1_combine(&m, check_phi(sphi));
    SEXP out = PROTECT(lmm_xprod_with_values(sxp, &m.lay, m.buf)); nprot++;
    const char *names[] = {"xprod", "logdetR", ""};
    SEXP ans = PROTECT(mkNamed(VECSXP, names)); nprot++;
    SET_VECTOR_ELT(ans, 0, out);
    SET_VECTOR_ELT(ans, 1, ScalarReal(ldR));
    UNPROTECT(nprot);
    return ans;
}

/* Minimise the profiled deviance over (theta, phi), phi in [-phimax, phimax]. */
SEXP lmm_ar1_optimize(SEXP sxp, SEXP spieces, SEXP sgaps, SEXP snpairs, SEXP spar,
                      SEXP sreml, SEXP control, SEXP sphimax)
{
    int nprot = 0;
    ar1_model m;
    ar1_setup(sxp, spieces, sgaps, snpairs, &m);
    m.reml = lmm_arg_flag(sreml, "REML");
    int nt = m.ntheta, npar = nt + 1;
    if (!isReal(spar) || LENGTH(spar) != npar)
        error(_("starting values must be a numeric vector of length %d (theta, phi)"), npar);
    double phimax = lmm_arg_real(sphimax, "phimax");
    if (!(phimax > 0 && phimax < 1)) error(_("'phimax' must lie in (0, 1)"));
    lmm_optctl ctl;
    lmm_unpack_control(control, &ctl);
    SEXP par = PROTECT(duplicate(spar)); nprot++;
    double *lower = (double *) R_alloc((size_t) npar, sizeof(double));
    double *upper = (double *) R_alloc((size_t) npar, sizeof(double));
    lmm_theta_lower(&m.xp, lower);
    for (int i = 0; i < nt; i++) upper[i] = R_PosInf;
    lower[nt] = -phimax;
    upper[nt] = phimax;
    for (int i = 0; i < npar; i++)
        if (!R_FINITE(REAL(par)[i])) error(_("starting values must be finite"));
    lmm_optres res;
    double *x = REAL(par);
    m.nevals = 0;
    /* the whitened cross-products at the starting phi: the driver conditions
     * theta on them */
    ar1_combine(&m, fmax(-phimax, fmin(phimax, x[nt])));
    lmm_problem pb = {&m.xp, 1, lower + nt, upper + nt, ar1_objective, &m, NULL, 0, 0, 0, 0, 0, 0};
    SEXP grad = PROTECT(allocVector(REALSXP, npar)); nprot++;
    SEXP scaled = PROTECT(allocVector(REALSXP, npar)); nprot++;
    lmm_drive(&pb, x, &ctl, &res, REAL(grad), REAL(scaled));
    int feval = m.nevals;

    const char *names[] = {"par", "deviance", "feval", "convergence", "message", "gradient",
                           "scaled_gradient", "settled", ""};
    SEXP ans = PROTECT(mkNamed(VECSXP, names)); nprot++;
    lmm_fill_drive_result(ans, par, &res, feval, grad, scaled);
    UNPROTECT(nprot);
    return ans;
}
