# Bad input never crashes R: each case gives a classed condition naming the argument (1-based
# indices, R names) and saying what was expected.

test_that("NA, NaN and Inf in features or target", {
  d <- iris[, 1:4]
  d$Sepal.Length[3] <- NA
  expect_ember_error(ember_fit(d, iris$Species), "ember_error_missing_values", "'Sepal.Length'.*row 3",
    argument = "Sepal.Length", index = 3L)
  d$Sepal.Length[3] <- NaN
  expect_ember_error(ember_fit(d, iris$Species), "ember_error_invalid_argument", "row 3", argument = "Sepal.Length")
  d$Sepal.Length[3] <- Inf
  expect_ember_error(ember_fit(d, iris$Species), "ember_error_invalid_argument", "non-finite value Inf in row 3",
    argument = "Sepal.Length", index = 3L)
  y <- iris$Species
  y[7] <- NA
  expect_ember_error(ember_fit(iris[, 1:4], y), "ember_error_missing_values", "row 7", argument = "y", index = 7L)
  yr <- iris$Sepal.Length
  yr[2] <- Inf
  expect_ember_error(ember_fit(iris[, 2:4], yr), "ember_error_invalid_argument", "row 2", argument = "y", index = 2L)
  d2 <- all_types_data(20)
  d2$fct[5] <- NA
  expect_ember_error(ember_fit(d2, d2$num), "ember_error_missing_values", argument = "fct", index = 5L)
  model <- ember_fit(iris[, 1:4], iris$Species, epochs = 1)
  nd <- iris[1:5, 1:4]
  nd$Petal.Width[4] <- NA
  expect_ember_error(predict(model, nd), "ember_error_missing_values", argument = "Petal.Width", index = 4L)
  img <- array(0, c(4, 1, 12, 12))
  img[3, 1, 2, 2] <- NA
  expect_ember_error(ember_fit(img, factor(c("a", "b", "a", "b")), ember_cnn()), "ember_error_missing_values",
    argument = "x", index = 3L)
})

test_that("wrong column and target types", {
  expect_ember_error(ember_fit(data.frame(d = Sys.Date() + 1:3), 1:3 + 0.5), "ember_error_invalid_argument",
    "column 'd' of 'x' has class 'Date'", argument = "d", index = 1L)
  expect_ember_error(ember_fit(data.frame(a = 1:3, s = c("u", "v", "w")), 1:3 + 0.5), "ember_error_invalid_argument",
    "as.factor", argument = "s", index = 2L)
  expect_ember_error(ember_fit(iris[, 1:4], as.character(iris$Species)), "ember_error_invalid_argument",
    "factor \\(classification\\) or numeric", argument = "y")
  expect_ember_error(ember_fit(iris[, 1:4], iris$Species == "setosa"), "ember_error_invalid_argument", "as.factor")
  expect_ember_error(ember_fit(list(a = 1:3), 1:3), "ember_error_invalid_argument", "data.frame or a matrix", argument = "x")
  expect_ember_error(ember_fit(matrix(letters[1:6], 3), 1:3), "ember_error_invalid_argument", "character matrix")
  model <- ember_fit(iris[, 1:4], iris$Species, epochs = 1)
  nd <- iris[1:3, 1:4]
  nd$Sepal.Width <- as.character(nd$Sepal.Width)
  expect_ember_error(predict(model, nd), "ember_error_invalid_argument", "must be numeric as in training",
    argument = "Sepal.Width", expected = "numeric", got = "character")
  d <- all_types_data(30)
  m2 <- ember_fit(d, d$num, epochs = 1)
  d$fct <- as.numeric(d$fct)
  expect_ember_error(predict(m2, d), "ember_error_invalid_argument", "must be a factor", argument = "fct")
})

test_that("zero rows, one row, a single class", {
  expect_ember_error(ember_fit(iris[0, 1:4], iris$Species[0]), "ember_error_invalid_argument", "no rows", argument = "x")
  expect_warning(suppressWarnings(m <- ember_fit(iris[1, 1:4], iris$Species[1], epochs = 2),
    classes = "ember_warning_single_class"), class = "ember_warning_single_row")
  expect_s3_class(m, "ember_model")
  expect_ember_error(suppressWarnings(ember_fit(iris[1, 1:4], iris$Species[1], ember_tab_resnet())),
    "ember_error_invalid_argument", "batch normalization", argument = "x")
  expect_warning(m <- ember_fit(iris[1:50, 1:4], iris$Species[1:50], epochs = 2), class = "ember_warning_single_class")
  expect_identical(levels(predict(m, iris)), levels(iris$Species))
  expect_ember_error(ember_fit(iris[, 1:4], factor(rep("a", 150))), "ember_error_invalid_argument", "at least 2 classes",
    argument = "y")
  expect_ember_error(ember_fit(iris[, 1:4], iris$Species[1:10]), "ember_error_shape", "one per row", argument = "y")
  expect_ember_error(ember_fit(iris[, 1:4], iris$Species, validate = 0.001), "ember_error_invalid_argument",
    "both parts", argument = "validate")
})

test_that("columns missing or renamed at prediction", {
  model <- ember_fit(iris[, 1:4], iris$Species, epochs = 1)
  expect_ember_error(predict(model, iris[, 1:3]), "ember_error_missing_column", "lacks the column\\(s\\) 'Petal.Width'",
    argument = "Petal.Width")
  renamed <- iris
  names(renamed)[1] <- "sepal_length"
  expect_ember_error(predict(model, renamed), "ember_error_invalid_argument", "'Sepal.Length'", argument = "Sepal.Length")
  # An unnamed matrix is matched by position when the model was trained on one.
  m <- as.matrix(iris[, 1:4])
  colnames(m) <- NULL
  mm <- ember_fit(m, iris$Species, epochs = 1)
  expect_length(predict(mm, m), 150L)
})

test_that("non-positive epochs or batch size, unknown optimizer, bad options", {
  x <- iris[, 1:4]
  y <- iris$Species
  expect_ember_error(ember_fit(x, y, epochs = 0), "ember_error_invalid_argument", "'epochs' must be an integer >= 1",
    argument = "epochs", got = "0")
  expect_ember_error(ember_fit(x, y, epochs = -3), "ember_error_invalid_argument", "epochs")
  expect_ember_error(ember_fit(x, y, batch_size = 0), "ember_error_invalid_argument", "'batch_size'",
    argument = "batch_size", expected = "an integer >= 1")
  expect_ember_error(ember_fit(x, y, batch_size = 2.5), "ember_error_invalid_argument", "batch_size")
  expect_ember_error(ember_fit(x, y, optimizer = "adamax"), "ember_error_invalid_argument", "'optimizer' must be one of",
    argument = "optimizer", got = "\"adamax\"")
  expect_ember_error(ember_fit(x, y, lr = -1), "ember_error_invalid_argument", "opt.lr", argument = "lr")
  expect_ember_error(ember_fit(x, y, optimizer = "sgd", opt_args = list(betas = c(0.9, 0.99))),
    "ember_error_invalid_argument", "betas", argument = "opt_args$betas")
  expect_ember_error(ember_fit(x, y, loss = "mse"), "ember_error_invalid_argument",
    "'loss' must be one of \"cross_entropy\", \"focal\", got \"mse\"", argument = "loss")
  expect_ember_error(ember_fit(x, y, loss_args = list(class_weights = c(1, 2))), "ember_error_invalid_argument",
    "one weight", argument = "loss_args$class_weights")
  expect_ember_error(ember_fit(x, y, schedule = list(kind = "warmup")), "ember_error_invalid_argument", "\"step\"",
    argument = "schedule$kind")
  expect_ember_error(ember_fit(x, y, architecture = "mlp"), "ember_error_invalid_argument", "ember_architecture")
  expect_ember_error(ember_mlp(neurons = 0), "ember_error_invalid_argument", "neurons", argument = "neurons")
  expect_ember_error(ember_mlp(p = 1), "ember_error_invalid_argument", "\\[0, 1\\)", argument = "p")
  expect_ember_error(ember_mlp(activation = "swoosh") |> (\(a) ember_fit(x, y, a))(), "ember_error_invalid_argument",
    "activation")
  expect_ember_error(ember_ft_transformer(d_token = 10, attention_n_heads = 3), "ember_error_invalid_argument",
    "multiple", argument = "d_token")
  expect_ember_error(ember_cnn("vgg"), "ember_error_invalid_argument", "\"lenet\"", argument = "type")
  expect_ember_error(ember_fit(x, y, seed = -1), "ember_error_invalid_argument", "seed", argument = "seed")
  expect_ember_error(ember_fit(x, y, shuffle = NA), "ember_error_invalid_argument", "TRUE or FALSE", argument = "shuffle")
  expect_ember_error(ember_set_threads(0), "ember_error_invalid_argument", "num_threads", argument = "num_threads")
  model <- ember_fit(x, y, epochs = 1)
  expect_ember_error(predict(model, x, batch_size = 0), "ember_error_invalid_argument", "batch_size")
  expect_ember_error(predict(model, x, type = "prob") |> (\(p) predict(ember_fit(x[, 2:4], x[, 1], epochs = 1), x,
    type = "prob"))(), "ember_error_invalid_argument", "regression model", argument = "type")
})

test_that("corrupted and missing model files", {
  set.seed(1)
  model <- ember_fit(iris[, 1:4], iris$Species, epochs = 1)
  file <- tempfile(fileext = ".safetensors")
  ember_save(model, file)
  bytes <- readBin(file, "raw", file.size(file))
  writeBin(bytes[1:(length(bytes) - 20)], file)
  expect_ember_error(ember_load(file), "ember_error_corrupt", "safetensors")
  bad <- bytes
  bad[12] <- as.raw(0x7b)
  writeBin(bad, file)
  expect_ember_error(ember_load(file), "ember_error_corrupt")
  writeBin(as.raw(1:5), file)
  expect_ember_error(ember_load(file), "ember_error_corrupt", "at least 8 bytes")
  expect_ember_error(ember_load(tempfile()), "ember_error_invalid_argument", "names no file", argument = "path")
  expect_ember_error(ember_save(model, file.path(tempfile(), "nodir", "m.safetensors")), "ember_error_invalid_argument",
    "cannot open", argument = "path")
  expect_ember_error(ember_unserialize(list(bytes = as.raw(1:3))), "ember_error_invalid_argument", "ember_serialize")
  s <- ember_serialize(model)
  s$bytes <- s$bytes[1:100]
  expect_ember_error(ember_unserialize(s), "ember_error_corrupt")
  unlink(file)
})

test_that("engine errors are rebased to 1-based indices with structured fields", {
  ds <- mlr3ember:::engine_dataset(list(num = matrix(c(1, 2, 3, 4), 2)))
  e <- expect_ember_error(.Call(mlr3ember:::C_ember_dataset_set_target, ds, c(1, NaN)), "ember_error_invalid_argument",
    "target 2 is nan", argument = "y", index = 2L, expected = "finite values", got = "nan")
  expect_identical(e$op, "dataset")
})

test_that("errors the C glue finds itself are classed ember errors naming the argument", {
  e <- tryCatch(.Call(mlr3ember:::C_ember_model_info, "not a pointer"), error = function(e) e)
  expect_s3_class(e, "ember_error_invalid_argument")
  expect_identical(e$argument, "model")
  expect_match(conditionMessage(e), "'model' must be an external pointer of class 'ember_model_ptr'")
  e <- tryCatch(.Call(mlr3ember:::C_ember_set_threads, "two"), error = function(e) e)
  expect_s3_class(e, "ember_error")
  expect_identical(e$argument, "num_threads")
  model <- ember_fit(iris[, 1:4], iris$Species, epochs = 1)
  stale <- unserialize(serialize(model, NULL))
  e <- tryCatch(.Call(mlr3ember:::C_ember_model_info, stale$ptr), error = function(e) e)
  expect_s3_class(e, "ember_error_stale_handle")
})

test_that("engine messages count positions from 1 in R (the message index base set at load)", {
  x <- array(runif(4 * 8 * 8), c(4, 1, 8, 8))
  err <- tryCatch(ember_fit(x, factor(c("a", "b", "a", "b")), ember_cnn("lenet"), epochs = 1,
    augment = list(ember_transform("random_crop", size = c(4, 4)), ember_transform("normalize", mean = c(0, 0), std = c(1, 1)))),
    error = identity)
  expect_s3_class(err, "ember_error_shape")
  expect_match(conditionMessage(err), "[normalize] transform 2: mean has 2 values", fixed = TRUE)
  expect_false(grepl("0-based", conditionMessage(err)))
  expect_error(.Call(mlr3ember:::C_ember_set_message_index_base, 2L), class = "ember_error_invalid_argument",
    regexp = "must be 0 or 1")
})
