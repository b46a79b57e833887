# Images as columns of mlr3 tasks: Fashion-MNIST as a tensor column, a CNN with augmentation
# through mlr3, an image task made of files, and prediction on new files.
#
# Needs mlr3 and Debian's dataset-fashion-mnist (the file part also r-cran-png):
#   R_LIBS=.rlib:<library with mlr3> Rscript Examples/r/images.R

library(mlr3ember)
library(mlr3)
lgr::get_logger("mlr3")$set_threshold("warn")
set.seed(1)

# 1. tsk("fashion_mnist"): 70,000 images in one ember_tensor column (one byte per pixel).
task <- tsk("fashion_mnist")
print(task)
cat(sprintf("image column in R memory: %.1f MB\n",
  utils::object.size(attr(task$data(rows = 1, cols = "image")$image, "source")$values) / 1e6))

# 2. LeNet with augmentation (random crops and flips, per image, in the engine) on 10,000
#    training images, scored on the official test images.
learner <- lrn("classif.ember_lenet", epochs = 8, batch_size = 128, opt.lr = 2e-3, seed = 1, num_threads = 2,
  augment = list(ember_transform("random_crop", size = 28, padding = 2), ember_transform("random_horizontal_flip")))
time <- system.time(learner$train(task, row_ids = sample(60000, 10000)))
cat(sprintf("LeNet, 8 epochs on 10,000 images: %.1f s; test accuracy %.3f\n", time[["elapsed"]],
  learner$predict(task, row_ids = 60001:70000)$score(msr("classif.acc"))))

# 3. An image task made of files: PNG files written here from 200 test images, read by the
#    engine batch by batch (decoded in worker threads while the previous batch trains).
if (requireNamespace("png", quietly = TRUE)) {
  dir <- file.path(tempdir(), "fashion_png")
  dir.create(dir, showWarnings = FALSE)
  rows <- 60001:60200
  pixels <- as.array(task$data(rows = rows, cols = "image")$image)
  paths <- file.path(dir, sprintf("%05d.png", rows))
  for (i in seq_along(rows)) png::writePNG(pixels[i, 1, , ], paths[i])
  files <- data.frame(class = task$truth(rows))
  files$image <- ember_image_files(paths)     # shape c(1, 28, 28) from the first file
  files_task <- as_task_classif(files, target = "class", id = "fashion_files")
  print(files_task)
  # The learner trained on bytes predicts files: the same column type and shape.
  cat(sprintf("accuracy on the PNG files: %.3f\n", learner$predict(files_task)$score(msr("classif.acc"))))
  # Prediction on new files without a task: an ember_model predicts a tensor column.
  print(head(predict(learner$model, ember_image_files(paths[1:5]))))
}
