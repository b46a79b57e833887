# Ctrl-C is honoured between training slices, even within a long epoch: a child R process fitting
# a slow model gets SIGINT and returns promptly with the model trained so far.
test_that("SIGINT stops a long fit promptly and returns a usable model", {
  skip_on_os("windows")
  skip_on_cran()
  dir <- tempfile("ember-interrupt-")
  dir.create(dir)
  on.exit(unlink(dir, recursive = TRUE), add = TRUE)
  script <- file.path(dir, "fit.R")
  writeLines(c(
    sprintf("dir <- %s", deparse(dir)),
    "library(mlr3ember)",
    "set.seed(1)",
    "x <- matrix(rnorm(20000 * 64), 20000)",
    "y <- factor(sample(c('a', 'b', 'c'), 20000, TRUE))",
    "writeLines(as.character(Sys.getpid()), file.path(dir, 'pid'))",
    "started <- Sys.time()",
    "res <- withCallingHandlers(",
    "  ember_fit(x, y, ember_mlp(neurons = c(512, 512)), epochs = 1000, batch_size = 64, progress = FALSE),",
    "  ember_warning_interrupted = function(w) { writeLines(class(w)[1], file.path(dir, 'warning')); invokeRestart('muffleWarning') })",
    "p <- predict(res, x[1:5, ], type = 'prob')",
    "saveRDS(list(epochs = nrow(res$history), finite = all(is.finite(p)), rows = nrow(p),",
    "  handles = ember_live_handles(), seconds = as.numeric(difftime(Sys.time(), started, units = 'secs'))),",
    "  file.path(dir, 'result.rds'))"
  ), script)
  rscript <- file.path(R.home("bin"), "Rscript")
  system2(rscript, c("--vanilla", shQuote(script)), wait = FALSE, stdout = file.path(dir, "out.txt"),
    stderr = file.path(dir, "err.txt"), env = paste0("R_LIBS=", paste(.libPaths(), collapse = ":")))
  wait_for <- function(path, seconds) {
    deadline <- Sys.time() + seconds
    while (!file.exists(path) && Sys.time() < deadline) Sys.sleep(0.1)
    file.exists(path)
  }
  expect_true(wait_for(file.path(dir, "pid"), 60), info = paste(readLines(file.path(dir, "err.txt")), collapse = "\n"))
  pid <- as.integer(readLines(file.path(dir, "pid")))
  Sys.sleep(2)  # training is under way: the first epoch alone takes several seconds
  sent <- Sys.time()
  tools::pskill(pid, tools::SIGINT)
  expect_true(wait_for(file.path(dir, "result.rds"), 30), info = paste(readLines(file.path(dir, "err.txt")), collapse = "\n"))
  returned <- as.numeric(difftime(Sys.time(), sent, units = "secs"))
  res <- readRDS(file.path(dir, "result.rds"))
  expect_lt(returned, 10)
  expect_lt(res$epochs, 1000L)
  expect_true(res$finite)
  expect_identical(res$rows, 5L)
  expect_identical(readLines(file.path(dir, "warning")), "ember_warning_interrupted")
  # The interrupted fit released its trainer and datasets; only the returned model lives.
  expect_identical(unname(res$handles[c("models", "datasets", "trainers", "bytes")]), c(1, 0, 0, 0))
})
