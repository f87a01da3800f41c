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
 * them gives every sum. */
#include <math.h>
#include <float.h>
#include "glmm.h"

int glmm_gradient_applies(const glmm_model *m, int nagq)
{
    int canonical = (m->fam.family == GLMM_BINOMIAL && m->fam.link == GLMM_LOGIT) ||
                    (m->fam.family == GLMM_POISSON && m->fam.link == GLMM_LOG);
    return canonical && nagq <= 1 && m->nterms == 1 && m->xu.ncol[0] == 1;
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

/* glam: d D / d lambda (one value); gbeta: d D / d beta (p); work: 2 p */
void glmm_laplace_gradient(const glmm_model *m, double *glam, double *gbeta, double *work)
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
    }
    *glam = gl;
}
