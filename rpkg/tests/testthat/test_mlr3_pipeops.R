# Networks as mlr3pipelines graphs: the Ember PipeOps (mlr3, mlr3pipelines needed).

skip_if_no_pipelines <- function() {
  skip_if_no_mlr3()
  if (!identical(Sys.getenv("EMBER_REQUIRE_MLR3"), "true")) skip_if_not_installed("mlr3pipelines")
  suppressPackageStartupMessages(library(mlr3pipelines))
  lgr::get_logger("mlr3")$set_threshold("warn")
  lgr::get_logger("bbotk")$set_threshold("warn")
}

# mlr3pipelines' own PipeOp checks (expect_pipeop), as shipped with it.
pipelines_helpers <- function() {
  env <- mlr3_helpers()
  suppressPackageStartupMessages(library(mlr3misc))
  dir <- system.file("testthat", package = "mlr3pipelines")
  for (f in c("helper_compat.R", "helper_functions.R")) sys.source(file.path(dir, f), envir = env, chdir = TRUE)
  if (!exists("NO_DEF", envir = env)) assign("NO_DEF", utils::getFromNamespace("NO_DEF", "paradox"), envir = env)
  env
}

# A small task with numeric, integer and factor features whose target depends on both kinds.
mixed_task <- function(n = 120, seed = 1) {
  set.seed(seed)
  d <- data.frame(a = rnorm(n), b = rnorm(n), k = sample(1:5, n, TRUE),
    g = factor(sample(c("u", "v", "w"), n, TRUE)), h = factor(sample(c("p", "q"), n, TRUE)))
  d$y <- factor(ifelse(d$a + (d$g == "u") - (d$h == "q") + rnorm(n, sd = 0.3) > 0, "yes", "no"))
  mlr3::as_task_classif(d, target = "y", id = "mixed")
}

test_that("every op of the network description has a PipeOp, and each passes mlr3pipelines' checks", {
  skip_if_no_pipelines()
  env <- pipelines_helpers()
  keys <- grep("^ember_", mlr_pipeops$keys(), value = TRUE)
  # Ops whose PipeOp covers several ops (conv1d/conv2d -> ember_conv ...) or that are not layers.
  op_keys <- unique(sub("(conv|max_pool|avg_pool)[12]d$", "\\1", sub("adaptive_avg_pool2d", "adaptive_avg_pool",
    setdiff(mlr3ember:::network_ops(), c("featureless")))))
  op_keys[op_keys == "cls_token"] <- "ft_cls"
  op_keys[op_keys == "transformer_block"] <- "ft_transformer_block"
  expect_setequal(setdiff(keys, paste0("ember_", c("ingress_num", "ingress_categ", "ingress_tensor", "block",
    "optimizer", "loss", "callbacks", "model_classif", "model_regr"))), paste0("ember_", op_keys))
  for (key in keys) {
    op <- if (key == "ember_block") po(key, block = po("ember_relu")) else po(key)
    env$expect_pipeop(op)
    expect_identical(op$id, key)
    expect_true(key %in% c("ember_model_classif", "ember_model_regr") || "ember" %in% op$tags)
  }
})

test_that("a graph MLP gives the predictions of the equivalent ember_network() learner, bit for bit", {
  skip_if_no_pipelines()
  task <- mlr3::tsk("iris")
  graph <- po("ember_ingress_num") %>>% po("ember_linear", id = "hidden", out_features = 16) %>>%
    po("ember_gelu", id = "act") %>>% po("ember_dropout", id = "drop", p = 0.1) %>>% po("ember_head", id = "out") %>>%
    po("ember_optimizer", optimizer = "adamw", lr = 0.01, weight_decay = 0.02) %>>%
    po("ember_model_classif", epochs = 8, batch_size = 16, seed = 7, predict_type = "prob")
  glrn <- mlr3::as_learner(graph)
  glrn$train(task)
  net <- ember_input_num() |> ember_linear(16, id = "hidden") |> ember_activation("gelu", id = "act") |>
    ember_dropout(0.1, id = "drop") |> ember_head(id = "out") |> ember_network()
  learner <- mlr3::lrn("classif.ember_network", network = net, epochs = 8, batch_size = 16, seed = 7,
    optimizer = "adamw", opt.lr = 0.01, opt.weight_decay = 0.02, predict_type = "prob")
  learner$train(task)
  expect_identical(glrn$predict(task)$prob, learner$predict(task)$prob)
  model <- glrn$graph_model$pipeops$ember_model_classif$learner_model$model
  expect_identical(ember_get_weights(model), ember_get_weights(learner$model))
  expect_gt(glrn$predict(task)$score(mlr3::msr("classif.acc")), 0.8)
})

test_that("numeric and categorical ingresses in two branches, merged; columns routed by name", {
  skip_if_no_pipelines()
  task <- mixed_task()
  graph <- gunion(list(
    po("select", id = "sel_num", selector = selector_type(c("numeric", "integer"))) %>>%
      po("ember_ingress_num", id = "num_in") %>>% po("ember_linear", id = "num_proj", out_features = 8),
    po("select", id = "sel_categ", selector = selector_type("factor")) %>>%
      po("ember_ingress_categ", id = "categ_in") %>>% po("ember_embedding", embedding_dim = 3) %>>% po("ember_flatten"))) %>>%
    po("ember_merge_cat") %>>% po("ember_relu") %>>% po("ember_head") %>>%
    po("ember_optimizer", lr = 0.02) %>>% po("ember_model_classif", epochs = 40, batch_size = 16, seed = 1)
  glrn <- mlr3::as_learner(graph)
  glrn$train(task)
  model <- glrn$graph_model$pipeops$ember_model_classif$learner_model$model
  routes <- model$encoding$routes
  expect_identical(vapply(routes, `[[`, "", "name"), c("num_in", "categ_in"))
  expect_identical(routes[[1L]]$columns, c("a", "b", "k"))
  expect_identical(routes[[2L]]$columns, c("g", "h"))
  p <- glrn$predict(task)
  expect_gt(p$score(mlr3::msr("classif.acc")), 0.8)
  # Columns are matched by name: reordered features predict the same.
  d <- task$data()
  expect_identical(glrn$predict_newdata(d[, rev(names(d)), with = FALSE])$response, p$response)
  # The model file keeps the routing.
  f <- tempfile(fileext = ".safetensors")
  on.exit(unlink(f))
  ember_save(model, f)
  reloaded <- ember_load(f)
  expect_identical(predict(reloaded, as.data.frame(d), type = "prob"), predict(model, as.data.frame(d), type = "prob"))
})

test_that("ember_block repeats a residual block with its own or shared parameters; n_blocks = 0 passes through", {
  skip_if_no_pipelines()
  task <- mlr3::tsk("mtcars")
  block <- gunion(list(po("nop", id = "skip"), po("ember_linear", id = "lin", out_features = 8) %>>%
    po("ember_tanh", id = "act"))) %>>% po("ember_merge_sum", id = "res")
  make <- function(n, shared = FALSE) {
    mlr3::as_learner(po("ember_ingress_num") %>>% po("ember_linear", id = "proj", out_features = 8) %>>%
      po("ember_block", block, id = "block", n_blocks = n, shared = shared) %>>% po("ember_head") %>>%
      po("ember_model_regr", epochs = 3, batch_size = 8, seed = 1))
  }
  glrn <- make(3)
  expect_true(all(c("block.n_blocks", "block.shared", "block.lin.out_features") %in% glrn$param_set$ids()))
  glrn$param_set$values$block.lin.out_features <- 8L
  glrn$train(task)
  param_names <- function(l, model_id = "ember_model_regr") ember_parameters(l$graph_model$pipeops[[model_id]]$learner_model$model)$name
  names3 <- param_names(glrn)
  expect_true(all(c("block.0.lin.weight", "block.2.lin.weight") %in% names3))
  shared <- make(3, shared = TRUE)
  shared$train(task)
  names_shared <- param_names(shared)
  expect_identical(sum(grepl("^block\\..*lin\\.weight$", names_shared)), 1L)
  none <- make(0)
  none$train(task)
  expect_false(any(grepl("^block", param_names(none))))
  # A block with its own parameters may change the shape (8 -> 5 -> 5); a shared one may not, and
  # the engine's error names the block.
  narrow <- po("ember_linear", id = "narrow", out_features = 5)
  make_narrow <- function(shared) mlr3::as_learner(po("ember_ingress_num") %>>% po("ember_linear", id = "proj", out_features = 8) %>>%
    po("ember_block", narrow, id = "block", n_blocks = 2, shared = shared) %>>% po("ember_head") %>>%
    po("ember_model_regr", epochs = 1, batch_size = 8))
  own <- make_narrow(FALSE)$train(task)
  own_model <- own$graph_model$pipeops$ember_model_regr$learner_model$model
  expect_identical(dim(ember_get_parameter(own_model, "block.0.narrow.weight")), c(5L, 8L))
  expect_identical(dim(ember_get_parameter(own_model, "block.1.narrow.weight")), c(5L, 5L))
  expect_error(make_narrow(TRUE)$train(task), "node 'block' \\(repeat\\).*shared parameters must keep the shape")
})

test_that("tuning block.n_blocks with an AutoTuner, and epochs internally with set_validate()", {
  skip_if_no_pipelines()
  skip_if_not_installed("mlr3tuning")
  suppressPackageStartupMessages(library(mlr3tuning))
  set.seed(3)
  graph <- ppl("ember_mlp", "classif", n_blocks = 1, d_block = 16, ember_model_classif.batch_size = 32,
    ember_model_classif.patience = 2, ember_model_classif.seed = 1,
    ember_model_classif.epochs = paradox::to_tune(upper = 30, internal = TRUE))
  glrn <- mlr3::as_learner(graph)
  glrn$param_set$set_values(block.n_blocks = paradox::to_tune(1, 4), ember_model_classif.eval_freq = 1)
  set_validate(glrn, "test")
  at <- mlr3tuning::auto_tuner(mlr3tuning::tnr("grid_search", resolution = 4), glrn, mlr3::rsmp("holdout"),
    mlr3::msr("classif.ce"))
  at$train(mlr3::tsk("sonar"))
  archive <- as.data.table(at$archive)
  expect_setequal(archive$block.n_blocks, 1:4)
  epochs <- archive[["internal_tuned_values_ember_model_classif.epochs"]]
  expect_length(epochs, 4L)
  expect_true(all(epochs >= 1L & epochs <= 30L))
  final <- at$learner$param_set$values
  expect_true(final$block.n_blocks %in% 1:4)
  expect_true(final$ember_model_classif.epochs >= 1L && final$ember_model_classif.epochs <= 30L)
  expect_s3_class(at$predict(mlr3::tsk("sonar")), "PredictionClassif")
})

test_that("architecture search with ppl('branch'), preprocessing before the ingress, the lr tuned", {
  skip_if_no_pipelines()
  skip_if_not_installed("mlr3tuning")
  set.seed(4)
  small <- po("ember_linear", id = "small", out_features = 4) %>>% po("ember_relu", id = "relu_s")
  big <- po("ember_linear", id = "big", out_features = 32) %>>% po("ember_relu", id = "relu_b")
  graph <- po("scale") %>>% po("pca") %>>% po("ember_ingress_num") %>>% ppl("branch", list(small = small, big = big)) %>>%
    po("ember_head") %>>% po("ember_optimizer") %>>% po("ember_model_classif", epochs = 10, batch_size = 16, seed = 2)
  glrn <- mlr3::as_learner(graph)
  glrn$param_set$set_values(branch.selection = paradox::to_tune(c("small", "big")),
    ember_optimizer.lr = paradox::to_tune(1e-3, 1e-1, logscale = TRUE))
  instance <- mlr3tuning::tune(mlr3tuning::tnr("random_search"), mlr3::tsk("iris"), glrn, mlr3::rsmp("holdout"),
    mlr3::msr("classif.ce"), term_evals = 4)
  expect_identical(nrow(as.data.table(instance$archive)), 4L)
  expect_true(instance$result$branch.selection %in% c("small", "big"))
})

test_that("loss and callbacks travel along the graph; a loss that does not fit the task is an error", {
  skip_if_no_pipelines()
  task <- mlr3::tsk("mtcars")
  graph <- po("ember_ingress_num") %>>% po("ember_linear", out_features = 8) %>>% po("ember_relu") %>>% po("ember_head") %>>%
    po("ember_loss", loss = "l1") %>>% po("ember_callbacks", lr_scheduler = "lr_step", lr_step.step_size = 1, lr_step.gamma = 0.5) %>>%
    po("ember_optimizer", optimizer = "sgd", lr = 0.1) %>>% po("ember_model_regr", epochs = 3, batch_size = 8, seed = 1)
  glrn <- mlr3::as_learner(graph)
  glrn$train(task)
  history <- glrn$graph_model$pipeops$ember_model_regr$learner_model$model$history
  expect_equal(history$lr, c(0.05, 0.025, 0.0125), tolerance = 1e-6)
  net <- ember_input_num() |> ember_linear(8, id = "ember_linear") |> ember_activation("relu", id = "ember_relu") |>
    ember_head(id = "ember_head") |> ember_network()
  learner <- mlr3::lrn("regr.ember_network", network = net, epochs = 3, batch_size = 8, seed = 1, loss = "l1",
    optimizer = "sgd", opt.lr = 0.1, cb.lr_scheduler = "lr_step", cb.lr_step.step_size = 1, cb.lr_step.gamma = 0.5)
  learner$train(task)
  expect_identical(glrn$predict(task)$response, learner$predict(task)$response)

  wrong <- mlr3::as_learner(po("ember_ingress_num") %>>% po("ember_head") %>>% po("ember_loss", loss = "mse") %>>%
    po("ember_model_classif", epochs = 1, batch_size = 8))
  expect_error(wrong$train(mlr3::tsk("iris")), "loss = \"mse\", which does not fit a classif task")
  twice <- mlr3::as_learner(gunion(list(po("ember_ingress_num") %>>% po("ember_optimizer", id = "o1", lr = 0.1),
    po("ember_ingress_num", id = "in2") %>>% po("ember_optimizer", id = "o2", lr = 0.2))) %>>% po("ember_merge_sum") %>>%
    po("ember_head") %>>% po("ember_model_regr", epochs = 1, batch_size = 8))
  expect_error(twice$train(task), "configure the optimizer differently")

  # Callback objects travel along the graph with their tunable parameters.
  stopper <- ember_callback("stopper", on_epoch_end = function(ctx) if (ctx$epoch >= ctx$params$at) ctx$stop(),
    param_set = paradox::ps(at = paradox::p_int(1, tags = "train")), params = list(at = 2L))
  cbs <- mlr3::as_learner(po("ember_ingress_num") %>>% po("ember_head") %>>% po("ember_callbacks", callbacks = list(stopper)) %>>%
    po("ember_model_regr", epochs = 10, batch_size = 8))
  expect_true("ember_callbacks.stopper.at" %in% cbs$param_set$ids())
  cbs$param_set$values$ember_callbacks.stopper.at <- 3L
  cbs$train(task)
  expect_identical(nrow(cbs$graph_model$pipeops$ember_model_regr$learner_model$model$history), 3L)
})

test_that("errors speak the graph's language: PipeOp ids, columns, what was expected", {
  skip_if_no_pipelines()
  learner <- function(graph) mlr3::as_learner(graph %>>% po("ember_head") %>>% po("ember_model_classif", epochs = 1, batch_size = 8))
  # A factor in a numeric ingress.
  expect_error(learner(po("ember_ingress_num", id = "nums"))$train(mixed_task()),
    "PipeOp 'nums' reads numeric, integer, logical features; the task has factor \\('g', 'h'\\).*po\\(\"select\"")
  # Missing values: advice to impute.
  task <- mlr3::tsk("penguins")$select(c("bill_length", "bill_depth"))
  expect_error(learner(po("ember_ingress_num"))$train(task), "feature 'bill_depth' has 2 missing value\\(s\\); impute them first")
  # A shape error of the engine names the PipeOp's layer.
  conv <- po("ember_ingress_num") %>>% po("ember_conv", id = "my_conv", out_channels = 2, kernel_size = 3)
  expect_error(learner(conv)$train(mlr3::tsk("iris")), "my_conv")
  # A tensor ingress whose shape does not fit the columns.
  tensor <- po("ember_ingress_tensor", id = "pixels", shape = c(1, 3, 3))
  expect_error(learner(tensor)$train(mlr3::tsk("iris")), "PipeOp 'pixels': shape c\\(1, 3, 3\\) needs 9 pixel columns; the task has 4 features")
  # A layer PipeOp fed a task instead of a model descriptor.
  expect_error(mlr3::as_learner(po("ember_relu") %>>% po("ember_model_classif", epochs = 1, batch_size = 4))$train(mlr3::tsk("iris")),
    "EmberModelDescriptor|ember_relu")
  # Ids with '.' become '_' in the network (ids of the description contain no '.').
  expect_identical(mlr3ember:::layer_id("a.b"), "a_b")
})

test_that("images as numeric pixel columns through ember_ingress_tensor and a CNN", {
  skip_if_no_pipelines()
  set.seed(5)
  n <- 80
  pixels <- matrix(runif(n * 36), n, 36)
  y <- factor(ifelse(rowMeans(pixels[, 1:18]) > rowMeans(pixels[, 19:36]), "top", "bottom"))
  d <- data.frame(pixels, y = y)
  task <- mlr3::as_task_classif(d, target = "y")
  graph <- po("ember_ingress_tensor", shape = c(1, 6, 6)) %>>%
    po("ember_conv", out_channels = 4, kernel_size = 3, padding = 1) %>>% po("ember_relu") %>>%
    po("ember_max_pool", kernel_size = 2) %>>% po("ember_flatten") %>>% po("ember_head") %>>%
    po("ember_optimizer", lr = 0.01) %>>% po("ember_model_classif", epochs = 30, batch_size = 16, seed = 1)
  glrn <- mlr3::as_learner(graph)
  glrn$train(task)
  expect_gt(glrn$predict(task)$score(mlr3::msr("classif.acc")), 0.8)
})

test_that("an FT-Transformer written as a graph trains", {
  skip_if_no_pipelines()
  task <- mixed_task(seed = 2)
  graph <- gunion(list(
    po("select", id = "s1", selector = selector_type(c("numeric", "integer"))) %>>% po("ember_ingress_num") %>>%
      po("ember_tokenizer_num", d_token = 8),
    po("select", id = "s2", selector = selector_type("factor")) %>>% po("ember_ingress_categ") %>>%
      po("ember_tokenizer_categ", d_token = 8))) %>>%
    po("ember_merge_cat", dim = 1) %>>% po("ember_ft_cls") %>>%
    po("ember_ft_transformer_block", n_heads = 2, is_first_layer = TRUE, attention_dropout = 0, ffn_dropout = 0) %>>%
    po("ember_multihead_attention", num_heads = 2) %>>%
    po("ember_select_cls") %>>% po("ember_layer_norm") %>>% po("ember_relu") %>>% po("ember_head") %>>%
    po("ember_optimizer", lr = 0.01) %>>% po("ember_model_classif", epochs = 30, batch_size = 16, seed = 1)
  glrn <- mlr3::as_learner(graph)
  glrn$train(task)
  expect_gt(glrn$predict(task)$score(mlr3::msr("classif.acc")), 0.7)
})

test_that("ember_nn() counts ids per op; ppl('ember_tab_resnet') trains", {
  skip_if_no_pipelines()
  a <- ember_nn("linear", out_features = 3)
  b <- ember_nn("linear", out_features = 3)
  expect_match(a$id, "^linear_[0-9]+$")
  expect_identical(as.integer(sub("linear_", "", b$id)), as.integer(sub("linear_", "", a$id)) + 1L)
  expect_identical(ember_nn("relu", .id = "act")$id, "act")
  expect_error(ember_nn("no_such_op"), "'no_such_op' is not an Ember PipeOp")
  glrn <- mlr3::as_learner(ppl("ember_tab_resnet", "regr", n_blocks = 2, d_block = 8, ember_model_regr.epochs = 5,
    ember_model_regr.batch_size = 8, ember_model_regr.seed = 1))
  glrn$train(mlr3::tsk("mtcars"))
  expect_true(is.numeric(glrn$predict(mlr3::tsk("mtcars"))$response))
  expect_true("block.linear1.out_features" %in% glrn$param_set$ids())
})

test_that("graph learners marshal, survive saveRDS, and run under callr encapsulation and future multisession", {
  skip_if_no_pipelines()
  skip_on_cran()
  task <- mlr3::tsk("iris")
  glrn <- mlr3::as_learner(po("ember_ingress_num") %>>% po("ember_linear", out_features = 8) %>>% po("ember_relu") %>>%
    po("ember_head") %>>% po("ember_model_classif", epochs = 5, batch_size = 16, seed = 1))
  glrn$train(task)
  before <- glrn$predict(task)$response
  glrn$marshal()
  expect_true(glrn$marshaled)
  f <- tempfile(fileext = ".rds")
  on.exit(unlink(f))
  saveRDS(glrn, f)
  back <- readRDS(f)
  back$unmarshal()
  expect_identical(back$predict(task)$response, before)

  if (requireNamespace("callr", quietly = TRUE)) {
    enc <- glrn$clone(deep = TRUE)
    enc$encapsulate("callr", mlr3::lrn("classif.featureless"))
    enc$train(task)
    expect_identical(enc$predict(task)$response, before)
  }
  skip_if_not_installed("future")
  resampling <- mlr3::rsmp("cv", folds = 2)$instantiate(task)
  sequential <- mlr3::resample(task, glrn, resampling)
  old <- future::plan("multisession", workers = 2)
  on.exit(future::plan(old), add = TRUE)
  parallel <- mlr3::resample(task, glrn, resampling)
  expect_identical(parallel$prediction()$response, sequential$prediction()$response)
})
