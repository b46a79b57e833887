#' Permutation feature importance
#'
#' How much worse a trained model predicts when the values of one feature are shuffled across the
#' rows (Breiman 2001; Fisher, Rudin and Dominici 2019): the increase of the loss over the loss on
#' the intact data, averaged over `n_repeats` shuffles. A feature the model does not use scores
#' about 0; a negative score means shuffling it happened to help. Each column is one feature, so a
#' factor (all its one-hot or embedding columns) and a tensor column (all its values, e.g. a whole
#' image) are permuted as one; `groups` permutes several columns together (with one permutation).
#'
#' The loss is, by default, the log loss for classification (on the predicted probabilities), the
#' mean squared error for regression (on the response; the point prediction of a quantile
#' regression) and the mean binary log loss over the labels of a multilabel model. `measure` may
#' name another (`"logloss"`, `"ce"` the classification error, `"mse"`, `"mae"`) or be a function
#' `function(truth, prediction)` returning a number where smaller is better; `prediction` is
#' `predict(model, x, type = "prob")` for classification and multilabel models and
#' `predict(model, x)` otherwise.
#'
#' With an Ember learner, `ember_importance()` scores its trained model on `task` (e.g. held-out
#' data); the learners' `$importance()` (the 'mlr3' property `"importance"`, used by
#' `mlr3filters::flt("importance")`) returns the permutation importance on the training data, which
#' they compute after training when their parameter `importance` is `"permutation"`.
#'
#' @param object (`ember_model` or an Ember 'mlr3' `Learner`)\cr A trained model, or a trained learner.
#' @param x (`data.frame`)\cr The data to score on, with the columns the model reads.
#' @param y The target of `x`, as [ember_fit()]'s `y`.
#' @param task (`mlr3::Task`)\cr For a learner: the task to score on (its features and target).
#' @param measure (`character(1)`, `function` or `NULL`)\cr The loss (see Details).
#' @param n_repeats (`integer(1)`)\cr Shuffles per feature.
#' @param groups (named `list()` of `character()` or `NULL`)\cr Columns permuted together, by group
#'   name; the columns of no group are scored one by one.
#' @param seed (`integer(1)` or `NULL`)\cr Seed of the shuffles (R's generator, restored
#'   afterwards); `NULL` uses the session's stream.
#' @param batch_size,num_threads As [predict.ember_model()]'s.
#' @param ... Not used.
#' @return A data frame with columns `feature`, `importance` (the mean increase of the loss) and
#'   `sd` (its standard deviation over the shuffles), sorted by decreasing importance, with the
#'   loss on the intact data as attribute `baseline`.
#' @seealso [ember_attributions()] for per-row attributions.
#' @export
#' @examples
#' set.seed(1)
#' d <- data.frame(signal = rnorm(200), noise = rnorm(200), group = factor(sample(c("a", "b"), 200, TRUE)))
#' y <- 3 * d$signal + (d$group == "a") + rnorm(200, sd = 0.1)
#' model <- ember_fit(d, y, epochs = 30, batch_size = 16, lr = 0.01, seed = 1)
#' ember_importance(model, d, y, seed = 1)
ember_importance <- function(object, ...) UseMethod("ember_importance")

#' @rdname ember_importance
#' @export
ember_importance.ember_model <- function(object, x, y, measure = NULL, n_repeats = 5L, groups = NULL, seed = NULL,
                                         batch_size = 4096L, num_threads = 1L, ...) {
  check_model(object)
  if (!is.data.frame(x)) {
    ember_abort("'x' must be a data.frame (permutation importance shuffles named columns)", argument = "x",
      expected = "a data.frame", got = class(x)[1L])
  }
  n_repeats <- check_count(n_repeats, "n_repeats")
  n <- nrow(x)
  if (n < 2L) ember_abort("'x' needs at least 2 rows to shuffle", argument = "x", expected = "at least 2 rows", got = sprintf("%d row(s)", n))
  columns <- vapply(object$encoding$columns, `[[`, "", "name")
  missing <- setdiff(columns, names(x))
  if (length(missing)) {
    ember_abort(sprintf("'x' lacks the column(s) the model reads: %s", paste(missing, collapse = ", ")), argument = "x",
      expected = paste(columns, collapse = ", "), got = paste(names(x), collapse = ", "))
  }
  groups <- importance_groups(groups, columns)
  loss <- importance_loss(object, measure, y, n)
  score <- function(data) loss(stats::predict(object, data, type = attr(loss, "type"), batch_size = batch_size,
    num_threads = num_threads))
  baseline <- score(x)
  with_seed(seed, {
    scores <- lapply(groups, function(cols) {
      vapply(seq_len(n_repeats), function(r) {
        perm <- sample.int(n)
        shuffled <- x
        for (col in cols) shuffled[[col]] <- x[[col]][perm]
        score(shuffled) - baseline
      }, numeric(1))
    })
  })
  out <- data.frame(feature = names(groups), importance = vapply(scores, mean, numeric(1)),
    sd = vapply(scores, function(s) if (length(s) > 1L) stats::sd(s) else NA_real_, numeric(1)))
  out <- out[order(-out$importance), , drop = FALSE]
  rownames(out) <- NULL
  attr(out, "baseline") <- baseline
  out
}

#' @rdname ember_importance
#' @export
ember_importance.Learner <- function(object, task, measure = NULL, n_repeats = 5L, groups = NULL, seed = NULL, ...) {
  if (!inherits(object, c("LearnerClassifEmber", "LearnerRegrEmber"))) {
    ember_abort(sprintf("ember_importance() takes an Ember learner; '%s' is not one", object$id), argument = "object",
      expected = "an Ember learner", got = class(object)[1L])
  }
  if (is.null(object$model)) {
    ember_abort(sprintf("Learner '%s' is not trained: train it first", object$id), kind = "state", argument = "object")
  }
  model <- object$model
  if (mlr3::is_marshaled_model(model)) model <- mlr3::unmarshal_model(model)
  classes <- if (object$task_type == "classif") task$class_names
  ember_importance(model, task$data(cols = task$feature_names), task_target(task, classes), measure = measure,
    n_repeats = n_repeats, groups = groups, seed = seed, num_threads = object$param_set$values$num_threads %||% 1L)
}

# The column groups to permute: the named groups, then every other column alone.
importance_groups <- function(groups, columns) {
  if (is.null(groups)) return(stats::setNames(as.list(columns), columns))
  if (!is.list(groups) || is.null(names(groups)) || any(!nzchar(names(groups))) ||
      !all(vapply(groups, is.character, logical(1)))) {
    ember_abort("'groups' must be a named list of column-name vectors", argument = "groups",
      expected = "list(name = c(columns))", got = class(groups)[1L])
  }
  unknown <- setdiff(unlist(groups), columns)
  if (length(unknown)) {
    ember_abort(sprintf("'groups' names column(s) the model does not read: %s", paste(unknown, collapse = ", ")),
      argument = "groups", expected = paste(columns, collapse = ", "), got = paste(unknown, collapse = ", "))
  }
  if (anyDuplicated(unlist(groups))) {
    ember_abort("'groups' must not put a column in two groups", argument = "groups")
  }
  rest <- setdiff(columns, unlist(groups))
  c(groups, stats::setNames(as.list(rest), rest))
}

# The loss of importance: a function of the model's predictions with `type` ("prob" or "response").
importance_loss <- function(model, measure, y, n) {
  target <- ember_target(y, n, argument = "y")
  task <- model$task
  classif <- task %in% c("binary", "multiclass")
  if (classif && !identical(target$levels, model$target$levels)) {
    ember_abort("'y' must have the model's classes", argument = "y", expected = paste(model$target$levels, collapse = ", "),
      got = paste(target$levels, collapse = ", "))
  }
  truth <- y
  type <- if (classif || task == "multilabel") "prob" else "response"
  if (is.function(measure)) {
    fn <- function(pred) {
      v <- measure(truth, pred)
      if (!checkmate::test_number(v)) {
        ember_abort("'measure' must return one number", argument = "measure", expected = "a number", got = deparse_short(v))
      }
      v
    }
    attr(fn, "type") <- type
    return(fn)
  }
  default <- if (classif) "logloss" else if (task == "multilabel") "logloss" else "mse"
  measure <- check_choice(measure %||% default, c("logloss", "ce", "mse", "mae"), "measure")
  if (classif && measure %in% c("mse", "mae") || !classif && task != "multilabel" && measure %in% c("logloss", "ce")) {
    ember_abort(sprintf("measure \"%s\" does not fit a %s model", measure, sub("_", " ", task)), argument = "measure",
      expected = if (classif) "\"logloss\" or \"ce\"" else "\"mse\" or \"mae\"", got = measure)
  }
  if (task == "multilabel") {
    labels <- as.matrix(target$values)
    if (measure != "logloss") {
      ember_abort("a multilabel model's permutation importance uses \"logloss\" (mean binary log loss)", argument = "measure",
        expected = "\"logloss\"", got = measure)
    }
    fn <- function(pred) {
      p <- pmin(pmax(as.matrix(pred), 1e-15), 1 - 1e-15)
      -mean(labels * log(p) + (1 - labels) * log(1 - p))
    }
    attr(fn, "type") <- "prob"
    return(fn)
  }
  if (classif) {
    index <- cbind(seq_len(n), match(as.character(truth), model$target$levels))
    fn <- switch(measure,
      logloss = function(pred) -mean(log(pmax(pred[index], 1e-15))),
      ce = function(pred) mean(max.col(pred, ties.method = "first") != index[, 2L]))
    attr(fn, "type") <- "prob"
    return(fn)
  }
  values <- as.numeric(truth)
  fn <- switch(measure,
    mse = function(pred) mean((as.numeric(pred) - values)^2),
    mae = function(pred) mean(abs(as.numeric(pred) - values)))
  attr(fn, "type") <- "response"
  fn
}

# Evaluates `expr` with R's generator seeded by `seed` (NULL: the session's stream), restoring the
# session's generator state afterwards.
with_seed <- function(seed, expr) {
  if (is.null(seed)) return(expr)
  seed <- check_count(seed, "seed", lower = 0L)
  had <- exists(".Random.seed", envir = globalenv(), inherits = FALSE)
  old <- if (had) get(".Random.seed", envir = globalenv(), inherits = FALSE)
  on.exit(if (had) assign(".Random.seed", old, envir = globalenv()) else rm(".Random.seed", envir = globalenv()))
  set.seed(seed)
  expr
}

#' Gradient × input attributions
#'
#' Per-row attributions of a model's output to its inputs: the derivative of one raw output (a
#' class's logit, a regression's output) with respect to each input value, times that value's
#' distance from the training mean (standardised columns; the value itself where the model does
#' not standardise, e.g. images). For a linear model a row's attributions add up to its output
#' minus the output at the mean row; for a network they are a first-order local explanation
#' (Shrikumar et al. 2016; Simonyan et al. 2014 for the gradient alone).
#'
#' @param model (`ember_model`)\cr A trained model.
#' @param x The rows to explain, as [predict.ember_model()]'s `newdata`.
#' @param output (`character(1)`, `integer(1)` or `NULL`)\cr The output explained: a class (name
#'   or 1-based index) of a classification model, a label of a multilabel model; `NULL`: each row's
#'   predicted class (classification; a binary model's one logit speaks for its first class), the
#'   output (regression), the median's output (quantile regression).
#' @param batch_size (`integer(1)`)\cr Rows per forward and backward pass.
#' @return For a tabular model, a numeric matrix with one row per row of `x` and one column per
#'   feature: numeric, integer, logical and ordered columns get their attribution, a tensor
#'   column the sum over its elements, a factor `NA` (level codes have no gradient). For an image
#'   model, an array of the images' shape `[n, channels, height, width]`. For a network with
#'   several inputs, a list of such matrices or arrays by input name (factor inputs left out).
#' @seealso [ember_importance()]
#' @export
#' @examples
#' set.seed(1)
#' d <- data.frame(a = rnorm(100), b = rnorm(100))
#' model <- ember_fit(d, 2 * d$a - d$b, ember_mlp(neurons = integer(0)), epochs = 50, lr = 0.05)
#' attr <- ember_attributions(model, d[1:3, ])
#' attr
#' # A linear model: attributions add up to the output minus the output at the mean.
#' rowSums(attr) - (predict(model, d[1:3, ]) - predict(model, as.data.frame(t(colMeans(d)))))
ember_attributions <- function(model, x, output = NULL, batch_size = 256L) {
  check_model(model)
  batch_size <- check_count(batch_size, "batch_size")
  inputs <- ember_encode(model$encoding, x, argument = "x", unseen = unseen_policy(model$architecture, model$encoding))
  n <- inputs_rows(inputs)
  if (n == 0L) ember_abort("'x' has no rows", argument = "x", expected = "at least one row", got = "0 rows")
  data <- engine_dataset(inputs, argument = "x")
  on.exit(.Call(C_ember_release, data), add = TRUE)
  outputs <- attribution_outputs(model, output, data, batch_size)
  shapes <- jsonlite::fromJSON(.Call(C_ember_model_summary, model$ptr), simplifyVector = FALSE)$inputs
  float <- Filter(function(i) !is.integer(inputs[[i$name]]), shapes)
  result <- lapply(float, function(i) {
    shape <- as.integer(unlist(i$shape))
    m <- .Call(C_ember_model_attributions, model$ptr, data, i$name, outputs, prod(shape), batch_size)
    if (length(shape) > 1L) array(m, c(n, shape)) else m
  })
  names(result) <- vapply(float, `[[`, "", "name")
  enc <- model$encoding
  if (identical(enc$kind, "image")) return(result[[1L]])
  if (identical(enc$kind, "tabular") && is.null(enc$routes) && is.null(enc$inputs)) {
    columns <- enc$columns
    out <- matrix(NA_real_, n, length(columns), dimnames = list(NULL, vapply(columns, `[[`, "", "name")))
    num <- result$num
    at <- 0L
    for (j in seq_along(columns)) {
      cl <- columns[[j]]
      if (cl$type == "factor") next
      width <- if (cl$type == "tensor") prod(cl$shape) else 1L
      out[, j] <- rowSums(num[, at + seq_len(width), drop = FALSE])
      at <- at + width
    }
    return(out)
  }
  result
}

# The 0-based output column explained for each row (an integer vector of 1 or n values); `data`
# is the engine dataset of the rows.
attribution_outputs <- function(model, output, data, batch_size) {
  task <- model$task
  if (task %in% c("regression")) return(0L)
  if (task == "quantile_regression") return(as.integer(model$response_column))
  levels <- model$target$levels
  if (is.null(output)) {
    if (task == "multilabel") {
      ember_abort("'output' must name the label to explain (a multilabel model)", argument = "output",
        expected = paste(levels, collapse = ", "))
    }
    if (task == "binary") return(0L)
    logits <- .Call(C_ember_model_predict, model$ptr, data, batch_size, TRUE, model$outputs)
    return(as.integer(max.col(logits, ties.method = "first") - 1L))
  }
  k <- if (is.character(output)) match(output, levels) else if (is.numeric(output) && output == round(output)) as.integer(output) else NA
  if (length(output) != 1L || is.na(k) || k < 1L || k > length(levels)) {
    ember_abort(sprintf("'output' must be one of the model's %s (name or 1-based index)", if (task == "multilabel") "labels" else "classes"),
      argument = "output", expected = paste(levels, collapse = ", "), got = deparse_short(output))
  }
  # A binary model has one logit, that of its first class: the second class is its negative.
  if (task == "binary") {
    if (k == 2L) ember_abort("a binary model's one output is the logit of its first class; explain that class (output = 1)",
      argument = "output", expected = levels[1L], got = levels[2L])
    return(0L)
  }
  as.integer(k - 1L)
}
