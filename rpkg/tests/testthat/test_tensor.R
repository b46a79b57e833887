# Tensor columns (ember_tensor): the vector type, its sources, and training and prediction on it.

bytes_images <- function(n, shape = c(1L, 12L, 12L), seed = 1L) {
  set.seed(seed)
  array(as.raw(sample(0:255, n * prod(shape), TRUE)), c(n, shape))
}

test_that("as_ember_tensor keeps bytes, subsets by reference and materialises exactly", {
  imgs <- bytes_images(5L, c(3L, 4L, 2L))
  x <- as_ember_tensor(imgs)
  expect_s3_class(x, "ember_tensor")
  expect_length(x, 5L)
  expect_identical(ember_tensor_shape(x), c(3L, 4L, 2L))
  src <- attr(x, "source")
  expect_true(is.raw(src$values))
  expect_identical(dim(src$values), c(24L, 5L))
  # Element 2 in C order (channel, row, column) is one column of the source.
  expect_identical(src$values[, 2L], as.vector(aperm(imgs[2, , , , drop = TRUE], 3:1)))
  a <- as.array(x)
  expect_identical(dim(a), c(5L, 3L, 4L, 2L))
  expect_equal(a, array(as.integer(imgs) / 255, dim(imgs)))
  y <- x[c(4, 2)]
  expect_identical(attr(y, "source"), src)  # the same environment: no copy
  expect_equal(as.array(y), a[c(4, 2), , , , drop = FALSE])
  expect_equal(as.array(x[[3]]), a[3, , , , drop = FALSE])
  expect_identical(format(y), c("<tensor 3x4x2>", "<tensor 3x4x2>"))
  expect_output(print(x), "5 element\\(s\\) of shape \\[3, 4, 2\\], from a byte array")
  expect_identical(as_ember_tensor(x), x)
})

test_that("numeric arrays are read unscaled, with a given scale, and refuse non-finite values", {
  m <- array(seq_len(12) / 2, c(4L, 3L))
  x <- as_ember_tensor(m)
  expect_equal(as.array(x), m)
  expect_equal(as.array(as_ember_tensor(m, scale = 2)), m * 2)
  expect_equal(as.array(as_ember_tensor(array(1:6, c(3L, 2L)))), array(as.double(1:6), c(3L, 2L)))
  bad <- m
  bad[3, 2] <- NA
  err <- expect_error(as_ember_tensor(bad), class = "ember_error_missing_values")
  expect_identical(err$index, 3L)
  expect_error(as_ember_tensor(1:10), class = "ember_error_invalid_argument", regexp = "array \\[n, \\.\\.\\.\\]")
  expect_error(as_ember_tensor(array(0, c(2, 1, 1, 1, 1, 1))), regexp = "rank 2 to 5")
  expect_error(as_ember_tensor(m, scale = 0), class = "ember_error_invalid_argument", regexp = "'scale'")
  expect_error(ember_tensor_shape(1:3), class = "ember_error_invalid_argument", regexp = "must be an ember_tensor")
})

test_that("c(), ==, is.na and replacement behave as for vectors", {
  a <- as_ember_tensor(bytes_images(3L, c(1L, 2L, 2L), seed = 2L))
  b <- as_ember_tensor(bytes_images(2L, c(1L, 2L, 2L), seed = 3L))
  ab <- c(a, b)
  expect_length(ab, 5L)
  expect_equal(as.array(ab), abind_rows(as.array(a), as.array(b)))
  same <- c(a[1], a[3])
  expect_identical(attr(same, "source"), attr(a, "source"))
  expect_identical(a == a[c(1, 1, 3)], c(TRUE, FALSE, TRUE))
  expect_identical(a[1] != ab[1], FALSE)  # equal values from different sources
  expect_identical(a[2] == b[1], FALSE)
  a2 <- a
  a2[2] <- a[3]
  expect_identical(as.vector(a2 == a[c(1, 3, 3)]), c(TRUE, TRUE, TRUE))
  with_na <- a[c(1, NA)]
  expect_identical(is.na(with_na), c(FALSE, TRUE))
  expect_identical(format(with_na), c("<tensor 1x2x2>", NA))
  expect_error(as.array(with_na), class = "ember_error_missing_values", regexp = "element 2")
  expect_error(c(a, as_ember_tensor(bytes_images(1L, c(2L, 2L, 2L)))), class = "ember_error_shape", regexp = "one shape")
  expect_error(a + a, regexp = "only == and !=")
  expect_error({ a3 <- a; a3[1] <- b[1] }, regexp = "same tensor source")
})

test_that("a data.frame carries a tensor column through row subsets, and serialisation keeps it", {
  x <- as_ember_tensor(bytes_images(6L, c(1L, 3L, 3L)))
  d <- data.frame(id = 1:6)
  d$img <- x
  s <- d[c(5, 2), ]
  expect_s3_class(s$img, "ember_tensor")
  expect_equal(as.array(s$img), as.array(x)[c(5, 2), , , , drop = FALSE])
  back <- unserialize(serialize(s, NULL))
  expect_equal(as.array(back$img), as.array(s$img))
})

test_that("as.array refuses a materialisation larger than the memory available", {
  skip_if(is.na(memory_available()) || memory_available() > 3e12)
  # 10^5 values per element, repeated in so many rows that doubles would exceed the memory available.
  x <- as_ember_tensor(array(as.raw(1), c(1L, 1e5L)))
  rows <- ceiling(memory_available() / 8e5) + 1
  huge <- x[rep(1L, rows)]
  e <- expect_error(as.array(huge), class = "ember_error_memory", regexp = "would need .* GB \\([0-9]+ bytes\\); only")
  expect_s3_class(e, "ember_error_overflow")
})

test_that("image networks train and predict on a tensor column, streamed as bytes", {
  n <- 160L
  set.seed(4)
  y <- factor(sample(c("plain", "marked"), n, TRUE))
  imgs <- array(as.raw(sample(0:60, n * 144L, TRUE)), c(n, 1L, 12L, 12L))
  for (i in which(y == "marked")) imgs[i, 1, 2:5, 2:5] <- as.raw(240)
  d <- data.frame(id = seq_len(n))
  d$img <- as_ember_tensor(imgs)
  m <- ember_fit(d["img"], y, architecture = ember_cnn("lenet"), epochs = 8, batch_size = 16, lr = 0.005, seed = 1)
  expect_gt(mean(predict(m, d["img"]) == y), 0.95)
  # The same images as a double array give the same model (bytes are widened exactly as byte / 255).
  m2 <- ember_fit(array(as.integer(imgs) / 255, dim(imgs)), y, architecture = ember_cnn("lenet"), epochs = 8,
    batch_size = 16, lr = 0.005, seed = 1)
  expect_equal(predict(m, d["img"], type = "prob"), predict(m2, array(as.integer(imgs) / 255, dim(imgs)), type = "prob"),
    tolerance = 1e-6)
  # An ember_tensor alone is data too; prediction reads the trained column by name.
  expect_identical(predict(m, d$img[1:5]), predict(m, d[1:5, "img", drop = FALSE]))
  # Saved and loaded, the model still reads the column.
  f <- tempfile(fileext = ".ember")
  ember_save(m, f)
  expect_identical(predict(ember_load(f), d["img"]), predict(m, d["img"]))
  # Errors name the column and the shapes.
  other <- data.frame(id = 1:2)
  other$img <- as_ember_tensor(bytes_images(2L, c(1L, 10L, 12L)))
  expect_error(predict(m, other["img"]), class = "ember_error_shape", regexp = "column 'img' .* shape \\[1, 10, 12\\]; the model expects \\[1, 12, 12\\]")
  expect_error(predict(m, data.frame(x = 1:2)), regexp = "lacks the column\\(s\\) 'img'")
  expect_error(ember_fit(d, y, architecture = ember_cnn("lenet"), epochs = 1), regexp = "1 tensor column\\(s\\) and 1 other column")
  with_na <- d["img"]
  with_na$img <- d$img[c(1, NA, 3:n)]
  expect_error(ember_fit(with_na, y, architecture = ember_cnn("lenet"), epochs = 1),
    class = "ember_error_missing_values", regexp = "column 'img' .*first in row 2")
})

test_that("an MLP reads a tensor column flattened, alone (streamed) or next to other columns", {
  n <- 120L
  set.seed(5)
  y <- factor(sample(c("a", "b"), n, TRUE))
  imgs <- array(as.raw(sample(0:40, n * 8L, TRUE)), c(n, 2L, 4L))
  imgs[y == "b", 1, 1] <- as.raw(255)
  d <- data.frame(w = rnorm(n))
  d$t <- as_ember_tensor(imgs)
  alone <- ember_fit(d["t"], y, architecture = ember_mlp(neurons = 16), epochs = 20, batch_size = 16, lr = 0.01, seed = 2)
  expect_gt(mean(predict(alone, d["t"]) == y), 0.95)
  mixed <- ember_fit(d, y, architecture = ember_mlp(neurons = 16), epochs = 20, batch_size = 16, lr = 0.01, seed = 2)
  expect_gt(mean(predict(mixed, d) == y), 0.95)
})

test_that("ember_input_image(columns =) routes a tensor column next to numeric inputs", {
  n <- 100L
  set.seed(6)
  y <- factor(sample(c("a", "b"), n, TRUE))
  imgs <- array(as.raw(sample(0:40, n * 64L, TRUE)), c(n, 1L, 8L, 8L))
  imgs[y == "b", 1, 1:3, 1:3] <- as.raw(250)
  d <- data.frame(w = rnorm(n), v = runif(n))
  d$img <- as_ember_tensor(imgs)
  img <- ember_input_image(columns = "img")
  num <- ember_input_num(columns = c("w", "v"))
  h <- ember_merge_cat(ember_flatten(ember_conv(img, 4, 3)), ember_linear(num, 4))
  net <- ember_network(ember_linear(ember_activation(ember_linear(h, 16)), 1))
  m <- ember_fit(d, y, architecture = net, epochs = 15, batch_size = 16, lr = 0.01, seed = 3)
  expect_gt(mean(predict(m, d) == y), 0.9)
  wrong <- ember_network(ember_linear(ember_flatten(ember_input_image(shape = c(1, 4, 16), columns = "img")), 1))
  expect_error(ember_fit(d["img"], y, architecture = wrong, epochs = 1), class = "ember_error_shape",
    regexp = "shape c\\(1, 4, 16\\); its tensor column 'img' holds elements of shape c\\(1, 8, 8\\)")
  mixed <- ember_network(ember_linear(ember_input_num(columns = c("w", "img")), 1))
  expect_error(ember_fit(d[c("w", "img")], y, architecture = mixed, epochs = 1), regexp = "reads column 'img' of type 'tensor'; it takes numeric")
})

test_that("ember_read_idx reads IDX files and refuses malformed ones", {
  f <- tempfile(fileext = ".idx")
  con <- file(f, "wb")
  writeBin(as.raw(c(0, 0, 8, 3)), con)
  writeBin(c(2L, 2L, 3L), con, size = 4L, endian = "big")
  writeBin(as.raw(0:11), con)
  close(con)
  x <- ember_read_idx(f)
  expect_identical(ember_tensor_shape(x), c(1L, 2L, 3L))
  expect_equal(as.array(x)[2, 1, , ], matrix(6:11, 2, byrow = TRUE) / 255)
  g <- tempfile(fileext = ".gz")
  con <- gzfile(g, "wb")
  writeBin(as.raw(c(0, 0, 8, 1)), con)
  writeBin(3L, con, size = 4L, endian = "big")
  writeBin(as.raw(c(7, 0, 9)), con)
  close(con)
  expect_identical(ember_read_idx(g), c(7L, 0L, 9L))
  bad <- tempfile()
  writeBin(as.raw(c(1, 2, 3, 4, 5)), bad)
  expect_error(ember_read_idx(bad), class = "ember_error_corrupt", regexp = "not an IDX file")
  short <- tempfile()
  con <- file(short, "wb")
  writeBin(as.raw(c(0, 0, 8, 1)), con)
  writeBin(10L, con, size = 4L, endian = "big")
  writeBin(as.raw(1:3), con)
  close(con)
  expect_error(ember_read_idx(short), class = "ember_error_corrupt", regexp = "truncated: 3 of 10 bytes")
  expect_error(ember_read_idx(tempfile()), regexp = "does not exist")
})
