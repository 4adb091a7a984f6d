"""The package's shape: moved import paths, lazy imports, one version source."""

import importlib
import importlib.metadata
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import convseq_neo
from convseq_neo import _moved

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("old", sorted(_moved.MOVED))
def test_moved_module_paths_still_import_with_a_warning(old):
    new = importlib.import_module(_moved.MOVED[old])
    sys.modules.pop(old, None)
    with pytest.warns(FutureWarning, match=f"{old} moved to {_moved.MOVED[old]}") as record:
        module = importlib.import_module(old)
    assert module is new
    assert record[0].filename == __file__  # the warning points at the importing line, not at the plumbing


@pytest.mark.parametrize("old", sorted(_moved.MOVED))
def test_moved_module_attributes_warn(old):
    name = old.rsplit(".", 1)[1]
    convseq_neo.__dict__.pop(name, None)
    with pytest.warns(FutureWarning, match="moved to"):
        module = getattr(convseq_neo, name)
    assert module is importlib.import_module(_moved.MOVED[old])


def test_new_paths_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for new in _moved.MOVED.values():
            importlib.import_module(new)
        assert convseq_neo.detect is importlib.import_module("convseq_neo.detect").detect
        assert convseq_neo.ConvSeq.__module__ == "convseq_neo.core.estimator"


def test_unknown_attribute_raises():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        convseq_neo.nope  # noqa: B018


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(out.stdout.split())


def test_importing_the_package_or_its_core_loads_no_neo_nwb_or_matplotlib():
    for statement in ("import convseq_neo", "import convseq_neo.core", "from convseq_neo import ConvSeq, SpikeRaster"):
        loaded = _loaded_after(statement)
        assert not {"neo", "pynwb", "matplotlib"} & loaded, statement


def test_version_is_the_installed_distribution_and_names_the_commit():
    assert convseq_neo.__version__ == importlib.metadata.version("convseq_neo")
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    if head.returncode != 0 or not os.environ.get("CI"):
        pytest.skip("the commit check needs a git checkout installed at HEAD (make test in CI does both)")
    local = convseq_neo.__version__.partition("+")[2]
    sha = local.split(".")[1] if local.startswith("git.") else ""
    version_file = (ROOT / "VERSION").read_text().strip()
    assert convseq_neo.__version__.startswith(version_file)
    # a build at the commit that last changed VERSION is the release itself; any later commit names itself
    assert not local or head.stdout.strip().startswith(sha), (convseq_neo.__version__, head.stdout)


def test_provenance_records_the_exact_version():
    from convseq_neo import ConvSeq
    from convseq_neo.raster import SpikeRaster
    from convseq_neo.result import _parameters

    raster = SpikeRaster.from_dense([[1, 0, 1, 0]], bin_size_s=0.01)
    params = _parameters(ConvSeq(width=2), raster, "fit")
    assert params["software"] == f"convseq_neo {convseq_neo.__version__}"
