/* Types shared by the C core.  Nothing here knows about R's SEXPs: the entry
 * points unpack their arguments into these structs and call the typed code. */
#ifndef LMMFIT_MODEL_H
#define LMMFIT_MODEL_H

#include <stddef.h>
#include <Rinternals.h>     /* R_xlen_t */

/* The largest order of a dense block: its n^2 entries must stay addressable
 * by int arithmetic in LAPACK (46340^2 < 2^31). */
#define LMM_MAX_DENSE 46340

/* One block-diagonal stage of the random-effects factor: a term whose
 * levels are eliminated one at a time, each a dense k x k tile with a
 * sparse column of rows after the stage beside it (DESIGN.md section 7).
 * The first term is stage 0 (its values in A11/A21x); a later term is a stage
 * when every term before it is nested in it, and its values then sit in A22.
 * Nesting keeps the pattern closed: eliminating a level fills only places
 * where the rows co-occur in the data, which are stored already. */
typedef struct {
    int term, nlev, k;
    int off;             /* first rest coordinate of the stage (stage 0: -1) */
    const int *Cp;       /* nlev + 1 pointers into Ci */
    const int *Ci;       /* rest rows beside each level: increasing, whole tiles */
    R_xlen_t tiles;      /* offset of the nlev tiles in A11 (stage 0) or A22 */
    R_xlen_t coup;       /* offset of the beside-values: level g's (m_g x k)
                            column-major block at coup + Cp[g] * k */
} lmm_stage;

/* The cross-products A = [Z X y]'[Z X y] in the blocked layout of DESIGN.md.
 * Random-effect terms are ordered by decreasing number of levels.  Terms
 * 0 .. nstage-1 are block-diagonal stages; the others (the "tail") form one
 * dense block of order qd.  The rest space (q2 coordinates) holds terms
 * 1 .. nterms-1 in order: the later stages, then the tail from dstart.
 * A22 holds, for each stage s >= 1, its tiles and then its beside-values, and
 * last the tail, dense qd x qd (with one stage, A22 is the dense q2 x q2 rest).
 * The pattern (nstage, A21p/A21i, A22p/A22i) is apart from the values. */
typedef struct lmm_xprod_s {
    int nterms;          /* number of random-effect terms */
    const int *nlev;     /* levels per term */
    const int *ncol;     /* columns (k) per term */
    int nobs;            /* observations (after weights/NA handling) */
    int p;               /* fixed-effect columns */
    int px;              /* p + 1: the response is the last column of the X block */
    int q1;              /* nlev[0] * ncol[0] */
    int q2;              /* sum over terms >= 1 of nlev * ncol */
    double sumlogw;      /* sum of log prior weights */
    const double *A11;   /* nlev[0] tiles of k1 x k1, column major */
    const int *A21p;     /* nlev[0] + 1 row pointers into A21i */
    const int *A21i;     /* rest-space row indices */
    const double *A21x;  /* values: for level g a (m_g x k1) column-major block at A21p[g] * k1 */
    const double *A22;   /* the later stages and the dense tail, n22 values */
    const double *AX1;   /* px x q1 */
    const double *AX2;   /* px x q2 */
    const double *AXX;   /* px x px */
    int nstage;          /* block-diagonal stages (>= 1) */
    int dstart, qd;      /* the tail: first rest coordinate and order */
    R_xlen_t doff, n22;  /* offset of the tail in A22; length of A22 */
    const lmm_stage *stage;   /* nstage descriptors */
    /* derived at set-up: for each rest row, its term and its position in the tile */
    const int *rterm;
    const int *rpos;
    /* a sparse tail's plan kept with the cross-products (tail_plan.c), or NULL */
    const int *tailplan;
    R_xlen_t tailplan_len;
} lmm_xprod;

/* Where the numeric parts of an lmm_xprod sit in one contiguous buffer, for
 * models that re-form them (whitened residuals): A11, A21x, A22, AX1, AX2,
 * AXX at off[0..5], the total length at off[6] (crossprod.c). */
typedef struct {
    R_xlen_t off[7];
} lmm_value_layout;
void lmm_value_layout_of(const lmm_xprod *xp, lmm_value_layout *lay);
/* Point the numeric members of xp into buf (laid out as lay). */
void lmm_point_values(lmm_xprod *xp, const lmm_value_layout *lay, double *buf);
/* A copy of the cross-products list sxp (lmm_crossprod's layout) with the
 * numeric members taken from buf (laid out as lay). */
SEXP lmm_xprod_with_values(SEXP sxp, const lmm_value_layout *lay, const double *buf);

/* The plan of a sparse tail (tail.c), found once per fit. */
typedef struct lmm_tail_plan_s lmm_tail_plan;

/* Workspace and results of one evaluation of the blocked Cholesky factor. */
typedef struct {
    double *lambda;      /* per-term k x k lower triangles, packed as full k x k, at lamoff[j] */
    int *lamoff;
    double *L11;         /* nlev[0] tiles of k1 x k1 */
    double *L21x;        /* same layout as A21x */
    double *L22;         /* same layout as A22 */
    double *LX1;         /* px x q1 */
    double *LX2;         /* px x q2 */
    double *LXX;         /* px x px */
    double *work;        /* an evaluation's scratch, allocated with the factor */
    /* The symbolic part, found once per fit: for stage s and level g, where
     * each pair of its beside-rows lands when the level is eliminated.  For
     * every later-stage tile among the rows, the positions of the rows after
     * it in that tile's own beside-list; level g's run starts at
     * slot[slotoff[s] + g]. */
    int *slot;
    R_xlen_t *slotoff, *slotstart;
    /* The tail: with a plan (else NULL) it is scaled, updated and factored
     * in the plan's order and compact storage in tailbuf (tailiw: the
     * factorisation's integer scratch); else dense in L22, where Ltail
     * points. */
    const lmm_tail_plan *tail;
    double *tailbuf;
    int *tailiw;
    /* with a plan: where each stage level's tail pairs land in tailbuf
     * (ints: a plan's storage is below TAIL_SPARSE_MAX^2 values) */
    int *tailslot;
    R_xlen_t *tailslotstart;
    const double *Ltail;
    double ldL2, ldRX2, pwrss;
} lmm_factor;

/* tail.c: the plan (NULL when the tail is better factored dense), its
 * order (position -> natural coordinate) and inverse, and the factor in its
 * compact storage P (lmm_tail_nvalues doubles; entry (a, b), a >= b in the
 * plan's order, at lmm_tail_pos, -1 outside the pattern; full order: that
 * of the trailing full block):
 * - scale: P = D A D + I over the pattern (dl: lambda per natural
 *   coordinate; A the natural tail block);
 * - factor: P's Cholesky factor in place (0, or the failing column as
 *   dpotrf); work: max(qd, lmm_dense_chol_work(full order)) doubles,
 *   iwork 3 qd ints;
 * - solve_right_lt: X := X L^{-T} for the px x qd matrix X; solve_lt:
 *   x := L^{-T} x (both in natural coordinates; work: qd px and qd doubles);
 * - expand: L as a dense qd x qd lower triangle (zero above). */
const lmm_tail_plan *lmm_tail_plan_build(const lmm_xprod *xp);
const int *lmm_tail_perm(const lmm_tail_plan *pl);
const int *lmm_tail_pinv(const lmm_tail_plan *pl);
R_xlen_t lmm_tail_nvalues(const lmm_tail_plan *pl);
int lmm_tail_full_order(const lmm_tail_plan *pl);
R_xlen_t lmm_tail_pos(const lmm_tail_plan *pl, int a, int b);
void lmm_tail_scale(const lmm_tail_plan *pl, const double *A, const double *dl, double *P);
int lmm_tail_factor(const lmm_tail_plan *pl, double *P, double *work, int *iwork);
double lmm_tail_logdet(const lmm_tail_plan *pl, double *P);
void lmm_tail_solve_right_lt(const lmm_tail_plan *pl, int px, double *P, double *X, double *work);
void lmm_tail_solve_lt(const lmm_tail_plan *pl, double *P, double *x, double *work);
void lmm_tail_expand(const lmm_tail_plan *pl, double *P, double *D);

/* gradient.c: the exact gradient of the profiled deviance of a model with
 * one random-effects term, G (k x k) = d d / d lambda for any (not only
 * triangular) lambda; 0, or 1 when the model is not positive definite
 * there.  work: lmm_term_gradient_work() doubles. */
size_t lmm_term_gradient_work(const lmm_xprod *xp);
int lmm_term_gradient(const lmm_xprod *xp, const double *lam, int reml, double *G, double *work);

/* theta: lower triangles, column by column, term by term. */
int lmm_ntheta(const lmm_xprod *xp);
void lmm_theta_lower(const lmm_xprod *xp, double *lower);
void lmm_factor_alloc(const lmm_xprod *xp, lmm_factor *fa);
/* Returns 0 on success, nonzero when a Cholesky factor failed (not positive
 * definite); FACTOR_EXACT_FIT when only the last pivot failed: the response
 * is fitted exactly, pwrss = 0 and the rest of the factor is complete. */
#define FACTOR_EXACT_FIT 4
int lmm_factorize(const lmm_xprod *xp, const double *theta, lmm_factor *fa);
/* The deviance module (deviance.c): the criterion at a given sigma, sigma-hat,
 * and the criterion with sigma profiled out. */
double lmm_deviance_at_sigma(const lmm_xprod *xp, const lmm_factor *fa, int reml, double sigma);
double lmm_sigma_hat(const lmm_xprod *xp, double pwrss, int reml);
double lmm_deviance_from_factor(const lmm_xprod *xp, const lmm_factor *fa, int reml);
double lmm_deviance(const lmm_xprod *xp, const double *theta, int reml, lmm_factor *fa);
/* The same with the residual sd fixed at sigma (> 0), or profiled (sigma = 0). */
double lmm_deviance_sigma(const lmm_xprod *xp, const double *theta, int reml, double sigma,
                          lmm_factor *fa);

/* R_X = t(L_XX[1:p, 1:p]) (p x p, upper triangular, column-major). */
void lmm_rx_from_factor(const lmm_xprod *xp, const lmm_factor *fa, double *RX);

/* Conditional modes and fixed effects from a factor: beta (p), u (q1 + q2, spherical). */
void lmm_solve_coef(const lmm_xprod *xp, const lmm_factor *fa, double *beta, double *u);
/* x := (Lambda' A_ZZ Lambda + I)^{-1} x (q long) with the factor fa (no
 * sparse tail: 1 then, x untouched) */
int lmm_factor_solve(const lmm_xprod *xp, const lmm_factor *fa, double *x);

typedef struct lmm_optctl_s {
    int maxit;
    double factr;        /* L-BFGS-B relative reduction tolerance, in units of machine epsilon */
    double pgtol;
    double fdstep;       /* relative step of the finite-difference gradient */
    int forward;         /* 1: forward differences (half the evaluations, O(h) error) */
    int shift;           /* 1: measure f from its starting value, so that L-BFGS-B's
                            relative stopping rule is relative to the decrease made */
    int unit_gradient;   /* 1: scale f so that its starting gradient's largest entry is
                            at most 1: L-BFGS-B's first step, a full one to the projected
                            Cauchy point when every parameter is bounded, then stays
                            within about one unit of the start */
    int trace;
    double sigma;        /* > 0: the residual sd is known and fixed at this (meta-analysis
                            with known sampling variances: 1); 0: profiled out */
} lmm_optctl;

typedef struct lmm_optres_s {
    double fmin;
    int fncount, grcount, fail;
    int settled;         /* lmm_optimize(): 1 when the end point passed its checks (no move
                            off the boundary lowers the deviance, and the Newton polish or
                            L-BFGS-B at full precision finds no further decrease) */
    char msg[60];
} lmm_optres;

/* A function to minimise: parameters, the caller's data. */
typedef double (*lmm_objective)(const double *x, void *ex);

/* A gradient of an lmm_objective at x into g (same ex); 0, or nonzero when
 * it cannot be had there (finite differences are taken instead). */
typedef int (*lmm_gradient_fn)(const double *x, double *g, void *ex);

/* L-BFGS-B (minimize.c) with the gradient gr, or with finite differences
 * when gr is NULL; bounds may be infinite. */
void lmm_minimize(int n, double *x, const double *lower, const double *upper,
                  lmm_objective fn, lmm_gradient_fn gr, void *ex, const lmm_optctl *ctl,
                  lmm_optres *res);

/* A covariance-parameter problem: theta (the terms of xp), then nextra
 * further parameters in [extra_lower, extra_upper] (AR(1)'s phi), and the
 * objective of them all. */
typedef struct {
    const lmm_xprod *xp;
    int nextra;
    const double *extra_lower, *extra_upper;
    lmm_objective fn;
    void *ex;
    /* optionally the exact gradient: d fn / d lambda_j (k_j x k_j per
     * term, stacked) for any lambdas (not only triangular; gradient.c) and,
     * with further parameters, d fn / d extra into gextra (at those extra
     * values), else NULL */
    int (*lambda_gradient)(const double *lam, const double *extra, double *G, double *gextra, void *ex);
    /* 1: theta stays at its starting value and only the extra parameters
     * move (a model without random effects, given a placeholder term with
     * theta 0: nlme's gls) */
    int fixed_theta;
    /* 1: an objective whose evaluations cost a pass over the data (a
     * GLMM's): a singular end point is searched again from one interior
     * start (its zero diagonals set to 1) instead of three, and an
     * interior one is not searched from boundary faces */
    int local;
    /* 1: lambda_gradient also serves the loose phase of problems small
     * enough for the Newton polish (else forward differences do there) */
    int gradient_when_small;
    /* 1: lambda_gradient serves only the final Newton steps (below) */
    int gradient_newton_only;
    /* 1: a settled end point small enough for the Newton polish gets Newton
     * steps with lambda_gradient (minimize.c's lmm_gradient_newton) */
    int gradient_newton;
    /* 1: lambda_gradient replaces the Newton polish of small problems (its
     * finite-difference Hessian costs 2 n^2 evaluations): L-BFGS-B with the
     * exact gradient runs to full precision, then the final Newton steps */
    int gradient_polish;
} lmm_problem;

/* The one optimizer driver (optimizer.c): L-BFGS-B and Newton steps in
 * conditioned parameters, with the boundary's second-order check.  par
 * (theta, then the extra parameters) is the start and the result.  With grad
 * and scaled (else NULL), the derivatives at the optimum in the optimizer's
 * unit-free parameters, those pointing out of the feasible region at an
 * active bound set to 0. */
void lmm_drive(const lmm_problem *pb, double *par, const lmm_optctl *ctl, lmm_optres *res,
               double *grad, double *scaled);

/* The profiled deviance of a plain fit minimised over theta (in place; fit.c).
 * With grad and scaled (else NULL), the gradient at the optimum and the
 * gradient over the square root of the diagonal curvature (NA where that is
 * not positive), from finite differences at 2e-4 relative. */
void lmm_optimize(const lmm_xprod *xp, double *theta, int reml,
                  const lmm_optctl *ctl, lmm_optres *res, double *grad, double *scaled);
/* The gradient over the square root of the diagonal curvature (NA where that
 * is not positive): the convergence measure lme4 users know. */
void lmm_scaled_gradient(const lmm_xprod *xp, const double *theta, int reml,
                         const double *grad, lmm_factor *fa, double *scaled);
/* Finite-difference gradient of the profiled deviance (one-sided at active bounds). */
void lmm_gradient(const lmm_xprod *xp, const double *theta, int reml, double h,
                  lmm_factor *fa, double *grad);

#endif
