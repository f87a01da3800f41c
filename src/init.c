/* Registration of the .Call entry points, each with its exact argument count. */
#include <R.h>
#include <Rinternals.h>
#include <R_ext/Rdynload.h>
#include "lmmfit.h"

/* The detour through void (*)(void) keeps -Wcast-function-type quiet: it is
 * the one function type GCC accepts as a generic function pointer. */
#define CALLDEF(name, fun, n) {name, (DL_FUNC) (void (*)(void)) &fun, n}

static const R_CallMethodDef call_methods[] = {
    CALLDEF("lmm_crossprod", lmm_crossprod, 9),
    CALLDEF("lmm_x_rfactor", lmm_x_rfactor, 1),
    CALLDEF("lmm_all_finite", lmm_all_finite, 1),
    CALLDEF("lmm_levels_used", lmm_levels_used, 1),
    CALLDEF("lmm_column_scales", lmm_column_scales, 1),
    CALLDEF("lmm_deviance", lmm_deviance_R, 3),
    CALLDEF("lmm_exact_gradient", lmm_exact_gradient, 5),
    CALLDEF("lmm_optimize", lmm_optimize_R, 4),
    CALLDEF("lmm_theta_transform", lmm_theta_transform, 4),
    CALLDEF("lmm_solution", lmm_solution, 4),
    CALLDEF("lmm_condvar", lmm_condvar, 2),
    CALLDEF("lmm_tail_plan", lmm_tail_plan_R, 1),
    CALLDEF("lmm_ar1_pieces", lmm_ar1_pieces, 7),
    CALLDEF("lmm_ar1_xprod", lmm_ar1_xprod, 5),
    CALLDEF("lmm_ar1_optimize", lmm_ar1_optimize, 8),
    CALLDEF("lmm_resid_xprod", lmm_resid_xprod, 7),
    CALLDEF("lmm_resid_optimize", lmm_resid_optimize, 9),
    CALLDEF("lmm_resid_transform", lmm_resid_transform, 4),
    CALLDEF("lmm_glmm_eval", lmm_glmm_eval, 6),
    CALLDEF("lmm_glmm_optimize", lmm_glmm_optimize, 6),
    CALLDEF("lmm_boot_run", lmm_boot_run, 6),
    CALLDEF("lmm_boot_simulate", lmm_boot_simulate, 3),
    CALLDEF("lmm_boot_skip", lmm_boot_skip, 1),
    CALLDEF("lmm_refit", lmm_refit, 5),
    CALLDEF("lmm_wb", lmm_wb, 3),
    CALLDEF("lmm_vcov_dev", lmm_vcov_dev, 3),
    CALLDEF("lmm_ddf_derivs", lmm_ddf_derivs, 5),
    CALLDEF("lmm_profile_vc", lmm_profile_vc, 5),
    CALLDEF("lmm_sdcor_deviance", lmm_sdcor_deviance, 2),
    CALLDEF("lmm_profile_beta", lmm_profile_beta, 5),
    CALLDEF("lmm_chol", lmm_chol_R, 1),
    CALLDEF("lmm_dense_chol_lapack", lmm_dense_chol_lapack, 1),
    {NULL, NULL, 0}
};

void R_init_lmmfit(DllInfo *dll)
{
    R_registerRoutines(dll, NULL, call_methods, NULL, NULL);
    R_useDynamicSymbols(dll, FALSE);
    R_forceSymbols(dll, TRUE);
}
