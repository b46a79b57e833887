# TabM (ember_tabm() and the classif/regr.ember_tabm learners): training and averaged
# predictions through ember_fit(), the variants, and errors for bad options. The numerics against
# the `tabm` package are the engine's golden tests (TabMGoldenTests).

test_that("ember_tabm() trains and predicts averaged probabilities and values", {
  d <- all_types_data(120)
  y <- factor(ifelse(d$num > 0, "a", ifelse(d$int > 5, "b", "c")))
  for (arch in list(ember_tabm(k = 4, d_block = 16), ember_tabm(arch_type = "tabm-mini", k = 4, d_block = 16),
    ember_tabm(k = 4, d_block = 16, num_embeddings = "linear_relu", d_embedding = 4),
    ember_tabm(k = 4, d_block = 16, num_embeddings = "periodic", d_embedding = 4, n_frequencies = 6, lite = TRUE),
    ember_tabm(k = 4, d_block = 16, num_embeddings = "piecewise_linear", d_embedding = 4, n_bins = 8))) {
    model <- suppressWarnings(ember_fit(d, y, arch, epochs = 3, batch_size = 16, seed = 1))
    p <- predict(model, d, type = "prob")
    expect_identical(dim(p), c(120L, 3L))
    expect_equal(unname(rowSums(p)), rep(1, 120), tolerance = 1e-5)
    expect_true(all(p > 0 & p < 1))
    expect_identical(levels(predict(model, d)), levels(y))
  }
  # Regression and a binary task learn.
  reg <- ember_fit(mtcars[, -1], mtcars$mpg, ember_tabm(k = 8, d_block = 32), epochs = 60, batch_size = 8, seed = 1)
  expect_lt(sqrt(mean((predict(reg, mtcars[, -1]) - mtcars$mpg)^2)), stats::sd(mtcars$mpg) / 2)
  yb <- factor(iris$Species == "setosa", levels = c(TRUE, FALSE))
  bin <- ember_fit(iris[, 1:4], yb, ember_tabm(k = 4, d_block = 16), epochs = 20, batch_size = 16, seed = 1)
  expect_gt(mean(predict(bin, iris[, 1:4]) == yb), 0.95)
})

test_that("the network description is the tabm package's TabM", {
  spec <- jsonlite::fromJSON(ember_network_description(ember_tabm(k = 3, d_block = 8), numeric = 2, cardinalities = 3),
    simplifyVector = FALSE)
  ids <- vapply(spec$nodes, function(n) n$id, character(1))
  expect_identical(ids, c("one_hot", "features", "ensemble_view", paste0("backbone.blocks.", rep(0:2, each = 3), ".", 0:2),
    "output"))
  first <- spec$nodes[[4]]
  expect_identical(first$op, "linear_batch_ensemble")
  expect_identical(unlist(first$params$scaling_init_chunks), c(1L, 1L, 3L))
  expect_identical(first$params$first_scaling_init, "random-signs")
  mini <- jsonlite::fromJSON(ember_network_description(ember_tabm("tabm-mini", num_embeddings = "periodic"), numeric = 2),
    simplifyVector = FALSE)
  ops <- vapply(mini$nodes, function(n) n$op, character(1))
  expect_identical(ops, c("periodic_embeddings", "flatten", "ensemble_view", "elementwise_affine",
    rep(c("linear", "relu", "dropout"), 2), "ensemble_head"))
  expect_identical(mini$nodes[[4]]$params$scaling_init, "normal")
})

test_that("bad TabM options are classed errors naming the option", {
  x <- iris[, 1:4]
  y <- iris$Species
  expect_ember_error(ember_tabm(arch_type = "tabm-packed"), "ember_error_invalid_argument", "\"tabm-mini\"", argument = "arch_type")
  expect_ember_error(ember_tabm(k = 0), "ember_error_invalid_argument", "integer >= 1", argument = "k")
  expect_ember_error(ember_tabm(n_blocks = 1.5), "ember_error_invalid_argument", "integer >= 1", argument = "n_blocks")
  expect_ember_error(ember_tabm(dropout = 1), "ember_error_invalid_argument", "\\[0, 1\\)", argument = "dropout")
  expect_ember_error(ember_tabm(activation = "reglu"), "ember_error_invalid_argument", "\"relu\"", argument = "activation")
  expect_ember_error(ember_tabm(start_scaling_init = "ones"), "ember_error_invalid_argument", "\"random-signs\"",
    argument = "start_scaling_init")
  expect_ember_error(ember_tabm(num_embeddings = "quantile"), "ember_error_invalid_argument", "\"piecewise_linear\"",
    argument = "num_embeddings")
  expect_ember_error(ember_tabm(n_bins = 1), "ember_error_invalid_argument", "integer >= 2", argument = "n_bins")
  # Piecewise-linear bins come from the training data: fewer bins than rows, no constant feature.
  pw <- ember_tabm(k = 2, d_block = 4, num_embeddings = "piecewise_linear", n_bins = 20)
  rows <- round(seq(1, 150, length.out = 20))
  expect_ember_error(ember_fit(iris[rows, 1:4], iris$Species[rows], pw, epochs = 1), "ember_error_invalid_argument",
    "n_bins \\(20\\) must be less than the training rows \\(20\\)")
  expect_ember_error(ember_fit(data.frame(a = rnorm(30), b = 1), factor(rep(c("u", "v"), 15)),
    ember_tabm(k = 2, d_block = 4, num_embeddings = "piecewise_linear", n_bins = 4), epochs = 1),
    "ember_error_invalid_argument", "constant in the training data")
  expect_ember_error(ember_tabm(frequency_init_scale = 0), "ember_error_invalid_argument", "> 0",
    argument = "frequency_init_scale")
  expect_ember_error(ember_tabm(lite = NA), "ember_error_invalid_argument", "TRUE or FALSE", argument = "lite")
  expect_ember_error(ember_tabm(lite = TRUE, embedding_activation = FALSE), "ember_error_invalid_argument",
    "embedding_activation", argument = "lite")
  # Embeddings need numeric features (the engine's check).
  expect_ember_error(ember_fit(data.frame(f = factor(rep(c("u", "v"), 10))), factor(rep(c("a", "b"), each = 10)),
    ember_tabm(k = 2, d_block = 4, num_embeddings = "linear_relu"), epochs = 1), "ember_error_invalid_argument",
    "num_embeddings needs numeric features")
})

test_that("the TabM learners' parameters are mlr3torch's and check their values", {
  skip_if_no_mlr3()
  ps <- mlr3::lrn("classif.ember_tabm")$param_set
  expect_true(all(c("arch_type", "k", "n_blocks", "d_block", "dropout", "activation", "start_scaling_init", "num_embeddings",
    "d_embedding", "n_frequencies", "frequency_init_scale", "lite", "embedding_activation") %in% ps$ids()))
  expect_identical(ps$default$k, 32L)
  expect_identical(ps$default$d_block, 512L)
  expect_error(mlr3::lrn("classif.ember_tabm", k = 0), "k")
  expect_error(mlr3::lrn("regr.ember_tabm", arch_type = "tabm-packed"), "arch_type")
  learner <- mlr3::lrn("classif.ember_tabm", epochs = 1, batch_size = 16, frequency_init_scale = 0, num_embeddings = "periodic",
    k = 2, d_block = 8)
  expect_ember_error(learner$train(mlr3::tsk("iris")), "ember_error_invalid_argument", "> 0", argument = "frequency_init_scale")
})

test_that("a TabM model with piecewise-linear bins saves and loads with its bins", {
  model <- ember_fit(iris[, 1:4], iris$Species, ember_tabm(k = 4, d_block = 16, num_embeddings = "piecewise_linear", n_bins = 6),
    epochs = 3, batch_size = 16, seed = 2)
  file <- tempfile(fileext = ".safetensors")
  on.exit(unlink(file))
  ember_save(model, file)
  loaded <- ember_load(file)
  expect_identical(predict(loaded, iris[, 1:4], type = "prob"), predict(model, iris[, 1:4], type = "prob"))
  # Three epochs on the bins of the training data already separate the classes better than chance.
  expect_gt(mean(predict(model, iris[, 1:4]) == iris$Species), 0.6)
})
