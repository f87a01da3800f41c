/* The .Call entry points of lmmfit; each is registered in init.c. */
#ifndef LMMFIT_H
#define LMMFIT_H

#include <Rinternals.h>

#define _(String) (String)

SEXP lmm_crossprod(SEXP X, SEXP y, SEXP w, SEXP codes, SEXP Z, SEXP nlev);
SEXP lmm_deviance_R(SEXP xprod, SEXP theta, SEXP reml);
SEXP lmm_optimize_R(SEXP xprod, SEXP theta, SEXP reml, SEXP control);
SEXP lmm_solution(SEXP xprod, SEXP theta, SEXP reml);
SEXP lmm_condvar(SEXP xprod, SEXP theta);

/* shared by the entry points */
struct lmm_xprod_s;
void lmm_unpack_xprod(SEXP s, struct lmm_xprod_s *xp);
struct lmm_optctl_s;
void lmm_unpack_control(SEXP control, struct lmm_optctl_s *ctl);

#endif
