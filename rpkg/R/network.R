#' Networks built in R
#'
#' A small vocabulary for writing a network in R, as a graph of layers: start from one or more
#' inputs, pipe them through layers (`|>`), merge branches, repeat blocks, end with
#' `ember_head()`, and wrap the output with `ember_network()`. The result is an
#' `ember_architecture` like [ember_mlp()]: train it with [ember_fit()] or with the 'mlr3'
#' learners `classif.ember_network` and `regr.ember_network`. Sizes that follow from the data or
#' from earlier layers are not given: the number of features and factor levels come from the
#' data, and the engine infers the input width of every layer (`in_features`, `in_channels`,
#' `num_features` ...), as in `docs/network-description.md`, the format the graph is written in.
#'
#' @section Inputs:
#' * `ember_input_num()`: the numeric features, a matrix `[n, features]`: numeric and integer
#'   columns, logicals as 0/1 and ordered factors as integer codes, standardised inside the model
#'   (see [ember_fit()]).
#' * `ember_input_categ()`: the factor columns as level codes `[n, factors]`, for
#'   `ember_one_hot()` or `ember_embedding()`.
#' * `ember_input_tabular()`: every feature in one vector: the numeric features followed by the
#'   factors one-hot (what [ember_mlp()] reads). It works whatever the column types of the data.
#' * `ember_input_image(shape)`: images `[n, channels, height, width]`: an image array given to
#'   [ember_fit()] (then `shape` may be left out), or the numeric features of a data.frame or
#'   'mlr3' task read as pixels in row-major order (channel by channel, each row by row, as in
#'   the MNIST CSV files); then `shape` is required and its product must equal the number of
#'   numeric features.
#'
#' Every feature column must be read by some input: a factor column needs
#' `ember_input_categ()` or `ember_input_tabular()`.
#'
#' Inputs can also name the columns they read (`columns`): then each input reads exactly those
#' columns in that order (matched by name at prediction), so that, e.g., two groups of numeric
#' columns enter the network through two branches. A numeric input reads numeric, integer, logical
#' and ordered columns, a categorical input factors and ordered factors (as level codes), an image
#' input numeric pixel columns. This is how the ingress PipeOps of [mlr_pipeops_ember] route the
#' task's features.
#'
#' @section Layers:
#' Each takes the node it reads as its first argument, so that layers chain with `|>`; `id`
#' names the layer (its parameters are then `<id>.weight` ...; see [ember_parameters()]), by
#' default the op followed by a counter (`linear_0`, `linear_1` ...).
#' * `ember_linear()`: a dense layer to `out_features` outputs.
#' * `ember_activation()`: an activation by PyTorch's name: `"relu"`, `"gelu"`, `"elu"`,
#'   `"selu"`, `"tanh"`, `"sigmoid"`, `"leaky_relu"`, `"softplus"`, `"prelu"`, `"glu"`,
#'   `"reglu"`, `"geglu"`, ..., with its arguments in `...` (e.g. `negative_slope = 0.1`).
#' * `ember_dropout()`, `ember_batch_norm()`, `ember_layer_norm()`.
#' * `ember_conv()`, `ember_max_pool()`, `ember_avg_pool()`, `ember_adaptive_avg_pool()`:
#'   convolutions and pooling over `[channels, length]` (`dim = 1`) or `[channels, height, width]`
#'   (`dim = 2`).
#' * `ember_flatten()`, `ember_reshape()`: change the shape (per sample).
#' * `ember_one_hot()`, `ember_embedding()`: for `ember_input_categ()`; an embedding turns `k`
#'   factors into `[k, embedding_dim]`.
#' * `ember_layer()`: any op of the network description format by name, with its parameters.
#' * `ember_head()`: the output layer, sized from the task: one output for regression and binary
#'   classification (the logit of the first class), one per class otherwise.
#'
#' @section Merges and repeated blocks:
#' `ember_merge_sum()`, `ember_merge_prod()` and `ember_merge_cat()` combine two or more nodes
#' (residual connections, several inputs). `ember_repeat()` applies a block `times` times: `body`
#' is a function that receives the block's input node and returns its output node, built only
#' from that input. Each repetition reads the previous one's output (with `shared = TRUE` the
#' block must keep the shape; with its own parameters it may change it). Each repetition has its own parameters
#' (`<id>.0.linear_0.weight`, `<id>.1.linear_0.weight` ...) unless `shared = TRUE`.
#'
#' @param columns (`character()` or `NULL`)\cr The columns an input reads, by name: `NULL` for
#'   every column of its kind (see section Inputs). When one input names its columns, every input
#'   must, and together they must read every column of the data; the input's `id` (by default
#'   its kind) names it in the network description, so two inputs of one kind need ids.
#' @param x (`ember_node`)\cr The node a layer reads.
#' @param ... For `ember_merge_*()`: the nodes to merge. For `ember_activation()` and
#'   `ember_layer()`: the op's parameters, with PyTorch's names.
#' @param id (`character(1)` or `NULL`)\cr Name of the layer, unique in the network, without `.`.
#' @param shape (`integer()`)\cr `ember_input_image()`: `c(channels, height, width)` (or
#'   `c(height, width)` for one channel). `ember_reshape()`: the new shape per sample; one entry
#'   may be -1.
#' @param out_features (`integer(1)`)\cr Outputs of a linear layer.
#' @param bias (`logical(1)`)\cr Whether the layer has a bias.
#' @param fn (`character(1)`)\cr The activation.
#' @param p (`numeric(1)`)\cr Dropout probability in \[0, 1).
#' @param eps,momentum,affine Normalisation options (PyTorch's meaning and defaults).
#' @param out_channels,kernel_size,stride,padding,dilation,groups Convolution and pooling options
#'   with PyTorch's meaning; sizes are an integer or one per dimension. A pooling `stride` of
#'   `NULL` equals the kernel size.
#' @param dim (`integer(1)`)\cr 1 for `[channels, length]`, 2 for `[channels, height, width]`.
#'   For `ember_merge_cat()`: the dimension to concatenate along (-1: the last).
#' @param count_include_pad (`logical(1)`)\cr Whether average pooling counts padded zeros.
#' @param output_size (`integer()`)\cr Output height and width of adaptive pooling.
#' @param start_dim,end_dim (`integer(1)`)\cr Dimensions to flatten (0 is the batch).
#' @param embedding_dim (`integer(1)`)\cr Width of each factor's embedding.
#' @param op (`character(1)`)\cr An op of the network description format, e.g. `"tokenizer_num"`.
#' @param times (`integer(1)`)\cr How often a block is applied.
#' @param body (`function(x)`)\cr Builds a block from its input node.
#' @param shared (`logical(1)`)\cr Whether the repetitions share their parameters.
#' @param output (`ember_node`)\cr The network's output, normally an `ember_head()`.
#' @return `ember_network()`: an object of class `c("ember_network", "ember_architecture")`. The
#'   other functions: an `ember_node`.
#' @seealso [ember_fit()], [ember_network_description()], [ember_architectures]
#' @name ember_network
#' @examples
#' # An MLP on all features, with a residual block repeated twice:
#' net <- ember_input_tabular() |>
#'   ember_linear(32) |>
#'   ember_activation("relu") |>
#'   ember_repeat(2, function(x) {
#'     branch <- x |> ember_batch_norm() |> ember_linear(32) |> ember_activation("gelu") |>
#'       ember_dropout(0.1)
#'     ember_merge_sum(x, branch)
#'   }) |>
#'   ember_head() |>
#'   ember_network()
#' net
#' set.seed(1)
#' model <- ember_fit(iris[, 1:4], iris$Species, net, epochs = 20, batch_size = 16, lr = 0.01)
#' mean(predict(model, iris) == iris$Species)
#'
#' # Numeric features and embedded factors in two branches:
#' num <- ember_input_num() |> ember_linear(16)
#' categ <- ember_input_categ() |> ember_embedding(4) |> ember_flatten()
#' net2 <- ember_merge_cat(num, categ) |> ember_activation("relu") |> ember_head() |>
#'   ember_network()
#' d <- data.frame(x = rnorm(60), g = factor(sample(letters[1:3], 60, TRUE)))
#' model2 <- ember_fit(d, d$x + as.integer(d$g), net2, epochs = 10)
#'
#' # A small CNN for 8 x 8 grey images given as an array [n, 1, 8, 8]:
#' cnn <- ember_input_image() |> ember_conv(4, kernel_size = 3, padding = 1) |>
#'   ember_activation("relu") |> ember_max_pool(2) |> ember_flatten() |> ember_head() |>
#'   ember_network()
#' images <- array(runif(20 * 64), dim = c(20, 1, 8, 8))
#' model3 <- ember_fit(images, factor(rep(c("a", "b"), 10)), cnn, epochs = 2)
NULL

# Nodes carry a key that is unique in the session (and, with the process id and start time, across
# sessions), so that a node read twice (a residual connection) is one node of the graph while two
# equal-looking layers stay two.
node_keys <- new.env(parent = emptyenv())
node_keys$counter <- 0
node_keys$session <- NULL

next_node_key <- function() {
  if (is.null(node_keys$session)) node_keys$session <- sprintf("%x.%s", Sys.getpid(), format(as.numeric(Sys.time()) * 1e3, scientific = FALSE))
  node_keys$counter <- node_keys$counter + 1
  paste0(node_keys$session, ":", node_keys$counter)
}

new_node <- function(op, inputs, params = list(), id = NULL, body = NULL, input = NULL, shape = NULL, columns = NULL) {
  if (!is.null(id)) {
    if (!checkmate::test_string(id, min.chars = 1L) || grepl(".", id, fixed = TRUE)) {
      ember_abort(sprintf("'id' must be a non-empty name without '.', got %s", deparse_short(id)), argument = "id",
        expected = "a name without '.'", got = deparse_short(id))
    }
  }
  structure(list(key = next_node_key(), op = op, id = id, inputs = inputs, params = params, body = body,
    input = input, shape = shape, columns = columns), class = "ember_node")
}

check_node <- function(x, argument = "x") {
  if (!inherits(x, "ember_node")) {
    ember_abort(sprintf("'%s' must be a node of a network (from ember_input_*() or a layer), got %s", argument,
      class(x)[1L]), argument = argument, expected = "an ember_node", got = class(x)[1L])
  }
  x
}

check_flag <- function(x, argument) {
  if (!checkmate::test_flag(x)) {
    ember_abort(sprintf("'%s' must be TRUE or FALSE", argument), argument = argument, expected = "TRUE or FALSE",
      got = deparse_short(x))
  }
  x
}

# Sizes (kernel, stride, padding ...): one positive integer or one per dimension.
check_sizes <- function(x, argument, lower = 1L) {
  if (!checkmate::test_integerish(x, lower = lower, any.missing = FALSE, min.len = 1L, max.len = 2L)) {
    ember_abort(sprintf("'%s' must be one or two integers >= %d, got %s", argument, lower, deparse_short(x)),
      argument = argument, expected = sprintf("integers >= %d", lower), got = deparse_short(x))
  }
  if (length(x) == 1L) as.integer(x) else json_array(as.integer(x))
}

check_dim <- function(dim) {
  if (!checkmate::test_choice(dim, c(1, 2))) {
    ember_abort(sprintf("'dim' must be 1 or 2, got %s", deparse_short(dim)), argument = "dim", expected = "1 or 2",
      got = deparse_short(dim))
  }
  as.integer(dim)
}

# `columns` of an input: NULL (every column of the input's kind) or unique column names.
check_columns <- function(columns) {
  if (is.null(columns)) return(NULL)
  if (!checkmate::test_character(columns, min.chars = 1L, any.missing = FALSE, min.len = 1L, unique = TRUE)) {
    ember_abort(sprintf("'columns' must be NULL or unique, non-empty column names, got %s", deparse_short(columns)),
      argument = "columns", expected = "unique column names", got = deparse_short(columns))
  }
  columns
}

#' @rdname ember_network
#' @export
ember_input_num <- function(columns = NULL, id = NULL) {
  new_node("input", list(), input = "num", columns = check_columns(columns), id = id)
}

#' @rdname ember_network
#' @export
ember_input_categ <- function(columns = NULL, id = NULL) {
  new_node("input", list(), input = "categ", columns = check_columns(columns), id = id)
}

#' @rdname ember_network
#' @export
ember_input_tabular <- function() new_node("input", list(), input = "tabular")

#' @rdname ember_network
#' @export
ember_input_image <- function(shape = NULL, columns = NULL, id = NULL) {
  if (!is.null(shape)) {
    if (!checkmate::test_integerish(shape, lower = 1, any.missing = FALSE, min.len = 2L, max.len = 3L)) {
      ember_abort(sprintf("'shape' must be c(channels, height, width) or c(height, width), got %s", deparse_short(shape)),
        argument = "shape", expected = "2 or 3 positive integers", got = deparse_short(shape))
    }
    shape <- as.integer(shape)
    if (length(shape) == 2L) shape <- c(1L, shape)
  }
  new_node("input", list(), input = "image", shape = shape, columns = check_columns(columns), id = id)
}

#' @rdname ember_network
#' @export
ember_layer <- function(x, op, ..., id = NULL) {
  check_choice(op, network_ops(), "op")
  inputs <- if (inherits(x, "ember_node")) list(x) else x
  if (!is.list(inputs) || !length(inputs)) check_node(x)
  for (i in seq_along(inputs)) check_node(inputs[[i]], "x")
  params <- list(...)
  if (length(params) && (is.null(names(params)) || any(!nzchar(names(params))))) {
    ember_abort(sprintf("the parameters of '%s' must be named", op), argument = "...", expected = "named parameters")
  }
  new_node(op, unname(inputs), params, id = id)
}

#' @rdname ember_network
#' @export
ember_linear <- function(x, out_features, bias = TRUE, id = NULL) {
  ember_layer(x, "linear", out_features = check_count(out_features, "out_features"), bias = check_flag(bias, "bias"),
    id = id)
}

#' @rdname ember_network
#' @export
ember_activation <- function(x, fn = "relu", ..., id = NULL) {
  ember_layer(x, check_choice(fn, activation_ops(), "fn"), ..., id = id)
}

#' @rdname ember_network
#' @export
ember_dropout <- function(x, p = 0.5, id = NULL) ember_layer(x, "dropout", p = check_rate(p, "p"), id = id)

#' @rdname ember_network
#' @export
ember_batch_norm <- function(x, eps = 1e-5, momentum = 0.1, affine = TRUE, id = NULL) {
  ember_layer(x, "batch_norm", eps = check_positive(eps, "eps"), momentum = check_rate(momentum, "momentum"),
    affine = check_flag(affine, "affine"), id = id)
}

#' @rdname ember_network
#' @export
ember_layer_norm <- function(x, eps = 1e-5, affine = TRUE, id = NULL) {
  ember_layer(x, "layer_norm", eps = check_positive(eps, "eps"), affine = check_flag(affine, "affine"), id = id)
}

#' @rdname ember_network
#' @export
ember_conv <- function(x, out_channels, kernel_size, stride = 1L, padding = 0L, dilation = 1L, groups = 1L, bias = TRUE,
                       dim = 2L, id = NULL) {
  ember_layer(x, paste0("conv", check_dim(dim), "d"), out_channels = check_count(out_channels, "out_channels"),
    kernel_size = check_sizes(kernel_size, "kernel_size"), stride = check_sizes(stride, "stride"),
    padding = check_sizes(padding, "padding", lower = 0L), dilation = check_sizes(dilation, "dilation"),
    groups = check_count(groups, "groups"), bias = check_flag(bias, "bias"), id = id)
}

#' @rdname ember_network
#' @export
ember_max_pool <- function(x, kernel_size, stride = NULL, padding = 0L, dim = 2L, id = NULL) {
  ember_layer(x, paste0("max_pool", check_dim(dim), "d"), kernel_size = check_sizes(kernel_size, "kernel_size"),
    stride = if (!is.null(stride)) check_sizes(stride, "stride"), padding = check_sizes(padding, "padding", lower = 0L),
    id = id)
}

#' @rdname ember_network
#' @export
ember_avg_pool <- function(x, kernel_size, stride = NULL, padding = 0L, count_include_pad = TRUE, dim = 2L,
                           id = NULL) {
  ember_layer(x, paste0("avg_pool", check_dim(dim), "d"), kernel_size = check_sizes(kernel_size, "kernel_size"),
    stride = if (!is.null(stride)) check_sizes(stride, "stride"), padding = check_sizes(padding, "padding", lower = 0L),
    count_include_pad = check_flag(count_include_pad, "count_include_pad"), id = id)
}

#' @rdname ember_network
#' @export
ember_adaptive_avg_pool <- function(x, output_size, id = NULL) {
  ember_layer(x, "adaptive_avg_pool2d", output_size = check_sizes(output_size, "output_size"), id = id)
}

#' @rdname ember_network
#' @export
ember_flatten <- function(x, start_dim = 1L, end_dim = -1L, id = NULL) {
  if (!checkmate::test_int(start_dim) || !checkmate::test_int(end_dim)) {
    ember_abort("'start_dim' and 'end_dim' must be integers", argument = "start_dim", expected = "integers")
  }
  ember_layer(x, "flatten", start_dim = as.integer(start_dim), end_dim = as.integer(end_dim), id = id)
}

#' @rdname ember_network
#' @export
ember_reshape <- function(x, shape, id = NULL) {
  if (!checkmate::test_integerish(shape, lower = -1, any.missing = FALSE, min.len = 1L) || any(shape == 0) ||
      sum(shape == -1) > 1L) {
    ember_abort(sprintf("'shape' must be positive integers, one of them may be -1, got %s", deparse_short(shape)),
      argument = "shape", expected = "positive integers (one may be -1)", got = deparse_short(shape))
  }
  ember_layer(x, "reshape", shape = json_array(as.integer(shape)), id = id)
}

#' @rdname ember_network
#' @export
ember_one_hot <- function(x, id = NULL) ember_layer(x, "one_hot", id = id)

#' @rdname ember_network
#' @export
ember_embedding <- function(x, embedding_dim, id = NULL) {
  ember_layer(x, "embedding", embedding_dim = check_count(embedding_dim, "embedding_dim"), id = id)
}

merge_nodes <- function(op, nodes, params = list(), id = NULL) {
  if (length(nodes) < 2L) {
    ember_abort(sprintf("'%s' needs at least 2 nodes to merge, got %d", op, length(nodes)), argument = "...",
      expected = "at least 2 nodes", got = as.character(length(nodes)))
  }
  do.call(ember_layer, c(list(nodes, op), params, list(id = id)))
}

#' @rdname ember_network
#' @export
ember_merge_sum <- function(..., id = NULL) merge_nodes("merge_sum", list(...), id = id)

#' @rdname ember_network
#' @export
ember_merge_prod <- function(..., id = NULL) merge_nodes("merge_prod", list(...), id = id)

#' @rdname ember_network
#' @export
ember_merge_cat <- function(..., dim = -1L, id = NULL) {
  if (!checkmate::test_int(dim)) ember_abort("'dim' must be an integer", argument = "dim", expected = "an integer")
  merge_nodes("merge_cat", list(...), list(dim = as.integer(dim)), id = id)
}

#' @rdname ember_network
#' @export
ember_repeat <- function(x, times, body, shared = FALSE, id = NULL) {
  check_node(x)
  times <- check_count(times, "times")
  if (!is.function(body)) {
    ember_abort("'body' must be a function that builds the block from its input node", argument = "body",
      expected = "a function(x)", got = class(body)[1L])
  }
  block_input <- new_node("input", list(), input = "block")
  block_output <- body(block_input)
  check_node(block_output, "the result of 'body'")
  if (identical(block_output$key, block_input$key)) {
    ember_abort("a repeated block's body must add at least one layer", argument = "body", expected = "a layer")
  }
  walk_graph(block_output, function(node) NULL, block_input = block_input$key)
  new_node("repeat", list(x), list(times = times, shared = check_flag(shared, "shared")), id = id,
    body = list(input = block_input, output = block_output))
}

#' @rdname ember_network
#' @export
ember_head <- function(x, bias = TRUE, id = NULL) ember_layer(x, "head", bias = check_flag(bias, "bias"), id = id)

#' @rdname ember_network
#' @export
ember_network <- function(output) {
  check_node(output, "output")
  net <- new_architecture("network", list(output = output))
  graph_inputs(net)  # fails early on a malformed graph (e.g. a block reading outer nodes)
  class(net) <- c("ember_network", class(net))
  net
}

# The engine name of an input node: its id, or its kind ("num", "categ", "image").
input_name <- function(node) node$id %||% node$input

# The inputs a network reads: `kinds` (a subset of "num", "categ", "tabular", "image"), the image
# shape, and, when the inputs name their columns, `routes`: one entry per engine input (by name)
# with its kind, columns and shape. Inputs either all name their columns or none does.
graph_inputs <- function(net) {
  found <- character(0)
  shape <- NULL
  routes <- list()
  unrouted <- character(0)
  walk_graph(net$params$output, function(node) {
    if (!identical(node$op, "input") || identical(node$input, "block")) return(invisible())
    found <<- union(found, node$input)
    if (identical(node$input, "image") && !is.null(node$shape) && is.null(node$columns)) {
      if (!is.null(shape) && !identical(shape, node$shape)) {
        ember_abort("the network has image inputs of different shapes", argument = "shape")
      }
      shape <<- node$shape
    }
    if (is.null(node$columns)) {
      unrouted <<- union(unrouted, node$input)
      return(invisible())
    }
    name <- input_name(node)
    route <- list(name = name, kind = node$input, columns = node$columns, shape = node$shape)
    if (!is.null(routes[[name]]) && !identical(routes[[name]], route)) {
      ember_abort(sprintf("two inputs of the network are named '%s' but read different columns or kinds; give them different ids",
        name), argument = "id", expected = "unique input ids", got = name)
    }
    routes[[name]] <<- route
  })
  if (length(routes) && length(unrouted)) {
    ember_abort(sprintf("some inputs of the network name their columns and some do not (%s); give 'columns' to every input or to none",
      paste0("ember_input_", unrouted, "()", collapse = ", ")), argument = "columns",
      expected = "columns for every input", got = paste(unrouted, collapse = ", "))
  }
  list(kinds = found, image_shape = shape, routes = if (length(routes)) routes)
}

# Visits every node once, inputs before the nodes that read them; blocks are visited inside.
walk_graph <- function(output, visit, block_input = NULL, recurse = TRUE) {
  seen <- new.env(parent = emptyenv())
  go <- function(node) {
    if (!is.null(seen[[node$key]])) return(invisible())
    seen[[node$key]] <- TRUE
    if (identical(node$op, "input") && identical(node$input, "block") && !identical(node$key, block_input)) {
      ember_abort("a repeated block's body may only read the block's own input", argument = "body",
        expected = "nodes built from the block's input")
    }
    if (!is.null(block_input) && identical(node$op, "input") && !identical(node$input, "block")) {
      ember_abort("a repeated block's body may only read the block's own input, not a network input", argument = "body",
        expected = "nodes built from the block's input")
    }
    for (i in node$inputs) go(i)
    if (recurse && identical(node$op, "repeat")) walk_graph(node$body$output, visit, block_input = node$body$input$key)
    visit(node)
  }
  go(output)
  invisible()
}

# The network description (a list ready for to_json()) for data with `numeric` features, factor
# `cardinalities` and images of shape `image`; or, for inputs that name their columns, with the
# sizes of each input in `routes` (name -> features, cardinalities or shape; see route_sizes()).
network_spec <- function(net, numeric = 0L, cardinalities = integer(0), image = NULL, routes = NULL) {
  g <- graph_inputs(net)
  image <- image %||% g$image_shape
  inputs <- list()
  add_input <- function(kind, name = kind) {
    if (!is.null(inputs[[name]])) return(name)
    if (!is.null(routes)) {
      r <- routes[[name]]
      if (is.null(r)) ember_abort(sprintf("the data has no columns for the input '%s'", name), argument = "network")
      inputs[[name]] <<- switch(kind,
        num = list(name = name, kind = "numeric", features = as.integer(r$features)),
        categ = list(name = name, kind = "categorical", cardinalities = json_array(as.integer(r$cardinalities))),
        image = list(name = name, kind = "tensor", shape = json_array(as.integer(r$shape))))
      return(name)
    }
    inputs[[name]] <<- switch(kind,
      num = {
        if (numeric < 1L) ember_abort("the network reads numeric features (ember_input_num()) but the data has none",
          argument = "network", expected = "numeric features", got = "none")
        list(name = "num", kind = "numeric", features = as.integer(numeric))
      },
      categ = {
        if (!length(cardinalities)) ember_abort("the network reads factors (ember_input_categ()) but the data has none",
          argument = "network", expected = "factor features", got = "none")
        list(name = "categ", kind = "categorical", cardinalities = json_array(as.integer(cardinalities)))
      },
      image = {
        if (is.null(image)) ember_abort("ember_input_image() needs its 'shape' for tabular data: c(channels, height, width)",
          argument = "shape", expected = "c(channels, height, width)", got = "NULL")
        list(name = "image", kind = "tensor", shape = json_array(as.integer(image)))
      })
    name
  }
  spec <- graph_spec(net$params$output, add_input, numeric, cardinalities)
  c(list(format = "ember.network", version = 1L, inputs = unname(inputs)), spec)
}

# Nodes and output of one graph (the network, or a block's body with its input `x`).
graph_spec <- function(output, add_input, numeric = 0L, cardinalities = integer(0), block_input = NULL) {
  ids <- list()
  nodes <- list()
  # Ids given by the user are reserved first, so that generated ones (op_0, op_1 ...) avoid them.
  used <- character(0)
  input_names <- character(0)
  walk_graph(output, function(node) {
    if (identical(node$op, "input")) {
      if (!identical(node$input, "block")) input_names <<- union(input_names, input_name(node))
      return(invisible())
    }
    if (is.null(node$id)) return(invisible())
    if (node$id %in% c(used, input_names, "x", "num", "categ", "image")) {
      ember_abort(sprintf("the layer id '%s' is used twice in the network (or names an input)", node$id), argument = "id",
        expected = "unique ids", got = node$id)
    }
    used <<- c(used, node$id)
  }, block_input = block_input, recurse = FALSE)
  fresh_id <- function(node, stem) {
    if (!is.null(node$id)) return(node$id)
    k <- 0L
    while (paste0(stem, "_", k) %in% used) k <- k + 1L
    paste0(stem, "_", k)
  }
  emit <- function(node, id, op, inputs, params = list(), body = NULL) {
    entry <- list(id = id, op = op, inputs = json_array(unlist(inputs)))
    params <- params[!vapply(params, is.null, logical(1))]
    if (length(params)) entry$params <- params
    if (!is.null(body)) entry$body <- body
    nodes[[length(nodes) + 1L]] <<- entry
    used <<- c(used, id)
    ids[[node$key]] <<- id
  }
  walk_graph(output, function(node) {
    if (identical(node$op, "input")) {
      if (identical(node$input, "block")) {
        ids[[node$key]] <<- "x"
      } else if (identical(node$input, "tabular")) {
        parts <- character(0)
        if (numeric > 0L) parts <- add_input("num")
        if (length(cardinalities)) {
          onehot <- fresh_id(list(), "one_hot")
          emit(list(key = paste0(node$key, "/one_hot")), onehot, "one_hot", list(add_input("categ")))
          parts <- c(parts, onehot)
        }
        if (!length(parts)) ember_abort("the data has no features for ember_input_tabular()", argument = "x")
        if (length(parts) == 1L) {
          ids[[node$key]] <<- parts
        } else {
          emit(node, fresh_id(list(), "tabular"), "merge_cat", as.list(parts), list(dim = -1L))
        }
      } else {
        ids[[node$key]] <<- add_input(node$input, input_name(node))
      }
      return(invisible())
    }
    inputs <- lapply(node$inputs, function(i) ids[[i$key]])
    body <- NULL
    if (identical(node$op, "repeat")) {
      inner <- graph_spec(node$body$output, add_input, numeric, cardinalities, block_input = node$body$input$key)
      body <- c(list(inputs = list(list(name = "x", kind = "tensor", shape = json_array(integer(0))))), inner)
    }
    emit(node, fresh_id(node, node$op), node$op, inputs, node$params, body)
  }, block_input = block_input, recurse = FALSE)
  out <- ids[[output$key]]
  if (!is.null(block_input) && identical(out, "x")) {
    ember_abort("a repeated block's body must add at least one layer", argument = "body", expected = "a layer")
  }
  list(nodes = nodes, output = out)
}

#' @export
print.ember_network <- function(x, ...) {
  cat("<ember_network>\n")
  print_graph(x$params$output, indent = "  ")
  invisible(x)
}

print_graph <- function(output, indent, block_input = NULL) {
  labels <- list()
  counter <- list()
  walk_graph(output, function(node) {
    if (identical(node$op, "input")) {
      labels[[node$key]] <<- if (identical(node$input, "block")) "x" else
        paste0(input_name(node), if (!is.null(node$shape)) sprintf("[%s]", paste(node$shape, collapse = ", ")) else "",
          if (!is.null(node$columns)) sprintf(" (%d column%s)", length(node$columns), if (length(node$columns) == 1L) "" else "s") else "")
      return(invisible())
    }
    k <- counter[[node$op]] %||% 0L
    counter[[node$op]] <<- k + 1L
    label <- node$id %||% paste0(node$op, "_", k)
    labels[[node$key]] <<- label
    params <- node$params[!vapply(node$params, is.null, logical(1))]
    if (identical(node$op, "fn")) params <- list(fn = attr(params$expr, "text") %||% "<expression>")
    args <- if (length(params)) paste0("; ", paste(names(params), vapply(params, function(v) paste(unlist(v), collapse = "x"), ""),
      sep = " = ", collapse = ", ")) else ""
    cat(sprintf("%s%s <- %s(%s%s)\n", indent, label, node$op,
      paste(vapply(node$inputs, function(i) labels[[i$key]], ""), collapse = ", "), args))
    if (identical(node$op, "repeat")) print_graph(node$body$output, paste0(indent, "    "), node$body$input$key)
  }, block_input = block_input, recurse = FALSE)
}
