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

test_that("quantile regression: one output per level, quantiles that cover their share, sorted rows, model files", {
  set.seed(11)
  n <- 1500L
  d <- data.frame(a = stats::runif(n, -1, 1), b = stats::rnorm(n))
  noise <- stats::runif(n, -1, 1)
  y <- 100 * (2 * d$a + noise) + 50  # the level-q quantile given a is 100 (2 a + 2 q - 1) + 50
  levels <- c(0.1, 0.5, 0.9)
  # A decaying rate: the pinball loss's gradient keeps its size near the optimum.
  model <- ember_fit(d, y, loss = "quantile", loss_args = list(quantiles = levels), epochs = 40, lr = 0.02, batch_size = 64,
    seed = 1, validate = 0.2, measures = "mae", schedule = list(kind = "cosine_annealing", t_max = 40))
  expect_identical(model$task, "quantile_regression")
  expect_identical(model$quantiles, levels)
  expect_identical(model$outputs, 3L)
  expect_output(print(model), "quantile regression \\(levels 0.1, 0.5, 0.9\\)")
  expect_true(all(is.finite(model$history$valid_mae)))
  set.seed(12)
  dt <- data.frame(a = stats::runif(n, -1, 1), b = stats::rnorm(n))
  yt <- 100 * (2 * dt$a + stats::runif(n, -1, 1)) + 50
  q <- predict(model, dt, type = "quantiles")
  expect_identical(dim(q), c(n, 3L))
  expect_identical(colnames(q), c("q0.1", "q0.5", "q0.9"))
  for (j in 1:3) expect_lt(abs(mean(yt < q[, j]) - levels[j]), 0.04, label = colnames(q)[j])
  expect_true(all(q[, 1] <= q[, 2] & q[, 2] <= q[, 3]))
  expect_lt(mean(abs(q[, 2] - (200 * dt$a + 50))), 15)
  expect_identical(predict(model, dt), q[, "q0.5"])
  # The raw outputs are on the standardised scale, one column per level.
  expect_identical(colnames(predict(model, dt[1:3, ], type = "logits")), colnames(q))
  f <- tempfile(fileext = ".safetensors")
  on.exit(unlink(f))
  ember_save(model, f)
  loaded <- ember_load(f)
  expect_identical(loaded$quantiles, levels)
  expect_identical(predict(loaded, dt, type = "quantiles"), q)
  expect_identical(predict(ember_unserialize(ember_serialize(model)), dt, type = "quantiles"), q)
  # Without 0.5 the response is the middle level (the lower middle one for an even count).
  even <- ember_fit(d, y, loss = "quantile", loss_args = list(quantiles = c(0.2, 0.4, 0.6, 0.8)), epochs = 2, seed = 1)
  qe <- predict(even, d[1:5, ], type = "quantiles")
  expect_identical(predict(even, d[1:5, ]), qe[, "q0.4"])
  # The default level is the median.
  median_model <- ember_fit(d, y, loss = "quantile", epochs = 2, seed = 1)
  expect_identical(median_model$quantiles, 0.5)
})

test_that("quantile loss errors name the argument", {
  d <- data.frame(a = rnorm(20))
  y <- rnorm(20)
  expect_ember_error <- function(expr, pattern, argument) {
    e <- tryCatch(expr, ember_error = function(e) e)
    expect_s3_class(e, "ember_error_invalid_argument")
    expect_match(conditionMessage(e), pattern)
    expect_identical(e$argument, argument)
  }
  expect_ember_error(ember_fit(d, y, loss = "quantile", loss_args = list(quantiles = c(0.1, 1)), epochs = 1),
    "'loss_args\\$quantiles' must lie in \\(0, 1\\); level 2 is 1", "loss_args$quantiles")
  expect_ember_error(ember_fit(d, y, loss = "quantile", loss_args = list(quantiles = c(0, 0.5)), epochs = 1),
    "level 1 is 0", "loss_args$quantiles")
  expect_ember_error(ember_fit(d, y, loss = "quantile", loss_args = list(quantiles = c(0.9, 0.1)), epochs = 1),
    "must be strictly increasing \\(sorted, without repeats\\), e.g. c\\(0.1, 0.5, 0.9\\); level 2 \\(0.1\\) follows 0.9",
    "loss_args$quantiles")
  expect_ember_error(ember_fit(d, y, loss = "quantile", loss_args = list(quantiles = c(0.5, 0.5)), epochs = 1),
    "strictly increasing", "loss_args$quantiles")
  expect_ember_error(ember_fit(d, y, loss = "quantile", loss_args = list(quantiles = c(0.5, NA)), epochs = 1),
    "without NA", "loss_args$quantiles")
  expect_ember_error(ember_fit(d, y, loss = "mse", loss_args = list(quantiles = 0.5), epochs = 1),
    "'loss_args\\$quantiles' applies to loss = \"quantile\"", "loss_args$quantiles")
  expect_ember_error(ember_fit(d, factor(rep(c("a", "b"), 10)), loss = "quantile", epochs = 1),
    "loss = \"quantile\" is a regression loss \\(quantile regression of a numeric 'y'\\); 'y' is a factor", "loss")
  labels <- data.frame(p = rep(c(TRUE, FALSE), 10), q = rep(c(TRUE, TRUE, FALSE, FALSE), 5))
  expect_ember_error(ember_fit(d, labels, loss = "quantile", epochs = 1), "'y' is a multilabel target", "loss")
  model <- ember_fit(d, y, epochs = 1)
  expect_ember_error(predict(model, d, type = "quantiles"), "type = \"quantiles\" needs a quantile regression", "type")
  qm <- ember_fit(d, y, loss = "quantile", epochs = 1)
  expect_ember_error(predict(qm, d, type = "prob"), "needs a classification model; this is a quantile regression model", "type")
})

test_that("multilabel: a logical matrix or data.frame of 0/1 columns, BCE per label with pos_weight, probabilities", {
  set.seed(21)
  n <- 600L
  d <- data.frame(a = stats::runif(n, -1, 1), b = stats::runif(n, -1, 1))
  labels <- data.frame(left = d$a < 0, high = as.integer(d$b > 0.3), diag = d$a + d$b > 0)
  model <- ember_fit(d, labels, epochs = 40, lr = 0.02, batch_size = 32, seed = 1, validate = 0.25,
    measures = "hamming_accuracy", loss_args = list(pos_weight = c(1, 2, 1)))
  expect_identical(model$task, "multilabel")
  expect_identical(model$target$levels, c("left", "high", "diag"))
  expect_output(print(model), "multilabel classification \\(3 labels\\)")
  expect_gt(model$history$valid_hamming_accuracy[40], 0.93)
  p <- predict(model, d, type = "prob")
  expect_identical(dim(p), c(n, 3L))
  expect_identical(colnames(p), c("left", "high", "diag"))
  expect_true(all(p >= 0 & p <= 1))
  r <- predict(model, d)
  expect_true(is.logical(r) && is.matrix(r))
  expect_identical(r, p >= 0.5)
  expect_gt(mean(r == as.matrix(labels == 1)), 0.93)
  expect_equal(stats::plogis(predict(model, d, type = "logits")), p, tolerance = 1e-6)
  # A logical matrix without column names gives label1, label2 ...; the focal loss per label trains.
  m <- as.matrix(labels) == 1
  colnames(m) <- NULL
  focal <- ember_fit(d, m, loss = "focal", epochs = 3, seed = 2)
  expect_identical(colnames(predict(focal, d[1:2, ], type = "prob")), c("label1", "label2", "label3"))
  expect_lt(focal$history$train_loss[3], focal$history$train_loss[1])
  # Validation data given as list(x, y), an R measure, the model file.
  macro <- ember_measure(function(truth, response) mean(colMeans(truth == response)), name = "acc", minimize = FALSE,
    type = "response")
  v <- ember_fit(d[1:400, ], labels[1:400, ], epochs = 3, seed = 3, validate = list(x = d[401:n, ], y = labels[401:n, ]),
    measures = list(macro, "hamming_accuracy"))
  expect_equal(v$history$valid_acc, v$history$valid_hamming_accuracy, tolerance = 1e-6)
  f <- tempfile(fileext = ".safetensors")
  on.exit(unlink(f))
  ember_save(model, f)
  loaded <- ember_load(f)
  expect_identical(loaded$task, "multilabel")
  expect_identical(predict(loaded, d, type = "prob"), p)
})

test_that("multilabel target errors name the argument", {
  d <- data.frame(a = rnorm(20))
  labels <- data.frame(p = rep(c(TRUE, FALSE), 10), q = rep(c(1, 0, 0, 1), 5))
  check <- function(y, pattern, class = "ember_error_invalid_argument", ...) {
    e <- tryCatch(ember_fit(d, y, epochs = 1, ...), ember_error = function(e) e)
    expect_s3_class(e, class)
    expect_match(conditionMessage(e), pattern)
    expect_identical(e$argument, "y")
  }
  na <- labels
  na$q[4] <- NA
  check(na, "'y' has 1 missing value\\(s\\) in label column 2 \\('q'\\) \\(first in row 4\\)", class = "ember_error_missing_values")
  bad <- labels
  bad$q[3] <- 0.5
  check(bad, "'y' label column 2 \\('q'\\) must be logical or hold 0/1 values, got 0.5")
  text <- labels
  text$q <- as.character(text$q)
  check(text, "label column 2 \\('q'\\) must be logical or hold 0/1 values, got character")
  check(labels["p"], "'y' has 1 label column\\(s\\); a multilabel target needs at least 2 \\(for one label, use a factor")
  check(as.matrix(labels["p"]) == 1, "use a factor with two levels: binary classification")
  check(labels[1:10, ], "'y' has 10 rows; expected one per row of the features \\(20\\)", class = "ember_error_shape")
  e <- tryCatch(ember_fit(d, labels, loss = "mse", epochs = 1), ember_error = function(e) e)
  expect_match(conditionMessage(e), "'loss' must be one of \"bce\", \"focal\"")
  e <- tryCatch(ember_fit(d, labels, loss_args = list(pos_weight = c(1, 2, 3)), epochs = 1), ember_error = function(e) e)
  expect_match(conditionMessage(e), "\\[loss.pos_weight\\] must be 1 or 2 numbers > 0 \\(one per label\\)")
  expect_identical(e$argument, "loss_args$pos_weight")
  e <- tryCatch(ember_fit(d, labels, measures = "accuracy", epochs = 1), ember_error = function(e) e)
  expect_match(conditionMessage(e), "expected one of \"hamming_accuracy\" for a multilabel task")
})
