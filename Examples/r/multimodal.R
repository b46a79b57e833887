# A multimodal network as an mlr3pipelines graph: Fashion-MNIST images (as pixel columns of an mlr3
# task) plus a tabular feature that carries signal the images lack, each read by its own ingress and
# merged with ember_merge_cat. Under resample(), the merged network beats each path alone.
#
# Needs mlr3, mlr3pipelines and Debian's dataset-fashion-mnist:
#   R_LIBS=.rlib:<library with mlr3> Rscript Examples/r/multimodal.R

library(mlr3ember)
library(mlr3)
library(mlr3pipelines)
lgr::get_logger("mlr3")$set_threshold("warn")

fmnist <- "/usr/share/datasets/fashion-mnist"
if (!file.exists(file.path(fmnist, "train-images-idx3-ubyte.gz"))) {
  stop("Fashion-MNIST not found: apt-get install dataset-fashion-mnist", call. = FALSE)
}
read_idx <- function(path) {
  con <- gzfile(path, "rb")
  on.exit(close(con))
  magic <- readBin(con, "integer", n = 1L, size = 4L, endian = "big")
  dims <- readBin(con, "integer", n = magic %% 256L, size = 4L, endian = "big")
  values <- readBin(con, "integer", n = prod(dims), size = 1L, signed = FALSE)
  if (length(dims) == 1L) values else matrix(values, nrow = dims[1L], byrow = TRUE)
}

set.seed(1)
n <- 3000L
images <- read_idx(file.path(fmnist, "train-images-idx3-ubyte.gz"))
labels <- read_idx(file.path(fmnist, "train-labels-idx1-ubyte.gz"))
rows <- sample(nrow(images), n)
classes <- c("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
d <- as.data.frame(images[rows, ] / 255)
names(d) <- sprintf("px%03d", seq_len(784L))
y <- labels[rows]
# Side information: which of two groups the item belongs to, correct 90% of the time. The groups
# split the classes the images confuse most (T-shirt/top, Pullover, Coat, Shirt).
group <- as.integer(y %in% c(0L, 4L, 5L, 7L))
flip <- stats::runif(n) < 0.1
d$side <- ifelse(flip, 1L - group, group) + stats::rnorm(n, sd = 0.1)
d$label <- factor(classes[y + 1L], levels = classes)
task <- as_task_classif(d, target = "label", id = "fashion_side")
pixels <- sprintf("px%03d", seq_len(784L))

image_path <- function() {
  po("select", id = "pixels", selector = selector_name(pixels)) %>>%
    po("ember_ingress_tensor", id = "image", shape = c(1, 28, 28)) %>>%
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
