"""relu, relu_ and relu(out=...) against the oracle, bit for bit, over every dtype,
sizes 0..70 and a few large ones (across the GIL, threading and streaming-store
thresholds), and every layout. Inputs of out-of-place calls must never change."""
import numpy as np
import pytest

import fastrelu
import oracle
from oracle import (DTYPE_NAMES, OUT_KINDS, READONLY_LAYOUTS,
                    assert_same, layout_params, make_layout, make_out, snapshot)

SMALL_SIZES = (*range(71), 127, 128, 129, 255, 256, 257)
# The dispatcher's size thresholds as this build reports them (defaults if it does not).
_INFO = fastrelu._engine.build_info()
PARALLEL_MIN_BYTES = _INFO.get("parallel_min_bytes", 1 << 20)
STREAM_MIN_BYTES = _INFO.get("stream_min_bytes", 1 << 24)
MODES = ("relu", "out", "out=x", "relu_")


def run(mode, x, out_kind="fresh"):
    """Call fastrelu in ``mode`` on ``x``; check the result and that x is unchanged
    (out-of-place) or updated in place; return nothing."""
    expected = oracle.relu(x)
    before = snapshot(x)
    if mode == "relu":
        result = fastrelu.relu(x)
        assert result.dtype.isnative
        assert_same(result, expected)
        assert not np.shares_memory(result, x)
        assert_same(x, before)
    elif mode == "out":
        out, untouched = make_out(out_kind, x.shape, x.dtype, 99)
        result = fastrelu.relu(x, out=out)
        assert result is out
        assert_same(oracle.to_native(out), expected)
        untouched()
        assert_same(x, before)
    elif mode == "out=x":
        result = fastrelu.relu(x, out=x)
        assert result is x
        assert_same(oracle.to_native(x), expected)
    elif mode == "relu_":
        result = fastrelu.relu_(x)
        assert result is x
        assert x.dtype == before.dtype
        assert_same(oracle.to_native(x), expected)
    else:
        raise ValueError(mode)


def mode_params(dtypes=DTYPE_NAMES, names=oracle.LAYOUT_NAMES):
    """(mode, dtype, layout) triples; in-place modes only for writeable layouts."""
    return [(mode, dt, name) for mode in MODES for dt, name in layout_params(dtypes, names)
            if mode in ("relu", "out") or name not in READONLY_LAYOUTS]


@pytest.mark.parametrize("mode, dtype, layout", mode_params())
def test_small_sizes(mode, dtype, layout, values):
    """Every dtype x layout x mode, for every size 0..70 and around 128 and 256
    (SIMD heads, tails and unrolled loops)."""
    for n in SMALL_SIZES:
        run(mode, make_layout(layout, values(dtype, n)))


@pytest.mark.parametrize("dtype, layout", layout_params())
def test_out_kinds(dtype, layout, values):
    """out= of every kind (fresh C/F, strided with gaps, byte-swapped, unaligned)."""
    for out_kind in OUT_KINDS:
        for n in (0, 1, 7, 33, 64, 70, 257):
            run("out", make_layout(layout, values(dtype, n)), out_kind)


@pytest.mark.parametrize("mode, dtype, layout", mode_params())
def test_large_sizes(mode, dtype, layout, values):
    """Sizes 1000, 4097 and (out-of-place) 100_003, past the GIL-release threshold
    of 32 KiB, in every layout."""
    for n in (1000, 4097, 100_003) if mode == "relu" else (1000, 4097):
        run(mode, make_layout(layout, values(dtype, n)))


HUGE_LAYOUTS = ("C", "F-2d", "step2", "reversed", "unaligned", "byteswapped",
                "broadcast-row", "slices-3d")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_two_million_contiguous(mode, dtype, big_values):
    """2_000_000 elements, contiguous: the threaded fast path (> 1 MiB) of every dtype."""
    run(mode, big_values(dtype, 2_000_000))


@pytest.mark.parametrize("dtype, layout", layout_params(["float32", "int8"], HUGE_LAYOUTS)
                         + layout_params(["float64", "uint16"], ["step2", "byteswapped"]))
def test_two_million_layouts(dtype, layout, big_values):
    """2_000_000 elements in layouts that go through the ufunc path (threaded loops)."""
    x = make_layout(layout, big_values(dtype, 2_000_000))
    run("relu", x)
    if layout not in READONLY_LAYOUTS:
        run("relu_", x)


def _threshold_sizes(itemsize):
    p = PARALLEL_MIN_BYTES // itemsize
    return sorted({p - 1, p, p + 1, 2 * p - 1, 2 * p + 1, 3 * p + 4095})


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_thread_threshold_sizes(dtype, big_values):
    """Sizes around the 1 MiB threading threshold (team size 1, 2 and the chunking)."""
    sizes = _threshold_sizes(np.dtype(dtype).itemsize)
    for n in sizes:
        x = big_values(dtype, sizes[-1])[:n]
        run("relu", x)
        run("out", x)
        run("out", x, "strided")
        run("relu_", x[1:])


@pytest.fixture
def stream_min_bytes():
    """The streaming-store threshold, lowered to 4 MiB for the test when the build has
    the private ``_engine.thresholds`` hook (so streaming is reached with small arrays)."""
    hook = getattr(fastrelu._engine, "thresholds", None)
    if hook is None:
        yield STREAM_MIN_BYTES
        return
    previous = hook(stream_min_bytes=min(STREAM_MIN_BYTES, 1 << 22))
    try:
        yield hook()["stream_min_bytes"]
    finally:
        hook(**previous)


def check_streaming(x, dtype):
    """relu of x out of place, and into outputs at offsets 0, 1 and 3 elements from a
    64-byte boundary; memory around the outputs untouched."""
    n = x.size
    run("relu", x)
    expected = oracle.relu(x)
    buf = np.empty(n + 64 // x.itemsize + 3, dtype=dtype)
    for k in (0, 1, 3):
        out = buf[k:k + n]
        buf[...] = 42
        assert fastrelu.relu(x, out=out) is out
        assert_same(out, expected)
        assert (buf[:k] == 42).all() and (buf[k + n:] == 42).all()


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_streaming_stores(dtype, big_values, stream_min_bytes):
    """Out-of-place relu at and just past the streaming-store (non-temporal) threshold,
    with the input and the output at different offsets from a 64-byte boundary."""
    itemsize = np.dtype(dtype).itemsize
    n = stream_min_bytes // itemsize
    big = big_values(dtype, n + 64 // itemsize + 3)
    check_streaming(big[:n], dtype)
    check_streaming(big[3:3 + n + 5], dtype)
    if itemsize > 1:
        run("relu", make_layout("unaligned", big[:n + 1]))   # ufunc path, buffered


def test_streaming_at_build_threshold(big_values):
    """float32 at the build's own streaming threshold (no hook involved)."""
    n = STREAM_MIN_BYTES // 4 + 17
    x = big_values("float32", n)
    check_streaming(x, "float32")


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
@pytest.mark.parametrize("view", [
    "a[::2]", "a[1::3]", "a[::-2]", "a[1:-1]", "a[5:17]", "b[:, 1:3]", "b[::2, ::-1]",
    "b.T[1:, :2]", "b[1]", "c[:, ::2, 1]", "c[::-1, 1:, ::3]", "u[::2]",
])
def test_relu_inplace_view_leaves_rest(dtype, view, values):
    """relu_(view) writes the view's elements and nothing else of the parent buffer."""
    a = values(dtype, 60)
    b = a.reshape(6, 10)
    c = a.reshape(3, 4, 5)
    u = make_layout("unaligned", a) if np.dtype(dtype).itemsize > 1 else a
    namespace = {"a": a, "b": b, "c": c, "u": u}
    target = eval(view, namespace)
    parent = u if view.startswith("u") else a
    # expected parent: a copy, with the view's elements replaced by the oracle
    expected_parent = snapshot(parent)
    expected_ns = {"a": expected_parent, "b": expected_parent.reshape(6, 10),
                   "c": expected_parent.reshape(3, 4, 5), "u": expected_parent}
    eval(view, expected_ns)[...] = oracle.relu(target)
    assert fastrelu.relu_(target) is target
    assert_same(parent, expected_parent)


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
@pytest.mark.parametrize("layout", ["C", "step2", "byteswapped", "unaligned", "0-d", "empty"])
def test_relu_inplace_twice(dtype, layout, values):
    """relu_ is idempotent and keeps the array's identity, dtype, shape and strides."""
    if not oracle.layout_applies(layout, dtype):
        return
    x = make_layout(layout, values(dtype, 41))
    expected = oracle.relu(x)
    strides, dt, shape = x.strides, x.dtype, x.shape
    for _ in range(2):
        assert fastrelu.relu_(x) is x
        assert (x.strides, x.dtype, x.shape) == (strides, dt, shape)
        assert_same(oracle.to_native(x), expected)


@pytest.mark.parametrize("dtype", DTYPE_NAMES)
def test_result_is_fresh_each_call(dtype, values):
    """Two out-of-place calls return two different arrays with the same bits."""
    x = values(dtype, 100)
    r1, r2 = fastrelu.relu(x), fastrelu.relu(x)
    assert r1 is not r2 and not np.shares_memory(r1, r2)
    assert_same(r1, r2)


@pytest.mark.parametrize("order", ["C", "F"])
def test_result_layout_follows_input(order, values):
    """A contiguous input gives a result of the same memory order (KEEPORDER)."""
    x = np.asarray(values("float32", 24).reshape(4, 6), order=order)
    r = fastrelu.relu(x)
    assert_same(r, oracle.relu(x))
    assert r.flags[f"{order}_CONTIGUOUS"]


@pytest.mark.parametrize("alias", ["longlong", "ulonglong", "intc", "uintc", "short",
                                   "ushort", "byte", "ubyte", "intp", "uintp", "half",
                                   "single", "double"])
def test_platform_alias_dtypes(alias, values):
    """The platform aliases of the supported types (e.g. longlong next to int64) work."""
    dt = np.dtype(alias)
    x = values(dt, 77).view(dt)
    assert_same(fastrelu.relu(x), oracle.relu(x).view(dt))
    assert fastrelu.relu(x).dtype.num == dt.num
    out = np.empty_like(x)
    assert fastrelu.relu(x, out=out) is out
    assert_same(out, oracle.relu(x).view(dt))
    assert fastrelu.relu_(x) is x
    assert_same(x, oracle.relu(out).view(dt))
