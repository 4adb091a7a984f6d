"""ConvSeq: the scikit-learn-style front of the torch core (bins and plain arrays only)."""

from __future__ import annotations

import inspect
import logging
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from convseq_neo._memory import available_memory_bytes, check_fit_memory
from convseq_neo._threads import limited_threads, resolve_n_jobs
from convseq_neo._validation import (
    check_nonnegative_float,
    check_positive_int,
    check_probability,
    check_random_state,
    resolve_device,
    torch_generator,
)
from convseq_neo.core.correlations import correlation_bytes
from convseq_neo.core.crossfit import crossfit_test, fold_regions, membership_filters, model_masks
from convseq_neo.core.membership import pattern_membership
from convseq_neo.core.objective import OBJECTIVES, default_tv_weight
from convseq_neo.core.occurrences import occurrence_table, suppress_cross_talk
from convseq_neo.core.response import MAX_DENSE_CELLS, MAX_TOEPLITZ_ENTRIES, make_response, response_length
from convseq_neo.core.second_pass import second_pass_test
from convseq_neo.core.significance import (
    SURROGATES,
    benjamini_hochberg,
    collect_peaks,
    null_peak_heights,
    pvalue_resolution,
    random_filter_test,
    random_filter_threshold,
    row_pvalues,
    standardized_heights,
)
from convseq_neo.core.tasks import check_client, cluster_slots, run_tasks
from convseq_neo.core.training import (
    ModelTraining,
    TrainingSettings,
    first_correlation_objective,
    seeded_generator,
    train_model,
    train_patterns,
)
from convseq_neo.raster import SpikeRaster

logger = logging.getLogger(__name__)

__all__ = ["ConvSeq"]

_SIGNIFICANCE = ("crossfit", "random_filters")
_TRAINING = ("auto", "responses", "correlations")
#: "auto" trains from correlations only when they take at most this share of the available memory...
_CORRELATION_MEMORY_SHARE = 0.25
#: ... and at most this many bytes.
_MAX_CORRELATION_BYTES = 3 * 2**30
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
    objective : {"variance", "normalized"}, default "variance"
        What training maximises. "variance": the response's variance, as in the paper. "normalized":
        the response's variance divided by the variance it would have if the neurons fired
        independently (see Notes), which no longer rewards a neuron's row for peaking on its own
        spikes; measured, it learns weak sequences from few occurrences that "variance" misses.
    tv_weight : float, optional
        Weight of the smoothness term. Default ``0.005 * W**2`` (the paper's 200 at ``W = 200``;
        the variance/smoothness ratio scales as ``1 / W**2``) with ``objective="variance"``, 0 with
        "normalized". With "normalized" a weight large enough to make the numerator positive
        turns the objective upside down.
    decorrelation_weight : float, optional
        For ``K > 1``: weight of the penalty on a filter's response above its mean at times
        already explained by earlier patterns. Default 1.0 with ``objective="variance"`` (it
        cancels any variance the filter could gain there), 0 with "normalized": those times are
        already left out of a later filter's training, and under the ratio the penalty did harm
        (measured in Notes).
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
        Surrogates per null (the smallest attainable p-value is about
        ``1 / (n_surrogates * peaks per fold)``).
    surrogates : {"dither", "circular"}, default "dither"
        How the null's surrogates are made (see Notes). "dither" moves every spike by its own
        uniform random offset of up to ``W`` bins, which keeps slow changes of the rates (running
        and rest, up and down states, silent stretches); "circular" shifts each neuron's whole
        train by one random offset, which keeps each train intact but assumes a stationary
        population rate (the first release's null, kept for comparison).
    dither : int, optional
        Largest dither of ``surrogates="dither"``, in bins. Default ``W``. Rate changes slower
        than the dither are kept by the null; alignments finer than it are destroyed. A larger
        dither gains sensitivity and loses validity where rates change on the scale of the
        dither: measured, ``2 W`` found 4-5 % more of a reversed planted sequence, and 8 false
        occurrences over 5 seeds of the CA1 recording dithered by ``W`` (``W``: none).
    lag_tolerance : int, optional
        Half-width in bins of the lag window used by the membership test. Default ``max(1, W // 20)``.
    recenter_every : int, default 25
        Epochs between re-centrings of each pattern in its window (0 disables).
    backend : {"auto", "events", "dense"}, default "auto"
        How responses are computed: over spikes ("events": sparse product, never an ``N x T``
        dense array) or by a dense 1-D convolution ("dense"). "auto" picks by density and size and
        never densifies a raster larger than ``MAX_DENSE_CELLS`` cells.
    training : {"auto", "responses", "correlations"}, default "auto"
        How each training epoch's loss is computed. "responses" applies the filters to the raster
        (``O(nnz W)`` per filter and epoch). "correlations" computes the raster's lag correlations
        once and each epoch from them (``O(N^2 W)`` per model, independent of the recording's
        length; ``N^2 (3 W + 2)`` complex numbers per model in memory; see
        :mod:`convseq_neo.core.correlations`). "auto" uses correlations when the sparse Toeplitz
        operator would not fit (``nnz * W > MAX_TOEPLITZ_ENTRIES``) and the correlations take at most
        a quarter of the available memory (at most 3 GB); otherwise responses.
    n_jobs : int, optional
        Threads (torch and BLAS) the fit uses; restored afterwards. ``None`` keeps torch's current
        setting (the cores the process may use, or ``OMP_NUM_THREADS``); ``-1`` uses every core the
        process may use.
    device : {"auto", "cpu", "cuda"} or torch.device, default "auto"
        "auto" uses CUDA when available, else the CPU.
    random_state : int, numpy.random.Generator or None
        Seeds local numpy and torch generators; global RNG state is never read or set. The same
        seed gives the same result on the CPU. On CUDA the scatter-adds of the event path run in
        no fixed order, so two fits with the same seed agree to float32 rounding (filters within
        about 1e-6), not bit for bit.
    progress : bool, default False
        Show tqdm progress bars.
    second_pass : bool, default False
        Opt-in: after the cross-fitted test, test every fold again with each pattern's members,
        lags, participation and jitter measured at the significant occurrences two windows or
        more from that fold (:mod:`convseq_neo.core.second_pass`), and take the occurrences,
        membership and ``tested_responses_`` from that pass (those folds unshifted: their filters
        are built in the all-data frame). No spike a fold's tests read enters the filter that
        tests it; the fold did enter, through the fold models trained on it, the choice of which
        occurrences elsewhere were significant. Finds weak and several patterns far better
        (method page, *A second pass*); costs a second surrogate test. Needs
        ``significance="crossfit"``.

    Attributes
    ----------
    filters_ : ndarray, shape (K, N, W)
        Filters fit on all the data (rows sum to 1).
    tested_filters_ : ndarray, shape (K, N, W)
        Each pattern as :meth:`find_occurrences` looks for it in new data: with
        ``significance="crossfit"``, its reported members (``membership_``) at their lags, each
        spike weighed by its log likelihood ratio around the member's lag (participation and
        jitter measured at the pattern's significant occurrences; zero for every other neuron; the
        tested form of Notes); a pattern without members keeps its all-data tested filter. Equal
        to ``filters_`` for "random_filters".
    responses_ : ndarray, shape (K, L)
        Their responses to the training raster (``L = T + 2 (W // 2) - W + 1``).
    tested_responses_ : ndarray, shape (K, L)
        The responses that were tested: in each fold, the response of the filter that did not
        see that fold, in its tested form (its members' evidence, see Notes;
        ``significance="crossfit"``), moved by that filter's time shift
        (``fold_shifts_``) into the all-data filter's frame, so that each occurrence's peak bin
        holds its tested height; NaN at the few fold-border bins no fold covers after the shift.
        Equal to ``responses_`` otherwise.
    fold_shifts_ : ndarray of int, shape (``n_folds_``, K)
        Bins added to a fold filter's peak times to bring them into the all-data filter's frame
        (``significance="crossfit"`` only).
    thresholds_ : ndarray, shape (K, L)
        Height a peak needed at each time to be significant (per fold, in the same frame as
        ``tested_responses_``; constant for "random_filters"; ``inf`` where nothing could be).
    loss_history_ : ndarray, shape (K, n_epochs)
        Loss of the kept all-data filter per epoch (NaN-padded after it stopped).
    n_epochs_ : ndarray of int, shape (K,)
        Epochs the all-data filter of each pattern trained for.
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
    pattern_spans_ : ndarray, shape (K, 2)
        Earliest and latest member lag around the pattern centre, in bins (an occurrence's
        ``onset`` and ``offset`` relative to its ``center``).
    random_filter_threshold_ : float
        The reference threshold on the training data (for comparison).
    lag_tolerance_ : int
        The membership test's lag half-width used (``lag_tolerance`` or its default).
    n_folds_ : int
        Cross-fitting folds used (``n_folds``, fewer for a short recording; 0 for "random_filters").
    backend_ : str
        The response backend used ("events" or "dense").
    training_ : str
        How the epochs' losses were computed ("responses" or "correlations").
    timings_ : dict
        Wall seconds of the fit's phases: "training" (operators, the reference threshold and the
        training of every model), "significance" (cross-fitted responses and the surrogate null),
        "membership" (members, lags and the occurrence table) and "total".
        :func:`convseq_neo.detect` adds "binning" (and counts it in "total").
    n_filter_passes_ : int
        Applications of one filter to the whole recording (a surrogate's fold counted as its share):
        training epochs with ``training="responses"``, responses, null. Epochs from correlations
        read no spikes and are not counted.

    Notes
    -----
    **The normalised objective.** A filter's response is the sum of each neuron's part,
    ``x = sum_n x_n``, so its variance is ``sum_n Var(x_n)`` plus the covariances between neurons.
    The first sum grows whenever a row concentrates on one lag, whether the neuron belongs to a
    sequence or not, and on a weak sequence the chance alignments of the non-members then outweigh
    the members. ``objective="normalized"`` maximises ``Var(x) / sum_n Var(x_n)`` instead (each
    ``Var(x_n)`` from the neuron's own lag products over the filter's training times): about 1 for
    any filter when the neurons fire independently, larger only through covariance between
    neurons at the filter's lags. It changes what is learned, not what is tested: the cross-fitted
    test below is the same for both objectives. With it, later patterns are kept apart from earlier
    ones only by leaving the earlier patterns' times out of their training (``decorrelation_weight``
    defaults to 0): under the ratio the penalty there was cheapest for rows that put their weight
    where no spike of an earlier pattern falls, so a later filter's non-member rows ended near
    one-hot, and on two 15-member sequences through :func:`~convseq_neo.detect` (80 neurons, 30
    occurrences each, seeds 0-4) the per-sequence F1 was 0.29-0.98 (mean 0.79) with the penalty and
    0.74-1.00 (mean 0.91) without.

    **What a p-value means.** With ``significance="crossfit"`` the recording's response times are
    cut into ``n_folds`` contiguous folds. For fold ``f`` a filter (one per pattern) is trained on
    the other folds only, leaving out a guard band of ``W`` bins around fold ``f`` so that no
    training window shares a spike with a test window. Its response on fold ``f`` is then a
    statistic of data it never saw. The null is the distribution of that same fixed filter's peak
    heights (local maxima at least ``W`` bins apart, as for the candidates) on ``n_surrogates``
    surrogates of the same fold. With ``surrogates="dither"`` (the default) every spike (each
    neuron's count in a bin) is moved by its own uniform random offset of up to ``W`` bins,
    reflected at the edges of the stretch in which it was observed. The surrogates keep every
    neuron's spike count and its rate profile at time scales much longer than ``W`` (running
    and rest, sleep states, up and down states, silent stretches and gaps stay where they are,
    for all neurons together), and destroy the alignment between neurons within ``W`` bins, which
    a sequence needs. A candidate's p-value is the fraction of null peaks at least as high
    (``(1 + #) / (1 + n)``): the chance that data with the same slow rate changes but no
    alignment within ``W`` bins produce a peak as high. It does not test structure slower than
    ``W``: a filter that only follows a slow co-fluctuation of rates is not significant.
    Time outside the observed intervals of a neuron (NWB ``obs_intervals``) is never filled by
    its surrogates. With ``surrogates="circular"`` each neuron's train is instead shifted as a
    whole, which keeps spike trains intact but assumes a stationary population rate: on a
    recording with silent stretches or shared rate changes it makes chance peaks significant.
    Significance is Benjamini-Hochberg over all candidates of
    all patterns at ``alpha``. Testing a trained filter against its own training data is too
    liberal (training maximises exactly the chance coincidences a surrogate lacks); cross-fitting
    removes that bias at the price of training on ``(n_folds - 1) / n_folds`` of the data. Fold
    filters are matched to the all-data filters by their shape, and the tested peaks are aligned
    to the all-data filter's frame. ``filters_`` are those fit on all the data; membership,
    lags and centres come from the significant occurrences.

    **What is tested.** A trained filter is not tested as it is. Each model (every fold's, and the
    all-data one) first finds its pattern's members, their lags, and each member's participation
    and jitter in its own training data (the membership test on its in-sample peaks, as many of
    the highest as give the members the most evidence, ranked again by a provisional members'
    filter: :func:`~convseq_neo.core.crossfit.select_members`). The tested
    statistic is the members' evidence alone: each member's spikes around its lag weighted by
    their log likelihood ratio (occurrence against background, from that participation, jitter
    and the neuron's rate); other neurons are left out. This uses nothing of the tested fold but
    each neuron's spike count, which the surrogates keep, so the p-value keeps its meaning; it is
    more powerful than the full trained filter, whose rows are smooth and whose non-member rows
    add noise. A model whose pattern has no member in its training data is tested with its full
    filter. With several patterns, a pattern whose members hold another pattern's and more (one
    filter that learned two sequences) is tested without the other's members.
    ``tested_responses_`` and ``thresholds_`` are on this scale.

    **Training from correlations.** With ``training="correlations"`` (chosen by "auto" for large
    recordings) the same loss is computed from the raster's lag correlations, anchored where each
    model's own training windows read (:mod:`convseq_neo.core.correlations`), so the meaning of a
    p-value is unchanged: a fold's filter still never sees a spike its test windows read, and its
    peaks are tested against the same surrogates. Filters at least 40 bins wide train first at
    ``W // 20`` times coarser bins (the full schedule), then at most ``max_epochs // 4`` epochs at
    full resolution. Occurrence tests, membership and the null still read the spikes.

    Examples
    --------
    >>> import numpy as np
    >>> from convseq_neo import ConvSeq
    >>> rng = np.random.default_rng(0)
    >>> raster = (rng.random((30, 3000)) < 0.01).astype(int)
    >>> for start in range(100, 2900, 250):           # 30 neurons firing in order every 250 bins
    ...     raster[np.arange(30), start + np.arange(30)] = 1
    >>> model = ConvSeq(width=40, max_epochs=200, min_epochs=50, n_surrogates=40, n_folds=3, random_state=0)
    >>> model = model.fit(raster)
    >>> model.filters_.shape
    (1, 30, 40)
    >>> found = model.occurrences_[model.occurrences_["significant"]]
    >>> len(found) >= 9
    True
    """

    def __init__(self, n_patterns: int = 1, width: int = 200, *, objective: str = "variance",
                 tv_weight: float | None = None, decorrelation_weight: float | None = None, lr: float = 0.1,
                 max_epochs: int = 2000, min_epochs: int = 300,
                 tol: float = 1e-4, patience: int = 100, n_init: int = 2, alpha: float = 0.05,
                 significance: str = "crossfit", n_folds: int = 5, n_surrogates: int = 200,
                 surrogates: str = "dither", dither: int | None = None, lag_tolerance: int | None = None,
                 recenter_every: int = 25, backend: str = "auto", training: str = "auto", device="auto",
                 n_jobs: int | None = None, random_state=None, progress: bool = False,
                 second_pass: bool = False) -> None:
        self.n_patterns = n_patterns
        self.width = width
        self.objective = objective
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
        self.surrogates = surrogates
        self.dither = dither
        self.lag_tolerance = lag_tolerance
        self.recenter_every = recenter_every
        self.backend = backend
        self.training = training
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.second_pass = second_pass
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
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.tv_weight is not None:
            check_nonnegative_float(self.tv_weight, "tv_weight")
        if self.decorrelation_weight is not None:
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
        if self.surrogates not in SURROGATES:
            raise ValueError(f"surrogates must be one of {SURROGATES}, got {self.surrogates!r}")
        if self.dither is not None:
            check_positive_int(self.dither, "dither")
        if self.lag_tolerance is not None:
            check_positive_int(self.lag_tolerance, "lag_tolerance", minimum=0)
        check_positive_int(self.recenter_every, "recenter_every", minimum=0)
        if self.backend not in ("auto", "events", "dense"):
            raise ValueError(f"backend must be 'auto', 'events' or 'dense', got {self.backend!r}")
        if self.training not in _TRAINING:
            raise ValueError(f"training must be one of {_TRAINING}, got {self.training!r}")
        resolve_n_jobs(self.n_jobs)
        resolve_device(self.device)
        if not isinstance(self.second_pass, (bool, np.bool_)):
            raise TypeError(f"second_pass must be a bool, got {type(self.second_pass).__name__}")
        if self.second_pass and self.significance != "crossfit":
            raise ValueError("second_pass=True needs significance='crossfit' (it tests each fold again)")
        check_random_state(self.random_state)
        if not isinstance(self.progress, (bool, np.bool_)):
            raise TypeError(f"progress must be a bool, got {type(self.progress).__name__}")

    def _tv_weight(self, width: int) -> float:
        """The smoothness weight: the one given, else the objective's default for ``width``."""
        if self.tv_weight is not None:
            return float(self.tv_weight)
        return default_tv_weight(width) if self.objective == "variance" else 0.0

    def _decorrelation_weight(self) -> float:
        """The explaining-away penalty's weight: the one given, else the objective's default."""
        if self.decorrelation_weight is not None:
            return float(self.decorrelation_weight)
        return 1.0 if self.objective == "variance" else 0.0

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
    def fit(self, raster, y=None, *, client=None) -> ConvSeq:
        """Learn the filters, test their occurrences and find each pattern's members.

        Parameters
        ----------
        raster : SpikeRaster, ndarray (N, T) or scipy sparse matrix
            Binned spike counts (non-negative, no NaN).
        y : ignored
        client : distributed.Client, optional
            Run the fit's independent work as tasks on this dask cluster: the training of the
            all-data model and of each cross-fitting fold's model (``1 + n_folds`` models), and the
            surrogate null in :data:`~convseq_neo.core.significance.SURROGATE_CHUNKS` chunks. The
            rest (the reference threshold, members, the test) runs here. The models are cut into
            one batch per worker thread, each task runs with one thread, and every model and
            chunk draws from its own seed taken from ``random_state`` first, so the result is the
            one without a client up to float rounding (a batch of another size may sum in another
            order, and training carries that forward: filters within about 1e-3, the same
            detections, measured). On a CPU one process already trains all models as one batch
            cheaply, so a client can be slower (see the cluster page of the docs). Needs
            ``dask.distributed`` (the ``cluster`` extra).

        Returns
        -------
        self
        """
        self.check_params()
        client = check_client(client)
        raster = self._check_raster(raster)
        with limited_threads(resolve_n_jobs(self.n_jobs)):
            return self._fit(raster, client)

    def _training_kind(self, raster: SpikeRaster, n_models: int) -> str:
        """ "responses" or "correlations" for this raster (see the ``training`` parameter)."""
        if self.training != "auto":
            return self.training
        width = int(self.width)
        if raster.nnz * width <= MAX_TOEPLITZ_ENTRIES:
            return "responses"
        needed = correlation_bytes(raster.n_neurons, width, n_models)
        budget = min(_MAX_CORRELATION_BYTES, _CORRELATION_MEMORY_SHARE * available_memory_bytes())
        if needed > budget:
            logger.info("training='auto': correlations would need %.0f MB (budget %.0f MB); training on responses",
                        needed / 2**20, budget / 2**20)
            return "responses"
        return "correlations"

    def _fit(self, raster: SpikeRaster, client=None) -> ConvSeq:
        started = time.perf_counter()
        rng = check_random_state(self.random_state)
        device = resolve_device(self.device)
        generator = torch_generator(rng, device)
        width, n_patterns, alpha = int(self.width), int(self.n_patterns), float(self.alpha)
        length = response_length(raster.n_bins, width)
        crossfit = self.significance == "crossfit"
        n_folds = self._effective_folds(length) if crossfit else 0
        check_fit_memory(raster.n_neurons, raster.n_bins, width, n_patterns, int(self.n_init), n_folds,
                         n_surrogates=int(self.n_surrogates) if crossfit else 0, n_spikes=raster.nnz)
        regions = fold_regions(length, n_folds)
        masks = model_masks(length, regions, width)  # row 0: the all-data model; then one row per fold
        lag_tolerance = max(1, width // 20) if self.lag_tolerance is None else int(self.lag_tolerance)
        op = make_response(raster, width, backend=self.backend, device=device)
        settings = TrainingSettings(
            tv_weight=self._tv_weight(width),
            explained_weight=self._decorrelation_weight(), lr=float(self.lr), max_epochs=int(self.max_epochs),
            min_epochs=int(self.min_epochs), tol=float(self.tol), patience=int(self.patience),
            recenter_every=int(self.recenter_every), progress=bool(self.progress), objective=self.objective)
        training = self._training_kind(raster, masks.shape[0])
        first_objective = None
        if training == "correlations":
            # with a client only model 0's statistics are needed here (the tasks build their own)
            first_objective = first_correlation_objective(raster, width, masks if client is None else masks[:1],
                                                          settings.tv_weight, device, normalized=settings.normalized)
            logits = torch.randn((_N_RANDOM_FILTERS, raster.n_neurons, width), generator=generator, device=device)
            reference_threshold = first_objective.reference_threshold(torch.softmax(logits, dim=-1))
        else:
            reference_threshold = random_filter_threshold(op, _N_RANDOM_FILTERS, generator)
        logger.info("fit: training on %s", training)

        # Each model (all data, then one per fold) draws from its own seed and stops on its own, so
        # training them together here equals training each as a task on a dask client
        # (convseq_neo.core.tasks, train_model).
        seeds = rng.integers(0, 2**63 - 1, size=masks.shape[0])
        config = ModelTraining(width=width, backend=op.name, device=str(device), n_patterns=n_patterns,
                               n_init=int(self.n_init), settings=settings if client is None else
                               replace(settings, progress=False), threshold=reference_threshold,
                               lag_tolerance=lag_tolerance, alpha=alpha, training=training)
        if client is None:
            generators = [seeded_generator(seed, device) for seed in seeds]
            models = [(train_patterns(op, raster, masks, n_patterns, int(self.n_init), settings, reference_threshold,
                                      lag_tolerance, alpha, generators, training=training,
                                      first_objective=first_objective), 0)]
            del first_objective
        else:
            del first_objective
            # a batch of filters costs little more per epoch than one filter, so the models are cut
            # into as many groups as the cluster runs tasks at once, not one task each
            groups = np.array_split(np.arange(masks.shape[0]), min(masks.shape[0], cluster_slots(client)))
            models = run_tasks(train_model, [(masks[group], [int(seed) for seed in seeds[group]]) for group in groups],
                               shared={"raster": raster, "config": config}, client=client,
                               progress=bool(self.progress), description="models")
        trained = models[0][0]
        model_filters = np.concatenate([model.filters for model, _ in models], axis=0)
        training_passes = sum(passes for _, passes in models)
        filters = trained.filters[0]
        trained_at = time.perf_counter()
        with torch.no_grad():
            responses = op(torch.as_tensor(filters, device=device)).cpu().numpy()
        if crossfit:
            tested = crossfit_test(op, raster, model_filters, masks, regions, threshold=reference_threshold,
                                   lag_tolerance=lag_tolerance, alpha=alpha, n_surrogates=int(self.n_surrogates),
                                   rng=rng, progress=bool(self.progress), surrogates=self.surrogates,
                                   dither=self.dither, client=client)
            if self.second_pass:
                tested = second_pass_test(op, raster, tested, regions, lag_tolerance=lag_tolerance, alpha=alpha,
                                          n_surrogates=int(self.n_surrogates), rng=rng,
                                          progress=bool(self.progress), surrogates=self.surrogates,
                                          dither=self.dither, client=client)
        else:
            tested = random_filter_test(responses, width, reference_threshold)
        tested_at = time.perf_counter()
        significant = tested.significant
        membership, offsets, spans = pattern_membership(raster, tested.pattern[significant],
                                                        tested.peak_bin[significant], n_patterns, width,
                                                        lag_tolerance, alpha)
        tested_filters = filters
        if crossfit:  # new data are then tested as the result reports each pattern: its members at their lags
            tested_filters = membership_filters(raster, membership, offsets, tested.pattern[significant],
                                                tested.peak_bin[significant], width, lag_tolerance,
                                                tested.tested_filters)
        occurrences = suppress_cross_talk(occurrence_table(tested.pattern, tested.peak_bin, tested.height,
                                                           tested.pvalue, significant, offsets, spans,
                                                           null_z=tested.null_z),
                                          lag_tolerance, pvalue_resolution=tested.pvalue_resolution)
        finished = time.perf_counter()

        self.training_ = training
        self.timings_ = {"training": trained_at - started, "significance": tested_at - trained_at,
                         "membership": finished - tested_at, "total": finished - started}
        passes = op.n_passes + (training_passes if client is not None else 0)  # a shared op counted them already
        self.n_filter_passes_ = int(round(passes + tested.null_passes))
        self.backend_ = op.name
        self.n_folds_ = n_folds
        self.random_filter_threshold_ = reference_threshold
        self.lag_tolerance_ = lag_tolerance
        self.filters_ = filters
        self.tested_filters_ = tested_filters
        self.responses_ = responses
        self.loss_history_ = trained.loss_history
        self.n_epochs_ = trained.n_epochs
        self.stop_reason_ = list(trained.stop_reasons)
        self.tested_responses_ = tested.tested_responses
        self.thresholds_ = tested.thresholds
        if tested.fold_shifts is not None:
            self.fold_shifts_ = tested.fold_shifts
        else:
            vars(self).pop("fold_shifts_", None)  # left from an earlier cross-fitted fit
        self.membership_ = membership
        self.pattern_offsets_ = offsets
        self.pattern_spans_ = spans
        self.occurrences_ = occurrences
        logger.info("fit: %d significant occurrences over %d patterns", int(significant.sum()), n_patterns)
        return self

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

    def _responses(self, raster, filters: np.ndarray) -> np.ndarray:
        """Responses of fixed ``filters`` to a new ``raster`` (checked against the fit): shape (K, L)."""
        raster = self._check_new_raster(raster)
        device = resolve_device(self.device)
        op = make_response(raster, int(self.width), backend=self.backend, device=device)
        with torch.no_grad():
            return op(torch.as_tensor(filters, device=device)).cpu().numpy()

    def transform(self, raster) -> np.ndarray:
        """Responses of the learned filters to ``raster``: ndarray of shape (K, L)."""
        self._check_fitted()
        return self._responses(raster, self.filters_)

    def _tested_filters(self) -> np.ndarray:
        """The filters :meth:`find_occurrences` tests (``filters_`` for a model saved without them)."""
        return getattr(self, "tested_filters_", self.filters_)

    def tested_transform(self, raster) -> np.ndarray:
        """Responses of the filters in their tested form (``tested_filters_``) to ``raster``: shape (K, L).

        These are the responses :meth:`find_occurrences` tests; an occurrence's ``peak`` is their
        height at its peak bin.
        """
        self._check_fitted()
        return self._responses(raster, self._tested_filters())

    def find_occurrences(self, raster, random_state=None) -> pd.DataFrame:
        """Detect occurrences of the learned patterns in new data.

        Each pattern is looked for as :meth:`fit` reports it (``tested_filters_``: its members'
        evidence around their lags, the kind of statistic its training occurrences were tested
        with, built from the final membership and all the significant occurrences). These
        filters are fixed and did not see ``raster``, so each candidate peak is tested against the
        same filter's peaks on surrogates (``surrogates``) of ``raster`` itself (BH at ``alpha``
        over all candidates). Centres, onsets and offsets use the pattern geometry learned in
        :meth:`fit`.

        Returns
        -------
        pandas.DataFrame
            Columns as :attr:`occurrences_`; ``peak`` is the height of :meth:`tested_transform`.
        """
        raster = self._check_new_raster(raster)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        device = resolve_device(self.device)
        width = int(self.width)
        filters = self._tested_filters()
        responses = self.tested_transform(raster)
        regions = [(0, responses.shape[1])] * responses.shape[0]
        null = null_peak_heights(raster, filters, regions, width, int(self.n_surrogates), rng, device,
                                 method=self.surrogates, dither=self.dither)
        pattern, peak_bin, heights = collect_peaks(responses, regions, width)
        pvalues = row_pvalues(pattern, heights, null)
        significant, _ = benjamini_hochberg(pvalues, float(self.alpha))
        return suppress_cross_talk(occurrence_table(pattern, peak_bin, heights, pvalues, significant,
                                                    self.pattern_offsets_, self.pattern_spans_,
                                                    null_z=standardized_heights(pattern, heights, null)),
                                   self.lag_tolerance_, pvalue_resolution=pvalue_resolution(null))

    def __repr__(self) -> str:
        return f"ConvSeq(n_patterns={self.n_patterns}, width={self.width}, significance={self.significance!r})"
