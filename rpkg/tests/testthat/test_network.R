# Networks built in R (ember_network() and its vocabulary); no mlr3 needed.

description_of <- function(net, ...) jsonlite::fromJSON(ember_network_description(net, ...), simplifyVector = FALSE)

test_that("a chain becomes a network description with generated ids", {
  net <- ember_input_num() |> ember_linear(8) |> ember_activation("leaky_relu", negative_slope = 0.1) |>
    ember_dropout(0.2) |> ember_head() |> ember_network()
  expect_s3_class(net, c("ember_network", "ember_architecture"))
  expect_output(print(net), "linear_0 <- linear\\(num; out_features = 8")
  d <- description_of(net, numeric = 3)
  expect_identical(d$format, "ember.network")
  expect_identical(d$inputs, list(list(name = "num", kind = "numeric", features = 3L)))
  expect_identical(vapply(d$nodes, `[[`, "", "id"), c("linear_0", "leaky_relu_0", "dropout_0", "head_0"))
  expect_identical(d$nodes[[2]]$params$negative_slope, 0.1)
  expect_identical(d$nodes[[2]]$inputs, list("linear_0"))
  expect_identical(d$output, "head_0")
})

test_that("a node read twice is one node; user ids name layers and parameters", {
  x <- ember_input_num() |> ember_linear(4, id = "stem")
  a <- ember_linear(x, 4)
  b <- ember_linear(x, 4)  # equal-looking, but a second layer
  net <- ember_merge_sum(a, b, x) |> ember_head(id = "out") |> ember_network()
  d <- description_of(net, numeric = 2)
  ids <- vapply(d$nodes, `[[`, "", "id")
  expect_identical(ids, c("stem", "linear_0", "linear_1", "merge_sum_0", "out"))
  expect_identical(unlist(d$nodes[[4]]$inputs), c("linear_0", "linear_1", "stem"))
  set.seed(1)
  model <- ember_fit(data.frame(u = rnorm(40), v = rnorm(40)), rnorm(40), net, epochs = 2)
  expect_true(all(c("stem.weight", "linear_1.bias", "out.weight") %in% ember_parameters(model)$name))
  expect_ember_error(ember_input_num() |> ember_linear(2, id = "a.b"), "ember_error_invalid_argument", "without '.'")
  dup <- ember_input_num() |> ember_linear(2, id = "l") |> ember_linear(2, id = "l") |> ember_head() |> ember_network()
  expect_ember_error(ember_network_description(dup, numeric = 1), "ember_error_invalid_argument", "used twice")
})

test_that("tabular input adapts to the data; every feature must be read", {
  net <- ember_input_tabular() |> ember_linear(8) |> ember_head() |> ember_network()
  both <- description_of(net, numeric = 2, cardinalities = c(3, 2))
  expect_identical(vapply(both$inputs, `[[`, "", "name"), c("num", "categ"))
  expect_identical(vapply(both$nodes, `[[`, "", "op")[1:2], c("one_hot", "merge_cat"))
  only_num <- description_of(net, numeric = 2)
  expect_identical(only_num$nodes[[1]]$inputs, list("num"))
  only_categ <- description_of(net, cardinalities = 4)
  expect_identical(vapply(only_categ$nodes, `[[`, "", "op")[1], "one_hot")

  d <- all_types_data(60)
  set.seed(2)
  model <- ember_fit(d, d$num + (d$fct == "x"), net, epochs = 3)
  expect_length(predict(model, d), 60)
  num_only <- ember_input_num() |> ember_head() |> ember_network()
  expect_ember_error(ember_fit(d, d$num, num_only, epochs = 1), "ember_error_invalid_argument", "factor columns \\('fct'\\)")
  categ_only <- ember_input_categ() |> ember_one_hot() |> ember_head() |> ember_network()
  expect_ember_error(ember_fit(d, d$num, categ_only, epochs = 1), "ember_error_invalid_argument", "numeric columns")
  two <- ember_merge_cat(ember_input_num(), ember_input_categ() |> ember_one_hot()) |> ember_head() |> ember_network()
  expect_ember_error(ember_fit(d[, "num", drop = FALSE], d$num, two, epochs = 1), "ember_error_invalid_argument",
    "reads factors")
})

test_that("two input branches with embeddings train, save and load; unseen levels are refused", {
  set.seed(3)
  d <- data.frame(x = rnorm(80), g = factor(sample(c("a", "b", "c"), 80, TRUE)))
  y <- d$x + 2 * (d$g == "b")
  num <- ember_input_num() |> ember_linear(8)
  categ <- ember_input_categ() |> ember_embedding(3) |> ember_flatten()
  net <- ember_merge_cat(num, categ) |> ember_activation("relu") |> ember_head() |> ember_network()
  model <- ember_fit(d, y, net, epochs = 60, batch_size = 16, lr = 0.01)
  expect_lt(mean((predict(model, d) - y)^2), 0.5)
  file <- tempfile(fileext = ".safetensors")
  ember_save(model, file)
  loaded <- ember_load(file)
  expect_identical(predict(loaded, d), predict(model, d))
  expect_ember_error(predict(loaded, data.frame(x = 1, g = factor("z"))), "ember_error_unseen_level")
  # One-hot codes an unseen level as zeros, with a warning.
  oh <- ember_input_tabular() |> ember_head() |> ember_network()
  m2 <- ember_fit(d, y, oh, epochs = 2)
  expect_warning(predict(m2, data.frame(x = 1, g = factor("z"))), class = "ember_warning_unseen_level")
  unlink(file)
})

test_that("repeated blocks have their own or shared parameters; a block reads only its input", {
  block <- function(x) ember_merge_sum(x, x |> ember_layer_norm() |> ember_linear(6) |> ember_activation("gelu"))
  own <- ember_input_num() |> ember_linear(6) |> ember_repeat(3, block, id = "blocks") |> ember_head() |> ember_network()
  shared <- ember_input_num() |> ember_linear(6) |> ember_repeat(3, block, shared = TRUE) |> ember_head() |> ember_network()
  expect_output(print(own), "blocks <- repeat")
  d <- description_of(own, numeric = 2)
  expect_identical(d$nodes[[2]]$op, "repeat")
  expect_identical(d$nodes[[2]]$body$output, "merge_sum_0")
  x <- data.frame(a = rnorm(30), b = rnorm(30))
  set.seed(4)
  m_own <- ember_fit(x, x$a, own, epochs = 1)
  m_shared <- ember_fit(x, x$a, shared, epochs = 1)
  p_own <- ember_parameters(m_own)$name
  expect_true(all(c("blocks.0.linear_0.weight", "blocks.2.linear_0.weight") %in% p_own))
  expect_false(any(grepl("repeat_0.1.", ember_parameters(m_shared)$name, fixed = TRUE)))
  outer <- ember_input_num() |> ember_linear(6)
  leaky <- function(x) ember_merge_sum(x, outer)
  expect_ember_error(ember_input_num() |> ember_linear(6) |> ember_repeat(2, leaky), "ember_error_invalid_argument",
    "only read the block's own input")
  expect_ember_error(ember_input_num() |> ember_repeat(2, function(x) x), "ember_error_invalid_argument", "at least one layer")
})

test_that("images: from an array, or from numeric columns read row-major", {
  set.seed(5)
  cnn <- ember_input_image() |> ember_conv(4, kernel_size = 3, padding = 1) |> ember_activation("relu") |>
    ember_max_pool(2) |> ember_flatten() |> ember_head() |> ember_network()
  images <- array(runif(24 * 64), dim = c(24, 1, 8, 8))
  y <- factor(rep(c("a", "b"), 12))
  model <- ember_fit(images, y, cnn, epochs = 2, batch_size = 8)
  expect_identical(dim(predict(model, images, type = "prob")), c(24L, 2L))
  expect_ember_error(ember_fit(data.frame(a = 1:4), factor(c(1, 2, 1, 2)), cnn, epochs = 1),
    "ember_error_invalid_argument", "needs its 'shape'")

  # The pixel columns of image i, row by row, are the image itself.
  pixels <- t(apply(images, 1, function(img) as.vector(t(img[1, , ]))))
  colnames(pixels) <- sprintf("px%02d", 1:64)
  expect_identical(mlr3ember:::pixels_as_images(pixels, c(1L, 8L, 8L)), images)
  tab_cnn <- ember_input_image(c(8, 8)) |> ember_conv(4, kernel_size = 3, padding = 1) |> ember_activation("relu") |>
    ember_max_pool(2) |> ember_flatten() |> ember_head() |> ember_network()
  set.seed(6)
  from_array <- ember_fit(images, y, cnn, epochs = 2, batch_size = 8, seed = 9)
  from_columns <- ember_fit(as.data.frame(pixels), y, tab_cnn, epochs = 2, batch_size = 8, seed = 9, standardize = FALSE)
  expect_equal(predict(from_columns, as.data.frame(pixels), type = "prob"), predict(from_array, images, type = "prob"))
  expect_ember_error(ember_fit(as.data.frame(pixels[, 1:60]), y, tab_cnn, epochs = 1), "ember_error_shape", "needs 64")
})

test_that("builder arguments are checked where they are given", {
  expect_ember_error(ember_linear(ember_input_num(), 0), "ember_error_invalid_argument", "out_features")
  expect_ember_error(ember_activation(ember_input_num(), "swish"), "ember_error_invalid_argument", "'fn' must be one of")
  expect_ember_error(ember_dropout(ember_input_num(), 1), "ember_error_invalid_argument", "\\[0, 1\\)")
  expect_ember_error(ember_conv(ember_input_image(), 4, kernel_size = 3, dim = 3), "ember_error_invalid_argument", "'dim'")
  expect_ember_error(ember_merge_sum(ember_input_num()), "ember_error_invalid_argument", "at least 2 nodes")
  expect_ember_error(ember_layer(ember_input_num(), "swish"), "ember_error_invalid_argument", "'op' must be one of")
  expect_ember_error(ember_network("head"), "ember_error_invalid_argument", "node of a network")
  expect_ember_error(ember_input_image(c(0, 4)), "ember_error_invalid_argument", "shape")
  # The engine checks what only it can know, naming the node.
  bad <- ember_input_num() |> ember_linear(4) |> ember_network()
  expect_error(ember_fit(data.frame(a = 1:10), rnorm(10), bad, epochs = 1), class = "ember_error")
})

test_that("inputs that name their columns: routing by name, bit-identical to the unrouted network", {
  set.seed(3)
  d <- data.frame(a = rnorm(60), b = rnorm(60), g = factor(sample(letters[1:3], 60, TRUE)),
    o = factor(sample(c("lo", "hi"), 60, TRUE), levels = c("lo", "hi"), ordered = TRUE), flag = runif(60) > 0.5)
  y <- d$a - d$b + as.integer(d$g) + rnorm(60, sd = 0.1)
  build <- function(num, categ) {
    ember_merge_cat(num |> ember_linear(8, id = "lin"), categ |> ember_embedding(3, id = "emb") |> ember_flatten(id = "flat")) |>
      ember_activation("relu", id = "act") |> ember_head(id = "out") |> ember_network()
  }
  abg <- d[, c("a", "b", "g")]
  unrouted <- ember_fit(abg, y, build(ember_input_num(), ember_input_categ()), epochs = 5, seed = 1)
  routed_net <- build(ember_input_num(columns = c("a", "b")), ember_input_categ(columns = "g"))
  expect_output(print(routed_net), "num \\(2 columns\\)")
  routed <- ember_fit(abg, y, routed_net, epochs = 5, seed = 1)
  expect_identical(predict(routed, abg), predict(unrouted, abg))
  expect_identical(vapply(routed$encoding$routes, `[[`, "", "name"), c("num", "categ"))

  # Two numeric inputs with ids, an ordered factor as a category, a logical as 0/1, any column order.
  two <- ember_merge_cat(ember_input_num(columns = c("b", "flag"), id = "left") |> ember_linear(4),
    ember_input_num(columns = "a", id = "right") |> ember_linear(4),
    ember_input_categ(columns = c("o", "g"), id = "cats") |> ember_one_hot()) |> ember_head() |> ember_network()
  d_desc <- jsonlite::fromJSON(ember_network_description(ember_input_num() |> ember_head() |> ember_network(), numeric = 1),
    simplifyVector = FALSE)
  expect_identical(d_desc$inputs[[1L]]$name, "num")
  model <- ember_fit(d, y, two, epochs = 10, seed = 2)
  expect_identical(lapply(model$encoding$routes, `[[`, "columns"), list(c("b", "flag"), "a", c("o", "g")))
  p <- predict(model, d)
  expect_identical(predict(model, d[, rev(names(d))]), p)
  f <- tempfile(fileext = ".safetensors")
  on.exit(unlink(f))
  ember_save(model, f)
  expect_identical(predict(ember_load(f), d), p)
  expect_lt(sqrt(mean((p - y)^2)), stats::sd(y))

  # Errors name the input and the column.
  expect_error(ember_fit(d, y, routed_net, epochs = 1), "column\\(s\\) that no input of the network reads: 'o', 'flag'",
    class = "ember_error")
  mixed <- ember_merge_cat(ember_input_num(columns = "a"), ember_input_categ()) |> ember_head()
  expect_error(ember_network(mixed), "some inputs of the network name their columns and some do not")
  expect_error(ember_fit(d, y, ember_input_num(columns = c("a", "g")) |> ember_head() |> ember_network(), epochs = 1),
    "the input 'num' reads column 'g' of type 'factor'; it takes numeric, integer, logical or ordered columns")
  expect_error(ember_fit(d, y, ember_input_num(columns = c("a", "zz")) |> ember_head() |> ember_network(), epochs = 1),
    "the input 'num' reads the column\\(s\\) 'zz', which the data lacks", class = "ember_error_missing_column")
  clash <- ember_merge_cat(ember_input_num(columns = "a"), ember_input_num(columns = "b")) |> ember_head()
  expect_error(ember_network(clash), "two inputs of the network are named 'num'")
  expect_error(ember_input_num(columns = c("a", "a")), "'columns' must be NULL or unique", class = "ember_error")
  expect_error(predict(model, d[, c("a", "b")]), "lacks the column\\(s\\) 'flag', 'o', 'g'", class = "ember_error_missing_column")
})

test_that("pixel columns routed into an image input; a repeated block with its own parameters may change the shape", {
  set.seed(4)
  pixels <- as.data.frame(matrix(runif(30 * 16), 30, 16))
  y <- factor(rep(c("a", "b"), 15))
  net <- ember_input_image(c(1, 4, 4), columns = names(pixels)) |> ember_conv(2, 3, padding = 1) |> ember_flatten() |>
    ember_repeat(2, function(x) x |> ember_linear(5) |> ember_activation("relu")) |> ember_head() |> ember_network()
  model <- ember_fit(pixels, y, net, epochs = 2, seed = 1)
  expect_identical(dim(ember_get_parameter(model, "repeat_0.0.linear_0.weight")), c(5L, 32L))
  expect_identical(dim(ember_get_parameter(model, "repeat_0.1.linear_0.weight")), c(5L, 5L))
  expect_error(ember_fit(pixels[, 1:9], y, net, epochs = 1), "lacks the column|reads the column")
  small <- ember_input_image(c(1, 3, 3), columns = names(pixels)[1:9], id = "img") |> ember_flatten() |> ember_head() |>
    ember_network()
  expect_error(ember_fit(pixels, y, small, epochs = 1), "no input of the network reads")
  expect_error(ember_fit(pixels[, 1:8], y, ember_input_image(c(1, 3, 3), columns = names(pixels)[1:8]) |> ember_flatten() |>
    ember_head() |> ember_network(), epochs = 1), "needs 9 pixel columns; it reads 8")
  shared <- ember_input_num() |> ember_repeat(2, function(x) ember_linear(x, 3), shared = TRUE) |> ember_head() |> ember_network()
  expect_error(ember_fit(pixels, y, shared, epochs = 1), "shared parameters must keep the shape")
})

test_that("one row with batch normalization anywhere in the network is refused before training", {
  net <- ember_network(ember_input_num() |> ember_repeat(2, function(x) x |> ember_batch_norm(id = "bn") |> ember_linear(4)) |>
    ember_head())
  expect_error(suppressWarnings(ember_fit(iris[1, 1:4], iris$Species[1], net)),
    "the network uses batch normalization \\(node 'bn'\\), which needs at least 2 rows", class = "ember_error")
  expect_identical(mlr3ember:::description_nodes(ember_network_description(ember_tab_resnet(n_blocks = 1), numeric = 2),
    "batch_norm"), c("norm", "head_norm"))
})
