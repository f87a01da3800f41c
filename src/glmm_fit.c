/* Generalized linear mixed models on the one optimizer driver, as glmer
 * fits them: first theta with beta solved inside PIRLS (lme4's nAGQ = 0
 * stage), then theta and beta jointly with PIRLS for u alone and the
 * Laplace or adaptive Gauss-Hermite criterion (glmm_pirls.c).  beta moves
 * in coordinates whitened by the first stage's R_X, in which it has unit
 * scale, so that the driver's finite differences and tolerances do not
 * depend on the units of the covariates. */
#include <math.h>
#include <string.h>
#include <Rinternals.h>
#include "glmm.h"
#include "theta.h"

typedef struct {
    glmm_model m;
    int ntheta, nagq, nevals, failures;
    const double *nodes, *weights;
    double *beta1, *RX;          /* stage 1's beta and R_X (p x p upper) */
    double *theta_start;
    /* the last evaluation whose PIRLS state is current: its point (stage
     * 1's theta, or stage 2's theta and whitened beta; state_len 0: none)
     * and value.  The driver asks for some points twice in a row (an
     * L-BFGS-B run's end, then the polish's start), and the exact gradient
     * reads that state. */
    double *state_x, state_crit;
    int state_len;
    /* the exact gradient (glmm_gradient.c) where it applies: its scratch
     * and the gradients taken */
    double *gwork, *gx, *gbeta, *G0, *gtmp;
    glmm_grad_ws *mws;           /* several terms' (or NULL) */
    int ngrads;
    /* the modes' derivatives at the last gradient's point (pred_ok): with
     * its lambda, beta and modes they predict the modes at the next point
     * to first order, PIRLS's start there (du: 1 + p per level) */
    double *du, *pred_beta, *pred_u, pred_lam;
    int pred_ok;
} glmm_fit;

/* ---- unpacking ---------------------------------------------------------- */

static SEXP model_elt(SEXP l, const char *name)
{
    SEXP names = getAttrib(l, R_NamesSymbol);
    if (!isNewList(l) || isNull(names)) error(_("corrupt GLMM: not a named list"));
    for (int i = 0; i < LENGTH(l); i++)
        if (!strcmp(CHAR(STRING_ELT(names, i)), name)) return VECTOR_ELT(l, i);
    error(_("corrupt GLMM: no '%s'"), name);
}

static const double *row_vector(SEXP s, R_xlen_t n, const char *what, int optional)
{
    if (optional && isNull(s)) return NULL;
    if (!isReal(s) || XLENGTH(s) != n) error(_("'%s' must be a numeric vector of length %lld"), what, (long long) n);
    return REAL(s);
}

static void unpack_family(SEXP s, glmm_family *fam)
{
    fam->family = lmm_arg_int(model_elt(s, "family"), "family", 0, GLMM_NFAMILIES - 1);
    fam->link = lmm_arg_int(model_elt(s, "link"), "link", 0, GLMM_NLINKS - 1);
    fam->nb_theta = fam->family == GLMM_NEGBIN ? lmm_arg_real(model_elt(s, "nb_theta"), "nb_theta") : 1;
    if (!(fam->nb_theta > 0) || !R_FINITE(fam->nb_theta)) error(_("the negative binomial's theta must be positive"));
    fam->bounded = glmm_link_bounded(fam->family, fam->link);
}

/* A copy of x (n x k) with its rows in the order perm */
static const double *permuted(const double *x, R_xlen_t n, int k, const int *perm)
{
    if (!x) return NULL;
    double *out = (double *) R_alloc((size_t) (n > 0 ? n : 1) * (k > 0 ? k : 1), sizeof(double));
    for (int c = 0; c < k; c++)
        for (R_xlen_t i = 0; i < n; i++) out[i + (size_t) c * n] = x[perm[i] + (size_t) c * n];
    return out;
}

/* The rows in the order of the first term's levels, copied once: every
 * PIRLS pass then reads them in sequence (1.7x faster per evaluation on
 * 100,000 rows in 5,000 random groups than through the level order), and
 * the accumulation's order is the identity.  m->perm maps back. */
static void sort_rows(glmm_model *m)
{
    R_xlen_t n = m->n;
    int *perm = (int *) R_alloc((size_t) (n > 0 ? n : 1), sizeof(int));
    m->start = (int *) R_alloc((size_t) m->xu.nlev[0] + 1, sizeof(int));
    lmm_order_by_level(n, m->codes[0], m->xu.nlev[0], m->start, perm);
    m->X = permuted(m->X, n, m->p, perm);
    m->y = permuted(m->y, n, 1, perm);
    m->prior = permuted(m->prior, n, 1, perm);
    m->trials = permuted(m->trials, n, 1, perm);
    m->offset = permuted(m->offset, n, 1, perm);
    const int **codes = (const int **) R_alloc((size_t) m->nterms, sizeof(int *));
    const double **Z = (const double **) R_alloc((size_t) m->nterms, sizeof(double *));
    for (int j = 0; j < m->nterms; j++) {
        int *cj = (int *) R_alloc((size_t) (n > 0 ? n : 1), sizeof(int));
        for (R_xlen_t i = 0; i < n; i++) cj[i] = m->codes[j][perm[i]];
        codes[j] = cj;
        Z[j] = permuted(m->Z[j], n, m->xu.ncol[j], perm);
    }
    m->codes = codes;
    m->Z = Z;
    m->order = (int *) R_alloc((size_t) (n > 0 ? n : 1), sizeof(int));
    for (R_xlen_t i = 0; i < n; i++) m->order[i] = (int) i;
    m->perm = perm;
}

/* The model list from R/glmm-fit.R: patterns xu (no X) and xj (with X),
 * the rows and the family. */
static void glmm_setup(SEXP model, glmm_fit *f)
{
    glmm_model *m = &f->m;
    memset(f, 0, sizeof(*f));
    lmm_unpack_xprod(model_elt(model, "xu"), &m->xu);
    lmm_unpack_xprod(model_elt(model, "xj"), &m->xj);
    SEXP sX = model_elt(model, "X"), sy = model_elt(model, "y");
    R_xlen_t n = XLENGTH(sy);
    m->n = n;
    m->p = m->xj.p;
    m->nterms = m->xu.nterms;
    if (m->xu.p != 0 || m->xj.nterms != m->nterms || m->xu.nobs != n || m->xj.nobs != n)
        error(_("corrupt GLMM: the patterns do not match the data"));
    if (!isReal(sX) || !isMatrix(sX) || nrows(sX) != n || ncols(sX) != m->p)
        error(_("'X' must be a numeric matrix with one row per observation"));
    m->X = REAL(sX);
    m->y = row_vector(sy, n, "y", 0);
    m->prior = row_vector(model_elt(model, "prior"), n, "prior", 0);
    m->trials = row_vector(model_elt(model, "trials"), n, "trials", 1);
    m->offset = row_vector(model_elt(model, "offset"), n, "offset", 1);
    unpack_family(model_elt(model, "family"), &m->fam);
    SEXP scodes = model_elt(model, "codes"), sZ = model_elt(model, "Z");
    if (!isNewList(scodes) || !isNewList(sZ) || LENGTH(scodes) != m->nterms || LENGTH(sZ) != m->nterms)
        error(_("'codes' and 'Z' must be lists with one entry per random-effects term"));
    const int **codes = (const int **) R_alloc((size_t) m->nterms, sizeof(int *));
    const double **Z = (const double **) R_alloc((size_t) m->nterms, sizeof(double *));
    for (int j = 0; j < m->nterms; j++) {
        SEXP cj = VECTOR_ELT(scodes, j), zj = VECTOR_ELT(sZ, j);
        if (!isInteger(cj) || XLENGTH(cj) != n) error(_("grouping codes of term %d have the wrong type or length"), j + 1);
        if (!isReal(zj) || !isMatrix(zj) || nrows(zj) != n || ncols(zj) != m->xu.ncol[j])
            error(_("model matrix of term %d has the wrong type or size"), j + 1);
        for (R_xlen_t t = 0; t < n; t++)
            if (INTEGER(cj)[t] < 1 || INTEGER(cj)[t] > m->xu.nlev[j])
                error(_("grouping codes of term %d are out of range"), j + 1);
        codes[j] = INTEGER(cj);
        Z[j] = REAL(zj);
    }
    m->codes = codes;
    m->Z = Z;
    m->sat = 0;
    for (R_xlen_t i = 0; i < n; i++) {
        if (!(m->prior[i] > 0)) error(_("prior weights must be positive"));
        m->sat += glmm_saturated(&m->fam, m->y[i], m->prior[i], m->trials ? m->trials[i] : m->prior[i]);
    }
    sort_rows(m);
    lmm_xprod *xps[] = {&m->xu, &m->xj};
    lmm_value_layout *lays[] = {&m->layu, &m->layj};
    double **bufs[] = {&m->bufu, &m->bufj};
    lmm_factor **fas[] = {&m->fau, &m->faj};
    lmm_accum_ws *wss[] = {&m->awsu, &m->awsj};
    for (int s = 0; s < 2; s++) {
        /* the symbolic factor from the pattern, before the values move
         * into the buffer that each iteration refills */
        *fas[s] = (lmm_factor *) R_alloc(1, sizeof(lmm_factor));
        lmm_factor_alloc(xps[s], *fas[s]);
        lmm_value_layout_of(xps[s], lays[s]);
        *bufs[s] = (double *) R_alloc((size_t) (lays[s]->off[6] > 0 ? lays[s]->off[6] : 1), sizeof(double));
        lmm_point_values(xps[s], lays[s], *bufs[s]);
        lmm_accum_ws_alloc(xps[s], xps[s]->p, wss[s]);
    }
    glmm_model_alloc(m);
    f->ntheta = lmm_ntheta(&m->xu);
    int p = m->p > 0 ? m->p : 1;
    f->beta1 = (double *) R_alloc((size_t) p, sizeof(double));
    f->RX = (double *) R_alloc((size_t) p * p, sizeof(double));
    f->state_x = (double *) R_alloc((size_t) f->ntheta + p, sizeof(double));
}

/* A logical element of the control list, FALSE when absent */
static int control_flag(SEXP control, const char *name)
{
    SEXP names = getAttrib(control, R_NamesSymbol);
    for (int i = 0; !isNull(names) && i < LENGTH(control); i++)
        if (!strcmp(CHAR(STRING_ELT(names, i)), name)) return lmm_arg_flag(VECTOR_ELT(control, i), name);
    return 0;
}

/* PIRLS iterations per evaluation; Gauss-Hermite nodes and weights */
static void unpack_options(SEXP snagq, SEXP nodes, SEXP control, glmm_fit *f)
{
    f->nagq = lmm_arg_int(snagq, "nAGQ", 0, GLMM_MAX_AGQ);
    if (f->nagq > 1 && (f->m.nterms != 1 || f->m.xu.ncol[0] != 1))
        error(_("nAGQ > 1 is available for one scalar random-effects term only"));
    /* the rule (one node at 0 for nAGQ 0 and 1) */
    int nq = f->nagq > 1 ? f->nagq : 1;
    if (!isReal(nodes) || !isMatrix(nodes) || nrows(nodes) != nq || ncols(nodes) != 2)
        error(_("the Gauss-Hermite rule must be a numeric %d x 2 matrix"), nq);
    for (int k = 0; k < nq; k++)
        if (!R_FINITE(REAL(nodes)[k]) || !(REAL(nodes)[nq + k] > 0) || !R_FINITE(REAL(nodes)[nq + k]))
            error(_("the Gauss-Hermite rule must have finite nodes and positive weights"));
    f->nodes = REAL(nodes);
    f->weights = REAL(nodes) + nq;
    SEXP names = getAttrib(control, R_NamesSymbol);
    f->m.maxit = GLMM_PIRLS_MAXIT;
    for (int i = 0; !isNull(names) && i < LENGTH(control); i++)
        if (!strcmp(CHAR(STRING_ELT(names, i)), "pirls_maxit"))
            f->m.maxit = lmm_arg_int(VECTOR_ELT(control, i), "pirls_maxit", 1, 100000);
}

/* ---- the two stages' objectives ----------------------------------------- */

/* beta = beta1 + R_X^{-1} v */
static void beta_from_whitened(const glmm_fit *f, const double *v, double *beta)
{
    int p = f->m.p;
    for (int i = p - 1; i >= 0; i--) {
        double s = v[i];
        for (int l = i + 1; l < p; l++) s -= f->RX[i + (size_t) l * p] * beta[l];
        beta[i] = s / f->RX[i + (size_t) i * p];
    }
    for (int i = 0; i < p; i++) beta[i] += f->beta1[i];
}

static double criterion(glmm_fit *f, int joint)
{
    if (joint || f->nagq <= 1) return glmm_laplace(&f->m, joint);
    return glmm_agq(&f->m, f->nagq, f->nodes, f->weights);
}

static int at_state(const glmm_fit *f, const double *x, int len)
{
    return f->state_len == len && !memcmp(x, f->state_x, (size_t) len * sizeof(double));
}

static double remember_state(glmm_fit *f, const double *x, int len, double crit)
{
    memcpy(f->state_x, x, (size_t) len * sizeof(double));
    f->state_len = len;
    f->state_crit = crit;
    return crit;
}

/* Stage 1: theta alone, beta found by PIRLS with u */
static double joint_objective(const double *theta, void *ex)
{
    glmm_fit *f = (glmm_fit *) ex;
    if (at_state(f, theta, f->ntheta)) return f->state_crit;
    f->state_len = 0;
    f->nevals++;
    if (glmm_pirls(&f->m, theta, 1) != GLMM_OK) {
        f->failures++;
        return R_PosInf;
    }
    return remember_state(f, theta, f->ntheta, criterion(f, 1));
}

/* u_g = u_g* + du_g . (lambda - lambda*, beta - beta*) from the last
 * gradient's point *: a Newton step's start with first-order error only
 * in the move (on 100,000 rows, PIRLS iterations per evaluation ~2.5 ->
 * ~1.5) */
static void predict_modes(glmm_fit *f, double lam)
{
    glmm_model *m = &f->m;
    int p = m->p, nl = m->xu.nlev[0];
    double dl = lam - f->pred_lam;
    for (int g = 0; g < nl; g++) {
        const double *d = f->du + (size_t) g * (1 + p);
        double u = f->pred_u[g] + d[0] * dl;
        for (int k = 0; k < p; k++) u += d[1 + k] * (m->beta[k] - f->pred_beta[k]);
        m->u[g] = u;
    }
}

/* Stage 2: theta and the whitened beta, PIRLS for u alone */
static double full_objective(const double *x, void *ex)
{
    glmm_fit *f = (glmm_fit *) ex;
    int len = f->ntheta + f->m.p;
    if (at_state(f, x, len)) return f->state_crit;
    f->state_len = 0;
    f->nevals++;
    beta_from_whitened(f, x + f->ntheta, f->m.beta);
    glmm_set_beta(&f->m, f->m.beta);
    if (f->pred_ok) predict_modes(f, x[0]);
    if (glmm_pirls(&f->m, x, 0) != GLMM_OK) {
        f->failures++;
        return R_PosInf;
    }
    return remember_state(f, x, len, criterion(f, 0));
}

/* d crit / d lambda and d crit / d beta at the PIRLS state (beta held) */
static int criterion_gradient(glmm_fit *f, double *G, double *gbeta)
{
    glmm_model *m = &f->m;
    if (f->mws) return glmm_model_gradient(m, f->mws, G, gbeta);
    if (f->nagq > 1) glmm_agq_gradient(m, f->nagq, f->nodes, f->weights, G, gbeta, f->gwork, f->du);
    else glmm_laplace_gradient(m, G, gbeta, f->gwork, f->du);
    if (f->du) {
        f->pred_lam = m->lam[m->lamoff[0]];
        memcpy(f->pred_beta, m->beta, (size_t) m->p * sizeof(double));
        memcpy(f->pred_u, m->u, (size_t) m->q * sizeof(double));
        f->pred_ok = 1;
    }
    return 0;
}

/* Stage 2's exact gradient at (lambdas lam, whitened beta v): at the PIRLS
 * state of the last evaluation when it was there (L-BFGS-B asks for the
 * gradient where it has just evaluated), else after one; the gradient at
 * the factor's lambdas carried to lam term by term.  beta = beta1 +
 * R_X^{-1} v, so d/dv = R_X^{-T} d/dbeta. */
static int full_gradient(const double *lam, const double *v, double *G, double *gv, void *ex)
{
    glmm_fit *f = (glmm_fit *) ex;
    glmm_model *m = &f->m;
    int nt = f->ntheta, p = m->p;
    lmm_theta_of_lambdas(m->nterms, m->xu.ncol, m->lamoff, lam, 1, f->gx, f->gtmp);
    memcpy(f->gx + nt, v, (size_t) p * sizeof(double));
    if (!at_state(f, f->gx, nt + p)) {
        lmm_theta_of_lambdas(m->nterms, m->xu.ncol, m->lamoff, lam, 0, f->gx, f->gtmp);
        if (!at_state(f, f->gx, nt + p) && !R_FINITE(full_objective(f->gx, f))) return 1;
    }
    f->ngrads++;
    if (criterion_gradient(f, f->G0, f->gbeta) != 0) return 1;
    for (int j = 0; j < m->nterms; j++)
        lmm_lambda_gradient_at(m->xu.ncol[j], lam + m->lamoff[j], m->lam + m->lamoff[j], f->G0 + m->lamoff[j],
                               G + m->lamoff[j], f->gtmp);
    for (int i = 0; i < p; i++) {
        double s = f->gbeta[i];
        for (int l = 0; l < i; l++) s -= f->RX[l + (size_t) i * p] * gv[l];
        gv[i] = s / f->RX[i + (size_t) i * p];
    }
    return 0;
}

/* The criterion's exact gradient's scratch, when it applies: one scalar
 * term's formulas, else the selected inverse's for the Laplace criterion
 * (canonical link, no sparse tail) */
enum { NO_GRADIENT, SCALAR_GRADIENT, MODEL_GRADIENT };
static int gradient_kind(const glmm_fit *f)
{
    const glmm_model *m = &f->m;
    if (glmm_scalar_gradient_applies(m)) return SCALAR_GRADIENT;
    return glmm_canonical_link(m) && f->nagq <= 1 && m->fau->tail == NULL ? MODEL_GRADIENT : NO_GRADIENT;
}

static void gradient_setup(glmm_fit *f)
{
    glmm_model *m = &f->m;
    int p = m->p, kmax = 1, nl = m->lamoff[m->nterms], kind = gradient_kind(f);
    if (kind == NO_GRADIENT) return;
    int scalar = kind == SCALAR_GRADIENT;
    for (int j = 0; j < m->nterms; j++) if (m->xu.ncol[j] > kmax) kmax = m->xu.ncol[j];
    size_t len = f->nagq > 1 ? glmm_agq_gradient_work(m, f->nagq) : (size_t) 2 * p;
    f->gwork = (double *) R_alloc(len + 1, sizeof(double));
    f->gx = (double *) R_alloc((size_t) f->ntheta + p, sizeof(double));
    f->gbeta = (double *) R_alloc((size_t) p + 1, sizeof(double));
    f->G0 = (double *) R_alloc((size_t) nl, sizeof(double));
    f->gtmp = (double *) R_alloc((size_t) kmax * kmax, sizeof(double));
    if (!scalar) {
        f->mws = (glmm_grad_ws *) R_alloc(1, sizeof(glmm_grad_ws));
        glmm_model_gradient_alloc(m, f->mws);
    }
}

/* The modes' prediction (stage 2's evaluations) */
static void prediction_setup(glmm_fit *f)
{
    glmm_model *m = &f->m;
    f->du = (double *) R_alloc((size_t) m->xu.nlev[0] * (1 + m->p), sizeof(double));
    f->pred_beta = (double *) R_alloc((size_t) m->p + 1, sizeof(double));
    f->pred_u = (double *) R_alloc((size_t) m->q, sizeof(double));
    f->pred_ok = 0;
}

/* The first stage's tolerance when a second follows: it only gives the
 * second its start (theta and beta are optimised again jointly, by the
 * driver with its boundary checks), so a relative decrease of 2e-6 per
 * iteration is close enough; on 100,000 rows it saves 25 of 118
 * evaluations. */
#define GLMM_STAGE1_FACTR 1e10

static void first_stage(glmm_fit *f, double *theta, const lmm_optctl *ctl, lmm_optres *res)
{
    int nt = f->ntheta;
    double *lower = (double *) R_alloc((size_t) nt, sizeof(double));
    double *upper = (double *) R_alloc((size_t) nt, sizeof(double));
    lmm_theta_lower(&f->m.xj, lower);
    for (int i = 0; i < nt; i++) upper[i] = R_PosInf;
    lmm_optctl loose = *ctl;
    loose.factr = fmax(ctl->factr, GLMM_STAGE1_FACTR);
    loose.forward = 1;
    loose.shift = 1;
    lmm_minimize(nt, theta, lower, upper, joint_objective, NULL, f, &loose, res);
}

/* ---- results ------------------------------------------------------------ */

static SEXP real_copy(const double *x, int len)
{
    SEXP s = allocVector(REALSXP, len);
    if (len) memcpy(REAL(s), x, (size_t) len * sizeof(double));
    return s;
}

/* The state at (theta, beta, u) after PIRLS: the criterion, the modes, the
 * weighted cross-products with X at the mode (their factor gives R_X and
 * the conditional variances, as for a linear fit), the working weights and
 * the PIRLS counts. */
static SEXP glmm_state(SEXP model, glmm_fit *f, double crit, int code)
{
    int nprot = 0;
    glmm_model *m = &f->m;
    const char *names[] = {"deviance", "beta", "u", "xprod", "weights", "eta", "mu", "pirls", "sumdev",
                           "gradient", ""};
    SEXP ans = PROTECT(mkNamed(VECSXP, names)); nprot++;
    SET_VECTOR_ELT(ans, 0, ScalarReal(crit));
    SET_VECTOR_ELT(ans, 1, real_copy(m->beta, m->p));
    SET_VECTOR_ELT(ans, 2, real_copy(m->u, m->q));
    /* the joint system at the mode with beta held: its factor's R_X is
     * lme4's RX, whose inverse cross-product is vcov(beta) */
    int rc = code == GLMM_OK ? 0 : 1;
    if (!rc) {
        glmm_working_values(m, 1);
        memset(m->bufj, 0, (size_t) m->layj.off[6] * sizeof(double));
        lmm_accumulate(m->n, m->p, m->X, m->z, m->w, NULL, NULL, m->codes, m->Z, &m->xj, m->start, m->order,
                       m->bufj + m->layj.off[0], m->bufj + m->layj.off[1], m->bufj + m->layj.off[2],
                       m->bufj + m->layj.off[3], m->bufj + m->layj.off[4], m->bufj + m->layj.off[5], &m->awsj);
        SET_VECTOR_ELT(ans, 3, lmm_xprod_with_values(model_elt(model, "xj"), &m->layj, m->bufj));
    }
    SEXP w = PROTECT(allocVector(REALSXP, m->n)); nprot++;
    SEXP eta = PROTECT(allocVector(REALSXP, m->n)); nprot++;
    SEXP mu = PROTECT(allocVector(REALSXP, m->n)); nprot++;
    /* back in the data's order */
    for (R_xlen_t i = 0; i < m->n; i++) {
        R_xlen_t r = m->perm[i];
        REAL(w)[r] = m->w[i];
        REAL(eta)[r] = m->eta[i];
        REAL(mu)[r] = m->mu[i];
    }
    SET_VECTOR_ELT(ans, 4, w);
    SET_VECTOR_ELT(ans, 5, eta);
    SET_VECTOR_ELT(ans, 6, mu);
    SEXP pi = PROTECT(allocVector(INTSXP, 3)); nprot++;
    INTEGER(pi)[0] = code;
    INTEGER(pi)[1] = m->iter;
    INTEGER(pi)[2] = m->halvings;
    SET_VECTOR_ELT(ans, 7, pi);
    SET_VECTOR_ELT(ans, 8, ScalarReal(m->sumdev));
    UNPROTECT(nprot);
    return ans;
}

static const char *pirls_failure(int code)
{
    switch (code) {
    case GLMM_NOT_CONVERGED: return _("PIRLS did not converge");
    case GLMM_FACTOR_FAILED: return _("the weighted fixed-effects system is singular (complete separation?)");
    default: return _("PIRLS diverged: the penalized deviance rose at every step");
    }
}

/* ---- entry points ------------------------------------------------------- */

/* The criterion and the state at theta and beta (beta NULL: solved with u,
 * the nAGQ = 0 criterion), PIRLS from u0 (NULL: 0). */
SEXP lmm_glmm_eval(SEXP model, SEXP stheta, SEXP sbeta, SEXP su0, SEXP snagq, SEXP nodes)
{
    glmm_fit f;
    glmm_setup(model, &f);
    unpack_options(snagq, nodes, R_NilValue, &f);
    const double *theta = lmm_arg_finite(stheta, f.ntheta, "theta");
    int joint = isNull(sbeta);
    if (!joint) memcpy(f.m.beta, lmm_arg_finite(sbeta, f.m.p, "beta"), (size_t) f.m.p * sizeof(double));
    if (!isNull(su0)) memcpy(f.m.u, lmm_arg_finite(su0, f.m.q, "u0"), (size_t) f.m.q * sizeof(double));
    if (!joint) glmm_set_beta(&f.m, f.m.beta);
    int code = glmm_pirls(&f.m, theta, joint);
    double crit = code == GLMM_OK ? criterion(&f, joint) : NA_REAL;
    SEXP st = PROTECT(glmm_state(model, &f, crit, code));
    gradient_setup(&f);
    if (!joint && code == GLMM_OK && f.gwork && criterion_gradient(&f, f.G0, f.gbeta) == 0) {
        /* d crit / d (theta, beta), for the tests */
        SEXP g = allocVector(REALSXP, f.ntheta + f.m.p);
        SET_VECTOR_ELT(st, 9, g);
        for (int j = 0, i = 0; j < f.m.nterms; j++) {
            int k = f.m.xu.ncol[j];
            lmm_theta_pack(k, f.G0 + f.m.lamoff[j], REAL(g) + i);
            i += k * (k + 1) / 2;
        }
        memcpy(REAL(g) + f.ntheta, f.gbeta, (size_t) f.m.p * sizeof(double));
    }
    UNPROTECT(1);
    return st;
}

/* lme4's two stages from theta0 and beta0 (the glm fit's); nAGQ = 0 stops
 * after the first. */
SEXP lmm_glmm_optimize(SEXP model, SEXP stheta, SEXP sbeta, SEXP snagq, SEXP nodes, SEXP control)
{
    int nprot = 0;
    glmm_fit f;
    glmm_setup(model, &f);
    lmm_optctl ctl;
    lmm_unpack_control(control, &ctl);
    unpack_options(snagq, nodes, control, &f);
    int nt = f.ntheta, p = f.m.p;
    SEXP theta = PROTECT(duplicate(stheta)); nprot++;
    lmm_arg_finite(theta, nt, "theta");
    const double *beta0 = lmm_arg_finite(sbeta, p, "beta");
    memcpy(f.m.beta, beta0, (size_t) p * sizeof(double));
    int refine = f.nagq > 0 && control_flag(control, "glmm_refine");
    /* stage 1 from the start; its values condition theta in the driver */
    int code = glmm_pirls(&f.m, REAL(theta), 1);   /* (no objective's state yet) */
    if (code != GLMM_OK) error(_("%s at the starting values"), pirls_failure(code));
    lmm_problem pb1 = {&f.m.xj, 0, NULL, NULL, joint_objective, &f, NULL, 0, 1, 0, 0, 0, 0};
    lmm_optres res1, res2;
    int npar = nt + (f.nagq > 0 ? p : 0);
    SEXP grad = PROTECT(allocVector(REALSXP, npar)); nprot++;
    SEXP scaled = PROTECT(allocVector(REALSXP, npar)); nprot++;
    /* the first stage gives the second a start; with the exact gradient the
     * second needs none better than the joint PIRLS at the start, measured
     * (evaluations in all, CPU): cbpp 58 -> 43, the 100,000-row binomial 76
     * -> 46, grouseticks' three terms 129 -> 58 (38 -> 12 ms), VerbAgg 104
     * -> 95 (130 -> 101 ms), two crossed terms 73 -> 66; one random slope
     * 120 -> 155 (14 -> 18 ms); the 4-level nested design with a slope on
     * 100,000 rows (bench-glmm.R's, two seeds) 396 -> 211 and 370 -> 199,
     * 12.0 -> 6.7 s and 12.1 -> 7.1 s, on 20,000 rows 352 -> 270 but 1.02
     * -> 1.17 s (its first stage's evaluations are cheap there); the
     * optima unchanged to 1e-10. */
    int skip_first = gradient_kind(&f) != NO_GRADIENT;
    if (f.nagq == 0) lmm_drive(&pb1, REAL(theta), &ctl, &res1, REAL(grad), REAL(scaled));
    else if (!refine && !skip_first) first_stage(&f, REAL(theta), &ctl, &res1);
    else res1.fail = 0;
    int evals1 = f.nevals;
    code = glmm_pirls(&f.m, REAL(theta), 1);
    f.state_len = 0;             /* the state moved outside the objectives */
    if (code != GLMM_OK) error(_("%s at the first stage's optimum"), pirls_failure(code));
    double crit = criterion(&f, 1);
    /* a refit from estimates (glmm_refine) starts the second stage at them,
     * the joint system at theta only whitening beta */
    if (refine) memcpy(f.m.beta, beta0, (size_t) p * sizeof(double));
    SEXP par = PROTECT(allocVector(REALSXP, npar)); nprot++;
    memcpy(REAL(par), REAL(theta), (size_t) nt * sizeof(double));
    if (f.nagq > 0) {
        memcpy(f.beta1, f.m.beta, (size_t) p * sizeof(double));
        lmm_rx_from_factor(&f.m.xj, f.m.faj, f.RX);
        double *lower = (double *) R_alloc((size_t) (p > 0 ? p : 1), sizeof(double));
        double *upper = (double *) R_alloc((size_t) (p > 0 ? p : 1), sizeof(double));
        for (int i = 0; i < p; i++) {
            lower[i] = R_NegInf;
            upper[i] = R_PosInf;
            REAL(par)[nt + i] = 0;
        }
        /* the u-only system's values at the start condition theta */
        glmm_set_beta(&f.m, f.m.beta);
        code = glmm_pirls(&f.m, REAL(theta), 0);
        f.state_len = 0;
        if (code != GLMM_OK) error(_("%s at the first stage's optimum"), pirls_failure(code));
        lmm_problem pb2 = {&f.m.xu, p, lower, upper, full_objective, &f, NULL, 0, 1, 0, 0, 0, 0};
        gradient_setup(&f);
        if (f.gwork) {
            if (!f.mws) prediction_setup(&f);
            pb2.lambda_gradient = full_gradient;
            pb2.gradient_when_small = 1;
            pb2.gradient_newton = 1;
            pb2.gradient_polish = 1;
        }
        lmm_drive(&pb2, REAL(par), &ctl, &res2, REAL(grad), REAL(scaled));
        crit = full_objective(REAL(par), &f);
        beta_from_whitened(&f, REAL(par) + nt, f.m.beta);
        code = crit < R_PosInf ? GLMM_OK : GLMM_NOT_CONVERGED;
    } else res2 = res1;
    SEXP st = PROTECT(glmm_state(model, &f, crit, code)); nprot++;
    const char *names[] = {"par", "deviance", "feval", "convergence", "message", "gradient",
                           "scaled_gradient", "settled", "state", "feval_stage1", "failures", ""};
    SEXP ans = PROTECT(mkNamed(VECSXP, names)); nprot++;
    SEXP th = PROTECT(real_copy(REAL(par), nt)); nprot++;
    /* an exact gradient is counted as one evaluation: one scalar term's
     * costs one pass over the rows, several terms' the selected inverse, one
     * solve and two passes, against an evaluation's two or three PIRLS
     * iterations */
    lmm_fill_drive_result(ans, th, &res2, f.nevals + f.ngrads, grad, scaled);
    SET_VECTOR_ELT(ans, 1, ScalarReal(crit));
    SET_VECTOR_ELT(ans, 8, st);
    SET_VECTOR_ELT(ans, 9, ScalarInteger(evals1));
    SET_VECTOR_ELT(ans, 10, ScalarInteger(f.failures));
    UNPROTECT(nprot);
    return ans;
}
