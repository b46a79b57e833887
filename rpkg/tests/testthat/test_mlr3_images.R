# Tensor columns in mlr3: the feature type, tasks with image columns, the image learners, and
# tsk("fashion_mnist"). They skip when mlr3 is absent (CI) and run under `make check-mlr3`.

image_task <- function(n = 96L, task_type = "classif", seed = 1L) {
  set.seed(seed)
  y <- factor(sample(c("plain", "marked"), n, TRUE))
  imgs <- array(as.raw(sample(0:60, n * 2L * 14L * 14L, TRUE)), c(n, 2L, 14L, 14L))
  for (i in which(y == "marked")) imgs[i, 1, 3:7, 3:7] <- as.raw(230)
  d <- data.frame(y = y)
  d$image <- as_ember_tensor(imgs)
  if (task_type == "classif") return(mlr3::as_task_classif(d, target = "y", id = "images"))
  d$y <- ifelse(y == "marked", 2, -1) + stats::rnorm(n, sd = 0.1)
  mlr3::as_task_regr(d, target = "y", id = "images")
}

test_that("the feature type ember_tensor is registered, and tasks, rows and clones carry the column", {
  skip_if_no_mlr3()
  expect_true("ember_tensor" %in% mlr3::mlr_reflections$task_feature_types)
  task <- image_task()
  expect_identical(task$feature_types$type, "ember_tensor")
  sub <- task$clone()$filter(c(5, 9, 2))
  got <- sub$data(cols = "image")$image
  expect_s3_class(got, "ember_tensor")
  expect_equal(as.array(got), as.array(task$data(rows = sub$row_ids, cols = "image")$image))
  expect_setequal(sub$row_ids, c(2L, 5L, 9L))
})

image_ids <- c("classif.ember_lenet", "regr.ember_lenet", "classif.ember_resnet18", "regr.ember_resnet18",
  "classif.ember_resnet34", "regr.ember_resnet34", "classif.ember_resnet50", "regr.ember_resnet50")

for (id in image_ids) {
  local({
    id <- id
    test_that(sprintf("%s passes expect_learner, and trains, predicts, marshals and resamples", id), {
      skip_if_no_mlr3()
      h <- mlr3_helpers()
      classif <- startsWith(id, "classif")
      task <- image_task(task_type = if (classif) "classif" else "regr")
      lenet <- grepl("lenet", id)
      learner <- mlr3::lrn(id, epochs = if (lenet) 12 else 2, batch_size = 16, opt.lr = 0.003, seed = 1)
      expect_identical(learner$feature_types, "ember_tensor")
      h$expect_learner(learner, task)
      learner$train(task)
      pred <- learner$predict(task)
      # LeNet learns the marked corner; the ResNets (2 epochs) are checked for the round trips only.
      if (lenet && classif) expect_gt(pred$score(mlr3::msr("classif.acc")), 0.9)
      if (lenet && !classif) expect_lt(pred$score(mlr3::msr("regr.rmse")), 1)
      if (!lenet) expect_true(any(grepl("^layer4\\.", ember_parameters(learner$model)$name)))
      learner$marshal()
      back <- unserialize(serialize(learner, NULL))
      back$unmarshal()
      expect_equal(back$predict(task)$response, pred$response)
      rr <- mlr3::resample(task, mlr3::lrn(id, epochs = 1, batch_size = 16), mlr3::rsmp("cv", folds = 2))
      expect_length(rr$predictions(), 2L)
      expect_true(all(is.finite(rr$aggregate())))
      # A task without a tensor column is refused with the learner's feature types.
      expect_error(mlr3::lrn(id, epochs = 1, batch_size = 4)$train(mlr3::tsk(if (classif) "sonar" else "mtcars")),
        regexp = "feature types")
    })
  })
}

test_that("an image learner on a task with a tensor and other features names the columns", {
  skip_if_no_mlr3()
  task <- image_task()
  task$cbind(data.frame(extra = stats::runif(task$nrow)))
  learner <- mlr3::lrn("classif.ember_lenet", epochs = 1, batch_size = 16)
  expect_error(suppressWarnings(learner$train(task)), regexp = "feature types|1 other column")
})

test_that("the MLP learner reads a tensor column flattened, and validation splits it", {
  skip_if_no_mlr3()
  task <- image_task(n = 120L)
  learner <- mlr3::lrn("classif.ember_mlp", epochs = 15, batch_size = 16, neurons = 32, validate = 0.25,
    measures_valid = mlr3::msr("classif.acc"))
  learner$train(task)
  expect_gt(learner$internal_valid_scores$classif.acc, 0.8)
  expect_identical(nrow(learner$model$history), 15L)
})

test_that("tsk('fashion_mnist') holds 70,000 byte images in one tensor column, split 60,000 / 10,000", {
  skip_if_no_mlr3()
  skip_if_not(dir.exists("/usr/share/datasets/fashion-mnist"), "dataset-fashion-mnist is not installed")
  task <- mlr3::tsk("fashion_mnist")
  expect_identical(task$nrow, 70000L)
  expect_identical(task$feature_names, "image")
  expect_identical(task$class_names, c("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
    "Sneaker", "Bag", "Ankle boot"))
  col <- task$data(rows = 1:3, cols = "image")$image
  expect_identical(ember_tensor_shape(col), c(1L, 28L, 28L))
  src <- attr(col, "source")
  expect_true(is.raw(src$values))
  expect_lt(as.numeric(utils::object.size(src$values)), 60e6)
  split <- task$backend$data(task$row_ids, "split")$split
  expect_identical(as.vector(table(split)), c(60000L, 10000L))
  expect_true(all(split[1:60000] == "train"))
  # Debian's training file: the first label is class 9 (Ankle boot).
  expect_identical(as.character(task$truth(1)), "Ankle boot")
  a <- as.array(col[1])
  expect_identical(dim(a), c(1L, 1L, 28L, 28L))
  expect_true(all(a >= 0 & a <= 1))
})

test_that("the image learners take augment (validated as a parameter) and keep it in the model", {
  skip_if_no_mlr3()
  task <- image_task()
  learner <- mlr3::lrn("classif.ember_lenet", epochs = 10, batch_size = 16, opt.lr = 0.003, seed = 2,
    augment = list(ember_transform("random_crop", size = 14, padding = 2), ember_transform("random_horizontal_flip")))
  learner$train(task)
  expect_identical(vapply(learner$model$augment$image, `[[`, "", "op"), c("random_crop", "random_horizontal_flip"))
  expect_gt(learner$predict(task)$score(mlr3::msr("classif.acc")), 0.85)
  expect_error(learner$param_set$set_values(augment = list("flip")), regexp = "ember_transform")
  # An image from a file-backed column in a task.
  skip_if_not_installed("png")
  dir <- tempfile()
  dir.create(dir)
  paths <- file.path(dir, sprintf("%d.png", 1:12))
  for (p in paths) png::writePNG(matrix(stats::runif(14 * 14), 14, 14), p)
  d <- data.frame(y = factor(rep(c("a", "b"), 6)))
  d$image <- ember_image_files(paths)
  expect_identical(ember_tensor_shape(d$image), c(1L, 14L, 14L))
  files_task <- mlr3::as_task_classif(d, target = "y")
  learner$train(files_task)
  expect_length(learner$predict(files_task)$response, 12L)
})

test_that("po('ember_ingress_tensor') reads a tensor column in a multimodal graph", {
  skip_if_no_mlr3()
  skip_if_not_installed("mlr3pipelines")
  requireNamespace("mlr3pipelines")
  `%>>%` <- mlr3pipelines::`%>>%`
  po <- mlr3pipelines::po
  task <- image_task(n = 64L)
  task$cbind(data.frame(side = stats::rnorm(64L)))
  image <- po("select", id = "img", selector = mlr3pipelines::selector_type("ember_tensor")) %>>%
    po("ember_ingress_tensor", id = "image") %>>% po("ember_conv", id = "conv", out_channels = 4, kernel_size = 3) %>>%
    po("ember_flatten", id = "flat")
  side <- po("select", id = "tab", selector = mlr3pipelines::selector_name("side")) %>>% po("ember_ingress_num", id = "num")
  graph <- mlr3pipelines::gunion(list(image, side)) %>>% po("ember_merge_cat") %>>% po("ember_head") %>>%
    po("ember_model_classif", epochs = 3, batch_size = 16,
      augment = list(image = list(ember_transform("random_horizontal_flip"))))  # the image path only
  learner <- mlr3::as_learner(graph)
  learner$train(task)
  expect_length(learner$predict(task)$response, 64L)
  expect_identical(names(learner$model$ember_model_classif$model$augment), "image")
  routes <- learner$model$ember_model_classif$model$encoding$routes
  expect_identical(routes[[1L]]$shape, c(2L, 14L, 14L))
  # Given a tensor column and other features, the ingress names what to select.
  wrong <- po("ember_ingress_tensor") %>>% po("ember_flatten") %>>% po("ember_head") %>>%
    po("ember_model_classif", epochs = 1, batch_size = 16)
  expect_error(mlr3::as_learner(wrong)$train(task), regexp = "reads one ember_tensor column alone|ember_tensor")
})

test_that("pretrained weights load by name into an image learner, the head re-sized with a message", {
  skip_if_no_mlr3()
  task <- image_task(n = 32L)
  # Weights with torchvision's names and a head of 3 classes (a model file of resnet18).
  three <- factor(rep(c("x", "y", "z"), length.out = 32L))
  source_model <- ember_fit(task$data(cols = "image"), three, ember_cnn("resnet18"), epochs = 1, batch_size = 16, seed = 1)
  f <- tempfile(fileext = ".safetensors")
  ember_save(source_model, f)
  learner <- mlr3::lrn("classif.ember_resnet18", epochs = 1, batch_size = 16, pretrained = f, opt.lr = 1e-12, optimizer = "sgd")
  expect_message(learner$train(task), "pretrained: loaded the weights of '.*safetensors'; the head 'fc' is re-sized")
  init <- learner$model$config$init
  expect_false(any(startsWith(unlist(init$loaded), "fc.")))
  expect_true("layer4.1.bn2.running_var" %in% unlist(init$loaded))
  expect_error(learner$param_set$set_values(pretrained = "/nonexistent.safetensors"), regexp = "names no file")
})
