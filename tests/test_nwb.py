"""Tests for convseq_neo.io.nwb and convseq_neo.io.safe_write: reading units, annotating an NWB file safely
(SIGKILL at every stage of the write), reading the result back."""

from __future__ import annotations

import datetime
import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import quantities as pq
import torch
from hdmf.common import VectorData, VectorIndex
from pynwb import NWBHDF5IO, NWBFile
from pynwb.file import Subject
from pynwb.misc import Units

from convseq_neo.io import nwb
from convseq_neo.io.safe_write import TMP_SUFFIX, safe_write
from convseq_neo.synthetic.evaluate import score_detections
from convseq_neo.synthetic.generate import sequence_recording

torch.set_num_threads(1)

BIN = 5 * pq.ms
WIDTH = 200 * pq.ms
FAST = {"max_epochs": 300, "n_surrogates": 50, "n_folds": 3}


@pytest.fixture(scope="module")
def recording():
    return sequence_recording(n_neurons=40, members_per_pattern=12, duration=40 * pq.s, rate=2 * pq.Hz,
                              lag_step=10 * pq.ms, participation=1.0, jitter=5 * pq.ms, n_occurrences=25,
                              random_state=3)


def make_nwbfile(trains, *, obs=None, described=True, unit_names=False) -> NWBFile:
    """A fully described NWB file whose Units table (built column-wise) holds ``trains`` (arrays in s)."""
    kwargs = {}
    if described:
        kwargs = dict(experimenter=["Doe, Jane"], institution="University of Somewhere", lab="Sequence Lab",
                      keywords=["sequences", "replay"], experiment_description="planted sequences",
                      subject=Subject(subject_id="m1", species="Mus musculus", sex="M", age="P90D",
                                      description="a synthetic mouse"))
    nwbfile = NWBFile(session_description="synthetic recording with planted sequences", identifier="convseq-test",
                      session_start_time=datetime.datetime(2024, 1, 1, 12, tzinfo=datetime.timezone.utc), **kwargs)
    if trains is None:
        return nwbfile
    times = VectorData(name="spike_times", description="the spike times for each unit in seconds",
                       data=np.concatenate([np.asarray(t, float) for t in trains]) if trains else np.zeros(0))
    columns = [times, VectorIndex(name="spike_times_index", data=np.cumsum([len(t) for t in trains]).astype(np.int64),
                                  target=times)]
    if obs is not None:
        intervals = VectorData(name="obs_intervals", description="the observation intervals for each unit",
                               data=np.concatenate(obs).reshape(-1, 2))
        columns += [intervals, VectorIndex(name="obs_intervals_index", target=intervals,
                                           data=np.cumsum([len(o) for o in obs]).astype(np.int64))]
    if unit_names:
        names = [f"u{i}" for i in range(len(trains))]
        columns.append(VectorData(name="unit_name", description="unit label", data=names))
    nwbfile.units = Units(name="units", description="sorted units", resolution=1 / 30000, columns=columns,
                          id=np.arange(100, 100 + len(trains)))
    return nwbfile


def write(nwbfile, path):
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    return path


def snapshot(path):
    """Units ids, spike times (with dtype) and index of a file, for bit-identity checks."""
    with NWBHDF5IO(str(path), "r") as io:
        units = io.read().units
        idx = units["spike_times_index"]
        return (np.asarray(units.id.data[:]), np.asarray(idx.target.data[:]), np.asarray(idx.data[:]))


def same(a, b) -> bool:
    return all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def source_file(recording, tmp_path_factory):
    trains = [t.times.rescale(pq.s).magnitude for t in recording.spiketrains]
    path = tmp_path_factory.mktemp("nwb") / "planted.nwb"
    return write(make_nwbfile(trains, obs=[np.array([[0.0, 40.0]])] * len(trains)), path)


@pytest.fixture(scope="module")
def annotated(source_file, tmp_path_factory):
    """One fit, shared: the annotated copy and the result."""
    out = tmp_path_factory.mktemp("out") / "annotated.nwb"
    before = snapshot(source_file)
    result = nwb.annotate(source_file, BIN, WIDTH, 1, out=out, random_state=0, **FAST)
    return out, result, before


# ------------------------------------------------------------------ reading
def test_read_units_path_and_nwbfile_agree(source_file, recording):
    trains = nwb.read_units(source_file)
    assert len(trains) == 40
    assert trains[0].name == "100" and trains[0].annotations["unit_id"] == 100
    for got, truth in zip(trains, recording.spiketrains):
        np.testing.assert_array_equal(got.times.magnitude, truth.times.rescale(pq.s).magnitude)
    assert float(trains[0].t_start) == 0.0 and float(trains[0].t_stop) == 40.0
    with NWBHDF5IO(str(source_file), "r") as io:
        again = nwb.read_units(io.read(), unit_ids=[105, 101])
    assert [t.annotations["unit_id"] for t in again] == [105, 101]
    np.testing.assert_array_equal(again[1].magnitude, trains[1].magnitude)


def test_read_units_obs_intervals_and_windows(caplog):
    nwbfile = make_nwbfile([[0.5, 1.5, 2.5, 9.0], [1.0, 3.5]], obs=[np.array([[0.0, 2.0]]),
                                                                     np.array([[0.0, 1.2], [3.0, 4.0]])],
                           unit_names=True)
    with caplog.at_level("INFO", logger="convseq_neo.io.nwb"):
        trains = nwb.read_units(nwbfile)
    assert [t.times.magnitude.tolist() for t in trains] == [[0.5, 1.5], [1.0, 3.5]]
    assert (float(trains[0].t_start), float(trains[0].t_stop)) == (0.0, 4.0)
    assert [t.name for t in trains] == ["u0", "u1"]
    assert "obs_intervals" in caplog.text
    # without obs_intervals: the span of the spikes; or a named intervals table
    plain = make_nwbfile([[0.5, 1.5], [1.0, 3.5]])
    trains = nwb.read_units(plain)
    assert float(trains[0].t_start) == 0.5 and float(trains[0].t_stop) >= 3.5
    # the last spike sits on a bin edge counted from the first: it is still binned
    from convseq_neo.io.neo import to_raster

    for bin_size in (0.5 * pq.s, 1.5 * pq.s, 1 * pq.ms, 5 * pq.ms):
        assert to_raster(trains, bin_size=bin_size).n_spikes == 4
    plain.add_trial(start_time=1.0, stop_time=2.0)
    plain.add_trial(start_time=2.5, stop_time=3.0)
    trains = nwb.read_units(plain, window="trials")
    assert (float(trains[0].t_start), float(trains[0].t_stop)) == (1.0, 3.0)
    assert [t.times.magnitude.tolist() for t in trains] == [[1.5], [1.0]]
    with pytest.raises(ValueError, match="window='epochs'"):
        nwb.read_units(plain, window="epochs")
    with pytest.raises(ValueError, match=r"unit_ids \[7\]"):
        nwb.read_units(plain, unit_ids=[7])


def test_read_units_attaches_clipped_obs_intervals(tmp_path):
    nwbfile = make_nwbfile([[0.5, 1.5], [1.0, 3.5]], obs=[np.array([[0.0, 2.0]]),
                                                          np.array([[0.0, 1.2], [3.0, 4.0], [5.0, 6.0]])])
    trains = nwb.read_units(nwbfile)  # window: the span of the obs_intervals, [0, 6]
    for train, expected in zip(trains, ([[0.0, 2.0]], [[0.0, 1.2], [3.0, 4.0], [5.0, 6.0]])):
        obs = train.annotations["obs_intervals"]
        assert isinstance(obs, np.ndarray) and obs.dtype == np.float64 and obs.shape == (len(expected), 2)
        np.testing.assert_array_equal(obs, expected)
    nwbfile.add_trial(start_time=1.0, stop_time=3.0)
    trains = nwb.read_units(nwbfile, window="trials")  # clipped to [1, 3]; [3, 4] only touches it, [5, 6] is out
    np.testing.assert_array_equal(trains[0].annotations["obs_intervals"], [[1.0, 2.0]])
    np.testing.assert_array_equal(trains[1].annotations["obs_intervals"], [[1.0, 1.2]])
    path = write(make_nwbfile([[0.5], [1.0]], obs=[np.array([[0.0, 2.0]]), np.zeros((0, 2))]), tmp_path / "o.nwb")
    from_file = nwb.read_units(path)
    np.testing.assert_array_equal(from_file[0].annotations["obs_intervals"], [[0.0, 2.0]])
    assert from_file[1].annotations["obs_intervals"].shape == (0, 2)
    assert "obs_intervals" not in nwb.read_units(make_nwbfile([[0.5, 1.5], [1.0]]))[0].annotations


def test_read_units_reads_the_spike_times_once_not_unit_by_unit(tmp_path, monkeypatch):
    # Counted, not timed: a wall-clock bound fails on a loaded machine, a per-unit read does not
    # depend on the machine (one HDF5 read per unit instead of one for all).
    import h5py

    rng = np.random.default_rng(0)
    trains = [np.sort(rng.uniform(0, 60, rng.poisson(300))) for _ in range(200)]
    path = write(make_nwbfile(trains), tmp_path / "big.nwb")
    reads = []
    original = h5py.Dataset.__getitem__

    def counting(self, key):
        reads.append(self.name)
        return original(self, key)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", counting)
    got = nwb.read_units(path)
    spike_reads = [name for name in reads if name.endswith("/units/spike_times")]
    index_reads = [name for name in reads if name.endswith("/units/spike_times_index")]
    assert len(spike_reads) == 1 and len(index_reads) == 1, (spike_reads, index_reads)
    unit_reads = [name for name in reads if name.startswith("/units/")]
    assert len(unit_reads) < 10, unit_reads  # nothing else of the table is read unit by unit
    assert sum(len(t) for t in got) == sum(len(t) for t in trains)


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        nwb.read_units(tmp_path / "missing.nwb")
    (tmp_path / "junk.nwb").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="could not be read as an NWB file"):
        nwb.read_units(tmp_path / "junk.nwb")
    with pytest.raises(ValueError, match="no Units table"):
        nwb.read_units(make_nwbfile(None))
    path = write(make_nwbfile(None), tmp_path / "nounits.nwb")
    with pytest.raises(ValueError, match="no Units table"):
        nwb.annotate(path, BIN, WIDTH, out=tmp_path / "x.nwb")
    with pytest.raises(ValueError, match="empty Units table"):
        nwb.read_units(make_nwbfile([]))


# ------------------------------------------------------------------ writing
def test_annotate_matches_planted_and_keeps_units(annotated, source_file, recording):
    out, result, before = annotated
    assert same(snapshot(source_file), before)  # the source was not touched
    assert same(snapshot(out), before)  # nor were the units of the copy
    truth = recording.ground_truth
    occ = result.occurrences
    onsets = truth.times.rescale(pq.s).magnitude
    scores = score_detections(occ["onset"].to_numpy(), occ["pattern"].to_numpy(), onsets,
                              np.zeros(onsets.size, int), tolerance=0.05)
    assert scores.f1 > 0.9
    stored = nwb.read_detections(out)
    np.testing.assert_array_equal(stored.occurrences["pattern"], occ["pattern"])
    for column in ("center", "onset", "peak", "pvalue"):
        np.testing.assert_array_equal(stored.occurrences[column], occ[column])
    np.testing.assert_allclose(stored.occurrences["offset"], occ["offset"], rtol=0, atol=1e-12)
    members = stored.patterns.loc[0, "units"]
    assert members == [100 + int(n) for n in result.patterns[0].neurons]
    assert len(set(members) & {100 + int(m) for m in recording.members[0]}) >= 10
    np.testing.assert_allclose(stored.patterns.loc[0, "lags"], result.patterns[0].lags.magnitude)
    np.testing.assert_allclose(stored.filters[0], result.patterns[0].filter)
    assert stored.membership["member"].sum() == result.membership["member"].sum()
    assert stored.parameters["software"].startswith("convseq_neo") and stored.parameters["max_epochs"] == 300
    with NWBHDF5IO(str(out), "r") as io:
        events = io.read().events["convseq"]
        assert "convseq_neo" in events.source_description and "n_surrogates" in events.source_description
        np.testing.assert_allclose(events["duration"].data[:], (occ["offset"] - occ["onset"]).to_numpy())


def test_name_clash_and_second_run(annotated, tmp_path):
    out, _, before = annotated
    with pytest.raises(ValueError, match=r"already holds an events table '/events/convseq'.*name='convseq_2'"):
        nwb.annotate(out, BIN, WIDTH, 1, random_state=0, **FAST)
    assert same(snapshot(out), before)
    with pytest.raises(ValueError, match="no convSeq detections named 'other'"):
        nwb.read_detections(out, "other")


def test_annotate_in_place_reuses_module(annotated, tmp_path):
    out, _, before = annotated
    path = tmp_path / "again.nwb"
    path.write_bytes(out.read_bytes())
    os.chmod(path, 0o640)
    nwb.annotate(path, BIN, WIDTH, 1, name="run2", random_state=1, max_epochs=60, n_surrogates=20, n_folds=3)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert same(snapshot(path), before)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".convseq-tmp")]
    with NWBHDF5IO(str(path), "r") as io:
        f = io.read()
        assert set(f.events) == {"convseq", "run2"}
        assert set(f.processing["ecephys"].data_interfaces) == {"convseq_patterns", "convseq_parameters",
                                                                "run2_patterns", "run2_parameters"}
        assert set(f.intervals) == {"convseq_occurrences", "run2_occurrences"}
    assert len(nwb.read_detections(path, "convseq").occurrences) > 0


def test_write_errors(source_file, tmp_path):
    path = tmp_path / "ro.nwb"
    path.write_bytes(source_file.read_bytes())
    os.chmod(path, 0o444)
    with pytest.raises(PermissionError, match="read-only.*out="):
        nwb.annotate(path, BIN, WIDTH)
    with pytest.raises(FileNotFoundError, match="no such file"):
        nwb.annotate(tmp_path / "missing.nwb", BIN, WIDTH)
    with pytest.raises(FileExistsError, match="exists already"):
        nwb.annotate(source_file, BIN, WIDTH, out=path)
    with pytest.raises(ValueError, match="name must be"):
        nwb.annotate(source_file, BIN, WIDTH, name="a/b", out=tmp_path / "n.nwb")
    with pytest.raises(TypeError, match="bin_size"):
        nwb.annotate(source_file, 0.005, WIDTH, out=tmp_path / "n.nwb")
    assert not (tmp_path / "n.nwb").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".convseq-tmp")]


def _messages(path):
    nwbinspector = pytest.importorskip("nwbinspector")
    return {(m.check_function_name, m.object_name, m.importance.name)
            for m in nwbinspector.inspect_nwbfile(nwbfile_path=str(path))}


def test_inspector_reports_nothing_new(tmp_path):
    rec = sequence_recording(n_neurons=48, n_patterns=3, members_per_pattern=12, duration=40 * pq.s, rate=2 * pq.Hz,
                             lag_step=10 * pq.ms, participation=1.0, jitter=5 * pq.ms, n_occurrences=20,
                             random_state=5)
    trains = [t.times.rescale(pq.s).magnitude for t in rec.spiketrains]
    path = write(make_nwbfile(trains, obs=[np.array([[0.0, 40.0]])] * len(trains), unit_names=True),
                 tmp_path / "described.nwb")
    before = _messages(path)
    assert before == set()  # the mock file is fully described
    result = nwb.annotate(path, BIN, WIDTH, 3, random_state=0, **FAST)
    assert sorted(result.occurrences["pattern"].unique()) == [0, 1, 2]
    assert _messages(path) - before == set()


def test_inspector_single_pattern_only_suggests(annotated, source_file):
    # one learned pattern: a one-row patterns table, which the inspector merely suggests representing otherwise
    assert _messages(annotated[0]) - _messages(source_file) <= {
        ("check_single_row", "convseq_patterns", "BEST_PRACTICE_SUGGESTION")}


# ------------------------------------------------------------------ crash safety
# The child process annotates a copy of the file after arming one kill point from the outside: it wraps the call
# that starts (or ends) a stage of the safe write so that the process SIGKILLs itself there. Production code has no
# test hooks; each kill point is a real library call (shutil, os, pynwb) or safe_write's own _verify.
CHILD = textwrap.dedent("""
    import importlib, os, shutil, signal, sys
    import torch
    torch.set_num_threads(1)
    import pynwb
    import quantities as pq
    from convseq_neo.io import nwb
    safe_write = importlib.import_module("convseq_neo.io.safe_write")

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def kill_before(owner, attr):
        def instead(*args, **kwargs):
            die()
        setattr(owner, attr, instead)

    def kill_after(owner, attr):
        original = getattr(owner, attr)
        def then_die(*args, **kwargs):
            original(*args, **kwargs)
            die()
        setattr(owner, attr, then_die)

    KILL_POINTS = {
        "copy": (kill_before, shutil, "copyfile"),            # the temporary file exists, still empty
        "copied": (kill_after, shutil, "copyfile"),           # a full copy, not yet written to
        "writing": (kill_before, pynwb.NWBHDF5IO, "write"),   # tables built in memory, nothing written
        "written": (kill_after, pynwb.NWBHDF5IO, "write"),    # written, the file not yet closed
        "verify": (kill_before, safe_write, "_verify"),       # closed, not yet read back
        "verified": (kill_after, safe_write, "_verify"),      # read back intact, not yet flushed
        "fsync": (kill_before, os, "fsync"),                  # the copy's fsync
        "replace": (kill_before, os, "replace"),              # flushed, not yet moved over the original
        "replaced": (kill_after, os, "replace"),              # moved: the original is the annotated file
    }
    stage = sys.argv[2]
    if stage in KILL_POINTS:
        arm, owner, attr = KILL_POINTS[stage]
        arm(owner, attr)
    print("ready", flush=True)
    nwb.annotate(sys.argv[1], 5 * pq.ms, 200 * pq.ms, 1, name="crash", random_state=0, max_epochs=80,
                 n_surrogates=20, n_folds=3)
""")


STAGES = ["copy", "copied", "writing", "written", "verify", "verified", "fsync", "replace", "replaced", "timed:0.2",
          "timed:1.0"]


@pytest.mark.parametrize("stage", STAGES)
def test_sigkill_leaves_the_original_intact(stage, annotated, tmp_path):
    out, _, before = annotated
    path = tmp_path / "victim.nwb"
    path.write_bytes(out.read_bytes())
    original = path.read_bytes()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), stage], stdout=subprocess.PIPE, env=env)
    if stage.startswith("timed"):  # kill from outside, somewhere during the fit or the write
        child.stdout.readline()
        time.sleep(float(stage.split(":")[1]))
        child.send_signal(signal.SIGKILL)
    child.wait(timeout=120)
    if not stage.startswith("timed"):
        assert child.returncode == -signal.SIGKILL  # the kill point was reached
    assert same(snapshot(path), before)
    with NWBHDF5IO(str(path), "r") as io:
        events = set(io.read().events)
    if stage == "replaced":
        assert "crash" in events
    if "crash" in events:  # killed after the atomic replace: a complete result
        assert stage == "replaced" or stage.startswith("timed")
        assert events == {"convseq", "crash"}
        assert len(nwb.read_detections(path, "crash").occurrences) > 0
    else:  # killed before it: the original, byte for byte
        assert events == {"convseq"}
        assert path.read_bytes() == original


# ------------------------------------------------------------------ safe_write on its own
def test_safe_write_replaces_only_after_the_block(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    with safe_write(path) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".data.bin.") and tmp.name.endswith(TMP_SUFFIX)
        assert tmp.read_bytes() == b"old"  # a copy to write to
        tmp.write_bytes(b"new")
        assert path.read_bytes() == b"old"  # nothing changes before the block ends
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


def test_safe_write_to_another_destination(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"abc")
    os.chmod(source, 0o444)
    dest = tmp_path / "dest.bin"
    with safe_write(source, dest) as tmp:
        with open(tmp, "ab") as handle:  # a read-only source still gives a writable copy
            handle.write(b"d")
    assert source.read_bytes() == b"abc" and dest.read_bytes() == b"abcd"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest.bin", "source.bin"]


@pytest.mark.parametrize("failure", ["block", "verify_false", "verify_raises", "replace"])
def test_safe_write_failure_leaves_the_original_and_no_temporary(failure, tmp_path, monkeypatch):
    path = tmp_path / "data.bin"
    path.write_bytes(b"old")

    def verify(tmp):
        if failure == "verify_raises":
            raise ValueError("bad copy")
        return failure != "verify_false"

    if failure == "replace":
        def broken_replace(*args):
            raise OSError("cross-device link")

        monkeypatch.setattr(os, "replace", broken_replace)
    expected = {"block": (KeyError, "boom"), "verify_false": (RuntimeError, "failed its check"),
                "verify_raises": (ValueError, "bad copy"), "replace": (OSError, "cross-device")}[failure]
    with pytest.raises(expected[0], match=expected[1]):
        with safe_write(path, verify=verify) as tmp:
            tmp.write_bytes(b"new")
            if failure == "block":
                raise KeyError("boom")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


def test_safe_write_errors(tmp_path):
    with pytest.raises(TypeError, match="source must be a path"):
        with safe_write(3):
            pass
    with pytest.raises(FileNotFoundError, match="source: no such file"):
        with safe_write(tmp_path / "missing"):
            pass
    (tmp_path / "a").write_bytes(b"")
    with pytest.raises(TypeError, match="dest must be a path"):
        with safe_write(tmp_path / "a", 3.0):
            pass
    with pytest.raises(FileNotFoundError, match="dest: the directory"):
        with safe_write(tmp_path / "a", tmp_path / "nowhere" / "b"):
            pass
    assert [p.name for p in tmp_path.iterdir()] == ["a"]


# ------------------------------------------------------------------ clear messages (issue 19's probe)
@pytest.mark.parametrize("unit_ids, error, words", [
    (["abc"], TypeError, "integer unit ids"),
    ([1000.5], ValueError, "integer unit ids, got 1000.5"),
    ([100, 101, 100], ValueError, "repeats [100]"),
    ("100", TypeError, "sequence of integer unit ids"),
    ([True], TypeError, "integer unit ids"),
])
def test_bad_unit_ids_are_named(source_file, unit_ids, error, words):
    with pytest.raises(error, match=re.escape(words)):
        nwb.read_units(source_file, unit_ids=unit_ids)


def test_integer_valued_unit_ids_are_accepted(source_file):
    trains = nwb.read_units(source_file, unit_ids=[101.0, np.int32(100)])
    assert [t.annotations["unit_id"] for t in trains] == [101, 100]


def test_infinite_spike_time_is_named():
    nwbfile = make_nwbfile([[0.5, 1.5], [1.0, np.inf]])
    with pytest.raises(ValueError, match="unit 101 of the Units table holds NaN or infinite spike times"):
        nwb.read_units(nwbfile)


def test_annotate_says_it_needs_a_path_not_an_open_file():
    nwbfile = make_nwbfile([[0.5, 1.5], [1.0, 3.5]])
    with pytest.raises(TypeError, match="path of the .nwb file, not an open pynwb.NWBFile"):
        nwb.annotate(nwbfile, BIN, WIDTH)


def test_safe_write_through_a_symlink_updates_the_target_and_keeps_the_link(tmp_path):
    target = tmp_path / "data" / "session.txt"
    target.parent.mkdir()
    target.write_text("original\n")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    with safe_write(link) as tmp:
        tmp.write_text("original\nannotated\n")
    assert link.is_symlink() and link.resolve() == target
    assert target.read_text() == "original\nannotated\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["session.txt"]  # no temporary left


def test_safe_write_gives_a_hard_link_a_new_file(tmp_path):
    """Documented: the replaced name is a new file; the file's other names keep the old content."""
    path = tmp_path / "session.txt"
    path.write_text("original\n")
    other = tmp_path / "other_name.txt"
    os.link(path, other)
    with safe_write(path) as tmp:
        tmp.write_text("annotated\n")
    assert path.read_text() == "annotated\n" and other.read_text() == "original\n"


# ------------------------------------------------------------------ safe_write writing a new file (copy=False)
def test_safe_write_without_copy_starts_empty(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"abc")
    os.chmod(source, 0o440)
    dest = tmp_path / "dest.bin"
    with safe_write(source, dest, copy=False) as tmp:
        assert tmp.read_bytes() == b""  # nothing copied: the block writes the whole file
        tmp.write_bytes(b"derived")
        assert not dest.exists()
    assert dest.read_bytes() == b"derived" and source.read_bytes() == b"abc"
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o640  # the source's bits plus the owner's write bit
    fresh = tmp_path / "fresh.bin"
    with safe_write(None, fresh, copy=False) as tmp:  # no source: a new file's permissions
        tmp.write_bytes(b"new")
    umask = os.umask(0o022)
    os.umask(umask)
    assert fresh.read_bytes() == b"new" and stat.S_IMODE(os.stat(fresh).st_mode) == 0o666 & ~umask
    with pytest.raises(RuntimeError, match="failed its check"):
        with safe_write(None, tmp_path / "rejected.bin", copy=False, verify=lambda tmp: False) as tmp:
            tmp.write_bytes(b"bad")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest.bin", "fresh.bin", "source.bin"]


def test_safe_write_without_copy_errors(tmp_path):
    with pytest.raises(ValueError, match="source is None: pass a file to copy, or copy=False"):
        with safe_write(None, tmp_path / "x"):
            pass
    with pytest.raises(ValueError, match="source and dest are both None"):
        with safe_write(None, copy=False):
            pass
    with pytest.raises(TypeError, match="copy must be True or False"):
        with safe_write(None, tmp_path / "x", copy="no"):
            pass
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ out=: a crash during the export
CHILD_OUT = textwrap.dedent("""
    import os, signal, sys
    import torch
    torch.set_num_threads(1)
    import pynwb
    import quantities as pq
    from convseq_neo.io import nwb

    original = pynwb.NWBHDF5IO.export
    def export_then_die(*args, **kwargs):
        original(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)   # the derived file is written, not yet checked nor moved
    pynwb.NWBHDF5IO.export = export_then_die
    nwb.annotate(sys.argv[1], 5 * pq.ms, 200 * pq.ms, 1, out=sys.argv[2], random_state=0, max_epochs=20,
                 n_surrogates=10, n_folds=2)
""")


def test_sigkill_while_writing_a_derived_file(source_file, tmp_path):
    source = tmp_path / "source.nwb"
    source.write_bytes(source_file.read_bytes())
    original = source.read_bytes()
    out = tmp_path / "derived.nwb"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    child = subprocess.run([sys.executable, "-c", CHILD_OUT, str(source), str(out)], env=env, timeout=120)
    assert child.returncode == -signal.SIGKILL
    assert not out.exists() and source.read_bytes() == original
    stale = [p for p in tmp_path.iterdir() if p.name.endswith(TMP_SUFFIX)]
    assert len(stale) == 1 and stale[0].name.startswith(".derived.nwb.")  # the written, unmoved derived file
    nwb.annotate(source, BIN, WIDTH, 1, out=out, random_state=0, max_epochs=20, n_surrogates=10, n_folds=2)
    assert out.exists() and source.read_bytes() == original
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(TMP_SUFFIX)]  # the next run removed it
