# The ember_model object: an engine handle plus what R needs to encode data and decode outputs.

new_ember_model <- function(ptr, encoding, target, architecture, history) {
  info <- from_json(.Call(C_ember_model_info, ptr))
  model <- structure(list(
    ptr = ptr,
    encoding = encoding,
    target = target[c("type", "levels")],
    task = info$task,
    architecture = architecture,
    history = history,
    outputs = as.integer(info$outputs),
    prediction_columns = as.integer(info$prediction_columns),
    quantiles = model_quantiles(info),
    response_column = as.integer(info$response_column) + 1L,
    n_parameters = as.numeric(info$n_parameters),
    augment = model_augment(info$transforms)
  ), class = "ember_model")
  model$plan <- prediction_plan(model)
  model
}

# What predict() needs to encode a tabular model's columns in C (C_ember_predict_plan), resolved
# once when the model is made: the numeric columns (numeric, integer, logical; ordered factors
# with their levels) and the factor columns with their levels, in the encoding's order, which of
# the engine's inputs the network reads, and the output sizes. NULL for models whose inputs
# predict() encodes otherwise (images, tensor columns, inputs that name their columns, models
# without an R encoding). The plan keeps the encoding it was made from: predict() uses it only
# while the model's encoding is that very object.
prediction_plan <- function(model) {
  enc <- model$encoding
  if (!identical(enc$kind, "tabular") || !is.null(enc$routes) || !is.null(enc$inputs$image)) return(NULL)
  types <- vapply(enc$columns, `[[`, "", "type")
  if (!length(types) || any(types == "tensor")) return(NULL)
  num <- enc$columns[types != "factor"]
  categ <- enc$columns[types == "factor"]
  list(
    encoding = enc,
    num_names = vapply(num, `[[`, "", "name"),
    num_levels = lapply(num, function(cl) if (cl$type == "ordered") cl$levels),
    cat_names = vapply(categ, `[[`, "", "name"),
    cat_levels = lapply(categ, `[[`, "levels"),
    add_num = length(num) > 0L && (is.null(enc$inputs) || isTRUE(enc$inputs$num)),
    add_categ = length(categ) > 0L && (is.null(enc$inputs) || isTRUE(enc$inputs$categ)),
    positional = if (isTRUE(enc$positional)) vapply(enc$columns, `[[`, "", "name"),
    outputs = model$outputs,
    prediction_columns = model$prediction_columns,
    types = c("response", "logits", if (model$task %in% c("binary", "multiclass", "multilabel")) "prob",
      if (model$task == "quantile_regression") "quantiles")
  )
}

# The quantile levels of a quantile regression (NULL for other models), as given: the engine keeps
# them as 32-bit floats, whose 7 significant digits are R's levels.
model_quantiles <- function(info) {
  q <- as.double(unlist(info$quantiles))
  if (length(q)) signif(q, 7L) else NULL
}

# The model's image transforms by input, as ember_transform() lists (NULL without).
model_augment <- function(transforms) {
  if (!length(transforms)) return(NULL)
  lapply(transforms, function(t) lapply(t$transforms$transforms, function(one) structure(one, class = "ember_transform")))
}

# Rebuilds an ember_model around a handle read from bytes or a file: the R encoding comes from the
# model's host metadata; a model written from Swift or C has none and takes its inputs as arrays.
model_from_handle <- function(ptr) {
  info <- from_json(.Call(C_ember_model_info, ptr))
  host <- info$host
  history <- records_to_history(info$history)
  if (!is.null(host[["mlr3ember.encoding"]])) {
    parts <- encoding_from_json(host[["mlr3ember.encoding"]])
    return(new_ember_model(ptr, parts$encoding, parts$target, parts$architecture, history))
  }
  classes <- as.character(info$class_names)
  k <- as.integer(info$prediction_columns)
  target <- if (info$task %in% c("regression", "quantile_regression")) list(type = "numeric", levels = NULL) else
    list(type = if (info$task == "multilabel") "multilabel" else "factor",
      levels = if (length(classes)) classes else as.character(seq_len(k)))
  inputs <- lapply(info$inputs, function(i) list(name = i$name, kind = i$kind))
  new_ember_model(ptr, encoding_from_inputs(inputs), target, new_architecture("network", list()), history)
}

check_model <- function(model, argument = "object") {
  if (!inherits(model, "ember_model")) {
    ember_abort(sprintf("'%s' must be an ember_model (from ember_fit() or ember_load())", argument), argument = argument,
      expected = "an ember_model", got = class(model)[1L])
  }
  state <- .Call(C_ember_handle_state, model$ptr)
  if (state == 1L) {
    ember_abort(sprintf("'%s' holds a stale Ember handle: the model was saved with saveRDS() or sent to another process without ember_serialize() (or mlr3's $marshal()); use ember_save()/ember_load() or ember_serialize()/ember_unserialize()",
      argument), kind = "stale_handle", argument = argument, extra_class = "ember_error_state")
  }
  if (state == 2L) {
    ember_abort(sprintf("'%s' was created in another process (e.g. before a fork): engine handles do not survive a fork; serialize the model with ember_serialize() to move it between processes",
      argument), kind = "stale_handle", argument = argument, extra_class = "ember_error_state")
  }
  invisible(model)
}

#' Predict with an Ember model
#'
#' @param object (`ember_model`)\cr A model from [ember_fit()] or [ember_load()].
#' @param newdata (`data.frame`, `matrix` or `array`)\cr Features with the training columns
#'   (matched by name; extra columns are ignored), or images of the training shape. For a model
#'   written from Swift or C, a named list with one array per network input.
#' @param type (`character(1)`)\cr `"response"`: class labels (a factor) or numeric values;
#'   `"prob"`: a matrix of class probabilities with one column per class; `"logits"`: the raw
#'   network outputs (one column for binary and regression models, standardised for regression);
#'   `"quantiles"` (quantile regressions, `loss = "quantile"` in [ember_fit()]): a matrix with one
#'   column per quantile level, named `q0.1`, `q0.5` ... as in 'mlr3'.
#'
#'   Quantile regressions: the quantiles of each row are sorted, so that they never cross (the
#'   network may output them in another order; sorting keeps the values and orders them by level);
#'   `"response"` is the quantile at level 0.5 when it is one of the levels, else the middle
#'   level (the lower of the two middle ones for an even number of levels).
#'
#'   Multilabel models (a logical matrix or data.frame as `y`): `"prob"` is a matrix of the
#'   labels' probabilities with one column per label, `"response"` a logical matrix (`TRUE` where
#'   the probability is at least 0.5), `"logits"` one column per label.
#' @param batch_size (`integer(1)`)\cr Rows per engine batch.
#' @param num_threads (`integer(1)`)\cr Threads used while predicting.
#' @param ... Not used.
#' @return A factor, a numeric vector, a logical matrix (multilabel) or a matrix. The engine
#'   predicts batch by batch: Ctrl-C stops it at the next batch with an error of class
#'   `ember_error_interrupted` (the model is unchanged), and a prediction needing more memory than
#'   the machine has is refused first with an error of class `ember_error_memory`.
#' @export
#' @examples
#' set.seed(2)
#' model <- ember_fit(mtcars[, -1], mtcars$mpg, epochs = 50, batch_size = 8, lr = 0.01)
#' predict(model, head(mtcars))
predict.ember_model <- function(object, newdata, type = c("response", "prob", "logits", "quantiles"), batch_size = 4096L,
                                num_threads = 1L, ...) {
  # Tabular data as the model was trained on: checked, encoded and predicted in one call, which
  # returns NULL for anything else (that the general path below then reports).
  plan <- object$plan
  if (!is.null(plan) && identical(plan$encoding, object$encoding)) {
    fast <- if (missing(type)) "response" else if (is.character(type) && length(type) == 1L) type else ""
    if (fast %in% plan$types) {
      out <- .Call(C_ember_predict_plan, object$ptr, plan, newdata, fast == "logits", batch_size, num_threads)
      if (!is.null(out)) return(decode_predictions(object, out, fast))
    }
  }
  check_model(object)
  type <- match.arg(type)
  batch_size <- check_count(batch_size, "batch_size")
  num_threads <- check_count(num_threads, "num_threads")
  quantile <- object$task == "quantile_regression"
  if (type == "prob" && object$task %in% c("regression", "quantile_regression")) {
    ember_abort(sprintf("type = \"prob\" needs a classification model; this is a %s model", sub("_", " ", object$task)),
      argument = "type", expected = if (quantile) "\"response\", \"quantiles\" or \"logits\"" else "\"response\" or \"logits\"",
      got = "\"prob\"")
  }
  if (type == "quantiles" && !quantile) {
    ember_abort(sprintf("type = \"quantiles\" needs a quantile regression (ember_fit(loss = \"quantile\")); this is a %s model",
      object$task), argument = "type", expected = "\"response\", \"prob\" or \"logits\"", got = "\"quantiles\"")
  }
  inputs <- ember_encode(object$encoding, newdata, argument = "newdata",
    unseen = unseen_policy(object$architecture, object$encoding))
  n <- inputs_rows(inputs)
  cols <- if (type == "logits") object$outputs else object$prediction_columns
  if (n == 0L) {
    out <- matrix(numeric(0), nrow = 0L, ncol = cols)
  } else {
    old <- ember_set_threads(num_threads)
    on.exit(ember_set_threads(old), add = TRUE)
    data <- engine_dataset(inputs, argument = "newdata")
    on.exit(.Call(C_ember_release, data), add = TRUE)
    out <- .Call(C_ember_model_predict, object$ptr, data, batch_size, type == "logits", cols)
  }
  decode_predictions(object, out, type)
}

# What predict() returns of the engine's output matrix `out` for `type`.
decode_predictions <- function(object, out, type) {
  # Class labels: factor(levels[max.col(out, ties.method = "first")], levels = levels), without
  # the strings.
  if (type == "response" && (object$task == "binary" || object$task == "multiclass")) {
    return(.Call(C_ember_class_factor, out, object$target$levels))
  }
  quantile <- object$task == "quantile_regression"
  if (type == "logits") {
    if (object$task %in% c("multiclass", "multilabel")) colnames(out) <- object$target$levels
    if (quantile) colnames(out) <- sprintf("q%g", object$quantiles)
    return(out)
  }
  if (quantile) {
    if (type == "response") return(out[, object$response_column])
    colnames(out) <- sprintf("q%g", object$quantiles)
    return(out)
  }
  if (object$task == "regression") return(out[, 1L])
  colnames(out) <- object$target$levels
  if (type == "prob") return(out)
  out >= 0.5  # multilabel
}

#' @export
print.ember_model <- function(x, ...) {
  what <- switch(x$task, regression = "regression", binary = "binary classification",
    multiclass = sprintf("classification (%d classes)", length(x$target$levels)),
    quantile_regression = sprintf("quantile regression (levels %s)", paste(x$quantiles, collapse = ", ")),
    multilabel = sprintf("multilabel classification (%d labels)", length(x$target$levels)))
  cat(sprintf("<ember_model> %s for %s\n", x$architecture$name, what))
  if (identical(x$encoding$kind, "tabular")) {
    types <- table(vapply(x$encoding$columns, `[[`, "", "type"))
    cat(sprintf("  features: %d (%s)\n", length(x$encoding$columns), paste(names(types), types, sep = ": ", collapse = ", ")))
  } else if (identical(x$encoding$kind, "image")) {
    cat(sprintf("  images: [%s]\n", paste(x$encoding$shape, collapse = ", ")))
  }
  cat(sprintf("  parameters: %s\n", format(x$n_parameters, big.mark = ",")))
  n <- nrow(x$history)
  if (n > 0L) {
    last <- x$history[n, ]
    cat(sprintf("  trained %d epochs; final training loss %.4g%s\n", n, last$train_loss,
      if (!is.na(last$valid_loss)) sprintf(", validation loss %.4g", last$valid_loss) else ""))
  }
  if (!isTRUE(.Call(C_ember_is_valid, x$ptr))) cat("  (engine handle not valid in this process: use ember_unserialize() or ember_load())\n")
  invisible(x)
}

#' Summaries of models and architectures
#'
#' `summary()` of a model, or of an architecture for a task or data set (the network is built, not
#' trained), lists its layers node by node: output shape per sample, parameters (trainable and
#' frozen), forward floating-point operations (FLOPs) per sample and activation memory; then the
#' totals and the memory a batch takes. FLOPs count two per multiply-add of the weight products
#' (linear maps, convolutions, attention's projections), four per query-key pair and feature of
#' attention and one per output element of other ops: an estimate of the arithmetic, not of time.
#' Memory per batch: the forward pass keeps every layer's float32 output (`batch_size` × the
#' activations per sample); training adds as much again for their gradients, plus four copies of
#' the parameters (weights, gradients and Adam's two moments).
#'
#' @param object (`ember_model` or `ember_architecture`)\cr A model, or an architecture such as
#'   [ember_mlp()] or [ember_cnn()].
#' @param batch_size (`integer(1)`)\cr The batch size the memory estimate is for.
#' @param task (`mlr3::Task` or `NULL`)\cr For an architecture: the task whose features and target
#'   size the network (or give `x` and `y`).
#' @param x,y For an architecture without `task`: the features and target as [ember_fit()]'s.
#' @param ... Not used.
#' @return A `summary.ember_model` object: a list with `layers` (a data frame: `id`, `op`,
#'   `output_shape`, `trainable`, `frozen`, `flops`, `activation_bytes`), `parameters` (as
#'   [ember_parameters()]), `totals` and `memory` (bytes per batch for prediction and training);
#'   `print()` shows them.
#' @name ember_summary
#' @export
#' @examples
#' model <- ember_fit(iris[, 1:4], iris$Species, epochs = 2)
#' summary(model)
#' # An architecture before training, sized for a data set:
#' summary(ember_cnn("lenet"), x = array(0, c(2, 1, 28, 28)), y = factor(c("a", "b")), batch_size = 128)
summary.ember_model <- function(object, batch_size = 32L, ...) {
  check_model(object)
  batch_size <- check_count(batch_size, "batch_size")
  network_summary(object$ptr, batch_size, model = object, parameters = ember_parameters(object))
}

#' @rdname ember_summary
#' @export
summary.ember_architecture <- function(object, task = NULL, x = NULL, y = NULL, batch_size = 32L, ...) {
  batch_size <- check_count(batch_size, "batch_size")
  if (!is.null(task)) {
    if (!inherits(task, "Task")) ember_abort("'task' must be an mlr3 Task", argument = "task", expected = "an mlr3 Task", got = class(task)[1L])
    classes <- if (inherits(task, "TaskClassif")) task$class_names
    x <- task$data(cols = task$feature_names)
    y <- task_target(task, classes)
  }
  if (is.null(x) || is.null(y)) {
    ember_abort("a summary of an architecture needs the data it is for: 'task', or 'x' and 'y'", argument = "task",
      expected = "a task, or x and y")
  }
  a <- fit_arguments(object, epochs = 1L, batch_size = batch_size, optimizer = "adam", patience = 0L, eval_freq = 1L,
    num_threads = 1L, batch_size_predict = batch_size, standardize = TRUE, shuffle = FALSE, drop_last = FALSE,
    progress = FALSE, restore_best_weights = FALSE, min_delta = 0, seed = 1)
  data <- suppressWarnings(fit_data(x, y, a$architecture, init = NULL, init_resume = FALSE, loss = NULL, loss_args = list(),
    validate = NULL, seed = 1))
  ptr <- fit_model(data, loss = NULL, loss_args = list(), standardize = TRUE, augment = NULL, init = NULL,
    init_strict = FALSE)$ptr
  on.exit(.Call(C_ember_release, ptr), add = TRUE)
  network_summary(ptr, batch_size, architecture = object)
}

# The layers, totals and memory of a built network (a model's pointer).
network_summary <- function(ptr, batch_size, model = NULL, architecture = NULL, parameters = NULL) {
  s <- jsonlite::fromJSON(.Call(C_ember_model_summary, ptr), simplifyVector = FALSE)
  layers <- data.frame(
    id = vapply(s$nodes, function(n) n$id, ""),
    op = vapply(s$nodes, function(n) n$op, ""),
    output_shape = vapply(s$nodes, function(n) paste(unlist(n$output_shape), collapse = " x "), ""),
    trainable = vapply(s$nodes, function(n) as.numeric(n$trainable), 0),
    frozen = vapply(s$nodes, function(n) as.numeric(n$frozen), 0),
    flops = vapply(s$nodes, function(n) as.numeric(n$flops), 0),
    activation_bytes = vapply(s$nodes, function(n) as.numeric(n$activation_bytes), 0),
    stringsAsFactors = FALSE)
  totals <- list(trainable = sum(layers$trainable), frozen = sum(layers$frozen), flops = sum(layers$flops),
    activation_bytes = sum(layers$activation_bytes))
  params <- totals$trainable + totals$frozen
  memory <- c(predict = batch_size * totals$activation_bytes + 4 * params,
    train = 2 * batch_size * totals$activation_bytes + 16 * params)
  inputs <- vapply(s$inputs, function(i) sprintf("%s [%s]", i$name, paste(unlist(i$shape), collapse = " x ")), "")
  structure(list(model = model, architecture = architecture, inputs = inputs, layers = layers, parameters = parameters,
    totals = totals, batch_size = batch_size, memory = memory), class = "summary.ember_model")
}

#' @export
print.summary.ember_model <- function(x, ...) {
  if (!is.null(x$model)) print(x$model) else cat(sprintf("<ember_architecture> %s (not trained)\n", x$architecture$name))
  cat(sprintf("  inputs: %s\n\nLayers (per sample):\n", paste(x$inputs, collapse = ", ")))
  l <- x$layers
  shown <- data.frame(node = l$id, op = l$op, output = l$output_shape, parameters = format(l$trainable + l$frozen, big.mark = ","),
    frozen = ifelse(l$frozen > 0, format(l$frozen, big.mark = ","), ""), FLOPs = format_count(l$flops),
    activations = format_bytes(l$activation_bytes))
  print(shown, row.names = FALSE, right = FALSE)
  t <- x$totals
  cat(sprintf("\nParameters: %s trainable, %s frozen (%s)\n", format(t$trainable, big.mark = ","),
    format(t$frozen, big.mark = ","), format_bytes(4 * (t$trainable + t$frozen))))
  cat(sprintf("Forward FLOPs per sample: %s\n", format_count(t$flops)))
  cat(sprintf("Memory per batch of %d: prediction %s, training %s (estimate)\n", x$batch_size,
    format_bytes(x$memory[["predict"]]), format_bytes(x$memory[["train"]])))
  if (!is.null(x$parameters)) {
    cat("\nParameters:\n")
    p <- x$parameters
    p$shape <- vapply(p$shape, paste, "", collapse = " x ")
    print(p, row.names = FALSE)
  }
  invisible(x)
}

format_count <- function(v) {
  vapply(v, function(n) {
    if (n >= 1e9) sprintf("%.2fG", n / 1e9) else if (n >= 1e6) sprintf("%.2fM", n / 1e6) else if (n >= 1e3) sprintf("%.1fk", n / 1e3) else
      format(n)
  }, "")
}

format_bytes <- function(v) {
  vapply(v, function(b) {
    if (b >= 2^30) sprintf("%.2f GiB", b / 2^30) else if (b >= 2^20) sprintf("%.1f MiB", b / 2^20) else if (b >= 2^10) sprintf("%.1f KiB", b / 2^10) else
      sprintf("%d B", as.integer(b))
  }, "")
}
