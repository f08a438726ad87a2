"""Every example in the public docstrings runs and prints what it shows; the
public API is typed and introspectable."""
import doctest
import inspect

import pytest

import fastrelu
from fastrelu import ufuncs

PUBLIC = [getattr(fastrelu, name) for name in fastrelu.__all__ if name != "__version__"]


@pytest.mark.parametrize("obj", PUBLIC + [ufuncs], ids=lambda o: getattr(o, "__name__", "?"))
def test_docstring_examples(obj):
    doc = obj.__doc__
    assert doc and "Examples" in doc, f"{obj.__name__} has no Examples section"
    test = doctest.DocTestParser().get_doctest(doc, {}, obj.__name__, None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0


@pytest.mark.parametrize("func", [f for f in PUBLIC if callable(f)], ids=lambda f: f.__name__)
def test_numpydoc_sections(func):
    doc = func.__doc__
    if func.__name__.startswith(("relu", "leaky")):
        for section in ("Parameters", "Returns", "Raises", "Examples"):
            assert section in doc, f"{func.__name__}: no {section} section"
    inspect.signature(func)           # introspectable


def test_positional_only_first_arguments():
    params = inspect.signature(fastrelu.relu_backward).parameters
    assert [p.kind for p in params.values()][:2] == [inspect.Parameter.POSITIONAL_ONLY] * 2
    with pytest.raises(TypeError):
        fastrelu.relu(x=[1.0])


def test_typing_files_are_shipped():
    import importlib.resources as resources
    files = {p.name for p in resources.files("fastrelu").iterdir()}
    assert {"py.typed", "_functions.pyi", "kernels.pxd"} <= files
