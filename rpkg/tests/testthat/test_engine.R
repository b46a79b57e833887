test_that("ember_info reports the engine", {
  info <- ember_info()
  expect_identical(info$abi_version, 1L)
  expect_true(is.character(info$blas_core) && nzchar(info$blas_core))
  expect_true(info$num_threads >= 1L)
  old <- ember_set_threads(1)
  expect_identical(ember_info()$num_threads, 1L)
  ember_set_threads(old)
  expect_error(ember_set_threads(0), "num_threads")
})

test_that("multiclass classification learns iris", {
  set.seed(1)
  model <- ember_fit(iris[, 1:4], iris$Species, epochs = 30, batch_size = 16)
  expect_s3_class(model, "ember_model")
  pred <- predict(model, iris)
  expect_s3_class(pred, "factor")
  expect_identical(levels(pred), levels(iris$Species))
  expect_gt(mean(pred == iris$Species), 0.9)
  prob <- predict(model, iris, type = "prob")
  expect_identical(dim(prob), c(150L, 3L))
  expect_identical(colnames(prob), levels(iris$Species))
  expect_equal(unname(rowSums(prob)), rep(1, 150), tolerance = 1e-6)
  expect_identical(as.character(pred), colnames(prob)[max.col(prob, ties.method = "first")])
  expect_identical(nrow(model$history), 30L)
  expect_lt(model$history$train_loss[30], model$history$train_loss[1])
})

test_that("binary classification: the logit is the first level", {
  set.seed(2)
  x <- data.frame(a = c(rnorm(50, -2), rnorm(50, 2)))
  y <- factor(rep(c("pos", "neg"), each = 50), levels = c("pos", "neg"))
  model <- ember_fit(x, y, epochs = 40, batch_size = 10)
  prob <- predict(model, x, type = "prob")
  expect_identical(colnames(prob), c("pos", "neg"))
  expect_gt(mean(prob[1:50, "pos"]), 0.8)
  expect_gt(mean(prob[51:100, "neg"]), 0.8)
  # Switching the level order switches the positive class, not the predictions.
  y2 <- factor(y, levels = c("neg", "pos"))
  model2 <- ember_fit(x, y2, epochs = 40, batch_size = 10)
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
  model <- ember_fit(x, y, epochs = 60, batch_size = 16, lr = 0.01)
  pred <- predict(model, x)
  expect_type(pred, "double")
  expect_lt(sqrt(mean((pred - y)^2)), 25)
  expect_error(predict(model, x, type = "prob"), "classification")
})

test_that("all column types are encoded; columns are matched by name", {
  set.seed(5)
  n <- 120
  d <- data.frame(
    num = rnorm(n), int = sample(1:10, n, TRUE), lgl = sample(c(TRUE, FALSE), n, TRUE),
    fct = factor(sample(c("x", "y", "z"), n, TRUE)),
    ord = factor(sample(c("lo", "mid", "hi"), n, TRUE), levels = c("lo", "mid", "hi"), ordered = TRUE)
  )
  names(d)[1] <- "\u00e4 + \u1e9e"
  y <- factor(ifelse(d$fct == "x" | d$lgl, "A", "B"))
  model <- ember_fit(d, y, epochs = 40, batch_size = 16)
  expect_identical(model$encoder$n_inputs, 1L + 1L + 1L + 3L + 1L)
  expect_identical(model$encoder$standardize, c(TRUE, TRUE, FALSE, FALSE, FALSE, FALSE, TRUE))
  p1 <- predict(model, d, type = "prob")
  p2 <- predict(model, d[, rev(names(d))], type = "prob")
  expect_identical(p1, p2)
  expect_gt(mean(predict(model, d) == y), 0.9)
  # An unseen factor level encodes as all zeros instead of failing.
  d2 <- d[1:3, ]
  d2$fct <- factor(c("x", "new", "y"))
  expect_identical(nrow(predict(model, d2, type = "prob")), 3L)
})

test_that("the same seed gives the same model; set.seed governs seed = NULL", {
  a <- ember_fit(iris[, 1:4], iris$Species, epochs = 3, batch_size = 16, p = 0.2, seed = 11)
  b <- ember_fit(iris[, 1:4], iris$Species, epochs = 3, batch_size = 16, p = 0.2, seed = 11)
  c <- ember_fit(iris[, 1:4], iris$Species, epochs = 3, batch_size = 16, p = 0.2, seed = 12)
  expect_identical(predict(a, iris, type = "prob"), predict(b, iris, type = "prob"))
  expect_false(identical(predict(a, iris, type = "prob"), predict(c, iris, type = "prob")))
  set.seed(9); d <- ember_fit(iris[, 1:4], iris$Species, epochs = 2, batch_size = 16)
  set.seed(9); e <- ember_fit(iris[, 1:4], iris$Species, epochs = 2, batch_size = 16)
  expect_identical(predict(d, iris, type = "prob"), predict(e, iris, type = "prob"))
})

test_that("optimizers train", {
  for (opt in c("sgd", "adam", "adamw")) {
    set.seed(6)
    model <- ember_fit(iris[, 1:4], iris$Species, epochs = 30, batch_size = 16, optimizer = opt,
      lr = if (opt == "sgd") 0.05 else 0.01, momentum = if (opt == "sgd") 0.9 else 0)
    expect_gt(mean(predict(model, iris) == iris$Species), 0.85, label = opt)
  }
})

test_that("bad input gives clear errors", {
  expect_error(ember_fit(iris[, 1:4], as.character(iris$Species)), "factor")
  expect_error(ember_fit(iris[, 1:4], iris$Species[1:10]), "y")
  expect_error(ember_fit(iris[, 1:4], iris$Species, p = 1), "'p' must be < 1")
  expect_error(ember_fit(data.frame(d = Sys.Date() + 1:3), 1:3 + 0.5), "feature 'd' has class 'Date'")
  d <- iris[, 1:4]; d$Sepal.Length[3] <- NA
  expect_error(ember_fit(d, iris$Species), "feature 'Sepal.Length' has missing values")
  model <- ember_fit(iris[, 1:4], iris$Species, epochs = 1)
  expect_error(predict(model, iris[, 1:3]), "lacks the feature\\(s\\) 'Petal.Width'")
  # Errors raised by the engine name the argument.
  expect_error(.Call(mlr3ember:::C_ember_predict, model$ptr, matrix(0, 2, 3)), "expects 4 input columns, got 3")
  expect_error(.Call(mlr3ember:::C_ember_deserialize, as.raw(1:20)), "safetensors")
  expect_error(.Call(mlr3ember:::C_ember_mlp_new, 2L, 1L, 3L, 4L, 0, rep(TRUE, 3), TRUE, 1),
    "n_classes.*at least 2 classes")
  expect_error(.Call(mlr3ember:::C_ember_mlp_new, 7L, 1L, 3L, 4L, 0, rep(TRUE, 3), TRUE, 1), "task")
})

test_that("serialize round trip; a pointer saved without serializing is refused", {
  set.seed(7)
  model <- ember_fit(iris[, 1:4], iris$Species, epochs = 5, batch_size = 16)
  file <- tempfile(fileext = ".rds")
  saveRDS(ember_serialize(model), file)
  model2 <- ember_unserialize(readRDS(file))
  expect_identical(predict(model, iris, type = "prob"), predict(model2, iris, type = "prob"))
  saveRDS(model, file)
  stale <- readRDS(file)
  expect_error(predict(stale, iris), "stale Ember handle")
  expect_output(print(stale), "not valid")
  unlink(file)
})

test_that("engine handles are freed by the garbage collector", {
  gc()
  before <- mlr3ember:::ember_live_handles()
  local({
    m <- ember_fit(iris[, 1:4], iris$Species, epochs = 1)
    m2 <- ember_unserialize(ember_serialize(m))
  })
  gc()
  expect_identical(mlr3ember:::ember_live_handles(), before)
})

test_that("the shared object carries the Swift runtime: no libswift* dependency", {
  skip_if(!nzchar(Sys.which("ldd")), "ldd not available")
  so <- system.file("libs", paste0("mlr3ember", .Platform$dynlib.ext), package = "mlr3ember")
  deps <- system2("ldd", so, stdout = TRUE)
  expect_true(any(grepl("openblas", deps)))
  expect_false(any(grepl("swift|Foundation|dispatch", deps, ignore.case = TRUE)), info = paste(deps, collapse = "\n"))
})
