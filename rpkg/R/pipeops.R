# Networks as mlr3pipelines graphs. The PipeOps build the same network graph as the builder
# vocabulary of network.R (each layer PipeOp calls the builder function of its op), so that a graph
# of PipeOps and the equivalent ember_network() give the same network description. What flows along
# the graph in training is an `EmberModelDescriptor`: the network's current output node, the task
# with the features the ingress PipeOps read, and the optimizer, loss and callback configuration.
# In prediction, tasks flow through unchanged (merged where branches meet) to the model PipeOp.

#' @title Networks as mlr3pipelines graphs
#'
#' @name mlr_pipeops_ember
#' @aliases PipeOpEmberIngress PipeOpEmberLayer PipeOpEmberBlock PipeOpEmberConfig PipeOpEmberModel
#'
#' @description
#' PipeOps that write a network in the graph language of 'mlr3pipelines', so that preprocessing
#' and architecture form one `Graph`, become one `GraphLearner`, and every layer's parameter is a
#' hyperparameter that can be tuned. They are registered in `mlr3pipelines::mlr_pipeops` (keys
#' starting with `ember_`) when 'mlr3pipelines' is loaded. A graph starts with one or more ingress
#' PipeOps, continues with layers, merges and blocks, ends with `ember_head` and a model PipeOp
#' (`ember_model_classif` or `ember_model_regr`), and may configure the optimizer, the loss and
#' the callbacks on the way. The PipeOps build the same network as [ember_network()]; the engine
#' infers every size (input widths, channels), so a layer only states what it adds.
#'
#' @section Ingress:
#' * `ember_ingress_num`: the task's numeric, integer and logical features, as a matrix
#'   `[n, features]` (numeric and integer columns standardised inside the model).
#' * `ember_ingress_categ`: the task's factor and ordered features as level codes, for
#'   `ember_embedding`, `ember_one_hot` or `ember_tokenizer_categ`.
#' * `ember_ingress_tensor`: one [tensor column][as_ember_tensor] of images (e.g. the feature of
#'   `tsk("fashion_mnist")`; `shape` is then optional and must match the column's), or numeric
#'   pixel columns read as one tensor per row of shape `shape` (parameter, e.g. `c(1, 28, 28)`;
#'   row-major: channel, then row, then column).
#'
#' Each ingress reads exactly the features of the task that reaches it (select them with
#' `po("select")` before it, as in 'mlr3torch'); the columns are matched by name at prediction.
#' A feature of another type or a missing value is an error naming the PipeOp and the column
#' (impute first, e.g. `po("imputehist")`, `po("imputeoor")`).
#'
#' @section Layers:
#' One PipeOp per op of the network description (`docs/network-description.md`), with the op's
#' parameters under PyTorch's names: `ember_linear` (`out_features`, `bias`), one per activation
#' (`ember_relu`, `ember_gelu`, `ember_leaky_relu` (`negative_slope`), `ember_elu` (`alpha`) ...),
#' `ember_dropout` (`p`), `ember_batch_norm`, `ember_layer_norm`, `ember_conv` (`out_channels`,
#' `kernel_size`, `stride`, `padding`, `dilation`, `groups`, `bias`, `dim`), `ember_max_pool`,
#' `ember_avg_pool`, `ember_adaptive_avg_pool`, `ember_flatten`, `ember_reshape`,
#' `ember_squeeze`, `ember_unsqueeze`, `ember_embedding` (`embedding_dim`), `ember_one_hot`,
#' `ember_tokenizer_num` and `ember_tokenizer_categ` (`d_token`, `bias`), `ember_ft_cls` (a
#' learned CLS token), `ember_ft_transformer_block` (the FT-Transformer block: `n_heads`,
#' `attention_dropout`, `ffn_d_hidden_multiplier`, `ffn_dropout`, `residual_dropout`,
#' `ffn_activation`, `prenormalization`, `is_first_layer`), `ember_multihead_attention`
#' (self-attention over tokens `[t, d]`: `num_heads`, `dropout`, `bias`), `ember_select_cls`, and
#' `ember_head` (the output layer, sized from the task), TabM's pieces (`ember_ensemble_view` (`k`),
#' `ember_linear_batch_ensemble`, `ember_elementwise_affine`, `ember_linear_ensemble`,
#' `ember_ensemble_head`, `ember_periodic_embeddings`, `ember_piecewise_linear_embeddings`; see
#' [ember_tabm()]), and `ember_fn` (a custom layer: `fn`, a
#' function of its inputs, see [ember_layer_fn()]; one input channel per argument). `ember_merge_sum`, `ember_merge_prod`
#' and `ember_merge_cat` (`dim`) combine two or more branches (`innum` input channels; by default
#' any number through the vararg channel `...`). The PipeOp's id names the layer (parameters
#' `<id>.weight` ...), so ids must not contain `.`.
#'
#' @section Blocks:
#' `ember_block` repeats a `Graph` of layer PipeOps `n_blocks` times (0 passes its input
#' through): each repetition has its own parameters unless `shared = TRUE`. The block's
#' parameters appear with the block graph's ids (e.g. `linear.out_features`), and
#' `n_blocks` is tunable like any other parameter. Each repetition reads the previous one's
#' output; a block with `shared = TRUE` must keep the shape of its input.
#'
#' @section Configuration:
#' * `ember_optimizer`: `optimizer` (`"adam"`, `"adamw"`, `"sgd"`, `"rmsprop"`, `"adagrad"`)
#'   and its options without the learners' `opt.` prefix (`lr`, `weight_decay`, `betas`,
#'   `momentum` ...).
#' * `ember_loss`: `loss` (`"cross_entropy"`, `"focal"`, `"mse"`, `"l1"`, `"huber"`, `"smooth_l1"`,
#'   `"poisson_nll"`, `"quantile"`: the levels are the graph learner's `$quantiles`, 0.5 without)
#'   and its options (`weight`, `reduction`, `label_smoothing`, `gamma`, `alpha`, `delta`, `beta`),
#'   or `fn`, a custom loss made with [ember_loss_fn()].
#' * `ember_callbacks`: the learners' `cb.*` parameters without the prefix (`progress`,
#'   `checkpoint.path`, `lr_scheduler`, `lr_step.step_size` ...), and callbacks made with
#'   [ember_callback()] (construction argument `callbacks`), whose parameters appear as
#'   `<id>.<name>`.
#'
#' Without them the model trains with Adam at its defaults, the task's loss and no callbacks.
#'
#' @section Model:
#' `ember_model_classif` and `ember_model_regr` train the network with the training parameters of
#' the Ember learners (`epochs`, `batch_size`, `seed`, `num_threads`, `patience`,
#' `measures_valid`, `eval_freq`, `restore_best_weights`, `standardize` ...; see
#' [mlr_learners_ember]). They wrap a learner (`classif.ember_model`, `regr.ember_model`), so
#' that `set_validate()`, internal tuning of `epochs`, marshaling and `$base_learner()` work as
#' for any `PipeOpLearner`. In prediction they predict the task that reaches them.
#'
#' @section Shorthands:
#' [ember_nn()] makes a PipeOp by the op's name with an automatic id (`linear_1`, `linear_2` ...),
#' and `ppl("ember_mlp")` and `ppl("ember_tab_resnet")` build whole graphs for the predefined
#' architectures, with tunable `n_blocks` (see [ember_ppl_mlp()]).
#'
#' @seealso [ember_network()], [ember_nn()], [mlr_learners_ember]
#' @examplesIf requireNamespace("mlr3pipelines", quietly = TRUE)
#' library(mlr3)
#' library(mlr3pipelines)
#' # An MLP as a graph:
#' graph <- po("ember_ingress_num") %>>%
#'   po("ember_linear", out_features = 32) %>>% po("ember_relu") %>>%
#'   po("ember_head") %>>%
#'   po("ember_optimizer", optimizer = "adam", lr = 0.01) %>>%
#'   po("ember_model_classif", epochs = 20, batch_size = 16)
#' glrn <- as_learner(graph)
#' glrn$train(tsk("iris"))
#' glrn$predict(tsk("iris"))$score()
#'
#' # A residual block repeated n_blocks times, with numeric and factor features in two branches:
#' block <- gunion(list(po("nop", id = "skip"),
#'   po("ember_linear", out_features = 16) %>>% po("ember_relu"))) %>>% po("ember_merge_sum")
#' graph <- gunion(list(
#'     po("select", id = "sel_num", selector = selector_type(c("numeric", "integer"))) %>>%
#'       po("ember_ingress_num") %>>% po("ember_linear", id = "proj", out_features = 16),
#'     po("select", id = "sel_categ", selector = selector_type("factor")) %>>%
#'       po("ember_ingress_categ") %>>% po("ember_embedding", embedding_dim = 2) %>>%
#'       po("ember_flatten"))) %>>%
#'   po("ember_merge_cat") %>>% po("ember_linear", id = "mix", out_features = 16) %>>%
#'   po("ember_block", block, id = "block", n_blocks = 2) %>>% po("ember_head") %>>%
#'   po("ember_model_classif", epochs = 5, batch_size = 32)
#' glrn <- as_learner(graph)
#' glrn$param_set$values$block.n_blocks <- 3
#' glrn$train(tsk("german_credit"))
NULL

# The channels of an Ember PipeOp: model descriptors (or `train_in`) in training, tasks in prediction.
ember_channels <- function(inname = "input", train_in = "EmberModelDescriptor", predict_in = "Task") {
  list(input = data.table::data.table(name = inname, train = train_in, predict = predict_in),
    output = data.table::data.table(name = "output", train = "EmberModelDescriptor", predict = "Task"))
}

# A PipeOp id as a layer id of the network description (which has no '.').
layer_id <- function(id) gsub(".", "_", id, fixed = TRUE)

# The object that flows along a network graph in training.
new_model_descriptor <- function(node, task, optimizer = NULL, loss = NULL, callbacks = NULL) {
  structure(list(node = node, task = task, optimizer = optimizer, loss = loss, callbacks = callbacks),
    class = "EmberModelDescriptor")
}

#' @export
print.EmberModelDescriptor <- function(x, ...) {
  cat(sprintf("<EmberModelDescriptor> output node: %s; task '%s' (%d features)\n",
    x$node$id %||% x$node$op, x$task$id, length(x$task$feature_names)))
  invisible(x)
}

# The union of the tasks of two branches: the features of both, the same rows (as
# po("featureunion")), also for the internal validation task.
union_tasks <- function(t1, t2) {
  if (identical(t1, t2)) return(t1)
  union <- function(a, b) mlr3pipelines::PipeOpFeatureUnion$new()$train(list(a, b))[[1L]]
  task <- union(t1, t2)
  v1 <- t1$internal_valid_task
  v2 <- t2$internal_valid_task
  if (xor(is.null(v1), is.null(v2))) {
    stop("the branches of the network graph disagree about validation data: one task has an internal validation task, the other not",
      call. = FALSE)
  }
  if (!is.null(v1)) task$internal_valid_task <- union(v1, v2)
  task
}

# One configuration (optimizer, loss, callbacks) from two branches: equal or set in one only.
union_config <- function(a, b, what) {
  if (is.null(a)) return(b)
  if (is.null(b) || identical(a, b)) return(a)
  stop(sprintf("two branches of the network graph configure the %s differently; configure it once, after the merge", what),
    call. = FALSE)
}

union_descriptors <- function(mds) {
  Reduce(function(a, b) {
    new_model_descriptor(a$node, union_tasks(a$task, b$task), union_config(a$optimizer, b$optimizer, "optimizer"),
      union_config(a$loss, b$loss, "loss"), union_config(a$callbacks, b$callbacks, "callbacks"))
  }, mds)
}

check_descriptors <- function(inputs, id) {
  for (md in inputs) {
    if (!inherits(md, "EmberModelDescriptor")) {
      stop(sprintf("PipeOp '%s' received %s in training; it needs the output of an Ember ingress or layer PipeOp (po(\"ember_ingress_num\") ...)",
        id, class(md)[1L]), call. = FALSE)
    }
  }
}

# Prediction: the tasks of several branches are merged, a single one passes.
predict_tasks <- function(inputs) {
  if (length(inputs) > 1L) return(mlr3pipelines::PipeOpFeatureUnion$new()$train(unname(inputs))[[1L]])
  inputs[[1L]]
}

# Errors of the builder vocabulary and of the engine, raised while a PipeOp adds its layer, name
# the PipeOp.
with_pipeop_context <- function(id, expr) {
  withCallingHandlers(expr, ember_error = function(e) {
    e$message <- sprintf("PipeOp '%s': %s", id, conditionMessage(e))
    stop(e)
  })
}

#' @export
PipeOpEmberIngress <- R6::R6Class("PipeOpEmberIngress",
  inherit = mlr3pipelines::PipeOp,
  public = list(
    # @description Creates an ingress PipeOp reading features of `feature_types` as an input of `kind`.
    initialize = function(id, kind, feature_types, param_set = paradox::ps(), param_vals = list()) {
      private$.kind <- kind
      private$.feature_types <- feature_types
      channels <- ember_channels(train_in = "Task")
      super$initialize(id = id, param_set = param_set, param_vals = param_vals,
        input = channels$input, output = channels$output, packages = "mlr3ember", tags = "ember")
    }
  ),
  active = list(
    # @field feature_types The feature types the ingress reads.
    feature_types = function(rhs) {
      if (!missing(rhs)) stop("feature_types is read-only", call. = FALSE)
      private$.feature_types
    }
  ),
  private = list(
    .kind = NULL,
    .feature_types = NULL,
    .train = function(inputs) {
      task <- inputs[[1L]]
      features <- task$feature_names
      if (!length(features)) {
        stop(sprintf("PipeOp '%s' received a task without features", self$id), call. = FALSE)
      }
      types <- task$feature_types
      bad <- types$id[!(types$type %in% private$.feature_types)]
      if (length(bad)) {
        stop(sprintf(paste0("PipeOp '%s' reads %s features; the task has %s ('%s'): select the columns first, e.g. ",
          "po(\"select\", selector = selector_type(c(%s)))"), self$id, paste(private$.feature_types, collapse = ", "),
          paste(unique(types$type[types$id %in% bad]), collapse = ", "), paste(utils::head(bad, 3L), collapse = "', '"),
          paste0("\"", private$.feature_types, "\"", collapse = ", ")), call. = FALSE)
      }
      missings <- task$missings(features)
      if (any(missings > 0L)) {
        col <- names(missings)[missings > 0L][1L]
        stop(sprintf("PipeOp '%s': feature '%s' has %d missing value(s); impute them first, e.g. po(\"imputehist\") or po(\"imputeoor\")",
          self$id, col, missings[[col]]), call. = FALSE)
      }
      node <- with_pipeop_context(self$id, private$.node(features, self$param_set$get_values(tags = "train"), task))
      self$state <- list(features = features)
      list(new_model_descriptor(node, task))
    },
    .predict = function(inputs) inputs
  )
)

PipeOpEmberIngressNum <- R6::R6Class("PipeOpEmberIngressNum",
  inherit = PipeOpEmberIngress,
  public = list(
    initialize = function(id = "ember_ingress_num", param_vals = list()) {
      super$initialize(id, "num", c("numeric", "integer", "logical"), param_vals = param_vals)
    }
  ),
  private = list(.node = function(features, pv, task) ember_input_num(columns = features, id = layer_id(self$id)))
)

PipeOpEmberIngressCateg <- R6::R6Class("PipeOpEmberIngressCateg",
  inherit = PipeOpEmberIngress,
  public = list(
    initialize = function(id = "ember_ingress_categ", param_vals = list()) {
      super$initialize(id, "categ", c("factor", "ordered"), param_vals = param_vals)
    }
  ),
  private = list(.node = function(features, pv, task) ember_input_categ(columns = features, id = layer_id(self$id)))
)

check_shape <- function(x) {
  if (checkmate::test_integerish(x, lower = 1, any.missing = FALSE, min.len = 1L, max.len = 3L)) TRUE else
    "must be 1 to 3 positive integers, e.g. c(channels, height, width)"
}

PipeOpEmberIngressTensor <- R6::R6Class("PipeOpEmberIngressTensor",
  inherit = PipeOpEmberIngress,
  public = list(
    initialize = function(id = "ember_ingress_tensor", param_vals = list()) {
      super$initialize(id, "image", c("numeric", "integer", "ember_tensor"),
        param_set = paradox::ps(shape = paradox::p_uty(custom_check = check_shape, tags = "train")),
        param_vals = param_vals)
    }
  ),
  private = list(.node = function(features, pv, task) {
    types <- task$feature_types$type[match(features, task$feature_types$id)]
    if (any(types == "ember_tensor")) {
      # A tensor column is read alone; its elements' shape is the input's (a given shape must match).
      if (length(features) != 1L) {
        ember_abort(sprintf("reads one ember_tensor column alone; the task has %d features (%s): select the column first, e.g. po(\"select\", selector = selector_type(\"ember_tensor\"))",
          length(features), paste(utils::head(features, 3L), collapse = ", ")), argument = "features",
          expected = "one ember_tensor column", got = paste(features, collapse = ", "))
      }
      return(ember_input_image(shape = if (!is.null(pv$shape)) as.integer(pv$shape), columns = features, id = layer_id(self$id)))
    }
    if (is.null(pv$shape)) {
      ember_abort("needs 'shape' (e.g. c(1, 28, 28)) to read numeric pixel columns as images", argument = "shape",
        expected = "c(channels, height, width)", got = "NULL")
    }
    shape <- as.integer(pv$shape)
    if (length(shape) == 1L) shape <- c(1L, 1L, shape)
    if (length(shape) == 2L) shape <- c(1L, shape)
    if (prod(shape) != length(features)) {
      ember_abort(sprintf("shape c(%s) needs %d pixel columns; the task has %d features", paste(shape, collapse = ", "),
        prod(shape), length(features)), kind = "shape", argument = "shape", expected = as.character(prod(shape)),
        got = as.character(length(features)))
    }
    ember_input_image(shape = shape, columns = features, id = layer_id(self$id))
  })
)

#' @export
PipeOpEmberLayer <- R6::R6Class("PipeOpEmberLayer",
  inherit = mlr3pipelines::PipeOp,
  public = list(
    # @description Creates a layer PipeOp: `build(nodes, param_values, id)` adds the layer to the
    # network graph with the builder vocabulary; `innum` 0 is a vararg input channel.
    initialize = function(id, build, param_set = paradox::ps(), param_vals = list(), innum = 1L) {
      private$.build <- build
      channels <- ember_channels(if (innum == 0L) "..." else if (innum == 1L) "input" else paste0("input", seq_len(innum)))
      super$initialize(id = id, param_set = param_set, param_vals = param_vals,
        input = channels$input, output = channels$output, packages = "mlr3ember", tags = "ember")
    }
  ),
  private = list(
    .build = NULL,
    .train = function(inputs) {
      check_descriptors(inputs, self$id)
      md <- union_descriptors(inputs)
      nodes <- lapply(inputs, `[[`, "node")
      md$node <- with_pipeop_context(self$id, private$.build(unname(nodes), self$param_set$get_values(tags = "train"),
        layer_id(self$id)))
      self$state <- list()
      list(md)
    },
    .predict = function(inputs) list(predict_tasks(inputs)),
    .additional_phash_input = function() deparse(private$.build)
  )
)

# The layer PipeOps: key (without "ember_") -> the op's builder call and its parameters. Defaults
# are the builders' (network.R); a parameter left unset is not passed.
layer_pipeop_table <- function() {
  p_int <- paradox::p_int
  p_dbl <- paradox::p_dbl
  p_lgl <- paradox::p_lgl
  p_fct <- paradox::p_fct
  p_uty <- paradox::p_uty
  tr <- "train"
  req <- c("train", "required")
  sizes <- function(required = FALSE) p_uty(custom_check = function(x) {
    if (checkmate::test_integerish(x, lower = 0, any.missing = FALSE, min.len = 1L, max.len = 2L)) TRUE else
      "must be one or two non-negative integers"
  }, tags = if (required) req else tr)
  one <- function(builder) function(nodes, pv, id) do.call(builder, c(list(nodes[[1L]]), pv, list(id = id)))
  op <- function(name) function(nodes, pv, id) do.call(ember_layer, c(list(nodes[[1L]], name), pv, list(id = id)))
  merge <- function(builder) function(nodes, pv, id) do.call(builder, c(nodes, pv[setdiff(names(pv), "innum")], list(id = id)))
  layers <- list(
    linear = list(one(ember_linear), list(out_features = p_int(lower = 1L, tags = req), bias = p_lgl(tags = tr))),
    dropout = list(one(ember_dropout), list(p = p_dbl(lower = 0, upper = 1, tags = tr))),
    batch_norm = list(one(ember_batch_norm), list(eps = p_dbl(lower = 0, tags = tr), momentum = p_dbl(lower = 0, upper = 1, tags = tr),
      affine = p_lgl(tags = tr))),
    layer_norm = list(one(ember_layer_norm), list(eps = p_dbl(lower = 0, tags = tr), affine = p_lgl(tags = tr))),
    conv = list(one(ember_conv), list(out_channels = p_int(lower = 1L, tags = req), kernel_size = sizes(TRUE), stride = sizes(),
      padding = sizes(), dilation = sizes(), groups = p_int(lower = 1L, tags = tr), bias = p_lgl(tags = tr),
      dim = p_int(lower = 1L, upper = 2L, tags = tr))),
    max_pool = list(one(ember_max_pool), list(kernel_size = sizes(TRUE), stride = sizes(), padding = sizes(),
      dim = p_int(lower = 1L, upper = 2L, tags = tr))),
    avg_pool = list(one(ember_avg_pool), list(kernel_size = sizes(TRUE), stride = sizes(), padding = sizes(),
      count_include_pad = p_lgl(tags = tr), dim = p_int(lower = 1L, upper = 2L, tags = tr))),
    adaptive_avg_pool = list(one(ember_adaptive_avg_pool), list(output_size = sizes(TRUE))),
    flatten = list(one(ember_flatten), list(start_dim = p_int(tags = tr), end_dim = p_int(tags = tr))),
    reshape = list(one(ember_reshape), list(shape = p_uty(tags = req))),
    squeeze = list(op("squeeze"), list(dim = p_int(tags = req))),
    unsqueeze = list(op("unsqueeze"), list(dim = p_int(tags = req))),
    embedding = list(one(ember_embedding), list(embedding_dim = p_int(lower = 1L, tags = req))),
    one_hot = list(one(ember_one_hot), list()),
    tokenizer_num = list(op("tokenizer_num"), list(d_token = p_int(lower = 1L, tags = req), bias = p_lgl(tags = tr))),
    tokenizer_categ = list(op("tokenizer_categ"), list(d_token = p_int(lower = 1L, tags = req), bias = p_lgl(tags = tr))),
    ft_cls = list(op("cls_token"), list()),
    ft_transformer_block = list(op("transformer_block"), list(n_heads = p_int(lower = 1L, tags = tr),
      attention_dropout = p_dbl(lower = 0, upper = 1, tags = tr), ffn_d_hidden = p_int(lower = 1L, tags = tr),
      ffn_d_hidden_multiplier = p_dbl(lower = 0, tags = tr), ffn_dropout = p_dbl(lower = 0, upper = 1, tags = tr),
      residual_dropout = p_dbl(lower = 0, upper = 1, tags = tr),
      ffn_activation = p_fct(c("reglu", "geglu", "glu", "relu", "gelu"), tags = tr), prenormalization = p_lgl(tags = tr),
      is_first_layer = p_lgl(tags = tr))),
    select_cls = list(op("select_cls"), list()),
    fn = list(function(nodes, pv, id) ember_layer_fn(nodes, pv$fn, id = id),
      list(fn = p_uty(custom_check = checkmate::check_function, tags = req)), merge = TRUE),
    multihead_attention = list(op("multihead_attention"), list(num_heads = p_int(lower = 1L, tags = req),
      dropout = p_dbl(lower = 0, upper = 1, tags = tr), bias = p_lgl(tags = tr))),
    head = list(one(ember_head), list(bias = p_lgl(tags = tr))),
    # TabM's pieces (ember_tabm() assembles them; docs/network-description.md).
    ensemble_view = list(op("ensemble_view"), list(k = p_int(lower = 1L, tags = req))),
    linear_batch_ensemble = list(op("linear_batch_ensemble"), list(out_features = p_int(lower = 1L, tags = req),
      bias = p_lgl(tags = tr), first_scaling_init = p_fct(c("random-signs", "normal", "ones"), tags = tr),
      second_scaling_init = p_fct(c("random-signs", "normal", "ones"), tags = tr), scaling_init_chunks = p_uty(tags = tr))),
    elementwise_affine = list(op("elementwise_affine"), list(scaling_init = p_fct(c("random-signs", "normal", "ones"), tags = tr),
      scaling_init_chunks = p_uty(tags = tr), bias = p_lgl(tags = tr))),
    linear_ensemble = list(op("linear_ensemble"), list(out_features = p_int(lower = 1L, tags = req), bias = p_lgl(tags = tr))),
    ensemble_head = list(op("ensemble_head"), list(bias = p_lgl(tags = tr))),
    periodic_embeddings = list(op("periodic_embeddings"), list(d_embedding = p_int(lower = 1L, tags = tr),
      n_frequencies = p_int(lower = 1L, tags = tr), frequency_init_scale = p_dbl(lower = 0, tags = tr),
      activation = p_lgl(tags = tr), lite = p_lgl(tags = tr))),
    piecewise_linear_embeddings = list(op("piecewise_linear_embeddings"), list(d_embedding = p_int(lower = 1L, tags = tr),
      n_bins = p_int(lower = 2L, tags = tr), activation = p_lgl(tags = tr))),
    merge_sum = list(merge(ember_merge_sum), list(), merge = TRUE),
    merge_prod = list(merge(ember_merge_prod), list(), merge = TRUE),
    merge_cat = list(merge(ember_merge_cat), list(dim = p_int(tags = tr)), merge = TRUE)
  )
  # One PipeOp per activation, with the activation's own parameters.
  activation_params <- list(
    elu = list(alpha = p_dbl(tags = tr)), celu = list(alpha = p_dbl(tags = tr)),
    gelu = list(approximate = p_fct(c("none", "tanh"), tags = tr)),
    leaky_relu = list(negative_slope = p_dbl(tags = tr)),
    hardtanh = list(min_val = p_dbl(tags = tr), max_val = p_dbl(tags = tr)),
    softplus = list(beta = p_dbl(tags = tr), threshold = p_dbl(tags = tr)),
    softshrink = list(lambd = p_dbl(lower = 0, tags = tr)), hardshrink = list(lambd = p_dbl(lower = 0, tags = tr)),
    threshold = list(threshold = p_dbl(tags = req), value = p_dbl(tags = req)),
    prelu = list(num_parameters = p_int(lower = 1L, tags = tr), init = p_dbl(tags = tr)),
    rrelu = list(lower = p_dbl(tags = tr), upper = p_dbl(tags = tr))
  )
  for (fn in activation_ops()) {
    layers[[fn]] <- list(local({
      f <- fn
      function(nodes, pv, id) do.call(ember_activation, c(list(nodes[[1L]], f), pv, list(id = id)))
    }), activation_params[[fn]] %||% list())
  }
  layers
}

# An R6 generator per layer key (the dictionary of PipeOps constructs by generator).
layer_pipeop_class <- function(key, entry) {
  force(key)
  force(entry)
  is_merge <- isTRUE(entry$merge)
  R6::R6Class(paste0("PipeOpEmber_", key),
    inherit = PipeOpEmberLayer,
    public = list(
      initialize = function(id = paste0("ember_", key), param_vals = list(), innum = 0L) {
        params <- entry[[2L]]
        if (is_merge) {
          checkmate::assert_int(innum, lower = 0L)
        } else {
          innum <- 1L
        }
        super$initialize(id, build = entry[[1L]], param_set = do.call(paradox::ps, params), param_vals = param_vals,
          innum = innum)
      }
    )
  )
}

#' @export
PipeOpEmberBlock <- R6::R6Class("PipeOpEmberBlock",
  inherit = mlr3pipelines::PipeOp,
  public = list(
    # @description Creates a block PipeOp repeating the Graph `block`.
    initialize = function(block, id = "ember_block", param_vals = list()) {
      private$.block <- mlr3pipelines::as_graph(block, clone = TRUE)
      # Every input channel of the block receives the block's input (a residual block reads it twice).
      if (nrow(private$.block$output) != 1L) {
        stop(sprintf("the block of PipeOp '%s' must have one output channel; it has %d", id, nrow(private$.block$output)),
          call. = FALSE)
      }
      private$.param_set_base <- paradox::ps(
        n_blocks = paradox::p_int(lower = 0L, tags = c("train", "required")),
        shared = paradox::p_lgl(init = FALSE, tags = c("train", "required"))
      )
      channels <- ember_channels()
      super$initialize(id = id, param_set = alist(private$.param_set_base, private$.block$param_set),
        param_vals = param_vals,
        input = channels$input, output = channels$output, packages = "mlr3ember", tags = "ember")
    }
  ),
  active = list(
    # @field block The repeated Graph.
    block = function(rhs) {
      if (!missing(rhs)) stop("block is read-only", call. = FALSE)
      private$.block
    }
  ),
  private = list(
    .block = NULL,
    .param_set_base = NULL,
    .train = function(inputs) {
      check_descriptors(inputs, self$id)
      md <- inputs[[1L]]
      pv <- private$.param_set_base$get_values()
      self$state <- list()
      if (pv$n_blocks == 0L) return(list(md))
      block <- private$.block
      body <- function(x) {
        inner <- md
        inner$node <- x
        out <- block$clone(deep = TRUE)$train(inner, single_input = TRUE)
        if (length(out) != 1L || !inherits(out[[1L]], "EmberModelDescriptor")) {
          stop(sprintf("the block of PipeOp '%s' must end in one Ember layer PipeOp", self$id), call. = FALSE)
        }
        out[[1L]]$node
      }
      md$node <- with_pipeop_context(self$id, ember_repeat(md$node, pv$n_blocks, body, shared = pv$shared, id = layer_id(self$id)))
      list(md)
    },
    .predict = function(inputs) inputs,
    .additional_phash_input = function() private$.block$phash,
    deep_clone = function(name, value) {
      if (name == ".block") return(value$clone(deep = TRUE))
      if (name == ".param_set_base") return(value$clone(deep = TRUE))
      super$deep_clone(name, value)
    }
  )
)

#' @export
PipeOpEmberConfig <- R6::R6Class("PipeOpEmberConfig",
  inherit = mlr3pipelines::PipeOp,
  public = list(
    # @description Creates a PipeOp that sets the descriptor's `field` to its parameter values,
    # renamed for the learners by `prefix` (e.g. "opt.").
    initialize = function(id, field, param_set, prefix, keep = character(0), param_vals = list()) {
      private$.field <- field
      private$.prefix <- prefix
      private$.keep <- keep
      channels <- ember_channels()
      super$initialize(id = id, param_set = param_set, param_vals = param_vals,
        input = channels$input, output = channels$output, packages = "mlr3ember", tags = "ember")
    }
  ),
  private = list(
    .field = NULL,
    .prefix = NULL,
    .keep = NULL,
    .train = function(inputs) {
      check_descriptors(inputs, self$id)
      md <- inputs[[1L]]
      pv <- self$param_set$get_values(tags = "train")
      renamed <- ifelse(names(pv) %in% private$.keep, names(pv), paste0(private$.prefix, names(pv)))
      md[[private$.field]] <- stats::setNames(pv, renamed)
      self$state <- list()
      list(md)
    },
    .predict = function(inputs) inputs
  )
)

PipeOpEmberOptimizer <- R6::R6Class("PipeOpEmberOptimizer",
  inherit = PipeOpEmberConfig,
  public = list(
    initialize = function(id = "ember_optimizer", param_vals = list()) {
      super$initialize(id, "optimizer", do.call(paradox::ps, params_optimizer(prefix = "")), "opt.", keep = "optimizer",
        param_vals = param_vals)
    }
  )
)

PipeOpEmberLoss <- R6::R6Class("PipeOpEmberLoss",
  inherit = PipeOpEmberConfig,
  public = list(
    initialize = function(id = "ember_loss", param_vals = list()) {
      super$initialize(id, "loss", do.call(paradox::ps, params_loss(NULL, prefix = "")), "loss.", keep = "loss",
        param_vals = param_vals)
    }
  )
)

PipeOpEmberCallbacks <- R6::R6Class("PipeOpEmberCallbacks",
  inherit = PipeOpEmberConfig,
  public = list(
    # @description Creates the PipeOp; `callbacks` are ember_callback()s whose parameters become
    # `<id>.<name>`.
    initialize = function(id = "ember_callbacks", param_vals = list(), callbacks = list()) {
      private$.callbacks <- normalize_callbacks(callbacks)
      ps <- do.call(paradox::ps, params_callbacks(prefix = ""))
      sets <- Filter(function(cb) !is.null(cb$param_set), private$.callbacks)
      if (length(sets)) {
        ps <- paradox::ps_union(c(list(ps), stats::setNames(lapply(sets, function(cb) cb$param_set$clone(deep = TRUE)),
          vapply(sets, `[[`, "", "id"))))
      }
      super$initialize(id, "callbacks", ps, "cb.", param_vals = param_vals)
      for (cb in private$.callbacks) {
        if (length(cb$params)) self$param_set$set_values(.values = stats::setNames(cb$params, paste0(cb$id, ".", names(cb$params))))
      }
    }
  ),
  private = list(
    .callbacks = list(),
    .train = function(inputs) {
      out <- super$.train(inputs)
      out[[1L]]$callbacks$.objects <- private$.callbacks
      out
    }
  )
)

#' @export
PipeOpEmberModel <- R6::R6Class("PipeOpEmberModel",
  inherit = mlr3pipelines::PipeOpLearner,
  public = list(
    # @description Creates the model PipeOp for `task_type` ("classif" or "regr").
    initialize = function(task_type, id = paste0("ember_model_", task_type), param_vals = list()) {
      learner <- if (task_type == "classif") LearnerClassifEmberModel$new() else LearnerRegrEmberModel$new()
      super$initialize(learner, id = id, param_vals = param_vals)
      self$input <- data.table::data.table(name = "input", train = "EmberModelDescriptor",
        predict = if (task_type == "classif") "TaskClassif" else "TaskRegr")
    }
  ),
  private = list(
    .train = function(inputs) {
      check_descriptors(inputs, self$id)
      md <- inputs[[1L]]
      lp <- get_r6_private(private$.learner)
      lp$.graph_network <- with_pipeop_context(self$id, ember_network(md$node))
      lp$.graph_config <- md[c("optimizer", "loss", "callbacks")]
      on.exit({
        lp$.graph_network <- NULL
        lp$.graph_config <- NULL
      }, add = TRUE)
      super$.train(list(md$task))
    }
  )
)

get_r6_private <- function(x) x$.__enclos_env__$private

PipeOpEmberModelClassif <- R6::R6Class("PipeOpEmberModelClassif",
  inherit = PipeOpEmberModel,
  public = list(
    initialize = function(id = "ember_model_classif", param_vals = list()) super$initialize("classif", id, param_vals)
  )
)

PipeOpEmberModelRegr <- R6::R6Class("PipeOpEmberModelRegr",
  inherit = PipeOpEmberModel,
  public = list(
    initialize = function(id = "ember_model_regr", param_vals = list()) super$initialize("regr", id, param_vals)
  )
)

# The PipeOps registered in mlr3pipelines::mlr_pipeops, by key.
ember_pipeops <- function() {
  layers <- layer_pipeop_table()
  c(
    list(ember_ingress_num = PipeOpEmberIngressNum, ember_ingress_categ = PipeOpEmberIngressCateg,
      ember_ingress_tensor = PipeOpEmberIngressTensor, ember_block = PipeOpEmberBlock,
      ember_optimizer = PipeOpEmberOptimizer, ember_loss = PipeOpEmberLoss, ember_callbacks = PipeOpEmberCallbacks,
      ember_model_classif = PipeOpEmberModelClassif, ember_model_regr = PipeOpEmberModelRegr),
    stats::setNames(lapply(names(layers), function(k) layer_pipeop_class(k, layers[[k]])), paste0("ember_", names(layers)))
  )
}

register_mlr3pipelines <- function() {
  reflections <- utils::getFromNamespace("mlr_reflections", ns = "mlr3")
  reflections$pipeops$valid_tags <- unique(c(reflections$pipeops$valid_tags, "ember"))
  dictionary <- utils::getFromNamespace("mlr_pipeops", ns = "mlr3pipelines")
  pipeops <- ember_pipeops()
  for (key in names(pipeops)) {
    if (key == "ember_block") {
      dictionary$add(key, pipeops[[key]], metainf = list(block = mlr3pipelines::as_graph(mlr3pipelines::po("nop"))))
    } else {
      dictionary$add(key, pipeops[[key]])
    }
  }
  graphs <- utils::getFromNamespace("mlr_graphs", ns = "mlr3pipelines")
  graphs$add("ember_mlp", ember_ppl_mlp)
  graphs$add("ember_tab_resnet", ember_ppl_tab_resnet)
  invisible(NULL)
}

# Automatic ids of ember_nn(): a counter per op in the session.
nn_counters <- new.env(parent = emptyenv())

#' Make a network PipeOp by its op's name
#'
#' The shorthand of 'mlr3torch''s `nn()`: `ember_nn("linear", out_features = 20)` is
#' `po("ember_linear", id = "linear_1", out_features = 20)`, with ids counting up per op in the
#' session (`linear_1`, `linear_2` ...), so that graphs written with it need no ids.
#'
#' @param .key (`character(1)`)\cr The PipeOp's key without `"ember_"`, e.g. `"linear"`,
#'   `"relu"`, `"ingress_num"`, `"block"`, `"model_classif"`.
#' @param ... Parameter values and construction arguments of the PipeOp.
#' @param .id (`character(1)` or `NULL`)\cr The PipeOp's id; `NULL` counts one up.
#' @return A `PipeOp`.
#' @seealso [mlr_pipeops_ember]
#' @export
#' @examplesIf requireNamespace("mlr3pipelines", quietly = TRUE)
#' library(mlr3pipelines)
#' graph <- ember_nn("ingress_num") %>>% ember_nn("linear", out_features = 16) %>>%
#'   ember_nn("relu") %>>% ember_nn("linear", out_features = 16) %>>% ember_nn("head") %>>%
#'   ember_nn("model_classif", epochs = 10, batch_size = 16)
#' graph$ids()
#' mlr3::as_learner(graph)$train(mlr3::tsk("iris"))
ember_nn <- function(.key, ..., .id = NULL) {
  if (!requireNamespace("mlr3pipelines", quietly = TRUE)) {
    stop("ember_nn() needs the package 'mlr3pipelines'", call. = FALSE)
  }
  if (!checkmate::test_string(.key, min.chars = 1L)) {
    ember_abort("'.key' must be the name of an Ember PipeOp without 'ember_', e.g. \"linear\"", argument = ".key",
      expected = "a string", got = deparse_short(.key))
  }
  key <- paste0("ember_", .key)
  if (!(key %in% mlr3pipelines::mlr_pipeops$keys())) {
    ember_abort(sprintf("'%s' is not an Ember PipeOp; known: %s", .key,
      paste(sub("^ember_", "", grep("^ember_", mlr3pipelines::mlr_pipeops$keys(), value = TRUE)), collapse = ", ")),
      argument = ".key", expected = "an Ember PipeOp's name", got = .key)
  }
  if (is.null(.id)) {
    k <- (nn_counters[[.key]] %||% 0L) + 1L
    nn_counters[[.key]] <- k
    .id <- paste0(.key, "_", k)
  }
  mlr3pipelines::po(key, id = .id, ...)
}

#' @title Ingress PipeOps: task features into a network graph
#' @name mlr_pipeops_ember_ingress
#' @description `po("ember_ingress_num")`, `po("ember_ingress_categ")` and
#'   `po("ember_ingress_tensor", shape = )` start a network graph: each reads exactly the features
#'   of the task that reaches it (numeric/integer/logical; factor/ordered; numeric pixel columns
#'   read as tensors of `shape`). See [mlr_pipeops_ember] for the whole family.
#' @format [R6::R6Class] generators inheriting from `mlr3pipelines::PipeOp`.
#' @seealso [mlr_pipeops_ember], [ember_input_num()]
#' @examplesIf requireNamespace("mlr3pipelines", quietly = TRUE)
#' library(mlr3pipelines)
#' task <- mlr3::tsk("german_credit")
#' ingress <- po("select", selector = selector_type("factor")) %>>% po("ember_ingress_categ")
#' md <- ingress$train(task)[[1L]]
#' md
NULL

#' @title Layer PipeOps: one per op of the network description
#' @name mlr_pipeops_ember_layers
#' @description `po("ember_linear")`, `po("ember_relu")` and the other activations,
#'   `po("ember_conv")`, `po("ember_merge_cat")`, `po("ember_fn")` ... add a layer to the network
#'   graph, with the op's parameters under PyTorch's names; the engine infers the input sizes. See
#'   [mlr_pipeops_ember] for the list.
#' @format [R6::R6Class] generators inheriting from `PipeOpEmberLayer`.
#' @seealso [mlr_pipeops_ember], [ember_network()], [ember_nn()]
#' @examplesIf requireNamespace("mlr3pipelines", quietly = TRUE)
#' library(mlr3pipelines)
#' po("ember_linear", out_features = 16)
#' po("ember_leaky_relu", negative_slope = 0.1)$param_set
#' grep("^ember_", mlr_pipeops$keys(), value = TRUE)
NULL

#' @title Repeated blocks in a network graph
#' @name mlr_pipeops_ember_block
#' @description `po("ember_block", block, n_blocks = , shared = )` repeats a Graph of layer
#'   PipeOps; its parameters carry the block graph's ids, so `n_blocks` and every layer inside are
#'   tunable. See section Blocks of [mlr_pipeops_ember].
#' @format An [R6::R6Class] generator inheriting from `mlr3pipelines::PipeOp`.
#' @seealso [mlr_pipeops_ember], [ember_repeat()]
#' @examplesIf requireNamespace("mlr3pipelines", quietly = TRUE)
#' library(mlr3pipelines)
#' block <- po("ember_linear", out_features = 8) %>>% po("ember_relu")
#' op <- po("ember_block", block, n_blocks = 3)
#' op$param_set$ids()
NULL

#' @title Optimizer, loss, callbacks and model PipeOps
#' @name mlr_pipeops_ember_model
#' @description `po("ember_optimizer")`, `po("ember_loss")` and `po("ember_callbacks")` configure
#'   training along the graph; `po("ember_model_classif")` and `po("ember_model_regr")` train the
#'   network with the Ember learners' training parameters and predict. See sections
#'   Configuration and Model of [mlr_pipeops_ember].
#' @format [R6::R6Class] generators inheriting from `mlr3pipelines::PipeOp` and
#'   `mlr3pipelines::PipeOpLearner`.
#' @seealso [mlr_pipeops_ember], [mlr_learners_ember]
#' @examplesIf requireNamespace("mlr3pipelines", quietly = TRUE)
#' library(mlr3pipelines)
#' graph <- po("ember_ingress_num") %>>% po("ember_head") %>>%
#'   po("ember_optimizer", optimizer = "sgd", lr = 0.05, momentum = 0.9) %>>%
#'   po("ember_loss", loss = "huber", delta = 0.5) %>>%
#'   po("ember_callbacks", lr_scheduler = "lr_step", lr_step.step_size = 5) %>>%
#'   po("ember_model_regr", epochs = 10, batch_size = 8)
#' glrn <- mlr3::as_learner(graph)
#' glrn$train(mlr3::tsk("mtcars"))
#' glrn$predict(mlr3::tsk("mtcars"))$score()
NULL
