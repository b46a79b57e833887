#' @section Image parameters:
#' * `augment` (`list()`): image transforms made with [ember_transform()], run by the engine per
#'   batch on the images: deterministic ones (`"resize"`, `"normalize"`, `"center_crop"` ...) in
#'   training and prediction, random augmentations (`"random_crop"`, `"random_horizontal_flip"`,
#'   `"color_jitter"` ...) in training only, each image with its own draw from the seeded engine
#'   generator. The network is built for the images after the transforms; they are stored in the
#'   model.
#' * `pretrained` (`character(1)`): a safetensors file of weights to start from, such as
#'   torchvision's `state_dict` of the same architecture saved in Python with
#'   `from safetensors.torch import save_file; save_file(torchvision.models.resnet18(weights = "DEFAULT").state_dict(), "resnet18.safetensors")`
#'   (or the `model.safetensors` of Hugging Face's `timm/resnet18.tv_in1k`, which has the same
#'   names). Every parameter and buffer whose name and size match is loaded; the head `fc`,
#'   sized for another number of classes, is re-sized to the task and reported with a message.
#'   Nothing is downloaded. With `init_weights` (any model or weights file) the learner reports
#'   every difference as a warning instead.
