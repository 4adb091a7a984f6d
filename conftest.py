"""Settings shared by the tests and the notebooks: one thread per process, and where the CA1 data is.

**Threads.** The suite runs on small shared machines (2 cores). A process whose torch / BLAS
thread pool is as large as the machine, competing with anything else for those cores, slows down
many times over (notebook 01 beside one busy process: 18 s with one thread, 114 s with two; over
500 s in a loaded run). So every process started under pytest (the notebooks' kernels, the examples, the command
line) runs one thread, as the in-process tests do (``tests/conftest.py``), unless
``OMP_NUM_THREADS`` is already set (then that number).

**Workers.** ``make test`` runs the suite on every core with pytest-xdist, one file per worker
(``pytest_xdist_make_scheduler`` below), each worker on one thread, the slowest files first
(:data:`SLOWEST_FIRST`).

**Data.** Every test that needs the CA1 recording of Rubin et al. (2019) asks for the ``ca1_data_dir``
fixture (directly, or through ``ca1_segment`` / ``ca1_raster`` in ``tests/conftest.py``), and every
notebook that calls ``load_rubin_ca1`` (or ``load_nelpy_linear_track``, for the tetrode recording) is
checked here before it runs. When the files are missing,
those tests are skipped on a developer's machine but FAIL in CI (the ``CI`` environment variable set
to anything but empty, ``0`` or ``false``), so that a CI run without the data cannot pass by
skipping them. The message names the directory looked in and ``CONVSEQ_DATA_DIR``.
"""

import os
from pathlib import Path

import pytest

_threads = os.environ.setdefault("OMP_NUM_THREADS", "1")
for _variable in ("MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):  # torch reads MKL_NUM_THREADS before OMP's
    os.environ.setdefault(_variable, _threads)

#: Files whose tests share an expensive session fixture (tests/conftest.py's planted fits): one worker runs them all.
SHARED_FIXTURE_GROUPS = {"tests/core/test_estimator.py": "planted fits", "tests/test_detect.py": "planted fits"}

#: The files that take longest, slowest first (``make test --durations`` on 2 cores: the CA1 tests,
#: which execute notebook 02, about 250 s; the planted fits about 400 s together; the other notebooks
#: 30-75 s each).
#: They run first, in this order, and everything else after them in collection order, so that on a
#: few workers no long file starts last and leaves the other workers idle.
SLOWEST_FIRST = ("tests/test_ca1.py", "tests/core/test_estimator.py", "tests/test_detect.py",
                 "notebooks/05_tetrode_run_rest.ipynb", "notebooks/04_sensitivity.ipynb",
                 "notebooks/03_nwb_workflow.ipynb", "notebooks/01_quick_start.ipynb",
                 "tests/core/test_second_pass.py", "tests/test_annotate_many.py", "tests/core/test_splitting.py")

#: Notebooks that nbmake does not collect, because a test file executes them and checks their results
#: (``tests/test_ca1.py`` runs notebook 02, whose CA1 fits would otherwise run twice).
collect_ignore = ["notebooks/02_ca1_place_cells.ipynb"]

DATA_DIR_ENV = "CONVSEQ_DATA_DIR"
DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "shared" / "data"
CA1_FILES = ("ca1_rubin2019_neuronal_activity_mat.mat", "ca1_rubin2019_position_per_frame.mat")
NELPY_FILES = ("spikes.mat", "trajectory.videoPositionTracking")
NELPY_SUBFOLDER = "nelpy_linear_track"


def data_dir() -> Path:
    """The folder the tests read the CA1 files from: ``$CONVSEQ_DATA_DIR``, else ``../shared/data``."""
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def in_ci() -> bool:
    """True when the ``CI`` environment variable is set to anything but empty, ``0`` or ``false``."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def require_ca1(what: str = "this test") -> Path:
    """The CA1 data folder; skip (or, in CI, fail) with where it was looked for when a file is missing."""
    return _require(data_dir(), CA1_FILES, "CA1", what)


def require_nelpy(what: str = "this test") -> Path:
    """The nelpy linear-track folder (``nelpy_linear_track/`` in the data folder, or the data folder itself)."""
    base = data_dir()
    folder = base / NELPY_SUBFOLDER if (base / NELPY_SUBFOLDER).is_dir() else base
    return _require(folder, NELPY_FILES, "nelpy linear-track", what)


def _require(folder: Path, files: tuple, label: str, what: str) -> Path:
    missing = [name for name in files if not (folder / name).is_file()]
    if not missing:
        return folder
    message = (f"{label} data not found: {', '.join(missing)} missing from {folder} "
               f"({DATA_DIR_ENV}={os.environ.get(DATA_DIR_ENV, '<unset>')}); {what} needs it. Put the files "
               f"there or set {DATA_DIR_ENV} to the folder that holds them (`make test` defaults it to "
               f"{DEFAULT_DATA_DIR}).")
    if in_ci():
        pytest.fail(f"{message} CI is set, so missing data is a failure, not a skip.", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def ca1_data_dir() -> Path:
    """The folder holding the CA1 files (skips, or fails in CI, when they are missing)."""
    return require_ca1()


def pytest_runtest_setup(item):
    """Notebooks run by nbmake that load the CA1 recording get the same check as the tests."""
    path = Path(str(getattr(item, "path", "")))
    if path.suffix != ".ipynb":
        return
    text = path.read_text(encoding="utf-8")
    if "load_rubin_ca1" in text:
        require_ca1(f"notebook {path.name}")
    if "load_nelpy_linear_track" in text:
        require_nelpy(f"notebook {path.name}")


def pytest_collection_modifyitems(config, items):
    """The files of :data:`SLOWEST_FIRST` first, in its order; the rest keep their order.

    ``make test`` passes ``--no-loadscope-reorder``, so that xdist hands files out in this order
    (by default it sorts them by their number of tests, which put the one-test notebooks last).
    """
    rank = {path: position for position, path in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist with ``--dist loadfile`` (``make test``): one file per worker, some files together.

    Each file's tests run on one worker, so a module-scoped fit is built once, as in a serial run;
    the files in :data:`SHARED_FIXTURE_GROUPS` share a worker, so their session fixtures are built
    once too. (xdist's ``loadgroup`` marks cannot do this under pytest 9.2, whose node ids ignore
    the suffix xdist adds.)
    """
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FileGroups(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return SHARED_FIXTURE_GROUPS.get(path, path)

    return FileGroups(config, log)
