#' @title Regression: Featureless baseline on the Ember engine
#'
#' @name mlr_learners_regr.ember_featureless
#'
#' @description
#' A featureless baseline trained on the Ember engine: a network that ignores the features and
#' learns one constant, the log-odds of the classes (their frequencies in the training data) for
#' classification, the mean of the target for regression. It takes tasks with features of any type,
#' with missing values, or without features, and has no architecture parameters. The head has one
#' output, trained with MSE (or L1); the target is standardised inside the model with `standardize
#' = TRUE` and predictions come back on its scale.
#'
#' @templateVar id regr.ember_featureless
#' @templateVar task_type regr
#' @templateVar feature_types all (`"logical"`, `"integer"`, `"numeric"`, `"character"`, `"factor"`, `"ordered"`, `"POSIXct"`, `"Date"`); they are ignored
#' @templateVar extra_properties , `"missings"`
#' @template learner_ember
#' @section Parameters:
#' None of its own (see section Shared parameters). `opt.lr` is initially 0.1 rather than the
#' optimizer's default: a single constant learns fast.
#'
#' @seealso [mlr_learners_ember], [mlr_learners_classif.ember_featureless], [ember_fit()]
#' @export
#' @examplesIf requireNamespace("mlr3", quietly = TRUE)
#' library(mlr3)
#' learner <- lrn("regr.ember_featureless", epochs = 100, batch_size = 8)
#' learner$train(tsk("mtcars"))
#' learner$predict(tsk("mtcars"))$response[1]  # about mean(mtcars$mpg)
LearnerRegrEmberFeatureless <- R6::R6Class("LearnerRegrEmberFeatureless",
  inherit = LearnerRegrEmber,
  public = list(
    # @description Creates a new instance of this learner.
    initialize = function(callbacks = list()) {
      super$initialize(callbacks = callbacks, id = "regr.ember_featureless",
        label = "Featureless Network (Ember)",
        man = "mlr3ember::mlr_learners_regr.ember_featureless",
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
