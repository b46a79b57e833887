#' Fit an Ember network
#'
#' Trains a network on the Ember engine without needing 'mlr3': tabular data with one of the
#' tabular architectures ([ember_mlp()], [ember_tab_resnet()], [ember_ft_transformer()],
#' [ember_featureless()]), or images with [ember_cnn()]. The head is sized from the target: one
#' logit for a factor with two levels (the first level is the positive class, as in 'mlr3'), one
#' logit per level for more levels, one value for a numeric target (one per quantile level with
#' `loss = "quantile"`), one logit per label for a multilabel target.
#'
#' @section Quantile regression and multilabel targets:
#' `loss = "quantile"` with `loss_args = list(quantiles = c(0.1, 0.5, 0.9))` fits several
#' quantiles of a numeric target at once: the head has one output per level and the loss is the
#' mean over levels and rows of the pinball loss `max(q (y - f), (q - 1) (y - f))`. The levels must
#' lie in (0, 1) and be strictly increasing (unsorted or repeated levels are an error, not sorted);
#' the default is 0.5 (the median). The target's standardisation applies to every output alike.
#' `predict(type = "quantiles")` returns a matrix with a column per level; the quantiles of each
#' row are sorted so that they never cross (see [predict.ember_model()]).
#'
#' A logical matrix or a data.frame of logical or 0/1 columns as `y` (at least two, one per label)
#' is a multilabel target: one logit per label, trained with binary cross-entropy per label
#' (`loss = "bce"`, the default, mean over labels and rows; `loss_args$pos_weight` weighs the
#' positives of each label, one weight or one per label, as PyTorch's `BCEWithLogitsLoss`) or with
#' the sigmoid focal loss (`"focal"`). The engine measure `"hamming_accuracy"` (the share of
#' correct labels at a threshold of 0.5) and the loss score validation data. 'mlr3' has no
#' multilabel task type: multilabel models are made with `ember_fit()` only.
#'
#' @section Features:
#' `x` is a data.frame or a matrix for tabular architectures. Columns may be numeric, integer,
#' logical, factor or ordered: numeric, integer, logical (0/1) and ordered (integer codes) columns
#' form the numeric input, and numeric, integer and ordered columns are standardised inside the
#' model with the training data's mean and standard deviation (`standardize = TRUE`), as is a
#' numeric target (predictions come back on its scale). Factors form the categorical input:
#' one-hot inside MLPs and TabResNets, tokens in FT-Transformers. Columns are matched by name at
#' prediction. For images, `x` is an array `[n, channels, height, width]`, or `[n, height, width]`
#' for grey images.
#'
#' @section Training in slices, progress and interrupts:
#' Training runs in slices of about a quarter of a second (whole epochs, or a number of batches
#' within an epoch for big networks), so that R shows progress and honours Ctrl-C between slices;
#' within a slice (and during validation) the engine stops at the next batch.
#' On an interrupt, `ember_fit()` finishes cleanly (the engine's objects are released, the best
#' weights restored when early stopping is configured) and then, with `on_interrupt = "return"`
#' (the default), returns the model trained so far with a warning of class
#' `ember_warning_interrupted`; its history holds the completed epochs. With
#' `on_interrupt = "stop"`, it signals an error of class `ember_error_interrupted` instead (the
#' 'mlr3' learners do this, so that an interrupted resampling stops).
#'
#' @section Validation and early stopping:
#' `validate` holds out a ratio of the rows (drawn with R's RNG) or takes a separate data set
#' `list(x = , y = )`. Each `eval_freq` epochs (and at the last epoch) the engine scores it with
#' the loss and `measures`; the first measure (or the validation loss) drives early stopping:
#' after `patience` validations without an improvement of more than `min_delta`, training stops,
#' and with `restore_best_weights` the model keeps the weights of the best validation. Measures
#' are engine measures by name (`"accuracy"`, `"balanced_accuracy"`, `"logloss"`, `"mse"`, `"mae"`,
#' `"rmse"`; `"hamming_accuracy"` for multilabel targets; a quantile regression's `"mse"` ...
#' score its point prediction) or R functions made with [ember_measure()].
#'
#' @param x (`data.frame`, `matrix` or `array`)\cr Features (see section Features).
#' @param y (`factor`, `numeric`, logical `matrix` or `data.frame`)\cr Target, one value per row
#'   of `x`. A factor gives classification with its levels as classes (also levels absent from
#'   `y`); a logical matrix or a data.frame of logical or 0/1 columns gives a multilabel target
#'   (one column per label, named by the column names; see section Quantile regression and
#'   multilabel targets).
#' @param architecture (`ember_architecture`)\cr The network, e.g. [ember_mlp()].
#' @param epochs (`integer(1)`)\cr Number of passes over the data.
#' @param batch_size (`integer(1)`)\cr Rows per mini-batch.
#' @param optimizer (`character(1)`)\cr `"adam"`, `"adamw"`, `"sgd"`, `"rmsprop"` or `"adagrad"`
#'   (PyTorch's update rules).
#' @param lr (`numeric(1)` or `NULL`)\cr Learning rate; `NULL` for the optimizer's default
#'   (0.001 for adam, adamw and sgd; 0.01 for rmsprop and adagrad).
#' @param weight_decay,momentum (`numeric(1)` or `NULL`)\cr Optimizer options; `NULL` for the
#'   defaults (weight decay 0, or 0.01 for adamw; momentum 0).
#' @param opt_args (`list()`)\cr Further optimizer options with PyTorch's names: `betas`, `eps`,
#'   `amsgrad`, `dampening`, `nesterov`, `alpha`, `centered`, `lr_decay`,
#'   `initial_accumulator_value`, and `param_groups`: parameter groups with their own options, as
#'   PyTorch's, e.g. `list(list(params = "linear_*", lr = 1e-4))` for a body at a tenth of the
#'   head's rate; `params` are name patterns (see [ember_parameters()]); a parameter belongs to the
#'   first group that matches, and the others form a last group with the optimizer's options.
#' @param loss (`character(1)` or `NULL`)\cr `NULL` for the task's loss (cross-entropy, which is
#'   BCE with logits on one logit for two classes; MSE for regression). Classification:
#'   `"cross_entropy"` or `"focal"` (the focal loss of Lin et al. 2017: softmax focal loss for
#'   more classes, torchvision's sigmoid focal loss for two); regression: `"mse"`, `"l1"`,
#'   `"huber"`, `"smooth_l1"` or `"poisson_nll"` (PyTorch's definitions; for counts: the target
#'   is not standardised and, on log inputs, predictions are the rates `exp(output)`), or
#'   `"quantile"` (quantile regression: the pinball loss of the levels `loss_args$quantiles`);
#'   multilabel targets: `"bce"` or `"focal"`. Or a custom loss made with [ember_loss_fn()].
#' @param loss_args (`list()`)\cr Loss options with PyTorch's names: `reduction` (`"mean"`,
#'   `"sum"`), `class_weights` (one weight per class: cross-entropy and the focal loss over
#'   several classes), `pos_weight` (cross-entropy on two classes), `label_smoothing` (in \[0, 1\],
#'   cross-entropy; for two classes the targets become `y (1 - e) + e / 2`), `delta` (huber, 1),
#'   `beta` (smooth_l1, 1), `gamma` (focal, 2), `alpha` (focal on two classes: weight of the
#'   positive class, 0.25; negative for none), `log_input` (poisson_nll: the network outputs the
#'   log-rate, `TRUE`), `full` (poisson_nll: add Stirling's term, `FALSE`), `eps` (poisson_nll
#'   without log inputs, 1e-8), `quantiles` (quantile: the levels, strictly increasing in (0, 1),
#'   0.5). For multilabel targets `pos_weight` takes one weight or one per label.
#' @param schedule (`list()` or `NULL`)\cr A learning-rate schedule with PyTorch's names, e.g.
#'   `list(kind = "step", step_size = 10, gamma = 0.5)`, `list(kind = "cosine_annealing",
#'   t_max = 30)`, `list(kind = "one_cycle", max_lr = 0.01, total_steps = 300)` (stepped per
#'   batch) or `list(kind = "reduce_on_plateau", patience = 5)` (on the validation loss).
#' @param validate (`numeric(1)`, `list()` or `NULL`)\cr Validation data: a ratio of the rows in
#'   (0, 1), or `list(x = , y = )`.
#' @param patience (`integer(1)`)\cr Validations without improvement before training stops; 0
#'   never stops early.
#' @param min_delta (`numeric(1)`)\cr Smallest change that counts as an improvement.
#' @param restore_best_weights (`logical(1)`)\cr With early stopping (`patience > 0`), end with the
#'   weights of the best validation. `TRUE` by default here: `ember_fit()` is called directly and
#'   keeps the best model. The 'mlr3' learners set it to `FALSE` initially, following 'mlr3torch':
#'   there, early stopping with internal tuning reports the best epoch and the final model is refit
#'   for that many epochs, so no weights need restoring (see [mlr_learners_ember]).
#' @param eval_freq (`integer(1)`)\cr Validate every `eval_freq` epochs.
#' @param measures (`character()` or `list()`)\cr Validation measures (see section Validation).
#' @param measures_train (`character()` or `list()`)\cr Training measures: engine measures by
#'   name, computed on the training batches as they are trained (dropout active), or
#'   [ember_measure()]s, scored in R on the predictions of the training data at the end of each
#'   epoch.
#' @param init (`ember_model`, `character(1)` or `NULL`)\cr Warm start: a model, or the path of a
#'   model file or of a safetensors file of weights (e.g. a PyTorch `state_dict`), whose
#'   parameters and buffers initialise those of this network with the same name and size; the
#'   others keep their initialisation (a head re-sized to another number of classes), which a
#'   warning of class `ember_warning_init_partial` reports. The report is kept as
#'   `model$config$init`. Standardisation statistics come from `x`, not from `init`.
#' @param init_strict (`logical(1)`)\cr Refuse a warm start in which any name or size differs,
#'   with an error listing them.
#' @param init_resume (`logical(1)`)\cr Continue training `init`, a model trained with
#'   `keep_optimizer_state = TRUE`, for `epochs` more epochs: its network, encoding,
#'   standardisation, random state, optimizer state, epoch count, learning-rate schedule and
#'   early-stopping state carry on, so that training 6 epochs and continuing for 4 gives the model
#'   of training 10 (with the same data and arguments). `architecture` and `seed` are then
#'   ignored; the history holds all epochs.
#' @param keep_optimizer_state (`logical(1)`)\cr Keep the trainer's state with the model (in
#'   `model$config$trainer_state`; for Adam about twice the size of the weights), so that training
#'   can continue with `init_resume = TRUE` (the learners' `hotstart_forward`).
#' @param callbacks (`list()`)\cr Callbacks made with [ember_callback()] (R code at the stages
#'   of training, with a context that reads the history and acts on the live model: stop, set the
#'   learning rate, freeze ...) or built in ([ember_cb_checkpoint()], [ember_cb_unfreeze()] ...).
#'   A plain `function(model, record)` is called after each epoch with the model as it is and the
#'   epoch's record (`epoch`, `train_loss`, `valid_loss`, `lr`, `train`, `valid`); returning
#'   `FALSE` stops training. An error in a callback stops training and is raised again with the
#'   model trained so far as its `$model`; so is an error in the data met while training (an
#'   image file that cannot be decoded).
#' @param augment (`list()` or `NULL`)\cr Image transforms made with [ember_transform()], run by
#'   the engine per batch on the network's image input: deterministic ones (resize, normalize,
#'   crops ...) in training and prediction, random augmentations (flips, random crops, colour
#'   jitter ...) in training only. For a network with several image inputs, a list of such lists
#'   named by input. Stored in the model.
#' @param standardize (`logical(1)`)\cr Standardise numeric features (and a numeric target).
#' @param seed (`integer(1)` or `NULL`)\cr Seed of the engine RNG (initialisation, shuffling,
#'   dropout); `NULL` draws it from R's RNG, so that `set.seed()` governs it.
#' @param num_threads (`integer(1)`)\cr Threads of the engine's pool while training
#'   (matrix products are split over them; OpenBLAS itself runs on one). The same `seed`, data
#'   and `num_threads` give the same model bit for bit. The engine's own kernels give the same
#'   bits at any thread count; the large products it leaves to OpenBLAS (more than 64 rows, as
#'   with large batches) are cut into one part per thread, so with another `num_threads` such a
#'   model may differ in its last bits. An MLP's training step runs on one thread alone where the
#'   engine timed it faster that way (small layers; it times both ways now and then while
#'   training), with the same bits.
#' @param shuffle (`logical(1)`)\cr Visit rows in a new random order each epoch.
#' @param drop_last (`logical(1)`)\cr Drop a last incomplete batch.
#' @param batch_size_predict (`integer(1)`)\cr Rows per batch when predicting.
#' @param progress (`logical(1)`)\cr Show a progress bar.
#' @param on_interrupt (`character(1)`)\cr `"return"` or `"stop"` (see section Training in
#'   slices).
#' @param on_nonfinite (`character(1)`)\cr What a training loss that becomes NaN or infinite
#'   does. Training always stops there: that batch's step is not taken and the model goes back to
#'   the weights before the previous batch, the last whose loss was finite (the initial weights
#'   if the first batch's loss is not finite); the history holds the epochs completed before.
#'   `"stop"` then signals an error of class `ember_error_nonfinite` with that model as its
#'   `$model`, `"warn"` a warning of class `ember_warning_nonfinite` and returns the model.
#' @return An `ember_model`: use [predict()][predict.ember_model], `$history` (an
#'   `ember_history` data.frame with a `plot()` method), [ember_save()], [ember_parameters()].
#' @seealso [ember_architectures], [predict.ember_model()], [ember_save()]
#' @export
#' @examples
#' set.seed(1)
#' model <- ember_fit(iris[, 1:4], iris$Species, epochs = 20, batch_size = 16, lr = 0.01)
#' model
#' table(predict(model, iris), iris$Species)
#'
#' # Early stopping on a held-out fifth of the rows:
#' model <- ember_fit(iris[, 1:4], iris$Species, epochs = 50, batch_size = 16, lr = 0.01,
#'   validate = 0.2, patience = 5, measures = "accuracy")
#' tail(model$history)
#'
#' # Mixed column types and a TabResNet:
#' d <- data.frame(x = rnorm(100), g = factor(sample(c("a", "b"), 100, TRUE)))
#' y <- d$x + (d$g == "a") + rnorm(100, sd = 0.1)
#' model <- ember_fit(d, y, ember_tab_resnet(n_blocks = 1, d_block = 16), epochs = 10)
#' head(predict(model, d))
#'
#' # Quantile regression: the 10%, 50% and 90% quantiles of the fuel consumption.
#' model <- ember_fit(mtcars[, -1], mtcars$mpg, epochs = 50, batch_size = 8, lr = 0.01,
#'   loss = "quantile", loss_args = list(quantiles = c(0.1, 0.5, 0.9)))
#' head(predict(model, mtcars, type = "quantiles"))
#'
#' # Multilabel: three logical labels of the iris flowers.
#' labels <- data.frame(long = iris$Sepal.Length > 5.8, wide = iris$Sepal.Width > 3,
#'   setosa = iris$Species == "setosa")
#' model <- ember_fit(iris[, 1:4], labels, epochs = 20, batch_size = 16, lr = 0.01,
#'   loss_args = list(pos_weight = c(1, 1, 2)), validate = 0.2, measures = "hamming_accuracy")
#' head(predict(model, iris, type = "prob"))
#' colMeans(predict(model, iris) == as.matrix(labels))
ember_fit <- function(x, y, architecture = ember_mlp(), epochs = 30L, batch_size = 32L, optimizer = "adam",
                      lr = NULL, weight_decay = NULL, momentum = NULL, opt_args = list(), loss = NULL,
                      loss_args = list(), schedule = NULL, validate = NULL, patience = 0L, min_delta = 0,
                      restore_best_weights = TRUE, eval_freq = 1L, measures = NULL, measures_train = NULL,
                      standardize = TRUE, seed = NULL, num_threads = 1L, shuffle = TRUE, drop_last = FALSE,
                      batch_size_predict = 4096L, progress = interactive(), on_interrupt = c("return", "stop"),
                      on_nonfinite = c("stop", "warn"), callbacks = list(), init = NULL, init_strict = FALSE, init_resume = FALSE,
                      keep_optimizer_state = FALSE, augment = NULL) {
  on_interrupt <- match.arg(on_interrupt)
  on_nonfinite <- check_choice(on_nonfinite[1L], c("stop", "warn"), "on_nonfinite")
  a <- fit_arguments(architecture, epochs = epochs, batch_size = batch_size, optimizer = optimizer, patience = patience,
    eval_freq = eval_freq, num_threads = num_threads, batch_size_predict = batch_size_predict, standardize = standardize,
    shuffle = shuffle, drop_last = drop_last, progress = progress, restore_best_weights = restore_best_weights,
    min_delta = min_delta, seed = seed)
  data <- fit_data(x, y, a$architecture, init, init_resume, loss, loss_args, validate, a$seed)
  check_flag(keep_optimizer_state, "keep_optimizer_state")
  measures <- normalize_measures(measures, data$target$task)
  measures_train <- normalize_measures(measures_train, data$target$task, argument = "measures_train")
  callbacks <- fit_callbacks(normalize_callbacks(callbacks), schedule = schedule, patience = a$patience,
    min_delta = min_delta, restore_best_weights = restore_best_weights, progress = progress)
  engine <- callbacks_engine(callbacks)
  ptr <- fit_model(data, loss, data$loss_args, standardize, augment, init, init_strict)
  trainer_config <- fit_trainer_config(a$batch_size, shuffle, drop_last, a$optimizer, lr, weight_decay, momentum, opt_args,
    loss, data$loss_args, data$target, engine, a$eval_freq, measures, measures_train, a$batch_size_predict,
    host_scoring = any(vapply(measures, is.function, logical(1))))
  fit_run(ptr$ptr, data, trainer_config, callbacks, engine, measures, measures_train, epochs = a$epochs,
    batch_size = a$batch_size, batch_size_predict = a$batch_size_predict, num_threads = a$num_threads,
    optimizer = a$optimizer, lr = lr, validate = validate, keep_optimizer_state = keep_optimizer_state,
    on_interrupt = on_interrupt, on_nonfinite = on_nonfinite, init_report = ptr$init_report)
}

# ember_fit()'s scalar arguments, checked (named in the errors) and normalised (counts as integers;
# a seed drawn from R's generator when NULL).
fit_arguments <- function(architecture, epochs, batch_size, optimizer, patience, eval_freq, num_threads,
                          batch_size_predict, standardize, shuffle, drop_last, progress, restore_best_weights,
                          min_delta, seed) {
  if (!inherits(architecture, "ember_architecture")) {
    ember_abort("'architecture' must be an ember_architecture, e.g. ember_mlp() or ember_cnn()", argument = "architecture",
      expected = "an ember_architecture", got = class(architecture)[1L])
  }
  flags <- list(standardize = standardize, shuffle = shuffle, drop_last = drop_last, progress = progress,
    restore_best_weights = restore_best_weights)
  for (arg in names(flags)) {
    if (!checkmate::test_flag(flags[[arg]])) {
      ember_abort(sprintf("'%s' must be TRUE or FALSE", arg), argument = arg, expected = "TRUE or FALSE",
        got = deparse_short(flags[[arg]]))
    }
  }
  if (!checkmate::test_number(min_delta, lower = 0, finite = TRUE)) {
    ember_abort("'min_delta' must be a number >= 0", argument = "min_delta", expected = "a number >= 0", got = deparse_short(min_delta))
  }
  if (!is.null(seed) && !checkmate::test_number(seed, lower = 0, upper = 2^53, finite = TRUE) ||
      (!is.null(seed) && seed != round(seed))) {
    ember_abort("'seed' must be NULL or a non-negative integer", argument = "seed", expected = "a non-negative integer",
      got = deparse_short(seed))
  }
  list(architecture = architecture, epochs = check_count(epochs, "epochs"), batch_size = check_count(batch_size, "batch_size"),
    optimizer = check_choice(optimizer, engine_optimizers(), "optimizer"),
    patience = check_count(patience, "patience", lower = 0L), eval_freq = check_count(eval_freq, "eval_freq"),
    num_threads = check_count(num_threads, "num_threads"),
    batch_size_predict = check_count(batch_size_predict, "batch_size_predict"), seed = seed)
}

# ember_fit()'s data preparation: the encoding (a continued model's, or one made from `x`), the
# encoded inputs and target, the validation split and the quantile levels. Continuing a model
# (init_resume) keeps its network and encoding.
fit_data <- function(x, y, architecture, init, init_resume, loss, loss_args, validate, seed) {
  resume <- resume_source(init, check_flag(init_resume, "init_resume"))
  if (!is.null(resume)) architecture <- resume$architecture
  kind <- architecture_input_kind(architecture, x)
  encoding <- if (!is.null(resume)) resume$encoding else ember_encoding(x, kind)
  if (is.null(resume) && architecture$name == "network") encoding <- network_encoding(encoding, architecture)
  n <- if (kind == "image" && is.array(x)) dim(x)[1L] else NROW(x)
  if (n < 1L) ember_abort("'x' has no rows; at least one row is needed", argument = "x", expected = "at least one row", got = "0 rows")
  target <- ember_target(y, n)
  # The quantile loss makes a quantile regression: one output per level of loss_args$quantiles.
  quantiles <- quantile_levels(loss, loss_args, target)
  if (!is.null(quantiles)) target$task <- "quantile_regression"
  loss_args$quantiles <- NULL
  if (!is.null(resume) && !isTRUE(all.equal(quantiles, resume$quantiles, tolerance = 1e-6))) {
    ember_abort("'loss_args$quantiles' must be the quantile levels of the model that training continues (init_resume = TRUE)",
      argument = "loss_args$quantiles", expected = paste(resume$quantiles, collapse = ", "), got = paste(quantiles, collapse = ", "))
  }
  if (!is.null(resume) && !identical(target[c("type", "levels")], resume$target[c("type", "levels")])) {
    ember_abort("'y' must have the type and levels of the model that training continues (init_resume = TRUE)",
      argument = "y", expected = paste(resume$target$levels %||% resume$target$type, collapse = ", "),
      got = paste(target$levels %||% target$type, collapse = ", "))
  }
  if (n == 1L) ember_warn("'x' has a single row: the model can only memorise it", kind = "single_row", argument = "x")
  unseen <- unseen_policy(architecture, encoding)
  inputs <- ember_encode(encoding, x, argument = "x", unseen = unseen)
  if (is.null(seed)) seed <- sample.int(.Machine$integer.max, 1L)
  split <- fit_validation(validate, inputs, target, encoding, unseen, n)
  c(split, list(resume = resume, architecture = architecture, kind = kind, encoding = encoding, n = n, quantiles = quantiles,
    loss_args = loss_args, seed = seed))
}

# ember_fit()'s model: a copy of the continued model (weights, standardisation, random state), or a
# new one configured from the data and warm-started from `init`. Returns the model's pointer and
# the warm start's report.
fit_model <- function(data, loss, loss_args, standardize, augment, init, init_strict) {
  resume <- data$resume
  if (!is.null(resume)) return(list(ptr = copy_model(resume)$ptr, init_report = NULL))
  augment <- image_augment(augment, data$encoding, data$kind)
  described <- fit_network(data$architecture, data$encoding, data$kind, standardize, augment)
  network <- described$network
  target <- data$target
  model_config <- list(
    network = json_raw(network),
    task = target$task, class_names = json_array(if (target$type == "numeric") character(0) else target$levels),
    quantiles = if (!is.null(data$quantiles)) json_array(data$quantiles),
    # Poisson: counts are not standardised, and on log inputs predictions are exp(output), the rates.
    standardize = described$standardize, standardize_target = standardize && !poisson_loss(loss),
    output_link = if (poisson_loss(loss) && !isFALSE(loss_args$log_input)) "exp",
    seed = format(data$seed, scientific = FALSE),
    transforms = augment_config(augment),
    host = list(mlr3ember.encoding = encoding_to_json(data$encoding, target, data$architecture))
  )
  blas_advice_once()
  # Batch normalisation in training mode needs two rows (as in PyTorch): asked of the description.
  if (data$n == 1L) {
    bn <- description_nodes(network, "batch_norm")
    if (length(bn)) {
      ember_abort(sprintf("'x' has a single row; the network uses batch normalization (node '%s'), which needs at least 2 rows",
        bn[1L]), argument = "x", expected = "at least 2 rows", got = "1 row")
    }
  }
  ptr <- .Call(C_ember_model_new, to_json(model_config))
  list(ptr = ptr, init_report = if (!is.null(init)) warm_start(ptr, init, check_flag(init_strict, "init_strict")))
}

# ember_fit()'s training run: the trainer (continuing a model's state), the engine's datasets, the
# epochs with their callbacks and measures, and the returned model (or the classed error or
# warning of a failure, a callback's error or an interrupt, with the model trained so far).
fit_run <- function(ptr, data, trainer_config, callbacks, engine, measures, measures_train, epochs, batch_size,
                    batch_size_predict, num_threads, optimizer, lr, validate, keep_optimizer_state, on_interrupt,
                    on_nonfinite, init_report) {
  resume <- data$resume
  target <- data$target
  trainer <- tryCatch(.Call(C_ember_trainer_new, ptr, to_json(trainer_config)), ember_error = function(e) {
    # The engine names configuration fields (optimizer.betas); speak of ember_fit()'s arguments.
    e$argument <- r_argument_name(e$argument)
    stop(e)
  })
  previous <- 0L
  if (!is.null(resume)) {
    .Call(C_ember_trainer_resume, trainer, resume$config$trainer_state)
    previous <- as.integer(from_json(.Call(C_ember_trainer_state, trainer))$epoch)
  }
  train_data <- engine_dataset(data$inputs, target$values, argument = "x")
  valid_data <- if (!is.null(data$valid_inputs)) engine_dataset(data$valid_inputs, data$valid_target, argument = "validate")
  on.exit({
    .Call(C_ember_release, trainer)
    .Call(C_ember_release, train_data)
    if (!is.null(valid_data)) .Call(C_ember_release, valid_data)
  }, add = TRUE)

  old_threads <- ember_set_threads(num_threads)
  on.exit(ember_set_threads(old_threads), add = TRUE)
  on_epoch <- epoch_hook(trainer, ptr, train_data, measures, measures_train, target, target$values, data$valid_target,
    batch_size_predict)
  architecture <- data$architecture
  encoding <- data$encoding
  runner <- callback_runner(callbacks, trainer, previous + epochs,
    new_model = function(history) new_ember_model(ptr, encoding, target, architecture, history),
    states_kept = resume$config$callback_states)
  run <- train_slices(trainer, train_data, valid_data, epochs = epochs,
    batches_per_epoch = ceiling(inputs_rows(data$inputs) / batch_size), on_epoch = on_epoch,
    progress = isTRUE(engine$progress), runner = runner, planned = previous + epochs)
  .Call(C_ember_trainer_finish, trainer)

  history <- if (!is.null(resume)) bind_histories(resume$history, run$history) else run$history
  model <- new_ember_model(ptr, encoding, target, architecture, history)
  model$config <- list(epochs = previous + epochs, batch_size = batch_size, optimizer = optimizer, lr = lr, seed = data$seed,
    validate = if (is.list(validate)) sprintf("%d rows", NROW(data$valid_target)) else validate,
    patience = engine$patience, stopped_early = run$stopped, best_epoch = run$best_epoch)
  if (!is.null(init_report)) model$config$init <- init_report
  if (keep_optimizer_state) model$config$trainer_state <- .Call(C_ember_trainer_checkpoint, trainer)
  states <- runner$end(model)
  if (length(states)) model$config$callback_states <- states
  if (!is.null(runner$error)) raise_callback_error(runner, model)
  if (!is.null(run$failure)) {
    # The model trained until the failing batch is kept (as $model of the error).
    failure <- run$failure
    failure$model <- model
    stop(failure)
  }
  if (!is.null(run$non_finite)) {
    f <- run$non_finite
    text <- sprintf("the training loss became %s in epoch %d, batch %d; training stopped and the model keeps the last weights whose loss was finite (%d complete epoch(s))",
      f$loss, as.integer(f$epoch), as.integer(f$batch), nrow(run$history))
    if (on_nonfinite == "stop") {
      cond <- ember_condition(paste0(text, "; lower the learning rate, or on_nonfinite = \"warn\" returns the model"), "nonfinite",
        list(argument = "on_nonfinite", got = f$loss, expected = "a finite loss"))
      cond$model <- model
      stop(cond)
    }
    ember_warn(text, kind = "nonfinite", argument = "on_nonfinite")
  }
  if (run$interrupted) {
    if (on_interrupt == "stop") {
      ember_abort(sprintf("training was interrupted after %d complete epoch(s)", nrow(run$history)), kind = "interrupted",
        argument = "epochs")
    }
    ember_warn(sprintf("training was interrupted after %d of %d epoch(s); returning the model trained so far",
      nrow(run$history), epochs), kind = "interrupted")
  }
  model
}

# The ids of the nodes of a network description (JSON text) with op `op`, repeated blocks included.
description_nodes <- function(network, op) {
  found <- character(0)
  walk <- function(nodes) {
    for (node in nodes) {
      if (identical(node$op, op)) found <<- c(found, node$id)
      if (!is.null(node$body)) walk(node$body$nodes)
    }
  }
  walk(jsonlite::fromJSON(network, simplifyVector = FALSE)$nodes)
  found
}

# The validation data of ember_fit(): a ratio of the rows (drawn with R's RNG) or list(x, y).
# Returns the training inputs and target, and the validation inputs and target (NULL without).
fit_validation <- function(validate, inputs, target, encoding, unseen, n) {
  valid_inputs <- NULL
  valid_target <- NULL
  if (!is.null(validate)) {
    if (is.numeric(validate) && length(validate) == 1L) {
      if (!(validate > 0 && validate < 1)) {
        ember_abort("'validate' as a ratio must be in (0, 1)", argument = "validate", expected = "a ratio in (0, 1)", got = format(validate))
      }
      n_valid <- round(validate * n)
      if (n_valid < 1L || n_valid >= n) {
        ember_abort(sprintf("'validate' = %g leaves %d of %d rows for validation; both parts need rows", validate, n_valid, n),
          argument = "validate", expected = "a ratio leaving rows on both sides", got = format(validate))
      }
      idx <- sort(sample.int(n, n_valid))
      valid_inputs <- subset_inputs(inputs, idx)
      valid_target <- target_rows(target$values, idx)
      inputs <- subset_inputs(inputs, -idx)
      target$values <- target_rows(target$values, -idx)
    } else if (is.list(validate) && !is.data.frame(validate) && all(c("x", "y") %in% names(validate))) {
      valid_inputs <- ember_encode(encoding, validate$x, argument = "validate$x", unseen = unseen)
      vt <- ember_target(validate$y, inputs_rows(valid_inputs), argument = "validate$y")
      if (!identical(vt$levels, target$levels)) {
        ember_abort("'validate$y' must have the levels of 'y'", argument = "validate$y", expected = paste(target$levels, collapse = ", "),
          got = paste(vt$levels, collapse = ", "))
      }
      valid_target <- vt$values
    } else {
      ember_abort("'validate' must be NULL, a ratio in (0, 1) or list(x = , y = )", argument = "validate",
        expected = "NULL, a ratio or list(x, y)", got = class(validate)[1L])
    }
  }
  list(inputs = inputs, target = target, valid_inputs = valid_inputs, valid_target = valid_target)
}

# The network description (JSON text) for the encoded data, and the standardize masks of its
# numeric inputs.
fit_network <- function(architecture, encoding, kind, standardize, augment = list()) {
  sizes <- encoding_inputs(encoding)
  if (!is.null(encoding$routes)) {
    routes <- route_sizes(encoding)
    for (name in names(augment)) routes[[name]]$shape <- augment[[name]]$output_shape
    network <- to_json(network_spec(architecture, routes = routes))
    standardize_num <- route_standardize(encoding, standardize)
    if (!length(standardize_num)) standardize_num <- json_object()
  } else {
    if (length(augment)) sizes$image <- augment[[1L]]$output_shape
    network <- if (kind == "image") ember_network_description(architecture, image = sizes$image) else
      ember_network_description(architecture, numeric = sizes$numeric, cardinalities = sizes$cardinalities, image = sizes$image)
    reads_num <- kind == "tabular" && sizes$numeric > 0L && (is.null(encoding$inputs) || isTRUE(encoding$inputs$num))
    standardize_num <- if (reads_num) list(num = json_array(encoding_standardize(encoding, standardize))) else json_object()
  }
  list(network = network, standardize = standardize_num)
}

# The trainer configuration of ember_fit() (include/ember.h, ember_trainer_new).
fit_trainer_config <- function(batch_size, shuffle, drop_last, optimizer, lr, weight_decay, momentum, opt_args, loss,
                               loss_args, target, engine, eval_freq, measures, measures_train, batch_size_predict,
                               host_scoring) {
  config <- list(
    batch_size = batch_size, shuffle = shuffle, drop_last = drop_last,
    optimizer = c(list(kind = optimizer, lr = lr, weight_decay = weight_decay, momentum = momentum), opt_args_json(opt_args)),
    loss = c(list(kind = engine_loss(loss, target$task), expr = if (inherits(loss, "ember_loss_fn")) loss$expr),
      loss_args_json(loss_args)), schedule = engine$schedule,
    eval_freq = eval_freq,
    measures_train = json_array(unlist(Filter(is.character, measures_train))),
    measures_valid = json_array(unlist(Filter(is.character, measures))),
    patience = engine$patience, min_delta = engine$min_delta, restore_best_weights = engine$restore_best_weights,
    batch_size_predict = batch_size_predict, host_scoring = host_scoring
  )
  if (is.null(loss) && !length(loss_args)) config$loss <- NULL
  config
}

# The model that training continues (init_resume = TRUE), or NULL.
resume_source <- function(init, init_resume) {
  if (!init_resume) return(NULL)
  if (!inherits(init, "ember_model") || is.null(init$config$trainer_state)) {
    ember_abort("init_resume = TRUE continues a model trained with keep_optimizer_state = TRUE; 'init' is not one",
      argument = "init", expected = "an ember_model with its optimizer state", got = class(init)[1L])
  }
  check_model(init, "init")
  init
}

# The history of a continued model: the earlier epochs, then the new ones (measure columns of
# either, NA where a part has none).
bind_histories <- function(old, new) {
  cols <- union(names(old), names(new))
  fill <- function(h) {
    h <- as.data.frame(h)
    for (c in setdiff(cols, names(h))) h[[c]] <- rep(NA_real_, nrow(h))
    h[cols]
  }
  structure(rbind(fill(old), fill(new)), class = c("ember_history", "data.frame"))
}

# Loads the weights of `init` (a model, a model file or a safetensors file) into the new model
# `ptr` by name and size; returns the report (loaded, mismatched, missing, unused).
warm_start <- function(ptr, init, strict) {
  bytes <- if (inherits(init, "ember_model")) {
    check_model(init, "init")
    .Call(C_ember_model_snapshot, init$ptr)
  } else if (checkmate::test_string(init)) {
    if (!file.exists(init)) {
      ember_abort(sprintf("'init' names no file: '%s'", init), argument = "init", expected = "a model or safetensors file",
        got = init)
    }
    readBin(init, "raw", file.size(init))
  } else {
    ember_abort("'init' must be an ember_model or the path of a model or safetensors file", argument = "init",
      expected = "an ember_model or a path", got = class(init)[1L])
  }
  report <- from_json(.Call(C_ember_model_restore_matching, ptr, bytes))
  mismatched <- vapply(report$mismatched, function(m) sprintf("'%s' [%s] -> [%s]", m$name,
    paste(unlist(m$given), collapse = ", "), paste(unlist(m$expected), collapse = ", ")), "")
  if (!length(report$loaded)) {
    ember_abort(sprintf("no parameter of 'init' matches this network by name and size (the network has %s)",
      paste0("'", utils::head(c(report$missing, vapply(report$mismatched, `[[`, "", "name")), 4L), "'", collapse = ", ")),
      kind = "shape", argument = "init", expected = "parameters with this network's names", got = "none")
  }
  differs <- c(mismatched, if (length(report$missing)) paste0("'", report$missing, "' (not in 'init')"),
    if (length(report$unused)) paste0("'", report$unused, "' (not in this network)"))
  if (length(differs) && strict) {
    ember_abort(sprintf("'init' does not fit this network exactly (init_strict = TRUE): %s", paste(differs, collapse = "; ")),
      kind = "shape", argument = "init", expected = "the same names and sizes", got = paste(differs, collapse = "; "))
  }
  if (length(mismatched) || length(report$missing)) {
    ember_warn(sprintf("'init' set %d of %d parameters and buffers; kept as initialised: %s", length(report$loaded),
      length(report$loaded) + length(mismatched) + length(report$missing),
      paste(c(mismatched, if (length(report$missing)) paste0("'", report$missing, "' (not in 'init')")), collapse = "; ")),
      kind = "init_partial", argument = "init")
  }
  report
}

# ember_fit()'s argument for an engine configuration field.
r_argument_name <- function(field) {
  if (is.na(field)) return(field)
  direct <- c(optimizer.lr = "lr", optimizer.weight_decay = "weight_decay", optimizer.momentum = "momentum",
    optimizer.kind = "optimizer", loss.kind = "loss", measures_valid = "measures")
  if (field %in% names(direct)) return(direct[[field]])
  if (startsWith(field, "opt.")) return(sub("^opt\\.", "", field))
  if (startsWith(field, "optimizer.")) return(sub("^optimizer\\.", "opt_args$", field))
  if (startsWith(field, "loss.")) return(sub("^loss\\.", "loss_args$", field))
  if (startsWith(field, "schedule.")) return(sub("^schedule\\.", "schedule$", field))
  field
}

poisson_loss <- function(loss) identical(loss, "poisson_nll")

# The quantile levels of a fit: loss_args$quantiles (default 0.5, the median) with the quantile
# loss, which needs a numeric target; NULL for other losses. Levels must lie in (0, 1) and be
# strictly increasing: unsorted or repeated levels are refused rather than sorted, so that the
# columns of the predictions are the levels as given.
quantile_levels <- function(loss, loss_args, target) {
  q <- loss_args$quantiles
  if (!identical(loss, "quantile")) {
    if (!is.null(q)) {
      ember_abort(sprintf("'loss_args$quantiles' applies to loss = \"quantile\"; the loss is %s", deparse_short(loss)),
        argument = "loss_args$quantiles", expected = "loss = \"quantile\"", got = deparse_short(loss))
    }
    return(NULL)
  }
  if (target$type != "numeric") {
    what <- if (target$type == "multilabel") "a multilabel target" else "a factor (classification)"
    ember_abort(sprintf("loss = \"quantile\" is a regression loss (quantile regression of a numeric 'y'); 'y' is %s", what),
      argument = "loss", expected = paste(builtin_losses(if (target$type == "multilabel") "multilabel" else "classif"), collapse = ", "),
      got = "quantile")
  }
  if (is.null(q)) return(0.5)
  if (!is.numeric(q) || !length(q) || anyNA(q)) {
    ember_abort(sprintf("'loss_args$quantiles' must be a numeric vector of levels in (0, 1) without NA, got %s", deparse_short(q)),
      argument = "loss_args$quantiles", expected = "levels in (0, 1)", got = deparse_short(q))
  }
  out <- which(!(q > 0 & q < 1))
  if (length(out)) {
    ember_abort(sprintf("'loss_args$quantiles' must lie in (0, 1); level %d is %s", out[1L], format(q[out[1L]])),
      argument = "loss_args$quantiles", index = out[1L], expected = "levels in (0, 1)", got = format(q[out[1L]]))
  }
  bad <- which(diff(q) <= 0)
  if (length(bad)) {
    ember_abort(sprintf("'loss_args$quantiles' must be strictly increasing (sorted, without repeats), e.g. c(0.1, 0.5, 0.9); level %d (%s) follows %s",
      bad[1L] + 1L, format(q[bad[1L] + 1L]), format(q[bad[1L]])), argument = "loss_args$quantiles", index = bad[1L] + 1L,
      expected = "strictly increasing levels", got = deparse_short(q))
  }
  as.double(q)
}

# The engine's loss for ember_fit()'s `loss` on a task: on two classes, one logit with BCE (or the
# sigmoid focal loss); per label for multilabel targets.
engine_loss <- function(loss, task) {
  if (is.null(loss)) return(NULL)
  if (inherits(loss, "ember_loss_fn")) return("expression")
  allowed <- builtin_losses(switch(task, regression = , quantile_regression = "regr", multilabel = "multilabel", "classif"))
  loss <- check_choice(loss, allowed, "loss")
  if (task == "binary") return(switch(loss, cross_entropy = "bce_with_logits", focal = "sigmoid_focal"))
  if (task == "multilabel") return(switch(loss, bce = "bce_with_logits", focal = "sigmoid_focal"))
  loss
}

opt_args_json <- function(args) {
  checkmate::assert_list(args, names = "unique")
  if (!is.null(args$betas)) args$betas <- json_array(as.double(args$betas))
  if (!is.null(args$param_groups)) args$param_groups <- param_groups_json(args$param_groups)
  args
}

# Optimizer parameter groups: a list of lists, each with `params` (name patterns) and options.
param_groups_json <- function(groups) {
  ok <- is.list(groups) && length(groups) > 0L && all(vapply(groups, function(g) {
    is.list(g) && !is.null(names(g)) && checkmate::test_character(g$params, min.chars = 1L, any.missing = FALSE, min.len = 1L)
  }, logical(1)))
  if (!ok) {
    ember_abort("'param_groups' must be a list of groups, each a list with 'params' (parameter name patterns) and options, e.g. list(list(params = \"linear_0.*\", lr = 1e-4))",
      argument = "param_groups", expected = "list(list(params = , ...))", got = class(groups)[1L])
  }
  json_array(lapply(groups, function(g) {
    g$params <- json_array(g$params)
    if (!is.null(g$betas)) g$betas <- json_array(as.double(g$betas))
    g
  }))
}

loss_args_json <- function(args) {
  checkmate::assert_list(args, names = "unique")
  for (k in c("class_weights", "pos_weight")) if (!is.null(args[[k]])) args[[k]] <- json_array(as.double(args[[k]]))
  args
}

# The callbacks of a fit: those made from ember_fit()'s arguments (schedule, early stopping,
# progress; see ember_callbacks_builtin), unless the user gave one of the same kind, then the user's.
fit_callbacks <- function(callbacks, schedule, patience, min_delta, restore_best_weights, progress) {
  ids <- vapply(callbacks, `[[`, "", "id")
  builtin <- list()
  if (!"early_stopping" %in% ids) {
    builtin$early_stopping <- new_callback("early_stopping", engine = list(patience = patience, min_delta = min_delta,
      restore_best_weights = restore_best_weights))
  } else if (patience > 0L) {
    ember_abort("give early stopping either as 'patience' or as ember_cb_early_stopping(), not both", argument = "patience",
      expected = "one of them", got = "both")
  }
  if (!is.null(schedule)) {
    if ("lr_scheduler" %in% ids) {
      ember_abort("give the learning-rate schedule either as 'schedule' or as ember_cb_lr_scheduler(), not both",
        argument = "schedule", expected = "one of them", got = "both")
    }
    builtin$lr_scheduler <- ember_cb_lr_scheduler(schedule)
  }
  if (progress && !"progress" %in% ids) builtin$progress <- ember_cb_progress()
  c(unname(builtin), callbacks)
}

# What happens in R after each epoch, or NULL when nothing does: R training measures (scored on
# predictions of the training data) and R validation measures (on the validation predictions the
# engine kept; the first measure then drives early stopping through report_score).
# Returns function(record, previous records) -> list(record, stop).
epoch_hook <- function(trainer, ptr, train_data, measures, measures_train, target, train_truth, valid_truth,
                       batch_size_predict) {
  host_valid <- Filter(is.function, measures)
  host_train <- Filter(is.function, measures_train)
  if (!length(host_valid) && !length(host_train)) return(NULL)
  info <- from_json(.Call(C_ember_model_info, ptr))
  columns <- as.integer(info$prediction_columns)
  target[c("quantiles", "response_column")] <- list(model_quantiles(info), as.integer(info$response_column) + 1L)
  function(r, previous) {
    stop <- FALSE
    if (length(host_train)) {
      prediction <- .Call(C_ember_model_predict, ptr, train_data, as.integer(batch_size_predict), FALSE, columns)
      r[["train"]] <- c(r[["train"]], score_host_measures(host_train, prediction, train_truth, target))
    }
    if (length(host_valid) && !is.null(r$valid_loss)) {
      prediction <- .Call(C_ember_trainer_valid_predictions, trainer)
      scores <- score_host_measures(host_valid, prediction, valid_truth, target)
      r[["valid"]] <- c(r[["valid"]], scores)
      # NOTE: records hold train_loss and valid_loss, so r$train and r$valid would partially match
      # them when the engine wrote no measures: always r[["train"]], r[["valid"]].
      # With host scoring the engine leaves early stopping to us, whichever the first measure.
      first <- measures[[1L]]
      score <- if (is.function(first)) scores[[1L]] else as.double(r[["valid"]][[first]])
      maximize <- if (is.function(first)) !attr(first, "minimize") else engine_measure_maximize(first)
      if (!is.na(score) && isTRUE(.Call(C_ember_trainer_report_score, trainer, score, maximize))) stop <- TRUE
    }
    list(record = r, stop = stop)
  }
}

# Runs the trainer in slices of about `target_seconds`, collecting epoch records into a history,
# running `on_epoch` (see epoch_hook()) after each epoch, showing progress and catching interrupts.
train_slices <- function(trainer, train_data, valid_data, epochs, batches_per_epoch, on_epoch, progress,
                         runner, planned = epochs, target_seconds = 0.25) {
  records <- list()
  budget <- 1L  # batches per slice, adapted to the measured speed
  stopped <- FALSE
  interrupted <- FALSE
  failure <- NULL  # an error while training (an unreadable image file ...): raised with the model so far
  non_finite <- NULL  # where the loss became NaN or infinite (the engine stopped training there)
  state <- NULL
  bar <- if (progress) utils::txtProgressBar(min = 0, max = epochs, style = 3) else NULL
  on.exit(if (!is.null(bar)) close(bar), add = TRUE)
  tryCatch({
    if (runner$active) {
      runner$begin()
      stopped <- runner$stopped
    }
    while (length(records) < epochs && !stopped) {
      if (runner$active && (is.null(state) || state$batches_in_epoch == 0L)) {
        runner$epoch_begin(length(records) + 1L)
        if (runner$stopped) break
      }
      started <- proc.time()[["elapsed"]]
      # With work in R after each epoch, a slice ends at the end of an epoch at the latest.
      max_epochs <- if (!is.null(on_epoch) || runner$active) 1L else epochs - length(records)
      text <- .Call(C_ember_trainer_fit, trainer, train_data, valid_data, as.integer(max_epochs), as.integer(budget),
        as.integer(planned))
      for (r in from_json(text)) {
        if (!is.null(on_epoch)) {
          done <- on_epoch(r, records)
          r <- done$record
          stopped <- stopped || done$stop
        }
        records[[length(records) + 1L]] <- r
        if (runner$active) {
          runner$epoch_end(r, records)
          stopped <- stopped || runner$stopped
        }
      }
      state <- from_json(.Call(C_ember_trainer_state, trainer))
      stopped <- stopped || isTRUE(state$stopped)
      if (!is.null(state$non_finite)) non_finite <- state$non_finite
      elapsed <- proc.time()[["elapsed"]] - started
      if (elapsed > 0.01) budget <- as.integer(min(max(1, round(budget * target_seconds / elapsed)), 1e6)) else budget <- min(budget * 4L, 1000000L)
      if (!is.null(bar)) utils::setTxtProgressBar(bar, length(records) + state$batches_in_epoch / batches_per_epoch)
    }
  }, interrupt = function(e) interrupted <<- TRUE, error = function(e) {
    # Ctrl-C seen by the engine between batches ends the slice with this error (the trainer keeps
    # the batches it ran): the same as an interrupt between slices.
    if (inherits(e, "ember_error_interrupted")) interrupted <<- TRUE else failure <<- e
  })
  best <- state$best_epoch
  list(history = records_to_history(records), stopped = stopped, interrupted = interrupted,
    best_epoch = if (length(best)) as.integer(best) else NULL, failure = failure, non_finite = non_finite)
}

# Epoch records (JSON) as an ember_history data.frame.
records_to_history <- function(records) {
  if (!length(records)) {
    return(structure(data.frame(epoch = integer(0), train_loss = numeric(0), valid_loss = numeric(0), lr = numeric(0)),
      class = c("ember_history", "data.frame")))
  }
  num <- function(v) if (is.null(v)) NA_real_ else as.double(v)
  train_names <- unique(unlist(lapply(records, function(r) names(r[["train"]]))))
  valid_names <- unique(unlist(lapply(records, function(r) names(r[["valid"]]))))
  h <- data.frame(
    epoch = vapply(records, function(r) as.integer(r$epoch), integer(1)),
    train_loss = vapply(records, function(r) num(r$train_loss), numeric(1)),
    valid_loss = vapply(records, function(r) num(r$valid_loss), numeric(1)),
    lr = vapply(records, function(r) num(r$lr), numeric(1))
  )
  for (m in train_names) h[[paste0("train_", m)]] <- vapply(records, function(r) num(r[["train"]][[m]]), numeric(1))
  for (m in valid_names) h[[paste0("valid_", m)]] <- vapply(records, function(r) num(r[["valid"]][[m]]), numeric(1))
  structure(h, class = c("ember_history", "data.frame"))
}
