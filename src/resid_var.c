/* Residual variance components (resid.h): nlme's varIdent, varPower,
 * varExp, varConstPower and varFixed, each optionally by stratum.  Each
 * gives log s_t, the log of row t's standard-deviation multiplier (the
 * residual sd is sigma s_t); several combine by adding (nlme's varComb).
 *   varIdent:      s = delta_k for stratum k (delta_1 = 1): par log delta_2..K
 *   varPower:      s = |x|^delta_k
 *   varExp:        s = exp(delta_k x)
 *   varConstPower: s = c_k + |x|^delta_k: par log c_1..K, then delta_1..K
 *   varFixed:      s = sqrt(x) (no parameters) */
#include <math.h>
#include "resid.h"

/* Every variance parameter (a log ratio, a power, an exponential rate)
 * within +-VAR_PAR_MAX: exp(50) exceeds any ratio of sds data can identify,
 * and keeps the optimizer's trial points finite. */
#define VAR_PAR_MAX 50.0

static int stratum_of(const resid_comp *c, R_xlen_t t)
{
    return c->strata ? c->strata[t] - 1 : 0;
}

static void ident_logsd(const resid_comp *c, const double *par, R_xlen_t n, double *ls)
{
    for (R_xlen_t t = 0; t < n; t++) {
        int k = stratum_of(c, t);
        if (k > 0) ls[t] += par[k - 1];
    }
}

static void power_logsd(const resid_comp *c, const double *par, R_xlen_t n, double *ls)
{
    if (c->logx && !c->strata)
        for (R_xlen_t t = 0; t < n; t++) ls[t] += par[0] * c->logx[t];
    else
        for (R_xlen_t t = 0; t < n; t++)
            ls[t] += par[stratum_of(c, t)] * (c->logx ? c->logx[t] : log(fabs(c->x[t])));
}

static void exp_logsd(const resid_comp *c, const double *par, R_xlen_t n, double *ls)
{
    for (R_xlen_t t = 0; t < n; t++) ls[t] += par[stratum_of(c, t)] * c->x[t];
}

static void constpower_logsd(const resid_comp *c, const double *par, R_xlen_t n, double *ls)
{
    int K = c->nstrata;
    for (R_xlen_t t = 0; t < n; t++) {
        int k = stratum_of(c, t);
        double lx = c->logx ? c->logx[t] : log(fabs(c->x[t]));
        ls[t] += log(exp(par[k]) + exp(par[K + k] * lx));
    }
}

static void fixed_logsd(const resid_comp *c, const double *par, R_xlen_t n, double *ls)
{
    (void) par;
    for (R_xlen_t t = 0; t < n; t++) ls[t] += 0.5 * log(c->x[t]);
}

static void var_bounds(const resid_comp *c, double *lower, double *upper)
{
    for (int i = 0; i < c->npar; i++) {
        lower[i] = -VAR_PAR_MAX;
        upper[i] = VAR_PAR_MAX;
    }
}

/* The order is the codes R/resid-struct.R gives (RESID_VAR_KINDS). */
const resid_var_kind resid_var_kinds[] = {
    {"varIdent", ident_logsd, var_bounds},
    {"varPower", power_logsd, var_bounds},
    {"varExp", exp_logsd, var_bounds},
    {"varConstPower", constpower_logsd, var_bounds},
    {"varFixed", fixed_logsd, var_bounds},
};
const int resid_nvar_kinds = (int) (sizeof resid_var_kinds / sizeof resid_var_kinds[0]);
