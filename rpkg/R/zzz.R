#' @useDynLib mlr3ember, .registration = TRUE
#' @importFrom R6 R6Class
NULL

.onLoad <- function(libname, pkgname) {
  # The engine linked in must implement the interface version of the header the glue was compiled
  # against (EMBER_ABI_VERSION in include/ember.h, the one place it is written).
  abi <- .Call(C_ember_abi_version)
  expected <- .Call(C_ember_abi_header)
  if (!identical(abi, expected)) {
    stop(sprintf("mlr3ember: the loaded Ember engine has ABI version %d, expected %d; reinstall the package",
      abi, expected), call. = FALSE)
  }
  # R users count from 1: the engine's messages say "row 4" for its 0-based row 3.
  .Call(C_ember_set_message_index_base, 1L)
  # mlr3 is only suggested: register the learners when (and if) it is loaded.
  if (isNamespaceLoaded("mlr3")) register_mlr3()
  setHook(packageEvent("mlr3", "onLoad"), function(...) register_mlr3(), action = "append")
  # Likewise the PipeOps and graph templates in mlr3pipelines.
  if (isNamespaceLoaded("mlr3pipelines")) register_mlr3pipelines()
  setHook(packageEvent("mlr3pipelines", "onLoad"), function(...) register_mlr3pipelines(), action = "append")
  invisible(NULL)
}

.onAttach <- function(libname, pkgname) {
  blas_advice_once(packageStartupMessage)
}

# NOTE: no .onUnload / library.dynam.unload: engine threads and thread-local destructors may
# outlive an unloaded shared object (docs/architecture.md#linking-the-r-package).

# The learners registered in mlr3::mlr_learners, by key.
ember_learners <- function() {
  list(
    classif.ember_mlp = LearnerClassifEmberMLP, regr.ember_mlp = LearnerRegrEmberMLP,
    classif.ember_tab_resnet = LearnerClassifEmberTabResNet, regr.ember_tab_resnet = LearnerRegrEmberTabResNet,
    classif.ember_ft_transformer = LearnerClassifEmberFTTransformer, regr.ember_ft_transformer = LearnerRegrEmberFTTransformer,
    classif.ember_tabm = LearnerClassifEmberTabM, regr.ember_tabm = LearnerRegrEmberTabM,
    classif.ember_featureless = LearnerClassifEmberFeatureless, regr.ember_featureless = LearnerRegrEmberFeatureless,
    classif.ember_network = LearnerClassifEmberNetwork, regr.ember_network = LearnerRegrEmberNetwork,
    classif.ember_lenet = LearnerClassifEmberLeNet, regr.ember_lenet = LearnerRegrEmberLeNet,
    classif.ember_resnet18 = LearnerClassifEmberResNet18, regr.ember_resnet18 = LearnerRegrEmberResNet18,
    classif.ember_resnet34 = LearnerClassifEmberResNet34, regr.ember_resnet34 = LearnerRegrEmberResNet34,
    classif.ember_resnet50 = LearnerClassifEmberResNet50, regr.ember_resnet50 = LearnerRegrEmberResNet50
  )
}

register_mlr3 <- function() {
  dictionary <- utils::getFromNamespace("mlr_learners", ns = "mlr3")
  learners <- ember_learners()
  for (key in names(learners)) dictionary$add(key, learners[[key]])
  # Tensor columns are a feature type of their own ("ember_tensor", the column's class).
  reflections <- utils::getFromNamespace("mlr_reflections", ns = "mlr3")
  if (!("ember_tensor" %in% reflections$task_feature_types)) {
    reflections$task_feature_types <- c(reflections$task_feature_types, tns = "ember_tensor")
  }
  utils::getFromNamespace("mlr_tasks", ns = "mlr3")$add("fashion_mnist", load_task_fashion_mnist)
  invisible(NULL)
}

# R6 methods of the PipeOp classes made in layer_pipeop_class() call `super`, which R CMD check
# cannot see bound there.
utils::globalVariables("super")
