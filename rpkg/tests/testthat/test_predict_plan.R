# predict() of tabular models goes through a prediction plan resolved when the model is made
# (prediction_plan(), C_ember_predict_plan): the same predictions as the general path, which
# still takes everything the plan does not (and reports the errors and warnings).

# The general path: the same model without its plan.
without_plan <- function(model) {
  model$plan <- NULL
  model
}

fast_path <- function(model, newdata, logits = FALSE, batch_size = 4096L, num_threads = 1L) {
  .Call(mlr3ember:::C_ember_predict_plan, model$ptr, model$plan, newdata, logits, batch_size, num_threads)
}

expect_same_predictions <- function(model, newdata, types) {
  for (type in types) {
    expect_identical(predict(model, newdata, type = type), predict(without_plan(model), newdata, type = type),
      label = sprintf("predict(type = \"%s\")", type))
  }
}

test_that("the plan predicts as the general path: every column type, task and prediction type", {
  set.seed(1)
  d <- all_types_data(150)
  y <- factor(sample(c("a", "b", "c"), 150, TRUE))
  multiclass <- ember_fit(d, y, epochs = 2, seed = 1, progress = FALSE)
  expect_false(is.null(multiclass$plan))
  expect_false(is.null(fast_path(multiclass, d)))
  expect_same_predictions(multiclass, d, c("response", "prob", "logits"))
  expect_same_predictions(multiclass, d[1, ], c("response", "prob", "logits"))
  binary <- ember_fit(d, factor(y == "a"), epochs = 2, seed = 1, progress = FALSE)
  expect_same_predictions(binary, d, c("response", "prob", "logits"))
  regression <- ember_fit(d, d$num * 2 + rnorm(150), epochs = 2, seed = 1, progress = FALSE)
  expect_same_predictions(regression, d, c("response", "logits"))
  labels <- data.frame(u = d$num > 0, v = d$lgl)
  multilabel <- ember_fit(d, labels, epochs = 2, seed = 1, progress = FALSE)
  expect_same_predictions(multilabel, d, c("response", "prob", "logits"))
  quantile <- ember_fit(d, d$num + rnorm(150), loss = "quantile", loss_args = list(quantiles = c(0.1, 0.5, 0.9)),
    epochs = 2, seed = 1, progress = FALSE)
  expect_same_predictions(quantile, d, c("response", "quantiles", "logits"))
  # An FT-Transformer reads the factors as tokens.
  ftt <- ember_fit(d, y, ember_ft_transformer(n_blocks = 1L, d_token = 8L, attention_n_heads = 2L), epochs = 1, seed = 1, progress = FALSE)
  expect_same_predictions(ftt, d, c("response", "prob"))
})

test_that("the plan takes columns by name, in any order, with other levels' order and extra columns", {
  set.seed(2)
  d <- all_types_data(100)
  model <- ember_fit(d, factor(d$num > 0), epochs = 2, seed = 1, progress = FALSE)
  shuffled <- d[, c("ord", "fct", "extra" = "num", "lgl", "int", "num")]
  shuffled$fct <- factor(as.character(shuffled$fct), levels = c("z", "y", "x"))
  shuffled$ord <- factor(as.character(shuffled$ord), levels = c("mid", "hi", "lo"), ordered = TRUE)
  expect_false(is.null(fast_path(model, shuffled)))
  expect_identical(predict(model, shuffled, type = "prob"), predict(model, d, type = "prob"))
  # Fewer levels than in training (all known): the same codes.
  sub <- d[d$fct != "z", ]
  sub$fct <- droplevels(sub$fct)
  expect_false(is.null(fast_path(model, sub)))
  expect_identical(predict(model, sub, type = "prob"), predict(without_plan(model), sub, type = "prob"))
  # Integer and double given for each other, and a data.table-like data.frame subclass.
  swapped <- d
  swapped$num <- swapped$num
  swapped$int <- as.double(swapped$int)
  class(swapped) <- c("tbl", "data.frame")
  expect_identical(predict(model, swapped), predict(model, d))
})

test_that("numeric matrices take the plan, by column names or positionally", {
  set.seed(3)
  x <- matrix(rnorm(400), 100, 4)
  model <- ember_fit(x, factor(x[, 1] > 0), epochs = 2, seed = 1, progress = FALSE)
  expect_false(is.null(fast_path(model, x)))
  expect_identical(predict(model, x, type = "prob"), predict(without_plan(model), x, type = "prob"))
  named <- x
  colnames(named) <- c("a", "b", "c", "d")
  model <- ember_fit(named, factor(x[, 1] > 0), epochs = 2, seed = 1, progress = FALSE)
  expect_identical(predict(model, named[, 4:1]), predict(without_plan(model), named[, 4:1]))
  storage.mode(named) <- "integer"
  expect_identical(predict(model, named, type = "prob"), predict(without_plan(model), named, type = "prob"))
  expect_ember_error(predict(model, named[, 1:3]), "ember_error_missing_column", "lacks the column\\(s\\) 'd'")
})

test_that("what the plan does not take goes the general path, with its errors and warnings", {
  set.seed(4)
  d <- all_types_data(100)
  model <- ember_fit(d, factor(d$num > 0), epochs = 2, seed = 1, progress = FALSE)
  bad <- d
  bad$num[3] <- NA
  expect_null(fast_path(model, bad))
  expect_ember_error(predict(model, bad), "ember_error_missing_values", "column 'num' of 'newdata' has 1 missing value\\(s\\) \\(first in row 3\\)")
  bad <- d
  bad$num[2] <- Inf
  expect_null(fast_path(model, bad))
  expect_ember_error(predict(model, bad), "ember_error_invalid_argument", "non-finite value Inf in row 2")
  bad <- d
  bad$int[5] <- NA
  expect_ember_error(predict(model, bad), "ember_error_missing_values", "column 'int'")
  bad <- d
  bad$fct <- factor(as.character(bad$fct), levels = c("x", "y", "z", "w"))
  bad$fct[7] <- "w"
  expect_null(fast_path(model, bad))
  expect_warning(p <- predict(model, bad), class = "ember_warning_unseen_level")
  expect_identical(p, suppressWarnings(predict(without_plan(model), bad)))
  bad <- d
  bad$ord <- factor(as.character(bad$ord), levels = c("lo", "mid", "hi", "top"), ordered = TRUE)
  bad$ord[1] <- "top"
  expect_ember_error(predict(model, bad), "ember_error_unseen_level", "level 'top' \\(row 1\\), unseen in training")
  bad <- d
  bad$fct <- as.character(bad$fct)
  expect_null(fast_path(model, bad))
  expect_identical(predict(model, bad), predict(model, d))
  bad <- d
  bad$num <- as.character(bad$num)
  expect_ember_error(predict(model, bad), "ember_error_invalid_argument", "column 'num' of 'newdata' must be numeric as in training, got 'character'")
  expect_ember_error(predict(model, d[, -1]), "ember_error_missing_column", "lacks the column\\(s\\) 'num'")
  expect_identical(predict(model, d[0, ], type = "prob"), predict(without_plan(model), d[0, ], type = "prob"))
  expect_length(predict(model, d[0, ]), 0L)
  expect_ember_error(predict(model, d, batch_size = 0), "ember_error_invalid_argument", "'batch_size' must be an integer >= 1")
  expect_ember_error(predict(model, d, num_threads = 100), "ember_error_invalid_argument", "'num_threads' must be an integer in 1..65")
  expect_ember_error(predict(model, d, type = "quantiles"), "ember_error_invalid_argument", "needs a quantile regression")
  expect_error(predict(model, d, type = "nonsense"), "'arg' should be one of")
  expect_ember_error(predict(model, as.list(d)), "ember_error_invalid_argument", "must be a data.frame or a matrix, got list")
  # Partial matching of the type, as match.arg() does.
  expect_identical(predict(model, d, type = "pr"), predict(model, d, type = "prob"))
})

test_that("the plan leaves the data and the engine's threads as they were", {
  set.seed(5)
  d <- all_types_data(50)
  copy <- d
  model <- ember_fit(d, factor(d$num > 0), epochs = 1, seed = 1, progress = FALSE)
  old <- ember_set_threads(1L)
  on.exit(ember_set_threads(old), add = TRUE)
  predict(model, d, num_threads = 2L)
  expect_identical(ember_info()$num_threads, 1L)
  expect_identical(d, copy)
  # An engine error (here: memory beyond EMBER_MEMORY_LIMIT) still restores them and frees the dataset.
  gc()
  before <- ember_live_handles()
  Sys.setenv(EMBER_MEMORY_LIMIT = "10")
  e <- tryCatch(predict(model, d, num_threads = 2L), error = function(e) e)
  Sys.unsetenv("EMBER_MEMORY_LIMIT")
  expect_s3_class(e, "ember_error_memory")
  expect_identical(ember_info()$num_threads, 1L)
  gc()
  expect_identical(ember_live_handles(), before)
})

test_that("the plan is made again for loaded and unserialized models, and follows changed weights", {
  set.seed(6)
  d <- all_types_data(80)
  model <- ember_fit(d, factor(d$num > 0), epochs = 2, seed = 1, progress = FALSE)
  expected <- predict(model, d, type = "prob")
  path <- tempfile(fileext = ".ember")
  on.exit(unlink(path), add = TRUE)
  ember_save(model, path)
  loaded <- ember_load(path)
  expect_false(is.null(loaded$plan))
  expect_identical(predict(loaded, d, type = "prob"), expected)
  restored <- ember_unserialize(ember_serialize(model))
  expect_false(is.null(restored$plan))
  expect_identical(predict(restored, d, type = "prob"), expected)
  # A model saved with saveRDS() keeps its plan but not its handle: the general path says so.
  stale <- unserialize(serialize(model, NULL))
  expect_null(fast_path(stale, d))
  expect_ember_error(predict(stale, d), "ember_error_stale_handle", "stale Ember handle")
  # New weights: both paths predict with them.
  w <- ember_get_parameter(model, "linear_0.weight")
  ember_set_parameter(model, "linear_0.weight", w * 2)
  changed <- predict(model, d, type = "prob")
  expect_false(identical(changed, expected))
  expect_identical(changed, predict(without_plan(model), d, type = "prob"))
  # A model whose encoding was replaced no longer uses the plan made for the old one.
  other <- model
  other$encoding$columns[[1L]]$name <- "renamed"
  renamed <- d
  names(renamed)[1L] <- "renamed"
  expect_identical(predict(other, renamed, type = "prob"), changed)
  expect_ember_error(predict(other, d), "ember_error_missing_column", "lacks the column\\(s\\) 'renamed'")
})

test_that("the class of a row is the first column of its largest probability, as max.col()", {
  p <- matrix(c(0.2, 0.5, 0.5, NaN, 0.8, 0.5, 0.5, 0.1, 0, 0, 0, 0.9), 4, 3)
  lev <- c("a", "b", "c")
  expect_identical(.Call(mlr3ember:::C_ember_class_factor, p, lev),
    factor(lev[max.col(p, ties.method = "first")], levels = lev))
  expect_identical(.Call(mlr3ember:::C_ember_class_factor, p[0, , drop = FALSE], lev), factor(character(0), levels = lev))
})
