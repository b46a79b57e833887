# JSON to and from the engine (configurations, model descriptions, epoch records).

# Encodes an R value as JSON: length-1 atomics become scalars (wrap a vector in json_array() to
# keep it an array), NULL list entries are dropped, named lists become objects, and doubles are
# written with up to 17 significant digits so that they reach the engine exactly (jsonlite stops
# at 15, which changes e.g. 1/3).
to_json <- function(x) {
  if (inherits(x, "ember_json_raw")) return(unclass(x))
  if (inherits(x, "ember_json_array")) {
    x <- unclass(x)
    return(paste0("[", paste(vapply(x, to_json, ""), collapse = ","), "]"))
  }
  if (is.list(x)) {
    is_object <- !is.null(names(x)) || inherits(x, "ember_json_object")
    x <- x[!vapply(x, is.null, logical(1))]
    if (is_object) {
      if (length(x) == 0L) return("{}")
      keys <- vapply(names(x), json_string, "")
      return(paste0("{", paste0(keys, ":", vapply(x, to_json, ""), collapse = ","), "}"))
    }
    return(paste0("[", paste(vapply(x, to_json, ""), collapse = ","), "]"))
  }
  if (length(x) != 1L) return(to_json(json_array(x)))
  if (is.na(x)) return("null")
  if (is.logical(x)) return(if (x) "true" else "false")
  if (is.numeric(x)) return(json_number(x))
  if (is.factor(x)) x <- as.character(x)
  json_string(as.character(x))
}

json_number <- function(x) {
  if (!is.finite(x)) return("null")
  if (x == round(x) && abs(x) < 2^53) return(format(x, scientific = FALSE, digits = 22))
  for (d in 15:17) {
    s <- sprintf(paste0("%.", d, "g"), x)
    if (as.numeric(s) == x) return(s)
  }
  s
}

json_string <- function(s) as.character(jsonlite::toJSON(enc2utf8(s), auto_unbox = TRUE))

# Marks a vector or list to be written as a JSON array even when it has length 0 or 1.
json_array <- function(x) structure(as.list(x), class = "ember_json_array")

# JSON text to embed as it is.
json_raw <- function(text) structure(text, class = "ember_json_raw")

# An empty JSON object.
json_object <- function() structure(list(), class = "ember_json_object")

from_json <- function(text) jsonlite::fromJSON(text, simplifyVector = TRUE, simplifyDataFrame = FALSE,
  simplifyMatrix = FALSE)
