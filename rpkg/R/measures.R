#' Validation measures computed in R
#'
#' Wraps an R function as a validation measure for [ember_fit()]: after each validation, the
#' engine hands back its predictions and the function scores them; when it is the first measure,
#' it drives early stopping. Any 'mlr3' measure can be wrapped this way (the 'mlr3' learners do).
#'
#' @param fun (`function(truth, prediction)`)\cr Returns a number. `truth` is a factor
#'   (classification), a numeric vector (regression) or a logical matrix with one column per label
#'   (multilabel); `prediction` is a matrix of class (label) probabilities with one column per level
#'   (label) (`type = "prob"`), or the predicted classes, values or a logical matrix of labels
#'   (`type = "response"`). For a quantile regression (`loss = "quantile"`), `type = "prob"` gives
#'   the matrix of quantiles (columns `q0.1` ..., with 'mlr3''s attributes `probs` and `response`)
#'   and `type = "response"` the point prediction (see [predict.ember_model()]).
#' @param name (`character(1)`)\cr Column name in the history (`valid_<name>`).
#' @param minimize (`logical(1)`)\cr Whether smaller is better.
#' @param type (`character(1)`)\cr What `fun` receives as `prediction`.
#' @return A function of class `ember_measure`.
#' @export
#' @examples
#' macro_f1 <- ember_measure(function(truth, response) {
#'   mean(vapply(levels(truth), function(l) {
#'     tp <- sum(truth == l & response == l)
#'     2 * tp / (sum(truth == l) + sum(response == l))
#'   }, numeric(1)))
#' }, name = "macro_f1", minimize = FALSE, type = "response")
#' set.seed(1)
#' model <- ember_fit(iris[, 1:4], iris$Species, epochs = 10, lr = 0.01, validate = 0.3,
#'   measures = list(macro_f1, "logloss"))
#' model$history[, c("epoch", "valid_macro_f1", "valid_logloss")]
ember_measure <- function(fun, name, minimize = TRUE, type = c("prob", "response")) {
  checkmate::assert_function(fun)
  checkmate::assert_string(name, min.chars = 1L)
  checkmate::assert_flag(minimize)
  type <- match.arg(type)
  structure(function(truth, prediction) fun(truth, prediction), name = name, minimize = minimize, type = type,
    class = c("ember_measure", "function"))
}

normalize_measures <- function(measures, task, argument = "measures") {
  if (is.null(measures)) return(list())
  if (is.character(measures) || is.function(measures)) measures <- as.list(if (is.function(measures)) list(measures) else measures)
  if (!is.list(measures)) {
    ember_abort(sprintf("'%s' must be a character vector of engine measures or a list of them and ember_measure()s", argument),
      argument = argument, expected = "measure names or ember_measure()s", got = class(measures)[1L])
  }
  allowed <- engine_measure_names(measure_group(task))
  for (i in seq_along(measures)) {
    m <- measures[[i]]
    if (is.function(m)) {
      if (!inherits(m, "ember_measure")) {
        ember_abort(sprintf("'%s' element %d must be an engine measure name or an ember_measure()", argument, i),
          argument = argument, index = i, expected = paste(allowed, collapse = ", "), got = "a function")
      }
    } else if (!checkmate::test_string(m) || !m %in% allowed) {
      ember_abort(sprintf("'%s' element %d is %s; expected one of %s for a %s task", argument, i, deparse_short(m),
        paste0("\"", allowed, "\"", collapse = ", "), task), argument = argument, index = i,
        expected = paste(allowed, collapse = ", "), got = deparse_short(m))
    }
  }
  measures
}

# The engine's group of measures of a task ("regression", "quantile_regression", "binary",
# "multiclass" or "multilabel").
measure_group <- function(task) {
  switch(task, regression = , quantile_regression = "regression", multilabel = "multilabel", "classification")
}

# Scores R measures on predictions (probabilities or values, engine columns) of data whose target
# values (engine encoding) are `truth_values`. Quantile regressions: `type = "prob"` measures get
# the quantiles (a matrix with mlr3's attributes "probs" and "response"), `"response"` measures the
# point prediction; multilabel: the probabilities, or a logical matrix (threshold 0.5).
score_host_measures <- function(measures, prediction, truth_values, target) {
  truth <- truth_from_values(truth_values, target)
  if (target$type != "numeric") colnames(prediction) <- target$levels
  quantiles <- target$quantiles
  if (length(quantiles)) {
    colnames(prediction) <- sprintf("q%g", quantiles)
    attr(prediction, "probs") <- quantiles
    attr(prediction, "response") <- quantiles[target$response_column]
  }
  scores <- lapply(measures, function(m) {
    response <- attr(m, "type") == "response"
    pred <- if (target$type == "factor" && response) {
      factor(target$levels[max.col(prediction, ties.method = "first")], levels = target$levels)
    } else if (target$type == "multilabel" && response) {
      prediction >= 0.5
    } else if (target$type == "numeric" && (response || !length(quantiles))) {
      prediction[, target$response_column %||% 1L]
    } else prediction
    v <- m(truth, pred)
    # NA is a score (e.g. an AUC on validation rows of one class); it does not count for early stopping.
    if (!checkmate::test_number(v, na.ok = TRUE)) {
      ember_abort(sprintf("the measure '%s' returned %s; expected a single number", attr(m, "name"), deparse_short(v)),
        argument = "measures", expected = "a number", got = deparse_short(v))
    }
    as.double(v)
  })
  stats::setNames(scores, vapply(measures, attr, "", "name"))
}

truth_from_values <- function(values, target) {
  if (target$type == "numeric") return(values)
  if (target$type == "multilabel") return(matrix(values == 1, nrow = NROW(values), dimnames = list(NULL, target$levels)))
  idx <- if (length(target$levels) == 2L) ifelse(values == 1, 1L, 2L) else as.integer(values) + 1L
  factor(target$levels[idx], levels = target$levels)
}
