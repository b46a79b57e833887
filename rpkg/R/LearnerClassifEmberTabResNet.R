#' @title Classification: Tabular ResNet on the Ember engine
#'
#' @name mlr_learners_classif.ember_tab_resnet
#'
#' @description
#' A residual network for tabular data (TabResNet), trained on the Ember engine for classification.
#' The head has one output for two classes (the logit of the positive class, `task$class_names[1]`,
#' trained with binary cross-entropy) or one per class (cross-entropy); the number of outputs comes
#' from the task's class levels.
#'
#' @templateVar id classif.ember_tab_resnet
#' @templateVar task_type classif
#' @templateVar feature_types `"logical"`, `"integer"`, `"numeric"`, `"factor"`, `"ordered"`
#' @template learner_ember
#' @template params_tab_resnet
#'
#' @seealso [mlr_learners_ember], [mlr_learners_regr.ember_tab_resnet], [ember_fit()]
#' @export
#' @examplesIf requireNamespace("mlr3", quietly = TRUE)
#' library(mlr3)
#' learner <- lrn("classif.ember_tab_resnet", epochs = 20, batch_size = 32, n_blocks = 1, d_block = 32)
#' rr <- resample(tsk("german_credit"), learner, rsmp("holdout"))
#' rr$aggregate(msr("classif.acc"))
LearnerClassifEmberTabResNet <- R6::R6Class("LearnerClassifEmberTabResNet",
  inherit = LearnerClassifEmber,
  public = list(
    # @description Creates a new instance of this learner.
    initialize = function(callbacks = list()) {
      super$initialize(callbacks = callbacks, id = "classif.ember_tab_resnet",
        label = "Tabular ResNet (Ember)",
        man = "mlr3ember::mlr_learners_classif.ember_tab_resnet",
        architecture_params = ember_params_tab_resnet(), param_vals = tabular_initial_values("tab_resnet"))
    }
  ),
  private = list(
    .network = function(task, param_vals) tab_resnet_architecture(param_vals)
  )
)
