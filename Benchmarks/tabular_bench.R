# Defaults that generalise: every Ember tabular learner at its defaults (only the training budget
# set: epochs = 200 with early stopping, batch_size = 32, validate = 0.2, patience = 10) against ranger and a
# regularised linear model (cv_glmnet), 5-fold cross-validation on seven offline tasks: mlr3's
# sonar, german_credit, spam, pima (missing values imputed), penguins (imputed), mtcars, and
# mlbench's BostonHousing. Classification error (ce) for classification, RMSE for regression;
# the worst learner of each task is marked. Needs mlr3, mlr3learners, mlr3pipelines, ranger,
# glmnet and mlbench (Debian: r-cran-ranger r-cran-glmnet r-cran-mlbench r-cran-palmerpenguins):
#
#   R_LIBS=.rlib:<library with mlr3> Rscript Benchmarks/tabular_bench.R [--folds 5] [--tasks sonar,mtcars]
#       [--learners ember_tabm,ranger] [--out file.md]
#   make bench-tabular MLR3_LIB=<library with mlr3>
#
# Every score is also kept in a CSV beside the table (file.md -> file.csv): a run of some tasks or
# learners replaces their rows there and the table is written from all rows, so that a slow cell
# (the FT-Transformer on spam) can be rerun on its own. The table says when its rows come from
# more than one run; `--learners none` runs nothing and rewrites the table from the CSV.

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

boston <- local({
  data("BostonHousing", package = "mlbench", envir = environment())
  as_task_regr(BostonHousing, target = "medv", id = "boston_housing")
})
tasks <- list(sonar = tsk("sonar"), german_credit = tsk("german_credit"), spam = tsk("spam"), pima = tsk("pima"),
  penguins = tsk("penguins"), mtcars = tsk("mtcars"), boston_housing = boston)
task_order <- names(tasks)
chosen <- arg("--tasks", NULL)
if (!is.null(chosen)) tasks <- tasks[strsplit(chosen, ",")[[1L]]]
chosen_learners <- arg("--learners", NULL)
chosen_learners <- if (!is.null(chosen_learners)) strsplit(chosen_learners, ",")[[1L]]

# Missing values (pima, penguins) are imputed for every learner alike: median / most frequent.
impute <- function(learner, task) {
  if (!any(task$missings() > 0)) return(learner)
  validate <- if ("validation" %in% learner$properties) learner$validate
  if (!is.null(validate)) learner$validate <- NULL
  wrapped <- as_learner(po("imputemedian") %>>% po("imputemode") %>>% learner)
  # A graph learner takes its validation data through set_validate() (mlr3pipelines' rule).
  if (!is.null(validate)) set_validate(wrapped, validate = validate)
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
  all <- c(ember, list(lrn(paste0(type, ".ranger"), num.threads = 1), linear(type)))
  if (is.null(chosen_learners)) return(all)
  Filter(function(l) sub("^(classif|regr)\\.", "", l$id) %in% chosen_learners, all)
}

rows <- list()
for (name in names(tasks)) {
  task <- tasks[[name]]
  set.seed(1)
  resampling <- rsmp("cv", folds = folds)$instantiate(task)
  # Classification error pooled over the folds (every row counted once: folds differ in size by a
  # row); RMSE as the mean over the folds.
  measure <- if (task$task_type == "classif") msr("classif.ce", average = "micro") else msr("regr.rmse")
  for (learner in learners_for(task)) {
    t0 <- proc.time()[["elapsed"]]
    set.seed(2)
    rr <- resample(task, impute(learner, task), resampling)
    rows[[length(rows) + 1L]] <- data.frame(task = name, type = task$task_type, learner = sub("^(classif|regr)\\.", "", learner$id),
      score = rr$aggregate(measure), seconds = round(proc.time()[["elapsed"]] - t0, 1), folds = folds,
      run = format(started, "%Y-%m-%d %H:%M"))
    cat(sprintf("%-15s %-22s %s %.4f  (%.0f s)\n", name, learner$id, measure$id, rr$aggregate(measure),
      proc.time()[["elapsed"]] - t0))
  }
}
results <- do.call(rbind, rows)
csv_file <- sub("\\.md$", ".csv", out_file)
if (file.exists(csv_file)) {
  kept <- utils::read.csv(csv_file, stringsAsFactors = FALSE)
  kept <- kept[!paste(kept$task, kept$learner) %in% paste(results$task, results$learner), , drop = FALSE]
  results <- rbind(kept, results)
}
results <- results[order(match(results$task, task_order)), , drop = FALSE]
utils::write.csv(results, csv_file, row.names = FALSE)
learner_order <- c(ember_ids, "ranger", "cv_glmnet")

learner_names <- c(intersect(learner_order, results$learner), setdiff(unique(results$learner), learner_order))
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

# Minutes per learner and task (all folds; the machine may have been shared).
minutes_lines <- c(sprintf("| task | %s |", paste(learner_names, collapse = " | ")),
  sprintf("|---|%s", paste(rep("---|", length(learner_names)), collapse = "")))
for (name in unique(results$task)) {
  r <- results[results$task == name, ]
  cells <- vapply(learner_names, function(l) {
    v <- r$seconds[r$learner == l]
    if (length(v)) sprintf("%.1f", v / 60) else "–"
  }, "")
  minutes_lines <- c(minutes_lines, sprintf("| %s | %s |", name, paste(cells, collapse = " | ")))
}
runs <- sort(unique(results$run))
header <- c("# Tabular defaults (`make bench-tabular`)", "",
  sprintf(paste("%s-fold cross-validation (one instantiation per task, seed 1), %s. Ember learners at their defaults with the",
    "training budget of an early-stopped run: `epochs = 200, batch_size = 32, patience = 10`, `$validate = 0.2` (early",
    "stopping on the validation loss; the weights of the best validation are kept). Baselines: `ranger` (500 trees) and",
    "`cv_glmnet` (lasso, lambda by internal CV; factors one-hot). pima and penguins: missing values imputed (median, mode)",
    "for every learner. Classification error (ce, pooled over the folds: errors / rows) or RMSE (mean over the folds), lower is",
    "better; **bold**: the worst learner of the task (an Ember learner counts as the worst only when no baseline ties it)."),
    paste(unique(results$folds), collapse = "/"),
    if (length(runs) == 1L) paste("run", runs) else paste("rows from the runs of", paste(runs, collapse = ", "))), "",
  sprintf("_CPU %s; Ember BLAS core %s; mlr3 %s, mlr3learners %s, ranger %s, glmnet %s_", cpu, info$blas_core,
    packageVersion("mlr3"), packageVersion("mlr3learners"), packageVersion("ranger"), packageVersion("glmnet")), "")
footer <- c("", if (length(worst_ember)) sprintf("An Ember learner is the worst on: %s.", paste(worst_ember, collapse = ", ")) else
  "No Ember learner is the worst on any task.", "", "Minutes per learner and task (all folds, one thread):", "",
  minutes_lines)
writeLines(c(header, table_lines, footer), out_file)
cat(c("", table_lines, footer), sep = "\n")
