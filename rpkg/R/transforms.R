# Image preprocessing and augmentation: transforms described as data and run by the engine, per
# batch, on the images of an image input (docs/image-transforms.md lists them with their JSON
# form). R only builds the list; the engine validates it against the image shape.

#' Image transforms and augmentation
#'
#' @description
#' `ember_transform()` describes one image transform with torchvision's name and arguments; a list
#' of them is given to [ember_fit()] or a learner as `augment`. The engine runs them per batch on
#' the images of the network's image input, in worker threads, seeded from the training seed (the
#' same seed gives the same augmented batches at any thread count):
#'
#' * deterministic transforms run in training and at prediction, and are stored in the model file:
#'   `"normalize"` (`mean`, `std` per channel), `"resize"` (`size`: `c(height, width)`, or one
#'   number for the shorter side; bilinear), `"pad"` (`padding`, `fill`, `padding_mode`
#'   `"constant"`/`"edge"`/`"reflect"`/`"symmetric"`), `"center_crop"` (`size`), `"grayscale"`
#'   (`num_output_channels`), `"crop"` (`top`, `left`, `height`, `width`), `"hflip"`, `"vflip"`,
#'   `"resized_crop"`, `"rotate"` (`angle`), `"affine"` (`angle`, `translate`, `scale`, `shear`),
#'   `"adjust_brightness"`, `"adjust_contrast"`, `"adjust_saturation"`;
#' * random augmentations run in training only, each image of a batch with its own draw:
#'   `"random_horizontal_flip"`, `"random_vertical_flip"` (`p`), `"random_crop"` (`size`,
#'   `padding`, `pad_if_needed`, `fill`, `padding_mode`), `"random_resized_crop"` (`size`, `scale`,
#'   `ratio`), `"random_rotation"` (`degrees`), `"random_affine"` (`degrees`, `translate`, `scale`,
#'   `shear`), `"color_jitter"` (`brightness`, `contrast`, `saturation`).
#'
#' The images after the transforms must have one shape in training and at prediction (a
#' `"random_resized_crop"` needs a `"resize"` or `"center_crop"` to the same size); the network is
#' built for that shape. Values follow torchvision's functional transforms (golden-tested against
#' `torchvision.transforms.v2.functional`); images are floats, bytes read as `byte / 255`.
#'
#' @param op (`character(1)`)\cr The transform, one of `ember_transform_ops()`.
#' @param ... Its arguments, by torchvision's names (e.g. `size`, `padding`, `p`, `mean`, `std`).
#' @return An `ember_transform` (a list); `ember_transform_ops()`: a character vector.
#' @examples
#' augment <- list(
#'   ember_transform("random_crop", size = 28, padding = 2),
#'   ember_transform("random_horizontal_flip", p = 0.5),
#'   ember_transform("normalize", mean = 0.5, std = 0.25))
#' set.seed(1)
#' x <- as_ember_tensor(array(as.raw(sample(0:255, 40 * 784, TRUE)), c(40, 1, 28, 28)))
#' y <- factor(rep(c("a", "b"), 20))
#' model <- ember_fit(x, y, ember_cnn("lenet"), augment = augment, epochs = 2, batch_size = 8)
#' model$augment  # by image input
#' @export
ember_transform <- function(op, ...) {
  if (!is.character(op) || length(op) != 1L || is.na(op)) {
    ember_abort("'op' must be the name of a transform", argument = "op", expected = "a transform name")
  }
  op <- check_choice(op, ember_transform_ops(), "op")
  args <- list(...)
  if (length(args) && (is.null(names(args)) || any(!nzchar(names(args))))) {
    ember_abort(sprintf("the arguments of the transform '%s' must be named (torchvision's names)", op), argument = "...",
      expected = "named arguments")
  }
  structure(c(list(op = op), args), class = "ember_transform")
}

#' @rdname ember_transform
#' @export
ember_transform_ops <- function() engine_vocabulary()$transforms

#' @export
print.ember_transform <- function(x, ...) {
  args <- unclass(x)[-1L]
  cat(sprintf("<ember_transform> %s(%s)\n", x$op, paste(names(args), vapply(args, deparse_short, ""), sep = " = ", collapse = ", ")))
  invisible(x)
}

# `augment` as a list of transforms (NULL or an empty list: none).
normalize_augment <- function(augment, argument = "augment") {
  if (is.null(augment)) return(list())
  if (inherits(augment, "ember_transform")) augment <- list(augment)
  if (!is.list(augment) || !all(vapply(augment, inherits, TRUE, "ember_transform"))) {
    ember_abort(sprintf("'%s' must be a list of ember_transform() objects", argument), argument = argument,
      expected = "a list of ember_transform()", got = class(augment)[1L])
  }
  unname(augment)
}

# The transforms as the engine reads them (a JSON array of objects).
augment_json <- function(augment) {
  json_array(lapply(augment, function(t) {
    args <- unclass(t)
    lapply(args, function(v) if (length(v) > 1L) json_array(v) else v)
  }))
}

# The image shape after the transforms (validated by the engine against `shape`).
augment_output_shape <- function(augment, shape) {
  if (!length(augment)) return(as.integer(shape))
  as.integer(.Call(C_ember_transforms_output_shape, to_json(augment_json(augment)), as.integer(shape)))
}

# Whether `augment` is a list of transform lists named by image input (else one list of transforms).
augment_by_input <- function(augment) {
  is.list(augment) && !inherits(augment, "ember_transform") && length(augment) && !is.null(names(augment)) &&
    all(nzchar(names(augment))) && !any(vapply(augment, inherits, TRUE, "ember_transform"))
}

# The image inputs of the encoded data with their shapes: "image" for image data, the routed image
# inputs of a network.
image_inputs <- function(encoding, kind) {
  if (kind == "image") return(list(image = encoding$shape))
  if (!is.null(encoding$routes)) {
    img <- Filter(function(r) r$kind == "image", encoding$routes)
    return(stats::setNames(lapply(img, `[[`, "shape"), vapply(img, `[[`, "", "name")))
  }
  if (!is.null(encoding$inputs$image)) return(list(image = encoding$inputs$image))
  list()
}

# `augment` by image input: list(<input> = list(transforms, data_shape, output_shape)).
image_augment <- function(augment, encoding, kind) {
  if (is.null(augment) || (is.list(augment) && !length(augment))) return(list())
  inputs <- image_inputs(encoding, kind)
  if (!length(inputs)) {
    ember_abort("'augment' transforms images, but the network reads no image input", argument = "augment",
      expected = "a network with an image input", got = "no image input")
  }
  if (!augment_by_input(augment)) {
    if (length(inputs) > 1L) {
      ember_abort(sprintf("the network has %d image inputs (%s): give 'augment' as a list of transform lists named by input",
        length(inputs), paste(names(inputs), collapse = ", ")), argument = "augment", expected = "a named list",
        got = "one list of transforms")
    }
    augment <- stats::setNames(list(augment), names(inputs))
  }
  unknown <- setdiff(names(augment), names(inputs))
  if (length(unknown)) {
    ember_abort(sprintf("'augment' names '%s', which is not an image input of the network (%s)", unknown[1L],
      paste(names(inputs), collapse = ", ")), argument = "augment", expected = paste(names(inputs), collapse = ", "),
      got = unknown[1L])
  }
  stats::setNames(lapply(names(augment), function(name) {
    transforms <- normalize_augment(augment[[name]])
    list(transforms = transforms, data_shape = as.integer(inputs[[name]]),
      output_shape = augment_output_shape(transforms, inputs[[name]]))
  }), names(augment))
}

# The model configuration's "transforms" (NULL without augmentation).
augment_config <- function(augment) {
  if (!length(augment)) return(NULL)
  lapply(augment, function(a) list(data_shape = json_array(a$data_shape), transforms = augment_json(a$transforms)))
}
