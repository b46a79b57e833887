# Writes the model file that Swift (EmberNNTests.CrossLanguageTests) and C (Examples/c/smoke.c,
# `make c-test`) load to check that a file written from R loads in the other doors: a 3-class
# MLP on iris, with its R encoding in the host metadata.
#   Rscript tools/crosslang/write_r_model.R rpkg/tests/testthat/fixtures   (or: make crosslang-fixtures)
library(mlr3ember)
args <- commandArgs(trailingOnly = TRUE)
dir <- if (length(args)) args[1] else "rpkg/tests/testthat/fixtures"
model <- ember_fit(iris[, 1:4], iris$Species, ember_mlp(neurons = 16), epochs = 40, batch_size = 16, lr = 0.01,
  seed = 1, progress = FALSE)
path <- file.path(dir, "r_iris_mlp.safetensors")
ember_save(model, path)
cat(sprintf("wrote %s (training accuracy %.3f)\n", path, mean(predict(model, iris) == iris$Species)))
