"""Learned sequences against behaviour on a linear track: running direction, place fields, order tests.

A pattern learned without behavioural labels is a hypothesis about the recording; on a linear
track it predicts something testable. CA1 place cells fire at particular positions, and mostly
in one running direction, so a run produces a sequence whose order is the order of the place
fields along the track in that direction (Rubin et al. 2019; see the Method page of the
documentation, ``docs/method.md``, section 'The CA1 recording: facts an analysis must respect').
The functions here compute

- the animal's smoothed velocity and running direction (:func:`track_movement`),
- rate maps and place fields per running direction (:func:`rate_maps`, :func:`place_fields`),
- the direction a pattern belongs to, read from the velocity at its occurrences, never from the
  correlation it is then tested with (:func:`pattern_direction`),
- the rank correlation between members' learned lags and their place-field positions, with a
  one-sided label-permutation p-value in the sign the direction predicts
  (:func:`order_correlation_test`), and
- one row per pattern with all of the above (:func:`place_field_order`).

Direction ``+1`` means the position increases; members of a ``+1`` pattern should then fire in
increasing field position (positive correlation), those of a ``-1`` pattern in decreasing field
position (negative correlation).
"""

from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass

import neo
import numpy as np
import pandas as pd
import quantities as pq
from scipy.ndimage import gaussian_filter1d
from scipy.stats import rankdata

from convseq_neo._validation import check_positive_int, check_random_state, check_time_quantity
from convseq_neo.io.neo import as_spiketrains
from convseq_neo.raster import time_to_bin

logger = logging.getLogger(__name__)

__all__ = ["TrackMovement", "OrderTest", "track_movement", "rate_maps", "place_fields", "pattern_direction",
           "order_correlation_test", "place_field_order"]


@dataclass(frozen=True)
class TrackMovement:
    """The animal's position, smoothed velocity and running direction, one value per sample.

    Attributes
    ----------
    t_start_s, sampling_period_s : float
        Time of sample 0 and the sample spacing (s).
    position : numpy.ndarray
        Position per sample, in ``units``.
    velocity : numpy.ndarray
        Velocity of the smoothed position, in ``units`` per s.
    direction : numpy.ndarray of int8
        ``+1`` running towards larger positions, ``-1`` towards smaller, ``0`` below the minimum speed.
    units : str
        Position units (e.g. ``"cm"``).
    """

    t_start_s: float
    sampling_period_s: float
    position: np.ndarray
    velocity: np.ndarray
    direction: np.ndarray
    units: str

    @property
    def n_samples(self) -> int:
        """Number of samples."""
        return int(self.position.size)

    def sample_index(self, times_s) -> np.ndarray:
        """Sample holding each time (``[t_k, t_k + period)``, the raster's binning rule), clipped to the recording."""
        index = time_to_bin(times_s, self.t_start_s, self.sampling_period_s)
        return np.clip(index, 0, self.n_samples - 1)

    def direction_at(self, times_s) -> np.ndarray:
        """Running direction (+1, -1 or 0) at each time in seconds."""
        return self.direction[self.sample_index(times_s)]

    def velocity_at(self, times_s) -> np.ndarray:
        """Velocity (``units`` per s) at each time in seconds."""
        return self.velocity[self.sample_index(times_s)]


def track_movement(position: neo.AnalogSignal, *, smoothing: pq.Quantity = 0.25 * pq.s,
                   min_speed: pq.Quantity = 5 * pq.cm / pq.s) -> TrackMovement:
    """Velocity and running direction from a one-dimensional position signal.

    The position is smoothed with a Gaussian of standard deviation ``smoothing`` (tracking on a
    discretised track moves in steps); velocity is its time derivative; samples faster than
    ``min_speed`` get the sign of the velocity as their direction, the rest 0 (resting, turning).

    Parameters
    ----------
    position : neo.AnalogSignal
        One channel of position along the track, regularly sampled.
    smoothing : pq.Quantity, default 0.25 s
        Standard deviation of the Gaussian smoothing (0 for none).
    min_speed : pq.Quantity, default 5 cm/s
        Speed above which the animal counts as running; units of position per time.

    Returns
    -------
    TrackMovement

    Examples
    --------
    >>> import neo, numpy as np, quantities as pq
    >>> from convseq_neo.analysis.placefields import track_movement
    >>> x = np.concatenate([np.linspace(0, 90, 60), np.full(20, 90.0), np.linspace(90, 0, 60)])
    >>> signal = neo.AnalogSignal(x[:, None], units="cm", sampling_period=50 * pq.ms)
    >>> movement = track_movement(signal)
    >>> int(movement.direction[30]), int(movement.direction[70]), int(movement.direction[110])
    (1, 0, -1)
    """
    if not isinstance(position, neo.AnalogSignal):
        raise TypeError(f"position must be a neo.AnalogSignal, got {type(position).__name__}")
    if position.ndim != 2 or position.shape[1] != 1:
        raise ValueError(f"position must have exactly one channel, got shape {tuple(position.shape)}")
    if position.shape[0] < 3:
        raise ValueError(f"position must have at least 3 samples, got {position.shape[0]}")
    smoothing_s = float(check_time_quantity(smoothing, "smoothing", nonnegative=True).magnitude)
    if not isinstance(min_speed, pq.Quantity):
        raise TypeError("min_speed must be a pq.Quantity in position units per time, e.g. 5 * pq.cm / pq.s")
    speed_units = position.units / pq.s
    try:
        min_speed_value = float(min_speed.rescale(speed_units).magnitude)
    except ValueError as error:
        raise ValueError(f"min_speed must be in units of position per time ({speed_units.dimensionality}), "
                         f"got {min_speed.dimensionality}") from error
    if not np.isfinite(min_speed_value) or min_speed_value < 0:
        raise ValueError(f"min_speed must be finite and >= 0, got {min_speed}")
    values = np.asarray(position.magnitude, dtype=np.float64).ravel()
    if not np.all(np.isfinite(values)):
        raise ValueError("position holds NaN or infinite samples; fill or drop them first")
    period_s = float(position.sampling_period.rescale(pq.s).magnitude)
    smoothed = gaussian_filter1d(values, smoothing_s / period_s, mode="nearest") if smoothing_s > 0 else values
    velocity = np.gradient(smoothed) / period_s
    direction = np.where(velocity > min_speed_value, 1, np.where(velocity < -min_speed_value, -1, 0)).astype(np.int8)
    return TrackMovement(t_start_s=float(position.t_start.rescale(pq.s).magnitude), sampling_period_s=period_s,
                         position=values, velocity=velocity, direction=direction,
                         units=str(position.units.dimensionality))


def _check_direction(direction, name: str = "direction") -> int:
    if isinstance(direction, bool) or not isinstance(direction, numbers.Integral) or int(direction) not in (1, -1):
        raise ValueError(f"{name} must be +1 (increasing position) or -1 (decreasing), got {direction!r}")
    return int(direction)


def rate_maps(spiketrains, movement: TrackMovement, direction: int, *, n_position_bins: int = 24,
              smoothing_bins: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each neuron's firing rate along the track while the animal runs in one direction.

    The track (the range of ``movement.position``) is cut into ``n_position_bins`` equal bins; a
    neuron's map is its number of spikes per bin divided by the time spent there, both counted
    over the samples running in ``direction`` and both smoothed along the track with a Gaussian of
    ``smoothing_bins`` bins. Bins never visited in that direction have rate 0.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain, SpikeTrainList or neo.Segment
    movement : TrackMovement
    direction : {+1, -1}
    n_position_bins : int, default 24
    smoothing_bins : float, default 1.0

    Returns
    -------
    maps : numpy.ndarray, shape (n_neurons, n_position_bins)
        Rates in Hz.
    bin_centres : numpy.ndarray, shape (n_position_bins,)
        Position of each bin's centre, in ``movement.units``.
    n_events : numpy.ndarray of int, shape (n_neurons,)
        Spikes counted (those during runs in ``direction``).

    Examples
    --------
    >>> import neo, numpy as np, quantities as pq
    >>> from convseq_neo.analysis.placefields import rate_maps, track_movement
    >>> x = np.tile(np.concatenate([np.linspace(0, 96, 80), np.linspace(96, 0, 80)]), 5)
    >>> movement = track_movement(neo.AnalogSignal(x[:, None], units="cm", sampling_period=50 * pq.ms))
    >>> train = neo.SpikeTrain([1.0, 9.0, 17.0], units="s", t_stop=len(x) * 0.05)
    >>> maps, centres, n_events = rate_maps([train], movement, +1, n_position_bins=12)
    >>> maps.shape, float(centres[0]), n_events.tolist()
    ((1, 12), 4.0, [3])
    """
    if not isinstance(movement, TrackMovement):
        raise TypeError(f"movement must be a TrackMovement (from track_movement), got {type(movement).__name__}")
    direction = _check_direction(direction)
    n_position_bins = check_positive_int(n_position_bins, "n_position_bins")
    if not isinstance(smoothing_bins, numbers.Real) or not np.isfinite(smoothing_bins) or smoothing_bins < 0:
        raise ValueError(f"smoothing_bins must be a finite number >= 0, got {smoothing_bins!r}")
    trains = as_spiketrains(spiketrains)
    low, high = float(movement.position.min()), float(movement.position.max())
    if high <= low:
        raise ValueError("movement.position does not change: no track to place fields on")
    edges = np.linspace(low, high, n_position_bins + 1)
    position_bin = np.clip(np.searchsorted(edges, movement.position, side="right") - 1, 0, n_position_bins - 1)
    running = movement.direction == direction
    if not running.any():
        raise ValueError(f"the animal never runs in direction {direction:+d} faster than the minimum speed")
    occupancy_s = np.bincount(position_bin[running], minlength=n_position_bins) * movement.sampling_period_s
    counts = np.zeros((len(trains), n_position_bins))
    for row, train in enumerate(trains):
        times_s = train.times.rescale(pq.s).magnitude
        # spikes outside the tracked span have no position: leave them out (clipping would pile them on an end)
        end_s = movement.t_start_s + movement.n_samples * movement.sampling_period_s
        samples = movement.sample_index(times_s[(times_s >= movement.t_start_s) & (times_s < end_s)])
        samples = samples[running[samples]]
        counts[row] = np.bincount(position_bin[samples], minlength=n_position_bins)

    def smooth(values):
        return gaussian_filter1d(values, smoothing_bins, axis=-1, mode="nearest") if smoothing_bins > 0 else values

    maps = smooth(counts) / np.maximum(smooth(occupancy_s), 1e-12)
    maps[:, occupancy_s == 0] = 0.0
    return maps, (edges[:-1] + edges[1:]) / 2, counts.sum(axis=1).astype(np.int64)


def place_fields(spiketrains, movement: TrackMovement, direction: int, *, n_position_bins: int = 24,
                 smoothing_bins: float = 1.0, min_events: int = 3) -> pd.DataFrame:
    """Each neuron's place field while the animal runs in one direction.

    The field position is the centre of the bin where the neuron's :func:`rate_maps` map peaks.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain, SpikeTrainList or neo.Segment
        The neurons, in the order used for detection.
    movement : TrackMovement
        From :func:`track_movement`.
    direction : {+1, -1}
        Running direction.
    n_position_bins : int, default 24
    smoothing_bins : float, default 1.0
    min_events : int, default 3
        Neurons with fewer spikes during runs in ``direction`` get ``has_field = False``.

    Returns
    -------
    pandas.DataFrame
        One row per neuron: ``field_position`` (position units), ``peak_rate`` (Hz), ``n_events``
        (spikes during runs in ``direction``), ``has_field``.

    Examples
    --------
    >>> import neo, numpy as np, quantities as pq
    >>> from convseq_neo.analysis.placefields import place_fields, track_movement
    >>> x = np.tile(np.concatenate([np.linspace(0, 96, 80), np.linspace(96, 0, 80)]), 5)
    >>> position = neo.AnalogSignal(x[:, None], units="cm", sampling_period=50 * pq.ms)
    >>> runs_right = np.flatnonzero(np.diff(x, append=x[-1]) > 0)
    >>> at_20cm = runs_right[np.abs(x[runs_right] - 20) < 2] * 0.05
    >>> train = neo.SpikeTrain(at_20cm, units="s", t_stop=len(x) * 0.05)
    >>> fields = place_fields([train], track_movement(position), +1, n_position_bins=12)
    >>> float(fields.field_position[0])
    20.0
    """
    min_events = check_positive_int(min_events, "min_events")
    maps, centres, n_events = rate_maps(spiketrains, movement, direction, n_position_bins=n_position_bins,
                                        smoothing_bins=smoothing_bins)
    return pd.DataFrame({"field_position": centres[maps.argmax(axis=1)], "peak_rate": maps.max(axis=1),
                         "n_events": n_events, "has_field": n_events >= min_events})


def pattern_direction(occurrence_times_s, movement: TrackMovement) -> tuple[int, dict]:
    """The running direction a pattern belongs to: the one most of its run-time occurrences fall in.

    Parameters
    ----------
    occurrence_times_s : array_like
        Occurrence centres in seconds.
    movement : TrackMovement

    Returns
    -------
    direction : int
        ``+1``, ``-1``, or ``0`` when no occurrence falls during a run or both directions tie.
    counts : dict
        Number of occurrences running ``"increasing"``, ``"decreasing"`` and ``"not running"``.

    Examples
    --------
    >>> import neo, numpy as np, quantities as pq
    >>> from convseq_neo.analysis.placefields import pattern_direction, track_movement
    >>> x = np.concatenate([np.linspace(0, 90, 60), np.linspace(90, 0, 60)])
    >>> movement = track_movement(neo.AnalogSignal(x[:, None], units="cm", sampling_period=50 * pq.ms))
    >>> pattern_direction([1.0, 1.2, 4.5], movement)
    (1, {'increasing': 2, 'decreasing': 1, 'not running': 0})
    """
    if not isinstance(movement, TrackMovement):
        raise TypeError(f"movement must be a TrackMovement (from track_movement), got {type(movement).__name__}")
    times = np.asarray(occurrence_times_s, dtype=np.float64).ravel()
    directions = movement.direction_at(times) if times.size else np.zeros(0, dtype=np.int8)
    counts = {"increasing": int((directions == 1).sum()), "decreasing": int((directions == -1).sum()),
              "not running": int((directions == 0).sum())}
    if counts["increasing"] == counts["decreasing"]:
        return 0, counts
    return (1 if counts["increasing"] > counts["decreasing"] else -1), counts


@dataclass(frozen=True)
class OrderTest:
    """Rank correlation of learned lags with place-field positions and its permutation p-value.

    Attributes
    ----------
    rho : float
        Spearman rank correlation between lags and field positions.
    pvalue : float
        One-sided permutation p-value in the ``expected_sign`` direction:
        ``(1 + #{perm: sign * rho_perm >= sign * rho}) / (1 + n_permutations)``.
    n_neurons : int
        Neurons in the test.
    expected_sign : int
        ``+1`` or ``-1``.
    n_permutations : int
    """

    rho: float
    pvalue: float
    n_neurons: int
    expected_sign: int
    n_permutations: int


def order_correlation_test(lags, field_positions, expected_sign: int, *, n_permutations: int = 10_000,
                           random_state=None) -> OrderTest:
    """Spearman correlation of lags with field positions, tested by permuting the positions.

    Parameters
    ----------
    lags, field_positions : array_like
        One value per neuron (same length, at least 3).
    expected_sign : {+1, -1}
        The sign the hypothesis predicts; the p-value is one-sided in it.
    n_permutations : int, default 10000
    random_state : int, numpy.random.Generator or None

    Returns
    -------
    OrderTest

    Examples
    --------
    >>> from convseq_neo.analysis.placefields import order_correlation_test
    >>> test = order_correlation_test([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [5, 10, 12, 30, 31, 50], +1,
    ...                               n_permutations=999, random_state=0)
    >>> test.rho, test.pvalue < 0.01
    (1.0, True)
    """
    sign = _check_direction(expected_sign, "expected_sign")
    n_permutations = check_positive_int(n_permutations, "n_permutations")
    rng = check_random_state(random_state)
    x = np.asarray(lags, dtype=np.float64).ravel()
    y = np.asarray(field_positions, dtype=np.float64).ravel()
    if x.size != y.size:
        raise ValueError(f"lags and field_positions must have the same length, got {x.size} and {y.size}")
    if x.size < 3:
        raise ValueError(f"order_correlation_test needs at least 3 neurons, got {x.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("lags and field_positions must be finite")
    rx, ry = rankdata(x), rankdata(y)
    rx -= rx.mean()
    ry -= ry.mean()
    norm = np.sqrt((rx @ rx) * (ry @ ry))
    if norm == 0:
        raise ValueError("lags or field_positions are all equal: no rank correlation is defined")
    rho = float(rx @ ry / norm)
    null = rng.permuted(np.broadcast_to(ry, (n_permutations, ry.size)), axis=1) @ rx / norm
    pvalue = (1 + int(np.sum(sign * null >= sign * rho - 1e-12))) / (1 + n_permutations)
    return OrderTest(rho=rho, pvalue=float(pvalue), n_neurons=int(x.size), expected_sign=sign,
                     n_permutations=n_permutations)


def place_field_order(result, spiketrains, movement: TrackMovement, *, n_position_bins: int = 24,
                      min_events: int = 3, n_permutations: int = 10_000, random_state=None) -> pd.DataFrame:
    """One row per pattern: its running direction, and how its learned order follows the place fields.

    For each pattern of ``result``: the direction is read from the velocity at its occurrences
    (:func:`pattern_direction`), before any correlation is looked at; the members with a place
    field in that direction (:func:`place_fields`) are ranked by learned lag and by field
    position, and :func:`order_correlation_test` gives rho and the one-sided permutation p-value
    in the sign the direction predicts (``+1`` -> positive).

    Parameters
    ----------
    result : DetectionResult or MultiScaleResult
        From :func:`convseq_neo.detect` on ``spiketrains`` (with its time scale given or
        searched).
    spiketrains : list of neo.SpikeTrain, SpikeTrainList or neo.Segment
        The trains the patterns were learned on, same order.
    movement : TrackMovement
    n_position_bins, min_events : int
        Passed to :func:`place_fields`.
    n_permutations : int, default 10000
    random_state : int, numpy.random.Generator or None

    Returns
    -------
    pandas.DataFrame
        Columns ``pattern``, ``direction``, ``n_members``, ``n_with_field``, ``n_occurrences``,
        ``n_increasing``, ``n_decreasing``, ``n_not_running``, ``rho``, ``pvalue``. ``rho`` and
        ``pvalue`` are NaN where the direction is undecided, fewer than 3 members have a field, or
        their lags or field positions are all equal.

    Examples
    --------
    >>> import quantities as pq
    >>> from convseq_neo import detect
    >>> from convseq_neo.io.datasets import load_rubin_ca1
    >>> from convseq_neo.analysis.placefields import place_field_order, track_movement
    >>> segment = load_rubin_ca1()  # doctest: +SKIP
    >>> result = detect(segment, bin_size=50 * pq.ms, width=3 * pq.s, n_patterns=2)  # doctest: +SKIP
    >>> movement = track_movement(segment.analogsignals[0])  # doctest: +SKIP
    >>> place_field_order(result, segment, movement, random_state=0)  # doctest: +SKIP
    """
    if not isinstance(movement, TrackMovement):
        raise TypeError(f"movement must be a TrackMovement (from track_movement), got {type(movement).__name__}")
    trains = as_spiketrains(spiketrains)
    names = getattr(result, "unit_names", None)
    n_neurons = len(names) if names is not None else result.raster.n_neurons
    if len(trains) != n_neurons:
        raise ValueError(f"spiketrains holds {len(trains)} neurons but result was computed on {n_neurons}")
    rng = check_random_state(random_state)
    fields = {}
    rows = []
    for pattern in result.patterns:
        times = result.occurrences.loc[result.occurrences["pattern"] == pattern.pattern_id, "center"].to_numpy()
        direction, counts = pattern_direction(times, movement)
        row = {"pattern": pattern.pattern_id, "direction": direction, "n_members": pattern.size,
               "n_with_field": 0, "n_occurrences": int(times.size), "n_increasing": counts["increasing"],
               "n_decreasing": counts["decreasing"], "n_not_running": counts["not running"],
               "rho": np.nan, "pvalue": np.nan}
        if direction != 0:
            if direction not in fields:
                fields[direction] = place_fields(trains, movement, direction, n_position_bins=n_position_bins,
                                                 min_events=min_events)
            table = fields[direction].iloc[pattern.neurons]
            with_field = table["has_field"].to_numpy()
            row["n_with_field"] = int(with_field.sum())
            lags = np.asarray(pattern.lags.magnitude)[with_field]
            positions = table["field_position"].to_numpy()[with_field]
            # tied lags or fields (all equal) define no rank correlation: rho and p stay NaN
            if with_field.sum() >= 3 and np.ptp(lags) > 0 and np.ptp(positions) > 0:
                test = order_correlation_test(lags, positions, direction, n_permutations=n_permutations,
                                              random_state=rng)
                row["rho"], row["pvalue"] = test.rho, test.pvalue
        rows.append(row)
    return pd.DataFrame(rows)
