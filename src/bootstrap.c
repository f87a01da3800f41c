/* Parametric bootstrap in C (DESIGN.md section 4).
 *
 * Per replicate: draw y* = X beta-hat + Z b* + e*, refresh only the response
 * parts of the cross-products (Z'Wy*, X'Wy*, y*'Wy*: the last row of AX1/AX2
 * and the last row and column of AXX), refit theta warm-started at theta-hat,
 * then beta and sigma by back-substitution.
 *
 * The random draws of one replicate come in a fixed order, shared by the
 * bootstrap loop and by simulate():
 *   1. u* (q standard normals, in the order of fit$u: term by term, level-major,
 *      column-minor), skipped when use.u = TRUE;
 *   2. e* (n standard normals, in row order).
 * Then b* = sigma Lambda u* (or b-hat = Lambda u-hat when use.u = TRUE) and
 * y*_t = x_t' beta + z_t' b* + sigma e*_t / sqrt(w_t).  Offsets are handled on
 * the R side (the core works with y - offset). */
#include <limits.h>
#include <math.h>
#include <string.h>
#include "lapack.h"
#include <Rinternals.h>
#include <Rmath.h>
#include "model.h"
#include "lmmfit.h"

/* Everything a replicate needs, unpacked once. */
typedef struct {
    lmm_xprod xp;            /* the original cross-products */
    R_xlen_t n;
    int p, nterms, q, nt;
    const double *X;         /* n x p */
    const double *w;         /* n prior weights or NULL */
    const int **codes;       /* per term, 0-based level codes */
    const double **Z;        /* per term, n x k model matrix */
    int *uoff;               /* per term, offset in u (q1 + rest offset) */
    const double *beta, *theta, *uhat;
    double sigma;
    double *lambda;          /* per term k x k lower triangle, at lamoff */
    int *lamoff;
} boot_ctx;

/* Working copies of the response parts of the cross-products. */
typedef struct {
    lmm_xprod xw;            /* the original with AX1, AX2, AXX replaced */
    double *AX1, *AX2, *AXX;
    double *wy;              /* n scratch */
} boot_work;

static SEXP list_elt(SEXP list, const char *name)
{
    SEXP names = getAttrib(list, R_NamesSymbol);
    if (isNull(names)) error(_("the bootstrap specification has no names"));
    for (int i = 0; i < LENGTH(list); i++)
        if (!strcmp(CHAR(STRING_ELT(names, i)), name)) return VECTOR_ELT(list, i);
    error(_("the bootstrap specification lacks '%s'"), name);
    return R_NilValue; /* not reached */
}

static const double *real_of_length(SEXP s, R_xlen_t len, const char *what)
{
    if (!isReal(s) || XLENGTH(s) != len)
        error(_("'%s' must be a numeric vector of length %.0f"), what, (double) len);
    return REAL(s);
}

/* Unpack the list made by boot_spec() on the R side. */
static void unpack_spec(SEXP spec, boot_ctx *bc)
{
    if (!isNewList(spec)) error(_("the bootstrap specification must be a list"));
    lmm_unpack_xprod(list_elt(spec, "xprod"), &bc->xp);
    const lmm_xprod *xp = &bc->xp;
    SEXP X = list_elt(spec, "X");
    if (!isReal(X) || !isMatrix(X)) error(_("'X' must be a numeric matrix"));
    bc->n = nrows(X);
    bc->p = ncols(X);
    if (bc->n != xp->nobs || bc->p != xp->p)
        error(_("'X' does not match the cross-products (%d x %d expected)"), xp->nobs, xp->p);
    bc->X = REAL(X);
    SEXP w = list_elt(spec, "weights");
    bc->w = isNull(w) ? NULL : real_of_length(w, bc->n, "weights");
    bc->nterms = xp->nterms;
    bc->q = xp->q1 + xp->q2;
    bc->nt = lmm_ntheta(xp);
    SEXP codes = list_elt(spec, "codes"), Z = list_elt(spec, "Z");
    if (!isNewList(codes) || !isNewList(Z) || LENGTH(codes) != bc->nterms || LENGTH(Z) != bc->nterms)
        error(_("'codes' and 'Z' must be lists with one element per random-effects term"));
    bc->codes = (const int **) R_alloc((size_t) bc->nterms, sizeof(int *));
    bc->Z = (const double **) R_alloc((size_t) bc->nterms, sizeof(double *));
    bc->uoff = (int *) R_alloc((size_t) bc->nterms, sizeof(int));
    for (int j = 0, off = 0; j < bc->nterms; j++) {
        SEXP cj = VECTOR_ELT(codes, j), zj = VECTOR_ELT(Z, j);
        if (!isInteger(cj) || XLENGTH(cj) != bc->n)
            error(_("grouping codes of term %d have the wrong type or length"), j + 1);
        if (!isReal(zj) || !isMatrix(zj) || nrows(zj) != bc->n || ncols(zj) != xp->ncol[j])
            error(_("model matrix of term %d has the wrong type or size"), j + 1);
        const int *cc = INTEGER(cj);
        for (R_xlen_t t = 0; t < bc->n; t++)
            if (cc[t] < 0 || cc[t] >= xp->nlev[j])
                error(_("grouping codes of term %d are out of range"), j + 1);
        bc->codes[j] = cc;
        bc->Z[j] = REAL(zj);
        bc->uoff[j] = off;
        off += xp->nlev[j] * xp->ncol[j];
    }
    bc->beta = real_of_length(list_elt(spec, "beta"), bc->p, "beta");
    bc->theta = real_of_length(list_elt(spec, "theta"), bc->nt, "theta");
    bc->uhat = real_of_length(list_elt(spec, "u"), bc->q, "u");
    bc->sigma = asReal(list_elt(spec, "sigma"));
    if (!R_FINITE(bc->sigma) || bc->sigma < 0) error(_("'sigma' must be finite and non-negative"));
    for (int i = 0; i < bc->nt; i++)
        if (!R_FINITE(bc->theta[i])) error(_("'theta' must be finite"));
    bc->lamoff = (int *) R_alloc((size_t) bc->nterms + 1, sizeof(int));
    bc->lamoff[0] = 0;
    for (int j = 0; j < bc->nterms; j++)
        bc->lamoff[j + 1] = bc->lamoff[j] + xp->ncol[j] * xp->ncol[j];
    bc->lambda = (double *) R_alloc((size_t) bc->lamoff[bc->nterms], sizeof(double));
    for (int j = 0, i = 0; j < bc->nterms; j++) {
        int k = xp->ncol[j];
        double *lam = bc->lambda + bc->lamoff[j];
        for (int c = 0; c < k; c++)
            for (int r = 0; r < k; r++) lam[r + c * k] = (r >= c) ? bc->theta[i++] : 0.0;
    }
}

static void work_alloc(const boot_ctx *bc, boot_work *bw)
{
    const lmm_xprod *xp = &bc->xp;
    size_t px = (size_t) xp->px;
    bw->xw = *xp;
    bw->AX1 = (double *) R_alloc(px * (size_t) xp->q1, sizeof(double));
    bw->AX2 = (double *) R_alloc(px * (size_t) (xp->q2 > 0 ? xp->q2 : 1), sizeof(double));
    bw->AXX = (double *) R_alloc(px * px, sizeof(double));
    memcpy(bw->AX1, xp->AX1, px * (size_t) xp->q1 * sizeof(double));
    if (xp->q2 > 0) memcpy(bw->AX2, xp->AX2, px * (size_t) xp->q2 * sizeof(double));
    memcpy(bw->AXX, xp->AXX, px * px * sizeof(double));
    bw->xw.AX1 = bw->AX1;
    bw->xw.AX2 = bw->AX2;
    bw->xw.AXX = bw->AXX;
    bw->wy = (double *) R_alloc((size_t) bc->n, sizeof(double));
}

/* Replace the response parts of the cross-products by those of y (length n):
 * the last row of AX1 and AX2, the last row and column of AXX. */
static void update_response(const boot_ctx *bc, boot_work *bw, const double *y)
{
    const lmm_xprod *xp = &bc->xp;
    R_xlen_t n = bc->n;
    int p = bc->p, px = xp->px;
    double *wy = bw->wy;
    for (R_xlen_t t = 0; t < n; t++) wy[t] = bc->w ? bc->w[t] * y[t] : y[t];
    for (int i = 0; i < xp->q1; i++) bw->AX1[p + (size_t) i * px] = 0.0;
    for (int i = 0; i < xp->q2; i++) bw->AX2[p + (size_t) i * px] = 0.0;
    for (int j = 0; j < bc->nterms; j++) {
        int k = xp->ncol[j];
        const int *cj = bc->codes[j];
        /* term 0 lives in AX1; the others in AX2 at their rest offset */
        double *A = j == 0 ? bw->AX1 : bw->AX2;
        int off = j == 0 ? 0 : bc->uoff[j] - xp->q1;
        for (int c = 0; c < k; c++) {
            const double *z = bc->Z[j] + (size_t) c * n;
            for (R_xlen_t t = 0; t < n; t++)
                A[p + (size_t) (off + cj[t] * k + c) * px] += z[t] * wy[t];
        }
    }
    for (int i = 0; i < p; i++) {
        const double *x = bc->X + (size_t) i * n;
        double s = 0;
        for (R_xlen_t t = 0; t < n; t++) s += x[t] * wy[t];
        bw->AXX[p + (size_t) i * px] = s;
        bw->AXX[i + (size_t) p * px] = s;
    }
    double s = 0;
    for (R_xlen_t t = 0; t < n; t++) s += y[t] * wy[t];
    bw->AXX[p + (size_t) p * px] = s;
}

/* y += scale * Z Lambda u (u in the order of fit$u). bscr: q scratch. */
static void add_z_lambda_u(const boot_ctx *bc, const double *u, double scale, double *bscr, double *y)
{
    const lmm_xprod *xp = &bc->xp;
    R_xlen_t n = bc->n;
    for (int j = 0; j < bc->nterms; j++) {
        int k = xp->ncol[j], nl = xp->nlev[j];
        const double *lam = bc->lambda + bc->lamoff[j];
        const double *uj = u + bc->uoff[j];
        double *bj = bscr + bc->uoff[j];
        for (int g = 0; g < nl; g++)
            for (int c = 0; c < k; c++) {
                double s = 0;
                for (int r = 0; r <= c; r++) s += lam[c + r * k] * uj[(size_t) g * k + r];
                bj[(size_t) g * k + c] = scale * s;
            }
        const int *cj = bc->codes[j];
        for (int c = 0; c < k; c++) {
            const double *z = bc->Z[j] + (size_t) c * n;
            for (R_xlen_t t = 0; t < n; t++) y[t] += z[t] * bj[(size_t) cj[t] * k + c];
        }
    }
}

/* The parts of y* that do not change between replicates: X beta, plus Z b-hat
 * when use.u = TRUE. */
static double *sim_base(const boot_ctx *bc, int use_u)
{
    R_xlen_t n = bc->n;
    double *base = (double *) R_alloc((size_t) n, sizeof(double));
    for (R_xlen_t t = 0; t < n; t++) base[t] = 0.0;
    for (int i = 0; i < bc->p; i++) {
        const double *x = bc->X + (size_t) i * n;
        double b = bc->beta[i];
        for (R_xlen_t t = 0; t < n; t++) base[t] += x[t] * b;
    }
    if (use_u) {
        double *bscr = (double *) R_alloc((size_t) bc->q, sizeof(double));
        add_z_lambda_u(bc, bc->uhat, 1.0, bscr, base);
    }
    return base;
}

/* One replicate's response, drawing from R's RNG in the documented order.
 * ustar, bscr: q scratch.  The caller brackets with GetRNGstate/PutRNGstate. */
static void sim_one(const boot_ctx *bc, int use_u, const double *base,
                    double *ustar, double *bscr, double *y)
{
    R_xlen_t n = bc->n;
    if (!use_u)
        for (int i = 0; i < bc->q; i++) ustar[i] = norm_rand();
    double s = bc->sigma;
    for (R_xlen_t t = 0; t < n; t++) {
        double e = norm_rand();
        y[t] = base[t] + s * (bc->w ? e / sqrt(bc->w[t]) : e);
    }
    if (!use_u) add_z_lambda_u(bc, ustar, s, bscr, y);
}

/* Projected finite-difference gradient check, as the fit's own: a gradient
 * pointing out of the feasible region at an active lower bound counts as zero.
 * Returns 1 when the refit is judged converged. */
static int refit_converged(const lmm_xprod *xp, const double *theta, int reml,
                           double h, double tol, lmm_factor *fa, double *grad, double *lower)
{
    int nt = lmm_ntheta(xp);
    lmm_gradient(xp, theta, reml, h, fa, grad);
    lmm_theta_lower(xp, lower);
    double gmax = 0;
    for (int i = 0; i < nt; i++) {
        double g = grad[i];
        if (!R_FINITE(g)) return 0;
        if (lower[i] == 0.0 && theta[i] <= 0.0 && g > 0) g = 0;
        if (fabs(g) > gmax) gmax = fabs(g);
    }
    if (gmax <= tol) return 1;
    /* as the fit itself: judge the gradient scaled by the curvature (only
     * when the raw gradient fails, which saves the 2 nt evaluations) */
    double *scaled = (double *) R_alloc((size_t) nt, sizeof(double));
    lmm_scaled_gradient(xp, theta, reml, grad, fa, scaled);
    gmax = 0;
    for (int i = 0; i < nt; i++) {
        double g = ISNAN(scaled[i]) ? grad[i] : scaled[i];
        if (lower[i] == 0.0 && theta[i] <= 0.0 && g > 0) g = 0;
        if (fabs(g) > gmax) gmax = fabs(g);
    }
    return gmax <= tol;
}

/* Status codes of a replicate. */
enum { BOOT_OK = 0, BOOT_NONCONV = 1, BOOT_FAILED = 2 };

/* theta's cold start (as the fit's: identity lambdas) and whether a theta
 * has a diagonal element on its lower bound 0. */
static void theta_cold(const lmm_xprod *xp, double *theta)
{
    for (int j = 0, i = 0; j < xp->nterms; j++) {
        int k = xp->ncol[j];
        for (int c = 0; c < k; c++)
            for (int r = c; r < k; r++) theta[i++] = (r == c) ? 1.0 : 0.0;
    }
}

static int theta_on_boundary(const lmm_xprod *xp, const double *theta)
{
    for (int j = 0, i = 0; j < xp->nterms; j++) {
        int k = xp->ncol[j];
        for (int c = 0; c < k; c++)
            for (int r = c; r < k; r++, i++) if (r == c && theta[i] <= 0.0) return 1;
    }
    return 0;
}

/* Minimise from theta (in place).  A warm-started L-BFGS-B run now and then
 * stops on a tiny relative reduction of the deviance before the gradient is
 * small: restarting it from where it stopped (fresh curvature memory)
 * finishes the job.  Returns 1 when converged, -1 when theta is not finite. */
static int optimize_from(const lmm_xprod *xw, double *theta, int reml, const lmm_optctl *ctl,
                         double gradtol, lmm_factor *fa, double *grad, double *lower,
                         lmm_optres *res)
{
    int conv = 0;
    for (int attempt = 0; attempt < 3 && !conv; attempt++) {
        lmm_optimize(xw, theta, reml, ctl, res, NULL, NULL);
        for (int i = 0; i < lmm_ntheta(xw); i++) if (!R_FINITE(theta[i])) return -1;
        conv = refit_converged(xw, theta, reml, ctl->fdstep, gradtol, fa, grad, lower);
    }
    return conv;
}

/* Refit theta to the response whose cross-products are in xw, starting from
 * `start`; the result in theta.  On success fa holds the factor at theta and
 * beta/u the coefficients.
 *
 * A diagonal element of lambda at 0 is a stationary point of the deviance
 * whatever the data (the deviance depends on it through its square), so an
 * optimizer started or stuck there can stay there although the optimum is
 * inside.  Hence: a start on the boundary is replaced by the cold start, and a
 * refit that ends on the boundary is repeated from the cold start, keeping
 * the better of the two. */
static int refit_theta(const lmm_xprod *xw, const double *start, double *theta, int reml,
                       const lmm_optctl *ctl, double gradtol, lmm_factor *fa,
                       double *beta, double *u, double *grad, double *lower,
                       lmm_optres *res, double *dev)
{
    int nt = lmm_ntheta(xw);
    int from_cold = theta_on_boundary(xw, start);
    if (from_cold) theta_cold(xw, theta);
    else memcpy(theta, start, (size_t) nt * sizeof(double));
    int conv = optimize_from(xw, theta, reml, ctl, gradtol, fa, grad, lower, res);
    if (conv < 0) return BOOT_FAILED;
    if (!from_cold && theta_on_boundary(xw, theta)) {
        double *alt = (double *) R_alloc((size_t) nt, sizeof(double));
        double *galt = (double *) R_alloc((size_t) nt, sizeof(double));
        theta_cold(xw, alt);
        lmm_optres res2;
        int conv2 = optimize_from(xw, alt, reml, ctl, gradtol, fa, galt, lower, &res2);
        if (conv2 >= 0) {
            double d1 = lmm_deviance(xw, theta, reml, fa), d2 = lmm_deviance(xw, alt, reml, fa);
            if (d2 < d1 || !R_FINITE(d1)) {
                memcpy(theta, alt, (size_t) nt * sizeof(double));
                memcpy(grad, galt, (size_t) nt * sizeof(double));
                *res = res2;
                conv = conv2;
            }
        }
    }
    if (lmm_factorize(xw, theta, fa) != 0) return BOOT_FAILED;
    *dev = lmm_deviance_from_factor(xw, fa, reml);
    if (!R_FINITE(*dev) || !(fa->pwrss > 0)) return BOOT_FAILED;
    lmm_solve_coef(xw, fa, beta, u);
    for (int i = 0; i < xw->p; i++) if (!R_FINITE(beta[i])) return BOOT_FAILED;
    return conv ? BOOT_OK : BOOT_NONCONV;
}

/* The default statistic: beta; per term, for each lower-triangle element of
 * lambda (column by column) the SD (diagonal) or the correlation (below it);
 * sigma.  An undefined correlation (a zero SD) is NaN. */
static int stat_length(const lmm_xprod *xp) { return xp->p + lmm_ntheta(xp) + 1; }

static void default_stat(const lmm_xprod *xp, const double *theta, const double *beta,
                         double sigma, double *out)
{
    int i = 0, it = 0;
    for (int l = 0; l < xp->p; l++) out[i++] = beta[l];
    for (int j = 0; j < xp->nterms; j++) {
        int k = xp->ncol[j];
        const double *th = theta + it;
        /* lambda[r, c] (r >= c) is th[pos(r, c)], pos column by column */
#define LAM(r, c) ((r) >= (c) ? th[(c) * k - (c) * ((c) - 1) / 2 + ((r) - (c))] : 0.0)
        for (int c = 0; c < k; c++)
            for (int r = c; r < k; r++) {
                if (r == c) {
                    double s = 0;
                    for (int l = 0; l <= c; l++) s += LAM(c, l) * LAM(c, l);
                    out[i++] = sigma * sqrt(s);
                } else {
                    double sc = 0, sr = 0, scr = 0;
                    for (int l = 0; l <= r; l++) {
                        sc += LAM(c, l) * LAM(c, l);
                        sr += LAM(r, l) * LAM(r, l);
                        scr += LAM(c, l) * LAM(r, l);
                    }
                    out[i++] = (sc > 0 && sr > 0) ? scr / sqrt(sc * sr) : R_NaN;
                }
            }
#undef LAM
        it += k * (k + 1) / 2;
    }
    out[i] = sigma;
}

/* A (nsim x ncol) real matrix (zeroed). */
static SEXP alloc_real_matrix(int nr, int nc)
{
    SEXP m = allocMatrix(REALSXP, nr, nc);
    if ((R_xlen_t) nr * nc > 0) memset(REAL(m), 0, (size_t) nr * nc * sizeof(double));
    return m;
}


/* The bootstrap loop: nsim replicates drawn here (Y NULL) or the columns of Y
 * (responses with the offset removed).  Returns the default statistic (nsim x
 * k), theta (nsim x nt), deviance and status per replicate. */
SEXP lmm_boot_run(SEXP spec, SEXP sY, SEXP snsim, SEXP suse_u, SEXP sreml, SEXP control)
{
    int nprot = 0;
    boot_ctx bc;
    unpack_spec(spec, &bc);
    int use_u = lmm_arg_flag(suse_u, "use.u"), reml = lmm_arg_flag(sreml, "REML");
    lmm_optctl ctl;
    lmm_unpack_control(control, &ctl);
    double gradtol = asReal(list_elt(control, "check_grad_tol"));
    if (!(gradtol > 0)) error(_("'check_grad_tol' must be positive"));
    int nsim;
    const double *Y = NULL;
    if (isNull(sY)) {
        nsim = lmm_arg_int(snsim, "nsim", 0, INT_MAX);
    } else {
        if (!isReal(sY) || !isMatrix(sY) || nrows(sY) != bc.n)
            error(_("'Y' must be a numeric matrix with one row per observation"));
        nsim = ncols(sY);
        Y = REAL(sY);
    }
    const lmm_xprod *xp = &bc.xp;
    int k = stat_length(xp), nt = bc.nt, p = bc.p;
    SEXP st = PROTECT(alloc_real_matrix(nsim, k)); nprot++;
    SEXP sth = PROTECT(alloc_real_matrix(nsim, nt)); nprot++;
    SEXP sdev = PROTECT(allocVector(REALSXP, nsim)); nprot++;
    SEXP sstatus = PROTECT(allocVector(INTSXP, nsim)); nprot++;
    double *tt = REAL(st), *tth = REAL(sth), *dev = REAL(sdev);
    int *status = INTEGER(sstatus);

    boot_work bw;
    work_alloc(&bc, &bw);
    lmm_factor fa;
    lmm_factor_alloc(xp, &fa);
    double *base = Y ? NULL : sim_base(&bc, use_u);
    double *y = (double *) R_alloc((size_t) bc.n, sizeof(double));
    double *ustar = (double *) R_alloc((size_t) bc.q, sizeof(double));
    double *bscr = (double *) R_alloc((size_t) bc.q, sizeof(double));
    double *theta = (double *) R_alloc((size_t) nt, sizeof(double));
    double *beta = (double *) R_alloc((size_t) p, sizeof(double));
    double *u = (double *) R_alloc((size_t) bc.q, sizeof(double));
    double *grad = (double *) R_alloc((size_t) nt, sizeof(double));
    double *lower = (double *) R_alloc((size_t) nt, sizeof(double));
    double *stat = (double *) R_alloc((size_t) k, sizeof(double));

    if (!Y) GetRNGstate();
    for (int i = 0; i < nsim; i++) {
        const void *vmax = vmaxget();
        if (Y) {
            memcpy(y, Y + (size_t) i * bc.n, (size_t) bc.n * sizeof(double));
        } else {
            sim_one(&bc, use_u, base, ustar, bscr, y);
        }
        update_response(&bc, &bw, y);
        lmm_optres res;
        double d = NA_REAL;
        int code = refit_theta(&bw.xw, bc.theta, theta, reml, &ctl, gradtol, &fa, beta, u,
                               grad, lower, &res, &d);
        status[i] = code;
        dev[i] = code == BOOT_FAILED ? NA_REAL : d;
        for (int l = 0; l < nt; l++) tth[i + (size_t) l * nsim] = code == BOOT_FAILED ? NA_REAL : theta[l];
        if (code == BOOT_OK) {
            default_stat(xp, theta, beta, lmm_sigma_hat(xp, fa.pwrss, reml), stat);
            for (int l = 0; l < k; l++) tt[i + (size_t) l * nsim] = stat[l];
        } else {
            for (int l = 0; l < k; l++) tt[i + (size_t) l * nsim] = NA_REAL;
        }
        vmaxset(vmax);
        if ((i & 15) == 15) {
            /* keep the RNG state current so an interrupt leaves it consistent */
            if (!Y) { PutRNGstate(); R_CheckUserInterrupt(); GetRNGstate(); }
            else R_CheckUserInterrupt();
        }
    }
    if (!Y) PutRNGstate();

    const char *names[] = {"t", "theta", "deviance", "status", ""};
    SEXP ans = PROTECT(mkNamed(VECSXP, names)); nprot++;
    SET_VECTOR_ELT(ans, 0, st);
    SET_VECTOR_ELT(ans, 1, sth);
    SET_VECTOR_ELT(ans, 2, sdev);
    SET_VECTOR_ELT(ans, 3, sstatus);
    UNPROTECT(nprot);
    return ans;
}

/* nsim simulated responses (n x nsim, offset not added), in the same draw
 * order as lmm_boot_run. */
SEXP lmm_boot_simulate(SEXP spec, SEXP snsim, SEXP suse_u)
{
    boot_ctx bc;
    unpack_spec(spec, &bc);
    int use_u = lmm_arg_flag(suse_u, "use.u"), nsim = lmm_arg_int(snsim, "nsim", 0, INT_MAX);
    SEXP Y = PROTECT(alloc_real_matrix((int) bc.n, nsim));
    double *base = sim_base(&bc, use_u);
    double *ustar = (double *) R_alloc((size_t) bc.q, sizeof(double));
    double *bscr = (double *) R_alloc((size_t) bc.q, sizeof(double));
    GetRNGstate();
    for (int i = 0; i < nsim; i++) {
        sim_one(&bc, use_u, base, ustar, bscr, REAL(Y) + (size_t) i * bc.n);
        if ((i & 255) == 255) { PutRNGstate(); R_CheckUserInterrupt(); GetRNGstate(); }
    }
    PutRNGstate();
    UNPROTECT(1);
    return Y;
}

/* Advance R's RNG by `count` standard normal draws (what `count` calls of
 * norm_rand consume), so that parallel workers can start where a serial run
 * would be. */
SEXP lmm_boot_skip(SEXP scount)
{
    double count = lmm_arg_real(scount, "count");
    if (count < 0) error(_("'count' must be a non-negative number"));
    GetRNGstate();
    double s = 0;
    for (double i = 0; i < count; i++) {
        s += norm_rand();
        if (fmod(i, 1048576.0) == 1048575.0) { PutRNGstate(); R_CheckUserInterrupt(); GetRNGstate(); }
    }
    PutRNGstate();
    return ScalarReal(s);
}

/* Refit to one new response y (offset removed), warm-started at theta0: the
 * new cross-product list (response parts replaced), the optimizer's report and
 * the solution, in the shapes lmm_optimize/lmm_solution give. */
SEXP lmm_refit(SEXP spec, SEXP sy, SEXP stheta0, SEXP sreml, SEXP control)
{
    int nprot = 0;
    boot_ctx bc;
    unpack_spec(spec, &bc);
    const lmm_xprod *xp = &bc.xp;
    int reml = lmm_arg_flag(sreml, "REML"), nt = bc.nt, p = bc.p;
    const double *y = real_of_length(sy, bc.n, "newresp");
    for (R_xlen_t t = 0; t < bc.n; t++)
        if (!R_FINITE(y[t])) error(_("the new response has NA, NaN or infinite values"));
    const double *theta0 = lmm_arg_finite(stheta0, nt, "theta0");
    lmm_optctl ctl;
    lmm_unpack_control(control, &ctl);
    double gradtol = asReal(list_elt(control, "check_grad_tol"));
    if (!(gradtol > 0)) error(_("'check_grad_tol' must be positive"));

    boot_work bw;
    work_alloc(&bc, &bw);
    update_response(&bc, &bw, y);
    lmm_factor fa;
    lmm_factor_alloc(xp, &fa);
    SEXP stheta = PROTECT(allocVector(REALSXP, nt)); nprot++;
    SEXP sbeta = PROTECT(allocVector(REALSXP, p)); nprot++;
    SEXP su = PROTECT(allocVector(REALSXP, bc.q)); nprot++;
    SEXP sgrad = PROTECT(allocVector(REALSXP, nt)); nprot++;
    double *theta = REAL(stheta);
    double *lower = (double *) R_alloc((size_t) nt, sizeof(double));
    lmm_optres res;
    double dev = NA_REAL;
    int code = refit_theta(&bw.xw, theta0, theta, reml, &ctl, gradtol, &fa, REAL(sbeta), REAL(su),
                           REAL(sgrad), lower, &res, &dev);
    if (code == BOOT_FAILED) {
        const char *names[] = {"status", ""};
        SEXP ans = PROTECT(mkNamed(VECSXP, names)); nprot++;
        SET_VECTOR_ELT(ans, 0, ScalarInteger(code));
        UNPROTECT(nprot);
        return ans;
    }
    SEXP RX = PROTECT(alloc_real_matrix(p, p)); nprot++;
    lmm_rx_from_factor(xp, &fa, REAL(RX));

    /* the new cross-product list: the old one with the response parts replaced */
    SEXP sxp = list_elt(spec, "xprod");
    SEXP nxp = PROTECT(shallow_duplicate(sxp)); nprot++;
    SEXP nAX1 = PROTECT(allocVector(REALSXP, XLENGTH(VECTOR_ELT(sxp, 10)))); nprot++;
    SEXP nAX2 = PROTECT(allocVector(REALSXP, XLENGTH(VECTOR_ELT(sxp, 11)))); nprot++;
    SEXP nAXX = PROTECT(allocVector(REALSXP, XLENGTH(VECTOR_ELT(sxp, 12)))); nprot++;
    memcpy(REAL(nAX1), bw.AX1, (size_t) XLENGTH(nAX1) * sizeof(double));
    memcpy(REAL(nAX2), bw.AX2, (size_t) XLENGTH(nAX2) * sizeof(double));
    memcpy(REAL(nAXX), bw.AXX, (size_t) XLENGTH(nAXX) * sizeof(double));
    SET_VECTOR_ELT(nxp, 10, nAX1);
    SET_VECTOR_ELT(nxp, 11, nAX2);
    SET_VECTOR_ELT(nxp, 12, nAXX);

    const char *names[] = {"status", "xprod", "theta", "deviance", "feval", "convergence",
                           "message", "gradient", "beta", "u", "RX", "ldL2", "ldRX2",
                           "pwrss", ""};
    SEXP ans = PROTECT(mkNamed(VECSXP, names)); nprot++;
    SET_VECTOR_ELT(ans, 0, ScalarInteger(code));
    SET_VECTOR_ELT(ans, 1, nxp);
    SET_VECTOR_ELT(ans, 2, stheta);
    SET_VECTOR_ELT(ans, 3, ScalarReal(dev));
    SET_VECTOR_ELT(ans, 4, ScalarInteger(res.fncount));
    SET_VECTOR_ELT(ans, 5, ScalarInteger(res.fail));
    SET_VECTOR_ELT(ans, 6, mkString(res.msg));
    SET_VECTOR_ELT(ans, 7, sgrad);
    SET_VECTOR_ELT(ans, 8, sbeta);
    SET_VECTOR_ELT(ans, 9, su);
    SET_VECTOR_ELT(ans, 10, RX);
    SET_VECTOR_ELT(ans, 11, ScalarReal(fa.ldL2));
    SET_VECTOR_ELT(ans, 12, ScalarReal(fa.ldRX2));
    SET_VECTOR_ELT(ans, 13, ScalarReal(fa.pwrss));
    UNPROTECT(nprot);
    return ans;
}
