## Draws man/figures/README-lines.png, the picture in README.md: plot_lines()
## on the schools data.
##   R_LIBS=<library with lmmfit installed> Rscript data-raw/readme-figure.R
##   (from the package's top directory)
library(lmmfit)
png("man/figures/README-lines.png", width = 1500, height = 520, res = 120)
plot_lines(score ~ hours | school, data = schools)
invisible(dev.off())
