/* Residual variance and correlation structures (DESIGN.md section 10): the
 * component protocol, as nlme splits a model into pdMat / corStruct /
 * varFunc.  Nothing here knows about R.
 *
 * The residual covariance of the observations is sigma^2 S C S: S diagonal
 * (the variance functions' standard-deviation multipliers s_t > 0, their
 * product when several combine) and C block diagonal over the groups of the
 * correlation structure (C_g, unit diagonal).  Whitening a group's rows of
 * [Z X y] by C_g^{-1/2} S_g^{-1} turns the model into an ordinary linear
 * mixed model; its -2 log-likelihood is that of the whitened model plus
 *     log|S C S| = sum_t 2 log s_t + sum_g log|C_g|,
 * which the deviance module takes as a sum of log weights (-log|S C S|).
 *
 * A component is a kind (its functions) and its data.  A correlation kind
 * whitens one group's block of rows in place and returns log|C_g|; a
 * variance kind gives log s_t for every row.  Adding a structure is one
 * table entry in resid_cor.c or resid_var.c. */
#ifndef LMMFIT_RESID_H
#define LMMFIT_RESID_H

#include <Rinternals.h>     /* R_xlen_t */

/* What a component reads: per-row covariates (times, coordinates, a
 * variance covariate) and strata, in the data's row order. */
typedef struct {
    int kind;            /* index into the kind table of its family */
    int npar;            /* optimizer parameters */
    R_xlen_t n;          /* rows of the data */
    const double *x;     /* n x ncoord covariate values (times; coordinates), or NULL */
    int ncoord;
    const int *strata;   /* 1-based stratum per row, or NULL (one stratum) */
    int nstrata;
    int flag;            /* correlation: 1 with a nugget */
    int mmax;            /* correlation: the largest group */
    const double *logx;  /* variance: log|x| formed once (the power kinds), or NULL */
    int p, q;            /* ARMA: the autoregressive and moving-average orders */
    int span;            /* ARMA: the largest time difference within a group;
                          * general correlation: the number of positions */
} resid_comp;

/* The correlation kinds' codes: their order in resid_cor_kinds, as
 * R/resid-struct.R's RESID_COR_KINDS. */
enum {
    RESID_COR_AR1, RESID_COR_CAR1, RESID_COR_CS, RESID_COR_EXP, RESID_COR_GAUS, RESID_COR_SPHER,
    RESID_COR_ARMA, RESID_COR_SYMM
};

/* ARMA: the largest lag within a group (its table of autocorrelations) and
 * the orders p and q (its (p+1)-square system); corSymm: the positions T (T(T-1)/2 parameters; R/resid-components.R
 * refuses more with the same limit).  Integer times stay within 2^52, where
 * their differences are exact. */
#define RESID_ARMA_MAX_LAG 1000000
#define RESID_ARMA_MAX_ORDER 100
#define RESID_SYMM_MAX_T 20
#define RESID_MAX_INTEGER_TIME 4503599627370496.0

/* Correlation kinds.  whiten: B (m x nc, column-major, leading dimension m)
 * holds the group's rows in time order (rows[i]: the data row of block row
 * i); replace B by C_g^{-1/2} B for some square root (any W with W'W =
 * C_g^{-1}) and return log|C_g|, or R_PosInf when C_g is not positive
 * definite at par.  work: mmax * mmax doubles when the kind is dense (C_g
 * and its factor), then scratch(c) more when the kind has scratch; else
 * unused. */
typedef struct {
    const char *name;
    int dense;           /* 1: whiten and color need their mmax * mmax work */
    /* doubles of scratch beyond the dense part (what forming C_g takes:
     * ARMA's autocorrelations, corSymm's factor), or NULL for none */
    size_t (*scratch)(const resid_comp *c);
    double (*whiten)(const resid_comp *c, const double *par, const int *rows, int m,
                     double *B, int nc, double *work);
    /* multiply B by the square root itself, C_g^{1/2} B with the same
     * factor (simulating correlated errors from iid ones) */
    double (*color)(const resid_comp *c, const double *par, const int *rows, int m,
                    double *B, int nc, double *work);
    void (*bounds)(const resid_comp *c, double *lower, double *upper);
} resid_cor_kind;

/* Variance kinds: log s_t for the n rows into ls (added to what is there). */
typedef struct {
    const char *name;
    void (*logsd)(const resid_comp *c, const double *par, R_xlen_t n, double *ls);
    void (*bounds)(const resid_comp *c, double *lower, double *upper);
} resid_var_kind;

extern const resid_cor_kind resid_cor_kinds[];
extern const int resid_ncor_kinds;
extern const resid_var_kind resid_var_kinds[];
extern const int resid_nvar_kinds;

/* A whole structure: at most one correlation component (its groups as
 * runs of order[gstart[g] .. gstart[g+1]), rows in time order) and any
 * number of variance components.  Parameters: the correlation's first,
 * then each variance component's, in order. */
typedef struct {
    R_xlen_t n;
    const resid_comp *cor;          /* or NULL */
    const int *order, *gstart;      /* 0-based rows; ngroups + 1 pointers */
    int ngroups, mmax;
    const resid_comp *var;          /* nvar components */
    int nvar;
    int npar;
} resid_model;

/* The correlation kinds' scratch: mmax^2 doubles for a dense kind, plus its
 * kind's scratch(); at least 1. */
size_t resid_work_size(const resid_model *rm);
/* Bounds of all the parameters. */
void resid_bounds(const resid_model *rm, double *lower, double *upper);
/* log s_t of every row (n doubles). */
void resid_logsd(const resid_model *rm, const double *par, double *ls);
/* Whiten the columns cols[0..nc) (each n long, in data order) by
 * (S C S)^{-1/2}: divide by s_t, then each group by C_g^{-1/2}; from src (n
 * x nc, contiguous) when given, else in place.  Returns
 * log|S C S|, or R_PosInf when C is not positive definite at par.
 * ls: n doubles of scratch (log s_t, then the row factors); blk: mmax * nc doubles; work:
 * resid_work_size() doubles.  With color = 1 the inverse map: multiply by
 * (S C S)^{1/2}. */
double resid_transform(const resid_model *rm, const double *par, const double *src, double *const *cols,
                       int nc, double *ls, double *blk, double *work, int color);

#endif
