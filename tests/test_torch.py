"""fastrelu.torch: torch.library custom ops, a drop-in for torch.nn.functional.relu /
threshold and torch.nn.ReLU / Threshold, differentiable in every mode (reverse,
forward, torch.func, any order), compilable (torch is an optional extra)."""
import inspect
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.autograd.forward_ad as fwAD  # noqa: E402

import fastrelu.torch as frt  # noqa: E402
from fastrelu import _reference  # noqa: E402

F = torch.nn.functional

# torch imports its jvp decompositions (scripted with the deprecated torch.jit.script)
# on the first forward-AD use; the warning is PyTorch's own.
pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated:DeprecationWarning")

DTYPES = [torch.float16, torch.float32, torch.float64, torch.int8, torch.int16,
          torch.int32, torch.int64, torch.uint8]


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_equals_torch_relu(dtype):
    x = (torch.randn(1000, dtype=torch.float64) * 50).to(dtype)
    assert torch.equal(frt.relu(x), torch.relu(x))
    assert frt.relu(x).dtype == dtype


@pytest.mark.parametrize("make", [
    lambda t: t, lambda t: t.t(), lambda t: t[::2], lambda t: t[:, 1:3],
])
def test_forward_layouts(make):
    x = make(torch.randn(40, 6))
    r = frt.relu(x)
    assert torch.equal(r, torch.relu(x))
    assert r.shape == x.shape


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradients_equal_torch_exactly(dtype):
    x = torch.randn(2000, dtype=dtype)
    x[:4] = torch.tensor([0.0, -0.0, float("inf"), -float("inf")], dtype=dtype)
    g = torch.randn(2000, dtype=dtype)
    g[10:14] = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0], dtype=dtype)
    xa = x.clone().requires_grad_()
    xb = x.clone().requires_grad_()
    frt.relu(xa).backward(g)
    torch.relu(xb).backward(g)
    assert torch.equal(torch.nan_to_num(xa.grad, nan=7.0), torch.nan_to_num(xb.grad, nan=7.0))


def test_backward_saves_the_output_not_the_input():
    """Modifying the input in place after the forward would break a backward that
    saved it (autograd's version check); fastrelu's saves the output."""
    x = torch.tensor([1.0, -1.0, 2.0, -2.0], requires_grad=True)
    x_leaf = x * 1                       # a non-leaf we may modify in place
    y = frt.relu(x_leaf)
    with torch.no_grad():
        x_leaf.mul_(-1)                  # bumps x_leaf's version counter
    y.backward(torch.ones(4))
    assert torch.equal(x.grad, torch.tensor([1.0, 0.0, 1.0, 0.0]))


def test_gradcheck():
    x = torch.randn(30, dtype=torch.float64)
    x = (x + 0.1 * torch.sign(x)).requires_grad_()   # away from the kink at 0
    assert torch.autograd.gradcheck(frt.relu, (x,))


@pytest.mark.parametrize("make", [
    lambda: torch.randn(3, 4), lambda: torch.randn(3, 4, requires_grad=True),
    lambda: torch.randn(4, 3).t(), lambda: torch.randn(9)[::2],
    lambda: torch.randn(5, dtype=torch.float64),
])
def test_opcheck_relu(make):
    torch.library.opcheck(torch.ops.fastrelu.relu.default, (make(),))


def test_opcheck_relu_backward():
    torch.library.opcheck(torch.ops.fastrelu.relu_backward.default,
                          (torch.randn(3, 4), torch.relu(torch.randn(3, 4))))


def test_module():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), frt.ReLU())
    reference = torch.nn.Sequential(model[0], torch.nn.ReLU())
    x = torch.randn(8, 4)
    assert torch.equal(model(x), reference(x))
    model(x).sum().backward()
    w = model[0].weight.grad.clone()
    model.zero_grad()
    reference(x).sum().backward()
    assert torch.equal(w, model[0].weight.grad)


def test_unsupported_dtype_is_a_type_error():
    with pytest.raises(TypeError):
        frt.relu(torch.ones(3, dtype=torch.complex64))


def test_fastrelu_accepts_cpu_tensors_zero_copy():
    import fastrelu
    t = torch.tensor([-1.0, 2.0, -3.0])
    r = fastrelu.relu(t)
    assert isinstance(r, np.ndarray)
    np.testing.assert_array_equal(r, [0.0, 2.0, 0.0])
    fastrelu.relu_(t.numpy())                 # a view of the tensor's memory
    assert torch.equal(t, torch.tensor([0.0, 2.0, 0.0]))


# --- threshold ----------------------------------------------------------------------------

THRESHOLDS = [(0.5, -2.0), (-1.0, 3.0), (0.0, 0.0), (2.5, 7.0)]


@pytest.mark.parametrize("dtype, threshold, value",
                         [(dt, t, v) for dt in DTYPES for t, v in THRESHOLDS
                          if dt != torch.uint8 or min(t, v) >= 0])   # else a ValueError
def test_threshold_equals_torch(dtype, threshold, value):
    """threshold equals torch.nn.functional.threshold (and the reference) for
    every dtype both support, bound and value cast to the dtype."""
    x = (torch.randn(1000, dtype=torch.float64) * 5).to(dtype)
    if dtype.is_floating_point:
        x[:3] = torch.tensor([float("nan"), float("-inf"), float("inf")], dtype=torch.float64)
    r = frt.threshold(x, threshold, value)
    assert r.dtype == dtype
    from fastrelu import _reference
    assert np.array_equal(r.numpy(), _reference.threshold(x.numpy(), threshold, value),
                          equal_nan=dtype.is_floating_point)
    if not dtype.is_floating_point and dtype != torch.uint8:
        # torch compares an integer tensor with the bound as a float; the same
        # elements are replaced when the bound is an integer
        assert torch.equal(frt.threshold(x, float(int(threshold)), int(value)),
                           torch.nn.functional.threshold(x, int(threshold), int(value)))
    elif dtype.is_floating_point:
        torch_r = torch.nn.functional.threshold(x, threshold, value)
        assert torch.equal(torch.nan_to_num(r, nan=9.0), torch.nan_to_num(torch_r, nan=9.0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("threshold, value", THRESHOLDS)
def test_threshold_gradients_equal_torch(dtype, threshold, value):
    x = torch.randn(500, dtype=dtype) * 3
    x[:2] = threshold                              # at the bound: gradient 0
    g = torch.randn(500, dtype=dtype)
    g[5:8] = torch.tensor([float("nan"), float("inf"), -float("inf")], dtype=dtype)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    frt.threshold(xa, threshold, value).backward(g)
    torch.nn.functional.threshold(xb, threshold, value).backward(g)
    assert torch.equal(torch.nan_to_num(xa.grad, nan=7.0), torch.nan_to_num(xb.grad, nan=7.0))


def test_threshold_module_and_opcheck():
    model = frt.Threshold(0.5, -1.0)
    x = torch.randn(6, 5)
    assert torch.equal(model(x), torch.nn.Threshold(0.5, -1.0)(x))
    torch.library.opcheck(torch.ops.fastrelu.threshold.default, (torch.randn(3, 4), 0.5, -1.0))
    torch.library.opcheck(torch.ops.fastrelu.threshold_backward.default,
                          (torch.randn(3, 4), torch.randn(3, 4), 0.25))


# --- drop-in signatures and reprs --------------------------------------------------------


@pytest.mark.parametrize("ours, theirs", [
    (frt.relu, F.relu), (frt.threshold, F.threshold),
    (frt.ReLU, torch.nn.ReLU), (frt.Threshold, torch.nn.Threshold),
])
def test_signatures_match_torch(ours, theirs):
    def params(f):
        # (fastrelu's own options are keyword-only, after torch's: ReLU's save_mask)
        return [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()
                if f is theirs or p.kind != p.KEYWORD_ONLY]
    assert params(ours) == params(theirs)


def test_module_reprs_say_fastrelu():
    assert repr(frt.ReLU()) == "ReLU(fastrelu)"
    assert repr(frt.ReLU(inplace=True)) == "ReLU(inplace=True, fastrelu)"
    assert repr(frt.Threshold(0.5, 2.0)) == "Threshold(threshold=0.5, value=2.0, fastrelu)"
    assert (repr(frt.Threshold(0.5, 2.0, inplace=True))
            == "Threshold(threshold=0.5, value=2.0, inplace=True, fastrelu)")
    assert repr(frt.ReLU()) != repr(torch.nn.ReLU())
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), frt.ReLU(True))
    assert "(1): ReLU(inplace=True, fastrelu)" in repr(model)


def test_docstring_examples():
    import doctest
    for obj in (frt, frt.relu, frt.threshold, frt.ReLU, frt.Threshold):
        test = doctest.DocTestParser().get_doctest(obj.__doc__, {}, obj.__name__, None, 0)
        runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
        runner.run(test)
        assert test.examples and runner.failures == 0, obj.__name__


# --- every mode of differentiation, against torch ----------------------------------------

def _t_threshold_low(x):
    return F.threshold(x, 0.5, -2.0)


def _t_threshold_high(x):
    return F.threshold(x, 0.5, 4.0)


# (fastrelu form, torch form): out of place and in place (on a copy, so that the
# function of x is differentiable with x a leaf). OUT_OF_PLACE: the torch form
# without inplace, for the torch.func transforms (torch's own in-place forms
# fail under some: jacfwd(jacfwd(nn.ReLU(inplace=True))) writes into a ZeroTensor).
PAIRS = {
    "relu": (frt.relu, torch.relu),
    "relu_inplace": (lambda x: frt.relu(x.clone(), inplace=True),
                     lambda x: torch.relu_(x.clone())),
    "module_inplace": (lambda x: frt.ReLU(inplace=True)(x * 1),
                       lambda x: torch.nn.ReLU(inplace=True)(x * 1)),
    "threshold": (lambda x: frt.threshold(x, 0.5, -2.0), _t_threshold_low),
    "threshold_value_above": (lambda x: frt.threshold(x, 0.5, 4.0), _t_threshold_high),
    "threshold_inplace": (lambda x: frt.threshold(x.clone(), 0.5, -2.0, inplace=True),
                          lambda x: F.threshold(x.clone(), 0.5, -2.0, inplace=True)),
    "threshold_inplace_value_above": (
        lambda x: frt.Threshold(0.5, 4.0, inplace=True)(x.clone()),
        lambda x: F.threshold(x.clone(), 0.5, 4.0, inplace=True)),
}
pair_ids = pytest.mark.parametrize("name", list(PAIRS))
OUT_OF_PLACE = {"relu": torch.relu, "relu_inplace": torch.relu, "module_inplace": torch.relu,
                "threshold": _t_threshold_low, "threshold_value_above": _t_threshold_high,
                "threshold_inplace": _t_threshold_low,
                "threshold_inplace_value_above": _t_threshold_high}


def _away_from_kinks(n, dtype=torch.float64, seed=0):
    """Values at least 0.1 away from 0 and 0.5 (the kinks) for finite differences."""
    x = torch.randn(n, dtype=dtype, generator=torch.Generator().manual_seed(seed)) * 2
    x = torch.where((x - 0.25).abs() < 0.35, x.sign() * 0.6 + 0.25, x)
    return x


def _special(dtype):
    """Random values with zeros, infinities and the threshold 0.5 (no NaN: the
    gradient rules differ there, see test_nan_inputs_gradient_is_zero)."""
    x = torch.randn(64, dtype=dtype, generator=torch.Generator().manual_seed(1))
    x[:6] = torch.tensor([0.0, -0.0, float("inf"), -float("inf"), 0.5, 1e-300], dtype=dtype)
    return x


@pair_ids
def test_gradcheck_and_gradgradcheck_every_mode(name):
    """Reverse, forward (also batched, as vmap over the tangents), forward over
    reverse and reverse over reverse, numerically checked."""
    f, _ = PAIRS[name]
    x = _away_from_kinks(12).requires_grad_()
    assert torch.autograd.gradcheck(f, (x,), check_forward_ad=True, check_backward_ad=True,
                                    check_batched_grad=True, check_batched_forward_grad=True)
    assert torch.autograd.gradgradcheck(f, (x,), check_fwd_over_rev=True,
                                        check_rev_over_rev=True, check_batched_grad=True)


@pair_ids
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_reverse_and_double_backward_equal_torch(name, dtype):
    f, ref = PAIRS[name]
    x = _special(dtype)
    g = torch.randn(64, dtype=dtype)
    g[10:13] = torch.tensor([float("nan"), float("inf"), -float("inf")], dtype=dtype)
    gg = torch.randn(64, dtype=dtype)
    results = []
    for fn in (f, ref):
        xa = x.clone().requires_grad_()
        ga = g.clone().requires_grad_()
        y = fn(xa)
        (dx,) = torch.autograd.grad(y, xa, ga, create_graph=True)
        ddx, ddg = torch.autograd.grad(dx, (xa, ga), gg, allow_unused=True,
                                       materialize_grads=True)
        results.append([y, dx, ddx, ddg])
    for ours, theirs in zip(*results):
        assert torch.equal(torch.nan_to_num(ours, nan=7.0), torch.nan_to_num(theirs, nan=7.0))


@pair_ids
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_ad_dual_tensors_equal_torch(name, dtype):
    f, ref = PAIRS[name]
    x = _special(dtype)
    t = torch.randn(64, dtype=dtype)
    t[10:13] = torch.tensor([float("nan"), float("inf"), -float("inf")], dtype=dtype)
    with fwAD.dual_level():
        ours = fwAD.unpack_dual(f(fwAD.make_dual(x, t)))
        theirs = fwAD.unpack_dual(ref(fwAD.make_dual(x, t)))
    assert ours.tangent is not None
    assert torch.equal(ours.primal, theirs.primal)
    assert torch.equal(torch.nan_to_num(ours.tangent, nan=7.0),
                       torch.nan_to_num(theirs.tangent, nan=7.0))


def test_forward_ad_relu_tangent_example():
    """issue 9 item 5: the tangent used to be all zero / dropped."""
    x = torch.tensor([1.0, -1.0, 2.0])
    assert torch.equal(torch.func.jvp(frt.relu, (x,), (torch.ones(3),))[1],
                       torch.tensor([1.0, 0.0, 1.0]))
    assert torch.equal(torch.func.jacfwd(frt.relu)(x), torch.diag(torch.tensor([1.0, 0, 1])))
    with fwAD.dual_level():
        assert torch.equal(fwAD.unpack_dual(frt.relu(fwAD.make_dual(x, torch.ones(3)))).tangent,
                           torch.tensor([1.0, 0.0, 1.0]))


def _squared_sum(f):
    return lambda x: f(x).pow(2).sum()


TRANSFORMS = {
    "jvp": lambda f, x: torch.func.jvp(f, (x,), (torch.linspace(-1, 2, x.numel(),
                                                                dtype=x.dtype),)),
    "vjp": lambda f, x: torch.func.vjp(f, x)[1](torch.linspace(-1, 2, x.numel(),
                                                               dtype=x.dtype)),
    "jacfwd": lambda f, x: torch.func.jacfwd(f)(x),
    "jacrev": lambda f, x: torch.func.jacrev(f)(x),
    "grad": lambda f, x: torch.func.grad(_squared_sum(f))(x),
    "hessian": lambda f, x: torch.func.hessian(_squared_sum(f))(x),
    "jacrev_jacrev": lambda f, x: torch.func.jacrev(torch.func.jacrev(_squared_sum(f)))(x),
    "jacfwd_jacfwd": lambda f, x: torch.func.jacfwd(torch.func.jacfwd(_squared_sum(f)))(x),
    "vmap": lambda f, x: torch.func.vmap(f)(torch.stack([x, -x, 2 * x])),
    "vmap_in_dims_1": lambda f, x: torch.func.vmap(f, in_dims=1)(torch.stack([x, -x], 1)),
    "vmap_nested": lambda f, x: torch.func.vmap(torch.func.vmap(f))(x.reshape(2, 3, -1)),
    "vmap_grad": lambda f, x: torch.func.vmap(torch.func.grad(_squared_sum(f)))(
        torch.stack([x, -x])),
    "vmap_jvp": lambda f, x: torch.func.vmap(lambda t: torch.func.jvp(f, (x,), (t,)))(
        torch.eye(x.numel(), dtype=x.dtype)),
}


@pair_ids
@pytest.mark.parametrize("transform", list(TRANSFORMS))
def test_torch_func_transforms_equal_torch(name, transform):
    f, ref = PAIRS[name][0], OUT_OF_PLACE[name]
    x = _away_from_kinks(6)
    x[0] = 0.0                           # at the kink both give 0
    ours, theirs = TRANSFORMS[transform](f, x), TRANSFORMS[transform](ref, x)
    for a, b in zip(torch.utils._pytree.tree_leaves(ours),
                    torch.utils._pytree.tree_leaves(theirs)):
        assert a.shape == b.shape and torch.equal(a, b)


def test_nan_inputs_gradient_is_zero():
    """The one documented difference: fastrelu's gradient and tangent at a NaN
    input are 0, torch passes them through."""
    x = torch.tensor([float("nan"), 1.0, -1.0])
    expected = torch.tensor([0.0, 1.0, 0.0])
    for f in (frt.relu, lambda t: frt.relu(t * 1, inplace=True),
              lambda t: frt.threshold(t, 0.0, 0.0)):
        assert torch.equal(torch.func.grad(lambda t: f(t).sum())(x), expected)
        assert torch.equal(torch.func.jvp(f, (x,), (torch.ones(3),))[1], expected)


# --- in place ------------------------------------------------------------------------------

@pytest.mark.parametrize("call, reference", [
    (lambda t: frt.relu(t, inplace=True), torch.relu_),
    (lambda t: frt.ReLU(inplace=True)(t), torch.relu_),
    (lambda t: frt.threshold(t, 0.5, -1.0, inplace=True),
     lambda t: torch.threshold_(t, 0.5, -1.0)),
    (lambda t: frt.Threshold(0.5, 3.0, inplace=True)(t), lambda t: torch.threshold_(t, 0.5, 3.0)),
])
@pytest.mark.parametrize("make", [
    lambda: torch.randn(5, 4), lambda: torch.randn(4, 5).t(), lambda: torch.randn(10)[::2],
    lambda: torch.randn(6, 4)[:, 1:3], lambda: torch.randn(5, dtype=torch.float64),
    lambda: (torch.randn(7) * 9).to(torch.int16),
])
def test_inplace_writes_the_input(call, reference, make):
    x = make()
    base = x._base if x._base is not None else x
    expected_base = base.clone()
    reference(expected_base.as_strided(x.shape, x.stride(), x.storage_offset()))
    version = x._version
    assert call(x) is x
    assert torch.equal(base, expected_base)           # the rest of the storage untouched
    assert x._version > version                        # autograd sees the write


@pytest.mark.parametrize("call", [
    lambda t: frt.relu(t, inplace=True), lambda t: frt.threshold(t, 0.5, -1.0, inplace=True),
    lambda t: frt.threshold(t, 0.5, 3.0, inplace=True),
])
def test_inplace_on_a_leaf_that_requires_grad_raises_like_torch(call):
    x = torch.tensor([1.0, -1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used"):
        torch.relu_(x)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used"):
        call(x)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
        call(x[1:])
    assert torch.equal(x, torch.tensor([1.0, -1.0, 2.0]))          # nothing written
    with torch.no_grad():                                            # allowed, as in torch
        assert call(x) is x
    assert x.requires_grad and x.min() >= -1.0


def test_inplace_saves_the_modified_tensor_only():
    """relu_ keeps the one tensor it modified (as torch does); a graph that saved
    the old value raises torch's version error."""
    x = torch.tensor([1.0, -1.0, 2.0], requires_grad=True)
    h = x * 1
    y = frt.relu(h, inplace=True)
    assert y is h and type(y.grad_fn).__name__.startswith("_ReluInplaceFn")
    y.backward(torch.ones(3))
    assert torch.equal(x.grad, torch.tensor([1.0, 0.0, 1.0]))
    h = x * 1
    z = h * h                                          # saves h
    frt.relu(h, inplace=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


def test_inplace_on_a_view_of_a_non_leaf_rebases_history():
    x = torch.tensor([1.0, -1.0, 2.0, -3.0], requires_grad=True)
    grads = []
    for relu_ in (lambda t: frt.relu(t, inplace=True), torch.relu_):
        x.grad = None
        h = x * 2
        relu_(h[1:])
        (h * torch.arange(4.0)).sum().backward()
        grads.append(x.grad.clone())
    assert torch.equal(grads[0], grads[1])


def test_inplace_module_training_equals_torch():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), frt.ReLU(inplace=True),
                                torch.nn.Linear(8, 8), frt.Threshold(0.1, 0.0, inplace=True),
                                torch.nn.Linear(8, 1))
    reference = torch.nn.Sequential(model[0], torch.nn.ReLU(inplace=True), model[2],
                                    torch.nn.Threshold(0.1, 0.0, inplace=True), model[4])
    x = torch.randn(16, 4)
    grads = []
    for m in (model, reference):
        m.zero_grad()
        m(x).sum().backward()
        grads.append([p.grad.clone() for p in m.parameters()])
    assert torch.equal(model(x), reference(x))
    for a, b in zip(*grads):
        assert torch.equal(a, b)


def test_raw_inplace_ops_refuse_tensors_that_require_grad():
    """torch.library allows no autograd formula for an op that mutates its input:
    rather than silently wrong gradients, the raw ops raise."""
    h = torch.tensor([1.0, -1.0], requires_grad=True) * 1
    with pytest.raises(RuntimeError, match="not differentiable"):
        torch.ops.fastrelu.relu_(h)
    with pytest.raises(RuntimeError, match="not differentiable"):
        torch.ops.fastrelu.threshold_(h, 0.5, 0.0)
    assert torch.equal(h, torch.tensor([1.0, -1.0]))
    with torch.no_grad():
        torch.ops.fastrelu.relu_(h)
    assert torch.equal(h, torch.tensor([1.0, 0.0]))


# --- bfloat16 and autocast -----------------------------------------------------------------

def _bfloat16_bits(t):
    return t.view(torch.int16)


def test_bfloat16_runs_fastrelus_kernels():
    """With ml_dtypes, bfloat16 tensors take fastrelu's kernels (its semantics:
    NaN payloads kept, gradient 0 at NaN); the raw ops and autograd too."""
    pytest.importorskip("ml_dtypes")
    torch.manual_seed(1)
    bits = torch.randint(-32768, 32767, (4096,), dtype=torch.int16)
    x = bits.view(torch.bfloat16)
    import ml_dtypes
    xn = bits.numpy().view(ml_dtypes.bfloat16)
    for got in (frt.relu(x), torch.ops.fastrelu.relu(x), frt.ReLU()(x)):
        assert got.dtype == torch.bfloat16
        assert np.array_equal(_bfloat16_bits(got).numpy(),
                              _reference.relu(xn).view(np.int16))
    want = _reference.threshold(xn, 0.5, -1.0).view(np.int16)
    assert np.array_equal(_bfloat16_bits(frt.threshold(x, 0.5, -1.0)).numpy(), want)
    y = x.clone()
    assert frt.relu(y, inplace=True) is y
    assert np.array_equal(_bfloat16_bits(y).numpy(), _reference.relu(xn).view(np.int16))
    finite = torch.randn(64).to(torch.bfloat16)
    xa = finite.clone().requires_grad_()
    frt.ReLU()(xa).sum().backward()
    assert torch.equal(xa.grad, (finite > 0).to(torch.bfloat16))
    xs = x[::3]                                        # strided: no copy needed
    assert np.array_equal(_bfloat16_bits(frt.relu(xs)).numpy(),
                          _reference.relu(xn[::3]).view(np.int16))


def test_bfloat16_without_ml_dtypes_falls_back_to_torch():
    """In a process without ml_dtypes, bfloat16 is computed by torch."""
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'ml_dtypes': raise ImportError('blocked')\n"
            "sys.meta_path.insert(0, Block())\n"
            "import torch, fastrelu.torch as frt\n"
            "x = torch.randn(100).to(torch.bfloat16)\n"
            "assert frt._BF16 is None\n"
            "assert torch.equal(frt.relu(x), torch.relu(x))\n"
            "y = x.clone().requires_grad_(); frt.ReLU()(y).sum().backward()\n"
            "assert torch.equal(y.grad, (x > 0).to(torch.bfloat16))\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert out.strip() == "ok"


def test_autocast_bfloat16_equals_torch():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), frt.ReLU(), torch.nn.Linear(8, 8),
                                frt.Threshold(0.1, 0.0), torch.nn.Linear(8, 2),
                                frt.ReLU(inplace=True))
    reference = torch.nn.Sequential(model[0], torch.nn.ReLU(), model[2],
                                    torch.nn.Threshold(0.1, 0.0), model[4],
                                    torch.nn.ReLU(inplace=True))
    x = torch.randn(5, 4)
    outputs, grads = [], []
    for m in (model, reference):
        m.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = m(x)
        y.float().sum().backward()
        outputs.append(y)
        grads.append([p.grad.clone() for p in m.parameters()])
    assert outputs[0].dtype == torch.bfloat16 and torch.equal(*outputs)
    for a, b in zip(*grads):
        assert torch.equal(a, b)
    with torch.autocast("cpu", dtype=torch.bfloat16):   # autocast leaves ReLU's dtype alone
        assert frt.relu(torch.randn(3)).dtype == torch.float32


# --- torch.compile and the raw ops --------------------------------------------------------

def _compiled(f):
    torch._dynamo.reset()
    return torch.compile(f, fullgraph=True, backend="aot_eager")


def test_compile_fullgraph_forward_and_backward():
    def f(x, frt_or_torch):
        relu, threshold = frt_or_torch
        return threshold(relu(x * 2) - 0.5, 0.25, -1.0) * x

    ours = _compiled(lambda x: f(x, (frt.relu, frt.threshold)))
    x = torch.randn(50, requires_grad=True)
    y = ours(x)
    y.backward(torch.ones(50))
    ref_x = x.detach().clone().requires_grad_()
    ref = f(ref_x, (torch.relu, F.threshold))
    ref.backward(torch.ones(50))
    assert torch.equal(y, ref) and torch.equal(x.grad, ref_x.grad)
    # fastrelu's kernels ran, forward and backward: its gradient at NaN is 0
    relu = _compiled(frt.relu)
    x = torch.tensor([float("nan"), 1.0, -1.0], requires_grad=True)
    relu(x).sum().backward()
    assert torch.equal(x.grad, torch.tensor([0.0, 1.0, 0.0]))


def test_compile_fullgraph_inplace():
    def f(x, relu, threshold):
        h = x * 2
        relu(h, inplace=True)
        h = h - 0.5
        threshold(h, 0.25, -1.0, inplace=True)
        h = h * 1
        threshold(h, 0.25, 3.0, inplace=True)
        return h * x

    ours = _compiled(lambda x: f(x, frt.relu, frt.threshold))
    x = torch.randn(50, requires_grad=True)
    y = ours(x)
    y.backward(torch.ones(50))
    ref_x = x.detach().clone().requires_grad_()
    ref = f(ref_x, F.relu, F.threshold)
    ref.backward(torch.ones(50))
    assert torch.equal(y, ref) and torch.equal(x.grad, ref_x.grad)
    with torch.no_grad():
        assert torch.equal(ours(x), ref)


@pytest.mark.parametrize("op, args", [
    ("relu_", lambda: (torch.randn(3, 4),)), ("relu_", lambda: (torch.randn(4, 3).t(),)),
    ("threshold_", lambda: (torch.randn(3, 4), 0.5, 2.0)),
    ("relu_backward", lambda: (torch.randn(3, 4, requires_grad=True),
                               torch.relu(torch.randn(3, 4)))),
    ("threshold_backward", lambda: (torch.randn(3, 4, requires_grad=True),
                                    torch.randn(3, 4), 0.25)),
])
def test_opcheck_more(op, args):
    torch.library.opcheck(getattr(torch.ops.fastrelu, op).default, args())


@pytest.mark.parametrize("op", ["relu_backward", "threshold_backward"])
@pytest.mark.parametrize("in_dims, shapes", [
    ((0, 0), ((5, 3), (5, 3))), ((0, None), ((5, 3), (3,))), ((None, 1), ((3,), (3, 5))),
    ((1, 0), ((3, 5), (5, 3))), ((0, 0), ((5, 3), (5, 2, 3))),      # gradient broadcast
])
def test_vmap_rules_of_the_binary_ops(op, in_dims, shapes):
    fn = getattr(torch.ops.fastrelu, op)
    params = (0.25,) if op == "threshold_backward" else ()
    g, m = torch.randn(*shapes[0]), torch.randn(*shapes[1])
    ours = torch.func.vmap(lambda a, b: fn(a, b, *params), in_dims=in_dims)(g, m)
    g0, m0 = (t.movedim(d, 0) if d is not None else t.expand(5, *t.shape)
              for t, d in zip((g, m), in_dims))
    expected = torch.stack([fn(a.expand_as(b), b, *params) for a, b in zip(g0, m0)])
    assert torch.equal(ours, expected)


def test_eager_training_path_equals_the_custom_op_path():
    """The plain eager reverse-mode path (kernels called directly) gives the
    same bits, forward and backward, as the custom ops, NaN and -0.0 included."""
    x = torch.tensor([-2.0, -0.0, 0.0, 3.5, float("nan"), 1e-40, -1e-40] * 50)
    g = torch.randn(x.shape)
    a = x.clone().requires_grad_()
    y = frt.relu(a)
    assert type(y.grad_fn).__name__.startswith("_EagerReluFn")
    y.backward(g)
    b = x.clone()
    ref = torch.where(x > 0, x, torch.where(torch.isnan(x), x, torch.zeros(())))
    assert torch.equal(y.detach().view(torch.int32), ref.view(torch.int32))
    assert torch.equal(a.grad, torch.where(x > 0, g, torch.zeros(())))
    assert torch.equal(y.detach().view(torch.int32), torch.ops.fastrelu.relu(b).view(torch.int32))
    # an expanded gradient (stride 0)
    a.grad = None
    frt.relu(a).backward(torch.ones(()).expand(x.shape))
    assert torch.equal(a.grad, (x > 0).to(x.dtype))


def test_ops_use_at_most_torchs_thread_count():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with frt._torch_threads():
            assert frt.fastrelu.get_num_threads() == 1
    finally:
        torch.set_num_threads(previous)
    with frt._torch_threads():
        assert frt.fastrelu.get_num_threads() == min(frt.fastrelu.get_num_threads(),
                                                     torch.get_num_threads())


# --- the fused operations ----------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
@pytest.mark.parametrize("shape, axis", [((64, 33), -1), ((4, 5, 6, 7), 1), ((300,), 0)])
def test_bias_relu_forward_and_gradients(dtype, shape, axis):
    """Forward as relu(x + bias); both gradients as torch's autograd of that
    (the bias gradient to its summation tolerance)."""
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64).to(dtype).requires_grad_()
    b = torch.randn(shape[axis], dtype=torch.float64).to(dtype).requires_grad_()
    view = [1] * len(shape)
    view[axis] = -1
    y = frt.bias_relu(x, b, axis=axis)
    xr, br = x.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
    want = torch.relu((xr.float() + br.float().view(view)).to(dtype)) if dtype == torch.float16 \
        else torch.relu(xr + br.view(view))
    assert torch.equal(y, want.detach())
    g = torch.randn(shape, dtype=torch.float64).to(dtype)
    y.backward(g)
    mask = (y > 0).to(dtype)
    assert torch.equal(x.grad, g * mask)
    dims = [d for d in range(len(shape)) if d != axis % len(shape)]
    exact = (g * mask).double()
    exact = exact.sum(dim=dims) if dims else exact      # (torch: dim=[] sums everything)
    tol = 1e-2 if dtype == torch.float16 else 1e-5
    assert torch.allclose(b.grad.double(), exact, rtol=tol, atol=tol)


def test_bias_relu_errors():
    x = torch.ones(3, 4)
    with pytest.raises(TypeError):
        frt.bias_relu(x, torch.ones(4, dtype=torch.float64))
    with pytest.raises(ValueError):
        frt.bias_relu(x, torch.ones(3))
    with pytest.raises(np.exceptions.AxisError):
        frt.bias_relu(x, torch.ones(4), axis=2)
    with pytest.raises(TypeError):
        frt.bias_relu(x, torch.ones(4), axis=1.0)


def test_relu_save_mask_saves_one_bit_per_element():
    """ReLU(save_mask=True) saves the packed mask, 1/32 of a float32
    activation (torch.nn.ReLU saves its output), with the same gradients."""
    def saved_bytes(module, x):
        sizes = []

        def pack(t):
            sizes.append(t.numel() * t.element_size())
            return t
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y = module(x)
        return y, sum(sizes)

    x = torch.randn(1024, 256, requires_grad=True)
    y_mask, mask_bytes = saved_bytes(frt.ReLU(save_mask=True), x)
    y_ref, ref_bytes = saved_bytes(torch.nn.ReLU(), x)
    assert ref_bytes == x.numel() * 4
    assert mask_bytes * 32 == ref_bytes
    assert torch.equal(y_mask, y_ref)
    g = torch.randn_like(x)
    (grad_mask,) = torch.autograd.grad(y_mask, x, g)
    (grad_ref,) = torch.autograd.grad(y_ref, x, g)
    assert torch.equal(grad_mask, grad_ref)
    assert repr(frt.ReLU(save_mask=True)) == "ReLU(save_mask=True, fastrelu)"


def test_relu_save_mask_without_grad_is_plain_relu():
    x = torch.randn(10)
    assert torch.equal(frt.ReLU(save_mask=True)(x), torch.relu(x))
