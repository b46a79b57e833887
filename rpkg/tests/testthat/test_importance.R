# Permutation importance (ember_importance(), the learners' $importance()).

importance_data <- function(n = 300) {
  set.seed(11)
  d <- data.frame(signal = rnorm(n), noise = rnorm(n), group = factor(sample(c("a", "b", "c"), n, TRUE)))
  d$y <- 2 * d$signal + 1.5 * (d$group == "a") + rnorm(n, sd = 0.1)
  d
}

test_that("permutation importance ranks the used features first and the unused one near 0", {
  d <- importance_data()
  model <- ember_fit(d[1:3], d$y, epochs = 40, batch_size = 16, lr = 0.01, seed = 1)
  imp <- ember_importance(model, d[1:3], d$y, seed = 1)
  expect_s3_class(imp, "data.frame")
  expect_identical(names(imp), c("feature", "importance", "sd"))
  expect_identical(imp$feature[1:2], c("signal", "group"))
  expect_identical(imp$feature[3], "noise")
  expect_lt(abs(imp$importance[3]), 0.05 * imp$importance[1])
  # The signal's importance is about twice its variance contribution: E[(2 (s - s'))^2] = 8.
  expect_gt(imp$importance[1], 4)
  expect_true(all(imp$sd >= 0))
  base <- attr(imp, "baseline")
  expect_equal(base, mean((predict(model, d[1:3]) - d$y)^2))
  # Seeded: the same shuffles; the session's generator is left as it was.
  set.seed(5)
  before <- runif(1)
  set.seed(5)
  again <- ember_importance(model, d[1:3], d$y, seed = 1)
  expect_identical(runif(1), before)
  expect_identical(again, imp)
  # Another loss; a custom one; groups permuted together.
  mae <- ember_importance(model, d[1:3], d$y, measure = "mae", n_repeats = 2, seed = 2)
  expect_identical(mae$feature[3], "noise")
  custom <- ember_importance(model, d[1:3], d$y, measure = function(truth, pred) mean((truth - pred)^2), seed = 1)
  expect_equal(custom$importance, imp$importance)
  grouped <- ember_importance(model, d[1:3], d$y, groups = list(both = c("signal", "noise")), seed = 1)
  expect_setequal(grouped$feature, c("both", "group"))
})

test_that("classification importance uses the log loss of the probabilities; a tensor column is one feature", {
  skip_if_not_installed("data.table")
  set.seed(3)
  n <- 240
  img <- array(rnorm(n * 4), c(n, 1, 2, 2))
  cls <- factor(ifelse(img[, 1, 1, 1] > 0, "up", "down"))
  d <- data.table::data.table(img = as_ember_tensor(img), noise = rnorm(n))
  model <- ember_fit(d, cls, epochs = 30, batch_size = 16, lr = 0.01, seed = 4)
  imp <- ember_importance(model, d, cls, n_repeats = 3, seed = 1)
  expect_identical(imp$feature, c("img", "noise"))
  p <- predict(model, d, type = "prob")
  expect_equal(attr(imp, "baseline"), -mean(log(p[cbind(seq_len(n), as.integer(cls))])), tolerance = 1e-6)
  ce <- ember_importance(model, d, cls, measure = "ce", n_repeats = 3, seed = 1)
  expect_gt(ce$importance[1], 0.2)
})

test_that("importance's arguments are checked", {
  d <- importance_data(50)
  model <- ember_fit(d[1:3], d$y, epochs = 1)
  expect_error(ember_importance(model, d[1:2], d$y), class = "ember_error_invalid_argument", regexp = "lacks the column\\(s\\).*group")
  expect_error(ember_importance(model, as.matrix(d[1:2]), d$y), regexp = "'x' must be a data.frame")
  expect_error(ember_importance(model, d[1:3], d$y, measure = "logloss"), regexp = "does not fit a regression model")
  expect_error(ember_importance(model, d[1:3], d$y, groups = list(c("signal"))), regexp = "named list")
  expect_error(ember_importance(model, d[1:3], d$y, groups = list(a = "nope")), regexp = "does not read: nope")
  expect_error(ember_importance(model, d[1:3], d$y, n_repeats = 0), class = "ember_error_invalid_argument")
  expect_error(ember_importance(model, d[1:3], d$y, measure = function(t, p) c(1, 2)), regexp = "must return one number")
})

test_that("learners: the importance property, $importance() after training, ember_importance() on a task, flt('importance')", {
  skip_if_no_mlr3()
  d <- importance_data()
  task <- mlr3::as_task_regr(d, target = "y")
  learner <- mlr3::lrn("regr.ember_mlp", epochs = 40, batch_size = 16, opt.lr = 0.01, seed = 1)
  expect_true("importance" %in% learner$properties)
  expect_false("importance" %in% mlr3::lrn("regr.ember_featureless")$properties)
  learner$train(task)
  expect_error(learner$importance(), "importance = \"permutation\"")
  on_task <- ember_importance(learner, task, seed = 1)
  expect_identical(on_task$feature[3], "noise")
  learner$param_set$set_values(importance = "permutation", importance_repeats = 3)
  learner$train(task)
  imp <- learner$importance()
  expect_named(imp, c("signal", "group", "noise"))
  expect_true(!is.unsorted(rev(imp)))
  # Kept through marshaling.
  learner$marshal()
  expect_identical(learner$importance(), imp)
  learner$unmarshal()
  skip_if_not_installed("mlr3filters")
  filter <- mlr3filters::flt("importance", learner = learner)
  filter$calculate(task)
  expect_identical(names(filter$scores)[3], "noise")
  expect_error(ember_importance(mlr3::lrn("regr.featureless"), task), regexp = "takes an Ember learner")
})
