/*
 * C smoke test of include/ember.h: trains a small MLP through the C interface, round-trips it
 * through bytes, and checks that bad arguments come back as status codes with messages.
 * Built by `make c-test` with -Wall -Wextra -Werror -pedantic. Exits non-zero on any failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"

static int failures = 0;

#define EXPECT(cond, what)                                              \
    do {                                                                \
        if (!(cond)) {                                                  \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, what); \
            failures++;                                                 \
        }                                                               \
    } while (0)

/* Expects `status` to be the error `code` with a last-error message containing `needle`. */
static void expect_error(int32_t status, int32_t code, const char *needle, const char *what) {
    const char *msg = ember_last_error();
    if (status != code || msg == NULL || strstr(msg, needle) == NULL) {
        fprintf(stderr, "FAIL %s: status %d (expected %d), message \"%s\" (expected to contain \"%s\")\n", what,
                (int)status, (int)code, msg ? msg : "(null)", needle);
        failures++;
    }
}

int main(void) {
    EXPECT(ember_abi_version() == EMBER_ABI_VERSION, "ABI version matches the header");
    const char *core = NULL;
    EXPECT(ember_blas_core_name(&core) == EMBER_OK && core != NULL && core[0] != '\0', "BLAS core name");
    EXPECT(ember_set_num_threads(1) == EMBER_OK, "set threads");
    int32_t threads = 0;
    EXPECT(ember_get_num_threads(&threads) == EMBER_OK && threads == 1, "get threads");
    printf("ember ABI %d, BLAS core %s\n", (int)ember_abi_version(), core);

    /* Two Gaussian blobs in 2-D; column-major x, class 1 = positive. */
    enum { N = 200, P = 2 };
    double *x = malloc(sizeof(double) * N * P);
    double *y = malloc(sizeof(double) * N);
    for (int i = 0; i < N; i++) {
        int label = i % 2;
        double jitter = (double)((i * 7919) % 101) / 101.0 - 0.5;
        x[i] = (label ? 2.0 : -2.0) + jitter;
        x[N + i] = (label ? -1.0 : 1.0) - jitter;
        y[i] = label;
    }

    ember_model *model = NULL;
    int32_t neurons[1] = {16};
    EXPECT(ember_mlp_new(&model, EMBER_TASK_BINARY, 0, P, neurons, 1, 0.0, NULL, 1, 42) == EMBER_OK, "mlp_new");
    EXPECT(ember_model_set_training(model, 16, 1, EMBER_OPTIMIZER_ADAM, 0.01, 0.0, 0.0, 0.9, 0.999, 1e-8) == EMBER_OK,
           "set_training");
    ember_dataset *data = NULL;
    EXPECT(ember_dataset_new(&data, x, N, P, y) == EMBER_OK, "dataset_new");
    double losses[20];
    EXPECT(ember_model_fit(model, data, 20, losses) == EMBER_OK, "fit");
    EXPECT(losses[19] < losses[0] && losses[19] < 0.1, "loss decreases below 0.1");

    int32_t cols = 0;
    EXPECT(ember_model_prediction_columns(model, &cols) == EMBER_OK && cols == 2, "two probability columns");
    double *prob = malloc(sizeof(double) * N * 2);
    EXPECT(ember_model_predict(model, x, N, P, prob, N * 2) == EMBER_OK, "predict");
    int correct = 0;
    for (int i = 0; i < N; i++) correct += ((prob[i] > 0.5) == (y[i] == 1.0));
    EXPECT(correct >= N - 2, "training accuracy");
    EXPECT(fabs(prob[0] + prob[N] - 1.0) < 1e-6, "probabilities sum to one");

    int64_t size = 0;
    EXPECT(ember_model_serialize(model, NULL, 0, &size) == EMBER_OK && size > 8, "serialized size");
    uint8_t *bytes = malloc((size_t)size);
    EXPECT(ember_model_serialize(model, bytes, size, &size) == EMBER_OK, "serialize");
    ember_model *copy = NULL;
    EXPECT(ember_model_deserialize(&copy, bytes, size) == EMBER_OK, "deserialize");
    double *prob2 = malloc(sizeof(double) * N * 2);
    EXPECT(ember_model_predict(copy, x, N, P, prob2, N * 2) == EMBER_OK, "predict with the copy");
    EXPECT(memcmp(prob, prob2, sizeof(double) * N * 2) == 0, "copy predicts identically");

    /* Errors: status code plus a message naming the argument. */
    expect_error(ember_mlp_new(NULL, 0, 0, 2, neurons, 1, 0.0, NULL, 1, 1), EMBER_ERR_INVALID_ARGUMENT, "out_model",
                 "NULL out parameter");
    ember_model *bad = NULL;
    expect_error(ember_mlp_new(&bad, 5, 0, 2, neurons, 1, 0.0, NULL, 1, 1), EMBER_ERR_INVALID_ARGUMENT, "task",
                 "unknown task");
    expect_error(ember_mlp_new(&bad, 0, 0, 2, neurons, 1, 1.5, NULL, 1, 1), EMBER_ERR_INVALID_ARGUMENT, "dropout",
                 "dropout out of range");
    EXPECT(bad == NULL, "out parameter untouched on failure");
    expect_error(ember_model_predict(model, x, N, 3, prob, N * 2), EMBER_ERR_SHAPE, "expects 2 input columns, got 3",
                 "wrong column count");
    expect_error(ember_model_predict(model, x, N, P, prob, 5), EMBER_ERR_SHAPE, "out_len", "short output buffer");
    expect_error(ember_dataset_new(&data, x, -1, P, y), EMBER_ERR_INVALID_ARGUMENT, "n_rows", "negative rows");
    expect_error(ember_model_set_training(model, 0, 1, 1, 0.01, 0, 0, 0.9, 0.999, 1e-8), EMBER_ERR_INVALID_ARGUMENT,
                 "batch_size", "zero batch size");
    expect_error(ember_model_set_training(model, 8, 1, 1, NAN, 0, 0, 0.9, 0.999, 1e-8), EMBER_ERR_INVALID_ARGUMENT,
                 "opt.lr", "NaN learning rate");
    expect_error(ember_model_deserialize(&bad, bytes, 4), EMBER_ERR_CORRUPT, "safetensors", "truncated bytes");
    bytes[9] = '!';
    expect_error(ember_model_deserialize(&bad, bytes, size), EMBER_ERR_CORRUPT, "json", "corrupt header");
    EXPECT(ember_model_free(NULL) == EMBER_OK, "free(NULL) is a no-op");
    EXPECT(ember_dataset_free(NULL) == EMBER_OK, "dataset free(NULL) is a no-op");

    EXPECT(ember_model_free(copy) == EMBER_OK, "free copy");
    expect_error(ember_model_free(copy), EMBER_ERR_INVALID_ARGUMENT, "not a live ember_model", "double free");
    expect_error(ember_model_predict(copy, x, N, P, prob, N * 2), EMBER_ERR_INVALID_ARGUMENT, "not a live",
                 "use after free");
    expect_error(ember_model_fit(model, (const ember_dataset *)model, 1, NULL), EMBER_ERR_INVALID_ARGUMENT,
                 "not a live ember_dataset", "model passed as dataset");
    EXPECT(ember_dataset_free(data) == EMBER_OK, "free dataset");
    EXPECT(ember_model_free(model) == EMBER_OK, "free model");
    int64_t live_models = -1, live_datasets = -1;
    EXPECT(ember_live_handles(&live_models, &live_datasets) == EMBER_OK && live_models == 0 && live_datasets == 0,
           "no live handles left");

    free(x);
    free(y);
    free(prob);
    free(prob2);
    free(bytes);
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("C smoke test: all checks passed (training loss %.4f -> %.4f, accuracy %d/%d)\n", losses[0], losses[19],
           correct, N);
    return 0;
}
