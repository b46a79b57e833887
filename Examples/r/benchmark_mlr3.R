# Benchmarks the Ember learners against mlr3's featureless baseline and a decision tree
# (classif.rpart / regr.rpart) on real tasks shipped with mlr3, with 3-fold cross-validation:
# Sonar (208 rows, 60 numeric features), German credit (1000 rows, factors and numbers), Spam
# (4601 e-mails, 57 word and character frequencies) and, for regression, California housing (a
# 3000-row sample; missing values imputed in an mlr3pipelines graph). The neural networks use
# early stopping on a fifth of each training set. Prints the aggregated scores and draws them.
#
#   R_LIBS=.rlib:/path/to/library/with/mlr3 Rscript Examples/r/benchmark_mlr3.R [plot.png]
#
# Needs mlr3, mlr3pipelines and rpart; takes a few minutes on one core.
library(mlr3)
library(mlr3pipelines)
library(mlr3ember)

plot_file <- commandArgs(trailingOnly = TRUE)[1]
if (is.na(plot_file)) plot_file <- "ember_mlr3_benchmark.png"
lgr::get_logger("mlr3")$set_threshold("warn")
set.seed(1)

# What every network shares: up to 100 epochs, stopped when the validation loss (on a fifth of
# the training rows, see below) has not improved for 5 epochs, with the weights of the best epoch.
ember <- function(id, ...) lrn(id, epochs = 100, batch_size = 32, patience = 5, restore_best_weights = TRUE, ...)
# A network written in R: an MLP on all features with two residual blocks.
residual_mlp <- ember_input_tabular() |>
  ember_linear(64) |>
  ember_activation("relu") |>
  ember_repeat(2, function(x) {
    ember_merge_sum(x, x |> ember_batch_norm() |> ember_linear(64) |> ember_activation("relu") |> ember_dropout(0.1))
  }) |>
  ember_head() |>
  ember_network()

classif_learners <- list(
  lrn("classif.featureless", predict_type = "prob"),
  lrn("classif.rpart", predict_type = "prob"),
  lrn("classif.ember_featureless", epochs = 20, batch_size = 64, predict_type = "prob"),
  ember("classif.ember_mlp", neurons = c(128, 64), p = 0.2, predict_type = "prob"),
  ember("classif.ember_tab_resnet", n_blocks = 2, d_block = 64, predict_type = "prob"),
  ember("classif.ember_ft_transformer", n_blocks = 1, d_token = 32, attention_n_heads = 4, predict_type = "prob"),
  ember("classif.ember_network", network = residual_mlp, predict_type = "prob")
)
regr_learners <- list(
  lrn("regr.featureless"),
  lrn("regr.rpart"),
  as_learner(po("imputemedian") %>>% lrn("regr.ember_featureless", epochs = 20, batch_size = 64)),
  as_learner(po("imputemedian") %>>% ember("regr.ember_mlp", neurons = c(128, 64))),
  as_learner(po("imputemedian") %>>% ember("regr.ember_tab_resnet", n_blocks = 2, d_block = 64)),
  as_learner(po("imputemedian") %>>% ember("regr.ember_ft_transformer", n_blocks = 1, d_token = 32, attention_n_heads = 4)),
  as_learner(po("imputemedian") %>>% ember("regr.ember_network", network = residual_mlp))
)
# Validation data for early stopping; in a graph, for the Ember learner inside.
for (learner in c(classif_learners, regr_learners)) {
  if (inherits(learner, "GraphLearner")) {
    set_validate(learner, validate = 0.2, ids = learner$graph$ids()[2])
  } else if ("validation" %in% learner$properties && !grepl("featureless", learner$id)) {
    set_validate(learner, validate = 0.2)
  }
}

housing <- tsk("california_housing")
housing$filter(sample(housing$row_ids, 3000))
started <- proc.time()[["elapsed"]]
bmr_classif <- benchmark(benchmark_grid(tsks(c("sonar", "german_credit", "spam")), classif_learners,
  rsmp("cv", folds = 3)))
bmr_regr <- benchmark(benchmark_grid(housing, regr_learners, rsmp("cv", folds = 3)))
cat(sprintf("benchmark of %d learners on 4 tasks, 3-fold CV: %.0f s\n\n", length(classif_learners),
  proc.time()[["elapsed"]] - started))

short_id <- function(id) sub("^(classif|regr)\\.", "", sub("^imputemedian\\.", "", id))
show <- function(tab, cols) print(as.data.frame(tab)[, cols], digits = 3, row.names = FALSE)
classif <- bmr_classif$aggregate(msrs(c("classif.acc", "classif.auc", "time_train")))
regr <- bmr_regr$aggregate(msrs(c("regr.rmse", "regr.rsq", "time_train")))
classif$learner <- short_id(classif$learner_id)
regr$learner <- short_id(regr$learner_id)
cat("== Classification: accuracy and AUC (mean of 3 folds), training time per fold (s) ==\n")
show(classif, c("task_id", "learner", "classif.acc", "classif.auc", "time_train"))
cat("\n== Regression (California housing, 3000 rows): RMSE and R^2 ==\n")
show(regr, c("task_id", "learner", "regr.rmse", "regr.rsq", "time_train"))

# One panel per task: the score of each fold (points) and their mean (bar), Ember in red.
fold_scores <- function(bmr, measure) {
  s <- as.data.frame(bmr$score(msr(measure)))
  data.frame(task_id = s$task_id, learner = short_id(s$learner_id), score = s[[measure]], measure = measure)
}
scores <- rbind(fold_scores(bmr_classif, "classif.acc"), fold_scores(bmr_regr, "regr.rsq"))
png(plot_file, width = 1400, height = 900, res = 110)
par(mfrow = c(2, 2), mar = c(4, 11, 3, 1))
for (id in unique(scores$task_id)) {
  s <- scores[scores$task_id == id, ]
  learners <- unique(s$learner)
  values <- split(s$score, factor(s$learner, levels = learners))
  colors <- ifelse(startsWith(learners, "ember"), "firebrick", "grey50")
  bars <- barplot(vapply(values, mean, numeric(1)), horiz = TRUE, las = 1, col = adjustcolor(colors, 0.4), border = NA,
    xlim = c(min(0, s$score), 1), main = sprintf("%s (3-fold CV)", id), xlab = s$measure[1])
  for (i in seq_along(values)) points(values[[i]], rep(bars[i], length(values[[i]])), pch = 19, cex = 0.7, col = colors[i])
}
invisible(dev.off())
cat(sprintf("\nplot: %s\n", normalizePath(plot_file)))
