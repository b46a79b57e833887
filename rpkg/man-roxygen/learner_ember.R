#' @section Dictionary:
#' Registered in `mlr3::mlr_learners` when 'mlr3' is loaded:
#' ```
#' mlr3::lrn("<%= id %>")
#' ```
#'
#' @section Meta information:
#' * Task type: `"<%= task_type %>"`
#' * Predict types: <%= if (task_type == "classif") '`"response"`, `"prob"`' else '`"response"`' %>
#' * Feature types: <%= feature_types %>
#' * Properties: <%= if (task_type == "classif") '`"twoclass"`, `"multiclass"`, ' else '' %>`"marshal"`,
#'   `"validation"`, `"internal_tuning"`<%= if (exists("extra_properties")) extra_properties else '' %>
#' * Required packages: 'mlr3', 'mlr3ember'
#'
#' @section Shared parameters:
#' Every Ember learner also has the parameters described in [mlr_learners_ember]: `epochs` and
#' `batch_size` (required), `batch_size_predict`, `shuffle`, `drop_last`, `standardize`, `seed`,
#' `num_threads`, `eval_freq`, `measures_train`, `measures_valid`, `patience`, `min_delta`,
#' `restore_best_weights`, `optimizer` with `opt.*`, `loss` with `loss.*`, and the callbacks
#' `cb.*` (progress, checkpoint, learning-rate schedules). That page also explains validation,
#' early stopping, internal tuning of `epochs`, the model and its history, and marshaling.
