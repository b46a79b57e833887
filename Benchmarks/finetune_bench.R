# Fine-tuning cost: an epoch of torchvision's ResNet-18 (ember_cnn("resnet18")) on 64 x 64 RGB
# images with the body frozen (only the head `fc` trains: the body runs forward only, with no
# tape, no gradients and no optimizer state) against the same epoch with everything training.
# 512 random byte images, 10 classes, batch 64, Adam; one warm-up epoch, then the median seconds
# per epoch over 3 epochs, each measured by an ember_callback() at the epoch's start and end.
# Needs only mlr3ember:
#
#   R_LIBS=.rlib Rscript Benchmarks/finetune_bench.R [--threads 1] [--size 64]
#   make bench-finetune

suppressPackageStartupMessages(library(mlr3ember))
args <- commandArgs(trailingOnly = TRUE)
arg <- function(name, default) if (length(i <- which(args == name))) as.integer(args[i + 1L]) else default
threads <- arg("--threads", 1L)
size <- arg("--size", 64L)
info <- ember_info()
cpu <- sub(".*:\\s*", "", grep("^model name", readLines("/proc/cpuinfo"), value = TRUE)[1L])
cat(sprintf("CPU: %s; BLAS core: %s; matrix-product kernels: %s; %d thread(s); load average %s\n", cpu,
  info$blas_core, if (is.na(info$blas_advice)) "OpenBLAS" else "Ember", threads,
  paste(scan("/proc/loadavg", what = "", n = 3L, quiet = TRUE), collapse = " ")))

set.seed(1)
n <- 512L
x <- as_ember_tensor(array(as.raw(sample(0:255, n * 3L * size * size, TRUE)), c(n, 3L, size, size)))
y <- factor(sample(letters[1:10], n, TRUE))
epoch_seconds <- function(callbacks) {
  started <- numeric(0)
  times <- numeric(0)
  timer <- ember_callback("timer", on_epoch_begin = function(ctx) started <<- proc.time()[["elapsed"]],
    on_epoch_end = function(ctx) times <<- c(times, proc.time()[["elapsed"]] - started))
  ember_fit(x, y, ember_cnn("resnet18"), epochs = 4L, batch_size = 64L, seed = 1L, num_threads = threads,
    progress = FALSE, callbacks = c(callbacks, list(timer)))
  stats::median(times[-1L])
}
full <- epoch_seconds(list())
frozen <- epoch_seconds(list(ember_cb_unfreeze(starting_weights = "fc.*")))
cat(sprintf("\nResNet-18, %d images 3 x %d x %d, batch 64, Adam, %d thread(s): seconds per epoch\n", n, size, size, threads))
cat(sprintf("| all trainable | frozen body (fc only) | speed-up |\n|---|---|---|\n| %.2f | %.2f | %.2fx |\n",
  full, frozen, full / frozen))
