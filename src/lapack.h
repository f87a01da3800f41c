/* The one place lmmfit reaches BLAS and LAPACK.  USE_FC_LEN_T must come before
 * the R headers so that character arguments carry their hidden lengths (FCONE). */
#ifndef LMMFIT_LAPACK_H
#define LMMFIT_LAPACK_H

#ifndef USE_FC_LEN_T
#define USE_FC_LEN_T
#endif
#include <R.h>
#include <R_ext/BLAS.h>
#include <R_ext/Lapack.h>
#ifndef FCONE
#define FCONE
#endif

/* Turn a LAPACK info code into an error a user can act on. */
void lmm_lapack_check(int info, const char *routine, const char *what);

#endif
