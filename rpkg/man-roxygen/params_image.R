#' @section Image parameters:
#' * `augment` (`list()`): image transforms made with [ember_transform()], run by the engine per
#'   batch on the images: deterministic ones (`"resize"`, `"normalize"`, `"center_crop"` ...) in
#'   training and prediction, random augmentations (`"random_crop"`, `"random_horizontal_flip"`,
#'   `"color_jitter"` ...) in training only, each image with its own draw from the seeded engine
#'   generator. The network is built for the images after the transforms; they are stored in the
#'   model.
