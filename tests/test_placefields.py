"""convseq_neo.analysis.placefields on a synthetic linear track with known place fields."""

import neo
import numpy as np
import pandas as pd
import pytest
import quantities as pq

from convseq_neo.analysis.placefields import (
    TrackMovement,
    order_correlation_test,
    pattern_direction,
    place_field_order,
    place_fields,
    track_movement,
)

PERIOD_S = 0.05


def _laps(n_laps=6, run_samples=70, rest_samples=30):
    """Back-and-forth runs on a 0-96 cm track, resting at each end."""
    right = np.linspace(0, 96, run_samples)
    lap = np.concatenate([right, np.full(rest_samples, 96.0), right[::-1], np.full(rest_samples, 0.0)])
    return np.tile(lap, n_laps)


def _signal(x):
    return neo.AnalogSignal(x[:, None], units="cm", sampling_period=PERIOD_S * pq.s)


def _cells(x, movement, centres_right, centres_left, rng):
    """Trains firing near one position, rightwards (centres_right) or leftwards (centres_left)."""
    trains = []
    for right, left in zip(centres_right, centres_left):
        near_right = (movement.direction == 1) & (np.abs(x - right) < 3) if right is not None else False
        near_left = (movement.direction == -1) & (np.abs(x - left) < 3) if left is not None else False
        samples = np.flatnonzero(near_right | near_left)
        samples = samples[rng.random(samples.size) < 0.7]
        trains.append(neo.SpikeTrain(samples * PERIOD_S, units="s", t_stop=x.size * PERIOD_S))
    return trains


def test_direction_follows_velocity_and_rest_is_zero():
    x = _laps()
    movement = track_movement(_signal(x))
    assert isinstance(movement, TrackMovement)
    assert movement.direction[35] == 1 and movement.direction[135] == -1
    assert movement.direction[85] == 0  # resting at the far end
    running_speed = 96 / (70 * PERIOD_S)
    assert np.abs(movement.velocity[35]) == pytest.approx(running_speed, rel=0.05)
    np.testing.assert_array_equal(movement.direction_at([35 * PERIOD_S + 0.01]), [1])


def test_place_fields_found_per_direction():
    x = _laps()
    movement = track_movement(_signal(x))
    rng = np.random.default_rng(0)
    trains = _cells(x, movement, [10, 50, 80, None], [70, None, 20, 40], rng)
    right = place_fields(trains, movement, +1, n_position_bins=24)
    left = place_fields(trains, movement, -1, n_position_bins=24)
    assert isinstance(right, pd.DataFrame) and len(right) == 4
    np.testing.assert_allclose(right.field_position[:3], [10, 50, 80], atol=4)
    np.testing.assert_allclose(left.field_position[[0, 2, 3]], [70, 20, 40], atol=4)
    assert not right.has_field[3] and not left.has_field[1]
    assert right.n_events[3] == 0


def test_pattern_direction_votes_and_ties():
    x = _laps()
    movement = track_movement(_signal(x))
    right_times = np.array([20, 30, 40]) * PERIOD_S
    left_times = np.array([130, 140]) * PERIOD_S
    assert pattern_direction(np.r_[right_times, left_times], movement)[0] == 1
    assert pattern_direction(left_times, movement)[0] == -1
    direction, counts = pattern_direction(np.r_[right_times[:2], left_times, 85 * PERIOD_S], movement)
    assert direction == 0 and counts == {"increasing": 2, "decreasing": 2, "not running": 1}
    assert pattern_direction([], movement)[0] == 0


def test_order_test_detects_order_and_is_calibrated_under_the_null():
    rng = np.random.default_rng(1)
    positions = rng.uniform(0, 96, 30)
    lags = positions / 30 + rng.normal(0, 0.3, 30)
    forward = order_correlation_test(lags, positions, +1, n_permutations=2000, random_state=0)
    backward = order_correlation_test(lags, positions, -1, n_permutations=2000, random_state=0)
    assert forward.rho > 0.8 and forward.pvalue < 0.001
    assert backward.pvalue > 0.99  # the wrong predicted sign is not rewarded
    pvalues = [order_correlation_test(rng.normal(size=20), rng.normal(size=20), +1, n_permutations=200,
                                      random_state=seed).pvalue for seed in range(200)]
    assert 0.02 < np.mean(np.asarray(pvalues) < 0.1) < 0.2


def test_order_test_is_reproducible():
    a = order_correlation_test([1, 2, 3, 4], [2, 1, 4, 3], -1, n_permutations=100, random_state=3)
    b = order_correlation_test([1, 2, 3, 4], [2, 1, 4, 3], -1, n_permutations=100, random_state=3)
    assert a == b and a.n_neurons == 4 and a.expected_sign == -1


class _FakeResult:
    """The parts of a DetectionResult that place_field_order reads."""

    def __init__(self, n_neurons, patterns, occurrences):
        self.raster = type("R", (), {"n_neurons": n_neurons})()
        self.patterns = patterns
        self.occurrences = occurrences


def test_place_field_order_reads_direction_before_correlating():
    from convseq_neo.result import Pattern

    x = _laps(n_laps=8)
    movement = track_movement(_signal(x))
    rng = np.random.default_rng(2)
    centres = np.linspace(8, 88, 12)
    trains = _cells(x, movement, list(centres), list(centres), rng)
    members = np.arange(12)
    lags = (centres - centres.mean()) / 30 * pq.s  # increasing position -> later: a rightward pattern
    pattern = Pattern(0, members, tuple(map(str, members)), lags, np.ones(12), np.zeros(12),
                      np.full((12, 5), 0.2), 3)
    rightward = pd.DataFrame({"pattern": [0, 0, 0], "center": np.array([35, 235, 435]) * PERIOD_S})
    table = place_field_order(_FakeResult(12, [pattern], rightward), trains, movement, n_permutations=999,
                              random_state=0)
    row = table.iloc[0]
    assert row.direction == 1 and row.n_with_field == 12 and row.rho > 0.9 and row.pvalue < 0.01
    leftward = rightward.assign(center=np.array([135, 335, 535]) * PERIOD_S)
    row = place_field_order(_FakeResult(12, [pattern], leftward), trains, movement, n_permutations=999,
                            random_state=0).iloc[0]
    assert row.direction == -1 and row.rho > 0.9 and row.pvalue > 0.5  # order opposite to the prediction


@pytest.mark.parametrize(("call", "error", "name"), [
    (lambda m: track_movement(np.zeros(10)), TypeError, "position"),
    (lambda m: track_movement(neo.AnalogSignal(np.zeros((10, 2)), units="cm", sampling_rate=20 * pq.Hz)),
     ValueError, "one channel"),
    (lambda m: track_movement(_signal(_laps()), min_speed=5.0), TypeError, "min_speed"),
    (lambda m: track_movement(_signal(_laps()), min_speed=5 * pq.s), ValueError, "min_speed"),
    (lambda m: track_movement(_signal(_laps()), smoothing=0.2), TypeError, "smoothing"),
    (lambda m: place_fields([], "movement", 1), TypeError, "movement"),
    (lambda m: place_fields([], m, 0), ValueError, "direction"),
    (lambda m: place_fields([], m, 1, n_position_bins=0), ValueError, "n_position_bins"),
    (lambda m: order_correlation_test([1, 2], [1, 2], 1), ValueError, "at least 3"),
    (lambda m: order_correlation_test([1, 2, 3], [1, 2], 1), ValueError, "same length"),
    (lambda m: order_correlation_test([1, 1, 1], [1, 2, 3], 1), ValueError, "all equal"),
    (lambda m: order_correlation_test([1, 2, 3], [1, 2, 3], 2), ValueError, "expected_sign"),
])
def test_bad_arguments(call, error, name):
    movement = track_movement(_signal(_laps()))
    with pytest.raises(error, match=name):
        call(movement)
