/*
 * C soak test of include/ember.h: N cycles (argument 1, default 1000) of create, fit, predict,
 * serialize, deserialize, save, load and free of a small iris-like MLP in one process. Reports
 * the resident set size's slope over the second half of the cycles (KiB per cycle, least squares)
 * and the live handles at the end; exits non-zero when a handle is left or the slope exceeds
 * argument 2 (KiB per cycle, default 4). Built by `make soak` like `make c-test`'s smoke test;
 * also checks that the engine refuses a network beyond the machine's memory (EMBER_ERR_MEMORY)
 * and that an interrupt check stops a prediction (EMBER_ERR_INTERRUPTED) with the model intact.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ember.h"

#define ROWS 150
#define COLS 4

static int failures = 0;

#define EXPECT(cond, what)                                                                          \
    do {                                                                                            \
        if (!(cond)) {                                                                              \
            fprintf(stderr, "FAIL %s:%d: %s (last error: %s)\n", __FILE__, __LINE__, what, ember_last_error()); \
            failures++;                                                                             \
        }                                                                                           \
    } while (0)

/* Resident set size in KiB (/proc/self/statm). */
static double rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (f == NULL) return 0;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
    fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / 1024.0;
}

/* Least-squares slope of y over x = from..n-1. */
static double slope(const double *y, int from, int n) {
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int m = n - from;
    if (m < 2) return 0;
    for (int i = from; i < n; i++) {
        sx += i;
        sy += y[i];
        sxx += (double)i * i;
        sxy += (double)i * y[i];
    }
    return (m * sxy - sx * sy) / (m * sxx - sx * sx);
}

/* An interrupt check that always asks to stop (the interrupt test). */
static int32_t always(void *context) {
    (void)context;
    return 1;
}

/* One cycle: fit a fresh model, predict, round-trip through bytes and a file, free everything. */
static void cycle(const char *config, const double *x, const double *y, const char *path, int seed) {
    ember_model *model = NULL, *copy = NULL, *loaded = NULL;
    ember_dataset *data = NULL;
    ember_trainer *trainer = NULL;
    ember_bytes *bytes = NULL;
    char cfg[8192];
    snprintf(cfg, sizeof cfg, config, seed);
    EXPECT(ember_model_new(&model, cfg) == EMBER_OK, "model_new");
    EXPECT(ember_dataset_new(&data, ROWS) == EMBER_OK, "dataset_new");
    EXPECT(ember_dataset_add_numeric(data, "num", x, COLS, EMBER_LAYOUT_ROW_MAJOR) == EMBER_OK, "add_numeric");
    EXPECT(ember_dataset_set_target(data, y, ROWS) == EMBER_OK, "set_target");
    EXPECT(ember_trainer_new(&trainer, model, "{\"batch_size\": 16, \"optimizer\": {\"kind\": \"adam\", \"lr\": 0.01}}") == EMBER_OK,
           "trainer_new");
    EXPECT(ember_trainer_fit(trainer, data, NULL, 2, 0, 2, NULL) == EMBER_OK, "fit");
    EXPECT(ember_trainer_finish(trainer) == EMBER_OK, "finish");
    double prob[ROWS * 3];
    EXPECT(ember_model_predict(model, data, 0, EMBER_LAYOUT_ROW_MAJOR, prob, ROWS * 3) == EMBER_OK, "predict");
    EXPECT(ember_model_serialize(model, &bytes) == EMBER_OK, "serialize");
    const uint8_t *p = NULL;
    int64_t n = 0;
    EXPECT(ember_bytes_data(bytes, &p, &n) == EMBER_OK, "bytes_data");
    EXPECT(ember_model_deserialize(&copy, p, n) == EMBER_OK, "deserialize");
    EXPECT(ember_model_save(copy, path) == EMBER_OK, "save");
    EXPECT(ember_model_load(&loaded, path) == EMBER_OK, "load");
    double again[ROWS * 3];
    EXPECT(ember_model_predict(loaded, data, 0, EMBER_LAYOUT_ROW_MAJOR, again, ROWS * 3) == EMBER_OK, "predict loaded");
    EXPECT(memcmp(prob, again, sizeof prob) == 0, "the loaded model predicts the same");
    ember_bytes_free(bytes);
    ember_trainer_free(trainer);
    ember_dataset_free(data);
    ember_model_free(loaded);
    ember_model_free(copy);
    ember_model_free(model);
}

int main(int argc, char **argv) {
    int cycles = argc > 1 ? atoi(argv[1]) : 1000;
    double bound = argc > 2 ? atof(argv[2]) : 4.0;
    if (cycles < 4) cycles = 4;
    /* Iris-like data: three Gaussian clusters in four dimensions (deterministic). */
    double x[ROWS * COLS], y[ROWS];
    unsigned state = 1;
    for (int i = 0; i < ROWS; i++) {
        y[i] = i % 3;
        for (int j = 0; j < COLS; j++) {
            state = state * 1103515245u + 12345u;
            x[i * COLS + j] = (double)y[i] * (j + 1) + (double)(state >> 16 & 0x7fff) / 32768.0;
        }
    }
    const char *net = NULL;
    EXPECT(ember_architecture("mlp", "{\"inputs\": {\"numeric\": 4}, \"neurons\": [32, 32]}", &net) == EMBER_OK, "architecture");
    char config[8192];
    snprintf(config, sizeof config, "{\"network\": %s, \"task\": \"multiclass\", \"n_classes\": 3, \"seed\": \"%%d\"}", net);
    char path[64];
    snprintf(path, sizeof path, "/tmp/ember-soak-%d.safetensors", (int)getpid());

    double *rss = calloc((size_t)cycles, sizeof *rss);
    for (int i = 0; i < cycles; i++) {
        cycle(config, x, y, path, i + 1);
        rss[i] = rss_kib();
    }
    unlink(path);
    int64_t models = -1, datasets = -1, trainers = -1, buffers = -1;
    EXPECT(ember_live_handles(&models, &datasets, &trainers, &buffers) == EMBER_OK, "live_handles");
    double s = slope(rss, cycles / 2, cycles);
    printf("C soak: %d cycles, RSS %.0f -> %.0f KiB, slope over the second half %.3f KiB/cycle, live handles %lld %lld %lld %lld\n",
           cycles, rss[0], rss[cycles - 1], s, (long long)models, (long long)datasets, (long long)trainers, (long long)buffers);
    EXPECT(models == 0 && datasets == 0 && trainers == 0 && buffers == 0, "no live handle after the cycles");
    EXPECT(s < bound, "flat RSS");
    free(rss);

    /* Limits: a network of 10^12 weights is refused before allocation, stating the bytes. */
    const char *huge = NULL;
    ember_model *refused = NULL;
    EXPECT(ember_architecture("mlp", "{\"inputs\": {\"numeric\": 4}, \"neurons\": [1000000, 1000000]}", &huge) == EMBER_OK,
           "huge architecture");
    char huge_config[8192];
    snprintf(huge_config, sizeof huge_config, "{\"network\": %s, \"task\": \"regression\", \"seed\": \"1\"}", huge);
    int32_t st = ember_model_new(&refused, huge_config);
    ember_error_detail d;
    ember_last_error_detail(&d);
    EXPECT(st == EMBER_ERR_MEMORY && strstr(ember_last_error(), "bytes") != NULL && refused == NULL,
           "a network beyond the machine's memory is EMBER_ERR_MEMORY naming the bytes");
    printf("refused: %s\n", ember_last_error());

    /* Interrupts: a prediction stops at once with EMBER_ERR_INTERRUPTED; the model still predicts. */
    ember_model *model = NULL;
    ember_dataset *data = NULL;
    char cfg[8192];
    snprintf(cfg, sizeof cfg, config, 1);
    EXPECT(ember_model_new(&model, cfg) == EMBER_OK && ember_dataset_new(&data, ROWS) == EMBER_OK &&
               ember_dataset_add_numeric(data, "num", x, COLS, EMBER_LAYOUT_ROW_MAJOR) == EMBER_OK,
           "interrupt test setup");
    double prob[ROWS * 3];
    EXPECT(ember_set_interrupt_check(always, NULL) == EMBER_OK, "set the interrupt check");
    EXPECT(ember_model_predict(model, data, 10, EMBER_LAYOUT_ROW_MAJOR, prob, ROWS * 3) == EMBER_ERR_INTERRUPTED,
           "an interrupt stops the prediction");
    EXPECT(ember_set_interrupt_check(NULL, NULL) == EMBER_OK, "remove the interrupt check");
    EXPECT(ember_model_predict(model, data, 10, EMBER_LAYOUT_ROW_MAJOR, prob, ROWS * 3) == EMBER_OK,
           "the model predicts after the interrupt");
    ember_dataset_free(data);
    ember_model_free(model);

    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("C soak OK\n");
    return 0;
}
