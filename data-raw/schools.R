## Generates data/schools.rda: seed 000's design (10 schools x 20 students,
## hours studied and test score), with school-specific intercepts AND slopes
## so that OLS, a random-intercept model and a random intercept + slope model
## give visibly different lines.
##   Rscript data-raw/schools.R      (from the package's top directory)
set.seed(2024)
n_schools <- 10L
per_school <- 20L
school <- rep(seq_len(n_schools), each = per_school)
## school baselines around 50 (sd 10) and study-hour effects around 5 (sd 1.5)
baseline <- rnorm(n_schools, mean = 50, sd = 10)
slope <- rnorm(n_schools, mean = 5, sd = 1.5)
hours <- round(runif(n_schools * per_school, min = 1, max = 10), 1)
score <- baseline[school] + slope[school] * hours + rnorm(n_schools * per_school, sd = 3)
schools <- data.frame(score = round(score, 1), hours = hours,
                      school = factor(paste("School", LETTERS[school])))
save(schools, file = "data/schools.rda", compress = "xz")
