/* Registration of the .Call entry points, each with its exact argument count. */
#include <R.h>
#include <Rinternals.h>
#include <R_ext/Rdynload.h>
#include "lmmfit.h"

/* The detour through void (*)(void) keeps -Wcast-function-type quiet: it is
 * the one function type GCC accepts as a generic function pointer. */
#define CALLDEF(name, fun, n) {name, (DL_FUNC) (void (*)(void)) &fun, n}

static const R_CallMethodDef call_methods[] = {
    CALLDEF("lmm_crossprod", lmm_crossprod, 6),
    CALLDEF("lmm_deviance", lmm_deviance_R, 3),
    CALLDEF("lmm_optimize", lmm_optimize_R, 4),
    CALLDEF("lmm_solution", lmm_solution, 3),
    CALLDEF("lmm_condvar", lmm_condvar, 2),
    {NULL, NULL, 0}
};

void R_init_lmmfit(DllInfo *dll)
{
    R_registerRoutines(dll, NULL, call_methods, NULL, NULL);
    R_useDynamicSymbols(dll, FALSE);
    R_forceSymbols(dll, TRUE);
}
