/*
 * The .Call glue between R and the Ember engine (include/ember.h).
 *
 * Rules (docs/architecture.md#c-abi-contract): Swift never calls the R API and R never longjmps through Swift
 * frames: every engine call returns first, then this file raises the R condition (through the
 * package's R function ember_signal_engine_error(), which turns the engine's structured error
 * detail into a classed condition with 1-based indices; the engine writes its messages counting
 * from 1, set at load). Models, datasets and trainers live in
 * external pointers with finalizers; a pointer that was saved without marshaling reads back as
 * NULL, and a handle created in another process (a fork) is refused.
 */
#include <R.h>
#include <Rinternals.h>
#include <R_ext/Rdynload.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include <pthread.h>
#include <unistd.h>

#include "ember.h"

/* ---- Errors ---------------------------------------------------------------------------------- */

static SEXP mk_string_or_na(const char *s) {
    return (s != NULL && s[0] != '\0') ? Rf_mkCharCE(s, CE_UTF8) : NA_STRING;
}

/* The engine's last error as the list ember_signal_engine_error() takes (read at once: the next
   engine call clears it). The caller protects it. */
static SEXP engine_error_info(int32_t status, const char *what) {
    ember_error_detail d;
    memset(&d, 0, sizeof d);
    ember_last_error_detail(&d);
    const char *names[] = {"status", "what", "message", "op", "layer", "argument", "index", "expected", "got"};
    SEXP info = PROTECT(Rf_allocVector(VECSXP, 9));
    SEXP nms = PROTECT(Rf_allocVector(STRSXP, 9));
    for (int i = 0; i < 9; i++) SET_STRING_ELT(nms, i, Rf_mkChar(names[i]));
    Rf_setAttrib(info, R_NamesSymbol, nms);
    SET_VECTOR_ELT(info, 0, Rf_ScalarInteger((int)status));
    SET_VECTOR_ELT(info, 1, Rf_mkString(what));
    SET_VECTOR_ELT(info, 2, Rf_ScalarString(mk_string_or_na(d.message ? d.message : ember_last_error())));
    SET_VECTOR_ELT(info, 3, Rf_ScalarString(mk_string_or_na(d.op)));
    SET_VECTOR_ELT(info, 4, Rf_ScalarString(mk_string_or_na(d.layer)));
    SET_VECTOR_ELT(info, 5, Rf_ScalarString(mk_string_or_na(d.argument)));
    SET_VECTOR_ELT(info, 6, Rf_ScalarReal(d.index >= 0 ? (double)d.index : NA_REAL));
    SET_VECTOR_ELT(info, 7, Rf_ScalarString(mk_string_or_na(d.expected)));
    SET_VECTOR_ELT(info, 8, Rf_ScalarString(mk_string_or_na(d.got)));
    UNPROTECT(2);
    return info;
}

/* Signals an error built by engine_error_info() as a classed R condition: does not return. */
static void signal_engine_error(SEXP info) {
    PROTECT(info);
    SEXP ns = PROTECT(R_FindNamespace(Rf_mkString("mlr3ember")));
    SEXP fn = PROTECT(Rf_findFun(Rf_install("ember_signal_engine_error"), ns));
    SEXP call = PROTECT(Rf_lang2(fn, info));
    Rf_eval(call, ns); /* signals an R error: does not return */
    UNPROTECT(4);
    Rf_error("%s failed (status %d): %s", CHAR(STRING_ELT(VECTOR_ELT(info, 1), 0)), INTEGER(VECTOR_ELT(info, 0))[0],
             CHAR(STRING_ELT(VECTOR_ELT(info, 2), 0)));
}

/* Raises the engine's last error as a classed R condition (after the engine call returned). */
static void stop_engine(int32_t status, const char *what) {
    signal_engine_error(engine_error_info(status, what));
}

/* Raises a classed R error (ember_error_<kind>, naming `arg`) for a problem the glue finds itself. */
static void stop_glue(const char *kind, const char *arg, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    SEXP ns = PROTECT(R_FindNamespace(Rf_mkString("mlr3ember")));
    SEXP fn = PROTECT(Rf_findFun(Rf_install("ember_signal_glue_error"), ns));
    SEXP m = PROTECT(Rf_mkString(msg));
    SEXP k = PROTECT(Rf_mkString(kind));
    SEXP a = PROTECT(arg != NULL ? Rf_mkString(arg) : Rf_ScalarString(NA_STRING));
    SEXP call = PROTECT(Rf_lang4(fn, m, k, a));
    Rf_eval(call, ns); /* signals an R error: does not return */
    UNPROTECT(6);
    Rf_error("%s", msg);
}

#define CHECK(call, what)                            \
    do {                                             \
        int32_t st_ = (call);                        \
        if (st_ != EMBER_OK) stop_engine(st_, what); \
    } while (0)

/* ---- Interrupts ------------------------------------------------------------------------------ */

/* The engine polls this between batches (training, validation, prediction) on the thread that
   called it. On R's thread, a pending Ctrl-C is taken inside R_ToplevelExec, so that R's jump ends
   there and never crosses the engine's frames; the engine then returns EMBER_ERR_INTERRUPTED and
   stop_engine() raises an error of class ember_error_interrupted. R is asked at most every 20 ms. */
static pthread_t r_main_thread;

static void check_interrupt(void *unused) {
    (void)unused;
    R_CheckUserInterrupt();
}

static int32_t r_interrupt_pending(void *context) {
    (void)context;
    static double last = 0;
    if (!pthread_equal(pthread_self(), r_main_thread)) return 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double t = (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
    if (t - last < 0.02) return 0;
    last = t;
    return R_ToplevelExec(check_interrupt, NULL) ? 0 : 1;
}

/* ---- External pointers ----------------------------------------------------------------------- */

static void model_finalizer(SEXP ptr) {
    void *p = R_ExternalPtrAddr(ptr);
    if (p == NULL) return;
    ember_model_free((ember_model *)p);
    R_ClearExternalPtr(ptr);
}

static void dataset_finalizer(SEXP ptr) {
    void *p = R_ExternalPtrAddr(ptr);
    if (p == NULL) return;
    ember_dataset_free((ember_dataset *)p);
    R_ClearExternalPtr(ptr);
}

static void trainer_finalizer(SEXP ptr) {
    void *p = R_ExternalPtrAddr(ptr);
    if (p == NULL) return;
    ember_trainer_free((ember_trainer *)p);
    R_ClearExternalPtr(ptr);
}

/* Whether the external pointer was created in this process (its tag records the creating pid). */
static int same_process(SEXP ptr) {
    SEXP tag = R_ExternalPtrTag(ptr);
    return TYPEOF(tag) != INTSXP || LENGTH(tag) != 1 || INTEGER(tag)[0] == (int)getpid();
}

/* The tag of every external pointer records the creating process id. */
static SEXP wrap_pointer(void *p, const char *cls, R_CFinalizer_t fin) {
    SEXP tag = PROTECT(Rf_ScalarInteger((int)getpid()));
    SEXP ptr = PROTECT(R_MakeExternalPtr(p, tag, R_NilValue));
    R_RegisterCFinalizerEx(ptr, fin, TRUE);
    Rf_setAttrib(ptr, R_ClassSymbol, Rf_mkString(cls));
    UNPROTECT(2);
    return ptr;
}

static void *unwrap_pointer(SEXP ptr, const char *cls, const char *arg) {
    if (TYPEOF(ptr) != EXTPTRSXP || !Rf_inherits(ptr, cls))
        stop_glue("invalid_argument", arg, "'%s' must be an external pointer of class '%s'", arg, cls);
    void *p = R_ExternalPtrAddr(ptr);
    if (p == NULL)
        stop_glue("stale_handle", arg, "'%s' is a stale Ember handle: the object was saved or sent to another process "
                 "without marshaling (use ember_serialize() or mlr3's $marshal() before saveRDS(), "
                 "ember_save() for files, or refit)", arg);
    if (!same_process(ptr))
        stop_glue("stale_handle", arg, "'%s' was created in another process (pid %d; this is %d), e.g. before a fork: "
                 "serialize the model to move it between processes", arg, INTEGER(R_ExternalPtrTag(ptr))[0], (int)getpid());
    return p;
}

#define MODEL(x) ((ember_model *)unwrap_pointer(x, "ember_model_ptr", "model"))
#define DATASET(x, arg) ((ember_dataset *)unwrap_pointer(x, "ember_dataset_ptr", arg))
#define TRAINER(x) ((ember_trainer *)unwrap_pointer(x, "ember_trainer_ptr", "trainer"))

static int scalar_int(SEXP x, const char *arg) {
    if (!Rf_isNumeric(x) || Rf_length(x) != 1) stop_glue("invalid_argument", arg, "'%s' must be a single number", arg);
    double v = Rf_asReal(x);
    if (!R_FINITE(v) || v != (double)(int)v) stop_glue("invalid_argument", arg, "'%s' must be a finite integer, got %g", arg, v);
    return (int)v;
}

static double scalar_real(SEXP x, const char *arg) {
    if (!Rf_isNumeric(x) || Rf_length(x) != 1) stop_glue("invalid_argument", arg, "'%s' must be a single number", arg);
    return Rf_asReal(x);
}

static const char *scalar_string(SEXP x, const char *arg) {
    if (TYPEOF(x) != STRSXP || Rf_length(x) != 1 || STRING_ELT(x, 0) == NA_STRING)
        stop_glue("invalid_argument", arg, "'%s' must be a single string", arg);
    return Rf_translateCharUTF8(STRING_ELT(x, 0));
}

static SEXP text_result(const char *text) {
    SEXP out = PROTECT(Rf_allocVector(STRSXP, 1));
    SET_STRING_ELT(out, 0, Rf_mkCharCE(text ? text : "", CE_UTF8));
    UNPROTECT(1);
    return out;
}

/* Copies an engine byte buffer into a raw vector and frees it. */
static SEXP bytes_result(ember_bytes *bytes, const char *what) {
    const uint8_t *data = NULL;
    int64_t size = 0;
    int32_t st = ember_bytes_data(bytes, &data, &size);
    if (st != EMBER_OK) {
        ember_bytes_free(bytes);
        stop_engine(st, what);
    }
    if (size > R_XLEN_T_MAX) {
        ember_bytes_free(bytes);
        stop_glue("overflow", NULL, "%s: %lld bytes are too many for an R raw vector", what, (long long)size);
    }
    SEXP out = PROTECT(Rf_allocVector(RAWSXP, (R_xlen_t)size));
    if (size > 0) memcpy(RAW(out), data, (size_t)size);
    ember_bytes_free(bytes);
    UNPROTECT(1);
    return out;
}

/* ---- Engine ---------------------------------------------------------------------------------- */

SEXP C_ember_abi_version(void) { return Rf_ScalarInteger(ember_abi_version()); }

/* EMBER_ABI_VERSION of the header this glue was compiled against (the one place it is written). */
SEXP C_ember_abi_header(void) { return Rf_ScalarInteger(EMBER_ABI_VERSION); }

SEXP C_ember_info(void) {
    const char *core = NULL, *version = NULL, *advice = NULL;
    int32_t threads = 0;
    CHECK(ember_version(&version), "ember_version");
    CHECK(ember_blas_core_name(&core), "ember_blas_core_name");
    CHECK(ember_blas_core_advice(&advice), "ember_blas_core_advice");
    CHECK(ember_get_num_threads(&threads), "ember_get_num_threads");
    const char *names[] = {"version", "abi_version", "blas_core", "blas_advice", "num_threads"};
    SEXP out = PROTECT(Rf_allocVector(VECSXP, 5));
    SEXP nms = PROTECT(Rf_allocVector(STRSXP, 5));
    SET_VECTOR_ELT(out, 0, Rf_mkString(version));
    SET_VECTOR_ELT(out, 1, Rf_ScalarInteger(ember_abi_version()));
    SET_VECTOR_ELT(out, 2, Rf_mkString(core ? core : "unknown"));
    SET_VECTOR_ELT(out, 3, advice ? Rf_mkString(advice) : Rf_ScalarString(NA_STRING));
    SET_VECTOR_ELT(out, 4, Rf_ScalarInteger(threads));
    for (int i = 0; i < 5; i++) SET_STRING_ELT(nms, i, Rf_mkChar(names[i]));
    Rf_setAttrib(out, R_NamesSymbol, nms);
    UNPROTECT(2);
    return out;
}

SEXP C_ember_vocabulary(void) {
    const char *json = NULL;
    CHECK(ember_vocabulary(&json), "ember_vocabulary");
    return Rf_mkString(json);
}

SEXP C_ember_set_message_index_base(SEXP base) {
    CHECK(ember_set_message_index_base(scalar_int(base, "base")), "setting the message index base");
    return R_NilValue;
}

SEXP C_ember_set_threads(SEXP threads) {
    CHECK(ember_set_num_threads(scalar_int(threads, "num_threads")), "setting num_threads");
    return R_NilValue;
}

SEXP C_ember_live_handles(void) {
    int64_t counts[4] = {0, 0, 0, 0};
    CHECK(ember_live_handles(&counts[0], &counts[1], &counts[2], &counts[3]), "ember_live_handles");
    const char *names[] = {"models", "datasets", "trainers", "bytes"};
    SEXP out = PROTECT(Rf_allocVector(REALSXP, 4));
    SEXP nms = PROTECT(Rf_allocVector(STRSXP, 4));
    for (int i = 0; i < 4; i++) {
        REAL(out)[i] = (double)counts[i];
        SET_STRING_ELT(nms, i, Rf_mkChar(names[i]));
    }
    Rf_setAttrib(out, R_NamesSymbol, nms);
    UNPROTECT(2);
    return out;
}

SEXP C_ember_architecture(SEXP name, SEXP options) {
    const char *out = NULL;
    CHECK(ember_architecture(scalar_string(name, "name"), scalar_string(options, "options"), &out), "building the architecture");
    return text_result(out);
}

SEXP C_ember_is_valid(SEXP ptr) {
    if (TYPEOF(ptr) != EXTPTRSXP) return Rf_ScalarLogical(0);
    if (R_ExternalPtrAddr(ptr) == NULL) return Rf_ScalarLogical(0);
    SEXP tag = R_ExternalPtrTag(ptr);
    return Rf_ScalarLogical(TYPEOF(tag) == INTSXP && LENGTH(tag) == 1 && same_process(ptr));
}

/* 0: usable here; 1: stale (saved without marshaling: NULL address); 2: created in another process. */
SEXP C_ember_handle_state(SEXP ptr) {
    if (TYPEOF(ptr) != EXTPTRSXP || R_ExternalPtrAddr(ptr) == NULL) return Rf_ScalarInteger(1);
    SEXP tag = R_ExternalPtrTag(ptr);
    return Rf_ScalarInteger(TYPEOF(tag) == INTSXP && LENGTH(tag) == 1 && same_process(ptr) ? 0 : 2);
}

/* Frees an engine object now (instead of at garbage collection). */
SEXP C_ember_release(SEXP ptr) {
    if (TYPEOF(ptr) != EXTPTRSXP || R_ExternalPtrAddr(ptr) == NULL) return R_NilValue;
    if (!same_process(ptr)) return R_NilValue;
    if (Rf_inherits(ptr, "ember_model_ptr")) model_finalizer(ptr);
    else if (Rf_inherits(ptr, "ember_dataset_ptr")) dataset_finalizer(ptr);
    else if (Rf_inherits(ptr, "ember_trainer_ptr")) trainer_finalizer(ptr);
    return R_NilValue;
}

/* ---- Models ---------------------------------------------------------------------------------- */

SEXP C_ember_model_new(SEXP config) {
    ember_model *m = NULL;
    CHECK(ember_model_new(&m, scalar_string(config, "config")), "creating the model");
    return wrap_pointer(m, "ember_model_ptr", model_finalizer);
}

SEXP C_ember_model_info(SEXP model) {
    const char *out = NULL;
    CHECK(ember_model_info(MODEL(model), &out), "describing the model");
    return text_result(out);
}

SEXP C_ember_model_set_host(SEXP model, SEXP key, SEXP value) {
    ember_model *m = MODEL(model);
    const char *v = Rf_isNull(value) ? NULL : scalar_string(value, "value");
    CHECK(ember_model_set_host_metadata(m, scalar_string(key, "key"), v), "setting host metadata");
    return R_NilValue;
}

/* Predictions (or, with logits, raw outputs) as a column-major matrix of `columns` columns: the
   model's prediction columns, or its outputs for logits (R knows both from ember_model_info). */
SEXP C_ember_model_predict(SEXP model, SEXP dataset, SEXP batch_size, SEXP logits, SEXP columns) {
    ember_model *m = MODEL(model);
    ember_dataset *d = DATASET(dataset, "data");
    int bs = scalar_int(batch_size, "batch_size");
    int cols = scalar_int(columns, "columns");
    if (cols < 1) stop_glue("invalid_argument", "columns", "'columns' must be >= 1");
    int64_t rows = 0;
    CHECK(ember_dataset_rows(d, &rows), "predict");
    if (rows > INT32_MAX) stop_glue("overflow", NULL, "too many rows");
    SEXP out = PROTECT(Rf_allocMatrix(REALSXP, (int)rows, cols));
    int64_t len = rows * (int64_t)cols;
    if (Rf_asLogical(logits) == 1) CHECK(ember_model_logits(m, d, bs, EMBER_LAYOUT_COLUMN_MAJOR, REAL(out), len), "predict");
    else CHECK(ember_model_predict(m, d, bs, EMBER_LAYOUT_COLUMN_MAJOR, REAL(out), len), "predict");
    UNPROTECT(1);
    return out;
}

/* ---- Prediction through a plan ---------------------------------------------------------------- */

/* predict.ember_model()'s fast path for tabular models (see prediction_plan() in R/model.R): the
 * columns of `newdata` (a data.frame, or a plain matrix) are checked and encoded here, copied into
 * an engine dataset, predicted and the dataset freed, in one call. Anything this path does not
 * take as it is (a missing column, another type, a classed column, NA in an integer or logical
 * column, a level unseen in training, a character column, zero rows, a stale handle, batch_size
 * or num_threads that are not plain counts) returns NULL before the engine is called, and R takes
 * the general path, which raises the error or warning the user gets. NA, NaN and infinities in
 * double columns are found by the engine as it copies them (one vectorised pass) and also give
 * NULL, before anything is predicted. */

static SEXP plan_elt(SEXP plan, const char *name) {
    SEXP nms = Rf_getAttrib(plan, R_NamesSymbol);
    for (R_xlen_t i = 0; i < XLENGTH(plan); i++)
        if (strcmp(CHAR(STRING_ELT(nms, i)), name) == 0) return VECTOR_ELT(plan, i);
    Rf_error("internal: the prediction plan has no '%s'", name);
    return R_NilValue;
}

/* A whole number in [1, upper] given as one plain integer or double, else 0. */
static int plain_count(SEXP x, int upper) {
    if (OBJECT(x) || XLENGTH(x) != 1) return 0;
    if (TYPEOF(x) == INTSXP) {
        int v = INTEGER(x)[0];
        return v != NA_INTEGER && v >= 1 && v <= upper ? v : 0;
    }
    if (TYPEOF(x) == REALSXP) {
        double v = REAL(x)[0];
        return R_FINITE(v) && v >= 1 && v <= (double)upper && v == (double)(int)v ? (int)v : 0;
    }
    return 0;
}

static int same_string(SEXP a, SEXP b) {
    if (a == b) return 1;
    if (a == NA_STRING || b == NA_STRING) return 0;
    return strcmp(Rf_translateCharUTF8(a), Rf_translateCharUTF8(b)) == 0;
}

/* The column `name` of a data.frame (the first of that name), or of a matrix (its index in
 * `colnames`, as a column of the data.frame R would make of it); -1 when absent. */
static R_xlen_t column_index(SEXP colnames, SEXP name) {
    if (TYPEOF(colnames) != STRSXP) return -1;
    for (R_xlen_t j = 0; j < XLENGTH(colnames); j++)
        if (same_string(STRING_ELT(colnames, j), name)) return j;
    return -1;
}

/* 0-based codes of a factor's values in `levels` (the training levels): 1 when every value is a
 * known level, else 0 (NA, unseen level, not a factor). */
static int factor_codes(SEXP col, SEXP levels, int *codes, int n) {
    if (!Rf_isFactor(col) || XLENGTH(col) != n || !Rf_isNull(Rf_getAttrib(col, R_DimSymbol))) return 0;
    SEXP own = Rf_getAttrib(col, R_LevelsSymbol);
    if (TYPEOF(own) != STRSXP) return 0;
    int m = LENGTH(own), k = LENGTH(levels);
    int *map = (int *)R_alloc((size_t)m + 1, sizeof(int));
    for (int i = 0; i < m; i++) {
        SEXP l = STRING_ELT(own, i);
        map[i] = -1;
        if (i < k && same_string(l, STRING_ELT(levels, i))) map[i] = i;
        else
            for (int j = 0; j < k; j++)
                if (same_string(l, STRING_ELT(levels, j))) { map[i] = j; break; }
    }
    const int *v = INTEGER(col);
    for (int r = 0; r < n; r++) {
        if (v[r] == NA_INTEGER || v[r] < 1 || v[r] > m || map[v[r] - 1] < 0) return 0;
        codes[r] = map[v[r] - 1];
    }
    return 1;
}

/* Column `n` values from element `offset` of a numeric, integer or logical vector (a column, or a
   matrix's column) as doubles: a numeric vector's own values (no copy; the engine refuses NA, NaN
   and infinities as they enter the dataset, and the caller then takes the general path, which
   names the column), the others converted into a buffer from R_alloc; NULL on NA. */
static const double *numeric_values(SEXP x, R_xlen_t offset, int n) {
    switch (TYPEOF(x)) {
    case REALSXP:
        return REAL(x) + offset;
    case INTSXP:
    case LGLSXP: {
        const int *v = (TYPEOF(x) == INTSXP ? INTEGER(x) : LOGICAL(x)) + offset;
        double *out = (double *)R_alloc((size_t)n, sizeof(double));
        for (int r = 0; r < n; r++) {
            if (v[r] == NA_INTEGER) return NULL;
            out[r] = (double)v[r];
        }
        return out;
    }
    default:
        return NULL;
    }
}

/* The values of a plain (unclassed, dimensionless) numeric, integer or logical column. */
static const double *numeric_column(SEXP col, int n) {
    if (OBJECT(col) || XLENGTH(col) != n || !Rf_isNull(Rf_getAttrib(col, R_DimSymbol))) return NULL;
    return numeric_values(col, 0, n);
}

/* Predictions (or logits) of `newdata` as a column-major matrix, or NULL (see above). */
SEXP C_ember_predict_plan(SEXP model, SEXP plan, SEXP newdata, SEXP logits, SEXP batch_size, SEXP num_threads) {
    if (TYPEOF(model) != EXTPTRSXP || R_ExternalPtrAddr(model) == NULL || !same_process(model) ||
        !Rf_inherits(model, "ember_model_ptr"))
        return R_NilValue;
    int bs = plain_count(batch_size, INT32_MAX), threads = plain_count(num_threads, 65);
    if (bs == 0 || threads == 0) return R_NilValue;
    SEXP num_names = plan_elt(plan, "num_names"), num_levels = plan_elt(plan, "num_levels");
    SEXP cat_names = plan_elt(plan, "cat_names"), cat_levels = plan_elt(plan, "cat_levels");
    int add_num = Rf_asLogical(plan_elt(plan, "add_num")) == 1, add_categ = Rf_asLogical(plan_elt(plan, "add_categ")) == 1;
    int pn = LENGTH(num_names), pc = LENGTH(cat_names);
    int cols = Rf_asInteger(plan_elt(plan, Rf_asLogical(logits) == 1 ? "outputs" : "prediction_columns"));

    /* The columns: a data.frame's, or a plain matrix's (by colnames; positional models name a
       matrix without colnames by their training columns). */
    int is_frame = Rf_inherits(newdata, "data.frame") && TYPEOF(newdata) == VECSXP;
    SEXP colnames = R_NilValue;
    int n = 0;
    if (is_frame) {
        colnames = Rf_getAttrib(newdata, R_NamesSymbol);
    } else if (!OBJECT(newdata) && Rf_isMatrix(newdata) &&
               (TYPEOF(newdata) == REALSXP || TYPEOF(newdata) == INTSXP || TYPEOF(newdata) == LGLSXP)) {
        if (pc > 0) return R_NilValue; /* a numeric matrix has no factor columns */
        n = Rf_nrows(newdata);
        SEXP dn = Rf_getAttrib(newdata, R_DimNamesSymbol);
        colnames = Rf_isNull(dn) ? R_NilValue : VECTOR_ELT(dn, 1);
        if (Rf_isNull(colnames)) {
            colnames = plan_elt(plan, "positional");
            if (Rf_isNull(colnames) || LENGTH(colnames) != Rf_ncols(newdata)) return R_NilValue;
        }
    } else {
        return R_NilValue;
    }
    if (is_frame) {
        /* Rows: as nrow() (compact row names read back as a compact range, not allocated). */
        R_xlen_t rows = XLENGTH(Rf_getAttrib(newdata, R_RowNamesSymbol));
        if (rows > INT32_MAX) return R_NilValue;
        n = (int)rows;
    }
    if (n < 1) return R_NilValue;

    /* The numeric columns where they are (doubles are passed without a copy; integers, logicals
       and ordered factors converted), one pointer per column. */
    const double **num = (const double **)R_alloc((size_t)(pn > 0 ? pn : 1), sizeof(double *));
    int *categ = (int *)R_alloc((size_t)n * (size_t)(pc > 0 ? pc : 1), sizeof(int));
    for (int c = 0; c < pn; c++) {
        R_xlen_t j = column_index(colnames, STRING_ELT(num_names, c));
        if (j < 0) return R_NilValue;
        SEXP levels = VECTOR_ELT(num_levels, c);
        if (!is_frame) {
            if (!Rf_isNull(levels) || (num[c] = numeric_values(newdata, j * (R_xlen_t)n, n)) == NULL) return R_NilValue;
        } else if (Rf_isNull(levels)) {
            if ((num[c] = numeric_column(VECTOR_ELT(newdata, j), n)) == NULL) return R_NilValue;
        } else {
            /* An ordered factor: its codes 1..K in the training levels. */
            int *codes = (int *)R_alloc((size_t)n, sizeof(int));
            double *dst = (double *)R_alloc((size_t)n, sizeof(double));
            if (!factor_codes(VECTOR_ELT(newdata, j), levels, codes, n)) return R_NilValue;
            for (int r = 0; r < n; r++) dst[r] = (double)codes[r] + 1.0;
            num[c] = dst;
        }
    }
    for (int c = 0; c < pc; c++) {
        R_xlen_t j = column_index(colnames, STRING_ELT(cat_names, c));
        if (j < 0 || !factor_codes(VECTOR_ELT(newdata, j), VECTOR_ELT(cat_levels, c), categ + (size_t)c * (size_t)n, n))
            return R_NilValue;
    }

    /* Everything R allocates comes first: nothing below jumps before the dataset is freed. */
    SEXP out = PROTECT(Rf_allocMatrix(REALSXP, n, cols));
    ember_model *m = (ember_model *)R_ExternalPtrAddr(model);
    ember_dataset *d = NULL;
    int32_t old_threads = 0;
    const char *what = "creating the dataset";
    int32_t st = ember_dataset_new(&d, (int64_t)n);
    if (st == EMBER_OK && add_num) {
        what = "adding a numeric input";
        st = ember_dataset_add_numeric_columns(d, "num", num, pn);
        if (st == EMBER_ERR_INVALID_ARGUMENT) {
            /* A value that is not finite (or any other refusal of the columns): the general path
               reports it, by the column's name. */
            ember_dataset_free(d);
            UNPROTECT(1);
            return R_NilValue;
        }
    }
    if (st == EMBER_OK && add_categ) {
        what = "adding a categorical input";
        st = ember_dataset_add_categorical(d, "categ", categ, pc, EMBER_LAYOUT_COLUMN_MAJOR);
    }
    if (st == EMBER_OK) st = ember_get_num_threads(&old_threads);
    int set_threads = st == EMBER_OK && old_threads != threads;
    if (set_threads) {
        what = "setting num_threads";
        st = ember_set_num_threads(threads);
        if (st != EMBER_OK) set_threads = 0;
    }
    if (st == EMBER_OK) {
        what = "predict";
        int64_t len = (int64_t)n * (int64_t)cols;
        st = Rf_asLogical(logits) == 1 ? ember_model_logits(m, d, bs, EMBER_LAYOUT_COLUMN_MAJOR, REAL(out), len)
                                       : ember_model_predict(m, d, bs, EMBER_LAYOUT_COLUMN_MAJOR, REAL(out), len);
    }
    /* The error is read before the clean-up's engine calls clear it. */
    SEXP err = st == EMBER_OK ? R_NilValue : engine_error_info(st, what);
    PROTECT(err);
    if (set_threads) ember_set_num_threads(old_threads);
    if (d != NULL) ember_dataset_free(d);
    if (st != EMBER_OK) signal_engine_error(err);
    UNPROTECT(2);
    return out;
}

/* The class of each row of probabilities `p` [n, K] as a factor with `levels`: the first column
   of the row's largest value (as max.col(p, ties.method = "first")), NA for a row with NaN. */
SEXP C_ember_class_factor(SEXP p, SEXP levels) {
    if (TYPEOF(p) != REALSXP || !Rf_isMatrix(p) || TYPEOF(levels) != STRSXP || Rf_ncols(p) != LENGTH(levels))
        stop_glue("invalid_argument", "p", "'p' must be a double matrix with one column per level");
    int n = Rf_nrows(p), k = Rf_ncols(p);
    SEXP out = PROTECT(Rf_allocVector(INTSXP, n));
    const double *v = REAL(p);
    for (int r = 0; r < n; r++) {
        int best = 0;
        double top = v[r];
        int na = ISNAN(top);
        for (int c = 1; c < k && !na; c++) {
            double b = v[r + (size_t)c * (size_t)n];
            if (ISNAN(b)) na = 1;
            else if (top < b) {
                top = b;
                best = c;
            }
        }
        INTEGER(out)[r] = na ? NA_INTEGER : best + 1;
    }
    Rf_setAttrib(out, R_LevelsSymbol, levels);
    SEXP cls = PROTECT(Rf_mkString("factor"));
    Rf_setAttrib(out, R_ClassSymbol, cls);
    UNPROTECT(2);
    return out;
}

/* Gradient × input attributions of one input: a rows × width matrix (column-major). */
SEXP C_ember_model_attributions(SEXP model, SEXP dataset, SEXP input, SEXP outputs, SEXP width, SEXP batch_size) {
    ember_model *m = MODEL(model);
    ember_dataset *d = DATASET(dataset, "data");
    if (!Rf_isString(input) || Rf_length(input) != 1) stop_glue("invalid_argument", "input", "'input' must be one string");
    if (TYPEOF(outputs) != INTSXP || Rf_length(outputs) < 1) stop_glue("invalid_argument", "outputs", "'outputs' must be a non-empty integer vector");
    int w = scalar_int(width, "width");
    if (w < 1) stop_glue("invalid_argument", "width", "'width' must be >= 1");
    int64_t rows = 0;
    CHECK(ember_dataset_rows(d, &rows), "attributions");
    if (rows > INT32_MAX || rows * (int64_t)w > (int64_t)R_XLEN_T_MAX) stop_glue("overflow", NULL, "too many rows");
    SEXP out = PROTECT(Rf_allocMatrix(REALSXP, (int)rows, w));
    CHECK(ember_model_attributions(m, d, CHAR(STRING_ELT(input, 0)), (const int32_t *)INTEGER(outputs), (int64_t)Rf_length(outputs),
                                   scalar_int(batch_size, "batch_size"), EMBER_LAYOUT_COLUMN_MAJOR, REAL(out), rows * (int64_t)w),
          "attributions");
    UNPROTECT(1);
    return out;
}

SEXP C_ember_model_serialize(SEXP model) {
    ember_bytes *bytes = NULL;
    CHECK(ember_model_serialize(MODEL(model), &bytes), "serializing the model");
    return bytes_result(bytes, "serializing the model");
}

SEXP C_ember_model_deserialize(SEXP bytes) {
    if (TYPEOF(bytes) != RAWSXP) stop_glue("invalid_argument", "bytes", "'bytes' must be a raw vector");
    ember_model *m = NULL;
    CHECK(ember_model_deserialize(&m, RAW(bytes), (int64_t)XLENGTH(bytes)), "reading the model");
    return wrap_pointer(m, "ember_model_ptr", model_finalizer);
}

SEXP C_ember_model_save(SEXP model, SEXP path) {
    ember_model *m = MODEL(model);
    CHECK(ember_model_save(m, scalar_string(path, "path")), "saving the model");
    return R_NilValue;
}

SEXP C_ember_model_load(SEXP path) {
    ember_model *m = NULL;
    CHECK(ember_model_load(&m, scalar_string(path, "path")), "loading the model");
    return wrap_pointer(m, "ember_model_ptr", model_finalizer);
}

SEXP C_ember_model_snapshot(SEXP model) {
    ember_bytes *bytes = NULL;
    CHECK(ember_model_snapshot_weights(MODEL(model), &bytes), "snapshotting the weights");
    return bytes_result(bytes, "snapshotting the weights");
}

SEXP C_ember_model_restore(SEXP model, SEXP bytes, SEXP strict) {
    ember_model *m = MODEL(model);
    if (TYPEOF(bytes) != RAWSXP) stop_glue("invalid_argument", "weights", "'weights' must be a raw vector");
    CHECK(ember_model_restore_weights(m, RAW(bytes), (int64_t)XLENGTH(bytes), Rf_asLogical(strict) == 1),
          "restoring the weights");
    return R_NilValue;
}

SEXP C_ember_model_restore_matching(SEXP model, SEXP bytes) {
    ember_model *m = MODEL(model);
    if (TYPEOF(bytes) != RAWSXP) stop_glue("invalid_argument", "init", "'init' must be a raw vector");
    const char *out = NULL;
    CHECK(ember_model_restore_matching(m, RAW(bytes), (int64_t)XLENGTH(bytes), &out), "loading the initial weights");
    return text_result(out);
}

/* The RNG state as four decimal strings (R has no unsigned 64-bit integers). */
SEXP C_ember_model_rng(SEXP model) {
    uint64_t s[4] = {0, 0, 0, 0};
    CHECK(ember_model_get_rng_state(MODEL(model), s), "reading the RNG state");
    SEXP out = PROTECT(Rf_allocVector(STRSXP, 4));
    for (int i = 0; i < 4; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)s[i]);
        SET_STRING_ELT(out, i, Rf_mkChar(buf));
    }
    UNPROTECT(1);
    return out;
}

SEXP C_ember_model_set_rng(SEXP model, SEXP state) {
    ember_model *m = MODEL(model);
    if (TYPEOF(state) != STRSXP || LENGTH(state) != 4) stop_glue("invalid_argument", "state", "'state' must be 4 decimal strings");
    uint64_t s[4];
    for (int i = 0; i < 4; i++) {
        if (STRING_ELT(state, i) == NA_STRING) stop_glue("invalid_argument", "state", "'state' must not contain NA");
        const char *txt = CHAR(STRING_ELT(state, i));
        char *end = NULL;
        s[i] = strtoull(txt, &end, 10);
        if (end == txt || *end != '\0' || txt[0] == '-') stop_glue("invalid_argument", "state", "'state' must hold unsigned decimal integers, got '%s'", txt);
    }
    CHECK(ember_model_set_rng_state(m, s), "setting the RNG state");
    return R_NilValue;
}

SEXP C_ember_model_parameters(SEXP model) {
    const char *out = NULL;
    CHECK(ember_model_parameters(MODEL(model), &out), "listing parameters");
    return text_result(out);
}

SEXP C_ember_model_summary(SEXP model) {
    const char *out = NULL;
    CHECK(ember_model_summary(MODEL(model), &out), "summarising the network");
    return text_result(out);
}

SEXP C_ember_model_get_parameter(SEXP model, SEXP name, SEXP length) {
    ember_model *m = MODEL(model);
    double n = scalar_real(length, "length");
    if (!(n >= 0 && n <= (double)R_XLEN_T_MAX)) stop_glue("invalid_argument", "length", "'length' out of range");
    SEXP out = PROTECT(Rf_allocVector(REALSXP, (R_xlen_t)n));
    CHECK(ember_model_get_parameter(m, scalar_string(name, "name"), REAL(out), (int64_t)n), "reading a parameter");
    UNPROTECT(1);
    return out;
}

SEXP C_ember_model_set_parameter(SEXP model, SEXP name, SEXP values) {
    ember_model *m = MODEL(model);
    if (TYPEOF(values) != REALSXP) stop_glue("invalid_argument", "value", "'value' must be a double vector");
    CHECK(ember_model_set_parameter(m, scalar_string(name, "name"), REAL(values), (int64_t)XLENGTH(values)),
          "setting a parameter");
    return R_NilValue;
}

SEXP C_ember_model_freeze(SEXP model, SEXP pattern, SEXP frozen) {
    ember_model *m = MODEL(model);
    int64_t matched = 0;
    CHECK(ember_model_freeze(m, scalar_string(pattern, "pattern"), Rf_asLogical(frozen) == 1, &matched),
          "freezing parameters");
    return Rf_ScalarReal((double)matched);
}

/* ---- Datasets -------------------------------------------------------------------------------- */

SEXP C_ember_dataset_new(SEXP rows) {
    ember_dataset *d = NULL;
    double n = scalar_real(rows, "n_rows");
    if (!R_FINITE(n)) stop_glue("invalid_argument", "n_rows", "'n_rows' must be finite");
    CHECK(ember_dataset_new(&d, (int64_t)n), "creating the dataset");
    return wrap_pointer(d, "ember_dataset_ptr", dataset_finalizer);
}

SEXP C_ember_dataset_add_numeric(SEXP dataset, SEXP name, SEXP x) {
    ember_dataset *d = DATASET(dataset, "dataset");
    if (TYPEOF(x) != REALSXP || !Rf_isMatrix(x)) stop_glue("invalid_argument", "x", "'x' must be a double matrix");
    CHECK(ember_dataset_add_numeric(d, scalar_string(name, "name"), REAL(x), Rf_ncols(x), EMBER_LAYOUT_COLUMN_MAJOR),
          "adding a numeric input");
    return R_NilValue;
}

SEXP C_ember_dataset_add_categorical(SEXP dataset, SEXP name, SEXP codes) {
    ember_dataset *d = DATASET(dataset, "dataset");
    if (TYPEOF(codes) != INTSXP || !Rf_isMatrix(codes)) stop_glue("invalid_argument", "codes", "'codes' must be an integer matrix");
    CHECK(ember_dataset_add_categorical(d, scalar_string(name, "name"), INTEGER(codes), Rf_ncols(codes),
                                        EMBER_LAYOUT_COLUMN_MAJOR),
          "adding a categorical input");
    return R_NilValue;
}

SEXP C_ember_dataset_add_tensor(SEXP dataset, SEXP name, SEXP x) {
    ember_dataset *d = DATASET(dataset, "dataset");
    if (TYPEOF(x) != REALSXP) stop_glue("invalid_argument", "x", "'x' must be a double array");
    SEXP dim = Rf_getAttrib(x, R_DimSymbol);
    if (TYPEOF(dim) != INTSXP || LENGTH(dim) < 2 || LENGTH(dim) > 5) stop_glue("invalid_argument", "x", "'x' must be an array of rank 2 to 5");
    int64_t shape[5];
    for (int i = 0; i < LENGTH(dim); i++) shape[i] = INTEGER(dim)[i];
    CHECK(ember_dataset_add_tensor(d, scalar_string(name, "name"), REAL(x), shape, LENGTH(dim), EMBER_LAYOUT_COLUMN_MAJOR),
          "adding a tensor input");
    return R_NilValue;
}

/* Rows of a tensor column: `x` holds one row after the other, each row's values contiguous in C
 * order (an R matrix [width, n]); raw vectors stay bytes (scaled by `scale` per batch). */
SEXP C_ember_dataset_add_rows(SEXP dataset, SEXP name, SEXP x, SEXP shape, SEXP scale) {
    ember_dataset *d = DATASET(dataset, "dataset");
    if (TYPEOF(shape) != INTSXP || LENGTH(shape) < 2 || LENGTH(shape) > 5) stop_glue("invalid_argument", "shape", "'shape' must be an integer vector of length 2 to 5");
    int64_t dims[5];
    double total = 1;
    for (int i = 0; i < LENGTH(shape); i++) {
        dims[i] = INTEGER(shape)[i];
        total *= (double)dims[i];
    }
    if (total != (double)XLENGTH(x)) stop_glue("invalid_argument", "x", "'x' must hold prod(shape) values");
    const char *nm = scalar_string(name, "name");
    if (TYPEOF(x) == RAWSXP) {
        CHECK(ember_dataset_add_bytes(d, nm, RAW(x), dims, LENGTH(shape), scalar_real(scale, "scale")), "adding a byte tensor input");
    } else if (TYPEOF(x) == REALSXP) {
        CHECK(ember_dataset_add_tensor(d, nm, REAL(x), dims, LENGTH(shape), EMBER_LAYOUT_ROW_MAJOR), "adding a tensor input");
    } else {
        stop_glue("invalid_argument", "x", "'x' must be a raw or double vector");
    }
    return R_NilValue;
}

SEXP C_ember_transforms_output_shape(SEXP transforms, SEXP shape) {
    if (TYPEOF(shape) != INTSXP || LENGTH(shape) != 3) stop_glue("invalid_argument", "shape", "'shape' must be c(channels, height, width)");
    int64_t in[3], out[3];
    for (int i = 0; i < 3; i++) in[i] = INTEGER(shape)[i];
    CHECK(ember_transforms_output_shape(scalar_string(transforms, "transforms"), in, 3, out), "checking the image transforms");
    SEXP r = PROTECT(Rf_allocVector(INTSXP, 3));
    for (int i = 0; i < 3; i++) INTEGER(r)[i] = (int)out[i];
    UNPROTECT(1);
    return r;
}

/* Image files: one path per row, decoded by the engine batch by batch into `shape` (c(C, H, W)). */
SEXP C_ember_dataset_add_image_files(SEXP dataset, SEXP name, SEXP paths, SEXP shape) {
    ember_dataset *d = DATASET(dataset, "dataset");
    if (TYPEOF(paths) != STRSXP) stop_glue("invalid_argument", "paths", "'paths' must be a character vector");
    if (TYPEOF(shape) != INTSXP || LENGTH(shape) != 3) stop_glue("invalid_argument", "shape", "'shape' must be c(channels, height, width)");
    R_xlen_t n = XLENGTH(paths);
    const char **p = (const char **)R_alloc(n > 0 ? n : 1, sizeof(const char *));
    for (R_xlen_t i = 0; i < n; i++) {
        if (STRING_ELT(paths, i) == NA_STRING) stop_glue("invalid_argument", "paths", "path %ld is NA", (long)(i + 1));
        p[i] = Rf_translateCharUTF8(STRING_ELT(paths, i));
    }
    CHECK(ember_dataset_add_image_files(d, scalar_string(name, "name"), p, (int64_t)n, INTEGER(shape)[0], INTEGER(shape)[1],
                                        INTEGER(shape)[2]),
          "adding image files");
    return R_NilValue;
}

/* The header of each image file: a [3, n] integer matrix of channels, height and width. */
SEXP C_ember_image_info(SEXP paths) {
    if (TYPEOF(paths) != STRSXP) stop_glue("invalid_argument", "paths", "'paths' must be a character vector");
    R_xlen_t n = XLENGTH(paths);
    SEXP out = PROTECT(Rf_allocMatrix(INTSXP, 3, (int)n));
    for (R_xlen_t i = 0; i < n; i++) {
        if (STRING_ELT(paths, i) == NA_STRING) stop_glue("invalid_argument", "paths", "path %ld is NA", (long)(i + 1));
        int64_t c = 0, h = 0, w = 0;
        CHECK(ember_image_info(Rf_translateCharUTF8(STRING_ELT(paths, i)), &c, &h, &w), "reading an image header");
        INTEGER(out)[3 * i] = (int)c;
        INTEGER(out)[3 * i + 1] = (int)h;
        INTEGER(out)[3 * i + 2] = (int)w;
    }
    UNPROTECT(1);
    return out;
}

/* Decoded images of `shape` (other sizes resized by the engine): a double matrix [C*H*W, n] of
 * byte / 255, each column one image in C order. Decoded through an engine dataset, as training reads them. */
SEXP C_ember_image_read_rows(SEXP paths, SEXP shape) {
    if (TYPEOF(paths) != STRSXP) stop_glue("invalid_argument", "paths", "'paths' must be a character vector");
    if (TYPEOF(shape) != INTSXP || LENGTH(shape) != 3) stop_glue("invalid_argument", "shape", "'shape' must be c(channels, height, width)");
    R_xlen_t n = XLENGTH(paths);
    double width = (double)INTEGER(shape)[0] * INTEGER(shape)[1] * INTEGER(shape)[2];
    if (n == 0) return Rf_allocMatrix(REALSXP, (int)width, 0);
    SEXP ds = PROTECT(C_ember_dataset_new(Rf_ScalarReal((double)n)));
    C_ember_dataset_add_image_files(ds, Rf_mkString("image"), paths, shape);
    SEXP out = PROTECT(Rf_allocMatrix(REALSXP, (int)width, (int)n));
    CHECK(ember_dataset_read_input(DATASET(ds, "dataset"), "image", REAL(out), (int64_t)(width * n)), "decoding images");
    UNPROTECT(2);
    return out;
}

/* A target vector, or a matrix of one column per label (multilabel). */
SEXP C_ember_dataset_set_target(SEXP dataset, SEXP y) {
    ember_dataset *d = DATASET(dataset, "dataset");
    if (TYPEOF(y) != REALSXP) stop_glue("invalid_argument", "y", "'y' must be a double vector or matrix");
    if (Rf_isMatrix(y)) {
        CHECK(ember_dataset_set_target_matrix(d, REAL(y), Rf_ncols(y), EMBER_LAYOUT_COLUMN_MAJOR), "setting the target");
    } else {
        CHECK(ember_dataset_set_target(d, REAL(y), (int64_t)XLENGTH(y)), "setting the target");
    }
    return R_NilValue;
}

/* Class targets: an integer vector of 0-based class indices. */
SEXP C_ember_dataset_set_target_classes(SEXP dataset, SEXP y) {
    ember_dataset *d = DATASET(dataset, "dataset");
    if (TYPEOF(y) != INTSXP || Rf_isMatrix(y)) stop_glue("invalid_argument", "y", "'y' must be an integer vector");
    CHECK(ember_dataset_set_target_classes(d, INTEGER(y), (int64_t)XLENGTH(y)), "setting the target");
    return R_NilValue;
}

/* ---- Trainers -------------------------------------------------------------------------------- */

SEXP C_ember_trainer_new(SEXP model, SEXP config) {
    ember_model *m = MODEL(model);
    ember_trainer *t = NULL;
    CHECK(ember_trainer_new(&t, m, scalar_string(config, "config")), "configuring training");
    return wrap_pointer(t, "ember_trainer_ptr", trainer_finalizer);
}

SEXP C_ember_trainer_fit(SEXP trainer, SEXP train, SEXP valid, SEXP max_epochs, SEXP max_batches, SEXP planned) {
    ember_trainer *t = TRAINER(trainer);
    ember_dataset *dt = DATASET(train, "train");
    ember_dataset *dv = Rf_isNull(valid) ? NULL : DATASET(valid, "valid");
    const char *records = NULL;
    CHECK(ember_trainer_fit(t, dt, dv, scalar_int(max_epochs, "max_epochs"), scalar_int(max_batches, "max_batches"),
                            scalar_int(planned, "planned_epochs"), &records),
          "training");
    return text_result(records);
}

SEXP C_ember_trainer_state(SEXP trainer) {
    const char *out = NULL;
    CHECK(ember_trainer_state(TRAINER(trainer), &out), "reading the trainer state");
    return text_result(out);
}

SEXP C_ember_trainer_valid_predictions(SEXP trainer) {
    ember_trainer *t = TRAINER(trainer);
    int64_t rows = 0, cols = 0;
    CHECK(ember_trainer_valid_predictions(t, EMBER_LAYOUT_COLUMN_MAJOR, NULL, 0, &rows, &cols), "validation predictions");
    if (rows > INT32_MAX || cols > INT32_MAX) stop_glue("overflow", NULL, "too many validation predictions");
    SEXP out = PROTECT(Rf_allocMatrix(REALSXP, (int)rows, (int)cols));
    CHECK(ember_trainer_valid_predictions(t, EMBER_LAYOUT_COLUMN_MAJOR, REAL(out), rows * cols, NULL, NULL),
          "validation predictions");
    UNPROTECT(1);
    return out;
}

SEXP C_ember_trainer_report_score(SEXP trainer, SEXP score, SEXP maximize) {
    ember_trainer *t = TRAINER(trainer);
    int32_t stop = 0;
    CHECK(ember_trainer_report_score(t, scalar_real(score, "score"), Rf_asLogical(maximize) == 1, &stop),
          "reporting the validation score");
    return Rf_ScalarLogical(stop != 0);
}

SEXP C_ember_trainer_set_option(SEXP trainer, SEXP name, SEXP value, SEXP group) {
    ember_trainer *t = TRAINER(trainer);
    CHECK(ember_trainer_set_option(t, scalar_string(name, "name"), scalar_real(value, "value"), scalar_int(group, "group")),
          "setting an optimizer option");
    return R_NilValue;
}

SEXP C_ember_trainer_checkpoint(SEXP trainer) {
    ember_bytes *bytes = NULL;
    CHECK(ember_trainer_checkpoint(TRAINER(trainer), &bytes), "saving the trainer's state");
    return bytes_result(bytes, "saving the trainer's state");
}

SEXP C_ember_trainer_resume(SEXP trainer, SEXP bytes) {
    if (TYPEOF(bytes) != RAWSXP) stop_glue("invalid_argument", "bytes", "'bytes' must be a raw vector");
    CHECK(ember_trainer_resume(TRAINER(trainer), RAW(bytes), (int64_t)XLENGTH(bytes)), "resuming training");
    return R_NilValue;
}

SEXP C_ember_trainer_finish(SEXP trainer) {
    CHECK(ember_trainer_finish(TRAINER(trainer)), "finishing training");
    return R_NilValue;
}

#define ENTRY(name, n) {#name, (DL_FUNC)&name, n}

static const R_CallMethodDef call_methods[] = {
    ENTRY(C_ember_abi_version, 0),
    ENTRY(C_ember_info, 0),
    ENTRY(C_ember_abi_header, 0),
    ENTRY(C_ember_vocabulary, 0),
    ENTRY(C_ember_set_threads, 1),
    ENTRY(C_ember_set_message_index_base, 1),
    ENTRY(C_ember_live_handles, 0),
    ENTRY(C_ember_architecture, 2),
    ENTRY(C_ember_is_valid, 1),
    ENTRY(C_ember_release, 1),
    ENTRY(C_ember_handle_state, 1),
    ENTRY(C_ember_model_new, 1),
    ENTRY(C_ember_model_info, 1),
    ENTRY(C_ember_model_set_host, 3),
    ENTRY(C_ember_model_predict, 5),
    ENTRY(C_ember_predict_plan, 6),
    ENTRY(C_ember_class_factor, 2),
    ENTRY(C_ember_model_serialize, 1),
    ENTRY(C_ember_model_deserialize, 1),
    ENTRY(C_ember_model_save, 2),
    ENTRY(C_ember_model_load, 1),
    ENTRY(C_ember_model_snapshot, 1),
    ENTRY(C_ember_model_restore, 3),
    ENTRY(C_ember_model_restore_matching, 2),
    ENTRY(C_ember_model_rng, 1),
    ENTRY(C_ember_model_set_rng, 2),
    ENTRY(C_ember_model_parameters, 1),
    ENTRY(C_ember_model_summary, 1),
    ENTRY(C_ember_model_attributions, 6),
    ENTRY(C_ember_model_get_parameter, 3),
    ENTRY(C_ember_model_set_parameter, 3),
    ENTRY(C_ember_model_freeze, 3),
    ENTRY(C_ember_dataset_new, 1),
    ENTRY(C_ember_dataset_add_numeric, 3),
    ENTRY(C_ember_dataset_add_categorical, 3),
    ENTRY(C_ember_dataset_add_tensor, 3),
    ENTRY(C_ember_dataset_add_rows, 5),
    ENTRY(C_ember_transforms_output_shape, 2),
    ENTRY(C_ember_dataset_add_image_files, 4),
    ENTRY(C_ember_image_info, 1),
    ENTRY(C_ember_image_read_rows, 2),
    ENTRY(C_ember_dataset_set_target, 2),
    ENTRY(C_ember_dataset_set_target_classes, 2),
    ENTRY(C_ember_trainer_new, 2),
    ENTRY(C_ember_trainer_fit, 6),
    ENTRY(C_ember_trainer_state, 1),
    ENTRY(C_ember_trainer_valid_predictions, 1),
    ENTRY(C_ember_trainer_report_score, 3),
    ENTRY(C_ember_trainer_set_option, 4),
    ENTRY(C_ember_trainer_finish, 1),
    ENTRY(C_ember_trainer_checkpoint, 1),
    ENTRY(C_ember_trainer_resume, 2),
    {NULL, NULL, 0}};

void R_init_mlr3ember(DllInfo *dll) {
    r_main_thread = pthread_self();
    ember_set_interrupt_check(r_interrupt_pending, NULL);
    R_registerRoutines(dll, NULL, call_methods, NULL, NULL);
    R_useDynamicSymbols(dll, FALSE);
    R_forceSymbols(dll, TRUE);
}
