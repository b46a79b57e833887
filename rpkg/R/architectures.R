#' Network architectures
#'
#' Builders for the predefined architectures, with mlr3torch's parameter names. Each returns an
#' `ember_architecture`: a recipe that becomes a network description (see
#' `ember_network_description()`) once [ember_fit()] knows the data's inputs (the number of
#' numeric features, the levels of each factor, or the image shape). The defaults learn: a model
#' built without arguments fits small tabular problems.
#'
#' * `ember_mlp()`: for each width in `neurons`, Linear -> activation -> Dropout(`p`), then a
#'   linear head. Factors enter one-hot.
#' * `ember_tab_resnet()`: TabResNet (Gorishniy et al. 2021): a linear layer to `d_block`, then
#'   `n_blocks` residual blocks `x + Dropout(Linear(Dropout(ReLU(Linear(BatchNorm(x))))))` with
#'   hidden width `d_hidden` (or `d_hidden_multiplier * d_block`), then BatchNorm -> ReLU -> head.
#'   Factors enter one-hot.
#' * `ember_ft_transformer()`: FT-Transformer (Gorishniy et al. 2021): numeric and categorical
#'   tokenizers (factors become tokens), a CLS token, `n_blocks` pre-norm transformer blocks, then
#'   LayerNorm -> ReLU -> head on the CLS token.
#' * `ember_tabm()`: TabM (Gorishniy et al. 2024): an ensemble of `k` MLPs that share one batch
#'   and most weights, as the `tabm` package's `TabM`. Numeric features (embedded by
#'   `num_embeddings`) and one-hot factors enter `k` members, then `n_blocks` blocks
#'   Linear -> activation -> Dropout of width `d_block` and one output layer per member. With
#'   `arch_type = "tabm"` every linear layer is a BatchEnsemble layer (one shared weight matrix,
#'   per-member input and output scalings and biases); `"tabm-mini"` scales the input per member
#'   and shares the linear layers. Training applies the loss to every member's output (the mean
#'   over members of the per-member loss); predictions average the members' probabilities
#'   (classification) or values (regression).
#' * `ember_cnn()`: convolutional networks for images (arrays `[n, channels, height, width]`):
#'   `"lenet"` (LeNet-5 style; images of at least 12 x 12 pixels), `"resnet"` (a small ResNet with
#'   `n_blocks` basic blocks of `channels` channels and global average pooling), or torchvision's
#'   `"resnet18"`, `"resnet34"`, `"resnet50"` (any number of channels, images of at least 1 x 1
#'   pixels; torchvision's parameter names, so that `init` of [ember_fit()] can start from a
#'   torchvision `state_dict` saved with safetensors; `channels` and `n_blocks` do not apply).
#' * `ember_featureless()`: a learned constant (class log-odds or the target mean), the baseline.
#'
#' Networks of your own are built with the vocabulary of [ember_network()].
#'
#' @param neurons (`integer()`)\cr Hidden layer widths; `integer(0)` for none.
#' @param p (`numeric(1)`)\cr Dropout probability after each hidden layer, in \[0, 1).
#' @param activation (`character(1)`)\cr Activation after each hidden layer: `"relu"`, `"gelu"`,
#'   `"elu"`, `"selu"`, `"tanh"`, `"sigmoid"`, `"leaky_relu"`, `"softplus"`, ... (PyTorch's names).
#' @param activation_args (`list()`)\cr Arguments of the activation, e.g.
#'   `list(negative_slope = 0.1)` for `"leaky_relu"`.
#' @param n_blocks (`integer(1)`)\cr Number of residual or transformer blocks.
#' @param d_block (`integer(1)`)\cr Width of the residual stream.
#' @param d_hidden (`integer(1)` or `NULL`)\cr Hidden width inside a block; `NULL` uses
#'   `d_hidden_multiplier * d_block`.
#' @param d_hidden_multiplier (`numeric(1)`)\cr See `d_hidden`.
#' @param dropout1,dropout2 (`numeric(1)`)\cr Dropout after the first activation and after the
#'   second linear layer of each block.
#' @param d_token (`integer(1)`)\cr Token width; a multiple of `attention_n_heads`.
#' @param attention_n_heads (`integer(1)`)\cr Attention heads.
#' @param attention_dropout,ffn_dropout,residual_dropout (`numeric(1)`)\cr Dropout on attention
#'   weights, inside the feed-forward block, and on residual branches.
#' @param ffn_d_hidden_multiplier (`numeric(1)`)\cr Feed-forward width as a multiple of `d_token`.
#' @param arch_type (`character(1)`)\cr TabM's variant: `"tabm"` or `"tabm-mini"`.
#' @param k (`integer(1)`)\cr TabM's ensemble members.
#' @param dropout (`numeric(1)`)\cr TabM's dropout after each block's activation, in \[0, 1).
#' @param start_scaling_init (`character(1)` or `NULL`)\cr Initialisation of TabM's first
#'   per-member scaling (one value per member and feature): `"random-signs"` or `"normal"`;
#'   `NULL`: `"normal"` with `num_embeddings`, else `"random-signs"`.
#' @param num_embeddings (`character(1)`)\cr Embeddings of TabM's numeric features (Gorishniy et
#'   al. 2022): `"none"`, `"linear_relu"` (a linear map per feature, then ReLU), `"periodic"`
#'   (cos and sin of learned frequencies, a linear layer per feature, ReLU) or `"piecewise_linear"`
#'   (a linear map per feature plus a learned map of the piecewise-linear encoding on `n_bins`
#'   quantile bins of the training data). With embeddings, `n_blocks` defaults to 2 (else 3).
#' @param d_embedding (`integer(1)` or `NULL`)\cr Embedding width per numeric feature; `NULL`: 32 for
#'   `"linear_relu"`, 24 for `"periodic"`, 16 for `"piecewise_linear"`.
#' @param n_frequencies (`integer(1)`)\cr Frequencies per feature of the periodic embeddings.
#' @param frequency_init_scale (`numeric(1)`)\cr Standard deviation of the initial frequencies (> 0).
#' @param lite (`logical(1)`)\cr Periodic embeddings: one linear layer shared by all features.
#' @param embedding_activation (`logical(1)` or `NULL`)\cr Periodic and piecewise-linear embeddings:
#'   end with a ReLU (`NULL`: `TRUE` for `"periodic"`, `FALSE` for `"piecewise_linear"`).
#' @param n_bins (`integer(1)`)\cr Piecewise-linear embeddings: quantile bins per feature, computed
#'   from the training data (after standardisation); fewer than the training rows.
#' @param ffn_activation (`character(1)`)\cr `"reglu"`, `"geglu"`, `"glu"`, `"relu"` or `"gelu"`.
#' @param type (`character(1)`)\cr `"lenet"`, `"resnet"`, `"resnet18"`, `"resnet34"` or `"resnet50"`.
#' @param channels (`integer(1)`)\cr Channels of the ResNet's convolutions.
#' @return An object of class `ember_architecture`.
#' @seealso [ember_fit()]
#' @name ember_architectures
#' @examples
#' ember_mlp(neurons = c(32, 16), p = 0.1)
#' ember_tab_resnet(n_blocks = 1)
#' ember_tabm(k = 8, d_block = 64, num_embeddings = "periodic")
#' arch <- ember_ft_transformer(n_blocks = 1, d_token = 16, attention_n_heads = 2)
#' # The network description once the inputs are known (4 numeric features, a factor of 3 levels):
#' substr(ember_network_description(arch, numeric = 4, cardinalities = 3), 1, 80)
NULL

new_architecture <- function(name, params) {
  structure(list(name = name, params = params), class = "ember_architecture")
}

check_count <- function(x, argument, lower = 1L, null_ok = FALSE) {
  if (null_ok && is.null(x)) return(NULL)
  if (!checkmate::test_int(x, lower = lower)) {
    ember_abort(sprintf("'%s' must be an integer >= %d, got %s", argument, lower, deparse_short(x)),
      argument = argument, expected = sprintf("an integer >= %d", lower), got = deparse_short(x))
  }
  as.integer(x)
}

check_rate <- function(x, argument) {
  if (!checkmate::test_number(x, lower = 0, upper = 1) || x >= 1) {
    ember_abort(sprintf("'%s' must be a number in [0, 1), got %s", argument, deparse_short(x)),
      argument = argument, expected = "a number in [0, 1)", got = deparse_short(x))
  }
  as.double(x)
}

check_positive <- function(x, argument) {
  if (!checkmate::test_number(x, finite = TRUE) || x <= 0) {
    ember_abort(sprintf("'%s' must be a number > 0, got %s", argument, deparse_short(x)),
      argument = argument, expected = "a number > 0", got = deparse_short(x))
  }
  as.double(x)
}

check_choice <- function(x, choices, argument) {
  if (!checkmate::test_choice(x, choices)) {
    ember_abort(sprintf("'%s' must be one of %s, got %s", argument, paste0("\"", choices, "\"", collapse = ", "),
      deparse_short(x)), argument = argument, expected = paste(choices, collapse = ", "), got = deparse_short(x))
  }
  x
}

deparse_short <- function(x) {
  s <- paste(deparse(x, width.cutoff = 60L), collapse = " ")
  if (nchar(s) > 60L) paste0(substr(s, 1L, 57L), "...") else s
}

#' @rdname ember_architectures
#' @export
ember_mlp <- function(neurons = 64L, p = 0, activation = "relu", activation_args = list()) {
  if (!checkmate::test_integerish(neurons, lower = 1, upper = 2^24, any.missing = FALSE)) {
    ember_abort(sprintf("'neurons' must be an integer vector of widths >= 1 (integer(0) for no hidden layer), got %s",
      deparse_short(neurons)), argument = "neurons", expected = "integers >= 1", got = deparse_short(neurons))
  }
  checkmate::assert_string(activation)
  checkmate::assert_list(activation_args, names = "unique")
  new_architecture("mlp", list(neurons = json_array(as.integer(neurons)), p = check_rate(p, "p"),
    activation = activation, activation_args = if (length(activation_args)) activation_args else json_object()))
}

#' @rdname ember_architectures
#' @export
ember_tab_resnet <- function(n_blocks = 2L, d_block = 64L, d_hidden = NULL, d_hidden_multiplier = 2,
                             dropout1 = 0.1, dropout2 = 0.1) {
  new_architecture("tab_resnet", list(n_blocks = check_count(n_blocks, "n_blocks"),
    d_block = check_count(d_block, "d_block"), d_hidden = check_count(d_hidden, "d_hidden", null_ok = TRUE),
    d_hidden_multiplier = check_positive(d_hidden_multiplier, "d_hidden_multiplier"),
    dropout1 = check_rate(dropout1, "dropout1"), dropout2 = check_rate(dropout2, "dropout2")))
}

#' @rdname ember_architectures
#' @export
ember_ft_transformer <- function(n_blocks = 3L, d_token = 192L, attention_n_heads = 8L, attention_dropout = 0.2,
                                 ffn_d_hidden_multiplier = 4 / 3, ffn_dropout = 0.1, residual_dropout = 0,
                                 ffn_activation = "reglu") {
  d_token <- check_count(d_token, "d_token")
  heads <- check_count(attention_n_heads, "attention_n_heads")
  if (d_token %% heads != 0L) {
    ember_abort(sprintf("'d_token' (%d) must be a multiple of 'attention_n_heads' (%d)", d_token, heads),
      argument = "d_token", expected = sprintf("a multiple of %d", heads), got = as.character(d_token))
  }
  new_architecture("ft_transformer", list(n_blocks = check_count(n_blocks, "n_blocks"), d_token = d_token,
    attention_n_heads = heads, attention_dropout = check_rate(attention_dropout, "attention_dropout"),
    ffn_d_hidden_multiplier = check_positive(ffn_d_hidden_multiplier, "ffn_d_hidden_multiplier"),
    ffn_dropout = check_rate(ffn_dropout, "ffn_dropout"), residual_dropout = check_rate(residual_dropout, "residual_dropout"),
    ffn_activation = check_choice(ffn_activation, c("reglu", "geglu", "glu", "relu", "gelu"), "ffn_activation")))
}

#' @rdname ember_architectures
#' @export
ember_tabm <- function(arch_type = "tabm", k = 32L, n_blocks = NULL, d_block = 512L, dropout = 0.1, activation = "relu",
                       start_scaling_init = NULL, num_embeddings = "none", d_embedding = NULL, n_frequencies = 48L,
                       frequency_init_scale = 0.01, lite = FALSE, embedding_activation = NULL, n_bins = 48L) {
  activations <- setdiff(activation_ops(), c("glu", "reglu", "geglu", "prelu", "rrelu"))
  params <- list(arch_type = check_choice(arch_type, c("tabm", "tabm-mini"), "arch_type"), k = check_count(k, "k"),
    n_blocks = check_count(n_blocks, "n_blocks", null_ok = TRUE), d_block = check_count(d_block, "d_block"),
    dropout = check_rate(dropout, "dropout"), activation = check_choice(activation, activations, "activation"),
    start_scaling_init = if (!is.null(start_scaling_init)) check_choice(start_scaling_init, c("random-signs", "normal"), "start_scaling_init"),
    num_embeddings = check_choice(num_embeddings, c("none", "linear_relu", "periodic", "piecewise_linear"), "num_embeddings"),
    d_embedding = check_count(d_embedding, "d_embedding", null_ok = TRUE), n_frequencies = check_count(n_frequencies, "n_frequencies"),
    frequency_init_scale = check_positive(frequency_init_scale, "frequency_init_scale"), lite = check_flag(lite, "lite"),
    embedding_activation = if (!is.null(embedding_activation)) check_flag(embedding_activation, "embedding_activation"),
    n_bins = check_count(n_bins, "n_bins", lower = 2L))
  if (isTRUE(params$lite) && identical(params$embedding_activation, FALSE)) {
    ember_abort("'lite' = TRUE needs 'embedding_activation' = TRUE (a shared linear layer is followed by a ReLU)",
      argument = "lite", expected = "FALSE", got = "TRUE")
  }
  new_architecture("tabm", params)
}

#' @rdname ember_architectures
#' @export
ember_cnn <- function(type = c("lenet", "resnet", "resnet18", "resnet34", "resnet50"), channels = 16L, n_blocks = 2L) {
  types <- image_architectures()
  if (!is.character(type) || length(type) < 1L) {
    ember_abort(sprintf("'type' must be one of %s", paste0("\"", types, "\"", collapse = ", ")), argument = "type")
  }
  type <- check_choice(type[1L], types, "type")
  params <- if (type == "resnet") list(channels = check_count(channels, "channels"), n_blocks = check_count(n_blocks, "n_blocks")) else list()
  new_architecture(type, params)
}

#' @rdname ember_architectures
#' @export
ember_featureless <- function() new_architecture("featureless", list())

# Which input kind an architecture reads: a network built in R reads images when it is given an
# image array, else tabular data.
architecture_input_kind <- function(arch, x = NULL) {
  if (arch$name %in% image_architectures()) return("image")
  if (arch$name == "network" && ((is.array(x) && length(dim(x)) > 2L) || (is_tensor_data(x) && identical(graph_inputs(arch)$kinds, "image") &&
      is.null(graph_inputs(arch)$routes)))) return("image")
  "tabular"
}

#' @rdname ember_architectures
#' @param architecture (`ember_architecture`)\cr An architecture.
#' @param numeric (`integer(1)`)\cr Number of numeric input columns (tabular architectures).
#' @param cardinalities (`integer()`)\cr Number of levels of each categorical column.
#' @param image (`integer(3)`)\cr Image shape `c(channels, height, width)` (CNNs, networks with
#'   [ember_input_image()]).
#' @return `ember_network_description()`: the network description as JSON text (format
#'   `ember.network`, documented in the repository's `docs/network-description.md`).
#' @export
ember_network_description <- function(architecture, numeric = 0L, cardinalities = integer(0), image = NULL) {
  checkmate::assert_class(architecture, "ember_architecture")
  if (architecture$name == "network") {
    return(to_json(network_spec(architecture, numeric = numeric, cardinalities = cardinalities, image = image)))
  }
  inputs <- if (!is.null(image)) list(image = json_array(as.integer(image))) else
    list(numeric = as.integer(numeric), cardinalities = json_array(as.integer(cardinalities)))
  .Call(C_ember_architecture, architecture$name, to_json(c(list(inputs = inputs), architecture$params)))
}

#' @export
print.ember_architecture <- function(x, ...) {
  params <- vapply(x$params, function(v) {
    v <- unclass(v)
    if (is.list(v) && !length(v)) "-" else paste(format(unlist(v)), collapse = ", ")
  }, "")
  cat(sprintf("<ember_architecture> %s\n", x$name))
  if (length(params)) cat(paste0("  ", names(params), ": ", params, collapse = "\n"), "\n", sep = "")
  invisible(x)
}
