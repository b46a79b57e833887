# Tensor columns: a vector whose elements are tensors of one shape (images [channels, height,
# width], sequences, ...), pointing into a source instead of holding copies.
#
# An `ember_tensor` is an integer vector of 1-based row numbers into its source (NA: a missing
# element) with the attributes `source` (an environment, shared by every subset, so that
# subsetting, data.table rows, mlr3 tasks and resampling never copy the data) and class
# "ember_tensor". A source is
# - "array": the values of every row, one row after the other in C order (a matrix [width, n] of
#   bytes (raw) or doubles), with a `scale` applied to bytes when the engine reads them;
# - "files": image file paths (PNG, JPEG), decoded by the engine batch by batch.
# Serialising a tensor (saveRDS, marshaling, future workers) carries its source once.

new_tensor_source <- function(kind, shape, n, ...) {
  src <- new.env(parent = emptyenv())
  src$kind <- kind
  src$shape <- as.integer(shape)
  src$n <- as.integer(n)
  extra <- list(...)
  for (nm in names(extra)) assign(nm, extra[[nm]], envir = src)
  src
}

new_ember_tensor <- function(index, source) {
  structure(as.integer(index), source = source, class = "ember_tensor")
}

tensor_source <- function(x) attr(x, "source", exact = TRUE)

#' Tensor columns
#'
#' @description
#' An `ember_tensor` is a vector whose elements are tensors of one shape, e.g. images
#' `c(channels, height, width)`. It is a column type like numbers or factors: it lives in
#' data.frames, `data.table`s and 'mlr3' tasks (feature type `"ember_tensor"`), is subset,
#' resampled and marshaled like any column, and is read by image networks ([ember_cnn()],
#' the image learners, [ember_input_image()], the PipeOp `ember_ingress_tensor`) and by MLPs
#' (flattened). Its elements point into a source instead of being copies: subsetting a column of
#' 70,000 images copies 70,000 row numbers, not the images.
#'
#' * `as_ember_tensor()` makes a column from an array `[n, ...]` whose first dimension is the
#'   element: a raw array keeps one byte per value (images from 0 to 255) and the engine reads
#'   `scale * byte` (default `1/255`, the range `[0, 1]` of torchvision's `to_tensor()`); numeric
#'   and integer arrays are read as they are (`scale` 1).
#' * `ember_tensor_shape()` is the shape of one element.
#' * `as.array()` materialises the elements as a double array `[n, ...]` (refused, with a classed
#'   error, when it would not fit in the memory available).
#'
#' Elements compare equal (`==`) when their values are equal; `is.na()` marks missing elements;
#' `c()` combines columns of one shape. Note that `rbind()` of data.tables holding columns from
#' different sources keeps the first source (as data.table does for every attribute): combine
#' such columns with `c()`.
#'
#' @param x (`array` | `ember_tensor`)\cr An array `[n, ...]` (raw, integer or double; rank 2 to 5)
#'   or a tensor column.
#' @param scale (`numeric(1)` | `NULL`)\cr Factor applied to the values when the engine reads
#'   them; `NULL`: `1/255` for raw arrays, `1` otherwise.
#' @param ... Unused.
#' @return An `ember_tensor` of `n` elements (`as_ember_tensor()`); an integer vector
#'   (`ember_tensor_shape()`); a double array (`as.array()`).
#' @examples
#' imgs <- array(as.raw(sample(0:255, 4 * 3 * 8 * 8, TRUE)), dim = c(4, 3, 8, 8))
#' x <- as_ember_tensor(imgs)
#' x
#' ember_tensor_shape(x)
#' d <- data.frame(id = 1:4)
#' d$image <- x
#' d[2:3, ]
#' dim(as.array(x[2:3]))
#' @export
as_ember_tensor <- function(x, ...) UseMethod("as_ember_tensor")

#' @rdname as_ember_tensor
#' @export
as_ember_tensor.ember_tensor <- function(x, ...) x

#' @rdname as_ember_tensor
#' @export
as_ember_tensor.default <- function(x, scale = NULL, ...) {
  d <- dim(x)
  if (is.null(d) || length(d) < 2L || length(d) > 5L || !(is.raw(x) || is.numeric(x)) || is.object(x)) {
    ember_abort(sprintf("'x' must be a raw, integer or double array [n, ...] of rank 2 to 5, got %s",
      if (is.null(d)) class(x)[1L] else sprintf("a %d-d %s array", length(d), typeof(x))),
      argument = "x", expected = "an array [n, ...] of rank 2 to 5", got = class(x)[1L])
  }
  if (any(d < 1L)) {
    ember_abort(sprintf("'x' has dimensions [%s]; every dimension must be >= 1", paste(d, collapse = ", ")),
      kind = "shape", argument = "x", expected = "dimensions >= 1", got = paste(d, collapse = ", "))
  }
  if (is.null(scale)) scale <- if (is.raw(x)) 1 / 255 else 1
  if (!is.numeric(scale) || length(scale) != 1L || !is.finite(scale) || scale == 0) {
    ember_abort("'scale' must be a finite, non-zero number", argument = "scale", expected = "a finite non-zero number",
      got = format(scale))
  }
  if (!is.raw(x)) {
    storage.mode(x) <- "double"
    bad <- which(!is.finite(x))
    if (length(bad)) {
      row <- (bad[1L] - 1L) %% d[1L] + 1L
      ember_abort(sprintf("'x' holds the non-finite value %s in element %d; expected finite numbers", format(x[bad[1L]]), row),
        kind = if (is.na(x[bad[1L]])) "missing_values" else "invalid_argument", argument = "x", index = row,
        expected = "finite numbers", got = format(x[bad[1L]]),
        extra_class = if (is.na(x[bad[1L]])) "ember_error_invalid_argument" else NULL)
    }
  }
  n <- d[1L]
  # Row-major per element: the element's values become one column of a [width, n] matrix.
  values <- matrix(aperm(x, c(rev(seq_along(d)[-1L]), 1L)), ncol = n)
  new_ember_tensor(seq_len(n), new_tensor_source("array", d[-1L], n, values = values, scale = as.double(scale)))
}

#' @rdname as_ember_tensor
#' @export
ember_tensor_shape <- function(x) {
  check_tensor(x, "x")
  tensor_source(x)$shape
}

check_tensor <- function(x, argument) {
  if (!inherits(x, "ember_tensor") || !is.environment(tensor_source(x))) {
    ember_abort(sprintf("'%s' must be an ember_tensor, got %s", argument, class(x)[1L]), argument = argument,
      expected = "an ember_tensor", got = class(x)[1L])
  }
  invisible(x)
}

#' @export
`[.ember_tensor` <- function(x, i) new_ember_tensor(unclass(x)[i], tensor_source(x))

#' @export
`[[.ember_tensor` <- function(x, i) {
  if (length(i) != 1L) ember_abort("'[[' selects exactly one element", argument = "i", expected = "one index")
  x[i]
}

#' @export
`[<-.ember_tensor` <- function(x, i, value) {
  value <- as_ember_tensor(value)
  if (!identical(tensor_source(value), tensor_source(x))) {
    ember_abort("elements can only be replaced by elements of the same tensor source; combine columns with c()",
      argument = "value", expected = "an ember_tensor of the same source")
  }
  idx <- unclass(x)
  idx[i] <- unclass(value)
  new_ember_tensor(idx, tensor_source(x))
}

#' @export
rep.ember_tensor <- function(x, ...) new_ember_tensor(rep(unclass(x), ...), tensor_source(x))

#' @export
c.ember_tensor <- function(...) {
  parts <- lapply(list(...), as_ember_tensor)
  sources <- lapply(parts, tensor_source)
  shapes <- lapply(sources, `[[`, "shape")
  if (!all(vapply(shapes, identical, TRUE, shapes[[1L]]))) {
    ember_abort(sprintf("c() combines tensor columns of one shape; got [%s] and [%s]", paste(shapes[[1L]], collapse = ", "),
      paste(Find(function(s) !identical(s, shapes[[1L]]), shapes), collapse = ", ")), kind = "shape", argument = "...",
      expected = paste(shapes[[1L]], collapse = ", "))
  }
  if (all(vapply(sources, identical, TRUE, sources[[1L]]))) {
    return(new_ember_tensor(unlist(lapply(parts, unclass)), sources[[1L]]))
  }
  kinds <- unique(vapply(sources, `[[`, "", "kind"))
  if (identical(kinds, "files")) {
    paths <- unlist(lapply(parts, function(p) tensor_source(p)$paths[unclass(p)]))
    src <- sources[[1L]]
    return(new_ember_tensor(seq_along(paths), new_tensor_source("files", src$shape, length(paths), paths = paths, scale = 1)))
  }
  # Arrays of different sources (or arrays and files): the selected elements become one new array.
  arr <- do.call(abind_rows, lapply(parts, as.array))
  as_ember_tensor(arr)
}

# Arrays [n_i, ...] of one element shape stacked along their first dimension.
abind_rows <- function(...) {
  parts <- list(...)
  m <- do.call(rbind, lapply(parts, function(p) matrix(p, nrow = dim(p)[1L])))
  array(m, dim = c(nrow(m), dim(parts[[1L]])[-1L]))
}

#' @export
format.ember_tensor <- function(x, ...) {
  shape <- paste(tensor_source(x)$shape, collapse = "x")
  out <- rep(sprintf("<tensor %s>", shape), length(x))
  out[is.na(unclass(x))] <- NA_character_
  out
}

#' @export
print.ember_tensor <- function(x, ...) {
  src <- tensor_source(x)
  what <- if (src$kind == "files") sprintf("%d image file(s)", length(src$paths)) else
    sprintf("a %s array of %d element(s)", if (is.raw(src$values)) "byte" else "double", src$n)
  cat(sprintf("<ember_tensor> %d element(s) of shape [%s], from %s\n", length(x), paste(src$shape, collapse = ", "), what))
  if (length(x)) print(utils::head(format(x), 6L), quote = FALSE)
  invisible(x)
}

#' @export
as.character.ember_tensor <- function(x, ...) format(x)

#' @export
as.data.frame.ember_tensor <- function(x, ...) {
  nm <- deparse1(substitute(x))
  d <- data.frame(seq_along(x))
  d[[1L]] <- x
  names(d) <- nm
  d
}

#' @export
length.ember_tensor <- function(x) length(unclass(x))

#' @export
Ops.ember_tensor <- function(e1, e2) {
  if (!(.Generic %in% c("==", "!="))) {
    ember_abort(sprintf("'%s' is not defined for tensor columns (only == and != are); use as.array() for arithmetic", .Generic),
      argument = .Generic, expected = "== or !=")
  }
  e1 <- as_ember_tensor(e1)
  e2 <- as_ember_tensor(e2)
  n <- max(length(e1), length(e2))
  if (n && (length(e1) == 0L || length(e2) == 0L || n %% length(e1) || n %% length(e2))) {
    ember_abort("tensor columns compared with == must have equal lengths (or one of length 1)", kind = "shape",
      argument = "e2", expected = as.character(length(e1)), got = as.character(length(e2)))
  }
  e1 <- e1[rep_len(seq_along(e1), n)]
  e2 <- e2[rep_len(seq_along(e2), n)]
  same_source <- identical(tensor_source(e1), tensor_source(e2))
  eq <- logical(n)
  for (i in seq_len(n)) {
    a <- unclass(e1)[i]
    b <- unclass(e2)[i]
    eq[i] <- if (is.na(a) || is.na(b)) NA else if (same_source && a == b) TRUE else
      identical(ember_tensor_shape(e1), ember_tensor_shape(e2)) && identical(as.vector(as.array(e1[i])), as.vector(as.array(e2[i])))
  }
  if (.Generic == "==") eq else !eq
}

#' @rdname as_ember_tensor
#' @export
as.array.ember_tensor <- function(x, ...) {
  src <- tensor_source(x)
  n <- length(x)
  if (anyNA(unclass(x))) {
    ember_abort(sprintf("element %d of the tensor column is missing; as.array() needs every element", which(is.na(unclass(x)))[1L]),
      kind = "missing_values", argument = "x", index = which(is.na(unclass(x)))[1L], extra_class = "ember_error_invalid_argument")
  }
  check_materialisable(as.double(n) * prod(src$shape) * 8, "as.array()")
  m <- tensor_rows(x)
  if (is.raw(m)) m <- widen_bytes(m, src$scale) else if (src$scale != 1) m <- m * src$scale
  # [width, n] in C order per element → R array [n, ...].
  a <- array(as.double(m), dim = c(rev(src$shape), n))
  aperm(a, c(length(src$shape) + 1L, rev(seq_along(src$shape))))
}

# Bytes as the engine reads them: a scale 1/k with an integer k divides (1/255: byte / 255 exactly).
widen_bytes <- function(m, scale) {
  k <- 1 / scale
  v <- if (abs(k - round(k)) < 1e-9 * abs(k)) as.integer(m) / round(k) else as.integer(m) * scale
  if (is.matrix(m)) dim(v) <- dim(m)
  v
}

# The rows of `x` as stored: a [width, n] matrix (bytes or doubles) for array sources, decoded
# bytes for files.
tensor_rows <- function(x) {
  src <- tensor_source(x)
  idx <- unclass(x)
  if (src$kind == "array") return(src$values[, idx, drop = FALSE])
  .Call(C_ember_image_read_rows, src$paths[idx], src$shape)
}

# Refuses a materialisation larger than the memory available (MemAvailable on Linux, capped by
# EMBER_MEMORY_LIMIT as in the engine): an ember_error_memory, also of class ember_error_overflow
# (its class before the engine had a memory kind).
check_materialisable <- function(bytes, what) {
  avail <- memory_available()
  if (!is.na(avail) && bytes > avail) {
    ember_abort(sprintf("%s would need %.1f GB (%.0f bytes); only %.1f GB of memory are available (train on the tensor column instead, which reads it batch by batch)",
      what, bytes / 1e9, bytes, avail / 1e9), kind = "memory", argument = "x", expected = sprintf("at most %.0f bytes", avail),
      got = sprintf("%.0f bytes", bytes), extra_class = "ember_error_overflow")
  }
  invisible(TRUE)
}

memory_available <- function() {
  lines <- tryCatch(readLines("/proc/meminfo", n = 5L, warn = FALSE), error = function(e) character(0))
  hit <- grep("^MemAvailable:", lines, value = TRUE)
  limit <- suppressWarnings(as.double(Sys.getenv("EMBER_MEMORY_LIMIT", NA_character_)))
  available <- if (length(hit)) as.double(gsub("[^0-9]", "", hit)) * 1024 else NA_real_
  if (is.na(limit) || limit < 0) return(available)
  min(available, limit, na.rm = TRUE)
}

#' Image files as a tensor column
#'
#' @description
#' A [tensor column][as_ember_tensor] whose elements are image files (PNG or JPEG, greyscale or
#' colour, recognised by their content). Nothing is decoded here: the engine decodes the files of
#' each batch in its worker threads while the previous batch trains (libpng and libjpeg-turbo),
#' converts them to `channels` (grey to colour by repetition, colour to grey by ITU-R 601-2 luma,
#' alpha dropped), resizes images of another size to `height x width` (bilinear, as torchvision's
#' `resize` without antialiasing) and reads `byte / 255`. A file that cannot be decoded stops
#' training with an error naming the file and its row; the model trained so far is kept.
#'
#' @param paths (`character()`)\cr Image files, one per element.
#' @param shape (`integer(3)` or `NULL`)\cr `c(channels, height, width)` of the elements; `NULL`
#'   takes the first file's size, and 1 channel if it is grey, else 3.
#' @return An `ember_tensor` with one element per path.
#' @examples
#' if (requireNamespace("png", quietly = TRUE)) {
#'   dir <- tempfile()
#'   dir.create(dir)
#'   paths <- file.path(dir, sprintf("img%d.png", 1:4))
#'   for (i in 1:4) png::writePNG(array(runif(3 * 8 * 8), c(8, 8, 3)), paths[i])
#'   x <- ember_image_files(paths)
#'   x
#'   dim(as.array(x))
#' }
#' @export
ember_image_files <- function(paths, shape = NULL) {
  if (!is.character(paths) || anyNA(paths)) {
    ember_abort("'paths' must be a character vector of file paths without NA", argument = "paths",
      expected = "file paths", got = class(paths)[1L])
  }
  missing_files <- which(!file.exists(paths))
  if (length(missing_files)) {
    ember_abort(sprintf("image file '%s' (element %d) does not exist%s", paths[missing_files[1L]], missing_files[1L],
      if (length(missing_files) > 1L) sprintf(" (and %d more)", length(missing_files) - 1L) else ""),
      argument = "paths", index = missing_files[1L], expected = "existing files", got = paths[missing_files[1L]])
  }
  paths <- normalizePath(paths)
  if (is.null(shape)) {
    if (!length(paths)) ember_abort("'shape' is needed when 'paths' is empty", argument = "shape", expected = "c(channels, height, width)")
    info <- .Call(C_ember_image_info, paths[1L])
    shape <- c(if (info[1L] <= 2L) 1L else 3L, info[2L], info[3L])
  }
  if (!is.numeric(shape) || length(shape) != 3L || anyNA(shape) || any(shape < 1) || any(shape != round(shape)) ||
      !(shape[1L] %in% c(1, 3))) {
    ember_abort("'shape' must be c(channels, height, width) with 1 or 3 channels", argument = "shape",
      expected = "c(1 or 3, height, width)", got = deparse_short(shape))
  }
  n <- length(paths)
  new_ember_tensor(seq_len(n), new_tensor_source("files", as.integer(shape), n, paths = paths, scale = 1))
}
