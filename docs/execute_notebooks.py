"""Execute the notebooks in place, so that the documentation shows their outputs; or check that they are current.

``make docs-notebooks`` runs this (about 5 min on 2 cores; notebook 2 needs the CA1 data through
``CONVSEQ_DATA_DIR``). The documentation build never executes a notebook: it renders the outputs
committed in ``notebooks/``. The test suite executes every notebook too (nbmake; notebook 02 through
``tests/test_ca1.py``), but writes nothing back, so this script is the one way outputs reach the
repository.

Each notebook executed here carries a stamp in its metadata (``convseq_neo.code_sha256``): the hash
of its code cells. A notebook is *current* when its stamp matches its code cells, every code cell ran
once in order, and no cell shows an error (``--check``, also run by ``tests/test_docs.py``). Editing
a code cell without running this script therefore fails the tests; editing only prose does not.

Usage::

    python docs/execute_notebooks.py [NOTEBOOK ...]   # execute (default: every notebooks/*.ipynb)
    python docs/execute_notebooks.py --check          # exit status 1 when any notebook is not current
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
STAMP = "convseq_neo"


def code_sha256(notebook: nbformat.NotebookNode) -> str:
    """The hash of a notebook's code cells (their sources, in order); prose and outputs do not count."""
    digest = hashlib.sha256()
    for cell in notebook.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.encode("utf-8") + b"\x00")
    return digest.hexdigest()


def problems(path: Path) -> list[str]:
    """Why the notebook at ``path`` is not current (an empty list when it is)."""
    notebook = nbformat.read(path, as_version=4)
    found = []
    stamp = notebook.metadata.get(STAMP, {}).get("code_sha256")
    if stamp != code_sha256(notebook):
        found.append("its code cells changed since it was executed" if stamp else "it carries no execution stamp")
    counts = [cell.get("execution_count") for cell in notebook.cells if cell.cell_type == "code"]
    if counts != list(range(1, len(counts) + 1)):
        found.append(f"its code cells did not run once each in order (execution counts {counts})")
    errors = [output.get("ename", "error") for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.get("outputs", []) if output.get("output_type") == "error"]
    if errors:
        found.append(f"it shows errors: {', '.join(errors)}")
    return found


def execute(path: Path, timeout: int = 1800) -> float:
    """Run every cell of the notebook at ``path`` in a fresh kernel and write the outputs and stamp back."""
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
    start = time.perf_counter()
    NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - start
    notebook.metadata[STAMP] = {"code_sha256": code_sha256(notebook)}
    nbformat.write(notebook, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to execute (default: notebooks/*.ipynb)")
    parser.add_argument("--check", action="store_true", help="only check that every notebook is current")
    args = parser.parse_args(argv)
    paths = [path.resolve() for path in args.notebooks] or sorted(NOTEBOOKS.glob("*.ipynb"))
    if args.check:
        stale = {path.name: problems(path) for path in paths}
        for name, reasons in stale.items():
            if reasons:
                print(f"{name}: not current: {'; '.join(reasons)} (run `make docs-notebooks`)")
        return int(any(stale.values()))
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # as the test suite runs them (conftest.py)
    os.environ.setdefault("MKL_NUM_THREADS", os.environ["OMP_NUM_THREADS"])
    for path in paths:
        print(f"{path.name}: executing ...", flush=True)
        print(f"{path.name}: {execute(path):.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
