# What the engine offers (ops, activations, measures, losses), read from the engine once per
# session (ember_vocabulary in include/ember.h): R derives its lists from it instead of keeping
# copies, and tests check that everything R offers on top (PipeOps, parameter tables) matches.

vocabulary_cache <- new.env(parent = emptyenv())

engine_vocabulary <- function() {
  if (is.null(vocabulary_cache$value)) vocabulary_cache$value <- from_json(.Call(C_ember_vocabulary))
  vocabulary_cache$value
}

# Ops that ember_layer() accepts: those of the network description except `repeat` (ember_repeat()).
network_ops <- function() setdiff(engine_vocabulary()$ops, "repeat")

activation_ops <- function() engine_vocabulary()$activations

# The engine measures of a task ("classification", "regression" or "multilabel") by name.
engine_measure_names <- function(task) {
  m <- engine_vocabulary()$measures
  vapply(Filter(function(x) x$task == task, m), `[[`, "", "name")
}

engine_measure_maximize <- function(name) {
  m <- Filter(function(x) x$name == name, engine_vocabulary()$measures)
  length(m) == 1L && isTRUE(m[[1L]]$maximize)
}

# The built-in losses by R's names for a task type ("classif", "regr", "multilabel" or NULL for
# classif and regr): the engine's multiclass and regression losses, and the quantile loss of its
# quantile regressions (on two classes, R's "cross_entropy" and "focal" are the engine's
# bce_with_logits and sigmoid_focal; for multilabel targets, R's "bce" and "focal" are the same
# losses per label; custom losses come as ember_loss_fn()).
builtin_losses <- function(task_type = NULL) {
  l <- engine_vocabulary()$losses
  classif <- setdiff(l$multiclass, "expression")
  regr <- c(setdiff(l$regression, "expression"), unlist(l$quantile_regression))
  multilabel <- unname(c(bce_with_logits = "bce", sigmoid_focal = "focal")[setdiff(l$multilabel, "expression")])
  switch(task_type %||% "any", classif = classif, regr = regr, multilabel = multilabel, c(classif, regr))
}

# The predefined architectures that read images (ember_cnn()'s types).
image_architectures <- function() {
  inputs <- engine_vocabulary()$architecture_inputs
  names(inputs)[unlist(inputs) == "image"]
}

# The optimizers of the trainer, and their hyperparameters' defaults (PyTorch's names).
engine_optimizers <- function() names(engine_vocabulary()$optimizers)

# Whether rows with a categorical level unseen in training are refused ("error") or warned about
# and encoded as all-zero one-hot ("warn") by a predefined architecture (networks built in R: "warn").
architecture_unseen_levels <- function(name) engine_vocabulary()$unseen_levels[[name]] %||% "warn"
