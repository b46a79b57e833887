#' Serialize an Ember model to bytes and back
#'
#' An `ember_model` holds a pointer into the engine, which `saveRDS()` and parallel workers
#' cannot carry. `ember_serialize()` turns it into a plain R object holding the model file bytes
#' (safetensors layout) and the R-side encoding; `ember_unserialize()` restores a working model.
#' With 'mlr3', learners do this through `$marshal()` / `$unmarshal()`.
#'
#' @param model (`ember_model`)\cr A fitted model.
#' @param x (`ember_model_serialized`)\cr The result of `ember_serialize()`.
#' @return `ember_serialize()`: an object of class `ember_model_serialized`;
#'   `ember_unserialize()`: an `ember_model`.
#' @export
#' @examples
#' set.seed(1)
#' model <- ember_fit(iris[, 1:4], iris$Species, epochs = 5)
#' file <- tempfile(fileext = ".rds")
#' saveRDS(ember_serialize(model), file)
#' model2 <- ember_unserialize(readRDS(file))
#' all.equal(predict(model, iris, type = "prob"), predict(model2, iris, type = "prob"))
ember_serialize <- function(model) {
  checkmate::assert_class(model, "ember_model")
  rest <- unclass(model)
  rest$ptr <- NULL
  structure(list(bytes = .Call(C_ember_serialize, model$ptr), rest = rest), class = "ember_model_serialized")
}

#' @rdname ember_serialize
#' @export
ember_unserialize <- function(x) {
  checkmate::assert_class(x, "ember_model_serialized")
  checkmate::assert_raw(x$bytes)
  model <- x$rest
  model$ptr <- .Call(C_ember_deserialize, x$bytes)
  structure(model, class = "ember_model")
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
