"""Saved models: a fitted model written to a file (or stored in NWB), loaded afresh, applied to another session."""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import zipfile

import numpy as np
import pandas as pd
import pytest
import quantities as pq

import convseq_neo.io.nwb as nwb
from convseq_neo.detect import detect
from convseq_neo.io.model_file import FORMAT_VERSION, RESTORED_ATTRIBUTES, SavedModel, load_model, model_from_nwb
from convseq_neo.result import DetectionResult
from convseq_neo.synthetic.evaluate import score_detections
from convseq_neo.synthetic.generate import plant_sequences, poisson_background, sequence_recording

BIN = 5 * pq.ms
WIDTH = 200 * pq.ms
FAST = dict(max_epochs=200, min_epochs=50, n_surrogates=40, n_folds=3)
DURATION = 40 * pq.s
TOLERANCE_S = 0.05  # W / 4


@pytest.fixture(scope="module")
def session_a():
    return sequence_recording(n_neurons=40, members_per_pattern=12, duration=DURATION, rate=2 * pq.Hz,
                              lag_step=10 * pq.ms, participation=0.9, jitter=5 * pq.ms, n_occurrences=25,
                              random_state=3)


@pytest.fixture(scope="module")
def session_b(session_a):
    """Another session of the same neurons: new background, the same planted members, another seed."""
    background = poisson_background(40, 2 * pq.Hz, 0 * pq.s, DURATION, random_state=11)
    return plant_sequences(background, session_a.members, lag_step=10 * pq.ms, n_occurrences=25, participation=0.9,
                           jitter=5 * pq.ms, random_state=12)


@pytest.fixture(scope="module")
def fitted(session_a):
    return detect(session_a.spiketrains, BIN, WIDTH, n_patterns=1, random_state=0, device="cpu", **FAST)


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    return fitted.save_model(tmp_path_factory.mktemp("model") / "session_a.npz")


def _f1(found: DetectionResult, truth) -> float:
    occ = found.occurrences
    return score_detections(occ["center"].to_numpy(), occ["pattern"].to_numpy(), truth.centers.rescale(pq.s).magnitude,
                            truth.pattern_id, TOLERANCE_S).f1


def _same_patterns(a, b) -> None:
    assert [p.neurons.tolist() for p in a.patterns] == [p.neurons.tolist() for p in b.patterns]
    for p, q in zip(a.patterns, b.patterns):
        np.testing.assert_allclose(p.lags.magnitude, q.lags.magnitude, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(p.filter, q.filter)
        np.testing.assert_array_equal(p.tested_filter, q.tested_filter)


# ------------------------------------------------------------------ the model file
def test_loaded_model_finds_what_the_result_finds_in_another_session(fitted, saved, session_b):
    trains, truth = session_b
    loaded = load_model(saved)
    assert isinstance(loaded, SavedModel) and loaded.n_patterns == 1 and loaded.n_neurons == 40
    assert loaded.bin_size == BIN.rescale(pq.s) and loaded.width == WIDTH.rescale(pq.s)
    assert loaded.unit_names == fitted.unit_names
    assert loaded.model is not fitted.model
    for name in RESTORED_ATTRIBUTES:
        assert hasattr(loaded.model, name), name
    assert loaded.model.filters_.dtype == fitted.model.filters_.dtype
    assert loaded.model.get_params() == fitted.model.get_params()
    _same_patterns(loaded, fitted)
    assert loaded.patterns[0].n_occurrences == fitted.patterns[0].n_occurrences

    expected = fitted.find(trains, random_state=0)
    found = loaded.find(trains, random_state=0)
    pd.testing.assert_frame_equal(found.occurrences, expected.occurrences)
    pd.testing.assert_frame_equal(found.candidates, expected.candidates)
    pd.testing.assert_frame_equal(found.membership, expected.membership)
    np.testing.assert_array_equal(found.responses, expected.responses)
    assert found.parameters == expected.parameters
    # without random_state both use the saved model's own seed
    pd.testing.assert_frame_equal(loaded.find(trains).occurrences, fitted.find(trains).occurrences)
    assert _f1(found, truth) >= 0.8
    with pytest.raises(ValueError, match="neurons"):
        loaded.find(trains[:30])


def test_a_loaded_model_saves_again_and_refuses_to_overwrite(saved, tmp_path):
    loaded = load_model(saved)
    again = loaded.save(tmp_path / "again.npz")
    reloaded = load_model(again)
    np.testing.assert_array_equal(reloaded.model.filters_, loaded.model.filters_)
    pd.testing.assert_frame_equal(reloaded.membership, loaded.membership)
    assert reloaded.parameters == loaded.parameters

    before = again.read_bytes()
    with pytest.raises(FileExistsError, match="again.npz"):
        loaded.save(again)
    assert again.read_bytes() == before
    other = tmp_path / "other.npz"
    other.write_bytes(b"user data")
    other.chmod(0o640)
    assert loaded.save(other, overwrite=True) == other
    assert load_model(other).n_patterns == 1 and (other.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.npz", "other.npz"]  # no temporary left


def test_save_checks_its_arguments(fitted, tmp_path):
    with pytest.raises(TypeError, match="path"):
        fitted.save_model(3)
    with pytest.raises(TypeError, match="overwrite"):
        fitted.save_model(tmp_path / "x.npz", overwrite="yes")
    with pytest.raises(ValueError, match="directory"):
        fitted.save_model(tmp_path)
    with pytest.raises(FileNotFoundError, match="missing"):
        fitted.save_model(tmp_path / "missing" / "x.npz")
    from convseq_neo.io.model_file import save_model

    with pytest.raises(TypeError, match="DetectionResult"):
        save_model(fitted.model, tmp_path / "x.npz")
    assert not list(tmp_path.iterdir())


def _rewrite(source, dest, change):
    """Copy a model file with its header (a dict) or arrays changed by ``change(header, arrays)``."""
    with np.load(source, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    header = json.loads(str(arrays.pop("header")))
    change(header, arrays)
    with open(dest, "wb") as handle:
        np.savez(handle, header=np.array(json.dumps(header)), **arrays)
    return dest


def test_bad_files_get_clear_errors(saved, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        load_model(tmp_path / "nothing.npz")
    with pytest.raises(ValueError, match="directory"):
        load_model(tmp_path)
    with pytest.raises(TypeError, match="path"):
        load_model(None)
    text = tmp_path / "notes.txt"
    text.write_text("not a model")
    with pytest.raises(ValueError, match="notes.txt.*neither"):
        load_model(text)
    plain = tmp_path / "plain.npz"
    with open(plain, "wb") as handle:
        np.savez(handle, x=np.arange(3))
    with pytest.raises(ValueError, match="plain.npz.*not a convseq_neo model file"):
        load_model(plain)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(saved.read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated.npz"):
        load_model(truncated)

    def newer(header, arrays):
        header["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(ValueError, match=rf"newer.npz.*format version {FORMAT_VERSION + 1}.*upgrade"):
        load_model(_rewrite(saved, tmp_path / "newer.npz", newer))

    def other_format(header, arrays):
        header["format"] = "something.else"
    with pytest.raises(ValueError, match="not a convseq_neo model file"):
        load_model(_rewrite(saved, tmp_path / "other.npz", other_format))

    def damaged(header, arrays):
        arrays["filters"] = arrays["filters"][:, :-1]
    with pytest.raises(ValueError, match="damaged"):
        load_model(_rewrite(saved, tmp_path / "damaged.npz", damaged))

    def pickled(header, arrays):
        arrays["filters"] = np.array([{"not": "data"}], dtype=object)  # would need pickle to load
    with pytest.raises(ValueError, match="pickled.npz.*could not be read"):
        load_model(_rewrite(saved, tmp_path / "pickled.npz", pickled))

    with pytest.raises(ValueError, match="NWB"):
        load_model(saved, name="convseq")


def test_a_file_without_tested_filters_applies_the_learned_ones_with_a_warning(fitted, saved, session_b, tmp_path,
                                                                               caplog):
    loaded = load_model(saved)
    np.testing.assert_array_equal(loaded.model.tested_filters_, fitted.model.tested_filters_)
    assert not np.array_equal(fitted.model.tested_filters_, fitted.model.filters_)

    def older(header, arrays):
        del arrays["tested_filters"]
    with caplog.at_level(logging.WARNING, logger="convseq_neo.io.model_file"):
        old = load_model(_rewrite(saved, tmp_path / "older.npz", older))
    assert "no tested filters" in caplog.text
    assert not hasattr(old.model, "tested_filters_") and old.patterns[0].tested_filter is None
    trains, _ = session_b
    learned = old.find(trains, random_state=0)
    np.testing.assert_allclose(learned.responses, fitted.model.transform(learned.raster), rtol=1e-6)
    # saved again, it stays a model without tested filters (the learned ones are not stored as such)
    with np.load(old.save(tmp_path / "again.npz"), allow_pickle=False) as archive:
        assert "tested_filters" not in archive.files and "filters" in archive.files

    def damaged(header, arrays):
        arrays["tested_filters"] = arrays["tested_filters"][:, :-1]
    with pytest.raises(ValueError, match="damaged.*tested filters"):
        load_model(_rewrite(saved, tmp_path / "damaged_tested.npz", damaged))


def test_unusable_saved_device_falls_back_to_auto(saved, tmp_path, caplog):
    def on_a_gpu(header, arrays):
        header["params"]["device"] = "cuda:7"
    path = _rewrite(saved, tmp_path / "gpu.npz", on_a_gpu)
    with caplog.at_level(logging.WARNING, logger="convseq_neo.io.model_file"):
        loaded = load_model(path)
    try:
        import torch

        usable = torch.cuda.device_count() > 7
    except Exception:  # pragma: no cover
        usable = False
    if not usable:
        assert loaded.model.device == "auto" and "not available" in caplog.text
    assert load_model(path, device="cpu").model.device == "cpu"


# ------------------------------------------------------------------ from NWB
def _nwb_file(trains, path):
    from pynwb import NWBHDF5IO, NWBFile

    nwbfile = NWBFile(session_description="session A", identifier="session-a",
                      session_start_time=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
    for train in trains:
        nwbfile.add_unit(spike_times=train.times.rescale(pq.s).magnitude, obs_intervals=[[0.0, float(DURATION)]])
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    return path


@pytest.fixture(scope="module")
def annotated(session_a, tmp_path_factory):
    folder = tmp_path_factory.mktemp("nwb")
    source = _nwb_file(session_a.spiketrains, folder / "session_a.nwb")
    out = folder / "annotated.nwb"
    result = nwb.annotate(source, BIN, WIDTH, 1, out=out, random_state=0, device="cpu", **FAST)
    return out, result


def test_model_rebuilt_from_nwb_finds_what_the_stored_result_finds(annotated, session_b):
    path, result = annotated
    trains, truth = session_b
    rebuilt = load_model(path)
    assert rebuilt.source == str(path) and rebuilt.n_neurons == 40
    assert rebuilt.model.filters_.dtype == result.model.filters_.dtype
    np.testing.assert_array_equal(rebuilt.model.filters_, result.model.filters_)
    np.testing.assert_array_equal(rebuilt.model.pattern_offsets_, result.model.pattern_offsets_)
    np.testing.assert_allclose(rebuilt.model.pattern_spans_, result.model.pattern_spans_, rtol=1e-12)
    assert rebuilt.model.lag_tolerance_ == result.model.lag_tolerance_
    assert rebuilt.model.get_params() == result.model.get_params()
    _same_patterns(rebuilt, result)

    expected = result.find(trains, random_state=0)
    found = rebuilt.find(trains, random_state=0)
    assert len(found.occurrences) == len(expected.occurrences) > 0
    pd.testing.assert_frame_equal(found.occurrences, expected.occurrences, check_exact=False, rtol=1e-12,
                                  atol=1e-9)
    np.testing.assert_array_equal(found.occurrences["pvalue"], expected.occurrences["pvalue"])
    assert _f1(found, truth) >= 0.8
    # the same through model_from_nwb and an explicit name
    again = model_from_nwb(path, "convseq")
    pd.testing.assert_frame_equal(again.find(trains, random_state=0).occurrences, found.occurrences)


def test_nwb_errors_and_files_without_offsets(annotated, session_b, tmp_path, monkeypatch, caplog):
    path, result = annotated
    with pytest.raises(ValueError, match="no convSeq detections named 'other'"):
        load_model(path, name="other")
    with pytest.raises(FileNotFoundError, match="absent.nwb"):
        model_from_nwb(tmp_path / "absent.nwb")

    read = nwb.read_detections

    def without(key):
        def reader(*args, **kwargs):
            stored = read(*args, **kwargs)
            stored.parameters.pop(key, None)
            return stored
        return reader

    def without_tested(*args, **kwargs):
        return dataclasses.replace(read(*args, **kwargs), tested_filters=None)

    monkeypatch.setattr(nwb, "read_detections", without_tested)
    with caplog.at_level(logging.WARNING, logger="convseq_neo.io.model_file"):
        older = load_model(path)
    assert "no tested filters" in caplog.text
    assert not hasattr(older.model, "tested_filters_")
    caplog.clear()

    monkeypatch.setattr(nwb, "read_detections", without("bin_size_s"))
    with pytest.raises(ValueError, match="bin size"):
        load_model(path)
    # a detection stored before the offsets were recorded: estimated from the filters, with a warning
    monkeypatch.setattr(nwb, "read_detections", without("pattern_offsets_bins"))
    with caplog.at_level(logging.WARNING, logger="convseq_neo.io.model_file"):
        estimated = load_model(path)
    assert "estimated" in caplog.text
    bin_size_s = float(BIN.rescale(pq.s))
    assert abs(estimated.model.pattern_offsets_[0] - result.model.pattern_offsets_[0]) <= 2
    trains, truth = session_b
    found = estimated.find(trains, random_state=0)
    exact = result.find(trains, random_state=0)
    assert len(found.occurrences) == len(exact.occurrences)
    np.testing.assert_allclose(found.occurrences["center"], exact.occurrences["center"], atol=2 * bin_size_s)


def test_a_zip_that_is_not_npz(tmp_path):
    path = tmp_path / "archive.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="archive.zip"):
        load_model(path)


def test_find_matches_named_units_by_name_and_unnamed_ones_by_position(fitted, saved, session_b, caplog):
    from convseq_neo.io.neo import to_raster
    from convseq_neo.raster import SpikeRaster

    trains = list(session_b[0])
    assert fitted.unit_names == tuple(train.name for train in trains)  # the same names in both sessions
    expected = fitted.find(trains, random_state=0)
    assert len(expected.occurrences) >= 10
    loaded = load_model(saved)
    shuffled = [trains[row] for row in np.random.default_rng(0).permutation(len(trains))]
    for model in (fitted, loaded):
        with caplog.at_level(logging.INFO, logger="convseq_neo.result"):
            found = model.find(shuffled, random_state=0)
        assert "matched by name" in caplog.text
        caplog.clear()
        assert found.unit_names == fitted.unit_names
        pd.testing.assert_frame_equal(found.occurrences, expected.occurrences)
        # the exports take the trains as they were given, each in its own place
        labels = found.spike_labels(shuffled)
        by_name = dict(zip((t.name for t in trains), expected.spike_labels(trains)))
        for train, (pattern, _) in zip(shuffled, labels):
            np.testing.assert_array_equal(pattern, by_name[train.name][0])
    renamed = [train.copy() for train in trains]
    renamed[5].name = "stranger"
    for model in (fitted, loaded):
        with pytest.raises(ValueError, match=r"missing \['unit5'\].*stranger"):
            model.find(renamed, random_state=0)
    # a raster without names is taken in order: its rows are the model's neurons, whatever they hold
    raster = to_raster(shuffled, BIN)
    unnamed = SpikeRaster(raster.neuron_index, raster.bin_index, raster.counts, raster.n_neurons, raster.n_bins,
                          bin_size_s=raster.bin_size_s, t_start_s=raster.t_start_s)
    found = loaded.find(unnamed, random_state=0)
    assert found.unit_names == tuple(str(row) for row in range(40))
    np.testing.assert_array_equal(found.raster.to_dense(), raster.to_dense())
