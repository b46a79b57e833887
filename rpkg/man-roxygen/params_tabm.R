#' @section Parameters:
#' The architecture (see [ember_tabm()]; Gorishniy et al. 2024), with the names and defaults of
#' mlr3torch's TabM learner: an ensemble of `k` MLPs that share one batch and most weights.
#' Training applies the loss to every member's output (the mean over members of the per-member
#' loss); predictions average the members' probabilities (classification) or values (regression).
#' * `arch_type` (`character(1)`, default `"tabm"`): `"tabm"` (BatchEnsemble linear layers: one
#'   shared weight matrix with per-member input and output scalings and biases) or `"tabm-mini"`
#'   (one per-member scaling of the input, shared linear layers).
#' * `k` (`integer(1)`, default 32): ensemble members.
#' * `n_blocks` (`integer(1)`, default `NULL`: 2 with `num_embeddings`, else 3): blocks
#'   Linear -> activation -> Dropout.
#' * `d_block` (`integer(1)`, default 512): block width.
#' * `dropout` (`numeric(1)`, default 0.1).
#' * `activation` (`character(1)`, default `"relu"`): an elementwise activation of the engine.
#' * `start_scaling_init` (`character(1)`, default `NULL`: `"normal"` with `num_embeddings`, else
#'   `"random-signs"`): the first per-member scaling, one value per member and feature.
#' * `num_embeddings` (`character(1)`, default `"none"`): embeddings of the numeric features,
#'   `"linear_relu"`, `"periodic"` or `"piecewise_linear"` (Gorishniy et al. 2022).
#' * `d_embedding` (`integer(1)`, default `NULL`: 32 for `"linear_relu"`, 24 for `"periodic"`, 16
#'   for `"piecewise_linear"`).
#' * `n_frequencies` (`integer(1)`, default 48), `frequency_init_scale` (`numeric(1)`, > 0,
#'   default 0.01), `lite` (`logical(1)`, default `FALSE`), `embedding_activation` (`logical(1)`,
#'   default `NULL`: `TRUE`, `FALSE` for `"piecewise_linear"`): the periodic embeddings'
#'   frequencies, their initial scale, one linear layer shared by the features, and the final
#'   ReLU (also of the piecewise-linear embeddings).
#' * `n_bins` (`integer(1)`, default 48): quantile bins per numeric feature of the
#'   piecewise-linear embeddings, computed from the training data (fewer than the training rows;
#'   a feature constant in the training data is an error).
#'
#' The learner starts from the TabM authors' optimizer: `optimizer = "adamw"`, `opt.lr = 2e-3`,
#' `opt.weight_decay = 3e-4` (the other learners start from Adam at the engine's default rate).
#'
#' Factors enter one-hot; a level unseen in training is encoded as all zeros (with a warning).
