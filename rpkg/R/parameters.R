#' Parameters of an Ember model
#'
#' List, read and write a model's parameters (and buffers such as batch-norm running statistics)
#' by their PyTorch-style names, and freeze or unfreeze them by pattern for fine-tuning: a frozen
#' parameter is not updated by training.
#'
#' @param model (`ember_model`)\cr A model.
#' @param name (`character(1)`)\cr A parameter or buffer name, as listed by `ember_parameters()`.
#' @param value (`numeric`)\cr New values: an array of the parameter's shape (R's usual
#'   column-major order), or a vector in PyTorch's row-major order.
#' @param pattern (`character(1)`)\cr Names to match: `*` matches any run of characters, `?` one
#'   character, e.g. `"linear_0.*"` or `"blocks.*.norm.*"`.
#' @return `ember_parameters()`: a data.frame with `name`, `kind` (parameter or buffer), `shape`
#'   (a list column), `size` and `frozen`. `ember_get_parameter()`: an array. `ember_freeze()`,
#'   `ember_unfreeze()`: the number of parameters matched, invisibly.
#' @export
#' @examples
#' set.seed(1)
#' model <- ember_fit(iris[, 1:4], iris$Species, ember_mlp(neurons = 8), epochs = 2)
#' ember_parameters(model)
#' w <- ember_get_parameter(model, "linear_0.weight")
#' dim(w)  # 8 x 4, as in PyTorch
#' ember_set_parameter(model, "linear_0.weight", w * 0)
#' ember_freeze(model, "linear_0.*")
#' ember_parameters(model)$frozen
ember_parameters <- function(model) {
  check_model(model, "model")
  p <- from_json(.Call(C_ember_model_parameters, model$ptr))
  data.frame(
    name = vapply(p, `[[`, "", "name"),
    kind = vapply(p, `[[`, "", "kind"),
    shape = I(lapply(p, function(e) as.integer(e$shape))),
    size = vapply(p, function(e) prod(as.numeric(e$shape)), numeric(1)),
    frozen = vapply(p, function(e) isTRUE(e$frozen), logical(1)),
    stringsAsFactors = FALSE
  )
}

parameter_shape <- function(model, name) {
  checkmate::assert_string(name)
  p <- ember_parameters(model)
  i <- match(name, p$name)
  if (is.na(i)) {
    ember_abort(sprintf("the model has no parameter or buffer '%s'", name), argument = "name",
      expected = "a name from ember_parameters()", got = name)
  }
  p$shape[[i]]
}

#' @rdname ember_parameters
#' @export
ember_get_parameter <- function(model, name) {
  shape <- parameter_shape(model, name)
  values <- .Call(C_ember_model_get_parameter, model$ptr, name, prod(as.numeric(shape)))
  if (length(shape) <= 1L) return(values)
  aperm(array(values, dim = rev(shape)))
}

#' @rdname ember_parameters
#' @export
ember_set_parameter <- function(model, name, value) {
  shape <- parameter_shape(model, name)
  if (!is.numeric(value)) {
    ember_abort("'value' must be numeric", argument = "value", expected = "numbers", got = class(value)[1L])
  }
  if (!is.null(dim(value))) {
    if (!identical(as.integer(dim(value)), shape)) {
      ember_abort(sprintf("'value' has dimensions %s; '%s' has %s", paste(dim(value), collapse = " x "), name,
        paste(shape, collapse = " x ")), kind = "shape", argument = "value", expected = paste(shape, collapse = " x "),
        got = paste(dim(value), collapse = " x "))
    }
    value <- as.vector(aperm(value))
  }
  .Call(C_ember_model_set_parameter, model$ptr, name, as.double(value))
  invisible(model)
}

#' @rdname ember_parameters
#' @export
ember_freeze <- function(model, pattern) {
  check_model(model, "model")
  checkmate::assert_string(pattern)
  invisible(.Call(C_ember_model_freeze, model$ptr, pattern, TRUE))
}

#' @rdname ember_parameters
#' @export
ember_unfreeze <- function(model, pattern) {
  check_model(model, "model")
  checkmate::assert_string(pattern)
  invisible(.Call(C_ember_model_freeze, model$ptr, pattern, FALSE))
}

#' @rdname ember_parameters
#' @return `ember_get_weights()`: the weights (parameters and buffers) as safetensors bytes (a raw
#'   vector).
#' @export
ember_get_weights <- function(model) {
  check_model(model, "model")
  .Call(C_ember_model_snapshot, model$ptr)
}

#' @rdname ember_parameters
#' @param weights (`raw` or `character(1)`)\cr Safetensors bytes from `ember_get_weights()`, or
#'   the path of a safetensors file, e.g. a PyTorch `state_dict` saved with
#'   `safetensors.torch.save_file()` for a network with the same parameter names (fine-tuning).
#'   Integer buffers such as batch norm's `num_batches_tracked` are accepted.
#' @param strict (`logical(1)`)\cr Every parameter and buffer must be present, and nothing else.
#' @export
ember_set_weights <- function(model, weights, strict = TRUE) {
  check_model(model, "model")
  checkmate::assert_flag(strict)
  if (is.character(weights)) {
    check_path(weights)
    if (!file.exists(weights)) {
      ember_abort(sprintf("'weights' names no file: '%s'", weights), argument = "weights", expected = "a safetensors file",
        got = weights)
    }
    weights <- readBin(weights, "raw", file.size(weights))
  }
  if (!is.raw(weights)) {
    ember_abort("'weights' must be safetensors bytes (a raw vector) or a file path", argument = "weights",
      expected = "a raw vector or a path", got = class(weights)[1L])
  }
  .Call(C_ember_model_restore, model$ptr, weights, strict)
  invisible(model)
}
