"""PyTorch integration: fastrelu's kernels as ``torch.library`` custom ops.

``fastrelu.torch.relu(t)`` and the ``fastrelu.torch.ReLU`` module run fastrelu's
kernels on CPU tensors, zero-copy, with autograd: the backward is fastrelu's
fused ``relu_backward`` on the saved *output* (not the input), so a
``requires_grad`` input is not kept alive by the graph. The ops are registered
as ``torch.ops.fastrelu.relu`` and ``torch.ops.fastrelu.relu_backward`` with
fake (meta) implementations, so they work under ``torch.compile`` and pass
``torch.library.opcheck``.

Gradients equal ``torch.relu``'s exactly, except at NaN inputs: fastrelu's
gradient there is 0 (its documented rule), PyTorch's passes the incoming
gradient through.

Needs ``torch`` (the optional extra ``fastrelu[torch]``).

Examples
--------
>>> import torch, fastrelu.torch as frt
>>> x = torch.tensor([-1.0, 2.0], requires_grad=True)
>>> y = frt.relu(x)
>>> y.sum().backward()
>>> x.grad
tensor([0., 1.])
"""
import torch

import fastrelu

__all__ = ["ReLU", "Threshold", "relu", "threshold"]


def _numpy(t):
    return t.detach().numpy()


@torch.library.custom_op("fastrelu::relu", mutates_args=(), device_types="cpu")
def _relu(x: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x)
    fastrelu.relu(_numpy(x), out=_numpy(out))
    return out


@_relu.register_fake
def _(x):
    return torch.empty_like(x)


@torch.library.custom_op("fastrelu::relu_backward", mutates_args=(), device_types="cpu")
def _relu_backward(grad_output: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    grad_input = torch.empty_like(output)
    fastrelu.relu_backward(_numpy(grad_output.to(output.dtype).expand_as(output)),
                           _numpy(output), out=_numpy(grad_input))
    return grad_input


@_relu_backward.register_fake
def _(grad_output, output):
    return torch.empty_like(output)


def _setup_context(ctx, inputs, output):
    ctx.save_for_backward(output)


def _backward(ctx, grad_output):
    (output,) = ctx.saved_tensors
    return _relu_backward(grad_output, output)


_relu.register_autograd(_backward, setup_context=_setup_context)


@torch.library.custom_op("fastrelu::threshold", mutates_args=(), device_types="cpu")
def _threshold(x: torch.Tensor, threshold: float, value: float) -> torch.Tensor:
    out = torch.empty_like(x)
    fastrelu.threshold(_numpy(x), threshold, value, out=_numpy(out))
    return out


@_threshold.register_fake
def _(x, threshold, value):
    return torch.empty_like(x)


@torch.library.custom_op("fastrelu::threshold_backward", mutates_args=(), device_types="cpu")
def _threshold_backward(grad_output: torch.Tensor, x: torch.Tensor,
                        threshold: float) -> torch.Tensor:
    grad_input = torch.empty_like(x)
    fastrelu.threshold_backward(_numpy(grad_output.to(x.dtype).expand_as(x)), _numpy(x),
                                threshold, out=_numpy(grad_input))
    return grad_input


@_threshold_backward.register_fake
def _(grad_output, x, threshold):
    return torch.empty_like(x)


def _threshold_setup_context(ctx, inputs, output):
    # the input, not the output: where value > threshold the output does not
    # tell which elements were replaced
    x, threshold, _ = inputs
    ctx.save_for_backward(x)
    ctx.threshold = threshold


def _threshold_grad(ctx, grad_output):
    (x,) = ctx.saved_tensors
    return _threshold_backward(grad_output, x, ctx.threshold), None, None


_threshold.register_autograd(_threshold_grad, setup_context=_threshold_setup_context)


def threshold(x, threshold, value):
    """``torch.nn.functional.threshold`` with fastrelu's kernels (CPU tensors).

    ``x`` where ``x > threshold``, else ``value``; differentiable (the
    gradient is ``grad_output`` where ``x > threshold``, else 0).

    Parameters
    ----------
    x : torch.Tensor
        A CPU tensor of a dtype fastrelu supports (see `relu`).
    threshold, value : float
        Cast to ``x``'s dtype as `fastrelu.threshold` does.

    Returns
    -------
    torch.Tensor
        The result, equal to ``torch.nn.functional.threshold(x, threshold,
        value)`` except for a NaN ``threshold``: nothing is greater than NaN,
        so fastrelu gives ``value`` for every non-NaN element (PyTorch keeps
        ``x``).

    Examples
    --------
    >>> import torch, fastrelu.torch as frt
    >>> frt.threshold(torch.tensor([-1.0, 0.5, 2.0]), 1.0, -5.0)
    tensor([-5., -5.,  2.])
    """
    return _threshold(x, float(threshold), float(value))


def relu(x):
    """ReLU of a CPU tensor with fastrelu's kernels, differentiable.

    Parameters
    ----------
    x : torch.Tensor
        A CPU tensor of dtype float16, float32, float64, int8, int16, int32,
        int64 or uint8; any shape and strides.

    Returns
    -------
    torch.Tensor
        ``torch.relu(x)`` computed by fastrelu (NaN kept, never -0.0).

    Raises
    ------
    TypeError
        A dtype fastrelu does not support (bfloat16, bool, complex, ...).
    NotImplementedError
        A tensor on a device other than the CPU.

    Examples
    --------
    >>> import torch, fastrelu.torch as frt
    >>> frt.relu(torch.tensor([-2.0, 0.5]))
    tensor([0.0000, 0.5000])
    """
    return _relu(x)


class ReLU(torch.nn.Module):
    """``torch.nn.ReLU`` with fastrelu's kernels (CPU tensors).

    Examples
    --------
    >>> import torch, fastrelu.torch as frt
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), frt.ReLU())
    >>> model(torch.ones(2, 4)).shape
    torch.Size([2, 3])
    """

    def forward(self, x):
        return _relu(x)


class Threshold(torch.nn.Module):
    """``torch.nn.Threshold`` with fastrelu's kernels (CPU tensors).

    Examples
    --------
    >>> import torch, fastrelu.torch as frt
    >>> frt.Threshold(0.5, 0.0)(torch.tensor([0.25, 1.0]))
    tensor([0., 1.])
    """

    def __init__(self, threshold, value):
        super().__init__()
        self.threshold = threshold
        self.value = value

    def forward(self, x):
        return _threshold(x, float(self.threshold), float(self.value))

    def extra_repr(self):
        return f"threshold={self.threshold}, value={self.value}"
