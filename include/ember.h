/*
 * ember.h — the C interface of the Ember deep-learning engine (ABI version 2).
 *
 * Conventions (see docs/architecture.md#c-abi-contract):
 *  - every function except ember_abi_version, ember_last_error and ember_last_error_detail
 *    returns an int32_t status: EMBER_OK (0) or an EMBER_ERR_* code; on failure it sets a
 *    thread-local message (ember_last_error) and a structured detail (ember_last_error_detail);
 *    a successful call clears both;
 *  - results come back through out-parameters, which are written only on success;
 *  - handles are typed and opaque; each constructor has a _free, and _free(NULL) is a no-op;
 *    a handle that is not live (freed, never created, or of another type) is reported as an
 *    error, never used;
 *  - text results (`const char **out_json` …) point into a thread-local buffer that stays valid
 *    until the next call on the same thread that returns text; copy it if you need it longer;
 *  - configurations are JSON text (UTF-8); class targets are 0-based indices; categorical codes
 *    are 0-based level indices;
 *  - matrices and tensors are doubles in the layout the caller names (EMBER_LAYOUT_*): R passes
 *    column-major arrays, C callers usually row-major; the engine copies them once into float32;
 *  - a handle must not be used from two threads at once.
 */
#ifndef EMBER_H
#define EMBER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Version of this interface; a host checks it at load time. */
#define EMBER_ABI_VERSION 2

/** The engine's version (what ember_version() returns). */
#define EMBER_VERSION "0.2.0"

/** Status codes. */
#define EMBER_OK 0
#define EMBER_ERR_INVALID_ARGUMENT 1 /* NULL, out of range, non-finite, unknown name or value */
#define EMBER_ERR_SHAPE 2            /* sizes that do not fit together */
#define EMBER_ERR_STATE 3            /* call not allowed in the object's state */
#define EMBER_ERR_CORRUPT 4          /* malformed or incompatible serialized bytes or files */
#define EMBER_ERR_OVERFLOW 5         /* a size beyond what the engine or BLAS supports */
#define EMBER_ERR_MEMORY 6           /* more memory than the machine has available (refused before
                                        allocating; the message states the bytes needed) */
#define EMBER_ERR_INTERRUPTED 7      /* the host's interrupt check asked to stop (ember_set_interrupt_check) */
#define EMBER_ERR_INTERNAL 99        /* a bug: please report it with the message */

/** Memory layouts of caller matrices and tensors. */
#define EMBER_LAYOUT_ROW_MAJOR 0    /* C order: the last index varies fastest */
#define EMBER_LAYOUT_COLUMN_MAJOR 1 /* Fortran/R order: the first index (the row) varies fastest */

/** A network with its task, class names, input scaling, history and RNG. */
typedef struct ember_model ember_model;
/** Named inputs (and a target) held in engine memory, created once and reused across calls. */
typedef struct ember_dataset ember_dataset;
/** Training state of one model: optimizer, schedule, early stopping, the epoch in progress. */
typedef struct ember_trainer ember_trainer;
/** A byte buffer owned by the engine (serialized models, weight snapshots). */
typedef struct ember_bytes ember_bytes;

/** The structured part of an error; text fields are "" when absent, never NULL. */
typedef struct ember_error_detail {
    int32_t code;         /* status of the last call on this thread (EMBER_OK if it succeeded) */
    const char *message;  /* the same text as ember_last_error() */
    const char *op;       /* op, layer type or function, e.g. "linear", "fit", "dataset" */
    const char *layer;    /* path of the layer in the network, e.g. "blocks.1.linear_first" */
    const char *argument; /* argument, option or input at fault, e.g. "batch_size", "num" */
    int64_t index;        /* 0-based row, column or element the error is about; -1 if none */
    const char *expected; /* what was expected, as text */
    const char *got;      /* what was found, as text */
} ember_error_detail;

/* ---- Engine --------------------------------------------------------------------------------- */

/** The interface version, EMBER_ABI_VERSION of the library actually loaded. */
int32_t ember_abi_version(void);

/** The calling thread's last error message ("" if none); valid until the next call on the thread. */
const char *ember_last_error(void);

/** Fills *out with the calling thread's last error (does not clear it). */
int32_t ember_last_error_detail(ember_error_detail *out);

/** The engine's version string (static): EMBER_VERSION of the library actually loaded. */
int32_t ember_version(const char **out_version);

/** Name of the OpenBLAS kernel core in use (static string), e.g. "SkylakeX" or "Prescott". */
int32_t ember_blas_core_name(const char **out_name);

/** NULL when OpenBLAS's kernels fit this CPU; otherwise (static string) how to fix a fallback to
 *  kernels that leave the CPU's AVX2/AVX-512 units unused, e.g. Debian's OpenBLAS picking "Prescott"
 *  on a CPU it does not know: set OPENBLAS_CORETYPE before the process starts. */
int32_t ember_blas_core_advice(const char **out_advice);

/** What the engine offers, as JSON (static string): {"ops": [...] (node ops of network
 *  descriptions), "activations": [...], "measures": [{"name", "task" ("classification",
 *  "regression" or "multilabel"), "maximize"}], "expression_ops": [...], "losses": {"regression":
 *  [...], "binary": [...], "multiclass": [...], "quantile_regression": [...], "multilabel": [...]}
 *  (the first loss of each task is its default),
 *  "architectures": {"mlp": {option: default, ...}, ...} (the predefined architectures' defaults),
 *  "architecture_inputs": {"mlp": "tabular", "lenet": "image", ...} (what each one reads),
 *  "unseen_levels": {"mlp": "warn", "ft_transformer": "error", ...} (whether an architecture can
 *  take a categorical level unseen in training: "warn" = it can (all-zero one-hot), "error" = rows
 *  holding one must be refused), "optimizers": {"sgd": {hyperparameter: default, ...}, ...} (the
 *  trainer's optimizer kinds, PyTorch's names, booleans as 0/1, Adam's betas as beta1 and beta2),
 *  "transforms": [...] (the image transform ops)}. */
int32_t ember_vocabulary(const char **out_json);

/** Number of threads the engine computes with (its loops and its split matrix products). */
int32_t ember_get_num_threads(int32_t *out_threads);

/** How error messages (ember_last_error()) count rows, columns, elements and other positions: 0
 *  (the default: "row 3, column 1 (0-based)") or 1 ("row 4, column 2"), for hosts whose users
 *  count from 1. Process-wide; set it once at load. ember_error_detail's index stays 0-based. */
int32_t ember_set_message_index_base(int32_t base);

/** Sets the number of threads the engine computes with, 1..65 (other counts, e.g. 10^6, are
 *  refused with EMBER_ERR_INVALID_ARGUMENT, not clamped). The engine splits large matrix
 *  products over them and keeps OpenBLAS single-threaded (a process-wide OpenBLAS setting). */
int32_t ember_set_num_threads(int32_t threads);

/**
 * Sets the host's interrupt check (NULL removes it), process-wide. The engine calls
 * check(context) on the calling thread between batches of training, validation and prediction;
 * when it returns non-zero, the call ends with EMBER_ERR_INTERRUPTED and its objects stay usable:
 * a model keeps its weights, a trainer the batches it ran (the next ember_trainer_fit continues
 * the epoch; an interrupt during validation leaves that epoch without its record). The check
 * must be cheap, must not unwind (longjmp) through the engine and is only called by threads that
 * called into the engine; it decides itself whether the calling thread is one it answers for.
 */
typedef int32_t (*ember_interrupt_check)(void *context);
int32_t ember_set_interrupt_check(ember_interrupt_check check, void *context);

/** Numbers of live handles of each type (for leak checks); each pointer may be NULL. */
int32_t ember_live_handles(int64_t *out_models, int64_t *out_datasets, int64_t *out_trainers,
                           int64_t *out_bytes);

/**
 * A predefined architecture as a network description (docs/network-description.md).
 * name: "mlp", "tab_resnet", "ft_transformer", "featureless", "lenet", "resnet", or torchvision's
 * "resnet18", "resnet34", "resnet50" (with torchvision's parameter names; no options); the list
 * is ember_vocabulary()'s "architectures".
 * options_json: {"inputs": {"numeric": 4, "cardinalities": [3, 2]}} for tabular architectures
 * or {"inputs": {"image": [1, 28, 28]}} for CNNs, plus the architecture's parameters with
 * mlr3torch's names (mlp: neurons, p, activation, activation_args; tab_resnet: n_blocks, d_block,
 * d_hidden, d_hidden_multiplier, dropout1, dropout2; ft_transformer: n_blocks, d_token,
 * attention_n_heads, attention_dropout, ffn_d_hidden_multiplier, ffn_dropout, residual_dropout,
 * ffn_activation; resnet: channels, n_blocks).
 */
int32_t ember_architecture(const char *name, const char *options_json, const char **out_network_json);

/* ---- Byte buffers --------------------------------------------------------------------------- */

/** The bytes and their count; the pointer is valid until the buffer is freed. */
int32_t ember_bytes_data(const ember_bytes *bytes, const uint8_t **out_data, int64_t *out_size);

/** Frees a byte buffer; NULL is a no-op. */
int32_t ember_bytes_free(ember_bytes *bytes);

/* ---- Models --------------------------------------------------------------------------------- */

/**
 * Creates a model with fresh weights. config_json:
 *   {"network": {...description...}, "task": "regression" | "binary" | "multiclass" |
 *            "quantile_regression" | "multilabel",
 *    "class_names": ["pos", "neg"]   (binary: positive class first; multiclass: K names;
 *                                     multilabel: K label names),
 *    "n_classes": K                  (multiclass without class names),
 *    "n_labels": K                   (multilabel without label names; K >= 2),
 *    "quantiles": [0.1, 0.5, 0.9]    (quantile_regression, required: one output per level, levels
 *                                     strictly increasing in (0, 1); predictions are sorted per row),
 *    "standardize": {"num": [true, false, ...]}   (per numeric input; default: all columns),
 *    "standardize_target": true, "seed": "12345" (decimal string, any 64-bit value),
 *    "host": {"key": "value"}        (free-form strings stored in the model file)}
 */
int32_t ember_model_new(ember_model **out_model, const char *config_json);

/** Frees a model; NULL is a no-op. A trainer of the model keeps working on its own reference. */
int32_t ember_model_free(ember_model *model);

/**
 * Describes the model as JSON: task, class_names, outputs, prediction_columns, target_columns (1,
 * or K for multilabel), quantiles (quantile_regression's levels, else []), response_column (the
 * point prediction's column of a quantile regression: level 0.5 if present, else the middle one,
 * the lower for an even count; else 0), inputs, network, standardize, fitted, epochs, history,
 * host, n_parameters.
 */
int32_t ember_model_info(const ember_model *model, const char **out_json);

/** Sets (value non-NULL) or removes (value NULL) a host metadata entry stored in model files. */
int32_t ember_model_set_host_metadata(ember_model *model, const char *key, const char *value);

/** Number of columns ember_model_predict writes: 1 (regression), 2 (binary), K (multiclass,
 *  quantile_regression: one per level, multilabel: one probability per label). */
int32_t ember_model_prediction_columns(const ember_model *model, int32_t *out_columns);

/**
 * Predicts for every row of `data` in batches of `batch_size` (0: the engine's default). out
 * (out_len = rows × columns) receives regression values on the target's scale, class
 * probabilities (binary: positive class in column 0), quantiles on the target's scale (one column
 * per level, sorted within each row so that they never cross) or label probabilities
 * (multilabel), in the given layout.
 */
int32_t ember_model_predict(const ember_model *model, const ember_dataset *data, int32_t batch_size,
                            int32_t layout, double *out, int64_t out_len);

/** Raw network outputs (logits; standardised values for regression): rows × outputs values. */
int32_t ember_model_logits(const ember_model *model, const ember_dataset *data, int32_t batch_size,
                           int32_t layout, double *out, int64_t out_len);

/** Serializes the model (safetensors layout) into a new byte buffer. */
int32_t ember_model_serialize(const ember_model *model, ember_bytes **out_bytes);

/** Reads a model from bytes written by ember_model_serialize (or a model file's contents). */
int32_t ember_model_deserialize(ember_model **out_model, const uint8_t *bytes, int64_t length);

/** Writes the model file (safetensors layout; written to a temporary name, then renamed). */
int32_t ember_model_save(const ember_model *model, const char *path);

/** Reads a model file. */
int32_t ember_model_load(ember_model **out_model, const char *path);

/** The weights (parameters and buffers) as safetensors bytes, e.g. to restore the best epoch. */
int32_t ember_model_snapshot_weights(const ember_model *model, ember_bytes **out_bytes);

/**
 * Restores weights from safetensors bytes (a snapshot, or a PyTorch state dict saved with
 * safetensors, e.g. a torchvision ResNet's into "resnet18"). strict: every parameter and buffer
 * must be present and nothing else (the error lists the missing names). Integer dtypes are read
 * for counters only (BatchNorm's int64 num_batches_tracked); nothing is loaded on error.
 */
int32_t ember_model_restore_weights(ember_model *model, const uint8_t *bytes, int64_t length, int32_t strict);

/** Warm start: loads the tensors of safetensors `bytes` whose names and sizes match the model's
 *  parameters and buffers, keeps the others as initialised, and reports as JSON
 *  {"loaded": [names], "mismatched": [{"name", "given", "expected"}], "missing": [names the
 *  bytes lack], "unused": [names the model lacks]}. */
int32_t ember_model_restore_matching(ember_model *model, const uint8_t *bytes, int64_t length, const char **out_json);

/** The engine RNG state (four 64-bit words, xoshiro256**). */
int32_t ember_model_get_rng_state(const ember_model *model, uint64_t out_state[4]);

/** Sets the engine RNG state; all four words zero is invalid. */
int32_t ember_model_set_rng_state(ember_model *model, const uint64_t state[4]);

/**
 * Parameters and buffers as a JSON array of {"name", "shape", "kind" ("parameter" | "buffer"),
 * "frozen"}, in the network's order.
 */
int32_t ember_model_parameters(const ember_model *model, const char **out_json);

/**
 * Gradient × input attributions of the numeric or tensor input `input`: for each row, the
 * derivative of one raw output (logit; a regression's output in the target's units) with respect to every
 * element of the input as the network sees it (standardised, transformed for prediction) times
 * that element — relative to the training mean for standardised columns. `outputs` holds the
 * 0-based output column of every row (n_outputs = n_rows) or one for all (n_outputs = 1). out:
 * n_rows × the input's elements per row, in `layout`; out_len must be that product.
 */
int32_t ember_model_attributions(const ember_model *model, const ember_dataset *data, const char *input,
                                 const int32_t *outputs, int64_t n_outputs, int32_t batch_size, int32_t layout,
                                 double *out, int64_t out_len);

/**
 * The network node by node, as JSON: {"inputs": [{"name", "shape"}], "nodes": [{"id", "op",
 * "output_shape" (per sample), "trainable", "frozen" (parameter counts), "flops" (forward
 * floating-point operations per sample: 2 per multiply-add of weight products and attention, 1 per
 * output element of elementwise ops; an estimate), "activation_bytes" (float32 output per
 * sample)}]}; a repeat node counts its bodies.
 */
int32_t ember_model_summary(const ember_model *model, const char **out_json);

/** Copies a parameter or buffer's values (row-major, PyTorch's order); out_len = its element count. */
int32_t ember_model_get_parameter(const ember_model *model, const char *name, double *out, int64_t out_len);

/** Sets a parameter or buffer from row-major values; length must equal its element count. */
int32_t ember_model_set_parameter(ember_model *model, const char *name, const double *values, int64_t length);

/**
 * Freezes (frozen = 1) or unfreezes (0) the parameters whose names match `pattern` ('*' any run
 * of characters, '?' one); *out_matched (nullable) receives the number matched. A pattern that
 * matches nothing is an error. Takes effect for trainers created afterwards and for the frozen
 * flag the optimizer checks at each step.
 */
int32_t ember_model_freeze(ember_model *model, const char *pattern, int32_t frozen, int64_t *out_matched);

/* ---- Datasets ------------------------------------------------------------------------------- */

/** Creates an empty dataset of n_rows rows (at least 1); add inputs and, to train, a target. */
int32_t ember_dataset_new(ember_dataset **out_dataset, int64_t n_rows);

/** Frees a dataset; NULL is a no-op. */
int32_t ember_dataset_free(ember_dataset *dataset);

/** Adds a numeric input `name`: an n_rows × n_cols matrix of finite doubles. */
int32_t ember_dataset_add_numeric(ember_dataset *dataset, const char *name, const double *x, int64_t n_cols,
                                  int32_t layout);

/** Adds a numeric input `name` from n_cols separate columns (e.g. a data.frame's, without first copying
 *  them into one matrix): columns[j] points at the n_rows finite doubles of column j. */
int32_t ember_dataset_add_numeric_columns(ember_dataset *dataset, const char *name, const double *const *columns,
                                          int64_t n_cols);

/** Adds a categorical input `name`: an n_rows × n_cols matrix of 0-based level codes (>= 0). */
int32_t ember_dataset_add_categorical(ember_dataset *dataset, const char *name, const int32_t *codes,
                                      int64_t n_cols, int32_t layout);

/**
 * Adds a tensor input `name` of shape [n_rows, d1, ..., dk] (rank = k + 1, 2..5): e.g. images
 * [n, channels, height, width]. R arrays are EMBER_LAYOUT_COLUMN_MAJOR, C arrays row-major.
 */
int32_t ember_dataset_add_tensor(ember_dataset *dataset, const char *name, const double *x, const int64_t *shape,
                                 int32_t rank, int32_t layout);

/**
 * Adds a byte tensor input `name` of shape [n_rows, d1, ..., dk] (rank = k + 1, 2..5), row-major
 * (each row's bytes contiguous, e.g. images [n, channels, height, width]). The bytes are kept as
 * bytes (one per value) and widened per batch to `scale * byte` (1/255: the range [0, 1]).
 */
int32_t ember_dataset_add_bytes(ember_dataset *dataset, const char *name, const uint8_t *x, const int64_t *shape,
                                int32_t rank, double scale);

/**
 * The values of input `name` for every row as training reads them (bytes widened by their scale,
 * image files decoded and resized), row-major into out (length = n_rows × values per row).
 */
int32_t ember_dataset_read_input(ember_dataset *dataset, const char *name, double *out, int64_t length);

/**
 * The image shape out_shape[3] = [C', H', W'] that the image transforms `transforms_json` (a JSON
 * array of transform objects such as {"op": "random_crop", "size": 28, "padding": 2}; see
 * docs/image-transforms.md) make of images of shape `shape` (rank 3: [C, H, W]). Training and
 * prediction must give the same shape; invalid transforms are named in the error.
 */
int32_t ember_transforms_output_shape(const char *transforms_json, const int64_t *shape, int32_t rank, int64_t *out_shape);

/**
 * Sets the target: n_rows values (regression: finite values; binary: 1 = positive class, 0 =
 * negative; multiclass: 0-based class index).
 */
int32_t ember_dataset_set_target(ember_dataset *dataset, const double *y, int64_t length);

/**
 * Sets class targets as integers (binary and multiclass models): n_rows 0-based class indices
 * (binary: 1 = positive class, 0 = negative), each >= 0; the model checks them against its number
 * of classes when it trains. Replaces a target set before (and is replaced by ember_dataset_set_target).
 */
int32_t ember_dataset_set_target_classes(ember_dataset *dataset, const int32_t *y, int64_t length);

/**
 * Sets a target of n_cols values per row (a multilabel model: 0/1, one column per label), n_rows ×
 * n_cols finite values in `layout` (EMBER_LAYOUT_*).
 */
int32_t ember_dataset_set_target_matrix(ember_dataset *dataset, const double *y, int64_t n_cols, int32_t layout);

/** Number of rows. */
int32_t ember_dataset_rows(const ember_dataset *dataset, int64_t *out_rows);

/* ---- Trainers ------------------------------------------------------------------------------- */

/**
 * Creates a trainer for `model`. config_json (every field optional):
 *   {"batch_size": 32, "shuffle": true, "drop_last": false,
 *    "optimizer": {"kind": "adam" | "adamw" | "sgd" | "rmsprop" | "adagrad", "lr": 0.001,
 *                  ...PyTorch's option names: betas [b1, b2], eps, weight_decay, amsgrad,
 *                  momentum, dampening, nesterov, alpha, centered, lr_decay,
 *                  initial_accumulator_value},
 *    "loss": {"kind": "mse" | "l1" | "cross_entropy" | "bce_with_logits" | "quantile" | ...
 *             (ember_vocabulary's losses of the model's task), "reduction": "mean" | "sum",
 *             "class_weights": [...], "ignore_index": -100, "pos_weight": [...] (one number, or
 *             one per label for multilabel)}; the quantile loss takes the model's levels,
 *    "schedule": {"kind": "step", "step_size", "gamma"} | {"kind": "multiplicative", "factor"} |
 *                {"kind": "cosine_annealing", "t_max", "eta_min"} | {"kind": "one_cycle",
 *                "max_lr", "total_steps", "pct_start", "anneal_strategy", "div_factor",
 *                "final_div_factor", "cycle_momentum", "base_momentum", "max_momentum"} |
 *                {"kind": "reduce_on_plateau", "mode", "factor", "patience", "threshold",
 *                "threshold_mode", "cooldown", "min_lr", "eps"},
 *    "eval_freq": 1, "measures_train": ["accuracy", ...], "measures_valid": [...]
 *    (accuracy, balanced_accuracy, logloss; mse, mae, rmse, on a quantile regression's
 *    response_column; hamming_accuracy for multilabel), "patience": 0, "min_delta": 0,
 *    "restore_best_weights": true, "batch_size_predict": 4096,
 *    "host_scoring": false   (true: only ember_trainer_report_score drives early stopping)}
 * A network, a training batch, a dataset input or a prediction that needs more memory than the
 * machine has available (MemAvailable, the cgroup's limit, or the environment variable
 * EMBER_MEMORY_LIMIT in bytes, whichever is least) is refused with EMBER_ERR_MEMORY before
 * anything is allocated.
 */
int32_t ember_trainer_new(ember_trainer **out_trainer, ember_model *model, const char *config_json);

/** Frees a trainer; NULL is a no-op. */
int32_t ember_trainer_free(ember_trainer *trainer);

/**
 * Trains a slice: until max_epochs more epochs are complete or, with max_batches > 0, that many
 * batches ran (a slice may stop inside an epoch; the next call continues it), or early stopping
 * ends training. `valid` (nullable) is scored every eval_freq epochs and at planned_epochs (0:
 * unknown). *out_records_json (nullable) receives the completed epochs' records as a JSON array
 * of {"epoch", "train_loss", "valid_loss", "lr", "train": {...}, "valid": {...}}.
 */
int32_t ember_trainer_fit(ember_trainer *trainer, const ember_dataset *train, const ember_dataset *valid,
                          int32_t max_epochs, int32_t max_batches, int32_t planned_epochs,
                          const char **out_records_json);

/**
 * The trainer's state as JSON: epoch, epoch_in_progress, batches_in_epoch, batch_loss (the last
 * batch's training loss, null before the first), stopped, best_epoch, best_score, lr (per group),
 * groups, non_finite (null, or {"epoch", "batch", "loss": "NaN" | "Inf" | "-Inf"} when a training
 * loss was not finite: training then stopped, that batch's step was not taken and the weights went
 * back to those before the previous batch, the last with a finite loss; ember_trainer_fit still
 * returns EMBER_OK, the host decides).
 */
int32_t ember_trainer_state(const ember_trainer *trainer, const char **out_json);

/**
 * The predictions of the last validation (probabilities or values, as ember_model_predict).
 * Call with out = NULL to learn *out_rows and *out_cols; then with out_len = rows × cols.
 */
int32_t ember_trainer_valid_predictions(const ember_trainer *trainer, int32_t layout, double *out, int64_t out_len,
                                        int64_t *out_rows, int64_t *out_cols);

/**
 * Reports a validation score computed by the host (with host_scoring, e.g. any mlr3 measure):
 * an improvement by more than min_delta resets patience and remembers the weights; *out_stop
 * (nullable) is set to 1 when patience has run out.
 */
int32_t ember_trainer_report_score(ember_trainer *trainer, double score, int32_t maximize, int32_t *out_stop);

/** Sets an optimizer option (PyTorch's name, e.g. "lr") of one group, or of all with group = -1. */
int32_t ember_trainer_set_option(ember_trainer *trainer, const char *name, double value, int32_t group);

/** The trainer's state for continuing later: the model's weights, the optimizer's state, the epoch
 *  count, the learning rates, the schedule's and early stopping's state, as safetensors bytes. */
int32_t ember_trainer_checkpoint(const ember_trainer *trainer, ember_bytes **out_bytes);

/** Continues from ember_trainer_checkpoint's bytes (of a trainer with the same configuration on a
 *  model of the same network); call before the first ember_trainer_fit. */
int32_t ember_trainer_resume(ember_trainer *trainer, const uint8_t *bytes, int64_t length);

/** Ends training: restores the best weights when configured (restore_best_weights). */
int32_t ember_trainer_finish(ember_trainer *trainer);

/* ---- Image files ---------------------------------------------------------------------------- */
/*
 * PNG and JPEG files decoded by the engine (libpng, libjpeg-turbo); the format is told by the
 * file's first bytes, not by its name. A decoded image is uint8 planes [channels, height, width]
 * (CHW, row-major) with channels 1 or 3: gray is replicated to RGB, RGB becomes gray by ITU-R
 * 601-2 luma rounded as PIL's convert("L"), alpha is dropped, palettes are expanded and 16-bit PNG
 * samples keep their high byte. Errors name the file: a missing or unreadable file, one that is
 * neither PNG nor JPEG, and a CMYK (or YCCK) JPEG are EMBER_ERR_INVALID_ARGUMENT; a truncated or
 * corrupt file, an empty one and an image of zero size EMBER_ERR_CORRUPT; an image of more than
 * 2^28 pixels EMBER_ERR_OVERFLOW.
 */

/**
 * Adds an image input `name`: one file per row (paths[i] for row i; n_paths must equal the
 * dataset's rows; the paths are copied), decoded when its batches are gathered (training,
 * validation, prediction) into [channels, height, width] with values byte / 255 (torchvision's
 * to_tensor), on the engine's threads and during training one batch ahead on a background thread.
 * Images of another size are resized to height × width (bilinear, as torchvision's resize
 * without antialiasing). A file that cannot be decoded fails that call with an error naming its
 * 0-based row (ember_error_detail.index) and its path.
 */
int32_t ember_dataset_add_image_files(ember_dataset *dataset, const char *name, const char *const *paths,
                                      int64_t n_paths, int64_t channels, int64_t height, int64_t width);

/** Reads only the header of an image file: its channels (1 gray, 2 gray + alpha, 3 colour: RGB,
 *  palette or YCbCr JPEG, 4 RGBA), height and width. Decodes no pixels. */
int32_t ember_image_info(const char *path, int64_t *out_channels, int64_t *out_height, int64_t *out_width);

/** Decodes an image file into out as `channels` (1 or 3) planes, CHW: out_length must be
 *  channels × height × width (the size ember_image_info reports). */
int32_t ember_image_read(const char *path, int64_t channels, uint8_t *out, int64_t out_length);

#ifdef __cplusplus
}
#endif

#endif /* EMBER_H */
