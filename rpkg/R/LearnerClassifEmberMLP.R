#' @title Classification: Multi-layer perceptron on the Ember engine
#'
#' @name mlr_learners_classif.ember_mlp
#'
#' @description
#' A multi-layer perceptron, trained on the Ember engine for classification. The head has one
#' output for two classes (the logit of the positive class, `task$class_names[1]`, trained with
#' binary cross-entropy) or one per class (cross-entropy); the number of outputs comes from the
#' task's class levels.
#'
#' @templateVar id classif.ember_mlp
#' @templateVar task_type classif
#' @templateVar feature_types `"logical"`, `"integer"`, `"numeric"`, `"factor"`, `"ordered"`, `"ember_tensor"` (a tensor column alone, flattened)
#' @template learner_ember
#' @template params_mlp
#'
#' @seealso [mlr_learners_ember], [mlr_learners_regr.ember_mlp], [ember_fit()]
#' @export
#' @examplesIf requireNamespace("mlr3", quietly = TRUE)
#' library(mlr3)
#' learner <- lrn("classif.ember_mlp", epochs = 30, batch_size = 16, predict_type = "prob")
#' task <- tsk("iris")
#' learner$train(task, row_ids = 1:120)
#' learner$predict(task, row_ids = 121:150)$score(msr("classif.acc"))
#' tail(learner$model$history)
LearnerClassifEmberMLP <- R6::R6Class("LearnerClassifEmberMLP",
  inherit = LearnerClassifEmber,
  public = list(
    # @description Creates a new instance of this learner.
    initialize = function(callbacks = list()) {
      super$initialize(callbacks = callbacks, feature_types = tensor_feature_types, id = "classif.ember_mlp",
        label = "Multi-Layer Perceptron (Ember)",
        man = "mlr3ember::mlr_learners_classif.ember_mlp",
        architecture_params = ember_params_mlp(), param_vals = tabular_initial_values("mlp"))
    }
  ),
  private = list(
    .network = function(task, param_vals) mlp_architecture(param_vals)
  )
)
