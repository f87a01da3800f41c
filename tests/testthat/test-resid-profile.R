## profile() tables of structure fits (R/resid-profile.R) against dense
## computations independent of the package, and their confint() against
## confint(fit, method = "profile").

## The points are minima good to ~1e-8 in the deviance (nlminb, rel.tol
## 1e-13); the dense oracles are minimised as tightly: zeta^2 (the deviance
## increase) is checked to the issue's 1e-6.  The other parameters along a
## profile are flat directions: RESID_PAR_TOL (helper-resid.R).
PROFILE_DEV_TOL <- 1e-6
## The table's limits and confint(method = "profile")'s are roots of the
## same profile to 1e-10 by different brackets.
PROFILE_LIMIT_TOL <- 1e-7
## A dense minimisation over two parameters, started at the table's point.
dense_min <- function(f, start)
    optim(start, f, method = "Nelder-Mead", control = list(reltol = 1e-15, maxit = 5000))

test_that("gls with corAR1: the table's zeta is the signed root of the dense ML deviance increase", {
    Ovary <- ovary_plain()
    X <- model.matrix(~ sin(2 * pi * Time) + cos(2 * pi * Time), Ovary)
    y <- Ovary$follicles
    g <- lmmfit(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), Ovary,
                correlation = nlme::corAR1(form = ~ 1 | Mare))
    pr <- profile(g)
    expect_s3_class(pr, "lmmfit_profile")
    expect_identical(names(pr), c(".zeta", ".sigma", "cor_Phi", ".par"))
    expect_identical(levels(pr$.par), c(".sigma", "cor_Phi"))
    d <- function(phi, s = NULL) dense_ml_deviance(y, X, Ovary$Mare, ar1_cor(phi), sigma = s)
    opt <- optimize(d, c(0, 0.99), tol = 1e-12)
    dmin <- opt$objective
    ## Phi rows: sigma and beta in closed form; the sign is that of Phi - Phi-hat
    ph <- pr[pr$.par == "cor_Phi", ]
    expect_true(all(abs(ph$.zeta) <= max(abs(ph$.zeta))))
    expect_gt(nrow(ph), 10L)
    for (i in seq_len(nrow(ph))) {
        di <- d(ph$cor_Phi[i])
        expect_lt(abs(ph$.zeta[i]^2 - (di - dmin)), PROFILE_DEV_TOL)
        expect_equal(ph$.sigma[i], attr(di, "sigma"), tolerance = RESID_PAR_TOL)
    }
    expect_identical(sign(ph$.zeta), sign(ph$cor_Phi - opt$minimum) * (abs(ph$.zeta) > 0))
    ## sigma rows: Phi refitted by optimize
    sg <- pr[pr$.par == ".sigma", ]
    for (i in seq_len(nrow(sg))) {
        o <- optimize(function(phi) d(phi, sg$.sigma[i]), c(0, 0.99), tol = 1e-12)
        expect_lt(abs(sg$.zeta[i]^2 - (o$objective - dmin)), PROFILE_DEV_TOL)
        expect_equal(sg$cor_Phi[i], o$minimum, tolerance = RESID_PAR_TOL)
    }
    ## its intervals are confint(method = "profile")'s, where the deviance rises by qchisq
    ci <- confint(pr)
    expect_equal(ci, confint(g, method = "profile")[c(".sigma", "cor_Phi"), ], tolerance = PROFILE_LIMIT_TOL)
    q <- qchisq(0.95, 1)
    for (e in ci["cor_Phi", ]) expect_lt(abs(d(e) - dmin - q), PROFILE_DEV_TOL)
    ci90 <- confint(pr, parm = "cor_Phi", level = 0.9)
    expect_equal(ci90, confint(g, method = "profile", parm = "cor_Phi", level = 0.9), tolerance = PROFILE_LIMIT_TOL)
    ## one parameter's table is its part of the whole (the warm starts differ)
    expect_equal(profile(g, which = "cor_Phi")$cor_Phi, ph$cor_Phi, tolerance = PROFILE_LIMIT_TOL)
    pdf(NULL)
    on.exit(dev.off())
    expect_identical(plot(pr), pr)
})

test_that("lme with varIdent: the sd, sigma and variance-ratio profiles against dense refits", {
    O <- nlme::Orthodont
    X <- model.matrix(~ age, O)
    y <- O$distance
    fem <- O$Sex == "Female"
    v <- lmmfit(distance ~ age + (1 | Subject), O, weights = nlme::varIdent(form = ~ 1 | Sex))
    pr <- profile(v)
    expect_identical(levels(pr$.par), c(".sig01", ".sigma", "var_Female"))
    ## Var = sigma^2 (gamma 11' + diag(ratio^2 on girls)); the minimum from nlme
    R <- function(r) function(m, rows) diag(ifelse(fem[rows], r^2, 1), m)
    dev <- function(s, gamma, r) dense_ml_deviance(y, X, O$Subject, R(r), gamma = gamma, sigma = s)
    ml <- nlme::lme(distance ~ age, random = ~ 1 | Subject, data = O, method = "ML",
                    weights = nlme::varIdent(form = ~ 1 | Sex), control = NLME_TIGHT())
    dmin <- -2 * as.numeric(logLik(ml))
    ## three points of each profile: both ends and the one nearest zeta = 1
    pick <- function(d) unique(c(1L, which.min(abs(d$.zeta - 1)), nrow(d)))
    sd <- pr[pr$.par == ".sig01", ]
    for (i in pick(sd)) {
        s <- sd$.sig01[i]
        o <- dense_min(function(p) dev(exp(p[1]), s^2 / exp(2 * p[1]), exp(p[2])),
                       log(c(sd$.sigma[i], sd$var_Female[i])))
        expect_lt(abs(sd$.zeta[i]^2 - (o$value - dmin)), PROFILE_DEV_TOL)
    }
    sg <- pr[pr$.par == ".sigma", ]
    for (i in pick(sg)) {
        s <- sg$.sigma[i]
        o <- dense_min(function(p) dev(s, exp(p[1]), exp(p[2])), c(log(sg$.sig01[i]^2 / s^2), log(sg$var_Female[i])))
        expect_lt(abs(sg$.zeta[i]^2 - (o$value - dmin)), PROFILE_DEV_TOL)
    }
    vr <- pr[pr$.par == "var_Female", ]
    for (i in pick(vr)) {
        o <- optimize(function(lg) dense_ml_deviance(y, X, O$Subject, R(vr$var_Female[i]), gamma = exp(lg)),
                      c(-6, 4), tol = 1e-12)
        expect_lt(abs(vr$.zeta[i]^2 - (o$objective - dmin)), PROFILE_DEV_TOL)
        expect_equal(vr$.sig01[i]^2 / vr$.sigma[i]^2, exp(o$minimum), tolerance = RESID_PAR_TOL)
    }
    expect_equal(confint(pr), confint(v, method = "profile", parm = "theta_"), tolerance = PROFILE_LIMIT_TOL)
    ## as.data.frame keeps the table
    expect_identical(names(as.data.frame(pr)), names(pr))
})

test_that("a random-effect sd whose profile stays below the cutoff down to 0: the bound, as confint", {
    set.seed(4)
    d <- data.frame(id = factor(rep(1:15, each = 4)), s = factor(rep(c("a", "b"), 30)))
    d$x <- rnorm(60)
    d$y <- 1 + d$x + rnorm(15, sd = 0.3)[d$id] + rnorm(60) * ifelse(d$s == "a", 1, 2)
    f <- lmmfit(y ~ x + (1 | id), d, weights = nlme::varIdent(form = ~ 1 | s))
    pr <- profile(f, which = ".sig01")
    ## the walk ends at sd = 0 (exp(u) underflows), zeta there in the cutoff
    low <- pr[pr$.sig01 == 0, ]
    expect_identical(nrow(low), 1L)
    ci <- confint(pr)
    expect_identical(ci[1L, 1L], 0)
    expect_equal(ci, confint(f, method = "profile", parm = ".sig01"), tolerance = PROFILE_LIMIT_TOL)
    ## dense: at sd = 0 (no random effect) the ML deviance is less than qchisq above the minimum
    X <- model.matrix(~ x, d)
    R <- function(r) function(m, rows) diag(ifelse(d$s[rows] == "b", r^2, 1), m)
    at0 <- optimize(function(lr) dense_ml_deviance(d$y, X, d$id, R(exp(lr))), c(-3, 3), tol = 1e-12)$objective
    full <- dense_min(function(p) dense_ml_deviance(d$y, X, d$id, R(exp(p[2])), gamma = exp(p[1])),
                      c(log(0.1), 0))$value
    expect_lt(at0 - full, qchisq(0.95, 1))
    expect_lt(abs(low$.zeta^2 - (at0 - full)), PROFILE_DEV_TOL)
    expect_lt(low$.zeta, 0)
})

test_that("profile() of a structure fit: bad arguments are refused by name", {
    v <- lmmfit(distance ~ age + (1 | Subject), nlme::Orthodont, weights = nlme::varIdent(form = ~ 1 | Sex))
    expect_error(profile(v, which = "beta_"), "variance parameters only")
    expect_error(profile(v, which = "age"), "variance parameters only")
    expect_error(profile(v, which = 4), "between 1 and 3")
    expect_error(profile(v, alphamax = 2), "alphamax")
    expect_error(profile(v, prof.scale = "varcov"), "prof.scale")
    expect_error(confint(profile(v, which = ".sigma"), parm = "var_Female"), "profiled parameters")
})

test_that("a walk that stays below the cutoff far out ends in a row at the bound, which confint() takes", {
    ## a stand-in engine: one parameter on the log scale whose zeta levels
    ## off at 1 below the estimate; with se 0.01 the walk stops at u ~ -123,
    ## where exp(u) is not yet 0 (a real point on the bound ends the walk too)
    se <- 0.01
    eng <- list(opt = c(p = 1), lower = c(p = 0), upper = c(p = Inf), names = "p", nvp = 1L, u0 = 0, se = se,
                zeta_u = function(w, u) c(.zeta = if (u < 0) tanh(u) else u, p = exp(u)))
    eng$zeta <- function(w, x, start) eng$zeta_u(w, log(x))
    down <- lmmfit:::resid_profile_walk(eng, 1L, -1, cutoff = 3, delta = 0.5, maxpts = 100)
    last <- down[nrow(down), ]
    expect_identical(unname(last[["p"]]), 0)
    expect_true(is.na(last[[".zeta"]]))
    ## beyond 2^DOUBLINGS approximate se's on the log scale, as confint(method = "profile")
    expect_gt(-log(down[nrow(down) - 1L, "p"]), 3 * se * 2^lmmfit:::RESID_PROFILE_DOUBLINGS)
    up <- lmmfit:::resid_profile_walk(eng, 1L, 1, cutoff = 3, delta = 0.5, maxpts = 100)
    m <- rbind(down, up)
    d <- as.data.frame(unique(m[order(m[, "p"]), ]))
    d$.par <- factor("p")
    pr <- structure(d, engine = eng, class = c("lmmfit_profile", "data.frame"))
    ci <- confint(pr)
    expect_identical(ci[1L, 1L], 0)
    expect_equal(ci[1L, 2L], exp(qnorm(0.975)), tolerance = 1e-9)
})

test_that("corARMA(1, 1): profile limits where the dense ML deviance rises by qchisq; AR(2), corSymm refused", {
    Ovary <- ovary_plain()
    form <- follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time)
    X <- model.matrix(form, Ovary)
    cs <- nlme::corARMA(form = ~ 1 | Mare, p = 1, q = 1)
    f <- lmmfit(form, Ovary, correlation = cs)
    pr <- profile(f)
    expect_identical(levels(pr$.par), c(".sigma", "cor_Phi1", "cor_Theta1"))
    ci <- confint(pr)
    expect_equal(ci, confint(f, method = "profile", parm = "theta_"), tolerance = PROFILE_LIMIT_TOL)
    ## the minimum from nlme's ML fit; at each limit of Phi1 (Theta1) the
    ## other coefficient and sigma minimised densely
    ml <- nlme::gls(form, Ovary, correlation = cs, method = "ML",
                    control = nlme::glsControl(tolerance = 1e-10, msTol = 1e-12))
    dmin <- -2 * as.numeric(logLik(ml))
    start <- c(log(sigma(ml)), coef(ml$modelStruct$corStruct, unconstrained = TRUE))
    at <- function(phi, theta) dense_min(function(p) {
        r <- tanh(p[2] / 2)
        dense_arma_deviance(Ovary$follicles, X, Ovary$Mare, if (is.null(phi)) r else phi,
                            if (is.null(theta)) r else theta, 0, exp(p[1]), REML = FALSE)
    }, start[c(1, if (is.null(phi)) 2 else 3)])$value
    q <- qchisq(0.95, 1)
    for (e in ci["cor_Phi1", ]) expect_lt(abs(at(e, NULL) - dmin - q), PROFILE_DEV_TOL)
    for (e in ci["cor_Theta1", ]) expect_lt(abs(at(NULL, e) - dmin - q), PROFILE_DEV_TOL)
    ## coefficients of several partial autocorrelations cannot be held alone
    f2 <- lmmfit(form, Ovary, correlation = nlme::corARMA(form = ~ 1 | Mare, p = 2))
    expect_error(confint(f2, method = "profile"), "corARMA's parameters \\(Phi1, Phi2\\)")
    expect_error(profile(f2), "intervals\\(\\) gives nlme's approximate")
    s <- lmmfit(distance ~ age, nlme::Orthodont, correlation = nlme::corSymm(form = ~ 1 | Subject))
    expect_error(profile(s), "corSymm's parameters")
})
