#' @title Regression: Multi-layer perceptron on the Ember engine
#'
#' @name mlr_learners_regr.ember_mlp
#'
#' @description
#' A multi-layer perceptron, trained on the Ember engine for regression. The head has one output,
#' trained with MSE (or L1); the target is standardised inside the model with `standardize = TRUE`
#' and predictions come back on its scale.
#'
#' @templateVar id regr.ember_mlp
#' @templateVar task_type regr
#' @templateVar feature_types `"logical"`, `"integer"`, `"numeric"`, `"factor"`, `"ordered"`, `"ember_tensor"` (a tensor column alone, flattened)
#' @template learner_ember
#' @template params_mlp
#'
#' @seealso [mlr_learners_ember], [mlr_learners_classif.ember_mlp], [ember_fit()]
#' @export
#' @examplesIf requireNamespace("mlr3", quietly = TRUE)
#' library(mlr3)
#' learner <- lrn("regr.ember_mlp", epochs = 50, batch_size = 8, neurons = c(32, 32))
#' task <- tsk("mtcars")
#' learner$train(task, row_ids = 1:25)
#' learner$predict(task, row_ids = 26:32)$score(msr("regr.rmse"))
LearnerRegrEmberMLP <- R6::R6Class("LearnerRegrEmberMLP",
  inherit = LearnerRegrEmber,
  public = list(
    # @description Creates a new instance of this learner.
    initialize = function(callbacks = list()) {
      super$initialize(callbacks = callbacks, feature_types = tensor_feature_types, id = "regr.ember_mlp",
        label = "Multi-Layer Perceptron (Ember)",
        man = "mlr3ember::mlr_learners_regr.ember_mlp",
        architecture_params = ember_params_mlp(), param_vals = tabular_initial_values("mlp"))
    }
  ),
  private = list(
    .network = function(task, param_vals) mlp_architecture(param_vals)
  )
)
