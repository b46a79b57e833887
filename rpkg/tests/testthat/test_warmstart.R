# Warm starts: ember_fit(init = ) and the learners' init_weights.

test_that("a warm start loads every matching parameter; a re-sized head is reported", {
  set.seed(1)
  a <- ember_fit(iris[, 1:4], iris$Species, epochs = 20, lr = 0.01, seed = 1)
  # lr = 0: the started model is the initial one, bit for bit.
  b <- ember_fit(iris[, 1:4], iris$Species, epochs = 1, optimizer = "sgd", lr = 0, seed = 2, init = a)
  expect_identical(predict(b, iris, type = "prob"), predict(a, iris, type = "prob"))
  expect_setequal(b$config$init$loaded, c("linear_0.weight", "linear_0.bias", "head.weight", "head.bias"))
  f <- tempfile(fileext = ".safetensors")
  on.exit(unlink(f))
  ember_save(a, f)
  from_file <- ember_fit(iris[, 1:4], iris$Species, epochs = 1, optimizer = "sgd", lr = 0, init = f)
  expect_identical(predict(from_file, iris, type = "prob"), predict(a, iris, type = "prob"))
  # Two classes instead of three: the body is loaded, the head keeps its initialisation.
  yb <- factor(iris$Species == "setosa", levels = c(TRUE, FALSE))
  expect_warning(two <- ember_fit(iris[, 1:4], yb, epochs = 1, optimizer = "sgd", lr = 0, init = a),
    "'init' set 2 of 4 parameters and buffers; kept as initialised: 'head.weight' \\[3, 64\\] -> \\[1, 64\\]; 'head.bias' \\[3\\] -> \\[1\\]",
    class = "ember_warning_init_partial")
  expect_identical(ember_get_parameter(two, "linear_0.weight"), ember_get_parameter(a, "linear_0.weight"))
  expect_identical(two$config$init$mismatched[[1L]]$name, "head.weight")
  # Strict mode and bad arguments.
  expect_error(ember_fit(iris[, 1:4], yb, epochs = 1, init = a, init_strict = TRUE),
    "'init' does not fit this network exactly \\(init_strict = TRUE\\): 'head.weight'", class = "ember_error")
  expect_error(ember_fit(iris[, 1:4], iris$Species, epochs = 1, init = "no_such.safetensors"), "'init' names no file")
  expect_error(ember_fit(iris[, 1:4], iris$Species, epochs = 1, init = 42), "'init' must be an ember_model or the path")
  net <- ember_network(ember_input_num() |> ember_linear(4, id = "other") |> ember_head(id = "out"))
  expect_error(ember_fit(iris[, 1:4], iris$Species, net, epochs = 1, init = a), "no parameter of 'init' matches this network")
})

test_that("fine-tuning: warm start, a frozen body, then gradual unfreezing", {
  set.seed(3)
  d <- data.frame(a = rnorm(200), b = rnorm(200), c = rnorm(200))
  net <- ember_network(ember_input_num() |> ember_linear(16, id = "body") |> ember_activation("relu") |> ember_head(id = "out"))
  source_model <- ember_fit(d, d$a - d$b, net, epochs = 30, lr = 0.01, seed = 1)
  y <- factor(ifelse(d$a - d$b + 0.1 * d$c > 0, "up", "down"))
  seen <- list()
  spy <- ember_callback("spy", on_epoch_end = function(ctx) seen[[ctx$epoch]] <<- ember_get_parameter(ctx$model, "body.weight"))
  # Regression and two classes both have one output: every parameter loads.
  tuned <- ember_fit(d, y, net, epochs = 20, lr = 0.01, init = source_model, callbacks = list(
    ember_cb_unfreeze("out.*", data.frame(epoch = 3, weights = "body.*")), spy))
  expect_length(tuned$config$init$mismatched, 0L)
  expect_identical(seen[[1L]], ember_get_parameter(source_model, "body.weight"))
  expect_identical(seen[[2L]], seen[[1L]])
  expect_false(identical(seen[[3L]], seen[[2L]]))
  expect_gt(mean(predict(tuned, d) == y), 0.8)
})

test_that("learners start from init_weights", {
  skip_if_no_mlr3()
  task <- mlr3::tsk("iris")
  first <- mlr3::lrn("classif.ember_mlp", epochs = 10, batch_size = 16, opt.lr = 0.01, seed = 1)
  first$train(task)
  second <- mlr3::lrn("classif.ember_mlp", epochs = 1, batch_size = 16, optimizer = "sgd", opt.lr = 0,
    init_weights = first$model, seed = 2, predict_type = "prob")
  second$train(task)
  first$predict_type <- "prob"
  expect_identical(second$predict(task)$prob, first$predict(task)$prob)
  expect_error(mlr3::lrn("classif.ember_mlp", init_weights = 3), "must be an ember_model or the path")
})

test_that("optimizer parameter groups give the body its own learning rate", {
  set.seed(4)
  d <- data.frame(a = rnorm(40), b = rnorm(40))
  y <- d$a - d$b
  net <- ember_network(ember_input_num() |> ember_linear(8, id = "body") |> ember_activation("relu") |> ember_head(id = "out"))
  start <- ember_fit(d, y, net, epochs = 1, optimizer = "sgd", lr = 0, seed = 1)
  # The body at lr 0 stays where it started; the head (the rest) trains at lr 0.05.
  grouped <- ember_fit(d, y, net, epochs = 3, optimizer = "sgd", lr = 0.05, seed = 1,
    opt_args = list(param_groups = list(list(params = "body.*", lr = 0))))
  expect_identical(ember_get_parameter(grouped, "body.weight"), ember_get_parameter(start, "body.weight"))
  expect_false(identical(ember_get_parameter(grouped, "out.weight"), ember_get_parameter(start, "out.weight")))
  expect_error(ember_fit(d, y, net, epochs = 1, opt_args = list(param_groups = list(list(lr = 1)))),
    "'param_groups' must be a list of groups", class = "ember_error")
  expect_error(ember_fit(d, y, net, epochs = 1, opt_args = list(param_groups = list(list(params = "nope.*", lr = 1)))),
    "param_groups\\[1\\] \\(nope.\\*\\) matches no parameter")
  expect_error(ember_fit(d, y, net, epochs = 1, opt_args = list(param_groups = list(list(params = "body.*", foo = 1)))),
    "\\[optimizer.param_groups\\[1\\].foo\\] is not an option of adam")
  skip_if_no_mlr3()
  learner <- mlr3::lrn("regr.ember_mlp", epochs = 2, batch_size = 8, opt.param_groups = list(list(params = "head.*", lr = 0.1)))
  learner$train(mlr3::tsk("mtcars"))
  expect_length(learner$model$history$lr, 2L)
})

test_that("training continues exactly from a kept optimizer state (init_resume)", {
  full <- ember_fit(iris[, 1:4], iris$Species, epochs = 10, seed = 3, lr = 0.01)
  part <- ember_fit(iris[, 1:4], iris$Species, epochs = 6, seed = 3, lr = 0.01, keep_optimizer_state = TRUE)
  expect_true(is.raw(part$config$trainer_state))
  expect_null(full$config$trainer_state)
  continued <- ember_fit(iris[, 1:4], iris$Species, epochs = 4, lr = 0.01, init = part, init_resume = TRUE,
    keep_optimizer_state = TRUE)
  expect_identical(predict(continued, iris, type = "prob"), predict(full, iris, type = "prob"))
  expect_identical(continued$history$epoch, 1:10)
  expect_identical(continued$history$train_loss, full$history$train_loss)
  expect_identical(continued$config$epochs, 10L)
  # With a schedule, validation and early-stopping state too.
  sched <- list(kind = "step", step_size = 3, gamma = 0.5)
  a <- ember_fit(iris[, 1:4], iris$Species, epochs = 8, seed = 4, lr = 0.02, schedule = sched,
    validate = list(x = iris[, 1:4], y = iris$Species))
  b1 <- ember_fit(iris[, 1:4], iris$Species, epochs = 5, seed = 4, lr = 0.02, schedule = sched,
    validate = list(x = iris[, 1:4], y = iris$Species), keep_optimizer_state = TRUE)
  b <- ember_fit(iris[, 1:4], iris$Species, epochs = 3, lr = 0.02, schedule = sched, init = b1, init_resume = TRUE,
    validate = list(x = iris[, 1:4], y = iris$Species))
  expect_identical(b$history$lr, a$history$lr)
  expect_identical(b$history$valid_loss, a$history$valid_loss)
  expect_error(ember_fit(iris[, 1:4], iris$Species, epochs = 1, init = full, init_resume = TRUE),
    "init_resume = TRUE continues a model trained with keep_optimizer_state = TRUE", class = "ember_error")
  expect_error(ember_fit(iris[, 1:4], factor(iris$Species == "setosa"), epochs = 1, init = part, init_resume = TRUE),
    "'y' must have the type and levels of the model that training continues")
})

test_that("mlr3's hotstart continues a learner exactly (hotstart_forward)", {
  skip_if_no_mlr3()
  task <- mlr3::tsk("iris")
  make <- function(epochs) mlr3::lrn("classif.ember_mlp", epochs = epochs, batch_size = 16, opt.lr = 0.01, seed = 1,
    keep_optimizer_state = TRUE, predict_type = "prob")
  short <- make(6)
  short$train(task)
  expect_true("hotstart_forward" %in% short$properties)
  hot <- make(10)
  hot$hotstart_stack <- mlr3::HotstartStack$new(list(short))
  hot$train(task)
  full <- make(10)
  full$train(task)
  expect_identical(hot$predict(task)$prob, full$predict(task)$prob)
  expect_identical(nrow(hot$model$history), 10L)
  # Without the optimizer state it continues from the weights, and says so.
  plain <- mlr3::lrn("classif.ember_mlp", epochs = 3, batch_size = 16, seed = 1)
  plain$train(task)
  more <- mlr3::lrn("classif.ember_mlp", epochs = 5, batch_size = 16, seed = 1)
  more$hotstart_stack <- mlr3::HotstartStack$new(list(plain))
  expect_warning(more$train(task), class = "ember_warning_hotstart_restart")
  expect_identical(nrow(more$model$history), 2L)
})

test_that("callbacks take back their kept state when training continues", {
  counter <- ember_callback("counter",
    on_begin = function(ctx) if (is.null(ctx$state$n)) ctx$state$n <- 0L,
    on_epoch_end = function(ctx) ctx$state$n <- ctx$state$n + 1L,
    state_dict = function(ctx) ctx$state$n,
    load_state_dict = function(ctx, state) ctx$state$n <- state)
  part <- ember_fit(iris[, 1:4], iris$Species, epochs = 6, seed = 3, keep_optimizer_state = TRUE, callbacks = list(counter))
  expect_identical(part$config$callback_states$counter, 6L)
  more <- ember_fit(iris[, 1:4], iris$Species, epochs = 4, init = part, init_resume = TRUE, callbacks = list(counter))
  expect_identical(more$config$callback_states$counter, 10L)
  expect_error(ember_callback("x", load_state_dict = function(ctx) NULL), "must be NULL or a function\\(ctx, state\\)")
})
