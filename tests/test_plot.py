"""Tests for convseq_neo.plot: every figure builds without pyplot, has labelled axes and checks its arguments."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
import quantities as pq
from matplotlib.figure import Figure

from convseq_neo import plot
from convseq_neo.core.estimator import ConvSeq
from convseq_neo.detect import detect
from convseq_neo.plot import (
    PATTERN_COLORS,
    plot_detection,
    plot_filters,
    plot_membership,
    plot_raster,
    plot_responses,
    plot_training_curve,
    sorted_rows,
)
from convseq_neo.synthetic.generate import poisson_background, sequence_recording

#: Small and fast: plumbing, not recovery.
FAST = dict(max_epochs=120, min_epochs=30, n_surrogates=20, n_folds=3)
OKABE_ITO = {"#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"}


@pytest.fixture(scope="module")
def result():
    """Two planted patterns in 40 neurons, 40 s, both found (a fit of about two seconds)."""
    rec = sequence_recording(n_neurons=40, n_patterns=2, members_per_pattern=10, duration=40 * pq.s, rate=2 * pq.Hz,
                             lag_step=10 * pq.ms, n_occurrences=15, jitter=2 * pq.ms, random_state=4)
    found = detect(rec.spiketrains, 5 * pq.ms, 200 * pq.ms, n_patterns=2, random_state=0,
                   **{**FAST, "max_epochs": 400, "min_epochs": 50})
    assert all(p.size and p.n_occurrences for p in found.patterns), "the figures below need both patterns"
    return found


@pytest.fixture(scope="module")
def empty_result():
    """Nothing planted: no occurrence, (most likely) no member."""
    trains = poisson_background(20, 2 * pq.Hz, 0 * pq.s, 20 * pq.s, random_state=5)
    return detect(trains, 5 * pq.ms, 200 * pq.ms, n_patterns=1, random_state=0, **FAST)


def _plot_axes(fig: Figure) -> list:
    """The Axes that are not colour bars."""
    return [ax for ax in fig.axes if not hasattr(ax, "_colorbar")]


def _assert_labelled(fig: Figure) -> None:
    for ax in fig.axes:
        if hasattr(ax, "_colorbar"):
            assert ax.get_ylabel(), "colour bar without a label"
            continue
        assert ax.get_ylabel(), f"unlabelled y axis in {ax}"
        siblings = ax.get_shared_x_axes().get_siblings(ax)  # a shared time axis is labelled once, at the bottom
        assert any(other.get_xlabel() for other in siblings), f"unlabelled x axis in {ax}"
    fig.savefig(io.BytesIO(), format="png", dpi=30)
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


def test_importing_plot_loads_neither_the_result_nor_what_detect_runs():
    # plot reads a result by its attributes (duck typing), so the figures never pull in the front door's
    # work: not the result type, the Neo adapters or the estimator (the package binds the light detect()
    # function itself, whose module imports them only when it is called)
    code = ("import sys, convseq_neo.plot\n"
            "print(sorted(m for m in ('convseq_neo.result', 'convseq_neo.io.neo', 'convseq_neo.core.estimator', "
            "'neo') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_spikes_and_responses_are_drawn_at_the_raster_positions(result):
    raster = result.raster
    spikes = plot_raster(result).axes[0].collections[0].get_offsets()[:, 0]
    np.testing.assert_allclose(np.sort(np.asarray(spikes)), np.sort(raster.position_to_time(raster.bin_index)))
    drawn = plot_responses(result, pattern=0).axes[0].lines[0].get_xdata()  # index t at position t, up to t_stop
    assert len(drawn) >= result.responses.shape[1] - 1
    np.testing.assert_allclose(drawn, raster.position_to_time(np.arange(len(drawn))))


def test_public_names_are_exported():
    for name in ("plot_detection", "plot_raster", "plot_responses", "plot_filters", "plot_training_curve",
                 "plot_membership", "PATTERN_COLORS"):
        assert name in plot.__all__
        assert hasattr(plot, name)
    assert set(PATTERN_COLORS) <= OKABE_ITO and len(set(PATTERN_COLORS)) == len(PATTERN_COLORS)


def test_plot_detection(result):
    fig = plot_detection(result)
    assert isinstance(fig, Figure)
    k = result.n_patterns
    assert len(_plot_axes(fig)) == 1 + 2 * k
    assert len(fig.axes) == 1 + 3 * k  # one colour bar per filter
    assert fig.axes[0].get_ylabel().startswith("neuron")
    assert fig.axes[k].get_xlabel() == "time (s)"
    _assert_labelled(fig)
    via_result = result.plot()  # DetectionResult.plot still goes through it
    assert isinstance(via_result, Figure) and len(via_result.axes) == len(fig.axes)
    zoom = plot_detection(result, time_range=(5 * pq.s, 15 * pq.s), figsize=(8, 5))
    assert zoom.axes[0].get_xlim() == pytest.approx((5, 15))
    assert tuple(zoom.get_size_inches()) == pytest.approx((8, 5))


def test_colours_are_colour_blind_safe(result):
    fig = plot_detection(result)
    for ax in _plot_axes(fig):
        for line in ax.lines:
            color = line.get_color()
            if isinstance(color, str) and color.startswith("#"):
                assert color.upper() in OKABE_ITO | {"#7F7F7F"}
            assert not (isinstance(color, str) and color.startswith("tab:"))


def test_plot_raster(result):
    fig = plot_raster(result, time_range=(2 * pq.s, 12 * pq.s))
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_xlabel() == "time (s)" and "neuron" in ax.get_ylabel()
    assert ax.get_xlim() == pytest.approx((2, 12))
    assert ax.get_ylim() == pytest.approx((result.raster.n_neurons - 0.5, -0.5))
    _assert_labelled(fig)
    # into a given Axes
    host = Figure()
    axes = host.subplots(1, 2)
    assert plot_raster(result, ax=axes[1]) is host
    assert axes[1].collections and not axes[0].collections


def test_raster_marks_each_occurrence_on_its_members_rows(result):
    ax = plot_raster(result).axes[0]
    order, _ = sorted_rows(result)
    row_of = np.empty(order.size, dtype=int)
    row_of[order] = np.arange(order.size)
    for k, pattern in enumerate(result.patterns):
        (markers,) = [line for line in ax.lines if str(line.get_label()).startswith(f"pattern{k} ")]
        np.testing.assert_allclose(np.sort(markers.get_xdata()), np.sort(result.occurrences.loc[
            result.occurrences["pattern"] == k, "center"].to_numpy()))
        rows = row_of[np.asarray(pattern.neurons)]
        assert set(markers.get_ydata()) == {rows.max() + 0.5}  # the lower edge of the members' rows


def test_plot_responses(result):
    fig = plot_responses(result)
    assert len(fig.axes) == result.n_patterns
    for k, ax in enumerate(fig.axes):
        assert ax.get_xlabel() == "time (s)" and "(a.u.)" in ax.get_ylabel() and f"pattern{k}" in ax.get_ylabel()
        response = ax.lines[0]
        assert abs(len(response.get_xdata()) - result.responses.shape[1]) <= 1  # all of it
        assert any(line.get_linestyle() == "--" for line in ax.lines)  # the threshold
        # every marked peak sits on the drawn response (the cross-fitted one), at its tested height
        times, values = response.get_xdata(), response.get_ydata()
        markers = [line for line in ax.lines if "peak" in str(line.get_label())]
        assert sum(len(line.get_xdata()) for line in markers) >= result.patterns[k].n_occurrences > 0
        for line in markers:
            for x, y in zip(line.get_xdata(), line.get_ydata()):
                i = int(np.argmin(np.abs(times - x)))
                assert times[i] == pytest.approx(x) and values[i] == pytest.approx(y, rel=1e-5)
    one = plot_responses(result, pattern=1, time_range=(0 * pq.s, 10 * pq.s))
    assert len(one.axes) == 1 and one.axes[0].get_xlim() == pytest.approx((0, 10))
    _assert_labelled(one)
    host = Figure()
    axes = host.subplots(2, 1)
    assert plot_responses(result, ax=axes) is host
    with pytest.raises(ValueError, match="ax"):
        plot_responses(result, ax=axes[0])  # two patterns, one Axes
    with pytest.raises(TypeError, match="ax"):
        plot_responses(result, pattern=0, ax="axes")


def test_plot_filters(result):
    fig = plot_filters(result)
    heat_maps = _plot_axes(fig)
    assert len(heat_maps) == result.n_patterns and len(fig.axes) == 2 * result.n_patterns
    for k, ax in enumerate(heat_maps):
        (image,) = ax.images
        assert image.get_array().shape == result.patterns[k].filter.shape
        assert ax.get_xlabel() == "lag from window centre (ms)" and ax.get_ylabel()
        low, high = ax.get_xlim()
        width_ms = result.model.filters_.shape[-1] * float(result.raster.bin_size_s) * 1e3
        assert high - low == pytest.approx(width_ms)
    _assert_labelled(fig)
    assert len(_plot_axes(plot_filters(result, pattern=1))) == 1


def test_plot_training_curve(result):
    model = result.model
    fig = plot_training_curve(result)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "loss (a.u.)"
    for k in range(result.n_patterns):
        curve, marker = ax.lines[2 * k], ax.lines[2 * k + 1]
        n = int(model.n_epochs_[k])
        np.testing.assert_array_equal(curve.get_xdata(), np.arange(1, n + 1))
        np.testing.assert_allclose(curve.get_ydata(), model.loss_history_[k, :n])
        assert list(marker.get_xdata()) == [n]
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    for k in range(result.n_patterns):
        n = int(model.n_epochs_[k])
        expected = (f"pattern{k}: converged at epoch {n}" if model.stop_reason_[k] == "converged"
                    else f"pattern{k}: stopped at epoch {n} (max_epochs), not converged")
        assert expected in legend
    _assert_labelled(fig)
    # straight from the estimator, into a given Axes
    host = Figure()
    axis = host.add_subplot()
    assert plot_training_curve(model, ax=axis) is host
    assert len(axis.lines[0].get_xdata()) == model.n_epochs_[0]


def test_plot_membership(result):
    for k, pattern in enumerate(result.patterns):
        fig = plot_membership(result, pattern=k)
        evidence, rows = _plot_axes(fig)
        assert evidence.get_xlabel() == "lag from pattern centre (ms)"
        assert evidence.get_ylabel() == "membership score (z)"
        assert rows.get_xlabel() == "lag from pattern centre (ms)" and "member" in rows.get_ylabel()
        members = evidence.lines[0]
        np.testing.assert_allclose(members.get_xdata(), pattern.lags.rescale(pq.s).magnitude * 1e3)
        np.testing.assert_allclose(members.get_ydata(), pattern.scores)
        assert np.all(np.diff(members.get_xdata()) >= 0)  # sorted by lag
        if pattern.size:
            (image,) = rows.images
            assert image.get_array().shape == (pattern.size, result.model.filters_.shape[-1])
        _assert_labelled(fig)
    host = Figure()
    axis = host.add_subplot()
    assert plot_membership(result, 1, ax=axis) is host and len(host.axes) == 1


def test_figures_of_an_empty_result(empty_result):
    assert len(empty_result.occurrences) == 0
    _assert_labelled(plot_detection(empty_result))
    fig = plot_membership(empty_result)
    _assert_labelled(fig)
    _assert_labelled(plot_training_curve(empty_result))


@pytest.mark.parametrize("call, error, word", [
    (lambda r: plot_detection("result"), TypeError, "result"),
    (lambda r: plot_raster(None), TypeError, "result"),
    (lambda r: plot_detection(r, figsize=10), TypeError, "figsize"),
    (lambda r: plot_detection(r, figsize=(0, 3)), ValueError, "figsize"),
    (lambda r: plot_detection(r, time_range=(1, 2)), TypeError, "time_range"),
    (lambda r: plot_raster(r, time_range=(3 * pq.s, 1 * pq.s)), ValueError, "time_range"),
    (lambda r: plot_raster(r, time_range=(100 * pq.s, 200 * pq.s)), ValueError, "does not overlap"),
    (lambda r: plot_responses(r, time_range=(-20 * pq.s, 0 * pq.s)), ValueError, "does not overlap"),
    (lambda r: plot_raster(r, ax=object()), TypeError, "ax"),
    (lambda r: plot_responses(r, pattern=2), ValueError, "pattern"),
    (lambda r: plot_responses(r, pattern=1.0), TypeError, "pattern"),
    (lambda r: plot_filters(r, pattern=-1), ValueError, "pattern"),
    (lambda r: plot_filters(r, ax=[Figure().add_subplot()]), ValueError, "ax"),
    (lambda r: plot_membership(r, pattern=True), TypeError, "pattern"),
    (lambda r: plot_membership(r, pattern="0"), TypeError, "pattern"),
    (lambda r: plot_membership(r, pattern=5), ValueError, "pattern"),
    (lambda r: plot_membership(r.model), TypeError, "result"),
    (lambda r: plot_training_curve(r.raster), TypeError, "model_or_result"),
    (lambda r: plot_training_curve(ConvSeq()), ValueError, "model_or_result"),
    (lambda r: plot_training_curve(r, ax=1), TypeError, "ax"),
])
def test_bad_arguments_raise(result, call, error, word):
    with pytest.raises(error, match=word):
        call(result)
