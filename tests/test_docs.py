"""The documentation's own checks that need no Sphinx: the rendered notebooks are current, and nothing
the project ships points a reader at a document outside the repository."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _execute_notebooks():
    spec = importlib.util.spec_from_file_location("execute_notebooks", ROOT / "docs" / "execute_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("notebook", sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb")))
def test_rendered_notebook_is_current(notebook):
    """The site shows the committed outputs: they must come from the notebook's current code cells."""
    assert _execute_notebooks().problems(ROOT / "notebooks" / notebook) == []


def test_a_changed_code_cell_makes_a_notebook_stale(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    source = ROOT / "notebooks" / "01_quick_start.ipynb"
    notebook = nbformat.read(source, as_version=4)
    next(cell for cell in notebook.cells if cell.cell_type == "code").source += "\n"
    nbformat.write(notebook, tmp_path / source.name)
    assert "its code cells changed since it was executed" in _execute_notebooks().problems(tmp_path / source.name)


def test_nothing_points_outside_the_repository():
    # the developers' notes live beside the repository, not in it; built from parts so this file does not match
    notes = "|".join(name + r"\.md" for name in ("ALGORITHM", "DESIGN", "ECOSYSTEM"))
    outside = re.compile(notes + "|shared/" + "docs")
    shipped = [ROOT / "README.md", ROOT / "CHANGELOG.md"]
    for folder, pattern in (("convseq_neo", "*.py"), ("notebooks", "*.ipynb"), ("tests", "*.py"),
                            ("examples", "*.py"), ("docs", "*.md"), ("docs", "*.py"), ("docs", "*.rst"),
                            ("benchmarks", "*.py")):
        shipped += [path for path in (ROOT / folder).rglob(pattern) if "_build" not in path.parts]
    offenders = [f"{path.relative_to(ROOT)}:{number}" for path in shipped
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if outside.search(line)]
    assert offenders == []
