/*
 * ember.h — the C interface of the Ember deep-learning engine.
 *
 * Conventions (see DESIGN.md §3):
 *  - every function returns an int32_t status: EMBER_OK (0) or an EMBER_ERR_* code, and on
 *    failure sets a thread-local message readable with ember_last_error();
 *  - results come back through out-parameters, which are only written on success;
 *  - handles are typed and opaque; each _new/_deserialize has a _free, and _free(NULL) is a no-op;
 *    a handle that is not live (already freed, or never created) is reported as an error, not used;
 *  - matrices are column-major doubles (R's layout); class targets are 0-based indices;
 *  - a handle must not be used from two threads at once.
 */
#ifndef EMBER_H
#define EMBER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Version of this interface; a host checks it at load time. */
#define EMBER_ABI_VERSION 1

/** Status codes. */
#define EMBER_OK 0
#define EMBER_ERR_INVALID_ARGUMENT 1 /* NULL, out of range, non-finite, unknown enum value */
#define EMBER_ERR_SHAPE 2            /* sizes that do not fit together */
#define EMBER_ERR_STATE 3            /* call not allowed in the object's state */
#define EMBER_ERR_CORRUPT 4          /* malformed or incompatible serialized bytes */
#define EMBER_ERR_OVERFLOW 5         /* a size beyond what the engine or BLAS supports */
#define EMBER_ERR_INTERNAL 99        /* a bug: please report it with the message */

/** Tasks: fixes the network head, the loss and what predictions mean. */
#define EMBER_TASK_REGRESSION 0 /* one output, MSE */
#define EMBER_TASK_BINARY 1     /* one logit for the positive class, BCE with logits */
#define EMBER_TASK_MULTICLASS 2 /* K logits, cross-entropy */

/** Optimizers (PyTorch's update rules). */
#define EMBER_OPTIMIZER_SGD 0
#define EMBER_OPTIMIZER_ADAM 1
#define EMBER_OPTIMIZER_ADAMW 2

/** A trainable model (an MLP with its input scaling and training state). */
typedef struct ember_model ember_model;
/** Training data held in engine memory (float32, row-major), created once and reused per slice. */
typedef struct ember_dataset ember_dataset;

/** The interface version, EMBER_ABI_VERSION of the library actually loaded. */
int32_t ember_abi_version(void);

/** The calling thread's last error message ("" if none); valid until the next call on the thread. */
const char *ember_last_error(void);

/** Name of the OpenBLAS kernel core in use (static string), e.g. "SkylakeX" or "Prescott". */
int32_t ember_blas_core_name(const char **out_name);

/** Number of threads used by BLAS (and, later, by the engine's own loops). */
int32_t ember_get_num_threads(int32_t *out_threads);

/** Sets the number of threads of the engine and of BLAS together, 1..65. */
int32_t ember_set_num_threads(int32_t threads);

/**
 * Creates an MLP: for each of the n_hidden widths in `neurons`, Linear → ReLU → Dropout(dropout),
 * then a Linear head sized from the task (n_classes logits for multiclass, else 1).
 * `standardize` (n_inputs entries of 0/1, or NULL for all 1) marks the input columns that the model
 * standardises with statistics of the training data; `standardize_target` does the same for a
 * regression target. Weights are drawn from the engine RNG seeded with `seed`.
 */
int32_t ember_mlp_new(ember_model **out_model, int32_t task, int32_t n_classes, int32_t n_inputs,
                      const int32_t *neurons, int32_t n_hidden, double dropout,
                      const int32_t *standardize, int32_t standardize_target, uint64_t seed);

/** Frees a model; NULL is a no-op. */
int32_t ember_model_free(ember_model *model);

/**
 * Sets how ember_model_fit trains. optimizer: EMBER_OPTIMIZER_*; lr > 0 finite; weight_decay >= 0;
 * momentum (sgd) >= 0; beta1, beta2 in [0, 1) and eps >= 0 (adam, adamw). Changing the optimizer
 * or its hyperparameters resets the optimizer state.
 */
int32_t ember_model_set_training(ember_model *model, int32_t batch_size, int32_t shuffle,
                                 int32_t optimizer, double lr, double weight_decay, double momentum,
                                 double beta1, double beta2, double eps);

/**
 * Copies training data into the engine. x: n_rows × n_cols column-major; y: n_rows values
 * (regression: finite values; binary: 1 = positive class, 0 = negative; multiclass: 0-based class
 * index). Values are converted to float32.
 */
int32_t ember_dataset_new(ember_dataset **out_dataset, const double *x, int64_t n_rows,
                          int64_t n_cols, const double *y);

/** Frees a dataset; NULL is a no-op. */
int32_t ember_dataset_free(ember_dataset *dataset);

/**
 * Trains `epochs` more epochs (a slice: call again to continue; optimizer state and RNG carry over).
 * out_losses (nullable) receives the mean training loss of each epoch (`epochs` doubles).
 */
int32_t ember_model_fit(ember_model *model, const ember_dataset *dataset, int32_t epochs,
                        double *out_losses);

/** Number of columns ember_model_predict writes: 1 (regression), 2 (binary), K (multiclass). */
int32_t ember_model_prediction_columns(const ember_model *model, int32_t *out_columns);

/** Number of input columns the model expects. */
int32_t ember_model_n_inputs(const ember_model *model, int32_t *out_inputs);

/** Number of epochs the model has been trained for. */
int32_t ember_model_epochs(const ember_model *model, int32_t *out_epochs);

/**
 * Predicts for x (n_rows × n_cols, column-major). out (column-major, out_len = n_rows × columns)
 * receives regression values on the target's scale, or class probabilities (binary: positive
 * class in column 0).
 */
int32_t ember_model_predict(const ember_model *model, const double *x, int64_t n_rows,
                            int64_t n_cols, double *out, int64_t out_len);

/**
 * Serializes the model (safetensors layout). Call with buffer = NULL to learn the size in
 * *out_size; then call with a buffer of at least that capacity.
 */
int32_t ember_model_serialize(const ember_model *model, uint8_t *buffer, int64_t capacity,
                              int64_t *out_size);

/** Reads a model from bytes written by ember_model_serialize. */
int32_t ember_model_deserialize(ember_model **out_model, const uint8_t *bytes, int64_t length);

/** Numbers of live models and datasets (for leak checks). */
int32_t ember_live_handles(int64_t *out_models, int64_t *out_datasets);

#ifdef __cplusplus
}
#endif

#endif /* EMBER_H */
