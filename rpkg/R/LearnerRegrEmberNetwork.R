#' @title Regression: Network built in R on the Ember engine
#'
#' @name mlr_learners_regr.ember_network
#'
#' @description
#' A network built in R with the vocabulary of [ember_network()], trained on the Ember engine for
#' regression: inputs for numeric, categorical and image data, layers, merges, repeated blocks and
#' a head. The network is data (a graph that becomes the engine's network description), never a
#' JSON string. The head has one output, trained with MSE (or L1); the target is standardised
#' inside the model with `standardize = TRUE` and predictions come back on its scale.
#'
#' @templateVar id regr.ember_network
#' @templateVar task_type regr
#' @templateVar feature_types `"logical"`, `"integer"`, `"numeric"`, `"factor"`, `"ordered"`, `"ember_tensor"` (read by an image input)
#' @template learner_ember
#' @template params_network
#'
#' @seealso [mlr_learners_ember], [mlr_learners_classif.ember_network], [ember_fit()]
#' @export
#' @examplesIf requireNamespace("mlr3", quietly = TRUE)
#' library(mlr3)
#' # A residual MLP: a block repeated twice, each with its own weights.
#' net <- ember_input_tabular() |> ember_linear(32) |>
#'   ember_repeat(2, function(x) {
#'     ember_merge_sum(x, x |> ember_layer_norm() |> ember_linear(32) |> ember_activation("relu"))
#'   }) |>
#'   ember_head() |> ember_network()
#' learner <- lrn("regr.ember_network", network = net, epochs = 50, batch_size = 8)
#' learner$train(tsk("mtcars"))
#' learner$predict(tsk("mtcars"))$score(msr("regr.rmse"))
LearnerRegrEmberNetwork <- R6::R6Class("LearnerRegrEmberNetwork",
  inherit = LearnerRegrEmber,
  public = list(
    # @description Creates a new instance of this learner.
    initialize = function(callbacks = list()) {
      super$initialize(callbacks = callbacks, feature_types = tensor_feature_types, id = "regr.ember_network",
        label = "Network built in R (Ember)",
        man = "mlr3ember::mlr_learners_regr.ember_network",
        architecture_params = ember_params_network())
    }
  ),
  private = list(
    .network = function(task, param_vals) param_vals$network
  )
)
