# The fast path of the public functions (included by the generated
# _functions.pyx, so that it is inlined into every public ``def``).
#
# A call on an exact, aligned, native-byte-order ndarray of a supported dtype
# that is contiguous (or 1-D with a non-zero stride: x[::2], x[::-1]) goes
# straight from these checks to the engine: about 0.1 us of overhead in all.
# Anything else -- array-likes, containers, other views, byte-swapped data,
# overlapping ``out``, every error -- returns _SLOW, and the public function
# hands the call to ``fastrelu._general``, which validates it in Python and
# runs the ufunc of the same operation (NumPy's iterator, the same engine).
cimport numpy as cnp
from numpy cimport (ndarray, npy_intp, PyArray_DATA, PyArray_DIMS,
                    PyArray_FLAGS, PyArray_ISNOTSWAPPED, PyArray_NDIM, PyArray_SIZE,
                    PyArray_STRIDES, PyArray_TYPE)
from libc.string cimport memcmp, memcpy
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t
from libc.math cimport fabs

cdef extern from "<fenv.h>":
    ctypedef struct fexcept_t:
        pass
    int fegetexceptflag(fexcept_t *flagp, int excepts) nogil
    int fesetexceptflag(const fexcept_t *flagp, int excepts) nogil
    int FE_INEXACT

from fastrelu._engine cimport (row_t, op_info_t, call_t, row_for, op_info, set_param,
                               execute_gil, PARAM_SLOPE)
from fastrelu._loops cimport consts_t
from fastrelu._memory cimport new_output
from fastrelu._ops cimport *

from fastrelu import _general

cnp.import_array()


cdef enum:
    CONTIGUOUS = cnp.NPY_ARRAY_C_CONTIGUOUS | cnp.NPY_ARRAY_F_CONTIGUOUS

cdef object _SLOW = object()   # "take the general path" (the fast path declined)


cdef inline const row_t *_fast_row(object x, int op) noexcept:
    """The dtype row for ``x`` if the fast path can take it as an input of
    ``op``, else NULL: contiguous arrays, and 1-D ones with a non-zero stride."""
    cdef ndarray a
    cdef int flags
    cdef const row_t *d
    if type(x) is not ndarray:
        return NULL
    a = <ndarray>x
    flags = PyArray_FLAGS(a)
    if not (flags & cnp.NPY_ARRAY_ALIGNED) or not PyArray_ISNOTSWAPPED(a):
        return NULL
    if not (flags & CONTIGUOUS):
        # 1-D views: a stride 0 (a broadcast) goes to NumPy, which handles
        # writes to it (and warns where it should)
        if PyArray_NDIM(a) != 1 or PyArray_STRIDES(a)[0] == 0:
            return NULL
    d = row_for(PyArray_TYPE(a))
    if d == NULL or d.fn[op] == NULL:
        return NULL
    return d


cdef inline npy_intp _stride(ndarray a, npy_intp itemsize) noexcept:
    """The byte step between elements of a fast-path input (contiguous or 1-D)."""
    return PyArray_STRIDES(a)[0] if PyArray_NDIM(a) == 1 else itemsize


cdef inline bint _same_layout(ndarray a, ndarray b) noexcept:
    """Same type, shape and contiguous element order (so the same flat index)."""
    cdef int fa = PyArray_FLAGS(a), fb = PyArray_FLAGS(b), nd = PyArray_NDIM(a)
    if PyArray_TYPE(a) != PyArray_TYPE(b) or nd != PyArray_NDIM(b):
        return False
    # (0-d arrays have no dims pointer: memcmp must not see NULL, even for 0 bytes)
    if nd and memcmp(PyArray_DIMS(a), PyArray_DIMS(b), nd * sizeof(npy_intp)) != 0:
        return False
    return bool(fa & fb & CONTIGUOUS)


cdef inline bint _apart_or_same(ndarray a, ndarray b, npy_intp nbytes) noexcept:
    """The memory of a and b is either disjoint or exactly the same."""
    cdef char *pa = <char *>PyArray_DATA(a)
    cdef char *pb = <char *>PyArray_DATA(b)
    return pa == pb or pa + nbytes <= pb or pb + nbytes <= pa


cdef inline bint _fast_out(object out, ndarray x, object g, npy_intp itemsize) noexcept:
    """``out`` can take the fast path's result for input x (and g)."""
    cdef ndarray o
    cdef npy_intp nbytes = PyArray_SIZE(x) * itemsize
    if type(out) is not ndarray:
        return False
    o = <ndarray>out
    if (PyArray_FLAGS(o) & (cnp.NPY_ARRAY_WRITEABLE | cnp.NPY_ARRAY_ALIGNED)
            != (cnp.NPY_ARRAY_WRITEABLE | cnp.NPY_ARRAY_ALIGNED)):
        return False
    if not PyArray_ISNOTSWAPPED(o) or not _same_layout(x, o):
        return False
    if not _apart_or_same(x, o, nbytes):
        return False
    return g is None or _apart_or_same(<ndarray>g, o, nbytes)


cdef bint _cast_exact(object value, const row_t *d, char *buf) except -1:
    """Cast a Python int or float parameter to the row's dtype into ``buf``
    when that is exact C work (True); False: let ``_general.cast_param``
    validate and cast it (other types, float16, out-of-range values)."""
    cdef type t = type(value)
    cdef double v
    cdef float f
    cdef long long i
    cdef fexcept_t flags
    if d.kind == b"f":
        if (t is not float and t is not int) or d.itemsize <= 2:   # float16, ml_dtypes
            return False
        if t is int and not -9007199254740992 <= value <= 9007199254740992:
            return False                          # beyond 2**53: NumPy rounds it
        v = value
        if d.itemsize == 8:
            memcpy(buf, &v, 8)
            return True
        if not (v == 0 or 1.1754943508222875e-38 <= fabs(v) <= 3.4028234663852886e38):
            return False                          # overflow, underflow or NaN: _general
        fegetexceptflag(&flags, FE_INEXACT)       # rounding to float32 is inexact:
        f = <float>v                              # keep the caller's flag as it was
        fesetexceptflag(&flags, FE_INEXACT)
        memcpy(buf, &f, 4)
        return True
    if t is not int or not -9223372036854775807 <= value <= 9223372036854775807:
        return False
    i = value
    if not (d.int_min <= i <= d.int_max):
        return False                              # _general raises the ValueError
    if d.itemsize == 1:
        (<int8_t *>buf)[0] = <int8_t>i
    elif d.itemsize == 2:
        (<int16_t *>buf)[0] = <int16_t>i
    elif d.itemsize == 4:
        (<int32_t *>buf)[0] = <int32_t>i
    else:
        (<int64_t *>buf)[0] = <int64_t>i
    return True


cdef int _set_params(consts_t *c, const row_t *d, int op, object x, tuple params) except -1:
    """The call's constants: the dtype's, then its parameters, validated (an
    error here is raised before any memory is written)."""
    cdef const op_info_t *info = op_info(op)
    cdef double slope
    cdef int64_t buf[1]      # one parameter of up to 8 bytes, aligned
    cdef ndarray value
    cdef int i
    c[0] = d.consts
    for i in range(info.nparams):
        p = params[i]
        if info.param_kind[i] == PARAM_SLOPE:
            slope = (p if type(p) is float
                     else _general.slope_value(p, op, i, (<ndarray>x).dtype))
            set_param(c, d, PARAM_SLOPE, i, <const char *>&slope)
        elif _cast_exact(p, d, <char *>buf):
            set_param(c, d, info.param_kind[i], i, <const char *>buf)
        else:
            value = _general.cast_param(p, (<ndarray>x).dtype, op, i)
            set_param(c, d, info.param_kind[i], i, <const char *>PyArray_DATA(value))
    return 0


cdef inline int _start_call(call_t *k, const row_t *d, int op, object x, tuple params,
                            consts_t *c) except -1:
    """The call's loop and constants: the dtype's own, or ``c`` filled with
    the validated parameters (before anything is allocated or written)."""
    if params is not None:
        _set_params(c, d, op, x, params)
        k.consts = c
    else:
        k.consts = &d.consts
    k.fn = d.fn[op]
    k.op = op_info(op)
    k.itemsize = d.itemsize
    k.period = 0
    return 0


cdef inline object _fast_unary(int op, object x, object out, tuple params):
    """out = op(x) on the fast path, or _SLOW."""
    cdef const row_t *d = _fast_row(x, op)
    cdef call_t k
    cdef consts_t c
    if d == NULL:
        return _SLOW
    if out is not None and not _fast_out(out, <ndarray>x, None, d.itemsize):
        return _SLOW
    _start_call(&k, d, op, x, params, &c)
    if out is None:
        out = new_output(<ndarray>x)
    k.args[0] = <char *>PyArray_DATA(<ndarray>x)
    k.steps[0] = _stride(<ndarray>x, d.itemsize)
    k.args[1] = <char *>PyArray_DATA(<ndarray>out)
    k.steps[1] = d.itemsize
    execute_gil(&k, PyArray_SIZE(<ndarray>x))
    return out


cdef inline object _fast_inplace(int op, object x, tuple params):
    """x[...] = op(x) on the fast path (returns x), or _SLOW."""
    cdef const row_t *d = _fast_row(x, op)
    cdef call_t k
    cdef consts_t c
    if d == NULL or not (PyArray_FLAGS(<ndarray>x) & cnp.NPY_ARRAY_WRITEABLE):
        return _SLOW
    _start_call(&k, d, op, x, params, &c)
    k.args[0] = k.args[1] = <char *>PyArray_DATA(<ndarray>x)
    k.steps[0] = k.steps[1] = _stride(<ndarray>x, d.itemsize)
    execute_gil(&k, PyArray_SIZE(<ndarray>x))
    return x


cdef inline object _fast_binary(int op, object g, object x, object out, tuple params):
    """out = op(g, x) on the fast path, or _SLOW."""
    cdef const row_t *d = _fast_row(x, op)
    cdef call_t k
    cdef consts_t c
    if (d == NULL or _fast_row(g, op) == NULL
            or not _same_layout(<ndarray>x, <ndarray>g)):
        return _SLOW
    if out is not None and not _fast_out(out, <ndarray>x, g, d.itemsize):
        return _SLOW
    _start_call(&k, d, op, x, params, &c)
    if out is None:
        out = new_output(<ndarray>x)
    k.args[0] = <char *>PyArray_DATA(<ndarray>g)
    k.args[1] = <char *>PyArray_DATA(<ndarray>x)
    k.args[2] = <char *>PyArray_DATA(<ndarray>out)
    k.steps[0] = k.steps[1] = k.steps[2] = d.itemsize
    execute_gil(&k, PyArray_SIZE(<ndarray>x))
    return out
