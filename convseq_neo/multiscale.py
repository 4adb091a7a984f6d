"""Patterns of several time scales in one result: :class:`MultiScaleResult`.

An automatic :func:`~convseq_neo.detect` (``width="auto"``) fits one model per time scale
(:mod:`convseq_neo.scales`) and :meth:`DetectionResult.find <convseq_neo.result.DetectionResult.find>`
with several ``warp`` factors searches one per factor. Each such search is a full
:class:`~convseq_neo.result.DetectionResult` on its own binning, with its own raster, responses,
thresholds and model: they are kept as they are, in :attr:`MultiScaleResult.results`. What this
class adds is the one view a user reads: the patterns kept from all of them, numbered ``0, 1,
...`` in one sequence (finest scale first), each with its own ``bin_size`` and ``width``, and the
occurrences of all of them in one table, on the recording's clock. Occurrences of different scales
may overlap in time.
"""

from __future__ import annotations

import dataclasses
import json
import logging

import neo
import numpy as np
import pandas as pd
import quantities as pq

from convseq_neo.result import EPOCH_NAME, OCCURRENCE_COLUMNS, DetectionResult, Pattern, _flat

logger = logging.getLogger(__name__)

__all__ = ["MultiScaleResult", "SCALE_COLUMNS"]

#: Columns :attr:`MultiScaleResult.occurrences` adds to those of a single-scale result.
SCALE_COLUMNS = ["scale", "bin_size", "width", "warp"]


class MultiScaleResult:
    """Patterns found at several time scales (or warps), in one numbering, with Neo and SPADE-style exports.

    Built by :func:`~convseq_neo.detect` when the time scale is searched (``width="auto"``, the
    default) and by :meth:`DetectionResult.find <convseq_neo.result.DetectionResult.find>` with
    several ``warp`` factors; not meant to be built by hand.

    Attributes
    ----------
    results : tuple of DetectionResult
        One per scale searched (finest first), each complete on its own binning: its
        ``raster``, ``responses``, ``thresholds``, ``model``, ``parameters`` and its own pattern
        numbering. Scales where nothing was kept are here too.
    pattern_map : pandas.DataFrame
        One row per kept pattern: ``pattern`` (the number used everywhere in this result),
        ``scale`` (index into :attr:`results`), ``local_pattern`` (its number in that result),
        ``bin_size`` and ``width`` (s) and ``warp``. A search of learned patterns (``find``) adds
        ``source_pattern``: the pattern's number in the result searched from.
    patterns : list of Pattern
        The kept patterns, renumbered by :attr:`pattern_map`, each with its ``bin_size`` and
        ``width``.
    occurrences : pandas.DataFrame
        The significant occurrences of the kept patterns, sorted by ``center``: the columns of
        :attr:`DetectionResult.occurrences <convseq_neo.result.DetectionResult.occurrences>`
        (``pattern`` renumbered; ``segment`` with several segments), then ``scale``,
        ``bin_size`` (s), ``width`` (s) and ``warp`` (and ``source_pattern`` for a ``find``).
    search : pandas.DataFrame
        The evidence for every fit tried, one row per fit and pattern (see
        :func:`~convseq_neo.detect`, *Automatic time scale*): ``scale``, ``bin_size``, ``width``
        (s), ``width_bins``, ``warp``, ``n_patterns`` (of that fit), ``pattern`` (within that
        fit), ``n_occurrences`` (significant, cross-fitted), ``n_members``, ``min_pvalue``,
        ``alpha`` (the level that fit was tested at), ``seconds`` (of that fit), ``chosen``
        (the fit kept at that scale) and ``kept`` (the global pattern number, or -1: not kept,
        with the reason in ``note``).
    parameters : dict
        Flat record of the search (str/int/float/bool): the method, the scales, ``alpha`` for
        the whole search and each fit's, and the number of fits.
    """

    def __init__(self, results, pattern_map: pd.DataFrame, search: pd.DataFrame, parameters: dict) -> None:
        self.results = tuple(results)
        if not self.results:
            raise ValueError("results must hold at least one DetectionResult")
        for item in self.results:
            if not isinstance(item, DetectionResult):
                raise TypeError(f"results must hold DetectionResult objects, got {type(item).__name__}")
        self.pattern_map = pattern_map.reset_index(drop=True)
        self.search = search.reset_index(drop=True)
        self.parameters = dict(parameters)
        self.patterns = self._patterns()
        self.occurrences = self._occurrences()
        self.parameters["n_occurrences"] = len(self.occurrences)
        self.parameters["n_patterns_kept"] = len(self.patterns)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_warps(cls, results, spiketrains, warps, **search) -> MultiScaleResult:
        """Search every pattern of every result in ``results`` on ``spiketrains`` at each compression factor.

        Each (result, factor) search is tested at its model's ``alpha / len(warps)`` (Bonferroni
        over the factors); every pattern is kept, result by result, factor by factor.
        """
        parents = [(result.model, float(result.raster.bin_size_s), result.raster.n_neurons,
                    [(p.pattern_id, p.pattern_id) for p in result.patterns]) for result in results]
        return _warped_search(parents, spiketrains, warps, search)

    def _patterns(self) -> list[Pattern]:
        patterns = []
        for row in self.pattern_map.itertuples(index=False):
            local = self.results[int(row.scale)].patterns[int(row.local_pattern)]
            patterns.append(dataclasses.replace(local, pattern_id=int(row.pattern)))
        return patterns

    def _occurrences(self) -> pd.DataFrame:
        frames = []
        for row in self.pattern_map.itertuples(index=False):
            occ = self.results[int(row.scale)].occurrences
            rows = occ[occ["pattern"] == int(row.local_pattern)].copy()
            rows["pattern"] = int(row.pattern)
            rows["scale"] = int(row.scale)
            rows["bin_size"] = float(row.bin_size)
            rows["width"] = float(row.width)
            rows["warp"] = float(row.warp)
            if "source_pattern" in self.pattern_map:
                rows["source_pattern"] = int(row.source_pattern)
            frames.append(rows)
        columns = list(OCCURRENCE_COLUMNS) + (["segment"] if self.n_segments > 1 else []) + SCALE_COLUMNS
        if "source_pattern" in self.pattern_map:
            columns.append("source_pattern")
        if not frames:
            return pd.DataFrame({name: pd.Series(dtype=float) for name in columns}).astype(
                {"pattern": np.int64, "scale": np.int64})
        table = pd.concat(frames, ignore_index=True)[columns]
        keys = (["segment"] if self.n_segments > 1 else []) + ["center", "pattern"]
        return table.sort_values(keys, kind="stable").reset_index(drop=True)

    # ------------------------------------------------------------------ views
    @property
    def n_patterns(self) -> int:
        """Number of kept patterns."""
        return len(self.patterns)

    @property
    def n_segments(self) -> int:
        """Number of segments the recording spans (as in :class:`DetectionResult`)."""
        return self.results[0].n_segments

    @property
    def unit_names(self) -> tuple:
        """The units' names, as in :class:`DetectionResult` (the same for every scale)."""
        return self.results[0].unit_names

    @property
    def scales(self) -> pd.DataFrame:
        """One row per searched scale: ``scale``, ``bin_size`` and ``width`` (s), ``warp`` and the patterns kept."""
        rows = []
        for index, result in enumerate(self.results):
            kept = self.pattern_map[self.pattern_map["scale"] == index]["pattern"].tolist()
            rows.append({"scale": index, "bin_size": float(result.raster.bin_size_s),
                         "width": float(result.raster.bin_size_s) * int(result.model.width),
                         "warp": float(result.parameters.get("warp", 1.0)), "patterns": kept})
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        widths = ", ".join(f"{w * 1e3:.4g} ms" for w in self.scales["width"])
        return (f"MultiScaleResult({self.n_patterns} pattern(s), {len(self.occurrences)} occurrence(s), "
                f"{len(self.results)} scale(s): {widths})")

    def _check_segment(self, segment, method: str) -> int | None:
        return self.results[0]._check_segment(segment, method)

    def _occurrences_of(self, segment: int | None) -> pd.DataFrame:
        if segment is None or self.n_segments == 1:
            return self.occurrences
        return self.occurrences[self.occurrences["segment"] == segment]

    # ------------------------------------------------------------------ Neo
    def to_epoch(self, segment: int | None = None) -> neo.Epoch:
        """The significant occurrences of every scale as one :class:`neo.Epoch` named ``"convseq_occurrences"``.

        As :meth:`DetectionResult.to_epoch <convseq_neo.result.DetectionResult.to_epoch>`, with the
        array annotations ``bin_size``, ``width`` (s) and ``warp`` giving each occurrence's scale.
        Annotations: :attr:`parameters`.

        Parameters
        ----------
        segment : int, optional
            For a result of several segments (required then): the segment to export.

        Returns
        -------
        neo.Epoch
        """
        part = self._check_segment(segment, "to_epoch")
        occ = self._occurrences_of(part)
        array_annotations = {"pattern_id": occ["pattern"].to_numpy(np.int64),
                             "center": occ["center"].to_numpy(float), "peak": occ["peak"].to_numpy(float),
                             "pvalue": occ["pvalue"].to_numpy(float), "bin_size": occ["bin_size"].to_numpy(float),
                             "width": occ["width"].to_numpy(float), "warp": occ["warp"].to_numpy(float)}
        annotations = {f"convseq_{key}": _flat(value) for key, value in self.parameters.items()}
        if part is not None and self.n_segments > 1:
            array_annotations["occurrence"] = occ.index.to_numpy(np.int64)
            annotations["segment_index"] = int(part)
        return neo.Epoch(times=pq.Quantity(occ["onset"].to_numpy(float), "s"),
                         durations=pq.Quantity((occ["offset"] - occ["onset"]).to_numpy(float), "s"),
                         labels=np.array([f"pattern{k}" for k in occ["pattern"]], dtype="U32"), name=EPOCH_NAME,
                         description="convSeq occurrences at several time scales: times are onsets (earliest "
                                     "member), durations reach the latest member; array annotations bin_size, width "
                                     "and warp give each occurrence's scale",
                         array_annotations=array_annotations, **annotations)

    def to_groups(self, spiketrains=None) -> list[neo.Group]:
        """One :class:`neo.Group` per kept pattern holding its member trains, with its scale.

        As :meth:`DetectionResult.to_groups <convseq_neo.result.DetectionResult.to_groups>`
        (same annotations), named ``"pattern{k}"`` in this result's numbering, with the extra
        annotations ``bin_size`` and ``width`` (s) and ``warp``.

        Parameters
        ----------
        spiketrains : list of neo.SpikeTrain, SpikeTrainList or neo.Segment, optional
            The trains the patterns were learned on (default: those given to :func:`detect`).

        Returns
        -------
        list of neo.Group
        """
        groups = []
        by_scale: dict[int, list[neo.Group]] = {}
        for row in self.pattern_map.itertuples(index=False):
            scale = int(row.scale)
            if scale not in by_scale:
                by_scale[scale] = self.results[scale].to_groups(spiketrains)
            group = by_scale[scale][int(row.local_pattern)]
            group.name = f"pattern{int(row.pattern)}"
            group.annotations.update({"pattern_id": int(row.pattern), "bin_size": float(row.bin_size),
                                      "width": float(row.width), "warp": float(row.warp)})
            groups.append(group)
        return groups

    def annotate(self, segment: neo.Segment) -> tuple[neo.Epoch, list[neo.Group]]:
        """Add the Epoch to a Segment and the Groups to its Block (as :meth:`DetectionResult.annotate`).

        Parameters
        ----------
        segment : neo.Segment
            The segment holding the trains given to :func:`detect` (a result of one segment).

        Returns
        -------
        (neo.Epoch, list of neo.Group)
            The objects added (the Groups are stored only when the Segment belongs to a Block).

        Raises
        ------
        TypeError
            ``segment`` is not a neo.Segment.
        ValueError
            A result of several segments (annotate each scale's result instead, through
            :attr:`results`), or trains that do not match.
        """
        if not isinstance(segment, neo.Segment):
            raise TypeError(f"segment must be a neo.Segment, got {type(segment).__name__}")
        if self.n_segments > 1:
            raise ValueError("this result spans several segments: annotate a Block through each scale's result "
                             "(result.results[i].annotate(block)) or export per segment with to_epoch(segment=...)")
        groups = self.to_groups(segment.spiketrains)
        epoch = self.to_epoch()
        DetectionResult._store(segment, segment.block, [epoch], groups)
        return epoch, groups

    def to_spade_dict(self, segment: int | None = None) -> dict:
        """The kept patterns in Elephant SPADE's output shape, each with its own scale.

        As :meth:`DetectionResult.to_spade_dict <convseq_neo.result.DetectionResult.to_spade_dict>`,
        each entry numbered in this result's numbering and with the extra keys ``bin_size`` and
        ``width`` (Quantity, s) and ``warp``.

        Returns
        -------
        dict
            ``{"patterns": [...], "parameters": {...}}``.
        """
        part = self._check_segment(segment, "to_spade_dict")
        entries = []
        for row in self.pattern_map.itertuples(index=False):
            spade = self.results[int(row.scale)].to_spade_dict(segment=part)
            for entry in spade["patterns"]:
                if entry["pattern_id"] != int(row.local_pattern):
                    continue
                entries.append({**entry, "pattern_id": int(row.pattern), "bin_size": pq.Quantity(row.bin_size, "s"),
                                "width": pq.Quantity(row.width, "s"), "warp": float(row.warp)})
        parameters = dict(self.parameters)
        if part is not None and self.n_segments > 1:
            parameters["segment_index"] = part
        return {"patterns": entries, "parameters": parameters}

    # ------------------------------------------------------------------ new data
    def find(self, spiketrains, *, t_start=None, t_stop=None, intervals=None, segment_index=None, random_state=None,
             warp=None) -> MultiScaleResult:
        """Search every kept pattern in another recording, each at its own scale (and optionally warped).

        Each scale's model is applied at its own bin size (times ``1 / warp``), as
        :meth:`DetectionResult.find <convseq_neo.result.DetectionResult.find>` does; with several
        ``warp`` factors each search is tested at its model's ``alpha / len(warp)``. Only the
        scales with a kept pattern are searched.

        Parameters
        ----------
        spiketrains, t_start, t_stop, intervals, segment_index, random_state
            As for :meth:`DetectionResult.find <convseq_neo.result.DetectionResult.find>`.
        warp : float or sequence of float, optional
            Compression factors (``10``: ten times faster). Default: each pattern's own scale.

        Returns
        -------
        MultiScaleResult
            One search per (scale, factor); every pattern is kept, in this result's order.
        """
        from convseq_neo.result import check_warp

        warps = check_warp(warp) or [1.0]
        search = dict(t_start=t_start, t_stop=t_stop, intervals=intervals, segment_index=segment_index,
                      random_state=random_state, unit_names=self.unit_names)
        if not self.n_patterns:
            raise ValueError("this result kept no pattern: there is nothing to find")
        parents = []
        for scale in sorted(set(self.pattern_map["scale"].astype(int))):
            rows = self.pattern_map[self.pattern_map["scale"] == scale]
            local = list(zip(rows["local_pattern"].astype(int), rows["pattern"].astype(int)))
            parent = self.results[scale]
            parents.append((parent.model, float(parent.raster.bin_size_s), parent.raster.n_neurons, local))
        return _warped_search(parents, spiketrains, warps, search)

    # ------------------------------------------------------------------ figures
    def plot_search(self, figsize=None):
        """The evidence for every scale tried: significant occurrences of each fit's patterns against the window.

        Returns
        -------
        matplotlib.figure.Figure
            One marker per (fit, pattern): x the window (or the warp for a warped search), y the
            number of significant held-out occurrences; the kept patterns filled and labelled.
        """
        from convseq_neo.plot.figures import plot_scale_search

        return plot_scale_search(self, figsize=figsize)

    def plot(self, scale: int = 0, time_range=None, figsize=None):
        """The detection figure of one scale (:meth:`DetectionResult.plot` of ``results[scale]``)."""
        if not isinstance(scale, (int, np.integer)) or not 0 <= int(scale) < len(self.results):
            raise ValueError(f"scale must be an index into results (0 to {len(self.results) - 1}), got {scale!r}")
        return self.results[int(scale)].plot(time_range=time_range, figsize=figsize)


def _warped_search(parents: list, spiketrains, warps: list[float], search: dict) -> MultiScaleResult:
    """One search per (parent model, warp factor); the listed local patterns of each parent kept, in order.

    ``parents``: ``(fitted model, its bin size in s, its number of neurons, [(local pattern, source pattern), ...])``:
    the patterns to keep, by their number in the model and their number in the result searched from
    (``source_pattern`` of the new pattern map).
    """
    from convseq_neo.result import _apply_model

    found, kept, rows = [], [], []
    n = len(warps)
    for model, bin_size_s, n_neurons, local_patterns in parents:
        alpha = float(model.alpha) / n
        for warp in warps:
            result = _apply_model(model, bin_size_s, n_neurons, spiketrains, warp=None if warp == 1.0 else warp,
                                  alpha=alpha if n > 1 else None, **search)
            index = len(found)
            found.append(result)
            for local, source in local_patterns:
                kept.append({"pattern": len(kept), "scale": index, "local_pattern": int(local),
                             "bin_size": float(result.raster.bin_size_s),
                             "width": float(result.raster.bin_size_s) * int(result.model.width), "warp": float(warp),
                             "source_pattern": int(source)})
            numbers = {row["local_pattern"]: row["pattern"] for row in kept if row["scale"] == index}
            for pattern in result.patterns:
                rows.append(_evidence_row(result, index, pattern, alpha=alpha, warp=float(warp), chosen=True,
                                          kept=numbers.get(pattern.pattern_id, -1)))
    parameters = {"method": "convseq", "applied": "find", "warps": json.dumps(warps),
                  "n_searches": len(found), "alpha_divided_by": n}
    columns = ["pattern", "scale", "local_pattern", "bin_size", "width", "warp", "source_pattern"]
    return MultiScaleResult(found, pd.DataFrame(kept, columns=columns), pd.DataFrame(rows), parameters)


def _evidence_row(result: DetectionResult, scale: int, pattern: Pattern, *, alpha: float, warp: float, chosen: bool,
                  kept: int, seconds: float = float("nan"), note: str = "") -> dict:
    """One row of :attr:`MultiScaleResult.search`: a fit's pattern and its held-out evidence."""
    occ = result.occurrences[result.occurrences["pattern"] == pattern.pattern_id]
    return {"scale": scale, "bin_size": float(result.raster.bin_size_s),
            "width": float(result.raster.bin_size_s) * int(result.model.width), "width_bins": int(result.model.width),
            "warp": warp, "n_patterns": int(result.model.filters_.shape[0]), "pattern": int(pattern.pattern_id),
            "n_occurrences": len(occ), "n_members": pattern.size,
            "min_pvalue": float(occ["pvalue"].min()) if len(occ) else float("nan"), "alpha": float(alpha),
            "seconds": seconds, "chosen": chosen, "kept": kept, "note": note}
