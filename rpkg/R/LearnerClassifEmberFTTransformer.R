#' @title Classification: FT-Transformer on the Ember engine
#'
#' @name mlr_learners_classif.ember_ft_transformer
#'
#' @description
#' A feature-tokenizer transformer (FT-Transformer) for tabular data, trained on the Ember engine
#' for classification. The head has one output for two classes (the logit of the positive class,
#' `task$class_names[1]`, trained with binary cross-entropy) or one per class (cross-entropy); the
#' number of outputs comes from the task's class levels.
#'
#' @templateVar id classif.ember_ft_transformer
#' @templateVar task_type classif
#' @templateVar feature_types `"logical"`, `"integer"`, `"numeric"`, `"factor"`, `"ordered"`
#' @template learner_ember
#' @template params_ft_transformer
#'
#' @seealso [mlr_learners_ember], [mlr_learners_regr.ember_ft_transformer], [ember_fit()]
#' @export
#' @examplesIf requireNamespace("mlr3", quietly = TRUE)
#' library(mlr3)
#' learner <- lrn("classif.ember_ft_transformer", epochs = 10, batch_size = 32, n_blocks = 1,
#'   d_token = 32, attention_n_heads = 4, predict_type = "prob")
#' learner$train(tsk("german_credit"))
#' head(learner$predict(tsk("german_credit"))$prob)
LearnerClassifEmberFTTransformer <- R6::R6Class("LearnerClassifEmberFTTransformer",
  inherit = LearnerClassifEmber,
  public = list(
    # @description Creates a new instance of this learner.
    initialize = function(callbacks = list()) {
      super$initialize(callbacks = callbacks, id = "classif.ember_ft_transformer",
        label = "FT-Transformer (Ember)",
        man = "mlr3ember::mlr_learners_classif.ember_ft_transformer",
        architecture_params = ember_params_ft_transformer(), param_vals = tabular_initial_values("ft_transformer"))
    }
  ),
  private = list(
    .network = function(task, param_vals) ft_transformer_architecture(param_vals)
  )
)
