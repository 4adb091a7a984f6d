"""NWB and the command line with the automatic time-scale search: ``annotate(path)`` with no scale given stores a
:class:`~convseq_neo.multiscale.MultiScaleResult` (each pattern and occurrence with its own window), reads it back,
keeps the units bit for bit; ``convseq-neo annotate FILE`` needs no ``--bin-size``/``--width``; re-runs of
``annotate_many`` with ``"auto"`` skip what is stored alike.

One recording throughout: the docstrings' (30 units, 40 s, one planted 12-member sequence spanning ~0.12 s, found
at the 300 ms window of the two searched), with small fits (an automatic search on it takes about 6 s).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import quantities as pq
import torch
from pynwb import NWBHDF5IO
from test_nwb import make_nwbfile, same, snapshot, write

from convseq_neo import cli
from convseq_neo.io import nwb
from convseq_neo.io.nwb_batch import _decide
from convseq_neo.multiscale import MultiScaleResult
from convseq_neo.result import OCCURRENCE_COLUMNS, DetectionResult
from convseq_neo.synthetic.generate import sequence_recording

torch.set_num_threads(1)

SMALL = {"max_epochs": 200, "min_epochs": 50, "n_surrogates": 40, "n_folds": 3}
CLI_SMALL = ["--max-epochs", "200", "--n-surrogates", "40", "--folds", "3", "--seed", "0", "--no-progress"]
#: What annotate adds to result.parameters after writing (not stored in the file).
AFTER_WRITE = {"nwb_file", "nwb_events_table", "nwb_patterns_table", "nwb_parameters_table", "nwb_intervals_table",
               "nwb_identifier", "nwb_search_table", "nwb_scales_table"}


@pytest.fixture(scope="module")
def recording():
    """12 members 20 ms apart: a 220 ms sequence, which the 300 ms window holds and the 100 ms one cuts."""
    return sequence_recording(n_neurons=30, members_per_pattern=12, duration=40 * pq.s, rate=2 * pq.Hz,
                              lag_step=20 * pq.ms, n_occurrences=20, jitter=2 * pq.ms, random_state=1)


@pytest.fixture(scope="module")
def pristine(recording, tmp_path_factory):
    """The recording's Units table in an NWB file, never annotated (tests copy it)."""
    trains = [t.times.rescale(pq.s).magnitude for t in recording.spiketrains]
    return write(make_nwbfile(trains, obs=[np.array([[0.0, 40.0]])] * len(trains)),
                 tmp_path_factory.mktemp("auto") / "pristine.nwb")


@pytest.fixture(scope="module")
def searched(pristine, tmp_path_factory):
    """One automatic search, shared: annotate(path) in place with no scale given."""
    path = tmp_path_factory.mktemp("searched") / "session.nwb"
    shutil.copy2(pristine, path)
    before = snapshot(path)
    # the core options keep the fits small; nothing about the time scale or the number of patterns is given
    result = nwb.annotate(path, random_state=0, **SMALL)
    return path, result, before


def members_found(units, recording) -> int:
    """How many planted members are among ``units`` (unit ids 100 + neuron)."""
    return len(set(np.asarray(units) - 100) & set(recording.members[0].tolist()))


# ------------------------------------------------------------------ annotate(path): no time scale given
def test_no_scale_given_stores_the_pattern_at_its_window(searched, recording):
    path, result, before = searched
    assert isinstance(result, MultiScaleResult)
    assert same(snapshot(path), before)  # the units, bit for bit
    stored = nwb.read_detections(path)
    patterns = stored.patterns
    assert patterns["width"].round(6).tolist() == [0.3] and patterns["bin_size"].round(6).tolist() == [0.015]
    assert patterns["width_bins"].tolist() == [20] and stored.filters.shape == (1, 30, 20)
    assert members_found(patterns["units"][0], recording) >= 10
    occ = stored.occurrences
    assert list(occ.columns) == [*OCCURRENCE_COLUMNS, "bin_size", "width"]
    assert len(occ) == len(result.occurrences) >= 15
    assert np.allclose(occ["width"], 0.3) and np.allclose(occ["bin_size"], 0.015)
    pd.testing.assert_frame_equal(occ, result.occurrences[[*OCCURRENCE_COLUMNS, "bin_size", "width"]],
                                  check_exact=False, rtol=0, atol=1e-12)
    pd.testing.assert_frame_equal(nwb.read_events(path).reset_index(drop=True), occ)
    with NWBHDF5IO(str(path), "r") as io:  # the mirror for TimeIntervals readers carries the scale too
        mirror = io.read().intervals["convseq_occurrences"].to_dataframe()
    assert np.allclose(mirror["width"], 0.3) and np.allclose(mirror["bin_size"], 0.015)


def test_the_stored_parameters_record_the_search(searched):
    path, result, _ = searched
    stored = nwb.read_detections(path)
    params = stored.parameters
    assert params == {k: v for k, v in result.parameters.items() if k not in AFTER_WRITE}  # what annotate returned
    assert params["search"] == "scales" and params["n_scales"] == 2
    assert json.loads(params["scales_width_s"]) == [0.1, 0.3] and json.loads(params["scales_bin_size_s"]) == [0.005,
                                                                                                             0.015]
    assert params["alpha"] == 0.05 and params["alpha_per_scale"] == 0.025
    assert params["n_patterns_kept"] == 1 and params["n_patterns_asked"] == "auto" and params["max_patterns"] == 4
    assert params["random_state"] == 0 and params["max_epochs"] == 200 and params["n_surrogates"] == 40
    assert params["software"].startswith("convseq_neo ") and params["n_neurons"] == 30
    for key in ("bin_size_s", "width_s", "n_patterns"):  # one per scale: in scale_parameters
        assert key not in params
    # the fit kept at each scale, in full
    assert [p["bin_size_s"] for p in stored.scale_parameters] == [0.005, 0.015]
    assert [p["alpha"] for p in stored.scale_parameters] == [0.025, 0.025]
    assert stored.scale_parameters == [json.loads(json.dumps(fit.parameters, default=nwb._json_value))
                                       for fit in result.results]
    with NWBHDF5IO(str(path), "r") as io:
        text = io.read().events["convseq"].source_description
    assert "1 pattern, time scale searched (2 windows, 100-300 ms), alpha 0.05, n_surrogates 40" in text


def test_the_search_evidence_is_a_table(searched):
    path, result, _ = searched
    search = nwb.read_detections(path).search
    assert list(search.columns) == list(result.search.columns)
    pd.testing.assert_frame_equal(search.drop(columns="note"), result.search.drop(columns="note"), check_dtype=False)
    assert search["note"].tolist() == result.search["note"].tolist()
    kept = search[search["kept"] >= 0]
    assert kept[["kept", "scale", "width"]].values.tolist() == [[0, 1, 0.3]]  # row 0 of the patterns table


def test_an_automatic_run_adds_nothing_for_nwbinspector(searched):
    nwbinspector = pytest.importorskip("nwbinspector")
    path, _, _ = searched
    messages = {(m.check_function_name, m.object_name, m.importance.name)
                for m in nwbinspector.inspect_nwbfile(nwbfile_path=str(path))}
    # one pattern: a one-row patterns table, which the inspector merely suggests representing otherwise
    assert messages <= {("check_single_row", "convseq_patterns", "BEST_PRACTICE_SUGGESTION")}


def test_an_explicit_width_with_the_number_of_patterns_searched(pristine, tmp_path):
    out = tmp_path / "explicit.nwb"
    result = nwb.annotate(pristine, 5 * pq.ms, 200 * pq.ms, out=out, random_state=0, max_epochs=60, min_epochs=20,
                          n_surrogates=20, n_folds=2)
    assert isinstance(result, DetectionResult)
    stored = nwb.read_detections(out)
    assert stored.parameters["n_patterns_asked"] == "auto" and stored.parameters["max_patterns"] == 4
    assert "n_patterns_search" not in stored.parameters  # the search table holds it, fit by fit
    assert stored.parameters["n_patterns"] == result.n_patterns == len(stored.patterns)
    assert stored.scale_parameters is None
    chosen = stored.search[stored.search["chosen"]]
    assert chosen["kept"].tolist() == chosen["pattern"].tolist() == list(range(result.n_patterns))
    assert (stored.search.loc[~stored.search["chosen"], "kept"] == -1).all()
    assert np.allclose(stored.occurrences["width"], 0.2) and np.allclose(stored.patterns["bin_size"], 0.005)


def test_a_search_that_keeps_nothing_is_stored_and_read_back(tmp_path):
    rng = np.random.default_rng(0)
    trains = [np.sort(rng.uniform(0, 40, rng.poisson(80))) for _ in range(30)]  # Poisson only
    path = write(make_nwbfile(trains), tmp_path / "null.nwb")
    before = snapshot(path)
    result = nwb.annotate(path, random_state=0, **SMALL)
    assert result.n_patterns == 0
    stored = nwb.read_detections(path)
    assert len(stored.patterns) == 0 and len(stored.occurrences) == 0 and stored.filters.shape[:2] == (0, 30)
    assert stored.parameters["n_patterns_kept"] == 0 and (stored.search["kept"] == -1).all()
    assert same(snapshot(path), before)
    arguments = dict(unit_ids=None, window=None, intervals=None, t_start=None, t_stop=None, mirror_intervals=True,
                     random_state=0, device="auto", core_options=dict(SMALL), max_patterns=4)
    assert _decide(path, "auto", "auto", "auto", "convseq", "ecephys", arguments)[:2] == ("skipped", "convseq")
    # no pattern row holds the analysed units: the record does, and other units (the same number) are another run
    assert json.loads(stored.parameters["analyzed_units"]) == list(range(30))
    other = {**arguments, "unit_ids": [*range(101, 130), 100]}
    assert _decide(path, "auto", "auto", "auto", "convseq", "ecephys", other)[:2] == ("annotate", "convseq_2")


def test_an_automatic_run_inside_trials(recording, tmp_path):
    trains = [t.times.rescale(pq.s).magnitude for t in recording.spiketrains]
    nwbfile = make_nwbfile(trains, obs=[np.array([[0.0, 40.0]])] * len(trains))
    nwbfile.add_trial(start_time=0.0, stop_time=19.0)
    nwbfile.add_trial(start_time=20.0, stop_time=39.0)
    path = write(nwbfile, tmp_path / "trials.nwb")
    nwb.annotate(path, intervals="trials", random_state=0, **SMALL)
    stored = nwb.read_detections(path)
    assert stored.parameters["n_intervals"] == 2
    assert stored.parameters["intervals_total_s"] == pytest.approx(38.0)
    patterns, occ = stored.patterns, stored.occurrences
    assert set(patterns["width"].round(6)) <= {0.1, 0.3}  # the windows searched
    assert max(members_found(units, recording) for units in patterns["units"]) >= 10
    np.testing.assert_array_equal(occ["width"], patterns["width"].to_numpy()[occ["pattern"]])  # each its own scale
    assert len(occ) >= 12 and not occ["center"].between(19.0, 20.0, inclusive="neither").any()  # none in the gap
    # a re-run with the same intervals finds it; over the whole recording it is another run
    arguments = dict(unit_ids=None, window=None, intervals="trials", t_start=None, t_stop=None,
                     mirror_intervals=True, random_state=0, device="auto", core_options=dict(SMALL), max_patterns=4)
    assert _decide(path, "auto", "auto", "auto", "convseq", "ecephys", arguments)[:2] == ("skipped", "convseq")
    assert _decide(path, "auto", "auto", "auto", "convseq", "ecephys",
                   {**arguments, "intervals": None})[:2] == ("annotate", "convseq_2")


def test_filters_of_different_windows_are_padded_with_nan(tmp_path):
    """Patterns kept at windows of different lengths in bins (an explicit bin with the width searched, or data too
    coarse for 20 bins per window): one filter column, as long as the longest window, NaN beyond each one's own."""
    from convseq_neo.result import Pattern

    n = 6
    rng = np.random.default_rng(0)
    trains = [np.sort(rng.uniform(0, 10, 30)) for _ in range(n)]
    path = write(make_nwbfile(trains), tmp_path / "padded.nwb")
    shapes = [(0.005, 20), (0.005, 60)]  # 0.1 s and 0.3 s windows in 5 ms bins
    patterns, rows = [], []
    for k, (bin_size, width_bins) in enumerate(shapes):
        members = np.array([k, k + 2, k + 4])
        patterns.append(Pattern(pattern_id=k, neurons=members, names=tuple(str(100 + m) for m in members),
                                lags=np.array([-0.01, 0.0, 0.01]) * pq.s, scores=np.full(3, 5.0),
                                pvalues=np.full(3, 1e-4), filter=rng.dirichlet(np.ones(width_bins), size=n),
                                n_occurrences=2, bin_size=bin_size * pq.s, width=bin_size * width_bins * pq.s))
        rows += [{"pattern": k, "neuron": i, "name": str(100 + i), "score": 5.0 if i in members else 0.0,
                  "pvalue": 1e-4 if i in members else 0.9, "member": i in members, "lag": 0.0} for i in range(n)]
    centers = np.array([1.0, 2.0, 6.0, 7.0])
    occurrences = pd.DataFrame({"pattern": [0, 1, 0, 1], "center": centers, "onset": centers - 0.01,
                                "offset": centers + 0.01, "peak": 1.0, "pvalue": 1e-4, "bin_size": 0.005,
                                "width": [0.1, 0.3, 0.1, 0.3]})
    stored = nwb._Storable(patterns, pd.DataFrame(rows), occurrences, np.array([0.005, 0.005]), np.array([20, 60]),
                           {"method": "convseq", "scales_width_s": "[0.1, 0.3]"}, None, True)
    with NWBHDF5IO(str(path), "a") as io:
        nwbfile = io.read()
        nwb._add_tables(nwbfile, stored, np.arange(n), "convseq", "ecephys", True, "the test file")
        io.write(nwbfile)
    back = nwb.read_detections(path)
    assert back.filters.shape == (2, n, 60) and back.patterns["width_bins"].tolist() == [20, 60]
    np.testing.assert_allclose(back.filters[0, :, :20], patterns[0].filter)
    assert np.isnan(back.filters[0, :, 20:]).all()
    np.testing.assert_allclose(back.filters[1], patterns[1].filter)
    assert back.patterns["width"].tolist() == [0.1, 0.3] and back.occurrences["width"].tolist() == [0.1, 0.3, 0.1, 0.3]
    with NWBHDF5IO(str(path), "r") as io:
        nwbfile = io.read()
        assert "NaN" in nwbfile.processing["ecephys"]["convseq_patterns"]["filter"].description
        assert "time scale searched (2 windows, 100-300 ms)" in nwbfile.events["convseq"].source_description


# ------------------------------------------------------------------ re-runs of annotate_many with "auto"
def test_a_rerun_with_auto_matches_the_stored_search_and_nothing_else(searched):
    path, _, _ = searched
    arguments = dict(unit_ids=None, window=None, intervals=None, t_start=None, t_stop=None, mirror_intervals=True,
                     random_state=0, device="auto", core_options=dict(SMALL), max_patterns=4)

    def decide(bin_size="auto", width="auto", n_patterns="auto", **changes):
        return _decide(path, bin_size, width, n_patterns, "convseq", "ecephys", {**arguments, **changes})

    action, name, occurrences, patterns = decide()
    assert (action, name) == ("skipped", "convseq") and occurrences >= 15
    assert [(p["id"], round(p["width_s"], 6), round(p["bin_size_s"], 6)) for p in patterns] == [(0, 0.3, 0.015)]
    assert decide(core_options={**SMALL, "n_jobs": 1})[0] == "skipped"  # how a fit runs, not what it finds
    for changed in (dict(max_patterns=2), dict(random_state=1), dict(core_options={**SMALL, "alpha": 0.01}),
                    dict(n_patterns=1), dict(width=300 * pq.ms), dict(bin_size=5 * pq.ms),
                    dict(t_start=1 * pq.s)):
        assert decide(**changed)[:2] == ("annotate", "convseq_2"), changed


# ------------------------------------------------------------------ the command line
@pytest.fixture(scope="module")
def cli_run(pristine, tmp_path_factory):
    """``convseq-neo annotate FILE --out OUT`` with no time scale given: (exit status, stdout, stderr, OUT)."""
    out = tmp_path_factory.mktemp("cli_auto") / "out.nwb"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = cli.main(["annotate", str(pristine), "--out", str(out), *CLI_SMALL, "--json", "-"])
    return code, stdout.getvalue(), stderr.getvalue(), out


def test_the_command_line_needs_no_time_scale(cli_run, pristine):
    code, stdout, stderr, out = cli_run
    assert code == 0
    summary = json.loads(stdout)
    assert "time scale searched" in stderr and "up to 4 pattern(s) per window" in stderr
    assert "(windows searched: 100 ms, 300 ms)" in stderr
    assert "pattern 0: 12 members, " in stderr and "window 300 ms (bin 15 ms)" in stderr
    assert "/processing/ecephys/convseq_search" in stderr
    (pattern,) = summary["patterns"]
    assert pattern["width_s"] == pytest.approx(0.3) and pattern["bin_size_s"] == pytest.approx(0.015)
    assert summary["tables"]["search"] == "/processing/ecephys/convseq_search"
    assert summary["tables"]["scales"] == "/processing/ecephys/convseq_scales"
    stored = nwb.read_detections(out)
    assert summary["parameters"] == stored.parameters
    assert stored.parameters["scales_width_s"] == "[0.1, 0.3]" and stored.parameters["n_patterns_asked"] == "auto"
    assert same(snapshot(out), snapshot(pristine))


def test_several_files_with_auto_print_each_pattern_with_its_window(cli_run, pristine, tmp_path, capsys):
    from distributed import LocalCluster

    fresh, done = tmp_path / "fresh.nwb", tmp_path / "done.nwb"
    shutil.copy2(pristine, fresh)
    shutil.copy2(cli_run[3], done)  # annotated alike already (the same options): skipped
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        argv = ["annotate", str(fresh), str(done), *CLI_SMALL, "--scheduler", cluster.scheduler_address,
                "--report", str(tmp_path / "report.csv")]
        assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert f"ok       {fresh}:" in out and f"skipped  {done}:" in out and "1 ok, 1 skipped, 0 failed" in out
    assert out.count("pattern 0: 12 members") == 2 and out.count("window 300 ms (bin 15 ms)") == 2
    report = pd.read_csv(tmp_path / "report.csv")
    for text in report["patterns"]:
        (pattern,) = json.loads(text)
        assert pattern["width_s"] == pytest.approx(0.3)
    assert nwb.read_detections(fresh).patterns["width"].round(6).tolist() == [0.3]
