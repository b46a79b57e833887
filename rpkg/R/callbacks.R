#' Callbacks: R code at the stages of training
#'
#' A callback is R code that training runs at epoch-level stages, with a context that reads the
#' progress of training and acts on the live model. [ember_fit()] takes a list of callbacks
#' (`callbacks =`), and so do the 'mlr3' learners (`lrn("classif.ember_mlp", callbacks = ...)`),
#' where a callback's parameters become the learner's parameters `cb.<id>.<name>`, tunable like
#' any other. The built-in callbacks ([ember_cb_checkpoint()], [ember_cb_unfreeze()],
#' [ember_cb_lr_scheduler()], [ember_cb_early_stopping()], [ember_cb_progress()]) are callbacks of
#' the same kind; the arguments `schedule`, `patience`, `progress` ... of [ember_fit()] and the
#' learners' `cb.*` parameters create them.
#'
#' @section Stages:
#' Each stage is a `function(ctx)`:
#' * `on_begin`: before the first epoch;
#' * `on_epoch_begin`: before each epoch;
#' * `on_epoch_end`: after each epoch (after the training measures);
#' * `on_valid_end`: after each epoch that was validated (after `on_epoch_end`);
#' * `on_end`: after training, with the final model (best weights restored when configured).
#'
#' Stages within an epoch (per batch) run in the engine only, never in R: an R call per batch
#' would cost more than the batch.
#'
#' @section Context:
#' `ctx` is an environment with
#' * `ctx$epoch`: the epoch that begins or has ended (0 in `on_begin`); `ctx$epochs`: the epochs
#'   planned;
#' * `ctx$record`: the last epoch's record (`train_loss`, `valid_loss`, `lr`, and the lists
#'   `train` and `valid` of measures), `ctx$history`: the [ember_history][ember_fit] so far;
#' * `ctx$model`: the live `ember_model`: [ember_get_parameter()], [ember_set_parameter()],
#'   [ember_freeze()], [ember_unfreeze()], [ember_save()] and [predict()][predict.ember_model]
#'   work on it, and changes take effect in the next batch;
#' * `ctx$set_lr(lr, group = -1)`: sets the learning rate (of one parameter group, or of all);
#' * `ctx$stop()`: ends training after this stage, cleanly: the model is kept, with the epochs
#'   trained so far;
#' * `ctx$params`: the callback's parameter values; `ctx$state`: an environment of the callback's
#'   own, kept over the stages of one training run.
#'
#' An error in a stage stops training: the model trained so far is finished (best weights
#' restored when configured) and the error is raised again with its classes, the model attached
#' as `$model` of the condition.
#'
#' `state_dict`, a `function(ctx)` called after `on_end`, returns what the callback wants to keep
#' with the model: it is stored in `model$config$callback_states[[id]]` (and travels with the
#' model through [ember_serialize()] and 'mlr3' marshaling). When training continues that model
#' (`ember_fit(init_resume = TRUE)`, a learner's hotstart), `load_state_dict`, a
#' `function(ctx, state)`, receives it before `on_begin`, so that the callback carries on.
#'
#' @param id (`character(1)`)\cr The callback's id: a name without `.`.
#' @param on_begin,on_epoch_begin,on_epoch_end,on_valid_end,on_end (`function(ctx)` or `NULL`)\cr
#'   The stages (see sections Stages and Context).
#' @param state_dict (`function(ctx)` or `NULL`)\cr What to keep with the model after training.
#' @param load_state_dict (`function(ctx, state)` or `NULL`)\cr Takes back what `state_dict`
#'   kept, when training continues a model.
#' @param param_set (`paradox::ParamSet` or `NULL`)\cr The callback's parameters (each tagged
#'   `"train"`); a learner exposes them as `cb.<id>.<name>`.
#' @param params (`list()`)\cr Parameter values used by [ember_fit()] (a learner takes them from
#'   its `cb.<id>.*` parameters, initialised from these).
#' @return An object of class `ember_callback`.
#' @seealso [ember_fit()], [mlr_learners_ember]
#' @export
#' @examples
#' # Stop as soon as the training accuracy reaches a target:
#' target <- ember_callback("target",
#'   on_epoch_end = function(ctx) {
#'     if (ctx$record$train$accuracy >= ctx$params$accuracy) ctx$stop()
#'   },
#'   params = list(accuracy = 0.9))
#' set.seed(1)
#' model <- ember_fit(iris[, 1:4], iris$Species, epochs = 200, lr = 0.01, measures_train = "accuracy",
#'   callbacks = list(target))
#' nrow(model$history)
#'
#' # Halve the learning rate every 5 epochs, and keep the rates seen:
#' halve <- ember_callback("halve",
#'   on_begin = function(ctx) ctx$state$lrs <- numeric(0),
#'   on_epoch_end = function(ctx) {
#'     ctx$state$lrs <- c(ctx$state$lrs, ctx$record$lr)
#'     if (ctx$epoch %% 5 == 0) ctx$set_lr(ctx$record$lr / 2)
#'   },
#'   state_dict = function(ctx) ctx$state$lrs)
#' model <- ember_fit(iris[, 1:4], iris$Species, epochs = 12, lr = 0.02, callbacks = list(halve))
#' model$config$callback_states$halve
ember_callback <- function(id, on_begin = NULL, on_epoch_begin = NULL, on_epoch_end = NULL, on_valid_end = NULL,
                           on_end = NULL, state_dict = NULL, load_state_dict = NULL, param_set = NULL,
                           params = list()) {
  if (!checkmate::test_string(id, min.chars = 1L) || grepl(".", id, fixed = TRUE)) {
    ember_abort(sprintf("'id' must be a non-empty name without '.', got %s", deparse_short(id)), argument = "id",
      expected = "a name without '.'", got = deparse_short(id))
  }
  stages <- list(on_begin = on_begin, on_epoch_begin = on_epoch_begin, on_epoch_end = on_epoch_end,
    on_valid_end = on_valid_end, on_end = on_end, state_dict = state_dict, load_state_dict = load_state_dict)
  for (stage in names(stages)) {
    f <- stages[[stage]]
    arity <- if (stage == "load_state_dict") 2L else 1L
    if (!is.null(f) && (!is.function(f) || length(formals(f)) < arity)) {
      ember_abort(sprintf("'%s' of callback '%s' must be NULL or a function(%s)", stage, id,
        if (arity == 2L) "ctx, state" else "ctx"), argument = stage, expected = "a function", got = class(f)[1L])
    }
  }
  if (!is.null(param_set)) {
    if (!inherits(param_set, "ParamSet")) {
      ember_abort(sprintf("'param_set' of callback '%s' must be a paradox ParamSet", id), argument = "param_set",
        expected = "a ParamSet", got = class(param_set)[1L])
    }
    untagged <- param_set$ids()[!vapply(param_set$tags, function(t) "train" %in% t, logical(1))]
    if (length(untagged)) {
      ember_abort(sprintf("the parameters of callback '%s' must be tagged \"train\"; %s are not", id,
        paste0("'", untagged, "'", collapse = ", ")), argument = "param_set", expected = "tags = \"train\"",
        got = paste(untagged, collapse = ", "))
    }
    params <- utils::modifyList(param_set$values, params)
  }
  if (!is.list(params) || (length(params) && (is.null(names(params)) || any(!nzchar(names(params)))))) {
    ember_abort(sprintf("'params' of callback '%s' must be a named list", id), argument = "params",
      expected = "a named list", got = class(params)[1L])
  }
  new_callback(id, stages, param_set = param_set, params = params)
}

new_callback <- function(id, stages = list(), engine = list(), param_set = NULL, params = list()) {
  structure(list(id = id, stages = stages[!vapply(stages, is.null, logical(1))], engine = engine,
    param_set = param_set, params = params), class = "ember_callback")
}

#' @export
print.ember_callback <- function(x, ...) {
  what <- c(names(x$stages), if (length(x$engine)) paste0("engine: ", paste(names(x$engine), collapse = ", ")))
  cat(sprintf("<ember_callback> %s (%s)\n", x$id, paste(what, collapse = "; ")))
  if (length(x$params)) cat(sprintf("  params: %s\n", paste(names(x$params), collapse = ", ")))
  invisible(x)
}

#' Built-in callbacks
#'
#' Callbacks (see [ember_callback()]) for what most training runs need. [ember_fit()]'s arguments
#' and the learners' `cb.*` parameters create the same objects.
#'
#' * `ember_cb_checkpoint()`: every `freq` epochs, writes the model as it is to
#'   `<path>/checkpoint_<epoch>.safetensors` ([ember_load()] reads it).
#' * `ember_cb_unfreeze()`: fine-tuning in stages, as 'mlr3torch''s `unfreeze` callback: at the
#'   start only the parameters matching `starting_weights` train (the others are frozen); at the
#'   start of each epoch listed in `unfreeze`, the parameters matching its patterns train too.
#'   Frozen parameters get no optimizer update.
#' * `ember_cb_lr_scheduler()`: a learning-rate schedule run by the engine (see [ember_fit()]'s
#'   `schedule`).
#' * `ember_cb_early_stopping()`: early stopping on the validation data, run by the engine (see
#'   [ember_fit()]'s `patience`).
#' * `ember_cb_progress()`: a progress bar (updated several times per epoch).
#'
#' @param path (`character(1)`)\cr A directory (created when missing).
#' @param freq (`integer(1)`)\cr Write every `freq` epochs.
#' @param starting_weights (`character()`)\cr Patterns (as in [ember_freeze()]) of the parameters
#'   that train from the start.
#' @param unfreeze (`data.frame` or `list`)\cr Columns (or elements) `epoch` (integer) and
#'   `weights` (a pattern, or a list of patterns per row): at the start of `epoch`, unfreeze them.
#' @param schedule (`list()`)\cr A schedule as [ember_fit()]'s `schedule`.
#' @param patience,min_delta,restore_best_weights As [ember_fit()]'s arguments.
#' @return An `ember_callback`.
#' @name ember_callbacks_builtin
#' @seealso [ember_callback()]
#' @examples
#' d <- data.frame(a = rnorm(64), b = rnorm(64))
#' y <- d$a - d$b
#' # Train only the head for 3 epochs, then everything:
#' cb <- ember_cb_unfreeze(starting_weights = "head_0.*",
#'   unfreeze = data.frame(epoch = 4, weights = "*"))
#' model <- ember_fit(d, y, ember_network(ember_input_num() |> ember_linear(8) |> ember_head()),
#'   epochs = 6, callbacks = list(cb))
#' # Checkpoints every 2 epochs:
#' dir <- tempfile()
#' model <- ember_fit(d, y, epochs = 4, callbacks = list(ember_cb_checkpoint(dir, freq = 2)))
#' list.files(dir)
NULL

#' @rdname ember_callbacks_builtin
#' @export
ember_cb_checkpoint <- function(path, freq = 1L) {
  if (!checkmate::test_string(path, min.chars = 1L)) {
    ember_abort("'path' must be a directory path", argument = "path", expected = "a string", got = deparse_short(path))
  }
  freq <- check_count(freq, "freq")
  new_callback("checkpoint", list(
    on_begin = function(ctx) dir.create(path, recursive = TRUE, showWarnings = FALSE),
    on_epoch_end = function(ctx) {
      if (ctx$epoch %% freq == 0L) ember_save(ctx$model, file.path(path, sprintf("checkpoint_%d.safetensors", ctx$epoch)))
    }))
}

#' @rdname ember_callbacks_builtin
#' @export
ember_cb_unfreeze <- function(starting_weights, unfreeze = data.frame(epoch = integer(0), weights = character(0))) {
  if (!checkmate::test_character(starting_weights, min.chars = 1L, any.missing = FALSE, min.len = 1L)) {
    ember_abort("'starting_weights' must be parameter name patterns, e.g. \"head_0.*\"", argument = "starting_weights",
      expected = "patterns", got = deparse_short(starting_weights))
  }
  if (!is.list(unfreeze) || !all(c("epoch", "weights") %in% names(unfreeze)) ||
      !checkmate::test_integerish(unfreeze$epoch, lower = 1, any.missing = FALSE) ||
      length(unfreeze$weights) != length(unfreeze$epoch)) {
    ember_abort("'unfreeze' must have columns 'epoch' (integers >= 1) and 'weights' (patterns), one row per step",
      argument = "unfreeze", expected = "data.frame(epoch, weights)", got = class(unfreeze)[1L])
  }
  steps <- lapply(seq_along(unfreeze$epoch), function(i) list(epoch = as.integer(unfreeze$epoch[i]),
    weights = as.character(unlist(unfreeze$weights[i]))))
  new_callback("unfreeze", list(
    on_begin = function(ctx) {
      ember_freeze(ctx$model, "*")
      for (p in starting_weights) ember_unfreeze(ctx$model, p)
    },
    on_epoch_begin = function(ctx) {
      for (s in steps) if (s$epoch == ctx$epoch) for (p in s$weights) ember_unfreeze(ctx$model, p)
    }))
}

#' @rdname ember_callbacks_builtin
#' @export
ember_cb_lr_scheduler <- function(schedule) {
  if (!is.list(schedule) || !checkmate::test_string(schedule$kind)) {
    ember_abort("'schedule' must be a list with 'kind', e.g. list(kind = \"step\", step_size = 10)", argument = "schedule",
      expected = "list(kind = ...)", got = class(schedule)[1L])
  }
  new_callback("lr_scheduler", engine = list(schedule = schedule))
}

#' @rdname ember_callbacks_builtin
#' @export
ember_cb_early_stopping <- function(patience, min_delta = 0, restore_best_weights = TRUE) {
  new_callback("early_stopping", engine = list(patience = check_count(patience, "patience", lower = 0L),
    min_delta = min_delta, restore_best_weights = check_flag(restore_best_weights, "restore_best_weights")))
}

#' @rdname ember_callbacks_builtin
#' @export
ember_cb_progress <- function() new_callback("progress", engine = list(progress = TRUE))

# The callbacks given to ember_fit(): ember_callbacks, or functions(model, record) as before
# (called after each epoch; returning FALSE stops training).
normalize_callbacks <- function(callbacks) {
  if (inherits(callbacks, "ember_callback") || is.function(callbacks)) callbacks <- list(callbacks)
  if (!is.list(callbacks)) {
    ember_abort("'callbacks' must be a list of ember_callback() objects (or functions(model, record))",
      argument = "callbacks", expected = "a list of callbacks", got = class(callbacks)[1L])
  }
  out <- lapply(seq_along(callbacks), function(i) {
    cb <- callbacks[[i]]
    if (inherits(cb, "ember_callback")) return(cb)
    if (is.function(cb)) {
      return(new_callback(paste0("function_", i), list(on_epoch_end = function(ctx) {
        if (isFALSE(cb(ctx$model, ctx$record))) ctx$stop()
      })))
    }
    ember_abort(sprintf("'callbacks[[%d]]' is a %s; expected an ember_callback() or a function(model, record)", i,
      class(cb)[1L]), argument = "callbacks", index = i, expected = "an ember_callback", got = class(cb)[1L])
  })
  ids <- vapply(out, `[[`, "", "id")
  if (anyDuplicated(ids)) {
    ember_abort(sprintf("two callbacks have the id '%s'; ids must be unique", ids[anyDuplicated(ids)]),
      argument = "callbacks", expected = "unique ids", got = ids[anyDuplicated(ids)])
  }
  out
}

# The engine's part of the callbacks (schedule, early stopping, progress), one callback per field.
callbacks_engine <- function(callbacks) {
  out <- list()
  owner <- list()
  for (cb in callbacks) {
    for (field in names(cb$engine)) {
      if (!is.null(owner[[field]])) {
        ember_abort(sprintf("callbacks '%s' and '%s' both configure '%s'; give one", owner[[field]], cb$id, field),
          argument = "callbacks", expected = "one callback per setting", got = field)
      }
      owner[[field]] <- cb$id
      out[field] <- list(cb$engine[[field]])
    }
  }
  out
}

# Runs the R stages of `callbacks` with one context; errors and stop requests end training.
callback_runner <- function(callbacks, trainer, epochs, new_model, states_kept = NULL) {
  callbacks <- Filter(function(cb) length(cb$stages) > 0L, callbacks)
  runner <- new.env(parent = emptyenv())
  runner$active <- length(callbacks) > 0L
  runner$stopped <- FALSE
  runner$error <- NULL
  records <- list()
  ctx <- new.env(parent = emptyenv())
  class(ctx) <- "ember_context"
  ctx$epochs <- epochs
  ctx$epoch <- 0L
  ctx$record <- NULL
  makeActiveBinding("history", function() records_to_history(records), ctx)
  model_cache <- NULL
  makeActiveBinding("model", function() {
    if (is.null(model_cache)) model_cache <<- new_model(records_to_history(records))
    model_cache
  }, ctx)
  ctx$stop <- function() {
    runner$stopped <- TRUE
    invisible(NULL)
  }
  ctx$set_lr <- function(lr, group = -1L) {
    if (!checkmate::test_number(lr, lower = 0, finite = TRUE)) {
      ember_abort("'lr' must be a number >= 0", argument = "lr", expected = "a number >= 0", got = deparse_short(lr))
    }
    .Call(C_ember_trainer_set_option, trainer, "lr", as.double(lr), as.integer(group))
    invisible(NULL)
  }
  states <- lapply(callbacks, function(cb) new.env(parent = emptyenv()))
  # Calls callback i's function `f` with the context (and `...`). An error is kept and stops
  # training; ember_fit() raises it again afterwards. Returns list(ok, value).
  call_one <- function(i, f, ...) {
    ctx$params <- callbacks[[i]]$params
    ctx$state <- states[[i]]
    tryCatch(list(ok = TRUE, value = f(ctx, ...)), error = function(e) {
      runner$error <- e
      runner$error_callback <- callbacks[[i]]$id
      runner$stopped <- TRUE
      list(ok = FALSE)
    })
  }
  run <- function(stage) {
    for (i in seq_along(callbacks)) {
      if (!is.null(runner$error)) return(invisible(FALSE))
      f <- callbacks[[i]]$stages[[stage]]
      if (!is.null(f) && !call_one(i, f)$ok) return(invisible(FALSE))
    }
    invisible(TRUE)
  }
  # Before on_begin: what the callbacks kept with the model that training continues.
  runner$begin <- function() {
    for (i in seq_along(callbacks)) {
      f <- callbacks[[i]]$stages$load_state_dict
      kept <- states_kept[[callbacks[[i]]$id]]
      if (!is.null(f) && !is.null(kept) && !call_one(i, f, kept)$ok) break
    }
    run("on_begin")
  }
  runner$epoch_begin <- function(epoch) {
    ctx$epoch <- epoch
    model_cache <<- NULL
    run("on_epoch_begin")
  }
  runner$epoch_end <- function(record, all_records) {
    records <<- all_records
    model_cache <<- NULL
    ctx$epoch <- as.integer(record$epoch)
    ctx$record <- record
    run("on_epoch_end")
    if (!is.null(record$valid_loss) && !is.na(record$valid_loss)) run("on_valid_end")
  }
  # After training: on_end with the final model, then what the callbacks keep.
  runner$end <- function(model) {
    model_cache <<- model
    if (!is.null(runner$error)) return(list())
    run("on_end")
    kept <- list()
    for (i in seq_along(callbacks)) {
      f <- callbacks[[i]]$stages$state_dict
      if (is.null(f)) next
      r <- call_one(i, f)
      if (r$ok) kept[callbacks[[i]]$id] <- list(r$value)
    }
    kept
  }
  runner
}

#' @export
print.ember_context <- function(x, ...) {
  cat(sprintf("<ember_context> epoch %d of %d\n", x$epoch, x$epochs))
  invisible(x)
}

# Re-raises a callback's error (its classes kept) with the model trained so far attached.
raise_callback_error <- function(runner, model) {
  e <- runner$error
  e$model <- model
  e$callback <- runner$error_callback
  stop(e)
}
