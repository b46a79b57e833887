# Callbacks: R code at the stages of training (ember_fit() without mlr3; learners with mlr3).

test_that("stages run in order with a context; stop ends training cleanly with the model kept", {
  seen <- character(0)
  log <- ember_callback("log",
    on_begin = function(ctx) seen <<- c(seen, sprintf("begin:%d/%d", ctx$epoch, ctx$epochs)),
    on_epoch_begin = function(ctx) seen <<- c(seen, sprintf("epoch_begin:%d", ctx$epoch)),
    on_epoch_end = function(ctx) {
      seen <<- c(seen, sprintf("epoch_end:%d:%d", ctx$epoch, nrow(ctx$history)))
      expect_s3_class(ctx$model, "ember_model")
      expect_identical(ctx$record$epoch, ctx$epoch)
    },
    on_valid_end = function(ctx) seen <<- c(seen, sprintf("valid_end:%d", ctx$epoch)),
    on_end = function(ctx) seen <<- c(seen, sprintf("end:%d", nrow(ctx$model$history))))
  set.seed(1)
  model <- ember_fit(iris[, 1:4], iris$Species, epochs = 3, eval_freq = 2, validate = 0.2, callbacks = list(log))
  expect_identical(seen, c("begin:0/3", "epoch_begin:1", "epoch_end:1:1", "epoch_begin:2", "epoch_end:2:2",
    "valid_end:2", "epoch_begin:3", "epoch_end:3:3", "valid_end:3", "end:3"))

  target <- ember_callback("target", on_epoch_end = function(ctx) {
    if (ctx$record$train$accuracy >= ctx$params$accuracy) ctx$stop()
  }, params = list(accuracy = 0.8))
  set.seed(1)
  model <- ember_fit(iris[, 1:4], iris$Species, epochs = 300, lr = 0.01, measures_train = "accuracy",
    callbacks = list(target))
  h <- model$history
  expect_lt(nrow(h), 300L)
  expect_gte(h$train_accuracy[nrow(h)], 0.8)
  expect_true(all(h$train_accuracy[-nrow(h)] < 0.8))
  expect_true(model$config$stopped_early)
  expect_gt(mean(predict(model, iris) == iris$Species), 0.7)

  # A stop in on_epoch_begin trains no further epoch; a stop in on_begin trains none.
  at3 <- ember_callback("at3", on_epoch_begin = function(ctx) if (ctx$epoch == 3) ctx$stop())
  expect_identical(nrow(ember_fit(iris[, 1:4], iris$Species, epochs = 10, callbacks = list(at3))$history), 2L)
  never <- ember_callback("never", on_begin = function(ctx) ctx$stop())
  expect_identical(nrow(ember_fit(iris[, 1:4], iris$Species, epochs = 10, callbacks = list(never))$history), 0L)
  # Plain functions(model, record) still work; returning FALSE stops.
  plain <- ember_fit(iris[, 1:4], iris$Species, epochs = 10, callbacks = list(function(model, record) record$epoch < 4))
  expect_identical(nrow(plain$history), 4L)
})

test_that("a callback sets the learning rate, keeps state, and its state_dict stays with the model", {
  halve <- ember_callback("halve",
    on_begin = function(ctx) ctx$state$lrs <- numeric(0),
    on_epoch_end = function(ctx) {
      ctx$state$lrs <- c(ctx$state$lrs, ctx$record$lr)
      if (ctx$epoch %% 2 == 0) ctx$set_lr(ctx$record$lr / 2)
    },
    state_dict = function(ctx) ctx$state$lrs)
  model <- ember_fit(iris[, 1:4], iris$Species, epochs = 6, lr = 0.04, callbacks = list(halve))
  expect_equal(model$history$lr, c(0.04, 0.04, 0.02, 0.02, 0.01, 0.01), tolerance = 1e-7)
  expect_equal(model$config$callback_states$halve, model$history$lr, tolerance = 1e-7)
  back <- ember_unserialize(ember_serialize(model))
  expect_identical(back$config$callback_states, model$config$callback_states)
  # The same as the built-in step schedule, bit for bit.
  step <- ember_fit(iris[, 1:4], iris$Species, epochs = 6, lr = 0.04, seed = 3,
    schedule = list(kind = "step", step_size = 2, gamma = 0.5))
  custom <- ember_fit(iris[, 1:4], iris$Species, epochs = 6, lr = 0.04, seed = 3, callbacks = list(halve))
  expect_identical(predict(custom, iris, type = "prob"), predict(step, iris, type = "prob"))
  expect_error(ember_fit(iris[, 1:4], iris$Species, epochs = 2, callbacks = list(ember_callback("bad_lr",
    on_begin = function(ctx) ctx$set_lr(-1)))), "'lr' must be a number >= 0", class = "ember_error")
})

test_that("an error in a callback stops training, keeps the model, and is raised with its class", {
  boom <- ember_callback("boom", on_epoch_end = function(ctx) {
    if (ctx$epoch == 3) stop(structure(class = c("my_error", "error", "condition"), list(message = "boom at 3", call = NULL)))
  })
  ended <- FALSE
  watcher <- ember_callback("watcher", on_end = function(ctx) ended <<- TRUE)
  e <- tryCatch(ember_fit(iris[, 1:4], iris$Species, epochs = 10, callbacks = list(boom, watcher)), my_error = function(e) e)
  expect_s3_class(e, "my_error")
  expect_identical(conditionMessage(e), "boom at 3")
  expect_identical(e$callback, "boom")
  expect_s3_class(e$model, "ember_model")
  expect_identical(nrow(e$model$history), 3L)
  expect_length(predict(e$model, iris), 150L)
  expect_false(ended)
})

test_that("built-ins are callbacks: unfreeze trains the head first; checkpoints; conflicts are errors", {
  set.seed(2)
  d <- data.frame(a = rnorm(64), b = rnorm(64))
  y <- d$a - d$b
  weights <- list()
  spy <- ember_callback("spy", on_epoch_end = function(ctx) weights[[ctx$epoch]] <<- ember_get_parameter(ctx$model, "linear_0.weight"))
  unfreeze <- ember_cb_unfreeze(starting_weights = "head_0.*", unfreeze = data.frame(epoch = 4, weights = "*"))
  net <- ember_network(ember_input_num() |> ember_linear(8) |> ember_head())
  start <- ember_fit(d, y, net, epochs = 1, seed = 1, lr = 1e-12)
  model <- ember_fit(d, y, net, epochs = 6, seed = 1, callbacks = list(unfreeze, spy))
  changes <- vapply(2:6, function(i) max(abs(weights[[i]] - weights[[i - 1L]])), numeric(1))
  expect_identical(changes[1:2], c(0, 0))
  expect_true(all(changes[3:5] > 0))
  expect_equal(weights[[1]], ember_get_parameter(start, "linear_0.weight"), tolerance = 1e-6)

  dir <- tempfile()
  on.exit(unlink(dir, recursive = TRUE))
  ember_fit(d, y, epochs = 4, callbacks = list(ember_cb_checkpoint(dir, freq = 2)))
  expect_setequal(list.files(dir), c("checkpoint_2.safetensors", "checkpoint_4.safetensors"))
  expect_s3_class(ember_load(file.path(dir, "checkpoint_4.safetensors")), "ember_model")

  expect_error(ember_fit(d, y, epochs = 2, patience = 2, validate = 0.2, callbacks = list(ember_cb_early_stopping(3))),
    "either as 'patience' or as ember_cb_early_stopping\\(\\)")
  expect_error(ember_fit(d, y, epochs = 2, schedule = list(kind = "step", step_size = 1),
    callbacks = list(ember_cb_lr_scheduler(list(kind = "step", step_size = 2)))), "either as 'schedule'")
  # The early-stopping callback equals the argument.
  set.seed(5)
  a <- ember_fit(d, y, epochs = 30, validate = list(x = d, y = y), patience = 2, min_delta = 1, seed = 4)
  b <- ember_fit(d, y, epochs = 30, validate = list(x = d, y = y), seed = 4,
    callbacks = list(ember_cb_early_stopping(2, min_delta = 1)))
  expect_identical(nrow(a$history), nrow(b$history))
  expect_identical(predict(a, d), predict(b, d))
})

test_that("callback arguments are checked", {
  expect_error(ember_callback("a.b"), "'id' must be a non-empty name without '.'", class = "ember_error")
  expect_error(ember_callback("x", on_begin = 1), "'on_begin' of callback 'x' must be NULL or a function\\(ctx\\)")
  expect_error(ember_callback("x", params = list(1)), "'params' of callback 'x' must be a named list")
  expect_error(ember_fit(iris[, 1:4], iris$Species, epochs = 1, callbacks = list(1)),
    "'callbacks\\[\\[1\\]\\]' is a numeric; expected an ember_callback")
  cb <- ember_callback("same")
  expect_error(ember_fit(iris[, 1:4], iris$Species, epochs = 1, callbacks = list(cb, cb)), "two callbacks have the id 'same'")
  expect_error(ember_cb_unfreeze("*", unfreeze = list(epoch = 0, weights = "*")), "'unfreeze' must have columns")
  expect_output(print(cb), "<ember_callback> same")
})

test_that("learners take callbacks; their parameters are cb.<id>.* and tunable", {
  skip_if_no_mlr3()
  skip_if_not_installed("mlr3tuning")
  lgr::get_logger("mlr3")$set_threshold("warn")
  lgr::get_logger("bbotk")$set_threshold("warn")
  # Stops when the validation accuracy reaches a tunable target.
  target <- ember_callback("target",
    on_valid_end = function(ctx) if (ctx$record$valid$classif.acc >= ctx$params$acc) ctx$stop(),
    param_set = paradox::ps(acc = paradox::p_dbl(0, 1, tags = "train")), params = list(acc = 0.5))
  learner <- mlr3::lrn("classif.ember_mlp", callbacks = list(target), epochs = 200, batch_size = 16, opt.lr = 0.01,
    measures_valid = mlr3::msr("classif.acc"), seed = 1)
  expect_true("cb.target.acc" %in% learner$param_set$ids())
  expect_identical(learner$param_set$values$cb.target.acc, 0.5)
  learner$validate <- 0.3
  learner$train(mlr3::tsk("iris"))
  h <- learner$model$history
  expect_lt(nrow(h), 200L)
  expect_gte(h$valid_classif.acc[nrow(h)], 0.5)
  learner$param_set$values$cb.target.acc <- 0.95
  learner$train(mlr3::tsk("iris"))
  expect_gt(nrow(learner$model$history), nrow(h))
  # Clones keep the callbacks; the learner still passes mlr3's checks.
  expect_true("cb.target.acc" %in% learner$clone(deep = TRUE)$param_set$ids())
  set.seed(1)
  instance <- mlr3tuning::tune(mlr3tuning::tnr("grid_search", resolution = 2), mlr3::tsk("iris"),
    mlr3::lrn("classif.ember_mlp", callbacks = list(target), epochs = 100, batch_size = 16, opt.lr = 0.01, seed = 1,
      measures_valid = mlr3::msr("classif.acc"), cb.target.acc = paradox::to_tune(0.5, 0.9),
      validate = 0.3), mlr3::rsmp("holdout"), mlr3::msr("classif.ce"))
  expect_setequal(as.data.table(instance$archive)$cb.target.acc, c(0.5, 0.9))
  expect_error(mlr3::lrn("classif.ember_mlp", callbacks = list(ember_callback("checkpoint"))), "names one of the learner's own")
  # An error in a callback inside a learner reaches the user with its class.
  failing <- ember_callback("failing", on_epoch_end = function(ctx) stop(structure(class = c("cb_fail", "error", "condition"),
    list(message = "failed in epoch", call = NULL))))
  expect_error(mlr3::lrn("regr.ember_mlp", callbacks = list(failing), epochs = 3, batch_size = 8)$train(mlr3::tsk("mtcars")),
    class = "cb_fail")
})
