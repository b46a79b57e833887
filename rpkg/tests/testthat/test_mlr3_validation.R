# Validation data, measures, early stopping, internal tuning values, callbacks, optimizers and
# losses of the Ember learners (mlr3 needed).

test_that("validate: a ratio, \"test\" and \"predefined\"; internal_valid_scores follow measures_valid", {
  skip_if_no_mlr3()
  set.seed(1)
  learner <- mlr3::lrn("classif.ember_mlp", epochs = 5, batch_size = 16,
    measures_valid = mlr3::msrs(c("classif.acc", "classif.auc")))
  expect_error(learner$train(mlr3::tsk("sonar")), "no validation data")
  expect_error(learner$validate <- 2)
  learner$validate <- 0.25
  learner$train(mlr3::tsk("sonar"))
  scores <- learner$internal_valid_scores
  expect_identical(names(scores), c("classif.acc", "classif.auc"))
  h <- learner$model$history
  expect_identical(scores$classif.acc, h$valid_classif.acc[5])
  expect_identical(nrow(h), 5L)
  expect_true(all(c("valid_loss", "valid_classif.acc", "valid_classif.auc") %in% names(h)))
  expect_false(any(startsWith(names(h), "valid_") & nchar(names(h)) == 6L))

  # "predefined": the task's internal validation task, scored with the learner's measure.
  task <- mlr3::tsk("iris")
  task$internal_valid_task <- c(1:10, 51:60, 101:110)
  learner <- mlr3::lrn("classif.ember_mlp", epochs = 20, batch_size = 16, measures_valid = mlr3::msr("classif.ce"),
    validate = "predefined", seed = 3)
  learner$train(task)
  expect_identical(learner$state$internal_valid_task_hash, task$internal_valid_task$hash)
  valid <- task$internal_valid_task
  ce <- mlr3::msr("classif.ce")$score(learner$predict(valid))
  expect_equal(learner$internal_valid_scores$classif.ce, ce)

  # "test" in resample(); without measures_valid the validation loss is the score.
  learner <- mlr3::lrn("regr.ember_mlp", epochs = 10, batch_size = 8, validate = "test")
  rr <- mlr3::resample(mlr3::tsk("mtcars"), learner, mlr3::rsmp("cv", folds = 3))
  for (l in rr$learners) expect_identical(names(l$internal_valid_scores), "loss")
  expect_true(is.finite(rr$aggregate(mlr3::msr("internal_valid_score", select = "loss", aggregator = mean))))

  # Training leaves the measures among the parameter values untouched, so the learner's hash is
  # stable and a resampling's learners stay in the order of its iterations.
  learner <- mlr3::lrn("classif.ember_mlp", epochs = 6, batch_size = 16, patience = 2, validate = 0.3,
    measures_valid = mlr3::msr("classif.auc"), predict_type = "prob")
  task <- mlr3::tsk("sonar")
  hash <- learner$hash
  learner$train(task)
  expect_identical(learner$hash, hash)
  learner$validate <- "test"
  rr <- mlr3::resample(task, learner, mlr3::rsmp("cv", folds = 3), store_models = TRUE)
  for (i in 1:3) {
    p <- rr$predictions()[[i]]
    expect_equal(rr$learners[[i]]$predict(task, row_ids = p$row_ids)$prob, p$prob)
    expect_equal(rr$learners[[i]]$internal_valid_scores$classif.auc, unname(p$score(mlr3::msr("classif.auc"))))
  }
})

test_that("early stopping: any mlr3 measure in its direction, patience, min_delta, best weights", {
  skip_if_no_mlr3()
  task <- mlr3::tsk("sonar")
  # classif.acc is maximised: it stops after `patience` validations without a new best accuracy.
  learner <- mlr3::lrn("classif.ember_mlp", epochs = 200, batch_size = 16, patience = 4, seed = 5,
    measures_valid = mlr3::msrs(c("classif.acc", "classif.logloss")), restore_best_weights = TRUE,
    opt.lr = 0.01, predict_type = "prob")
  learner$validate <- 0.3
  set.seed(2)
  learner$train(task)
  h <- learner$model$history
  best <- learner$internal_tuned_values$epochs
  expect_lt(nrow(h), 200)
  expect_identical(best, h$epoch[which.max(h$valid_classif.acc)])
  expect_identical(nrow(h), best + 4L)
  # Restored weights: the final model's validation scores are those of the best epoch.
  expect_identical(learner$internal_valid_scores$classif.acc, max(h$valid_classif.acc))
  expect_identical(learner$model$config$best_epoch, best)

  # A minimised measure and min_delta; without restoring, the scores are those of the last epoch.
  learner <- mlr3::lrn("regr.ember_mlp", epochs = 300, batch_size = 8, patience = 3, min_delta = 0.05, seed = 7,
    measures_valid = mlr3::msr("regr.mae"), opt.lr = 0.01, restore_best_weights = FALSE)
  learner$validate <- 0.3
  set.seed(3)
  learner$train(mlr3::tsk("mtcars"))
  h <- learner$model$history
  expect_lt(nrow(h), 300)
  expect_identical(learner$internal_valid_scores$regr.mae, h$valid_regr.mae[nrow(h)])
  # Restoring is the learners' initial value (as in ember_fit()).
  expect_true(mlr3::lrn("regr.ember_mlp")$param_set$values$restore_best_weights)
  # Early stopping needs validation data and a direction.
  learner <- mlr3::lrn("classif.ember_mlp", epochs = 5, batch_size = 16, patience = 2)
  expect_error(learner$train(task), "patience")
  no_direction <- mlr3::msr("classif.ce")
  no_direction$minimize <- NA
  learner <- mlr3::lrn("classif.ember_mlp", epochs = 5, batch_size = 16, patience = 2, measures_valid = no_direction,
    validate = 0.2)
  expect_error(learner$train(task), "minimize = NA")
  expect_equal(learner$internal_tuned_values, NULL)
})

test_that("eval_freq and measures_train; the history is kept in the model", {
  skip_if_no_mlr3()
  learner <- mlr3::lrn("classif.ember_tab_resnet", epochs = 6, batch_size = 16, eval_freq = 2, d_block = 16,
    measures_train = mlr3::msrs(c("classif.ce", "classif.bbrier")), measures_valid = mlr3::msr("classif.ce"))
  learner$validate <- 0.2
  learner$train(mlr3::tsk("sonar"))
  h <- learner$model$history
  expect_s3_class(h, "ember_history")
  expect_identical(which(!is.na(h$valid_classif.ce)), c(2L, 4L, 6L))
  expect_true(all(is.finite(h$train_classif.ce)) && all(is.finite(h$train_classif.bbrier)))
  expect_true(all(h$train_classif.ce >= 0 & h$train_classif.ce <= 1))
  # The training measures score the model of the epoch's end on the training rows: after the
  # last epoch, that is the final model.
  learner <- mlr3::lrn("regr.ember_mlp", epochs = 4, batch_size = 8, measures_train = mlr3::msr("regr.mse"))
  task <- mlr3::tsk("mtcars")
  learner$train(task)
  expect_equal(learner$model$history$train_regr.mse[4], unname(learner$predict(task)$score(mlr3::msr("regr.mse"))),
    tolerance = 1e-6)
})

test_that("optimizers, losses and learning-rate schedules reach the engine", {
  skip_if_no_mlr3()
  task <- mlr3::tsk("iris")
  run <- function(...) {
    learner <- mlr3::lrn("classif.ember_mlp", epochs = 6, batch_size = 16, seed = 1, ...)
    learner$train(task)
    learner$model$history
  }
  expect_equal(run(cb.lr_scheduler = "lr_step", cb.lr_step.step_size = 2, cb.lr_step.gamma = 0.5)$lr,
    0.001 * 0.5^c(0, 1, 1, 2, 2, 3))
  expect_equal(run(cb.lr_scheduler = "lr_multiplicative", cb.lr_multiplicative.factor = 0.9)$lr, 0.001 * 0.9^(1:6))
  cosine <- run(cb.lr_scheduler = "lr_cosine_annealing")$lr
  expect_equal(cosine[6], 0)  # T_max defaults to epochs
  one_cycle <- run(cb.lr_scheduler = "lr_one_cycle", cb.lr_one_cycle.max_lr = 0.01)$lr
  expect_gt(max(one_cycle), 0.009)
  expect_error(run(cb.lr_scheduler = "lr_step"), "cb.lr_step.step_size")
  expect_error(run(cb.lr_scheduler = "lr_reduce_on_plateau"), "validate")
  expect_equal(run(optimizer = "rmsprop")$lr, rep(0.01, 6))
  expect_equal(run(optimizer = "sgd", opt.lr = 0.1, opt.momentum = 0.9, opt.nesterov = TRUE)$lr, rep(0.1, 6))
  differs <- function(a, b) !isTRUE(all.equal(a$train_loss, b$train_loss))
  base <- run()
  expect_true(differs(base, run(optimizer = "adamw", opt.amsgrad = TRUE, opt.betas = c(0.8, 0.99))))
  expect_true(differs(base, run(optimizer = "adagrad", opt.lr_decay = 0.1)))
  expect_true(differs(base, run(loss.weight = c(1, 2, 4))))
  expect_true(differs(base, run(loss.reduction = "sum")))
  expect_error(run(loss.weight = c(1, 2)), "one weight per class")
  binary <- mlr3::lrn("classif.ember_mlp", epochs = 3, batch_size = 16, loss.weight = c(2, 1), seed = 1)
  expect_silent(binary$train(mlr3::tsk("sonar")))
  l1 <- mlr3::lrn("regr.ember_mlp", epochs = 3, batch_size = 8, loss = "l1", seed = 1)
  l1$train(mlr3::tsk("mtcars"))
  mse <- mlr3::lrn("regr.ember_mlp", epochs = 3, batch_size = 8, seed = 1)
  mse$train(mlr3::tsk("mtcars"))
  expect_false(isTRUE(all.equal(l1$model$history$train_loss, mse$model$history$train_loss)))
})

test_that("the checkpoint callback writes model files; progress shows on request", {
  skip_if_no_mlr3()
  dir <- file.path(tempdir(), "ember-checkpoints")
  on.exit(unlink(dir, recursive = TRUE))
  learner <- mlr3::lrn("classif.ember_mlp", epochs = 4, batch_size = 16, cb.checkpoint.path = dir,
    cb.checkpoint.freq = 2, predict_type = "prob")
  learner$train(mlr3::tsk("iris"))
  expect_setequal(list.files(dir), c("checkpoint_2.safetensors", "checkpoint_4.safetensors"))
  last <- ember_load(file.path(dir, "checkpoint_4.safetensors"))
  expect_identical(nrow(last$history), 4L)
  expect_equal(predict(last, iris, type = "prob"), predict(learner$model, iris, type = "prob"))
  learner <- mlr3::lrn("classif.ember_mlp", epochs = 2, batch_size = 16, cb.progress = TRUE)
  expect_output(learner$train(mlr3::tsk("iris")), "100%")
})

test_that("seeds: \"random\" follows set.seed(); a fixed seed fixes the model", {
  skip_if_no_mlr3()
  task <- mlr3::tsk("iris")
  learner <- mlr3::lrn("classif.ember_mlp", epochs = 3, batch_size = 16, predict_type = "prob")
  set.seed(10)
  a <- learner$train(task)$predict(task)$prob
  set.seed(10)
  b <- learner$train(task)$predict(task)$prob
  set.seed(11)
  c <- learner$train(task)$predict(task)$prob
  expect_identical(a, b)
  expect_false(identical(a, c))
  learner$param_set$set_values(seed = 42)
  set.seed(1)
  d <- learner$train(task)$predict(task)$prob
  set.seed(2)
  e <- learner$train(task)$predict(task)$prob
  expect_identical(d, e)
})
