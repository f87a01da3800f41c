library(testthat)
library(lmmfit)

test_check("lmmfit")
