#' Save and load Ember models
#'
#' `ember_save()` writes the model file: the safetensors layout with the weights under their
#' PyTorch-style names and, in its metadata, the network description, the task, the class names,
#' the input scaling, the training history, the engine RNG state and the R encoding of the
#' features (column names, types, factor levels), so that the file is self-describing: Python's
#' `safetensors` reads its tensors, the Ember engine loads it from Swift (`Model(contentsOf:)`)
#' and C (`ember_model_load()`), and `ember_load()` restores a model that predicts on data frames
#' as before. `ember_load()` also reads model files written from Swift or C; such a model takes
#' its inputs as arrays (see [predict.ember_model()]).
#'
#' `ember_serialize()` and `ember_unserialize()` do the same through a raw vector, for
#' `saveRDS()` and for sending a model to another process (an `ember_model` holds a pointer into
#' the engine, which neither can carry). With 'mlr3', learners do this through
#' `$marshal()`/`$unmarshal()`.
#'
#' @param model (`ember_model`)\cr A model.
#' @param path (`character(1)`)\cr File path (conventionally ending in `.safetensors`).
#' @param x (`ember_model_serialized`)\cr The result of `ember_serialize()`.
#' @return `ember_save()`: `path`, invisibly. `ember_load()`, `ember_unserialize()`: an
#'   `ember_model`. `ember_serialize()`: an object of class `ember_model_serialized`.
#' @export
#' @examples
#' set.seed(1)
#' model <- ember_fit(iris[, 1:4], iris$Species, epochs = 5)
#' file <- tempfile(fileext = ".safetensors")
#' ember_save(model, file)
#' model2 <- ember_load(file)
#' all.equal(predict(model, iris, type = "prob"), predict(model2, iris, type = "prob"))
#'
#' rds <- tempfile(fileext = ".rds")
#' saveRDS(ember_serialize(model), rds)
#' model3 <- ember_unserialize(readRDS(rds))
#' identical(predict(model, iris), predict(model3, iris))
ember_save <- function(model, path) {
  check_model(model, "model")
  check_path(path)
  .Call(C_ember_model_save, model$ptr, path.expand(path))
  invisible(path)
}

#' @rdname ember_save
#' @export
ember_load <- function(path) {
  check_path(path)
  if (!file.exists(path)) {
    ember_abort(sprintf("'path' names no file: '%s'", path), argument = "path", expected = "an existing model file", got = path)
  }
  model_from_handle(.Call(C_ember_model_load, path.expand(path)))
}

check_path <- function(path) {
  if (!checkmate::test_string(path, min.chars = 1L)) {
    ember_abort("'path' must be a single file path", argument = "path", expected = "a file path", got = deparse_short(path))
  }
}

#' @rdname ember_save
#' @export
ember_serialize <- function(model) {
  check_model(model, "model")
  structure(list(bytes = .Call(C_ember_model_serialize, model$ptr), history = model$history, config = model$config,
    architecture = model$architecture), class = "ember_model_serialized")
}

#' @rdname ember_save
#' @export
ember_unserialize <- function(x) {
  if (!inherits(x, "ember_model_serialized") || !is.raw(x$bytes)) {
    ember_abort("'x' must be the result of ember_serialize()", argument = "x", expected = "an ember_model_serialized",
      got = class(x)[1L])
  }
  model <- model_from_handle(.Call(C_ember_model_deserialize, x$bytes))
  # The R-side history may hold measures computed in R, which the engine does not store; the R
  # architecture (e.g. a network's graph) is richer than what the model file records.
  if (!is.null(x$history)) model$history <- x$history
  if (!is.null(x$architecture)) model$architecture <- x$architecture
  model$config <- x$config
  model
}

#' @exportS3Method mlr3::marshal_model
marshal_model.ember_model <- function(model, inplace = FALSE, ...) {
  structure(list(marshaled = ember_serialize(model), packages = "mlr3ember"),
    class = c("ember_model_marshaled", "marshaled"))
}

#' @exportS3Method mlr3::unmarshal_model
unmarshal_model.ember_model_marshaled <- function(model, inplace = FALSE, ...) {
  ember_unserialize(model$marshaled)
}

# A copy of a model with its own engine handle (deep clones of learners); a model whose handle is
# not valid in this process is returned as it is.
copy_model <- function(model) {
  if (!isTRUE(.Call(C_ember_is_valid, model$ptr))) return(model)
  ember_unserialize(ember_serialize(model))
}

# testthat's expect_equal() compares with 'waldo', which would compare the engine handles by
# address: two models are the same when their weights, engine state and R parts are.
#' @exportS3Method waldo::compare_proxy
compare_proxy.ember_model <- function(x, path) {
  state <- if (isTRUE(.Call(C_ember_is_valid, x$ptr))) {
    info <- from_json(.Call(C_ember_model_info, x$ptr))
    list(weights = .Call(C_ember_model_snapshot, x$ptr), rng = .Call(C_ember_model_rng, x$ptr),
      info = info[setdiff(names(info), "history")])
  } else "not valid in this process"
  x$ptr <- state
  list(object = unclass(x), path = path)
}
