// The only header in Ember that knows BLAS. Debian's libopenblas-dev installs cblas.h with the
// OpenBLAS extensions (openblas_get_corename, openblas_set_num_threads, ...).
#include <cblas.h>

// OpenBLAS extensions, declared again so that the build does not depend on which cblas.h the
// Debian alternatives system currently points at (netlib's lacks them).
char *openblas_get_corename(void);
char *openblas_get_config(void);
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
