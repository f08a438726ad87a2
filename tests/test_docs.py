"""Every example in the public docstrings runs and prints what it shows; every
function the registry generates has a full numpydoc docstring; the public API
is typed and introspectable."""
import doctest
import inspect
import re

import pytest

import fastrelu
from fastrelu import ufuncs
from fastrelu._registry import FUNCTION_NAMES, OPS

PUBLIC = [getattr(fastrelu, name) for name in fastrelu.__all__ if name != "__version__"]


@pytest.mark.parametrize("obj", PUBLIC + [ufuncs], ids=lambda o: getattr(o, "__name__", "?"))
def test_docstring_examples(obj):
    doc = obj.__doc__
    assert doc and "Examples" in doc, f"{obj.__name__} has no Examples section"
    test = doctest.DocTestParser().get_doctest(doc, {}, obj.__name__, None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_numpydoc_sections(name):
    """Every function of the registry documents its parameters (each by name),
    what it returns and raises, and has examples; its signature is
    introspectable."""
    func = getattr(fastrelu, name)
    doc = func.__doc__
    for section in ("Parameters", "Returns", "Raises", "Examples"):
        assert f"{section}\n    {'-' * len(section)}" in doc, f"{name}: no {section} section"
    section = doc.split("Parameters", 1)[1].split("Returns", 1)[0]
    documented = {p for names in re.findall(r"^    (\w+(?:, \w+)*) :", section, re.M)
                  for p in names.split(", ")}
    assert documented == set(inspect.signature(func).parameters), name


@pytest.mark.parametrize("func", [f for f in PUBLIC if callable(f)], ids=lambda f: f.__name__)
def test_introspectable(func):
    assert func.__doc__ and func.__doc__.strip()
    inspect.signature(func)


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_positional_only_inputs(op):
    """The array operands are positional-only: passing them by name is a TypeError."""
    params = inspect.signature(getattr(fastrelu, op.name)).parameters
    kinds = [p.kind for p in params.values()]
    assert kinds[:op.arity] == [inspect.Parameter.POSITIONAL_ONLY] * op.arity
    with pytest.raises(TypeError):
        getattr(fastrelu, op.name)(**{name: [1.0] for name in op.inputs})


def test_typing_files_are_shipped():
    import importlib.resources as resources
    files = {p.name for p in resources.files("fastrelu").iterdir()}
    assert {"py.typed", "_functions.pyi", "kernels.pxd"} <= files


def test_intersphinx_inventories(tmp_path):
    """The docs' offline inventories (docs/_intersphinx) are valid Sphinx
    inventories that send each named object of NumPy, PyTorch, dask and
    scikit-learn to its page and anchor in that project's documentation."""
    pytest.importorskip("sphinx")
    import importlib.util
    import posixpath
    from pathlib import Path
    from sphinx.util.inventory import InventoryFile
    path = Path(__file__).resolve().parents[1] / "docs" / "_intersphinx" / "inventories.py"
    if not path.exists():
        pytest.skip("the docs are not in this tree")
    spec = importlib.util.spec_from_file_location("inventories", path)
    inventories = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(inventories)
    mapping = inventories.write(tmp_path)
    assert {"numpy", "torch", "dask", "distributed", "sklearn"} <= set(mapping)
    for project, (root, file) in mapping.items():
        with open(file, "rb") as f:
            inventory = InventoryFile.load(f, root, posixpath.join)
        objects = {name: item for entries in inventory.values() for name, item in entries.items()}
        assert set(objects) == set(inventories.OBJECTS[project][2])
        for name, item in objects.items():
            uri = _uri(item)
            assert uri.startswith(root) and uri.endswith(f"#{name}"), (name, uri)
    with open(mapping["numpy"][1], "rb") as f:
        numpy_objects = InventoryFile.load(f, mapping["numpy"][0], posixpath.join)
    assert _uri(numpy_objects["py:function"]["numpy.maximum"]) == (
        "https://numpy.org/doc/stable/reference/generated/numpy.maximum.html#numpy.maximum")


def _uri(item):
    """An inventory item's URI (an attribute from Sphinx 8.2, a tuple before)."""
    return item.uri if hasattr(item, "uri") else item[2]
