/*
 * The .Call glue between R and the Ember engine (include/ember.h).
 *
 * Rules (DESIGN.md §3, §4): Swift never calls the R API and R never longjmps through Swift
 * frames: every engine call returns first, then this file raises the R error. Models and datasets
 * live in external pointers with finalizers; a pointer that was saved without marshaling reads
 * back as NULL, and a handle created in another process (a fork) is refused.
 */
#include <R.h>
#include <Rinternals.h>
#include <R_ext/Rdynload.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "ember.h"

static pid_t owner_pid = 0;

/* Raises the engine's last error as an R error (after the engine call has returned). */
static void stop_engine(int32_t status, const char *what) {
    const char *msg = ember_last_error();
    Rf_error("%s failed (status %d): %s", what, (int)status, (msg && msg[0]) ? msg : "unknown error");
}

#define CHECK(call, what)                        \
    do {                                         \
        int32_t st_ = (call);                    \
        if (st_ != EMBER_OK) stop_engine(st_, what); \
    } while (0)

static void model_finalizer(SEXP ptr) {
    void *p = R_ExternalPtrAddr(ptr);
    if (p == NULL) return;
    /* A handle inherited through fork belongs to the parent's registry copy; freeing it in the
       child is harmless (the child's copy of the registry knows it). */
    ember_model_free((ember_model *)p);
    R_ClearExternalPtr(ptr);
}

static void dataset_finalizer(SEXP ptr) {
    void *p = R_ExternalPtrAddr(ptr);
    if (p == NULL) return;
    ember_dataset_free((ember_dataset *)p);
    R_ClearExternalPtr(ptr);
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
        Rf_error("'%s' must be an external pointer of class '%s'", arg, cls);
    void *p = R_ExternalPtrAddr(ptr);
    if (p == NULL)
        Rf_error("'%s' is a stale Ember handle: the object was saved or sent to another process "
                 "without marshaling (use mlr3's $marshal() before saveRDS(), or refit)", arg);
    SEXP tag = R_ExternalPtrTag(ptr);
    if (TYPEOF(tag) == INTSXP && LENGTH(tag) == 1 && INTEGER(tag)[0] != (int)getpid())
        Rf_error("'%s' was created in another process (pid %d; this is %d), e.g. before a fork: "
                 "marshal the model to move it between processes", arg, INTEGER(tag)[0], (int)getpid());
    return p;
}

static int scalar_int(SEXP x, const char *arg) {
    if (!Rf_isNumeric(x) || Rf_length(x) != 1) Rf_error("'%s' must be a single number", arg);
    double v = Rf_asReal(x);
    if (!R_FINITE(v) || v != (double)(int)v) Rf_error("'%s' must be a finite integer, got %g", arg, v);
    return (int)v;
}

static double scalar_real(SEXP x, const char *arg) {
    if (!Rf_isNumeric(x) || Rf_length(x) != 1) Rf_error("'%s' must be a single number", arg);
    double v = Rf_asReal(x);
    if (!R_FINITE(v)) Rf_error("'%s' must be finite, got %g", arg, v);
    return v;
}

SEXP C_ember_abi_version(void) { return Rf_ScalarInteger(ember_abi_version()); }

SEXP C_ember_info(void) {
    const char *core = NULL;
    int32_t threads = 0;
    CHECK(ember_blas_core_name(&core), "ember_blas_core_name");
    CHECK(ember_get_num_threads(&threads), "ember_get_num_threads");
    SEXP out = PROTECT(Rf_allocVector(VECSXP, 3));
    SEXP names = PROTECT(Rf_allocVector(STRSXP, 3));
    SET_VECTOR_ELT(out, 0, Rf_ScalarInteger(ember_abi_version()));
    SET_VECTOR_ELT(out, 1, Rf_mkString(core ? core : "unknown"));
    SET_VECTOR_ELT(out, 2, Rf_ScalarInteger(threads));
    SET_STRING_ELT(names, 0, Rf_mkChar("abi_version"));
    SET_STRING_ELT(names, 1, Rf_mkChar("blas_core"));
    SET_STRING_ELT(names, 2, Rf_mkChar("num_threads"));
    Rf_setAttrib(out, R_NamesSymbol, names);
    UNPROTECT(2);
    return out;
}

SEXP C_ember_set_threads(SEXP threads) {
    CHECK(ember_set_num_threads(scalar_int(threads, "num_threads")), "setting num_threads");
    return R_NilValue;
}

SEXP C_ember_mlp_new(SEXP task, SEXP n_classes, SEXP n_inputs, SEXP neurons, SEXP dropout,
                     SEXP standardize, SEXP standardize_target, SEXP seed) {
    if (TYPEOF(neurons) != INTSXP) Rf_error("'neurons' must be an integer vector");
    if (TYPEOF(standardize) != LGLSXP) Rf_error("'standardize' must be a logical vector");
    int ni = scalar_int(n_inputs, "n_inputs");
    if (ni < 1) Rf_error("'n_inputs' must be >= 1, got %d", ni);
    if (Rf_length(standardize) != ni)
        Rf_error("'standardize' must have one entry per input (%d), got %d", ni, Rf_length(standardize));
    double s = scalar_real(seed, "seed");
    if (s < 0 || s > 9007199254740992.0 || s != (double)(uint64_t)s)
        Rf_error("'seed' must be an integer in [0, 2^53], got %g", s);
    int *mask = (int *)R_alloc(ni, sizeof(int));
    for (int i = 0; i < ni; i++) {
        int v = LOGICAL(standardize)[i];
        if (v == NA_LOGICAL) Rf_error("'standardize' must not contain NA");
        mask[i] = v;
    }
    for (int i = 0; i < Rf_length(neurons); i++)
        if (INTEGER(neurons)[i] == NA_INTEGER) Rf_error("'neurons' must not contain NA");
    ember_model *model = NULL;
    CHECK(ember_mlp_new(&model, scalar_int(task, "task"), scalar_int(n_classes, "n_classes"), ni,
                        INTEGER(neurons), Rf_length(neurons), scalar_real(dropout, "p"), mask,
                        Rf_asLogical(standardize_target) == 1, (uint64_t)s),
          "creating the MLP");
    return wrap_pointer(model, "ember_model_ptr", model_finalizer);
}

SEXP C_ember_set_training(SEXP model, SEXP batch_size, SEXP shuffle, SEXP optimizer, SEXP lr,
                          SEXP weight_decay, SEXP momentum, SEXP beta1, SEXP beta2, SEXP eps) {
    ember_model *m = unwrap_pointer(model, "ember_model_ptr", "model");
    int sh = Rf_asLogical(shuffle);
    if (sh == NA_LOGICAL) Rf_error("'shuffle' must be TRUE or FALSE");
    CHECK(ember_model_set_training(m, scalar_int(batch_size, "batch_size"), sh,
                                   scalar_int(optimizer, "optimizer"), scalar_real(lr, "opt.lr"),
                                   scalar_real(weight_decay, "opt.weight_decay"),
                                   scalar_real(momentum, "opt.momentum"), scalar_real(beta1, "beta1"),
                                   scalar_real(beta2, "beta2"), scalar_real(eps, "eps")),
          "setting training options");
    return R_NilValue;
}

SEXP C_ember_dataset_new(SEXP x, SEXP y) {
    if (TYPEOF(x) != REALSXP || !Rf_isMatrix(x)) Rf_error("'x' must be a double matrix");
    if (TYPEOF(y) != REALSXP) Rf_error("'y' must be a double vector");
    int n = Rf_nrows(x), p = Rf_ncols(x);
    if (Rf_length(y) != n) Rf_error("'y' must have one value per row of 'x' (%d), got %d", n, Rf_length(y));
    ember_dataset *d = NULL;
    CHECK(ember_dataset_new(&d, REAL(x), n, p, REAL(y)), "creating the dataset");
    return wrap_pointer(d, "ember_dataset_ptr", dataset_finalizer);
}

SEXP C_ember_fit(SEXP model, SEXP dataset, SEXP epochs) {
    ember_model *m = unwrap_pointer(model, "ember_model_ptr", "model");
    ember_dataset *d = unwrap_pointer(dataset, "ember_dataset_ptr", "dataset");
    int e = scalar_int(epochs, "epochs");
    if (e < 0) Rf_error("'epochs' must be >= 0, got %d", e);
    SEXP losses = PROTECT(Rf_allocVector(REALSXP, e));
    CHECK(ember_model_fit(m, d, e, REAL(losses)), "training");
    UNPROTECT(1);
    return losses;
}

SEXP C_ember_predict(SEXP model, SEXP x) {
    ember_model *m = unwrap_pointer(model, "ember_model_ptr", "model");
    if (TYPEOF(x) != REALSXP || !Rf_isMatrix(x)) Rf_error("'x' must be a double matrix");
    int32_t cols = 0;
    CHECK(ember_model_prediction_columns(m, &cols), "predict");
    int n = Rf_nrows(x);
    SEXP out = PROTECT(Rf_allocMatrix(REALSXP, n, cols));
    CHECK(ember_model_predict(m, REAL(x), n, Rf_ncols(x), REAL(out), (int64_t)n * cols), "predict");
    UNPROTECT(1);
    return out;
}

SEXP C_ember_model_epochs(SEXP model) {
    ember_model *m = unwrap_pointer(model, "ember_model_ptr", "model");
    int32_t e = 0;
    CHECK(ember_model_epochs(m, &e), "ember_model_epochs");
    return Rf_ScalarInteger(e);
}

SEXP C_ember_serialize(SEXP model) {
    ember_model *m = unwrap_pointer(model, "ember_model_ptr", "model");
    int64_t size = 0;
    CHECK(ember_model_serialize(m, NULL, 0, &size), "serializing the model");
    if (size > R_XLEN_T_MAX) Rf_error("the serialized model is too large (%lld bytes)", (long long)size);
    SEXP out = PROTECT(Rf_allocVector(RAWSXP, (R_xlen_t)size));
    CHECK(ember_model_serialize(m, RAW(out), size, &size), "serializing the model");
    UNPROTECT(1);
    return out;
}

SEXP C_ember_deserialize(SEXP bytes) {
    if (TYPEOF(bytes) != RAWSXP) Rf_error("'bytes' must be a raw vector");
    ember_model *m = NULL;
    CHECK(ember_model_deserialize(&m, RAW(bytes), (int64_t)XLENGTH(bytes)), "reading the model");
    return wrap_pointer(m, "ember_model_ptr", model_finalizer);
}

SEXP C_ember_live_handles(void) {
    int64_t models = 0, datasets = 0;
    CHECK(ember_live_handles(&models, &datasets), "ember_live_handles");
    SEXP out = PROTECT(Rf_allocVector(REALSXP, 2));
    REAL(out)[0] = (double)models;
    REAL(out)[1] = (double)datasets;
    SEXP names = PROTECT(Rf_allocVector(STRSXP, 2));
    SET_STRING_ELT(names, 0, Rf_mkChar("models"));
    SET_STRING_ELT(names, 1, Rf_mkChar("datasets"));
    Rf_setAttrib(out, R_NamesSymbol, names);
    UNPROTECT(2);
    return out;
}

SEXP C_ember_is_valid(SEXP ptr) {
    if (TYPEOF(ptr) != EXTPTRSXP) return Rf_ScalarLogical(0);
    if (R_ExternalPtrAddr(ptr) == NULL) return Rf_ScalarLogical(0);
    SEXP tag = R_ExternalPtrTag(ptr);
    int same = TYPEOF(tag) == INTSXP && LENGTH(tag) == 1 && INTEGER(tag)[0] == (int)getpid();
    return Rf_ScalarLogical(same);
}

static const R_CallMethodDef call_methods[] = {
    {"C_ember_abi_version", (DL_FUNC)&C_ember_abi_version, 0},
    {"C_ember_info", (DL_FUNC)&C_ember_info, 0},
    {"C_ember_set_threads", (DL_FUNC)&C_ember_set_threads, 1},
    {"C_ember_mlp_new", (DL_FUNC)&C_ember_mlp_new, 8},
    {"C_ember_set_training", (DL_FUNC)&C_ember_set_training, 10},
    {"C_ember_dataset_new", (DL_FUNC)&C_ember_dataset_new, 2},
    {"C_ember_fit", (DL_FUNC)&C_ember_fit, 3},
    {"C_ember_predict", (DL_FUNC)&C_ember_predict, 2},
    {"C_ember_model_epochs", (DL_FUNC)&C_ember_model_epochs, 1},
    {"C_ember_serialize", (DL_FUNC)&C_ember_serialize, 1},
    {"C_ember_deserialize", (DL_FUNC)&C_ember_deserialize, 1},
    {"C_ember_live_handles", (DL_FUNC)&C_ember_live_handles, 0},
    {"C_ember_is_valid", (DL_FUNC)&C_ember_is_valid, 1},
    {NULL, NULL, 0}};

void R_init_mlr3ember(DllInfo *dll) {
    owner_pid = getpid();
    (void)owner_pid;
    R_registerRoutines(dll, NULL, call_methods, NULL, NULL);
    R_useDynamicSymbols(dll, FALSE);
    R_forceSymbols(dll, TRUE);
}
