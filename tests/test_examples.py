"""The scripts in examples/ run to the end and find what they should (each runs as a user would)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run_example(name: str) -> str:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env["MPLBACKEND"] = "Agg"
    done = subprocess.run([sys.executable, str(EXAMPLES / name)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"{name} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def number(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    assert found, f"no line matching {pattern!r} in:\n{text}"
    return float(found.group(1))


def test_child_processes_get_one_thread():
    """The top-level conftest.py gives every process started under pytest (examples, the notebooks'
    kernels) one torch thread unless OMP_NUM_THREADS was set already: on a busy 2-core machine a
    full-size thread pool made notebook 01 take 114 s instead of 18 s."""
    assert "OMP_NUM_THREADS" in os.environ
    done = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"], env=dict(os.environ),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == int(os.environ["OMP_NUM_THREADS"])


def test_every_example_is_tested():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == ["annotate_nwb.py", "apply_filters.py", "detect_neo.py"]


def test_detect_neo():
    out = run_example("detect_neo.py")
    assert number(r"Overall F1 ([0-9.]+)", out) >= 0.8
    assert number(r"Epoch 'convseq_occurrences': (\d+) occurrences", out) >= 40
    for k in (0, 1):
        recovered = re.search(rf"planted {k}: (\d+)/(\d+) members recovered", out)
        assert recovered and int(recovered.group(1)) >= 10, out
    assert number(r"(\d+) spikes labelled", out) > 0


def test_annotate_nwb():
    out = run_example("annotate_nwb.py")
    assert "Units table unchanged: True" in out
    assert re.search(r"in /events/convseq and the patterns in /processing/ecephys/convseq_patterns", out), out
    assert number(r"F1 ([0-9.]+)", out) >= 0.8
    assert number(r"(\d+)/12 planted members recovered", out) >= 10


def test_apply_filters():
    out = run_example("apply_filters.py")
    assert number(r"F1 on the second recording ([0-9.]+)", out) >= 0.8
    assert number(r"control recording \(no sequence\): (\d+) occurrences", out) <= 1


@pytest.mark.parametrize("name", ["detect_neo.py", "annotate_nwb.py", "apply_filters.py"])
def test_example_has_gallery_header(name):
    text = (EXAMPLES / name).read_text()
    assert text.startswith('"""\n'), "sphinx-gallery scripts start with a docstring"
    title, underline = text.splitlines()[1:3]
    assert title and set(underline) == {"="} and len(underline) == len(title)
    assert "# %%" in text
