"""Intersphinx inventories of the projects the docs link to, written at build
time (``docs/conf.py``) from the table below.

Sphinx fetches a project's ``objects.inv`` over the network; these docs build
offline and with ``-W`` (a failed fetch is a warning). So each linked project
gets a small inventory of its own here: the objects the docs name, each with
the page of that project's documentation that describes it. A new link is a
row in `OBJECTS`; a name missing here renders as plain code.
"""
import zlib
from pathlib import Path

#: project -> (documentation root, version, {object: (role, page relative to the root)})
OBJECTS = {
    "numpy": ("https://numpy.org/doc/stable/", "2", {
        name: ("py:function" if kind == "f" else "py:class",
               f"reference/generated/{name}.html")
        for name, kind in [("numpy.maximum", "f"), ("numpy.packbits", "f"),
                           ("numpy.ndarray", "c"), ("numpy.ufunc", "c"),
                           ("numpy.exceptions.AxisError", "c"), ("numpy.copyto", "f"),
                           ("numpy.broadcast_arrays", "f"), ("numpy.count_nonzero", "f")]}),
    "torch": ("https://docs.pytorch.org/docs/stable/", "2", {
        "torch.nn.ReLU": ("py:class", "generated/torch.nn.ReLU.html"),
        "torch.nn.Threshold": ("py:class", "generated/torch.nn.Threshold.html"),
        "torch.nn.functional.relu": ("py:function", "generated/torch.nn.functional.relu.html"),
        "torch.relu": ("py:function", "generated/torch.relu.html"),
        "torch.autocast": ("py:class", "amp.html"),
        "torch.compile": ("py:function", "generated/torch.compile.html"),
        "torch.library.opcheck": ("py:function", "library.html"),
        "torch.autograd.graph.saved_tensors_hooks": ("py:class", "autograd.html"),
    }),
    "dask": ("https://docs.dask.org/en/stable/", "2024", {
        "dask.array.Array": ("py:class", "generated/dask.array.Array.html"),
        "dask.array.map_blocks": ("py:function", "generated/dask.array.map_blocks.html"),
    }),
    "distributed": ("https://distributed.dask.org/en/stable/", "2024", {
        "distributed.LocalCluster": ("py:class", "api.html"),
        "distributed.Client": ("py:class", "api.html"),
    }),
    "sklearn": ("https://scikit-learn.org/stable/", "1", {
        name: ("py:class", f"modules/generated/{name}.html")
        for name in ("sklearn.neural_network.MLPClassifier",
                     "sklearn.neural_network.MLPRegressor")}),
}


def write(directory):
    """Write ``<project>.inv`` for every project into ``directory``; returns
    Sphinx's ``intersphinx_mapping`` for them."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    mapping = {}
    for project, (root, version, objects) in OBJECTS.items():
        # Sphinx inventory format 2: "name domain:role priority uri display-name",
        # "$" in the uri standing for the name (the page's anchor for it)
        lines = "".join(f"{name} {role} 1 {page}#$ -\n"
                        for name, (role, page) in sorted(objects.items()))
        header = (f"# Sphinx inventory version 2\n# Project: {project}\n"
                  f"# Version: {version}\n"
                  "# The remainder of this file is compressed using zlib.\n")
        path = directory / f"{project}.inv"
        path.write_bytes(header.encode() + zlib.compress(lines.encode()))
        mapping[project] = (root, str(path))
    return mapping
