#' @title Regression: TabM on the Ember engine
#'
#' @name mlr_learners_regr.ember_tabm
#'
#' @description
#' TabM (an ensemble of MLPs that share most weights), trained on the Ember engine for
#' regression. The output layer has one output per member, trained with MSE (or L1); the target is
#' standardised inside the model with `standardize = TRUE`, and the prediction is the mean of the
#' members' predictions on its scale.
#'
#' @templateVar id regr.ember_tabm
#' @templateVar task_type regr
#' @templateVar feature_types `"logical"`, `"integer"`, `"numeric"`, `"factor"`, `"ordered"`
#' @template learner_ember
#' @template params_tabm
#'
#' @seealso [mlr_learners_ember], [mlr_learners_classif.ember_tabm], [ember_tabm()], [ember_fit()]
#' @export
#' @examplesIf requireNamespace("mlr3", quietly = TRUE)
#' library(mlr3)
#' learner <- lrn("regr.ember_tabm", epochs = 30, batch_size = 8, k = 8, d_block = 64)
#' rr <- resample(tsk("mtcars"), learner, rsmp("holdout"))
#' rr$aggregate(msr("regr.rmse"))
LearnerRegrEmberTabM <- R6::R6Class("LearnerRegrEmberTabM",
  inherit = LearnerRegrEmber,
  public = list(
    # @description Creates a new instance of this learner.
    initialize = function(callbacks = list()) {
      super$initialize(callbacks = callbacks, id = "regr.ember_tabm",
        label = "TabM (Ember)",
        man = "mlr3ember::mlr_learners_regr.ember_tabm",
        architecture_params = ember_params_tabm(), param_vals = tabular_initial_values("tabm"))
    }
  ),
  private = list(
    .network = function(task, param_vals) tabm_architecture(param_vals)
  )
)
