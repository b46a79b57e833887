# Custom layers and losses written as R functions (ember_layer_fn(), ember_loss_fn()).

test_that("a custom layer trains, is stored in the model file, and equals the built-in op bit for bit", {
  set.seed(1)
  d <- data.frame(a = rnorm(100), b = rnorm(100))
  y <- d$a - 2 * d$b
  swish <- ember_layer_fn(function(x) x * ember_sigmoid(x))
  net <- ember_input_num() |> ember_linear(16) |> swish() |> ember_head() |> ember_network()
  expect_output(print(net), "fn_0 <- fn\\(linear_0; fn = function \\(x\\)  x \\* ember_sigmoid\\(x\\)\\)")
  model <- ember_fit(d, y, net, epochs = 30, lr = 0.01, seed = 1)
  expect_lt(model$history$train_loss[30], model$history$train_loss[1] / 2)
  f <- tempfile(fileext = ".safetensors")
  on.exit(unlink(f))
  ember_save(model, f)
  expect_identical(predict(ember_load(f), d), predict(model, d))

  build <- function(act) ember_input_num() |> ember_linear(16, id = "l") |> act() |> ember_head(id = "h") |> ember_network()
  custom <- ember_fit(d, y, build(function(x) ember_layer_fn(x, function(v) ember_relu(v), id = "act")), epochs = 5, seed = 4)
  builtin <- ember_fit(d, y, build(function(x) ember_activation(x, "relu", id = "act")), epochs = 5, seed = 4)
  expect_identical(predict(custom, d), predict(builtin, d))
  tanh_custom <- ember_fit(d, y, build(function(x) ember_layer_fn(x, function(v) tanh(v), id = "act")), epochs = 5, seed = 4)
  tanh_builtin <- ember_fit(d, y, build(function(x) ember_activation(x, "tanh", id = "act")), epochs = 5, seed = 4)
  expect_identical(predict(tanh_custom, d), predict(tanh_builtin, d))

  # Several inputs: a custom merge.
  merged <- ember_layer_fn(list(ember_input_num(columns = "a"), ember_input_num(columns = "b", id = "nb")),
    function(p, q) pmax(p, q) * 2 - pmin(p, q))
  m <- ember_fit(d, y, ember_network(merged |> ember_head()), epochs = 3, seed = 1)
  expect_length(predict(m, d), 100L)
  # Indexing and reductions within a sample.
  pick <- ember_input_num() |> ember_linear(4) |>
    ember_layer_fn(function(x) ember_sum(x * ember_softmax(x, dim = 1), dim = 1) + x[, 2] * 0) |> ember_reshape(1) |>
    ember_head() |> ember_network()
  expect_length(predict(ember_fit(d, y, pick, epochs = 2, seed = 1), d), 100L)
})

test_that("custom losses train and equal the built-in losses they restate", {
  set.seed(2)
  d <- data.frame(a = rnorm(100), b = rnorm(100))
  y <- d$a - 2 * d$b
  net <- ember_network(ember_input_num() |> ember_linear(8, id = "l") |> ember_activation("relu", id = "r") |> ember_head(id = "h"))
  mae <- ember_loss_fn(function(pred, target) mean(abs(pred - target)))
  expect_identical(predict(ember_fit(d, y, net, loss = mae, epochs = 5, seed = 4), d),
    predict(ember_fit(d, y, net, loss = "l1", epochs = 5, seed = 4), d))
  ce <- ember_loss_fn(function(pred, target) -mean(ember_sum(target * ember_log_softmax(pred, dim = 1), dim = 1)))
  expect_identical(predict(ember_fit(iris[, 1:4], iris$Species, loss = ce, epochs = 5, seed = 4), iris, type = "prob"),
    predict(ember_fit(iris[, 1:4], iris$Species, epochs = 5, seed = 4), iris, type = "prob"))
  yb <- factor(ifelse(d$a > 0, "pos", "neg"), levels = c("pos", "neg"))
  bce <- ember_loss_fn(function(pred, target) mean(ember_relu(pred) - pred * target + log1p(exp(-abs(pred)))))
  a <- ember_fit(d, yb, loss = bce, epochs = 5, seed = 4)
  b <- ember_fit(d, yb, epochs = 5, seed = 4)
  expect_equal(predict(a, d, type = "prob"), predict(b, d, type = "prob"), tolerance = 1e-6)
  # Something new: a pinball (quantile) loss for the 0.9 quantile.
  pinball <- ember_loss_fn(function(pred, target) mean(pmax(0.9 * (target - pred), (0.9 - 1) * (target - pred))))
  q <- ember_fit(d, y + stats::rnorm(100), loss = pinball, epochs = 60, lr = 0.02, seed = 1, standardize = FALSE)
  expect_gt(mean(y + stats::rnorm(100) < predict(q, d)), 0.7)
  expect_output(print(pinball), "<ember_loss_fn> function \\(pred, target\\)")
})

test_that("tracing errors say what is available", {
  expect_error(ember_layer_fn(function(x) x > 0), "'>' is not available in a custom layer or loss", class = "ember_error")
  expect_error(ember_layer_fn(function(x) max(x)), "'max\\(\\)' of traced values is not available")
  expect_error(ember_layer_fn(function(x) gamma(x)), "'gamma\\(\\)' is not available in a custom layer or loss")
  expect_error(ember_layer_fn(function(x) log(x, 2)), "natural logarithm")
  expect_error(ember_layer_fn(function(x) x + c(1, 2)), "single finite numbers only")
  expect_error(ember_layer_fn(function(x) 1), "must return a value computed from its arguments, got numeric")
  expect_error(ember_layer_fn(function(x) x[1, 2]), "selects one position of one dimension")
  expect_error(ember_layer_fn(function(x) stop("oops")), "'fn' could not be traced: oops")
  expect_error(ember_loss_fn(function(pred) pred), "'fn' must take 2 argument\\(s\\), it takes 1")
  expect_error(ember_sigmoid(1), "applies to the values of a custom layer or loss")
  expect_error(ember_select(mlr3ember:::new_expr(list(arg = 0L)), 1, 0), "'index' is 1-based")
  d <- data.frame(a = rnorm(20))
  per_batch <- ember_input_num() |> ember_layer_fn(function(x) sum(x)) |> ember_head() |> ember_network()
  expect_error(ember_fit(d, rnorm(20), per_batch, epochs = 1), "node 'fn_0' \\(fn\\): 'sum' in a layer needs a 'dim' other than 0")
  expect_error(ember_fit(d, rnorm(20), loss = ember_loss_fn(function(p, t) p - t), epochs = 1),
    "the loss expression must give one number, got shape \\[20, 1\\]")
})

test_that("learners and PipeOps take custom losses and layers", {
  skip_if_no_mlr3()
  loss <- ember_loss_fn(function(pred, target) mean((pred - target)^2))
  learner <- mlr3::lrn("regr.ember_mlp", loss.fn = loss, epochs = 3, batch_size = 8, seed = 1)
  learner$train(mlr3::tsk("mtcars"))
  builtin <- mlr3::lrn("regr.ember_mlp", epochs = 3, batch_size = 8, seed = 1)
  builtin$train(mlr3::tsk("mtcars"))
  expect_equal(learner$predict(mlr3::tsk("mtcars"))$response, builtin$predict(mlr3::tsk("mtcars"))$response, tolerance = 1e-5)
  expect_error(mlr3::lrn("regr.ember_mlp", loss.fn = "mse"), "ember_loss_fn")
  skip_if_not_installed("mlr3pipelines")
  po <- mlr3pipelines::po
  graph <- Reduce(mlr3pipelines::`%>>%`, list(po("ember_ingress_num"), po("ember_linear", out_features = 8),
    po("ember_fn", fn = function(x) x * ember_sigmoid(x)), po("ember_head"), po("ember_loss", fn = loss),
    po("ember_model_regr", epochs = 3, batch_size = 8, seed = 1)))
  glrn <- mlr3::as_learner(graph)
  glrn$train(mlr3::tsk("mtcars"))
  expect_true(all(is.finite(glrn$predict(mlr3::tsk("mtcars"))$response)))
})
