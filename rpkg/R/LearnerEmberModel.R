#' @title Learners inside the network-graph model PipeOps
#'
#' @name mlr_learners_ember_model
#'
#' @description
#' `classif.ember_model` and `regr.ember_model` are the learners that `po("ember_model_classif")`
#' and `po("ember_model_regr")` wrap (see [mlr_pipeops_ember]): the network, the optimizer, the
#' loss and the callbacks come from the graph, and their parameters are the training parameters of
#' the Ember learners ([mlr_learners_ember]), plus `augment`: image transforms made with
#' [ember_transform()] for the graph's image input (a list of them named by ingress id when the
#' graph has several image inputs), run by the engine per batch (random ones in training only).
#' They are not meant to be trained on their own.
#'
#' @format [R6::R6Class] generators inheriting from [LearnerClassifEmber] and [LearnerRegrEmber].
#' @seealso [mlr_pipeops_ember]
#' @examplesIf requireNamespace("mlr3pipelines", quietly = TRUE)
#' library(mlr3pipelines)
#' po("ember_model_regr", epochs = 5, batch_size = 8)$learner
NULL

# The learner inside the model PipeOps: the network and the configuration come from the graph.
ember_model_learner_private <- list(
  .graph_network = NULL,
  .graph_config = NULL,
  .network = function(task, param_vals) {
    if (is.null(private$.graph_network)) {
      stop(sprintf("Learner '%s' trains inside po(\"ember_model_%s\"), from a network graph", self$id, self$task_type),
        call. = FALSE)
    }
    private$.graph_network
  },
  .train_values = function() {
    pv <- self$param_set$get_values(tags = "train")
    config <- private$.graph_config %||% list()
    callbacks <- config$callbacks %||% list()
    # The callback objects of po("ember_callbacks", callbacks = ...) run with their cb.<id>.* values.
    private$.callbacks <- callbacks$.objects %||% list()
    callbacks$.objects <- NULL
    defaults <- list(optimizer = "adam", loss = if (self$task_type == "classif") "cross_entropy" else "mse")
    merged <- utils::modifyList(defaults, c(config$optimizer %||% list(), config$loss %||% list(), callbacks))
    check_graph_loss(merged$loss, self$task_type)
    c(pv, merged)
  }
)

check_graph_loss <- function(loss, task_type) {
  allowed <- builtin_losses(task_type)
  if (!(loss %in% allowed)) {
    stop(sprintf("po(\"ember_loss\") sets loss = \"%s\", which does not fit a %s task (%s)", loss, task_type,
      paste0("\"", allowed, "\"", collapse = " or ")), call. = FALSE)
  }
}

#' @rdname mlr_learners_ember_model
#' @export
LearnerClassifEmberModel <- R6::R6Class("LearnerClassifEmberModel",
  inherit = LearnerClassifEmber,
  public = list(
    initialize = function() {
      super$initialize(id = "classif.ember_model", label = "Network graph model (Ember)", feature_types = tensor_feature_types,
        man = "mlr3ember::mlr_learners_ember_model", param_set = do.call(paradox::ps, c(params_training("classif"), ember_params_image()["augment"])))
    }
  ),
  private = ember_model_learner_private
)

#' @rdname mlr_learners_ember_model
#' @export
LearnerRegrEmberModel <- R6::R6Class("LearnerRegrEmberModel",
  inherit = LearnerRegrEmber,
  public = list(
    initialize = function() {
      super$initialize(id = "regr.ember_model", label = "Network graph model (Ember)", feature_types = tensor_feature_types,
        man = "mlr3ember::mlr_learners_ember_model", param_set = do.call(paradox::ps, c(params_training("regr"), ember_params_image()["augment"])))
    }
  ),
  private = ember_model_learner_private
)
