# Fine-tuning a pretrained ResNet-18 (the mlr3torch paper's second use case), offline: the example
# pretrains torchvision's ResNet-18 on five Fashion-MNIST classes (T-shirt/top, Trouser, Pullover,
# Dress, Coat), saves it, and fine-tunes it to the other five (Sandal, Shirt, Sneaker, Bag, Ankle
# boot) three ways, against training from scratch:
# - frozen body: only the new head `fc` trains (the body runs forward only);
# - gradual unfreezing: the head first, then `layer4`, then everything (ember_cb_unfreeze());
# - full fine-tuning with the body at a tenth of the head's learning rate (opt.param_groups).
# With torchvision weights saved as safetensors (see the README), pass their path as
# `pretrained` the same way.
#
# Needs mlr3 and Debian's dataset-fashion-mnist:
#   R_LIBS=.rlib:<library with mlr3> Rscript Examples/r/fine_tuning.R

library(mlr3ember)
library(mlr3)
lgr::get_logger("mlr3")$set_threshold("warn")
set.seed(1)

task <- tsk("fashion_mnist")
truth <- task$truth()
first <- which(truth %in% levels(truth)[1:5] & seq_along(truth) <= 60000)
second <- which(truth %in% levels(truth)[6:10] & seq_along(truth) <= 60000)
test <- which(truth %in% levels(truth)[6:10] & seq_along(truth) > 60000)

# 1. Pretraining on the first five classes (3,000 images), saved with torchvision's names.
# A task of some rows with only the classes they hold (the image column still points into the same bytes).
subtask <- function(rows, id) {
  d <- task$data(rows = rows)
  d$class <- droplevels(d$class)
  as_task_classif(d, target = "class", id = id)
}
pre <- subtask(sample(first, 3000), "pretrain")
pretrainer <- lrn("classif.ember_resnet18", epochs = 3, batch_size = 64, opt.lr = 1e-3, seed = 1, num_threads = 2)
pretrainer$train(pre)
weights <- tempfile(fileext = ".safetensors")
ember_save(pretrainer$model, weights)

# 2. Fine-tuning on 600 images of the other five classes, scored on 2,000 of their test images.
fine <- subtask(c(sample(second, 600), sample(test, 2000)), "fine_tune")
train_ids <- 1:600
test_ids <- 601:2600
common <- list(epochs = 4, batch_size = 32, opt.lr = 1e-3, seed = 2, num_threads = 2)
learners <- list(
  scratch = do.call(lrn, c(list("classif.ember_resnet18"), common)),
  frozen_body = do.call(lrn, c(list("classif.ember_resnet18", pretrained = weights,
    callbacks = list(ember_cb_unfreeze(starting_weights = "fc.*"))), common)),
  gradual_unfreezing = do.call(lrn, c(list("classif.ember_resnet18", pretrained = weights,
    callbacks = list(ember_cb_unfreeze(starting_weights = "fc.*",
      unfreeze = data.frame(epoch = c(2L, 3L), weights = c("layer4.*", "*"))))), common)),
  body_lr_tenth = do.call(lrn, c(list("classif.ember_resnet18", pretrained = weights,
    opt.param_groups = list(list(params = c("conv1.*", "bn1.*", "layer*"), lr = 1e-4))), common))
)
rows <- lapply(names(learners), function(id) {
  learner <- learners[[id]]
  time <- system.time(suppressMessages(learner$train(fine, row_ids = train_ids)))[["elapsed"]]
  acc <- learner$predict(fine, row_ids = test_ids)$score(msr("classif.acc"))
  data.frame(learner = id, accuracy = round(acc, 3), seconds_per_epoch = round(time / common$epochs, 2))
})
print(do.call(rbind, rows), row.names = FALSE)
