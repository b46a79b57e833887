# The cost of writing a network as an mlr3pipelines graph: time per batch of an MLP built from
# Ember PipeOps (ingress -> linear/relu blocks -> head -> model) against the predefined learner
# regr.ember_mlp with the same layers, on cells of the mlr3torch paper's grid (n = 2000, p = 1000,
# batch 32, SGD lr 1e-4, no shuffling, no standardisation, one thread). Both learners build the
# same network description, so the engine does the same work; what differs is the R side of a
# GraphLearner's $train(). Per batch = (time of a fit of `epochs + 1` epochs - time of a fit of 1
# epoch) / (epochs * batches), median of 3 repetitions. Needs mlr3 and mlr3pipelines:
#
#   R_LIBS=.rlib:<library with mlr3> Rscript Benchmarks/graph_bench.R [--epochs 10]
#   make bench-graph MLR3_LIB=<library with mlr3>

suppressPackageStartupMessages({
  library(mlr3ember)
  library(mlr3)
  library(mlr3pipelines)
})
lgr::get_logger("mlr3")$set_threshold("warn")
args <- commandArgs(trailingOnly = TRUE)
epochs <- if (length(i <- which(args == "--epochs"))) as.integer(args[i + 1L]) else 10L

info <- ember_info()
cpu <- sub(".*:\\s*", "", grep("^model name", readLines("/proc/cpuinfo"), value = TRUE)[1L])
# The engine runs its own matrix-product kernels exactly when it advises on OpenBLAS's.
cat(sprintf("CPU: %s; BLAS core: %s; matrix-product kernels: %s\n", cpu, info$blas_core,
  if (is.na(info$blas_advice)) "OpenBLAS" else "Ember"))

set.seed(1)
n <- 2000L
p <- 1000L
x <- matrix(rnorm(n * p), n, p)
colnames(x) <- sprintf("x%d", seq_len(p))
y <- drop(x %*% rnorm(p, sd = sqrt(1 / p))) + 0.01 * rnorm(n)
task <- as_task_regr(data.frame(x, y = y), target = "y")
batches <- ceiling(n / 32)

common <- list(batch_size = 32L, seed = 1L, shuffle = FALSE, standardize = FALSE, num_threads = 1L)
predefined <- function(width, layers) {
  learner <- lrn("regr.ember_mlp", neurons = rep(width, layers), optimizer = "sgd", opt.lr = 1e-4)
  learner$param_set$set_values(.values = common)
  function(e) { learner$param_set$values$epochs <- e; learner }
}
graph <- function(width, layers) {
  block <- po("ember_linear", id = "linear", out_features = width) %>>% po("ember_relu", id = "relu")
  g <- po("ember_ingress_num") %>>% po("ember_block", block, id = "block", n_blocks = layers) %>>% po("ember_head") %>>%
    po("ember_optimizer", optimizer = "sgd", lr = 1e-4) %>>% po("ember_model_regr")
  learner <- as_learner(g)
  learner$param_set$set_values(.values = stats::setNames(common, paste0("ember_model_regr.", names(common))))
  function(e) { learner$param_set$values$ember_model_regr.epochs <- e; learner }
}
per_batch <- function(make) {
  fit <- function(e) system.time(make(e)$train(task))[["elapsed"]]
  fit(1L)  # first-call costs
  stats::median(replicate(3L, (fit(epochs + 1L) - fit(1L)) / (epochs * batches))) * 1e3
}

cells <- expand.grid(width = c(100L, 200L, 400L), layers = c(2L, 8L))
cat(sprintf("\n| width | layers | ember_mlp ms/batch | graph ms/batch | graph / mlp |\n|---|---|---|---|---|\n"))
for (i in seq_len(nrow(cells))) {
  w <- cells$width[i]
  l <- cells$layers[i]
  a <- per_batch(predefined(w, l))
  b <- per_batch(graph(w, l))
  cat(sprintf("| %d | %d | %.3f | %.3f | %.2f |\n", w, l, a, b, b / a))
}
