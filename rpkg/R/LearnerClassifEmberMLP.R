#' @title Classification MLP on the Ember engine
#'
#' @name mlr_learners_classif.ember_mlp
#'
#' @description
#' A multi-layer perceptron for binary and multiclass classification, trained on the Ember
#' engine: for each width in `neurons`, Linear -> ReLU -> Dropout(`p`), then a head with one logit
#' (binary: the positive class, `task$class_names[1]`, trained with BCE-with-logits) or one logit
#' per class (cross-entropy). The number of outputs comes from the task's class levels.
#' Features are encoded as described in [ember_fit()]: factors one-hot, ordered factors as integer
#' codes, logicals as 0/1; numeric features are standardised inside the model.
#'
#' Requires the suggested package 'mlr3'; the learner is registered in `mlr3::mlr_learners` when
#' 'mlr3' is loaded.
#'
#' @section Dictionary:
#' ```
#' mlr3::lrn("classif.ember_mlp")
#' ```
#'
#' @section Parameters:
#' * `epochs` (`integer(1)`, required): number of passes over the training data.
#' * `batch_size` (`integer(1)`, required): rows per mini-batch.
#' * `neurons` (`integer()`, default `64L`): hidden layer widths; `integer(0)` for none.
#' * `p` (`numeric(1)`, default 0): dropout probability after each hidden layer, below 1.
#' * `shuffle` (`logical(1)`, default `TRUE`): new random row order each epoch.
#' * `standardize` (`logical(1)`, default `TRUE`): standardise numeric features inside the model.
#' * `optimizer` (`character(1)`, default `"adam"`): `"adam"`, `"adamw"` or `"sgd"`.
#' * `opt.lr` (`numeric(1)`, default 0.001), `opt.weight_decay` (default 0; 0.01 for adamw),
#'   `opt.momentum` (sgd, default 0): optimizer hyperparameters with PyTorch's meaning.
#' * `seed` (`"random"` or `integer(1)`, default `"random"`): seed of the engine RNG; `"random"`
#'   draws it from R's RNG at train time, so `set.seed()` governs it.
#' * `num_threads` (`integer(1)`, default 1): threads for training and prediction.
#'
#' @section Marshaling:
#' The trained model holds a pointer into the engine. Call `$marshal()` before `saveRDS()` or
#' before sending the learner to another process, and `$unmarshal()` afterwards; 'mlr3' does
#' this itself for parallel resampling.
#'
#' @seealso [ember_fit()], [mlr_learners_regr.ember_mlp]
#' @export
#' @examplesIf requireNamespace("mlr3", quietly = TRUE)
#' library(mlr3)
#' learner <- lrn("classif.ember_mlp", epochs = 30, batch_size = 16, predict_type = "prob")
#' task <- tsk("iris")
#' learner$train(task, row_ids = 1:120)
#' learner$predict(task, row_ids = 121:150)$score(msr("classif.acc"))
LearnerClassifEmberMLP <- R6::R6Class("LearnerClassifEmberMLP",
  inherit = mlr3::LearnerClassif,
  public = list(
    # @description Creates a new instance of this learner.
    initialize = function() {
      super$initialize(
        id = "classif.ember_mlp",
        param_set = ember_mlp_param_set(),
        predict_types = c("response", "prob"),
        feature_types = c("logical", "integer", "numeric", "factor", "ordered"),
        properties = c("twoclass", "multiclass", "marshal"),
        packages = "mlr3ember",
        label = "Multi-Layer Perceptron (Ember)",
        man = "mlr3ember::mlr_learners_classif.ember_mlp"
      )
    },
    # @description Marshals the model (see section Marshaling).
    # @param ... Passed to `mlr3::marshal_model()`.
    marshal = function(...) mlr3::learner_marshal(.learner = self, ...),
    # @description Unmarshals the model.
    # @param ... Passed to `mlr3::unmarshal_model()`.
    unmarshal = function(...) mlr3::learner_unmarshal(.learner = self, ...)
  ),
  active = list(
    # @field marshaled (`logical(1)`) Whether the model is marshaled.
    marshaled = function() mlr3::learner_marshaled(self)
  ),
  private = list(
    .train = function(task) ember_mlp_learner_train(self, task),
    .predict = function(task) ember_mlp_learner_predict(self, task)
  )
)
