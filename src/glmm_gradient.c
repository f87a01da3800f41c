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

int glmm_gradient_applies(const glmm_model *m)
{
    int canonical = (m->fam.family == GLMM_BINOMIAL && m->fam.link == GLMM_LOGIT) ||
                    (m->fam.family == GLMM_POISSON && m->fam.link == GLMM_LOG);
    return canonical && m->nterms == 1 && m->xu.ncol[0] == 1;
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

/* glam: d D / d lambda (one value); gbeta: d D / d beta (p); work: 2 p;
 * du (or NULL): each level's d u_g / d lambda and d u_g / d beta (1 + p
 * each, level by level) */
void glmm_laplace_gradient(const glmm_model *m, double *glam, double *gbeta, double *work, double *du)
{
    int p = m->p, nl = m->xu.nlev[0];
    const double *Z = m->Z[0], *X = m->X;
    double lam = m->lam[m->lamoff[0]], gl = 0, lam2 = lam * lam;
    R_xlen_t n = m->n;
    double *xdw = work, *xw = work + p;
    for (int k = 0; k < p; k++) gbeta[k] = 0;
    for (int g = 0; g < nl; g++) {
        double S = 0, T = 0, zd = 0, ug = m->u[g];
        for (int k = 0; k < p; k++) xdw[k] = xw[k] = 0;
        for (R_xlen_t i = m->start[g]; i < m->start[g + 1]; i++) {
            double d, w, dw, z = Z[i];
            row_derivatives(m, i, &d, &w, &dw);
            S += w * z * z;
            T += dw * z * z * z;
            zd += z * d;
            for (int k = 0; k < p; k++) {
                double x = X[i + (size_t) k * n];
                gbeta[k] += x * d;
                xdw[k] += x * z * z * dw;
                xw[k] += x * z * w;
            }
        }
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
    const double *Z = m->Z[0], *X = m->X;
    double lam = m->lam[m->lamoff[0]], lam2 = lam * lam, ug = m->u[g];
    double S = 0, T = 0, zd = 0;
    R_xlen_t n = m->n;
    for (int k = 0; k < p; k++) w->xdw[k] = w->xw[k] = 0;
    for (R_xlen_t i = m->start[g]; i < m->start[g + 1]; i++) {
        double d, wi, dw, z = Z[i];
        row_derivatives(m, i, &d, &wi, &dw);
        S += wi * z * z;
        T += dw * z * z * z;
        zd += z * d;
        for (int k = 0; k < p; k++) {
            double x = X[i + (size_t) k * n];
            w->xdw[k] += x * z * z * dw;
            w->xw[k] += x * z * wi;
        }
    }
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
