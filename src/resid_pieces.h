/* Piece bases of residual structures (resid_pieces.c): the whitened
 * cross-products as a fixed combination of pieces formed once per fit. */
#ifndef LMMFIT_RESID_PIECES_H
#define LMMFIT_RESID_PIECES_H

#include "model.h"
#include "resid.h"

/* Rows [X y Z] (each n long, columns contiguous) with their codes, in the
 * pattern of pat. */
typedef struct {
    R_xlen_t n;
    const lmm_xprod *pat;
    const double *X, *y;
    const int *const *codes;
    const double *const *Z;
} resid_piece_data;

typedef struct {
    int K, nsize, npieces, cor_npar;
    const int *sizes;        /* the distinct correlation-group sizes */
    R_xlen_t L;              /* the value layout's length */
    double *P;               /* npieces x L: W_1..W_K, then U_{k,s} (k-major) */
    double *nrow, *ngrp;     /* rows per stratum; groups per (stratum, size) */
} resid_pieces;

/* Form the pieces when the structure has a basis (varIdent and/or compound
 * symmetry whose groups keep one stratum); returns 0 when it has none. */
int resid_pieces_build(const resid_model *rm, const resid_piece_data *d, const lmm_value_layout *lay,
                       resid_pieces *pc);
/* The cross-products at the structure's parameters into buf (L doubles);
 * returns log|S C S|, or R_PosInf when C is not positive definite. */
double resid_pieces_combine(const resid_pieces *pc, const double *rpar, double *buf);

#endif
