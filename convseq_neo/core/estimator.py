"""ConvSeq: the scikit-learn-style front of the torch core (bins and plain arrays only)."""

from __future__ import annotations

import inspect
import logging

import numpy as np
import pandas as pd
import torch
from scipy.optimize import linear_sum_assignment
from tqdm.auto import tqdm

from convseq_neo._validation import (
    check_nonnegative_float,
    check_positive_int,
    check_probability,
    check_random_state,
    resolve_device,
    torch_generator,
)
from convseq_neo.core.membership import MEMBERSHIP_COLUMNS, membership_for_pattern
from convseq_neo.core.objective import default_tv_weight
from convseq_neo.core.occurrences import occurrence_table, pattern_geometry, suppress_cross_talk
from convseq_neo.core.response import MAX_DENSE_CELLS, make_response, response_length
from convseq_neo.core.significance import (
    benjamini_hochberg,
    empirical_pvalues,
    fold_regions,
    null_peak_heights,
    peaks_in_region,
    random_filter_threshold,
    training_masks,
)
from convseq_neo.core.splitting import split_occurrences
from convseq_neo.core.training import TrainingSettings, train_filters
from convseq_neo.raster import SpikeRaster

logger = logging.getLogger(__name__)

__all__ = ["ConvSeq"]

_SIGNIFICANCE = ("crossfit", "random_filters")
_N_RANDOM_FILTERS = 64


class ConvSeq:
    """Learn K spatiotemporal filters whose responses peak where a spike sequence occurs (convSeq).

    Each filter is ``N x W``: one softmax over ``W`` time bins per neuron. Filters are trained by
    full-batch Adam to maximise the variance of their response to the binned raster while keeping
    it smooth (Koshkin & Fukai, ICML 2024). Patterns are learned one after another: times already
    explained by an earlier pattern's occurrences are left out of a later filter's objective and
    its response there is penalised, so ``K > 1`` filters find different patterns (a sequence and
    its reverse on the same neurons included). Each pattern is kept centred in its window while
    training.

    Parameters
    ----------
    n_patterns : int, default 1
        Number of patterns ``K`` to learn.
    width : int, default 200
        Filter width ``W`` in bins (at least 2).
    tv_weight : float, optional
        Weight of the smoothness term. Default ``0.005 * W**2`` (the paper's 200 at ``W = 200``;
        the variance/smoothness ratio scales as ``1 / W**2``).
    decorrelation_weight : float, default 1.0
        For ``K > 1``: weight of the penalty on a filter's response above its mean at times
        already explained by earlier patterns (1.0 cancels any variance it could gain there).
    lr : float, default 0.1
        Adam learning rate.
    max_epochs : int, default 2000
        Upper bound on training epochs per pattern.
    min_epochs : int, default 300
        No convergence stop before this many epochs (training curves sit on a plateau for
        about 150 epochs before they converge).
    tol : float, default 1e-4
        Convergence: relative improvement of the best loss over ``patience`` epochs below this.
    patience : int, default 100
        Window of the convergence rule, in epochs.
    n_init : int, default 2
        Random initialisations trained together in one batch; the lowest final loss is kept.
    alpha : float, default 0.05
        False discovery rate (Benjamini-Hochberg) over all candidate peaks of a recording, and
        over neurons for membership. On a recording with nothing in it every detection is false,
        so the chance of any false occurrence is at most about ``alpha``.
    significance : {"crossfit", "random_filters"}, default "crossfit"
        How occurrences in the training data are tested (see Notes). "random_filters" is the
        reference's threshold (mean + 5 SD of random filters' responses), kept for comparison: it
        is not a valid null for trained filters.
    n_folds : int, default 5
        Cross-fitting folds (contiguous in time).
    n_surrogates : int, default 200
        Circular-shift surrogates per null (the smallest attainable p-value is about
        ``1 / (n_surrogates * peaks per fold)``).
    lag_tolerance : int, optional
        Half-width in bins of the lag window used by the membership test. Default ``max(1, W // 20)``.
    recenter_every : int, default 25
        Epochs between re-centrings of each pattern in its window (0 disables).
    backend : {"auto", "events", "dense"}, default "auto"
        How responses are computed: over spikes ("events": sparse product, never an ``N x T``
        dense array) or by a dense 1-D convolution ("dense"). "auto" picks by density and size and
        never densifies a raster larger than ``MAX_DENSE_CELLS`` cells.
    device : {"auto", "cpu", "cuda"} or torch.device, default "auto"
        "auto" uses CUDA when available, else the CPU.
    random_state : int, numpy.random.Generator or None
        Seeds local numpy and torch generators; global RNG state is never read or set. The same
        seed gives the same result on the CPU. On CUDA the scatter-adds of the event path run in
        no fixed order, so two fits with the same seed agree to float32 rounding (filters within
        about 1e-6), not bit for bit.
    progress : bool, default False
        Show tqdm progress bars.

    Attributes
    ----------
    filters_ : ndarray, shape (K, N, W)
        Filters fit on all the data (rows sum to 1).
    responses_ : ndarray, shape (K, L)
        Their responses to the training raster (``L = T + 2 (W // 2) - W + 1``).
    tested_responses_ : ndarray, shape (K, L)
        The responses that were tested: in each fold, the response of the filter that did not
        see that fold (``significance="crossfit"``), moved by that filter's time shift
        (``fold_shifts_``) into the all-data filter's frame, so that each occurrence's peak bin
        holds its tested height; NaN at the few fold-border bins no fold covers after the shift.
        Equal to ``responses_`` otherwise.
    fold_shifts_ : ndarray of int, shape (n_folds, K)
        Bins added to a fold filter's peak times to bring them into the all-data filter's frame
        (``significance="crossfit"`` only).
    thresholds_ : ndarray, shape (K, L)
        Height a peak needed at each time to be significant (per fold, in the same frame as
        ``tested_responses_``; constant for "random_filters"; ``inf`` where nothing could be).
    loss_history_ : ndarray, shape (K, n_epochs)
        Loss of the kept all-data filter per epoch (NaN-padded after it stopped).
    n_epochs_ : ndarray of int, shape (K,)
    stop_reason_ : list of str
        "converged" or "max_epochs" per pattern.
    occurrences_ : pandas.DataFrame
        Every candidate peak: ``pattern``, ``center``, ``onset``, ``offset`` (bins, float),
        ``peak`` (tested response height), ``pvalue`` (per peak, before correction; NaN for
        "random_filters") and ``significant`` (after the BH correction).
    membership_ : pandas.DataFrame
        ``pattern``, ``neuron``, ``score``, ``pvalue``, ``member``, ``lag`` (bins relative to the
        pattern centre).
    pattern_offsets_ : ndarray, shape (K,)
        Pattern centre relative to the window centre, in bins.
    random_filter_threshold_ : float
        The reference threshold on the training data (for comparison).

    Notes
    -----
    **What a p-value means.** With ``significance="crossfit"`` the recording's response times are
    cut into ``n_folds`` contiguous folds. For fold ``f`` a filter (one per pattern) is trained on
    the other folds only, leaving out a guard band of ``W`` bins around fold ``f`` so that no
    training window shares a spike with a test window. Its response on fold ``f`` is then a
    statistic of data it never saw. The null is the distribution of that same fixed filter's peak
    heights (local maxima at least ``W`` bins apart, as for the candidates) on ``n_surrogates``
    surrogates in which each neuron's train is circularly shifted by its own random offset: every
    neuron keeps its spikes, rate and temporal structure, and only the alignment between neurons,
    which a sequence needs, is destroyed. A candidate's p-value is the fraction of null peaks at
    least as high (``(1 + #) / (1 + n)``), i.e. the chance that data without cross-neuron
    alignment produce a peak as high. Significance is Benjamini-Hochberg over all candidates of
    all patterns at ``alpha``. Testing a trained filter against its own training data is too
    liberal (training maximises exactly the chance coincidences a surrogate lacks); cross-fitting
    removes that bias at the price of training on ``(n_folds - 1) / n_folds`` of the data. Fold
    filters are matched to the all-data filters by their shape, and the tested peaks are aligned
    to the all-data filter's frame. ``filters_`` are those fit on all the data; membership,
    lags and centres come from the significant occurrences.

    Examples
    --------
    >>> import numpy as np
    >>> from convseq_neo import ConvSeq
    >>> rng = np.random.default_rng(0)
    >>> raster = (rng.random((30, 3000)) < 0.01).astype(int)
    >>> for start in range(100, 2900, 250):           # 30 neurons firing in order every 250 bins
    ...     raster[np.arange(30), start + np.arange(30)] = 1
    >>> model = ConvSeq(width=40, max_epochs=300, min_epochs=100, n_surrogates=50, random_state=0).fit(raster)
    >>> model.filters_.shape
    (1, 30, 40)
    >>> found = model.occurrences_[model.occurrences_["significant"]]
    >>> len(found) >= 9
    True
    """

    def __init__(self, n_patterns: int = 1, width: int = 200, *, tv_weight: float | None = None,
                 decorrelation_weight: float = 1.0, lr: float = 0.1, max_epochs: int = 2000, min_epochs: int = 300,
                 tol: float = 1e-4, patience: int = 100, n_init: int = 2, alpha: float = 0.05,
                 significance: str = "crossfit", n_folds: int = 5, n_surrogates: int = 200,
                 lag_tolerance: int | None = None, recenter_every: int = 25, backend: str = "auto",
                 device="auto", random_state=None, progress: bool = False) -> None:
        self.n_patterns = n_patterns
        self.width = width
        self.tv_weight = tv_weight
        self.decorrelation_weight = decorrelation_weight
        self.lr = lr
        self.max_epochs = max_epochs
        self.min_epochs = min_epochs
        self.tol = tol
        self.patience = patience
        self.n_init = n_init
        self.alpha = alpha
        self.significance = significance
        self.n_folds = n_folds
        self.n_surrogates = n_surrogates
        self.lag_tolerance = lag_tolerance
        self.recenter_every = recenter_every
        self.backend = backend
        self.device = device
        self.random_state = random_state
        self.progress = progress

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        return [name for name in inspect.signature(cls.__init__).parameters if name != "self"]

    def get_params(self, deep: bool = True) -> dict:
        """The hyper-parameters given to ``__init__``, by name (scikit-learn's contract).

        Parameters
        ----------
        deep : bool
            Accepted for scikit-learn compatibility; ConvSeq holds no nested estimators.

        Returns
        -------
        dict
            ``{name: value}`` for every ``__init__`` parameter.

        Examples
        --------
        >>> ConvSeq(width=60).get_params()["width"]
        60
        """
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> ConvSeq:
        """Set hyper-parameters by name and check them all (scikit-learn's contract); returns self.

        Raises
        ------
        TypeError
            For a name that is not an ``__init__`` parameter.
        ValueError, TypeError
            From :meth:`check_params` for a bad value (the model is left unchanged).

        Examples
        --------
        >>> ConvSeq().set_params(width=60, n_patterns=2).width
        60
        """
        names = self._param_names()
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise TypeError(f"ConvSeq has no parameter(s) {', '.join(map(repr, unknown))}; its parameters are "
                            f"{', '.join(names)}")
        previous = self.get_params()
        for name, value in params.items():
            setattr(self, name, value)
        try:
            self.check_params()
        except (TypeError, ValueError):
            for name, value in previous.items():
                setattr(self, name, value)
            raise
        return self

    # ------------------------------------------------------------------ validation
    def check_params(self) -> None:
        """Check every hyper-parameter; raise ``TypeError``/``ValueError`` naming the bad one.

        :meth:`fit` runs it first; callers that prepare heavy work (binning a recording) run it before.

        Examples
        --------
        >>> ConvSeq(width=1).check_params()
        Traceback (most recent call last):
        ...
        ValueError: width must be an int >= 2, got 1
        """
        check_positive_int(self.n_patterns, "n_patterns")
        check_positive_int(self.width, "width", minimum=2)
        if self.tv_weight is not None:
            check_nonnegative_float(self.tv_weight, "tv_weight")
        check_nonnegative_float(self.decorrelation_weight, "decorrelation_weight")
        check_nonnegative_float(self.lr, "lr", positive=True)
        check_positive_int(self.max_epochs, "max_epochs")
        check_positive_int(self.min_epochs, "min_epochs", minimum=0)
        check_nonnegative_float(self.tol, "tol")
        check_positive_int(self.patience, "patience")
        check_positive_int(self.n_init, "n_init")
        alpha = check_probability(self.alpha, "alpha")
        if alpha == 0:
            raise ValueError("alpha must be in (0, 1], got 0")
        if self.significance not in _SIGNIFICANCE:
            raise ValueError(f"significance must be one of {_SIGNIFICANCE}, got {self.significance!r}")
        check_positive_int(self.n_folds, "n_folds", minimum=2)
        check_positive_int(self.n_surrogates, "n_surrogates")
        if self.lag_tolerance is not None:
            check_positive_int(self.lag_tolerance, "lag_tolerance", minimum=0)
        check_positive_int(self.recenter_every, "recenter_every", minimum=0)
        if self.backend not in ("auto", "events", "dense"):
            raise ValueError(f"backend must be 'auto', 'events' or 'dense', got {self.backend!r}")
        resolve_device(self.device)
        check_random_state(self.random_state)
        if not isinstance(self.progress, (bool, np.bool_)):
            raise TypeError(f"progress must be a bool, got {type(self.progress).__name__}")

    def _check_raster(self, raster, name: str = "raster") -> SpikeRaster:
        raster = SpikeRaster.coerce(raster, name)
        if raster.nnz == 0:
            raise ValueError(f"{name} holds no spikes: there is nothing to learn from")
        if self.width > raster.n_bins:
            raise ValueError(f"width ({self.width} bins) is longer than the recording ({raster.n_bins} bins); "
                             "pass a shorter width")
        if self.backend == "dense" and raster.n_neurons * raster.n_bins > 4 * MAX_DENSE_CELLS:
            raise ValueError(f"backend='dense' would need a {raster.n_neurons} x {raster.n_bins} dense array; "
                             "use backend='events'")
        return raster

    def _effective_folds(self, length: int) -> int:
        n_folds = int(self.n_folds)
        while n_folds >= 2 and length / n_folds < 2 * self.width:
            n_folds -= 1
        if n_folds < 2:
            raise ValueError(
                f"the recording ({length} response bins) is too short for cross-fitted significance with "
                f"width={self.width}: it needs at least {4 * self.width} bins. Use a shorter width, a longer "
                "recording, or significance='random_filters'")
        if n_folds != self.n_folds:
            logger.warning("n_folds reduced from %d to %d so that each fold spans at least 2 W bins", self.n_folds,
                           n_folds)
        return n_folds

    # ------------------------------------------------------------------ fitting
    def fit(self, raster, y=None) -> ConvSeq:
        """Learn the filters, test their occurrences and find each pattern's members.

        Parameters
        ----------
        raster : SpikeRaster, ndarray (N, T) or scipy sparse matrix
            Binned spike counts (non-negative, no NaN).
        y : ignored

        Returns
        -------
        self
        """
        self.check_params()
        raster = self._check_raster(raster)
        rng = check_random_state(self.random_state)
        device = resolve_device(self.device)
        generator = torch_generator(rng, device)
        width = int(self.width)
        n_patterns = int(self.n_patterns)
        length = response_length(raster.n_bins, width)
        crossfit = self.significance == "crossfit"
        n_folds = self._effective_folds(length) if crossfit else 0
        op = make_response(raster, width, backend=self.backend, device=device)
        self.backend_ = op.name
        self.n_folds_ = n_folds

        regions = fold_regions(length, n_folds) if crossfit else []
        model_masks = np.vstack([np.ones((1, length), dtype=bool)]
                                + ([training_masks(length, regions, width)] if crossfit else []))
        n_models = model_masks.shape[0]
        n_init = int(self.n_init)
        train_mask = torch.as_tensor(np.repeat(model_masks, n_init, axis=0), device=device)
        explained = np.zeros((n_models, length), dtype=bool)
        self.random_filter_threshold_ = random_filter_threshold(op, _N_RANDOM_FILTERS, generator)
        self.lag_tolerance_ = max(1, width // 20) if self.lag_tolerance is None else int(self.lag_tolerance)
        order = np.argsort(raster.bin_index, kind="stable")
        raster_sorted = (raster.bin_index[order], raster.neuron_index[order],
                         np.asarray(raster.counts[order], dtype=float))
        settings = TrainingSettings(
            tv_weight=default_tv_weight(width) if self.tv_weight is None else float(self.tv_weight),
            explained_weight=float(self.decorrelation_weight), lr=float(self.lr), max_epochs=int(self.max_epochs),
            min_epochs=int(self.min_epochs), tol=float(self.tol), patience=int(self.patience),
            recenter_every=int(self.recenter_every), progress=bool(self.progress))

        model_filters = np.zeros((n_models, n_patterns, raster.n_neurons, width), dtype=np.float32)
        histories, n_epochs, reasons = [], [], []
        for pattern in range(n_patterns):
            step = TrainingSettings(**{**settings.__dict__, "description": f"pattern {pattern + 1}/{n_patterns}"})
            explained_t = torch.as_tensor(np.repeat(explained, n_init, axis=0), device=device)
            outcome = train_filters(op, raster, train_mask, explained_t, step, generator)
            final = outcome.final_loss.reshape(n_models, n_init)
            best = final.argmin(axis=1)
            chosen = np.arange(n_models) * n_init + best
            with torch.no_grad():
                filters = torch.softmax(outcome.logits[chosen], dim=-1)
                responses = op(filters).cpu().numpy()
            history = outcome.loss_history[:, chosen[0]]
            if n_patterns > 1:
                split = self._split_times(raster, raster_sorted, responses, model_masks & ~explained, width)
                if split.any():
                    logger.info("pattern %d: occurrences split into two neuron-specific groups in %d of %d models; "
                                "keeping the stronger group", pattern, int(split.any(axis=1).sum()), n_models)
                    outcome = train_filters(
                        op, raster, torch.as_tensor(model_masks, device=device),
                        torch.as_tensor(explained | split, device=device),
                        TrainingSettings(**{**step.__dict__, "description": step.description + " (split)"}),
                        generator, initial_logits=outcome.logits[chosen])
                    with torch.no_grad():
                        filters = torch.softmax(outcome.logits, dim=-1)
                        responses = op(filters).cpu().numpy()
                    history = np.concatenate([history, outcome.loss_history[:, 0]])
            model_filters[:, pattern] = filters.cpu().numpy()
            histories.append(history)
            n_epochs.append(len(history))
            reasons.append(outcome.stop_reason)
            if pattern + 1 < n_patterns:
                explained |= self._explained_times(responses, model_masks & ~explained, width)

        self.filters_ = model_filters[0]
        tested_filters = self._restrict_to_members(op, raster, raster_sorted, model_filters, model_masks, device)
        self.pattern_filters_ = tested_filters[0]
        with torch.no_grad():
            self.responses_ = op(torch.as_tensor(self.filters_, device=device)).cpu().numpy()
        max_len = max(len(h) for h in histories)
        self.loss_history_ = np.vstack([np.pad(h, (0, max_len - len(h)), constant_values=np.nan) for h in histories])
        self.n_epochs_ = np.asarray(n_epochs)
        self.stop_reason_ = reasons

        if crossfit:
            candidates = self._crossfit_candidates(op, raster, tested_filters, regions, rng, device)
        else:
            candidates = self._random_filter_candidates(self.responses_, width)
        pattern_ids, peak_bins, heights, pvalues, significant = candidates
        self.membership_, self.pattern_offsets_, spans = self._membership(raster, raster_sorted,
                                                                           pattern_ids[significant],
                                                                           peak_bins[significant])
        self.occurrences_ = suppress_cross_talk(
            occurrence_table(pattern_ids, peak_bins, heights, pvalues, significant, self.pattern_offsets_, spans),
            self.lag_tolerance_)
        self.pattern_spans_ = spans
        self.n_neurons_ = raster.n_neurons
        self.n_bins_ = raster.n_bins
        logger.info("fit: %d significant occurrences over %d patterns", int(significant.sum()), n_patterns)
        return self

    def _explained_times(self, responses: np.ndarray, masks: np.ndarray, width: int) -> np.ndarray:
        """Times within half a window of a peak above the reference threshold (one row per model)."""
        explained = np.zeros_like(masks)
        for model in range(responses.shape[0]):
            peaks, heights = _masked_peaks(responses[model], masks[model], width)
            _mark_windows(explained[model], peaks[heights > self.random_filter_threshold_], width)
        return explained

    def _restrict_to_members(self, op, raster, raster_sorted, model_filters, model_masks, device) -> np.ndarray:
        """Each model's filters with the rows of neurons that are not members made uniform (1 / W).

        Every row of a trained filter also learns chance coincidences, which add noise to its
        response. For each model (the all-data fit and every cross-fitting fold) the members are
        found from that model's own training data only: its in-sample peaks above the reference
        threshold (at least the top 5) go through the membership test. A pattern with no member
        keeps its full filter.
        """
        n_models, n_patterns, _, width = model_filters.shape
        restricted = model_filters.copy()
        with torch.no_grad():
            responses = op(torch.as_tensor(model_filters.reshape(n_models * n_patterns, -1, width),
                                           device=device)).cpu().numpy().reshape(n_models, n_patterns, -1)
        for model in range(n_models):
            for pattern in range(n_patterns):
                peaks, heights = _masked_peaks(responses[model, pattern], model_masks[model], width)
                keep = heights > self.random_filter_threshold_
                if keep.sum() < 5:
                    keep = np.zeros_like(keep)
                    keep[np.argsort(heights)[::-1][:5]] = True
                table = membership_for_pattern(pattern, raster, raster_sorted, peaks[keep], width, self.lag_tolerance_,
                                               float(self.alpha))
                members = table["member"].to_numpy()
                if members.any():
                    restricted[model, pattern, ~members] = 1.0 / width
        return restricted

    def _split_times(self, raster, raster_sorted, responses: np.ndarray, masks: np.ndarray, width: int) -> np.ndarray:
        """Times of the weaker group wherever a model's occurrences split into two neuron-specific groups."""
        split = np.zeros_like(masks)
        for model in range(responses.shape[0]):
            peaks, heights = _masked_peaks(responses[model], masks[model], width)
            keep = heights > self.random_filter_threshold_
            weaker = split_occurrences(raster, raster_sorted, peaks[keep], heights[keep], width, self.lag_tolerance_,
                                       float(self.alpha))
            if weaker is not None:
                _mark_windows(split[model], weaker, width)
        return split

    def _crossfit_candidates(self, op, raster, model_filters, regions, rng, device):
        """Test each fold's peaks with the filter that did not see that fold; BH over all candidates."""
        n_patterns, width = model_filters.shape[1], model_filters.shape[-1]
        n_folds = len(regions)
        full = model_filters[0]
        fold_filters = []
        fold_shift = np.zeros((n_folds, n_patterns), dtype=np.int64)
        for fold in range(n_folds):
            order, shifts = _match_filters(full, model_filters[fold + 1])
            fold_filters.append(model_filters[fold + 1][order])
            fold_shift[fold] = shifts
        stacked = np.concatenate(fold_filters, axis=0)  # (n_folds * K, N, W), fold-major
        stacked_regions = [regions[fold] for fold in range(n_folds) for _ in range(n_patterns)]
        with torch.no_grad():
            tested = op(torch.as_tensor(stacked, device=device)).cpu().numpy()
        bar = tqdm(total=self.n_surrogates, desc="surrogates", disable=not self.progress, leave=False)
        null = null_peak_heights(raster, stacked, stacked_regions, width, int(self.n_surrogates), rng, device, bar)
        bar.close()
        pattern_ids, peak_bins, heights, pvalues = [], [], [], []
        self.thresholds_ = np.full((n_patterns, tested.shape[1]), np.inf)
        self.fold_shifts_ = fold_shift
        fold_of = []
        for fold, (start, stop) in enumerate(regions):
            for pattern in range(n_patterns):
                index = fold * n_patterns + pattern
                times, peak_heights = peaks_in_region(tested[index], start, stop, width)
                pattern_ids.append(np.full(times.size, pattern))
                peak_bins.append(times + fold_shift[fold, pattern])
                heights.append(peak_heights)
                pvalues.append(empirical_pvalues(peak_heights, null[index]))
                fold_of.append(np.full(times.size, index))
        pattern_ids, peak_bins, heights, pvalues, fold_of = (np.concatenate(a) for a in
                                                              (pattern_ids, peak_bins, heights, pvalues, fold_of))
        self.tested_responses_ = _tested_in_reference_frame(tested, n_patterns, regions, fold_shift, fold_of,
                                                            peak_bins, heights, width)
        significant, cutoff = benjamini_hochberg(pvalues, float(self.alpha))
        cutoff = cutoff if significant.any() else float(self.alpha) / max(1, pvalues.size)
        for fold, (start, stop) in enumerate(regions):
            for pattern in range(n_patterns):
                sample = np.sort(null[fold * n_patterns + pattern])
                # smallest height h with (1 + #null >= h) / (1 + n) <= cutoff: just above the (allowed + 1)-th highest
                allowed = int(np.floor(cutoff * (1 + sample.size) - 1))
                low, high = _shifted_span(start, stop, fold_shift[fold, pattern], self.thresholds_.shape[1])
                if 0 <= allowed < sample.size:
                    self.thresholds_[pattern, low:high] = np.nextafter(sample[sample.size - 1 - allowed], np.inf)
                elif allowed >= sample.size:
                    self.thresholds_[pattern, low:high] = -np.inf
        self.alpha_cutoff_ = cutoff
        return pattern_ids, peak_bins, heights, pvalues, significant

    def _random_filter_candidates(self, responses, width):
        """The reference procedure: in-sample peaks above one random-filter threshold, no p-values."""
        pattern_ids, peak_bins, heights = [], [], []
        for pattern in range(responses.shape[0]):
            times, peak_heights = peaks_in_region(responses[pattern], 0, responses.shape[1], width)
            pattern_ids.append(np.full(times.size, pattern))
            peak_bins.append(times)
            heights.append(peak_heights)
        pattern_ids, peak_bins, heights = (np.concatenate(a) for a in (pattern_ids, peak_bins, heights))
        self.tested_responses_ = responses.copy()
        self.thresholds_ = np.full(responses.shape, self.random_filter_threshold_)
        return pattern_ids, peak_bins, heights, np.full(heights.size, np.nan), heights > self.random_filter_threshold_

    def _membership(self, raster: SpikeRaster, raster_sorted, pattern_ids: np.ndarray, peak_bins: np.ndarray):
        frames = [membership_for_pattern(pattern, raster, raster_sorted, peak_bins[pattern_ids == pattern],
                                         int(self.width), self.lag_tolerance_, float(self.alpha))
                  for pattern in range(int(self.n_patterns))]
        membership = pd.concat(frames, ignore_index=True)[MEMBERSHIP_COLUMNS]
        offsets, spans = pattern_geometry(membership, int(self.n_patterns), int(self.width))
        membership["lag"] = membership["lag"] - offsets[membership["pattern"].to_numpy()]
        return membership, offsets, spans

    # ------------------------------------------------------------------ use on new data
    def _check_fitted(self) -> None:
        if not hasattr(self, "filters_"):
            raise RuntimeError("this ConvSeq instance is not fitted yet: call fit(raster) first")

    def _check_new_raster(self, raster) -> SpikeRaster:
        self._check_fitted()
        raster = self._check_raster(raster)
        if raster.n_neurons != self.filters_.shape[1]:
            raise ValueError(f"raster has {raster.n_neurons} neurons but the filters were fit on "
                             f"{self.filters_.shape[1]}")
        return raster

    def transform(self, raster) -> np.ndarray:
        """Responses of the learned filters to ``raster``: ndarray of shape (K, L)."""
        raster = self._check_new_raster(raster)
        device = resolve_device(self.device)
        op = make_response(raster, int(self.width), backend=self.backend, device=device)
        with torch.no_grad():
            return op(torch.as_tensor(self.filters_, device=device)).cpu().numpy()

    def find_occurrences(self, raster, random_state=None) -> pd.DataFrame:
        """Detect occurrences of the learned patterns in new data.

        The learned filters are fixed and did not see ``raster``, so each candidate peak is tested
        against the same filter's peaks on circular-shift surrogates of ``raster`` itself (BH at
        ``alpha`` over all candidates). Centres, onsets and offsets use the pattern geometry
        learned in :meth:`fit`.

        Returns
        -------
        pandas.DataFrame
            Columns as :attr:`occurrences_`.
        """
        raster = self._check_new_raster(raster)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        device = resolve_device(self.device)
        width = int(self.width)
        responses = self.transform(raster)
        length = responses.shape[1]
        regions = [(0, length)] * responses.shape[0]
        null = null_peak_heights(raster, self.filters_, regions, width, int(self.n_surrogates), rng, device)
        pattern_ids, peak_bins, heights, pvalues = [], [], [], []
        for pattern in range(responses.shape[0]):
            times, peak_heights = peaks_in_region(responses[pattern], 0, length, width)
            pattern_ids.append(np.full(times.size, pattern))
            peak_bins.append(times)
            heights.append(peak_heights)
            pvalues.append(empirical_pvalues(peak_heights, null[pattern]))
        pattern_ids, peak_bins, heights, pvalues = (np.concatenate(a) for a in
                                                    (pattern_ids, peak_bins, heights, pvalues))
        significant, _ = benjamini_hochberg(pvalues, float(self.alpha))
        return suppress_cross_talk(occurrence_table(pattern_ids, peak_bins, heights, pvalues, significant,
                                                    self.pattern_offsets_, self.pattern_spans_), self.lag_tolerance_)

    def __repr__(self) -> str:
        return f"ConvSeq(n_patterns={self.n_patterns}, width={self.width}, significance={self.significance!r})"


def _masked_peaks(response: np.ndarray, mask: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Peaks (at least ``width`` apart) of ``response`` at the times ``mask`` allows: (times, heights)."""
    peaks, heights = peaks_in_region(np.where(mask, response, -np.inf), 0, response.size, width)
    finite = np.isfinite(heights)
    return peaks[finite], heights[finite]


def _mark_windows(row: np.ndarray, peaks: np.ndarray, width: int) -> None:
    """Set ``row`` True within half a window of each peak."""
    half = width // 2
    for peak in peaks:
        row[max(0, peak - half):peak + half + 1] = True


def _tested_in_reference_frame(tested: np.ndarray, n_patterns: int, regions, fold_shift: np.ndarray,
                               fold_of: np.ndarray, peak_bins: np.ndarray, heights: np.ndarray,
                               width: int) -> np.ndarray:
    """The cross-fitted responses, each fold's moved by its filter's shift into the all-data frame.

    ``tested`` holds one row per (fold, pattern), fold-major. Shifted spans of neighbouring folds
    can overlap (by up to ``W // 4`` bins) or leave a gap (NaN there): in an overlap the later fold
    is kept, except around every tested peak, whose fold's response is kept within ``W // 4`` bins;
    the peak bins themselves hold the tested heights.
    """
    length = tested.shape[1]
    out = np.full((n_patterns, length), np.nan)

    def copy(index: int, low: int, high: int) -> None:
        fold, pattern = divmod(int(index), n_patterns)
        shift = int(fold_shift[fold, pattern])
        span_low, span_high = _shifted_span(*regions[fold], shift, length)
        low, high = max(low, span_low), min(high, span_high)
        out[pattern, low:high] = tested[index, low - shift:high - shift]

    for index in range(tested.shape[0]):
        copy(index, 0, length)
    reach = max(1, width // 4)
    for peak_bin, index in zip(peak_bins, fold_of):
        copy(index, int(peak_bin) - reach, int(peak_bin) + reach + 1)
    inside = (peak_bins >= 0) & (peak_bins < length)
    out[fold_of[inside] % n_patterns, peak_bins[inside]] = heights[inside]
    return out


def _shifted_span(start: int, stop: int, shift: int, length: int) -> tuple[int, int]:
    """The bins ``[start, stop)`` moved by ``shift``, clipped to ``[0, length)``."""
    return max(0, start + int(shift)), min(length, stop + int(shift))


def _match_filters(reference: np.ndarray, candidates: np.ndarray, max_shift: int | None = None):
    """Assign candidate filters to reference filters by shape; return the order and each one's time shift.

    Similarity is the largest inner product of the filters' excess weights (above uniform) over
    shifts of up to ``W / 4`` bins. A candidate whose pattern sits ``d`` bins later in its window
    peaks ``d`` bins earlier, so ``d`` is added to its peak times to bring them into the reference
    frame.
    """
    n_patterns, _, width = reference.shape
    max_shift = width // 4 if max_shift is None else max_shift
    ref = np.clip(reference - 1.0 / width, 0, None)
    cand = np.clip(candidates - 1.0 / width, 0, None)
    shifts = np.arange(-max_shift, max_shift + 1)
    score = np.zeros((n_patterns, n_patterns, shifts.size))
    for i, shift in enumerate(shifts):
        if shift >= 0:
            score[:, :, i] = np.einsum("anj,bnj->ab", ref[:, :, : width - shift], cand[:, :, shift:])
        else:
            score[:, :, i] = np.einsum("anj,bnj->ab", ref[:, :, -shift:], cand[:, :, : width + shift])
    best = score.max(axis=2)
    rows, cols = linear_sum_assignment(-best)
    order = np.empty(n_patterns, dtype=int)
    order[rows] = cols
    best_shift = shifts[score.argmax(axis=2)]
    return order, best_shift[np.arange(n_patterns), order].astype(np.int64)
