/* The exact gradient of the Laplace criterion of a GLMM with one scalar
 * random-effects term and a canonical link (binomial-logit, Poisson-log),
 * in lambda and beta, at the conditional modes PIRLS left (beta held).
 *
 * With eta_i = eta0_i + z_i lambda u_g (g the level of row i), the
 * criterion is
 *     D = P(u*) + sum_g log M_g,  P(u) = sum_i dev_i + |u|^2,
 *     M_g = 1 + lambda^2 S_g,  S_g = sum_{i in g} w_i z_i^2,
 * w_i the working weights at the mode u*.  Per row, the deviance's
 * derivative in eta is d_i = -2 prior_i (y_i - mu_i); for a canonical link
 * its second derivative is 2 w_i, and w_i' = d w_i / d eta_i is
 * w_i (1 - 2 mu_i) (binomial) or w_i (Poisson).  For a parameter psi
 * (lambda, or beta_k entering eta0 through X):
 *   - P at its minimum in u: dP/dpsi is its partial derivative at u* fixed
 *     (the modes are stationary), sum_i d_i d eta_i / d psi;
 *   - log M_g depends on psi directly (through lambda and the w_i) and
 *     through u*_g: with the implicit derivative of the stationarity
 *     condition lambda sum_i z_i d_i + 2 u_g = 0, whose derivative in u_g
 *     is lambda^2 sum_i z_i^2 2 w_i + 2 = 2 M_g,
 *         d u_g / d psi = -(d/dpsi (lambda sum z_i d_i)) / (2 M_g).
 * Writing T_g = sum z_i^3 w_i', d log M_g / d u_g = lambda^3 T_g / M_g, so
 * with a_g = lambda^3 T_g / (2 M_g^2):
 *   dD/dlambda = sum_g [ u_g sum z_i d_i + u_g lambda^2 T_g / M_g
 *                        + 2 lambda S_g / M_g
 *                        - a_g (sum z_i d_i + 2 lambda u_g S_g) ],
 *   dD/dbeta_k = sum_i X_ik d_i
 *                + sum_g [ (lambda^2 / M_g) sum_i X_ik z_i^2 w_i'
 *                          - 2 lambda a_g sum_i X_ik z_i w_i ].
 * The rows are sorted by level (glmm_fit.c's sort_rows), so one pass over
 * them gives every sum.
 *
 * Adaptive Gauss-Hermite quadrature (glmm_pirls.c's glmm_agq) replaces
 * level g's P_g + log M_g by
 *     F_g = -2 log s_g - 2 log sum_k w_k e^{a_k},
 *     a_k = -(D_g(v_k) + v_k^2 - t_k^2) / 2,  v_k = u_g + s_g t_k,
 * s_g = M_g^{-1/2} and D_g(v) the level's deviance at u_g = v.  No longer
 * stationary in u_g, it is differentiated through the modes and the scales:
 * with pi_k the weights w_k e^{a_k} normalised, E_k = sum_i z_i d_ik and
 * F_kj = sum_i X_ij d_ik (d_ik at node k),
 *     dF_g = -2 ds_g / s_g + sum_k pi_k (dD_k + 2 v_k dv_k),
 *     dv_k = du_g + t_k ds_g,  ds_g = -s_g^3 dM_g / 2,
 *     dD_k / dlambda = E_k (v_k + lambda dv_k/dlambda),
 *     dD_k / dbeta_j = F_kj + lambda E_k dv_k/dbeta_j,
 * dM_g the total derivative (through u_g too: d M_g / d u_g = lambda^3 T_g)
 * and du_g as above; one node at 0 gives the Laplace formula back. */
#include <math.h>
#include <float.h>
#include <string.h>
#include "glmm.h"
#include "gradient.h"

#define LEVEL(codes, t) ((codes)[t] - 1)

int glmm_canonical_link(const glmm_model *m)
{
    return (m->fam.family == GLMM_BINOMIAL && m->fam.link == GLMM_LOGIT) ||
           (m->fam.family == GLMM_POISSON && m->fam.link == GLMM_LOG);
}

int glmm_scalar_gradient_applies(const glmm_model *m)
{
    return glmm_canonical_link(m) && m->nterms == 1 && m->xu.ncol[0] == 1;
}

/* Row i's d_i, w_i and w_i' at the point set.  Where the link holds mu at
 * its bound (make.link()'s), mu does not move with eta: d_i and w_i' are 0,
 * and w_i is PIRLS's value there. */
static inline void row_derivatives(const glmm_model *m, R_xlen_t i, double *d, double *w, double *dw)
{
    double mu = m->mu[i], eta = m->eta[i], pr = m->prior[i];
    if (m->fam.family == GLMM_BINOMIAL) {
        double var = mu * (1 - mu);
        if (eta > GLMM_LOGIT_THRESH || eta < -GLMM_LOGIT_THRESH) {
            *d = *dw = 0;
            *w = pr * DBL_EPSILON * DBL_EPSILON / var;
            return;
        }
        *w = pr * var;
        *dw = *w * (1 - 2 * mu);
    } else {
        *w = pr * mu;
        if (!(exp(eta) > DBL_EPSILON)) {
            *d = *dw = 0;
            return;
        }
        *dw = *w;
    }
    *d = -2 * pr * (m->y[i] - mu);
}

/* Level g's sums at the mode: S = sum w z^2, T = sum w' z^3, zd = sum z d
 * and, per fixed effect, xdw = sum x z^2 w', xw = sum x z w (and xd += sum
 * x d when xd is given) */
typedef struct {
    double S, T, zd;
} level_sums;

static level_sums level_sums_at(const glmm_model *m, int g, double *xdw, double *xw, double *xd)
{
    int p = m->p;
    const double *Z = m->Z[0], *X = m->X;
    R_xlen_t n = m->n;
    level_sums ls = {0, 0, 0};
    for (int k = 0; k < p; k++) xdw[k] = xw[k] = 0;
    for (R_xlen_t i = m->start[g]; i < m->start[g + 1]; i++) {
        double d, w, dw, z = Z[i];
        row_derivatives(m, i, &d, &w, &dw);
        ls.S += w * z * z;
        ls.T += dw * z * z * z;
        ls.zd += z * d;
        for (int k = 0; k < p; k++) {
            double x = X[i + (size_t) k * n];
            if (xd) xd[k] += x * d;
            xdw[k] += x * z * z * dw;
            xw[k] += x * z * w;
        }
    }
    return ls;
}

/* glam: d D / d lambda (one value); gbeta: d D / d beta (p); work: 2 p;
 * du (or NULL): each level's d u_g / d lambda and d u_g / d beta (1 + p
 * each, level by level) */
void glmm_laplace_gradient(const glmm_model *m, double *glam, double *gbeta, double *work, double *du)
{
    int p = m->p, nl = m->xu.nlev[0];
    double lam = m->lam[m->lamoff[0]], gl = 0, lam2 = lam * lam;
    double *xdw = work, *xw = work + p;
    for (int k = 0; k < p; k++) gbeta[k] = 0;
    for (int g = 0; g < nl; g++) {
        double ug = m->u[g];
        level_sums ls = level_sums_at(m, g, xdw, xw, gbeta);
        double S = ls.S, T = ls.T, zd = ls.zd;
        double M = 1 + lam2 * S, a = lam2 * lam * T / (2 * M * M);
        gl += ug * zd + ug * lam2 * T / M + 2 * lam * S / M - a * (zd + 2 * lam * ug * S);
        for (int k = 0; k < p; k++) gbeta[k] += lam2 / M * xdw[k] - 2 * lam * a * xw[k];
        if (du) {
            double *d = du + (size_t) g * (1 + p);
            d[0] = -(zd + 2 * lam * ug * S) / (2 * M);
            for (int k = 0; k < p; k++) d[1 + k] = -lam * xw[k] / M;
        }
    }
    *glam = gl;
}

/* d_i at eta (mu where the link holds it at a bound: d_i = 0) */
static inline double row_slope_at(const glmm_model *m, R_xlen_t i, double eta)
{
    if (m->fam.family == GLMM_BINOMIAL) {
        if (eta > GLMM_LOGIT_THRESH || eta < -GLMM_LOGIT_THRESH) return 0;
        return -2 * m->prior[i] * (m->y[i] - glmm_logit_linkinv(eta));
    }
    double mu = exp(eta);
    return mu > DBL_EPSILON ? -2 * m->prior[i] * (m->y[i] - mu) : 0;
}

/* Level g's derivatives of the mode, the scale and the node points in
 * (lambda, beta): index 0 lambda, 1 + j beta_j (each 1 + p long). */
typedef struct {
    double *du, *ds, *xdw, *xw, *E, *F, *Dk, *a;
} agq_ws;

static void level_mode_derivatives(const glmm_model *m, int g, agq_ws *w, double *s_out)
{
    int p = m->p;
    double lam = m->lam[m->lamoff[0]], lam2 = lam * lam, ug = m->u[g];
    level_sums ls = level_sums_at(m, g, w->xdw, w->xw, NULL);
    double S = ls.S, T = ls.T, zd = ls.zd;
    double M = 1 + lam2 * S, s = 1 / sqrt(M);
    w->du[0] = -(zd + 2 * lam * ug * S) / (2 * M);
    double dM = 2 * lam * S + lam2 * T * ug + lam2 * lam * T * w->du[0];
    w->ds[0] = -0.5 * s * s * s * dM;
    for (int k = 0; k < p; k++) {
        w->du[1 + k] = -lam * w->xw[k] / M;
        dM = lam2 * w->xdw[k] + lam2 * lam * T * w->du[1 + k];
        w->ds[1 + k] = -0.5 * s * s * s * dM;
    }
    *s_out = s;
}

void glmm_agq_gradient(const glmm_model *m, int nq, const double *t, const double *wk, double *glam,
                       double *gbeta, double *work, double *du)
{
    int p = m->p, nl = m->xu.nlev[0], np = 1 + p;
    const double *Z = m->Z[0], *X = m->X;
    double lam = m->lam[m->lamoff[0]];
    R_xlen_t n = m->n;
    agq_ws w = {work, work + np, work + 2 * np, work + 2 * np + p, work + 2 * np + 2 * p,
                work + 2 * np + 2 * p + nq, work + 2 * np + 2 * p + nq + (size_t) nq * p,
                work + 2 * np + 2 * p + 2 * nq + (size_t) nq * p};
    double *G = gbeta - 1;       /* G[0] lambda, G[1 + j] beta_j, written below */
    double gl = 0;
    for (int j = 0; j < p; j++) gbeta[j] = 0;
    for (int g = 0; g < nl; g++) {
        double s, ug = m->u[g];
        level_mode_derivatives(m, g, &w, &s);
        if (du) memcpy(du + (size_t) g * np, w.du, (size_t) np * sizeof(double));
        for (int k = 0; k < nq; k++) {
            w.E[k] = w.Dk[k] = 0;
            for (int j = 0; j < p; j++) w.F[k + (size_t) j * nq] = 0;
        }
        for (R_xlen_t i = m->start[g]; i < m->start[g + 1]; i++) {
            double z = Z[i];
            for (int k = 0; k < nq; k++) {
                double eta = m->eta0[i] + lam * z * (ug + s * t[k]);
                double mu = m->fam.family == GLMM_BINOMIAL ? glmm_logit_linkinv(eta) : glmm_linkinv(GLMM_LOG, eta);
                double d = row_slope_at(m, i, eta);
                w.Dk[k] += glmm_dev_resid(&m->fam, m->y[i], mu, m->prior[i]);
                w.E[k] += z * d;
                for (int j = 0; j < p; j++) w.F[k + (size_t) j * nq] += X[i + (size_t) j * n] * d;
            }
        }
        double amax = R_NegInf, tot = 0;
        for (int k = 0; k < nq; k++) {
            double v = ug + s * t[k];
            w.a[k] = log(wk[k]) - 0.5 * (w.Dk[k] + v * v - t[k] * t[k]);
            amax = fmax(amax, w.a[k]);
        }
        for (int k = 0; k < nq; k++) tot += exp(w.a[k] - amax);
        for (int c = 0; c < np; c++) {
            double dF = -2 * w.ds[c] / s;
            for (int k = 0; k < nq; k++) {
                double pik = exp(w.a[k] - amax) / tot, v = ug + s * t[k];
                double dv = w.du[c] + t[k] * w.ds[c];
                double dD = c == 0 ? w.E[k] * (v + lam * dv) : w.F[k + (size_t) (c - 1) * nq] + lam * w.E[k] * dv;
                dF += pik * (dD + 2 * v * dv);
            }
            if (c == 0) gl += dF;
            else G[c] += dF;
        }
    }
    *glam = gl;
}

size_t glmm_agq_gradient_work(const glmm_model *m, int nq)
{
    return (size_t) 2 * (1 + m->p) + 2 * (size_t) m->p + 3 * (size_t) nq + (size_t) nq * m->p;
}

/* ---- several terms ------------------------------------------------------
 *
 * With any terms (canonical link, no sparse tail), M = Lambda' Z' W Z
 * Lambda + I and the modes' Hessian of P is 2 M, so with s_i =
 * (Z Lambda M^{-1} Lambda' Z')_ii, c_i = w_i' s_i (the derivative of log|M|
 * in eta_i), r = Lambda' Z' c (its gradient in u) and a = M^{-1} r / 2:
 *     dD/dbeta = X' e,   e_i = d_i + c_i - 2 w_i (Z Lambda a)_i,
 *     dD/dLambda_j = d log|M| / d Lambda_j (W held: gradient.c's
 *                    lmm_logdet_gradient) + sum_i z_ij (e_i u_j(i)' - d_i a_j(i)'),
 * u_j(i), a_j(i) the level of term j at row i.  s_i needs M^{-1} only
 * where the row's levels meet, on the pattern of Z'Z: the selected inverse
 * (selinv.c), read at the places lmm_accumulate() adds the row's products
 * to.  One selected inverse, one solve and two passes over the rows. */

void glmm_model_gradient_alloc(const glmm_model *m, glmm_grad_ws *ws)
{
    const lmm_xprod *xp = &m->xu;
    int kmax = 1, ksum = 0;
    lmm_selinv_alloc(xp, &ws->si);
    ws->voff = (int *) R_alloc((size_t) xp->nterms + 1, sizeof(int));
    for (int j = 0; j < xp->nterms; j++) {
        ws->voff[j] = ksum;
        ksum += xp->ncol[j];
        if (xp->ncol[j] > kmax) kmax = xp->ncol[j];
    }
    ws->voff[xp->nterms] = ksum;
    ws->AL = (double *) R_alloc((size_t) (xp->qd > 0 ? xp->qd : 1) * kmax, sizeof(double));
    ws->r = (double *) R_alloc((size_t) (m->q > 0 ? m->q : 1), sizeof(double));
    ws->v = (double *) R_alloc((size_t) ksum, sizeof(double));
    ws->tv = (double *) R_alloc((size_t) ksum, sizeof(double));
    ws->ti = (int *) R_alloc((size_t) ksum, sizeof(int));
    ws->Gld = (double *) R_alloc((size_t) m->lamoff[m->nterms] + 1, sizeof(double));
}

/* v_j = Lambda_j' z_tj for every term at row t */
static void row_lambda_z(const glmm_model *m, R_xlen_t t, const int *voff, double *v)
{
    for (int j = 0; j < m->nterms; j++) {
        int k = m->xu.ncol[j];
        const double *lam = m->lam + m->lamoff[j], *Z = m->Z[j];
        for (int c = 0; c < k; c++) {
            double s = 0;
            for (int r = c; r < k; r++) s += lam[r + c * k] * Z[t + (size_t) r * m->n];
            v[voff[j] + c] = s;
        }
    }
}

/* s_t = v' M^{-1} v over the row's levels, at the places lmm_accumulate()
 * writes row t's products (stage 0's level g; pos and hcur as it sets
 * them for g) */
static double row_leverage(const glmm_model *m, glmm_grad_ws *ws, R_xlen_t t, int g, const double *v)
{
    const lmm_xprod *xp = &m->xu;
    const lmm_selinv_ws *si = &ws->si;
    const lmm_accum_ws *aw = &m->awsu;
    int nterms = xp->nterms, ns = xp->nstage, q2 = xp->q2, k1 = xp->ncol[0];
    int mg = xp->A21p[g + 1] - xp->A21p[g], nt = 0;
    const double *T0 = si->Z11 + (size_t) g * k1 * k1, *B0 = si->Z21x + (size_t) xp->A21p[g] * k1;
    double s = 0;
    for (int c = 0; c < k1; c++)
        for (int r = 0; r < k1; r++) s += v[r] * T0[r + c * k1] * v[c];
    for (int j = 1; j < nterms; j++) {
        int kj = xp->ncol[j], row0 = aw->roff[j] + LEVEL(m->codes[j], t) * kj;
        const double *vj = v + ws->voff[j];
        const lmm_stage *st = j < ns ? xp->stage + j : NULL;
        for (int cj = 0; cj < kj; cj++) {
            int rj = row0 + cj, at = aw->pos[rj];
            for (int c = 0; c < k1; c++) s += 2 * v[c] * B0[at + c * mg] * vj[cj];
            if (!st) {
                ws->ti[nt] = rj - xp->dstart;
                ws->tv[nt++] = vj[cj];
                continue;
            }
            int h = aw->hcur[j], mh = st->Cp[h + 1] - st->Cp[h];
            const double *tile = si->Z22 + st->tiles + (size_t) h * kj * kj;
            const double *bes = si->Z22 + st->coup + (size_t) st->Cp[h] * kj;
            const int *pj = aw->pos + (size_t) j * q2;
            for (int cl = 0; cl < kj; cl++) s += vj[cj] * tile[cl + cj * kj] * vj[cl];
            for (int l = j + 1; l < nterms; l++) {
                int col0 = aw->roff[l] + LEVEL(m->codes[l], t) * xp->ncol[l];
                for (int cl = 0; cl < xp->ncol[l]; cl++)
                    s += 2 * vj[cj] * bes[pj[col0 + cl] + (size_t) cj * mh] * v[ws->voff[l] + cl];
            }
        }
    }
    /* the tail: its lower triangle, every ordered pair */
    const double *D = si->Z22 + xp->doff;
    for (int a = 0; a < nt; a++)
        for (int b = 0; b < nt; b++) {
            int ia = ws->ti[a], ib = ws->ti[b];
            s += ws->tv[a] * (ia >= ib ? D[ia + (size_t) ib * xp->qd] : D[ib + (size_t) ia * xp->qd]) * ws->tv[b];
        }
    return s;
}

/* stage s's current level for stage 0's level g, and where each rest row
 * sits in its beside-list (lmm_accumulate()'s bookkeeping) */
static void level_positions(const glmm_model *m, int g)
{
    const lmm_xprod *xp = &m->xu;
    const lmm_accum_ws *aw = &m->awsu;
    R_xlen_t t0 = m->order[m->start[g]];
    for (int s = 0; s < xp->nstage; s++) {
        const lmm_stage *st = xp->stage + s;
        int h = s == 0 ? g : LEVEL(m->codes[s], t0);
        aw->hcur[s] = h;
        for (int i = st->Cp[h]; i < st->Cp[h + 1]; i++) aw->pos[(size_t) s * xp->q2 + st->Ci[i]] = i - st->Cp[h];
    }
}

/* the coordinate of term j's level at row t in u */
static inline int row_coord(const glmm_model *m, int j, R_xlen_t t)
{
    return m->uoff[j] + LEVEL(m->codes[j], t) * m->xu.ncol[j];
}

int glmm_model_gradient(glmm_model *m, glmm_grad_ws *ws, double *G, double *gbeta)
{
    const lmm_xprod *xp = &m->xu;
    int p = m->p, nterms = m->nterms;
    R_xlen_t n = m->n;
    double *v = ws->v, *r = ws->r, *c = m->z;   /* m->z is free between PIRLS runs */
    if (m->fau->tail || lmm_selinv(xp, m->fau, &ws->si) != 0) return 1;
    memset(r, 0, (size_t) m->q * sizeof(double));
    for (int g = 0; g < xp->nlev[0]; g++) {
        if (m->start[g] == m->start[g + 1]) continue;
        level_positions(m, g);
        for (int s = m->start[g]; s < m->start[g + 1]; s++) {
            R_xlen_t t = m->order[s];
            double d, w, dw;
            row_derivatives(m, t, &d, &w, &dw);
            row_lambda_z(m, t, ws->voff, v);
            c[t] = dw * row_leverage(m, ws, t, g, v);
            for (int j = 0; j < nterms; j++) {
                double *rj = r + row_coord(m, j, t);
                for (int cc = 0; cc < xp->ncol[j]; cc++) rj[cc] += c[t] * v[ws->voff[j] + cc];
            }
        }
    }
    if (lmm_factor_solve(xp, m->fau, r) != 0) return 1;
    for (int i = 0; i < m->q; i++) r[i] *= 0.5;
    memset(G, 0, (size_t) m->lamoff[nterms] * sizeof(double));
    for (int k = 0; k < p; k++) gbeta[k] = 0;
    for (R_xlen_t t = 0; t < n; t++) {
        double d, w, dw, zla = 0;
        row_derivatives(m, t, &d, &w, &dw);
        row_lambda_z(m, t, ws->voff, v);
        for (int j = 0; j < nterms; j++) {
            const double *aj = r + row_coord(m, j, t);
            for (int cc = 0; cc < xp->ncol[j]; cc++) zla += v[ws->voff[j] + cc] * aj[cc];
        }
        double e = d + c[t] - 2 * w * zla;
        for (int j = 0; j < nterms; j++) {
            int k = xp->ncol[j], o = row_coord(m, j, t);
            const double *Z = m->Z[j], *uj = m->u + o, *aj = r + o;
            double *Gj = G + m->lamoff[j];
            for (int rr = 0; rr < k; rr++) {
                double z = Z[t + (size_t) rr * n];
                if (z == 0.0) continue;
                for (int cc = 0; cc < k; cc++) Gj[rr + cc * k] += z * (e * uj[cc] - d * aj[cc]);
            }
        }
        for (int k = 0; k < p; k++) gbeta[k] += m->X[t + (size_t) k * n] * e;
    }
    lmm_logdet_gradient(xp, m->fau, &ws->si, ws->AL, ws->Gld);
    for (int e = 0; e < m->lamoff[nterms]; e++) G[e] += ws->Gld[e];
    return 0;
}
