#' @section Parameters:
#' The architecture (see [ember_tab_resnet()]; Gorishniy et al. 2021): a linear layer to
#' `d_block`, `n_blocks` residual blocks
#' `x + Dropout(Linear(Dropout(ReLU(Linear(BatchNorm(x))))))`, then BatchNorm -> ReLU -> head.
#' * `n_blocks` (`integer(1)`, default 2): residual blocks.
#' * `d_block` (`integer(1)`, default 64): width of the residual stream.
#' * `d_hidden` (`integer(1)`, default `NULL`): hidden width inside a block; `NULL` uses
#'   `d_hidden_multiplier * d_block`.
#' * `d_hidden_multiplier` (`numeric(1)`, default 2).
#' * `dropout1`, `dropout2` (`numeric(1)`, initially 0.2 and 0, as in the reference ResNet
#'   baseline; [ember_tab_resnet()]'s defaults are 0.1 and 0.1): dropout after the block's
#'   activation and after its second linear layer. These initial values generalised best on the
#'   package's defaults benchmark (`make bench-tabular`, `Benchmarks/results-tabular.md`).
#'
#' Factors enter one-hot; a level unseen in training is encoded as all zeros (with a warning).
