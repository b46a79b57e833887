#' @useDynLib mlr3ember, .registration = TRUE
#' @importFrom R6 R6Class
NULL

# The interface version of include/ember.h this R code was written against.
ember_abi_expected <- 2L

.onLoad <- function(libname, pkgname) {
  abi <- .Call(C_ember_abi_version)
  if (!identical(abi, ember_abi_expected)) {
    stop(sprintf("mlr3ember: the loaded Ember engine has ABI version %d, expected %d; reinstall the package",
      abi, ember_abi_expected), call. = FALSE)
  }
  # mlr3 is only suggested: register the learners when (and if) it is loaded.
  if (isNamespaceLoaded("mlr3")) register_mlr3()
  setHook(packageEvent("mlr3", "onLoad"), function(...) register_mlr3(), action = "append")
  invisible(NULL)
}

# NOTE: no .onUnload / library.dynam.unload: engine threads and thread-local destructors may
# outlive an unloaded shared object (DESIGN.md §4).

register_mlr3 <- function() {
  learners <- utils::getFromNamespace("mlr_learners", ns = "mlr3")
  learners$add("classif.ember_mlp", LearnerClassifEmberMLP)
  learners$add("regr.ember_mlp", LearnerRegrEmberMLP)
  invisible(NULL)
}
