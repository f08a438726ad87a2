"""The registry is complete: every operation has its public function (and an
in-place twin exactly when ``op.inplace``), a docstring in ``fastrelu._docs``,
a ufunc, a reference twin in ``fastrelu._reference`` with the same arguments
and its semantics written out, and a Cython function per dtype; nothing
exists that the registry does not list."""
import inspect
import re
from pathlib import Path

import numpy as np
import pytest

import fastrelu
from fastrelu import _docs, _reference, ufuncs
from fastrelu._registry import FUNCTION_NAMES, FUSED_BY_NAME, OPS
from helpers import op_id

P = inspect.Parameter


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_every_op_is_complete(op):
    assert callable(getattr(fastrelu, op.name, None)), "no public function"
    assert op.name in fastrelu.__all__
    # (a binary operation's in-place form is a FUSED row: add_relu_)
    twin = op.inplace or op.name + "_" in FUSED_BY_NAME
    assert hasattr(fastrelu, op.name + "_") == twin, "in-place twin iff op.inplace"
    assert (op.name + "_" in fastrelu.__all__) == twin
    assert op.name in _docs.DOCS, "no docstring in fastrelu._docs.DOCS"
    assert getattr(fastrelu, op.name).__doc__ == _docs.DOCS[op.name]
    if op.inplace:
        assert op.inplace_name in _docs.DOCS
        assert getattr(fastrelu, op.inplace_name).__doc__ == _docs.DOCS[op.inplace_name]
    uf = getattr(ufuncs, op.name, None)
    assert isinstance(uf, np.ufunc), "no ufunc"
    assert (uf.__name__, uf.nin, uf.nout) == (op.name, op.arity + len(op.params), 1)
    if op.backward:
        assert op.backward in {o.name for o in OPS}


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_every_op_has_a_reference_twin(op):
    """The reference function has the public function's arguments without
    ``out``, and a docstring stating its semantics."""
    ref = getattr(_reference, op.name, None)
    assert callable(ref), "no reference twin in fastrelu._reference"
    assert op.name in _reference.__all__
    public = inspect.signature(getattr(fastrelu, op.name)).parameters
    assert list(public)[-1] == "out"
    expected = [(p.name, p.kind, p.default) for p in list(public.values())[:-1]]
    got = [(p.name, p.kind, p.default) for p in inspect.signature(ref).parameters.values()]
    assert got == expected
    assert ref.__doc__ and len(inspect.cleandoc(ref.__doc__).splitlines()) >= 2


def test_nothing_beyond_the_registry():
    """The public functions, the ufuncs and the reference functions are exactly
    the registry's (plus the package's utilities)."""
    functions = {name for name in fastrelu.__all__
                 if name not in ("__version__", "bench", "get_num_threads", "num_threads",
                                 "set_num_threads", "show_config", "set_pool_limit",
                                 "get_pool_limit", "free_pool", "pool_stats")}
    assert functions == set(FUNCTION_NAMES)
    assert set(ufuncs.__all__) == {op.name for op in OPS}
    fused = {name.rstrip("_") for name in FUSED_BY_NAME}
    assert set(_reference.__all__) == {op.name for op in OPS} | fused
    assert set(_docs.DOCS) == set(FUNCTION_NAMES)


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_signature_follows_the_registry(op):
    """Inputs positional-only, then the parameters (with their defaults), then
    ``out=None``; the in-place twin takes x and the parameters."""
    params = [(p.name, P.POSITIONAL_OR_KEYWORD, P.empty if p.default is None else p.default)
              for p in op.params]
    inputs = [(name, P.POSITIONAL_ONLY, P.empty) for name in op.inputs]
    got = [(p.name, p.kind, p.default)
           for p in inspect.signature(getattr(fastrelu, op.name)).parameters.values()]
    assert got == inputs + params + [("out", P.POSITIONAL_OR_KEYWORD, None)]
    if op.inplace:
        got = [(p.name, p.kind, p.default)
               for p in inspect.signature(getattr(fastrelu, op.inplace_name)).parameters.values()]
        assert got == inputs + params


def test_reference_imports_only_the_registry():
    """fastrelu._reference is plain NumPy: the only fastrelu module it imports is
    the registry (so it never runs fastrelu's compiled code)."""
    source = Path(_reference.__file__).read_text()
    imports = re.findall(r"^\s*(?:from|import)\s+([\w.]+)", source, re.M)
    assert {m for m in imports if m.startswith("fastrelu")} == {"fastrelu._registry"}
    assert set(imports) <= {"functools", "math", "fractions", "numpy", "sys",
                            "fastrelu._registry"}


@pytest.mark.parametrize("op", OPS, ids=op_id)
def test_cython_api_has_every_op_and_dtype(op):
    """kernels.pxd declares ``<op>_<dtype>`` for every dtype of the op, with the
    op's operands, ``n`` and its parameters."""
    pxd = (Path(fastrelu.__file__).parent / "kernels.pxd").read_text()
    for dt in op.dtype_names:
        m = re.search(rf"^cdef void {op.name}_{dt}\((.*)\) noexcept nogil$", pxd, re.M)
        assert m, f"{op.name}_{dt} not in kernels.pxd"
        args = [a.strip().split()[-1].lstrip("*") for a in m.group(1).split(",")]
        operands = ["g" if name == "grad_output" else name for name in op.inputs]
        assert args == operands + ["out", "n"] + [p.name for p in op.params]
