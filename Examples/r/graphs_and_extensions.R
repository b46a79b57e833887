# Networks as mlr3pipelines graphs, callbacks, custom layers and losses: the README's examples,
# runnable (needs mlr3, mlr3pipelines, mlr3tuning and paradox):
#
#   R_LIBS=.rlib:<library with mlr3> Rscript Examples/r/graphs_and_extensions.R

library(mlr3ember)
lgr::get_logger("mlr3")$set_threshold("warn")
lgr::get_logger("bbotk")$set_threshold("warn")
set.seed(1)

library(mlr3); library(mlr3pipelines); library(mlr3tuning)
# An MLP as a graph
graph <- po("ember_ingress_num") %>>% po("ember_linear", out_features = 32) %>>% po("ember_relu") %>>%
  po("ember_head") %>>% po("ember_optimizer", optimizer = "adam", lr = 0.01) %>>%
  po("ember_model_classif", epochs = 20, batch_size = 16)
as_learner(graph)$train(tsk("iris"))

# Numeric and categorical features in two branches, a residual block repeated n_blocks times
block <- gunion(list(po("nop", id = "skip"),
  po("ember_linear", id = "linear", out_features = 16) %>>% po("ember_relu"))) %>>% po("ember_merge_sum")
graph <- gunion(list(
    po("select", id = "num", selector = selector_type(c("numeric", "integer"))) %>>% po("ember_ingress_num") %>>%
      po("ember_linear", id = "proj", out_features = 16),
    po("select", id = "categ", selector = selector_type("factor")) %>>% po("ember_ingress_categ") %>>%
      po("ember_embedding", embedding_dim = 2) %>>% po("ember_flatten"))) %>>%
  po("ember_merge_cat") %>>% po("ember_linear", id = "mix", out_features = 16) %>>%
  po("ember_block", block, id = "block", n_blocks = 2) %>>% po("ember_head") %>>% po("ember_optimizer") %>>%
  po("ember_model_classif", batch_size = 32, patience = 3, epochs = to_tune(upper = 50, internal = TRUE))

# Tune the depth and the learning rate, and the epochs by early stopping inside the tuning
glrn <- as_learner(graph)
glrn$param_set$set_values(block.n_blocks = to_tune(1, 4), ember_optimizer.lr = to_tune(1e-4, 1e-1, logscale = TRUE))
set_validate(glrn, "test")
at <- auto_tuner(tnr("random_search"), glrn, rsmp("holdout"), msr("classif.ce"), term_evals = 6)
at$train(tsk("german_credit"))
at$tuning_result

print(glrn$param_set$values$block.n_blocks)

target <- ember_callback("target",
  on_valid_end = function(ctx) if (ctx$record$valid$classif.acc >= ctx$params$acc) ctx$stop(),
  param_set = paradox::ps(acc = paradox::p_dbl(0, 1, tags = "train")), params = list(acc = 0.9))
learner <- lrn("classif.ember_mlp", callbacks = list(target), epochs = 200, batch_size = 16,
  measures_valid = msr("classif.acc"), cb.target.acc = 0.95)
learner$validate <- 0.3
learner$train(tsk("iris"))

swish <- ember_layer_fn(function(x) x * ember_sigmoid(x))
net <- ember_input_num() |> ember_linear(32) |> swish() |> ember_head() |> ember_network()
pinball <- ember_loss_fn(function(pred, target) mean(pmax(0.9 * (target - pred), -0.1 * (target - pred))))
model <- ember_fit(mtcars[, -1], mtcars$mpg, net, loss = pinball, epochs = 50, standardize = FALSE)

print(learner$model$history[, c("epoch", "valid_classif.acc")])
print(tail(model$history, 3))
