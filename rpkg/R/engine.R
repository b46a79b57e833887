#' Ember engine information and threads
#'
#' `ember_info()` reports the engine's version and ABI version, the OpenBLAS kernel core in use
#' and the number of threads. Debian's OpenBLAS falls back to slow generic kernels (e.g.
#' "Prescott") on CPUs it does not know unless the environment variable `OPENBLAS_CORETYPE` is set
#' before R starts; the engine detects such a fallback and `blas_advice` then says which value to
#' set (mlr3ember also says so once per session, when it is attached and when it first trains). `ember_set_threads()` sets the number of threads the engine uses; it splits
#' large matrix products over them itself and keeps OpenBLAS single-threaded (a setting of the
#' whole process: R's own matrix products then run on one thread too).
#'
#' @param num_threads (`integer(1)`)\cr Number of threads, 1 to 65.
#' @return `ember_info()`: a named list with `version`, `abi_version`, `blas_core`, `blas_advice`
#'   (`NA` when OpenBLAS's kernels fit this CPU, else how to fix the fallback) and `num_threads`. `ember_set_threads()`: the previous number of threads, invisibly.
#' @export
#' @examples
#' ember_info()
#' old <- ember_set_threads(1)
#' ember_set_threads(old)
ember_info <- function() {
  .Call(C_ember_info)
}

# Says the engine's advice on OpenBLAS's kernels (if any) once per session.
blas_advice_once <- function(say = message, advice = .Call(C_ember_info)$blas_advice) {
  if (!is.na(advice) && !isTRUE(ember_session$blas_advice_given)) {
    ember_session$blas_advice_given <- TRUE
    say("mlr3ember: ", advice)
  }
  invisible(advice)
}

ember_session <- new.env(parent = emptyenv())

#' @rdname ember_info
#' @export
ember_set_threads <- function(num_threads) {
  if (!checkmate::test_int(num_threads, lower = 1L, upper = 65L)) {
    ember_abort(sprintf("'num_threads' must be an integer in 1..65, got %s", deparse_short(num_threads)),
      argument = "num_threads", expected = "an integer in 1..65", got = deparse_short(num_threads))
  }
  old <- .Call(C_ember_info)$num_threads
  .Call(C_ember_set_threads, as.integer(num_threads))
  invisible(old)
}

#' Live engine objects
#'
#' Counts the engine objects alive in this process (models, datasets, trainers, byte buffers),
#' for leak checks: objects are freed when R garbage-collects their handles.
#'
#' @return A named numeric vector.
#' @export
#' @examples
#' ember_live_handles()
ember_live_handles <- function() {
  .Call(C_ember_live_handles)
}
