"""The operation registry: every elementwise operation of fastrelu as a row of data.

This module is plain Python with no imports from fastrelu, so that ``setup.py``
can read it at build time. Everything else iterates it:

* the build renders the Tempita templates (``*.tp``) from it: the operation
  numbers (``_ops.pxd``), the kernel table of every instruction-set module
  (``_loops_table.pxi``), the public functions (``_functions.pyx``) and their
  stubs, and the Cython C API (``kernels.pxd``, ``kernels.pyx``);
* ``fastrelu._ufuncs`` makes one NumPy ufunc per row;
* ``fastrelu._general`` validates arguments from the row (input names,
  dtypes, parameters);
* the test suites parametrize over `OPS`, so a new row gets every suite.

Adding an operation (see ``docs/architecture.rst``): a row here, an
elementwise body ``<name>_body`` in ``_loops.pxi``, its docstring in
``_docs.py`` and its twin in ``_reference.py``.
"""
from dataclasses import dataclass

#: Parameter kinds, i.e. how a scalar parameter reaches the kernel:
#: ``"slope"``: a real number, as float32 for float16/float32 input and as
#: float64 for float64 input (the ufunc takes it as an operand of that type);
#: ``"bound"``: a value cast to the input's dtype that the kernel compares
#: against (NaN compares False; out of range for an integer dtype is a ValueError);
#: ``"value"``: a value cast to the input's dtype that the kernel writes.
PARAM_KINDS = ("slope", "bound", "value")

#: The dtype sets an operation can accept: ``"all"`` is every float and
#: integer dtype (the kernels work on the bits), ``"float"`` float16/32/64.
DTYPE_SETS = {
    "all": ("float16", "float32", "float64", "int8", "int16", "int32", "int64",
            "uint8", "uint16", "uint32", "uint64"),
    "float": ("float16", "float32", "float64"),
}

#: The dtypes of the optional ``ml_dtypes`` package that the operations with
#: `Op.ml` also take when it is installed. Each is a sign-magnitude float, so
#: the "bits" kernels of its width's integer type read its order and its NaNs
#: from the bits as they do for float16 (with the dtype's own constants):
#: bfloat16, float8_e4m3fn (no infinity; NaN is S.1111.111) and float8_e5m2
#: (IEEE-like). The ``*fnuz`` formats (NaN is 0x80, negative zero's bits)
#: break that rule and are refused with a TypeError.
ML_DTYPE_NAMES = ("bfloat16", "float8_e4m3fn", "float8_e5m2")

#: The operand names of each arity: unary ``out = f(x)``, binary (backward)
#: ``out = f(grad_output, x)``. An operation may name its own (`Op.operands`).
INPUTS = {1: ("x",), 2: ("grad_output", "x")}


@dataclass(frozen=True)
class Param:
    """A scalar parameter of an operation."""
    name: str
    kind: str                  # one of PARAM_KINDS
    default: object = None     # None: required

    def __post_init__(self):
        if self.kind not in PARAM_KINDS:
            raise ValueError(f"parameter kind {self.kind!r} is not one of {PARAM_KINDS}")


class _Row:
    """What every registry row derives from its fields."""

    ml = False          # takes the ML_DTYPE_NAMES (Op rows: a field)

    @property
    def ml_dtype_names(self):
        """The ml_dtypes dtypes it takes (when that package is installed)."""
        return ML_DTYPE_NAMES if self.ml else ()

    @property
    def inplace_name(self):
        """The in-place twin's name, or None."""
        return self.name + "_" if self.inplace else None

    @property
    def dtype_names(self):
        return DTYPE_SETS[self.dtypes]


@dataclass(frozen=True)
class Op(_Row):
    """One elementwise operation.

    Attributes
    ----------
    name : str
        The public function (and ufunc) name.
    arity : int
        1: ``out = f(x)``; 2: ``out = f(grad_output, x)`` (a backward).
    dtypes : str
        A key of `DTYPE_SETS`.
    family : str
        How the kernel body is written: ``"bits"`` on the integer bits of
        every dtype (``_loops.pxi``: no floating-point instruction), or
        ``"real"`` in float arithmetic (float dtypes only).
    params : tuple of Param
        Scalar parameters, after the array operands.
    inplace : bool
        It has an in-place twin ``<name>_`` (unary only).
    backward : str or None
        The name of the operation that is its backward.
    streams : bool
        Its out-of-place form uses non-temporal stores when its inputs reach
        3/4 of the last-level cache (and the output is apart from them).
    operands : tuple of str or None
        The names of the array operands when they are not `INPUTS` of the
        arity (``add_relu(x, residual)``).
    ml : bool
        It also takes the `ML_DTYPE_NAMES` when ml_dtypes is installed
        ("real" operations compute in float32 and round once).
    """
    name: str
    arity: int
    dtypes: str = "all"
    family: str = "bits"
    params: tuple = ()
    inplace: bool = False
    backward: str | None = None
    streams: bool = True
    operands: tuple | None = None
    ml: bool = True

    def __post_init__(self):
        if self.arity not in INPUTS:
            raise ValueError(f"{self.name}: arity must be 1 or 2")
        if self.dtypes not in DTYPE_SETS or self.family not in ("bits", "real"):
            raise ValueError(f"{self.name}: bad dtypes or family")
        if self.operands is not None and len(self.operands) != self.arity:
            raise ValueError(f"{self.name}: {self.arity} operand names expected")
        if self.inplace and self.arity != 1:
            raise ValueError(f"{self.name}: only unary operations have an in-place twin "
                             f"here (a binary one is a FUSED row: add_relu_)")
        if sum(p.kind != "slope" for p in self.params) > MAX_BITS_PARAMS:
            raise ValueError(f"{self.name}: at most {MAX_BITS_PARAMS} bound/value parameters")

    @property
    def inputs(self):
        """The names of the array operands."""
        return self.operands or INPUTS[self.arity]

    @property
    def is_backward(self):
        """A backward: ``f(grad_output, x)`` (selects or scales grad_output)."""
        return self.inputs == INPUTS[2]

    @property
    def enum(self):
        """The operation's number in C (``_ops.pxd``)."""
        return "OP_" + self.name.upper()


MAX_BITS_PARAMS = 2     # consts_t holds two per-call bound/value slots (_loops.pxd)

_SLOPE = Param("negative_slope", "slope", 0.01)

#: Every operation, in the order of their numbers.
OPS = (
    Op("relu", 1, inplace=True, backward="relu_backward"),
    Op("relu_grad", 1),
    Op("relu_backward", 2),
    Op("relu6", 1, inplace=True, backward="relu6_backward"),
    Op("relu6_backward", 2),
    Op("leaky_relu", 1, dtypes="float", family="real", params=(_SLOPE,), inplace=True,
       backward="leaky_relu_backward"),
    Op("leaky_relu_backward", 2, dtypes="float", family="real", params=(_SLOPE,)),
    Op("threshold", 1, params=(Param("threshold", "bound"), Param("value", "value")),
       inplace=True, backward="threshold_backward"),
    Op("threshold_backward", 2, params=(Param("threshold", "bound"),)),
    # (its in-place form, add_relu_, is a FUSED row: the elementwise suites'
    # in-place twins are unary)
    Op("add_relu", 2, dtypes="float", family="real", operands=("x", "residual"), ml=False),
)

BY_NAME = {op.name: op for op in OPS}

#: The generated elementwise functions, in order: each operation and its
#: in-place twin (``fastrelu._functions``).
ELEMENTWISE_NAMES = tuple(name for op in OPS for name in (op.name, op.inplace_name) if name)


@dataclass(frozen=True)
class Fused(_Row):
    """A fused operation: an elementwise loop of `OPS` and, in the same pass
    over memory, one more thing that is not elementwise (a per-axis bias, a
    packed mask, per-axis counts or sums). ``fastrelu._fused`` implements
    them on the loop of ``loop`` and the kernels of ``_fused.h``.

    Attributes
    ----------
    name : str
        The public function's name.
    loop : str
        The operation of `OPS` whose loop computes the elementwise result.
    inputs : tuple of str
        The operands; the first is the array the result takes its shape from.
    results : tuple of str
        What it returns (one array, or a tuple of them).
    dtypes : str
        A key of `DTYPE_SETS`.
    axis : bool
        It takes ``axis=`` (a per-axis bias, counts or sums).
    inplace : bool
        It has an in-place twin ``<name>_`` that writes into ``x``.
    """
    name: str
    loop: str
    inputs: tuple
    results: tuple
    dtypes: str = "all"
    axis: bool = False
    inplace: bool = False


#: Every fused operation.
FUSED = (
    Fused("add_relu_", "add_relu", ("x", "residual"), ("x",), "float"),
    Fused("bias_relu", "add_relu", ("x", "bias"), ("y",), "float", axis=True, inplace=True),
    Fused("bias_relu_backward", "relu_backward", ("grad_output", "y"),
          ("grad_x", "grad_bias"), "float", axis=True),
    Fused("relu_with_mask", "relu", ("x",), ("y", "mask")),
    Fused("relu_backward_mask", "relu_backward", ("grad_output", "mask"), ("grad_x",)),
    Fused("relu_with_counts", "relu", ("x",), ("y", "active"), axis=True),
)

FUSED_BY_NAME = {f.name: f for f in FUSED}

#: The fused functions, in order (``fastrelu._fused``).
FUSED_NAMES = tuple(name for f in FUSED for name in (f.name, f.inplace_name) if name)

#: Every public function of the registry: the elementwise ones, then the fused.
FUNCTION_NAMES = ELEMENTWISE_NAMES + FUSED_NAMES
