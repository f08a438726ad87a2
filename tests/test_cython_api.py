"""A downstream Cython extension cimports fastrelu.kernels -- every operation
of the registry for every dtype it takes, as the generated kernels.pxd
declares them -- and gets the reference's bits (out of place and in place,
small and large enough for the threads)."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import fastrelu
from fastrelu._registry import OPS

pytest.importorskip("Cython")

TESTS_DIR = Path(__file__).resolve().parent
#: the C type of each dtype in kernels.pxd (float16 as its raw bits)
CTYPES = {"float16": "uint16_t", "float32": "float", "float64": "double",
          **{f"{s}int{b}": f"{s}int{b}_t" for s in ("", "u") for b in (8, 16, 32, 64)}}


def wrapper(op, dt):
    """A def function ``call_<op>_<dtype>(operands..., out, params...)``."""
    ct = CTYPES[dt]
    operands = ["g", "x"] if op.arity == 2 else ["x"]
    params = [("double" if p.kind == "slope" else ct, p.name) for p in op.params]
    args = ", ".join([f"{ct}[::1] {a}" for a in operands + ["out"]]
                     + [f"{t} {name}" for t, name in params])
    pointers = ", ".join([f"&{a}[0]" for a in operands + ["out"]] + ["out.shape[0]"]
                         + [name for _, name in params])
    return textwrap.dedent(f"""
        def call_{op.name}_{dt}({args}):
            if out.shape[0]:
                with nogil:
                    {op.name}_{dt}({pointers})
        """)


def downstream_source():
    names = [f"{op.name}_{dt}" for op in OPS for dt in op.dtype_names]
    header = ("# cython: language_level=3\n"
              "from libc.stdint cimport (int8_t, int16_t, int32_t, int64_t,\n"
              "                          uint8_t, uint16_t, uint32_t, uint64_t)\n"
              f"from fastrelu.kernels cimport ({', '.join(names)})\n")
    return header + "".join(wrapper(op, dt) for op in OPS for dt in op.dtype_names)


SETUP = textwrap.dedent("""
    from setuptools import Extension, setup
    from Cython.Build import cythonize
    setup(ext_modules=cythonize([Extension("downstream", ["downstream.pyx"])]))
""")

CHECK = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    import numpy as np
    import downstream
    from fastrelu._registry import OPS
    from helpers import assert_same, expected, param_operand, param_sets, random_values

    def raw(a):
        return a.view(np.uint16) if a.dtype == np.float16 else a

    rng = np.random.default_rng(0)
    checked = 0
    for op in OPS:
        for dt in op.dtype_names:
            fn = getattr(downstream, f"call_{op.name}_{dt}")
            for n, params in zip((0, 1, 17, 100_003), param_sets(op, dt) * 4):
                arrays = tuple(random_values(rng, dt, n) for _ in op.inputs)
                want = expected(op, arrays, params)
                c_params = []
                for i, (p, v) in enumerate(zip(op.params, params)):
                    operand = param_operand(op, i, v, dt)
                    c_params.append(float(operand) if p.kind == "slope"
                                    else raw(operand).item())
                out = np.empty(n, dt)
                fn(*map(raw, arrays), raw(out), *c_params)
                assert_same(out, want, f"{op.name}_{dt}")
                y = arrays[-1].copy()                        # in place: out is x
                fn(*map(raw, arrays[:-1] + (y,)), raw(y), *c_params)
                assert_same(y, want, f"{op.name}_{dt} in place")
                checked += 1
    print("ok", checked)
""")


@pytest.mark.slow
def test_downstream_extension_cimports_every_kernel(tmp_path):
    (tmp_path / "downstream.pyx").write_text(downstream_source())
    (tmp_path / "setup.py").write_text(SETUP)
    (tmp_path / "check.py").write_text(CHECK)
    env = dict(os.environ)
    # the directory that holds the fastrelu package (installed or in-tree)
    root = os.path.dirname(os.path.dirname(fastrelu.__file__))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    build = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"],
                           cwd=tmp_path, env=env, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    check = subprocess.run([sys.executable, "-W", "error", "check.py", str(TESTS_DIR)],
                           cwd=tmp_path, env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr[-3000:]
    n_kernels = sum(len(op.dtype_names) for op in OPS)
    assert check.stdout.split() == ["ok", str(4 * n_kernels)]


def test_the_pxd_is_installed_next_to_the_module():
    here = os.path.dirname(fastrelu.__file__)
    assert os.path.exists(os.path.join(here, "kernels.pxd"))
    from fastrelu import kernels   # the module that implements it imports cleanly
    assert kernels.__name__ == "fastrelu.kernels"
