/* The .Call entry points of lmmfit; each is registered in init.c. */
#ifndef LMMFIT_H
#define LMMFIT_H

#include <Rinternals.h>

#define _(String) (String)

SEXP lmm_crossprod(SEXP X, SEXP y, SEXP w, SEXP codes, SEXP Z, SEXP nlev,
                   SEXP xshift, SEXP b0, SEXP max_stages);
SEXP lmm_x_rfactor(SEXP X);
/* checks.c: data scans */
SEXP lmm_all_finite(SEXP x);
SEXP lmm_levels_used(SEXP f);
SEXP lmm_column_scales(SEXP X);
SEXP lmm_deviance_R(SEXP xprod, SEXP theta, SEXP reml);
SEXP lmm_exact_gradient(SEXP xprod, SEXP theta, SEXP reml, SEXP selected, SEXP sigma);
SEXP lmm_optimize_R(SEXP xprod, SEXP theta, SEXP reml, SEXP control);
/* theta.c */
SEXP lmm_theta_transform(SEXP theta, SEXP ncol, SEXP R, SEXP to_space);
SEXP lmm_solution(SEXP xprod, SEXP theta, SEXP reml, SEXP sigma);
SEXP lmm_condvar(SEXP xprod, SEXP theta);
/* tail_plan.c */
SEXP lmm_tail_plan_R(SEXP xprod);
/* residual AR(1) correlation (ar1.c) */
SEXP lmm_ar1_pieces(SEXP X, SEXP y, SEXP codes, SEXP Z, SEXP xprod, SEXP prev, SEXP gap);
SEXP lmm_ar1_xprod(SEXP xprod, SEXP pieces, SEXP gaps, SEXP npairs, SEXP phi);
SEXP lmm_ar1_optimize(SEXP xprod, SEXP pieces, SEXP gaps, SEXP npairs, SEXP par,
                      SEXP reml, SEXP control, SEXP phimax);
/* residual variance and correlation structures (resid_fit.c) */
SEXP lmm_resid_xprod(SEXP xprod, SEXP X, SEXP y, SEXP codes, SEXP Z, SEXP spec, SEXP par);
SEXP lmm_resid_optimize(SEXP xprod, SEXP X, SEXP y, SEXP codes, SEXP Z, SEXP spec, SEXP par,
                        SEXP reml, SEXP control);
SEXP lmm_resid_transform(SEXP spec, SEXP par, SEXP M, SEXP color);
/* generalized linear mixed models (glmm_fit.c) */
SEXP lmm_glmm_eval(SEXP model, SEXP theta, SEXP beta, SEXP u0, SEXP nagq, SEXP nodes);
SEXP lmm_glmm_optimize(SEXP model, SEXP theta, SEXP beta, SEXP nagq, SEXP nodes, SEXP control);
/* bootstrap.c */
SEXP lmm_boot_run(SEXP spec, SEXP Y, SEXP nsim, SEXP use_u, SEXP reml, SEXP control);
SEXP lmm_boot_simulate(SEXP spec, SEXP nsim, SEXP use_u);
SEXP lmm_boot_skip(SEXP count);
SEXP lmm_refit(SEXP spec, SEXP y, SEXP theta0, SEXP reml, SEXP control);
SEXP lmm_wb(SEXP x, SEXP g, SEXP ngroups);
/* ddf.c, profile.c */
SEXP lmm_vcov_dev(SEXP xprod, SEXP varpar, SEXP reml);
SEXP lmm_ddf_derivs(SEXP xprod, SEXP varpar, SEXP reml, SEXP rel, SEXP hessian);
SEXP lmm_profile_vc(SEXP xprod, SEXP which, SEXP value, SEXP start, SEXP control);
SEXP lmm_sdcor_deviance(SEXP xprod, SEXP par);
SEXP lmm_profile_beta(SEXP xprod, SEXP j, SEXP value, SEXP theta, SEXP control);
/* chol.c (test hook of the blocked Cholesky) */
SEXP lmm_chol_R(SEXP A);
SEXP lmm_dense_chol_lapack(SEXP use);

/* shared by the entry points */
/* checks.c: length-one arguments of the right type, or an R error */
int lmm_arg_flag(SEXP s, const char *what);
int lmm_arg_int(SEXP s, const char *what, int lo, int hi);
double lmm_arg_real(SEXP s, const char *what);
const double *lmm_arg_finite(SEXP s, R_xlen_t len, const char *what);
struct lmm_xprod_s;
void lmm_unpack_xprod(SEXP s, struct lmm_xprod_s *xp);
struct lmm_optctl_s;
void lmm_unpack_control(SEXP control, struct lmm_optctl_s *ctl);
/* fit.c: an optimisation's result into the first 8 slots of ans
 * (par, deviance, feval, convergence, message, gradient, scaled_gradient,
 * settled), as the driver's entry points return it */
struct lmm_optres_s;
void lmm_fill_drive_result(SEXP ans, SEXP par, const struct lmm_optres_s *res, int feval, SEXP grad,
                           SEXP scaled);
/* lmm_accumulate()'s scratch, allocated once for repeated passes (NULL: per call) */
typedef struct lmm_accum_ws_s {
    double *xr;
    int *roff, *pos, *hcur;
} lmm_accum_ws;
/* crossprod.c: add the cross-products of the rows order[start[g] .. start[g+1])
 * (for each level g of the first term) into the blocks, in the pattern of pat;
 * codes: R's 1-based factor codes */
void lmm_accumulate(R_xlen_t n, int p, const double *X, const double *y, const double *w,
                    const double *xshift, const double *b0,
                    const int *const *codes, const double *const *Z,
                    const struct lmm_xprod_s *pat, const int *start, const int *order,
                    double *A11, double *A21x, double *A22, double *AX1, double *AX2,
                    double *AXX, const struct lmm_accum_ws_s *ws);
/* the rows of each level g of a term (R's 1-based codes): order[start[g] .. start[g+1]) */
void lmm_order_by_level(R_xlen_t n, const int *code, int nlev0, int *start, int *order);
void lmm_accum_ws_alloc(const struct lmm_xprod_s *pat, int p, lmm_accum_ws *ws);

#endif
