# Parallel and encapsulated execution: the same seed gives the same results sequentially, under
# future's multisession and cluster plans and under callr encapsulation (mlr3 needed). The models
# travel between processes as the engine's model bytes (marshaling).

# A resampling of an Ember learner with validation and early stopping: the seed of each
# iteration comes from R's generator (seed = "random"), which mlr3 seeds per iteration.
parallel_run <- function(learner, task, resampling) {
  set.seed(1)
  rr <- mlr3::resample(task, learner, resampling, store_models = TRUE)
  expect_identical(nrow(rr$errors), 0L)
  rr
}

predictions_of <- function(rr) as.data.frame(data.table::as.data.table(rr$prediction()))

parallel_setup <- function() {
  lgr::get_logger("mlr3")$set_threshold("warn")
  task <- mlr3::tsk("sonar")
  learner <- mlr3::lrn("classif.ember_tab_resnet", epochs = 8, batch_size = 16, d_block = 16, predict_type = "prob",
    patience = 2, measures_valid = mlr3::msr("classif.auc"), validate = "test")
  resampling <- mlr3::rsmp("cv", folds = 3)
  set.seed(42)
  resampling$instantiate(task)
  list(task = task, learner = learner, resampling = resampling)
}

test_that("future multisession and a cluster of localhost workers give the sequential results", {
  skip_if_no_mlr3()
  skip_if_not_installed("future")
  s <- parallel_setup()
  old <- future::plan("sequential")
  on.exit(future::plan(old), add = TRUE)
  sequential <- parallel_run(s$learner, s$task, s$resampling)

  future::plan("multisession", workers = 2)
  multisession <- parallel_run(s$learner, s$task, s$resampling)
  expect_identical(predictions_of(multisession), predictions_of(sequential))
  expect_identical(lapply(multisession$learners, function(l) l$internal_tuned_values),
    lapply(sequential$learners, function(l) l$internal_tuned_values))
  # The models came back marshaled and unmarshal in this process.
  model <- multisession$learners[[1]]$model
  expect_s3_class(model, "ember_model")
  expect_identical(predict(model, s$task$data(), type = "prob"), predict(sequential$learners[[1]]$model, s$task$data(), type = "prob"))

  cluster <- parallel::makePSOCKcluster(2)
  on.exit(parallel::stopCluster(cluster), add = TRUE)
  parallel::clusterCall(cluster, function(libs) .libPaths(libs), .libPaths())
  future::plan("cluster", workers = cluster)
  on_cluster <- parallel_run(s$learner, s$task, s$resampling)
  expect_identical(predictions_of(on_cluster), predictions_of(sequential))
  workers <- unique(unlist(parallel::clusterCall(cluster, Sys.getpid)))
  expect_false(Sys.getpid() %in% workers)
})

test_that("callr encapsulation gives the unencapsulated results", {
  skip_if_no_mlr3()
  skip_if_not_installed("callr")
  s <- parallel_setup()
  plain <- parallel_run(s$learner, s$task, s$resampling)
  encapsulated <- s$learner$clone(deep = TRUE)
  encapsulated$encapsulate("callr", mlr3::lrn("classif.featureless", predict_type = "prob"))
  in_callr <- parallel_run(encapsulated, s$task, s$resampling)
  expect_identical(predictions_of(in_callr), predictions_of(plain))
  expect_identical(nrow(in_callr$warnings), 0L)
  expect_identical(in_callr$learners[[2]]$internal_valid_scores, plain$learners[[2]]$internal_valid_scores)
  # A learner trained in a callr process predicts here.
  learner <- mlr3::lrn("regr.ember_mlp", epochs = 5, batch_size = 8, seed = 3)
  learner$encapsulate("callr", mlr3::lrn("regr.featureless"))
  learner$train(mlr3::tsk("mtcars"))
  expect_false(learner$marshaled)
  reference <- mlr3::lrn("regr.ember_mlp", epochs = 5, batch_size = 8, seed = 3)$train(mlr3::tsk("mtcars"))
  expect_identical(learner$predict(mlr3::tsk("mtcars"))$response, reference$predict(mlr3::tsk("mtcars"))$response)
})

test_that("a task with a tensor column (bytes and image files) resamples on future workers as sequentially", {
  skip_if_no_mlr3()
  skip_if_not_installed("future")
  skip_if_not_installed("png")
  lgr::get_logger("mlr3")$set_threshold("warn")
  set.seed(3)
  n <- 48L
  y <- factor(rep(c("a", "b"), n / 2))
  imgs <- array(as.raw(sample(0:60, n * 144L, TRUE)), c(n, 1L, 12L, 12L))
  imgs[y == "b", 1, 1:4, 1:4] <- as.raw(240)
  dir <- tempfile()
  dir.create(dir)
  paths <- file.path(dir, sprintf("%02d.png", seq_len(n)))
  for (i in seq_len(n)) png::writePNG(matrix(as.integer(imgs[i, 1, , ]) / 255, 12, 12), paths[i])
  learner <- mlr3::lrn("classif.ember_lenet", epochs = 3, batch_size = 8, predict_type = "prob",
    augment = list(ember_transform("random_horizontal_flip")))
  for (column in list(as_ember_tensor(imgs), ember_image_files(paths))) {
    d <- data.frame(y = y)
    d$image <- column
    task <- mlr3::as_task_classif(d, target = "y")
    resampling <- mlr3::rsmp("cv", folds = 2)$instantiate(task)
    old <- future::plan("sequential")
    sequential <- parallel_run(learner, task, resampling)
    future::plan("multisession", workers = 2)
    multisession <- parallel_run(learner, task, resampling)
    future::plan(old)
    expect_identical(predictions_of(multisession), predictions_of(sequential))
  }
})
