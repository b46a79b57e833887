#' @title Regression: FT-Transformer on the Ember engine
#'
#' @name mlr_learners_regr.ember_ft_transformer
#'
#' @description
#' A feature-tokenizer transformer (FT-Transformer) for tabular data, trained on the Ember engine
#' for regression. The head has one output, trained with MSE (or L1); the target is standardised
#' inside the model with `standardize = TRUE` and predictions come back on its scale.
#'
#' @templateVar id regr.ember_ft_transformer
#' @templateVar task_type regr
#' @templateVar feature_types `"logical"`, `"integer"`, `"numeric"`, `"factor"`, `"ordered"`
#' @template learner_ember
#' @template params_ft_transformer
#'
#' @seealso [mlr_learners_ember], [mlr_learners_classif.ember_ft_transformer], [ember_fit()]
#' @export
#' @examplesIf requireNamespace("mlr3", quietly = TRUE)
#' library(mlr3)
#' learner <- lrn("regr.ember_ft_transformer", epochs = 30, batch_size = 8, n_blocks = 1,
#'   d_token = 32, attention_n_heads = 4)
#' learner$train(tsk("mtcars"))
#' learner$predict(tsk("mtcars"))$score(msr("regr.rmse"))
LearnerRegrEmberFTTransformer <- R6::R6Class("LearnerRegrEmberFTTransformer",
  inherit = LearnerRegrEmber,
  public = list(
    # @description Creates a new instance of this learner.
    initialize = function(callbacks = list()) {
      super$initialize(callbacks = callbacks, id = "regr.ember_ft_transformer",
        label = "FT-Transformer (Ember)",
        man = "mlr3ember::mlr_learners_regr.ember_ft_transformer",
        architecture_params = ember_params_ft_transformer(), param_vals = tabular_initial_values("ft_transformer"))
    }
  ),
  private = list(
    .network = function(task, param_vals) ft_transformer_architecture(param_vals)
  )
)
