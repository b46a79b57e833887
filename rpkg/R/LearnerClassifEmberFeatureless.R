#' @title Classification: Featureless baseline on the Ember engine
#'
#' @name mlr_learners_classif.ember_featureless
#'
#' @description
#' A featureless baseline trained on the Ember engine: a network that ignores the features and
#' learns one constant, the log-odds of the classes (their frequencies in the training data) for
#' classification, the mean of the target for regression. It takes tasks with features of any type,
#' with missing values, or without features, and has no architecture parameters. The head has one
#' output for two classes (the logit of the positive class, `task$class_names[1]`, trained with
#' binary cross-entropy) or one per class (cross-entropy); the number of outputs comes from the
#' task's class levels.
#'
#' @templateVar id classif.ember_featureless
#' @templateVar task_type classif
#' @templateVar feature_types all (`"logical"`, `"integer"`, `"numeric"`, `"character"`, `"factor"`, `"ordered"`, `"POSIXct"`, `"Date"`); they are ignored
#' @templateVar extra_properties , `"missings"`
#' @template learner_ember
#' @section Parameters:
#' None of its own (see section Shared parameters). `opt.lr` is initially 0.1 rather than the
#' optimizer's default: a single constant learns fast.
#'
#' @seealso [mlr_learners_ember], [mlr_learners_regr.ember_featureless], [ember_fit()]
#' @export
#' @examplesIf requireNamespace("mlr3", quietly = TRUE)
#' library(mlr3)
#' learner <- lrn("classif.ember_featureless", epochs = 20, batch_size = 32, predict_type = "prob")
#' learner$train(tsk("iris"))
#' head(learner$predict(tsk("iris"))$prob, 3)  # the class frequencies, learned
LearnerClassifEmberFeatureless <- R6::R6Class("LearnerClassifEmberFeatureless",
  inherit = LearnerClassifEmber,
  public = list(
    # @description Creates a new instance of this learner.
    initialize = function(callbacks = list()) {
      super$initialize(callbacks = callbacks, id = "classif.ember_featureless",
        label = "Featureless Network (Ember)",
        man = "mlr3ember::mlr_learners_classif.ember_featureless",
        feature_types = featureless_feature_types,
        properties = "missings", importance = FALSE,
        param_vals = list(opt.lr = 0.1))
    }
  ),
  private = list(
    .network = function(task, param_vals) ember_featureless(),
    .features = function(task) featureless_features(task)
  )
)
