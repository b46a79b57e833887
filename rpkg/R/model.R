# The ember_model object: an engine handle plus what R needs to encode data and decode outputs.

new_ember_model <- function(ptr, encoding, target, architecture, history) {
  info <- from_json(.Call(C_ember_model_info, ptr))
  structure(list(
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
  if (object$task == "multilabel") return(out >= 0.5)
  factor(object$target$levels[max.col(out, ties.method = "first")], levels = object$target$levels)
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

#' @export
summary.ember_model <- function(object, ...) {
  check_model(object)
  params <- ember_parameters(object)
  structure(list(model = object, parameters = params), class = "summary.ember_model")
}

#' @export
print.summary.ember_model <- function(x, ...) {
  print(x$model)
  cat("\nParameters:\n")
  p <- x$parameters
  p$shape <- vapply(p$shape, paste, "", collapse = " x ")
  print(p, row.names = FALSE)
  invisible(x)
}
