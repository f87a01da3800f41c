/* Generalized linear mixed models (DESIGN.md section 8): the family
 * component (glmm_family.c) and penalized IRLS on the engine's factor
 * (glmm_pirls.c).  Nothing here knows about SEXPs. */
#ifndef LMMFIT_GLMM_H
#define LMMFIT_GLMM_H

#include <float.h>
#include <math.h>
#include "model.h"
#include "lmmfit.h"
#include "selinv.h"

/* ---- the family component --------------------------------------------- */

/* make.link("logit"): beyond +-30 the odds are held at DBL_EPSILON^{-+1}
 * and mu'(eta) at DBL_EPSILON */
#define GLMM_LOGIT_THRESH 30.0

/* The logit's inverse link and mu'(eta) given mu, and y log(y / mu) (0 at
 * y = 0): inline, for glmm_family.c's switch and for PIRLS's logit kernels
 * (glmm_pirls.c), which must give the same values to the last bit. */
static inline double glmm_logit_linkinv(double eta)
{
    double t = eta < -GLMM_LOGIT_THRESH ? DBL_EPSILON : (eta > GLMM_LOGIT_THRESH ? 1 / DBL_EPSILON : exp(eta));
    return t / (1 + t);
}
static inline double glmm_logit_mu_eta_at(double eta, double mu)
{
    return eta > GLMM_LOGIT_THRESH || eta < -GLMM_LOGIT_THRESH ? DBL_EPSILON : mu * (1 - mu);
}
static inline double glmm_ylogy(double y, double mu) { return y > 0 ? y * log(y / mu) : 0; }

enum { GLMM_BINOMIAL, GLMM_POISSON, GLMM_NEGBIN, GLMM_GAMMA, GLMM_INVGAUSS, GLMM_NFAMILIES };
enum { GLMM_LOGIT, GLMM_PROBIT, GLMM_CLOGLOG, GLMM_CAUCHIT, GLMM_LOG, GLMM_IDENTITY,
       GLMM_INVERSE, GLMM_SQRT, GLMM_INVERSE_SQUARED, GLMM_NLINKS };

typedef struct {
    int family, link;
    double nb_theta;     /* the negative binomial's shape (GLMM_NEGBIN) */
    int bounded;         /* 1: the link keeps every mu inside the support */
} glmm_family;

/* mu = g^{-1}(eta) and d mu / d eta, as R's make.link() bounds them */
double glmm_linkinv(int link, double eta);
double glmm_mu_eta(int link, double eta);
/* d mu / d eta given mu = g^{-1}(eta) too (cheaper where it is mu's function) */
double glmm_mu_eta_at(int link, double eta, double mu);
/* 1: mu is inside the family's support (a step that leaves it is halved) */
int glmm_valid_mu(const glmm_family *fam, double mu);
/* whether the link alone keeps mu inside the family's support (make.link()'s
 * bounds do for logit, probit, cauchit and cloglog in (0, 1), log in (0, Inf)) */
int glmm_link_bounded(int family, int link);
double glmm_variance(const glmm_family *fam, double mu);
/* the unit deviance times the prior weight */
double glmm_dev_resid(const glmm_family *fam, double y, double mu, double wt);
/* -2 log p(y) at mu = y (the saturated model): -2 log p(y | mu) =
 * dev_resid(y, mu) + this; trials: the binomial's number of trials m (the
 * observation counts wt / m times, as in glm()'s aic) */
double glmm_saturated(const glmm_family *fam, double y, double wt, double trials);
/* 1: the family has a dispersion (Gamma, inverse Gaussian), estimated as
 * glm()'s aic() and glmer estimate it, by the deviance over the weights */
int glmm_has_dispersion(const glmm_family *fam);
/* -2 log p(y | mu) of a family with a dispersion, at dispersion dev / sum
 * wt, plus 2 for that parameter: R's Gamma()$aic and
 * inverse.gaussian()$aic, which glmer's criterion adds to |u|^2 + log|L|^2 */
double glmm_dispersion_aic(const glmm_family *fam, R_xlen_t n, const double *y, const double *mu,
                           const double *wt, double dev);

/* ---- the model -------------------------------------------------------- */

/* One model on the engine: the rows, the pattern of the conditional modes'
 * system (xu: no fixed-effect columns, beta held; xj: with X, beta and u
 * solved jointly, lme4's nAGQ = 0 stage) with their factors, and the
 * n-long state of the current iteration, all allocated once per fit. */
typedef struct {
    R_xlen_t n;
    int p, nterms, q;
    const double *X, *y, *prior, *offset;   /* offset may be NULL */
    const double *trials;        /* the binomial's trials per row (else NULL) */
    const int *const *codes;
    const double *const *Z;
    glmm_family fam;
    double sat;                  /* sum of the saturated -2 log p(y) */
    int *start, *order;          /* rows by level of the first term */
    const int *perm;             /* row i here is row perm[i] of the data */
    lmm_xprod xu, xj;            /* values in bufu, bufj */
    lmm_value_layout layu, layj;
    double *bufu, *bufj;
    lmm_factor *fau, *faj;
    lmm_accum_ws awsu, awsj;
    double *lam;                 /* each term's k x k lambda at lamoff */
    int *lamoff;
    double *eta0, *eta, *mu, *w, *z, *dev;
    double *ylogy;               /* the logit binomial's y log y + (1 - y) log(1 - y), else NULL */
    int *uoff;                   /* each term's first coordinate in u */
    double *u, *unew, *utry, *beta, *bnew, *btry, *b;
    double *bsave;               /* beta at a PIRLS run's start (its retry from u = 0) */
    double pdev, sumdev;         /* sum dev + |u|^2; sum dev */
    struct glmm_levelsum_s *ls;  /* the per-level sums' pseudo-rows (glmm_pirls.c), or NULL */
    int iter, halvings, maxit;
    double tol;
} glmm_model;

/* Gauss-Hermite nodes at most, as glmer allows */
#define GLMM_MAX_AGQ 25
/* PIRLS iterations per evaluation by default: from a warm start 2-4 are
 * typical, from u = 0 on a badly scaled start a few dozen */
#define GLMM_PIRLS_MAXIT 200

/* PIRLS outcomes */
enum { GLMM_OK, GLMM_NOT_CONVERGED, GLMM_FACTOR_FAILED, GLMM_DIVERGED };

/* The conditional modes at theta: with joint = 0 given beta (m->beta), else
 * beta solved with them.  Starts from m->u (and m->beta); the factor of the
 * last accumulation is at the returned point. */
int glmm_pirls(glmm_model *m, const double *theta, int joint);
/* The Laplace approximation of -2 log-likelihood at the point PIRLS left:
 * sum dev + saturated + |u|^2 + log|L|^2 */
double glmm_laplace(const glmm_model *m, int joint);
/* Adaptive Gauss-Hermite quadrature for one scalar term (nodes t, weights
 * wk for the standard normal, nq of them) at the point PIRLS left */
double glmm_agq(glmm_model *m, int nq, const double *t, const double *wk);
/* -2 log p(y | mu) - sum dev at the point PIRLS left: the saturated
 * constant, or for a family with a dispersion its aic less the deviance */
double glmm_density_offset(const glmm_model *m);
/* glmm_gradient.c: whether the link is canonical (binomial-logit,
 * Poisson-log: every exact gradient below needs one), whether the one
 * scalar term's closed forms apply, and the Laplace criterion's gradient
 * in lambda and beta by them at the point PIRLS left with beta held (work:
 * 2 p doubles) */
int glmm_canonical_link(const glmm_model *m);
int glmm_scalar_gradient_applies(const glmm_model *m);
void glmm_laplace_gradient(const glmm_model *m, double *glam, double *gbeta, double *work, double *du);
/* the same for adaptive Gauss-Hermite quadrature with nq nodes t and
 * weights wk (work: glmm_agq_gradient_work doubles); du (or NULL): the
 * modes' derivatives d u_g / d (lambda, beta), 1 + p per level */
void glmm_agq_gradient(const glmm_model *m, int nq, const double *t, const double *wk, double *glam,
                       double *gbeta, double *work, double *du);
size_t glmm_agq_gradient_work(const glmm_model *m, int nq);
/* The Laplace criterion's exact gradient for any terms (canonical link, no
 * sparse tail): G d/d lambda_j (k_j x k_j each, at lamoff), gbeta d/d beta;
 * 0, or 1 when it cannot be had.  Its workspace, once per fit: */
typedef struct {
    lmm_selinv_ws si;
    double *AL, *r, *v, *tv, *Gld;
    int *voff, *ti;
} glmm_grad_ws;
void glmm_model_gradient_alloc(const glmm_model *m, glmm_grad_ws *ws);
int glmm_model_gradient(glmm_model *m, glmm_grad_ws *ws, double *G, double *gbeta);
/* eta0 = offset + X beta */
void glmm_set_beta(glmm_model *m, const double *beta);
/* eta = eta0 + Z Lambda u and mu at u (lambda as last set); 0 when mu
 * leaves the family's support */
int glmm_set_point(glmm_model *m, const double *u);
/* the deviance residuals at the point set, their sum (sumdev) and
 * pdev = sumdev + |u|^2 (R_PosInf when not finite) */
double glmm_point_pdev(glmm_model *m, const double *u);
/* working weights w and response z at the point set: z = eta - offset + (y -
 * mu) / mu'(eta) with joint (beta solved), else z - X beta */
void glmm_working_values(glmm_model *m, int joint);
/* lambda of each term from theta */
void glmm_set_lambda(glmm_model *m, const double *theta);
/* the n-long and q-long state, once per fit (n, p, nterms, the patterns and
 * codes set) */
void glmm_model_alloc(glmm_model *m);

#endif
