#' @section Parameters:
#' The architecture (see [ember_mlp()]): for each width in `neurons`, Linear -> activation ->
#' Dropout(`p`), then the head.
#' * `neurons` (`integer()`, initially `128`; [ember_mlp()]'s default is 64): hidden layer widths;
#'   `integer(0)` for none.
#' * `n_layers` (`integer(1)`): repeats a single width in `neurons` this many times.
#' * `p` (`numeric(1)`, initially 0.5; [ember_mlp()]'s default is 0): dropout probability after
#'   each hidden layer.
#' * `activation` (`character(1)`, default `"relu"`): PyTorch's name of the activation.
#' * `activation_args` (`list()`, default `list()`): its arguments, e.g. `list(negative_slope = 0.1)`.
#'
#' The initial values (a wide layer with strong dropout) are those that generalised best on the
#' package's defaults benchmark (`make bench-tabular`, `Benchmarks/results-tabular.md`).
#'
#' Factors enter one-hot; a level unseen in training is encoded as all zeros (with a warning).
