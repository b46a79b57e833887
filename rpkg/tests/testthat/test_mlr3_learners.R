# Tests that need mlr3; they skip when it is absent (CI) and run under `make check-mlr3`.

test_that("learners are registered and pass expect_learner", {
  skip_if_no_mlr3()
  h <- mlr3_helpers()
  for (id in c("classif.ember_mlp", "regr.ember_mlp")) {
    learner <- mlr3::lrn(id)
    h$expect_learner(learner)
    expect_identical(learner$param_set$ids(tags = "threads"), "num_threads")
    expect_true(all(vapply(learner$param_set$tags, function(t) any(c("train", "predict") %in% t), logical(1))))
    expect_true("marshal" %in% learner$properties)
  }
  expect_true(all(c("twoclass", "multiclass") %in% mlr3::lrn("classif.ember_mlp")$properties))
})

test_that("run_autotest passes for classif.ember_mlp", {
  skip_if_no_mlr3()
  h <- mlr3_helpers()
  learner <- mlr3::lrn("classif.ember_mlp", epochs = 30, batch_size = 16)
  result <- h$run_autotest(learner)
  expect_true(result, info = if (!isTRUE(result)) result$error)
})

test_that("run_autotest passes for regr.ember_mlp", {
  skip_if_no_mlr3()
  h <- mlr3_helpers()
  learner <- mlr3::lrn("regr.ember_mlp", epochs = 30, batch_size = 16)
  result <- h$run_autotest(learner)
  expect_true(result, info = if (!isTRUE(result)) result$error)
})

test_that("binary: the logit is the positive class; outputs follow the task's levels", {
  skip_if_no_mlr3()
  task <- mlr3::tsk("sonar")
  learner <- mlr3::lrn("classif.ember_mlp", epochs = 20, batch_size = 16, predict_type = "prob", seed = 1)
  learner$train(task)
  p <- learner$predict(task)
  expect_identical(colnames(p$prob), task$class_names)
  expect_gt(p$score(mlr3::msr("classif.acc")), 0.8)
  # A class absent from the training rows still gets a column.
  iris_task <- mlr3::tsk("iris")
  learner2 <- mlr3::lrn("classif.ember_mlp", epochs = 2, batch_size = 16, predict_type = "prob")
  learner2$train(iris_task, row_ids = 1:100)  # setosa and versicolor only
  expect_identical(ncol(learner2$predict(iris_task, row_ids = 101:150)$prob), 3L)
})

test_that("marshal -> saveRDS -> readRDS -> unmarshal predicts identically", {
  skip_if_no_mlr3()
  task <- mlr3::tsk("iris")
  learner <- mlr3::lrn("classif.ember_mlp", epochs = 10, batch_size = 16, predict_type = "prob")
  learner$train(task)
  p1 <- learner$predict(task)
  learner$marshal()
  expect_true(learner$marshaled)
  file <- tempfile(fileext = ".rds")
  saveRDS(learner, file)
  learner2 <- readRDS(file)
  learner2$unmarshal()
  expect_false(learner2$marshaled)
  expect_identical(learner2$predict(task)$prob, p1$prob)
  # The same learner saved without marshaling errors when used, it does not crash.
  learner$unmarshal()
  saveRDS(learner, file)
  learner3 <- readRDS(file)
  expect_error(learner3$predict(task), class = "ember_error_stale_handle")
  unlink(file)
})

test_that("deep clones predict like the original", {
  skip_if_no_mlr3()
  task <- mlr3::tsk("mtcars")
  learner <- mlr3::lrn("regr.ember_mlp", epochs = 10, batch_size = 8)
  learner$train(task)
  clone <- learner$clone(deep = TRUE)
  expect_identical(clone$predict(task)$response, learner$predict(task)$response)
})

test_that("resample under future multisession equals sequential for the same seed", {
  skip_if_no_mlr3()
  skip_if_not_installed("future")
  task <- mlr3::tsk("iris")
  learner <- mlr3::lrn("classif.ember_mlp", epochs = 5, batch_size = 16, predict_type = "prob")
  resampling <- mlr3::rsmp("cv", folds = 3)
  set.seed(42)
  resampling$instantiate(task)
  future::plan("sequential")
  set.seed(1)
  seq_rr <- mlr3::resample(task, learner, resampling)
  old <- future::plan("multisession", workers = 2)
  on.exit(future::plan(old), add = TRUE)
  set.seed(1)
  par_rr <- mlr3::resample(task, learner, resampling)
  expect_equal(seq_rr$aggregate(mlr3::msr("classif.logloss")), par_rr$aggregate(mlr3::msr("classif.logloss")))
  expect_identical(as.data.frame(data.table::as.data.table(seq_rr$prediction()))$prob.setosa,
    as.data.frame(data.table::as.data.table(par_rr$prediction()))$prob.setosa)
})
