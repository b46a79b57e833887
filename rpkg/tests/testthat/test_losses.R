# The losses beyond mse, l1 and cross-entropy (their values and gradients are checked against
# PyTorch in the Swift tests, LossExtraGoldenTests); here: they reach the engine from R and train.

test_that("huber, smooth_l1, focal and label smoothing train from ember_fit()", {
  set.seed(1)
  d <- data.frame(a = rnorm(120), b = rnorm(120))
  y <- d$a - d$b + stats::rt(120, 2)
  for (loss in c("huber", "smooth_l1")) {
    model <- ember_fit(d, y, loss = loss, epochs = 15, seed = 1, lr = 0.01)
    h <- model$history$train_loss
    expect_lt(h[length(h)], h[1L])
  }
  # smooth_l1 with beta = 0 is the L1 loss; focal with gamma = 0 is cross-entropy (the same
  # training up to rounding: the built-in losses run in the compiled step, the others on the tape).
  l1 <- ember_fit(d, y, loss = "l1", epochs = 5, seed = 2)
  sl1 <- ember_fit(d, y, loss = "smooth_l1", loss_args = list(beta = 0), epochs = 5, seed = 2)
  expect_equal(sl1$history$train_loss, l1$history$train_loss, tolerance = 1e-5)
  ce <- ember_fit(iris[, 1:4], iris$Species, epochs = 5, seed = 3, lr = 0.01)
  focal0 <- ember_fit(iris[, 1:4], iris$Species, loss = "focal", loss_args = list(gamma = 0), epochs = 5, seed = 3, lr = 0.01)
  expect_equal(focal0$history$train_loss, ce$history$train_loss, tolerance = 1e-5)
  focal <- ember_fit(iris[, 1:4], iris$Species, loss = "focal", loss_args = list(gamma = 2, class_weights = c(1, 2, 1)),
    epochs = 30, seed = 3, lr = 0.01)
  expect_gt(mean(predict(focal, iris) == iris$Species), 0.8)
  yb <- factor(ifelse(d$a > 0, "pos", "neg"), levels = c("pos", "neg"))
  sigmoid_focal <- ember_fit(d, yb, loss = "focal", loss_args = list(gamma = 2, alpha = 0.5), epochs = 30, seed = 1, lr = 0.01)
  expect_gt(mean(predict(sigmoid_focal, d) == yb), 0.85)
  smooth <- ember_fit(iris[, 1:4], iris$Species, loss_args = list(label_smoothing = 0.2), epochs = 5, seed = 3, lr = 0.01)
  expect_false(isTRUE(all.equal(smooth$history$train_loss, ce$history$train_loss)))
  expect_gt(min(smooth$history$train_loss), min(ce$history$train_loss))  # smoothed targets cannot reach 0
})

test_that("loss options are checked and named", {
  d <- data.frame(a = rnorm(20))
  y <- rnorm(20)
  yb <- factor(rep(c("a", "b"), 10))
  expect_error(ember_fit(d, y, loss = "focal", epochs = 1), "'loss' must be one of \"mse\", \"l1\", \"huber\", \"smooth_l1\"",
    class = "ember_error")
  expect_error(ember_fit(d, yb, loss = "huber", epochs = 1), "'loss' must be one of \"cross_entropy\", \"focal\"")
  e <- tryCatch(ember_fit(d, y, loss = "huber", loss_args = list(delta = -1), epochs = 1), ember_error = function(e) e)
  expect_match(conditionMessage(e), "\\[loss.delta\\] must be a number > 0, got -1")
  expect_identical(e$argument, "loss_args$delta")
  expect_error(ember_fit(d, y, loss = "huber", loss_args = list(gamma = 1), epochs = 1),
    "\\[loss.gamma\\] applies to focal and sigmoid_focal only")
  expect_error(ember_fit(d, yb, loss_args = list(label_smoothing = 2), epochs = 1),
    "\\[loss.label_smoothing\\] must be a number in \\[0, 1\\], got 2")
  expect_error(ember_fit(d, yb, loss = "focal", loss_args = list(alpha = 2), epochs = 1), "\\[loss.alpha\\] must be a number <= 1")
})

test_that("learners take the new losses and their options", {
  skip_if_no_mlr3()
  learner <- mlr3::lrn("classif.ember_mlp", loss = "focal", loss.gamma = 1, loss.alpha = 0.3, epochs = 5, batch_size = 16,
    seed = 1)
  learner$train(mlr3::tsk("sonar"))
  expect_length(learner$model$history$train_loss, 5L)
  learner <- mlr3::lrn("regr.ember_mlp", loss = "huber", loss.delta = 0.5, epochs = 3, batch_size = 16)
  learner$train(mlr3::tsk("mtcars"))
  expect_true(all(is.finite(learner$model$history$train_loss)))
  expect_error(mlr3::lrn("classif.ember_mlp", loss = "focal", loss.alpha = 0.3, epochs = 1, batch_size = 16)$train(mlr3::tsk("iris")),
    "'loss.alpha' weighs the positive class")
  expect_error(mlr3::lrn("classif.ember_mlp", loss = "focal", loss.weight = c(1, 2), epochs = 1, batch_size = 16)$train(mlr3::tsk("sonar")),
    "weigh the positive class with 'loss.alpha'")
  expect_false("loss.delta" %in% mlr3::lrn("classif.ember_mlp")$param_set$ids())
  expect_true(all(c("loss.delta", "loss.beta") %in% mlr3::lrn("regr.ember_mlp")$param_set$ids()))
  # The graph's loss PipeOp carries them too.
  skip_if_not_installed("mlr3pipelines")
  po <- mlr3pipelines::po
  graph <- Reduce(mlr3pipelines::`%>>%`, list(po("ember_ingress_num"), po("ember_head"),
    po("ember_loss", loss = "smooth_l1", beta = 0.5), po("ember_model_regr", epochs = 2, batch_size = 8)))
  expect_silent(mlr3::as_learner(graph)$train(mlr3::tsk("mtcars")))
})

test_that("Poisson regression: counts stay counts, predictions are rates, the link is in the model file", {
  set.seed(5)
  d <- data.frame(a = stats::runif(400, -1, 1))
  rate <- exp(0.5 + 1.2 * d$a)
  y <- stats::rpois(400, rate)
  model <- ember_fit(d, y, ember_mlp(neurons = integer(0)), loss = "poisson_nll", epochs = 60, lr = 0.05, seed = 1,
    standardize = FALSE)
  p <- predict(model, d)
  expect_true(all(p > 0))
  expect_lt(max(abs(log(p) - log(rate))), 0.35)  # a linear model on the log scale recovers the rate
  f <- tempfile(fileext = ".safetensors")
  on.exit(unlink(f))
  ember_save(model, f)
  expect_identical(predict(ember_load(f), d), p)
  # Rate outputs (log_input = FALSE, a network whose output is positive) predict the output itself.
  positive <- ember_input_num() |> ember_head() |> ember_activation("softplus") |> ember_network()
  raw <- ember_fit(d, y, positive, loss = "poisson_nll", loss_args = list(log_input = FALSE, full = TRUE), epochs = 30,
    lr = 0.05, seed = 1)
  expect_true(all(is.finite(raw$history$train_loss)))
  expect_lt(raw$history$train_loss[30], raw$history$train_loss[1])
  expect_gt(stats::cor(predict(raw, d), rate), 0.9)
  expect_error(ember_fit(d, y - 5, loss = "poisson_nll", epochs = 1), "expected a count >= 0")
  expect_error(ember_fit(d, y, loss = "mse", loss_args = list(full = TRUE), epochs = 1), "\\[loss.full\\] applies to poisson_nll only")
  skip_if_no_mlr3()
  task <- mlr3::as_task_regr(data.frame(d, y = y), target = "y")
  learner <- mlr3::lrn("regr.ember_mlp", loss = "poisson_nll", neurons = integer(0), epochs = 40, batch_size = 32,
    opt.lr = 0.05, seed = 1)
  learner$train(task)
  expect_true(all(learner$predict(task)$response > 0))
})
