"""Fitted convSeq models in a file: learn patterns once, find them in other recordings later.

:func:`save_model` (or :meth:`DetectionResult.save_model <convseq_neo.result.DetectionResult.save_model>`)
writes what :meth:`DetectionResult.find <convseq_neo.result.DetectionResult.find>` needs into one
portable file, and :func:`load_model` reads it back as a :class:`SavedModel` whose
:meth:`SavedModel.find` gives the same result as the in-memory ``find`` (same data, same
``random_state``). :func:`load_model` also rebuilds the model from the tables that
:func:`convseq_neo.io.nwb.annotate` stored in an NWB file (:func:`model_from_nwb`).

The file
--------
A NumPy ``.npz`` archive (a zip of ``.npy`` arrays) read with ``allow_pickle=False``: loading
never executes code. It holds

``header``
    One JSON string: ``format`` (``"convseq_neo.model"``), ``format_version``
    (:data:`FORMAT_VERSION`), ``software`` (the package version that wrote it), ``bin_size_s``,
    ``width_bins``, ``n_neurons``, ``n_patterns``, ``unit_names`` (the training trains' names, in
    raster order), ``params`` (every :class:`~convseq_neo.core.estimator.ConvSeq` parameter, typed;
    a ``numpy.random.Generator`` as ``random_state`` is stored as ``null``), ``fitted``
    (``lag_tolerance_``, ``backend_``, ``n_folds_``) and ``parameters`` (the result's flat
    parameter record, for provenance).
``filters`` (K, N, W)
    The learned filters, in their own dtype (float32 from the core).
``tested_filters`` (K, N, W)
    Each pattern as ``find`` looks for it (``ConvSeq.tested_filters_``: its members' evidence around
    their lags). Files written before it existed lack it; their model applies ``filters``, with a
    warning.
``pattern_offsets`` (K,), ``pattern_spans`` (K, 2)
    Each pattern's centre in its window and the earliest and latest member lag around it (bins).
``n_occurrences`` (K,)
    Significant occurrences of each pattern in the training recording.
``membership_<column>`` (K * N,)
    The membership table, one array per column (``pattern``, ``neuron``, ``score``, ``pvalue``,
    ``member``, ``lag``; lags in bins relative to the pattern centre).

A reader refuses a file of a newer ``format_version`` than it knows (upgrade convseq_neo).

What is restored
----------------
:class:`SavedModel.model <SavedModel>` is a :class:`~convseq_neo.core.estimator.ConvSeq` with its
parameters and the fitted attributes that applying it needs: ``filters_``, ``tested_filters_``,
``membership_``, ``pattern_offsets_``, ``pattern_spans_``, ``lag_tolerance_``, ``backend_`` and
``n_folds_``.
Attributes that describe the training recording (``responses_``, ``tested_responses_``,
``thresholds_``, ``occurrences_``, ``loss_history_``, ``timings_``, ...) are not saved.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import quantities as pq

from convseq_neo.core.estimator import ConvSeq
from convseq_neo.core.membership import MEMBERSHIP_COLUMNS
from convseq_neo.io.safe_write import safe_write
from convseq_neo.result import DetectionResult, _apply_model, _membership_and_patterns

logger = logging.getLogger(__name__)

__all__ = ["SavedModel", "save_model", "load_model", "model_from_nwb", "FORMAT", "FORMAT_VERSION",
           "RESTORED_ATTRIBUTES"]

#: The ``format`` field of a model file's header.
FORMAT = "convseq_neo.model"
#: The newest model-file format this version writes and reads.
FORMAT_VERSION = 1

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
#: The fitted attributes restored on the rebuilt ConvSeq (``tested_filters_`` only from a file that holds them).
RESTORED_ATTRIBUTES = ("filters_", "tested_filters_", "membership_", "pattern_offsets_", "pattern_spans_",
                       "lag_tolerance_", "backend_", "n_folds_")


class SavedModel:
    """A fitted convSeq model without its training data: learned patterns, time scale and parameters.

    Made by :func:`load_model` or :func:`model_from_nwb`; :meth:`find` applies the patterns to
    another recording of the same neurons exactly as :meth:`DetectionResult.find
    <convseq_neo.result.DetectionResult.find>` does.

    Attributes
    ----------
    model : ConvSeq
        The rebuilt estimator: its parameters and the fitted attributes listed in
        :data:`RESTORED_ATTRIBUTES` (filters, membership, pattern geometry, lag tolerance).
    unit_names : tuple of str
        The training trains' names, one per raster row.
    parameters : dict
        The flat parameter record of the detection the model comes from (as
        :attr:`DetectionResult.parameters <convseq_neo.result.DetectionResult>`).
    patterns : list of Pattern
        One per learned pattern (members, lags in s, filter); ``n_occurrences`` counts the
        occurrences in the training recording.
    membership : pandas.DataFrame
        All neurons x patterns, as :attr:`DetectionResult.membership
        <convseq_neo.result.DetectionResult>` (lags in s).
    source : str
        Where it was loaded from.

    Examples
    --------
    See :func:`load_model`.
    """

    def __init__(self, model: ConvSeq, bin_size_s: float, unit_names, n_occurrences, parameters: dict,
                 source: str = "") -> None:
        self.model = model
        self._bin_size_s = float(bin_size_s)
        self.unit_names = tuple(str(name) for name in unit_names)
        self.parameters = dict(parameters)
        self.source = str(source)
        self._n_occurrences = np.asarray(n_occurrences, dtype=np.int64)
        self.membership, self.patterns = _membership_and_patterns(model, self._bin_size_s, self.unit_names,
                                                                  self._n_occurrences)

    @property
    def bin_size(self) -> pq.Quantity:
        """Bin width the patterns were learned at (s)."""
        return pq.Quantity(self._bin_size_s, "s")

    @property
    def width(self) -> pq.Quantity:
        """Filter window (s)."""
        return pq.Quantity(int(self.model.width) * self._bin_size_s, "s")

    @property
    def n_patterns(self) -> int:
        """Number of learned patterns."""
        return int(self.model.filters_.shape[0])

    @property
    def n_neurons(self) -> int:
        """Number of neurons (spike trains) the patterns were learned on."""
        return int(self.model.filters_.shape[1])

    def __repr__(self) -> str:
        sizes = ", ".join(f"{p.size} members" for p in self.patterns)
        return (f"SavedModel({self.n_patterns} pattern(s): {sizes}; {self.n_neurons} neurons, "
                f"bin_size={self._bin_size_s * 1e3:g} ms, width={float(self.width) * 1e3:g} ms)")

    def find(self, spiketrains, *, t_start=None, t_stop=None, intervals=None, segment_index=None,
             random_state=None, warp=None):
        """Find the learned patterns in a recording of the same neurons (see :meth:`DetectionResult.find`).

        Parameters
        ----------
        spiketrains : list of neo.SpikeTrain, SpikeTrainList, neo.Segment, BinnedSpikeTrain or SpikeRaster
            The same neurons, binned at :attr:`bin_size`: matched to :attr:`unit_names` by name
            when the new recording names its units (as :meth:`DetectionResult.find
            <convseq_neo.result.DetectionResult.find>`), else taken in order.
        t_start, t_stop : pq.Quantity, optional
            Analysis window.
        intervals : neo.Epoch, pynapple IntervalSet or array_like, optional
            Where to look in the new recording, on its own clock (as in :func:`convseq_neo.detect`).
        segment_index : int, optional
            For a Block or sorting with several segments: search only this one.
        random_state : int, numpy.random.Generator or None
            Seeds the surrogates (default: the saved model's ``random_state``).
        warp : float or sequence of float, optional
            Compression factors, as in :meth:`DetectionResult.find
            <convseq_neo.result.DetectionResult.find>` (``10``: ten times faster).

        Returns
        -------
        DetectionResult or MultiScaleResult
            For the new recording (``thresholds`` is None); equal to what the result the model
            was saved from returns for the same arguments (a
            :class:`~convseq_neo.multiscale.MultiScaleResult` for several ``warp`` factors).
        """
        from convseq_neo.result import check_warp

        search = dict(t_start=t_start, t_stop=t_stop, intervals=intervals, segment_index=segment_index,
                      random_state=random_state, unit_names=self.unit_names)
        warps = check_warp(warp)
        if warps is None or np.ndim(warp) == 0:
            return _apply_model(self.model, self._bin_size_s, self.n_neurons, spiketrains,
                                warp=None if warps is None else warps[0], **search)
        from convseq_neo.multiscale import _warped_search

        patterns = [(k, k) for k in range(int(self.model.filters_.shape[0]))]
        return _warped_search([(self.model, self._bin_size_s, self.n_neurons, patterns)], spiketrains, warps, search)

    def save(self, path, *, overwrite: bool = False) -> Path:
        """Write this model to a model file (see :func:`save_model`)."""
        return save_model(self, path, overwrite=overwrite)


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
def _json_value(name: str, value):
    """A ConvSeq parameter as a JSON value (None, bool, int, float, str)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, np.random.Generator):
        logger.warning("save_model: random_state is a numpy Generator, which a file cannot hold; it is saved as "
                       "None (pass random_state to find() for reproducible surrogates)")
        return None
    return str(value)  # torch.device


def _contents(source) -> tuple[dict, dict]:
    """(header, arrays) of a DetectionResult or a SavedModel."""
    from convseq_neo import __version__

    if isinstance(source, DetectionResult):
        model, bin_size_s, unit_names = source.model, float(source.raster.bin_size_s), source.unit_names
        n_occurrences = [p.n_occurrences for p in source.patterns]
    elif isinstance(source, SavedModel):
        model, bin_size_s, unit_names = source.model, source._bin_size_s, source.unit_names
        n_occurrences = source._n_occurrences
    else:
        raise TypeError(f"result must be a DetectionResult or a SavedModel, got {type(source).__name__}")
    filters = np.asarray(model.filters_)
    membership = model.membership_
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "software": f"convseq_neo {__version__}",
        "bin_size_s": bin_size_s,
        "width_bins": int(model.width),
        "n_neurons": int(filters.shape[1]),
        "n_patterns": int(filters.shape[0]),
        "unit_names": [str(name) for name in unit_names],
        "params": {name: _json_value(name, value) for name, value in model.get_params().items()},
        "fitted": {"lag_tolerance_": int(model.lag_tolerance_), "backend_": str(getattr(model, "backend_", "")),
                   "n_folds_": int(getattr(model, "n_folds_", 0))},
        "parameters": {key: value if isinstance(value, (bool, int, float, str)) or value is None else str(value)
                       for key, value in source.parameters.items()},
    }
    arrays = {
        "filters": filters,
        "pattern_offsets": np.asarray(model.pattern_offsets_, dtype=float),
        "pattern_spans": np.asarray(model.pattern_spans_, dtype=float),
        "n_occurrences": np.asarray(n_occurrences, dtype=np.int64),
        "membership_pattern": membership["pattern"].to_numpy(np.int64),
        "membership_neuron": membership["neuron"].to_numpy(np.int64),
        "membership_score": membership["score"].to_numpy(float),
        "membership_pvalue": membership["pvalue"].to_numpy(float),
        "membership_member": membership["member"].to_numpy(bool),
        "membership_lag": membership["lag"].to_numpy(float),
    }
    if hasattr(model, "tested_filters_"):  # a model loaded from an older file has none: nothing to store
        arrays["tested_filters"] = np.asarray(model.tested_filters_, dtype=filters.dtype)
    return header, arrays


def _check_path_argument(path, name: str = "path") -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike), got {type(path).__name__}")
    return Path(path)


def save_model(result, path, *, overwrite: bool = False) -> Path:
    """Write a fitted model to one portable file (no pickle; see the module's description of the file).

    The file is written through :func:`~convseq_neo.io.safe_write.safe_write`: under the file's
    lock, to a hidden temporary file in the same directory, read back and checked, then moved into
    place atomically, so an interrupted save never leaves a half-written file and never harms an
    existing one.

    Parameters
    ----------
    result : DetectionResult or SavedModel
        What :func:`convseq_neo.detect` (or ``find``) returned, or a loaded model.
    path : str or os.PathLike
        The file to write (``.npz`` by convention; no suffix is added). Its directory must exist.
    overwrite : bool, default False
        Replace an existing file; otherwise an existing ``path`` raises ``FileExistsError``.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    TypeError
        ``result`` is neither a DetectionResult nor a SavedModel, or ``path`` is not a path.
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    FileNotFoundError
        ``path``'s directory does not exist.
    ValueError
        ``path`` is a directory.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = save_model(result, pathlib.Path(tempfile.mkdtemp()) / "patterns.npz")
    >>> save_model(result, path)
    Traceback (most recent call last):
    ...
    FileExistsError: path: '...patterns.npz' exists already; pass overwrite=True to replace it
    """
    path = _check_path_argument(path)
    if not isinstance(overwrite, (bool, np.bool_)):
        raise TypeError(f"overwrite must be a bool, got {type(overwrite).__name__}")
    header, arrays = _contents(result)
    if path.is_dir():
        raise ValueError(f"path: '{path}' is a directory; pass a file name")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"path: the directory '{path.parent}' does not exist")
    if path.exists() and not overwrite:
        raise FileExistsError(f"path: '{path}' exists already; pass overwrite=True to replace it")
    def read_back(tmp: Path) -> bool:
        if not np.array_equal(_read_model_file(tmp, str(path)).model.filters_, arrays["filters"]):
            raise RuntimeError(f"the model written to '{tmp}' did not read back identical; '{path}' was not changed")
        return True

    # the project's one way to change a user's file: lock, temporary file, check, fsync, atomic replace
    with safe_write(path if path.exists() else None, path, verify=read_back, copy=False) as tmp:
        if path.exists() and not overwrite:  # made by another process since the check above
            raise FileExistsError(f"path: '{path}' was created by another process meanwhile; it was left as it is")
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, header=np.array(json.dumps(header)), **arrays)
    logger.info("save_model: wrote %d pattern(s) over %d neurons to %s", header["n_patterns"], header["n_neurons"],
                path)
    return path


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
def _existing_file(path, name: str = "path") -> Path:
    path = _check_path_argument(path, name)
    if not path.exists():
        raise FileNotFoundError(f"{name}: no such file: '{path}'")
    if path.is_dir():
        raise ValueError(f"{name}: '{path}' is a directory, not a model file or an NWB file")
    return path


def _kind(path: Path) -> str:
    """ "npz" or "nwb" from the file's first bytes."""
    with open(path, "rb") as handle:
        start = handle.read(8)
    if start.startswith(_ZIP_SIGNATURES):
        return "npz"
    if start == _HDF5_SIGNATURE:
        return "nwb"
    raise ValueError(f"'{path}' is neither a convseq_neo model file (.npz, written by save_model) nor an NWB file")


def _restore(params: dict, *, where: str, device) -> ConvSeq:
    """A ConvSeq with the saved parameters (unknown names are left out with a warning)."""
    names = ConvSeq._param_names()
    unknown = sorted(set(params) - set(names))
    if unknown:
        logger.warning("%s: parameter(s) %s are unknown to this convseq_neo and left out", where, ", ".join(unknown))
    kept = {name: value for name, value in params.items() if name in names}
    if device is not None:
        kept["device"] = device
    model = ConvSeq()
    try:
        model.set_params(**kept)
    except ValueError as err:
        saved_device = kept.get("device")
        if device is None and "device" in str(err) and saved_device not in (None, "auto"):
            logger.warning("%s: the saved device %r is not available here; using device='auto'", where,
                           saved_device)
            kept["device"] = "auto"
            return _restore(kept, where=where, device="auto")
        raise ValueError(f"{where} holds a parameter this convseq_neo rejects: {err}") from err
    except TypeError as err:
        raise ValueError(f"{where} holds a parameter this convseq_neo rejects: {err}") from err
    return model


def _fit_state(model: ConvSeq, filters: np.ndarray, membership: pd.DataFrame, offsets: np.ndarray,
               spans: np.ndarray, lag_tolerance: int, backend: str, n_folds: int, where: str,
               tested_filters: np.ndarray | None = None) -> ConvSeq:
    """Set the fitted attributes :meth:`ConvSeq.find_occurrences` and the result need, after checking their shapes.

    Without ``tested_filters`` (a file written before they were saved) the learned filters are
    tested, with a warning: such a model finds fewer occurrences than the result it came from.
    """
    if filters.ndim != 3 or min(filters.shape) < 1:
        raise ValueError(f"{where} is damaged: its filters have shape {filters.shape}, expected (patterns, neurons, "
                         "window bins)")
    if not np.all(np.isfinite(filters)):
        raise ValueError(f"{where} is damaged: its filters hold NaN or infinite values")
    n_patterns, n_neurons, width = filters.shape
    if int(model.width) != width or int(model.n_patterns) != n_patterns:
        raise ValueError(f"{where} is inconsistent: filters of shape {filters.shape} but width={model.width}, "
                         f"n_patterns={model.n_patterns}")
    if offsets.shape != (n_patterns,) or spans.shape != (n_patterns, 2):
        raise ValueError(f"{where} is damaged: pattern offsets {offsets.shape} and spans {spans.shape} do not "
                         f"match {n_patterns} pattern(s)")
    if len(membership) != n_patterns * n_neurons:
        raise ValueError(f"{where} is damaged: {len(membership)} membership rows for {n_patterns} pattern(s) x "
                         f"{n_neurons} neurons")
    if tested_filters is not None and (tested_filters.shape != filters.shape
                                       or not np.all(np.isfinite(tested_filters))):
        raise ValueError(f"{where} is damaged: its tested filters have shape {tested_filters.shape} (expected "
                         f"{filters.shape}) or hold NaN or infinite values")
    model.filters_ = filters
    if tested_filters is None:
        logger.warning("%s holds no tested filters (written by an earlier convseq_neo): find() applies the learned "
                       "filters, which find fewer occurrences than the members' evidence a new save would hold", where)
        vars(model).pop("tested_filters_", None)  # so that saving this model again does not store them as tested
    else:
        model.tested_filters_ = tested_filters
    model.membership_ = membership[MEMBERSHIP_COLUMNS].reset_index(drop=True)
    model.pattern_offsets_ = offsets
    model.pattern_spans_ = spans
    model.lag_tolerance_ = int(lag_tolerance)
    model.backend_ = str(backend)
    model.n_folds_ = int(n_folds)
    return model


def _read_model_file(path: Path, shown: str | None = None, device=None) -> SavedModel:
    where = f"'{shown or path}'"
    try:
        with np.load(path, allow_pickle=False) as archive:
            contents = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise ValueError(f"{where} could not be read as a convseq_neo model file: {err}") from err
    if "header" not in contents:
        raise ValueError(f"{where} is not a convseq_neo model file (it has no header)")
    try:
        header = json.loads(str(contents["header"]))
    except ValueError as err:
        raise ValueError(f"{where} is not a convseq_neo model file (its header is not JSON)") from err
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else None
        raise ValueError(f"{where} is not a convseq_neo model file (format {found!r}, expected {FORMAT!r})")
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"{where} is damaged: format_version {version!r}")
    if version > FORMAT_VERSION:
        from convseq_neo import __version__

        raise ValueError(f"{where} was written by {header.get('software', 'a newer convseq_neo')} in model-file "
                         f"format version {version}; this convseq_neo ({__version__}) reads versions up to "
                         f"{FORMAT_VERSION}: upgrade convseq_neo to load it")
    missing = sorted({"filters", "pattern_offsets", "pattern_spans", "n_occurrences",
                      *(f"membership_{c}" for c in MEMBERSHIP_COLUMNS)} - set(contents))
    if missing:
        raise ValueError(f"{where} is damaged: it lacks {', '.join(missing)}")
    try:
        bin_size_s = float(header["bin_size_s"])
        unit_names = [str(name) for name in header["unit_names"]]
        params, fitted = dict(header["params"]), dict(header["fitted"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{where} is damaged: its header lacks {err}") from err
    if not (np.isfinite(bin_size_s) and bin_size_s > 0):
        raise ValueError(f"{where} is damaged: bin_size_s {bin_size_s!r}")
    membership = pd.DataFrame({c: contents[f"membership_{c}"] for c in MEMBERSHIP_COLUMNS})
    model = _restore(params, where=where, device=device)
    filters = contents["filters"]
    _fit_state(model, filters, membership, contents["pattern_offsets"].astype(float),
               contents["pattern_spans"].astype(float), fitted.get("lag_tolerance_", 1),
               fitted.get("backend_", ""), fitted.get("n_folds_", 0), where, contents.get("tested_filters"))
    if len(unit_names) != filters.shape[1] or contents["n_occurrences"].shape != (filters.shape[0],):
        raise ValueError(f"{where} is damaged: {len(unit_names)} unit names and {contents['n_occurrences'].shape} "
                         f"occurrence counts for filters of shape {filters.shape}")
    return SavedModel(model, bin_size_s, unit_names, contents["n_occurrences"], header.get("parameters", {}),
                      source=str(shown or path))


def load_model(path, *, name: str | None = None, module: str | None = None, device=None) -> SavedModel:
    """Load a fitted model saved by :func:`save_model`, or rebuild one from an NWB file's stored detection.

    Parameters
    ----------
    path : str or os.PathLike
        A model file (written by :func:`save_model`), or an NWB file annotated by
        :func:`convseq_neo.io.nwb.annotate` (recognised by its first bytes, not its name).
    name : str, optional
        NWB only: the name given to ``annotate`` (default ``"convseq"``); see :func:`model_from_nwb`.
    module : str, optional
        NWB only: the processing module of the patterns table (default: wherever it is).
    device : {"auto", "cpu", "cuda"} or torch.device, optional
        Where the loaded model computes (default: the saved setting; ``"auto"``, with a warning,
        when the saved device is not available here).

    Returns
    -------
    SavedModel
        Its :meth:`~SavedModel.find` applies the patterns to another recording of the same neurons.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is a directory, neither a model file nor an NWB file, a damaged model file, a
        model file of a newer format version (upgrade convseq_neo), an NWB file without such a
        stored detection, or ``name``/``module`` given for a model file.
    TypeError
        ``path`` is not a path.

    Examples
    --------
    ``result`` was detected on ``recording`` as in :func:`convseq_neo.detect`'s example. Saved and
    loaded again, its model finds the same occurrences:

    >>> import pathlib, tempfile
    >>> path = result.save_model(pathlib.Path(tempfile.mkdtemp()) / "patterns.npz")
    >>> model = load_model(path)
    >>> model
    SavedModel(1 pattern(s): ... members; 30 neurons, bin_size=5 ms, width=200 ms)
    >>> model.patterns[0].neurons.tolist() == result.patterns[0].neurons.tolist()
    True
    >>> found = model.find(recording.spiketrains, random_state=0)
    >>> found.occurrences.equals(result.find(recording.spiketrains, random_state=0).occurrences)
    True
    """
    path = _existing_file(path)
    kind = _kind(path)
    if kind == "nwb":
        return model_from_nwb(path, "convseq" if name is None else name, module, device=device)
    if name is not None or module is not None:
        raise ValueError(f"name and module select a detection in an NWB file; '{path}' is a model file")
    return _read_model_file(path, device=device)


# ---------------------------------------------------------------------------------------------
# from an NWB file
# ---------------------------------------------------------------------------------------------
def _flat_parameter(name: str, value, where: str):
    """A ConvSeq parameter from the flat record (``None`` was stored as the string "None")."""
    if value == "None":
        return None
    if name == "random_state" and isinstance(value, str):
        logger.warning("%s: random_state was %r, which cannot be restored; find() uses fresh randomness unless "
                       "given random_state", where, value)
        return None
    return value


def _estimated_offsets(filters: np.ndarray, membership: pd.DataFrame, where: str) -> np.ndarray:
    """Pattern centres in their windows from the member rows' filter peaks (for files without the record)."""
    n_patterns, _, width = filters.shape
    offsets = np.zeros(n_patterns)
    for k in range(n_patterns):
        rows = membership[(membership["pattern"] == k) & membership["member"]]
        lags = rows["lag"].to_numpy(float)
        neurons = rows["neuron"].to_numpy(np.int64)[np.isfinite(lags)]
        if neurons.size:
            window_lags = np.argmax(filters[k, neurons], axis=1) - width // 2
            offsets[k] = float(np.mean(window_lags - lags[np.isfinite(lags)]))
    logger.warning("%s records no pattern offsets (stored by an earlier convseq_neo): estimated from the filters' "
                   "peaks, so the found occurrences' centres may be off by about a bin", where)
    return offsets


def model_from_nwb(path_or_nwbfile, name: str = "convseq", module: str | None = None, *, device=None) -> SavedModel:
    """Rebuild the fitted model of a detection stored in an NWB file by :func:`convseq_neo.io.nwb.annotate`.

    The patterns table holds the filters and the membership of every analysed unit (lags in s),
    the run's parameters table (``<name>_parameters``; in files of 0.1.0 the events table's
    ``source_description``) the bin size, every parameter and where each pattern's centre sits in
    its window (``pattern_offsets_bins``), all read through
    :func:`convseq_neo.io.nwb.read_detections`. The rebuilt model finds what the stored result's
    :meth:`~convseq_neo.result.DetectionResult.find` finds (occurrence times equal to float
    rounding: lags are stored in seconds). A file stored by a version that did not record the
    offsets gets them estimated from the filters, with a warning.

    Parameters
    ----------
    path_or_nwbfile : str, os.PathLike or pynwb.NWBFile
        The annotated file (opened read-only) or an open NWBFile.
    name : str, default "convseq"
        The name given to ``annotate``.
    module : str, optional
        Processing module of the patterns table (default: the one holding it).
    device : optional
        As in :func:`load_model`.

    Returns
    -------
    SavedModel
        Trained on the analysed units, in the order of the patterns table's ``analyzed_units``
        (pass ``find`` those units' trains, e.g. :func:`convseq_neo.io.nwb.read_units` of a file
        with the same units).

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    ValueError
        No detection of that name, or one stored without a parameter record.

    Examples
    --------
    See :func:`load_model` (which calls this for NWB files) and :func:`convseq_neo.io.nwb.annotate`.

    >>> model_from_nwb("missing.nwb")
    Traceback (most recent call last):
    ...
    FileNotFoundError: path: no such file: 'missing.nwb'
    """
    from convseq_neo.io.nwb import read_detections

    if isinstance(path_or_nwbfile, (str, os.PathLike)):
        path = _existing_file(path_or_nwbfile)
        _kind(path)  # a clear error for a file that is not HDF5
        where, source = f"'{path}' ({name!r})", str(path)
    else:
        where, source = f"the NWB file ({name!r})", "NWBFile"
        path = path_or_nwbfile
    stored = read_detections(path, name=name, module=module)
    params = dict(stored.parameters)
    if "bin_size_s" not in params:
        if params.get("search") == "scales":
            raise ValueError(f"{where} stores a search over time scales, whose patterns differ in bin size: one model "
                             "cannot be rebuilt from it. Save each window's model from the result instead "
                             "(result.results[i].save_model(path)), or annotate with an explicit bin_size and width")
        raise ValueError(f"{where} stores no parameter record with the bin size: the model cannot be rebuilt")
    bin_size_s = float(params["bin_size_s"])
    filters = np.asarray(stored.filters)
    if filters.ndim != 3 or filters.shape[0] == 0:
        raise ValueError(f"{where} is damaged: its filters have shape {filters.shape}")
    filters = filters.astype(np.float32)  # the core's dtype; the file holds them as float64
    tested_filters = None if stored.tested_filters is None else np.asarray(stored.tested_filters, dtype=np.float32)
    n_patterns, n_neurons, width = filters.shape
    convseq_params = {key: _flat_parameter(key, params[key], where) for key in ConvSeq._param_names()
                      if key in params}
    convseq_params.update(n_patterns=n_patterns, width=width)
    model = _restore(convseq_params, where=where, device=device)
    table = stored.membership
    membership = pd.DataFrame({
        "pattern": table["pattern"].to_numpy(np.int64), "neuron": table["neuron"].to_numpy(np.int64),
        "score": table["score"].to_numpy(float), "pvalue": table["pvalue"].to_numpy(float),
        "member": table["member"].to_numpy(bool), "lag": table["lag"].to_numpy(float) / bin_size_s})
    if "pattern_offsets_bins" in params:
        recorded = params["pattern_offsets_bins"]
        try:
            offsets = np.asarray(json.loads(recorded) if isinstance(recorded, str) else recorded, dtype=float)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where} is damaged: pattern_offsets_bins {recorded!r}") from err
        if offsets.shape != (n_patterns,):
            raise ValueError(f"{where} is damaged: pattern_offsets_bins holds {offsets.size} value(s) for "
                             f"{n_patterns} pattern(s)")
    else:
        offsets = _estimated_offsets(filters, membership, where)
    spans = np.tile([-(width // 2), width - 1 - width // 2], (n_patterns, 1)).astype(float)
    for k in range(n_patterns):
        lags = membership.loc[(membership["pattern"] == k) & membership["member"], "lag"].to_numpy(float)
        lags = lags[np.isfinite(lags)]
        if lags.size:
            spans[k] = (lags.min(), lags.max())
    lag_tolerance = params.get("lag_tolerance_used")
    if not isinstance(lag_tolerance, int):
        lag_tolerance = model.lag_tolerance if model.lag_tolerance is not None else max(1, width // 20)
    _fit_state(model, filters, membership, offsets, spans, lag_tolerance, params.get("backend_used", ""),
               params.get("n_folds_used", 0) if isinstance(params.get("n_folds_used"), int) else 0, where,
               tested_filters)
    names = table.loc[table["pattern"] == 0, "name"].astype(str).tolist()
    return SavedModel(model, bin_size_s, names, stored.patterns["n_occurrences"].to_numpy(np.int64), params,
                      source=source)

