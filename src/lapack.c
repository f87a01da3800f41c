#include "lapack.h"
#include "lmmfit.h"

void lmm_lapack_check(int info, const char *routine, const char *what)
{
    if (info < 0)
        error(_("LAPACK routine %s was called with an invalid argument %d (a bug in lmmfit)"),
              routine, -info);
    if (info > 0)
        error(_("%s: LAPACK routine %s found the matrix not positive definite (leading minor %d)"),
              what, routine, info);
}
