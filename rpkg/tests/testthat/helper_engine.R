# Expects a classed Ember error: `class` (e.g. "ember_error_invalid_argument"), a message matching
# `pattern`, and the given fields (argument, index, ...). Returns the condition.
expect_ember_error <- function(expr, class, pattern = NULL, ...) {
  cond <- tryCatch({
    expr
    NULL
  }, error = function(e) e)
  testthat::expect_false(is.null(cond), label = "an error was signalled")
  if (is.null(cond)) return(invisible(NULL))
  testthat::expect_s3_class(cond, class)
  testthat::expect_s3_class(cond, "ember_error")
  if (!is.null(pattern)) testthat::expect_match(conditionMessage(cond), pattern)
  fields <- list(...)
  for (f in names(fields)) testthat::expect_identical(cond[[f]], fields[[f]], label = sprintf("condition field '%s'", f))
  invisible(cond)
}

# A data frame with every column type.
all_types_data <- function(n = 120) {
  data.frame(
    num = rnorm(n), int = sample(1:10, n, TRUE), lgl = sample(c(TRUE, FALSE), n, TRUE),
    fct = factor(sample(c("x", "y", "z"), n, TRUE)),
    ord = factor(sample(c("lo", "mid", "hi"), n, TRUE), levels = c("lo", "mid", "hi"), ordered = TRUE)
  )
}

fixture <- function(name) testthat::test_path("fixtures", name)

encoding_inputs_for_test <- function(model) mlr3ember:::encoding_inputs(model$encoding)
