## Generates data/bcg.rda: the 13 trials of BCG vaccine against tuberculosis
## collected by Colditz et al. (1994), as published (cases and non-cases in
## the vaccinated and control groups, absolute latitude of the trial site,
## method of allocation).
##   Rscript data-raw/bcg.R        (from the package's top directory)
bcg <- data.frame(
    trial = 1:13,
    author = c("Aronson", "Ferguson & Simes", "Rosenthal et al", "Hart & Sutherland",
               "Frimodt-Moller et al", "Stein & Aronson", "Vandiviere et al", "TPT Madras",
               "Coetzee & Berjak", "Rosenthal et al", "Comstock et al", "Comstock & Webster",
               "Comstock et al"),
    year = c(1948L, 1949L, 1960L, 1977L, 1973L, 1953L, 1973L, 1980L, 1968L, 1961L, 1974L, 1969L, 1976L),
    tpos = c(4L, 6L, 3L, 62L, 33L, 180L, 8L, 505L, 29L, 17L, 186L, 5L, 27L),
    tneg = c(119L, 300L, 228L, 13536L, 5036L, 1361L, 2537L, 87886L, 7470L, 1699L, 50448L, 2493L, 16886L),
    cpos = c(11L, 29L, 11L, 248L, 47L, 372L, 10L, 499L, 45L, 65L, 141L, 3L, 29L),
    cneg = c(128L, 274L, 209L, 12619L, 5761L, 1079L, 619L, 87892L, 7232L, 1600L, 27197L, 2338L, 17825L),
    ablat = c(44L, 55L, 42L, 52L, 13L, 44L, 19L, 13L, 27L, 42L, 18L, 33L, 33L),
    alloc = factor(c("random", "random", "random", "random", "alternate", "alternate", "random",
                     "random", "random", "systematic", "systematic", "systematic", "systematic"),
                   levels = c("random", "alternate", "systematic")))
save(bcg, file = "data/bcg.rda", compress = "xz")
