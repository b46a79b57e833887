# Turning the columns an mlr3 user has into the numeric matrix the engine trains on.
#
# - numeric and integer columns: as numbers, standardised inside the model;
# - logical columns: 0/1, not standardised;
# - factor columns: one-hot, one 0/1 column per level (all levels, so no reference level is
#   dropped), not standardised; a level unseen in training encodes as all zeros;
# - ordered factors: their integer codes 1..K, standardised like numbers (order kept).
# Columns are matched by name, so their order at prediction time does not matter.

ember_encoder <- function(data) {
  checkmate::assert_data_frame(data, min.cols = 1L)
  nms <- names(data)
  if (anyDuplicated(nms) || any(!nzchar(nms))) {
    stop("ember: feature names must be unique and non-empty", call. = FALSE)
  }
  columns <- lapply(nms, function(nm) {
    col <- data[[nm]]
    type <- if (is.ordered(col)) "ordered" else if (is.factor(col)) "factor" else if (is.logical(col)) "logical" else if (is.integer(col)) "integer" else if (is.numeric(col)) "numeric" else NA_character_
    if (is.na(type)) {
      stop(sprintf("ember: feature '%s' has class '%s'; expected numeric, integer, logical, factor or ordered",
        nm, class(col)[1L]), call. = FALSE)
    }
    list(name = nm, type = type, levels = if (is.factor(col)) levels(col) else NULL)
  })
  widths <- vapply(columns, function(cl) if (cl$type == "factor") length(cl$levels) else 1L, integer(1))
  standardize <- unlist(lapply(columns, function(cl) {
    if (cl$type == "factor") rep(FALSE, length(cl$levels)) else cl$type %in% c("numeric", "integer", "ordered")
  }))
  if (sum(widths) < 1L) stop("ember: the features encode to zero columns (factors without levels?)", call. = FALSE)
  structure(list(columns = columns, n_inputs = sum(widths), standardize = standardize), class = "ember_encoder")
}

ember_encode <- function(encoder, data) {
  if (is.matrix(data)) data <- as.data.frame(data)
  checkmate::assert_data_frame(data)
  n <- nrow(data)
  missing_cols <- setdiff(vapply(encoder$columns, `[[`, "", "name"), names(data))
  if (length(missing_cols)) {
    stop(sprintf("ember: newdata lacks the feature(s) %s", paste0("'", missing_cols, "'", collapse = ", ")), call. = FALSE)
  }
  out <- matrix(0, nrow = n, ncol = encoder$n_inputs)
  j <- 1L
  for (cl in encoder$columns) {
    col <- data[[cl$name]]
    if (anyNA(col)) {
      stop(sprintf("ember: feature '%s' has missing values; impute them first (e.g. mlr3pipelines po('imputeoor'))",
        cl$name), call. = FALSE)
    }
    if (cl$type == "factor") {
      if (!is.factor(col) && !is.character(col)) {
        stop(sprintf("ember: feature '%s' must be a factor, got '%s'", cl$name, class(col)[1L]), call. = FALSE)
      }
      codes <- match(as.character(col), cl$levels)
      k <- length(cl$levels)
      ok <- !is.na(codes)
      if (n > 0L && k > 0L && any(ok)) {
        out[cbind(which(ok), j - 1L + codes[ok])] <- 1
      }
      j <- j + k
    } else {
      if (cl$type == "ordered") {
        if (!is.factor(col)) {
          stop(sprintf("ember: feature '%s' must be an ordered factor, got '%s'", cl$name, class(col)[1L]), call. = FALSE)
        }
        vals <- match(as.character(col), cl$levels)
        if (anyNA(vals)) stop(sprintf("ember: feature '%s' has levels not seen in training", cl$name), call. = FALSE)
      } else {
        if (!is.numeric(col) && !is.logical(col)) {
          stop(sprintf("ember: feature '%s' must be %s, got '%s'", cl$name, cl$type, class(col)[1L]), call. = FALSE)
        }
        vals <- as.double(col)
        if (any(!is.finite(vals))) stop(sprintf("ember: feature '%s' has non-finite values", cl$name), call. = FALSE)
      }
      out[, j] <- as.double(vals)
      j <- j + 1L
    }
  }
  out
}
