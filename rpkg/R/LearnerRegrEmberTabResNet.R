#' @title Regression: Tabular ResNet on the Ember engine
#'
#' @name mlr_learners_regr.ember_tab_resnet
#'
#' @description
#' A residual network for tabular data (TabResNet), trained on the Ember engine for regression. The
#' head has one output, trained with MSE (or L1); the target is standardised inside the model with
#' `standardize = TRUE` and predictions come back on its scale.
#'
#' @templateVar id regr.ember_tab_resnet
#' @templateVar task_type regr
#' @templateVar feature_types `"logical"`, `"integer"`, `"numeric"`, `"factor"`, `"ordered"`
#' @template learner_ember
#' @template params_tab_resnet
#'
#' @seealso [mlr_learners_ember], [mlr_learners_classif.ember_tab_resnet], [ember_fit()]
#' @export
#' @examplesIf requireNamespace("mlr3", quietly = TRUE)
#' library(mlr3)
#' learner <- lrn("regr.ember_tab_resnet", epochs = 50, batch_size = 8, d_block = 32)
#' rr <- resample(tsk("mtcars"), learner, rsmp("holdout"))
#' rr$aggregate(msr("regr.rmse"))
LearnerRegrEmberTabResNet <- R6::R6Class("LearnerRegrEmberTabResNet",
  inherit = LearnerRegrEmber,
  public = list(
    # @description Creates a new instance of this learner.
    initialize = function(callbacks = list()) {
      super$initialize(callbacks = callbacks, id = "regr.ember_tab_resnet",
        label = "Tabular ResNet (Ember)",
        man = "mlr3ember::mlr_learners_regr.ember_tab_resnet",
        architecture_params = ember_params_tab_resnet(), param_vals = tabular_initial_values("tab_resnet"))
    }
  ),
  private = list(
    .network = function(task, param_vals) tab_resnet_architecture(param_vals)
  )
)
