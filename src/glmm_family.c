/* The family component of a generalized linear mixed model: the inverse
 * link and its derivative, the variance function, the unit deviance and
 * the saturated log density, for the built-in families.  The links are
 * bounded as R's make.link() bounds them (so that mu stays strictly inside
 * the support and the working weights finite), which makes the fits agree
 * with glm() and glmer() where the linear predictor is extreme. */
#include <float.h>
#include <math.h>
#include <Rmath.h>
#include "glmm.h"

/* make.link("cloglog"): exp(eta) overflows past 700 */
#define CLOGLOG_MAX_ETA 700.0

static double clamp(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }

double glmm_linkinv(int link, double eta)
{
    switch (link) {
    case GLMM_LOGIT: return glmm_logit_linkinv(eta);
    case GLMM_PROBIT: {
        double th = -qnorm(DBL_EPSILON, 0, 1, 1, 0);
        return pnorm(clamp(eta, -th, th), 0, 1, 1, 0);
    }
    case GLMM_CAUCHIT: {
        double th = -qcauchy(DBL_EPSILON, 0, 1, 1, 0);
        return pcauchy(clamp(eta, -th, th), 0, 1, 1, 0);
    }
    case GLMM_CLOGLOG: return clamp(-expm1(-exp(eta)), DBL_EPSILON, 1 - DBL_EPSILON);
    case GLMM_LOG: return fmax(exp(eta), DBL_EPSILON);
    case GLMM_INVERSE: return 1 / eta;
    case GLMM_SQRT: return eta * eta;
    case GLMM_INVERSE_SQUARED: return 1 / sqrt(eta);
    default: return eta;
    }
}

double glmm_mu_eta(int link, double eta)
{
    switch (link) {
    case GLMM_LOGIT: {
        if (eta > GLMM_LOGIT_THRESH || eta < -GLMM_LOGIT_THRESH) return DBL_EPSILON;
        double e = exp(eta);
        return e / ((1 + e) * (1 + e));
    }
    case GLMM_PROBIT: return fmax(dnorm(eta, 0, 1, 0), DBL_EPSILON);
    case GLMM_CAUCHIT: return fmax(dcauchy(eta, 0, 1, 0), DBL_EPSILON);
    case GLMM_CLOGLOG: {
        double e = fmin(eta, CLOGLOG_MAX_ETA);
        return fmax(exp(e) * exp(-exp(e)), DBL_EPSILON);
    }
    case GLMM_LOG: return fmax(exp(eta), DBL_EPSILON);
    case GLMM_INVERSE: return -1 / (eta * eta);
    case GLMM_SQRT: return 2 * eta;
    case GLMM_INVERSE_SQUARED: return -1 / (2 * pow(eta, 1.5));
    default: return 1;
    }
}

/* The same from mu where it is a function of mu alone, sparing an exp()
 * per row and iteration: logit's e / (1 + e)^2 = mu (1 - mu), log's exp(eta)
 * = mu (both bounded as make.link() bounds them). */
double glmm_mu_eta_at(int link, double eta, double mu)
{
    switch (link) {
    case GLMM_LOGIT: return glmm_logit_mu_eta_at(eta, mu);
    case GLMM_LOG: return mu;
    default: return glmm_mu_eta(link, eta);
    }
}

int glmm_link_bounded(int family, int link)
{
    if (family == GLMM_BINOMIAL) return link == GLMM_LOGIT || link == GLMM_PROBIT || link == GLMM_CAUCHIT ||
                                        link == GLMM_CLOGLOG;
    return link == GLMM_LOG;
}

int glmm_valid_mu(const glmm_family *fam, double mu)
{
    if (!R_FINITE(mu)) return 0;
    return fam->family == GLMM_BINOMIAL ? mu > 0 && mu < 1 : mu > 0;
}

double glmm_variance(const glmm_family *fam, double mu)
{
    switch (fam->family) {
    case GLMM_BINOMIAL: return mu * (1 - mu);
    case GLMM_NEGBIN: return mu + mu * mu / fam->nb_theta;
    case GLMM_GAMMA: return mu * mu;
    case GLMM_INVGAUSS: return mu * mu * mu;
    default: return mu;
    }
}

double glmm_dev_resid(const glmm_family *fam, double y, double mu, double wt)
{
    switch (fam->family) {
    case GLMM_BINOMIAL: return 2 * wt * (glmm_ylogy(y, mu) + glmm_ylogy(1 - y, 1 - mu));
    case GLMM_NEGBIN: {
        double th = fam->nb_theta;
        return 2 * wt * (glmm_ylogy(y, mu) - (y + th) * log((y + th) / (mu + th)));
    }
    case GLMM_GAMMA: return -2 * wt * (log(y / mu) - (y - mu) / mu);
    case GLMM_INVGAUSS: return wt * (y - mu) * (y - mu) / (y * mu * mu);
    default: return 2 * wt * (glmm_ylogy(y, mu) - (y - mu));
    }
}

/* The log densities take the counts as real numbers (lgamma), so that a
 * non-integer count, which glm() warns about, still has a finite value. */
double glmm_saturated(const glmm_family *fam, double y, double wt, double trials)
{
    switch (fam->family) {
    case GLMM_BINOMIAL: {
        /* glm()'s binomial aic: round(m y) successes of round(m) trials,
         * each such observation weighted by wt / m */
        double m = nearbyint(trials), k = nearbyint(trials * y);
        if (trials <= 0) return 0;
        return -2 * (wt / trials) * dbinom(k, m, y, 1);
    }
    case GLMM_NEGBIN: {
        double th = fam->nb_theta;
        double lp = lgammafn(y + th) - lgammafn(th) - lgammafn(y + 1) + th * log(th / (th + y)) +
                    (y > 0 ? y * log(y / (th + y)) : 0);
        return -2 * wt * lp;
    }
    case GLMM_GAMMA:
    case GLMM_INVGAUSS:
        return 0;                /* their density needs the dispersion: glmm_dispersion_aic() */
    default: {
        double lp = (y > 0 ? y * log(y) - y : 0) - lgammafn(y + 1);
        return -2 * wt * lp;
    }
    }
}

int glmm_has_dispersion(const glmm_family *fam)
{
    return fam->family == GLMM_GAMMA || fam->family == GLMM_INVGAUSS;
}

double glmm_dispersion_aic(const glmm_family *fam, R_xlen_t n, const double *y, const double *mu,
                           const double *wt, double dev)
{
    double sw = 0, s = 0;
    for (R_xlen_t i = 0; i < n; i++) sw += wt[i];
    double disp = dev / sw;
    if (fam->family == GLMM_GAMMA) {
        for (R_xlen_t i = 0; i < n; i++) s += wt[i] * dgamma(y[i], 1 / disp, mu[i] * disp, 1);
        return -2 * s + 2;
    }
    for (R_xlen_t i = 0; i < n; i++) s += wt[i] * log(y[i]);
    return sw * (log(disp * 2 * M_PI) + 1) + 3 * s + 2;
}
