# Turning R data into the engine's named inputs, and back into what the model file records.
#
# Tabular data (data.frame or matrix):
# - numeric and integer columns enter the `num` input as numbers, standardised inside the model;
# - logical columns enter `num` as 0/1, not standardised;
# - ordered factors enter `num` as their integer codes 1..K, standardised (the order is kept);
# - factors enter the `categ` input as level codes: one-hot inside MLPs and TabResNets, tokens in
#   FT-Transformers. A level unseen in training is "unknown": one-hot encodes it as all zeros
#   (with a classed warning, ember_warning_unseen_level); a tokenizer cannot, so the
#   FT-Transformer refuses it (ember_error_unseen_level). An unseen level of an ordered factor
#   has no place in the order and is refused too.
# Columns are matched by name, so their order at prediction time does not matter. The encoding
# (names, types, levels) is stored in the model file, so that a saved file is self-describing.
#
# Images: a 4-d array [n, channels, height, width] or a 3-d array [n, height, width] of grey
# images, numeric and finite; they enter the `image` input unchanged.

encoding_format <- "mlr3ember.encoding"

column_type <- function(col) {
  if (inherits(col, "ember_tensor")) return("tensor")
  # Classed numbers (Date, POSIXct, difftime ...) are not plain numbers.
  if (is.object(col) && !is.factor(col) && !identical(class(col), "AsIs")) return(NA_character_)
  if (is.ordered(col)) "ordered" else if (is.factor(col)) "factor" else if (is.logical(col)) "logical" else
    if (is.integer(col)) "integer" else if (is.double(col)) "numeric" else NA_character_
}

# The encoding of training features `x` for an architecture reading `kind` inputs.
ember_encoding <- function(x, kind, argument = "x") {
  if (kind == "image") return(image_encoding(x, argument))
  if (is.array(x) && length(dim(x)) > 2L) {
    ember_abort(sprintf("'%s' is a %d-d array; this architecture needs tabular data (a data.frame or matrix); use ember_cnn() for images",
      argument, length(dim(x))), argument = argument, expected = "a data.frame or matrix", got = sprintf("a %d-d array", length(dim(x))))
  }
  positional <- FALSE
  if (is.matrix(x)) {
    if (!is.numeric(x) && !is.logical(x)) {
      ember_abort(sprintf("'%s' is a %s matrix; expected a numeric or logical matrix, or a data.frame", argument, typeof(x)),
        argument = argument, expected = "a numeric matrix or a data.frame", got = sprintf("a %s matrix", typeof(x)))
    }
    positional <- is.null(colnames(x))
    x <- as_data_frame(x)
  }
  if (!is.data.frame(x)) {
    ember_abort(sprintf("'%s' must be a data.frame or a matrix, got %s", argument, class(x)[1L]),
      argument = argument, expected = "a data.frame or matrix", got = class(x)[1L])
  }
  if (ncol(x) < 1L) ember_abort(sprintf("'%s' has no columns", argument), argument = argument, expected = "at least one feature", got = "0 columns")
  nms <- names(x)
  if (anyDuplicated(nms) || any(is.na(nms) | !nzchar(nms))) {
    ember_abort(sprintf("the columns of '%s' must have unique, non-empty names", argument), argument = argument,
      expected = "unique column names")
  }
  columns <- lapply(seq_along(nms), function(j) {
    col <- x[[j]]
    type <- column_type(col)
    if (is.na(type)) {
      hint <- if (is.character(col)) " (convert it with as.factor())" else ""
      ember_abort(sprintf("column '%s' of '%s' has class '%s'; expected numeric, integer, logical, factor, ordered or ember_tensor%s",
        nms[j], argument, class(col)[1L], hint), argument = nms[j], index = j,
        expected = "numeric, integer, logical, factor, ordered or ember_tensor", got = class(col)[1L])
    }
    if (type %in% c("factor", "ordered") && nlevels(col) < 1L) {
      ember_abort(sprintf("column '%s' of '%s' is a factor without levels", nms[j], argument), argument = nms[j], index = j,
        expected = "a factor with levels", got = "no levels")
    }
    list(name = nms[j], type = type, levels = if (is.factor(col)) levels(col) else NULL,
      shape = if (type == "tensor") ember_tensor_shape(col))
  })
  structure(list(kind = "tabular", columns = columns, positional = positional), class = "ember_encoding")
}

image_encoding <- function(x, argument) {
  if (inherits(x, "ember_tensor")) x <- tensor_frame(x)
  if (is.data.frame(x)) return(tensor_column_encoding(x, argument))
  d <- dim(x)
  if (!is.array(x) || !(length(d) %in% c(3L, 4L)) || !is.numeric(x)) {
    ember_abort(sprintf("'%s' must be a numeric array [n, channels, height, width] (or [n, height, width] for grey images) for a CNN, got %s",
      argument, if (is.null(d)) class(x)[1L] else sprintf("a %d-d %s array", length(d), typeof(x))),
      argument = argument, expected = "a 3-d or 4-d numeric array", got = class(x)[1L])
  }
  shape <- if (length(d) == 3L) c(1L, d[2L], d[3L]) else d[2:4]
  structure(list(kind = "image", shape = as.integer(shape)), class = "ember_encoding")
}

# An ember_tensor given as the whole data is a data.frame with one column, "image".
tensor_frame <- function(x) {
  d <- data.frame(row = seq_along(x))
  d$row <- NULL
  d$image <- x
  d
}

# Whether `x` is image data held in a tensor column: an ember_tensor, or a data.frame whose only
# column is one.
is_tensor_data <- function(x) {
  inherits(x, "ember_tensor") || (is.data.frame(x) && ncol(x) == 1L && inherits(x[[1L]], "ember_tensor"))
}

# Image networks read one tensor column: the encoding names it and records its shape.
tensor_column_encoding <- function(x, argument) {
  is_tensor <- vapply(x, inherits, TRUE, "ember_tensor")
  if (!any(is_tensor)) {
    ember_abort(sprintf("'%s' is a data.frame without a tensor column; a CNN reads images: an array [n, channels, height, width] or one ember_tensor column (as_ember_tensor(), ember_image_files())",
      argument), argument = argument, expected = "images", got = sprintf("%d column(s), no ember_tensor", ncol(x)))
  }
  if (sum(is_tensor) != 1L || ncol(x) != 1L) {
    ember_abort(sprintf("'%s' has %d tensor column(s) and %d other column(s); an image network reads exactly one ember_tensor column and nothing else (select it, or build a network with an input per column)",
      argument, sum(is_tensor), sum(!is_tensor)), argument = argument, expected = "one ember_tensor column",
      got = paste(names(x), collapse = ", "))
  }
  shape <- ember_tensor_shape(x[[1L]])
  if (length(shape) != 3L) {
    ember_abort(sprintf("the tensor column '%s' holds elements of shape [%s]; image networks read images [channels, height, width]",
      names(x), paste(shape, collapse = ", ")), kind = "shape", argument = names(x), expected = "[channels, height, width]",
      got = paste(shape, collapse = ", "))
  }
  structure(list(kind = "image", shape = shape, column = names(x)), class = "ember_encoding")
}

as_data_frame <- function(m) {
  if (is.null(colnames(m))) colnames(m) <- paste0("V", seq_len(ncol(m)))
  as.data.frame(m, stringsAsFactors = FALSE, optional = TRUE)
}

# Input sizes of the encoding (for the architecture).
encoding_inputs <- function(enc) {
  if (enc$kind == "image") return(list(image = enc$shape))
  types <- vapply(enc$columns, `[[`, "", "type")
  tensor_width <- as.integer(sum(vapply(enc$columns[types == "tensor"], function(cl) prod(cl$shape), 1)))
  list(numeric = sum(types != "factor" & types != "tensor") + tensor_width,
    cardinalities = vapply(enc$columns[types == "factor"], function(cl) length(cl$levels), integer(1)),
    image = enc$inputs$image)
}

# Which engine inputs a network built in R reads from the encoded data (`enc$inputs`: num, categ
# and the image shape), checking that every feature column is read by some input. An image from
# tabular data is made of its numeric features, pixel by pixel in row-major order.
network_encoding <- function(enc, net) {
  g <- graph_inputs(net)
  kinds <- g$kinds
  if (!is.null(g$routes)) return(route_encoding(enc, g$routes, net))
  if (enc$kind == "image") {
    if (!identical(kinds, "image")) {
      ember_abort("image arrays need a network whose only input is ember_input_image()", argument = "x",
        expected = "ember_input_image()", got = paste(kinds, collapse = ", "))
    }
    if (!is.null(g$image_shape) && !identical(g$image_shape, enc$shape)) {
      ember_abort(sprintf("the images have shape [%s]; the network's ember_input_image() expects [%s]",
        paste(enc$shape, collapse = ", "), paste(g$image_shape, collapse = ", ")), kind = "shape", argument = "x",
        expected = paste(g$image_shape, collapse = ", "), got = paste(enc$shape, collapse = ", "))
    }
    return(enc)
  }
  sizes <- encoding_inputs(enc)
  has_num <- sizes$numeric > 0L
  has_categ <- length(sizes$cardinalities) > 0L
  names_of <- function(factors) {
    types <- vapply(enc$columns, `[[`, "", "type")
    cols <- vapply(enc$columns, `[[`, "", "name")[if (factors) types == "factor" else types != "factor"]
    paste0("'", utils::head(cols, 3L), "'", collapse = ", ")
  }
  if (has_categ && !any(c("categ", "tabular") %in% kinds)) {
    ember_abort(sprintf("the data has factor columns (%s) that the network does not read: add ember_input_categ() or ember_input_tabular(), or encode the factors first (e.g. mlr3pipelines po('encode'))",
      names_of(TRUE)), argument = "network", expected = "an input for the factors", got = paste(kinds, collapse = ", "))
  }
  if (has_num && !any(c("num", "tabular", "image") %in% kinds)) {
    ember_abort(sprintf("the data has numeric columns (%s) that the network does not read: add ember_input_num() or ember_input_tabular()",
      names_of(FALSE)), argument = "network", expected = "an input for the numeric features", got = paste(kinds, collapse = ", "))
  }
  image <- NULL
  if ("image" %in% kinds) {
    image <- g$image_shape
    if (is.null(image)) {
      ember_abort("ember_input_image() needs its 'shape' to read tabular data: c(channels, height, width)",
        argument = "shape", expected = "c(channels, height, width)", got = "NULL")
    }
    if (prod(image) != sizes$numeric) {
      ember_abort(sprintf("ember_input_image(shape = c(%s)) needs %d numeric features (pixels); the data has %d",
        paste(image, collapse = ", "), prod(image), sizes$numeric), kind = "shape", argument = "shape",
        expected = as.character(prod(image)), got = as.character(sizes$numeric))
    }
  }
  enc$inputs <- list(num = has_num && any(c("num", "tabular") %in% kinds),
    categ = has_categ && any(c("categ", "tabular") %in% kinds), image = image, unseen = unseen_for_network(net))
  enc
}

# The ops that read a categorical input directly: an unseen level can be one-hot encoded as zeros,
# but has no embedding or token.
unseen_for_network <- function(net) {
  categ_readers <- character(0)
  walk_graph(net$params$output, function(node) {
    if (any(vapply(node$inputs, function(i) identical(i$op, "input") && identical(i$input, "categ"), logical(1)))) {
      categ_readers <<- c(categ_readers, node$op)
    }
  })
  if (all(categ_readers == "one_hot")) "warn" else "error"
}

# Inputs that name their columns (ember_input_num(columns = ...), the ingress PipeOps): each
# engine input reads exactly its columns, in their order, matched by name. Numeric inputs take
# numeric, integer, logical (0/1) and ordered (codes) columns; categorical inputs take factors and
# ordered factors as level codes; image inputs take numeric columns as pixels (row-major).
route_encoding <- function(enc, routes, net) {
  if (enc$kind != "tabular") {
    ember_abort("inputs that name their columns read a data.frame or an 'mlr3' task, not an array", argument = "x",
      expected = "a data.frame", got = "an array")
  }
  names_all <- vapply(enc$columns, `[[`, "", "name")
  types_all <- stats::setNames(vapply(enc$columns, `[[`, "", "type"), names_all)
  allowed <- list(num = c("numeric", "integer", "logical", "ordered"), categ = c("factor", "ordered"),
    image = c("numeric", "integer", "logical", "tensor"))
  what <- c(num = "numeric, integer, logical or ordered", categ = "factor or ordered",
    image = "one ember_tensor column or numeric (pixels)")
  for (r in routes) {
    absent <- setdiff(r$columns, names_all)
    if (length(absent)) {
      ember_abort(sprintf("the input '%s' reads the column(s) %s, which the data lacks", r$name,
        paste0("'", absent, "'", collapse = ", ")), argument = absent[1L], expected = paste(r$columns, collapse = ", "),
        got = paste(names_all, collapse = ", "), extra_class = "ember_error_missing_column")
    }
    bad <- r$columns[!(types_all[r$columns] %in% allowed[[r$kind]])]
    if (length(bad)) {
      ember_abort(sprintf("the input '%s' reads column '%s' of type '%s'; it takes %s columns", r$name, bad[1L],
        types_all[[bad[1L]]], what[[r$kind]]), argument = bad[1L], expected = what[[r$kind]], got = types_all[[bad[1L]]])
    }
    tensors <- r$columns[types_all[r$columns] == "tensor"]
    if (length(tensors) && (r$kind != "image" || length(r$columns) != 1L)) {
      ember_abort(sprintf("the input '%s' reads the tensor column '%s'; a tensor column is read alone by an image input (ember_input_image(columns = '%s'))",
        r$name, tensors[1L], tensors[1L]), argument = tensors[1L], expected = "an image input reading only this column",
        got = paste(r$columns, collapse = ", "))
    }
    if (length(tensors)) {
      shape <- cols_by_name(enc)[[tensors]]$shape
      if (!is.null(r$shape) && !identical(as.integer(r$shape), as.integer(shape))) {
        ember_abort(sprintf("the image input '%s' has shape c(%s); its tensor column '%s' holds elements of shape c(%s)",
          r$name, paste(r$shape, collapse = ", "), tensors, paste(shape, collapse = ", ")), kind = "shape", argument = "shape",
          expected = paste(shape, collapse = ", "), got = paste(r$shape, collapse = ", "))
      }
      r$shape <- shape
      routes[[which(vapply(routes, function(q) identical(q$name, r$name), TRUE))]]$shape <- shape
    } else if (r$kind == "image") {
      if (is.null(r$shape)) {
        ember_abort(sprintf("the image input '%s' needs its 'shape': c(channels, height, width)", r$name), argument = "shape",
          expected = "c(channels, height, width)", got = "NULL")
      }
      if (prod(r$shape) != length(r$columns)) {
        ember_abort(sprintf("the image input '%s' of shape c(%s) needs %d pixel columns; it reads %d", r$name,
          paste(r$shape, collapse = ", "), prod(r$shape), length(r$columns)), kind = "shape", argument = "shape",
          expected = as.character(prod(r$shape)), got = as.character(length(r$columns)))
      }
    }
  }
  unread <- setdiff(names_all, unlist(lapply(routes, `[[`, "columns")))
  if (length(unread)) {
    ember_abort(sprintf("the data has column(s) that no input of the network reads: %s; read them with an input or drop them (e.g. mlr3pipelines po('select'))",
      paste0("'", utils::head(unread, 5L), "'", collapse = ", ")), argument = unread[1L], expected = "an input for every column",
      got = paste(unread, collapse = ", "))
  }
  enc$routes <- unname(lapply(routes, function(r) r[c("name", "kind", "columns", "shape")]))
  enc$inputs <- list(unseen = unseen_for_network(net))
  enc
}

cols_by_name <- function(enc) stats::setNames(enc$columns, vapply(enc$columns, `[[`, "", "name"))

# The sizes of the routed inputs, by name, for network_spec().
route_sizes <- function(enc) {
  cols <- stats::setNames(enc$columns, vapply(enc$columns, `[[`, "", "name"))
  stats::setNames(lapply(enc$routes, function(r) {
    list(features = length(r$columns), shape = r$shape,
      cardinalities = vapply(r$columns, function(cl) length(cols[[cl]]$levels), integer(1), USE.NAMES = FALSE))
  }), vapply(enc$routes, `[[`, "", "name"))
}

# The standardize masks of the routed numeric inputs (numeric, integer and ordered columns).
route_standardize <- function(enc, standardize) {
  types <- stats::setNames(vapply(enc$columns, `[[`, "", "type"), vapply(enc$columns, `[[`, "", "name"))
  num <- Filter(function(r) r$kind == "num", enc$routes)
  stats::setNames(lapply(num, function(r) json_array(standardize & types[r$columns] %in% c("numeric", "integer", "ordered"))),
    vapply(num, `[[`, "", "name"))
}

# Encodes the routed inputs of `x` (a data.frame): one matrix or array per input.
encode_routes <- function(enc, x, argument, unseen) {
  cols <- stats::setNames(enc$columns, vapply(enc$columns, `[[`, "", "name"))
  check_trained_columns(x, unique(unlist(lapply(enc$routes, `[[`, "columns"))), argument)
  n <- nrow(x)
  out <- list()
  for (r in enc$routes) {
    if (r$kind == "categ") {
      m <- matrix(0L, nrow = n, ncol = length(r$columns))
      for (j in seq_along(r$columns)) {
        cl <- cols[[r$columns[j]]]
        m[, j] <- encode_factor_column(cl, x[[cl$name]], argument, unseen)
      }
    } else if (identical(cols[[r$columns[1L]]]$type, "tensor")) {
      m <- check_tensor_column(cols[[r$columns]], x[[r$columns]], argument)
    } else {
      m <- matrix(0, nrow = n, ncol = length(r$columns))
      for (j in seq_along(r$columns)) m[, j] <- encode_numeric_column(cols[[r$columns[j]]], x[[r$columns[j]]], argument)
      if (r$kind == "image") m <- pixels_as_images(m, r$shape)
    }
    out[[r$name]] <- m
  }
  out
}

# What an unseen factor level does: "warn" (one-hot: all zeros) or "error" (embeddings, tokens).
unseen_policy <- function(architecture, enc) {
  if (!is.null(enc$inputs$unseen)) return(enc$inputs$unseen)
  architecture_unseen_levels(architecture$name)
}

# The encoded inputs a network built in R reads (see network_encoding()).
select_network_inputs <- function(enc, out) {
  sel <- enc$inputs
  if (is.null(sel)) return(out)
  if (!is.null(sel$image)) out$image <- pixels_as_images(out$num, sel$image)
  if (!isTRUE(sel$num)) out$num <- NULL
  if (!isTRUE(sel$categ)) out$categ <- NULL
  out
}

# Rows of pixels (row-major per image: channel, then row, then column) as [n, channels, height, width].
pixels_as_images <- function(m, shape) {
  n <- nrow(m)
  a <- array(m, dim = c(n, shape[3L], shape[2L], shape[1L]))
  aperm(a, c(1L, 4L, 3L, 2L))
}

# Which `num` columns are standardised: numeric, integer and ordered (not logical).
encoding_standardize <- function(enc, standardize) {
  types <- vapply(enc$columns, `[[`, "", "type")
  # A tensor column read as numbers (flattened) is never standardised.
  unlist(lapply(enc$columns[types != "factor"], function(cl) {
    if (cl$type == "tensor") rep(FALSE, prod(cl$shape)) else standardize && cl$type %in% c("numeric", "integer", "ordered")
  }))
}

# Encodes features with a fitted encoding into list(num = matrix, categ = integer matrix (0-based))
# or list(image = array). `unseen` says what an unseen factor level does: "warn" (one-hot:
# all zeros) or "error" (tokenizers).
ember_encode <- function(enc, x, argument = "newdata", unseen = "warn") {
  if (enc$kind == "image") return(encode_image(enc, x, argument))
  if (enc$kind == "inputs") return(encode_inputs(enc, x, argument))
  if (is.matrix(x)) {
    if (enc$positional && is.null(colnames(x))) colnames(x) <- vapply(enc$columns, `[[`, "", "name")
    x <- as_data_frame(x)
  }
  if (!is.data.frame(x)) {
    ember_abort(sprintf("'%s' must be a data.frame or a matrix, got %s", argument, class(x)[1L]), argument = argument,
      expected = "a data.frame or matrix", got = class(x)[1L])
  }
  if (!is.null(enc$routes)) return(encode_routes(enc, x, argument, unseen))
  check_trained_columns(x, vapply(enc$columns, `[[`, "", "name"), argument)
  n <- nrow(x)
  types <- vapply(enc$columns, `[[`, "", "type")
  if (length(types) == 1L && types == "tensor") {
    # A tensor column alone is the numeric input, flattened and read batch by batch from its source.
    tensor <- check_tensor_column(enc$columns[[1L]], x[[enc$columns[[1L]]$name]], argument)
    return(select_network_inputs(enc, list(num = structure(tensor, flatten = TRUE))))
  }
  num_cols <- enc$columns[types != "factor"]
  cat_cols <- enc$columns[types == "factor"]
  out <- list()
  if (length(num_cols)) {
    # Next to other columns, a tensor column is materialised: its values, flattened, are columns of `num`.
    num <- do.call(cbind, lapply(num_cols, function(cl) {
      if (cl$type == "tensor") return(matrix(as.array(check_tensor_column(cl, x[[cl$name]], argument)), nrow = n))
      encode_numeric_column(cl, x[[cl$name]], argument)
    }))
    out$num <- num
  }
  if (length(cat_cols)) {
    categ <- matrix(0L, nrow = n, ncol = length(cat_cols))
    for (j in seq_along(cat_cols)) categ[, j] <- encode_factor_column(cat_cols[[j]], x[[cat_cols[[j]]$name]], argument, unseen)
    out$categ <- categ
  }
  select_network_inputs(enc, out)
}

# A tensor column at training or prediction: an ember_tensor of the trained shape, no missing element.
check_tensor_column <- function(cl, col, argument) {
  if (!inherits(col, "ember_tensor")) {
    ember_abort(sprintf("column '%s' of '%s' must be an ember_tensor (as in training), got %s", cl$name, argument, class(col)[1L]),
      argument = cl$name, expected = "an ember_tensor", got = class(col)[1L])
  }
  shape <- ember_tensor_shape(col)
  if (!identical(as.integer(shape), as.integer(cl$shape))) {
    ember_abort(sprintf("column '%s' of '%s' holds elements of shape [%s]; the model expects [%s]", cl$name, argument,
      paste(shape, collapse = ", "), paste(cl$shape, collapse = ", ")), kind = "shape", argument = cl$name,
      expected = paste(cl$shape, collapse = ", "), got = paste(shape, collapse = ", "))
  }
  check_no_missing(unclass(col), cl$name, argument)
  col
}

# `x` (a data.frame) must hold the columns `needed` that the model was trained on.
check_trained_columns <- function(x, needed, argument) {
  missing_cols <- setdiff(needed, names(x))
  if (length(missing_cols)) {
    ember_abort(sprintf("'%s' lacks the column(s) %s that the model was trained on (columns are matched by name)",
      argument, paste0("'", missing_cols, "'", collapse = ", ")), argument = missing_cols[1L],
      expected = paste(needed, collapse = ", "), got = paste(names(x), collapse = ", "),
      extra_class = "ember_error_missing_column")
  }
}

check_no_missing <- function(values, name, argument) {
  bad <- which(is.na(values))
  if (length(bad)) {
    ember_abort(sprintf("column '%s' of '%s' has %d missing value(s) (first in row %d); impute them first (e.g. mlr3pipelines po('imputeoor'))",
      name, argument, length(bad), bad[1L]), kind = "missing_values", argument = name, index = bad[1L],
      expected = "no missing values", got = "NA", extra_class = "ember_error_invalid_argument")
  }
}

encode_numeric_column <- function(cl, col, argument) {
  if (cl$type == "ordered") {
    if (!is.factor(col)) {
      ember_abort(sprintf("column '%s' of '%s' must be an ordered factor as in training, got '%s'", cl$name, argument, class(col)[1L]),
        argument = cl$name, expected = "ordered", got = class(col)[1L])
    }
    check_no_missing(col, cl$name, argument)
    codes <- match(as.character(col), cl$levels)
    unseen <- which(is.na(codes))
    if (length(unseen)) {
      ember_abort(sprintf("column '%s' of '%s' has level '%s' (row %d), unseen in training; an ordered factor's levels must be those of training (%s)",
        cl$name, argument, as.character(col[unseen[1L]]), unseen[1L], paste(cl$levels, collapse = " < ")),
        kind = "unseen_level", argument = cl$name, index = unseen[1L], expected = paste(cl$levels, collapse = ", "),
        got = as.character(col[unseen[1L]]), extra_class = "ember_error_invalid_argument")
    }
    return(as.double(codes))
  }
  if (!(is.numeric(col) || is.logical(col)) || is.factor(col)) {
    ember_abort(sprintf("column '%s' of '%s' must be %s as in training, got '%s'", cl$name, argument, cl$type, class(col)[1L]),
      argument = cl$name, expected = cl$type, got = class(col)[1L])
  }
  vals <- as.double(col)
  check_no_missing(vals, cl$name, argument)
  inf <- which(!is.finite(vals))
  if (length(inf)) {
    ember_abort(sprintf("column '%s' of '%s' has the non-finite value %s in row %d; expected finite numbers", cl$name, argument,
      format(vals[inf[1L]]), inf[1L]), argument = cl$name, index = inf[1L], expected = "finite numbers", got = format(vals[inf[1L]]))
  }
  vals
}

encode_factor_column <- function(cl, col, argument, unseen) {
  if (!is.factor(col) && !is.character(col)) {
    ember_abort(sprintf("column '%s' of '%s' must be a factor as in training, got '%s'", cl$name, argument, class(col)[1L]),
      argument = cl$name, expected = "factor", got = class(col)[1L])
  }
  check_no_missing(col, cl$name, argument)
  codes <- match(as.character(col), cl$levels) - 1L
  new <- which(is.na(codes))
  if (length(new)) {
    level <- as.character(col[new[1L]])
    if (unseen == "error") {
      ember_abort(sprintf("column '%s' of '%s' has level '%s' (row %d) unseen in training; this model's tokenizer has no embedding for it (known: %s)",
        cl$name, argument, level, new[1L], paste(cl$levels, collapse = ", ")), kind = "unseen_level", argument = cl$name,
        index = new[1L], expected = paste(cl$levels, collapse = ", "), got = level, extra_class = "ember_error_invalid_argument")
    }
    ember_warn(sprintf("column '%s' of '%s' has %d value(s) of level(s) unseen in training (first: '%s' in row %d); they are encoded as all zeros",
      cl$name, argument, length(new), level, new[1L]), kind = "unseen_level", argument = cl$name, index = new[1L])
    codes[new] <- length(cl$levels)  # out of range: one-hot writes zeros
  }
  as.integer(codes)
}

encode_image <- function(enc, x, argument) {
  if (!is.null(enc$column)) {
    if (inherits(x, "ember_tensor")) x <- stats::setNames(tensor_frame(x), enc$column)
    if (!is.data.frame(x)) {
      ember_abort(sprintf("'%s' must be a data.frame with the tensor column '%s' (or an ember_tensor), got %s", argument,
        enc$column, class(x)[1L]), argument = argument, expected = "a data.frame", got = class(x)[1L])
    }
    check_trained_columns(x, enc$column, argument)
    return(list(image = check_tensor_column(list(name = enc$column, shape = enc$shape), x[[enc$column]], argument)))
  }
  d <- dim(x)
  if (!is.array(x) || !is.numeric(x) || !(length(d) %in% c(3L, 4L))) {
    ember_abort(sprintf("'%s' must be a numeric array of images [n, %s]", argument, paste(enc$shape, collapse = ", ")),
      argument = argument, expected = "a 3-d or 4-d numeric array", got = class(x)[1L])
  }
  if (length(d) == 3L) x <- array(x, dim = c(d[1L], 1L, d[2L], d[3L]))
  d <- dim(x)
  if (!identical(as.integer(d[2:4]), enc$shape)) {
    ember_abort(sprintf("'%s' holds images of shape [%s]; the model expects [%s]", argument, paste(d[2:4], collapse = ", "),
      paste(enc$shape, collapse = ", ")), kind = "shape", argument = argument, expected = paste(enc$shape, collapse = ", "),
      got = paste(d[2:4], collapse = ", "))
  }
  storage.mode(x) <- "double"
  bad <- which(!is.finite(x))
  if (length(bad)) {
    row <- (bad[1L] - 1L) %% d[1L] + 1L
    ember_abort(sprintf("'%s' holds a missing or non-finite value in image %d; expected finite numbers", argument, row),
      kind = if (is.na(x[bad[1L]])) "missing_values" else "invalid_argument", argument = argument, index = row,
      expected = "finite numbers", got = format(x[bad[1L]]),
      extra_class = if (is.na(x[bad[1L]])) "ember_error_invalid_argument" else NULL)
  }
  list(image = x)
}

# Models without an R encoding (written from Swift or C): `newdata` is a named list with one
# array per network input (rows first), or a matrix when the network has one numeric input.
encode_inputs <- function(enc, x, argument) {
  if (!is.list(x) || is.data.frame(x)) {
    if (length(enc$inputs) == 1L && (is.matrix(x) || is.array(x) || is.data.frame(x))) {
      x <- stats::setNames(list(if (is.data.frame(x)) as.matrix(x) else x), enc$inputs[[1L]]$name)
    } else {
      ember_abort(sprintf("'%s' must be a named list with one array per input (%s)", argument,
        paste(vapply(enc$inputs, `[[`, "", "name"), collapse = ", ")), argument = argument, expected = "a named list")
    }
  }
  out <- list()
  for (input in enc$inputs) {
    v <- x[[input$name]]
    if (is.null(v)) ember_abort(sprintf("'%s' lacks the input '%s'", argument, input$name), argument = input$name)
    if (input$kind == "categorical") {
      v <- as.matrix(v)
      storage.mode(v) <- "integer"
    } else if (input$kind == "numeric") {
      v <- as.matrix(v)
      storage.mode(v) <- "double"
    } else {
      storage.mode(v) <- "double"
    }
    out[[input$name]] <- v
  }
  out
}

# The encoding as stored in the model file (host metadata "mlr3ember.encoding").
encoding_to_json <- function(enc, target, architecture) {
  body <- list(format = encoding_format, version = 1L, kind = enc$kind)
  if (enc$kind == "image") {
    body$shape <- json_array(enc$shape)
    body$column <- enc$column
  }
  if (enc$kind == "tabular") {
    body$positional <- enc$positional
    body$columns <- json_array(lapply(enc$columns, function(cl) {
      list(name = cl$name, type = cl$type, levels = if (!is.null(cl$levels)) json_array(cl$levels),
        shape = if (!is.null(cl$shape)) json_array(as.integer(cl$shape)))
    }))
    if (!is.null(enc$inputs)) {
      body$inputs <- list(num = enc$inputs$num, categ = enc$inputs$categ,
        image = if (!is.null(enc$inputs$image)) json_array(enc$inputs$image), unseen = enc$inputs$unseen)
    }
    if (!is.null(enc$routes)) {
      body$routes <- json_array(lapply(enc$routes, function(r) {
        list(name = r$name, kind = r$kind, columns = json_array(r$columns),
          shape = if (!is.null(r$shape)) json_array(as.integer(r$shape)))
      }))
    }
  }
  body$target <- list(type = target$type, levels = if (!is.null(target$levels)) json_array(target$levels))
  # A network built in R is stored as its description (the model's network); its R graph is not kept.
  params <- if (architecture$name == "network" || !length(architecture$params)) json_object() else architecture$params
  body$architecture <- list(name = architecture$name, params = params)
  to_json(body)
}

encoding_from_json <- function(text) {
  j <- tryCatch(from_json(text), error = function(e) NULL)
  if (is.null(j) || !identical(j$format, encoding_format)) {
    ember_abort("the model file's R encoding is malformed", kind = "corrupt", argument = "file")
  }
  enc <- if (j$kind == "image") list(kind = "image", shape = as.integer(j$shape), column = j$column) else
    list(kind = "tabular", columns = lapply(j$columns, function(cl) {
      list(name = cl$name, type = cl$type, levels = if (length(cl$levels)) as.character(cl$levels) else NULL,
        shape = if (length(cl$shape)) as.integer(unlist(cl$shape)) else NULL)
    }), positional = isTRUE(j$positional))
  if (!is.null(j$inputs)) {
    enc$inputs <- list(num = isTRUE(j$inputs$num), categ = isTRUE(j$inputs$categ),
      image = if (length(j$inputs$image)) as.integer(j$inputs$image) else NULL, unseen = j$inputs$unseen)
  }
  if (length(j$routes)) {
    enc$routes <- lapply(j$routes, function(r) {
      list(name = r$name, kind = r$kind, columns = as.character(unlist(r$columns)),
        shape = if (length(r$shape)) as.integer(unlist(r$shape)) else NULL)
    })
  }
  arch <- new_architecture(j$architecture$name, j$architecture$params %||% list())
  list(encoding = structure(enc, class = "ember_encoding"),
    target = list(type = j$target$type, levels = if (length(j$target$levels)) as.character(j$target$levels) else NULL),
    architecture = arch)
}

# The encoding of a model written without R (from its network inputs).
encoding_from_inputs <- function(inputs) {
  structure(list(kind = "inputs", inputs = lapply(inputs, function(i) list(name = i$name, kind = i$kind))), class = "ember_encoding")
}

`%||%` <- function(x, y) if (is.null(x)) y else x
