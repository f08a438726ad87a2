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

__all__ = ["ReLU", "relu"]


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
