# mlr3 is a suggested package: its tests skip without it, except under `make check-mlr3`
# (EMBER_REQUIRE_MLR3=true), where a missing mlr3 is a failure.
skip_if_no_mlr3 <- function() {
  if (identical(Sys.getenv("EMBER_REQUIRE_MLR3"), "true")) {
    if (!requireNamespace("mlr3", quietly = TRUE)) stop("EMBER_REQUIRE_MLR3 is set but mlr3 is not installed")
    return(invisible(TRUE))
  }
  skip_if_not_installed("mlr3")
  skip_if_not_installed("paradox")
}

# Sources mlr3's own conformance helpers (expect_learner, run_autotest), as mlr3torch does,
# leaving out helper_debugging.R, and returns the environment holding them.
# NOTE: they must live in an environment under the global one: data.table's `[` only behaves as
# data.table inside code it considers data.table-aware, which this package's namespace is not.
mlr3_helpers <- function() {
  # The helpers refer to the exports of mlr3, testthat and checkmate unqualified (TaskClassif,
  # expect_true, test_class ...), as mlr3's own test setup attaches them.
  for (pkg in c("mlr3", "testthat", "checkmate")) suppressPackageStartupMessages(library(pkg, character.only = TRUE))
  env <- new.env(parent = globalenv())
  dir <- system.file("testthat", package = "mlr3")
  files <- list.files(dir, pattern = "^helper.*\\.R$", full.names = TRUE)
  files <- files[basename(files) != "helper_debugging.R"]
  for (f in files) sys.source(f, envir = env, chdir = TRUE)
  # mlr3's task generator knows mlr3's own feature types; a tensor column is generated here (as
  # mlr3torch extends it for its lazy tensors): elements of shape [2, 3] from a byte array.
  generate_data <- env$generate_data
  env$generate_data <- function(learner, N) {
    plain <- learner$clone()
    plain$feature_types <- setdiff(learner$feature_types, "ember_tensor")
    data <- generate_data(plain, N)
    if ("ember_tensor" %in% learner$feature_types) {
      data$ember_tensor <- as_ember_tensor(array(as.raw(sample(0:255, N * 6L, TRUE)), c(N, 2L, 3L)))
    }
    data
  }
  invisible(env)
}
