# The parameter sets of the Ember learners, with mlr3torch's names where mlr3torch has the
# concept (epochs, batch_size, seed, num_threads, patience, measures_valid, opt.*, loss.*, cb.*),
# so that its users feel at home. Every learner has the shared part (training, optimizer, loss,
# callbacks) and its architecture's own parameters, whose defaults are the defaults of the
# architecture builders (ember_mlp() ...): a learner learns with only `epochs` and `batch_size` set.

# Internal tuning of `epochs` (mlr3's internal tuning, as in mlr3torch): the epochs of the best
# validation score are the tuned value; over resampling iterations they are averaged.
epochs_aggr <- function(x) as.integer(ceiling(mean(unlist(x))))

epochs_in_tune <- function(domain, param_vals) {
  if (is.null(param_vals$patience) || param_vals$patience <= 0L || domain$lower > 1) {
    stop(sprintf(paste0("internal tuning of 'epochs' needs early stopping: set 'patience' > 0, and give 'epochs' no ",
      "lower bound above 1 (got patience = %s, lower bound %s)"), format(param_vals$patience %||% 0L), format(domain$lower)),
      call. = FALSE)
  }
  domain$upper
}

# custom_check for measures_train and measures_valid: mlr3 Measures of the task type that score a
# prediction on its own (no learner, no model).
make_check_measures <- function(task_type) {
  force(task_type)
  function(x) {
    if (is.null(x)) return(TRUE)
    if (inherits(x, "Measure")) x <- list(x)
    if (!is.list(x) || !all(vapply(x, inherits, logical(1), "Measure"))) return("must be a Measure or a list of Measures")
    ids <- vapply(x, function(m) m$id, "")
    if (anyDuplicated(ids)) return("must hold measures with unique ids")
    ok_type <- vapply(x, function(m) task_type %in% m$task_type || all(is.na(m$task_type)), logical(1))
    if (!all(ok_type)) return(sprintf("must hold measures for %s tasks", task_type))
    needs <- vapply(x, function(m) any(c("requires_learner", "requires_model") %in% m$properties), logical(1))
    if (any(needs)) return("must hold measures that do not require a learner or a model")
    TRUE
  }
}

check_neurons <- function(x) {
  if (checkmate::test_integerish(x, lower = 1, upper = 1048576, any.missing = FALSE)) TRUE else
    "must be an integer vector of hidden layer widths >= 1 (integer(0) for no hidden layer)"
}

check_betas <- function(x) {
  if (checkmate::test_numeric(x, lower = 0, upper = 1, len = 2L, any.missing = FALSE) && all(x < 1)) TRUE else
    "must be two numbers in [0, 1)"
}

check_weights <- function(x) {
  if (checkmate::test_numeric(x, lower = 0, finite = TRUE, any.missing = FALSE, min.len = 2L)) TRUE else
    "must be one weight >= 0 per class"
}

check_loss_fn <- function(x) {
  if (is.null(x) || inherits(x, "ember_loss_fn")) TRUE else "must be a custom loss made with ember_loss_fn()"
}

check_param_groups <- function(x) {
  if (is.null(x)) return(TRUE)
  ok <- is.list(x) && length(x) > 0L && all(vapply(x, function(g) is.list(g) && is.character(g$params), logical(1)))
  if (ok) TRUE else "must be a list of groups, each a list with 'params' (name patterns) and options such as lr"
}

check_init <- function(x) {
  if (is.null(x) || inherits(x, "ember_model") || checkmate::test_string(x, min.chars = 1L)) TRUE else
    "must be an ember_model or the path of a model or safetensors file"
}

check_directory <- function(x) {
  if (is.null(x) || checkmate::test_string(x, min.chars = 1L)) TRUE else "must be a directory path"
}

# The shared parameters of an Ember learner for `task_type` ("classif" or "regr"), followed by the
# architecture's own (a list of paradox domains).
ember_param_set <- function(task_type, architecture = list()) {
  do.call(paradox::ps, c(params_training(task_type), params_optimizer(), params_loss(task_type), params_callbacks(),
    architecture))
}

# Training, validation and early stopping (what every learner and the model PipeOps share).
params_training <- function(task_type) {
  p_int <- paradox::p_int
  p_dbl <- paradox::p_dbl
  p_lgl <- paradox::p_lgl
  p_uty <- paradox::p_uty
  check_measures <- make_check_measures(task_type)
  list(
    epochs = p_int(lower = 0L, tags = c("train", "internal_tuning", "hotstart", "required"), aggr = epochs_aggr,
      in_tune_fn = epochs_in_tune, disable_in_tune = list(patience = 0L, measures_valid = list())),
    batch_size = p_int(lower = 1L, tags = c("train", "predict", "required")),
    batch_size_predict = p_int(lower = 1L, tags = c("train", "predict")),
    shuffle = p_lgl(init = TRUE, tags = "train"),
    drop_last = p_lgl(default = FALSE, tags = "train"),
    standardize = p_lgl(default = TRUE, tags = "train"),
    seed = p_int(lower = 0L, special_vals = list("random"), init = "random", tags = c("train", "required")),
    num_threads = p_int(lower = 1L, upper = 65L, init = 1L, tags = c("train", "predict", "threads", "required")),
    on_nonfinite = paradox::p_fct(c("stop", "warn"), default = "stop", tags = "train"),
    eval_freq = p_int(lower = 1L, init = 1L, tags = c("train", "required")),
    measures_train = p_uty(init = list(), custom_check = check_measures, tags = c("train", "required")),
    measures_valid = p_uty(init = list(), custom_check = check_measures, tags = c("train", "required")),
    patience = p_int(lower = 0L, init = 0L, tags = c("train", "required")),
    min_delta = p_dbl(lower = 0, init = 0, tags = c("train", "required")),
    restore_best_weights = p_lgl(init = TRUE, tags = c("train", "required")),
    init_weights = p_uty(custom_check = check_init, tags = "train"),
    init_strict = p_lgl(default = FALSE, tags = "train"),
    keep_optimizer_state = p_lgl(default = FALSE, tags = "train"),
    importance = paradox::p_fct(c("none", "permutation"), default = "none", tags = "train"),
    importance_repeats = p_int(lower = 1L, default = 5L, tags = "train", depends = quote(importance == "permutation"))
  )
}

# The optimizer and its options; the options' names start with `prefix` ("opt." in the learners,
# nothing in po("ember_optimizer")).
params_optimizer <- function(prefix = "opt.") {
  p_dbl <- paradox::p_dbl
  p_lgl <- paradox::p_lgl
  # paradox takes `depends` as an expression, or as a single variable holding a quoted one.
  adam <- quote(optimizer %in% c("adam", "adamw"))
  with_eps <- quote(optimizer %in% c("adam", "adamw", "rmsprop", "adagrad"))
  with_momentum <- quote(optimizer %in% c("sgd", "rmsprop"))
  sgd <- quote(optimizer == "sgd")
  rmsprop <- quote(optimizer == "rmsprop")
  adagrad <- quote(optimizer == "adagrad")
  options <- list(
    lr = p_dbl(lower = 0, tags = "train"),
    weight_decay = p_dbl(lower = 0, tags = "train"),
    betas = paradox::p_uty(default = c(0.9, 0.999), custom_check = check_betas, tags = "train", depends = adam),
    eps = p_dbl(lower = 0, tags = "train", depends = with_eps),
    amsgrad = p_lgl(default = FALSE, tags = "train", depends = adam),
    momentum = p_dbl(lower = 0, default = 0, tags = "train", depends = with_momentum),
    dampening = p_dbl(lower = 0, default = 0, tags = "train", depends = sgd),
    nesterov = p_lgl(default = FALSE, tags = "train", depends = sgd),
    alpha = p_dbl(lower = 0, upper = 1, default = 0.99, tags = "train", depends = rmsprop),
    centered = p_lgl(default = FALSE, tags = "train", depends = rmsprop),
    lr_decay = p_dbl(lower = 0, default = 0, tags = "train", depends = adagrad),
    initial_accumulator_value = p_dbl(lower = 0, default = 0, tags = "train", depends = adagrad),
    param_groups = paradox::p_uty(custom_check = check_param_groups, tags = "train")
  )
  c(list(optimizer = paradox::p_fct(engine_optimizers(), init = "adam",
    tags = c("train", "required"))), stats::setNames(options, paste0(prefix, names(options))))
}

# The loss (`loss`) and its options, prefixed like params_optimizer()'s. `task_type` NULL: the
# losses of both task types (po("ember_loss") does not know the task yet).
params_loss <- function(task_type, prefix = "loss.") {
  losses <- builtin_losses(task_type)
  p_dbl <- paradox::p_dbl
  options <- list(reduction = paradox::p_fct(c("mean", "sum"), default = "mean", tags = "train"),
    fn = paradox::p_uty(custom_check = check_loss_fn, tags = "train"))
  if (!identical(task_type, "classif")) {
    options <- c(options, list(delta = p_dbl(lower = 0, default = 1, tags = "train", depends = quote(loss == "huber")),
      beta = p_dbl(lower = 0, default = 1, tags = "train", depends = quote(loss == "smooth_l1")),
      log_input = paradox::p_lgl(default = TRUE, tags = "train", depends = quote(loss == "poisson_nll")),
      full = paradox::p_lgl(default = FALSE, tags = "train", depends = quote(loss == "poisson_nll"))))
  }
  if (!identical(task_type, "regr")) {
    options <- c(list(weight = paradox::p_uty(custom_check = check_weights, tags = "train")), options,
      list(label_smoothing = p_dbl(lower = 0, upper = 1, default = 0, tags = "train", depends = quote(loss == "cross_entropy")),
        gamma = p_dbl(lower = 0, default = 2, tags = "train", depends = quote(loss == "focal")),
        alpha = p_dbl(upper = 1, default = 0.25, tags = "train", depends = quote(loss == "focal"))))
  }
  loss <- if (is.null(task_type)) paradox::p_fct(losses, tags = "train") else
    paradox::p_fct(losses, init = losses[1L], tags = c("train", "required"))
  c(list(loss = loss), stats::setNames(options, paste0(prefix, names(options))))
}

# The callbacks: progress, checkpoints and learning-rate schedules, prefixed with `prefix`.
params_callbacks <- function(prefix = "cb.") {
  p_int <- paradox::p_int
  p_dbl <- paradox::p_dbl
  p_lgl <- paradox::p_lgl
  p_fct <- paradox::p_fct
  schedulers <- c("lr_step", "lr_multiplicative", "lr_cosine_annealing", "lr_one_cycle", "lr_reduce_on_plateau")
  scheduler <- as.name(paste0(prefix, "lr_scheduler"))
  when <- function(kind) substitute(s == k, list(s = scheduler, k = kind))
  step <- when("lr_step")
  multiplicative <- when("lr_multiplicative")
  cosine <- when("lr_cosine_annealing")
  one_cycle <- when("lr_one_cycle")
  plateau <- when("lr_reduce_on_plateau")
  callbacks <- list(
    progress = p_lgl(default = FALSE, tags = "train"),
    checkpoint.path = paradox::p_uty(default = NULL, custom_check = check_directory, tags = "train"),
    checkpoint.freq = p_int(lower = 1L, default = 1L, tags = "train"),
    lr_scheduler = p_fct(c("none", schedulers), default = "none", tags = "train"),
    lr_step.step_size = p_int(lower = 1L, tags = "train", depends = step),
    lr_step.gamma = p_dbl(lower = 0, default = 0.1, tags = "train", depends = step),
    lr_multiplicative.factor = p_dbl(lower = 0, tags = "train", depends = multiplicative),
    lr_cosine_annealing.T_max = p_int(lower = 1L, tags = "train", depends = cosine),
    lr_cosine_annealing.eta_min = p_dbl(lower = 0, default = 0, tags = "train", depends = cosine),
    lr_one_cycle.max_lr = p_dbl(lower = 0, tags = "train", depends = one_cycle),
    lr_one_cycle.total_steps = p_int(lower = 1L, tags = "train", depends = one_cycle),
    lr_one_cycle.pct_start = p_dbl(lower = 0, upper = 1, default = 0.3, tags = "train", depends = one_cycle),
    lr_one_cycle.anneal_strategy = p_fct(c("cos", "linear"), default = "cos", tags = "train", depends = one_cycle),
    lr_one_cycle.div_factor = p_dbl(lower = 0, default = 25, tags = "train", depends = one_cycle),
    lr_one_cycle.final_div_factor = p_dbl(lower = 0, default = 1e4, tags = "train", depends = one_cycle),
    lr_one_cycle.cycle_momentum = p_lgl(default = TRUE, tags = "train", depends = one_cycle),
    lr_one_cycle.base_momentum = p_dbl(lower = 0, default = 0.85, tags = "train", depends = one_cycle),
    lr_one_cycle.max_momentum = p_dbl(lower = 0, default = 0.95, tags = "train", depends = one_cycle),
    lr_reduce_on_plateau.mode = p_fct(c("min", "max"), default = "min", tags = "train", depends = plateau),
    lr_reduce_on_plateau.factor = p_dbl(lower = 0, upper = 1, default = 0.1, tags = "train", depends = plateau),
    lr_reduce_on_plateau.patience = p_int(lower = 0L, default = 10L, tags = "train", depends = plateau),
    lr_reduce_on_plateau.threshold = p_dbl(lower = 0, default = 1e-4, tags = "train", depends = plateau),
    lr_reduce_on_plateau.threshold_mode = p_fct(c("rel", "abs"), default = "rel", tags = "train", depends = plateau),
    lr_reduce_on_plateau.cooldown = p_int(lower = 0L, default = 0L, tags = "train", depends = plateau),
    lr_reduce_on_plateau.min_lr = p_dbl(lower = 0, default = 0, tags = "train", depends = plateau),
    lr_reduce_on_plateau.eps = p_dbl(lower = 0, default = 1e-8, tags = "train", depends = plateau)
  )
  stats::setNames(callbacks, paste0(prefix, names(callbacks)))
}

# The architectures' own parameters; their defaults are those of the builders (tested).
ember_params_mlp <- function() {
  list(
    neurons = paradox::p_uty(default = 64L, custom_check = check_neurons, tags = "train"),
    n_layers = paradox::p_int(lower = 1L, tags = "train"),
    p = paradox::p_dbl(lower = 0, upper = 1, default = 0, tags = "train"),
    activation = paradox::p_fct(activation_ops(), default = "relu", tags = "train"),
    activation_args = paradox::p_uty(default = list(), custom_check = checkmate::check_list, tags = "train")
  )
}

# The image learners' own parameter: image transforms run by the engine per batch.
ember_params_image <- function() {
  list(augment = paradox::p_uty(default = list(), custom_check = check_augment, tags = "train"),
    pretrained = paradox::p_uty(custom_check = check_pretrained, tags = "train"))
}

check_pretrained <- function(x) {
  if (!checkmate::test_string(x)) return("must be the path of a safetensors file (e.g. torchvision's state_dict)")
  if (!file.exists(x)) return(sprintf("names no file: '%s'", x))
  TRUE
}

check_augment <- function(x) {
  # A list of transforms, or (networks with several image inputs) a list of them named by input.
  tryCatch({
    if (augment_by_input(x)) lapply(x, normalize_augment) else normalize_augment(x)
    TRUE
  }, error = function(e) conditionMessage(e))
}

ember_params_tab_resnet <- function() {
  list(
    n_blocks = paradox::p_int(lower = 1L, default = 2L, tags = "train"),
    d_block = paradox::p_int(lower = 1L, default = 64L, tags = "train"),
    d_hidden = paradox::p_int(lower = 1L, default = NULL, special_vals = list(NULL), tags = "train"),
    d_hidden_multiplier = paradox::p_dbl(lower = 0, default = 2, tags = "train"),
    dropout1 = paradox::p_dbl(lower = 0, upper = 1, default = 0.1, tags = "train"),
    dropout2 = paradox::p_dbl(lower = 0, upper = 1, default = 0.1, tags = "train")
  )
}

ember_params_ft_transformer <- function() {
  list(
    n_blocks = paradox::p_int(lower = 1L, default = 3L, tags = "train"),
    d_token = paradox::p_int(lower = 1L, default = 192L, tags = "train"),
    attention_n_heads = paradox::p_int(lower = 1L, default = 8L, tags = "train"),
    attention_dropout = paradox::p_dbl(lower = 0, upper = 1, default = 0.2, tags = "train"),
    ffn_d_hidden_multiplier = paradox::p_dbl(lower = 0, default = 4 / 3, tags = "train"),
    ffn_dropout = paradox::p_dbl(lower = 0, upper = 1, default = 0.1, tags = "train"),
    residual_dropout = paradox::p_dbl(lower = 0, upper = 1, default = 0, tags = "train"),
    ffn_activation = paradox::p_fct(c("reglu", "geglu", "glu", "relu", "gelu"), default = "reglu", tags = "train")
  )
}

# mlr3torch's LearnerTorchTabM parameters; NULL defaults depend on `num_embeddings` (see ember_tabm()).
ember_params_tabm <- function() {
  list(
    arch_type = paradox::p_fct(c("tabm", "tabm-mini"), default = "tabm", tags = "train"),
    k = paradox::p_int(lower = 1L, default = 32L, tags = "train"),
    n_blocks = paradox::p_int(lower = 1L, default = NULL, special_vals = list(NULL), tags = "train"),
    d_block = paradox::p_int(lower = 1L, default = 512L, tags = "train"),
    dropout = paradox::p_dbl(lower = 0, upper = 1, default = 0.1, tags = "train"),
    activation = paradox::p_fct(setdiff(activation_ops(), c("glu", "reglu", "geglu", "prelu", "rrelu")), default = "relu",
      tags = "train"),
    start_scaling_init = paradox::p_fct(c("random-signs", "normal"), default = NULL, special_vals = list(NULL), tags = "train"),
    num_embeddings = paradox::p_fct(c("none", "linear_relu", "periodic", "piecewise_linear"), default = "none", tags = "train"),
    d_embedding = paradox::p_int(lower = 1L, default = NULL, special_vals = list(NULL), tags = "train"),
    n_frequencies = paradox::p_int(lower = 1L, default = 48L, tags = "train"),
    frequency_init_scale = paradox::p_dbl(lower = 0, default = 0.01, tags = "train"),
    lite = paradox::p_lgl(default = FALSE, tags = "train"),
    embedding_activation = paradox::p_lgl(default = NULL, special_vals = list(NULL), tags = "train"),
    n_bins = paradox::p_int(lower = 2L, default = 48L, tags = "train")
  )
}

# The initial values of the tabular learners: the training recipe that generalised on the
# defaults benchmark (`make bench-tabular`: 5-fold CV on seven tasks with validate = 0.2 and
# patience = 10, Benchmarks/results-tabular.md). The architecture builders keep their own defaults
# (ember_fit() trains ember_mlp() as described there); a learner starts from these values, which
# `$param_set$values` shows and any of which the user can set. The FT-Transformer and TabM use
# their authors' default optimizers (AdamW at lr 1e-4 / weight decay 1e-5, and lr 2e-3 / 3e-4);
# the FT-Transformer's tokens are 64 wide (the low end of the paper's tuning range) instead of
# 192: on these small tasks the wider tokens did no better and took three times as long;
# the MLP is wider with dropout 0.5, the tabular ResNet drops out after the first layer of each
# block only (0.2 / 0, as the reference ResNet baseline does).
tabular_initial_values <- function(architecture) {
  switch(architecture,
    mlp = list(neurons = 128L, p = 0.5),
    tab_resnet = list(dropout1 = 0.2, dropout2 = 0),
    ft_transformer = list(d_token = 64L, optimizer = "adamw", opt.lr = 1e-4, opt.weight_decay = 1e-5),
    tabm = list(optimizer = "adamw", opt.lr = 2e-3, opt.weight_decay = 3e-4, dropout = 0.2),
    list())
}

check_network <- function(x) {
  if (inherits(x, "ember_network")) TRUE else "must be a network built with ember_network()"
}

# The network of classif.ember_network and regr.ember_network until one is set: an MLP on all
# features, written in the builder vocabulary.
default_network <- function() {
  ember_input_tabular() |>
    ember_linear(64L) |>
    ember_activation("relu") |>
    ember_head() |>
    ember_network()
}

ember_params_network <- function() {
  list(network = paradox::p_uty(init = default_network(), custom_check = check_network, tags = c("train", "required")))
}

# The arguments of an architecture builder among the parameter values.
builder_args <- function(builder, param_vals) {
  param_vals[intersect(names(param_vals), names(formals(builder)))]
}

# The architectures of the learners from their parameter values.
mlp_architecture <- function(param_vals) {
  args <- builder_args(ember_mlp, param_vals)
  if (!is.null(param_vals$n_layers)) {
    neurons <- args$neurons %||% 64L
    if (length(neurons) != 1L) {
      stop(sprintf("'n_layers' repeats a single width; 'neurons' has %d", length(neurons)), call. = FALSE)
    }
    args$neurons <- rep(neurons, param_vals$n_layers)
  }
  do.call(ember_mlp, args)
}

tab_resnet_architecture <- function(param_vals) do.call(ember_tab_resnet, builder_args(ember_tab_resnet, param_vals))

ft_transformer_architecture <- function(param_vals) {
  do.call(ember_ft_transformer, builder_args(ember_ft_transformer, param_vals))
}

tabm_architecture <- function(param_vals) do.call(ember_tabm, builder_args(ember_tabm, param_vals))
