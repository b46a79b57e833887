#' @title Classification: TabM on the Ember engine
#'
#' @name mlr_learners_classif.ember_tabm
#'
#' @description
#' TabM (an ensemble of MLPs that share most weights), trained on the Ember engine for
#' classification. The output layer has, per member, one output for two classes (the logit of the
#' positive class, `task$class_names[1]`, trained with binary cross-entropy) or one per class
#' (cross-entropy); the predicted probabilities are the mean of the members' probabilities.
#'
#' @templateVar id classif.ember_tabm
#' @templateVar task_type classif
#' @templateVar feature_types `"logical"`, `"integer"`, `"numeric"`, `"factor"`, `"ordered"`
#' @template learner_ember
#' @template params_tabm
#'
#' @seealso [mlr_learners_ember], [mlr_learners_regr.ember_tabm], [ember_tabm()], [ember_fit()]
#' @export
#' @examplesIf requireNamespace("mlr3", quietly = TRUE)
#' library(mlr3)
#' learner <- lrn("classif.ember_tabm", epochs = 10, batch_size = 32, k = 8, d_block = 64)
#' rr <- resample(tsk("german_credit"), learner, rsmp("holdout"))
#' rr$aggregate(msr("classif.acc"))
LearnerClassifEmberTabM <- R6::R6Class("LearnerClassifEmberTabM",
  inherit = LearnerClassifEmber,
  public = list(
    # @description Creates a new instance of this learner.
    initialize = function(callbacks = list()) {
      super$initialize(callbacks = callbacks, id = "classif.ember_tabm",
        label = "TabM (Ember)",
        man = "mlr3ember::mlr_learners_classif.ember_tabm",
        architecture_params = ember_params_tabm(), param_vals = tabular_initial_values("tabm"))
    }
  ),
  private = list(
    .network = function(task, param_vals) tabm_architecture(param_vals)
  )
)
