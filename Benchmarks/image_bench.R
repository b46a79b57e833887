# The R side of `make bench-images`: images through mlr3ember as an R user runs them (the package
# installed in .rlib; Benchmarks/image_bench.py runs this once per measurement, with R_LIBS set):
#
#   Rscript image_bench.R fashion --dir DIR [--epochs 1] [--threads 1] [--augment 0|1] [--padding 2] [--seed 1]
#   Rscript image_bench.R images --data FILE --labels FILE --size 32 [--model resnet18] [--n 384] [--epochs 1]
#                                [--warmup 1] [--predict 512] [--threads 1] [--augment 0|1] [--padding 4] [--seed 1]
#   Rscript image_bench.R jpeg --dir DIR [--n 1000] [--size 224] [--threads 1] [--epochs 1] [--as-array 256]
#
# fashion: LeNet (ember_cnn("lenet")) on Fashion-MNIST read with ember_read_idx() (a byte tensor
#   column), batch 128, Adam lr 1e-3, shuffled; train images/s over the epochs (from the first
#   epoch's start to the last epoch's end, seen by an ember_callback(): ember_fit()'s set-up, which
#   copies the column into the engine, is reported apart as fit_seconds), predict() images/s on the
#   10,000 test images, test accuracy, and the R memory of the column's bytes. --augment 1 adds
#   random_crop(28, padding = --padding) + random_horizontal_flip.
# images: ember_cnn(--model) on byte images [3, size, size] (--data: C order; --labels: one byte per
#   image) made a tensor column with as_ember_tensor(); trains on the first --n images for --warmup
#   + --epochs epochs (images/s of each timed epoch, median reported), then predicts the first
#   --predict. --augment 1 adds random_crop(size, padding = --padding) + random_horizontal_flip.
# jpeg: the files img-0000.jpg ... of --dir as ember_image_files(paths, shape = c(3, size, size))
#   (decoded by the engine and resized, bilinear, when their size differs). Timed: predict() of a
#   tiny network (global average pooling + a linear head, 4 parameters) over the whole column in
#   batches of 128: decoding and resizing with a negligible network (median over --epochs passes,
#   after one batch); and as.array() of the first --as-array images (decoding plus R's copy into
#   a double array [n, 3, size, size]).
# Prints one JSON line.

json_line <- function(fields) {
  value <- function(v) {
    if (is.null(v)) return("null")
    if (is.character(v)) return(sprintf("\"%s\"", gsub("[\"\\\n]", "'", v)))
    if (is.logical(v)) return(if (is.na(v)) "null" else tolower(as.character(v)))
    if (length(v) != 1L) return(sprintf("[%s]", paste(vapply(v, value, ""), collapse = ", ")))
    if (!is.finite(v)) "null" else format(v, digits = 8)
  }
  cat("{", paste(sprintf("\"%s\": %s", names(fields), vapply(fields, value, "")), collapse = ", "), "}\n", sep = "")
}

peak_rss_mib <- function() {
  line <- grep("^VmHWM:", readLines("/proc/self/status"), value = TRUE)
  as.numeric(gsub("[^0-9]", "", line)) / 1024
}

now <- function() proc.time()[["elapsed"]]

args <- commandArgs(trailingOnly = TRUE)
command <- args[1L]
flags <- args[-1L]
opt <- as.list(flags[c(FALSE, TRUE)])
names(opt) <- sub("^--", "", flags[c(TRUE, FALSE)])
int <- function(name, default = NULL) if (is.null(opt[[name]])) default else as.integer(opt[[name]])

# An ember_callback() that notes when each epoch begins and ends: list(callback, seconds()).
epoch_clock <- function() {
  times <- new.env()
  times$begin <- numeric(0)
  times$end <- numeric(0)
  callback <- ember_callback("clock",
    on_epoch_begin = function(ctx) times$begin <- c(times$begin, now()),
    on_epoch_end = function(ctx) times$end <- c(times$end, now()))
  list(callback = callback, seconds = function() times$end - times$begin)
}

augmentation <- function(size) {
  if (!identical(int("augment", 0L), 1L)) return(NULL)
  list(ember_transform("random_crop", size = size, padding = int("padding")),
    ember_transform("random_horizontal_flip"))
}

fashion <- function(threads) {
  dir <- opt$dir
  read <- function(name) ember_read_idx(file.path(dir, name))
  x <- read("train-images-idx3-ubyte.gz")
  y <- factor(read("train-labels-idx1-ubyte.gz"), levels = 0:9)
  xt <- read("t10k-images-idx3-ubyte.gz")
  yt <- read("t10k-labels-idx1-ubyte.gz")
  epochs <- int("epochs", 1L)
  clock <- epoch_clock()
  fit_seconds <- system.time(model <- ember_fit(x, y, architecture = ember_cnn("lenet"), epochs = epochs,
    batch_size = 128L, optimizer = "adam", lr = 1e-3, num_threads = threads, shuffle = TRUE, seed = int("seed", 1L),
    augment = augmentation(28L), callbacks = list(clock$callback)))[["elapsed"]]
  train_seconds <- sum(clock$seconds())
  predict_seconds <- system.time(p <- predict(model, xt, batch_size = 128L, num_threads = threads))[["elapsed"]]
  list(train_images_per_s = epochs * length(y) / train_seconds, fit_seconds = fit_seconds, train_seconds = train_seconds,
    predict_images_per_s = length(yt) / predict_seconds, accuracy = mean(as.character(p) == as.character(yt)),
    column_mb = as.numeric(object.size(attr(x, "source")$values)) / 1e6, final_loss = tail(model$history$train_loss, 1L))
}

images <- function(threads) {
  size <- int("size")
  bytes <- readBin(opt$data, "raw", file.size(opt$data))
  count <- length(bytes) %/% (3L * size * size)
  # C order [n, 3, size, size] is R's [size, size, 3, n]: the array [n, 3, size, size] is its transpose.
  x <- as_ember_tensor(aperm(array(bytes, c(size, size, 3L, count)), 4:1))
  rm(bytes)
  y <- factor(as.integer(readBin(opt$labels, "raw", count)), levels = 0:9)
  n <- min(int("n", count), count)
  warmup <- int("warmup", 1L)
  epochs <- int("epochs", 1L)
  clock <- epoch_clock()
  fit_seconds <- system.time(model <- ember_fit(x[seq_len(n)], y[seq_len(n)], architecture = ember_cnn(opt$model %||% "resnet18"),
    epochs = warmup + epochs, batch_size = 128L, optimizer = "adam", lr = 1e-3, num_threads = threads, shuffle = TRUE,
    seed = int("seed", 1L), augment = augmentation(size), callbacks = list(clock$callback)))[["elapsed"]]
  rates <- n / clock$seconds()[warmup + seq_len(epochs)]
  m <- min(int("predict", 0L), count)
  predict_rate <- NULL
  if (m > 0L) {
    seconds <- system.time(predict(model, x[seq_len(m)], batch_size = 128L, num_threads = threads))[["elapsed"]]
    predict_rate <- m / seconds
  }
  list(train_images_per_s = stats::median(rates), epoch_images_per_s = rates, predict_images_per_s = predict_rate,
    train_images = n, fit_seconds = fit_seconds, final_loss = tail(model$history$train_loss, 1L))
}

jpeg <- function(threads) {
  size <- int("size", 224L)
  paths <- file.path(opt$dir, sprintf("img-%04d.jpg", seq_len(int("n", 1000L)) - 1L))
  x <- ember_image_files(paths, shape = c(3L, size, size))
  # A negligible network: global average pooling and a linear head (trained on 8 images).
  tiny <- ember_network(ember_head(ember_flatten(ember_adaptive_avg_pool(ember_input_image(), 1L))))
  model <- ember_fit(x[1:8], factor(rep(c("a", "b"), 4L)), architecture = tiny, epochs = 1L, batch_size = 8L,
    seed = 1L, num_threads = threads)
  predict(model, x[seq_len(min(128L, length(x)))], batch_size = 128L, num_threads = threads)
  rates <- vapply(seq_len(int("epochs", 1L)), function(i) {
    length(x) / system.time(predict(model, x, batch_size = 128L, num_threads = threads))[["elapsed"]]
  }, 0)
  rss <- peak_rss_mib()  # before as.array()'s R arrays
  k <- min(int("as-array", 256L), length(x))
  ember_set_threads(threads)
  array_rate <- k / system.time(a <- as.array(x[seq_len(k)]))[["elapsed"]]
  stopifnot(identical(dim(a), c(k, 3L, size, size)))
  list(images_per_s = stats::median(rates), pass_images_per_s = rates, images = length(x),
    as_array_images_per_s = array_rate, as_array_images = k, peak_rss_mib = rss,
    peak_rss_with_array_mib = peak_rss_mib())
}

`%||%` <- function(a, b) if (is.null(a)) b else a

result <- tryCatch({
  suppressPackageStartupMessages(library(mlr3ember))
  threads <- int("threads", 1L)
  body <- switch(command, fashion = fashion, images = images, jpeg = jpeg,
    stop(sprintf("unknown command '%s' (fashion, images or jpeg)", command)))
  fields <- body(threads)
  info <- ember_info()
  c(list(system = "ember-r", bench = command), fields, list(blas_core = info$blas_core,
    # The engine runs its own matrix-product kernels exactly when it advises on OpenBLAS's (BLAS.kernels).
    kernels = if (is.na(info$blas_advice)) "openBLAS" else "ember", threads = threads,
    version = info$version), if (is.null(fields$peak_rss_mib)) list(peak_rss_mib = peak_rss_mib()))
}, error = function(e) list(system = "ember-r", error = conditionMessage(e)))
json_line(result)
if (!is.null(result$error)) quit(status = 1)
