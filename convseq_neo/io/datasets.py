"""Real recordings, fetched and checked by content.

:func:`load_rubin_ca1` returns the mouse CA1 recording used by the convSeq paper (Koshkin & Fukai,
ICML 2024), from Rubin et al. (2019), as a :class:`neo.Segment`.

Where the files come from
-------------------------
Each file is identified by its sha256. The loader looks, in this order, in

1. the ``data_home`` argument,
2. the directory named by the environment variable ``CONVSEQ_DATA_DIR``,
3. pooch's cache for this package (``pooch.os_cache("convseq_neo")``),

and takes the first copy whose hash matches. Only when none of them has the file does it download
it with :mod:`pooch` (the optional ``data`` extra: ``pip install "convseq_neo[data]"``) from the
public address below into the first of those directories that was given (else the cache). A local
copy is never re-downloaded, so no network is needed when the directory has the file. A copy with
the wrong hash is an error, not silently replaced.

The data files are not part of this package: they are the convSeq paper's own copies (MIT
licence, (c) 2024 Roman Koshkin) of the data of Rubin et al. (2019); cite that paper when you use
them (the citation is in the returned segment's annotations).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import neo
import numpy as np
import quantities as pq

logger = logging.getLogger(__name__)

__all__ = ["load_rubin_ca1", "fetch_rubin_ca1", "DATA_DIR_ENV"]

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
    for directory in candidates:
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
    where = ", ".join(str(d) for d in candidates) or "(no directory given)"
    hint = (f"download {remote.url} and save it as '{remote.name}' in a directory named by the data_home argument "
            f"or the {DATA_DIR_ENV} environment variable")
    if not download:
        raise FileNotFoundError(f"{remote.name} was not found in {where} and download=False; {hint}")
    try:
        import pooch
    except ImportError as error:
        raise ImportError(
            f"{remote.name} was not found in {where}, and downloading it needs pooch "
            f"(pip install 'convseq_neo[data]'); or {hint}") from error
    target = dirs[0] if dirs else cache
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
