"""The docstrings of the public functions, written once.

`attach` gives them to the functions of ``fastrelu._functions``; the ufuncs of
``fastrelu._ufuncs`` take the same text (`ufunc_doc`), and the Sphinx API
page renders the functions. Each is numpydoc, with an "Equivalent NumPy" line
and examples that ``tests/test_docs.py`` runs.
"""
import inspect

DOCS = {}

DOCS["relu"] = """Rectified linear unit, elementwise: ``x`` where ``x > 0``, else 0.

    Parameters
    ----------
    x : array_like
        Input of a supported dtype: float16, float32, float64, (u)int8, (u)int16,
        (u)int32 or (u)int64. Any shape, layout and byte order.
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
    Equivalent NumPy: ``np.where(x > 0, x, 0)``, except that NaN is kept (with
    its payload) and the result is never ``-0.0``. Exactly:
    ``0 if x <= 0 else x`` (so NaN -> NaN, -0.0 -> +0.0, -inf -> 0).

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
    Equivalent NumPy: ``(x > 0).astype(x.dtype)``.

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
        ``grad_output`` and ``x`` of different shapes, or a bad ``out``.

    Notes
    -----
    A selection, not a product: where ``x <= 0`` (or NaN) the result is exactly
    0 even if the gradient is inf or NaN. Equivalent NumPy:
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
    payload), -0.0 -> +0.0, +inf -> 6. Equivalent NumPy (but for NaN and -0.0):
    ``np.clip(x, 0, 6)``. Used by MobileNet-style networks, whose activations
    must fit a fixed-point range.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> fastrelu.relu6(np.array([-1.0, 3.0, 7.5, np.inf]))
    array([0., 3., 6., 6.])
    """

DOCS["relu6_"] = """ReLU6 in place: ``x[...] = relu6(x)``; returns ``x``.

    Parameters
    ----------
    x : ndarray
        Writable array of a supported dtype; any view.

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
        Writable array of that shape and dtype for the result.

    Returns
    -------
    ndarray
        The gradient with respect to the input (``out`` when given). A
        selection: 0 exactly where the mask is off, also for inf/NaN gradients.

    Raises
    ------
    TypeError, ValueError
        As for `relu_backward`.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> fastrelu.relu6_backward(np.ones(4), np.array([-1.0, 3.0, 6.0, 9.0]))
    array([0., 1., 0., 0.])
    """

DOCS["leaky_relu"] = """Leaky ReLU, elementwise: ``x`` where ``x > 0``, else ``negative_slope * x``.

    Leaky ReLU is the standard answer to the "dying ReLU" problem: a unit whose
    input stays negative gets zero gradient from `relu` and stops learning; the
    small slope keeps a gradient flowing.

    Parameters
    ----------
    x : array_like
        Input of dtype float16, float32 or float64 (float16 is computed in
        float32 and rounded, as PyTorch does). Any shape, layout, byte order.
    negative_slope : float, optional
        The slope for ``x <= 0`` (default 0.01). Used as float32 for float16 and
        float32 input, as float64 for float64 input.
    out : ndarray, optional
        Writable array of ``x``'s shape and dtype for the result; may be ``x``.

    Returns
    -------
    ndarray
        The result, of ``x``'s dtype (``out`` when given).

    Raises
    ------
    TypeError
        A dtype other than float16/32/64, a non-real ``negative_slope``, or a
        bad ``out``.
    ValueError
        ``out`` of another shape, or read-only.

    Notes
    -----
    Exactly as PyTorch: ``x if x > 0 else x * negative_slope`` in IEEE
    arithmetic, so NaN propagates, -0.0 stays -0.0 and -inf * slope is -inf.
    Equivalent NumPy: ``np.where(x > 0, x, x * negative_slope)``.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> fastrelu.leaky_relu(np.array([-2.0, 0.0, 3.0]), negative_slope=0.1)
    array([-0.2,  0. ,  3. ])
    """

DOCS["leaky_relu_"] = """Leaky ReLU in place: ``x[...] = leaky_relu(x, negative_slope)``; returns ``x``.

    Parameters
    ----------
    x : ndarray
        Writable float16/float32/float64 array; any view.
    negative_slope : float, optional
        The slope for ``x <= 0`` (default 0.01).

    Returns
    -------
    ndarray
        ``x`` itself.

    Raises
    ------
    TypeError
        ``x`` is not an ndarray, or not of a float dtype.
    ValueError
        ``x`` is read-only.

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
        The slope used in the forward pass (default 0.01).
    out : ndarray, optional
        Writable array of that shape and dtype for the result.

    Returns
    -------
    ndarray
        The gradient with respect to the input (``out`` when given).

    Raises
    ------
    TypeError, ValueError
        As for `relu_backward`; float dtypes only.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> fastrelu.leaky_relu_backward(np.ones(3), np.array([-1.0, 0.0, 2.0]), 0.1)
    array([0.1, 0.1, 1. ])
    """

DOCS["threshold"] = """Threshold, elementwise: ``x`` where ``x > threshold``, else ``value``.

    The general member of the ReLU family (PyTorch's ``threshold``):
    ``relu(x)`` is ``threshold(x, 0, 0)``.

    Parameters
    ----------
    x : array_like
        Input of a supported dtype (see `relu`); any shape, layout and byte order.
    threshold : real number
        The bound, cast to ``x``'s dtype (rounded to the float type; for an
        integer dtype, truncated toward zero as ``astype`` does).
    value : real number
        What replaces the elements at or below the bound, cast the same way.
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
        ``threshold`` or ``value`` out of range (or not finite) for an integer
        dtype; ``out`` of another shape, or read-only.

    Notes
    -----
    Exactly ``x if x > threshold else value``, except that NaN is kept (with
    its payload); a selection, so the kept elements are ``x``'s bits and no
    floating-point instruction runs. Equivalent NumPy:
    ``np.where((x > threshold) | np.isnan(x), x, value)``.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> fastrelu.threshold(np.array([-1.0, 0.5, 2.0, np.nan]), 1.0, -5.0)
    array([-5., -5.,  2., nan])
    >>> fastrelu.threshold(np.array([-3, 4, 9], dtype=np.int8), 4, 0)
    array([0, 0, 9], dtype=int8)
    """

DOCS["threshold_"] = """Threshold in place: ``x[...] = threshold(x, threshold, value)``; returns ``x``.

    Parameters
    ----------
    x : ndarray
        Writable array of a supported dtype; any view.
    threshold, value : real numbers
        As for `threshold`.

    Returns
    -------
    ndarray
        ``x`` itself.

    Raises
    ------
    TypeError
        ``x`` is not an ndarray, or of an unsupported dtype; a parameter is not
        a real number.
    ValueError
        ``x`` is read-only; a parameter out of range for an integer dtype.

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
        The threshold's input. Same shape and dtype as ``grad_output``.
    threshold : real number
        The bound used in the forward pass, cast to the dtype as there.
    out : ndarray, optional
        Writable array of that shape and dtype for the result.

    Returns
    -------
    ndarray
        The gradient with respect to the input (``out`` when given). A
        selection: exactly 0 where ``x <= threshold`` or ``x`` is NaN, also
        for inf/NaN gradients (as `relu_backward`).

    Raises
    ------
    TypeError, ValueError
        As for `relu_backward` and, for ``threshold``, as for `threshold`.

    Notes
    -----
    Equivalent NumPy: ``np.where(x > threshold, grad_output, 0)``.

    Examples
    --------
    >>> import numpy as np, fastrelu
    >>> fastrelu.threshold_backward(np.ones(3), np.array([0.5, 1.0, 2.0]), 1.0)
    array([0., 0., 1.])
    """


def attach(namespace, names):
    """Give each public function in ``namespace`` its docstring."""
    missing = [name for name in names if name not in DOCS]
    if missing:
        raise RuntimeError(f"fastrelu._docs: no docstring for {missing}")
    for name in names:
        namespace[name].__doc__ = DOCS[name]


def ufunc_doc(op, nin):
    """The docstring of ``op``'s ufunc: its call signature, then the function's text."""
    params = [p.name for p in op.params]
    head = f"{op.name}({', '.join([*op.inputs, *params])}, /, out=None, *, where=True, ...)"
    body = inspect.cleandoc(DOCS[op.name])
    return (f"{head}\n\nThe NumPy ufunc of `fastrelu.{op.name}`: the same loops and "
            f"semantics, under NumPy's ufunc rules (broadcasting, casting, ``where=``); "
            f"the parameters are its last {nin - op.arity} inputs.\n\n{body}"
            if op.params else
            f"{head}\n\nThe NumPy ufunc of `fastrelu.{op.name}`: the same loops and "
            f"semantics, under NumPy's ufunc rules (broadcasting, casting, ``where=``).\n\n{body}")
