# Gradient × input attributions (ember_attributions()).

test_that("a linear model's attributions are weight × (x - mean) and add up to the output minus the mean's", {
  set.seed(2)
  d <- data.frame(a = rnorm(80), b = rnorm(80, 3, 2), f = factor(sample(c("u", "v"), 80, TRUE)))
  y <- 2 * d$a - d$b + (d$f == "u")
  model <- ember_fit(d, y, ember_mlp(neurons = integer(0)), epochs = 5, lr = 0.05, seed = 1)
  a <- ember_attributions(model, d[1:6, ])
  expect_identical(dim(a), c(6L, 3L))
  expect_identical(colnames(a), c("a", "b", "f"))
  expect_true(all(is.na(a[, "f"])))
  # Numerically: the attribution of 'a' is (f(x with a) - f(x with a at its mean)), exactly for a linear model.
  at_mean <- d[1:6, ]
  at_mean$a <- mean(d$a)
  expect_equal(a[, "a"], predict(model, d[1:6, ]) - predict(model, at_mean), tolerance = 1e-4)
  at_mean <- d[1:6, ]
  at_mean$b <- mean(d$b)
  expect_equal(a[, "b"], predict(model, d[1:6, ]) - predict(model, at_mean), tolerance = 1e-4)
})

test_that("a network's attributions match finite differences of its output (gradient × input)", {
  set.seed(3)
  d <- data.frame(a = rnorm(60), b = rnorm(60))
  model <- ember_fit(d, d$a^2 + sin(d$b), ember_mlp(neurons = 16, activation = "tanh"), epochs = 20, lr = 0.02, seed = 2,
    standardize = FALSE)
  a <- ember_attributions(model, d[1:4, ])
  h <- 1e-2
  for (col in c("a", "b")) {
    up <- down <- d[1:4, ]
    up[[col]] <- up[[col]] + h
    down[[col]] <- down[[col]] - h
    grad <- (predict(model, up) - predict(model, down)) / (2 * h)
    expect_equal(a[, col], grad * d[1:4, col], tolerance = 2e-3)
  }
})

test_that("classification explains the predicted class or a chosen one; images keep their shape", {
  set.seed(4)
  model <- ember_fit(iris[, 1:4], iris$Species, epochs = 5, seed = 1)
  a <- ember_attributions(model, iris[c(1, 51, 101), 1:4])
  b <- ember_attributions(model, iris[c(1, 51, 101), 1:4], output = "setosa")
  expect_equal(a[1, ], b[1, ])  # the first row is predicted setosa
  expect_false(isTRUE(all.equal(a[3, ], b[3, ])))
  expect_error(ember_attributions(model, iris[1:2, 1:4], output = "daisy"), class = "ember_error_invalid_argument",
    regexp = "one of the model's classes")
  x <- array(runif(8 * 3 * 8 * 8), c(8, 3, 8, 8))
  cnn <- ember_fit(x, factor(rep(c("a", "b"), 4)), ember_cnn("resnet", channels = 4, n_blocks = 1), epochs = 1)
  img <- ember_attributions(cnn, x[1:2, , , , drop = FALSE])
  expect_identical(dim(img), c(2L, 3L, 8L, 8L))
  expect_true(all(is.finite(img)))
  expect_error(ember_attributions(model, iris[0, 1:4]), regexp = "no rows")
})
