"""fastrelu.torch: a torch.library custom op with autograd (torch is an optional extra)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import fastrelu.torch as frt  # noqa: E402

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
