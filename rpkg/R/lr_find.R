#' Find a learning rate
#'
#' A learning-rate range test: a new network trains one batch at each of `num_steps` learning
#' rates growing exponentially from `lr_min` to `lr_max` (by default over one epoch), and the
#' training loss after each batch is recorded. The loss first barely moves (the rate is too small
#' to matter), then falls, then rises or diverges (the rate is too large); a good rate for training
#' lies where it falls fastest. The sweep stops early once the smoothed loss exceeds
#' `stop_factor` times its minimum, or the loss is not finite.
#'
#' The curve is smoothed with an exponential moving average (`smoothing`, bias-corrected), and two
#' rates are suggested: `suggested` where the smoothed loss falls fastest against log(lr)
#' (the steepest descent), and `min_loss_lr` a tenth of the rate of the smallest smoothed loss. The
#' sweep trains a throw-away network: the weights are not kept.
#'
#' @param x (`data.frame`, `array`, or an 'mlr3' `Learner`)\cr The features as in [ember_fit()],
#'   or an Ember learner: then the sweep uses the learner's network, optimizer, loss, batch size,
#'   augmentation and preprocessing on `task`.
#' @param ... Arguments of the methods: `y`, `architecture` and the others below for data, `task`
#'   and the sweep's arguments for a learner.
#' @param y The target as in [ember_fit()].
#' @param task (`mlr3::Task`)\cr The task a learner's sweep trains on.
#' @param architecture,batch_size,optimizer,weight_decay,momentum,opt_args,loss,loss_args,standardize,seed,num_threads,augment
#'   As [ember_fit()]'s arguments.
#' @param lr_min,lr_max (`numeric(1)`)\cr The first and last learning rate of the sweep, `0 < lr_min < lr_max`.
#' @param num_steps (`integer(1)` or `NULL`)\cr Number of rates (one batch each); `NULL`: the
#'   batches of one epoch. More steps than an epoch's batches continue into the next epochs.
#' @param stop_factor (`numeric(1)`)\cr Stop once the smoothed loss exceeds this multiple of its
#'   minimum (`Inf`: never stop early).
#' @param smoothing (`numeric(1)`)\cr Weight of the past in the moving average, in `[0, 1)`.
#' @return An `ember_lr_find` object: a list with `history` (a data frame of `step`, `lr`, `loss`,
#'   `smoothed`), `suggested`, `min_loss_lr` and `stopped_early`. `print()` shows the
#'   suggestions, `plot()` the curve (log-scaled rate, the suggestion marked).
#' @seealso [ember_fit()]
#' @export
#' @examples
#' set.seed(1)
#' finder <- ember_lr_find(iris[, 1:4], iris$Species, batch_size = 4, num_steps = 60,
#'   lr_min = 1e-5, lr_max = 1, seed = 1)
#' finder
#' plot(finder)
#' model <- ember_fit(iris[, 1:4], iris$Species, lr = finder$suggested, epochs = 10, batch_size = 4)
ember_lr_find <- function(x, ...) UseMethod("ember_lr_find")

#' @rdname ember_lr_find
#' @export
ember_lr_find.default <- function(x, y, architecture = ember_mlp(), lr_min = 1e-7, lr_max = 10, num_steps = NULL,
                                  batch_size = 32L, optimizer = "adam", weight_decay = NULL, momentum = NULL,
                                  opt_args = list(), loss = NULL, loss_args = list(), standardize = TRUE, seed = NULL,
                                  num_threads = 1L, augment = NULL, stop_factor = 4, smoothing = 0.98, ...) {
  if (...length()) {
    extra <- names(list(...))
    ember_abort(sprintf("ember_lr_find() got unknown argument(s): %s", paste(if (is.null(extra)) "(unnamed)" else extra,
      collapse = ", ")), argument = "...", expected = "the documented arguments")
  }
  if (!checkmate::test_number(lr_min, lower = 0, finite = TRUE) || lr_min <= 0) {
    ember_abort("'lr_min' must be a number > 0", argument = "lr_min", expected = "a number > 0", got = deparse_short(lr_min))
  }
  if (!checkmate::test_number(lr_max, finite = TRUE) || lr_max <= lr_min) {
    ember_abort(sprintf("'lr_max' must be a number larger than lr_min (%g)", lr_min), argument = "lr_max",
      expected = sprintf("a number > %g", lr_min), got = deparse_short(lr_max))
  }
  if (!is.null(num_steps)) num_steps <- check_count(num_steps, "num_steps", lower = 2L)
  if (!checkmate::test_number(stop_factor, lower = 1)) {
    ember_abort("'stop_factor' must be a number >= 1 (Inf: never stop early)", argument = "stop_factor",
      expected = "a number >= 1", got = deparse_short(stop_factor))
  }
  if (!checkmate::test_number(smoothing, lower = 0, upper = 1, finite = TRUE) || smoothing >= 1) {
    ember_abort("'smoothing' must be a number in [0, 1)", argument = "smoothing", expected = "a number in [0, 1)",
      got = deparse_short(smoothing))
  }
  a <- fit_arguments(architecture, epochs = 1L, batch_size = batch_size, optimizer = optimizer, patience = 0L,
    eval_freq = 1L, num_threads = num_threads, batch_size_predict = 4096L, standardize = standardize, shuffle = TRUE,
    drop_last = FALSE, progress = FALSE, restore_best_weights = FALSE, min_delta = 0, seed = seed)
  data <- fit_data(x, y, a$architecture, init = NULL, init_resume = FALSE, loss, loss_args, validate = NULL, a$seed)
  ptr <- fit_model(data, loss, data$loss_args, standardize, augment, init = NULL, init_strict = FALSE)$ptr
  config <- fit_trainer_config(a$batch_size, shuffle = TRUE, drop_last = FALSE, a$optimizer, lr_min, weight_decay,
    momentum, opt_args, loss, data$loss_args, data$target, engine = list(), eval_freq = 1L, measures = list(),
    measures_train = list(), batch_size_predict = 4096L, host_scoring = FALSE)
  trainer <- tryCatch(.Call(C_ember_trainer_new, ptr, to_json(config)), ember_error = function(e) {
    e$argument <- r_argument_name(e$argument)
    stop(e)
  })
  train_data <- engine_dataset(data$inputs, data$target$values, argument = "x")
  on.exit({
    .Call(C_ember_release, trainer)
    .Call(C_ember_release, train_data)
    .Call(C_ember_release, ptr)
  }, add = TRUE)
  old_threads <- ember_set_threads(a$num_threads)
  on.exit(ember_set_threads(old_threads), add = TRUE)

  steps <- num_steps %||% max(2L, as.integer(ceiling(inputs_rows(data$inputs) / a$batch_size)))
  lrs <- lr_min * (lr_max / lr_min)^((seq_len(steps) - 1) / (steps - 1))
  losses <- smoothed <- rep(NA_real_, steps)
  average <- 0
  best <- Inf
  done <- 0L
  for (i in seq_len(steps)) {
    .Call(C_ember_trainer_set_option, trainer, "lr", lrs[i], -1L)
    .Call(C_ember_trainer_fit, trainer, train_data, NULL, 1L, 1L, 0L)
    loss_i <- from_json(.Call(C_ember_trainer_state, trainer))$batch_loss
    loss_i <- if (is.null(loss_i)) NaN else as.numeric(loss_i)
    done <- i
    losses[i] <- loss_i
    if (!is.finite(loss_i)) break
    average <- smoothing * average + (1 - smoothing) * loss_i
    smoothed[i] <- average / (1 - smoothing^i)
    best <- min(best, smoothed[i])
    if (smoothed[i] > stop_factor * best) break
  }
  history <- data.frame(step = seq_len(done), lr = lrs[seq_len(done)], loss = losses[seq_len(done)],
    smoothed = smoothed[seq_len(done)])
  structure(c(list(history = history), lr_suggestions(history), list(stopped_early = done < steps)),
    class = "ember_lr_find")
}

#' @rdname ember_lr_find
#' @export
ember_lr_find.Learner <- function(x, task, lr_min = 1e-7, lr_max = 10, num_steps = NULL, stop_factor = 4,
                                  smoothing = 0.98, ...) {
  if (!inherits(x, c("LearnerClassifEmber", "LearnerRegrEmber"))) {
    ember_abort(sprintf("ember_lr_find() takes an Ember learner (e.g. lrn(\"classif.ember_mlp\")); '%s' is not one", x$id),
      argument = "x", expected = "an Ember learner", got = class(x)[1L])
  }
  if (!inherits(task, "Task")) {
    ember_abort("'task' must be an mlr3 Task", argument = "task", expected = "an mlr3 Task", got = class(task)[1L])
  }
  if (...length()) {
    ember_abort(sprintf("ember_lr_find() got unknown argument(s) for a learner: %s", paste(names(list(...)), collapse = ", ")),
      argument = "...", expected = "task and the sweep's arguments")
  }
  # The learner's own training path builds ember_fit()'s arguments; the sweep takes them instead.
  sweep <- function(x, y, architecture, batch_size, optimizer, lr, weight_decay, momentum, opt_args, loss, loss_args,
                    standardize, seed, num_threads, augment, ...) {
    ember_lr_find.default(x, y, architecture = architecture, lr_min = lr_min, lr_max = lr_max, num_steps = num_steps,
      batch_size = batch_size, optimizer = optimizer, weight_decay = weight_decay, momentum = momentum,
      opt_args = opt_args, loss = loss, loss_args = loss_args, standardize = standardize, seed = seed,
      num_threads = num_threads, augment = augment, stop_factor = stop_factor, smoothing = smoothing)
  }
  learner <- x$clone(deep = TRUE)
  # Epochs and early stopping do not apply to the sweep (it runs num_steps batches).
  learner$param_set$values$patience <- 0L
  learner$param_set$values$epochs <- 1L
  ember_learner_train(learner, learner$.__enclos_env__$private, task, fit = sweep)
}

# The suggestions of a sweep: the rate of the steepest descent of the smoothed loss against
# log(lr), and a tenth of the rate of its minimum.
lr_suggestions <- function(history) {
  ok <- which(is.finite(history$smoothed))
  if (length(ok) < 2L) return(list(suggested = NA_real_, min_loss_lr = NA_real_))
  lr <- history$lr[ok]
  s <- history$smoothed[ok]
  slope <- diff(s) / diff(log(lr))
  list(suggested = lr[which.min(slope)], min_loss_lr = lr[which.min(s)] / 10)
}

#' @export
print.ember_lr_find <- function(x, ...) {
  h <- x$history
  cat(sprintf("<ember_lr_find> %d step(s), lr %.3g to %.3g%s\n", nrow(h), h$lr[1L], h$lr[nrow(h)],
    if (x$stopped_early) " (stopped early: the loss diverged)" else ""))
  cat(sprintf("  suggested lr (steepest descent): %.3g\n  lr of the smallest loss / 10:    %.3g\n", x$suggested, x$min_loss_lr))
  invisible(x)
}

#' @export
plot.ember_lr_find <- function(x, ...) {
  h <- x$history[is.finite(x$history$smoothed), , drop = FALSE]
  graphics::plot(h$lr, h$smoothed, type = "l", log = "x", xlab = "learning rate (log scale)",
    ylab = "training loss (smoothed)", main = "Learning-rate range test", ...)
  if (is.finite(x$suggested)) {
    graphics::abline(v = x$suggested, lty = 2, col = "red")
    graphics::points(x$suggested, h$smoothed[match(x$suggested, h$lr)], col = "red", pch = 19)
  }
  invisible(x)
}
