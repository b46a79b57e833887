# Data sets shipped by Debian and read into tensor columns.

fashion_mnist_dir <- "/usr/share/datasets/fashion-mnist"
fashion_mnist_classes <- c("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
  "Bag", "Ankle boot")

#' Read an IDX file
#'
#' Reads a file in the IDX format of MNIST and Fashion-MNIST (optionally gzip-compressed):
#' unsigned-byte images become an [ember_tensor][as_ember_tensor] column that keeps one byte per
#' pixel (read as `byte / 255`), and one-dimensional label files an integer vector.
#'
#' @param path (`character(1)`)\cr The file (`.gz` files are decompressed while reading).
#' @return An `ember_tensor` with elements of shape `c(1, rows, cols)` for 3-dimensional image
#'   files, or an integer vector for label files.
#' @examples
#' f <- "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
#' if (file.exists(f)) table(ember_read_idx(f))
#' @export
ember_read_idx <- function(path) {
  if (!is.character(path) || length(path) != 1L || is.na(path)) {
    ember_abort("'path' must be a single file path", argument = "path", expected = "a file path")
  }
  if (!file.exists(path)) ember_abort(sprintf("the IDX file '%s' does not exist", path), argument = "path", got = path)
  con <- if (grepl("\\.gz$", path)) gzfile(path, "rb") else file(path, "rb")
  on.exit(close(con))
  magic <- readBin(con, "raw", 4L)
  if (length(magic) != 4L || magic[1L] != as.raw(0) || magic[2L] != as.raw(0) || magic[3L] != as.raw(8) ||
      !(as.integer(magic[4L]) %in% 1:4)) {
    ember_abort(sprintf("'%s' is not an IDX file of unsigned bytes (its first bytes are %s)", path,
      paste(format(magic), collapse = " ")), kind = "corrupt", argument = "path", expected = "magic 00 00 08 0k", got = path)
  }
  rank <- as.integer(magic[4L])
  dims <- readBin(con, "integer", rank, size = 4L, endian = "big")
  if (length(dims) != rank || any(dims < 1L)) {
    ember_abort(sprintf("the IDX file '%s' has a malformed header", path), kind = "corrupt", argument = "path", got = path)
  }
  total <- prod(as.double(dims))
  bytes <- readBin(con, "raw", total)
  if (length(bytes) != total) {
    ember_abort(sprintf("the IDX file '%s' is truncated: %.0f of %.0f bytes", path, length(bytes), total),
      kind = "corrupt", argument = "path", expected = format(total), got = format(length(bytes)))
  }
  if (rank == 1L) return(as.integer(bytes))
  n <- dims[1L]
  shape <- if (rank == 3L) c(1L, dims[2:3]) else dims[-1L]
  new_ember_tensor(seq_len(n), new_tensor_source("array", shape, n, values = matrix(bytes, ncol = n), scale = 1 / 255))
}

# The Fashion-MNIST data as a data.table: 70,000 images (the first 60,000 the training set, the
# last 10,000 the test set), their class and the split.
fashion_mnist_data <- function() {
  files <- file.path(fashion_mnist_dir, c("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"))
  if (!all(file.exists(files))) {
    ember_abort(sprintf("Fashion-MNIST is read from Debian's package 'dataset-fashion-mnist' (%s), which is not installed; install it with: apt-get install dataset-fashion-mnist",
      fashion_mnist_dir), kind = "state", argument = "fashion_mnist", expected = "the package dataset-fashion-mnist",
      got = "missing files")
  }
  train <- ember_read_idx(files[1L])
  test <- ember_read_idx(files[3L])
  src <- tensor_source(train)
  values <- cbind(src$values, tensor_source(test)$values)
  n <- ncol(values)
  image <- new_ember_tensor(seq_len(n), new_tensor_source("array", src$shape, n, values = values, scale = 1 / 255))
  labels <- c(ember_read_idx(files[2L]), ember_read_idx(files[4L]))
  d <- data.frame(class = factor(fashion_mnist_classes[labels + 1L], levels = fashion_mnist_classes),
    split = factor(rep(c("train", "test"), c(length(train), length(test))), levels = c("train", "test")))
  d$image <- image
  d
}

#' Fashion-MNIST classification task
#'
#' @name mlr_tasks_fashion_mnist
#' @description
#' Zalando's Fashion-MNIST: 70,000 greyscale images of 28 x 28 pixels in 10 classes of clothing,
#' as an 'mlr3' classification task with one feature, `image`, a [tensor column][as_ember_tensor]
#' of shape `c(1, 28, 28)` that keeps one byte per pixel (about 55 MB) and is read as
#' `byte / 255`. Rows 1 to 60,000 are the training images, rows 60,001 to 70,000 the test images;
#' the column `split` (not a feature) says which, and `rsmp("custom")` reproduces the official
#' split. The data come from Debian's package `dataset-fashion-mnist`; without it the task
#' raises an error naming that package.
#'
#' @section Dictionary:
#' `mlr3::tsk("fashion_mnist")`, registered when 'mlr3' is loaded.
#' @examples
#' if (requireNamespace("mlr3", quietly = TRUE) && file.exists("/usr/share/datasets/fashion-mnist")) {
#'   task <- mlr3::tsk("fashion_mnist")
#'   task
#'   split <- task$backend$data(task$row_ids, "split")$split
#'   official <- mlr3::rsmp("custom")$instantiate(task, list(which(split == "train")), list(which(split == "test")))
#' }
NULL

# tsk("fashion_mnist"): the 70,000 images as one ember_tensor feature.
load_task_fashion_mnist <- function(id = "fashion_mnist") {
  data <- fashion_mnist_data()
  backend <- mlr3::as_data_backend(data)
  task <- mlr3::TaskClassif$new(id, backend, target = "class", label = "Fashion-MNIST Images")
  task$col_roles$feature <- "image"
  task$man <- "mlr3ember::mlr_tasks_fashion_mnist"
  task
}
