# What extending training from R costs.
#
# 1. An R callback per epoch: the same training (an MLP 4-16-3 on iris, 150 rows, batch 150,
# so that an epoch is one small batch and the overhead is not hidden) without callbacks and with a
# callback whose every stage does nothing (on_epoch_begin, on_epoch_end, on_valid_end) or reads the
# context (the record and the history). The overhead per epoch is the difference of the times over
# the epochs; median of 5 repetitions after one warm-up.
# 2. A custom loss against the built-in loss it restates: an MLP 1000-200-200-1 on the paper grid's
#    regression data (n = 2000, p = 1000, batch 32, Adam), mse and l1 built in and as
#    ember_loss_fn(), time per batch over 5 epochs (median of 3), and their ratio.
# Needs only mlr3ember:
#
#   R_LIBS=.rlib Rscript Benchmarks/extending_bench.R [--epochs 2000]
#   make bench-extending

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

# 2. Custom losses.
set.seed(1)
n <- 2000L
p <- 1000L
gx <- matrix(rnorm(n * p), n, p)
colnames(gx) <- sprintf("x%d", seq_len(p))
gy <- drop(gx %*% rnorm(p, sd = sqrt(1 / p))) + 0.01 * rnorm(n)
net <- ember_mlp(neurons = c(200L, 200L))
loss_time <- function(loss) {
  run <- function() system.time(ember_fit(gx, gy, net, loss = loss, epochs = 5L, batch_size = 32L, seed = 1L,
    progress = FALSE, standardize = FALSE))[["elapsed"]]
  run()
  stats::median(replicate(3L, run())) / (5 * ceiling(n / 32)) * 1e3
}
losses <- list(mse = list("mse", ember_loss_fn(function(pred, target) mean((pred - target)^2))),
  l1 = list("l1", ember_loss_fn(function(pred, target) mean(abs(pred - target)))))
cat("\n| loss | built-in ms/batch | ember_loss_fn ms/batch | built-in / custom speed |\n|---|---|---|---|\n")
for (k in names(losses)) {
  a <- loss_time(losses[[k]][[1L]])
  b <- loss_time(losses[[k]][[2L]])
  cat(sprintf("| %s | %.3f | %.3f | %.2f |\n", k, a, b, a / b))
}
