/* The C types shared by the loop modules (_loops.pxi, _stream.h) and the
 * engine; _loops.pxd declares them to Cython. */
#ifndef FASTRELU_LOOPS_H
#define FASTRELU_LOOPS_H

#include <numpy/npy_common.h>

#define FR_N_CONSTS 8

/* Per-call constants (see _loops.pxd). */
typedef struct {
    npy_intp bits_storage[FR_N_CONSTS];
    float slope_f;
    double slope_d;
} fr_consts_t;

/* One loop: ufunc-style args (inputs, then the output), byte steps, n elements. */
typedef void (*fr_kernel_fn)(char **args, const npy_intp *steps, npy_intp n,
                             const fr_consts_t *c);

/* A loop run with non-temporal stores for its output (_stream.h). */
typedef void (*fr_stream_run_fn)(fr_kernel_fn fn, int nin, char **args,
                                 const npy_intp *steps, npy_intp n, const fr_consts_t *c);

#endif
