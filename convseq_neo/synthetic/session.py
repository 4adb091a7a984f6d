"""A Neuropixels-sized synthetic session: hundreds of units, tens of minutes, one planted sequence.

:func:`session_recording` makes the recording of the end-to-end benchmark
(``benchmarks/bench_session.py``): independent homogeneous Poisson trains whose rates are
log-normal across units (as in cortical recordings: a median of a few Hz, a long tail of fast
units), with one sequence of ``n_members`` units added on top at random times. Everything is drawn
in a few vectorised numpy calls (spike counts with ``Generator.poisson``, then uniform times), so a
300-unit, 30-minute session (about 3 million spikes) takes a few seconds.

Conventions are those of :mod:`convseq_neo.synthetic.generate`: times in seconds, a member's
*onset lag* is its time relative to the occurrence onset (the first member at 0) and its *lag* is
its time relative to the occurrence **centre** (the onset lags minus their mean; they sum to zero).
The centre is ``onset + mean(onset lags)``, averaged over all members whether or not they fired;
participation and jitter act on the spikes, never on the occurrence times.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import neo
import numpy as np
import quantities as pq

from convseq_neo._validation import (
    check_nonnegative_float,
    check_positive_int,
    check_probability,
    check_random_state,
    check_time_quantity,
)

logger = logging.getLogger(__name__)

__all__ = ["SessionRecording", "session_recording"]


@dataclass(frozen=True, eq=False)
class SessionRecording:
    """A synthetic session from :func:`session_recording` and its exact ground truth.

    Attributes
    ----------
    spiketrains : list of neo.SpikeTrain
        One train per unit, in seconds over ``[0, duration)``, named ``unit{i}`` and annotated with
        ``unit_id`` (int) and ``rate_hz`` (the unit's background rate, float). Background and
        planted spikes together, sorted.
    centres : numpy.ndarray of float
        Occurrence centres in seconds (``onset + mean(onset_lags_s)``), sorted; empty without a
        planted sequence.
    onsets_s : numpy.ndarray of float
        Occurrence onsets in seconds (the first member's noise-free time), sorted.
    members : numpy.ndarray of int
        Member units in sequence order (empty without a planted sequence).
    lags_s : numpy.ndarray of float
        Per member, its noise-free time relative to the occurrence centre (they sum to zero):
        member ``k`` fires at ``centre + lags_s[k]`` plus jitter.
    onset_lags_s : numpy.ndarray of float
        Per member, its noise-free time relative to the onset: ``k * lag_step``.
    rates_hz : numpy.ndarray of float
        Background rate of each unit (Hz), after clipping to ``rate_range``.
    planted_unit, planted_occurrence, planted_member : numpy.ndarray of int
        One entry per planted spike that was kept (inside the recording): its unit, the row of its
        occurrence in :attr:`centres` and the member's position in :attr:`members`.
    planted_times_s : numpy.ndarray of float
        The time of each planted spike (s).
    n_spikes : int
        Spikes in all trains (background plus planted).
    duration_s : float
        Length of the recording (s); every train spans ``[0, duration_s)``.
    """

    spiketrains: list[neo.SpikeTrain]
    centres: np.ndarray
    onsets_s: np.ndarray
    members: np.ndarray
    lags_s: np.ndarray
    onset_lags_s: np.ndarray
    rates_hz: np.ndarray
    planted_unit: np.ndarray
    planted_occurrence: np.ndarray
    planted_member: np.ndarray
    planted_times_s: np.ndarray
    n_spikes: int
    duration_s: float

    @property
    def n_units(self) -> int:
        """Number of units (spike trains)."""
        return len(self.spiketrains)

    @property
    def n_occurrences(self) -> int:
        """Number of planted occurrences."""
        return int(self.centres.size)

    def __repr__(self) -> str:
        return (f"SessionRecording({self.n_units} units, {self.duration_s:g} s, {self.n_spikes} spikes, "
                f"{self.members.size} members, {self.n_occurrences} occurrences)")


def _check_frequency(value, name: str) -> float:
    """A scalar frequency Quantity, returned in Hz (finite, >= 0)."""
    if not isinstance(value, pq.Quantity):
        raise TypeError(f"{name} must be a quantities.Quantity in Hz (e.g. 4 * pq.Hz), got {type(value).__name__}")
    if value.dimensionality.simplified != pq.Hz.dimensionality.simplified:
        raise ValueError(f"{name} must have units of frequency (Hz), got units '{value.dimensionality}'")
    if value.size != 1:
        raise ValueError(f"{name} must be a scalar frequency, got shape {value.shape}")
    hz = float(np.asarray(value.rescale(pq.Hz).magnitude).reshape(-1)[0])
    if not np.isfinite(hz) or hz < 0:
        raise ValueError(f"{name} must be a finite, non-negative frequency, got {value}")
    return hz


def _check_rate_range(rate_range) -> tuple[float, float]:
    if isinstance(rate_range, (str, bytes, pq.Quantity)) or not isinstance(rate_range, (tuple, list)):
        raise TypeError(f"rate_range must be a (low, high) pair of frequency Quantities, got "
                        f"{type(rate_range).__name__}")
    if len(rate_range) != 2:
        raise ValueError(f"rate_range must be a (low, high) pair, got {len(rate_range)} entries")
    low = _check_frequency(rate_range[0], "rate_range[0]")
    high = _check_frequency(rate_range[1], "rate_range[1]")
    if high <= 0 or low > high:
        raise ValueError(f"rate_range must satisfy 0 <= low <= high and high > 0, got ({low} Hz, {high} Hz)")
    return low, high


def session_recording(n_units: int = 300, duration: pq.Quantity = 30 * pq.min, *,
                      median_rate: pq.Quantity = 4 * pq.Hz, rate_sigma: float = 0.8,
                      rate_range: tuple[pq.Quantity, pq.Quantity] = (0.2 * pq.Hz, 40 * pq.Hz),
                      n_members: int = 30, lag_step: pq.Quantity = 20 * pq.ms, participation: float = 0.7,
                      jitter: pq.Quantity = 5 * pq.ms, n_occurrences: int = 90, min_gap: pq.Quantity = 1.5 * pq.s,
                      plant: bool = True, random_state=None) -> SessionRecording:
    """A Neuropixels-sized session: log-normal Poisson background plus one planted sequence.

    Background: ``n_units`` independent homogeneous Poisson trains over ``[0, duration)``; unit
    ``i``'s rate is ``median_rate * exp(rate_sigma * z_i)`` with ``z_i`` standard normal, clipped
    to ``rate_range``. Sequence (with ``plant=True``): ``n_members`` distinct units drawn at random,
    in random order; in each of ``n_occurrences`` occurrences member ``k`` fires at
    ``onset + k * lag_step`` plus Gaussian jitter (sd ``jitter``), each member spike kept
    independently with probability ``participation``. Planted spikes are added to the background
    (spikes jittered outside ``[0, duration)`` are dropped). Onsets are uniformly random with
    consecutive onsets at least ``min_gap`` apart, and every occurrence (onset to last member
    lag) lies inside the recording.

    Parameters
    ----------
    n_units : int, default 300
        Number of units (spike trains).
    duration : pq.Quantity, default 30 min
        Length of the recording.
    median_rate : pq.Quantity, default 4 Hz
        Median of the log-normal rate distribution.
    rate_sigma : float, default 0.8
        Standard deviation of the log rates (natural log); 0 gives every unit ``median_rate``.
    rate_range : (pq.Quantity, pq.Quantity), default (0.2 Hz, 40 Hz)
        Rates are clipped to ``[low, high]``.
    n_members : int, default 30
        Units in the sequence (at most ``n_units``).
    lag_step : pq.Quantity, default 20 ms
        Time between consecutive members.
    participation : float, default 0.7
        Probability that a member fires in an occurrence.
    jitter : pq.Quantity, default 5 ms
        Standard deviation of the Gaussian jitter of each planted spike.
    n_occurrences : int, default 90
        Number of occurrences (0 is allowed).
    min_gap : pq.Quantity, default 1.5 s
        Least time from one onset to the next.
    plant : bool, default True
        Whether to plant the sequence at all; ``False`` gives a background-only recording with
        empty truth (the background drawn for a seed need not match the planted one's).
    random_state : None, int or numpy.random.Generator
        Source of all randomness; the global numpy state is never used.

    Returns
    -------
    SessionRecording
        The trains and the ground truth (centres, members, lags, rates, every planted spike).

    Raises
    ------
    TypeError
        An argument of the wrong type (a float instead of a Quantity, a non-int count, ...);
        the message names it.
    ValueError
        A bad value (non-positive duration, ``n_members > n_units``, a rate range with
        ``low > high``, more occurrences than fit in the recording at ``min_gap`` apart, ...).

    Examples
    --------
    >>> import quantities as pq
    >>> session = session_recording(20, 20 * pq.s, n_members=5, n_occurrences=5, random_state=0)
    >>> session
    SessionRecording(20 units, 20 s, ... spikes, 5 members, 5 occurrences)
    >>> len(session.spiketrains), session.spiketrains[0].name, float(session.spiketrains[0].t_stop)
    (20, 'unit0', 20.0)
    >>> bool(np.all(np.diff(session.centres) >= 1.5))
    True
    >>> session.lags_s.round(3).tolist()
    [-0.04, -0.02, 0.0, 0.02, 0.04]
    >>> session_recording(20, 20 * pq.s, plant=False, random_state=0).centres.size
    0
    """
    n_units = check_positive_int(n_units, "n_units")
    duration_s = float(check_time_quantity(duration, "duration", positive=True).magnitude)
    median_hz = _check_frequency(median_rate, "median_rate")
    if median_hz <= 0:
        raise ValueError(f"median_rate must be positive, got {median_rate}")
    sigma = check_nonnegative_float(rate_sigma, "rate_sigma")
    low_hz, high_hz = _check_rate_range(rate_range)
    n_members = check_positive_int(n_members, "n_members")
    step_s = float(check_time_quantity(lag_step, "lag_step", nonnegative=True).magnitude)
    participation = check_probability(participation, "participation")
    jitter_s = float(check_time_quantity(jitter, "jitter", nonnegative=True).magnitude)
    n_occurrences = check_positive_int(n_occurrences, "n_occurrences", minimum=0)
    gap_s = float(check_time_quantity(min_gap, "min_gap", nonnegative=True).magnitude)
    if not isinstance(plant, (bool, np.bool_)):
        raise TypeError(f"plant must be a bool, got {type(plant).__name__}")
    plant = bool(plant)
    span_s = (n_members - 1) * step_s
    if plant:
        if n_members > n_units:
            raise ValueError(f"n_members ({n_members}) must be at most n_units ({n_units})")
        if span_s > duration_s:
            raise ValueError(f"the sequence ((n_members - 1) * lag_step = {span_s:g} s) must fit in duration "
                             f"({duration_s:g} s)")
        if n_occurrences > 1 and (n_occurrences - 1) * gap_s > duration_s - span_s:
            raise ValueError(f"n_occurrences ({n_occurrences}) at least min_gap ({gap_s:g} s) apart do not fit in "
                             f"duration ({duration_s:g} s) with a sequence span of {span_s:g} s; at most "
                             f"{int((duration_s - span_s) // gap_s) + 1 if gap_s > 0 else n_occurrences} fit")
    rng = check_random_state(random_state)

    # background: counts per unit, then uniform times (one draw for all units)
    rates = np.clip(median_hz * np.exp(sigma * rng.standard_normal(n_units)), low_hz, high_hz)
    counts = rng.poisson(rates * duration_s)
    times = rng.uniform(0.0, duration_s, int(counts.sum()))
    units = np.repeat(np.arange(n_units, dtype=np.int64), counts)

    empty_int = np.zeros(0, dtype=np.int64)
    members, onset_lags, onsets = empty_int, np.zeros(0), np.zeros(0)
    planted_unit, planted_occ, planted_member, planted_times = empty_int, empty_int, empty_int, np.zeros(0)
    if plant:
        members = rng.permutation(n_units)[:n_members].astype(np.int64)
        onset_lags = np.arange(n_members, dtype=float) * step_s
        # n sorted uniforms on the slack, then spread by i * min_gap: consecutive onsets >= min_gap apart
        slack = duration_s - span_s - max(n_occurrences - 1, 0) * gap_s
        onsets = np.sort(rng.uniform(0.0, slack, n_occurrences)) + np.arange(n_occurrences) * gap_s
        occ, member = np.divmod(np.arange(n_occurrences * n_members, dtype=np.int64), n_members)
        keep = rng.random(occ.size) < participation
        spike_times = onsets[occ] + onset_lags[member] + jitter_s * rng.standard_normal(occ.size)
        keep &= (spike_times >= 0.0) & (spike_times < duration_s)
        planted_occ, planted_member, planted_times = occ[keep], member[keep], spike_times[keep]
        planted_unit = members[planted_member]
        times = np.concatenate([times, planted_times])
        units = np.concatenate([units, planted_unit])
        counts = counts + np.bincount(planted_unit, minlength=n_units)

    order = np.lexsort((times, units))
    times = times[order]
    bounds = np.concatenate([[0], np.cumsum(counts)])
    trains = [neo.SpikeTrain(times[bounds[i]:bounds[i + 1]], t_stop=duration_s, units="s", t_start=0.0,
                             name=f"unit{i}", unit_id=i, rate_hz=float(rates[i]))
              for i in range(n_units)]
    centre_offset = float(onset_lags.mean()) if onset_lags.size else 0.0
    session = SessionRecording(
        spiketrains=trains, centres=onsets + centre_offset, onsets_s=onsets, members=members,
        lags_s=onset_lags - centre_offset, onset_lags_s=onset_lags, rates_hz=rates, planted_unit=planted_unit,
        planted_occurrence=planted_occ, planted_member=planted_member, planted_times_s=planted_times,
        n_spikes=int(times.size), duration_s=duration_s)
    logger.debug("session_recording: %d units, %g s, %d spikes (%d planted in %d occurrences)", n_units, duration_s,
                 session.n_spikes, planted_times.size, onsets.size)
    return session

