# The Ember learners in mlr3 workflows: resample, benchmark, tuning with internal tuning of
# epochs (mlr3tuning), pipelines (mlr3pipelines) and networks built in R (mlr3 needed).

quiet_mlr3 <- function() {
  lgr::get_logger("mlr3")$set_threshold("warn")
  lgr::get_logger("bbotk")$set_threshold("warn")
}

test_that("resample and benchmark", {
  skip_if_no_mlr3()
  quiet_mlr3()
  set.seed(1)
  learners <- list(
    mlr3::lrn("classif.ember_mlp", epochs = 20, batch_size = 16, predict_type = "prob"),
    mlr3::lrn("classif.ember_tab_resnet", epochs = 10, batch_size = 16, d_block = 32, predict_type = "prob"),
    mlr3::lrn("classif.ember_featureless", epochs = 10, batch_size = 16, predict_type = "prob"),
    mlr3::lrn("classif.featureless", predict_type = "prob")
  )
  design <- mlr3::benchmark_grid(mlr3::tsks(c("sonar", "iris")), learners, mlr3::rsmp("cv", folds = 3))
  bmr <- mlr3::benchmark(design)
  scores <- bmr$aggregate(mlr3::msr("classif.acc"), conditions = TRUE)
  expect_identical(nrow(scores), 8L)
  expect_true(all(scores$errors == 0L))
  acc <- function(task, learner) scores[scores$task_id == task & scores$learner_id == learner, ]$classif.acc
  expect_gt(acc("sonar", "classif.ember_mlp"), acc("sonar", "classif.featureless") + 0.1)
  expect_gt(acc("iris", "classif.ember_tab_resnet"), 0.85)
  # The Ember baseline learns what mlr3's featureless learner computes.
  expect_equal(acc("sonar", "classif.ember_featureless"), acc("sonar", "classif.featureless"), tolerance = 0.1)

  rr <- mlr3::resample(mlr3::tsk("mtcars"), mlr3::lrn("regr.ember_mlp", epochs = 50, batch_size = 8),
    mlr3::rsmp("cv", folds = 3))
  expect_lt(rr$aggregate(mlr3::msr("regr.rmse")), stats::sd(mtcars$mpg))
})

test_that("tune() and AutoTuner with epochs = to_tune(internal = TRUE) and validate = \"test\"", {
  skip_if_no_mlr3()
  skip_if_not_installed("mlr3tuning")
  quiet_mlr3()
  set.seed(2)
  learner <- mlr3::lrn("classif.ember_mlp", batch_size = 32, patience = 3, measures_valid = mlr3::msr("classif.logloss"),
    epochs = paradox::to_tune(upper = 60, internal = TRUE), opt.lr = paradox::to_tune(1e-3, 1e-2, logscale = TRUE),
    predict_type = "prob")
  learner$validate <- "test"
  at <- mlr3tuning::auto_tuner(tuner = mlr3tuning::tnr("random_search"), learner = learner,
    resampling = mlr3::rsmp("cv", folds = 3), measure = mlr3::msr("classif.auc"), term_evals = 2)
  at$train(mlr3::tsk("sonar"))
  result <- at$tuning_result
  tuned <- result$internal_tuned_values[[1]]$epochs
  expect_true(tuned >= 1L && tuned <= 60L)
  # The final model trains for the tuned epochs, with early stopping switched off.
  final <- at$model$learner
  expect_identical(final$param_set$values$epochs, tuned)
  expect_identical(final$param_set$values$patience, 0L)
  expect_identical(nrow(final$model$history), tuned)
  expect_null(final$validate)
  # Nested resampling of the AutoTuner.
  rr <- mlr3::resample(mlr3::tsk("sonar"), at, mlr3::rsmp("holdout"))
  expect_gt(rr$aggregate(mlr3::msr("classif.auc")), 0.7)

  # tune() with a regular and an internally tuned parameter; internal tuning needs patience.
  instance <- mlr3tuning::tune(tuner = mlr3tuning::tnr("grid_search", resolution = 2), task = mlr3::tsk("iris"),
    learner = mlr3::lrn("classif.ember_tab_resnet", batch_size = 16, patience = 2, validate = "test",
      epochs = paradox::to_tune(upper = 20, internal = TRUE), d_block = paradox::to_tune(c(8, 16))),
    resampling = mlr3::rsmp("holdout"), measures = mlr3::msr("classif.ce"))
  expect_identical(nrow(instance$archive$data), 2L)
  expect_true(all(vapply(instance$archive$data$internal_tuned_values, function(v) v$epochs <= 20, logical(1))))
  expect_error(mlr3tuning::tune(tuner = mlr3tuning::tnr("random_search"), task = mlr3::tsk("iris"),
    learner = mlr3::lrn("classif.ember_mlp", batch_size = 16, validate = "test",
      epochs = paradox::to_tune(upper = 20, internal = TRUE)),
    resampling = mlr3::rsmp("holdout"), measures = mlr3::msr("classif.ce"), term_evals = 1), "patience")
})

test_that("in mlr3pipelines graphs: encoding, imputation, validation of the Ember learner", {
  skip_if_no_mlr3()
  skip_if_not_installed("mlr3pipelines")
  quiet_mlr3()
  `%>>%` <- mlr3pipelines::`%>>%`
  po <- mlr3pipelines::po
  set.seed(3)
  encoded <- mlr3::as_learner(po("encode", method = "one-hot") %>>%
    mlr3::lrn("classif.ember_network", epochs = 10, batch_size = 32,
      network = ember_input_num() |> ember_linear(16) |> ember_activation("relu") |> ember_head() |> ember_network()))
  rr <- mlr3::resample(mlr3::tsk("german_credit"), encoded, mlr3::rsmp("holdout"))
  expect_gt(rr$aggregate(mlr3::msr("classif.acc")), 0.6)

  pima <- mlr3::tsk("pima")  # has missing values, which Ember learners do not take
  expect_error(mlr3::lrn("classif.ember_mlp", epochs = 1, batch_size = 32)$train(pima), "missing")
  imputed <- mlr3::as_learner(po("imputemedian") %>>% mlr3::lrn("classif.ember_mlp", epochs = 30, batch_size = 32,
    patience = 3, measures_valid = mlr3::msr("classif.ce")))
  mlr3::set_validate(imputed, validate = 0.2, ids = "classif.ember_mlp")
  imputed$train(pima)
  expect_named(imputed$internal_valid_scores, "classif.ember_mlp.classif.ce")
  expect_named(imputed$internal_tuned_values, "classif.ember_mlp.epochs")
  expect_gt(imputed$predict(pima)$score(mlr3::msr("classif.acc")), 0.65)
  # Marshaling a graph learner marshals the Ember model inside.
  imputed$marshal()
  file <- tempfile(fileext = ".rds")
  saveRDS(imputed, file)
  restored <- readRDS(file)
  restored$unmarshal()
  imputed$unmarshal()
  expect_identical(restored$predict(pima)$response, imputed$predict(pima)$response)
  unlink(file)
})

test_that("networks built in R: two branches, a repeated block, images from pixel columns", {
  skip_if_no_mlr3()
  quiet_mlr3()
  set.seed(4)
  # 8 x 8 images of a bright left or right half, as 64 pixel columns (row-major).
  n <- 120
  side <- sample(c("left", "right"), n, TRUE)
  pixels <- t(vapply(side, function(s) {
    img <- matrix(runif(64, 0, 0.3), 8, 8)
    cols <- if (s == "left") 1:4 else 5:8
    img[, cols] <- img[, cols] + 0.7
    as.vector(t(img))
  }, numeric(64)))
  data <- data.frame(pixels, side = factor(side))
  task <- mlr3::as_task_classif(data, target = "side", id = "halves")
  cnn <- ember_input_image(c(1, 8, 8)) |> ember_conv(4, kernel_size = 3, padding = 1) |> ember_activation("relu") |>
    ember_max_pool(2) |> ember_flatten() |> ember_head() |> ember_network()
  learner <- mlr3::lrn("classif.ember_network", network = cnn, epochs = 20, batch_size = 16, opt.lr = 0.01)
  rr <- mlr3::resample(task, learner, mlr3::rsmp("holdout"), store_models = TRUE)
  expect_gt(rr$aggregate(mlr3::msr("classif.acc")), 0.9)
  expect_true(any(grepl("^conv2d_0", ember_parameters(rr$learners[[1]]$model)$name)))

  # Two branches and a repeated block on a task with factors.
  num <- ember_input_num() |> ember_linear(16)
  categ <- ember_input_categ() |> ember_embedding(4) |> ember_flatten() |> ember_linear(16)
  net <- ember_merge_sum(num, categ) |>
    ember_repeat(2, function(x) ember_merge_sum(x, x |> ember_layer_norm() |> ember_linear(16) |> ember_activation("gelu"))) |>
    ember_head() |> ember_network()
  learner <- mlr3::lrn("classif.ember_network", network = net, epochs = 10, batch_size = 32, predict_type = "prob")
  learner$train(mlr3::tsk("german_credit"))
  expect_identical(colnames(learner$predict(mlr3::tsk("german_credit"))$prob), c("good", "bad"))
  expect_error(learner$param_set$set_values(network = "{\"nodes\": []}"), "ember_network")
})
