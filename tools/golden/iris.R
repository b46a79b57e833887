# Writes R's iris data set (Fisher/Anderson, public domain) for the Swift convergence test:
#   Rscript tools/golden/iris.R
out <- file.path("Tests", "EmberNNTests", "Fixtures", "iris.json")
writeLines(jsonlite::toJSON(list(x = unname(as.matrix(iris[, 1:4])), y = as.integer(iris$Species) - 1L),
  digits = NA), out)
