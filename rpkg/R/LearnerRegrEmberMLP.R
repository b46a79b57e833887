#' @title Regression MLP on the Ember engine
#'
#' @name mlr_learners_regr.ember_mlp
#'
#' @description
#' A multi-layer perceptron for regression, trained on the Ember engine with MSE: for each width
#' in `neurons`, Linear -> ReLU -> Dropout(`p`), then a linear head with one output. The target is
#' standardised inside the model for training (with `standardize = TRUE`); predictions come back on
#' the target's scale.
#' Features are encoded as described in [ember_fit()]: factors one-hot, ordered factors as integer
#' codes, logicals as 0/1; numeric features are standardised inside the model.
#'
#' Requires the suggested package 'mlr3'; the learner is registered in `mlr3::mlr_learners` when
#' 'mlr3' is loaded.
#'
#' @section Dictionary:
#' ```
#' mlr3::lrn("regr.ember_mlp")
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
#' @seealso [ember_fit()], [mlr_learners_classif.ember_mlp]
#' @export
#' @examplesIf requireNamespace("mlr3", quietly = TRUE)
#' library(mlr3)
#' learner <- lrn("regr.ember_mlp", epochs = 50, batch_size = 8)
#' task <- tsk("mtcars")
#' learner$train(task, row_ids = 1:25)
#' learner$predict(task, row_ids = 26:32)$score(msr("regr.rmse"))
LearnerRegrEmberMLP <- R6::R6Class("LearnerRegrEmberMLP",
  inherit = mlr3::LearnerRegr,
  public = list(
    # @description Creates a new instance of this learner.
    initialize = function() {
      super$initialize(
        id = "regr.ember_mlp",
        param_set = ember_mlp_param_set(),
        predict_types = "response",
        feature_types = c("logical", "integer", "numeric", "factor", "ordered"),
        properties = "marshal",
        packages = "mlr3ember",
        label = "Multi-Layer Perceptron (Ember)",
        man = "mlr3ember::mlr_learners_regr.ember_mlp"
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
