# Classed conditions. Every error the package raises on bad input has class
# c("ember_error_<kind>", "ember_error", "error", "condition") and carries the fields argument,
# layer, op, index (1-based), expected and got (NA when unknown), so that callers can handle
# them with tryCatch(ember_error_invalid_argument = ...) and read what went wrong.
#
# Kinds: invalid_argument, shape, state, corrupt, overflow, memory (more memory than the machine
# has; the message states the bytes needed), interrupted (Ctrl-C inside an engine call), internal
# (from the engine), plus missing_values, unseen_level, stale_handle, nonfinite and interrupted
# (from the R side; each also inherits from the engine kind it refines, e.g. missing_values from
# invalid_argument).

ember_error_kinds <- c("1" = "invalid_argument", "2" = "shape", "3" = "state", "4" = "corrupt",
  "5" = "overflow", "6" = "memory", "7" = "interrupted", "99" = "internal")

ember_condition <- function(message, kind, fields = list(), call = NULL, type = "error", extra_class = NULL) {
  defaults <- list(argument = NA_character_, layer = NA_character_, op = NA_character_, index = NA_integer_,
    expected = NA_character_, got = NA_character_)
  fields <- utils::modifyList(defaults, fields)
  structure(
    c(list(message = message, call = call), fields),
    class = c(extra_class, paste0("ember_", type, "_", kind), paste0("ember_", type), type, "condition")
  )
}

# Raises a classed error. `argument` names the R argument (or column) at fault; `index` is
# 1-based.
ember_abort <- function(message, kind = "invalid_argument", argument = NA_character_, index = NA_integer_,
                        expected = NA_character_, got = NA_character_, extra_class = NULL, call = NULL) {
  stop(ember_condition(message, kind, list(argument = argument, index = index, expected = expected, got = got),
    call = call, extra_class = extra_class))
}

# Raises a classed warning (e.g. ember_warning_unseen_level).
ember_warn <- function(message, kind, argument = NA_character_, index = NA_integer_) {
  warning(ember_condition(message, kind, list(argument = argument, index = index), type = "warning"))
}

# Called from the C glue with the engine's structured error (status, what, message, op, layer,
# argument, 0-based index, expected, got): raises the classed R error, 1-based.
ember_signal_engine_error <- function(info) {
  kind <- ember_error_kinds[as.character(info$status)]
  if (is.na(kind)) kind <- "internal"
  msg <- info$message
  if (is.na(msg) || !nzchar(msg)) msg <- "unknown engine error"
  # The engine's structured index counts from 0; R users count from 1 (its messages already do:
  # .onLoad sets their base).
  index <- if (is.na(info$index)) NA_integer_ else as.integer(info$index + 1)
  stop(ember_condition(sprintf("ember: %s: %s", info$what, msg), kind,
    list(argument = info$argument, layer = info$layer, op = info$op, index = index, expected = info$expected,
      got = info$got)))
}

# Called from the C glue (rpkg/src/init.c) for problems it finds itself (argument types, stale
# handles, sizes): the same classed errors as the rest of the package.
ember_signal_glue_error <- function(message, kind, argument) {
  ember_abort(message, kind = kind, argument = argument)
}
