library(testthat)
library(mlr3ember)

test_check("mlr3ember")
