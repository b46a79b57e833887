# mlr3ember demo (run by `make demo`): trains and evaluates Ember networks on real data.
#  - with mlr3 installed: 5-fold cross-validation of Ember learners (an MLP, a TabResNet and a
#    network written in R) on the Sonar data against a featureless baseline, and regr.ember_mlp
#    on mtcars (Examples/r/benchmark_mlr3.R is the larger benchmark);
#  - always: Fashion-MNIST (Debian's dataset-fashion-mnist) through ember_fit(): an MLP trained
#    on the 60,000 training images with early stopping on a validation split, and a LeNet CNN on
#    the images as arrays, both evaluated on the 10,000 test images.
library(mlr3ember)

info <- ember_info()
cat(sprintf("Ember engine %s (ABI %d), OpenBLAS core %s, %d thread(s)\n\n", info$version, info$abi_version,
  info$blas_core, info$num_threads))

if (requireNamespace("mlr3", quietly = TRUE)) {
  library(mlr3)
  cat(sprintf("== mlr3 %s: 5-fold CV on Sonar (208 rows, 60 features) ==\n", packageVersion("mlr3")))
  set.seed(1)
  task <- tsk("sonar")
  net <- ember_input_num() |> ember_linear(32) |> ember_activation("gelu") |> ember_dropout(0.2) |> ember_head() |>
    ember_network()
  learners <- list(
    lrn("classif.ember_mlp", epochs = 30, batch_size = 16, predict_type = "prob"),
    lrn("classif.ember_tab_resnet", epochs = 30, batch_size = 16, d_block = 32, predict_type = "prob"),
    lrn("classif.ember_network", network = net, epochs = 30, batch_size = 16, predict_type = "prob"),
    lrn("classif.featureless", predict_type = "prob")
  )
  design <- benchmark_grid(task, learners, rsmp("cv", folds = 5))
  bmr <- benchmark(design)
  print(bmr$aggregate(msrs(c("classif.acc", "classif.auc")))[, c("learner_id", "classif.acc", "classif.auc")])
  cat("\n== regr.ember_mlp on mtcars, 5-fold CV ==\n")
  rr <- resample(tsk("mtcars"), lrn("regr.ember_mlp", epochs = 100, batch_size = 8), rsmp("cv", folds = 5))
  cat(sprintf("RMSE: %.2f mpg (sd of mpg: %.2f)\n\n", rr$aggregate(msr("regr.rmse")), sd(mtcars$mpg)))
} else {
  cat("mlr3 is not installed: the engine-level R API only.\n")
  set.seed(1)
  idx <- sample(nrow(iris), 100)
  model <- ember_fit(iris[idx, 1:4], iris$Species[idx], epochs = 30, batch_size = 16, lr = 0.01)
  cat(sprintf("iris hold-out accuracy: %.3f\n\n", mean(predict(model, iris[-idx, ]) == iris$Species[-idx])))
}

read_idx <- function(path) {
  con <- gzfile(path, "rb")
  on.exit(close(con))
  magic <- readBin(con, "integer", n = 1, size = 4, endian = "big")
  dims <- readBin(con, "integer", n = magic %% 256, size = 4, endian = "big")
  values <- readBin(con, "integer", n = prod(dims), size = 1, signed = FALSE)
  if (length(dims) == 1L) values else matrix(values, nrow = dims[1], byrow = TRUE)
}

fmnist <- "/usr/share/datasets/fashion-mnist"
if (file.exists(file.path(fmnist, "train-images-idx3-ubyte.gz"))) {
  classes <- c("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
    "Ankle boot")
  x_train <- read_idx(file.path(fmnist, "train-images-idx3-ubyte.gz")) / 255
  y_train <- factor(classes[read_idx(file.path(fmnist, "train-labels-idx1-ubyte.gz")) + 1], levels = classes)
  x_test <- read_idx(file.path(fmnist, "t10k-images-idx3-ubyte.gz")) / 255
  y_test <- factor(classes[read_idx(file.path(fmnist, "t10k-labels-idx1-ubyte.gz")) + 1], levels = classes)
  colnames(x_train) <- colnames(x_test) <- sprintf("px%03d", seq_len(ncol(x_train)))

  cat("== Fashion-MNIST: MLP 784-256-128-10, batch 128, adam, early stopping on 10% of the rows ==\n")
  set.seed(1)
  time <- system.time(model <- ember_fit(x_train, y_train, ember_mlp(neurons = c(256L, 128L)), epochs = 3,
    batch_size = 128, standardize = FALSE, validate = 0.1, measures = "accuracy", patience = 2, progress = FALSE))
  print(model$history)
  cat(sprintf("training: %.1f s (%.0f images/s); test accuracy: %.4f\n\n", time[["elapsed"]],
    nrow(model$history) * 0.9 * nrow(x_train) / time[["elapsed"]], mean(predict(model, x_test) == y_test)))

  cat("== Fashion-MNIST: LeNet CNN on [n, 1, 28, 28] arrays, 1 epoch on 20,000 images ==\n")
  # read_idx gives one row per image, pixels row by row: turn it into [n, 1, 28, 28].
  as_images <- function(m) aperm(array(m, dim = c(nrow(m), 28, 28)), c(1, 3, 2)) |> (\(a) array(a, dim = c(nrow(m), 1, 28, 28)))()
  idx <- sample(nrow(x_train), 20000)
  time <- system.time(cnn <- ember_fit(as_images(x_train[idx, ]), y_train[idx], ember_cnn("lenet"), epochs = 1,
    batch_size = 64, lr = 0.002, progress = FALSE))
  cat(sprintf("training: %.1f s (%.0f images/s); test accuracy: %.4f\n", time[["elapsed"]], 20000 / time[["elapsed"]],
    mean(predict(cnn, as_images(x_test)) == y_test)))
} else {
  cat("Fashion-MNIST not found (apt-get install dataset-fashion-mnist)\n")
}
