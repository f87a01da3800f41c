/* The plan of a sparse tail, shared by its symbolic part (tail_plan.c) and
 * its numeric part (tail.c); the rest of the core sees it through model.h. */
#ifndef LMMFIT_TAIL_H
#define LMMFIT_TAIL_H

#include <Rinternals.h>

struct lmm_tail_plan_s {
    int qd;
    const int *perm;        /* permuted position -> natural tail coordinate */
    const int *pinv;        /* natural -> permuted */
    const int *colp, *rowi; /* rows below the diagonal of each permuted column, increasing */
    int from, nt;           /* the trailing full block: its first column and order */
    const int *nlow;        /* rows of column j (< from) above the full block */
    R_xlen_t nsparse;       /* values of the columns before the full block */
};

#endif
