# Issue 16, soak: fit / predict / marshal / unmarshal / clone cycles in one R process keep the
# resident memory flat and leave no engine object alive. EMBER_SOAK_CYCLES cycles (100 here; `make
# soak` runs 1000) and EMBER_SOAK_SLOPE_KIB, the bound on the RSS slope over the second half (KiB
# per cycle, least squares); the figures are written to stderr.

rss_kib <- function() {
  line <- grep("^VmRSS:", readLines("/proc/self/status"), value = TRUE)
  as.numeric(gsub("[^0-9]", "", line))
}

# The least-squares slope of y over its index, on the second half.
second_half_slope <- function(y) {
  i <- seq(length(y) %/% 2L + 1L, length(y))
  unname(stats::coef(stats::lm(y[i] ~ i))[2L])
}

# Reports the figures (on stderr) and expects no handle left and an RSS slope below the bound.
expect_flat_and_freed <- function(what, rss, handles, s) {
  slope <- second_half_slope(rss)
  cat(sprintf("R soak (%s): %d cycles, RSS %.0f -> %.0f KiB, slope over the second half %.3f KiB/cycle, live handles %s\n",
    what, s$cycles, rss[1L], rss[s$cycles], slope, paste(handles, collapse = " ")), file = stderr())
  expect_identical(unname(handles), c(0, 0, 0, 0))
  expect_lt(slope, s$bound)
}

soak_settings <- function() {
  list(cycles = max(4L, as.integer(Sys.getenv("EMBER_SOAK_CYCLES", "100"))),
    bound = as.numeric(Sys.getenv("EMBER_SOAK_SLOPE_KIB", "16")))
}

test_that("engine API cycles keep RSS flat and free every handle", {
  skip_on_cran()
  skip_if_not(file.exists("/proc/self/status"))
  s <- soak_settings()
  gc()
  before <- ember_live_handles()
  rss <- numeric(s$cycles)
  for (i in seq_len(s$cycles)) {
    model <- ember_fit(iris[, 1:4], iris$Species, ember_mlp(neurons = c(32, 32)), epochs = 2L, batch_size = 16L,
      lr = 0.01, seed = i, progress = FALSE)
    p <- predict(model, iris, type = "prob")
    copy <- ember_unserialize(ember_serialize(model))
    back <- mlr3ember:::unmarshal_model.ember_model_marshaled(mlr3ember:::marshal_model.ember_model(copy))
    if (!identical(predict(back, iris, type = "prob"), p)) stop("cycle ", i, ": the unmarshaled model predicts differently")
    rm(model, copy, back, p)
    gc()
    rss[i] <- rss_kib()
  }
  expect_flat_and_freed("engine API", rss, ember_live_handles() - before, s)
})

test_that("learner train / predict / marshal / unmarshal / clone cycles keep RSS flat and free every handle", {
  skip_on_cran()
  skip_if_not(file.exists("/proc/self/status"))
  skip_if_no_mlr3()
  s <- soak_settings()
  task <- mlr3::tsk("iris")
  gc()
  before <- ember_live_handles()
  rss <- numeric(s$cycles)
  for (i in seq_len(s$cycles)) {
    learner <- mlr3::lrn("classif.ember_mlp", epochs = 2L, batch_size = 16L, opt.lr = 0.01, neurons = c(32L, 32L), seed = i,
      predict_type = "prob")
    learner$train(task)
    p <- learner$predict(task)$prob
    learner$marshal()
    learner$unmarshal()
    clone <- learner$clone(deep = TRUE)
    if (!identical(clone$predict(task)$prob, p)) stop("cycle ", i, ": the clone predicts differently")
    rm(learner, clone, p)
    gc()
    rss[i] <- rss_kib()
  }
  expect_flat_and_freed("mlr3 learner", rss, ember_live_handles() - before, s)
})
