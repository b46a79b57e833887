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
          feature_types = "ember_tensor", architecture_params = ember_params_image())
      }
    ),
    private = list(
      .network = function(task, param_vals) image_architecture(architecture)
    )
  )
}

# The predefined image network of an image learner.
image_architecture <- function(name) ember_cnn(name)

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
#' @template params_image
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
#' learner <- lrn("classif.ember_lenet", epochs = 5, batch_size = 16,
#'   augment = list(ember_transform("random_crop", size = 16, padding = 2)))
#' learner$train(task)
#' learner$predict(task)$score(msr("classif.acc"))
NULL

LearnerClassifEmberLeNet <- image_learner("classif", "lenet", "LeNet-5 (Ember)")
LearnerRegrEmberLeNet <- image_learner("regr", "lenet", "LeNet-5 (Ember)")

#' @title torchvision's ResNets on the Ember engine
#'
#' @name mlr_learners_classif.ember_resnet18
#' @aliases mlr_learners_classif.ember_resnet34 mlr_learners_classif.ember_resnet50 mlr_learners_regr.ember_resnet18
#'   mlr_learners_regr.ember_resnet34 mlr_learners_regr.ember_resnet50 LearnerClassifEmberResNet18
#'   LearnerClassifEmberResNet34 LearnerClassifEmberResNet50 LearnerRegrEmberResNet18 LearnerRegrEmberResNet34
#'   LearnerRegrEmberResNet50
#'
#' @description
#' ResNet-18, ResNet-34 and ResNet-50 exactly as torchvision builds them (`torchvision.models.resnet18`
#' ...: a 7 x 7 stem with max pooling, four stages of basic or bottleneck blocks, global average
#' pooling and the linear head `fc`), with torchvision's parameter names (`conv1.weight`,
#' `layer1.0.bn1.running_mean`, ..., `fc.weight`) and initialisation, for classification and
#' regression on one [tensor column][as_ember_tensor] of images `c(channels, height, width)` of any
#' number of channels and any size of at least 1 x 1 (torchvision's models are trained on 224 x 224).
#' The head has as many outputs as the task needs. Weights saved from torchvision as safetensors
#' (`safetensors.torch.save_file(model.state_dict(), "resnet18.safetensors")`) load by name through
#' `init_weights` (the head is re-sized to the task and reported).
#'
#' @templateVar id classif.ember_resnet18
#' @templateVar task_type classif
#' @templateVar feature_types `"ember_tensor"` (exactly one)
#' @template learner_ember
#' @template params_image
#'
#' @seealso [mlr_learners_classif.ember_lenet], [as_ember_tensor()], [ember_cnn()]
#' @export LearnerClassifEmberResNet18
#' @export LearnerClassifEmberResNet34
#' @export LearnerClassifEmberResNet50
#' @export LearnerRegrEmberResNet18
#' @export LearnerRegrEmberResNet34
#' @export LearnerRegrEmberResNet50
#' @examplesIf requireNamespace("mlr3", quietly = TRUE)
#' library(mlr3)
#' set.seed(1)
#' y <- factor(rep(c("dark", "bright"), each = 16))
#' pixels <- array(as.raw(ifelse(y == "dark", 30L, 220L) + sample(0:20, 32 * 3 * 16 * 16, TRUE)), c(32, 3, 16, 16))
#' d <- data.frame(y = y)
#' d$image <- as_ember_tensor(pixels)
#' task <- as_task_classif(d, target = "y")
#' learner <- lrn("classif.ember_resnet18", epochs = 2, batch_size = 16)
#' learner$train(task)
#' learner$predict(task)$score(msr("classif.acc"))
#' head(ember_parameters(learner$model)$name)
NULL

LearnerClassifEmberResNet18 <- image_learner("classif", "resnet18", "ResNet-18 (Ember)")
LearnerClassifEmberResNet34 <- image_learner("classif", "resnet34", "ResNet-34 (Ember)")
LearnerClassifEmberResNet50 <- image_learner("classif", "resnet50", "ResNet-50 (Ember)")
LearnerRegrEmberResNet18 <- image_learner("regr", "resnet18", "ResNet-18 (Ember)")
LearnerRegrEmberResNet34 <- image_learner("regr", "resnet34", "ResNet-34 (Ember)")
LearnerRegrEmberResNet50 <- image_learner("regr", "resnet50", "ResNet-50 (Ember)")
