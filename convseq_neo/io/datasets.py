"""Real recordings, fetched and checked by content.

:func:`load_rubin_ca1` returns the mouse CA1 recording used by the convSeq paper (Koshkin & Fukai,
ICML 2024), from Rubin et al. (2019), as a :class:`neo.Segment`. :func:`load_nelpy_linear_track`
returns nelpy's example tetrode recording of a rat on a linear track (31 sorted units, the tracked
position, and a run epoch then a rest epoch) as a :class:`neo.Segment`.

Where the files come from
-------------------------
Each file is identified by its sha256. The loader looks, in this order, in

1. the ``data_home`` argument,
2. the directory named by the environment variable ``CONVSEQ_DATA_DIR``,
3. pooch's cache for this package (``pooch.os_cache("convseq_neo")``),

and takes the first copy whose hash matches. The linear-track files are looked for in each of these
directories' ``nelpy_linear_track/`` subfolder first, then in the directory itself. Only when none of
them has the file does it download it with :mod:`pooch` (the optional ``data`` extra: ``pip install
"convseq_neo[data]"``) from the public address below into the first of those directories that was
given (else the cache; the linear-track files into its ``nelpy_linear_track/`` subfolder). A local
copy is never re-downloaded, so no network is needed when the directory has the file. A copy with
the wrong hash is an error, not silently replaced.

The data files are not part of this package: they are the convSeq paper's own copies (MIT
licence, (c) 2024 Roman Koshkin) of the data of Rubin et al. (2019); cite that paper when you use
them (the citation is in the returned segment's annotations). The linear-track files are nelpy's
example data (MIT licence, (c) 2017 nelpy; repository nelpy/example-data, folder ``linear-track/``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import neo
import numpy as np
import quantities as pq

logger = logging.getLogger(__name__)

__all__ = ["load_rubin_ca1", "fetch_rubin_ca1", "load_nelpy_linear_track", "fetch_nelpy_linear_track",
           "final_rest_start", "DATA_DIR_ENV"]

#: Environment variable naming a local directory that holds the data files.
DATA_DIR_ENV = "CONVSEQ_DATA_DIR"

_CONVSEQ_COMMIT = "f58012c1f4a5324110104185f2c60719bc9a2b20"
_BASE_URL = f"https://raw.githubusercontent.com/RomanKoshkin/conv-seq/{_CONVSEQ_COMMIT}/data/"

RUBIN_CA1_CITATION = (
    "Rubin A, Sheintuch L, Brande-Eilat N, Pinchasof O, Rechavi Y, Geva N, Ziv Y (2019). Revealing neural "
    "correlates of behavior without behavioral measurements. Nature Communications 10:4745. "
    "doi:10.1038/s41467-019-12724-2"
)
CONVSEQ_CITATION = (
    "Koshkin R, Fukai T (2024). convSeq: Fast and Scalable Method for Detecting Patterns in Spike Data. "
    "Proceedings of the 41st International Conference on Machine Learning (ICML), PMLR 235."
)

#: Frame duration of the CA1 imaging (s).
RUBIN_CA1_FRAME_S = 0.05
#: Length of one of the 24 position bins of the linear track (cm); the paper shows the track as 0-96 cm.
RUBIN_CA1_POSITION_BIN_CM = 4.0


@dataclass(frozen=True)
class _RemoteFile:
    name: str
    url: str
    sha256: str
    variable: str
    #: Looked for in ``<directory>/<subfolder>/`` before ``<directory>/`` (and downloaded there), if set.
    subfolder: str = ""


_RUBIN_CA1_FILES = {
    "activity": _RemoteFile(
        "ca1_rubin2019_neuronal_activity_mat.mat", _BASE_URL + "neuronal_activity_mat.mat",
        "46c377b23f1c71bf8b37da5cc0146559d6b8a1f9e5a851aee733b05728217869", "neuronal_activity_mat"),
    "position": _RemoteFile(
        "ca1_rubin2019_position_per_frame.mat", _BASE_URL + "position_per_frame.mat",
        "62ac63c8365434f16b681cdc8f27c6839563967940bdcc6c090940b1d3de8672", "position_per_frame"),
}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _search_dirs(data_home) -> list[Path]:
    dirs = []
    if data_home is not None:
        if not isinstance(data_home, str | os.PathLike):
            raise TypeError(f"data_home must be a path (str or os.PathLike) or None, got {type(data_home).__name__}")
        dirs.append(Path(data_home).expanduser())
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        dirs.append(Path(env).expanduser())
    return dirs


def _cache_dir() -> Path | None:
    try:
        import pooch
    except ImportError:
        return None
    return Path(pooch.os_cache("convseq_neo"))


def _fetch(remote: _RemoteFile, data_home, download: bool) -> Path:
    dirs = _search_dirs(data_home)
    cache = _cache_dir()
    candidates = [*dirs, *([cache] if cache is not None else [])]
    places = ([place for directory in candidates for place in (directory / remote.subfolder, directory)]
              if remote.subfolder else candidates)
    for directory in places:
        path = directory / remote.name
        if path.is_file():
            found = _sha256(path)
            if found != remote.sha256:
                raise ValueError(
                    f"{path} has sha256 {found}, expected {remote.sha256}: the file is damaged or not the "
                    f"published one; delete it (it will be downloaded again) or replace it with a copy from "
                    f"{remote.url}")
            logger.debug("using %s", path)
            return path
    where = ", ".join(str(d) for d in places) or "(no directory given)"
    hint = (f"download {remote.url} and save it as '{remote.name}' in a directory named by the data_home argument "
            f"or the {DATA_DIR_ENV} environment variable")
    if remote.subfolder:
        hint += f" (or in its '{remote.subfolder}' subfolder)"
    if not download:
        raise FileNotFoundError(f"{remote.name} was not found in {where} and download=False; {hint}")
    try:
        import pooch
    except ImportError as error:
        raise ImportError(
            f"{remote.name} was not found in {where}, and downloading it needs pooch "
            f"(pip install 'convseq_neo[data]'); or {hint}") from error
    target = dirs[0] if dirs else cache
    if remote.subfolder:
        target = target / remote.subfolder
    logger.info("downloading %s to %s", remote.url, target)
    try:
        return Path(pooch.retrieve(remote.url, known_hash=f"sha256:{remote.sha256}", fname=remote.name,
                                   path=target, progressbar=False))
    except Exception as error:  # network errors come in many types (requests, urllib, OSError)
        raise OSError(f"could not download {remote.url} ({type(error).__name__}: {error}); {hint}") from error


def fetch_rubin_ca1(data_home: str | os.PathLike | None = None, *, download: bool = True) -> dict[str, Path]:
    """Local paths of the two CA1 files, downloading them only when no local copy exists.

    Parameters
    ----------
    data_home : str or os.PathLike, optional
        Directory searched first (and where a download goes). Then ``$CONVSEQ_DATA_DIR``, then
        pooch's cache.
    download : bool, default True
        If False, a missing file is a :class:`FileNotFoundError` instead of a download.

    Returns
    -------
    dict
        ``{"activity": Path, "position": Path}``, each checked against its published sha256.

    Examples
    --------
    >>> from convseq_neo.io.datasets import fetch_rubin_ca1
    >>> paths = fetch_rubin_ca1(download=False)  # doctest: +SKIP
    >>> sorted(paths)  # doctest: +SKIP
    ['activity', 'position']
    """
    if not isinstance(download, bool):
        raise TypeError(f"download must be True or False, got {download!r}")
    return {key: _fetch(remote, data_home, download) for key, remote in _RUBIN_CA1_FILES.items()}


def _read_mat(path: Path, variable: str) -> np.ndarray:
    import scipy.io

    contents = scipy.io.loadmat(path)
    if variable not in contents:
        raise ValueError(f"{path} holds no variable '{variable}'")
    return np.asarray(contents[variable])


def load_rubin_ca1(data_home: str | os.PathLike | None = None, *, download: bool = True) -> neo.Segment:
    """The mouse CA1 recording of Rubin et al. (2019) used by the convSeq paper, as a Neo Segment.

    452 neurons imaged at 20 Hz (18,137 frames of 50 ms, 906.85 s) in a mouse running back and forth
    on a linear track. The published data are binarised calcium events per frame, so each
    :class:`neo.SpikeTrain` holds one event at the **start time of every frame** in which the neuron
    had an event (``t = frame * 50 ms``). Binning these trains with ``bin_size=50 ms`` from
    ``t_start=0`` gives back the published matrix exactly; a finer bin only spreads the same frames
    out (no sub-frame timing exists in the data).

    Parameters
    ----------
    data_home : str or os.PathLike, optional
        Directory searched first for the files; see :func:`fetch_rubin_ca1` for the search order.
    download : bool, default True
        Download a missing file with pooch (needs network); if False, a missing file is an error.

    Returns
    -------
    neo.Segment
        ``spiketrains``: 452 trains in s, ``t_start=0 s``, ``t_stop=906.85 s``, named ``"neuron 0"`` ...,
        with ``frame_s`` and ``event_time="frame start"`` in their annotations.
        ``analogsignals[0]``: the animal's position (name ``"position"``), one sample per frame at
        20 Hz, in cm along the track: centre of the position bin, ``(bin - 0.5) * 4 cm`` for the
        published bins 1..24 (the paper draws the track as 0-96 cm).
        ``annotations``: ``citation`` (Rubin et al. 2019), ``convseq_citation`` (the paper),
        ``source`` (download address and sha256 of each file), ``frame_s``.

    Raises
    ------
    FileNotFoundError
        The files are not in any local directory and ``download=False``.
    OSError
        The download failed (e.g. no network); the message says where to put the files instead.
    ValueError
        A local copy does not match its published sha256.

    Examples
    --------
    >>> import quantities as pq
    >>> from convseq_neo.io.neo import to_raster
    >>> from convseq_neo.io.datasets import load_rubin_ca1
    >>> segment = load_rubin_ca1()  # doctest: +SKIP
    >>> len(segment.spiketrains), segment.t_stop  # doctest: +SKIP
    (452, array(906.85) * s)
    >>> to_raster(segment.spiketrains, bin_size=50 * pq.ms).n_bins  # doctest: +SKIP
    18137
    """
    paths = fetch_rubin_ca1(data_home, download=download)
    activity = _read_mat(paths["activity"], _RUBIN_CA1_FILES["activity"].variable)
    position_bins = _read_mat(paths["position"], _RUBIN_CA1_FILES["position"].variable).ravel()
    if activity.ndim != 2 or activity.shape[1] != position_bins.size:
        raise ValueError(f"activity {activity.shape} and position ({position_bins.size} frames) do not match")
    n_neurons, n_frames = activity.shape
    t_stop = n_frames * RUBIN_CA1_FRAME_S * pq.s
    segment = neo.Segment(
        name="Rubin et al. 2019 mouse CA1, linear track",
        description="Binarised calcium events of CA1 neurons, 50 ms frames, with the animal's position per frame",
        citation=RUBIN_CA1_CITATION,
        convseq_citation=CONVSEQ_CITATION,
        frame_s=RUBIN_CA1_FRAME_S,
        source={key: {"url": remote.url, "sha256": remote.sha256} for key, remote in _RUBIN_CA1_FILES.items()},
        licence="data files as distributed with convSeq (MIT, (c) 2024 Roman Koshkin); cite Rubin et al. 2019",
    )
    for neuron in range(n_neurons):
        frames = np.flatnonzero(activity[neuron])
        segment.spiketrains.append(neo.SpikeTrain(
            frames * RUBIN_CA1_FRAME_S, units="s", t_start=0 * pq.s, t_stop=t_stop, name=f"neuron {neuron}",
            frame_s=RUBIN_CA1_FRAME_S, event_time="frame start", unit_index=neuron))
    position_cm = (position_bins.astype(np.float64) - 0.5) * RUBIN_CA1_POSITION_BIN_CM
    segment.analogsignals.append(neo.AnalogSignal(
        position_cm[:, None], units="cm", sampling_period=RUBIN_CA1_FRAME_S * pq.s, t_start=0 * pq.s,
        name="position", description="position on the linear track: centre of the published 4 cm bin (1..24)",
        position_bin_cm=RUBIN_CA1_POSITION_BIN_CM, n_position_bins=24))
    for train in segment.spiketrains:
        train.segment = segment
    segment.analogsignals[0].segment = segment
    return segment


# --- nelpy's linear-track tetrode recording ------------------------------------------------------------------------

_NELPY_COMMIT = "099548c0608ffaa92933c66346c0d96f05a18622"
_NELPY_BASE_URL = f"https://raw.githubusercontent.com/nelpy/example-data/{_NELPY_COMMIT}/linear-track/"
#: Subfolder of a data directory (or of the cache) that holds the linear-track files.
NELPY_LINEAR_TRACK_SUBFOLDER = "nelpy_linear_track"

NELPY_LINEAR_TRACK_CITATION = (
    "nelpy example data, 'linear-track': tetrode recording of rat hippocampus on a linear track (MatClust-sorted "
    "units and video position tracking). nelpy/example-data, commit " + _NELPY_COMMIT + ", folder linear-track/; "
    "https://github.com/nelpy/example-data. nelpy: https://github.com/nelpy/nelpy"
)
NELPY_LINEAR_TRACK_LICENCE = "MIT, (c) 2017 nelpy (nelpy/example-data); cite nelpy's example data when you use it"

#: Clock of the recording system (Hz): spike times are on it and the position file counts its ticks.
NELPY_CLOCK_HZ = 30_000
#: Default tolerance (pixels) of the rest rule of :func:`final_rest_start`.
NELPY_REST_TOLERANCE_PX = 5.0

_NELPY_FILES = {
    "spikes": _RemoteFile(
        "spikes.mat", _NELPY_BASE_URL + "spikes.mat",
        "615b05a9228a5eaea7f99d5fc5b11848a4d94fc154104612410c887875b65bc7", "spikes",
        subfolder=NELPY_LINEAR_TRACK_SUBFOLDER),
    "position": _RemoteFile(
        "trajectory.videoPositionTracking", _NELPY_BASE_URL + "trajectory.videoPositionTracking",
        "10a883302c50e26d5f659ac4ee08d8901f7881c71f6800cd56d999a620b31cb5", "",
        subfolder=NELPY_LINEAR_TRACK_SUBFOLDER),
}

#: One record of a ``.videoPositionTracking`` file after its text header (little-endian).
_POSITION_RECORD = np.dtype([("time", "<u4"), ("x", "<u2"), ("y", "<u2"), ("x2", "<u2"), ("y2", "<u2")])
_POSITION_FIELDS = "<time uint32><xloc uint16><yloc uint16><xloc2 uint16><yloc2 uint16>"
_END_SETTINGS = b"<End settings>\n"


def fetch_nelpy_linear_track(data_home: str | os.PathLike | None = None, *, download: bool = True) -> dict[str, Path]:
    """Local paths of the two linear-track files, downloading them only when no local copy exists.

    Parameters
    ----------
    data_home : str or os.PathLike, optional
        Directory searched first (its ``nelpy_linear_track/`` subfolder, then itself), and where a
        download goes (into that subfolder). Then ``$CONVSEQ_DATA_DIR``, then pooch's cache, each the
        same way.
    download : bool, default True
        If False, a missing file is a :class:`FileNotFoundError` instead of a download.

    Returns
    -------
    dict
        ``{"spikes": Path, "position": Path}`` (``spikes.mat`` and ``trajectory.videoPositionTracking``),
        each checked against its published sha256.

    Raises
    ------
    FileNotFoundError
        A file is not in any local directory and ``download=False``.
    OSError
        The download failed (e.g. no network); the message says where to put the files instead.
    ValueError
        A local copy does not match its published sha256.

    Examples
    --------
    >>> from convseq_neo.io.datasets import fetch_nelpy_linear_track
    >>> paths = fetch_nelpy_linear_track(download=False)  # doctest: +SKIP
    >>> sorted(paths)  # doctest: +SKIP
    ['position', 'spikes']
    """
    if not isinstance(download, bool):
        raise TypeError(f"download must be True or False, got {download!r}")
    return {key: _fetch(remote, data_home, download) for key, remote in _NELPY_FILES.items()}


def _mat_entries(node) -> list:
    """The entries of one level of a MatClust struct read with ``squeeze_me=True``: a struct is one entry
    (squeezing turns a 1-element cell into the struct itself), an object array its elements, anything
    else (an empty numeric array: an unsorted tetrode or an empty unit slot) none."""
    if hasattr(node, "_fieldnames"):
        return [node]
    if isinstance(node, np.ndarray) and node.dtype == object:
        return list(node.ravel())
    return []


def _read_matclust_units(path: Path, variable: str) -> list[tuple[int, int, np.ndarray]]:
    """``(tetrode, unit, sorted spike times in s)`` of every non-empty unit; both numbers 1-based positions
    in the file (empty slots count, so the numbers are those of the file)."""
    import scipy.io

    contents = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    if variable not in contents:
        raise ValueError(f"{path} holds no variable '{variable}'")
    tetrodes = contents[variable]
    tetrodes = list(tetrodes.ravel()) if isinstance(tetrodes, np.ndarray) and tetrodes.dtype == object else [tetrodes]
    units = []
    for tetrode_number, tetrode in enumerate(tetrodes, start=1):
        for unit_number, unit in enumerate(_mat_entries(tetrode), start=1):
            if not hasattr(unit, "_fieldnames") or "time" not in unit._fieldnames:
                continue
            times = np.atleast_1d(np.asarray(unit.time, dtype=np.float64)).ravel()
            if times.size:
                units.append((tetrode_number, unit_number, np.sort(times, kind="stable")))
    return units


def _read_position_tracking(path: str | os.PathLike) -> dict:
    """Read a ``.videoPositionTracking`` file (Trodes / nelpy example data).

    A text header ending in ``<End settings>\\n``, then little-endian records
    ``<time uint32><xloc uint16><yloc uint16><xloc2 uint16><yloc2 uint16>``, time in ticks of the
    header's ``clockrate`` (30 kHz if the header names none). Returns ``time_s`` (ticks / clockrate),
    ``x``, ``y``, ``x2``, ``y2`` (float64 pixels), ``clockrate`` and the ``header`` text. Records are
    kept as in the file (not sorted, duplicates kept).
    """
    raw = Path(path).read_bytes()
    end = raw.find(_END_SETTINGS)
    if end < 0:
        raise ValueError(f"{path}: no '<End settings>' line ends the header; not a videoPositionTracking file")
    header = raw[:end].decode("ascii", errors="replace")
    fields = re.search(r"^Fields:\s*(.*?)\s*$", header, re.MULTILINE)
    if fields and fields.group(1).replace(" ", "") != _POSITION_FIELDS.replace(" ", ""):
        raise ValueError(f"{path}: records are '{fields.group(1)}', this reader knows only '{_POSITION_FIELDS}'")
    clock = re.search(r"^clockrate:\s*(\d+)\s*$", header, re.MULTILINE)
    clockrate = int(clock.group(1)) if clock else NELPY_CLOCK_HZ
    if clockrate <= 0:
        raise ValueError(f"{path}: clockrate {clockrate} in the header is not positive")
    body = raw[end + len(_END_SETTINGS):]
    if len(body) % _POSITION_RECORD.itemsize:
        raise ValueError(f"{path}: {len(body)} bytes after the header are not whole "
                         f"{_POSITION_RECORD.itemsize}-byte records; the file is truncated or damaged")
    records = np.frombuffer(body, dtype=_POSITION_RECORD)
    result = {"time_s": records["time"].astype(np.float64) / clockrate, "clockrate": clockrate, "header": header}
    for field in ("x", "y", "x2", "y2"):
        result[field] = records[field].astype(np.float64)
    return result


def final_rest_start(times, x, *, tolerance: float = NELPY_REST_TOLERANCE_PX) -> float:
    """Start (s) of the final stretch in which ``x`` stays within ``tolerance`` of its last value.

    The rule behind the run / rest epochs of :func:`load_nelpy_linear_track`: rest begins at the
    first sample after the **last** sample whose ``x`` differs from the recording's final ``x`` by
    more than ``tolerance``; everything before is run. If no sample differs that much, the whole
    recording is rest (the first sample's time is returned).

    Parameters
    ----------
    times : array_like or quantities.Quantity
        Sample times, in s if plain numbers; non-decreasing.
    x : array_like or quantities.Quantity
        Position at those times (one value per sample), e.g. a 1-channel signal.
    tolerance : float, default 5.0
        How far (in ``x``'s units, pixels for the linear track) ``x`` may stray from its final value.

    Returns
    -------
    float
        The start of the rest stretch, in s.

    Examples
    --------
    >>> from convseq_neo.io.datasets import final_rest_start
    >>> final_rest_start([0.0, 1.0, 2.0, 3.0, 4.0], [100, 300, 520, 524, 522])
    2.0
    >>> final_rest_start([0.0, 1.0, 2.0, 3.0, 4.0], [100, 300, 520, 524, 522], tolerance=1)
    4.0
    """
    if isinstance(times, pq.Quantity):
        times = times.rescale(pq.s).magnitude
    if isinstance(x, pq.Quantity):
        x = x.magnitude
    times = np.asarray(times, dtype=np.float64).ravel()
    x = np.asarray(x, dtype=np.float64).ravel()
    if times.size == 0 or times.size != x.size:
        raise ValueError(f"times ({times.size}) and x ({x.size}) must be non-empty and of the same length")
    if not (np.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    away = np.flatnonzero(np.abs(x - x[-1]) > tolerance)
    return float(times[away[-1] + 1 if away.size else 0])


def load_nelpy_linear_track(data_home: str | os.PathLike | None = None, *, download: bool = True) -> neo.Segment:
    """nelpy's example tetrode recording of a rat on a linear track, then at rest, as a Neo Segment.

    Rat hippocampus, 13 tetrodes sorted with MatClust (``spikes.mat``: 31 non-empty units, 28,829
    spikes, 4397.0023-6365.1473 s) and one tracked LED (``trajectory.videoPositionTracking``: 118,965
    samples at about 60 Hz, 4397.0317-6379.4556 s). The rat runs back and forth on the track (48
    end-to-end traversals from x < 200 to x > 420 pixels or back), then rests in a box, where the
    tracked position stays at x = 522, y = 8 pixels to the end.

    **Time span.** Every train and epoch spans the same ``[t_start, t_stop]``: ``t_start`` is the
    earlier of the first spike and the first position sample, ``t_stop`` the later of the last spike
    and the last position sample; for this recording 4397.0023 s (the first spike) to 6379.4556 s (the
    last position sample), 1982.45 s. Times are the files' own clock, in s.

    **Run and rest.** Derived from the position, not hard-coded (:func:`final_rest_start`): rest
    begins at the first position sample after the last one whose x differs from the final x by more
    than 5 pixels (:data:`NELPY_REST_TOLERANCE_PX`); run is from ``t_start`` to there, rest from there
    to ``t_stop``. On this recording the rule gives **5382.2206 s** (x final value 522 px): run
    4397.0023-5382.2206 s (985.2 s), rest 5382.2206-6379.4556 s (997.2 s). The rest start moves by
    less than 0.12 s for tolerances of 2 to 20 pixels (5382.2374 s at 2-3 px, 5382.1371 s at 20 px).

    Parameters
    ----------
    data_home : str or os.PathLike, optional
        Directory searched first for the files (its ``nelpy_linear_track/`` subfolder, then itself);
        see :func:`fetch_nelpy_linear_track` for the search order.
    download : bool, default True
        Download a missing file with pooch (needs network); if False, a missing file is an error.

    Returns
    -------
    neo.Segment
        ``spiketrains``: 31 trains in s, in file order, named ``"tt{tetrode}_u{unit}"`` (e.g.
        ``"tt1_u1"``; both numbers are 1-based positions in ``spikes.mat``, empty slots counted), with
        annotations ``tetrode``, ``unit`` and ``unit_index`` (0..30); spike times sorted.
        ``irregularlysampledsignals``: ``"position_x"`` then ``"position_y"``, the tracked LED in camera
        pixels (640 x 480 camera; x runs along the track), dimensionless with ``position_units="pixel"``
        in their annotations; irregular because the video frames are (median 16.7 ms apart, 90 % of
        intervals within 0.5 ms of it, 21 gaps over 20 ms). Samples as in the file (one record, time
        stamp included, occurs twice in a row).
        ``epochs``: ``"run"`` and ``"rest"``, one interval each (see above), annotated with the rule.
        ``annotations``: ``citation`` (nelpy's example data), ``source`` (download address and sha256 of
        each file), ``licence``, ``position_units="pixel"``, ``clock_hz``, ``rest_tolerance_px``,
        ``rest_start_s``.

    Raises
    ------
    FileNotFoundError
        The files are not in any local directory and ``download=False``.
    OSError
        The download failed (e.g. no network); the message says where to put the files instead.
    ValueError
        A local copy does not match its published sha256.

    Examples
    --------
    >>> from convseq_neo.io.datasets import load_nelpy_linear_track
    >>> segment = load_nelpy_linear_track()  # doctest: +SKIP
    >>> len(segment.spiketrains), sum(len(train) for train in segment.spiketrains)  # doctest: +SKIP
    (31, 28829)
    >>> [(epoch.name, round(float(epoch.times[0]), 1)) for epoch in segment.epochs]  # doctest: +SKIP
    [('run', 4397.0), ('rest', 5382.2)]
    >>> rest = segment.time_slice(segment.epochs[1].times[0], segment.t_stop)  # doctest: +SKIP
    """
    paths = fetch_nelpy_linear_track(data_home, download=download)
    units = _read_matclust_units(paths["spikes"], _NELPY_FILES["spikes"].variable)
    position = _read_position_tracking(paths["position"])
    if not units:
        raise ValueError(f"{paths['spikes']} holds no non-empty unit")
    times = position["time_s"]
    if times.size == 0:
        raise ValueError(f"{paths['position']} holds no position sample")
    t_start = min(min(spikes[0] for _, _, spikes in units), float(times.min())) * pq.s
    t_stop = max(max(spikes[-1] for _, _, spikes in units), float(times.max())) * pq.s
    rest_start = final_rest_start(times, position["x"], tolerance=NELPY_REST_TOLERANCE_PX) * pq.s
    segment = neo.Segment(
        name="nelpy linear track, rat hippocampus tetrodes",
        description="MatClust-sorted tetrode units and the tracked position of a rat running on a linear track, "
                    "then resting in a box",
        citation=NELPY_LINEAR_TRACK_CITATION,
        source={key: {"url": remote.url, "sha256": remote.sha256} for key, remote in _NELPY_FILES.items()},
        licence=NELPY_LINEAR_TRACK_LICENCE,
        position_units="pixel",
        clock_hz=position["clockrate"],
        rest_tolerance_px=NELPY_REST_TOLERANCE_PX,
        rest_start_s=float(rest_start),
    )
    for index, (tetrode, unit, spikes) in enumerate(units):
        segment.spiketrains.append(neo.SpikeTrain(
            spikes, units="s", t_start=t_start, t_stop=t_stop, name=f"tt{tetrode}_u{unit}",
            tetrode=tetrode, unit=unit, unit_index=index))
    for axis in ("x", "y"):
        segment.irregularlysampledsignals.append(neo.IrregularlySampledSignal(
            times * pq.s, position[axis][:, None], units=pq.dimensionless, name=f"position_{axis}",
            description=f"{axis} of the tracked LED in camera pixels (640 x 480)"
                        + ("; x runs along the track" if axis == "x" else ""),
            position_units="pixel"))
    rule = (f"rest starts at the first position sample after the last one whose x differs from the final x by more "
            f"than {NELPY_REST_TOLERANCE_PX:g} pixels; run is everything before")
    for name, start, stop in (("run", t_start, rest_start), ("rest", rest_start, t_stop)):
        segment.epochs.append(neo.Epoch(
            times=[float(start)] * pq.s, durations=[float(stop - start)] * pq.s, labels=np.array([name]),
            name=name, rule=rule))
    for child in (*segment.spiketrains, *segment.irregularlysampledsignals, *segment.epochs):
        child.segment = segment
    return segment
