#' @section Parameters:
#' * `network` (`ember_network`, required): the network, built in R with the vocabulary of
#'   [ember_network()]: inputs (`ember_input_num()`, `ember_input_categ()`,
#'   `ember_input_tabular()`, `ember_input_image(shape)`), layers (`ember_linear()`,
#'   `ember_activation()`, `ember_dropout()`, normalisation, convolution and pooling ...), merges,
#'   repeated blocks and `ember_head()`. Sizes that follow from the task (numbers of features and
#'   levels, the head's outputs) are filled in at train time. Initially an MLP with one hidden
#'   layer of 64 units on all features:
#'   `ember_input_tabular() |> ember_linear(64) |> ember_activation("relu") |> ember_head() |> ember_network()`.
#'
#' `ember_input_image(shape)` reads the task's numeric features as pixels, in the order of the
#' task's features (row-major per image: channel by channel, each row by row), e.g. a task with
#' 784 pixel columns for `shape = c(1, 28, 28)`.
