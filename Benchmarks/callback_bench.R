# What an R callback costs per epoch: the same training (an MLP 4-16-3 on iris, 150 rows, batch 150,
# so that an epoch is one small batch and the overhead is not hidden) without callbacks and with a
# callback whose every stage does nothing (on_epoch_begin, on_epoch_end, on_valid_end) or reads the
# context (the record and the history). The overhead per epoch is the difference of the times over
# the epochs; median of 5 repetitions after one warm-up. Needs only mlr3ember:
#
#   R_LIBS=.rlib Rscript Benchmarks/callback_bench.R [--epochs 2000]
#   make bench-callbacks

suppressPackageStartupMessages(library(mlr3ember))
args <- commandArgs(trailingOnly = TRUE)
epochs <- if (length(i <- which(args == "--epochs"))) as.integer(args[i + 1L]) else 2000L
info <- ember_info()
cpu <- sub(".*:\\s*", "", grep("^model name", readLines("/proc/cpuinfo"), value = TRUE)[1L])
cat(sprintf("CPU: %s; BLAS core: %s; matrix-product kernels: %s; %d epochs\n", cpu, info$blas_core,
  if (is.na(info$blas_advice)) "OpenBLAS" else "Ember", epochs))

x <- iris[, 1:4]
y <- iris$Species
fit <- function(callbacks) {
  system.time(ember_fit(x, y, ember_mlp(neurons = 16L), epochs = epochs, batch_size = 150L, seed = 1L,
    progress = FALSE, callbacks = callbacks))[["elapsed"]]
}
noop <- ember_callback("noop", on_epoch_begin = function(ctx) NULL, on_epoch_end = function(ctx) NULL,
  on_valid_end = function(ctx) NULL)
reader <- ember_callback("reader", on_epoch_end = function(ctx) {
  loss <- ctx$record$train_loss
  invisible(loss)
})
cases <- list(none = list(), noop = list(noop), reads_record = list(reader))
times <- vapply(cases, function(cb) {
  fit(cb)
  stats::median(replicate(5L, fit(cb)))
}, numeric(1))
base <- times[["none"]]
cat("\n| callbacks | ms per epoch | overhead ms per epoch |\n|---|---|---|\n")
for (k in names(times)) {
  cat(sprintf("| %s | %.4f | %s |\n", k, times[[k]] / epochs * 1e3,
    if (k == "none") "-" else sprintf("%.4f", (times[[k]] - base) / epochs * 1e3)))
}
