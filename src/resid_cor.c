/* Residual correlation components (resid.h): nlme's corAR1, corCAR1,
 * corCompSymm, corExp, corGaus, corSpher, corARMA and corSymm.
 *
 * Serial structures (AR(1) on integer times with gaps, continuous-time AR(1)
 * on real times) have a bidiagonal inverse square root: with r_k =
 * phi^(t_k - t_{k-1}), e_1 ~ N(0, 1), e_k | e_{k-1} ~ N(r_k e_{k-1}, 1 - r_k^2),
 *     w_1 = b_1,   w_k = (b_k - r_k b_{k-1}) / sqrt(1 - r_k^2),
 *     log|C_g| = sum_k log(1 - r_k^2).
 * Compound symmetry C = (1 - rho) I + rho 11' = Q D Q' in the orthonormal
 * Helmert basis (q_1 = 1 / sqrt(m); q_k, k >= 2, -1 on the k - 1 rows
 * before k and k - 1 on row k, over sqrt(k (k - 1))), D = diag(1 + (m - 1)
 * rho, 1 - rho, ..., 1 - rho).  The root W = D^{-1/2} Q' (W'W = C^{-1}) is
 * the one nlme's normalized residuals use, and costs O(m):
 *     w_1 = (b_1 + ... + b_m) / sqrt(m (1 + (m - 1) rho)),
 *     w_k = ((k - 1) b_k - (b_1 + ... + b_{k-1})) / sqrt(k (k - 1) (1 - rho)),
 *     log|C| = (m - 1) log(1 - rho) + log(1 + (m - 1) rho).
 * Spatial structures, ARMA and the general correlation have no such form:
 * C_g (unit diagonal; spatial: (1 - nugget) f(d / range) off it; ARMA: the
 * autocorrelation at the time difference; general: the entries of a T x T
 * correlation matrix at the group's positions) is formed and factored,
 * C_g = L L', and B := L^{-1} B. */
#include <math.h>
#include <stdlib.h>
#include "lapack.h"
#include "kernels.h"
#include "resid.h"
#include "lmmfit.h"

/* |phi| and rho stay this far inside 1: at 1 the correlation matrix is
 * singular and the log-determinant infinite. */
#define RESID_COR_MARGIN 1e-6
/* log(range) within +-RANGE_LOG_MAX: a range e^30 times the coordinates'
 * unit is a constant correlation, e^-30 none; beyond, the criterion is flat. */
#define RANGE_LOG_MAX 30.0

/* ---- serial: AR(1) with gaps, CAR(1) ------------------------------------- */

/* The correlation of two observations d apart: phi^d for AR(1) (integer
 * d); for CAR(1), whose phi near 0 enters as phi^0.05 and more (steep where
 * the optimum often is), parametrised by kappa = log(-log phi), the log of
 * the decay rate: exp(-exp(kappa) d). */
static double ar1_lag(double phi, double d) { return pow(phi, d); }
static double car1_lag(double kappa, double d) { return exp(-exp(kappa) * d); }

static double serial_whiten(const resid_comp *c, double (*lag)(double, double), double par,
                            const int *rows, int m, double *B, int nc)
{
    double ld = 0;
    for (int k = m - 1; k >= 1; k--) {
        double r = lag(par, c->x[rows[k]] - c->x[rows[k - 1]]), s = 1.0 - r * r;
        if (!(s > 0)) return R_PosInf;
        double f = 1.0 / sqrt(s);
        for (int j = 0; j < nc; j++) {
            double *b = B + (size_t) j * m;
            b[k] = (b[k] - r * b[k - 1]) * f;
        }
        ld += log(s);
    }
    return ld;
}

static double serial_color(const resid_comp *c, double (*lag)(double, double), double par,
                           const int *rows, int m, double *B, int nc)
{
    double ld = 0;
    for (int k = 1; k < m; k++) {
        double r = lag(par, c->x[rows[k]] - c->x[rows[k - 1]]), s = 1.0 - r * r;
        if (!(s > 0)) return R_PosInf;
        double f = sqrt(s);
        for (int j = 0; j < nc; j++) {
            double *b = B + (size_t) j * m;
            b[k] = r * b[k - 1] + f * b[k];
        }
        ld += log(s);
    }
    return ld;
}

#define SERIAL_KIND(name, lag)                                                             \
    static double name##_whiten(const resid_comp *c, const double *par, const int *rows,    \
                                int m, double *B, int nc, double *work)                     \
    { (void) work; return serial_whiten(c, lag, par[0], rows, m, B, nc); }                  \
    static double name##_color(const resid_comp *c, const double *par, const int *rows,     \
                               int m, double *B, int nc, double *work)                      \
    { (void) work; return serial_color(c, lag, par[0], rows, m, B, nc); }

SERIAL_KIND(ar1, ar1_lag)
SERIAL_KIND(car1, car1_lag)

static void ar1_bounds(const resid_comp *c, double *lower, double *upper)
{
    (void) c;
    lower[0] = -(1 - RESID_COR_MARGIN);
    upper[0] = 1 - RESID_COR_MARGIN;
}

/* kappa: phi from 1 - 1e-6 (a decay rate of 1e-6 per unit of time) to a
 * rate of e^CAR1_LOG_RATE_MAX, no correlation at any observed gap. */
#define CAR1_LOG_RATE_MAX 20.0
static void car1_bounds(const resid_comp *c, double *lower, double *upper)
{
    (void) c;
    lower[0] = log(-log1p(-RESID_COR_MARGIN));
    upper[0] = CAR1_LOG_RATE_MAX;
}

/* ---- compound symmetry --------------------------------------------------- */

static double cs_logdet(double rho, int m, double *e1, double *em)
{
    *e1 = 1.0 - rho;                 /* eigenvalue on 1's complement */
    *em = 1.0 + (m - 1) * rho;       /* eigenvalue on 1 */
    if (!(*e1 > 0) || !(*em > 0)) return R_PosInf;
    return (m - 1) * log(*e1) + log(*em);
}

/* whiten: B := W B; color: B := W^{-1} B = Q D^{1/2} B, row j of which is
 *     sqrt(em / m) b_1 + sqrt(e1) ((j - 1) b_j / sqrt(j (j - 1)) - sum_{k > j} b_k / sqrt(k (k - 1)))
 * (1-based; the first term of the bracket absent for j = 1). */
static double cs_apply(const double *par, int m, double *B, int nc, int color)
{
    double e1, em, ld = cs_logdet(par[0], m, &e1, &em);
    if (!R_FINITE(ld)) return ld;
    double s1 = sqrt(e1), sm = sqrt(em);
    for (int j = 0; j < nc; j++) {
        double *b = B + (size_t) j * m;
        if (!color) {
            double total = 0, S = 0;
            for (int k = 0; k < m; k++) total += b[k];
            for (int k = 0; k < m; k++) {    /* 0-based k: Helmert row k + 1 */
                double orig = b[k];
                b[k] = k == 0 ? total / (sqrt((double) m) * sm) : (k * orig - S) / (sqrt((double) k * (k + 1)) * s1);
                S += orig;
            }
        } else {
            double base = b[0] * sm / sqrt((double) m), T = 0;
            for (int k = m - 1; k >= 0; k--) {
                double w = b[k], h = k > 0 ? 1.0 / sqrt((double) k * (k + 1)) : 0.0;
                b[k] = base + s1 * (k * w * h - T);
                T += w * h;
            }
        }
    }
    return ld;
}

static double cs_whiten(const resid_comp *c, const double *par, const int *rows, int m,
                        double *B, int nc, double *work)
{
    (void) c; (void) rows; (void) work;
    return cs_apply(par, m, B, nc, 0);
}

static double cs_color(const resid_comp *c, const double *par, const int *rows, int m,
                       double *B, int nc, double *work)
{
    (void) c; (void) rows; (void) work;
    return cs_apply(par, m, B, nc, 1);
}

/* rho > -1 / (m - 1) for the largest group m. */
static void cs_bounds(const resid_comp *c, double *lower, double *upper)
{
    lower[0] = c->mmax > 1 ? -1.0 / (c->mmax - 1) + RESID_COR_MARGIN : -(1 - RESID_COR_MARGIN);
    upper[0] = 1 - RESID_COR_MARGIN;
}

/* ---- dense kinds: C_g formed, factored C_g = L L', B := L^{-1} B ----------- */

/* A dense kind's C_g: the strict lower triangle of C (m x m, leading
 * dimension m; the unit diagonal is set by the caller) at par, with its
 * scratch (the kind's scratch() doubles).  Returns 0, or -1 when par gives
 * no correlation matrix. */
typedef int (*dense_fill)(const resid_comp *c, const double *par, const int *rows, int m,
                          double *C, double *scratch);

/* Groups up to this size are factored and solved by the plain loops of
 * kernels.h: the reference dpotrf/dtrsm recurse into dsyrk/dtrsm calls
 * whose overhead is most of the work at these sizes (a spatial fit of 625
 * sites of 16 points spent 40% of its time there).  lmm_small_chol zeroes
 * the strict upper triangle, which the fills do not read. */
#define DENSE_SMALL_M 64

/* B := L^{-1} B, or with color = 1 B := L B (L lower, m x m; B m x nc). */
static void lower_apply(int m, const double *L, double *B, int nc, int color)
{
    for (int j = 0; j < nc; j++) {
        double *b = B + (size_t) j * m;
        if (color) {
            for (int r = m - 1; r >= 0; r--) {
                double s = 0;
                for (int k = 0; k <= r; k++) s += L[r + (size_t) k * m] * b[k];
                b[r] = s;
            }
        } else {
            for (int r = 0; r < m; r++) {
                double s = b[r];
                for (int k = 0; k < r; k++) s -= L[r + (size_t) k * m] * b[k];
                b[r] = s / L[r + (size_t) r * m];
            }
        }
    }
}

/* The lower Cholesky factor of C_g in work (m x m); log|C_g| or R_PosInf. */
static double dense_factor(const resid_comp *c, const double *par, const int *rows, int m,
                           double *work, dense_fill fill)
{
    for (int a = 0; a < m; a++) work[a + (size_t) a * m] = 1;
    if (fill(c, par, rows, m, work, work + (size_t) c->mmax * c->mmax)) return R_PosInf;
    if (m <= DENSE_SMALL_M) {
        /* (fails, as dpotrf, only at a pivot <= 0) */
        if (lmm_small_chol(m, work, 0, 0.0)) return R_PosInf;
    } else {
        int info = 0;
        F77_CALL(dpotrf)("L", &m, work, &m, &info FCONE);
        if (info > 0) return R_PosInf;
        lmm_lapack_check(info, "dpotrf", "a residual correlation matrix");
    }
    double ld = 0;
    for (int a = 0; a < m; a++) ld += 2 * log(work[a + (size_t) a * m]);
    return ld;
}

static double dense_apply(const resid_comp *c, const double *par, const int *rows, int m,
                          double *B, int nc, double *work, dense_fill fill, int color)
{
    double ld = dense_factor(c, par, rows, m, work, fill);
    if (!R_FINITE(ld)) return ld;
    if (m <= DENSE_SMALL_M) {
        lower_apply(m, work, B, nc, color);
        return ld;
    }
    double one = 1;
    if (color) F77_CALL(dtrmm)("L", "L", "N", "N", &m, &nc, &one, work, &m, B, &m FCONE FCONE FCONE FCONE);
    else F77_CALL(dtrsm)("L", "L", "N", "N", &m, &nc, &one, work, &m, B, &m FCONE FCONE FCONE FCONE);
    return ld;
}

#define DENSE_KIND(name)                                                                   \
    static double name##_whiten(const resid_comp *c, const double *par, const int *rows,    \
                                int m, double *B, int nc, double *work)                     \
    { return dense_apply(c, par, rows, m, B, nc, work, name##_fill, 0); }                   \
    static double name##_color(const resid_comp *c, const double *par, const int *rows,     \
                               int m, double *B, int nc, double *work)                      \
    { return dense_apply(c, par, rows, m, B, nc, work, name##_fill, 1); }

/* ---- spatial: exponential, Gaussian, spherical ---------------------------- */

static double dist_between(const resid_comp *c, int a, int b)
{
    double s = 0;
    for (int j = 0; j < c->ncoord; j++) {
        double d = c->x[a + j * c->n] - c->x[b + j * c->n];
        s += d * d;
    }
    return sqrt(s);
}

static double f_exp(double u) { return exp(-u); }
static double f_gaus(double u) { return exp(-u * u); }
static double f_spher(double u) { return u < 1 ? 1 - 1.5 * u + 0.5 * u * u * u : 0; }

/* (1 - nugget) f(d / range) off the diagonal. */
static int spatial_fill(const resid_comp *c, const double *par, const int *rows, int m, double *C,
                        double (*f)(double))
{
    double range = exp(par[0]), scale = c->flag ? 1 - par[1] : 1;
    for (int a = 0; a < m; a++)
        for (int b = a + 1; b < m; b++)
            C[b + (size_t) a * m] = scale * f(dist_between(c, rows[a], rows[b]) / range);
    return 0;
}

#define SPATIAL_KIND(name, f)                                                              \
    static int name##_fill(const resid_comp *c, const double *par, const int *rows, int m,  \
                           double *C, double *scratch)                                      \
    { (void) scratch; return spatial_fill(c, par, rows, m, C, f); }                         \
    DENSE_KIND(name)

SPATIAL_KIND(exp, f_exp)
SPATIAL_KIND(gaus, f_gaus)
SPATIAL_KIND(spher, f_spher)

/* log(range), then the nugget in [0, 1). */
static void spatial_bounds(const resid_comp *c, double *lower, double *upper)
{
    lower[0] = -RANGE_LOG_MAX;
    upper[0] = RANGE_LOG_MAX;
    if (c->flag) {
        lower[1] = 0;
        upper[1] = 1 - RESID_COR_MARGIN;
    }
}

/* ---- ARMA(p, q) on integer times ------------------------------------------ */

/* x_t = sum_i phi_i x_{t-i} + a_t + sum_j theta_j a_{t-j} (nlme's and
 * stats::arima's signs), stationary and invertible: both polynomials
 * 1 - sum phi_i z^i and 1 + sum theta_j z^j without zeros in |z| <= 1.  The
 * parameters are partial autocorrelations in (-1, 1), which map one to one
 * onto the stationary polynomials (the Durbin-Levinson step below adds the
 * order k coefficient r_k); the MA part's, with z -> -z (the zeros' moduli
 * kept), gives theta_j = (-1)^(j+1) b_j.  At first order the parameter is
 * the coefficient itself: ARMA(1, 0) is corAR1's phi. */

/* In place, r_1..r_k (partial autocorrelations) -> a_1..a_k of the
 * stationary 1 - sum a_i z^i: a^(j+1)_i = a^(j)_i - r_{j+1} a^(j)_{j+1-i}. */
static void pacf_to_coef(int k, double *a)
{
    for (int j = 1; j < k; j++) {
        double r = a[j];
        for (int i = 0, l = j - 1; i <= l; i++, l--) {
            double ai = a[i], al = a[l];
            a[i] = ai - r * al;
            if (l != i) a[l] = al - r * ai;
        }
    }
}

/* phi (p) and theta (q + 1, theta_0 = 1) from the parameters. */
static void arma_coef(const resid_comp *c, const double *par, double *phi, double *theta)
{
    for (int i = 0; i < c->p; i++) phi[i] = par[i];
    pacf_to_coef(c->p, phi);
    theta[0] = 1;
    for (int j = 0; j < c->q; j++) theta[j + 1] = par[c->p + j];
    pacf_to_coef(c->q, theta + 1);
    for (int j = 2; j <= c->q; j += 2) theta[j] = -theta[j];    /* (-1)^(j+1) */
}

/* Solve the n x n system A x = b (A column-major, overwritten; b := x) by
 * Gaussian elimination with partial pivoting; -1 when A is singular. */
static int solve_small(int n, double *A, double *b)
{
    for (int k = 0; k < n; k++) {
        int piv = k;
        for (int i = k + 1; i < n; i++)
            if (fabs(A[i + (size_t) k * n]) > fabs(A[piv + (size_t) k * n])) piv = i;
        if (!(fabs(A[piv + (size_t) k * n]) > 0)) return -1;
        if (piv != k) {
            for (int j = k; j < n; j++) {
                double t = A[k + (size_t) j * n];
                A[k + (size_t) j * n] = A[piv + (size_t) j * n];
                A[piv + (size_t) j * n] = t;
            }
            double t = b[k]; b[k] = b[piv]; b[piv] = t;
        }
        for (int i = k + 1; i < n; i++) {
            double f = A[i + (size_t) k * n] / A[k + (size_t) k * n];
            for (int j = k + 1; j < n; j++) A[i + (size_t) j * n] -= f * A[k + (size_t) j * n];
            b[i] -= f * b[k];
        }
    }
    for (int k = n - 1; k >= 0; k--) {
        for (int j = k + 1; j < n; j++) b[k] -= A[k + (size_t) j * n] * b[j];
        b[k] /= A[k + (size_t) k * n];
    }
    return 0;
}

/* The autocovariances gamma_0..gamma_L (L >= p) with a unit innovation
 * variance.  With x_t = sum_k psi_k a_{t-k} (psi_0 = 1, psi_k = theta_k +
 * sum_{i <= min(k, p)} phi_i psi_{k-i}), multiplying the model by x_{t-k}
 * and taking expectations,
 *     gamma_k - sum_i phi_i gamma_{|k-i|} = c_k = sum_{j=k}^{q} theta_j psi_{j-k},
 * c_k = 0 beyond q: for k = 0..p a (p+1)-square system in gamma_0..gamma_p,
 * beyond p the recursion gamma_k = sum_i phi_i gamma_{k-i} + c_k.
 * scratch: (q + 1) psi, (p + 1)^2 the system.  -1 when it has no solution. */
static int arma_autocov(int p, int q, const double *phi, const double *theta, int L,
                        double *gamma, double *scratch)
{
    double *psi = scratch, *A = scratch + q + 1;
    for (int k = 0; k <= q; k++) {
        psi[k] = theta[k];
        for (int i = 1; i <= p && i <= k; i++) psi[k] += phi[i - 1] * psi[k - i];
    }
    for (int k = 0; k <= L; k++) {
        gamma[k] = 0;
        for (int j = k; j <= q; j++) gamma[k] += theta[j] * psi[j - k];
    }
    int n = p + 1;
    for (size_t i = 0; i < (size_t) n * n; i++) A[i] = 0;
    for (int k = 0; k <= p; k++) {
        A[k + (size_t) k * n] += 1;
        for (int i = 1; i <= p; i++) A[k + (size_t) abs(k - i) * n] -= phi[i - 1];
    }
    if (solve_small(n, A, gamma)) return -1;
    for (int k = p + 1; k <= L; k++)
        for (int i = 1; i <= p; i++) gamma[k] += phi[i - 1] * gamma[k - i];
    return 0;
}

/* The scratch: phi, theta, the autocorrelations up to the largest lag (at
 * least p), and arma_autocov's. */
static size_t arma_scratch(const resid_comp *c)
{
    size_t p = (size_t) c->p, q = (size_t) c->q, L = (size_t) (c->span > c->p ? c->span : c->p);
    return p + (q + 1) + (L + 1) + (q + 1) + (p + 1) * (p + 1);
}

/* Block rows are in increasing integer time (checked when unpacked): the
 * lag of rows a > b is t_a - t_b, in 1..span. */
static int arma_fill(const resid_comp *c, const double *par, const int *rows, int m, double *C,
                     double *scratch)
{
    int p = c->p, q = c->q, L = (int) (c->x[rows[m - 1]] - c->x[rows[0]]);
    if (L < p) L = p;
    double *phi = scratch, *theta = phi + p, *rho = theta + q + 1;
    arma_coef(c, par, phi, theta);
    if (arma_autocov(p, q, phi, theta, L, rho, rho + L + 1)) return -1;
    if (!(rho[0] > 0) || !R_FINITE(rho[0])) return -1;
    for (int k = L; k >= 0; k--) rho[k] /= rho[0];
    for (int b = 0; b < m; b++)
        for (int a = b + 1; a < m; a++)
            C[a + (size_t) b * m] = rho[(int) (c->x[rows[a]] - c->x[rows[b]])];
    return 0;
}

DENSE_KIND(arma)

/* Every partial autocorrelation in (-1, 1), as AR(1)'s phi. */
static void arma_bounds(const resid_comp *c, double *lower, double *upper)
{
    for (int i = 0; i < c->p + c->q; i++) {
        lower[i] = -(1 - RESID_COR_MARGIN);
        upper[i] = 1 - RESID_COR_MARGIN;
    }
}

/* ---- general correlation (corSymm) on positions 1..T ------------------------ */

/* C = L L', L lower triangular with unit rows: row i on the unit sphere
 * by its angles, written through partial correlations z_ij in (-1, 1),
 *     L_ij = z_ij prod_{k<j} sqrt(1 - z_ik^2),   L_ii = prod_{k<i} sqrt(1 - z_ik^2),
 * so that sum_j L_ij^2 = 1 and L_ii > 0: a correlation matrix, positive
 * definite, for every z, and every correlation matrix has one.  z_i1 is
 * the correlation C_i1 itself.  Parameters in nlme's order, the lower
 * triangle by columns: z_21, z_31, .., z_T1, z_32, ... */
static void symm_factor(int T, const double *z, double *L)
{
    for (int i = 0; i < T; i++) {
        double rem = 1;                    /* prod_{k<j} (1 - z_ik^2) */
        for (int j = 0; j < i; j++) {
            double zij = z[(size_t) j * T - (size_t) j * (j + 1) / 2 + (size_t) (i - j - 1)];
            L[i + (size_t) j * T] = zij * sqrt(rem);
            rem *= 1 - zij * zij;
        }
        L[i + (size_t) i * T] = sqrt(rem);
    }
}

/* scratch: L (T x T). */
static size_t symm_scratch(const resid_comp *c) { return (size_t) c->span * c->span; }

/* C_g: the rows and columns of C at the group's positions (increasing,
 * checked when unpacked), C_ab = sum_{k <= min} L_ak L_bk. */
static int symm_fill(const resid_comp *c, const double *par, const int *rows, int m, double *C,
                     double *scratch)
{
    int T = c->span;
    symm_factor(T, par, scratch);
    for (int b = 0; b < m; b++) {
        int pb = (int) c->x[rows[b]] - 1;
        for (int a = b + 1; a < m; a++) {
            int pa = (int) c->x[rows[a]] - 1;
            double s = 0;
            for (int k = 0; k <= pb; k++) s += scratch[pa + (size_t) k * T] * scratch[pb + (size_t) k * T];
            C[a + (size_t) b * m] = s;
        }
    }
    return 0;
}

DENSE_KIND(symm)

/* Every partial correlation in (-1, 1). */
static void symm_bounds(const resid_comp *c, double *lower, double *upper)
{
    for (int i = 0; i < c->npar; i++) {
        lower[i] = -(1 - RESID_COR_MARGIN);
        upper[i] = 1 - RESID_COR_MARGIN;
    }
}

/* The order is the codes R/resid-struct.R gives (RESID_COR_KINDS). */
const resid_cor_kind resid_cor_kinds[] = {
    {"AR(1)", 0, NULL, ar1_whiten, ar1_color, ar1_bounds},
    {"continuous AR(1)", 0, NULL, car1_whiten, car1_color, car1_bounds},
    {"compound symmetry", 0, NULL, cs_whiten, cs_color, cs_bounds},
    {"exponential spatial", 1, NULL, exp_whiten, exp_color, spatial_bounds},
    {"Gaussian spatial", 1, NULL, gaus_whiten, gaus_color, spatial_bounds},
    {"spherical spatial", 1, NULL, spher_whiten, spher_color, spatial_bounds},
    {"ARMA", 1, arma_scratch, arma_whiten, arma_color, arma_bounds},
    {"general", 1, symm_scratch, symm_whiten, symm_color, symm_bounds},
};
const int resid_ncor_kinds = (int) (sizeof resid_cor_kinds / sizeof resid_cor_kinds[0]);
