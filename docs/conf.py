"""Sphinx configuration: ``python -m sphinx -W -b html docs docs/_build/html``."""
project = "fastrelu"
author = "the fastrelu developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.doctest", "numpydoc"]
numpydoc_show_class_members = False
autodoc_typehints = "none"
html_theme = "alabaster"
exclude_patterns = ["_build"]
