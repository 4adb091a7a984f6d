"""The real CA1 recording (Rubin et al. 2019): learned orders follow place fields and replicate.

No ground truth exists for a real recording, so the checks are the two the analysis in
``notebooks/02_ca1_place_cells.ipynb`` reports: a learned pattern's member order against the
place fields of the running direction read from the animal's velocity at its occurrences (the
sign that direction predicts, at permutation p < 0.01), and held-out replication against
circularly shifted data. Parameters are the notebook's (W = 60 frames, about one run, as in the
Method page of the documentation, docs/method.md, section 'The CA1 recording: facts an analysis
must respect'), fixed before looking at these results.

The checks read the notebook's own results: the notebook is executed here, as a user would run it
(every cell, in order), and its ``table`` (the order test) and ``counts`` (the replication) are
read back. This executes notebook 02 for the suite, in place of nbmake (the repository's
``conftest.py`` leaves it out of nbmake's collection), so its CA1 fits run once, not twice.
"""

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "02_ca1_place_cells.ipynb"
#: Cell timeout, as nbmake's (pyproject.toml: --nbmake-timeout).
CELL_TIMEOUT_S = 900
READ_BACK = """import json
print(json.dumps({"order": table.to_json(orient="records"), "replication": counts.to_json(orient="records")}))"""


@pytest.fixture(scope="module")
def notebook_results(ca1_data_dir):
    """The notebook executed from its folder; its order table and replication counts as DataFrames."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(READ_BACK))
    NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    text = "".join(output.get("text", "") for output in notebook.cells[-1].outputs
                   if output.get("output_type") == "stream")
    values = json.loads(text)
    return tuple(pd.read_json(io.StringIO(values[key]), orient="records") for key in ("order", "replication"))


def test_learned_order_follows_place_fields_of_its_direction(notebook_results):
    table = notebook_results[0]
    print(table.to_string())
    decided = table[table.direction != 0]
    predicted = decided[(np.sign(decided.rho) == decided.direction) & (decided.pvalue < 0.01)]
    assert len(predicted) >= 1, table.to_string()


def test_patterns_learned_on_one_half_recur_on_the_other(notebook_results):
    counts = notebook_results[1]
    print(counts.to_string())
    replicated = counts[(counts.held_out >= 10) & (counts.held_out >= 3 * counts.shifted)]
    assert len(replicated) >= 1, counts.to_string()
