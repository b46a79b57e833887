# Image learners: a predefined CNN on one ember_tensor feature.

image_learner <- function(task_type, architecture, label) {
  base <- if (task_type == "classif") LearnerClassifEmber else LearnerRegrEmber
  id <- sprintf("%s.ember_%s", task_type, architecture)
  R6::R6Class(sprintf("Learner%sEmber%s", if (task_type == "classif") "Classif" else "Regr", architecture),
    inherit = base,
    public = list(
      # @description Creates a new instance of this learner.
      initialize = function(callbacks = list()) {
        super$initialize(callbacks = callbacks, id = id, label = label, man = sprintf("mlr3ember::mlr_learners_%s", id),
          feature_types = "ember_tensor")
      }
    ),
    private = list(
      .network = function(task, param_vals) image_architecture(architecture)
    )
  )
}

# The predefined image network of an image learner.
image_architecture <- function(name) if (name == "lenet") ember_cnn("lenet") else new_architecture(name, list())

#' @title LeNet-5 on the Ember engine
#'
#' @name mlr_learners_classif.ember_lenet
#' @aliases mlr_learners_regr.ember_lenet LearnerClassifEmberLeNet LearnerRegrEmberLeNet
#'
#' @description
#' A LeNet-5 style convolutional network (two convolution + pooling stages and three linear
#' layers, as [ember_cnn()] `"lenet"`) for classification (`classif.ember_lenet`) and regression
#' (`regr.ember_lenet`) on one [tensor column][as_ember_tensor] of images
#' `c(channels, height, width)` of at least 12 x 12 pixels, such as the feature of
#' `tsk("fashion_mnist")`. Images are read batch by batch from the column's source.
#'
#' @templateVar id classif.ember_lenet
#' @templateVar task_type classif
#' @templateVar feature_types `"ember_tensor"` (exactly one)
#' @template learner_ember
#'
#' @seealso [mlr_learners_ember], [as_ember_tensor()], [mlr_tasks_fashion_mnist], [ember_cnn()]
#' @export LearnerClassifEmberLeNet
#' @export LearnerRegrEmberLeNet
#' @examplesIf requireNamespace("mlr3", quietly = TRUE)
#' library(mlr3)
#' set.seed(1)
#' y <- factor(rep(c("dark", "bright"), each = 40))
#' pixels <- array(as.raw(ifelse(y == "dark", 30L, 220L) + sample(0:20, 80 * 256, TRUE)), c(80, 1, 16, 16))
#' d <- data.frame(y = y)
#' d$image <- as_ember_tensor(pixels)
#' task <- as_task_classif(d, target = "y")
#' learner <- lrn("classif.ember_lenet", epochs = 5, batch_size = 16)
#' learner$train(task)
#' learner$predict(task)$score(msr("classif.acc"))
NULL

LearnerClassifEmberLeNet <- image_learner("classif", "lenet", "LeNet-5 (Ember)")
LearnerRegrEmberLeNet <- image_learner("regr", "lenet", "LeNet-5 (Ember)")
