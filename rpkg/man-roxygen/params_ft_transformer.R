#' @section Parameters:
#' The architecture (see [ember_ft_transformer()]; Gorishniy et al. 2021): numeric and
#' categorical tokenizers, a CLS token, `n_blocks` pre-norm transformer blocks, then
#' LayerNorm -> ReLU -> head on the CLS token. The defaults are the paper's.
#' * `n_blocks` (`integer(1)`, default 3): transformer blocks.
#' * `d_token` (`integer(1)`, default 192): token width, a multiple of `attention_n_heads`.
#' * `attention_n_heads` (`integer(1)`, default 8).
#' * `attention_dropout` (`numeric(1)`, default 0.2), `ffn_dropout` (default 0.1),
#'   `residual_dropout` (default 0).
#' * `ffn_d_hidden_multiplier` (`numeric(1)`, default 4/3): feed-forward width per token width.
#' * `ffn_activation` (`character(1)`, default `"reglu"`): `"reglu"`, `"geglu"`, `"glu"`,
#'   `"relu"` or `"gelu"`.
#'
#' The learner starts from the paper's default optimizer: `optimizer = "adamw"`, `opt.lr = 1e-4`,
#' `opt.weight_decay = 1e-5` (the other learners start from Adam at the engine's default rate),
#' and from `d_token = 64`, the low end of the paper's tuning range: on the small tasks of the
#' defaults benchmark (`Benchmarks/results-tabular.md`) 192-wide tokens did no better and took
#' three times as long. Set `d_token = 192` for the paper's default configuration.
#'
#' Factors become tokens: a level unseen in training has no embedding and is an error at
#' prediction.
