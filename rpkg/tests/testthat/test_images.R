# Image files as tensor columns (decoded by the engine) and image transforms (augmentation).

write_images <- function(n, y, dir = tempfile(), size = c(16L, 20L)) {
  dir.create(dir)
  paths <- file.path(dir, sprintf("img%02d.%s", seq_len(n), ifelse(seq_len(n) %% 2 == 0, "png", "jpg")))
  set.seed(11)
  for (i in seq_len(n)) {
    img <- array(stats::runif(3 * prod(size)) * 0.3, c(size, 3))
    if (y[i] == "b") img[1:6, 1:6, ] <- 0.95
    if (grepl("png$", paths[i])) png::writePNG(img, paths[i]) else jpeg::writeJPEG(img, paths[i], quality = 0.95)
  }
  paths
}

test_that("ember_image_files decodes PNG and JPEG files exactly as the png package reads them", {
  skip_if_not_installed("png")
  skip_if_not_installed("jpeg")
  y <- factor(rep(c("a", "b"), 2))
  paths <- write_images(4L, y)
  x <- ember_image_files(paths)
  expect_identical(ember_tensor_shape(x), c(3L, 16L, 20L))
  expect_output(print(x), "4 element\\(s\\) of shape \\[3, 16, 20\\], from 4 image file\\(s\\)")
  a <- as.array(x)
  expect_identical(dim(a), c(4L, 3L, 16L, 20L))
  # PNG: the bytes png::readPNG reads (as integers 0..255), channel first, / 255.
  ref <- png::readPNG(paths[2])
  expect_equal(a[2, , , ], aperm(round(ref * 255) / 255, c(3, 1, 2)), tolerance = 1e-7)
  # JPEG: libjpeg-turbo of Debian, as the jpeg package decodes (IDCT rounding may differ by a level).
  ref <- jpeg::readJPEG(paths[1])
  expect_lt(max(abs(a[1, , , ] - aperm(ref, c(3, 1, 2)))), 3.5 / 255)
  # Other shapes: grey conversion and resizing by the engine.
  g <- ember_image_files(paths, shape = c(1, 8, 10))
  expect_identical(dim(as.array(g)), c(4L, 1L, 8L, 10L))
  expect_error(ember_image_files(c(paths[1], "/nonexistent.png")), class = "ember_error_invalid_argument",
    regexp = "'/nonexistent.png' \\(element 2\\) does not exist")
  expect_error(ember_image_files(paths, shape = c(2, 8, 8)), regexp = "1 or 3 channels")
  expect_identical(c(x[1], x[3]) == x[c(1, 3)], c(TRUE, TRUE))
  expect_length(c(x, ember_image_files(paths[1:2])), 6L)
})

test_that("a CNN trains on image files with augmentation; a bad file stops training with the model kept", {
  skip_if_not_installed("png")
  skip_if_not_installed("jpeg")
  n <- 48L
  y <- factor(rep(c("a", "b"), n / 2))
  paths <- write_images(n, y)
  x <- ember_image_files(paths)
  augment <- list(ember_transform("random_crop", size = c(16, 20), padding = 2), ember_transform("random_horizontal_flip"),
    ember_transform("normalize", mean = 0.5, std = 0.25))
  m <- ember_fit(x, y, ember_cnn("lenet"), augment = augment, epochs = 12, batch_size = 8, lr = 0.005, seed = 1)
  expect_gt(mean(predict(m, x) == y), 0.9)
  expect_identical(names(m$augment), "image")
  expect_identical(vapply(m$augment$image, `[[`, "", "op"), c("random_crop", "random_horizontal_flip", "normalize"))
  # Same seed, same augmented batches; the model file keeps the transforms.
  m2 <- ember_fit(x, y, ember_cnn("lenet"), augment = augment, epochs = 12, batch_size = 8, lr = 0.005, seed = 1)
  expect_identical(predict(m2, x, type = "prob"), predict(m, x, type = "prob"))
  f <- tempfile(fileext = ".ember")
  ember_save(m, f)
  loaded <- ember_load(f)
  expect_identical(predict(loaded, x, type = "prob"), predict(m, x, type = "prob"))
  expect_identical(loaded$augment, m$augment)
  # A file that cannot be decoded: the error names the row and the file; the model so far is kept.
  bad <- paths
  bad[30] <- file.path(dirname(paths[1]), "bad.png")
  writeLines("not an image", bad[30])
  err <- expect_error(ember_fit(ember_image_files(bad, shape = c(3, 16, 20)), y, ember_cnn("lenet"), epochs = 3,
    batch_size = 8, shuffle = FALSE, seed = 1), class = "ember_error_invalid_argument", regexp = "row 30: '.*bad.png' is not a PNG or JPEG file")
  expect_s3_class(err$model, "ember_model")
  expect_identical(nrow(err$model$history), 0L)
  expect_true(all(is.finite(predict(err$model, x[1:3], type = "prob"))))
})

test_that("transforms are validated against the image shape, with the transform named", {
  x <- as_ember_tensor(array(as.raw(1:255), c(8L, 1L, 12L, 12L)))
  y <- factor(rep(c("a", "b"), 4))
  expect_error(ember_fit(x, y, ember_cnn("lenet"), augment = list(ember_transform("random_crop", size = 0)), epochs = 1),
    class = "ember_error_invalid_argument", regexp = "\\[random_crop\\] transform 1: size must be >= 1, got 0")
  expect_error(ember_fit(x, y, ember_cnn("lenet"), epochs = 1,
    augment = list(ember_transform("center_crop", size = 12), ember_transform("random_resized_crop", size = 10))),
    class = "ember_error_shape", regexp = "become \\[1, 10, 10\\] in training but \\[1, 12, 12\\] at prediction")
  expect_error(ember_transform("blur"), class = "ember_error_invalid_argument", regexp = "'op'")
  expect_error(ember_transform("pad", 2), regexp = "must be named")
  expect_error(ember_fit(iris[1:4], iris$Species, augment = list(ember_transform("hflip")), epochs = 1),
    regexp = "reads no image input")
  expect_true(all(c("normalize", "random_crop", "color_jitter") %in% ember_transform_ops()))
  expect_output(print(ember_transform("random_crop", size = 10, padding = 2)), "random_crop\\(size = 10, padding = 2\\)")
  # The network is built for the transformed shape: a centre crop to 12 x 12 of 16 x 16 images.
  big <- as_ember_tensor(array(as.raw(1:255), c(8L, 1L, 16L, 16L)))
  m <- ember_fit(big, y, ember_cnn("lenet"), augment = list(ember_transform("center_crop", size = 12)), epochs = 1)
  expect_length(predict(m, big), 8L)
  expect_error(predict(m, x), class = "ember_error_shape", regexp = "\\[1, 12, 12\\]; the model expects \\[1, 16, 16\\]")
})
