# What classif.ember_mlp and regr.ember_mlp share: the parameter set and the train/predict
# bodies. Parameter names follow mlr3torch (epochs, batch_size, neurons, p, seed, num_threads,
# opt.*), so that its users feel at home.

check_neurons <- function(x) {
  if (checkmate::test_integerish(x, lower = 1, upper = 1048576, any.missing = FALSE)) TRUE else
    "must be an integer vector of hidden layer widths >= 1 (integer(0) for no hidden layer)"
}

check_seed <- function(x) {
  if (identical(x, "random") || checkmate::test_int(x, lower = 0L)) TRUE else
    "must be \"random\" or a non-negative integer"
}

ember_mlp_param_set <- function() {
  paradox::ps(
    epochs = paradox::p_int(lower = 0L, tags = c("train", "required")),
    batch_size = paradox::p_int(lower = 1L, tags = c("train", "required")),
    neurons = paradox::p_uty(default = 64L, tags = "train", custom_check = check_neurons),
    p = paradox::p_dbl(lower = 0, upper = 1, default = 0, tags = "train"),
    shuffle = paradox::p_lgl(default = TRUE, tags = "train"),
    standardize = paradox::p_lgl(default = TRUE, tags = "train"),
    optimizer = paradox::p_fct(c("adam", "adamw", "sgd"), default = "adam", tags = "train"),
    opt.lr = paradox::p_dbl(lower = 0, default = 0.001, tags = "train"),
    opt.weight_decay = paradox::p_dbl(lower = 0, tags = "train"),
    opt.momentum = paradox::p_dbl(lower = 0, default = 0, tags = "train"),
    seed = paradox::p_uty(default = "random", tags = "train", custom_check = check_seed),
    num_threads = paradox::p_int(lower = 1L, upper = 65L, default = 1L, tags = c("train", "predict", "threads"))
  )
}

# Trains for a task; returns the ember_model stored as the learner's model.
ember_mlp_learner_train <- function(learner, task) {
  pv <- learner$param_set$get_values(tags = "train")
  seed <- pv$seed %??% "random"
  if (identical(seed, "random")) seed <- sample.int(.Machine$integer.max, 1L)
  x <- task$data(cols = task$feature_names)
  # Classes come from the task, not from the rows seen: a class absent from the training rows
  # still gets its output (and single-class training rows are fine for a learner).
  y <- if (task$task_type == "classif") factor(task$truth(), levels = task$class_names) else task$truth()
  suppressWarnings(ember_fit(x, y,
    architecture = ember_mlp(neurons = pv$neurons %??% 64L, p = pv$p %??% 0),
    epochs = pv$epochs, batch_size = pv$batch_size,
    optimizer = pv$optimizer %??% "adam", lr = pv$opt.lr %??% 0.001, weight_decay = pv$opt.weight_decay,
    momentum = pv$opt.momentum, shuffle = pv$shuffle %??% TRUE,
    standardize = pv$standardize %??% TRUE, seed = seed, num_threads = pv$num_threads %??% 1L,
    progress = FALSE, on_interrupt = "stop"), classes = c("ember_warning_single_class", "ember_warning_single_row"))
}

# Predicts for a task. Uses only task$data(), feature_names and class_names (mlr3 also predicts
# on stripped-down tasks without truth or row ids).
ember_mlp_learner_predict <- function(learner, task) {
  pv <- learner$param_set$get_values(tags = "predict")
  model <- learner$model
  newdata <- task$data(cols = task$feature_names)
  threads <- pv$num_threads %??% 1L
  if (model$task == "regression") {
    return(list(response = stats::predict(model, newdata, num_threads = threads)))
  }
  prob <- stats::predict(model, newdata, type = "prob", num_threads = threads)
  response <- colnames(prob)[max.col(prob, ties.method = "first")]
  if (learner$predict_type == "prob") list(response = response, prob = prob) else list(response = response)
}

`%??%` <- function(x, y) if (is.null(x)) y else x
