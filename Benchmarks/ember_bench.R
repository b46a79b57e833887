# The R side of the benchmark harness: one cell of the MLP grid through mlr3ember::ember_fit(),
# with the options of ember-bench (Benchmarks/run.py runs it with R_LIBS pointing at .rlib):
#
#   Rscript ember_bench.R --data FILE --n 2000 --p 1000 --layers 4 --width 100 --opt sgd --epochs 20 --warmup 1
#
# ember_fit() trains whole epochs, so the time per batch is a difference of two fits on the same
# data: (time of warmup + epochs epochs - time of warmup epochs) / (epochs · batches per epoch).
# This removes the one-off costs (encoding the data frame, copying it into the engine) and gives
# the mean, not the median, of the steady-state batches; after one throw-away fit (first-call
# costs), the median of 3 such differences is reported. Prints one JSON line.

json_line <- function(fields) {
  value <- function(v) {
    if (is.character(v)) return(sprintf("\"%s\"", gsub("[\"\\\n]", "'", v)))
    if (!is.finite(v)) "null" else format(v, digits = 8)
  }
  cat("{", paste(sprintf("\"%s\": %s", names(fields), vapply(fields, value, "")), collapse = ", "), "}\n", sep = "")
}

peak_rss_mib <- function() {
  line <- grep("^VmHWM:", readLines("/proc/self/status"), value = TRUE)
  as.numeric(gsub("[^0-9]", "", line)) / 1024
}

args <- commandArgs(trailingOnly = TRUE)
opt <- as.list(args[c(FALSE, TRUE)])
names(opt) <- sub("^--", "", args[c(TRUE, FALSE)])
int <- function(name, default = NULL) if (is.null(opt[[name]])) default else as.integer(opt[[name]])

result <- tryCatch({
  suppressPackageStartupMessages(library(mlr3ember))
  n <- int("n"); p <- int("p"); epochs <- int("epochs"); warmup <- int("warmup", 1L)
  values <- readBin(opt$data, "numeric", n = n * (p + 1), size = 4, endian = "little")
  x <- matrix(values[seq_len(n * p)], nrow = n, byrow = TRUE)
  colnames(x) <- sprintf("x%d", seq_len(p))
  y <- values[n * p + seq_len(n)]
  # The network: ember_fit(architecture = ember_mlp(neurons)), or ember_fit(neurons) in the first API.
  # (Not do.call: an error message would deparse the whole data matrix.)
  hidden <- rep(int("width"), int("layers"))
  train <- if ("architecture" %in% names(formals(ember_fit))) {
    function(...) ember_fit(x, y, architecture = ember_mlp(neurons = hidden), ...)
  } else {
    function(...) ember_fit(x, y, neurons = hidden, ...)
  }
  fit <- function(e) {
    elapsed <- system.time(model <- train(epochs = e, batch_size = 32L, optimizer = opt$opt, lr = 1e-4,
      shuffle = FALSE, standardize = FALSE, seed = 1L, num_threads = int("threads", 1L)))[["elapsed"]]
    list(seconds = elapsed, loss = tail(model$history$train_loss, 1))
  }
  fit(1L)
  differences <- numeric(0)
  for (i in 1:3) {
    short <- fit(warmup)
    long <- fit(warmup + epochs)
    differences <- c(differences, long$seconds - short$seconds)
  }
  batches <- epochs * ceiling(n / 32)
  list(system = "ember-r", mean_batch_ms = median(differences) / batches * 1e3,
    fit_seconds = long$seconds, final_loss = long$loss, blas_core = ember_info()$blas_core,
    # The engine runs its own matrix-product kernels exactly when it advises on OpenBLAS's (BLAS.kernels).
    kernels = if (is.na(ember_info()$blas_advice)) "openBLAS" else "ember",
    threads = int("threads", 1L), peak_rss_mib = peak_rss_mib())
}, error = function(e) list(system = "ember-r", error = conditionMessage(e)))
json_line(result)
if (!is.null(result$error)) quit(status = 1)
