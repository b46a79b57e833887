# The learning-rate range test (ember_lr_find()).

test_that("the sweep raises the rate geometrically, one batch per rate, and suggests a rate where the loss falls", {
  finder <- ember_lr_find(iris[, 1:4], iris$Species, batch_size = 4, num_steps = 60, lr_min = 1e-5, lr_max = 1,
    stop_factor = Inf, seed = 1)
  expect_s3_class(finder, "ember_lr_find")
  h <- finder$history
  expect_identical(nrow(h), 60L)
  expect_false(finder$stopped_early)
  expect_equal(h$lr[1L], 1e-5)
  expect_equal(h$lr[60L], 1)
  expect_equal(diff(log(h$lr)), rep(log(1e5) / 59, 59), tolerance = 1e-10)
  expect_true(all(is.finite(h$loss)))
  # The start is barely trained: about log(3) for three classes.
  expect_equal(h$smoothed[1L], h$loss[1L])
  expect_lt(abs(h$loss[1L] - log(3)), 0.6)
  expect_true(finder$suggested >= 1e-5 && finder$suggested <= 1)
  # Where the smoothed loss falls fastest it is falling: below the start.
  at <- match(finder$suggested, h$lr)
  expect_lt(h$smoothed[at + 1L], h$smoothed[1L])
  expect_equal(finder$min_loss_lr, h$lr[which.min(h$smoothed)] / 10)
  expect_output(print(finder), "suggested lr")
  pdf(NULL)
  on.exit(grDevices::dev.off())
  expect_identical(plot(finder), finder)
})

test_that("the sweep is reproducible, spans one epoch by default and stops when the loss diverges", {
  a <- ember_lr_find(mtcars[, -1], mtcars$mpg, batch_size = 4, seed = 3)
  b <- ember_lr_find(mtcars[, -1], mtcars$mpg, batch_size = 4, seed = 3)
  expect_identical(a$history, b$history)
  expect_identical(nrow(a$history), 8L)  # 32 rows in batches of 4
  d <- ember_lr_find(mtcars[, -1], mtcars$mpg, batch_size = 4, num_steps = 200, optimizer = "sgd", lr_min = 1e-4,
    lr_max = 1e4, seed = 3)
  expect_true(d$stopped_early)
  expect_lt(nrow(d$history), 200L)
  last <- d$history[nrow(d$history), ]
  expect_true(!is.finite(last$loss) || last$smoothed > 4 * min(d$history$smoothed, na.rm = TRUE))
})

test_that("the sweep's arguments are checked and its network is not kept", {
  gc()
  before <- mlr3ember:::ember_live_handles()
  expect_error(ember_lr_find(iris[, 1:4], iris$Species, lr_min = 0), class = "ember_error_invalid_argument", regexp = "'lr_min'")
  expect_error(ember_lr_find(iris[, 1:4], iris$Species, lr_min = 1, lr_max = 0.1), regexp = "'lr_max' must be a number larger")
  expect_error(ember_lr_find(iris[, 1:4], iris$Species, stop_factor = 0.5), regexp = "'stop_factor'")
  expect_error(ember_lr_find(iris[, 1:4], iris$Species, smoothing = 1), regexp = "'smoothing'")
  expect_error(ember_lr_find(iris[, 1:4], iris$Species, num_steps = 1), regexp = "num_steps")
  expect_error(ember_lr_find(iris[, 1:4], iris$Species, epochs = 3), class = "ember_error_invalid_argument",
    regexp = "unknown argument\\(s\\): epochs")
  ember_lr_find(iris[, 1:4], iris$Species, num_steps = 5)
  gc()
  expect_identical(mlr3ember:::ember_live_handles(), before)
})

test_that("a learner's sweep uses its network, optimizer and batch size on a task", {
  skip_if_no_mlr3()
  learner <- mlr3::lrn("classif.ember_mlp", batch_size = 8, neurons = 16, seed = 2, patience = 3)
  finder <- ember_lr_find(learner, mlr3::tsk("iris"), num_steps = 30, lr_min = 1e-4, lr_max = 1)
  expect_s3_class(finder, "ember_lr_find")
  expect_identical(nrow(finder$history), 30L)
  expect_true(all(is.finite(finder$history$loss)))
  expect_null(learner$model)
  expect_identical(learner$param_set$values$patience, 3L)
  # The same sweep through ember_fit()'s door gives the same curve (the learner's seed, its network
  # with the learner's initial dropout).
  expect_identical(learner$param_set$values$p, 0.5)
  direct <- ember_lr_find(iris[, c("Petal.Length", "Petal.Width", "Sepal.Length", "Sepal.Width")], iris$Species,
    ember_mlp(neurons = 16, p = 0.5), batch_size = 8, num_steps = 30,
    lr_min = 1e-4, lr_max = 1, seed = 2)
  expect_equal(finder$history$loss, direct$history$loss, tolerance = 1e-5)
  expect_error(ember_lr_find(mlr3::lrn("classif.featureless"), mlr3::tsk("iris")), class = "ember_error_invalid_argument",
    regexp = "takes an Ember learner")
})
