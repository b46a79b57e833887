#' Training history
#'
#' The `history` of an `ember_model` is a data.frame of class `ember_history` with one row per
#' epoch: `epoch`, `train_loss`, `valid_loss` (NA when the epoch did not validate), `lr` (the
#' learning rate at the end of the epoch) and a `train_<measure>` / `valid_<measure>` column per
#' measure. `plot()` draws the loss (or a measure) per epoch with base graphics.
#'
#' @param x (`ember_history`)\cr A history, e.g. `model$history`.
#' @param metric (`character(1)`)\cr `"loss"` or the name of a measure in the history.
#' @param ... Passed to [graphics::plot()].
#' @return `x`, invisibly.
#' @export
#' @examples
#' set.seed(1)
#' model <- ember_fit(iris[, 1:4], iris$Species, epochs = 20, lr = 0.01, validate = 0.3,
#'   measures = "accuracy")
#' plot(model$history)
#' plot(model$history, metric = "accuracy")
plot.ember_history <- function(x, metric = "loss", ...) {
  checkmate::assert_string(metric)
  cols <- paste0(c("train_", "valid_"), metric)
  have <- cols[cols %in% names(x)]
  if (!length(have)) {
    ember_abort(sprintf("the history has no '%s' columns; available: %s", metric, paste(names(x), collapse = ", ")),
      argument = "metric", expected = paste(names(x), collapse = ", "), got = metric)
  }
  values <- unlist(lapply(have, function(cl) x[[cl]]))
  ylim <- if (all(is.na(values))) c(0, 1) else range(values, na.rm = TRUE)
  args <- utils::modifyList(list(x = x$epoch, y = rep(NA_real_, nrow(x)), type = "n", ylim = ylim, xlab = "epoch",
    ylab = metric, main = sprintf("Training history: %s", metric)), list(...))
  do.call(graphics::plot, args)
  colors <- c(train_ = "black", valid_ = "firebrick")
  for (cl in have) {
    prefix <- if (startsWith(cl, "train_")) "train_" else "valid_"
    ok <- !is.na(x[[cl]])
    graphics::lines(x$epoch[ok], x[[cl]][ok], type = "b", pch = 20, col = colors[[prefix]])
  }
  is_train <- startsWith(have, "train_")
  graphics::legend("topright", legend = ifelse(is_train, "training", "validation"),
    col = ifelse(is_train, colors[["train_"]], colors[["valid_"]]), lty = 1, pch = 20, bty = "n")
  invisible(x)
}

#' @export
print.ember_history <- function(x, ...) {
  cat(sprintf("<ember_history> %d epoch(s)\n", nrow(x)))
  print(as.data.frame(unclass(x), stringsAsFactors = FALSE), row.names = FALSE, digits = 4L, ...)
  invisible(x)
}
