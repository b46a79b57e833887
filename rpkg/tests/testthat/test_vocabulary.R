# R's lists of ops, activations, measures and losses come from the engine (ember_vocabulary);
# these tests fail when what R offers on top disagrees with the engine.

test_that("the engine's vocabulary is read once and has every part", {
  v <- mlr3ember:::engine_vocabulary()
  expect_true(all(c("ops", "activations", "measures", "expression_ops", "losses") %in% names(v)))
  expect_true(all(v$activations %in% v$ops))
  expect_true(all(c("linear", "head", "repeat", "fn", "multihead_attention") %in% v$ops))
  expect_identical(v$losses$regression[1L], "mse")
  expect_identical(v$losses$binary[1L], "bce_with_logits")
  expect_identical(v$losses$multiclass[1L], "cross_entropy")
  expect_false("repeat" %in% mlr3ember:::network_ops())
})

test_that("every activation of the engine builds and trains through ember_activation()", {
  d <- data.frame(a = rnorm(16), b = rnorm(16))
  y <- d$a + d$b
  required <- list(threshold = list(threshold = 0.1, value = 0))
  for (fn in mlr3ember:::activation_ops()) {
    args <- c(list(ember_input_num() |> ember_linear(4), fn), required[[fn]] %||% list())
    net <- do.call(ember_activation, args) |> ember_head() |> ember_network()
    model <- ember_fit(d, y, net, epochs = 1, batch_size = 8)
    expect_s3_class(model, "ember_model")
  }
})

test_that("every engine measure is accepted and scored in its direction", {
  v <- mlr3ember:::engine_vocabulary()
  for (m in v$measures) {
    expect_true(m$task %in% c("classification", "regression", "multilabel"), label = m$name)
    if (m$task == "classification") {
      model <- ember_fit(iris[, 1:4], iris$Species, epochs = 2, validate = 0.3, measures = m$name)
    } else if (m$task == "multilabel") {
      labels <- data.frame(setosa = iris$Species == "setosa", long = iris$Sepal.Length > 5.8)
      model <- ember_fit(iris[, 1:4], labels, epochs = 2, validate = 0.3, measures = m$name)
    } else {
      model <- ember_fit(mtcars[, -1], mtcars$mpg, epochs = 2, validate = 0.3, measures = m$name)
      # A quantile regression is scored on its point prediction.
      quantile <- ember_fit(mtcars[, -1], mtcars$mpg, epochs = 2, validate = 0.3, measures = m$name, loss = "quantile",
        loss_args = list(quantiles = c(0.25, 0.75)))
      expect_true(all(is.finite(quantile$history[[paste0("valid_", m$name)]])), label = m$name)
    }
    expect_true(all(is.finite(model$history[[paste0("valid_", m$name)]])), label = m$name)
    expect_identical(mlr3ember:::engine_measure_maximize(m$name), m$name %in% c("accuracy", "balanced_accuracy", "hamming_accuracy"))
  }
})

test_that("every built-in loss trains on its tasks", {
  yb <- factor(iris$Species == "setosa", levels = c(TRUE, FALSE))
  for (loss in mlr3ember:::builtin_losses("classif")) {
    expect_s3_class(ember_fit(iris[, 1:4], iris$Species, loss = loss, epochs = 1), "ember_model")
    expect_s3_class(ember_fit(iris[, 1:4], yb, loss = loss, epochs = 1), "ember_model")
  }
  for (loss in mlr3ember:::builtin_losses("regr")) {
    expect_s3_class(ember_fit(mtcars[, -1], mtcars$mpg, loss = loss, epochs = 1), "ember_model")
  }
  labels <- data.frame(setosa = iris$Species == "setosa", long = iris$Sepal.Length > 5.8)
  expect_identical(mlr3ember:::builtin_losses("multilabel"), c("bce", "focal"))
  for (loss in mlr3ember:::builtin_losses("multilabel")) {
    expect_s3_class(ember_fit(iris[, 1:4], labels, loss = loss, epochs = 1), "ember_model")
  }
})

test_that("the PipeOps' activation parameter table names engine activations only", {
  skip_if_no_mlr3()
  skip_if_not_installed("mlr3pipelines")
  table <- mlr3ember:::layer_pipeop_table()
  expect_true(all(mlr3ember:::activation_ops() %in% names(table)))
  ops <- sub("(conv|max_pool|avg_pool)[12]d$", "\\1", sub("adaptive_avg_pool2d", "adaptive_avg_pool", mlr3ember:::network_ops()))
  ops[ops == "cls_token"] <- "ft_cls"
  ops[ops == "transformer_block"] <- "ft_transformer_block"
  expect_setequal(setdiff(names(table), ops), character(0))
})

test_that("the architecture builders' defaults are the engine's", {
  defaults <- mlr3ember:::engine_vocabulary()$architectures
  builders <- list(mlp = ember_mlp, tab_resnet = ember_tab_resnet, ft_transformer = ember_ft_transformer, tabm = ember_tabm,
    featureless = ember_featureless, lenet = ember_cnn, resnet = ember_cnn, resnet18 = ember_cnn, resnet34 = ember_cnn,
    resnet50 = ember_cnn)
  expect_setequal(names(defaults), names(builders))
  for (arch in names(defaults)) {
    f <- formals(builders[[arch]])
    for (option in names(defaults[[arch]])) {
      expect_equal(eval(f[[option]]), defaults[[arch]][[option]], label = sprintf("%s: %s", arch, option))
    }
  }
})

test_that("the image architectures, unseen-level policies and optimizers are the engine's", {
  v <- mlr3ember:::engine_vocabulary()
  expect_setequal(names(v$architecture_inputs), names(v$architectures))
  # ember_cnn()'s documented choices are exactly the engine's image architectures.
  expect_setequal(eval(formals(ember_cnn)$type), mlr3ember:::image_architectures())
  for (type in mlr3ember:::image_architectures()) {
    expect_identical(mlr3ember:::architecture_input_kind(ember_cnn(type)), "image")
  }
  expect_identical(mlr3ember:::architecture_input_kind(ember_mlp()), "tabular")
  expect_identical(mlr3ember:::architecture_unseen_levels("ft_transformer"), "error")
  expect_identical(mlr3ember:::architecture_unseen_levels("mlp"), "warn")
  expect_setequal(unlist(v$unseen_levels), c("warn", "error"))
  expect_setequal(mlr3ember:::engine_optimizers(), c("sgd", "adam", "adamw", "rmsprop", "adagrad"))
  expect_error(ember_fit(iris[, 1:4], iris$Species, optimizer = "lbfgs", epochs = 1), class = "ember_error_invalid_argument")
})

test_that("the learners' optimizer hyperparameter defaults are the engine's", {
  skip_if_no_mlr3()
  ps <- mlr3::lrn("classif.ember_mlp")$param_set
  expect_setequal(ps$levels$optimizer, mlr3ember:::engine_optimizers())
  defaults <- mlr3ember:::engine_vocabulary()$optimizers
  checked <- 0L
  for (opt in names(defaults)) {
    for (h in intersect(names(defaults[[opt]]), sub("^opt\\.", "", ps$ids()))) {
      d <- ps$default[[paste0("opt.", h)]]
      if (is.null(d)) next  # no single default in R (lr, eps, weight_decay differ per optimizer)
      if (is.logical(d)) d <- as.numeric(d)
      expect_equal(d, defaults[[opt]][[h]], label = sprintf("%s: %s", opt, h))
      checked <- checked + 1L
    }
  }
  expect_gte(checked, 8L)
  expect_equal(ps$default[["opt.betas"]], c(defaults$adam$beta1, defaults$adam$beta2))
})
