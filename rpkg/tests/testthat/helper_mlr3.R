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
  invisible(env)
}
