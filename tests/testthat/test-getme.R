## lmm_get() against lme4's getME(), fitted in the same test.

lmer_exact <- function(...) {
    suppressMessages(lme4::lmer(..., control = lme4::lmerControl(
        optimizer = "bobyqa", calc.derivs = FALSE, optCtrl = list(rhoend = 1e-12, maxfun = 1e5))))
}

expect_getme_like <- function(fit, m) {
    get0 <- function(nm) lme4::getME(m, nm)
    expect_equal(lmm_get(fit, "X"), get0("X"), ignore_attr = TRUE)
    expect_identical(colnames(lmm_get(fit, "X")), colnames(get0("X")))
    expect_equal(lmm_get(fit, "y"), get0("y"), ignore_attr = TRUE)
    Z <- lmm_get(fit, "Z")
    Z0 <- as.matrix(get0("Z"))
    expect_equal(Z, Z0, ignore_attr = TRUE)
    expect_identical(colnames(Z), colnames(Z0))
    expect_equal(model.matrix(fit, type = "random"), Z)
    expect_equal(lmm_get(fit, "Zt"), t(Z))
    expect_equal(lmm_get(fit, "theta"), get0("theta"), tolerance = 1e-5)
    expect_identical(names(lmm_get(fit, "theta")), names(get0("theta")))
    expect_equal(lmm_get(fit, "Lambda"), as.matrix(get0("Lambda")), tolerance = 1e-5, ignore_attr = TRUE)
    expect_equal(lmm_get(fit, "Lambdat"), as.matrix(get0("Lambdat")), tolerance = 1e-5, ignore_attr = TRUE)
    expect_equal(lmm_get(fit, "beta"), get0("beta"), tolerance = 1e-7, ignore_attr = TRUE)
    expect_equal(lmm_get(fit, "u"), get0("u"), tolerance = 1e-5)
    expect_equal(lmm_get(fit, "b"), as.vector(get0("b")), tolerance = 1e-5)
    expect_equal(lmm_get(fit, "sigma"), get0("sigma"), tolerance = 1e-6)
    for (nm in c("n", "p", "q")) expect_equal(lmm_get(fit, nm), get0(nm), label = nm)
    fl <- lmm_get(fit, "flist")
    fl0 <- get0("flist")
    expect_identical(names(fl), names(fl0))
    for (g in names(fl0)) expect_identical(fl[[g]], fl0[[g]])
    expect_identical(attr(fl, "assign"), attr(fl0, "assign"))
    expect_identical(lmm_get(fit, "cnms"), get0("cnms"))
    expect_equal(lmm_get(fit, "RX"), as.matrix(get0("RX")), tolerance = 1e-5, ignore_attr = TRUE)
    ## L: lower triangular; L L' = Lambda'Z'W Z Lambda + I; lme4 factors the
    ## same matrix after a fill-reducing permutation P.
    L <- lmm_get(fit, "L")
    expect_true(all(L[upper.tri(L)] == 0))
    LZ0 <- as.matrix(get0("Lambdat") %*% get0("Zt"))
    w <- weights(m)
    A0 <- LZ0 %*% (w * t(LZ0)) + diag(nrow(LZ0))
    expect_equal(tcrossprod(L), A0, tolerance = 1e-5, ignore_attr = TRUE)
    e <- Matrix::expand(get0("L"))
    A4 <- as.matrix(Matrix::crossprod(e$P, Matrix::tcrossprod(e$L)) %*% e$P)
    expect_equal(tcrossprod(L), A4, tolerance = 1e-5, ignore_attr = TRUE)
    expect_equal(2 * sum(log(diag(L))), unname(get0("devcomp")$cmp[["ldL2"]]), tolerance = 1e-6)
    expect_error(lmm_get(fit, "nonsense"), "unknown component")
}

test_that("lmm_get matches getME on sleepstudy (correlated and || terms)", {
    need_lme4()
    data(sleepstudy, package = "lme4")
    fit <- lmmfit(Reaction ~ Days + (Days | Subject), sleepstudy)
    m <- lmer_exact(Reaction ~ Days + (Days | Subject), sleepstudy)
    expect_getme_like(fit, m)
    fit <- lmmfit(Reaction ~ Days + (Days || Subject), sleepstudy)
    m <- lmer_exact(Reaction ~ Days + (Days || Subject), sleepstudy)
    expect_getme_like(fit, m)
})

test_that("lmm_get matches getME on a crossed, weighted model", {
    need_lme4()
    data(Penicillin, package = "lme4")
    d <- Penicillin
    set.seed(2)
    d$w <- runif(nrow(d), 0.5, 2)
    fit <- lmmfit(diameter ~ 1 + (1 | plate) + (1 | sample), d, weights = w)
    m <- lme4::lmer(diameter ~ 1 + (1 | plate) + (1 | sample), d, weights = w,
                    control = lme4::lmerControl(optimizer = "bobyqa", calc.derivs = FALSE,
                                                optCtrl = list(rhoend = 1e-12, maxfun = 1e5)))
    expect_getme_like(fit, m)
})
