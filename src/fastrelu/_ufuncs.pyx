"""The NumPy ufunc of every operation of the registry.

NumPy's iterator hands these loops strided, broadcast, byte-swapped
(buffered) and overlap-resolved operands, and the loops run the same engine as
the fast path (the same loops, threads and streaming). A parameter of an
operation is one more input of its ufunc: float32 (float64 for float64 data)
for a slope, the data's dtype for a bound or value; a scalar parameter (stride
0) runs as one call, an array of them element by element.
"""
cimport numpy as cnp
from numpy cimport npy_intp

from fastrelu._engine cimport (row_t, op_info_t, call_t, row_for, op_info, set_param,
                               execute, PARAM_SLOPE)
from fastrelu._loops cimport consts_t
from fastrelu._ops cimport N_OPS, MAX_NIN, MAX_PARAMS

import numpy as np

from fastrelu import _docs
from fastrelu._engine import DTYPES, ML_DTYPES, OP_DTYPES
from fastrelu._registry import OPS

cnp.import_array()
cnp.import_ufunc()


cdef extern from "numpy/ufuncobject.h":
    ctypedef void (*PyUFuncGenericFunction)(char **args, const npy_intp *dims,
                                            const npy_intp *steps, void *data) noexcept nogil
    object new_ufunc "PyUFunc_FromFuncAndData" (
        PyUFuncGenericFunction *funcs, void **data, char *types, int ntypes, int nin, int nout,
        int identity, const char *name, const char *doc, int unused)
    int register_loop "PyUFunc_RegisterLoopForType" (
        void *ufunc, int usertype, PyUFuncGenericFunction function, const int *arg_types,
        void *data) except -1
    enum:
        PyUFunc_None

ctypedef struct loop_info_t:
    const row_t *row
    int op


cdef void _loop(char **args, const npy_intp *dims, const npy_intp *steps,
                void *data) noexcept nogil:
    cdef const loop_info_t *info = <const loop_info_t *>data
    cdef const row_t *d = info.row
    cdef const op_info_t *oi = op_info(info.op)
    cdef int nin = oi.nin, nparams = oi.nparams, j
    cdef npy_intp n = dims[0], i = 0, todo
    cdef bint scalar_params = True
    cdef const char *p
    cdef double slope
    cdef consts_t c
    cdef call_t k
    k.fn = d.fn[info.op]
    k.op = oi
    k.itemsize = d.itemsize
    k.consts = &d.consts
    k.period = 0
    if nparams:
        k.consts = &c
    for j in range(nparams):
        scalar_params = scalar_params and steps[nin + j] == 0
    k.steps[nin] = steps[nin + nparams]
    for j in range(nin):
        k.steps[j] = steps[j]
    while i < n:
        todo = n - i if scalar_params else 1
        c = d.consts
        for j in range(nparams):
            p = args[nin + j] + i * steps[nin + j]
            if oi.param_kind[j] == PARAM_SLOPE:
                slope = (<const double *>p)[0] if d.itemsize == 8 else (<const float *>p)[0]
                p = <const char *>&slope
            set_param(&c, d, oi.param_kind[j], j, p)
        for j in range(nin):
            k.args[j] = args[j] + i * steps[j]
        k.args[nin] = args[nin + nparams] + i * steps[nin + nparams]
        execute(&k, todo)
        i += todo


cdef enum:
    MAX_LOOPS = 16   # len(DTYPES["all"]) is 13 on common platforms
    MAX_ARGS = MAX_NIN + MAX_PARAMS + 1
    MAX_ML = 4       # len(ML_DTYPES)

cdef PyUFuncGenericFunction _funcs[N_OPS][MAX_LOOPS]
cdef void *_data[N_OPS][MAX_LOOPS]
cdef loop_info_t _info[N_OPS][MAX_LOOPS]
cdef char _types[N_OPS][MAX_LOOPS * MAX_ARGS]
cdef loop_info_t _ml_info[N_OPS][MAX_ML]
cdef int _ml_types[N_OPS][MAX_ML][MAX_ARGS]
_TEXT = []     # keeps the names and docs alive: NumPy keeps the pointers


def _operand_type(param, dt):
    """The ufunc operand type of a parameter for data of dtype ``dt``."""
    if param.kind == "slope":
        return np.dtype(np.float64 if dt.itemsize == 8 else np.float32).num
    return dt.num


def _operand_types(spec, dt):
    """The ufunc loop's operand types for data of dtype ``dt``."""
    return [dt.num] * spec.arity + [_operand_type(p, dt) for p in spec.params] + [dt.num]


cdef object _make_ufunc(int op, spec):
    cdef int i, j, nin = spec.arity + len(spec.params), nargs = nin + 1
    dtypes = DTYPES[spec.dtypes]
    if len(dtypes) > MAX_LOOPS:
        raise RuntimeError(f"{spec.name}: more dtypes than MAX_LOOPS")
    for i, dt in enumerate(dtypes):
        _info[op][i].row = row_for(dt.num)
        _info[op][i].op = op
        _funcs[op][i] = _loop
        _data[op][i] = &_info[op][i]
        types = _operand_types(spec, dt)
        for j in range(nargs):
            _types[op][nargs * i + j] = types[j]
    text = (spec.name.encode(), _docs.ufunc_doc(spec, nin).encode())
    _TEXT.append(text)
    ufunc = new_ufunc(_funcs[op], _data[op], _types[op], len(dtypes), nin, 1, PyUFunc_None,
                      text[0], text[1], 0)
    # ml_dtypes' dtypes are NumPy user types: their loops are registered by type
    for i, dt in enumerate(dt for dt in OP_DTYPES[spec.name] if dt in ML_DTYPES):
        _ml_info[op][i].row = row_for(dt.num)
        _ml_info[op][i].op = op
        for j, t in enumerate(_operand_types(spec, dt)):
            _ml_types[op][i][j] = t
        register_loop(<void *>ufunc, dt.num, _loop, _ml_types[op][i], &_ml_info[op][i])
    return ufunc


#: The ufunc of every operation, by name.
UFUNCS = {spec.name: _make_ufunc(op, spec) for op, spec in enumerate(OPS)}
