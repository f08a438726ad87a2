"""PyTorch integration: fastrelu's kernels as ``torch.library`` custom ops.

``fastrelu.torch.relu`` / ``fastrelu.torch.threshold`` and the modules
``fastrelu.torch.ReLU`` / ``fastrelu.torch.Threshold`` are drop-in
replacements for ``torch.nn.functional.relu`` / ``threshold`` and
``torch.nn.ReLU`` / ``Threshold`` (same signatures, ``inplace=`` included) that
run fastrelu's kernels on CPU tensors, zero-copy.

Every mode of differentiation works, to any order:

* reverse mode (``backward``, ``torch.autograd.grad``, double backward,
  ``gradgradcheck``): the backward of ``relu`` is fastrelu's fused
  ``relu_backward`` on the saved *output* (not the input), so a
  ``requires_grad`` input is not kept alive by the graph, and an in-place
  ``relu`` keeps only the tensor it modified. The backward is itself a
  differentiable op (linear in the incoming gradient), which gives the
  higher derivatives;
* forward mode (``torch.autograd.forward_ad`` dual tensors): the tangent is
  the same selection, ``relu_backward(tangent, output)``;
* the ``torch.func`` transforms (``grad``, ``vjp``, ``jvp``, ``jacrev``,
  ``jacfwd``, ``hessian``, ``vmap``, nested in any order), through
  ``torch.autograd.Function`` wrappers (``setup_context``, ``backward``,
  ``jvp``, a vmap rule) around the custom ops;
* ``torch.compile(fullgraph=True)`` and ``torch.export``: there, and when
  nothing differentiates the input, the public functions call the custom ops
  directly (dynamo does not trace a Function with a ``jvp``).

The ops are registered as ``torch.ops.fastrelu.relu``, ``relu_backward``,
``threshold``, ``threshold_backward`` (functional, with fake implementations,
autograd formulas and vmap rules; they pass ``torch.library.opcheck``) and
``relu_`` / ``threshold_`` (in place, ``mutates_args=("x",)``; with no
autograd formula, which ``torch.library`` does not allow for them, so on a
tensor that requires grad they raise ``RuntimeError``: use ``inplace=True``
of the public functions).

Gradients equal ``torch.relu``'s exactly, except at NaN inputs: fastrelu's
gradient there is 0 (its documented rule), PyTorch's passes the incoming
gradient through. The same holds for the tangents of forward mode.

bfloat16 tensors run on fastrelu's bfloat16 kernels, with fastrelu's
semantics, when ml_dtypes is installed (the tensor's memory is viewed as an
ml_dtypes bfloat16 array, zero-copy); without ml_dtypes they fall back to
PyTorch's own ``torch.relu`` / ``torch.threshold``. Either way the modules work
under ``torch.autocast("cpu", dtype=torch.bfloat16)``, where the layers before
them produce bfloat16; autocast itself leaves ReLU alone (it runs in its
input's dtype, as ``torch.relu`` does), so a float32 input stays float32. Other dtypes fastrelu does not support (bool, complex) raise
``TypeError``; tensors on another device than the CPU raise
``NotImplementedError``.

Needs ``torch`` (the optional extra ``fastrelu[torch]``).

Examples
--------
>>> import torch, fastrelu.torch as frt
>>> x = torch.tensor([-1.0, 2.0], requires_grad=True)
>>> y = frt.relu(x)
>>> y.sum().backward()
>>> x.grad
tensor([0., 1.])
>>> torch.func.jvp(frt.relu, (torch.tensor([1.0, -1.0]),), (torch.ones(2),))[1]
tensor([1., 0.])
>>> frt.ReLU(inplace=True)
ReLU(inplace=True, fastrelu)
"""
import numpy as np
import torch

import fastrelu
from fastrelu import _engine

__all__ = ["ReLU", "Threshold", "bias_relu", "relu", "threshold"]


#: ml_dtypes' bfloat16, through which bfloat16 tensors reach the kernels
#: (None: ml_dtypes is not installed, and bfloat16 falls back to torch).
_BF16 = next((dt for dt in _engine.ML_DTYPES if dt.name == "bfloat16"), None)


def _numpy(t):
    """The tensor's memory as a NumPy array (zero-copy; bfloat16 as ml_dtypes')."""
    t = t.detach()
    if t.dtype == torch.bfloat16 and _BF16 is not None:
        return t.view(torch.int16).numpy().view(_BF16)
    return t.numpy()


def _torch_bfloat16(t):
    """A bfloat16 tensor that fastrelu leaves to PyTorch (no ml_dtypes)."""
    return t.dtype == torch.bfloat16 and _BF16 is None


class _torch_threads:
    """Inside a torch op, fastrelu uses at most torch's thread count
    (``torch.set_num_threads``), as torch's own kernels do: a model limited to
    one thread is not handed a second one by its ReLU."""

    __slots__ = ("previous",)

    def __enter__(self):
        self.previous = _engine.swap_local_threads(
            min(fastrelu.get_num_threads(), torch.get_num_threads()))

    def __exit__(self, *exc):
        _engine.swap_local_threads(self.previous)


# --- the custom ops -----------------------------------------------------------------------
# Each functional op has a fake impl (torch.compile, opcheck), an autograd
# formula (so that torch.ops.fastrelu.* differentiate when called directly and
# under torch.compile, to any order: every backward is one of these ops) and a
# vmap rule (so that the autograd.Function wrappers below can generate theirs).

def _relu_kernel(x):
    out = torch.empty_like(x)
    with _torch_threads():
        fastrelu.relu(_numpy(x), out=_numpy(out))
    return out


def _relu_backward_kernel(grad_output, output):
    grad_output = _numpy(grad_output.to(output.dtype).expand_as(output))
    grad_input = torch.empty_like(output)
    with _torch_threads():
        fastrelu.relu_backward(grad_output, _numpy(output), out=_numpy(grad_input))
    return grad_input


@torch.library.custom_op("fastrelu::relu", mutates_args=(), device_types="cpu")
def _relu(x: torch.Tensor) -> torch.Tensor:
    return _relu_kernel(x)


@_relu.register_fake
def _(x):
    return torch.empty_like(x)


@torch.library.custom_op("fastrelu::relu_backward", mutates_args=(), device_types="cpu")
def _relu_backward(grad_output: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    return _relu_backward_kernel(grad_output, output)


@_relu_backward.register_fake
def _(grad_output, output):
    return torch.empty_like(output)


@torch.library.custom_op("fastrelu::relu_", mutates_args=("x",), device_types="cpu")
def _relu_inplace(x: torch.Tensor) -> None:
    with _torch_threads():
        fastrelu.relu_(_numpy(x))


@_relu_inplace.register_fake
def _(x):
    return None


@torch.library.custom_op("fastrelu::threshold", mutates_args=(), device_types="cpu")
def _threshold(x: torch.Tensor, threshold: float, value: float) -> torch.Tensor:
    out = torch.empty_like(x)
    with _torch_threads():
        fastrelu.threshold(_numpy(x), threshold, value, out=_numpy(out))
    return out


@_threshold.register_fake
def _(x, threshold, value):
    return torch.empty_like(x)


@torch.library.custom_op("fastrelu::threshold_backward", mutates_args=(), device_types="cpu")
def _threshold_backward(grad_output: torch.Tensor, x: torch.Tensor,
                        threshold: float) -> torch.Tensor:
    grad_input = torch.empty_like(x)
    with _torch_threads():
        fastrelu.threshold_backward(_numpy(grad_output.to(x.dtype).expand_as(x)), _numpy(x),
                                    threshold, out=_numpy(grad_input))
    return grad_input


@_threshold_backward.register_fake
def _(grad_output, x, threshold):
    return torch.empty_like(x)


@torch.library.custom_op("fastrelu::threshold_", mutates_args=("x",), device_types="cpu")
def _threshold_inplace(x: torch.Tensor, threshold: float, value: float) -> None:
    with _torch_threads():
        fastrelu.threshold_(_numpy(x), threshold, value)


@_threshold_inplace.register_fake
def _(x, threshold, value):
    return None


# The in-place ops have no autograd formula (torch.library allows none for an
# op that mutates its input), and custom_op's autograd kernel would let a
# direct call on a tensor autograd records go through, leaving the graph
# unaware of the write and the gradients silently wrong. Their autograd kernel
# refuses that instead; the public functions call them with grad mode off
# (inside autograd.Function.forward) or on tensors that do not require grad.

_lib = torch.library.Library("fastrelu", "FRAGMENT")


def _not_recorded(op, public):
    def kernel(keyset, x, *params):
        if torch.is_grad_enabled() and x.requires_grad:
            raise RuntimeError(f"{op} is not differentiable: use {public} on a tensor "
                               f"that requires grad")
        with torch._C._AutoDispatchBelowAutograd():
            return op.redispatch(keyset & torch._C._after_autograd_keyset, x, *params)
    return kernel


_lib.impl("relu_", _not_recorded(torch.ops.fastrelu.relu_.default,
                                 "fastrelu.torch.relu(x, inplace=True)"),
          "Autograd", with_keyset=True)
_lib.impl("threshold_", _not_recorded(torch.ops.fastrelu.threshold_.default,
                                      "fastrelu.torch.threshold(x, threshold, value, "
                                      "inplace=True)"),
          "Autograd", with_keyset=True)


# autograd of the functional ops. relu_backward(g, y) and
# threshold_backward(g, x, t) are selections, linear in g: their gradient with
# respect to g is the same selection of the incoming gradient, and with respect
# to the mask operand it is 0 (None) almost everywhere.

def _save_output(ctx, inputs, output):
    ctx.save_for_backward(output)


def _relu_grad(ctx, grad):
    (output,) = ctx.saved_tensors
    return _relu_backward(grad, output)


def _save_mask_operand(ctx, inputs, output):
    ctx.save_for_backward(inputs[1])


def _relu_backward_grad(ctx, grad):
    (output,) = ctx.saved_tensors
    return _relu_backward(grad, output), None


def _save_input(ctx, inputs, output):
    # the input, not the output: where value > threshold the output does not
    # tell which elements were replaced
    ctx.save_for_backward(inputs[0])
    ctx.threshold = inputs[1]


def _threshold_grad(ctx, grad):
    (x,) = ctx.saved_tensors
    return _threshold_backward(grad, x, ctx.threshold), None, None


def _save_threshold_mask_operand(ctx, inputs, output):
    ctx.save_for_backward(inputs[1])
    ctx.threshold = inputs[2]


def _threshold_backward_grad(ctx, grad):
    (x,) = ctx.saved_tensors
    return _threshold_backward(grad, x, ctx.threshold), None, None


_relu.register_autograd(_relu_grad, setup_context=_save_output)
_relu_backward.register_autograd(_relu_backward_grad, setup_context=_save_mask_operand)
_threshold.register_autograd(_threshold_grad, setup_context=_save_input)
_threshold_backward.register_autograd(_threshold_backward_grad,
                                      setup_context=_save_threshold_mask_operand)


# vmap rules: the ops are elementwise, so a batched call is one call on the
# physical tensors, the batch dimension moved to the front of every operand.

def _front(t, bdim, ndim):
    """``t`` with its batch dimension first (size 1 if it has none) and padded
    to ``ndim`` logical dimensions, broadcasting like the logical operands."""
    t = t.unsqueeze(0) if bdim is None else t.movedim(bdim, 0)
    return t[(slice(None),) + (None,) * (ndim - (t.dim() - 1))]


@_relu.register_vmap
def _(info, in_dims, x):
    return _relu(x), in_dims[0]


@_threshold.register_vmap
def _(info, in_dims, x, threshold, value):
    return _threshold(x, threshold, value), in_dims[0]


@_relu_inplace.register_vmap
def _(info, in_dims, x):
    _relu_inplace(x)
    return None, None


@_threshold_inplace.register_vmap
def _(info, in_dims, x, threshold, value):
    _threshold_inplace(x, threshold, value)
    return None, None


def _binary_vmap(op):
    def rule(info, in_dims, grad_output, mask_operand, *params):
        g_dim, m_dim = in_dims[:2]
        ndim = mask_operand.dim() - (m_dim is not None)       # the logical result's
        m = _front(mask_operand, m_dim, ndim)
        m = m.expand(info.batch_size, *m.shape[1:])
        return op(_front(grad_output, g_dim, ndim), m, *params), 0
    return rule


_relu_backward.register_vmap(_binary_vmap(_relu_backward))
_threshold_backward.register_vmap(_binary_vmap(_threshold_backward))


# --- autograd.Function wrappers: forward mode and torch.func --------------------------------
# torch.library's register_autograd gives reverse mode only, and functorch
# needs autograd.Functions with setup_context. These wrap the custom ops; each
# backward and jvp is again one of these Functions, so every order works.

class _ReluBackwardFn(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(grad_output, output):
        return _relu_backward(grad_output, output)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[1])
        ctx.save_for_forward(inputs[1])

    @staticmethod
    def backward(ctx, grad):
        (output,) = ctx.saved_tensors
        return _ReluBackwardFn.apply(grad, output), None

    @staticmethod
    def jvp(ctx, grad_output_t, output_t):
        (output,) = ctx.saved_tensors
        if grad_output_t is None:
            return torch.zeros_like(output)
        return _ReluBackwardFn.apply(grad_output_t, output)


class _ReluFn(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return _relu(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(output)
        ctx.save_for_forward(output)

    @staticmethod
    def backward(ctx, grad):
        (output,) = ctx.saved_tensors
        return _ReluBackwardFn.apply(grad, output)

    @staticmethod
    def jvp(ctx, x_t):
        (output,) = ctx.saved_tensors
        return _ReluBackwardFn.apply(x_t, output)


class _ReluInplaceFn(torch.autograd.Function):
    # no generated vmap rule: it would save the output, an input returned
    # as-is, which functorch refuses; the op is elementwise, so the batched call
    # is the call on the physical tensor
    @staticmethod
    def vmap(info, in_dims, x):
        return _ReluInplaceFn.apply(x), in_dims[0]

    @staticmethod
    def forward(x):
        _relu_inplace(x)
        return x

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.mark_dirty(inputs[0])
        ctx.save_for_backward(output)
        ctx.save_for_forward(output)

    @staticmethod
    def backward(ctx, grad):
        (output,) = ctx.saved_tensors
        return _ReluBackwardFn.apply(grad, output)

    @staticmethod
    def jvp(ctx, x_t):
        # the tangent of an input modified in place must be modified in place;
        # autograd checks that by its version counter, which copy_ into a
        # vmap-batched tangent (gradcheck's batched forward grad) leaves alone
        (output,) = ctx.saved_tensors
        x_t.copy_(_ReluBackwardFn.apply(x_t, output))
        torch.autograd.graph.increment_version(x_t)
        return x_t


class _ThresholdBackwardFn(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(grad_output, x, threshold):
        return _threshold_backward(grad_output, x, threshold)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[1])
        ctx.save_for_forward(inputs[1])
        ctx.threshold = inputs[2]

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return _ThresholdBackwardFn.apply(grad, x, ctx.threshold), None, None

    @staticmethod
    def jvp(ctx, grad_output_t, x_t, _):
        (x,) = ctx.saved_tensors
        if grad_output_t is None:
            return torch.zeros_like(x)
        return _ThresholdBackwardFn.apply(grad_output_t, x, ctx.threshold)


class _ThresholdFn(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x, threshold, value):
        return _threshold(x, threshold, value)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])
        ctx.save_for_forward(inputs[0])
        ctx.threshold = inputs[1]

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return _ThresholdBackwardFn.apply(grad, x, ctx.threshold), None, None

    @staticmethod
    def jvp(ctx, x_t, _, __):
        (x,) = ctx.saved_tensors
        return _ThresholdBackwardFn.apply(x_t, x, ctx.threshold)


class _ThresholdInplaceFn(torch.autograd.Function):
    """In-place threshold for ``value <= threshold`` only: then ``output >
    threshold`` exactly where ``input > threshold`` (NaN: neither), so the
    backward can use the output, which is the modified input."""

    @staticmethod
    def vmap(info, in_dims, x, threshold, value):
        return _ThresholdInplaceFn.apply(x, threshold, value), in_dims[0]

    @staticmethod
    def forward(x, threshold, value):
        _threshold_inplace(x, threshold, value)
        return x

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.mark_dirty(inputs[0])
        ctx.save_for_backward(output)
        ctx.save_for_forward(output)
        ctx.threshold = inputs[1]

    @staticmethod
    def backward(ctx, grad):
        (output,) = ctx.saved_tensors
        return _ThresholdBackwardFn.apply(grad, output, ctx.threshold), None, None

    @staticmethod
    def jvp(ctx, x_t, _, __):
        (output,) = ctx.saved_tensors        # in place: see _ReluInplaceFn.jvp
        x_t.copy_(_ThresholdBackwardFn.apply(x_t, output, ctx.threshold))
        torch.autograd.graph.increment_version(x_t)
        return x_t


# --- the public API -----------------------------------------------------------------------

def _differentiated(t):
    """Whether autograd (reverse or forward mode) or a torch.func transform may
    track ``t``. Conservative (any dual level or transform active counts): a
    false positive only costs going through the autograd.Function wrappers
    (and, for an in-place threshold with ``value > threshold``, a copy)."""
    return ((torch.is_grad_enabled() and t.requires_grad)
            or getattr(torch.autograd.forward_ad, "_current_level", 0) >= 0
            or torch._C._functorch.maybe_current_level() is not None)


_EAGER_DTYPES = (torch.float16, torch.float32, torch.float64) + (
    (torch.bfloat16,) if _BF16 is not None else ())


def _plain_reverse(t):
    """Plain eager reverse mode on a dense CPU float tensor: no forward-mode
    level, no torch.func transform (their rules live in _ReluFn)."""
    return (t.dtype in _EAGER_DTYPES and t.layout == torch.strided and t.device.type == "cpu"
            and getattr(torch.autograd.forward_ad, "_current_level", -1) < 0
            and torch._C._functorch.maybe_current_level() is None)


class _EagerReluFn(torch.autograd.Function):
    """relu for the common case, training in eager mode: the kernels called
    on the tensors' memory directly, without the custom ops' dispatch. In a
    PyTorch MLP step (784-512-512-10, batch 256) this took the step from
    1.10x to 1.04x of ``torch.nn.ReLU``'s; an autograd.Function around torch's
    own kernels costs 1.03x by itself. Same results as _ReluFn."""

    @staticmethod
    def forward(ctx, x):
        out = _relu_kernel(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (output,) = ctx.saved_tensors
        if torch.is_grad_enabled() or torch._C._functorch.maybe_current_level() is not None:
            # create_graph, or vmap over the backward: the differentiable op
            return _ReluBackwardFn.apply(grad, output)
        try:
            return _relu_backward_kernel(grad, output)
        except RuntimeError:
            # a batched tensor without memory of its own (gradcheck's legacy
            # vmap over the backward): the op, which has a batching rule
            # (fastrelu's own errors are TypeError/ValueError)
            return _ReluBackwardFn.apply(grad, output)


def _check_inplace(input):
    """PyTorch's checks of an in-place op on a tensor autograd records, done
    before anything is written (autograd.Function makes them after forward)."""
    if torch.is_grad_enabled() and input.requires_grad:
        if input.is_leaf:
            raise RuntimeError(
                "a leaf Variable that requires grad is being used in an in-place operation.")
        if input._is_view() and input._base.is_leaf and input._base.requires_grad:
            raise RuntimeError("a view of a leaf Variable that requires grad is being used "
                               "in an in-place operation.")


def relu(input, inplace=False):
    """``torch.nn.functional.relu`` with fastrelu's kernels (CPU tensors).

    Differentiable in every mode (reverse, forward, ``torch.func``, to any
    order) and compilable; see the module's documentation.

    Parameters
    ----------
    input : torch.Tensor
        A CPU tensor of dtype float16, bfloat16, float32, float64, int8,
        int16, int32, int64 or uint8 (bfloat16 needs ml_dtypes; without it,
        ``torch.relu`` computes it); any shape and strides.
    inplace : bool, optional
        Write the result into ``input`` and return it, like ``torch.relu_``
        (and with its autograd rules: a leaf that requires grad raises
        ``RuntimeError``).

    Returns
    -------
    torch.Tensor
        ``torch.relu(input)`` computed by fastrelu (NaN kept, never -0.0); its
        gradient is 0 at NaN inputs (PyTorch's passes the gradient through).

    Raises
    ------
    TypeError
        A dtype neither fastrelu nor the bfloat16 fallback supports (bool,
        complex, ...).
    NotImplementedError
        A tensor on a device other than the CPU.

    Examples
    --------
    >>> import torch, fastrelu.torch as frt
    >>> frt.relu(torch.tensor([-2.0, 0.5]))
    tensor([0.0000, 0.5000])
    >>> x = torch.tensor([-1.0, 3.0])
    >>> frt.relu(x, inplace=True) is x, x
    (True, tensor([0., 3.]))
    """
    if _torch_bfloat16(input):             # no ml_dtypes: no bfloat16 kernel
        return torch.relu_(input) if inplace else torch.relu(input)
    if torch.compiler.is_compiling() or not _differentiated(input):
        # the ops themselves: nothing to differentiate, or torch.compile
        # (dynamo does not trace autograd.Functions with a jvp; AOTAutograd
        # traces the ops' registered autograd)
        if not inplace:
            return _relu(input)
        if torch.is_grad_enabled() and input.requires_grad:      # compiling
            return input.copy_(_relu(input))
        _relu_inplace(input)
        return input
    if not inplace:
        if _plain_reverse(input):
            return _EagerReluFn.apply(input)
        return _ReluFn.apply(input)
    _check_inplace(input)
    return _ReluInplaceFn.apply(input)


def threshold(input, threshold, value, inplace=False):
    """``torch.nn.functional.threshold`` with fastrelu's kernels (CPU tensors).

    ``input`` where ``input > threshold``, else ``value``; differentiable in
    every mode (the gradient is ``grad_output`` where ``input > threshold``,
    else 0).

    Parameters
    ----------
    input : torch.Tensor
        A CPU tensor of a dtype fastrelu supports (see `relu`; bfloat16
        without ml_dtypes is computed by ``torch.threshold``).
    threshold, value : float
        Cast to ``input``'s dtype as `fastrelu.threshold` does.
    inplace : bool, optional
        Write the result into ``input`` and return it, like
        ``torch.threshold_``. When ``value > threshold`` and autograd tracks
        ``input``, the output does not tell which elements were replaced, so
        the input is first copied for the backward (PyTorch keeps it too).

    Returns
    -------
    torch.Tensor
        The result, equal to ``torch.nn.functional.threshold(input, threshold,
        value)`` except for a NaN ``threshold``: nothing is greater than NaN,
        so fastrelu gives ``value`` for every non-NaN element (PyTorch keeps
        ``input``).

    Raises
    ------
    TypeError
        A dtype neither fastrelu nor the bfloat16 fallback supports.
    ValueError
        ``threshold`` or ``value`` out of range of an integer dtype.
    NotImplementedError
        A tensor on a device other than the CPU.

    Examples
    --------
    >>> import torch, fastrelu.torch as frt
    >>> frt.threshold(torch.tensor([-1.0, 0.5, 2.0]), 1.0, -5.0)
    tensor([-5., -5.,  2.])
    """
    threshold, value = float(threshold), float(value)
    if _torch_bfloat16(input):             # no ml_dtypes: no bfloat16 kernel
        fallback = torch.threshold_ if inplace else torch.threshold
        return fallback(input, threshold, value)
    if torch.compiler.is_compiling() or not _differentiated(input):
        if not inplace:
            return _threshold(input, threshold, value)
        if torch.is_grad_enabled() and input.requires_grad:      # compiling
            # the registered backward saves the input: keep a copy of it
            return input.copy_(_threshold(input.clone(), threshold, value))
        _threshold_inplace(input, threshold, value)
        return input
    if not inplace:
        return _ThresholdFn.apply(input, threshold, value)
    _check_inplace(input)
    if value <= threshold:
        return _ThresholdInplaceFn.apply(input, threshold, value)
    # value > threshold (or NaN): the backward needs the input, which the
    # in-place write destroys
    return input.copy_(_ThresholdFn.apply(input.clone(), threshold, value))


class _MaskReluFn(torch.autograd.Function):
    """relu that saves the packed 1-bit mask of ``input > 0``
    (`fastrelu.relu_with_mask`) for its backward instead of a full tensor:
    1/32 of the memory of a float32 activation (``torch.nn.ReLU`` keeps its
    output). First-order reverse mode only."""

    @staticmethod
    def forward(ctx, x):
        with _torch_threads():
            y, mask = fastrelu.relu_with_mask(_numpy(x))
        ctx.save_for_backward(torch.from_numpy(mask))
        return torch.from_numpy(y)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        with _torch_threads():
            return torch.from_numpy(fastrelu.relu_backward_mask(_numpy(grad), mask.numpy()))


class _BiasReluFn(torch.autograd.Function):
    """bias_relu forward and its fused backward (`fastrelu.bias_relu_backward`:
    the input's and the bias's gradients in one pass). First-order reverse mode."""

    @staticmethod
    def forward(ctx, x, bias, axis):
        with _torch_threads():
            y = torch.from_numpy(fastrelu.bias_relu(_numpy(x), _numpy(bias), axis=axis))
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        with _torch_threads():
            gx, gb = fastrelu.bias_relu_backward(_numpy(grad.to(y.dtype)), _numpy(y),
                                                 axis=ctx.axis)
        return torch.from_numpy(gx), torch.from_numpy(gb), None


def bias_relu(input, bias, axis=-1):
    """``relu(input + bias)`` with ``bias`` along ``axis``, in one pass, with a
    backward that gives both gradients in one pass (`fastrelu.bias_relu`,
    `fastrelu.bias_relu_backward`).

    Parameters
    ----------
    input : torch.Tensor
        A CPU tensor of dtype float16, float32 or float64.
    bias : torch.Tensor
        1-D, of ``input``'s dtype and of length ``input.shape[axis]``.
    axis : int, optional
        The axis of ``input`` the bias runs along: -1 (default) for the
        features of a ``Linear`` layer's output, 1 for the channels of NCHW.

    Returns
    -------
    torch.Tensor
        A new tensor. Differentiable (first order) with respect to ``input``
        and ``bias``; the bias gradient is summed in float32 (float64 for
        float64) in an order fixed by the shape.

    Raises
    ------
    TypeError
        Another dtype, or a bias of another dtype than ``input``.
    ValueError
        A bias of the wrong shape.
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Examples
    --------
    >>> import torch, fastrelu.torch as frt
    >>> x = torch.tensor([[1.0, -2.0], [-3.0, 4.0]], requires_grad=True)
    >>> b = torch.tensor([0.5, 1.0], requires_grad=True)
    >>> y = frt.bias_relu(x, b)
    >>> y
    tensor([[1.5000, 0.0000],
            [0.0000, 5.0000]], grad_fn=<_BiasReluFnBackward>)
    >>> y.sum().backward()
    >>> b.grad
    tensor([1., 1.])
    """
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise TypeError(f"bias_relu(): axis must be an int, not {type(axis).__name__}")
    if torch.is_grad_enabled() and (input.requires_grad or bias.requires_grad):
        return _BiasReluFn.apply(input, bias, axis)
    with _torch_threads():
        return torch.from_numpy(fastrelu.bias_relu(_numpy(input), _numpy(bias), axis=axis))


class ReLU(torch.nn.Module):
    """``torch.nn.ReLU`` with fastrelu's kernels (CPU tensors).

    Parameters
    ----------
    inplace : bool, optional
        Modify the input in place (see `relu`).
    save_mask : bool, optional
        For training: save the packed 1-bit mask of ``input > 0`` for the
        backward (`fastrelu.relu_with_mask`) instead of the output tensor,
        1/32 of the memory of a float32 activation. First-order reverse mode
        on CPU float and integer tensors; anything else (a transform, forward
        mode, bfloat16, ``inplace=True``) runs as without it.

    Examples
    --------
    >>> import torch, fastrelu.torch as frt
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), frt.ReLU())
    >>> model(torch.ones(2, 4)).shape
    torch.Size([2, 3])
    >>> model[1]
    ReLU(fastrelu)
    >>> frt.ReLU(save_mask=True)
    ReLU(save_mask=True, fastrelu)
    """

    def __init__(self, inplace=False, *, save_mask=False):
        super().__init__()
        self.inplace = inplace
        self.save_mask = save_mask

    def forward(self, input):
        if (self.save_mask and not self.inplace and torch.is_grad_enabled()
                and input.requires_grad and _plain_reverse(input)
                and input.dtype != torch.bfloat16           # the mask forms: not bfloat16
                and not torch.compiler.is_compiling()):
            return _MaskReluFn.apply(input)
        return relu(input, inplace=self.inplace)

    def extra_repr(self):
        flags = (["inplace=True"] if self.inplace else []) + (
            ["save_mask=True"] if self.save_mask else [])
        return ", ".join(flags + ["fastrelu"])


class Threshold(torch.nn.Module):
    """``torch.nn.Threshold`` with fastrelu's kernels (CPU tensors).

    Parameters
    ----------
    threshold, value : float
        See `threshold`.
    inplace : bool, optional
        Modify the input in place.

    Examples
    --------
    >>> import torch, fastrelu.torch as frt
    >>> frt.Threshold(0.5, 0.0)(torch.tensor([0.25, 1.0]))
    tensor([0., 1.])
    >>> frt.Threshold(0.5, 0.0, inplace=True)
    Threshold(threshold=0.5, value=0.0, inplace=True, fastrelu)
    """

    def __init__(self, threshold, value, inplace=False):
        super().__init__()
        self.threshold = threshold
        self.value = value
        self.inplace = inplace

    def forward(self, input):
        return threshold(input, self.threshold, self.value, inplace=self.inplace)

    def extra_repr(self):
        inplace = ", inplace=True" if self.inplace else ""
        return f"threshold={self.threshold}, value={self.value}{inplace}, fastrelu"
