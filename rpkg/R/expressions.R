#' Custom layers and losses written as R functions
#'
#' `ember_layer_fn()` and `ember_loss_fn()` turn an R function of graph values into an engine
#' expression: the function is called once, on symbolic values, and the arithmetic and math it
#' applies (`+ - * / ^`, `abs`, `exp`, `log`, `sqrt`, `log1p`, `sin`, `cos`, `tanh`, `pmax`,
#' `pmin`, `sum`, `mean`, indexing a dimension with `x[, j]`, and [ember_sigmoid()],
#' [ember_relu()], [ember_softmax()], [ember_log_softmax()], [ember_sum()], [ember_mean()],
#' [ember_select()]) become ops of the engine's autograd, which differentiates them. The
#' expression is stored as data: a custom layer in the network description (and so in every model
#' file), a custom loss in the training configuration. Nothing of R runs during training.
#'
#' @section Layers:
#' `ember_layer_fn(x, fn)` adds a layer to a network built with [ember_network()]: `fn` receives
#' one value per input node (a batch: dimension 0 is the rows) and returns the layer's output,
#' which must keep the batch dimension; reductions, softmax and indexing in a layer take a
#' `dim` of 1 or more (per sample). With several input nodes (`x = list(a, b)`), `fn` takes as
#' many arguments, so that custom merges are layers too. `ember_layer_fn(fn)` (no node) returns
#' a function `function(x, id = NULL)` that adds the layer, to reuse it. In a graph of PipeOps the
#' same is `po("ember_fn", fn = ...)`.
#'
#' @section Losses:
#' `ember_loss_fn(fn)` makes a loss for [ember_fit()] (`loss =`), the learners (`loss.fn`) and
#' `po("ember_loss", fn = ...)`: `fn(pred, target)` returns one number per batch (reduce with
#' `mean()` or `sum()`). `pred` is the network's output, `[rows, outputs]`: values for regression,
#' logits for classification (one logit for two classes, the first class positive); `target` has
#' the same shape: values (standardised when `standardize = TRUE`), 0/1 for two classes, one-hot
#' rows for more classes.
#'
#' @section Dimensions:
#' Dimensions count the rows as 0, as in PyTorch and [ember_flatten()]: in a `[rows, features]`
#' value, `dim = 1` is the features (`-1` is always the last). `x[, j]` selects column `j`
#' (1-based, as in R) and drops that dimension.
#'
#' @param x (`ember_node`, a list of them, or a function)\cr The node(s) the layer reads; or the
#'   layer's function (then a layer maker is returned).
#' @param fn (`function`)\cr The layer: a function of one value per input node. The loss:
#'   `function(pred, target)`.
#' @param id (`character(1)` or `NULL`)\cr The layer's id.
#' @return `ember_layer_fn()`: an `ember_node` (or a function making one). `ember_loss_fn()`: an
#'   object of class `ember_loss_fn`.
#' @seealso [ember_network()], [ember_fit()]
#' @export
#' @examples
#' # Swish / SiLU as a custom layer:
#' swish <- ember_layer_fn(function(x) x * ember_sigmoid(x))
#' net <- ember_input_num() |> ember_linear(16) |> swish() |> ember_head() |> ember_network()
#' net
#' # A loss between L1 and L2:
#' loss <- ember_loss_fn(function(pred, target) mean(abs(pred - target)^1.5))
#' set.seed(1)
#' d <- data.frame(a = rnorm(100), b = rnorm(100))
#' model <- ember_fit(d, d$a - 2 * d$b, net, loss = loss, epochs = 20, lr = 0.01)
#' tail(model$history, 2)
ember_layer_fn <- function(x, fn, id = NULL) {
  if (is.function(x) && missing(fn)) {
    maker <- x
    expression_of(maker, "fn")  # fails early on a function that cannot be traced
    return(function(x, id = NULL) ember_layer_fn(x, maker, id = id))
  }
  inputs <- if (inherits(x, "ember_node")) list(x) else x
  if (!is.list(inputs) || !length(inputs)) check_node(x)
  for (i in seq_along(inputs)) check_node(inputs[[i]], "x")
  if (!is.function(fn)) {
    ember_abort("'fn' must be a function of the layer's inputs", argument = "fn", expected = "a function",
      got = class(fn)[1L])
  }
  expr <- expression_of(fn, "fn", arity = length(inputs))
  new_node("fn", unname(inputs), list(expr = expr), id = id)
}

#' @rdname ember_layer_fn
#' @export
ember_loss_fn <- function(fn) {
  if (!is.function(fn)) {
    ember_abort("'fn' must be a function(pred, target)", argument = "fn", expected = "a function", got = class(fn)[1L])
  }
  expr <- expression_of(fn, "fn", arity = 2L)
  structure(list(expr = expr, text = paste(deparse(fn), collapse = " ")), class = "ember_loss_fn")
}

#' @export
print.ember_loss_fn <- function(x, ...) {
  cat("<ember_loss_fn>", x$text, "\n")
  invisible(x)
}

#' Operations for custom layers and losses
#'
#' Functions of the values that [ember_layer_fn()] and [ember_loss_fn()] trace, beyond R's
#' arithmetic and math: they become engine ops. Dimensions count the rows as 0 (see
#' [ember_layer_fn()]).
#'
#' @param x A traced value (an argument of the function given to `ember_layer_fn()` or
#'   `ember_loss_fn()`, or a value computed from one).
#' @param dim (`integer(1)`)\cr The dimension: 0 is the rows, -1 the last.
#' @param index (`integer(1)`)\cr 1-based position along `dim`.
#' @return A traced value.
#' @name ember_expression_ops
#' @examples
#' # A softmax-weighted sum over the features of each row, as a layer:
#' net <- ember_input_num() |> ember_linear(4) |>
#'   ember_layer_fn(function(x) ember_sum(x * ember_softmax(x, dim = 1), dim = 1)) |>
#'   ember_head() |> ember_network()
NULL

#' @rdname ember_expression_ops
#' @export
ember_sigmoid <- function(x) expr_op("sigmoid", list(x))

#' @rdname ember_expression_ops
#' @export
ember_relu <- function(x) expr_op("relu", list(x))

#' @rdname ember_expression_ops
#' @export
ember_softmax <- function(x, dim = -1L) expr_op("softmax", list(x), dim = check_expr_int(dim, "dim"))

#' @rdname ember_expression_ops
#' @export
ember_log_softmax <- function(x, dim = -1L) expr_op("log_softmax", list(x), dim = check_expr_int(dim, "dim"))

#' @rdname ember_expression_ops
#' @export
ember_sum <- function(x, dim = NULL) expr_op("sum", list(x), dim = if (!is.null(dim)) check_expr_int(dim, "dim"))

#' @rdname ember_expression_ops
#' @export
ember_mean <- function(x, dim = NULL) expr_op("mean", list(x), dim = if (!is.null(dim)) check_expr_int(dim, "dim"))

#' @rdname ember_expression_ops
#' @export
ember_select <- function(x, dim, index) {
  index <- check_expr_int(index, "index")
  if (index < 1L) ember_abort("'index' is 1-based and must be >= 1", argument = "index", expected = ">= 1", got = as.character(index))
  expr_op("select", list(x), dim = check_expr_int(dim, "dim"), index = index - 1L)
}

check_expr_int <- function(x, argument) {
  if (!checkmate::test_int(x)) {
    ember_abort(sprintf("'%s' must be an integer, got %s", argument, deparse_short(x)), argument = argument,
      expected = "an integer", got = deparse_short(x))
  }
  as.integer(x)
}

# A traced value: the expression (a list ready for to_json()) that computes it.
new_expr <- function(json) structure(list(json = json), class = "ember_expr")

as_expr_json <- function(x) {
  if (inherits(x, "ember_expr")) return(x$json)
  if (is.numeric(x) && length(x) == 1L && is.finite(x)) return(list(const = as.double(x)))
  if (is.logical(x) && length(x) == 1L && !is.na(x)) return(list(const = as.double(x)))
  ember_abort(sprintf("a custom layer or loss can combine its values with single finite numbers only, got %s",
    deparse_short(x)), argument = "fn", expected = "a traced value or one number", got = deparse_short(x))
}

expr_op <- function(op, args, dim = NULL, index = NULL) {
  if (!any(vapply(args, inherits, logical(1), "ember_expr"))) {
    ember_abort(sprintf("ember_%s() applies to the values of a custom layer or loss (see ember_layer_fn())", op),
      argument = "x", expected = "a traced value", got = class(args[[1L]])[1L])
  }
  new_expr(list(op = op, args = json_array(lapply(args, as_expr_json)), dim = dim, index = index))
}

#' @export
Ops.ember_expr <- function(e1, e2) {
  if (missing(e2)) {
    return(switch(.Generic, "-" = expr_op("neg", list(e1)), "+" = e1,
      ember_abort(sprintf("'%s' is not available in a custom layer or loss", .Generic), argument = "fn")))
  }
  op <- switch(.Generic, "+" = "add", "-" = "sub", "*" = "mul", "/" = "div", "^" = "pow", NULL)
  if (is.null(op)) {
    ember_abort(sprintf("'%s' is not available in a custom layer or loss (it has no gradient); use pmax(), pmin() or ember_relu()",
      .Generic), argument = "fn", expected = "+ - * / ^", got = .Generic)
  }
  expr_op(op, list(e1, e2))
}

#' @export
Math.ember_expr <- function(x, ...) {
  op <- switch(.Generic, abs = "abs", exp = "exp", sqrt = "sqrt", log1p = "log1p", sin = "sin", cos = "cos",
    tanh = "tanh", log = "log", NULL)
  if (is.null(op)) {
    ember_abort(sprintf("'%s()' is not available in a custom layer or loss", .Generic), argument = "fn",
      expected = "abs, exp, log, sqrt, log1p, sin, cos, tanh", got = .Generic)
  }
  if (op == "log" && length(list(...))) {
    ember_abort("log() in a custom layer or loss is the natural logarithm; divide by log(base) for another base",
      argument = "fn", expected = "log(x)", got = "log(x, base)")
  }
  expr_op(op, list(x))
}

#' @export
Summary.ember_expr <- function(..., na.rm = FALSE) {
  args <- list(...)
  if (.Generic != "sum" || length(args) != 1L) {
    ember_abort(sprintf("'%s()' of traced values is not available; use sum(x), pmax(x, y) or pmin(x, y)", .Generic),
      argument = "fn", expected = "sum(x)", got = .Generic)
  }
  expr_op("sum", args)
}

#' @export
mean.ember_expr <- function(x, ...) expr_op("mean", list(x))

#' @export
`[.ember_expr` <- function(x, ...) {
  idx <- as.list(substitute(list(...)))[-1L]
  given <- which(!vapply(idx, function(e) identical(e, quote(expr = )), logical(1)))
  if (length(given) != 1L) {
    ember_abort("indexing a traced value selects one position of one dimension, e.g. x[, 2]", argument = "fn",
      expected = "x[, j]", got = sprintf("%d indices", length(given)))
  }
  value <- eval(idx[[given]], parent.frame())
  ember_select(x, dim = given - 1L, index = value)
}

#' @export
print.ember_expr <- function(x, ...) {
  cat("<ember_expr>", to_json(x$json), "\n")
  invisible(x)
}

# pmax and pmin are not generic: inside a traced function they are these.
trace_masks <- list(
  pmax = function(...) {
    args <- list(...)
    if (!any(vapply(args, inherits, logical(1), "ember_expr"))) return(base::pmax(...))
    if (length(args) != 2L) ember_abort("pmax() of traced values takes two arguments", argument = "fn")
    expr_op("maximum", args)
  },
  pmin = function(...) {
    args <- list(...)
    if (!any(vapply(args, inherits, logical(1), "ember_expr"))) return(base::pmin(...))
    if (length(args) != 2L) ember_abort("pmin() of traced values takes two arguments", argument = "fn")
    expr_op("minimum", args)
  }
)

# The expression a function computes from `arity` traced arguments.
expression_of <- function(fn, argument, arity = NULL) {
  formals_n <- length(formals(fn))
  if (is.null(arity)) arity <- max(1L, formals_n)
  if (formals_n < arity && !("..." %in% names(formals(fn)))) {
    ember_abort(sprintf("'%s' must take %d argument(s), it takes %d", argument, arity, formals_n), argument = argument,
      expected = sprintf("%d arguments", arity), got = as.character(formals_n))
  }
  masked <- fn
  mask <- list2env(trace_masks, parent = environment(fn) %||% globalenv())
  environment(masked) <- mask
  args <- lapply(seq_len(arity) - 1L, function(i) new_expr(list(arg = i)))
  # NOTE: one handler: tryCatch nests several, so an error re-raised from the first would reach the second.
  out <- tryCatch(do.call(masked, args), error = function(e) {
    if (inherits(e, "ember_error")) stop(e)
    ember_abort(sprintf("'%s' could not be traced: %s", argument, conditionMessage(e)), argument = argument,
      expected = "arithmetic and math on its arguments")
  })
  if (!inherits(out, "ember_expr")) {
    ember_abort(sprintf("'%s' must return a value computed from its arguments, got %s", argument, class(out)[1L]),
      argument = argument, expected = "a traced value", got = class(out)[1L])
  }
  structure(out$json, text = paste(deparse(fn), collapse = " "))
}
