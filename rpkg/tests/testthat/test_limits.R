# Issue 16, limits instead of kills: memory beyond the machine is refused before allocation with
# an error of class ember_error_memory stating the bytes; a non-finite loss stops training with
# the last finite weights (an error or a warning, as chosen); absurd thread counts are refused;
# batch norm refuses a single training row and predicts single rows; predictions stream.

with_memory_limit <- function(bytes, code) {
  Sys.setenv(EMBER_MEMORY_LIMIT = format(bytes, scientific = FALSE))
  on.exit(Sys.unsetenv("EMBER_MEMORY_LIMIT"))
  force(code)
}

test_that("a network beyond the machine's memory is refused before allocation, stating the bytes", {
  gc()
  before <- ember_live_handles()
  e <- expect_ember_error(ember_fit(iris[, 1:4], iris$Species, ember_mlp(neurons = c(1e6, 1e6)), epochs = 1L, progress = FALSE),
    "ember_error_memory", "network's weights up to node 'linear_1' .* needs 4000024000000 bytes \\(3\\.6 TiB\\); .* available")
  expect_identical(e$got, "4000024000000 bytes")
  expect_match(e$expected, "^at most [0-9]+ bytes$")
  gc()
  expect_identical(ember_live_handles(), before)
})

test_that("a training batch, a dataset and a prediction beyond the limit are refused with the bytes", {
  # EMBER_MEMORY_LIMIT caps what the engine takes as available (as a smaller machine would).
  # A batch of 150 rows through a layer of 10^5 units: 150 rows x 200,007 values (inputs, linear,
  # relu, head) x 12 bytes (values, gradients, scratch).
  e <- with_memory_limit(2e7, expect_ember_error(
    ember_fit(iris[, 1:4], iris$Species, ember_mlp(neurons = 1e5), epochs = 1L, batch_size = 150L, progress = FALSE),
    "ember_error_memory",
    "a training batch of 150 rows .* needs 360012600 bytes \\(343\\.3 MiB\\); 20000000 bytes \\(19\\.1 MiB\\) are available: use a smaller batch_size"))
  expect_identical(e$argument, "batch_size")
  x <- matrix(rnorm(4e4), ncol = 4L)
  with_memory_limit(1e5, expect_ember_error(ember_fit(x, factor(rep(1:2, 5000)), epochs = 1L, progress = FALSE),
    "ember_error_memory", "the engine's copy of 'x' \\[10000, 4\\] needs 160000 bytes"))
  model <- ember_fit(x, factor(rep(1:2, 5000)), epochs = 1L, progress = FALSE, seed = 1)
  with_memory_limit(1e5, expect_ember_error(predict(model, x), "ember_error_memory", "needs 160000 bytes"))
  # Without the limit the same calls run.
  expect_length(predict(model, x), 1e4)
})

test_that("a non-finite loss stops training with the last finite weights: an error or a warning, as chosen", {
  fit <- function(on_nonfinite) {
    ember_fit(iris[, 1:4], iris$Sepal.Length, optimizer = "sgd", lr = 50, epochs = 20L, batch_size = 16L, seed = 3,
      shuffle = FALSE, progress = FALSE, on_nonfinite = on_nonfinite)
  }
  e <- expect_ember_error(fit("stop"), "ember_error_nonfinite",
    "the training loss became (NaN|Inf|-Inf) in epoch 1, batch [0-9]+; training stopped and the model keeps the last weights whose loss was finite")
  expect_identical(e$argument, "on_nonfinite")
  expect_s3_class(e$model, "ember_model")
  expect_true(all(is.finite(predict(e$model, iris))))
  expect_warning(model <- fit("warn"), class = "ember_warning_nonfinite")
  weights <- lapply(ember_parameters(model)$name, function(n) ember_get_parameter(model, n))
  expect_true(all(is.finite(unlist(weights))))
  expect_identical(predict(model, iris), predict(e$model, iris))
  # (That they are the weights before the previous batch is checked in the engine's tests,
  # ReliabilityLimitsTests.)
  expect_ember_error(fit("never"), "ember_error_invalid_argument", "'on_nonfinite' must be one of \"stop\", \"warn\"")
  # A sane learning rate trains to the end without either.
  expect_silent(ember_fit(iris[, 1:4], iris$Sepal.Length, epochs = 2L, progress = FALSE, seed = 1))
})

test_that("the learners' on_nonfinite parameter chooses between the error and the warning", {
  skip_if_no_mlr3()
  task <- mlr3::tsk("mtcars")
  learner <- mlr3::lrn("regr.ember_mlp", epochs = 20L, batch_size = 8L, optimizer = "sgd", opt.lr = 1e3, seed = 1L)
  expect_error(learner$train(task), class = "ember_error_nonfinite")
  learner$param_set$values$on_nonfinite <- "warn"
  expect_warning(learner$train(task), class = "ember_warning_nonfinite")
  expect_true(all(is.finite(learner$predict(task)$response)))
  expect_error(learner$param_set$values$on_nonfinite <- "maybe")
})

test_that("an absurd thread count is refused, not clamped", {
  old <- ember_info()$num_threads
  expect_ember_error(ember_set_threads(1e6), "ember_error_invalid_argument", "'num_threads' must be an integer in 1..65, got 1e\\+06")
  expect_ember_error(ember_fit(iris[, 1:4], iris$Species, epochs = 1L, num_threads = 1e6, progress = FALSE),
    "ember_error_invalid_argument", "num_threads")
  model <- ember_fit(iris[, 1:4], iris$Species, epochs = 1L, progress = FALSE, seed = 1)
  expect_ember_error(predict(model, iris, num_threads = 1e6), "ember_error_invalid_argument", "num_threads")
  expect_identical(ember_info()$num_threads, old)
})

test_that("batch norm refuses a single training row (as PyTorch) and predicts one row or none", {
  arch <- ember_tab_resnet(n_blocks = 1L, d_block = 8L)
  # (Warnings of a single row and a single class come first.)
  expect_ember_error(suppressWarnings(ember_fit(iris[1, 1:4], iris$Species[1], arch, epochs = 1L, progress = FALSE)),
    "ember_error_invalid_argument", "a single row; the network uses batch normalization .* needs at least 2 rows")
  expect_ember_error(ember_fit(iris[0, 1:4], iris$Species[0], arch, epochs = 1L, progress = FALSE),
    "ember_error_invalid_argument", "'x' has no rows")
  # A last batch of one row is dropped in training (151 rows, batches of 10).
  x <- rbind(iris, iris[1, ])
  model <- ember_fit(x[, 1:4], x$Species, arch, epochs = 2L, batch_size = 10L, progress = FALSE, seed = 1)
  one <- predict(model, iris[1, ], type = "prob")
  expect_identical(dim(one), c(1L, 3L))
  expect_equal(one, predict(model, iris, type = "prob")[1, , drop = FALSE], tolerance = 1e-6)
  expect_identical(dim(predict(model, iris[0, ], type = "prob")), c(0L, 3L))
})

test_that("a prediction on 10^7 rows streams in batches: the peak memory grows by about the input's size", {
  skip_on_cran()
  skip_if_not(file.exists("/proc/self/clear_refs"))
  skip_if(is.na(mlr3ember:::memory_available()) || mlr3ember:::memory_available() < 4e9)
  model <- ember_fit(iris[, 1:4], iris$Species, ember_mlp(neurons = c(64, 64)), epochs = 1L, progress = FALSE, seed = 1)
  n <- 1e7
  x <- as.data.frame(lapply(stats::setNames(1:4, names(iris)[1:4]), function(j) stats::runif(n, 0, 8)))
  input <- as.numeric(utils::object.size(x))
  kib <- function(field) as.numeric(gsub("[^0-9]", "", grep(paste0("^", field, ":"), readLines("/proc/self/status"), value = TRUE)))
  gc()
  # Resets the peak resident size (VmHWM) to the current one.
  cat("5", file = "/proc/self/clear_refs")
  base <- kib("VmRSS")
  p <- predict(model, x, type = "prob")
  peak <- (kib("VmHWM") - base) * 1024
  cat(sprintf("predict on %.0e rows: input %.0f MB, peak RSS increase %.0f MB (%.2f x the input; %.1f bytes per row)\n",
    n, input / 1e6, peak / 1e6, peak / input, peak / n), file = stderr())
  expect_identical(dim(p), c(as.integer(n), 3L))
  expect_true(all(abs(rowSums(p[c(1, n), ]) - 1) < 1e-6))
  # Measured: about 96 bytes per row, 3 times the input of 32 bytes per row (docs/reliability.md;
  # R's encoded copy, the engine's float32 copy, the outputs and R's result). Without streaming,
  # the activations alone would take n x 263 values x 4 bytes = 10.5 GB, 33 times the input.
  expect_lt(peak, 3.5 * input)
})
