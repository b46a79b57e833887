/*
 * C smoke test of include/ember.h (ABI 2): builds an MLP from a predefined architecture, trains
 * it in slices (epochs and batch-limited) with validation, predicts, round-trips it through
 * bytes and a file, loads a model file written by R (argument 1, optional), reads image files,
 * and checks that bad arguments come back as status codes with messages and structured details.
 * Built by `make c-test` with -Wall -Wextra -Werror -pedantic. Exits non-zero on any failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"

static int failures = 0;

#define EXPECT(cond, what)                                                 \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "FAIL %s:%d: %s (last error: %s)\n", __FILE__, __LINE__, what, \
                    ember_last_error());                                   \
            failures++;                                                    \
        }                                                                  \
    } while (0)

/* Expects `status` to be the error `code`, with a message containing `needle` and (if not NULL)
   the structured detail naming `argument`. */
static void expect_error(int32_t status, int32_t code, const char *needle, const char *argument, const char *what) {
    ember_error_detail d;
    ember_last_error_detail(&d);
    const char *msg = ember_last_error();
    if (status != code || d.code != code || strstr(msg, needle) == NULL ||
        (argument != NULL && strcmp(d.argument, argument) != 0)) {
        fprintf(stderr, "FAIL %s: status %d (expected %d), message \"%s\" (expected \"%s\"), argument \"%s\" (expected \"%s\")\n",
                what, (int)status, (int)code, msg, needle, d.argument, argument ? argument : "(any)");
        failures++;
    }
}

/* Copies the thread's text result (valid until the next text-returning call). */
static char *copy_text(const char *text) {
    size_t n = strlen(text);
    char *out = malloc(n + 1);
    memcpy(out, text, n + 1);
    return out;
}

/* Iris rows 1, 51 and 101 (setosa, versicolor, virginica), row-major. */
static const double iris3[12] = {5.1, 3.5, 1.4, 0.2, 7.0, 3.2, 4.7, 1.4, 6.3, 3.3, 6.0, 2.5};

/* Loads a model file written from R (a 3-class iris MLP) and checks its predictions. */
static void check_r_model(const char *path) {
    ember_model *model = NULL;
    EXPECT(ember_model_load(&model, path) == EMBER_OK, "load the model file written by R");
    if (model == NULL) return;
    const char *info = NULL;
    EXPECT(ember_model_info(model, &info) == EMBER_OK && strstr(info, "\"multiclass\"") != NULL &&
               strstr(info, "mlr3ember.encoding") != NULL,
           "the R file describes itself (task, R encoding in the host metadata)");
    ember_dataset *rows = NULL;
    EXPECT(ember_dataset_new(&rows, 3) == EMBER_OK, "dataset for three iris rows");
    EXPECT(ember_dataset_add_numeric(rows, "num", iris3, 4, EMBER_LAYOUT_ROW_MAJOR) == EMBER_OK, "iris features");
    double prob[9];
    EXPECT(ember_model_predict(model, rows, 0, EMBER_LAYOUT_ROW_MAJOR, prob, 9) == EMBER_OK, "predict with the R model");
    for (int i = 0; i < 3; i++) {
        int best = 0;
        for (int j = 1; j < 3; j++)
            if (prob[i * 3 + j] > prob[i * 3 + best]) best = j;
        EXPECT(best == i, "the R model classifies setosa, versicolor and virginica");
    }
    printf("R model %s: P(class of row) = %.3f %.3f %.3f\n", path, prob[0], prob[4], prob[8]);
    ember_dataset_free(rows);
    ember_model_free(model);
}

/* Image files (run from the repository root): header, CHW pixels, an input of files, errors. */
static void check_images(void) {
    const char *files[3] = {"Tests/EmberNNTests/Fixtures/images/rgb.png", "Tests/EmberNNTests/Fixtures/images/gray.jpg",
                            "Tests/EmberNNTests/Fixtures/images/palette.png"};
    int64_t c = 0, h = 0, w = 0;
    EXPECT(ember_image_info(files[0], &c, &h, &w) == EMBER_OK && c == 3 && h == 5 && w == 7, "image header");
    uint8_t rgb[3 * 5 * 7], gray[5 * 7];
    EXPECT(ember_image_read(files[0], 3, rgb, (int64_t)sizeof rgb) == EMBER_OK, "read RGB planes");
    EXPECT(ember_image_read(files[0], 1, gray, (int64_t)sizeof gray) == EMBER_OK, "read as gray");
    /* CHW: pixel (row 2, column 3) is rgb[c * 35 + 2 * 7 + 3]; gray is PIL's ITU-R 601-2 luma. */
    int p = 2 * 7 + 3;
    EXPECT(gray[p] == (uint8_t)((rgb[p] * 19595u + rgb[35 + p] * 38470u + rgb[70 + p] * 7471u + 0x8000u) >> 16),
           "luma of one pixel");
    expect_error(ember_image_read(files[0], 3, rgb, 10), EMBER_ERR_SHAPE, "out_length is 10", "out_length", "short buffer");
    expect_error(ember_image_read("Tests/EmberNNTests/Fixtures/images/cmyk.jpg", 3, rgb, (int64_t)sizeof rgb),
                 EMBER_ERR_INVALID_ARGUMENT, "is a CMYK JPEG", "path", "CMYK JPEG refused");

    ember_dataset *images = NULL;
    EXPECT(ember_dataset_new(&images, 3) == EMBER_OK, "dataset of three images");
    EXPECT(ember_dataset_add_image_files(images, "image", files, 3, 3, 5, 7) == EMBER_OK, "add image files");
    const char *missing[3] = {files[0], NULL, files[2]};
    expect_error(ember_dataset_add_image_files(images, "other", missing, 3, 3, 5, 7), EMBER_ERR_INVALID_ARGUMENT,
                 "paths[1] (0-based) is NULL", "paths", "NULL path");
    const char *net = NULL;
    EXPECT(ember_architecture("resnet", "{\"inputs\": {\"image\": [3, 5, 7]}, \"channels\": 4, \"n_blocks\": 1}", &net) == EMBER_OK,
           "resnet for 5 x 7 images");
    char config[8192];
    snprintf(config, sizeof config, "{\"network\": %s, \"task\": \"regression\", \"seed\": \"1\"}", net);
    ember_model *model = NULL;
    EXPECT(ember_model_new(&model, config) == EMBER_OK, "image model");
    double out[3] = {NAN, NAN, NAN};
    EXPECT(ember_model_predict(model, images, 2, EMBER_LAYOUT_ROW_MAJOR, out, 3) == EMBER_OK && isfinite(out[0]) &&
               isfinite(out[1]) && isfinite(out[2]),
           "predict from image files");
    ember_model_free(model);
    ember_dataset_free(images);
}

int main(int argc, char **argv) {
    EXPECT(ember_abi_version() == EMBER_ABI_VERSION, "ABI version matches the header");
    const char *version = NULL, *core = NULL;
    EXPECT(ember_version(&version) == EMBER_OK && version != NULL, "version");
    EXPECT(ember_blas_core_name(&core) == EMBER_OK && core != NULL && core[0] != '\0', "BLAS core name");
    const char *advice = NULL;
    EXPECT(ember_blas_core_advice(&advice) == EMBER_OK, "BLAS core advice");
    if (advice != NULL) printf("advice: %s\n", advice);
    EXPECT(ember_set_num_threads(1) == EMBER_OK, "set threads");
    int32_t threads = 0;
    EXPECT(ember_get_num_threads(&threads) == EMBER_OK && threads == 1, "get threads");
    printf("ember %s (ABI %d), BLAS core %s\n", version, (int)ember_abi_version(), core);
    const char *vocabulary = NULL;
    EXPECT(ember_vocabulary(&vocabulary) == EMBER_OK && vocabulary != NULL && strstr(vocabulary, "\"multihead_attention\"") != NULL,
           "vocabulary lists the ops");

    /* Two Gaussian blobs in 2-D; row-major x, class 1 = positive. */
    enum { N = 200, P = 2 };
    double *x = malloc(sizeof(double) * N * P);
    double *y = malloc(sizeof(double) * N);
    for (int i = 0; i < N; i++) {
        int label = i % 2;
        double jitter = (double)((i * 7919) % 101) / 101.0 - 0.5;
        x[i * P] = (label ? 2.0 : -2.0) + jitter;
        x[i * P + 1] = (label ? -1.0 : 1.0) - jitter;
        y[i] = label;
    }

    /* The network: a predefined MLP for 2 numeric features, as a description. */
    const char *net = NULL;
    EXPECT(ember_architecture("mlp", "{\"inputs\": {\"numeric\": 2}, \"neurons\": [16]}", &net) == EMBER_OK, "architecture");
    char config[4096];
    snprintf(config, sizeof config,
             "{\"network\": %s, \"task\": \"binary\", \"class_names\": [\"pos\", \"neg\"], \"seed\": \"42\"}", net);
    ember_model *model = NULL;
    EXPECT(ember_model_new(&model, config) == EMBER_OK, "model_new");
    ember_dataset *data = NULL;
    EXPECT(ember_dataset_new(&data, N) == EMBER_OK, "dataset_new");
    EXPECT(ember_dataset_add_numeric(data, "num", x, P, EMBER_LAYOUT_ROW_MAJOR) == EMBER_OK, "add numeric input");
    EXPECT(ember_dataset_set_target(data, y, N) == EMBER_OK, "set target");
    ember_trainer *trainer = NULL;
    EXPECT(ember_trainer_new(&trainer, model,
                             "{\"batch_size\": 16, \"optimizer\": {\"kind\": \"adam\", \"lr\": 0.01}, "
                             "\"measures_valid\": [\"accuracy\"], \"patience\": 5}") == EMBER_OK,
           "trainer_new");

    /* Slices: 5 batches (inside the first epoch of 13), then whole epochs up to 20. */
    const char *records = NULL;
    EXPECT(ember_trainer_fit(trainer, data, data, 20, 5, 20, &records) == EMBER_OK && strcmp(records, "[]") == 0,
           "a batch-limited slice completes no epoch");
    int epochs_done = 0;
    char *last_record = copy_text("[]");
    while (epochs_done < 20) {
        EXPECT(ember_trainer_fit(trainer, data, data, 1, 0, 20, &records) == EMBER_OK, "fit one epoch");
        if (strcmp(records, "[]") == 0) break; /* early stopping: patience ran out */
        free(last_record);
        last_record = copy_text(records);
        epochs_done++;
    }
    const char *state = NULL;
    EXPECT(ember_trainer_state(trainer, &state) == EMBER_OK && strstr(state, "\"epoch_in_progress\":false") != NULL,
           "no epoch in progress");
    int64_t vrows = 0, vcols = 0;
    EXPECT(ember_trainer_valid_predictions(trainer, EMBER_LAYOUT_ROW_MAJOR, NULL, 0, &vrows, &vcols) == EMBER_OK &&
               vrows == N && vcols == 2,
           "validation predictions shape");
    EXPECT(ember_trainer_set_option(trainer, "lr", 0.001, -1) == EMBER_OK, "set lr between slices");
    EXPECT(ember_trainer_finish(trainer) == EMBER_OK, "finish");

    int32_t cols = 0;
    EXPECT(ember_model_prediction_columns(model, &cols) == EMBER_OK && cols == 2, "two probability columns");
    double *prob = malloc(sizeof(double) * N * 2);
    EXPECT(ember_model_predict(model, data, 0, EMBER_LAYOUT_ROW_MAJOR, prob, N * 2) == EMBER_OK, "predict");
    int correct = 0;
    for (int i = 0; i < N; i++) correct += ((prob[i * 2] > 0.5) == (y[i] == 1.0));
    EXPECT(correct >= N - 2, "training accuracy");
    EXPECT(fabs(prob[0] + prob[1] - 1.0) < 1e-6, "probabilities sum to one");

    /* The network node by node, and gradient × input attributions of the positive logit. */
    const char *summary = NULL;
    EXPECT(ember_model_summary(model, &summary) == EMBER_OK && strstr(summary, "\"flops\"") != NULL, "summary");
    double *attr = malloc(sizeof(double) * N * P);
    const int32_t first_output = 0;
    EXPECT(ember_model_attributions(model, data, "num", &first_output, 1, 0, EMBER_LAYOUT_ROW_MAJOR, attr, N * P) == EMBER_OK &&
               isfinite(attr[0]), "attributions");
    expect_error(ember_model_attributions(model, data, "nope", &first_output, 1, 0, EMBER_LAYOUT_ROW_MAJOR, attr, N * P),
                 EMBER_ERR_INVALID_ARGUMENT, "no input 'nope'", "input", "attributions of an unknown input");
    free(attr);

    /* Bytes and files. */
    ember_bytes *bytes = NULL;
    const uint8_t *raw = NULL;
    int64_t size = 0;
    EXPECT(ember_model_serialize(model, &bytes) == EMBER_OK, "serialize");
    EXPECT(ember_bytes_data(bytes, &raw, &size) == EMBER_OK && size > 8, "bytes");
    ember_model *copy = NULL;
    EXPECT(ember_model_deserialize(&copy, raw, size) == EMBER_OK, "deserialize");
    double *prob2 = malloc(sizeof(double) * N * 2);
    EXPECT(ember_model_predict(copy, data, 0, EMBER_LAYOUT_ROW_MAJOR, prob2, N * 2) == EMBER_OK, "predict with the copy");
    EXPECT(memcmp(prob, prob2, sizeof(double) * N * 2) == 0, "copy predicts identically");
    EXPECT(ember_model_save(model, ".build/c-test/smoke-model.safetensors") == EMBER_OK, "save");
    ember_model *loaded = NULL;
    EXPECT(ember_model_load(&loaded, ".build/c-test/smoke-model.safetensors") == EMBER_OK, "load");
    uint64_t rng[4] = {0, 0, 0, 0};
    EXPECT(ember_model_get_rng_state(loaded, rng) == EMBER_OK && (rng[0] | rng[1] | rng[2] | rng[3]) != 0, "rng state");

    /* Errors: status code plus a message and a detail naming the argument. */
    ember_model *bad = NULL;
    expect_error(ember_model_new(NULL, config), EMBER_ERR_INVALID_ARGUMENT, "out_model", "out_model", "NULL out parameter");
    expect_error(ember_model_new(&bad, "{\"task\": \"binary\"}"), EMBER_ERR_INVALID_ARGUMENT, "network", "network",
                 "missing network");
    expect_error(ember_architecture("mlp", "{\"inputs\": {\"numeric\": 2}, \"p\": 1.5}", &net), EMBER_ERR_INVALID_ARGUMENT,
                 "[0, 1)", "p", "dropout out of range");
    EXPECT(bad == NULL, "out parameter untouched on failure");
    ember_trainer *bad_trainer = NULL;
    expect_error(ember_trainer_new(&bad_trainer, model, "{\"batch_size\": 0}"), EMBER_ERR_INVALID_ARGUMENT, "batch_size",
                 "batch_size", "zero batch size");
    expect_error(ember_trainer_new(&bad_trainer, model, "{\"optimizer\": {\"kind\": \"adamax\"}}"),
                 EMBER_ERR_INVALID_ARGUMENT, "adamax", "optimizer.kind", "unknown optimizer");
    expect_error(ember_model_predict(model, data, 0, EMBER_LAYOUT_ROW_MAJOR, prob, 5), EMBER_ERR_SHAPE, "out_len",
                 "out_len", "short output buffer");
    ember_dataset *wide = NULL;
    EXPECT(ember_dataset_new(&wide, 2) == EMBER_OK, "small dataset");
    EXPECT(ember_dataset_add_numeric(wide, "num", x, 3, EMBER_LAYOUT_ROW_MAJOR) == EMBER_OK, "three columns");
    expect_error(ember_model_predict(model, wide, 0, EMBER_LAYOUT_ROW_MAJOR, prob, 4), EMBER_ERR_SHAPE,
                 "input 'num' has shape [2, 3]", NULL, "wrong column count");
    double with_nan[2] = {1.0, NAN};
    expect_error(ember_dataset_set_target(wide, with_nan, 2), EMBER_ERR_INVALID_ARGUMENT, "target 1", "y", "NaN target");
    ember_error_detail detail;
    ember_last_error_detail(&detail);
    EXPECT(detail.index == 1 && strcmp(detail.got, "nan") == 0, "detail: index and value");
    const int32_t negative_class[2] = {0, -1};
    expect_error(ember_dataset_set_target_classes(wide, negative_class, 2), EMBER_ERR_INVALID_ARGUMENT,
                 "target 1 (0-based) is -1; expected a class index >= 0", "y", "negative class index");
    expect_error(ember_dataset_new(&wide, -1), EMBER_ERR_INVALID_ARGUMENT, "n_rows", "n_rows", "negative rows");
    expect_error(ember_model_deserialize(&bad, raw, 4), EMBER_ERR_CORRUPT, "safetensors", NULL, "truncated bytes");
    expect_error(ember_model_load(&bad, "/nonexistent.safetensors"), EMBER_ERR_INVALID_ARGUMENT, "cannot open", "path",
                 "missing file");
    EXPECT(ember_model_free(NULL) == EMBER_OK && ember_dataset_free(NULL) == EMBER_OK &&
               ember_trainer_free(NULL) == EMBER_OK && ember_bytes_free(NULL) == EMBER_OK,
           "free(NULL) is a no-op");

    EXPECT(ember_model_free(copy) == EMBER_OK, "free copy");
    expect_error(ember_model_free(copy), EMBER_ERR_INVALID_ARGUMENT, "not a live ember_model", "model", "double free");
    expect_error(ember_model_predict(copy, data, 0, 0, prob, N * 2), EMBER_ERR_INVALID_ARGUMENT, "not a live", "model",
                 "use after free");
    expect_error(ember_trainer_fit(trainer, (const ember_dataset *)model, NULL, 1, 0, 0, NULL),
                 EMBER_ERR_INVALID_ARGUMENT, "not a live ember_dataset", "train", "model passed as dataset");

    if (argc > 1) check_r_model(argv[1]);
    check_images();

    EXPECT(ember_bytes_free(bytes) == EMBER_OK, "free bytes");
    EXPECT(ember_dataset_free(wide) == EMBER_OK && ember_dataset_free(data) == EMBER_OK, "free datasets");
    EXPECT(ember_trainer_free(trainer) == EMBER_OK, "free trainer");
    EXPECT(ember_model_free(model) == EMBER_OK && ember_model_free(loaded) == EMBER_OK, "free models");
    int64_t live[4] = {-1, -1, -1, -1};
    EXPECT(ember_live_handles(&live[0], &live[1], &live[2], &live[3]) == EMBER_OK && live[0] == 0 && live[1] == 0 &&
               live[2] == 0 && live[3] == 0,
           "no live handles left");

    free(x);
    free(y);
    free(prob);
    free(prob2);
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        free(last_record);
        return 1;
    }
    printf("C smoke test: all checks passed (%d epochs, last record %s, accuracy %d/%d)\n", epochs_done, last_record,
           correct, N);
    free(last_record);
    return 0;
}
