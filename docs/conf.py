"""Sphinx configuration of the convseq_neo documentation site (``make docs``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import convseq_neo

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))

project = "convseq_neo"
author = "convseq_neo developers"
copyright = "2024-2026, convseq_neo developers"
release = convseq_neo.__version__
version = release.split("+")[0]

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",
    "sphinx_gallery.gen_gallery",
    "cli_help",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.ipynb", "auto_examples/*.py"]
templates_path = ["_templates"]

# The notebooks are committed executed (``make docs-notebooks`` writes them, a test checks they are
# current), so the build never runs them and needs neither the CA1 data nor minutes of fitting.
nb_execution_mode = "off"
myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 3

autosummary_generate = True
autodoc_typehints = "none"
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "neo": ("https://neo.readthedocs.io/en/latest", None),
    "pynwb": ("https://pynwb.readthedocs.io/en/stable", None),
    "pandas": ("https://pandas.pydata.org/docs", None),
}
# The build machine may have no network: intersphinx then only links what it can (no warning).
intersphinx_timeout = 5
if os.environ.get("CONVSEQ_DOCS_OFFLINE", "1") == "1":
    intersphinx_mapping = {}

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/.*\.py$",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "within_subsection_order": "FileNameSortKey",
}

html_theme = "pydata_sphinx_theme"
html_title = f"convseq_neo {version}"
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
# The top-level pages have no sub-pages: no empty "Section Navigation" column beside them (the API pages, the
# gallery and the notebooks keep theirs; "*" does not cross a "/").
html_sidebars = {"*": []}


def _copy_notebooks() -> None:
    """Render the executed notebooks of ``notebooks/`` (copied here; the copies are not committed)."""
    import shutil

    target = DOCS / "notebooks"
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        copy = target / notebook.name
        if not copy.exists() or copy.read_bytes() != notebook.read_bytes():
            shutil.copyfile(notebook, copy)


_copy_notebooks()
