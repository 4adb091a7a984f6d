"""Tests for convseq_neo.synthetic.session: the Neuropixels-sized synthetic session."""

from __future__ import annotations

import neo
import numpy as np
import pytest
import quantities as pq

from convseq_neo.synthetic import SessionRecording, session_recording


@pytest.fixture(scope="module")
def session() -> SessionRecording:
    return session_recording(n_units=80, duration=2 * pq.min, n_members=12, n_occurrences=40, random_state=7)


@pytest.fixture(scope="module")
def exact() -> SessionRecording:
    """Every member fires, without jitter: planted spikes land exactly at onset + k * lag_step."""
    return session_recording(n_units=40, duration=60 * pq.s, n_members=10, participation=1.0, jitter=0 * pq.ms,
                             n_occurrences=20, random_state=3)


# ------------------------------------------------------------------ shapes and types
def test_shapes_and_types(session):
    assert isinstance(session, SessionRecording)
    assert len(session.spiketrains) == session.n_units == 80
    assert session.duration_s == 120.0
    assert session.rates_hz.shape == (80,)
    assert session.members.shape == (12,) and session.members.dtype == np.int64
    assert np.unique(session.members).size == 12 and session.members.min() >= 0 and session.members.max() < 80
    assert session.lags_s.shape == session.onset_lags_s.shape == (12,)
    assert session.centres.shape == session.onsets_s.shape == (40,) and session.n_occurrences == 40
    assert session.n_spikes == sum(len(train) for train in session.spiketrains)
    assert isinstance(session.n_spikes, int) and isinstance(session.duration_s, float)
    for index, train in enumerate(session.spiketrains):
        assert isinstance(train, neo.SpikeTrain)
        assert str(train.units.dimensionality) == "s"
        assert float(train.t_start) == 0.0 and float(train.t_stop) == 120.0
        assert train.name == f"unit{index}"
        assert train.annotations["unit_id"] == index
        assert train.annotations["rate_hz"] == pytest.approx(session.rates_hz[index])
        times = train.magnitude
        assert np.all(np.diff(times) >= 0)
        assert times.size == 0 or (times[0] >= 0 and times[-1] < 120.0)
    with pytest.raises(AttributeError):  # frozen
        session.n_spikes = 0


def test_lags_and_centres(session):
    np.testing.assert_allclose(session.onset_lags_s, np.arange(12) * 0.02)
    np.testing.assert_allclose(session.lags_s.sum(), 0.0, atol=1e-12)
    np.testing.assert_allclose(session.centres, session.onsets_s + session.onset_lags_s.mean())
    np.testing.assert_allclose(session.centres[:, None] + session.lags_s[None, :],
                               session.onsets_s[:, None] + session.onset_lags_s[None, :])


# ------------------------------------------------------------------ rates
def test_rates_log_normal_clipped_to_range():
    session = session_recording(n_units=4000, duration=2 * pq.s, plant=False, random_state=0)
    rates = session.rates_hz
    assert rates.min() >= 0.2 and rates.max() <= 40.0
    assert np.median(rates) == pytest.approx(4.0, rel=0.08)
    assert np.std(np.log(rates)) == pytest.approx(0.8, rel=0.1)
    narrow = session_recording(n_units=500, duration=2 * pq.s, rate_range=(3 * pq.Hz, 5 * pq.Hz), plant=False,
                               random_state=0)
    assert narrow.rates_hz.min() >= 3.0 and narrow.rates_hz.max() <= 5.0
    constant = session_recording(n_units=10, duration=2 * pq.s, rate_sigma=0.0, plant=False, random_state=0)
    np.testing.assert_allclose(constant.rates_hz, 4.0)


def test_spike_counts_follow_the_rates():
    session = session_recording(n_units=200, duration=100 * pq.s, plant=False, random_state=1)
    counts = np.array([len(train) for train in session.spiketrains])
    expected = session.rates_hz * 100.0
    # the total is Poisson with mean sum(expected): within 5 standard deviations
    assert abs(counts.sum() - expected.sum()) < 5 * np.sqrt(expected.sum())


# ------------------------------------------------------------------ occurrences
def test_occurrences_at_least_min_gap_apart_and_inside(session):
    assert np.all(np.diff(session.onsets_s) >= 1.5 - 1e-12)
    assert session.onsets_s.min() >= 0.0
    assert session.onsets_s.max() + session.onset_lags_s[-1] <= session.duration_s
    dense = session_recording(n_units=30, duration=40 * pq.s, n_members=10, n_occurrences=25, min_gap=1.5 * pq.s,
                              random_state=2)
    assert np.all(np.diff(dense.onsets_s) >= 1.5 - 1e-12)


def test_planted_spikes_present_at_their_lags(exact):
    truth = exact.onsets_s[:, None] + exact.onset_lags_s[None, :]  # occurrence x member
    assert len(exact.planted_times_s) == exact.n_occurrences * exact.members.size  # participation 1, no jitter
    np.testing.assert_array_equal(exact.planted_unit, exact.members[exact.planted_member])
    np.testing.assert_allclose(exact.planted_times_s, truth[exact.planted_occurrence, exact.planted_member])
    for k, unit in enumerate(exact.members):
        times = exact.spiketrains[unit].magnitude
        # every occurrence has this member's spike exactly at onset + k * lag_step
        assert np.all(np.isin(truth[:, k], times))


def test_participation_and_jitter(session):
    planted = session.planted_times_s
    expected = session.onsets_s[session.planted_occurrence] + session.onset_lags_s[session.planted_member]
    errors = planted - expected
    assert np.std(errors) == pytest.approx(0.005, rel=0.2)
    fraction = planted.size / (session.n_occurrences * session.members.size)
    assert fraction == pytest.approx(0.7, abs=0.08)
    for unit, time in zip(session.planted_unit[:50], planted[:50]):
        assert np.any(session.spiketrains[unit].magnitude == time)


def test_plant_false_gives_no_truth():
    session = session_recording(n_units=20, duration=20 * pq.s, plant=False, random_state=0)
    assert session.centres.size == session.onsets_s.size == session.members.size == 0
    assert session.lags_s.size == 0 and session.planted_times_s.size == 0 and session.n_occurrences == 0
    assert session.n_spikes == sum(len(train) for train in session.spiketrains) > 0
    # n_members > n_units and occurrences that would not fit matter only when planting
    session_recording(n_units=5, duration=1 * pq.s, n_members=30, plant=False, random_state=0)


def test_zero_occurrences():
    session = session_recording(n_units=20, duration=20 * pq.s, n_members=5, n_occurrences=0, random_state=0)
    assert session.centres.size == 0 and session.members.size == 5 and session.planted_times_s.size == 0


# ------------------------------------------------------------------ randomness
def test_same_seed_same_session():
    first = session_recording(n_units=30, duration=30 * pq.s, n_members=8, n_occurrences=10, random_state=5)
    second = session_recording(n_units=30, duration=30 * pq.s, n_members=8, n_occurrences=10,
                               random_state=np.random.default_rng(5))
    other = session_recording(n_units=30, duration=30 * pq.s, n_members=8, n_occurrences=10, random_state=6)
    for a, b in zip(first.spiketrains, second.spiketrains):
        np.testing.assert_array_equal(a.magnitude, b.magnitude)
    np.testing.assert_array_equal(first.centres, second.centres)
    np.testing.assert_array_equal(first.members, second.members)
    np.testing.assert_array_equal(first.rates_hz, second.rates_hz)
    assert first.n_spikes == second.n_spikes
    assert not np.array_equal(first.centres, other.centres)


def test_global_random_state_untouched():
    before = np.random.get_state()  # noqa: NPY002 - reading the legacy global state is the point
    session_recording(n_units=10, duration=10 * pq.s, n_members=3, n_occurrences=2, random_state=None)
    after = np.random.get_state()  # noqa: NPY002
    np.testing.assert_array_equal(after[1], before[1])
    assert after[2:] == before[2:]


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize(("kwargs", "error", "name"), [
    ({"n_units": 0}, ValueError, "n_units"),
    ({"n_units": 3.0}, TypeError, "n_units"),
    ({"n_units": True}, TypeError, "n_units"),
    ({"duration": 10.0}, TypeError, "duration"),
    ({"duration": 0 * pq.s}, ValueError, "duration"),
    ({"duration": 10 * pq.Hz}, ValueError, "duration"),
    ({"median_rate": 4.0}, TypeError, "median_rate"),
    ({"median_rate": 4 * pq.s}, ValueError, "median_rate"),
    ({"median_rate": 0 * pq.Hz}, ValueError, "median_rate"),
    ({"rate_sigma": -0.1}, ValueError, "rate_sigma"),
    ({"rate_sigma": "wide"}, TypeError, "rate_sigma"),
    ({"rate_range": (5 * pq.Hz, 1 * pq.Hz)}, ValueError, "rate_range"),
    ({"rate_range": (0.2, 40)}, TypeError, "rate_range"),
    ({"rate_range": (1 * pq.Hz,)}, ValueError, "rate_range"),
    ({"rate_range": 5 * pq.Hz}, TypeError, "rate_range"),
    ({"n_members": 0}, ValueError, "n_members"),
    ({"n_members": 50}, ValueError, "n_members"),
    ({"lag_step": 20}, TypeError, "lag_step"),
    ({"lag_step": -1 * pq.ms}, ValueError, "lag_step"),
    ({"participation": 1.5}, ValueError, "participation"),
    ({"participation": "all"}, TypeError, "participation"),
    ({"jitter": -1 * pq.ms}, ValueError, "jitter"),
    ({"jitter": 5}, TypeError, "jitter"),
    ({"n_occurrences": -1}, ValueError, "n_occurrences"),
    ({"n_occurrences": 2.5}, TypeError, "n_occurrences"),
    ({"n_occurrences": 100}, ValueError, "n_occurrences"),
    ({"min_gap": 1.5}, TypeError, "min_gap"),
    ({"min_gap": -1 * pq.s}, ValueError, "min_gap"),
    ({"plant": 1}, TypeError, "plant"),
    ({"random_state": "seed"}, TypeError, "random_state"),
    ({"random_state": -1}, ValueError, "random_state"),
    ({"duration": 100 * pq.ms}, ValueError, "duration"),  # the sequence does not fit
])
def test_bad_arguments_name_the_argument(kwargs, error, name):
    options = {"n_units": 40, "duration": 60 * pq.s, "n_members": 10, "n_occurrences": 10} | kwargs
    with pytest.raises(error, match=name):
        session_recording(**options)


def test_repr(session):
    assert repr(session) == (f"SessionRecording(80 units, 120 s, {session.n_spikes} spikes, 12 members, "
                             "40 occurrences)")
