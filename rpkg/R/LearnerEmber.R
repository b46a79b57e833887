#' @title Ember learners for mlr3
#'
#' @name mlr_learners_ember
#'
#' @description
#' What every Ember learner shares, and the base classes `LearnerClassifEmber` and
#' `LearnerRegrEmber` from which they inherit. The learners are
#' [classif.ember_mlp][mlr_learners_classif.ember_mlp],
#' [classif.ember_tab_resnet][mlr_learners_classif.ember_tab_resnet],
#' [classif.ember_ft_transformer][mlr_learners_classif.ember_ft_transformer],
#' [classif.ember_tabm][mlr_learners_classif.ember_tabm],
#' [classif.ember_featureless][mlr_learners_classif.ember_featureless],
#' [classif.ember_network][mlr_learners_classif.ember_network] and their `regr.` twins. They are
#' registered in `mlr3::mlr_learners` when 'mlr3' (a suggested package) is loaded. Training runs
#' through [ember_fit()] on the Ember engine: the features are encoded as described there (factors
#' one-hot or as tokens, ordered factors as codes, logicals as 0/1, numeric features standardised
#' inside the model) and matched by name at prediction; the classes and the number of outputs
#' come from the task's levels (a class absent from the training rows keeps its output). A binary
#' head outputs one logit for the positive class, `task$class_names[1]`; the probability columns
#' follow `task$class_names` and the response is the class of the highest probability.
#'
#' @section Parameters:
#' Names follow 'mlr3torch'. Training:
#' * `epochs` (`integer(1)`, required): passes over the training data; tagged `"internal_tuning"`.
#' * `batch_size` (`integer(1)`, required): rows per mini-batch (and per prediction batch unless
#'   `batch_size_predict` is set).
#' * `batch_size_predict` (`integer(1)`): rows per batch when predicting and validating.
#' * `shuffle` (`logical(1)`, initially `TRUE`): a new random row order each epoch.
#' * `drop_last` (`logical(1)`, default `FALSE`): drop a last incomplete batch.
#' * `standardize` (`logical(1)`, default `TRUE`): standardise numeric features (and a numeric
#'   target) inside the model.
#' * `seed` (`integer(1)` or `"random"`, initially `"random"`): seed of the engine's random number
#'   generator (initial weights, shuffling, dropout); `"random"` draws it from R's generator at
#'   train time, so that `set.seed()` governs it (also on parallel workers, through mlr3's seeds).
#' * `num_threads` (`integer(1)`, initially 1): threads of the engine's pool (OpenBLAS itself runs on one); the only
#'   parameter tagged `"threads"`.
#' * `on_nonfinite` (`character(1)`, default `"stop"`): when the training loss becomes NaN or
#'   infinite, training stops with the last weights whose loss was finite and `"stop"` signals an
#'   error of class `ember_error_nonfinite`, `"warn"` a warning of class
#'   `ember_warning_nonfinite` and keeps that model (see [ember_fit()]).
#'
#' Validation and early stopping (see section Validation):
#' * `eval_freq` (`integer(1)`, initially 1): validate every `eval_freq` epochs (and after the
#'   last).
#' * `measures_valid` (a `mlr3::Measure` or a list of them, initially `list()`): scored in R on
#'   the validation predictions after each validation; the first one drives early stopping, in
#'   its own direction (`$minimize`).
#' * `measures_train` (same): scored in R on predictions of the training data at the end of each
#'   epoch (an extra pass over it, in evaluation mode).
#' * `patience` (`integer(1)`, initially 0): validations without improvement before training
#'   stops; 0 never stops early.
#' * `min_delta` (`numeric(1)`, initially 0): the smallest change that counts as an improvement.
#' * `restore_best_weights` (`logical(1)`, initially `TRUE`, as in [ember_fit()]): with early
#'   stopping, end with the weights of the best validation, and `$internal_valid_scores` holds that
#'   validation's scores. 'mlr3torch' keeps the last epoch's weights instead; Ember restores because
#'   the model that validated best generalises better (on German credit with `validate = 0.2,
#'   patience = 10`, 5-fold CV, a TabResNet with dropouts 0.1 / 0.1: error 0.274 without restoring,
#'   0.238 with, in `make bench-tabular`'s setting). With internal tuning (section Internal tuning) the best epoch is reported
#'   as `$internal_tuned_values$epochs` and the final model is refit for that many epochs either way.
#'   Set it to `FALSE` to end with the weights of the last epoch.
#'
#' Feature importance (the 'mlr3' property `"importance"`, e.g. for `mlr3filters::flt("importance")`):
#' * `importance` (`character(1)`, default `"none"`): `"permutation"` computes the permutation
#'   importance of every feature on the training data after training (see [ember_importance()];
#'   seeded by `seed`; a factor or tensor column is permuted as one feature), which
#'   `$importance()` returns as a named numeric vector sorted decreasingly.
#' * `importance_repeats` (`integer(1)`, default 5): shuffles per feature.
#'
#' Warm start (fine-tuning):
#' * `init_weights` (an `ember_model`, or the path of a model file or a safetensors file of
#'   weights): training starts from its parameters wherever name and size match; the others (a
#'   head re-sized to this task's classes) keep their initialisation, reported by a warning of
#'   class `ember_warning_init_partial` (see [ember_fit()]'s `init`).
#' * `init_strict` (`logical(1)`, default `FALSE`): refuse any difference in names or sizes.
#' * `keep_optimizer_state` (`logical(1)`, default `FALSE`): keep the optimizer's state with the
#'   model, so that mlr3's hotstart (property `"hotstart_forward"`: `epochs` is tagged
#'   `"hotstart"`; see `mlr3::HotstartStack`) continues training exactly, as if it had run for the
#'   larger number of epochs from the start. Without it, a hotstart continues from the weights with
#'   a new optimizer state (and says so with a warning of class `ember_warning_hotstart_restart`).
#'
#' Optimizer (PyTorch's update rules, names and defaults):
#' * `optimizer` (`character(1)`, initially `"adam"`; `"adamw"` with its authors' `opt.lr` and
#'   `opt.weight_decay` for the FT-Transformer and TabM): `"adam"`, `"adamw"`, `"sgd"`,
#'   `"rmsprop"` or `"adagrad"`.
#' * `opt.lr` (`numeric(1)`): learning rate; by default 0.001 (adam, adamw, sgd) or 0.01
#'   (rmsprop, adagrad).
#' * `opt.weight_decay` (`numeric(1)`): by default 0, or 0.01 for adamw.
#' * `opt.betas`, `opt.eps`, `opt.amsgrad` (adam, adamw); `opt.momentum` (sgd, rmsprop);
#'   `opt.dampening`, `opt.nesterov` (sgd); `opt.alpha`, `opt.centered` (rmsprop); `opt.lr_decay`,
#'   `opt.initial_accumulator_value` (adagrad).
#' * `opt.param_groups`: parameter groups with their own options, e.g.
#'   `list(list(params = "linear_*", lr = 1e-4))` (see [ember_fit()]'s `opt_args`).
#'
#' Loss:
#' * `loss` (`character(1)`): classification `"cross_entropy"` (initially; with two classes as
#'   binary cross-entropy on the positive class's logit) or `"focal"` (softmax focal loss, or
#'   torchvision's sigmoid focal loss on two classes); regression `"mse"` (initially), `"l1"`,
#'   `"huber"`, `"smooth_l1"` or `"poisson_nll"` (PyTorch's definitions; `loss.log_input`,
#'   `loss.full`; for counts, predictions are rates), or `"quantile"` (see section Quantiles).
#' * `loss.label_smoothing` (`numeric(1)` in \[0, 1\], cross-entropy), `loss.gamma` (focal, default 2),
#'   `loss.alpha` (focal on two classes: weight of the positive class, default 0.25; negative for
#'   none), `loss.delta` (huber, default 1), `loss.beta` (smooth_l1, default 1).
#' * `loss.weight` (`numeric()`, classification): one weight per class, in the order of
#'   `task$class_names`. With two classes they become the positive-class weight
#'   `weight[1] / weight[2]` of the binary cross-entropy (`pos_weight` in PyTorch), which equals
#'   class weights up to a constant factor.
#' * `loss.reduction` (`character(1)`, default `"mean"`): `"mean"` or `"sum"` over a batch.
#' * `loss.fn`: a custom loss made with [ember_loss_fn()]; when set, it replaces `loss`.
#'
#' Callbacks (`cb.*`); the training history is always kept (see section Model):
#' * `cb.progress` (`logical(1)`, default `FALSE`): show a progress bar.
#' * `cb.checkpoint.path` (`character(1)`), `cb.checkpoint.freq` (`integer(1)`, default 1): every
#'   `freq` epochs, write the model as it is to `<path>/checkpoint_<epoch>.safetensors` (a model
#'   file: [ember_load()] reads it).
#' * `cb.lr_scheduler` (`character(1)`, default `"none"`): a learning-rate schedule, configured
#'   by the parameters prefixed with its name:
#'   * `"lr_step"`: `cb.lr_step.step_size` (required), `cb.lr_step.gamma` (0.1): multiply the rate
#'     by `gamma` every `step_size` epochs.
#'   * `"lr_multiplicative"`: `cb.lr_multiplicative.factor` (required): multiply it by `factor`
#'     after every epoch.
#'   * `"lr_cosine_annealing"`: `cb.lr_cosine_annealing.T_max` (default: `epochs`),
#'     `cb.lr_cosine_annealing.eta_min` (0).
#'   * `"lr_one_cycle"`: `cb.lr_one_cycle.max_lr` (required), `cb.lr_one_cycle.total_steps`
#'     (default: the batches of `epochs` epochs), `pct_start` (0.3), `anneal_strategy` (`"cos"`),
#'     `div_factor` (25), `final_div_factor` (1e4), `cycle_momentum` (`TRUE`), `base_momentum`
#'     (0.85), `max_momentum` (0.95); stepped after every batch.
#'   * `"lr_reduce_on_plateau"`: `mode`, `factor` (0.1), `patience` (10), `threshold` (1e-4),
#'     `threshold_mode` (`"rel"`), `cooldown` (0), `min_lr` (0), `eps` (1e-8) with the prefix
#'     `cb.lr_reduce_on_plateau.`; reduces the rate when the validation loss stops improving (it
#'     needs validation data).
#'
#' @section Quantiles:
#' The regression learners predict quantiles: with `learner$predict_type = "quantiles"` and
#' `learner$quantiles = c(0.1, 0.5, 0.9)` ('mlr3''s fields), the network gets one output per level
#' and trains with the quantile (pinball) loss of those levels (see [ember_fit()]'s
#' `loss = "quantile"`); `loss` must then be left at its default or be `"quantile"`. The levels
#' must lie in (0, 1) without repeats (mlr3 keeps them sorted); without `quantiles` the learner
#' fits the median (0.5). The prediction holds the quantiles (sorted within each row, so that they
#' never cross) and, as its response, the quantile at `learner$quantile_response` when set, else
#' at 0.5 when it is a level, else at the middle level (the lower of the two middle ones for an
#' even number of levels). `loss = "quantile"` with predict type `"response"` predicts that
#' response. Measures such as `msr("regr.pinball", alpha = 0.9)` score the quantiles, the others
#' the response.
#'
#' @section Validation:
#' Set the `$validate` field to a ratio in (0, 1) (that part of the training rows is held out),
#' to `"test"` (the test rows of a resampling, e.g. in `mlr3::resample()` or mlr3tuning) or to
#' `"predefined"` (the task's `$internal_valid_task`). The engine validates every `eval_freq`
#' epochs; with `measures_valid` the predictions come back to R, where the measures score them
#' and the first decides about early stopping (`patience`, `min_delta`); without, the validation
#' loss does. `$internal_valid_scores` holds the validation scores of the final model (those of
#' the best epoch when its weights were restored, else of the last validation): one per measure
#' of `measures_valid`, or the validation loss as `loss`.
#'
#' @section Internal tuning:
#' `epochs` can be tuned by early stopping inside mlr3tuning: use
#' `epochs = to_tune(upper = <max>, internal = TRUE)`, `patience > 0` and `validate = "test"`.
#' The best epoch is `$internal_tuned_values$epochs` (it needs `patience > 0`); over the
#' resampling iterations of the tuning, mlr3 averages them (rounded up), and the final model is
#' trained for that many epochs with early stopping switched off.
#'
#' @section Model:
#' The model (`$model`) is an `ember_model` (see [ember_fit()]): `predict()`, [ember_save()] and
#' [ember_parameters()] work on it, and `$model$history` is the training history (one row per
#' epoch: losses, learning rate and the training and validation measures; `plot()` draws it).
#'
#' @section Marshaling:
#' The model holds a pointer into the engine. Call `$marshal()` before `saveRDS()` (or before
#' sending the learner to another process by hand) and `$unmarshal()` after reading it: the model
#' travels as the engine's model bytes. 'mlr3' marshals by itself for parallel resampling
#' (future plans, callr encapsulation). `$clone(deep = TRUE)` copies the engine model too.
#'
#' @section Extending:
#' A learner on a new architecture inherits from `LearnerClassifEmber` or `LearnerRegrEmber`,
#' calls `super$initialize(id, label, man, architecture_params)` with its own parameters (a list
#' of 'paradox' domains tagged `"train"`; `param_vals` sets initial values) and implements the private method
#' `.network(task, param_vals)`, which returns an `ember_architecture` (e.g. from
#' [ember_network()]). The base class does the rest (template method): data, validation,
#' optimizer, loss, callbacks, early stopping, prediction and marshaling.
#'
#' @seealso [ember_fit()], [ember_network()], [mlr_learners_classif.ember_mlp]
#' @examplesIf requireNamespace("mlr3", quietly = TRUE)
#' library(mlr3)
#' learner <- lrn("classif.ember_mlp", epochs = 50, batch_size = 32, patience = 5,
#'   measures_valid = msr("classif.logloss"), restore_best_weights = TRUE, predict_type = "prob")
#' learner$validate <- 0.25
#' learner$train(tsk("sonar"))
#' learner$internal_valid_scores
#' learner$internal_tuned_values
#' tail(learner$model$history)
NULL

# The feature types of the tabular learners.
ember_feature_types <- c("logical", "integer", "numeric", "factor", "ordered")
# ... and of the learners that also read tensor columns (MLPs flatten one; networks route them).
tensor_feature_types <- c(ember_feature_types, "ember_tensor")

# The featureless learners ignore the features: the network reads one constant column, so that
# features of any type, missing values and tasks without features are fine.
featureless_feature_types <- c("logical", "integer", "numeric", "character", "factor", "ordered", "POSIXct", "Date")
featureless_features <- function(task) data.frame(constant = logical(task$nrow))

# The template shared by LearnerClassifEmber and LearnerRegrEmber (R6 has single inheritance, and
# mlr3's own tests dispatch on LearnerClassif/LearnerRegr, so both bases are built from it).
ember_learner_public <- list(
  # @description Creates a new Ember learner.
  initialize = function(id, label, man, architecture_params = list(), feature_types = ember_feature_types,
                        properties = character(), param_vals = list(), param_set = NULL, callbacks = list(),
                        importance = TRUE) {
    classif <- inherits(self, "LearnerClassif")
    private$.callbacks <- normalize_callbacks(callbacks)
    reserved <- intersect(vapply(private$.callbacks, `[[`, "", "id"), c("progress", "checkpoint", "lr_scheduler",
      paste0("lr_", c("step", "multiplicative", "cosine_annealing", "one_cycle", "reduce_on_plateau"))))
    if (length(reserved)) {
      stop(sprintf("callback id '%s' names one of the learner's own cb.* parameters; give the callback another id",
        reserved[1L]), call. = FALSE)
    }
    properties <- unique(c(if (classif) c("twoclass", "multiclass"), "marshal", "validation", "internal_tuning",
      "hotstart_forward", if (importance) "importance", properties))
    super$initialize(
      id = id,
      param_set = with_callback_params(param_set %||% ember_param_set(if (classif) "classif" else "regr",
        architecture_params), private$.callbacks),
      predict_types = if (classif) c("response", "prob") else c("response", "quantiles"),
      feature_types = feature_types,
      properties = properties,
      packages = "mlr3ember",
      label = label,
      man = man
    )
    for (cb in private$.callbacks) {
      if (length(cb$params)) self$param_set$set_values(.values = stats::setNames(cb$params, paste0("cb.", cb$id, ".", names(cb$params))))
    }
    self$param_set$set_values(.values = param_vals)
  },
  # @description The permutation importance of the features on the training data (computed after
  # training with importance = "permutation"), a named numeric vector sorted decreasingly.
  importance = function() {
    if (is.null(self$model)) stop(sprintf("Learner '%s' has no model: train it first", self$id), call. = FALSE)
    model <- self$model
    if (mlr3::is_marshaled_model(model)) model <- mlr3::unmarshal_model(model)
    imp <- model$config$importance
    if (is.null(imp)) {
      stop(sprintf(paste0("Learner '%s' computes feature importance during training when its parameter importance = ",
        "\"permutation\": set it and train again (or call ember_importance(learner, task))"), self$id), call. = FALSE)
    }
    stats::setNames(imp$importance, imp$feature)
  },
  # @description Marshals the model (see section Marshaling).
  marshal = function(...) mlr3::learner_marshal(.learner = self, ...),
  # @description Unmarshals the model.
  unmarshal = function(...) mlr3::learner_unmarshal(.learner = self, ...)
)

ember_learner_active <- list(
  # @field validate How to get validation data: NULL, a ratio, "test" or "predefined".
  validate = function(rhs) {
    if (!missing(rhs)) private$.validate <- mlr3::assert_validate(rhs)
    private$.validate
  },
  # @field internal_valid_scores The validation scores of the final model.
  internal_valid_scores = function(rhs) {
    if (!missing(rhs)) stop("internal_valid_scores is read-only", call. = FALSE)
    self$state$internal_valid_scores
  },
  # @field internal_tuned_values The tuned epochs (with early stopping).
  internal_tuned_values = function(rhs) {
    if (!missing(rhs)) stop("internal_tuned_values is read-only", call. = FALSE)
    self$state$internal_tuned_values
  },
  # @field marshaled Whether the model is marshaled.
  marshaled = function(rhs) {
    if (!missing(rhs)) stop("marshaled is read-only", call. = FALSE)
    mlr3::learner_marshaled(self)
  }
)

ember_learner_private <- list(
  .validate = NULL,
  .callbacks = list(),
  # The template method: the architecture for a task and the parameter values.
  .network = function(task, param_vals) stop("an Ember learner must implement the private method .network()", call. = FALSE),
  # The values training uses (the model PipeOps' learners add the graph's configuration).
  .train_values = function() self$param_set$get_values(tags = "train"),
  # The features the network reads (a data.frame); only data(), feature_names and nrow are used,
  # as mlr3 predicts on stripped-down tasks.
  .features = function(task) task$data(cols = task$feature_names),
  .train = function(task) ember_learner_train(self, private, task),
  # mlr3's hotstart: continue the model of a learner trained for fewer epochs.
  .hotstart = function(task) ember_learner_train(self, private, task, continue = self$model),
  .predict = function(task) ember_learner_predict(self, private, task),
  .extract_internal_valid_scores = function() {
    self$model$config$internal_valid_scores %||% structure(list(), names = character(0))
  },
  .extract_internal_tuned_values = function() {
    if (!isTRUE(self$state$param_vals$patience > 0L)) return(structure(list(), names = character(0)))
    list(epochs = self$model$config$best_epoch %||% nrow(self$model$history))
  },
  deep_clone = function(name, value) {
    # The engine model is shared by shallow copies: a deep clone gets its own.
    if (name == "state" && inherits(value$model, "ember_model")) value$model <- copy_model(value$model)
    super$deep_clone(name, value)
  }
)

#' @rdname mlr_learners_ember
#' @format `LearnerClassifEmber`, `LearnerRegrEmber`: [R6::R6Class] generators inheriting from
#'   `mlr3::LearnerClassif` and `mlr3::LearnerRegr`.
#' @export
LearnerClassifEmber <- R6::R6Class("LearnerClassifEmber",
  inherit = mlr3::LearnerClassif,
  public = ember_learner_public,
  active = ember_learner_active,
  private = ember_learner_private
)

#' @rdname mlr_learners_ember
#' @export
LearnerRegrEmber <- R6::R6Class("LearnerRegrEmber",
  inherit = mlr3::LearnerRegr,
  public = ember_learner_public,
  active = ember_learner_active,
  private = ember_learner_private
)

# A learner's parameter set with its callbacks' parameters as cb.<id>.<name>.
with_callback_params <- function(param_set, callbacks) {
  sets <- Filter(Negate(is.null), lapply(callbacks, `[[`, "param_set"))
  if (!length(sets)) return(param_set)
  ids <- vapply(Filter(function(cb) !is.null(cb$param_set), callbacks), `[[`, "", "id")
  paradox::ps_union(c(list(param_set), stats::setNames(lapply(sets, function(p) p$clone(deep = TRUE)), paste0("cb.", ids))))
}

# Trains the learner's network on a task (the body of the base classes' .train()). `fit` takes
# ember_fit()'s arguments (ember_lr_find() passes its sweep; it returns no ember_model).
ember_learner_train <- function(learner, private, task, continue = NULL, fit = ember_fit) {
  pv <- private$.train_values()
  epochs <- pv$epochs
  init <- pv$init_weights %||% pv$pretrained
  resume <- FALSE
  if (!is.null(continue)) {
    done <- continue$config$epochs %||% nrow(continue$history)
    epochs <- pv$epochs - done
    if (epochs < 1L) stop(sprintf("Learner '%s' can only continue a model trained for fewer than %d epochs (it has %d)",
      learner$id, pv$epochs, done), call. = FALSE)
    init <- continue
    resume <- !is.null(continue$config$trainer_state)
    if (!resume) {
      ember_warn(sprintf(paste0("Learner '%s' continues its model for %d more epochs from its weights, with a new optimizer state: ",
        "set keep_optimizer_state = TRUE to continue exactly"), learner$id, epochs), kind = "hotstart_restart")
    }
  }
  valid_task <- task$internal_valid_task
  measures_valid <- as_measure_list(pv$measures_valid)
  measures_train <- as_measure_list(pv$measures_train)
  if (length(measures_valid) && is.null(valid_task)) {
    stop(sprintf(paste0("Learner '%s' has measures_valid but no validation data: set its $validate field (a ratio, ",
      "\"test\" or \"predefined\"), e.g. learner$validate = 0.2; in an AutoTuner, tune epochs with ",
      "to_tune(upper = ..., internal = TRUE)"), learner$id), call. = FALSE)
  }
  if (pv$patience > 0L && is.null(valid_task)) {
    stop(sprintf("Learner '%s' has patience = %d (early stopping) but no validation data: set its $validate field",
      learner$id, pv$patience), call. = FALSE)
  }
  if (pv$patience > 0L && length(measures_valid) && is.na(measures_valid[[1L]]$minimize)) {
    stop(sprintf("Learner '%s': the first of measures_valid ('%s') drives early stopping but has no direction (minimize = NA)",
      learner$id, measures_valid[[1L]]$id), call. = FALSE)
  }
  seed <- if (identical(pv$seed, "random")) sample.int(.Machine$integer.max, 1L) else pv$seed
  classes <- if (learner$task_type == "classif") task$class_names
  x <- private$.features(task)
  validate <- if (!is.null(valid_task)) list(x = private$.features(valid_task), y = task_target(valid_task, classes))
  callbacks <- learner_callbacks(private$.callbacks, pv)
  optimizer <- optimizer_args(pv)
  loss_args <- loss_args(pv, classes)
  loss <- pv$loss.fn %||% pv$loss
  quantiles <- learner_quantiles(learner, loss)
  if (!is.null(quantiles)) {
    loss <- "quantile"
    loss_args$quantiles <- quantiles
  }
  model <- withCallingHandlers(
    fit(x, task_target(task, classes), architecture = private$.network(task, pv),
      epochs = epochs, batch_size = pv$batch_size, optimizer = pv$optimizer, lr = pv$opt.lr,
      weight_decay = pv$opt.weight_decay, momentum = pv$opt.momentum, opt_args = optimizer,
      loss = loss, loss_args = loss_args,
      schedule = learner_schedule(pv, task$nrow, has_validation = !is.null(valid_task)), validate = validate,
      patience = pv$patience, min_delta = pv$min_delta, restore_best_weights = pv$restore_best_weights,
      eval_freq = pv$eval_freq, measures = lapply(measures_valid, measure_as_ember, task = valid_task),
      measures_train = lapply(measures_train, measure_as_ember, task = task), standardize = pv$standardize %||% TRUE,
      seed = seed, num_threads = pv$num_threads, shuffle = pv$shuffle %||% TRUE, drop_last = pv$drop_last %||% FALSE,
      batch_size_predict = pv$batch_size_predict %||% pv$batch_size, progress = isTRUE(pv$cb.progress),
      on_interrupt = "stop", on_nonfinite = pv$on_nonfinite %||% "stop", callbacks = callbacks, init = init, init_strict = pv$init_strict %||% FALSE,
      init_resume = resume, keep_optimizer_state = pv$keep_optimizer_state %||% FALSE, augment = pv$augment),
    # A learner does not warn that the training rows hold one class or one row: mlr3 resamples
    # small tasks, and the task's classes still get their outputs.
    ember_warning_single_class = function(w) invokeRestart("muffleWarning"),
    # Pretrained weights with a head of another size: the head is re-sized to the task, as intended.
    ember_warning_init_partial = function(w) {
      kept <- regmatches(conditionMessage(w), gregexpr("'[^']+'", conditionMessage(w)))[[1L]]
      kept <- gsub("'", "", kept[kept != "'init'"])
      if (is.null(pv$init_weights) && !is.null(pv$pretrained) && length(kept) && all(startsWith(kept, "fc."))) {
        message(sprintf("pretrained: loaded the weights of '%s'; the head 'fc' is re-sized to the task and trained from its initialisation",
          basename(pv$pretrained)))
        invokeRestart("muffleWarning")
      }
    },
    ember_warning_single_row = function(w) invokeRestart("muffleWarning")
  )
  if (!inherits(model, "ember_model")) return(model)
  if (!is.null(valid_task)) model$config$internal_valid_scores <- final_valid_scores(model, measures_valid, pv)
  if (identical(pv$importance, "permutation") && "importance" %in% learner$properties) {
    model$config$importance <- ember_importance(model, x, task_target(task, classes), n_repeats = pv$importance_repeats %||% 5L,
      seed = seed, num_threads = pv$num_threads)
  }
  model
}

# The quantile levels a regression learner trains for (NULL: not a quantile regression): with
# predict_type "quantiles" or loss = "quantile", the learner's `quantiles` (mlr3's field; 0.5
# without). The quantile loss is then the loss: another built-in loss than the default "mse", or a
# custom loss, is an error.
learner_quantiles <- function(learner, loss) {
  if (learner$task_type != "regr" || (learner$predict_type != "quantiles" && !identical(loss, "quantile"))) return(NULL)
  if (!is.character(loss) || !loss %in% c("mse", "quantile")) {
    stop(sprintf(paste0("Learner '%s' predicts quantiles, which it trains with the quantile loss; it has loss = %s: ",
      "leave 'loss' at its default or set it to \"quantile\""), learner$id,
      if (is.character(loss)) sprintf("\"%s\"", loss) else "a custom loss (loss.fn)"), call. = FALSE)
  }
  q <- learner$quantiles %||% 0.5
  if (!all(q > 0 & q < 1) || anyDuplicated(q)) {
    ember_abort(sprintf("Learner '%s': the quantiles must lie in (0, 1) without repeats (the quantile loss of 0 or 1 has no minimum), got %s",
      learner$id, deparse_short(q)), argument = "quantiles", expected = "distinct levels in (0, 1)", got = deparse_short(q))
  }
  q
}

# Predicts for a task (the body of the base classes' .predict()).
ember_learner_predict <- function(learner, private, task) {
  pv <- learner$param_set$get_values(tags = "predict")
  x <- private$.features(task)
  batch_size <- pv$batch_size_predict %||% pv$batch_size %||% 4096L
  threads <- pv$num_threads %||% 1L
  model <- learner$model
  if (learner$task_type == "regr" && model$task == "quantile_regression") {
    q <- stats::predict(model, x, type = "quantiles", batch_size = batch_size, num_threads = threads)
    # The levels as the learner has them (the model keeps 32-bit floats); the learner's
    # quantile_response when set (mlr3 adds it to the levels), else the model's response level.
    probs <- learner$quantiles
    if (!isTRUE(all.equal(probs, model$quantiles, tolerance = 1e-6))) probs <- model$quantiles
    response <- learner$quantile_response %||% probs[model$response_column]
    if (learner$predict_type != "quantiles") return(list(response = unname(q[, which.min(abs(probs - response))])))
    attr(q, "probs") <- probs
    attr(q, "response") <- response
    return(list(quantiles = q))
  }
  if (learner$predict_type == "quantiles") {
    stop(sprintf("Learner '%s' was trained with predict_type \"%s\"; train it again to predict quantiles", learner$id,
      learner$state$predict_type %||% "response"), call. = FALSE)
  }
  if (learner$task_type == "regr") {
    return(list(response = stats::predict(model, x, batch_size = batch_size, num_threads = threads)))
  }
  prob <- stats::predict(learner$model, x, type = "prob", batch_size = batch_size, num_threads = threads)
  response <- colnames(prob)[max.col(prob, ties.method = "first")]
  if (learner$predict_type == "prob") list(response = response, prob = prob) else list(response = response)
}

# The target of a task: a factor with the training task's classes (also those absent from its
# rows), or numbers.
task_target <- function(task, classes) {
  if (is.null(classes)) task$truth() else factor(task$truth(), levels = classes)
}

as_measure_list <- function(x) if (inherits(x, "Measure")) list(x) else as.list(x)

# An mlr3 measure as an ember_measure: the engine's predictions (probabilities or values) become
# an mlr3 Prediction of the rows of `task`, scored by the measure. Classification predictions
# hold both the response and the probabilities, so that any measure can score them.
# NOTE: using a Measure (scoring it, even cloning it) fills caches inside its param set, which
# changes the digest of the R6 object and so the $hash of a learner holding it among its
# parameter values; mlr3 orders stored learners by that hash (a resampling's $learners came back
# rotated against its predictions). So the learner's own measures are never touched: a copy made
# through serialize(), which reads no active binding, scores.
measure_as_ember <- function(measure, task) {
  measure <- unserialize(serialize(measure, NULL))
  row_ids <- task$row_ids
  ember_measure(function(truth, prediction) {
    p <- if (is.factor(truth)) {
      response <- factor(colnames(prediction)[max.col(prediction, ties.method = "first")], levels = levels(truth))
      mlr3::PredictionClassif$new(row_ids = row_ids, truth = truth, response = response, prob = prediction)
    } else if (is.matrix(prediction)) {
      # A quantile regression: the quantiles with their levels and response (score_host_measures).
      mlr3::PredictionRegr$new(row_ids = row_ids, truth = truth, quantiles = prediction)
    } else {
      mlr3::PredictionRegr$new(row_ids = row_ids, truth = truth, response = prediction)
    }
    measure$score(p, task = task, train_set = row_ids)
  }, name = measure$id, minimize = !isFALSE(measure$minimize), type = "prob")
}

# The validation scores of the final model: at the best epoch when its weights were restored,
# else at the last validation. Without measures_valid, the validation loss as `loss`.
final_valid_scores <- function(model, measures, pv) {
  h <- model$history
  validated <- which(!is.na(h$valid_loss))
  if (!length(validated)) return(structure(list(), names = character(0)))
  row <- validated[length(validated)]
  best <- model$config$best_epoch
  if (isTRUE(pv$restore_best_weights) && pv$patience > 0L && length(best)) row <- match(best, h$epoch)
  if (!length(measures)) return(list(loss = h$valid_loss[row]))
  ids <- vapply(measures, function(m) m$id, "")
  stats::setNames(lapply(ids, function(id) h[[paste0("valid_", id)]][row]), ids)
}

# opt.* parameters other than lr, weight_decay and momentum, with the engine's names.
optimizer_args <- function(pv) {
  args <- pv[startsWith(names(pv), "opt.")]
  names(args) <- sub("^opt\\.", "", names(args))
  args <- args[setdiff(names(args), c("lr", "weight_decay", "momentum"))]
  for (flag in c("amsgrad", "nesterov", "centered")) if (!is.null(args[[flag]])) args[[flag]] <- as.numeric(args[[flag]])
  args
}

loss_args <- function(pv, classes) {
  args <- list(reduction = pv$loss.reduction, label_smoothing = pv$loss.label_smoothing, delta = pv$loss.delta,
    beta = pv$loss.beta, gamma = pv$loss.gamma, log_input = pv$loss.log_input, full = pv$loss.full)
  if (!is.null(pv$loss.alpha)) {
    if (length(classes) != 2L) {
      stop("'loss.alpha' weighs the positive class of the focal loss on two classes; with more classes give 'loss.weight'",
        call. = FALSE)
    }
    args$alpha <- pv$loss.alpha
  }
  w <- pv$loss.weight
  if (!is.null(w)) {
    if (length(w) != length(classes)) {
      stop(sprintf("'loss.weight' needs one weight per class (%d: %s), got %d", length(classes),
        paste(classes, collapse = ", "), length(w)), call. = FALSE)
    }
    if (length(classes) == 2L && identical(pv$loss, "focal")) {
      stop("'loss.weight' on two classes with loss = \"focal\": weigh the positive class with 'loss.alpha'", call. = FALSE)
    }
    if (length(classes) == 2L) {
      if (w[2L] <= 0) stop("'loss.weight' of the negative class must be > 0 for a binary task", call. = FALSE)
      args$pos_weight <- w[1L] / w[2L]
    } else {
      args$class_weights <- w
    }
  }
  args[!vapply(args, is.null, logical(1))]
}

# The learning-rate schedule of the cb.lr_* parameters, in ember_fit()'s form.
learner_schedule <- function(pv, n_train, has_validation) {
  kind <- pv$cb.lr_scheduler %||% "none"
  if (kind == "none") return(NULL)
  get <- function(name) pv[[paste0("cb.", kind, ".", name)]]
  required <- function(name) {
    v <- get(name)
    if (is.null(v)) stop(sprintf("cb.lr_scheduler = \"%s\" needs 'cb.%s.%s'", kind, kind, name), call. = FALSE)
    v
  }
  batches <- if (isTRUE(pv$drop_last)) max(1L, n_train %/% pv$batch_size) else ceiling(n_train / pv$batch_size)
  switch(kind,
    lr_step = list(kind = "step", step_size = required("step_size"), gamma = get("gamma")),
    lr_multiplicative = list(kind = "multiplicative", factor = required("factor")),
    lr_cosine_annealing = list(kind = "cosine_annealing", t_max = get("T_max") %||% max(1L, pv$epochs),
      eta_min = get("eta_min")),
    lr_one_cycle = list(kind = "one_cycle", max_lr = required("max_lr"),
      total_steps = get("total_steps") %||% max(1L, as.integer(pv$epochs * batches)), pct_start = get("pct_start"),
      anneal_strategy = get("anneal_strategy"), div_factor = get("div_factor"), final_div_factor = get("final_div_factor"),
      cycle_momentum = get("cycle_momentum"), base_momentum = get("base_momentum"), max_momentum = get("max_momentum")),
    lr_reduce_on_plateau = {
      if (!has_validation) stop("cb.lr_scheduler = \"lr_reduce_on_plateau\" steps on the validation loss: set $validate", call. = FALSE)
      list(kind = "reduce_on_plateau", mode = get("mode"), factor = get("factor"), patience = get("patience"),
        threshold = get("threshold"), threshold_mode = get("threshold_mode"), cooldown = get("cooldown"),
        min_lr = get("min_lr"), eps = get("eps"))
    })
}

# The callbacks of a learner's training: the checkpoint of the cb.checkpoint.* parameters, then the
# learner's own callbacks with their cb.<id>.* parameter values.
learner_callbacks <- function(callbacks, pv) {
  out <- list()
  if (!is.null(pv$cb.checkpoint.path)) out$checkpoint <- ember_cb_checkpoint(pv$cb.checkpoint.path, pv$cb.checkpoint.freq %||% 1L)
  for (cb in callbacks) {
    prefix <- paste0("cb.", cb$id, ".")
    values <- pv[startsWith(names(pv), prefix)]
    names(values) <- substring(names(values), nchar(prefix) + 1L)
    cb$params <- utils::modifyList(cb$params, values)
    out[[length(out) + 1L]] <- cb
  }
  unname(out)
}
