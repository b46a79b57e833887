# The R side of the benchmark harness: one cell of the MLP grid through mlr3ember::ember_fit(),
# with the options of ember-bench (Benchmarks/run.py runs it with R_LIBS pointing at .rlib):
#
#   Rscript ember_bench.R --data FILE --n 2000 --p 1000 --layers 4 --width 100 --opt sgd --epochs 20 --warmup 1
#
# ember_fit() trains whole epochs, so the time per batch is a difference of two fits on the same
# data: (time of warmup + epochs epochs - time of warmup epochs) / (epochs · batches per epoch).
# This removes the one-off costs (encoding the data frame, copying it into the engine) and gives
# the mean, not the median, of the steady-state batches; after one throw-away fit (first-call
# costs), three fits of each length alternate and the fastest of each is used. Prints one JSON line.
#
#   Rscript ember_bench.R --bench latency [--calls 2000] [--rows 10000]
#
# Prediction latency (Benchmarks/README.md): a serving MLP (2 × 64, ReLU) on a tabular task with
# 8 numeric features and one factor of 5 levels (binary target), trained for 2 epochs; the median
# time of one row through predict() and, when mlr3 is installed, through a learner's
# $predict_newdata() (with the part spent outside the learner's own $.predict(): mlr3's, and the
# part inside predict()), and
# rows/s of predict(type = "prob") on 10,000 rows.

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

# The serving task of the latency benchmark: `n` rows, x1..x8 ~ N(0, 1), f a factor of 5 levels.
latency_data <- function(n, seed) {
  set.seed(seed)
  x <- as.data.frame(matrix(rnorm(n * 8L), n, 8L, dimnames = list(NULL, sprintf("x%d", 1:8))))
  x$f <- factor(sample(letters[1:5], n, replace = TRUE), levels = letters[1:5])
  y <- factor(ifelse(x$x1 + x$x2 * x$x3 + (x$f %in% c("a", "b")) + rnorm(n, sd = 0.5) > 0.5, "yes", "no"), levels = c("yes", "no"))
  list(x = x, y = y)
}

# Median seconds of `calls` calls of `f` (each timed alone), after `warmup` calls; `between` runs
# untimed before each call.
median_seconds <- function(f, calls, warmup = max(20L, calls %/% 10L), between = function() NULL) {
  for (i in seq_len(warmup)) f()
  t <- numeric(calls)
  for (i in seq_len(calls)) {
    between()
    t0 <- Sys.time()
    f()
    t[i] <- as.double(Sys.time()) - as.double(t0)
  }
  median(t)
}

latency_bench <- function() {
  calls <- int("calls", 2000L)
  rows <- int("rows", 10000L)
  train <- latency_data(2000L, 1L)
  model <- ember_fit(train$x, train$y, ember_mlp(neurons = c(64L, 64L)), epochs = 2L, batch_size = 32L, seed = 1L,
    progress = FALSE)
  one <- latency_data(1L, 2L)$x
  many <- latency_data(rows, 3L)$x
  junk <- runif(8e6)
  out <- list(system = "ember-r", network = "MLP 13-64-64-1 (8 numeric + one-hot of 5 levels), binary",
    predict_row_us = median_seconds(function() predict(model, one), calls) * 1e6,
    predict_row_prob_us = median_seconds(function() predict(model, one, type = "prob"), calls) * 1e6,
    # Cold: the caches evicted before each call by reading 64 MB (as other work between requests would).
    predict_row_cold_us = median_seconds(function() predict(model, one), calls %/% 4L, between = function() sum(junk)) * 1e6,
    predict_rows_per_s = rows / median_seconds(function() predict(model, many, type = "prob"), 20L, 3L),
    # The same over the process's CPU time (20 calls): what the computation costs whatever else runs.
    predict_rows_per_cpu_s = {
      cpu <- function() sum(proc.time()[c("user.self", "sys.self")])
      c0 <- cpu()
      for (i in 1:20) predict(model, many, type = "prob")
      20 * rows / (cpu() - c0)
    },
    rows = rows)
  if (requireNamespace("mlr3", quietly = TRUE)) {
    task <- mlr3::as_task_classif(cbind(train$x, y = train$y), target = "y", id = "serving")
    learner <- mlr3::lrn("classif.ember_mlp", neurons = c(64L, 64L), epochs = 2L, batch_size = 32L, seed = 1L)
    learner$predict_type <- "prob"
    learner$train(task)
    # mlr3's own part: the time of $predict_newdata() less the time spent inside the learner's
    # private $.predict() (which takes the features from the task, task$data(), and calls
    # predict()); the time inside predict() itself is measured too (its method wrapped).
    private <- learner$.__enclos_env__$private
    inner <- private$.predict
    inside <- 0
    in_predict <- 0
    unlockBinding(".predict", private)
    private$.predict <- function(task) {
      t0 <- Sys.time()
      on.exit(inside <<- as.double(Sys.time()) - as.double(t0))
      inner(task)
    }
    lockBinding(".predict", private)
    # (The learner calls stats::predict() from mlr3ember's namespace, whose own binding of the
    # method is found first: the wrapper replaces that binding while the calls are timed.)
    ns <- asNamespace("mlr3ember")
    method <- ns$predict.ember_model
    rebind <- function(f) {
      unlockBinding("predict.ember_model", ns)
      assign("predict.ember_model", f, envir = ns)
      lockBinding("predict.ember_model", ns)
    }
    rebind(function(object, ...) {
      t0 <- Sys.time()
      on.exit(in_predict <<- as.double(Sys.time()) - as.double(t0))
      method(object, ...)
    })
    totals <- numeric(calls)
    own <- numeric(calls)
    ember <- numeric(calls)
    for (i in seq_len(calls %/% 10L)) learner$predict_newdata(one)
    for (i in seq_len(calls)) {
      t0 <- Sys.time()
      learner$predict_newdata(one)
      totals[i] <- as.double(Sys.time()) - as.double(t0)
      own[i] <- totals[i] - inside
      ember[i] <- in_predict
    }
    rebind(method)
    out$mlr3_row_us <- median(totals) * 1e6
    out$mlr3_own_us <- median(own) * 1e6
    out$mlr3_predict_us <- median(ember) * 1e6
    out$mlr3_version <- as.character(utils::packageVersion("mlr3"))
  }
  c(out, blas_core = ember_info()$blas_core, peak_rss_mib = peak_rss_mib())
}

result <- tryCatch({
  suppressPackageStartupMessages(library(mlr3ember))
  if (identical(opt$bench, "latency")) {
    result <- latency_bench()
    json_line(result)
    quit(status = 0)
  }
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
  # Three fits of each length, alternating; the fastest of each (the least disturbed by the host,
  # as the harness keeps each system's fastest run) rather than the median of the three
  # differences, where a slow long fit or a disturbed short one moves the figure either way.
  shorts <- longs <- numeric(0)
  for (i in 1:3) {
    short <- fit(warmup)
    long <- fit(warmup + epochs)
    shorts <- c(shorts, short$seconds)
    longs <- c(longs, long$seconds)
  }
  batches <- epochs * ceiling(n / 32)
  list(system = "ember-r", mean_batch_ms = (min(longs) - min(shorts)) / batches * 1e3,
    fit_seconds = long$seconds, final_loss = long$loss, blas_core = ember_info()$blas_core,
    # The engine runs its own matrix-product kernels for every product when it advises on OpenBLAS's,
    # else for products with at most 64 rows of C (BLAS.kernels: .ember, .byShape).
    kernels = if (is.na(ember_info()$blas_advice)) "byShape" else "ember",
    threads = int("threads", 1L), peak_rss_mib = peak_rss_mib())
}, error = function(e) list(system = "ember-r", error = conditionMessage(e)))
json_line(result)
if (!is.null(result$error)) quit(status = 1)
