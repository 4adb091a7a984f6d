"""Recordings with nothing planted: the null suite behind every false-rate claim.

Each recording holds **no repeating sequence by construction**, so every significant occurrence
:func:`convseq_neo.detect` reports on it is a false one. The project's false-rate claim is checked
on this suite: *at most 1 significant occurrence in total over seeds 0-4 for each kind*
(``benchmarks/bench_null.py`` runs it). The kinds cover the ways a real recording departs from a
stationary Poisson background: shared slow rate changes (up/down states), silent stretches inside
the window, a window that runs past the last spike, gaps declared in an NWB file's
``obs_intervals``, and the real CA1 recording with its sequences broken two ways.

Every recording is made from its ``seed`` alone (same seed, identical spikes): the randomness
comes from ``numpy.random.default_rng(seed)``, never from the global state.

Kinds
-----
================== ====================================================================================
kind               rule (window, bin, width)
================== ====================================================================================
stationary         60 independent homogeneous Poisson trains on [0, 300) s; neuron ``i``'s rate is
                   drawn uniform in [1, 3) Hz (``rng.uniform(1, 3, 60)``, then the spikes from the
                   same generator, :func:`~convseq_neo.synthetic.generate.poisson_background`).
                   Window 0-300 s, bin 5 ms, width 0.3 s.
up_states          The same 60 rates (the first draw of the same generator), times 3 during up-periods
                   shared by all neurons. Up/down rule: starting at -100 s in a down period (a burn-in,
                   so that 0 s falls at an effectively random phase), down and up periods alternate,
                   down lengths uniform in [13.42, 40.25) s (mean 26.83 s = 11.5 x 7/3), up lengths
                   uniform in [8, 15) s (mean 11.5 s); periods are clipped to [0, 300). Long-run up
                   fraction 11.5 / (11.5 + 26.83) = 0.3. Spikes: an inhomogeneous Poisson process with
                   the piecewise-constant rate (Poisson count per piece, uniform times within it).
                   Window 0-300 s, bin 5 ms, width 0.3 s; the periods are in ``up_periods``.
silent_gap         The stationary recording of the same seed with every spike in [130, 170) s
                   removed (all neurons silent for 40 s in the middle). Window 0-300 s, bin 5 ms,
                   width 0.3 s.
padded_end         The stationary recording of the same seed with every spike at or after 240 s
                   removed, the window still 0-300 s (60 s of silence at the end). Bin 5 ms, width 0.3 s.
nwb_gap            The silent_gap spikes written to an NWB file (``null_nwb_gap_seed{seed}.nwb`` in
                   ``directory``), every unit with ``obs_intervals`` [[0, 130], [170, 300]] s.
                   ``spiketrains`` is None: :meth:`NullRecording.load` reads the file with
                   :func:`convseq_neo.io.nwb.read_units`, whose window (0-300 s) comes from the
                   ``obs_intervals``. Bin 5 ms, width 0.3 s.
ca1_dithered       The real CA1 recording (:func:`~convseq_neo.io.datasets.load_rubin_ca1`, 452 neurons,
                   50 ms frames, 0-906.85 s) with every spike moved by an independent offset drawn
                   uniform in the integers -60..60 frames (+-3 s), reflected at the first and last
                   frame (a move to frame ``-f`` lands on ``f``, to ``n - 1 + f`` on ``n - 1 - f``), so
                   every spike stays on a frame start inside the window and moves by at most 60 frames.
                   Keeps the run/rest rate modulation, breaks any sequence. Spikes are sorted again;
                   the array annotation ``original_time`` (s) is each spike's time before the move.
                   Two events of a neuron can land on one frame (about 33 of 16,982 events), a count
                   of 2 in the 0/1 raster. Bin = the frame (50 ms), width 60 frames (3 s).
ca1_isi_shuffled   The real CA1 recording with each neuron's inter-spike intervals shuffled exactly as
                   the benchmarks make their "ISI-shuffled CA1" background:
                   ``shuffle_isis_raster(to_raster(trains, 50 ms).to_dense().astype(int64),
                   random_state=seed)`` (:func:`~convseq_neo.synthetic.generate.shuffle_isis_raster`),
                   each shuffled event put back at its frame start. Bin = the frame, width 60 frames.
================== ====================================================================================

The synthetic kinds of one seed are paired: stationary, silent_gap, padded_end and nwb_gap share the
same spikes outside their silent stretches, and up_states shares their rates.

Spike trains are in s with ``t_start``/``t_stop`` the window; each carries the annotations
``null_kind`` and ``null_seed`` (and keeps its source's name and annotations: ``unit{i}`` /
``unit_id`` for the synthetic kinds, ``neuron {i}`` / ``frame_s`` ... for CA1).
"""

from __future__ import annotations

import datetime
import logging
import numbers
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import neo
import numpy as np
import quantities as pq

from convseq_neo.synthetic.generate import poisson_background, shuffle_isis_raster

logger = logging.getLogger(__name__)

__all__ = ["NULL_KINDS", "NullRecording", "null_recording", "null_suite"]

#: The kinds of null recording, in the order :func:`null_suite` runs them.
NULL_KINDS: tuple[str, ...] = ("stationary", "up_states", "silent_gap", "padded_end", "nwb_gap", "ca1_dithered",
                               "ca1_isi_shuffled")

# synthetic kinds ---------------------------------------------------------------------------
N_NEURONS = 60
DURATION_S = 300.0
RATE_RANGE_HZ = (1.0, 3.0)
SYNTHETIC_BIN = 5 * pq.ms
SYNTHETIC_WIDTH = 300 * pq.ms
#: up_states: rate factor, up-period lengths (s), long-run up fraction and burn-in before 0 s.
UP_FACTOR = 3.0
UP_LENGTH_S = (8.0, 15.0)
UP_FRACTION = 0.3
_MEAN_UP_S = 0.5 * (UP_LENGTH_S[0] + UP_LENGTH_S[1])
_MEAN_DOWN_S = _MEAN_UP_S * (1.0 - UP_FRACTION) / UP_FRACTION
DOWN_LENGTH_S = (0.5 * _MEAN_DOWN_S, 1.5 * _MEAN_DOWN_S)
UP_BURN_IN_S = 100.0
#: silent_gap / nwb_gap: the silent stretch (s); padded_end: where the spikes end (s).
GAP_S = (130.0, 170.0)
PADDED_END_S = 240.0
# CA1 kinds -----------------------------------------------------------------------------------
#: Filter width and dither half-width of the CA1 kinds, in frames.
CA1_WIDTH_FRAMES = 60
CA1_DITHER_FRAMES = 60

_DESCRIPTIONS = {
    "stationary": "60 Poisson neurons, rates uniform in 1-3 Hz, 0-300 s",
    "up_states": "60 Poisson neurons, rates uniform in 1-3 Hz, x3 in shared up-periods of 8-15 s (~30 % of 0-300 s)",
    "silent_gap": "60 Poisson neurons, rates uniform in 1-3 Hz, 0-300 s, all silent in 130-170 s",
    "padded_end": "60 Poisson neurons, rates uniform in 1-3 Hz, spikes in 0-240 s, window 0-300 s",
    "nwb_gap": "NWB file: 60 Poisson neurons (1-3 Hz), no spikes in 130-170 s, obs_intervals [[0, 130], [170, 300]] s",
    "ca1_dithered": "CA1 (Rubin et al. 2019), every event moved by a uniform integer offset in +-60 frames (+-3 s)",
    "ca1_isi_shuffled": "CA1 (Rubin et al. 2019), each neuron's inter-event intervals shuffled (as the benchmarks)",
}


@dataclass(frozen=True, eq=False)
class NullRecording:
    """One recording of the null suite (nothing planted) and the settings to analyse it with.

    Attributes
    ----------
    kind : str
        One of :data:`NULL_KINDS`.
    seed : int
        The seed it was made from.
    spiketrains : list of neo.SpikeTrain or None
        The trains (in s, window ``[t_start, t_stop)``); None only for ``"nwb_gap"`` (use :meth:`load`).
    nwb_path : pathlib.Path or None
        The written NWB file for ``"nwb_gap"``, else None.
    bin_size, width : pq.Quantity
        Bin size and filter width to detect with.
    t_start, t_stop : pq.Quantity
        The analysis window (for ``"nwb_gap"``: the span of the file's ``obs_intervals``).
    description : str
        One line saying what it is.
    silent_periods : pq.Quantity or None
        ``(n, 2)`` stretches (s) that were made free of spikes (silent_gap, padded_end, nwb_gap).
    up_periods : pq.Quantity or None
        ``(n, 2)`` up-periods (s) of ``"up_states"``, in time order.

    Examples
    --------
    >>> rec = null_recording("silent_gap", 0)
    >>> rec.silent_periods
    array([[130., 170.]]) * s
    >>> sorted(rec.detect_kwargs())
    ['bin_size', 't_start', 't_stop', 'width']
    """

    kind: str
    seed: int
    spiketrains: list[neo.SpikeTrain] | None
    nwb_path: Path | None
    bin_size: pq.Quantity
    width: pq.Quantity
    t_start: pq.Quantity
    t_stop: pq.Quantity
    description: str
    silent_periods: pq.Quantity | None = None
    up_periods: pq.Quantity | None = None

    def __repr__(self) -> str:
        where = f"{len(self.spiketrains)} trains" if self.spiketrains is not None else f"file {self.nwb_path}"
        return (f"NullRecording({self.kind!r}, seed={self.seed}, {where}, {float(self.t_start):g}-"
                f"{float(self.t_stop):g} s, bin_size={float(self.bin_size.rescale(pq.ms)):g} ms, "
                f"width={float(self.width.rescale(pq.s)):g} s)")

    def load(self) -> list[neo.SpikeTrain]:
        """The spike trains: :attr:`spiketrains`, or for ``"nwb_gap"`` the file read by ``read_units``.

        Returns
        -------
        list of neo.SpikeTrain
            A new list (the trains themselves are shared; treat them as read-only).

        Examples
        --------
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     trains = null_recording("nwb_gap", 0, directory=folder).load()
        >>> len(trains), float(trains[0].t_start), float(trains[0].t_stop)
        (60, 0.0, 300.0)
        """
        if self.spiketrains is not None:
            return list(self.spiketrains)
        from convseq_neo.io.nwb import read_units

        return read_units(self.nwb_path)

    def detect_kwargs(self) -> dict:
        """Keyword arguments for :func:`convseq_neo.detect` on :meth:`load`'s trains.

        Returns
        -------
        dict
            ``bin_size``, ``width``, ``t_start`` and ``t_stop``; for ``"nwb_gap"`` only ``bin_size``
            and ``width`` (the window is the file's ``obs_intervals`` span, which ``read_units`` gives
            the trains).

        Examples
        --------
        >>> kwargs = null_recording("stationary", 0).detect_kwargs()
        >>> kwargs["bin_size"], kwargs["width"], kwargs["t_stop"]
        (array(5.) * ms, array(300.) * ms, array(300.) * s)
        """
        kwargs = {"bin_size": self.bin_size, "width": self.width}
        if self.kind != "nwb_gap":
            kwargs.update(t_start=self.t_start, t_stop=self.t_stop)
        return kwargs


# ---------------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------------
def _check_kind(kind) -> str:
    if not isinstance(kind, str):
        raise TypeError(f"kind must be a str, one of {NULL_KINDS}, got {type(kind).__name__}")
    if kind not in NULL_KINDS:
        raise ValueError(f"kind must be one of {NULL_KINDS}, got {kind!r}")
    return kind


def _check_seed(seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be a non-negative int, got {type(seed).__name__}")
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed}")
    return int(seed)


def _check_directory(directory) -> Path | None:
    if directory is None:
        return None
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"directory must be a path (str or os.PathLike) or None, got {type(directory).__name__}")
    return Path(directory).expanduser()


# ---------------------------------------------------------------------------------------------
# synthetic kinds
# ---------------------------------------------------------------------------------------------
def _annotate(trains: list[neo.SpikeTrain], kind: str, seed: int) -> list[neo.SpikeTrain]:
    for train in trains:
        train.annotations.update(null_kind=kind, null_seed=seed)
    return trains


def _with_times(train: neo.SpikeTrain, times_s: np.ndarray, array_annotations: dict | None = None) -> neo.SpikeTrain:
    """A new train in s with ``train``'s window, name and annotations and the given times."""
    return neo.SpikeTrain(np.asarray(times_s, dtype=float), units="s", t_start=train.t_start.rescale(pq.s),
                          t_stop=train.t_stop.rescale(pq.s), name=train.name, description=train.description,
                          array_annotations=array_annotations, **dict(train.annotations))


def _stationary(seed: int) -> list[neo.SpikeTrain]:
    rng = np.random.default_rng(seed)
    rates = rng.uniform(*RATE_RANGE_HZ, N_NEURONS)
    return poisson_background(N_NEURONS, rates * pq.Hz, 0 * pq.s, DURATION_S * pq.s, random_state=rng)


def _without(trains: list[neo.SpikeTrain], start_s: float, stop_s: float) -> list[neo.SpikeTrain]:
    """The trains with every spike in ``[start_s, stop_s)`` removed (window unchanged)."""
    out = []
    for train in trains:
        times = np.asarray(train.rescale(pq.s).magnitude, dtype=float)
        out.append(_with_times(train, times[(times < start_s) | (times >= stop_s)]))
    return out


def _up_periods(rng: np.random.Generator) -> np.ndarray:
    """Alternating down/up periods from -UP_BURN_IN_S in a down period; the up ones clipped to the window."""
    t = -UP_BURN_IN_S
    periods = []
    while t < DURATION_S:
        t += rng.uniform(*DOWN_LENGTH_S)
        if t >= DURATION_S:
            break
        length = rng.uniform(*UP_LENGTH_S)
        start, stop = max(t, 0.0), min(t + length, DURATION_S)
        if stop > start:
            periods.append((start, stop))
        t += length
    return np.asarray(periods, dtype=float).reshape(-1, 2)


def _up_states(seed: int) -> tuple[list[neo.SpikeTrain], np.ndarray]:
    rng = np.random.default_rng(seed)
    rates = rng.uniform(*RATE_RANGE_HZ, N_NEURONS)
    ups = _up_periods(rng)
    # piecewise-constant rate: pieces alternate between base rate and UP_FACTOR x base rate
    edges = np.unique(np.concatenate(([0.0, DURATION_S], ups.ravel())))
    starts, lengths = edges[:-1], np.diff(edges)
    middles = starts + 0.5 * lengths
    factor = np.where(np.any((middles[:, None] >= ups[:, 0]) & (middles[:, None] < ups[:, 1]), axis=1),
                      UP_FACTOR, 1.0)
    trains = []
    for index, rate in enumerate(rates):
        counts = rng.poisson(rate * factor * lengths)
        times = np.repeat(starts, counts) + rng.random(int(counts.sum())) * np.repeat(lengths, counts)
        times = np.sort(times[times < DURATION_S])
        trains.append(neo.SpikeTrain(times, units="s", t_start=0.0 * pq.s, t_stop=DURATION_S * pq.s,
                                     name=f"unit{index}", unit_id=index))
    return trains, ups


def _write_nwb(trains: list[neo.SpikeTrain], path: Path, seed: int) -> None:
    from pynwb import NWBHDF5IO, NWBFile

    nwbfile = NWBFile(
        session_description=f"convseq_neo null suite, kind nwb_gap, seed {seed}: {_DESCRIPTIONS['nwb_gap']}",
        identifier=f"convseq_neo-null-nwb_gap-seed{seed}",
        session_start_time=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
    nwbfile.add_unit_column(name="unit_name", description="name of the unit")
    intervals = [[0.0, GAP_S[0]], [GAP_S[1], DURATION_S]]
    for train in trains:
        nwbfile.add_unit(spike_times=np.asarray(train.rescale(pq.s).magnitude, dtype=float),
                         obs_intervals=intervals, unit_name=str(train.name))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)


# ---------------------------------------------------------------------------------------------
# CA1 kinds
# ---------------------------------------------------------------------------------------------
def _frame_s(segment: neo.Segment) -> float:
    frame = segment.annotations.get("frame_s")
    if frame is None and segment.spiketrains:
        frame = segment.spiketrains[0].annotations.get("frame_s")
    if frame is None:
        raise ValueError("the CA1 segment names no frame duration (annotation 'frame_s')")
    return float(frame)


def _ca1_dithered(segment: neo.Segment, seed: int, frame: float) -> list[neo.SpikeTrain]:
    rng = np.random.default_rng(seed)
    out = []
    for train in segment.spiketrains:
        start = float(train.t_start.rescale(pq.s).magnitude)
        stop = float(train.t_stop.rescale(pq.s).magnitude)
        n_frames = int(round((stop - start) / frame))
        original = np.asarray(train.rescale(pq.s).magnitude, dtype=float)
        frames = np.rint((original - start) / frame).astype(np.int64)
        moved = frames + rng.integers(-CA1_DITHER_FRAMES, CA1_DITHER_FRAMES + 1, frames.size)
        moved = np.where(moved < 0, -moved, moved)
        moved = np.where(moved > n_frames - 1, 2 * (n_frames - 1) - moved, moved)
        order = np.argsort(moved, kind="stable")
        times = start + moved[order] * frame
        out.append(_with_times(train, times, {"original_time": original[order]}))
    return out


def _ca1_isi_shuffled(segment: neo.Segment, seed: int, frame: float) -> list[neo.SpikeTrain]:
    from convseq_neo.io.neo import to_raster

    # exactly the benchmarks' background (benchmarks/_common.ca1_raster + shuffle_isis_raster)
    raster = to_raster(segment.spiketrains, bin_size=frame * pq.s).to_dense().astype(np.int64)
    shuffled = shuffle_isis_raster(raster, random_state=seed)
    start = float(segment.spiketrains[0].t_start.rescale(pq.s).magnitude)
    out = []
    for train, row in zip(segment.spiketrains, shuffled):
        frames = np.repeat(np.arange(row.size), row)
        out.append(_with_times(train, start + frames * frame))
    return out


# ---------------------------------------------------------------------------------------------
# public
# ---------------------------------------------------------------------------------------------
def _make(kind: str, seed: int, directory: Path | None, data_home, ca1_cache: dict) -> NullRecording:
    description = _DESCRIPTIONS[kind]
    window = {"t_start": 0.0 * pq.s, "t_stop": DURATION_S * pq.s}
    synthetic = {"bin_size": SYNTHETIC_BIN, "width": SYNTHETIC_WIDTH, **window}
    gap = pq.Quantity(np.array([GAP_S]), "s")
    if kind == "stationary":
        return NullRecording(kind, seed, _annotate(_stationary(seed), kind, seed), None, description=description,
                             **synthetic)
    if kind == "up_states":
        trains, ups = _up_states(seed)
        return NullRecording(kind, seed, _annotate(trains, kind, seed), None, description=description,
                             up_periods=pq.Quantity(ups, "s"), **synthetic)
    if kind == "silent_gap":
        trains = _without(_stationary(seed), *GAP_S)
        return NullRecording(kind, seed, _annotate(trains, kind, seed), None, description=description,
                             silent_periods=gap, **synthetic)
    if kind == "padded_end":
        trains = _without(_stationary(seed), PADDED_END_S, np.inf)
        return NullRecording(kind, seed, _annotate(trains, kind, seed), None, description=description,
                             silent_periods=pq.Quantity(np.array([[PADDED_END_S, DURATION_S]]), "s"), **synthetic)
    if kind == "nwb_gap":
        folder = directory if directory is not None else Path(tempfile.mkdtemp(prefix="convseq_null_"))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"null_nwb_gap_seed{seed}.nwb"
        _write_nwb(_without(_stationary(seed), *GAP_S), path, seed)
        logger.debug("null_recording: wrote %s", path)
        return NullRecording(kind, seed, None, path, description=description, silent_periods=gap, **synthetic)
    # CA1 kinds
    if "segment" not in ca1_cache:
        from convseq_neo.io.datasets import load_rubin_ca1

        ca1_cache["segment"] = load_rubin_ca1(data_home)
    segment = ca1_cache["segment"]
    frame = _frame_s(segment)
    if kind == "ca1_dithered":
        trains = _ca1_dithered(segment, seed, frame)
    else:
        trains = _ca1_isi_shuffled(segment, seed, frame)
    first = trains[0]
    return NullRecording(kind, seed, _annotate(trains, kind, seed), None, bin_size=frame * pq.s,
                         width=CA1_WIDTH_FRAMES * frame * pq.s, t_start=first.t_start.rescale(pq.s),
                         t_stop=first.t_stop.rescale(pq.s), description=description)


def null_recording(kind: str, seed: int, *, directory: str | os.PathLike | None = None,
                   data_home: str | os.PathLike | None = None) -> NullRecording:
    """One recording of the null suite: ``kind`` made from ``seed`` alone.

    See the module docstring for each kind's exact rule.

    Parameters
    ----------
    kind : str
        One of :data:`NULL_KINDS`.
    seed : int
        Non-negative seed; the same seed gives identical spikes.
    directory : str or os.PathLike, optional
        Where ``"nwb_gap"`` writes ``null_nwb_gap_seed{seed}.nwb`` (created if missing; an existing
        file of that name is overwritten). Default: a fresh :func:`tempfile.mkdtemp` folder. Unused
        by the other kinds.
    data_home : str or os.PathLike, optional
        Where the CA1 kinds look for the data files first (see
        :func:`~convseq_neo.io.datasets.load_rubin_ca1`; then ``$CONVSEQ_DATA_DIR``, then the cache,
        else a download). Unused by the other kinds.

    Returns
    -------
    NullRecording

    Raises
    ------
    TypeError
        ``kind`` not a str, ``seed`` not an int, ``directory`` not a path.
    ValueError
        An unknown ``kind`` (the message lists them) or a negative ``seed``.

    Examples
    --------
    >>> rec = null_recording("stationary", 0)
    >>> len(rec.spiketrains), rec.spiketrains[0].annotations["null_kind"], float(rec.t_stop)
    (60, 'stationary', 300.0)
    >>> again = null_recording("stationary", 0)
    >>> all(np.array_equal(a.magnitude, b.magnitude) for a, b in zip(rec.spiketrains, again.spiketrains))
    True
    >>> up = null_recording("up_states", 0)
    >>> up.up_periods.shape[1], str(up.up_periods.dimensionality)
    (2, 's')
    """
    kind = _check_kind(kind)
    seed = _check_seed(seed)
    folder = _check_directory(directory)
    return _make(kind, seed, folder, data_home, {})


def null_suite(kinds: Iterable[str] | str = NULL_KINDS, seeds: Iterable[int] = range(5), *,
               directory: str | os.PathLike | None = None,
               data_home: str | os.PathLike | None = None) -> Iterator[NullRecording]:
    """The null suite: every ``kind`` x ``seed``, made one at a time.

    Arguments are checked at the call; recordings are made as the iterator is consumed, kind by
    kind and, within a kind, seed by seed. The CA1 recording is loaded once for all CA1 kinds, and
    all ``"nwb_gap"`` files go into one folder (``directory``, else one fresh temporary folder).

    Parameters
    ----------
    kinds : iterable of str, or str
        Kinds from :data:`NULL_KINDS` (default: all; a single str is one kind).
    seeds : iterable of int
        Non-negative seeds (default ``range(5)``, the seeds of the project's false-rate claim).
    directory, data_home : str or os.PathLike, optional
        As in :func:`null_recording`.

    Returns
    -------
    iterator of NullRecording

    Raises
    ------
    TypeError, ValueError
        As :func:`null_recording`, for any kind or seed; ``ValueError`` for no kinds or no seeds.

    Examples
    --------
    >>> suite = list(null_suite(kinds=("stationary", "padded_end"), seeds=[0, 1]))
    >>> [(rec.kind, rec.seed) for rec in suite]
    [('stationary', 0), ('stationary', 1), ('padded_end', 0), ('padded_end', 1)]
    """
    if isinstance(kinds, str):
        kinds = (kinds,)
    if not isinstance(kinds, Iterable):
        raise TypeError(f"kinds must be an iterable of str (from {NULL_KINDS}), got {type(kinds).__name__}")
    if not isinstance(seeds, Iterable) or isinstance(seeds, (str, bytes)):
        raise TypeError(f"seeds must be an iterable of non-negative ints, got {type(seeds).__name__}")
    kinds = tuple(_check_kind(kind) for kind in kinds)
    seeds = tuple(_check_seed(seed) for seed in seeds)
    if not kinds:
        raise ValueError(f"kinds must name at least one kind of {NULL_KINDS}")
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    folder = _check_directory(directory)
    if folder is None and "nwb_gap" in kinds:
        folder = Path(tempfile.mkdtemp(prefix="convseq_null_"))

    def generate() -> Iterator[NullRecording]:
        cache: dict = {}
        for kind in kinds:
            for seed in seeds:
                yield _make(kind, seed, folder, data_home, cache)

    return generate()
