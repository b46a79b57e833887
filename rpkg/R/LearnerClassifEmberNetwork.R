#' @title Classification: Network built in R on the Ember engine
#'
#' @name mlr_learners_classif.ember_network
#'
#' @description
#' A network built in R with the vocabulary of [ember_network()], trained on the Ember engine for
#' classification: inputs for numeric, categorical and image data, layers, merges, repeated blocks
#' and a head. The network is data (a graph that becomes the engine's network description), never a
#' JSON string. The head has one output for two classes (the logit of the positive class,
#' `task$class_names[1]`, trained with binary cross-entropy) or one per class (cross-entropy); the
#' number of outputs comes from the task's class levels.
#'
#' @templateVar id classif.ember_network
#' @templateVar task_type classif
#' @templateVar feature_types `"logical"`, `"integer"`, `"numeric"`, `"factor"`, `"ordered"`, `"ember_tensor"` (read by an image input)
#' @template learner_ember
#' @template params_network
#'
#' @seealso [mlr_learners_ember], [mlr_learners_regr.ember_network], [ember_fit()]
#' @export
#' @examplesIf requireNamespace("mlr3", quietly = TRUE)
#' library(mlr3)
#' # Numeric features through one branch, embedded factors through another:
#' num <- ember_input_num() |> ember_linear(32) |> ember_activation("relu")
#' categ <- ember_input_categ() |> ember_embedding(4) |> ember_flatten()
#' net <- ember_merge_cat(num, categ) |> ember_dropout(0.1) |> ember_linear(16) |>
#'   ember_activation("gelu") |> ember_head() |> ember_network()
#' learner <- lrn("classif.ember_network", network = net, epochs = 20, batch_size = 32)
#' rr <- resample(tsk("german_credit"), learner, rsmp("holdout"))
#' rr$aggregate(msr("classif.acc"))
LearnerClassifEmberNetwork <- R6::R6Class("LearnerClassifEmberNetwork",
  inherit = LearnerClassifEmber,
  public = list(
    # @description Creates a new instance of this learner.
    initialize = function(callbacks = list()) {
      super$initialize(callbacks = callbacks, feature_types = tensor_feature_types, id = "classif.ember_network",
        label = "Network built in R (Ember)",
        man = "mlr3ember::mlr_learners_classif.ember_network",
        architecture_params = ember_params_network())
    }
  ),
  private = list(
    .network = function(task, param_vals) param_vals$network
  )
)
