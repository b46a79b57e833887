#' Network graphs for the predefined architectures
#'
#' Templates in the style of 'mlr3pipelines''s `ppl()`: whole graphs of Ember PipeOps, from the
#' ingress to the model, registered in `mlr3pipelines::mlr_graphs` as `"ember_mlp"` and
#' `"ember_tab_resnet"` (so `ppl("ember_mlp", ...)` works). The repeated part is an
#' `ember_block` with id `"block"`, so that the depth is the tunable `block.n_blocks`. They read
#' the numeric features (`ember_ingress_num`); put `po("encode")` before them for factors.
#'
#' * `ember_mlp`: `n_blocks` times Linear(`d_block`) -> activation -> Dropout(`p`), then the head.
#' * `ember_tab_resnet`: Linear(`d_block`), then `n_blocks` residual blocks
#'   `x + Dropout(Linear(Dropout(ReLU(Linear(BatchNorm(x))))))` with hidden width
#'   `d_hidden_multiplier * d_block`, then BatchNorm -> ReLU -> head: the TabResNet of
#'   [ember_tab_resnet()].
#'
#' @param task_type (`character(1)`)\cr `"classif"` or `"regr"`.
#' @param n_blocks (`integer(1)`)\cr Number of blocks (hidden layers of the MLP).
#' @param d_block (`integer(1)`)\cr Width of the blocks.
#' @param p,dropout1,dropout2 (`numeric(1)`)\cr Dropout probabilities.
#' @param activation (`character(1)`)\cr The MLP's activation (an Ember PipeOp's name, e.g.
#'   `"relu"`, `"gelu"`).
#' @param d_hidden_multiplier (`numeric(1)`)\cr Hidden width of a residual block over `d_block`.
#' @return A `Graph`; `mlr3::as_learner()` turns it into a `GraphLearner`. Set the training
#'   parameters by their ids in the graph, e.g. `ember_model_classif.epochs` (also as arguments of
#'   `ppl()`).
#' @seealso [mlr_pipeops_ember], [ember_nn()]
#' @export
#' @examplesIf requireNamespace("mlr3pipelines", quietly = TRUE)
#' library(mlr3pipelines)
#' graph <- ppl("ember_mlp", "classif", n_blocks = 2, d_block = 32, ember_model_classif.epochs = 10,
#'   ember_model_classif.batch_size = 16)
#' glrn <- mlr3::as_learner(graph)
#' glrn$param_set$values$block.n_blocks <- 1
#' glrn$train(mlr3::tsk("iris"))
ember_ppl_mlp <- function(task_type = "classif", n_blocks = 1L, d_block = 64L, p = 0, activation = "relu") {
  task_type <- check_choice(task_type, c("classif", "regr"), "task_type")
  activation <- check_choice(activation, activation_ops(), "activation")
  po <- mlr3pipelines::po
  block <- po("ember_linear", id = "linear", out_features = check_count(d_block, "d_block")) %>>%
    po(paste0("ember_", activation), id = "activation") %>>% po("ember_dropout", id = "dropout", p = check_rate(p, "p"))
  po("ember_ingress_num") %>>%
    po("ember_block", block, id = "block", n_blocks = check_count(n_blocks, "n_blocks", lower = 0L)) %>>%
    po("ember_head", id = "head") %>>%
    po(paste0("ember_model_", task_type))
}

#' @rdname ember_ppl_mlp
#' @export
ember_ppl_tab_resnet <- function(task_type = "classif", n_blocks = 2L, d_block = 64L, d_hidden_multiplier = 2,
                                 dropout1 = 0.1, dropout2 = 0.1) {
  task_type <- check_choice(task_type, c("classif", "regr"), "task_type")
  po <- mlr3pipelines::po
  d_block <- check_count(d_block, "d_block")
  d_hidden <- max(1L, as.integer(d_block * check_positive(d_hidden_multiplier, "d_hidden_multiplier")))
  branch <- po("ember_batch_norm", id = "norm") %>>% po("ember_linear", id = "linear1", out_features = d_hidden) %>>%
    po("ember_relu", id = "relu") %>>% po("ember_dropout", id = "dropout1", p = check_rate(dropout1, "dropout1")) %>>%
    po("ember_linear", id = "linear2", out_features = d_block) %>>%
    po("ember_dropout", id = "dropout2", p = check_rate(dropout2, "dropout2"))
  block <- mlr3pipelines::gunion(list(po("nop", id = "skip"), branch)) %>>% po("ember_merge_sum", id = "residual")
  po("ember_ingress_num") %>>% po("ember_linear", id = "first", out_features = d_block) %>>%
    po("ember_block", block, id = "block", n_blocks = check_count(n_blocks, "n_blocks", lower = 0L)) %>>%
    po("ember_batch_norm", id = "last_norm") %>>% po("ember_relu", id = "last_relu") %>>%
    po("ember_head", id = "head") %>>% po(paste0("ember_model_", task_type))
}

`%>>%` <- function(g1, g2) mlr3pipelines::`%>>%`(g1, g2)
