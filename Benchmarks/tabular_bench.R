# Defaults that generalise: every Ember tabular learner at its defaults (only the training budget
# set: epochs = 200 with early stopping, batch_size = 32, validate = 0.2, patience = 10) against ranger and a
# regularised linear model (cv_glmnet), 5-fold cross-validation on seven offline tasks: mlr3's
# sonar, german_credit, spam, pima (missing values imputed), penguins (imputed), mtcars, and
# mlbench's BostonHousing. Classification error (ce) for classification, RMSE for regression;
# the worst learner of each task is marked. Needs mlr3, mlr3learners, mlr3pipelines, ranger,
# glmnet and mlbench (Debian: r-cran-ranger r-cran-glmnet r-cran-mlbench r-cran-palmerpenguins):
#
#   R_LIBS=.rlib:<library with mlr3> Rscript Benchmarks/tabular_bench.R [--folds 5] [--tasks sonar,mtcars] [--out file.md]
#   make bench-tabular MLR3_LIB=<library with mlr3>

suppressPackageStartupMessages({
  library(mlr3ember)
  library(mlr3)
  library(mlr3learners)
  library(mlr3pipelines)
})
lgr::get_logger("mlr3")$set_threshold("warn")
lgr::get_logger("bbotk")$set_threshold("warn")
args <- commandArgs(trailingOnly = TRUE)
arg <- function(name, default) if (length(i <- which(args == name))) args[i + 1L] else default
folds <- as.integer(arg("--folds", "5"))
out_file <- arg("--out", "Benchmarks/results-tabular.md")

info <- ember_info()
cpu <- sub(".*:\\s*", "", grep("^model name", readLines("/proc/cpuinfo"), value = TRUE)[1L])
started <- Sys.time()

boston <- mlbench_boston <- local({
  data("BostonHousing", package = "mlbench", envir = environment())
  as_task_regr(BostonHousing, target = "medv", id = "boston_housing")
})
tasks <- list(sonar = tsk("sonar"), german_credit = tsk("german_credit"), spam = tsk("spam"), pima = tsk("pima"),
  penguins = tsk("penguins"), mtcars = tsk("mtcars"), boston_housing = boston)
chosen <- arg("--tasks", NULL)
if (!is.null(chosen)) tasks <- tasks[strsplit(chosen, ",")[[1L]]]

# Missing values (pima, penguins) are imputed for every learner alike: median / most frequent.
impute <- function(learner, task) {
  if (!any(task$missings() > 0)) return(learner)
  wrapped <- as_learner(po("imputemedian") %>>% po("imputemode") %>>% learner)
  wrapped$id <- learner$id
  wrapped
}
# The linear model needs numbers: factors one-hot encoded.
linear <- function(type) {
  l <- lrn(paste0(type, ".cv_glmnet"))
  if (type == "classif") l$predict_type <- "response"
  wrapped <- as_learner(po("encode", method = "one-hot") %>>% l)
  wrapped$id <- paste0(type, ".cv_glmnet")
  wrapped
}
ember_ids <- c("ember_mlp", "ember_tab_resnet", "ember_ft_transformer", "ember_tabm")
ember_ids <- ember_ids[paste0("classif.", ember_ids) %in% mlr_learners$keys()]
learners_for <- function(task) {
  type <- task$task_type
  ember <- lapply(ember_ids, function(id) {
    l <- lrn(paste0(type, ".", id), epochs = 200, batch_size = 32, patience = 10, seed = 1)
    l$validate <- 0.2
    l
  })
  c(ember, list(lrn(paste0(type, ".ranger"), num.threads = 1), linear(type)))
}

rows <- list()
for (name in names(tasks)) {
  task <- tasks[[name]]
  set.seed(1)
  resampling <- rsmp("cv", folds = folds)$instantiate(task)
  measure <- if (task$task_type == "classif") msr("classif.ce") else msr("regr.rmse")
  for (learner in learners_for(task)) {
    t0 <- proc.time()[["elapsed"]]
    set.seed(2)
    rr <- resample(task, impute(learner, task), resampling)
    rows[[length(rows) + 1L]] <- data.frame(task = name, type = task$task_type, learner = sub("^(classif|regr)\\.", "", learner$id),
      score = rr$aggregate(measure), seconds = proc.time()[["elapsed"]] - t0)
    cat(sprintf("%-15s %-22s %s %.4f  (%.0f s)\n", name, learner$id, measure$id, rr$aggregate(measure),
      proc.time()[["elapsed"]] - t0))
  }
}
results <- do.call(rbind, rows)

learner_names <- unique(results$learner)
table_lines <- c(
  sprintf("| task (measure) | %s |", paste(learner_names, collapse = " | ")),
  sprintf("|---|%s", paste(rep("---|", length(learner_names)), collapse = "")))
worst_ember <- character(0)
for (name in unique(results$task)) {
  r <- results[results$task == name, ]
  # The worst: the highest score; an Ember learner counts as the worst only when no baseline ties it.
  worst <- r$learner[r$score == max(r$score)]
  if (all(startsWith(worst, "ember_"))) worst_ember <- c(worst_ember, sprintf("%s (%s)", name, paste(worst, collapse = ", ")))
  cells <- vapply(learner_names, function(l) {
    v <- r$score[r$learner == l]
    if (!length(v)) return("–")
    s <- formatC(v, digits = 3, format = "fg", flag = "#")
    if (l %in% worst) sprintf("**%s**", s) else s
  }, "")
  table_lines <- c(table_lines, sprintf("| %s (%s) | %s |", name, if (r$type[1L] == "classif") "ce" else "rmse",
    paste(cells, collapse = " | ")))
}

header <- c("# Tabular defaults (`make bench-tabular`)", "",
  sprintf("%d-fold cross-validation (one instantiation per task, seed 1), %s. Ember learners at their defaults with the training budget of an early-stopped run: `epochs = 200, batch_size = 32, patience = 10`, `$validate = 0.2` (early stopping on the validation loss). Baselines: `ranger` (500 trees) and `cv_glmnet` (lasso, lambda by internal CV; factors one-hot). pima and penguins: missing values imputed (median, mode) for every learner. Classification error (ce) or RMSE, lower is better; **bold**: the worst learner of the task.",
    folds, format(started, "%Y-%m-%d %H:%M")), "",
  sprintf("_CPU %s; Ember BLAS core %s; mlr3 %s, mlr3learners %s, ranger %s, glmnet %s_", cpu, info$blas_core,
    packageVersion("mlr3"), packageVersion("mlr3learners"), packageVersion("ranger"), packageVersion("glmnet")), "")
footer <- c("", if (length(worst_ember)) sprintf("An Ember learner is the worst on: %s.", paste(worst_ember, collapse = ", ")) else
  "No Ember learner is the worst on any task.", "",
  sprintf("Seconds per learner (all folds): %s.", paste(sprintf("%s %.0f", results$learner, results$seconds), collapse = ", ")),
  sprintf("(%.0f s in all)", as.numeric(difftime(Sys.time(), started, units = "secs"))))
writeLines(c(header, table_lines, footer), out_file)
cat(c("", table_lines, footer), sep = "\n")
