"""The docstrings of the public functions, written once.

`attach` gives them to the functions of ``fastrelu._functions``; the ufuncs of
``fastrelu._ufuncs`` take the same text (`ufunc_doc`), and the Sphinx API
page renders the functions. Each is numpydoc (Parameters, Returns, Raises,
Notes with an "Equivalent NumPy" line, Examples); ``tests/test_docs.py`` runs
the examples.

A new operation of the registry (``_registry.OPS``) needs an entry here for
itself and for its in-place twin: ``attach`` refuses to build without them.
"""
import inspect
import textwrap

DOCS = {}

DOCS["relu"] = """Rectified linear unit, elementwise: ``x`` where ``x > 0``, else 0.

    Parameters
    ----------
    x : array_like
        Input of a supported dtype: float16, float32, float64, (u)int8, (u)int16,
        (u)int32 or (u)int64; with ml_dtypes installed also bfloat16,
        float8_e4m3fn and float8_e5m2. Any shape, layout and byte order.
    out : ndarray, optional
        Writable array of ``x``'s shape and dtype to store the result in. May be
        ``x`` itself; any other overlap with ``x`` is resolved by copying.

    Returns
    -------
    ndarray
        The result, of ``x``'s dtype and shape (``out`` when given).

    Raises
    ------
    TypeError
        Unsupported dtype, or ``out`` not an ndarray or of another dtype.
    ValueError
        ``out`` of another shape, or read-only.

    Notes
    -----
    Exactly ``0 if x <= 0 else x``, with NaN kept: NaN -> the same NaN (sign
    and payload), -0.0 -> +0.0, -inf -> 0, subnormals kept. For unsigned
    integers it is a copy. The kernel compares the bits as integers and runs
    no floating-point instruction: no IEEE flag is raised and flush-to-zero
    modes do not apply.

    Equivalent NumPy: ``np.where((x > 0) | np.isnan(x), x, 0)`` (the same bits);
    ``np.maximum(x, 0)`` gives the same values.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> fastrelu.relu(np.array([-2.0, -0.0, 0.5, np.nan]))
    array([0. , 0. , 0.5, nan])
    """

DOCS["relu_"] = """Rectified linear unit, in place: ``x[...] = relu(x)``; returns ``x``.

    Parameters
    ----------
    x : ndarray
        Writable array of a supported dtype (see `relu`); any view, contiguous or
        strided, in any byte order.

    Returns
    -------
    ndarray
        ``x`` itself.

    Raises
    ------
    TypeError
        ``x`` is not an ndarray, or of an unsupported dtype.
    ValueError
        ``x`` is read-only.

    Notes
    -----
    The rules of `relu`. Equivalent NumPy:
    ``x[...] = np.where((x > 0) | np.isnan(x), x, 0)``, in one pass and with no
    temporary.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> a = np.array([-1, 0, 3], dtype=np.int8)
    >>> fastrelu.relu_(a) is a, a
    (True, array([0, 0, 3], dtype=int8))
    """

DOCS["relu_grad"] = """Derivative of ReLU, elementwise: 1 where ``x > 0``, else 0.

    Parameters
    ----------
    x : array_like
        Input of a supported dtype (see `relu`): the ReLU input or its output
        (the mask is the same).
    out : ndarray, optional
        Writable array of ``x``'s shape and dtype for the result.

    Returns
    -------
    ndarray
        Ones and zeros of ``x``'s dtype (``out`` when given). The gradient at
        exactly 0 is 0, and at NaN it is 0.

    Raises
    ------
    TypeError, ValueError
        As for `relu`.

    Notes
    -----
    For unsigned integers, ``x != 0``. Equivalent NumPy:
    ``(x > 0).astype(x.dtype)``.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> fastrelu.relu_grad(np.array([-1.0, 0.0, 2.0, np.nan], dtype=np.float32))
    array([0., 0., 1., 0.], dtype=float32)
    """

DOCS["relu_backward"] = """Fused ReLU backward in one pass: ``grad_output`` where ``x > 0``, else 0.

    Parameters
    ----------
    grad_output : array_like
        Gradient of the loss with respect to the ReLU output.
    x : array_like
        The ReLU input, or its output (the mask ``x > 0`` is the same, so a
        forward done in place with `relu_` works). Same shape and dtype as
        ``grad_output``.
    out : ndarray, optional
        Writable array of that shape and dtype for the result; may be
        ``grad_output`` or ``x`` itself.

    Returns
    -------
    ndarray
        The gradient with respect to the ReLU input (``out`` when given).

    Raises
    ------
    TypeError
        Unsupported dtype, ``grad_output`` and ``x`` of different dtypes, or a
        bad ``out``.
    ValueError
        ``grad_output`` and ``x`` of different shapes (for pandas and xarray
        containers also different labels or dims), or a bad ``out``.

    Notes
    -----
    A selection, not a product: where ``x <= 0`` (or NaN) the result is exactly
    +0 even if the gradient is inf or NaN. Equivalent NumPy:
    ``np.where(x > 0, grad_output, 0)``; unlike ``grad_output * (x > 0)`` it
    makes one pass and no temporary.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> g = np.array([10.0, np.inf, 30.0])
    >>> fastrelu.relu_backward(g, np.array([1.0, -1.0, 0.0]))
    array([10.,  0.,  0.])
    """

DOCS["relu6"] = """ReLU clipped at 6, elementwise: ``min(max(x, 0), 6)``, NaN kept.

    Parameters
    ----------
    x : array_like
        Input of a supported dtype (see `relu`); any shape, layout and byte order.
    out : ndarray, optional
        Writable array of ``x``'s shape and dtype for the result; may be ``x``.

    Returns
    -------
    ndarray
        The result, of ``x``'s dtype (``out`` when given).

    Raises
    ------
    TypeError, ValueError
        As for `relu`.

    Notes
    -----
    Exactly: ``0 if x <= 0 else (6 if x >= 6 else x)``; NaN stays NaN (with its
    payload), -0.0 -> +0.0, +inf -> 6. Used by MobileNet-style networks, whose
    activations must fit a fixed-point range. Like `relu`, a comparison of
    bits: no floating-point instruction.

    Equivalent NumPy:
    ``np.where(x >= 6, 6, np.where((x > 0) | np.isnan(x), x, 0))``;
    ``np.clip(x, 0, 6)`` gives the same values.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> fastrelu.relu6(np.array([-1.0, 3.0, 7.5, np.inf, np.nan]))
    array([ 0.,  3.,  6.,  6., nan])
    """

DOCS["relu6_"] = """ReLU6 in place: ``x[...] = relu6(x)``; returns ``x``.

    Parameters
    ----------
    x : ndarray
        Writable array of a supported dtype (see `relu`); any view.

    Returns
    -------
    ndarray
        ``x`` itself.

    Raises
    ------
    TypeError
        ``x`` is not an ndarray, or of an unsupported dtype.
    ValueError
        ``x`` is read-only.

    Notes
    -----
    The rules of `relu6`. Equivalent NumPy:
    ``x[...] = np.where(x >= 6, 6, np.where((x > 0) | np.isnan(x), x, 0))``,
    in one pass and with no temporary.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> a = np.array([-3, 2, 9], dtype=np.int16)
    >>> fastrelu.relu6_(a)
    array([0, 2, 6], dtype=int16)
    """

DOCS["relu6_backward"] = """ReLU6 backward in one pass: ``grad_output`` where ``0 < x < 6``, else 0.

    Parameters
    ----------
    grad_output : array_like
        Gradient of the loss with respect to the ReLU6 output.
    x : array_like
        The ReLU6 input or its output (the mask ``0 < x < 6`` is the same).
        Same shape and dtype as ``grad_output``.
    out : ndarray, optional
        Writable array of that shape and dtype for the result; may be
        ``grad_output`` or ``x`` itself.

    Returns
    -------
    ndarray
        The gradient with respect to the input (``out`` when given).

    Raises
    ------
    TypeError, ValueError
        As for `relu_backward`.

    Notes
    -----
    A selection: exactly +0 where the mask is off (``x <= 0``, ``x >= 6`` or
    NaN), also for inf/NaN gradients. Equivalent NumPy:
    ``np.where((x > 0) & (x < 6), grad_output, 0)``.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> fastrelu.relu6_backward(np.ones(4), np.array([-1.0, 3.0, 6.0, 9.0]))
    array([0., 1., 0., 0.])
    """

_LEAKY_FLAGS = """Leaky ReLU is one of the two operations (with its backward) that do
    floating-point arithmetic: float32 for float16 and float32 data, float64
    for float64. The product is computed for every element and then selected,
    so it can raise IEEE exception flags (invalid, overflow, underflow,
    inexact) also in elements it discards. fastrelu's policy: it saves the
    caller's exception flags before the call and restores them after it, so
    no call changes the floating-point state and NumPy never warns. Being
    arithmetic, it is subject to flush-to-zero / denormals-are-zero modes,
    should another library set them."""

DOCS["leaky_relu"] = """Leaky ReLU, elementwise: ``x`` where ``x > 0``, else ``negative_slope * x``.

    Leaky ReLU is the standard answer to the "dying ReLU" problem: a unit whose
    input stays negative gets zero gradient from `relu` and stops learning; the
    small slope keeps a gradient flowing.

    Parameters
    ----------
    x : array_like
        Input of dtype float16, float32 or float64 (float16 is computed in
        float32 and rounded, as PyTorch does), or, with ml_dtypes installed,
        bfloat16, float8_e4m3fn or float8_e5m2 (the same way). Any shape,
        layout, byte order.
    negative_slope : float, optional
        The slope for ``x <= 0`` (default 0.01); any real number. Used as
        float32 for float16 and float32 input, as float64 for float64 input.
    out : ndarray, optional
        Writable array of ``x``'s shape and dtype for the result; may be ``x``.

    Returns
    -------
    ndarray
        The result, of ``x``'s dtype (``out`` when given).

    Raises
    ------
    TypeError
        A dtype other than float16/32/64, a ``negative_slope`` that is not a
        real number (or is a bool), or a bad ``out``.
    ValueError
        ``out`` of another shape, or read-only.

    Notes
    -----
    Exactly as PyTorch: ``x if x > 0 else x * negative_slope`` in IEEE
    arithmetic, so NaN propagates, -0.0 stays -0.0 and -inf * slope is -inf
    (for a positive slope).

    {flags}

    Equivalent NumPy, with ``w`` float64 for float64 data, else float32:
    ``np.where(x > 0, x, (x.astype(w) * w(negative_slope)).astype(x.dtype))``
    (for float32 and float64 simply ``np.where(x > 0, x, x * negative_slope)``),
    but without NumPy's warnings.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> fastrelu.leaky_relu(np.array([-2.0, -0.0, 3.0, np.nan]), negative_slope=0.1)
    array([-0.2, -0. ,  3. ,  nan])
    """.format(flags=_LEAKY_FLAGS)

DOCS["leaky_relu_"] = """Leaky ReLU in place: ``x[...] = leaky_relu(x, negative_slope)``; returns ``x``.

    Parameters
    ----------
    x : ndarray
        Writable float16/float32/float64 array; any view.
    negative_slope : float, optional
        The slope for ``x <= 0`` (default 0.01), as for `leaky_relu`.

    Returns
    -------
    ndarray
        ``x`` itself.

    Raises
    ------
    TypeError
        ``x`` is not an ndarray, or not of a float dtype; a ``negative_slope``
        that is not a real number.
    ValueError
        ``x`` is read-only.

    Notes
    -----
    The rules and the IEEE flags policy of `leaky_relu` (the caller's
    exception flags are restored after the call). Equivalent NumPy (float32,
    float64): ``x[...] = np.where(x > 0, x, x * negative_slope)``.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> a = np.array([-10.0, 5.0], dtype=np.float32)
    >>> fastrelu.leaky_relu_(a, 0.5)
    array([-5.,  5.], dtype=float32)
    """

DOCS["leaky_relu_backward"] = """Leaky ReLU backward in one pass: ``grad_output`` where ``x > 0``, else
    ``negative_slope * grad_output``.

    Parameters
    ----------
    grad_output : array_like
        Gradient of the loss with respect to the leaky ReLU output.
    x : array_like
        The leaky ReLU input; with ``negative_slope > 0`` also its output (the
        sign is the same). Same shape and float dtype as ``grad_output``.
    negative_slope : float, optional
        The slope used in the forward pass (default 0.01), as for `leaky_relu`.
    out : ndarray, optional
        Writable array of that shape and dtype for the result; may be
        ``grad_output`` or ``x`` itself.

    Returns
    -------
    ndarray
        The gradient with respect to the input (``out`` when given).

    Raises
    ------
    TypeError
        A dtype other than float16/32/64, ``grad_output`` and ``x`` of
        different dtypes, a ``negative_slope`` that is not a real number, or
        a bad ``out``.
    ValueError
        ``grad_output`` and ``x`` of different shapes, or a bad ``out``.

    Notes
    -----
    Float arithmetic as in `leaky_relu`, with its IEEE flags policy: the
    caller's exception flags are restored after the call. Where ``x <= 0``
    or ``x`` is NaN the result is ``negative_slope * grad_output``.
    Equivalent NumPy (float32, float64):
    ``np.where(x > 0, grad_output, grad_output * negative_slope)``.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> fastrelu.leaky_relu_backward(np.ones(3), np.array([-1.0, 0.0, 2.0]), 0.1)
    array([0.1, 0.1, 1. ])
    """

_THRESHOLD_CAST = """``threshold`` and ``value`` are real numbers (ints and floats, Python or
    NumPy; a bool or a complex number is a TypeError), cast to ``x``'s dtype
    before anything is compared: to a float dtype rounded to nearest (so they
    may become inf); to an integer dtype truncated toward zero as ``astype``
    does, and a ValueError if the number is not finite or, truncated, out of
    the dtype's range."""


DOCS["threshold"] = """Threshold, elementwise: ``x`` where ``x > threshold``, else ``value``.

    The general member of the ReLU family: ``relu(x)`` is
    ``threshold(x, 0, 0)``. It is PyTorch's ``torch.nn.functional.threshold``
    but for a NaN ``threshold``, where PyTorch keeps every element.

    Parameters
    ----------
    x : array_like
        Input of a supported dtype (see `relu`); any shape, layout and byte order.
    threshold : int or float
        The bound, cast to ``x``'s dtype (see Notes).
    value : int or float
        What replaces the elements at or below the bound (and all non-NaN
        elements if the bound is NaN), cast to ``x``'s dtype the same way.
    out : ndarray, optional
        Writable array of ``x``'s shape and dtype for the result; may be ``x``.

    Returns
    -------
    ndarray
        The result, of ``x``'s dtype (``out`` when given).

    Raises
    ------
    TypeError
        Unsupported dtype, a ``threshold`` or ``value`` that is not a real
        number, or a bad ``out``.
    ValueError
        For an integer dtype, ``threshold`` or ``value`` out of its range or
        not finite; ``out`` of another shape, or read-only.

    Notes
    -----
    {cast}

    With ``t`` and ``v`` the cast ``threshold`` and ``value``: each element is
    ``x`` if ``x > t`` or ``x`` is NaN (the same NaN, sign and payload), else
    ``v`` (its bits, so also -0.0 or NaN). -0.0 and +0.0 compare equal.
    Nothing is greater than NaN: with a NaN ``threshold`` every non-NaN
    element becomes ``v``. For an integer dtype the comparison is with the
    truncated ``t``: ``threshold(x, -2.7, 0)`` replaces -2. A selection on the
    bits: no floating-point instruction runs, no IEEE flag is raised.

    Equivalent NumPy: ``np.where((x > t) | np.isnan(x), x, v)`` with
    ``t = np.array(threshold).astype(x.dtype)`` and ``v`` likewise.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> fastrelu.threshold(np.array([-1.0, 0.5, 2.0, np.nan]), 1.0, -5.0)
    array([-5., -5.,  2., nan])
    >>> fastrelu.threshold(np.array([-1.0, 0.5, 2.0, np.nan]), np.nan, 0.0)
    array([ 0.,  0.,  0., nan])
    >>> fastrelu.threshold(np.array([-3, -2, 4], dtype=np.int8), -2.7, 0)
    array([0, 0, 4], dtype=int8)
    """.format(cast=_THRESHOLD_CAST)

DOCS["threshold_"] = """Threshold in place: ``x[...] = threshold(x, threshold, value)``; returns ``x``.

    Parameters
    ----------
    x : ndarray
        Writable array of a supported dtype (see `relu`); any view.
    threshold, value : int or float
        As for `threshold`: cast to ``x``'s dtype.

    Returns
    -------
    ndarray
        ``x`` itself.

    Raises
    ------
    TypeError
        ``x`` is not an ndarray, or of an unsupported dtype; a ``threshold``
        or ``value`` that is not a real number.
    ValueError
        ``x`` is read-only; for an integer dtype, ``threshold`` or ``value``
        out of its range or not finite.

    Notes
    -----
    The rules of `threshold`. Equivalent NumPy:
    ``x[...] = np.where((x > t) | np.isnan(x), x, v)`` with ``t`` and ``v``
    cast as there, in one pass and with no temporary.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> a = np.array([1.0, 5.0, -2.0])
    >>> fastrelu.threshold_(a, 2.0, 0.0)
    array([0., 5., 0.])
    """

DOCS["threshold_backward"] = """Threshold backward in one pass: ``grad_output`` where ``x > threshold``, else 0.

    Parameters
    ----------
    grad_output : array_like
        Gradient of the loss with respect to the threshold's output.
    x : array_like
        The threshold's input (its output works too when ``value <=
        threshold``: the mask is then the same). Same shape and dtype as
        ``grad_output``.
    threshold : int or float
        The bound used in the forward pass, cast to the dtype as there (see
        `threshold`).
    out : ndarray, optional
        Writable array of that shape and dtype for the result; may be
        ``grad_output`` or ``x`` itself.

    Returns
    -------
    ndarray
        The gradient with respect to the input (``out`` when given).

    Raises
    ------
    TypeError
        Unsupported dtype, ``grad_output`` and ``x`` of different dtypes, a
        ``threshold`` that is not a real number, or a bad ``out``.
    ValueError
        ``grad_output`` and ``x`` of different shapes; for an integer dtype,
        ``threshold`` out of its range or not finite; a bad ``out``.

    Notes
    -----
    With ``t`` the cast ``threshold``: ``grad_output`` where ``x > t``, else
    +0 -- where ``x <= t``, where ``x`` is NaN, and everywhere if ``t`` is
    NaN. A selection, as `relu_backward`: +0 exactly, also for inf/NaN
    gradients; -0.0 and +0.0 compare equal. Equivalent NumPy:
    ``np.where(x > t, grad_output, 0)`` with ``t = np.array(threshold).astype(x.dtype)``.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> g = np.array([1.0, np.inf, 3.0, 4.0])
    >>> fastrelu.threshold_backward(g, np.array([0.5, 1.0, 2.0, np.nan]), 1.0)
    array([0., 0., 3., 0.])
    """

DOCS["add_relu"] = """ReLU of a sum in one pass: ``relu(x + residual)``.

    The residual connection of a ResNet block (``relu(x + identity)``) without
    the temporary that ``np.maximum(x + residual, 0)`` allocates and reads back.

    Parameters
    ----------
    x, residual : array_like
        Operands of one float dtype (float16, float32 or float64) and one
        shape; no broadcasting (`bias_relu` broadcasts a per-feature vector).
        Any layout or byte order.
    out : ndarray, optional
        Writable array of ``x``'s shape and dtype for the result; may be ``x``
        or ``residual`` itself (the in-place forms).

    Returns
    -------
    ndarray
        The result, of ``x``'s dtype (``out`` when given).

    Raises
    ------
    TypeError
        A dtype other than float16/32/64, operands of different dtypes, or a
        bad ``out``.
    ValueError
        Operands or ``out`` of different shapes, or a read-only ``out``.

    Notes
    -----
    The sum is the IEEE sum in the dtype's precision (float16 computed in
    float32 and rounded once, as PyTorch does); then ReLU as `relu` does it: a
    NaN sum is kept, -0.0 and every sum ``<= 0`` become +0.0, an overflowing
    sum is +inf (kept) or -inf (0). The caller's floating-point exception
    flags are restored after the call: no NumPy warning.

    Equivalent NumPy (float32, float64):
    ``s = x + residual; np.where((s > 0) | np.isnan(s), s, 0)``.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> fastrelu.add_relu(np.array([1.0, -2.0, 0.5]), np.array([-3.0, 1.0, 0.25]))
    array([0.  , 0.  , 0.75])
    """

DOCS["add_relu_"] = """ReLU of a sum, in place: ``x[...] = relu(x + residual)``; returns ``x``.

    Parameters
    ----------
    x : ndarray
        Writable float16/float32/float64 array; any view.
    residual : array_like
        Of ``x``'s dtype and shape; may be ``x`` itself.

    Returns
    -------
    ndarray
        ``x`` itself.

    Raises
    ------
    TypeError
        ``x`` is not an ndarray, or the dtypes are not one float dtype.
    ValueError
        The shapes differ, or ``x`` is read-only.

    Notes
    -----
    The rules of `add_relu`. A ``residual`` that overlaps ``x`` other than
    exactly is handled as NumPy's ufuncs handle overlap (the result is as if
    ``residual`` were copied first).

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> a = np.array([1.0, -2.0], dtype=np.float32)
    >>> fastrelu.add_relu_(a, np.array([0.5, 1.0], dtype=np.float32))
    array([1.5, 0. ], dtype=float32)
    """

_FUSED_NOTES = """The arrays may have any layout and byte order; the work runs on a
    C-contiguous, aligned, native copy when they are not already so. New
    results are C-ordered ndarrays (subclasses and containers are converted;
    a masked array is a TypeError). Every check runs before anything is
    written."""

DOCS["bias_relu"] = """Bias add and ReLU in one pass: ``relu(x + bias)``, ``bias`` along ``axis``.

    The layer of an MLP after its matrix product (``x @ W + b``, then ReLU),
    or a CNN channel bias (``axis=1`` of NCHW), without the second pass over
    ``x`` that ``x += b; np.maximum(x, 0, out=x)`` makes.

    Parameters
    ----------
    x : array_like
        float16, float32 or float64, at least 1-D.
    bias : array_like
        1-D, of ``x``'s dtype and of length ``x.shape[axis]``: ``bias[j]`` is
        added to every element of ``x.take(j, axis)``.
    axis : int, optional
        The axis of ``x`` the bias runs along (default -1, the features of a
        (batch, features) array).
    out : ndarray, optional
        Writable array of ``x``'s shape and dtype; may be ``x`` itself.

    Returns
    -------
    ndarray
        ``relu(x + bias)``, of ``x``'s dtype (``out`` when given).

    Raises
    ------
    TypeError
        A dtype other than float16/32/64, a ``bias`` of another dtype, a bad ``out``.
    ValueError
        ``bias`` not 1-D of length ``x.shape[axis]``; ``out`` of another shape or read-only.
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Notes
    -----
    Each sum is `add_relu`'s: the IEEE sum in the dtype (float16 in float32,
    rounded once), then ReLU (NaN kept, never -0.0), with no floating-point
    warning. {fused}

    Equivalent NumPy: ``np.maximum(x + np.expand_dims(bias, tuple(range(1, x.ndim - axis))), 0)``
    up to NaN and -0.0.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> x = np.array([[1.0, -2.0, 0.5], [-1.0, 3.0, -0.5]], dtype=np.float32)
    >>> fastrelu.bias_relu(x, np.array([0.5, 1.0, -1.0], dtype=np.float32))
    array([[1.5, 0. , 0. ],
           [0. , 4. , 0. ]], dtype=float32)
    """.format(fused=_FUSED_NOTES)

DOCS["bias_relu_"] = """Bias add and ReLU in place: ``x[...] = relu(x + bias)``; returns ``x``.

    Parameters
    ----------
    x : ndarray
        Writable float16/float32/float64 array, at least 1-D; any view.
    bias : array_like
        1-D, of ``x``'s dtype and of length ``x.shape[axis]``.
    axis : int, optional
        The axis the bias runs along (default -1).

    Returns
    -------
    ndarray
        ``x`` itself.

    Raises
    ------
    TypeError
        ``x`` is not an ndarray; dtypes as for `bias_relu`.
    ValueError
        A bias of the wrong shape, or ``x`` read-only.
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Notes
    -----
    The rules of `bias_relu`. scikit-learn's MLP does ``a += intercept`` then
    ``np.maximum(a, 0, out=a)``: two passes over ``a`` where this makes one.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> a = np.array([[1.0, -2.0]], dtype=np.float32)
    >>> fastrelu.bias_relu_(a, np.array([-2.0, 3.0], dtype=np.float32))
    array([[0., 1.]], dtype=float32)
    """

DOCS["bias_relu_backward"] = """The backward of `bias_relu` in one pass: ``(grad_x, grad_bias)``.

    ``grad_x = relu_backward(grad_output, y)`` and ``grad_bias`` is ``grad_x``
    summed over every axis but ``axis``: the two gradients of a bias + ReLU
    layer, where NumPy needs ``g * (y > 0)`` and a ``sum``.

    Parameters
    ----------
    grad_output : array_like
        The gradient of the layer's output; float16, float32 or float64.
    y : array_like
        The layer's output ``relu(x + bias)`` (or its input: ``y > 0`` is the
        same mask), of ``grad_output``'s dtype and shape.
    axis : int, optional
        The axis the bias runs along (default -1).
    out : ndarray, optional
        Writable array for ``grad_x`` (``y``'s shape and dtype); may be
        ``grad_output`` or ``y`` itself.

    Returns
    -------
    grad_x : ndarray
        ``grad_output`` where ``y > 0``, else +0 (a selection: +0 even where
        ``grad_output`` is inf or NaN), ``out`` when given.
    grad_bias : ndarray
        Shape ``(y.shape[axis],)``, of ``y``'s dtype.

    Raises
    ------
    TypeError
        A dtype other than float16/32/64, operands of different dtypes, a bad ``out``.
    ValueError
        Operands of different shapes; ``out`` of another shape or read-only.
    numpy.exceptions.AxisError
        ``axis`` out of range.

    Notes
    -----
    ``grad_bias`` is accumulated in float32 for float16 and float32 data and
    in float64 for float64 data, then rounded once to the dtype, in an order
    fixed by the shape alone: the same bits for any thread count and any
    instruction-set level (``FASTRELU_CPU``). Each element is added in a chain
    of at most ``m`` additions, so with ``u`` the accumulator's unit roundoff
    (2**-24 or 2**-53) the error against the exact sum of the same
    ``grad_x`` elements ``e_i`` is at most ``m * u * sum(|e_i|)`` (to first
    order), where ``m`` is far smaller than the number of elements summed:
    about ``R / 64 + 64`` for ``R`` rows of a (rows, features) array (see
    docs/semantics.rst). A float64 ``sum`` of the same elements is the
    reference the tests hold it to. {fused}

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> y = np.array([[1.0, 0.0], [2.0, 3.0]], dtype=np.float32)
    >>> g = np.array([[0.5, 0.5], [1.0, 2.0]], dtype=np.float32)
    >>> gx, gb = fastrelu.bias_relu_backward(g, y)
    >>> gx
    array([[0.5, 0. ],
           [1. , 2. ]], dtype=float32)
    >>> gb
    array([1.5, 2. ], dtype=float32)
    """.format(fused=_FUSED_NOTES)

DOCS["relu_with_mask"] = """ReLU and its packed 1-bit mask in one pass: ``(relu(x), mask)``.

    The mask is what a backward needs of ``x`` in 1/32 of the memory of a
    float32 array (1/8 of a bool array): bit ``i`` is ``x.flat[i] > 0``.

    Parameters
    ----------
    x : array_like
        Any supported dtype (every float and integer dtype).
    out : ndarray, optional
        Writable array for ``relu(x)``; may be ``x`` itself.

    Returns
    -------
    y : ndarray
        ``relu(x)`` (``out`` when given).
    mask : ndarray
        uint8, ``ceil(x.size / 8)`` bytes:
        ``np.packbits((x > 0).ravel(order="C"), bitorder="little")``, in the
        C order of the logical array whatever its memory layout, the unused
        bits of the last byte 0.

    Raises
    ------
    TypeError
        An unsupported dtype or a bad ``out``.
    ValueError
        ``out`` of another shape, or read-only.

    Notes
    -----
    ``x > 0`` is False at NaN, as in `relu_backward`, so
    ``relu_backward_mask(g, mask)`` equals ``relu_backward(g, x)``. {fused}

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> y, mask = fastrelu.relu_with_mask(np.array([1.0, -2.0, 3.0, 0.0, np.nan, 5.0]))
    >>> y
    array([ 1.,  0.,  3.,  0., nan,  5.])
    >>> mask, np.unpackbits(mask, bitorder="little")[:6]
    (array([37], dtype=uint8), array([1, 0, 1, 0, 0, 1], dtype=uint8))
    """.format(fused=_FUSED_NOTES)

DOCS["relu_backward_mask"] = """ReLU backward from a packed mask: ``grad_output`` where the mask bit is set, else 0.

    Parameters
    ----------
    grad_output : array_like
        Any supported dtype.
    mask : array_like
        uint8, ``ceil(grad_output.size / 8)`` bytes, as `relu_with_mask`
        returns it (bit ``i``, little-endian within each byte, belongs to
        ``grad_output.flat[i]`` in C order).
    out : ndarray, optional
        Writable array of ``grad_output``'s shape and dtype; may be
        ``grad_output`` itself.

    Returns
    -------
    ndarray
        The gradient, of ``grad_output``'s dtype (``out`` when given).

    Raises
    ------
    TypeError
        An unsupported dtype, a mask that is not uint8, a bad ``out``.
    ValueError
        A mask of another size than ``grad_output`` needs (the message names
        both), ``out`` of another shape or read-only.

    Notes
    -----
    A selection, as `relu_backward`: where the bit is clear the result is +0
    even if ``grad_output`` is inf or NaN; elsewhere its exact bits. {fused}

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> x = np.array([1.0, -2.0, 3.0])
    >>> _, mask = fastrelu.relu_with_mask(x)
    >>> fastrelu.relu_backward_mask(np.array([10.0, 20.0, np.inf]), mask)
    array([10.,  0., inf])
    """.format(fused=_FUSED_NOTES)

DOCS["relu_with_counts"] = """ReLU and the count of active units in one pass: ``(relu(x), active)``.

    ``active[j]`` is the number of elements ``> 0`` in ``x.take(j, axis)``:
    over a batch, a unit with ``active[j] == 0`` is dead (its ReLU output is 0
    for every sample, so it gets no gradient: "dying ReLU").

    Parameters
    ----------
    x : array_like
        Any supported dtype.
    axis : int or None, optional
        The axis of the units (default -1, the features of a (batch,
        features) array); None counts over the whole array.
    out : ndarray, optional
        Writable array for ``relu(x)``; may be ``x`` itself.

    Returns
    -------
    y : ndarray
        ``relu(x)`` (``out`` when given).
    active : ndarray
        int64 of shape ``(x.shape[axis],)``; a 0-d int64 array for ``axis=None``.

    Raises
    ------
    TypeError
        An unsupported dtype, an ``axis`` that is not an integer, a bad ``out``.
    ValueError
        ``out`` of another shape, or read-only.
    numpy.exceptions.AxisError
        ``axis`` out of range (a 0-d ``x`` takes only ``axis=None``).

    Notes
    -----
    Equivalent NumPy: ``np.maximum(x, 0)`` and
    ``np.count_nonzero(np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis]) > 0, axis=0)``.
    NaN is not ``> 0``. {fused}

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> x = np.array([[1.0, -2.0, 0.5], [3.0, -1.0, -4.0]])
    >>> y, active = fastrelu.relu_with_counts(x)
    >>> active
    array([2, 0, 1])
    >>> fastrelu.relu_with_counts(x, axis=None)[1]
    array(3)
    """.format(fused=_FUSED_NOTES)


def attach(namespace, names):
    """Give each public function in ``namespace`` its docstring."""
    missing = [name for name in names if name not in DOCS]
    if missing:
        raise RuntimeError(f"fastrelu._docs: no docstring for {missing}")
    for name in names:
        namespace[name].__doc__ = DOCS[name]


def _split(doc):
    """A cleaned numpydoc docstring as (summary, extended text, {section: text})."""
    lines = doc.splitlines()
    heads = [i for i in range(len(lines) - 1)
             if lines[i].strip() and lines[i + 1].strip() == "-" * len(lines[i].strip())]
    intro = "\n".join(lines[:heads[0]] if heads else lines).strip()
    summary, _, extended = intro.partition("\n\n")
    sections = {}
    for j, i in enumerate(heads):
        end = heads[j + 1] if j + 1 < len(heads) else len(lines)
        sections[lines[i].strip()] = "\n".join(lines[i:end]).strip()
    return summary, extended.strip(), sections


def ufunc_doc(op, nin):
    """The docstring of ``op``'s ufunc, from the function's text.

    NumPy puts the ufunc's own call signature (inputs ``x1, x2, ...``) before
    it. Then: the function's summary; how the ufunc differs from the function
    (which inputs are which, NumPy's type rules); the function's description,
    Parameters, Returns and Notes; a See Also pointing at the function. The
    function's Raises and Examples are left out: they are about the function.
    """
    names = [*op.inputs, *(p.name for p in op.params)]
    if nin != len(names):
        raise ValueError(f"{op.name}: a ufunc of {nin} inputs for operands {names}")
    summary, extended, sections = _split(inspect.cleandoc(DOCS[op.name]))
    text = [f"The NumPy ufunc of `fastrelu.{op.name}`: the same loops, threads and "
            f"results for the same operands, under NumPy's ufunc rules."]
    if nin == 1:
        text.append("Its input is ``x``.")
    else:
        text.append(f"Its inputs {', '.join(f'``x{i + 1}``' for i in range(nin))} are "
                    f"{', '.join(f'``{n}``' for n in names)}.")
    if op.params:
        text.append("The parameters have no default and broadcast like the arrays: "
                    "they may also be arrays, one value per element." if len(op.params) > 1
                    else "The parameter has no default and broadcasts like the arrays: "
                    "it may also be an array, one value per element.")
    text.append("NumPy picks the loop from all the inputs and casts other dtypes when "
                "that is safe, where the function raises TypeError: "
                + ("bool data runs the int8 loop." if op.dtypes == "all"
                   else "integer data runs a float loop."))
    slopes = [f"``{p.name}``" for p in op.params if p.kind == "slope"]
    others = [f"``{p.name}``" for p in op.params if p.kind != "slope"]
    if slopes:
        text.append(f"A {' or '.join(slopes)} given as a NumPy float64 scalar or array "
                    f"makes float16 or float32 data run the float64 loop (a Python float "
                    f"keeps the data's loop).")
    if others:
        text.append(f"A float {' or '.join(others)} with integer data runs a float loop "
                    f"and returns floats (the function truncates it to the data's "
                    f"dtype), and a Python int out of the dtype's range is NumPy's "
                    f"OverflowError.")
    text.append("``out=``, ``where=``, ``casting=``, ``dtype=`` and ``__array_ufunc__`` "
                "dispatch (dask, pandas, xarray) work as for any ufunc, and the errors "
                "are NumPy's. The function's documentation follows.")
    ufunc = " ".join(text)
    parts = [summary, _wrap(ufunc)]
    if extended:
        parts.append(extended)
    parts += [sections[s] for s in ("Parameters", "Returns", "Notes") if s in sections]
    parts.append(f"See Also\n--------\nfastrelu.{op.name} : The function, with examples.")
    return "\n\n".join(parts) + "\n"


def _wrap(text, width=79):
    return textwrap.fill(text, width, break_on_hyphens=False, break_long_words=False)
