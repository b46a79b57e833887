# Engine datasets: encoded inputs and a target, copied once into engine memory.

# The target: a factor (classification: binary with 2 levels, the first level being the positive
# class whose logit the head outputs, else multiclass), numbers (regression), or a logical matrix
# or data.frame of logical or 0/1 columns, one per label (multilabel).
ember_target <- function(y, n, argument = "y") {
  if ((is.matrix(y) && (ncol(y) != 1L || is.logical(y))) ||
      (is.data.frame(y) && (ncol(y) != 1L || is.logical(y[[1L]])))) {
    return(multilabel_target(y, n, argument))
  }
  if (is.data.frame(y) && ncol(y) == 1L) y <- y[[1L]]
  if (is.matrix(y)) y <- y[, 1L]
  if (is.factor(y)) {
    lev <- levels(y)
    if (length(lev) < 2L) {
      ember_abort(sprintf("'%s' is a factor with %d level(s); classification needs at least 2 classes", argument, length(lev)),
        argument = argument, expected = "a factor with at least 2 levels", got = sprintf("%d level(s)", length(lev)))
    }
  } else if (!(is.numeric(y) && !is.object(y)) || is.logical(y)) {
    hint <- if (is.character(y) || is.logical(y)) " (convert it with as.factor() for classification)" else ""
    ember_abort(sprintf("'%s' must be a factor (classification) or numeric (regression), got '%s'%s", argument,
      class(y)[1L], hint), argument = argument, expected = "a factor or a numeric vector", got = class(y)[1L])
  }
  if (length(y) != n) {
    ember_abort(sprintf("'%s' has %d values; expected one per row of the features (%d)", argument, length(y), n),
      kind = "shape", argument = argument, expected = as.character(n), got = as.character(length(y)))
  }
  bad <- which(is.na(y))
  if (length(bad)) {
    ember_abort(sprintf("'%s' has %d missing value(s) (first in row %d); remove those rows or impute the target",
      argument, length(bad), bad[1L]), kind = "missing_values", argument = argument, index = bad[1L],
      expected = "no missing values", got = "NA", extra_class = "ember_error_invalid_argument")
  }
  if (is.factor(y)) {
    lev <- levels(y)
    present <- unique(as.integer(y))
    if (length(present) < 2L && n > 0L) {
      ember_warn(sprintf("'%s' holds a single class ('%s') of its %d levels; the model can only learn to predict it",
        argument, lev[present[1L]], length(lev)), kind = "single_class", argument = argument)
    }
    # Class indices as integers (binary: 1 = the first level), passed to the engine as such.
    values <- if (length(lev) == 2L) as.integer(as.integer(y) == 1L) else as.integer(y) - 1L
    return(list(type = "factor", levels = lev, values = values, task = if (length(lev) == 2L) "binary" else "multiclass"))
  }
  values <- as.double(y)
  inf <- which(!is.finite(values))
  if (length(inf)) {
    ember_abort(sprintf("'%s' has the non-finite value %s in row %d; expected finite numbers", argument, format(values[inf[1L]]),
      inf[1L]), argument = argument, index = inf[1L], expected = "finite numbers", got = format(values[inf[1L]]))
  }
  list(type = "numeric", levels = NULL, values = values, task = "regression")
}

# A multilabel target: one logical or 0/1 column per label (at least 2), no missing values.
# Values: a double 0/1 matrix [n, labels]; levels: the label names (column names, else label1 ...).
multilabel_target <- function(y, n, argument = "y") {
  k <- ncol(y)
  labels <- colnames(y)
  if (is.null(labels) || anyNA(labels) || any(labels == "")) labels <- paste0("label", seq_len(k))
  labels <- make.unique(labels)
  if (k < 2L) {
    ember_abort(sprintf(paste0("'%s' has %d label column(s); a multilabel target needs at least 2 (for one label, ",
      "use a factor with two levels: binary classification)"), argument, k), argument = argument,
      expected = "at least 2 label columns", got = sprintf("%d column(s)", k))
  }
  if (nrow(y) != n) {
    ember_abort(sprintf("'%s' has %d rows; expected one per row of the features (%d)", argument, nrow(y), n),
      kind = "shape", argument = argument, expected = as.character(n), got = as.character(nrow(y)))
  }
  columns <- if (is.data.frame(y)) as.list(y) else lapply(seq_len(k), function(j) y[, j])
  values <- matrix(0, nrow = n, ncol = k, dimnames = list(NULL, labels))
  for (j in seq_len(k)) {
    v <- columns[[j]]
    ok <- is.logical(v) || (is.numeric(v) && !is.object(v) && all(v[!is.na(v)] %in% c(0, 1)))
    if (!ok) {
      got <- if (is.numeric(v) && !is.object(v)) format(v[!is.na(v) & !v %in% c(0, 1)][1L]) else class(v)[1L]
      ember_abort(sprintf("'%s' label column %d ('%s') must be logical or hold 0/1 values, got %s%s", argument, j, labels[j], got,
        if (is.numeric(v)) " (a multilabel target has one 0/1 column per label)" else ""),
        argument = argument, index = j, expected = "logical or 0/1 values", got = got)
    }
    bad <- which(is.na(v))
    if (length(bad)) {
      ember_abort(sprintf("'%s' has %d missing value(s) in label column %d ('%s') (first in row %d); remove those rows or impute the labels",
        argument, length(bad), j, labels[j], bad[1L]), kind = "missing_values", argument = argument, index = bad[1L],
        expected = "no missing values", got = "NA", extra_class = "ember_error_invalid_argument")
    }
    values[, j] <- as.double(v)
  }
  list(type = "multilabel", levels = labels, values = values, task = "multilabel")
}

# Rows `idx` of target values (a vector, or a multilabel matrix).
target_rows <- function(values, idx) if (is.matrix(values)) values[idx, , drop = FALSE] else values[idx]

# The number of rows of encoded inputs.
inputs_rows <- function(inputs) {
  first <- inputs[[1L]]
  if (is.null(dim(first))) length(first) else dim(first)[1L]
}

# An engine dataset from encoded inputs (num: double matrix, categ: 0-based integer matrix,
# image or other arrays: tensors) and an optional target (an integer vector of 0-based class
# indices, a double vector of values, or a 0/1 matrix with one column per label).
engine_dataset <- function(inputs, target = NULL, argument = "x") {
  n <- inputs_rows(inputs)
  if (n < 1L) {
    ember_abort(sprintf("'%s' has no rows; at least one row is needed", argument), argument = argument,
      expected = "at least one row", got = "0 rows")
  }
  ds <- .Call(C_ember_dataset_new, as.double(n))
  for (name in names(inputs)) {
    v <- inputs[[name]]
    if (inherits(v, "ember_tensor")) {
      add_tensor_input(ds, name, v, flatten = isTRUE(attr(v, "flatten")))
    } else if (is.integer(v) && is.matrix(v)) {
      .Call(C_ember_dataset_add_categorical, ds, name, v)
    } else if (is.matrix(v)) {
      storage.mode(v) <- "double"
      .Call(C_ember_dataset_add_numeric, ds, name, v)
    } else {
      storage.mode(v) <- "double"
      .Call(C_ember_dataset_add_tensor, ds, name, v)
    }
  }
  if (is.integer(target) && is.null(dim(target))) {
    # Class indices (a factor target): integers all the way to the engine's loss.
    .Call(C_ember_dataset_set_target_classes, ds, target)
  } else if (!is.null(target)) {
    # A vector, or a multilabel matrix (one column per label): storage.mode keeps the dimensions.
    storage.mode(target) <- "double"
    .Call(C_ember_dataset_set_target, ds, target)
  }
  ds
}

# A tensor column as an engine input: the bytes (or doubles) of its rows, or its image files,
# decoded by the engine batch by batch. `flatten`: one row of prod(shape) values.
add_tensor_input <- function(ds, name, v, flatten = FALSE) {
  src <- tensor_source(v)
  shape <- if (flatten) prod(src$shape) else src$shape
  idx <- unclass(v)
  if (src$kind == "files") {
    if (flatten) {
      ember_abort(sprintf("input '%s' would read image files flattened (an MLP); image files are read by image inputs (a CNN, ember_input_image()); make an array column with as_ember_tensor(as.array(x)) to flatten them",
        name), argument = name, expected = "an image input", got = "image files for a flat input")
    }
    .Call(C_ember_dataset_add_image_files, ds, name, src$paths[idx], as.integer(src$shape))
    return(invisible(NULL))
  }
  rows <- src$values[, idx, drop = FALSE]
  if (is.double(rows) && src$scale != 1) rows <- rows * src$scale
  .Call(C_ember_dataset_add_rows, ds, name, rows, as.integer(c(length(idx), shape)), as.double(src$scale))
  invisible(NULL)
}

# Rows `idx` of encoded inputs.
subset_inputs <- function(inputs, idx) {
  lapply(inputs, function(v) {
    if (inherits(v, "ember_tensor")) return(structure(v[idx], flatten = attr(v, "flatten")))
    if (is.matrix(v)) return(v[idx, , drop = FALSE])
    d <- dim(v)
    args <- c(list(v, idx), rep(list(TRUE), length(d) - 1L), list(drop = FALSE))
    do.call(`[`, args)
  })
}
