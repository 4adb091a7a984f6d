"""Results that NWB readers can use: a derived file (out=) with its own identity, the parameters table and the short
source_description, the 0.1.0 layout still read, read_events' flat table, the TimeIntervals mirror, and annotate's
intervals= resolved from the file's TimeIntervals tables or the units' obs_intervals."""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import neo
import numpy as np
import pandas as pd
import pytest
import quantities as pq
from pynwb import NWBHDF5IO, NWBFile
from pynwb.epoch import TimeIntervals
from test_nwb import make_nwbfile, snapshot, write

from convseq_neo.io import nwb
from convseq_neo.result import OCCURRENCE_COLUMNS
from convseq_neo.synthetic.generate import sequence_recording

BIN = 5 * pq.ms
WIDTH = 200 * pq.ms
SMALL = {"max_epochs": 200, "n_surrogates": 40, "n_folds": 3}
#: What annotate adds to result.parameters after writing (not stored in the file).
AFTER_WRITE = {"nwb_file", "nwb_events_table", "nwb_patterns_table", "nwb_parameters_table", "nwb_intervals_table",
               "nwb_identifier"}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A fully described file (nwbinspector: nothing to report) with one planted pattern, trials and epochs."""
    rec = sequence_recording(n_neurons=24, members_per_pattern=10, duration=30 * pq.s, rate=2 * pq.Hz,
                             lag_step=10 * pq.ms, participation=1.0, jitter=2 * pq.ms, n_occurrences=20,
                             random_state=11)
    trains = [t.times.rescale(pq.s).magnitude for t in rec.spiketrains]
    nwbfile = make_nwbfile(trains, obs=[np.array([[0.0, 30.0]])] * len(trains), unit_names=True)
    for start in (0.0, 10.0, 20.0):
        nwbfile.add_trial(start_time=start, stop_time=start + 9.0)
    nwbfile.add_epoch(start_time=0.0, stop_time=15.0, tags=["run"])
    nwbfile.add_epoch(start_time=15.0, stop_time=30.0, tags=["rest"])
    return write(nwbfile, tmp_path_factory.mktemp("readback") / "source.nwb")


@pytest.fixture(scope="module")
def derived(source, tmp_path_factory):
    """One fit, shared: a derived file written with out=, and the source's bytes and mtime before it."""
    before = source.read_bytes(), source.stat().st_mtime_ns
    out = tmp_path_factory.mktemp("derived") / "derived.nwb"
    result = nwb.annotate(source, BIN, WIDTH, 1, out=out, random_state=0, **SMALL)
    return out, result, before


def object_ids(path) -> set[str]:
    """Every object_id attribute in the HDF5 file (the root's included)."""
    found = set()
    with h5py.File(path, "r") as handle:
        found.add(handle.attrs["object_id"])
        handle.visititems(lambda name, obj: found.add(obj.attrs["object_id"]) if "object_id" in obj.attrs else None)
    return {str(i) for i in found}


def inspector_messages(path) -> set:
    nwbinspector = pytest.importorskip("nwbinspector")
    return {(m.check_function_name, m.object_name, m.importance.name)
            for m in nwbinspector.inspect_nwbfile(nwbfile_path=str(path))}


# ------------------------------------------------------------------ out=: a new file, its own identity
def test_derived_file_has_its_own_identifier_and_object_ids(source, derived):
    out, result, (source_bytes, source_mtime) = derived
    assert source.read_bytes() == source_bytes and source.stat().st_mtime_ns == source_mtime  # only read
    with NWBHDF5IO(str(source), "r") as io_source, NWBHDF5IO(str(out), "r") as io_out:
        original, copy = io_source.read(), io_out.read()
        assert copy.identifier != original.identifier and copy.identifier == result.parameters["nwb_identifier"]
        assert copy.session_description == original.session_description  # everything else carried over
        assert copy.subject.subject_id == original.subject.subject_id and len(copy.trials) == len(original.trials)
    source_ids, out_ids = object_ids(source), object_ids(out)
    assert len(out_ids) > len(source_ids) > 15  # the source's containers and the new tables
    assert source_ids.isdisjoint(out_ids)
    for a, b in zip(snapshot(source), snapshot(out)):  # the units, bit for bit
        assert a.dtype == b.dtype and np.array_equal(a, b)
    links = []
    with h5py.File(out, "r") as handle:  # nothing points into the source
        handle.visit_links(lambda name: links.append(name) if isinstance(
            handle.get(name, getlink=True), (h5py.ExternalLink, h5py.SoftLink)) else None)
    assert links == []


def test_derived_file_adds_nothing_for_nwbinspector(source, derived):
    before = inspector_messages(source)
    assert before == set()  # the source is fully described
    # one pattern: a one-row patterns table, which the inspector merely suggests representing otherwise
    assert inspector_messages(derived[0]) - before <= {
        ("check_single_row", "convseq_patterns", "BEST_PRACTICE_SUGGESTION")}


def test_derived_file_of_a_read_only_source(derived, tmp_path):
    out, _, _ = derived
    readonly = tmp_path / "readonly.nwb"
    readonly.write_bytes(out.read_bytes())
    readonly.chmod(0o444)
    again = tmp_path / "again.nwb"
    nwb.annotate(readonly, BIN, WIDTH, 1, name="second", out=again, random_state=1, max_epochs=20, n_surrogates=10,
                 n_folds=2)
    assert readonly.read_bytes() == out.read_bytes()
    assert object_ids(again).isdisjoint(object_ids(readonly))
    with NWBHDF5IO(str(again), "r") as io:  # the first run is carried over, the second added
        assert set(io.read().events) == {"convseq", "second"}
    assert again.stat().st_mode & 0o777 == 0o644  # the source's bits (0o444) plus the owner's write bit


# ------------------------------------------------------------------ parameters: a table, and a short phrase
def test_parameters_are_a_table_and_source_description_is_short(derived):
    out, result, _ = derived
    expected = {k: v for k, v in result.parameters.items() if k not in AFTER_WRITE}
    with NWBHDF5IO(str(out), "r") as io:
        nwbfile = io.read()
        table = nwbfile.processing["ecephys"]["convseq_parameters"]
        frame = table.to_dataframe()  # core pynwb reads it: no extension
        assert list(frame.columns) == ["parameter", "value"] and frame["parameter"].is_unique
        assert {p: json.loads(v) for p, v in zip(frame["parameter"], frame["value"])} == expected
        text = nwbfile.events["convseq"].source_description
    assert text.startswith(f"convSeq ({result.parameters['software']}): 1 pattern, bin 5 ms, width 200 ms, alpha "
                           "0.05, n_surrogates 40")
    assert text.endswith("every parameter in /processing/ecephys/convseq_parameters")
    assert "{" not in text and len(text) < 200
    stored = nwb.read_detections(out)
    assert stored.parameters == expected  # the same dict as before the table existed
    assert stored.parameters["max_epochs"] == 200 and stored.parameters["random_state"] == 0


def drop_columns(handle, table: str, names) -> None:
    """Remove the columns ``names`` of the DynamicTable at ``table`` in an open h5py file, as if never written."""
    for column in names:
        del handle[table][column]
    kept = [str(c.decode() if isinstance(c, bytes) else c) for c in handle[table].attrs["colnames"]
            if (c.decode() if isinstance(c, bytes) else c) not in names]
    handle[table].attrs["colnames"] = np.array(kept, dtype=h5py.string_dtype())


def write_0_1_0_layout(path, parameters: dict) -> None:
    """Turn an annotated file (mirror_intervals=False) into what convseq_neo 0.1.0 wrote: no parameters table, the
    parameters as JSON in source_description, no time-scale columns. The events and patterns tables are otherwise
    the same in both layouts."""
    with h5py.File(path, "r+") as handle:
        del handle["processing/ecephys/convseq_parameters"]
        drop_columns(handle, "events/convseq", ["bin_size", "width"])
        drop_columns(handle, "processing/ecephys/convseq_patterns", ["bin_size", "width", "width_bins"])
        handle["events/convseq"].attrs["source_description"] = (
            f"{parameters['software']}: convSeq spike-sequence detection (Koshkin & Fukai, ICML 2024) on the Units "
            f"table; parameters (JSON): {json.dumps(parameters, sort_keys=True)}")


def test_layout_of_0_1_0_still_reads_back(source, tmp_path):
    path = tmp_path / "old.nwb"
    path.write_bytes(source.read_bytes())
    result = nwb.annotate(path, BIN, WIDTH, 1, mirror_intervals=False, random_state=0, max_epochs=20,
                          n_surrogates=10, n_folds=2)
    new = nwb.read_detections(path)
    expected = {k: v for k, v in result.parameters.items() if k not in AFTER_WRITE}
    write_0_1_0_layout(path, expected)
    with NWBHDF5IO(str(path), "r") as io:
        nwbfile = io.read()
        assert set(nwbfile.processing["ecephys"].data_interfaces) == {"convseq_patterns"}
        assert "convseq_occurrences" not in (nwbfile.intervals or {})
    old = nwb.read_detections(path)
    assert old.parameters == expected == new.parameters
    # the time-scale columns of the occurrences and patterns: the run's one scale, from its parameters
    pd.testing.assert_frame_equal(old.occurrences, new.occurrences)
    pd.testing.assert_frame_equal(old.patterns, new.patterns)
    assert old.patterns["width_bins"].tolist() == [40] and old.search is None and old.scale_parameters is None
    pd.testing.assert_frame_equal(old.membership, new.membership)
    np.testing.assert_array_equal(old.filters, new.filters)
    events = nwb.read_events(path).reset_index(drop=True)  # as stored: without the scale columns
    pd.testing.assert_frame_equal(events, old.occurrences[OCCURRENCE_COLUMNS])
    # a second run in a 0.1.0 file: the new layout next to the old one
    nwb.annotate(path, BIN, WIDTH, 1, name="again", random_state=0, max_epochs=20, n_surrogates=10, n_folds=2)
    assert nwb.read_detections(path, "convseq").parameters == expected
    assert nwb.read_detections(path, "again").parameters["max_epochs"] == 20


# ------------------------------------------------------------------ read_events: flat
def test_read_events_is_flat_and_matches_the_stored_occurrences(derived):
    out, result, _ = derived
    events = nwb.read_events(out)
    # the occurrence's columns, then its time scale (one for a run with an explicit width)
    assert list(events.columns) == [*OCCURRENCE_COLUMNS, "bin_size", "width"] and events.index.name == "id"
    assert (events["bin_size"] == 0.005).all() and np.allclose(events["width"], 0.2)
    assert len(events) == len(result.occurrences) > 0
    assert not any(isinstance(v, (pd.DataFrame, pd.Series)) for v in events.to_numpy().ravel())
    assert events["pattern"].dtype == np.int64
    pd.testing.assert_frame_equal(events.reset_index(drop=True), nwb.read_detections(out).occurrences)
    np.testing.assert_allclose(events["offset"], result.occurrences["offset"], rtol=0, atol=1e-12)
    with NWBHDF5IO(str(out), "r") as io:  # what the docstring says about to_dataframe
        table = io.read().events["convseq"]
        nested = table.to_dataframe()
        assert isinstance(nested["pattern"].iloc[0], pd.DataFrame)
        np.testing.assert_array_equal(table.to_dataframe(index=True)["pattern"], events["pattern"])
    with pytest.raises(ValueError, match="no events table named 'other'.*events tables: convseq"):
        nwb.read_events(out, "other")


def test_read_events_of_any_events_table():
    from hdmf.common import VectorData
    from pynwb.event import DurationVectorData, EventsTable, TimestampVectorData

    nwbfile = make_nwbfile(None)
    nwbfile.add_events_table(EventsTable(
        name="licks", description="licks", columns=[
            TimestampVectorData(name="timestamp", description="time (s)", data=np.array([1.0, 2.5])),
            DurationVectorData(name="duration", description="duration (s)", data=np.array([0.1, 0.2])),
            VectorData(name="side", description="which spout", data=["left", "right"])]))
    events = nwb.read_events(nwbfile, "licks")
    assert list(events.columns) == ["onset", "offset", "side"]
    np.testing.assert_allclose(events["offset"], [1.1, 2.7])
    assert events["side"].tolist() == ["left", "right"]


# ------------------------------------------------------------------ the TimeIntervals mirror
def test_occurrences_are_mirrored_as_time_intervals(derived):
    out, result, _ = derived
    events = nwb.read_events(out)
    with NWBHDF5IO(str(out), "r") as io:
        mirror = io.read().intervals["convseq_occurrences"]
        assert isinstance(mirror, TimeIntervals)
        frame = mirror.to_dataframe()
    assert list(frame.columns) == ["start_time", "stop_time", "pattern", "center", "peak", "pvalue", "bin_size",
                                   "width"]
    assert np.all(np.diff(frame["start_time"].to_numpy()) >= 0)  # in time order
    assert sorted(frame.index) == sorted(events.index)  # id: the event's row
    by_id = events.loc[frame.index]
    np.testing.assert_array_equal(frame["start_time"], by_id["onset"])
    np.testing.assert_array_equal(frame["stop_time"], by_id["offset"])
    for column in ("pattern", "center", "peak", "pvalue", "bin_size", "width"):
        np.testing.assert_array_equal(frame[column], by_id[column])
    assert result.parameters["nwb_intervals_table"] == "/intervals/convseq_occurrences"
    epoch = nwb.read_intervals(out, "convseq_occurrences")  # any TimeIntervals reader gets the occurrences
    np.testing.assert_array_equal(epoch.times.magnitude, np.sort(events["onset"].to_numpy()))


def test_mirror_intervals_must_be_a_bool(source, tmp_path):
    with pytest.raises(TypeError, match="mirror_intervals must be True or False"):
        nwb.annotate(source, BIN, WIDTH, out=tmp_path / "x.nwb", mirror_intervals="yes")
    assert not (tmp_path / "x.nwb").exists()


# ------------------------------------------------------------------ intervals=
def intervals_file() -> NWBFile:
    nwbfile = make_nwbfile([[0.5, 1.5, 7.0], [1.0, 3.5]], obs=[np.array([[0.0, 2.0], [6.0, 8.0]]),
                                                              np.array([[1.5, 4.0]])])
    nwbfile.add_trial(start_time=5.0, stop_time=6.5)
    nwbfile.add_trial(start_time=1.0, stop_time=2.0)
    sleep = TimeIntervals(name="sleep", description="sleep bouts")
    sleep.add_interval(start_time=10.0, stop_time=20.0)
    nwbfile.add_time_intervals(sleep)
    return nwbfile


def test_read_intervals_from_a_table_and_from_obs_intervals():
    nwbfile = intervals_file()
    trials = nwb.read_intervals(nwbfile, "trials")
    assert isinstance(trials, neo.Epoch) and trials.name == "trials"
    assert trials.times.units == pq.s and trials.durations.units == pq.s
    np.testing.assert_array_equal(trials.times.magnitude, [1.0, 5.0])  # in time order
    np.testing.assert_array_equal(trials.durations.magnitude, [1.0, 1.5])
    np.testing.assert_array_equal(trials.array_annotations["nwb_id"], [1, 0])
    sleep = nwb.read_intervals(nwbfile, "sleep")
    np.testing.assert_array_equal(np.c_[sleep.times.magnitude, (sleep.times + sleep.durations).magnitude],
                                  [[10.0, 20.0]])
    observed = nwb.read_intervals(nwbfile, "obs_intervals")  # the union: [0, 2] and [1.5, 4] merge
    np.testing.assert_array_equal(np.c_[observed.times.magnitude, (observed.times + observed.durations).magnitude],
                                  [[0.0, 4.0], [6.0, 8.0]])
    second = nwb.read_intervals(nwbfile, "obs_intervals", unit_ids=[101])
    np.testing.assert_array_equal(np.c_[second.times.magnitude, (second.times + second.durations).magnitude],
                                  [[1.5, 4.0]])


@pytest.mark.parametrize("build, name, error, words", [
    (intervals_file, "nope", ValueError, "intervals='nope': the NWBFile has no TimeIntervals table of that name "
     "(available: 'sleep', 'trials', 'obs_intervals')"),
    (lambda: make_nwbfile([[0.5], [1.0]]), "obs_intervals", ValueError, "(available: none)"),
    (intervals_file, 3, TypeError, "name must be the name of a TimeIntervals table"),
])
def test_read_intervals_errors_name_what_is_there(build, name, error, words):
    with pytest.raises(error, match=re.escape(words)):
        nwb.read_intervals(build(), name)


def test_read_intervals_rejects_bad_tables():
    nwbfile = make_nwbfile([[0.5], [1.0]])
    empty = TimeIntervals(name="empty", description="nothing yet")
    nwbfile.add_time_intervals(empty)
    backwards = TimeIntervals(name="backwards", description="stop before start")
    backwards.add_interval(start_time=2.0, stop_time=1.0)
    nwbfile.add_time_intervals(backwards)
    with pytest.raises(ValueError, match="'empty'.*has no intervals"):
        nwb.read_intervals(nwbfile, "empty")
    with pytest.raises(ValueError, match=r"stops before it starts \(\[2.0, 1.0\] s\)"):
        nwb.read_intervals(nwbfile, "backwards")


class _Stop(Exception):
    """Raised by the stand-in for detect: the test has seen what annotate passed."""


@pytest.mark.parametrize("intervals, expected", [
    ("trials", [[0.0, 9.0], [10.0, 19.0], [20.0, 29.0]]),
    ("epochs", [[0.0, 15.0], [15.0, 30.0]]),
    ("obs_intervals", [[0.0, 30.0]]),
])
def test_annotate_passes_the_resolved_intervals_to_detect(source, tmp_path, monkeypatch, intervals, expected):
    seen = {}

    def stand_in(trains, *args, **kwargs):
        seen.update(kwargs, n_trains=len(trains))
        raise _Stop

    monkeypatch.setattr(nwb, "detect", stand_in)
    with pytest.raises(_Stop):
        nwb.annotate(source, BIN, WIDTH, out=tmp_path / "x.nwb", intervals=intervals, max_epochs=5)
    epoch = seen["intervals"]
    assert isinstance(epoch, neo.Epoch) and seen["max_epochs"] == 5 and seen["n_trains"] == 24
    np.testing.assert_array_equal(np.c_[epoch.times.magnitude, (epoch.times + epoch.durations).magnitude], expected)
    assert not (tmp_path / "x.nwb").exists()


def test_annotate_rejects_an_unknown_intervals_table_before_fitting(source, tmp_path, monkeypatch):
    def never(*args, **kwargs):  # pragma: no cover - must not be reached
        raise AssertionError("detect was called")

    monkeypatch.setattr(nwb, "detect", never)
    before = source.read_bytes()
    with pytest.raises(ValueError, match=r"intervals='sleep'.*available: 'epochs', 'trials', 'obs_intervals'"):
        nwb.annotate(source, BIN, WIDTH, out=tmp_path / "x.nwb", intervals="sleep")
    with pytest.raises(TypeError, match="intervals must be the name of a TimeIntervals table"):
        nwb.annotate(source, BIN, WIDTH, out=tmp_path / "x.nwb", intervals=[(0, 1)])
    assert source.read_bytes() == before and not (tmp_path / "x.nwb").exists()


def test_annotate_with_intervals_end_to_end(source, tmp_path):
    """Only occurrences centred inside the trials are stored, and the planted sequence is still found there."""
    out = tmp_path / "trials.nwb"
    result = nwb.annotate(source, BIN, WIDTH, 1, out=out, intervals="trials", random_state=0, **SMALL)
    centers = nwb.read_events(out)["center"].to_numpy()
    inside = np.zeros(centers.size, bool)
    for start in (0.0, 10.0, 20.0):
        inside |= (centers >= start) & (centers < start + 9.0)
    assert len(centers) == len(result.occurrences) >= 10
    assert inside.all()


def test_read_intervals_from_a_file(tmp_path):
    """A table read back from a file (not only from memory) gives the same Epoch."""
    path = write(intervals_file(), tmp_path / "intervals.nwb")
    from_file, in_memory = nwb.read_intervals(path, "trials"), nwb.read_intervals(intervals_file(), "trials")
    np.testing.assert_array_equal(from_file.times, in_memory.times)
    np.testing.assert_array_equal(from_file.durations, in_memory.durations)


def test_parameter_values_json_cannot_write_are_still_stored():
    values = {"a": np.float32(0.5), "b": np.arange(2), "c": np.int64(3), "d": 5 * pq.ms, "e": Path("x")}
    stored = {k: json.loads(json.dumps(v, default=nwb._json_value)) for k, v in values.items()}
    assert stored == {"a": 0.5, "b": [0, 1], "c": 3, "d": str(5 * pq.ms), "e": "x"}


@pytest.mark.parametrize("arguments, error, message", [
    ({"bin_size": 0.005}, TypeError, "bin_size"),
    ({"width": -200 * pq.ms}, ValueError, "width"),
    ({"n_patterns": 0}, ValueError, "n_patterns"),
    ({"alpha": 7.0}, ValueError, "alpha"),
    ({"bogus": 1}, TypeError, "bogus"),
])
def test_bad_arguments_are_refused_before_the_file_is_read(source, tmp_path, monkeypatch, arguments, error, message):
    def never(*args, **kwargs):
        raise AssertionError("the units were read before the arguments were checked")

    monkeypatch.setattr(nwb, "_read_units", never)
    call = {"bin_size": BIN, "width": WIDTH, **arguments}
    before = source.read_bytes()
    with pytest.raises(error, match=message):
        nwb.annotate(source, call.pop("bin_size"), call.pop("width"), out=tmp_path / "x.nwb", **call)
    assert source.read_bytes() == before and not (tmp_path / "x.nwb").exists()
