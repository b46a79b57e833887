ember_optimizers <- c(sgd = 0L, adam = 1L, adamw = 2L)

#' Fit an Ember multi-layer perceptron
#'
#' Trains an MLP on the Ember engine without needing 'mlr3': for each width in `neurons`,
#' Linear -> ReLU -> Dropout(`p`), then a linear head sized from the target (one logit for a
#' binary factor, one per level for a factor with more levels, one value for a numeric target).
#'
#' Features may be numeric, integer, logical, factor or ordered columns. Factors are one-hot
#' encoded (one column per level; a level unseen in training encodes as all zeros), ordered
#' factors enter as their integer codes, logicals as 0/1. Numeric, integer and ordered columns
#' are standardised inside the model with the training data's mean and standard deviation, and so
#' is a numeric target (predictions come back on the original scale); the scaling is stored in the
#' model. Losses: cross-entropy (multiclass), BCE with logits (binary; the logit is the first
#' level of `y`, the positive class in 'mlr3'), MSE (regression).
#'
#' Training runs one epoch per engine call, so R can be interrupted between epochs.
#'
#' @param x (`data.frame` or `matrix`)\cr Features.
#' @param y (`factor` or `numeric`)\cr Target, one value per row of `x`. A factor gives
#'   classification with its levels as classes (also levels absent from `y`).
#' @param neurons (`integer()`)\cr Widths of the hidden layers; `integer(0)` for none.
#' @param p (`numeric(1)`)\cr Dropout probability after each hidden layer, in \[0, 1).
#' @param epochs (`integer(1)`)\cr Number of passes over the data.
#' @param batch_size (`integer(1)`)\cr Rows per mini-batch.
#' @param optimizer (`character(1)`)\cr `"adam"`, `"adamw"` or `"sgd"` (PyTorch's update rules).
#' @param lr (`numeric(1)`)\cr Learning rate.
#' @param weight_decay (`numeric(1)`)\cr Weight decay; default 0, or 0.01 for `"adamw"`.
#' @param momentum (`numeric(1)`)\cr Momentum for `"sgd"`.
#' @param shuffle (`logical(1)`)\cr Visit rows in a new random order each epoch.
#' @param standardize (`logical(1)`)\cr Standardise numeric features (and a numeric target).
#' @param seed (`integer(1)` or `NULL`)\cr Seed of the engine RNG (weights, shuffling, dropout);
#'   `NULL` draws one from R's RNG, so `set.seed()` makes the fit reproducible.
#' @param num_threads (`integer(1)`)\cr Threads used while training.
#' @return An object of class `ember_model`, with `predict()` and `print()` methods; its
#'   `history` element holds the training loss per epoch.
#' @seealso [predict.ember_model()], `mlr3::lrn("classif.ember_mlp")` for the 'mlr3' learner.
#' @export
#' @examples
#' set.seed(1)
#' model <- ember_fit(iris[, 1:4], iris$Species, epochs = 20, batch_size = 16)
#' table(predict(model, iris[, 1:4]), iris$Species)
#' head(predict(model, iris[, 1:4], type = "prob"))
ember_fit <- function(x, y, neurons = 64L, p = 0, epochs = 30L, batch_size = 32L,
                      optimizer = c("adam", "adamw", "sgd"), lr = 1e-3, weight_decay = NULL,
                      momentum = 0, shuffle = TRUE, standardize = TRUE, seed = NULL, num_threads = 1L) {
  if (is.matrix(x)) x <- as.data.frame(x)
  checkmate::assert_data_frame(x, min.rows = 1L, min.cols = 1L)
  optimizer <- match.arg(optimizer)
  if (is.character(y)) stop("ember: 'y' is character; convert it to a factor for classification", call. = FALSE)
  if (is.factor(y)) {
    checkmate::assert_factor(y, len = nrow(x), any.missing = FALSE)
    if (nlevels(y) < 2L) stop("ember: a factor 'y' needs at least 2 levels", call. = FALSE)
  } else {
    checkmate::assert_numeric(y, len = nrow(x), any.missing = FALSE, finite = TRUE)
  }
  checkmate::assert_integerish(neurons, lower = 1L, upper = 1048576L, any.missing = FALSE)
  checkmate::assert_number(p, lower = 0, upper = 1)
  if (p >= 1) stop("ember: 'p' must be < 1", call. = FALSE)
  checkmate::assert_int(epochs, lower = 0L)
  checkmate::assert_int(batch_size, lower = 1L)
  checkmate::assert_number(lr, lower = 0, finite = TRUE)
  if (is.null(weight_decay)) weight_decay <- if (optimizer == "adamw") 0.01 else 0
  checkmate::assert_number(weight_decay, lower = 0, finite = TRUE)
  checkmate::assert_number(momentum, lower = 0, finite = TRUE)
  checkmate::assert_flag(shuffle)
  checkmate::assert_flag(standardize)
  if (is.null(seed)) seed <- sample.int(.Machine$integer.max, 1L)
  checkmate::assert_int(seed, lower = 0L)
  checkmate::assert_int(num_threads, lower = 1L, upper = 65L)

  old_threads <- ember_set_threads(num_threads)
  on.exit(ember_set_threads(old_threads), add = TRUE)

  encoder <- ember_encoder(x)
  xm <- ember_encode(encoder, x)
  if (is.factor(y)) {
    class_levels <- levels(y)
    k <- length(class_levels)
    task <- if (k == 2L) 1L else 2L
    # Binary: target 1 for the first level (mlr3's positive class), whose logit the head outputs.
    yv <- if (k == 2L) as.double(as.integer(y) == 1L) else as.double(as.integer(y) - 1L)
  } else {
    class_levels <- NULL
    k <- 0L
    task <- 0L
    yv <- as.double(y)
  }
  mask <- if (standardize) encoder$standardize else rep(FALSE, encoder$n_inputs)
  ptr <- .Call(C_ember_mlp_new, task, as.integer(max(k, 0L)), as.integer(encoder$n_inputs),
    as.integer(neurons), as.double(p), mask, standardize, as.double(seed))
  .Call(C_ember_set_training, ptr, as.integer(batch_size), shuffle, ember_optimizers[[optimizer]],
    as.double(lr), as.double(weight_decay), as.double(momentum), 0.9, 0.999, 1e-8)
  dataset <- .Call(C_ember_dataset_new, xm, yv)
  losses <- numeric(0)
  for (e in seq_len(epochs)) {
    losses <- c(losses, .Call(C_ember_fit, ptr, dataset, 1L))
  }
  structure(list(
    ptr = ptr,
    encoder = encoder,
    task_type = if (is.null(class_levels)) "regr" else "classif",
    class_levels = class_levels,
    history = data.frame(epoch = seq_along(losses), train_loss = losses),
    config = list(neurons = as.integer(neurons), p = p, epochs = epochs, batch_size = batch_size,
      optimizer = optimizer, lr = lr, weight_decay = weight_decay, momentum = momentum,
      shuffle = shuffle, standardize = standardize, seed = seed)
  ), class = "ember_model")
}

#' Predict with an Ember model
#'
#' @param object (`ember_model`)\cr A model from [ember_fit()].
#' @param newdata (`data.frame` or `matrix`)\cr Features, with the training columns (matched by
#'   name; extra columns are ignored).
#' @param type (`character(1)`)\cr `"response"`: class labels (a factor) or numeric values;
#'   `"prob"`: a matrix of class probabilities with one column per class (classification only).
#' @param num_threads (`integer(1)`)\cr Threads used while predicting.
#' @param ... Not used.
#' @return A factor, a numeric vector or a probability matrix.
#' @export
#' @examples
#' set.seed(2)
#' model <- ember_fit(mtcars[, -1], mtcars$mpg, epochs = 50, batch_size = 8)
#' predict(model, head(mtcars))
predict.ember_model <- function(object, newdata, type = c("response", "prob"), num_threads = 1L, ...) {
  type <- match.arg(type)
  checkmate::assert_int(num_threads, lower = 1L, upper = 65L)
  if (is.matrix(newdata)) newdata <- as.data.frame(newdata)
  checkmate::assert_data_frame(newdata)
  old_threads <- ember_set_threads(num_threads)
  on.exit(ember_set_threads(old_threads), add = TRUE)
  xm <- ember_encode(object$encoder, newdata)
  out <- .Call(C_ember_predict, object$ptr, xm)
  if (object$task_type == "regr") {
    if (type == "prob") stop("ember: type = 'prob' needs a classification model", call. = FALSE)
    return(out[, 1L])
  }
  colnames(out) <- object$class_levels
  if (type == "prob") return(out)
  factor(object$class_levels[max.col(out, ties.method = "first")], levels = object$class_levels)
}

#' @export
print.ember_model <- function(x, ...) {
  what <- if (x$task_type == "regr") "regression" else sprintf("classification (%d classes)", length(x$class_levels))
  cat(sprintf("<ember_model> MLP for %s\n", what))
  cat(sprintf("  inputs: %d (from %d features); hidden: %s; dropout: %g\n", x$encoder$n_inputs,
    length(x$encoder$columns), if (length(x$config$neurons)) paste(x$config$neurons, collapse = "-") else "none",
    x$config$p))
  n <- nrow(x$history)
  if (n > 0L) cat(sprintf("  trained %d epochs; final training loss %.4g\n", n, x$history$train_loss[n]))
  if (!isTRUE(.Call(C_ember_is_valid, x$ptr))) cat("  (engine handle not valid in this process: unmarshal first)\n")
  invisible(x)
}
