"""Tests for the ``convseq-neo`` command line (the ``annotate`` subcommand)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading

import numpy as np
import pytest
import quantities as pq
import torch
from pynwb import NWBHDF5IO

from convseq_neo import cli
from convseq_neo.io import nwb

torch.set_num_threads(1)

ARGS = ["--bin-size", "5ms", "--width", "200ms", "--patterns", "1", "--max-epochs", "200", "--no-progress"]


@pytest.fixture(scope="module")
def nwb_file(tmp_path_factory):
    from _recordings import planted_nwb

    return planted_nwb(tmp_path_factory.mktemp("cli") / "rec.nwb", random_state=3)


@pytest.fixture(scope="module")
def annotated(nwb_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli_out") / "out.nwb"
    code = cli.main(["annotate", str(nwb_file), "--out", str(out), "--seed", "1", *ARGS])
    return code, out


def test_duration_parsing():
    assert cli.duration("5ms") == 5 * pq.ms
    assert float(cli.duration("0.5 s").rescale(pq.s)) == 0.5
    assert cli.duration("1e3us").rescale(pq.ms) == 1 * pq.ms
    for bad in ("5", "ms", "5 parsecs"):
        with pytest.raises(argparse.ArgumentTypeError, match="duration with a unit"):
            cli.duration(bad)
    for bad in ("-5ms", "0s", "-1e-3 s"):
        with pytest.raises(argparse.ArgumentTypeError, match="must be positive"):
            cli.duration(bad)


def test_help_lists_everything(capsys):
    assert cli.main(["annotate", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("FILE.nwb", "--out", "--name", "--module", "--bin-size", "--width", "--patterns", "--max-patterns",
                   "--seed",
                   "--device", "--max-epochs", "--no-progress", "--alpha", "--surrogates", "--n-surrogates", "--folds",
                   "--jobs", "--unit-ids", "--window", "--intervals", "--t-start", "--t-stop", "--json"):
        assert option in text
    assert cli.main(["--help"]) == 0
    assert "annotate" in capsys.readouterr().out


def test_annotate_success(annotated, nwb_file, capsys):
    code, out = annotated
    assert code == 0
    stored = nwb.read_detections(out)
    assert len(stored.occurrences) >= 20
    assert stored.parameters["max_epochs"] == 200 and stored.parameters["random_state"] == 1
    with NWBHDF5IO(str(nwb_file), "r") as io:
        assert not io.read().events  # the input was not touched


def test_summary_printed(nwb_file, tmp_path, capsys):
    out = tmp_path / "o.nwb"
    assert cli.main(["annotate", str(nwb_file), "--out", str(out), "--name", "mine", *ARGS]) == 0
    text = capsys.readouterr().out
    assert "pattern 0:" in text and "members" in text and "occurrences written to" in text
    assert str(out) in text and "/events/mine" in text
    assert len(nwb.read_detections(out, "mine").occurrences) > 0


@pytest.mark.parametrize("argv, message", [
    (["annotate", "f.nwb", "--bin-size", "5", "--width", "200ms", "--patterns", "1"], "not a duration with a unit"),
    (["annotate", "f.nwb", "--bin-size", "fast", "--width", "200ms"], "not a duration with a unit, e.g. 5ms or 0.5s"),
    (["annotate", "f.nwb", "--width", "wide"], "or auto (the default"),
    (["annotate", "f.nwb", "--patterns", "many"], "not an integer; or auto"),
    (["annotate", "f.nwb", "--max-patterns", "0"], "at least 1"),
    (["annotate", "f.nwb", "--patterns", "2", "--max-patterns", "3"], "--max-patterns applies to --patterns auto"),
    (["annotate", "f.nwb", "--bin-size=-5ms", "--width", "200ms", "--patterns", "1"], "'-5ms' must be positive"),
    (["annotate", "f.nwb", "--bin-size", "5ms", "--width=-200ms", "--patterns", "1"], "'-200ms' must be positive"),
    (["annotate", "f.nwb", "--bin-size", "5ms", "--width", "200ms", "--patterns", "0"], "at least 1"),
    (["annotate", "f.nwb", *ARGS, "--device", "tpu"], "invalid choice"),
    (["annotate", "missing.nwb", *ARGS], "no such file"),
])
def test_bad_arguments_exit_2_with_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and "Traceback" not in "\n".join(err)
    assert len([line for line in err if "error" in line]) == 1


def test_name_clash_exits_2(annotated, capsys):
    _, out = annotated
    assert cli.main(["annotate", str(out), *ARGS]) == 2
    err = capsys.readouterr().err
    assert "already holds" in err and "--name" in err and "Traceback" not in err


def test_other_failure_exits_1(nwb_file, monkeypatch, capsys):
    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(nwb, "annotate", boom)
    assert cli.main(["annotate", str(nwb_file), *ARGS]) == 1
    assert "disk on fire" in capsys.readouterr().err


def test_console_entry_point_runs():
    done = subprocess.run([sys.executable, "-m", "convseq_neo", "annotate", "nope.nwb", *ARGS], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    assert "no such file" in done.stderr and "Traceback" not in done.stderr
    assert np.char.count(done.stderr.strip(), "\n") <= 1


def test_lock_timeout_parsing():
    assert cli.wait_duration("30s") == 30.0 and cli.wait_duration("0s") == 0.0
    assert cli.wait_duration("2min") == 120.0 and cli.wait_duration("500 ms") == 0.5
    with pytest.raises(argparse.ArgumentTypeError, match="must be positive or zero"):
        cli.wait_duration("-1s")
    with pytest.raises(argparse.ArgumentTypeError, match="duration with a unit"):
        cli.wait_duration("30")
    args = cli.build_parser().parse_args(["annotate", "f.nwb", *ARGS, "--lock-timeout", "1min"])
    assert args.lock_timeout == 60.0
    assert cli.build_parser().parse_args(["annotate", "f.nwb", *ARGS]).lock_timeout == 0.0


def test_help_lists_lock_timeout(capsys):
    assert cli.main(["annotate", "--help"]) == 0
    assert "--lock-timeout" in capsys.readouterr().out


def test_a_locked_file_exits_1_with_one_line_and_a_lock_timeout_waits(nwb_file, tmp_path, capsys):
    from test_safe_write_lock import HOLDER

    path = tmp_path / "shared.nwb"
    path.write_bytes(nwb_file.read_bytes())
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"  # another process holds the file
        for wait in ([], ["--lock-timeout", "0.3s"]):
            assert cli.main(["annotate", str(path), *ARGS, *wait]) == 1
            err = capsys.readouterr().err.strip().splitlines()
            locked = [line for line in err if "error" in line]
            assert len(locked) == 1 and "Traceback" not in "\n".join(err)
            assert "is locked by another process" in locked[0] and f"pid {holder.pid}" in locked[0]
            assert path.read_bytes() == nwb_file.read_bytes()

        def release():
            holder.stdin.write("\n")
            holder.stdin.flush()

        threading.Timer(0.3, release).start()
        assert cli.main(["annotate", str(path), *ARGS, "--lock-timeout", "30s"]) == 0
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert len(nwb.read_detections(path).patterns) == 1  # stored after the wait
