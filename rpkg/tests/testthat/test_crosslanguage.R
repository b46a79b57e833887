# The doors agree (docs/architecture.md#tests): the same network, data and seed trained from R and from Swift
# give bit-identical weights, and model files move between R, Swift and C. The Swift side is
# Tests/EmberNNTests/CrossLanguageTests.swift (same recipe: Tests/EmberFixtureRecipes); the C side
# is Examples/c/smoke.c. Regenerate the fixtures with `make crosslang-fixtures`.

crosslang_data <- function() {
  i <- 0:149
  x <- data.frame(x1 = ((i * 37) %% 101) / 50 - 1, x2 = ((i * 53) %% 89) / 44 - 1)
  y <- factor(ifelse(x$x1 + 0.5 * x$x2 > 0, "pos", "neg"), levels = c("pos", "neg"))
  list(x = x, y = y)
}

test_that("R training reproduces the Swift-trained weights bit for bit", {
  d <- crosslang_data()
  model <- ember_fit(d$x, d$y, ember_mlp(neurons = 8, p = 0.1), epochs = 5, batch_size = 16, lr = 0.01, seed = 42,
    progress = FALSE)
  swift <- ember_load(fixture("swift_mlp.safetensors"))
  expect_identical(ember_parameters(model)$name, ember_parameters(swift)$name)
  for (name in ember_parameters(model)$name) {
    expect_identical(ember_get_parameter(model, name), ember_get_parameter(swift, name), label = name)
  }
  expect_identical(model$history$train_loss, swift$history$train_loss)
  # The Swift file has no R encoding: it takes a matrix for its numeric input.
  expect_identical(swift$target$levels, c("pos", "neg"))
  expect_identical(predict(swift, as.matrix(d$x), type = "prob"), predict(model, d$x, type = "prob"))
})

test_that("the model file written from R (loaded by Swift and C) loads in R", {
  model <- ember_load(fixture("r_iris_mlp.safetensors"))
  expect_identical(model$target$levels, levels(iris$Species))
  expect_identical(vapply(model$encoding$columns, `[[`, "", "name"), names(iris)[1:4])
  expect_gt(mean(predict(model, iris) == iris$Species), 0.9)
})
