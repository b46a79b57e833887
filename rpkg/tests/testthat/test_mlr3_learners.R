# The Ember learners against mlr3's own conformance suite, and their contract: properties,
# parameters, outputs, marshaling and clones. They skip when mlr3 is absent (CI) and run under
# `make check-mlr3`.

ember_ids <- c("classif.ember_mlp", "regr.ember_mlp", "classif.ember_tab_resnet", "regr.ember_tab_resnet",
  "classif.ember_ft_transformer", "regr.ember_ft_transformer", "classif.ember_tabm", "regr.ember_tabm", "classif.ember_featureless", "regr.ember_featureless",
  "classif.ember_network", "regr.ember_network")

# Small, fast architectures for the tests that are not about learning.
small <- function(id, ...) {
  learner <- mlr3::lrn(id, ...)
  arch <- sub("^(classif|regr)\\.ember_", "", id)
  if (arch == "ft_transformer") learner$param_set$set_values(n_blocks = 1, d_token = 16, attention_n_heads = 2)
  if (arch == "tab_resnet") learner$param_set$set_values(n_blocks = 1, d_block = 16)
  if (arch == "tabm") learner$param_set$set_values(k = 4, n_blocks = 1, d_block = 16)
  learner
}

test_that("every learner is registered and passes expect_learner, with a marshal round trip", {
  skip_if_no_mlr3()
  h <- mlr3_helpers()
  expect_true(all(ember_ids %in% mlr3::mlr_learners$keys()))
  for (id in ember_ids) {
    learner <- small(id, epochs = 2, batch_size = 16)
    task <- if (startsWith(id, "classif")) mlr3::tsk("iris") else mlr3::tsk("mtcars")
    h$expect_learner(learner, task)
    expect_identical(learner$param_set$ids(tags = "threads"), "num_threads", label = id)
    expect_true(all(c("marshal", "validation", "internal_tuning") %in% learner$properties), label = id)
    expect_identical(learner$param_set$ids(tags = "internal_tuning"), "epochs", label = id)
    expect_true(all(c("numeric", "integer", "logical", "factor", "ordered") %in% learner$feature_types), label = id)
    if (startsWith(id, "classif")) {
      expect_true(all(c("twoclass", "multiclass") %in% learner$properties), label = id)
      expect_identical(learner$predict_types, c("response", "prob"), label = id)
      expect_s3_class(learner, "LearnerClassifEmber")
    } else {
      expect_identical(learner$predict_types, c("response", "quantiles"), label = id)
      expect_s3_class(learner, "LearnerRegrEmber")
    }
  }
})

# mlr3's run_autotest() with only `epochs` and `batch_size` set (and permutation importance): every task it generates (each
# feature type, all of them, UTF-8 feature names, reordered columns, a switched positive class),
# both predict types, replicability with a seed, and the sanity tasks it must learn. The
# featureless baselines cannot learn the sanity tasks (nor can mlr3's own featureless learners,
# whose tests exclude them). Regression sanity wants an MSE within a factor 2 of the noise, which
# the dropout-regularised TabResNet and FT-Transformer reach with 100 epochs, though not for every
# seed (regr.ember_tab_resnet failed it for 1 of 20 seeds tried): each learner's run is seeded, so
# that the suite gives the same result every time.
autotest_epochs <- c(classif.ember_mlp = 30, regr.ember_mlp = 30, classif.ember_tab_resnet = 30,
  regr.ember_tab_resnet = 100, classif.ember_ft_transformer = 30, regr.ember_ft_transformer = 100,
  classif.ember_tabm = 30, regr.ember_tabm = 100,
  classif.ember_featureless = 10, regr.ember_featureless = 10, classif.ember_network = 30, regr.ember_network = 30)

for (id in ember_ids) {
  local({
    id <- id
    test_that(sprintf("run_autotest passes for %s", id), {
      skip_if_no_mlr3()
      h <- mlr3_helpers()
      learner <- mlr3::lrn(id, epochs = autotest_epochs[[id]], batch_size = 16)
      # mlr3 checks $importance() of learners with the property (as mlr3learners' tests set ranger's).
      if ("importance" %in% learner$properties) learner$param_set$set_values(importance = "permutation")
      exclude <- if (grepl("featureless", id)) "sanity" else NULL
      set.seed(1)
      result <- h$run_autotest(learner, exclude = exclude)
      expect_true(isTRUE(result), info = if (!isTRUE(result)) result$error)
    })
  })
}

test_that("parameters: mlr3torch's names, architecture defaults equal the builders' defaults", {
  skip_if_no_mlr3()
  learner <- mlr3::lrn("classif.ember_mlp")
  ps <- learner$param_set
  expect_true(all(c("epochs", "batch_size", "batch_size_predict", "shuffle", "seed", "num_threads", "patience",
    "min_delta", "restore_best_weights", "eval_freq", "measures_train", "measures_valid", "optimizer", "opt.lr",
    "loss", "loss.weight", "cb.progress", "cb.checkpoint.path", "cb.lr_scheduler", "cb.lr_step.step_size") %in% ps$ids()))
  expect_identical(ps$values$seed, "random")
  expect_true(all(vapply(ps$tags, function(t) any(c("train", "predict") %in% t), logical(1))))
  expect_identical(mlr3::lrn("regr.ember_mlp")$param_set$levels$loss, c("mse", "l1", "huber", "smooth_l1", "poisson_nll", "quantile"))
  expect_identical(mlr3::lrn("classif.ember_mlp")$param_set$levels$loss, c("cross_entropy", "focal"))
  builders <- list(mlp = ember_mlp, tab_resnet = ember_tab_resnet, ft_transformer = ember_ft_transformer, tabm = ember_tabm)
  for (arch in names(builders)) {
    ps <- mlr3::lrn(paste0("regr.ember_", arch))$param_set
    formals_ <- formals(builders[[arch]])
    for (name in intersect(names(formals_), ps$ids())) {
      expect_equal(ps$default[[name]], eval(formals_[[name]]), label = sprintf("%s: default of '%s'", arch, name))
    }
  }
  # Dependencies: optimizer options belong to their optimizer, schedule options to their schedule.
  expect_error(mlr3::lrn("classif.ember_mlp", opt.momentum = 0.9), "optimizer")
  expect_error(mlr3::lrn("classif.ember_mlp", cb.lr_step.step_size = 2), "cb.lr_scheduler")
  expect_silent(mlr3::lrn("classif.ember_mlp", optimizer = "sgd", opt.momentum = 0.9, opt.nesterov = TRUE))
})


test_that("the tabular learners start from the defaults benchmark's values, and the networks they build use them", {
  skip_if_no_mlr3()
  task <- mlr3::tsk("mtcars")$select(c("cyl", "disp", "hp"))
  weight_bytes <- function(learner) length(ember_get_weights(learner$model))
  # The FT-Transformer's tokens are 64 wide, not the builder's (and the paper's) 192.
  ft <- mlr3::lrn("regr.ember_ft_transformer", n_blocks = 1, epochs = 1, batch_size = 16)
  expect_identical(ft$param_set$values$d_token, 64L)
  expect_identical(ft$param_set$values$optimizer, "adamw")
  ft$train(task)
  wide <- mlr3::lrn("regr.ember_ft_transformer", n_blocks = 1, epochs = 1, batch_size = 16, d_token = 192L)
  wide$train(task)
  expect_lt(weight_bytes(ft), weight_bytes(wide) / 4)
  expect_identical(formals(ember_ft_transformer)$d_token, 192L)
  mlp <- mlr3::lrn("regr.ember_mlp")
  expect_identical(mlp$param_set$values[c("neurons", "p")], list(neurons = 128L, p = 0.5))
  tabm <- mlr3::lrn("classif.ember_tabm")$param_set$values
  expect_identical(tabm[c("optimizer", "opt.lr", "opt.weight_decay", "dropout")],
    list(optimizer = "adamw", opt.lr = 2e-3, opt.weight_decay = 3e-4, dropout = 0.2))
})
test_that("binary: the logit is the positive class; columns follow class_names; response is the argmax", {
  skip_if_no_mlr3()
  task <- mlr3::tsk("sonar")
  learner <- mlr3::lrn("classif.ember_mlp", epochs = 20, batch_size = 16, predict_type = "prob", seed = 1)
  learner$train(task)
  p <- learner$predict(task)
  expect_identical(colnames(p$prob), task$class_names)
  expect_identical(as.character(p$response), colnames(p$prob)[max.col(p$prob, ties.method = "first")])
  expect_gt(p$score(mlr3::msr("classif.acc")), 0.8)
  # With the other positive class, the logit is that of "R".
  switched <- task$clone()
  switched$positive <- "R"
  learner2 <- learner$clone()
  learner2$train(switched)
  p2 <- learner2$predict(switched)
  expect_identical(colnames(p2$prob), c("R", "M"))
  expect_identical(learner2$model$target$levels, c("R", "M"))
  expect_gt(p2$score(mlr3::msr("classif.acc")), 0.8)
  # A class absent from the training rows still gets a column; outputs come from the task's levels.
  iris_task <- mlr3::tsk("iris")
  learner3 <- mlr3::lrn("classif.ember_mlp", epochs = 2, batch_size = 16, predict_type = "prob")
  learner3$train(iris_task, row_ids = 1:100)  # setosa and versicolor only
  expect_identical(colnames(learner3$predict(iris_task, row_ids = 101:150)$prob), iris_task$class_names)
  expect_identical(learner3$model$outputs, 3L)
})

test_that("marshal -> saveRDS -> readRDS -> unmarshal predicts identically, for every learner", {
  skip_if_no_mlr3()
  file <- tempfile(fileext = ".rds")
  on.exit(unlink(file))
  for (id in ember_ids) {
    task <- if (startsWith(id, "classif")) mlr3::tsk("iris") else mlr3::tsk("mtcars")
    learner <- small(id, epochs = 3, batch_size = 16)
    if (startsWith(id, "classif")) learner$predict_type <- "prob"
    learner$train(task)
    p1 <- learner$predict(task)
    history <- learner$model$history
    learner$marshal()
    expect_true(learner$marshaled)
    saveRDS(learner, file)
    learner2 <- readRDS(file)
    learner2$unmarshal()
    expect_false(learner2$marshaled)
    expect_identical(learner2$predict(task)$data, p1$data, label = id)
    expect_identical(learner2$model$history, history)
  }
  # Saved without marshaling, the model errors when used; it does not crash.
  learner <- mlr3::lrn("classif.ember_mlp", epochs = 2, batch_size = 16)
  learner$train(mlr3::tsk("iris"))
  saveRDS(learner, file)
  expect_error(readRDS(file)$predict(mlr3::tsk("iris")), class = "ember_error_stale_handle")
})

test_that("deep clones have their own engine model", {
  skip_if_no_mlr3()
  task <- mlr3::tsk("mtcars")
  learner <- mlr3::lrn("regr.ember_mlp", epochs = 10, batch_size = 8)
  learner$train(task)
  before <- learner$predict(task)$response
  clone <- learner$clone(deep = TRUE)
  expect_identical(clone$predict(task)$response, before)
  # Changing the clone's weights leaves the original alone; a shallow clone shares them.
  ember_set_parameter(clone$model, "head.bias", 100)
  expect_identical(learner$predict(task)$response, before)
  expect_false(identical(clone$predict(task)$response, before))
  shallow <- learner$clone()
  ember_set_parameter(shallow$model, "head.bias", 100)
  expect_false(identical(learner$predict(task)$response, before))
  # A marshaled learner clones too.
  learner$marshal()
  expect_true(learner$clone(deep = TRUE)$marshaled)
})

test_that("predictions use only data(), feature_names, class_names and nrow; batch_size_predict", {
  skip_if_no_mlr3()
  task <- mlr3::tsk("iris")
  learner <- mlr3::lrn("classif.ember_tab_resnet", epochs = 3, batch_size = 16, predict_type = "prob", d_block = 16)
  learner$train(task)
  p <- learner$predict(task)
  learner$param_set$set_values(batch_size_predict = 7)
  expect_equal(learner$predict(task)$prob, p$prob, tolerance = 1e-6)
  newdata <- task$data(cols = rev(task$feature_names))
  expect_equal(learner$predict_newdata(newdata)$prob, p$prob, tolerance = 1e-6)
  expect_equal(learner$predict_newdata_fast(newdata)$prob, p$prob, tolerance = 1e-6)
})

test_that("the featureless learners learn the class frequencies and the mean, whatever the features", {
  skip_if_no_mlr3()
  task <- mlr3::tsk("german_credit")  # 70% good
  learner <- mlr3::lrn("classif.ember_featureless", epochs = 30, batch_size = 64, predict_type = "prob", seed = 1)
  learner$train(task)
  expect_equal(unname(learner$predict(task)$prob[1, ]), c(0.7, 0.3), tolerance = 0.03)
  regr <- mlr3::lrn("regr.ember_featureless", epochs = 100, batch_size = 8)
  regr$train(mlr3::tsk("mtcars"))
  expect_equal(regr$predict(mlr3::tsk("mtcars"))$response[1], mean(mtcars$mpg), tolerance = 0.02)
  # Missing values and feature types the others do not take.
  d <- data.frame(y = factor(rep(c("a", "b"), 10)), when = Sys.Date() + 1:20, txt = letters[1:20], v = c(NA, 1:19))
  no_features <- mlr3::as_task_classif(d, target = "y")
  learner$train(no_features)
  expect_length(learner$predict(no_features)$response, 20)
  no_features$select(character(0))
  learner$train(no_features)
  expect_length(learner$predict(no_features)$response, 20)
})

test_that("regression learners predict quantiles: train, predict, regr.pinball, resample, quantile_response", {
  skip_if_no_mlr3()
  set.seed(31)
  n <- 600L
  d <- data.frame(a = stats::runif(n, -1, 1), b = stats::rnorm(n))
  d$y <- 10 * (2 * d$a + stats::runif(n, -1, 1))
  task <- mlr3::as_task_regr(d, target = "y", id = "noisy_line")
  for (id in c("regr.ember_mlp", "regr.ember_tab_resnet", "regr.ember_featureless")) {
    learner <- small(id, epochs = 3, batch_size = 32, seed = 1)
    learner$predict_type <- "quantiles"
    learner$quantiles <- c(0.1, 0.5, 0.9)
    learner$train(task, row_ids = 1:400)
    expect_identical(learner$model$quantiles, c(0.1, 0.5, 0.9), label = id)
    p <- learner$predict(task, row_ids = 401:n)
    expect_identical(dim(p$quantiles), c(200L, 3L), label = id)
    expect_identical(colnames(p$quantiles), c("q0.1", "q0.5", "q0.9"), label = id)
    expect_identical(p$response, unname(p$quantiles[, "q0.5"]), label = id)
    expect_true(is.finite(p$score(mlr3::msr("regr.pinball", alpha = 0.9))), label = id)
  }
  # A trained MLP: its quantiles cover their shares; pinball losses and the response measure in a resampling.
  learner <- mlr3::lrn("regr.ember_mlp", epochs = 40, batch_size = 32, opt.lr = 0.02, seed = 1,
    cb.lr_scheduler = "lr_cosine_annealing")
  learner$predict_type <- "quantiles"
  learner$quantiles <- c(0.1, 0.5, 0.9)
  learner$train(task, row_ids = 1:400)
  p <- learner$predict(task, row_ids = 401:n)
  truth <- d$y[401:n]
  expect_lt(abs(mean(truth < p$quantiles[, "q0.1"]) - 0.1), 0.07)
  expect_lt(abs(mean(truth < p$quantiles[, "q0.9"]) - 0.9), 0.07)
  expect_true(all(p$quantiles[, 1] <= p$quantiles[, 2] & p$quantiles[, 2] <= p$quantiles[, 3]))
  # mlr3's quantile_response picks the response column (and joins the levels).
  learner$quantile_response <- 0.9
  learner$train(task, row_ids = 1:400)
  p9 <- learner$predict(task, row_ids = 401:n)
  expect_identical(p9$response, unname(p9$quantiles[, "q0.9"]))
  rr <- mlr3::resample(task, small("regr.ember_mlp", epochs = 3, batch_size = 32, seed = 1, predict_type = "quantiles",
    quantiles = c(0.25, 0.5, 0.75)), mlr3::rsmp("cv", folds = 3))
  scores <- rr$aggregate(mlr3::msrs(c("regr.pinball", "regr.mae")))
  expect_true(all(is.finite(scores)))
  # Validation with a pinball measure (early stopping on it).
  v <- small("regr.ember_mlp", epochs = 4, batch_size = 32, seed = 1, predict_type = "quantiles", quantiles = c(0.1, 0.5, 0.9),
    measures_valid = mlr3::msr("regr.pinball", alpha = 0.1), patience = 2)
  v$validate <- 0.25
  v$train(task)
  expect_true(all(is.finite(v$model$history$valid_regr.pinball)))
  expect_named(v$internal_valid_scores, "regr.pinball")
  # loss = "quantile" with predict type "response" predicts the median; other losses are refused.
  r <- small("regr.ember_mlp", loss = "quantile", epochs = 2, batch_size = 32, seed = 1)
  r$train(task)
  expect_identical(r$model$task, "quantile_regression")
  expect_length(r$predict(task)$response, n)
  wrong <- small("regr.ember_mlp", loss = "huber", epochs = 1, batch_size = 32, predict_type = "quantiles", quantiles = 0.5)
  expect_error(wrong$train(task), "predicts quantiles, which it trains with the quantile loss; it has loss = \"huber\"")
  zero <- small("regr.ember_mlp", epochs = 1, batch_size = 32, predict_type = "quantiles", quantiles = c(0, 0.5))
  expect_error(zero$train(task), "the quantiles must lie in \\(0, 1\\) without repeats", class = "ember_error_invalid_argument")
})
