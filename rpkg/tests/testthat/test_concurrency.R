# Issue 16: two R processes training at once give the results of training alone (the engine
# keeps no state between processes, and each process's engine threads are its own).

test_that("two R processes fitting at once give the model of fitting alone", {
  skip_on_os("windows")
  skip_on_cran()
  dir <- tempfile("ember-concurrent-")
  dir.create(dir)
  on.exit(unlink(dir, recursive = TRUE), add = TRUE)
  fit_code <- c(
    "suppressPackageStartupMessages(library(mlr3ember))",
    "set.seed(2)",
    "x <- matrix(rnorm(4000 * 16), 4000)",
    "y <- factor(ifelse(x[, 1] + x[, 2]^2 > 1, 'a', 'b'))",
    "model <- ember_fit(x, y, ember_mlp(neurons = c(64, 64), p = 0.1), epochs = 8, batch_size = 32, num_threads = 2,",
    "  validate = 0.2, measures = 'accuracy', seed = 11, progress = FALSE)",
    "result <- list(bytes = ember_serialize(model)$bytes, history = model$history, prob = predict(model, x, type = 'prob'))"
  )
  script <- file.path(dir, "fit.R")
  writeLines(c(fit_code, "out <- commandArgs(TRUE)[1]", "saveRDS(result, paste0(out, '.tmp'))",
    "invisible(file.rename(paste0(out, '.tmp'), out))"), script)
  rscript <- file.path(R.home("bin"), "Rscript")
  outputs <- file.path(dir, c("one.rds", "two.rds"))
  for (out in outputs) {
    system2(rscript, c("--vanilla", shQuote(script), shQuote(out)), wait = FALSE, stdout = FALSE,
      stderr = file.path(dir, paste0(basename(out), ".err")), env = paste0("R_LIBS=", paste(.libPaths(), collapse = ":")))
  }
  # Meanwhile, the same fit alone in this process (before the children finish or after: the same).
  env <- new.env()
  eval(parse(text = fit_code), envir = env)
  deadline <- Sys.time() + 300
  while (!all(file.exists(outputs)) && Sys.time() < deadline) Sys.sleep(0.1)
  expect_true(all(file.exists(outputs)), info = paste(unlist(lapply(file.path(dir, "one.rds.err"), readLines)), collapse = "\n"))
  for (out in outputs) {
    res <- readRDS(out)
    expect_identical(res$bytes, env$result$bytes)
    expect_identical(res$prob, env$result$prob)
    expect_equal(res$history, env$result$history)
  }
})
