# A multimodal network as an mlr3pipelines graph: Fashion-MNIST images (a tensor column of the
# task: one byte per pixel, read by the engine batch by batch) plus a tabular feature that carries
# signal the images lack, each read by its own ingress and merged with ember_merge_cat. Under
# resample(), the merged network beats each path alone.
#
# Needs mlr3, mlr3pipelines and Debian's dataset-fashion-mnist:
#   R_LIBS=.rlib:<library with mlr3> Rscript Examples/r/multimodal.R

library(mlr3ember)
library(mlr3)
library(mlr3pipelines)
lgr::get_logger("mlr3")$set_threshold("warn")

set.seed(1)
n <- 3000L
fashion <- tsk("fashion_mnist")  # 70,000 images in one ember_tensor column (about 55 MB)
rows <- sample(60000L, n)
d <- fashion$data(rows = rows)   # columns class and image; the image column points into the same bytes
y <- as.integer(d$class) - 1L
# Side information: which of two groups the item belongs to, correct 90% of the time. The groups
# split the classes the images confuse most (T-shirt/top, Pullover, Coat, Shirt).
group <- as.integer(y %in% c(0L, 4L, 5L, 7L))
flip <- stats::runif(n) < 0.1
d$side <- ifelse(flip, 1L - group, group) + stats::rnorm(n, sd = 0.1)
task <- as_task_classif(d, target = "class", id = "fashion_side")

image_path <- function() {
  po("select", id = "pixels", selector = selector_type("ember_tensor")) %>>%
    po("ember_ingress_tensor", id = "image") %>>%
    po("ember_conv", id = "conv1", out_channels = 8, kernel_size = 3, padding = 1) %>>% po("ember_relu", id = "relu1") %>>%
    po("ember_max_pool", id = "pool1", kernel_size = 2) %>>%
    po("ember_conv", id = "conv2", out_channels = 16, kernel_size = 3, padding = 1) %>>% po("ember_relu", id = "relu2") %>>%
    po("ember_max_pool", id = "pool2", kernel_size = 2) %>>% po("ember_flatten", id = "flat")
}
side_path <- function() {
  po("select", id = "tabular", selector = selector_name("side")) %>>% po("ember_ingress_num", id = "side_in") %>>%
    po("ember_linear", id = "side_lin", out_features = 8) %>>% po("ember_relu", id = "side_relu")
}
finish <- function(graph) {
  graph %>>% po("ember_head") %>>% po("ember_optimizer", lr = 0.003) %>>%
    po("ember_model_classif", epochs = 4, batch_size = 64, seed = 1)
}
learners <- list(
  image_only = as_learner(finish(image_path())),
  tabular_only = as_learner(finish(side_path())),
  merged = as_learner(finish(gunion(list(image_path(), side_path())) %>>% po("ember_merge_cat")))
)
for (id in names(learners)) learners[[id]]$id <- id

design <- benchmark_grid(task, learners, rsmp("cv", folds = 3))
time <- system.time(bmr <- benchmark(design))
scores <- bmr$aggregate(msr("classif.acc"))
print(scores[, c("learner_id", "classif.acc")])
cat(sprintf("3-fold CV of 3 learners on %d images: %.1f s\n", n, time[["elapsed"]]))
