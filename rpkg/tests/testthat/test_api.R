test_that("ember_info reports the engine; threads can be set", {
  info <- ember_info()
  expect_identical(info$abi_version, 2L)
  expect_match(info$version, "^[0-9]+\\.[0-9]+\\.[0-9]+$")
  expect_true(is.character(info$blas_core) && nzchar(info$blas_core))
  expect_true(is.character(info$blas_advice) && length(info$blas_advice) == 1L)
  if (!is.na(info$blas_advice)) expect_match(info$blas_advice, "OPENBLAS_CORETYPE=", fixed = TRUE)
  expect_true(info$num_threads >= 1L)
  old <- ember_set_threads(1)
  expect_identical(ember_info()$num_threads, 1L)
  ember_set_threads(old)
})

test_that("the advice on OpenBLAS's kernels is given once per session", {
  old <- mlr3ember:::ember_session$blas_advice_given
  on.exit(assign("blas_advice_given", old, envir = mlr3ember:::ember_session))
  assign("blas_advice_given", FALSE, envir = mlr3ember:::ember_session)
  expect_silent(mlr3ember:::blas_advice_once(advice = NA_character_))
  expect_message(mlr3ember:::blas_advice_once(advice = "set OPENBLAS_CORETYPE=SkylakeX"), "mlr3ember: set OPENBLAS_CORETYPE=SkylakeX")
  expect_silent(mlr3ember:::blas_advice_once(advice = "set OPENBLAS_CORETYPE=SkylakeX"))
})

test_that("architectures print and turn into network descriptions", {
  for (arch in list(ember_mlp(), ember_tab_resnet(), ember_ft_transformer(), ember_featureless())) {
    expect_s3_class(arch, "ember_architecture")
    expect_output(print(arch), arch$name)
    net <- jsonlite::fromJSON(ember_network_description(arch, numeric = 3, cardinalities = c(2, 4)), simplifyVector = FALSE)
    expect_identical(net$format, "ember.network")
    expect_identical(net$output, "head")
  }
  net <- jsonlite::fromJSON(ember_network_description(ember_cnn("lenet"), image = c(1, 28, 28)), simplifyVector = FALSE)
  expect_identical(net$inputs[[1]]$shape, list(1L, 28L, 28L))
  expect_identical(ember_cnn("resnet", channels = 4)$params$channels, 4L)
})

test_that("multiclass classification learns iris; probabilities, logits and history", {
  set.seed(1)
  model <- ember_fit(iris[, 1:4], iris$Species, epochs = 30, batch_size = 16, lr = 0.01, measures_train = "accuracy")
  expect_s3_class(model, "ember_model")
  expect_output(print(model), "mlp for classification \\(3 classes\\)")
  pred <- predict(model, iris)
  expect_s3_class(pred, "factor")
  expect_identical(levels(pred), levels(iris$Species))
  expect_gt(mean(pred == iris$Species), 0.9)
  prob <- predict(model, iris, type = "prob")
  expect_identical(dim(prob), c(150L, 3L))
  expect_identical(colnames(prob), levels(iris$Species))
  expect_equal(unname(rowSums(prob)), rep(1, 150), tolerance = 1e-6)
  expect_identical(as.character(pred), colnames(prob)[max.col(prob, ties.method = "first")])
  logits <- predict(model, iris, type = "logits")
  expect_equal(unname(exp(logits) / rowSums(exp(logits))), unname(prob), tolerance = 1e-5)
  h <- model$history
  expect_s3_class(h, "ember_history")
  expect_identical(nrow(h), 30L)
  expect_true(all(c("epoch", "train_loss", "valid_loss", "lr", "train_accuracy") %in% names(h)))
  expect_lt(h$train_loss[30], h$train_loss[1])
  expect_output(print(h), "30 epoch")
  expect_output(print(summary(model)), "linear_0.weight")
  expect_identical(predict(model, iris[0, ]), factor(character(0), levels = levels(iris$Species)))
})

test_that("binary classification: the logit is the first level", {
  set.seed(2)
  x <- data.frame(a = c(rnorm(50, -2), rnorm(50, 2)))
  y <- factor(rep(c("pos", "neg"), each = 50), levels = c("pos", "neg"))
  model <- ember_fit(x, y, epochs = 40, batch_size = 10, lr = 0.01)
  prob <- predict(model, x, type = "prob")
  expect_identical(colnames(prob), c("pos", "neg"))
  expect_gt(mean(prob[1:50, "pos"]), 0.8)
  expect_gt(mean(prob[51:100, "neg"]), 0.8)
  logit <- predict(model, x, type = "logits")
  expect_identical(ncol(logit), 1L)
  expect_equal(unname(plogis(logit[, 1])), unname(prob[, "pos"]), tolerance = 1e-6)
  y2 <- factor(y, levels = c("neg", "pos"))
  model2 <- ember_fit(x, y2, epochs = 40, batch_size = 10, lr = 0.01)
  expect_gt(mean(predict(model2, x) == y2), 0.9)
})

test_that("outputs come from the factor levels, not the classes seen", {
  set.seed(3)
  y <- factor(rep(c("a", "b"), 20), levels = c("a", "b", "c"))
  model <- ember_fit(data.frame(x = rnorm(40)), y, epochs = 2, batch_size = 8)
  expect_identical(colnames(predict(model, data.frame(x = 1), type = "prob")), c("a", "b", "c"))
})

test_that("regression learns and predicts on the target's scale", {
  set.seed(4)
  x <- data.frame(u = runif(200, -1, 1), v = runif(200, -1, 1))
  y <- 1000 + 300 * x$u - 200 * x$v
  model <- ember_fit(x, y, epochs = 60, batch_size = 16, lr = 0.01, measures_train = "rmse")
  pred <- predict(model, x)
  expect_type(pred, "double")
  expect_lt(sqrt(mean((pred - y)^2)), 25)
  expect_true("train_rmse" %in% names(model$history))
  # l1 loss and a schedule
  model2 <- ember_fit(x, y, epochs = 20, batch_size = 16, lr = 0.01, loss = "l1",
    schedule = list(kind = "step", step_size = 5, gamma = 0.5))
  expect_equal(model2$history$lr[c(4, 5, 10)], c(0.01, 0.005, 0.0025))
})

test_that("every column type is encoded; columns are matched by name", {
  set.seed(5)
  d <- all_types_data()
  names(d)[1] <- "\u00e4 + \u1e9e"
  y <- factor(ifelse(d$fct == "x" | d$lgl, "A", "B"))
  model <- ember_fit(d, y, epochs = 40, batch_size = 16, lr = 0.01)
  types <- vapply(model$encoding$columns, `[[`, "", "type")
  expect_identical(types, c("numeric", "integer", "logical", "factor", "ordered"))
  expect_identical(model$encoding$columns[[4]]$levels, c("x", "y", "z"))
  # num holds numeric, integer, logical and ordered (standardised except logical); fct is categorical.
  expect_identical(encoding_inputs_for_test(model)$numeric, 4L)
  expect_identical(encoding_inputs_for_test(model)$cardinalities, 3L)
  inputs <- mlr3ember:::ember_encode(model$encoding, d[1:3, ])
  expect_identical(inputs$num[, 3], as.double(d$lgl[1:3]))
  expect_identical(inputs$num[, 4], as.double(as.integer(d$ord[1:3])))
  expect_identical(inputs$categ[, 1], as.integer(d$fct[1:3]) - 1L)
  p1 <- predict(model, d, type = "prob")
  p2 <- predict(model, d[, rev(names(d))], type = "prob")
  expect_identical(p1, p2)
  expect_gt(mean(predict(model, d) == y), 0.9)
  # A character column at prediction is matched against the factor's levels.
  d3 <- d[1:5, ]
  d3$fct <- as.character(d3$fct)
  expect_identical(predict(model, d3, type = "prob"), p1[1:5, ])
})

test_that("an unseen factor level: zeros with a warning (one-hot), an error (tokens)", {
  set.seed(6)
  d <- all_types_data(60)
  y <- d$num + (d$fct == "x")
  model <- ember_fit(d, y, epochs = 3, batch_size = 16)
  d2 <- d[1:3, ]
  d2$fct <- factor(c("x", "new", "y"))
  expect_warning(p <- predict(model, d2), class = "ember_warning_unseen_level")
  expect_length(p, 3L)
  w <- tryCatch(predict(model, d2), warning = function(w) w)
  expect_identical(w$argument, "fct")
  expect_identical(w$index, 2L)
  ft <- ember_fit(d, y, ember_ft_transformer(n_blocks = 1, d_token = 8, attention_n_heads = 2), epochs = 2)
  expect_ember_error(predict(ft, d2), "ember_error_unseen_level", "level 'new'", argument = "fct", index = 2L)
  # An unseen level of an ordered factor has no place in the order.
  d3 <- d[1:2, ]
  d3$ord <- factor(c("lo", "top"), levels = c("lo", "top"), ordered = TRUE)
  expect_ember_error(predict(model, d3), "ember_error_unseen_level", "ordered factor", argument = "ord", index = 2L)
})

test_that("TabResNet, FT-Transformer and featureless learn on mixed data", {
  set.seed(7)
  n <- 200
  d <- data.frame(x = rnorm(n), z = rnorm(n), g = factor(sample(c("a", "b", "c"), n, TRUE)))
  y <- factor(ifelse(d$x + (d$g == "a") * 2 > 0.5, "yes", "no"), levels = c("yes", "no"))
  acc <- function(m) mean(predict(m, d) == y)
  resnet <- ember_fit(d, y, ember_tab_resnet(n_blocks = 1, d_block = 32), epochs = 30, batch_size = 16, lr = 0.01)
  expect_gt(acc(resnet), 0.85)
  ft <- ember_fit(d, y, ember_ft_transformer(n_blocks = 1, d_token = 16, attention_n_heads = 2), epochs = 30,
    batch_size = 16, lr = 0.003)
  expect_gt(acc(ft), 0.85)
  fl <- ember_fit(d, y, ember_featureless(), epochs = 30, batch_size = 16, lr = 0.05)
  p <- predict(fl, d, type = "prob")
  expect_equal(unname(p[1, "yes"]), mean(y == "yes"), tolerance = 0.05)
  expect_identical(nrow(unique(round(p, 6))), 1L)
})

test_that("images: LeNet and ResNet learn 4-d and 3-d (grey) arrays", {
  set.seed(8)
  n <- 80
  x <- array(runif(n * 12 * 12, 0, 0.2), dim = c(n, 1, 12, 12))
  y <- factor(rep(c("left", "right"), length.out = n))
  for (i in seq_len(n)) {
    if (y[i] == "left") x[i, 1, , 1:4] <- x[i, 1, , 1:4] + 1 else x[i, 1, , 9:12] <- x[i, 1, , 9:12] + 1
  }
  lenet <- ember_fit(x, y, ember_cnn("lenet"), epochs = 15, batch_size = 8, lr = 0.01)
  expect_gt(mean(predict(lenet, x) == y), 0.95)
  expect_output(print(lenet), "images: \\[1, 12, 12\\]")
  grey <- x[, 1, , ]
  resnet <- ember_fit(grey, y, ember_cnn("resnet", channels = 4, n_blocks = 1), epochs = 10, batch_size = 8, lr = 0.01)
  expect_gt(mean(predict(resnet, grey) == y), 0.9)
  expect_identical(predict(resnet, grey, type = "prob"), predict(resnet, x, type = "prob"))
  expect_ember_error(predict(lenet, x[, , 1:10, ]), "ember_error_shape", "the model expects \\[1, 12, 12\\]")
  expect_ember_error(ember_fit(iris[, 1:4], iris$Species, ember_cnn()), "ember_error_invalid_argument", "CNN",
    argument = "x")
  expect_ember_error(ember_fit(x, y, ember_mlp()), "ember_error_invalid_argument", "tabular data", argument = "x")
})

test_that("torchvision's ResNets have torchvision's parameter names and train on images", {
  net <- jsonlite::fromJSON(ember_network_description(ember_cnn("resnet50"), image = c(3, 32, 32)), simplifyVector = FALSE)
  ids <- vapply(net$nodes, `[[`, "", "id")
  expect_true(all(c("conv1", "layer1.0.conv3", "layer4.0.downsample.1", "fc") %in% ids))
  expect_false("layer4.2.downsample.1" %in% ids)
  expect_identical(net$output, "fc")
  set.seed(3)
  x <- array(runif(8 * 1 * 8 * 8), dim = c(8, 1, 8, 8))
  y <- factor(rep(c("a", "b"), 4))
  model <- ember_fit(x, y, ember_cnn("resnet18"), epochs = 1, batch_size = 4)
  p <- ember_parameters(model)
  expect_identical(p$name[1:2], c("conv1.weight", "bn1.weight"))
  expect_identical(p$shape[[which(p$name == "conv1.weight")]], c(64L, 1L, 7L, 7L))
  expect_true(all(c("layer2.0.downsample.1.running_var", "fc.bias") %in% p$name))
  expect_identical(dim(predict(model, x, type = "prob")), c(8L, 2L))
  expect_ember_error(ember_cnn("resnet101"), "ember_error_invalid_argument", "\"resnet50\"", argument = "type")
})

test_that("validation data, measures and early stopping", {
  set.seed(9)
  model <- ember_fit(iris[, 1:4], iris$Species, epochs = 200, batch_size = 16, lr = 0.01, validate = 0.3,
    patience = 3, measures = c("logloss", "accuracy"))
  h <- model$history
  expect_true(all(c("valid_loss", "valid_logloss", "valid_accuracy") %in% names(h)))
  expect_lt(nrow(h), 200L)
  expect_true(model$config$stopped_early)
  expect_false(anyNA(h$valid_loss))
  # A separate validation set, validated every 2 epochs (and at the last).
  idx <- sample(150, 100)
  m2 <- ember_fit(iris[idx, 1:4], iris$Species[idx], epochs = 5, batch_size = 16,
    validate = list(x = iris[-idx, 1:4], y = iris$Species[-idx]), eval_freq = 2)
  expect_identical(is.na(m2$history$valid_loss), c(TRUE, FALSE, TRUE, FALSE, FALSE))
  # Early stopping driven by an R measure (as mlr3 measures are), restoring the best weights.
  acc <- ember_measure(function(truth, response) mean(truth == response), "acc", minimize = FALSE, type = "response")
  m3 <- ember_fit(iris[, 1:4], iris$Species, epochs = 100, batch_size = 16, lr = 0.01, validate = 0.3,
    patience = 2, measures = list(acc, "logloss"))
  expect_true("valid_acc" %in% names(m3$history))
  expect_identical(grep("^valid_", names(m3$history), value = TRUE), c("valid_loss", "valid_logloss", "valid_acc"))
  expect_true(m3$config$stopped_early)
  expect_lt(nrow(m3$history), 100L)
  expect_identical(m3$config$best_epoch, nrow(m3$history) - 2L)
  expect_identical(max(m3$history$valid_acc), m3$history$valid_acc[m3$config$best_epoch])
  expect_ember_error(ember_fit(iris[, 1:4], iris$Species, measures = "rmse"), "ember_error_invalid_argument",
    "multiclass task", argument = "measures", index = 1L)
})

test_that("R training measures and epoch callbacks", {
  set.seed(11)
  acc <- ember_measure(function(truth, response) mean(truth == response), "acc", minimize = FALSE, type = "response")
  seen <- list()
  record_epoch <- function(model, record) seen[[length(seen) + 1L]] <<- list(model = model, record = record)
  model <- ember_fit(iris[, 1:4], iris$Species, epochs = 4, batch_size = 16, lr = 0.01,
    measures_train = list(acc, "accuracy"), callbacks = list(record_epoch))
  h <- model$history
  expect_identical(grep("^train_", names(h), value = TRUE), c("train_loss", "train_accuracy", "train_acc"))
  # The R measure scores the model of the epoch's end on the training data, in evaluation mode.
  expect_equal(h$train_acc[4], mean(predict(model, iris) == iris$Species))
  expect_identical(vapply(seen, function(s) s$record$epoch, integer(1)), 1:4)
  expect_s3_class(seen[[2]]$model, "ember_model")
  expect_identical(nrow(seen[[2]]$model$history), 2L)
  expect_ember_error(ember_fit(iris[, 1:4], iris$Species, epochs = 1, callbacks = "x"), "ember_error_invalid_argument",
    "callbacks")
  expect_ember_error(ember_fit(iris[, 1:4], iris$Species, epochs = 1, measures_train = list(function(t, p) 1)),
    "ember_error_invalid_argument", "ember_measure")
  # A measure may be NA (e.g. undefined on the data); it is recorded and skipped by early stopping.
  undefined <- ember_measure(function(truth, prob) NA_real_, "undefined")
  m2 <- ember_fit(iris[, 1:4], iris$Species, epochs = 3, validate = 0.2, patience = 1, measures = list(undefined))
  expect_true(all(is.na(m2$history$valid_undefined)))
  expect_identical(nrow(m2$history), 3L)
})

test_that("a progress bar shows on request", {
  out <- capture.output(m <- ember_fit(iris[, 1:4], iris$Species, epochs = 3, progress = TRUE))
  expect_match(paste(out, collapse = "\n"), "100%")
  expect_silent(ember_fit(iris[, 1:4], iris$Species, epochs = 1, progress = FALSE))
})

test_that("plot draws the history", {
  set.seed(10)
  model <- ember_fit(iris[, 1:4], iris$Species, epochs = 5, validate = 0.2, measures = "accuracy")
  file <- tempfile(fileext = ".pdf")
  grDevices::pdf(file)
  expect_invisible(plot(model$history))
  plot(model$history, metric = "accuracy")
  expect_ember_error(plot(model$history, metric = "auc"), "ember_error_invalid_argument", "no 'auc'")
  grDevices::dev.off()
  expect_gt(file.size(file), 1000)
  unlink(file)
})

test_that("the same seed gives the same model; set.seed governs seed = NULL", {
  fit <- function(seed = NULL) ember_fit(iris[, 1:4], iris$Species, ember_mlp(p = 0.2), epochs = 3, batch_size = 16,
    seed = seed)
  expect_identical(predict(fit(11), iris, type = "prob"), predict(fit(11), iris, type = "prob"))
  expect_false(identical(predict(fit(11), iris, type = "prob"), predict(fit(12), iris, type = "prob")))
  set.seed(9); d <- fit()
  set.seed(9); e <- fit()
  expect_identical(predict(d, iris, type = "prob"), predict(e, iris, type = "prob"))
  # Threads do not change the result.
  a <- ember_fit(iris[, 1:4], iris$Species, epochs = 2, seed = 3, num_threads = 2)
  b <- ember_fit(iris[, 1:4], iris$Species, epochs = 2, seed = 3, num_threads = 1)
  expect_identical(predict(a, iris, type = "prob"), predict(b, iris, type = "prob"))
  # Batches of 256 rows: some products go to OpenBLAS, cut into one part per thread; the same seed
  # and num_threads give the same model.
  set.seed(4)
  x <- as.data.frame(matrix(rnorm(512 * 20), 512))
  y <- factor(rep(c("a", "b", "c"), length.out = 512))
  wide <- function() ember_fit(x, y, ember_mlp(neurons = c(256, 128)), epochs = 2, batch_size = 256, seed = 5,
    num_threads = 2)
  expect_identical(predict(wide(), x, type = "prob"), predict(wide(), x, type = "prob"))
})

test_that("optimizers and their options train", {
  for (opt in c("sgd", "adam", "adamw", "rmsprop", "adagrad")) {
    set.seed(6)
    model <- ember_fit(iris[, 1:4], iris$Species, epochs = 30, batch_size = 16, optimizer = opt,
      lr = if (opt == "sgd") 0.05 else 0.01, momentum = if (opt == "sgd") 0.9)
    expect_gt(mean(predict(model, iris) == iris$Species), 0.85, label = opt)
  }
  model <- ember_fit(iris[, 1:4], iris$Species, epochs = 2, opt_args = list(betas = c(0.8, 0.99), amsgrad = TRUE),
    loss_args = list(class_weights = c(1, 2, 1)))
  expect_s3_class(model, "ember_model")
})

test_that("save/load and serialize round trips; files are self-describing", {
  set.seed(7)
  d <- all_types_data(80)
  y <- factor(ifelse(d$num > 0, "hi", "lo"))
  model <- ember_fit(d, y, epochs = 5, batch_size = 16, validate = 0.2, measures = "accuracy")
  file <- tempfile(fileext = ".safetensors")
  expect_identical(ember_save(model, file), file)
  loaded <- ember_load(file)
  expect_identical(predict(model, d, type = "prob"), predict(loaded, d, type = "prob"))
  expect_identical(loaded$encoding, model$encoding)
  expect_identical(loaded$target, model$target)
  expect_equal(loaded$history$train_loss, model$history$train_loss)
  expect_identical(loaded$architecture$name, "mlp")
  rds <- tempfile(fileext = ".rds")
  saveRDS(ember_serialize(model), rds)
  model2 <- ember_unserialize(readRDS(rds))
  expect_identical(predict(model, d, type = "prob"), predict(model2, d, type = "prob"))
  expect_identical(model2$history, model$history)
  # A pointer saved without serializing is refused, not used.
  saveRDS(model, rds)
  stale <- readRDS(rds)
  expect_ember_error(predict(stale, d), "ember_error_stale_handle", "stale Ember handle")
  expect_output(print(stale), "not valid")
  unlink(c(file, rds))
})

test_that("parameters can be read, written, frozen and unfrozen", {
  set.seed(8)
  model <- ember_fit(iris[, 1:4], iris$Species, ember_mlp(neurons = 8), epochs = 2)
  p <- ember_parameters(model)
  expect_identical(p$name, c("linear_0.weight", "linear_0.bias", "head.weight", "head.bias"))
  expect_identical(p$shape[[1]], c(8L, 4L))
  w <- ember_get_parameter(model, "linear_0.weight")
  expect_identical(dim(w), c(8L, 4L))
  # Row-major (PyTorch) and R's arrays agree: w[i, j] is output i's weight of input j.
  x <- as.matrix(iris[1, 1:4])
  ember_set_parameter(model, "linear_0.weight", w * 2)
  expect_equal(ember_get_parameter(model, "linear_0.weight"), w * 2, tolerance = 1e-6)
  ember_set_parameter(model, "linear_0.bias", seq_len(8) / 10)
  expect_equal(ember_get_parameter(model, "linear_0.bias"), seq_len(8) / 10, tolerance = 1e-6)
  expect_ember_error(ember_set_parameter(model, "linear_0.weight", matrix(0, 4, 8)), "ember_error_shape", "dimensions")
  expect_ember_error(ember_get_parameter(model, "nope"), "ember_error_invalid_argument", "no parameter", argument = "name")
  expect_identical(ember_freeze(model, "linear_0.*"), 2)
  expect_identical(ember_parameters(model)$frozen, c(TRUE, TRUE, FALSE, FALSE))
  expect_ember_error(ember_freeze(model, "encoder.*"), "ember_error_invalid_argument", "matches no parameter",
    argument = "pattern")
  expect_identical(ember_unfreeze(model, "*"), 4)
})

test_that("weights snapshot and restore, also from a file (fine-tuning)", {
  set.seed(9)
  model <- ember_fit(iris[, 1:4], iris$Species, ember_mlp(neurons = 8), epochs = 3)
  before <- predict(model, iris, type = "prob")
  weights <- ember_get_weights(model)
  expect_type(weights, "raw")
  ember_set_parameter(model, "head.bias", c(5, -5, 0))
  expect_false(identical(predict(model, iris, type = "prob"), before))
  ember_set_weights(model, weights)
  expect_identical(predict(model, iris, type = "prob"), before)
  file <- tempfile(fileext = ".safetensors")
  writeBin(weights, file)
  other <- ember_fit(iris[, 1:4], iris$Species, ember_mlp(neurons = 8), epochs = 1, seed = 99)
  ember_set_weights(other, file)
  expect_identical(predict(other, iris, type = "prob"), before)
  # A different network's weights do not fit.
  wide <- ember_fit(iris[, 1:4], iris$Species, ember_mlp(neurons = 16), epochs = 1)
  expect_ember_error(ember_set_weights(wide, weights), "ember_error_shape", "linear_0")
  expect_ember_error(ember_set_weights(wide, as.raw(1:3)), "ember_error_corrupt")
  expect_ember_error(ember_set_weights(wide, tempfile()), "ember_error_invalid_argument", "names no file",
    argument = "weights")
  unlink(file)
})

test_that("engine handles are freed by the garbage collector", {
  gc()
  before <- ember_live_handles()
  local({
    m <- ember_fit(iris[, 1:4], iris$Species, epochs = 1, validate = 0.2)
    m2 <- ember_unserialize(ember_serialize(m))
    p <- predict(m2, iris)
  })
  gc()
  expect_identical(ember_live_handles(), before)
  # Failed fits leak nothing either.
  try(ember_fit(iris[, 1:4], iris$Species, opt_args = list(nope = 1)), silent = TRUE)
  gc()
  expect_identical(ember_live_handles(), before)
})

test_that("the shared object carries the Swift runtime: no libswift* dependency", {
  skip_if(!nzchar(Sys.which("ldd")), "ldd not available")
  so <- system.file("libs", paste0("mlr3ember", .Platform$dynlib.ext), package = "mlr3ember")
  deps <- system2("ldd", so, stdout = TRUE)
  # An AddressSanitizer build (EMBER_SANITIZE=address, `make sanitize-r`) also links the
  # toolchain's ASan runtime; nothing else of the toolchain.
  deps <- deps[!grepl("libclang_rt\\.asan", deps)]
  expect_true(any(grepl("openblas", deps)))
  expect_false(any(grepl("swift|Foundation|dispatch", deps, ignore.case = TRUE)), info = paste(deps, collapse = "\n"))
})

test_that("a model handle in a forked child is refused, not used", {
  skip_on_os("windows")
  set.seed(1)
  model <- ember_fit(iris[, 1:4], iris$Species, epochs = 1)
  job <- parallel::mcparallel(tryCatch(predict(model, iris), error = function(e) conditionMessage(e)))
  res <- parallel::mccollect(job)[[1]]
  expect_match(res, "another process")
})

test_that("summary() of a model lists layers, shapes, parameters, FLOPs and memory", {
  model <- ember_fit(iris[, 1:4], iris$Species, ember_mlp(neurons = c(8, 5)), epochs = 1)
  s <- summary(model, batch_size = 10)
  l <- s$layers
  expect_identical(l$op, c("linear", "relu", "linear", "relu", "head"))
  expect_identical(l$output_shape, c("8", "8", "5", "5", "3"))
  expect_identical(l$trainable, c(4 * 8 + 8, 0, 8 * 5 + 5, 0, 5 * 3 + 3))
  expect_identical(sum(l$trainable), as.numeric(model$n_parameters))
  # Two FLOPs per multiply-add of the weights; one per element of the activations.
  expect_identical(l$flops, c(2 * 4 * 8, 8, 2 * 8 * 5, 5, 2 * 5 * 3))
  expect_identical(l$activation_bytes, 4 * c(8, 8, 5, 5, 3))
  expect_identical(s$memory[["predict"]], 10 * 4 * 29 + 4 * 103)
  expect_identical(s$memory[["train"]], 2 * 10 * 4 * 29 + 16 * 103)
  ember_freeze(model, "linear_0.*")
  expect_identical(summary(model)$layers$frozen[1], 40)
  out <- capture.output(print(s))
  expect_true(any(grepl("Forward FLOPs per sample: 187", out)))
  expect_true(any(grepl("Memory per batch of 10", out)))
})

test_that("summary() of an architecture for data: convolutions and attention counted, nothing trained", {
  s <- summary(ember_cnn("lenet"), x = array(0, c(2, 1, 28, 28)), y = factor(c("a", "b")), batch_size = 128)
  conv <- s$layers[s$layers$op == "conv2d", ][1, ]
  shape <- as.integer(strsplit(conv$output_shape, " x ")[[1]])
  kernel <- (conv$trainable - shape[1]) / shape[1]  # weights per output channel: in × kh × kw
  expect_identical(conv$flops, 2 * kernel * prod(shape))
  expect_identical(sum(s$layers$trainable), as.numeric(s$totals$trainable))
  expect_null(s$model)
  expect_output(print(s), "lenet \\(not trained\\)")
  ft <- summary(ember_ft_transformer(n_blocks = 1, d_token = 8, attention_n_heads = 2), x = iris[, 1:4], y = iris$Species)
  block <- ft$layers[ft$layers$op == "transformer_block", ]
  expect_gt(block$flops, 4 * 5 * 5 * 8)  # attention over 4 features + CLS token, d = 8
  expect_error(summary(ember_mlp()), regexp = "needs the data it is for")
  # torchvision's ResNet-18 at 224 x 224: 11,689,512 parameters with 1000 classes (here 2 classes:
  # one output: 513 x 999 fewer) and 1.82 G multiply-adds, as its documentation reports.
  r <- summary(ember_cnn("resnet18"), x = array(0, c(2, 3, 224, 224)), y = factor(1:2))
  expect_identical(r$totals$trainable, 11689512 - 513 * 999)
  expect_lt(abs(r$totals$flops / 2 / 1.814e9 - 1), 0.01)
})
