## Generates data/trial.rda: seed 004's design.  2,500 subjects measured at
## times 0, 1, 2, 3; treatment assigned per subject (half each); random
## intercepts (sd 0.5) and slopes on time (sd 0.25), independent; AR(1)
## residuals within subject (rho 0.7, marginal sd sigma = 1); fixed effects
## intercept 0.1, time 0.5, treatment -0.4.  The response is rounded to 3
## decimals to keep the file small.
##   Rscript data-raw/trial.R        (from the package's top directory)
set.seed(2)
n_id <- 2500L
times <- 0:3
n_t <- length(times)
id <- rep(seq_len(n_id), each = n_t)
time <- rep(times, n_id)
treat <- sample(rep(0:1, each = n_id / 2L))            # per subject
intercept_sd <- 0.5
time_sd <- 0.25
sigma <- 1
rho <- 0.7
b0 <- rnorm(n_id, sd = intercept_sd)
b1 <- rnorm(n_id, sd = time_sd)
## stationary AR(1) per subject: e_1 ~ N(0, sigma^2),
## e_t = rho e_{t-1} + sqrt(1 - rho^2) N(0, sigma^2)
z <- matrix(rnorm(n_id * n_t, sd = sigma), n_t, n_id)
e <- z
for (t in 2:n_t) e[t, ] <- rho * e[t - 1L, ] + sqrt(1 - rho^2) * z[t, ]
y <- 0.1 + 0.5 * time - 0.4 * treat[id] + b0[id] + b1[id] * time + as.vector(e)
trial <- data.frame(id = factor(id), time = time,
                    treatment = factor(c("control", "treatment")[treat[id] + 1L],
                                       levels = c("control", "treatment")),
                    y = round(y, 3))
save(trial, file = "data/trial.rda", compress = "xz")
