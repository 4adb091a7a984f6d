"""ConvSeq on planted data: recovery, separation of patterns, the null, reproducibility, bad input.

The planted recordings satisfy the issue's 'not trivial' rule: 100 neurons, participation 0.9,
jitter 2 bins (10 ms at 5 ms bins), and within an occurrence's span (190 ms) each member's
background rate (2 Hz) gives 20 x 0.19 x 2 = 7.6 background spikes against 18 planted ones.
"""

import re

import numpy as np
import pandas as pd
import pytest
import quantities as pq
import torch

from convseq_neo import ConvSeq
from convseq_neo.core.occurrences import OCCURRENCE_COLUMNS
from convseq_neo.raster import SpikeRaster
from convseq_neo.synthetic.evaluate import membership_auc, score_detections
from convseq_neo.synthetic.generate import sequence_recording, shuffle_isis_raster

WIDTH = 60  # bins (300 ms): the planted span is 38 bins
TOLERANCE = WIDTH / 4


def _recording(n_patterns, layout, seed=3):
    return sequence_recording(n_neurons=100, n_patterns=n_patterns, members_per_pattern=20, layout=layout,
                              duration=120 * pq.s, bin_size=5 * pq.ms, rate=2 * pq.Hz, lag_step=10 * pq.ms,
                              n_occurrences=40, participation=0.9, jitter=10 * pq.ms, random_state=seed)


def _fit(recording, n_patterns):
    return ConvSeq(n_patterns=n_patterns, width=WIDTH, random_state=0).fit(recording.raster)


def _scores(model, recording):
    found = model.occurrences_[model.occurrences_["significant"]]
    truth_times = np.concatenate([recording.centers_bins(k) for k in range(recording.n_patterns)])
    truth_labels = np.concatenate([np.full(len(recording.centers_bins(k)), k) for k in range(recording.n_patterns)])
    return score_detections(found["center"].to_numpy(), found["pattern"].to_numpy(), truth_times, truth_labels,
                            TOLERANCE)


@pytest.fixture(scope="module")
def one_pattern(planted_one):
    """The same recipe, fitted once for the whole suite (tests/conftest.py); the model saw its raster."""
    recording, result = planted_one
    return recording, result.model


@pytest.fixture(scope="module")
def two_disjoint(planted_two):
    recording, result = planted_two
    return recording, result.model


@pytest.fixture(scope="module")
def forward_and_reverse():
    recording = _recording(2, "reverse")
    return recording, _fit(recording, 2)


def _check_recovery(recording, model, min_f1, min_auc=0.9):
    scores = _scores(model, recording)
    per_pattern = scores.per_pattern.dropna(subset=["true_pattern"])
    assert len(scores.assignment) == recording.n_patterns
    for _, row in per_pattern.iterrows():
        assert row["f1"] >= min_f1, scores.per_pattern.to_string()
    for learned, true in scores.assignment.items():
        table = model.membership_[model.membership_["pattern"] == learned]
        assert membership_auc(table["score"].to_numpy(), recording.members[true]) >= min_auc


def test_one_pattern_is_found(one_pattern):
    recording, model = one_pattern
    _check_recovery(recording, model, 0.9)


def test_two_disjoint_patterns_are_found_separately(two_disjoint):
    recording, model = two_disjoint
    _check_recovery(recording, model, 0.9)


def test_sequence_and_its_reverse_are_found_separately(forward_and_reverse):
    recording, model = forward_and_reverse
    _check_recovery(recording, model, 0.8)


def test_members_are_mostly_true_members(one_pattern):
    recording, model = one_pattern
    reported = model.membership_.loc[model.membership_["member"], "neuron"].to_numpy()
    false_members = np.setdiff1d(reported, recording.members[0])
    assert np.isin(recording.members[0], reported).mean() >= 0.9
    assert false_members.size <= 3


def test_lags_follow_the_planted_order(one_pattern):
    recording, model = one_pattern
    table = model.membership_.set_index("neuron")
    learned = table.loc[recording.members[0], "lag"].to_numpy()
    planted = recording.lags[0].rescale("s").magnitude / 0.005  # bins
    ok = np.isfinite(learned)
    assert ok.mean() >= 0.9
    assert np.corrcoef(learned[ok], planted[ok])[0, 1] > 0.95
    assert abs(np.nanmean(learned)) < 1.0  # lags are relative to the pattern centre


def test_fitted_attributes_have_documented_shapes(one_pattern):
    recording, model = one_pattern
    n_neurons, n_bins = recording.raster.shape
    length = n_bins + 2 * (WIDTH // 2) - WIDTH + 1
    assert model.filters_.shape == (1, n_neurons, WIDTH)
    np.testing.assert_allclose(model.filters_.sum(axis=2), 1.0, rtol=1e-5)
    assert model.responses_.shape == (1, length)
    assert model.thresholds_.shape == (1, length)
    assert model.loss_history_.shape[0] == 1 and model.n_epochs_[0] >= model.min_epochs
    assert model.stop_reason_[0] in ("converged", "max_epochs")
    assert list(model.occurrences_.columns) == ["pattern", "center", "onset", "offset", "peak", "pvalue",
                                                "significant"]
    assert list(model.membership_.columns) == ["pattern", "neuron", "score", "pvalue", "member", "lag"]
    found = model.occurrences_[model.occurrences_["significant"]]
    assert (found["onset"] < found["center"]).all() and (found["center"] < found["offset"]).all()


def test_fitted_attributes_are_exactly_the_documented_ones(one_pattern):
    _, model = one_pattern
    section = ConvSeq.__doc__.split("Attributes\n    ----------\n")[1].split("\n    Notes\n")[0]
    documented = set(re.findall(r"^    (\w+_) :", section, flags=re.MULTILINE))
    fitted = {name for name in vars(model) if name.endswith("_") and not name.startswith("_")}
    assert fitted == documented


def test_nothing_is_found_on_a_shuffled_background(one_pattern):
    recording, _ = one_pattern
    background = shuffle_isis_raster(recording.raster, random_state=11)
    model = ConvSeq(width=WIDTH, random_state=1).fit(background)
    assert int(model.occurrences_["significant"].sum()) <= 1


def test_find_occurrences_on_held_out_data(one_pattern):
    recording, _ = one_pattern
    half = recording.raster.n_bins // 2
    first, second = recording.raster.time_slice(0, half), recording.raster.time_slice(half, recording.raster.n_bins)
    model = ConvSeq(width=WIDTH, random_state=0, n_surrogates=100).fit(first)
    found = model.find_occurrences(second)
    assert list(found.columns) == list(model.occurrences_.columns) == OCCURRENCE_COLUMNS  # no helper column left
    found = found[found["significant"]]
    truth = recording.centers_bins(0)
    truth = truth[truth >= half] - half
    scores = score_detections(found["center"].to_numpy(), found["pattern"].to_numpy(), truth,
                              np.zeros(truth.size, int), TOLERANCE)
    assert scores.f1 >= 0.85
    assert model.transform(second).shape == (1, second.n_bins + 1)


def test_same_seed_same_result_and_global_rng_untouched():
    rng = np.random.default_rng(5)
    raster = (rng.random((20, 1500)) < 0.02).astype(int)
    numpy_state = np.random.get_state()[1].copy()  # noqa: NPY002 - checking it is untouched
    torch_state = torch.random.get_rng_state().clone()
    options = dict(width=20, max_epochs=60, min_epochs=10, n_surrogates=20, n_folds=3, random_state=42,
                   device="cpu")  # bit-for-bit on the CPU; CUDA's tolerance is in test_cuda.py
    a = ConvSeq(**options).fit(raster)
    b = ConvSeq(**options).fit(raster)
    np.testing.assert_array_equal(a.filters_, b.filters_)
    pd.testing.assert_frame_equal(a.occurrences_, b.occurrences_)
    pd.testing.assert_frame_equal(a.membership_, b.membership_)
    assert np.array_equal(np.random.get_state()[1], numpy_state)  # noqa: NPY002
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    c = ConvSeq(**{**options, "random_state": np.random.default_rng(42)}).fit(raster)
    assert c.filters_.shape == a.filters_.shape


def test_flat_start_does_not_stop_training_early():
    rng = np.random.default_rng(0)
    raster = (rng.random((15, 800)) < 0.02).astype(int)
    model = ConvSeq(width=20, max_epochs=500, min_epochs=150, tol=1.0, patience=5, n_surrogates=10, n_folds=2,
                    random_state=0).fit(raster)
    assert model.stop_reason_ == ["converged"]
    assert model.n_epochs_[0] >= 150


def test_reference_threshold_option():
    recording = sequence_recording(n_neurons=30, members_per_pattern=10, duration=30 * pq.s, rate=2 * pq.Hz,
                                   lag_step=10 * pq.ms, n_occurrences=20, participation=1.0, jitter=5 * pq.ms,
                                   random_state=1)
    model = ConvSeq(width=40, significance="random_filters", max_epochs=300, random_state=0).fit(recording.raster)
    assert model.occurrences_["pvalue"].isna().all()
    assert np.isfinite(model.random_filter_threshold_)
    np.testing.assert_allclose(model.thresholds_, model.random_filter_threshold_)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"n_patterns": 0}, ValueError, "n_patterns"),
    ({"n_patterns": 1.5}, TypeError, "n_patterns"),
    ({"width": 1}, ValueError, "width"),
    ({"width": 500}, ValueError, "width"),
    ({"alpha": 1.5}, ValueError, "alpha"),
    ({"alpha": 0}, ValueError, "alpha"),
    ({"lr": -1.0}, ValueError, "lr"),
    ({"backend": "gpu"}, ValueError, "backend"),
    ({"significance": "magic"}, ValueError, "significance"),
    ({"device": 3}, TypeError, "device"),
    ({"random_state": "seed"}, TypeError, "random_state"),
    ({"n_folds": 1}, ValueError, "n_folds"),
    ({"tv_weight": -1.0}, ValueError, "tv_weight"),
])
def test_bad_parameters_are_rejected(kwargs, error, match):
    raster = np.eye(5, 200, dtype=int)
    with pytest.raises(error, match=match):
        ConvSeq(**{"width": 10, **kwargs}).fit(raster)


@pytest.mark.parametrize(("raster", "error", "match"), [
    (np.zeros((5, 100)), ValueError, "no spikes"),
    (np.full((5, 100), np.nan), ValueError, "NaN"),
    (-np.ones((5, 100)), ValueError, "negative"),
    (np.ones(100), ValueError, "2-D"),
    ("raster", TypeError, "raster"),
    ([[1, 0], [0, 1]], ValueError, "width"),
])
def test_bad_rasters_are_rejected(raster, error, match):
    with pytest.raises(error, match=match):
        ConvSeq(width=10).fit(raster)


def test_too_short_for_crossfitting_says_what_to_do():
    with pytest.raises(ValueError, match="random_filters"):
        ConvSeq(width=30).fit(np.eye(5, 70, dtype=int))


def test_new_data_with_other_neurons_is_rejected(one_pattern):
    _, model = one_pattern
    with pytest.raises(ValueError, match="neurons"):
        model.transform(SpikeRaster.from_dense(np.eye(7, 400, dtype=int)))
    with pytest.raises(RuntimeError, match="not fitted"):
        ConvSeq().transform(np.eye(3, 300, dtype=int))


@pytest.mark.parametrize("fixture", ["one_pattern", "two_disjoint", "forward_and_reverse"])
def test_tested_responses_hold_each_peak_at_its_bin(fixture, request):
    """The cross-fitted responses are stored in the all-data filter's frame: every tested peak,
    significant or not, sits at its occurrence's peak bin with its tested height."""
    _, model = request.getfixturevalue(fixture)
    occ = model.occurrences_
    patterns = occ["pattern"].to_numpy()
    peak_bins = np.rint(occ["center"].to_numpy() - model.pattern_offsets_[patterns]).astype(int)
    np.testing.assert_allclose(model.tested_responses_[patterns, peak_bins], occ["peak"].to_numpy(), rtol=1e-6)
    assert model.fold_shifts_.shape == (model.n_folds, model.n_patterns)
    assert np.isfinite(model.tested_responses_).mean() > 0.95  # NaN only at a few fold-border bins
