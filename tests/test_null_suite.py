"""The null suite (convseq_neo.synthetic.null_suite): each kind is what its rule says, made from the seed alone.

No detection runs here (benchmarks/bench_null.py does that); these checks are on the recordings.
"""

import numpy as np
import pytest
import quantities as pq

from convseq_neo.io.nwb import read_units
from convseq_neo.synthetic.generate import shuffle_isis_raster
from convseq_neo.synthetic.null_suite import NULL_KINDS, NullRecording, null_recording, null_suite

SYNTHETIC = ("stationary", "up_states", "silent_gap", "padded_end", "nwb_gap")
CA1 = ("ca1_dithered", "ca1_isi_shuffled")


def seconds(trains) -> list[np.ndarray]:
    return [np.asarray(train.rescale(pq.s).magnitude, dtype=float) for train in trains]


def check_window(trains, t_start: float, t_stop: float) -> None:
    for train in trains:
        assert str(train.units.dimensionality) == "s"
        assert float(train.t_start.rescale(pq.s)) == t_start
        assert float(train.t_stop.rescale(pq.s)) == t_stop
        times = np.asarray(train.magnitude)
        assert np.all((times >= t_start) & (times < t_stop))
        assert np.all(np.diff(times) >= 0)


@pytest.fixture(scope="module")
def ca1_null(ca1_data_dir):
    """Seeds 0, 0 and 1 of both CA1 kinds (the CA1 recording is loaded once by null_suite)."""
    suite = list(null_suite(kinds=CA1, seeds=[0, 0, 1], data_home=ca1_data_dir))
    return {kind: [rec for rec in suite if rec.kind == kind] for kind in CA1}


# --------------------------------------------------------------------------------- arguments
def test_kinds_are_the_documented_ones():
    assert NULL_KINDS == SYNTHETIC + CA1


def test_unknown_kind_is_a_value_error_listing_the_kinds():
    with pytest.raises(ValueError, match="kind must be one of .*stationary.*ca1_isi_shuffled"):
        null_recording("poisson", 0)
    with pytest.raises(TypeError, match="kind"):
        null_recording(3, 0)


@pytest.mark.parametrize("seed, error", [(1.5, TypeError), (True, TypeError), ("0", TypeError), (None, TypeError),
                                         (-1, ValueError)])
def test_bad_seed(seed, error):
    with pytest.raises(error, match="seed"):
        null_recording("stationary", seed)


def test_bad_directory_is_a_type_error():
    with pytest.raises(TypeError, match="directory"):
        null_recording("nwb_gap", 0, directory=3)


def test_null_suite_checks_its_arguments_at_the_call():
    with pytest.raises(ValueError, match="kind must be one of"):
        null_suite(kinds=("stationary", "nope"))
    with pytest.raises(ValueError, match="seed"):
        null_suite(seeds=[0, -2])
    with pytest.raises(ValueError, match="seeds"):
        null_suite(seeds=[])
    with pytest.raises(TypeError, match="seeds"):
        null_suite(seeds=3)


def test_null_suite_order_and_one_nwb_folder(tmp_path):
    suite = list(null_suite(kinds=("stationary", "nwb_gap"), seeds=[2, 0], directory=tmp_path))
    assert [(rec.kind, rec.seed) for rec in suite] == [("stationary", 2), ("stationary", 0), ("nwb_gap", 2),
                                                       ("nwb_gap", 0)]
    assert all(isinstance(rec, NullRecording) for rec in suite)
    assert [rec.nwb_path for rec in suite] == [None, None, tmp_path / "null_nwb_gap_seed2.nwb",
                                               tmp_path / "null_nwb_gap_seed0.nwb"]
    assert list(null_suite(kinds="stationary", seeds=[0]))[0].kind == "stationary"


# --------------------------------------------------------------------------------- seeds
@pytest.mark.parametrize("kind", SYNTHETIC)
def test_same_seed_same_spikes_different_seeds_differ(kind, tmp_path):
    first = seconds(null_recording(kind, 3, directory=tmp_path / "a").load())
    again = seconds(null_recording(kind, 3, directory=tmp_path / "b").load())
    other = seconds(null_recording(kind, 4, directory=tmp_path / "c").load())
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(a.size == b.size and np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_ca1_same_seed_same_spikes_different_seeds_differ(ca1_null):
    for kind in CA1:
        first, again, other = (seconds(rec.spiketrains) for rec in ca1_null[kind])
        assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
        assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


# --------------------------------------------------------------------------------- synthetic kinds
def test_stationary_is_60_neurons_at_about_2_hz():
    rec = null_recording("stationary", 0)
    assert (rec.kind, rec.seed, rec.nwb_path) == ("stationary", 0, None)
    assert rec.detect_kwargs() == {"bin_size": 5 * pq.ms, "width": 300 * pq.ms, "t_start": 0 * pq.s,
                                   "t_stop": 300 * pq.s}
    trains = rec.load()
    assert len(trains) == 60
    check_window(trains, 0.0, 300.0)
    rates = np.array([train.size for train in trains]) / 300.0
    assert abs(rates.mean() - 2.0) < 0.15
    assert rates.min() > 0.7 and rates.max() < 3.5  # 1-3 Hz, with Poisson noise on 300 s
    assert np.ptp(rates) > 1.0  # rates differ between neurons
    assert trains[5].name == "unit5" and trains[5].annotations["null_kind"] == "stationary"
    assert trains[5].annotations["null_seed"] == 0


def test_up_states_triple_the_rate_in_about_30_percent_of_the_time():
    fractions = []
    for seed in range(5):
        rec = null_recording("up_states", seed)
        ups = np.asarray(rec.up_periods.rescale(pq.s).magnitude)
        assert ups.ndim == 2 and ups.shape[1] == 2 and len(ups) >= 3
        assert np.all(ups[:, 1] > ups[:, 0]) and np.all(ups[1:, 0] > ups[:-1, 1])  # sorted, disjoint
        assert np.all((ups >= 0) & (ups <= 300))
        lengths = np.diff(ups, axis=1).ravel()
        inner = (ups[:, 0] > 0) & (ups[:, 1] < 300)  # periods not clipped by the window
        assert np.all((lengths[inner] >= 8) & (lengths[inner] < 15))
        assert np.all(lengths <= 15)
        downs = ups[1:, 0] - ups[:-1, 1]
        assert np.all((downs >= 13.4) & (downs < 40.3))
        up_time = lengths.sum()
        fractions.append(up_time / 300.0)
        trains = rec.load()
        check_window(trains, 0.0, 300.0)
        times = np.concatenate(seconds(trains))
        inside = np.any((times[:, None] >= ups[:, 0]) & (times[:, None] < ups[:, 1]), axis=1)
        ratio = (inside.sum() / up_time) / ((~inside).sum() / (300.0 - up_time))
        assert 2.6 < ratio < 3.4, (seed, ratio)
    assert 0.2 < np.mean(fractions) < 0.4, fractions


def test_up_states_share_the_stationary_rates():
    stationary = np.array([t.size for t in null_recording("stationary", 1).load()])
    up = np.array([t.size for t in null_recording("up_states", 1).load()])
    assert np.corrcoef(stationary, up)[0, 1] > 0.8


@pytest.mark.parametrize("kind, silent", [("silent_gap", (130.0, 170.0)), ("padded_end", (240.0, 300.0))])
def test_silent_stretch_is_silent_and_the_rest_is_the_stationary_recording(kind, silent):
    rec = null_recording(kind, 2)
    assert np.array_equal(rec.silent_periods.rescale(pq.s).magnitude, [silent])
    assert (float(rec.t_start), float(rec.t_stop)) == (0.0, 300.0)
    trains = rec.load()
    check_window(trains, 0.0, 300.0)
    stationary = seconds(null_recording("stationary", 2).load())
    for times, full in zip(seconds(trains), stationary, strict=True):
        assert not np.any((times >= silent[0]) & (times < silent[1]))
        assert np.array_equal(times, full[(full < silent[0]) | (full >= silent[1])])
    assert sum(t.size for t in trains) > 60 * 150


def test_nwb_gap_file_reads_back_60_units_with_the_gap(tmp_path):
    rec = null_recording("nwb_gap", 1, directory=tmp_path / "new")
    assert rec.spiketrains is None
    assert rec.nwb_path == tmp_path / "new" / "null_nwb_gap_seed1.nwb" and rec.nwb_path.is_file()
    assert rec.detect_kwargs() == {"bin_size": 5 * pq.ms, "width": 300 * pq.ms}
    assert (float(rec.t_start), float(rec.t_stop)) == (0.0, 300.0)
    trains = read_units(rec.nwb_path)
    assert len(trains) == 60
    check_window(trains, 0.0, 300.0)
    gap = seconds(null_recording("silent_gap", 1).load())
    for train, expected in zip(trains, gap, strict=True):
        times = np.asarray(train.magnitude)
        assert not np.any((times >= 130) & (times < 170))
        assert np.array_equal(times, expected)
    assert trains[0].name == "unit0"

    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(rec.nwb_path), "r") as io:
        units = io.read().units
        assert len(units.id) == 60
        for row in (0, 59):
            assert np.array_equal(units["obs_intervals"][row], [[0.0, 130.0], [170.0, 300.0]])


def test_nwb_gap_default_directory_is_a_fresh_temporary_folder():
    import shutil

    first = null_recording("nwb_gap", 0)
    second = null_recording("nwb_gap", 0)
    try:
        assert first.nwb_path.is_file() and second.nwb_path.is_file()
        assert first.nwb_path.parent != second.nwb_path.parent
    finally:
        for rec in (first, second):
            shutil.rmtree(rec.nwb_path.parent)


# --------------------------------------------------------------------------------- CA1 kinds
def test_ca1_kinds_settings(ca1_null, ca1_segment):
    for kind in CA1:
        rec = ca1_null[kind][0]
        assert rec.nwb_path is None
        assert rec.detect_kwargs() == {"bin_size": 50 * pq.ms, "width": 3 * pq.s, "t_start": 0 * pq.s,
                                       "t_stop": ca1_segment.spiketrains[0].t_stop}
        assert rec.spiketrains[7].name == "neuron 7"
        assert rec.spiketrains[7].annotations["null_kind"] == kind
        check_window(rec.spiketrains, 0.0, float(ca1_segment.spiketrains[0].t_stop))


def test_ca1_dithered_moves_each_spike_by_at_most_3_s(ca1_null, ca1_segment):
    rec = ca1_null["ca1_dithered"][0]
    moved_any = False
    for train, original in zip(rec.spiketrains, ca1_segment.spiketrains, strict=True):
        times, before = np.asarray(train.magnitude), np.sort(np.asarray(original.rescale(pq.s).magnitude))
        assert times.size == before.size
        if not times.size:
            continue
        # per spike (the annotation records where each came from) ...
        shift = times - train.array_annotations["original_time"]
        assert np.all(np.abs(shift) <= 3.0 + 1e-9)
        assert np.array_equal(np.sort(train.array_annotations["original_time"]), before)
        # ... and a bound that needs no bookkeeping: sorted times move by at most the largest shift
        assert np.all(np.abs(times - before) <= 3.0 + 1e-9)
        frames = times / 0.05
        assert np.allclose(frames, np.round(frames), atol=1e-6)  # still on frame starts
        moved_any |= bool(np.any(shift != 0))
    assert moved_any


def test_ca1_isi_shuffled_is_the_benchmarks_background(ca1_null, ca1_segment, ca1_raster):
    from convseq_neo.io.neo import to_raster

    for rec in ca1_null["ca1_isi_shuffled"]:
        for train, original in zip(rec.spiketrains, ca1_segment.spiketrains, strict=True):
            assert train.size == original.size
        expected = shuffle_isis_raster(ca1_raster, random_state=rec.seed)  # as benchmarks/bench_core.py
        binned = to_raster(rec.spiketrains, bin_size=50 * pq.ms).to_dense()
        assert np.array_equal(binned, expected)
        assert not np.array_equal(binned, ca1_raster)
