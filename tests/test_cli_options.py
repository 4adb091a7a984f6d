"""``convseq-neo annotate``: each option reaches the estimator; ``--json``; exit codes; a light ``--help``."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
import quantities as pq

from convseq_neo import __version__, cli
from convseq_neo.io import nwb
from convseq_neo.synthetic.generate import sequence_recording

BASE = ["--bin-size", "5ms", "--width", "200ms", "--patterns", "1", "--no-progress"]
#: the keywords of nwb.annotate that the new options set (none of them is passed unless its option is given)
OPTION_KEYWORDS = ("max_patterns", "alpha", "surrogates", "n_surrogates", "n_folds", "max_epochs", "n_jobs",
                   "unit_ids", "window", "intervals", "t_start", "t_stop")


@pytest.fixture(scope="module")
def nwb_file(tmp_path_factory):
    """40 units (ids 100-139) over 40 s with one planted sequence of 12 members."""
    from _recordings import planted_nwb

    return planted_nwb(tmp_path_factory.mktemp("cli_options") / "rec.nwb", random_state=4)


def _fake_result(out: str) -> SimpleNamespace:
    """What nwb.annotate returns, as far as the command line reads it (with a NaN in the parameters)."""
    patterns = [SimpleNamespace(pattern_id=0, size=3, names=("101", "107", "103"), n_occurrences=4,
                                bin_size=5 * pq.ms, width=0.2 * pq.s),
                SimpleNamespace(pattern_id=1, size=2, names=("110", "104"), n_occurrences=1)]  # no scale known
    parameters = {"method": "convseq", "alpha": 0.05, "tv_weight": None, "odd": math.nan, "n_occurrences": 5,
                  "nwb_file": out, "nwb_events_table": "/events/convseq",
                  "nwb_patterns_table": "/processing/ecephys/convseq_patterns",
                  "nwb_parameters_table": "/processing/ecephys/convseq_parameters",
                  "nwb_intervals_table": "/intervals/convseq_occurrences", "nwb_identifier": "new-identifier"}
    return SimpleNamespace(n_patterns=2, raster=SimpleNamespace(n_neurons=9), t_start=0.0 * pq.s, t_stop=10 * pq.s,
                           patterns=patterns, occurrences=list(range(5)), parameters=parameters)


@pytest.fixture
def recorder(monkeypatch, tmp_path):
    """nwb.annotate replaced by a recorder of its arguments; an existing (empty) input file."""
    calls = []

    def fake(path, bin_size, width, n_patterns, **kwargs):
        calls.append(dict(kwargs, path=path, bin_size=bin_size, width=width, n_patterns=n_patterns))
        return _fake_result(str(kwargs.get("out") or path))

    monkeypatch.setattr(nwb, "annotate", fake)
    path = tmp_path / "in.nwb"
    path.write_bytes(b"not opened: annotate is replaced")
    return SimpleNamespace(calls=calls, path=str(path))


def _error_lines(capsys) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("convseq-neo")]


# ------------------------------------------------------------------ --help stays light
def test_help_imports_neither_torch_neo_pynwb_nor_h5py():
    probe = textwrap.dedent("""
        import contextlib, io, json, sys
        heavy = ("torch", "neo", "pynwb", "h5py")
        loaded = lambda: [m for m in heavy if m in sys.modules]
        import convseq_neo
        after_import = loaded()
        from convseq_neo.cli import main
        with contextlib.redirect_stdout(io.StringIO()) as text:
            codes = [main(["--help"]), main(["annotate", "--help"])]
        after_help = loaded()
        with contextlib.redirect_stderr(io.StringIO()):
            codes.append(main(["annotate", "missing.nwb", "--bin-size", "5ms", "--width", "1s", "--patterns", "1"]))
        after_missing = loaded()
        from convseq_neo.io import nwb   # the probe itself: the NWB module does load some of them
        print(json.dumps({"codes": codes, "import": after_import, "help": after_help, "missing": after_missing,
                          "control": loaded(), "help_text": "--alpha" in text.getvalue()}))
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["codes"] == [0, 0, 2] and seen["help_text"]
    assert seen["import"] == [], f"import convseq_neo loads {seen['import']}"
    assert seen["help"] == [], f"--help loads {seen['help']}"
    assert seen["missing"] == [], f"a missing input file loads {seen['missing']}"
    assert {"torch", "neo"} <= set(seen["control"])  # the probe does see a heavy import


def test_help_lists_the_options_and_the_exit_codes(capsys):
    assert cli.main(["annotate", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--alpha", "--surrogates", "--n-surrogates", "--folds", "--max-epochs", "--objective", "--device",
                   "--jobs", "--second-pass",
                   "--unit-ids", "--window", "--intervals", "--t-start", "--t-stop", "--json", "--lock-timeout"):
        assert option in text
    assert cli.main(["--help"]) == 0
    top = " ".join(capsys.readouterr().out.split())
    for code in ("0 success", "1 failure while running", "2 bad usage", "130 interrupted"):
        assert code in text and code in top
    doc = " ".join(cli.__doc__.split())
    for code in ("0 Success.", "1 Failure while running", "2 Bad usage", "130 Interrupted", "no such file"):
        assert code in doc


def test_python_m_does_not_run_on_import():
    import importlib

    module = importlib.import_module("convseq_neo.__main__")  # would raise SystemExit without the guard
    assert module.main is cli.main


# ------------------------------------------------------------------ each option reaches annotate
@pytest.mark.parametrize("argv, expected", [
    (["--patterns", "auto", "--max-patterns", "2"], {"max_patterns": 2}),
    (["--alpha", "0.1"], {"alpha": 0.1}),
    (["--alpha", "1"], {"alpha": 1.0}),
    (["--surrogates", "circular"], {"surrogates": "circular"}),
    (["--n-surrogates", "40"], {"n_surrogates": 40}),
    (["--folds", "3"], {"n_folds": 3}),
    (["--max-epochs", "200"], {"max_epochs": 200}),
    (["--objective", "normalized"], {"objective": "normalized"}),
    (["--second-pass"], {"second_pass": True}),
    (["--jobs", "2"], {"n_jobs": 2}),
    (["--jobs", "-1"], {"n_jobs": -1}),
    (["--unit-ids", "3,7,10-12", "--unit-ids", "20"], {"unit_ids": [3, 7, 10, 11, 12, 20]}),
    (["--unit-ids", "0"], {"unit_ids": [0]}),
    (["--window", "trials"], {"window": "trials"}),
    (["--intervals", "running"], {"intervals": "running"}),
    (["--intervals", "obs_intervals"], {"intervals": "obs_intervals"}),
    (["--t-start", "2s", "--t-stop", "0.5min"], {"t_start": 2 * pq.s, "t_stop": 30 * pq.s}),
    (["--t-start", "0s"], {"t_start": 0 * pq.s}),
    (["--t-stop", "1500ms"], {"t_stop": 1.5 * pq.s}),
    (["--no-mirror-intervals"], {"mirror_intervals": False}),
])
def test_each_option_reaches_annotate(argv, expected, recorder, capsys):
    assert cli.main(["annotate", recorder.path, *BASE, *argv]) == 0
    (call,) = recorder.calls
    for keyword in OPTION_KEYWORDS:  # given: its value; not given: not passed, so the library's default holds
        if keyword not in expected:
            assert keyword not in call
        elif isinstance(expected[keyword], pq.Quantity):
            assert isinstance(call[keyword], pq.Quantity)
            assert float(call[keyword].rescale(pq.s).magnitude) == pytest.approx(float(expected[keyword]))
        else:
            assert call[keyword] == expected[keyword] and type(call[keyword]) is type(expected[keyword])
    assert call["path"] == recorder.path and call["progress"] is False
    assert call["n_patterns"] == ("auto" if "auto" in argv else 1)


def test_without_options_annotate_gets_only_its_own_defaults(recorder, capsys):
    assert cli.main(["annotate", recorder.path, *BASE]) == 0
    (call,) = recorder.calls
    assert not set(OPTION_KEYWORDS) & set(call)
    assert call["device"] == "auto" and call["random_state"] == 0 and call["lock_timeout"] == 0.0


@pytest.mark.parametrize("argv, expected", [
    ([], ("auto", "auto", "auto")),  # nothing is required: the time scale and the number of patterns are searched
    (["--patterns", "auto", "--width", "AUTO", "--bin-size", "auto"], ("auto", "auto", "auto")),
    (["--width", "300ms"], ("auto", 300 * pq.ms, "auto")),  # the bin tied to the window
    (["--bin-size", "10ms", "--patterns", "2"], (10 * pq.ms, "auto", 2)),  # windows searched at a fixed bin
])
def test_the_time_scale_and_the_number_of_patterns_default_to_auto(argv, expected, recorder, capsys):
    assert cli.main(["annotate", recorder.path, "--no-progress", *argv]) == 0
    (call,) = recorder.calls
    assert (call["bin_size"], call["width"], call["n_patterns"]) == expected
    err = capsys.readouterr().err
    assert ("time scale searched" in err) == (expected[1] == "auto")
    assert ("up to 4 pattern(s) per window" in err) == (expected[2] == "auto")


@pytest.mark.parametrize("argv, message", [
    (["--alpha", "0"], "must be in (0, 1]"),
    (["--alpha", "1.5"], "must be in (0, 1]"),
    (["--alpha", "nan"], "must be in (0, 1]"),
    (["--alpha", "five"], "not a number"),
    (["--surrogates", "shuffle"], "invalid choice"),
    (["--objective", "ratio"], "invalid choice"),
    (["--n-surrogates", "0"], "at least 1"),
    (["--folds", "1"], "at least 2"),
    (["--folds", "3.5"], "not an integer"),
    (["--jobs", "0"], "or -1 for every core"),
    (["--jobs", "-2"], "or -1 for every core"),
    (["--max-epochs", "0"], "at least 1"),
    (["--unit-ids", "a,b"], "not a list of unit ids"),
    (["--unit-ids", "1,,2"], "not a list of unit ids"),
    (["--unit-ids", "9-3"], "a range of unit ids goes up"),
    (["--unit-ids", "0-99999999"], "more than"),
    (["--unit-ids", "4,5,4-6"], "--unit-ids repeats [4, 5]"),
    (["--t-start", "5"], "not a duration with a unit"),
    (["--t-stop", "inf s"], "not a duration with a unit"),
    (["--t-start", "10s", "--t-stop", "5s"], "--t-stop (5 s) must be after --t-start (10 s)"),
    (["--t-start", "1min", "--t-stop", "60s"], "must be after --t-start"),
    (["--window"], "expected one argument"),
    (["--intervals"], "expected one argument"),
])
def test_bad_option_values_exit_2_before_any_work(argv, message, recorder, capsys):
    assert cli.main(["annotate", recorder.path, *BASE, *argv]) == 2
    lines = _error_lines(capsys)
    assert len(lines) == 1 and message in lines[0], lines
    assert recorder.calls == []


def test_a_url_is_left_to_annotate(recorder, tmp_path, capsys):
    url = "https://example.org/dandiset/sub-1_ecephys.nwb"
    assert cli.main(["annotate", url, *BASE, "--out", str(tmp_path / "copy.nwb")]) == 0
    (call,) = recorder.calls
    assert call["path"] == url


def test_a_missing_input_file_has_its_own_message_and_exits_2(recorder, tmp_path, capsys):
    missing = tmp_path / "gone.nwb"
    assert cli.main(["annotate", str(missing), *BASE]) == 2
    assert _error_lines(capsys) == [f"convseq-neo: error: {missing}: no such file"]
    assert recorder.calls == []


# ------------------------------------------------------------------ --json
def _strict_json(text: str):
    def refuse(constant):
        raise AssertionError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_json_file_on_success(recorder, tmp_path, capsys):
    target = tmp_path / "summary.json"
    target.write_text("an older summary")  # a plain file is replaced
    out = str(tmp_path / "annotated.nwb")
    assert cli.main(["annotate", recorder.path, *BASE, "--out", out, "--name", "run1", "--json", str(target)]) == 0
    assert "occurrences written to" in capsys.readouterr().out  # the human summary stays on stdout
    summary = _strict_json(target.read_text())
    assert summary["status"] == "ok" and summary["exit_code"] == 0 and summary["command"] == "annotate"
    assert summary["version"] == __version__ and summary["file"] == recorder.path and summary["out"] == out
    assert summary["name"] == "run1" and summary["identifier"] == "new-identifier"  # the out file's own
    assert summary["tables"] == {"events": "/events/convseq", "patterns": "/processing/ecephys/convseq_patterns",
                                 "parameters": "/processing/ecephys/convseq_parameters",
                                 "intervals": "/intervals/convseq_occurrences"}
    fake = _fake_result(out)
    assert summary["parameters"] == {"method": "convseq", "alpha": 0.05, "tv_weight": None, "odd": None,
                                     "n_occurrences": 5}  # as stored: without where it was written; NaN as null
    assert summary["patterns"] == [{"id": p.pattern_id, "n_members": p.size, "members": list(p.names),
                                    "n_occurrences": p.n_occurrences, "bin_size_s": scale[0], "width_s": scale[1]}
                                   for p, scale in zip(fake.patterns, [(0.005, 0.2), (None, None)])]
    assert summary["n_occurrences"] == 5 and summary["elapsed_s"] >= 0
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file, not a private temporary one


@pytest.mark.parametrize("error, code, error_type", [
    (RuntimeError("disk on fire"), 1, "RuntimeError"),
    (ValueError("width (200 ms) is longer than the window"), 2, "ValueError"),
])
def test_json_on_failure_has_the_same_exit_code(error, code, error_type, monkeypatch, recorder, tmp_path, capsys):
    def boom(*args, **kwargs):
        raise error

    monkeypatch.setattr(nwb, "annotate", boom)
    target = tmp_path / "summary.json"
    assert cli.main(["annotate", recorder.path, *BASE, "--json", str(target)]) == code
    (line,) = _error_lines(capsys)
    assert str(error) in line
    summary = _strict_json(target.read_text())
    assert summary["status"] == "failed" and summary["exit_code"] == code and summary["error_type"] == error_type
    assert summary["error"] == str(error) and summary["file"] == recorder.path and summary["version"] == __version__


def test_json_on_stdout_holds_only_the_json(recorder, capsys):
    assert cli.main(["annotate", recorder.path, *BASE, "--json", "-"]) == 0
    captured = capsys.readouterr()
    assert _strict_json(captured.out)["status"] == "ok"
    assert "occurrences written to" in captured.err


@pytest.mark.parametrize("argv, message", [
    (["--alpha", "2"], "must be in (0, 1]"),
    (["--unit-ids", "3,3"], "--unit-ids repeats [3]"),
    (["--patterns", "0"], "at least 1"),
])
def test_json_on_a_usage_error(argv, message, recorder, tmp_path, capsys):
    for form in (lambda t: ["--json", t], lambda t: [f"--json={t}"], lambda t: ["--js", t]):
        target = tmp_path / "usage.json"
        target.unlink(missing_ok=True)
        assert cli.main(["annotate", recorder.path, *BASE, *form(str(target)), *argv]) == 2
        assert len(_error_lines(capsys)) == 1
        summary = _strict_json(target.read_text())
        assert summary["status"] == "failed" and summary["exit_code"] == 2 and message in summary["error"]
        assert summary["command"] == "annotate"
    assert recorder.calls == []


def test_json_on_a_missing_input_file(recorder, tmp_path, capsys):
    target = tmp_path / "summary.json"
    assert cli.main(["annotate", str(tmp_path / "gone.nwb"), *BASE, "--json", str(target)]) == 2
    summary = _strict_json(target.read_text())
    assert summary["status"] == "failed" and summary["exit_code"] == 2
    assert summary["error"].endswith("gone.nwb: no such file") and summary["error_type"] == "FileNotFoundError"


def test_json_never_overwrites_an_nwb_file(nwb_file, recorder, tmp_path, capsys):
    original = nwb_file.read_bytes()
    other = tmp_path / "other.nwb"
    other.write_bytes(original)
    out = tmp_path / "out.nwb"
    cases = [
        (["annotate", str(nwb_file), *BASE, "--json", str(nwb_file)], "same file as FILE.nwb"),
        (["annotate", recorder.path, *BASE, "--out", str(out), "--json", str(out)], "same file as --out"),
        (["annotate", recorder.path, *BASE, "--json", str(other)], "is an HDF5 (NWB) file"),
        (["annotate", recorder.path, *BASE, "--json", str(tmp_path / "no" / "s.json")], "no such directory"),
        (["annotate", recorder.path, *BASE, "--json", str(tmp_path)], "is a directory"),
        # a usage error too: the summary must not go over the input
        (["annotate", str(nwb_file), *BASE, "--alpha", "7", "--json", str(nwb_file)], "same file as a file"),
    ]
    for argv, message in cases:
        assert cli.main(argv) == 2
        assert any(message in line for line in _error_lines(capsys)), message
    assert nwb_file.read_bytes() == original and other.read_bytes() == original and not out.exists()
    assert recorder.calls == []


# ------------------------------------------------------------------ parity: one real fit, the stored parameters
def test_options_reach_the_estimator_and_the_stored_parameters(nwb_file, tmp_path, capsys):
    out = tmp_path / "out.nwb"
    ids = [*range(100, 130), 135]
    argv = ["annotate", str(nwb_file), "--out", str(out), "--bin-size", "5ms", "--width", "200ms", "--patterns", "1",
            "--seed", "2", "--no-progress", "--alpha", "0.1", "--surrogates", "circular", "--n-surrogates", "40",
            "--folds", "3", "--max-epochs", "200", "--jobs", "1", "--unit-ids", "100-129,135", "--t-start", "2s",
            "--t-stop", "38000ms", "--json", "-"]
    assert cli.main(argv) == 0
    summary = _strict_json(capsys.readouterr().out)
    stored = nwb.read_detections(out)
    params = stored.parameters
    assert params["alpha"] == 0.1 and params["surrogates"] == "circular" and params["n_surrogates"] == 40
    assert params["n_folds"] == 3 and params["n_folds_used"] == 3 and params["max_epochs"] == 200
    assert params["n_jobs"] == 1 and params["random_state"] == 2 and params["n_patterns"] == 1
    assert params["t_start_s"] == pytest.approx(2.0) and params["t_stop_s"] == pytest.approx(38.0)
    assert params["n_neurons"] == len(ids)
    assert sorted(stored.membership["unit_id"].unique().tolist()) == ids  # exactly those units were analysed
    assert set(stored.patterns["units"][0]) <= set(ids) and len(stored.occurrences) > 0
    assert stored.occurrences["center"].between(2.0, 38.0).all()
    # the summary: what the file holds
    assert summary["status"] == "ok" and summary["out"] == str(out) and summary["file"] == str(nwb_file)
    assert summary["parameters"] == params
    assert summary["tables"]["events"] == "/events/convseq"
    assert summary["tables"]["patterns"] == "/processing/ecephys/convseq_patterns"
    assert all(path.startswith("/") for path in summary["tables"].values())
    assert summary["n_occurrences"] == len(stored.occurrences)
    (pattern,) = summary["patterns"]
    assert pattern["id"] == 0 and pattern["n_occurrences"] == int(stored.patterns["n_occurrences"][0])
    assert pattern["n_members"] == len(stored.patterns["units"][0])
    assert pattern["members"] == [str(u) for u in stored.patterns["units"][0]]  # unit names, in lag order


def test_intervals_reach_the_detection(tmp_path, capsys):
    """--intervals trials: the detection looks only inside the two trials (stored in the parameters)."""
    from test_nwb import make_nwbfile, write

    rec = sequence_recording(n_neurons=30, members_per_pattern=12, duration=40 * pq.s, rate=2 * pq.Hz,
                             lag_step=10 * pq.ms, participation=1.0, jitter=5 * pq.ms, n_occurrences=25,
                             random_state=5)
    nwbfile = make_nwbfile([t.times.rescale(pq.s).magnitude for t in rec.spiketrains])
    nwbfile.add_trial(start_time=4.0, stop_time=16.0)
    nwbfile.add_trial(start_time=22.0, stop_time=36.0)
    path = write(nwbfile, tmp_path / "trials.nwb")
    out, target = tmp_path / "out.nwb", tmp_path / "summary.json"
    argv = ["annotate", str(path), "--out", str(out), "--bin-size", "5ms", "--width", "200ms", "--patterns", "1",
            "--no-progress", "--max-epochs", "200", "--n-surrogates", "40", "--folds", "3", "--intervals", "trials",
            "--json", str(target)]
    assert cli.main(argv) == 0
    assert "2 intervals, 26 s in all" in capsys.readouterr().out
    params = nwb.read_detections(out).parameters
    assert params["n_intervals"] == 2 and params["intervals_total_s"] == pytest.approx(26.0)
    summary = _strict_json(target.read_text())
    assert summary["parameters"] == params and summary["n_occurrences"] > 0
    assert cli.main([*argv[:2], "--out", str(tmp_path / "other.nwb"), *argv[4:-4], "--intervals", "nope"]) == 2
    assert "no TimeIntervals table of that name" in capsys.readouterr().err
