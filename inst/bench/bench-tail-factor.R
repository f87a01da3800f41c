## InstEval's crossed block (1,128 instructors and 28 department x service
## levels, after the 2,972 students are eliminated): what one numeric
## factorisation of it costs, dense (as lmmfit factors it) and sparse
## (CHOLMOD, Matrix's Cholesky(), with its fill-reducing order and symbolic
## analysis kept, as lme4 refactors at every evaluation), against one whole
## lmmfit evaluation of the deviance.  It bounds what any exact factorisation
## can gain on this problem: run it with the BLAS in question selected.
## Run: Rscript inst/bench/bench-tail-factor.R   (needs lme4 for the data)
suppressMessages({library(lmmfit); library(Matrix)})
data(InstEval, package = "lme4")
fit <- lmmfit(y ~ service + (1 | s) + (1 | d) + (1 | dept:service), InstEval)
th <- unname(fit$theta)

## The block at the REML optimum, built apart from lmmfit's code:
## S = D (Z2'Z2 - C' W C) D + I with C = Zs'Z2 (student x crossed level
## counts), W = diag(th1^2 / (th1^2 n_s + 1)), D = diag(th2, ..., th3, ...).
ind <- function(f) sparseMatrix(i = seq_along(f), j = as.integer(f), x = 1)
Zs <- ind(InstEval$s)
Z2 <- cbind(ind(InstEval$d), ind(interaction(InstEval$dept, InstEval$service, drop = TRUE)))
C <- crossprod(Zs, Z2)
W <- Diagonal(x = th[1]^2 / (th[1]^2 * colSums(Zs) + 1))
q2 <- ncol(Z2)
D <- Diagonal(x = c(rep(th[2], nlevels(InstEval$d)), rep(th[3], q2 - nlevels(InstEval$d))))
S <- drop0(as(forceSymmetric(D %*% (crossprod(Z2) - crossprod(C, W %*% C)) %*% D + Diagonal(q2)),
              "CsparseMatrix"))
Sd <- as.matrix(S)

reps <- 40L
per_call <- function(f) median(replicate(5L, system.time(for (i in seq_len(reps)) f())[["elapsed"]])) / reps
super <- Cholesky(S, super = TRUE, perm = TRUE, LDL = FALSE)
simpl <- Cholesky(S, super = FALSE, perm = TRUE, LDL = FALSE)
t_copy <- per_call(function() Sd + 0)        # the copy the dense calls below make
t_dense <- per_call(function() chol(Sd)) - t_copy
t_super <- per_call(function() update(super, S))
t_simpl <- per_call(function() update(simpl, S))
xp <- fit$xprod
TH <- matrix(th, length(th), reps)
t_eval <- median(replicate(5L, system.time(.Call(lmmfit:::C_lmm_deviance, xp, TH, TRUE))[["elapsed"]])) / reps

nnzL <- function(L) sum(diff(as(L, "CsparseMatrix")@p))
cat(sprintf("BLAS: %s\n", extSoftVersion()[["BLAS"]]))
cat(sprintf("block of order %d, %.1f%% of its pairs nonzero; factor nonzeros: dense %d, CHOLMOD %d\n",
            q2, 100 * (length(S@x) - q2) / (q2 * (q2 - 1) / 2), q2 * (q2 + 1) / 2, nnzL(super)))
cat(sprintf("one numeric factorisation: dense dpotrf %.2f ms, CHOLMOD supernodal %.2f ms, simplicial %.2f ms\n",
            1e3 * t_dense, 1e3 * t_super, 1e3 * t_simpl))
cat(sprintf("one lmmfit evaluation of the REML criterion: %.2f ms; the fit took %d\n",
            1e3 * t_eval, fit$optinfo$feval))
