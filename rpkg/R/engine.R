#' Ember engine information and threads
#'
#' `ember_info()` reports the engine's ABI version, the OpenBLAS kernel core in use and the
#' number of threads. Debian's OpenBLAS falls back to slow generic kernels (e.g. "Prescott") on
#' CPUs it does not know unless the environment variable `OPENBLAS_CORETYPE` is set before R
#' starts. `ember_set_threads()` sets the number of threads the engine (and OpenBLAS) uses.
#'
#' @param num_threads (`integer(1)`)\cr Number of threads, at least 1.
#' @return `ember_info()`: a named list with `abi_version`, `blas_core` and `num_threads`.
#'   `ember_set_threads()`: the previous number of threads, invisibly.
#' @export
#' @examples
#' ember_info()
#' old <- ember_set_threads(1)
#' ember_set_threads(old)
ember_info <- function() {
  .Call(C_ember_info)
}

#' @rdname ember_info
#' @export
ember_set_threads <- function(num_threads) {
  checkmate::assert_int(num_threads, lower = 1L, upper = 65L)
  old <- .Call(C_ember_info)$num_threads
  .Call(C_ember_set_threads, as.integer(num_threads))
  invisible(old)
}

# Live engine handles (models, datasets), for leak checks in tests.
ember_live_handles <- function() {
  .Call(C_ember_live_handles)
}
