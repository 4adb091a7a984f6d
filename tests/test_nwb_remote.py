"""Remote NWB files: read_units and read_detections stream a file over HTTP (Range requests, through fsspec), and
annotate writes a derived local file from a remote source with out=.

The server is a local one on 127.0.0.1 (nothing leaves the machine). Python's http.server ignores ``Range``, so the
handler below answers single-range requests with 206 Partial Content, as S3 and DANDI's servers do.
"""

from __future__ import annotations

import http.server
import os
import re
import socket
import sys
import threading
import urllib.request

import numpy as np
import pytest
import quantities as pq
from pynwb import NWBHDF5IO
from test_nwb import make_nwbfile, snapshot, write

from convseq_neo.io import nwb
from convseq_neo.synthetic.generate import sequence_recording

pytest.importorskip("fsspec")
pytest.importorskip("aiohttp")

BIN = 5 * pq.ms
WIDTH = 200 * pq.ms
TINY = {"max_epochs": 20, "n_surrogates": 10, "n_folds": 2}


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves the files of ``root`` (GET and HEAD), honouring one ``Range: bytes=a-b``, ``a-`` or ``-n`` per request.

    Every request is recorded in ``requests`` as ``(method, range header or None, status)``.
    """

    root = "."
    requests: list = []

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        path = os.path.join(self.root, self.path.lstrip("/").split("?", 1)[0])
        header = self.headers.get("Range")
        if not os.path.isfile(path):
            self.requests.append((self.command, header, 404))
            self.send_error(404)
            return
        size = os.path.getsize(path)
        start, stop, status = 0, size - 1, 200
        if header is not None:
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
            if match is None or not (match[1] or match[2]):
                self.requests.append((self.command, header, 416))
                self.send_error(416)
                return
            if match[1]:
                start = int(match[1])
                stop = min(int(match[2]), size - 1) if match[2] else size - 1
            else:  # the last n bytes
                start = max(0, size - int(match[2]))
            if start >= size or stop < start:
                self.requests.append((self.command, header, 416))
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.end_headers()
                return
            status = 206
        self.requests.append((self.command, header, status))
        self.send_response(status)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/x-hdf5")
        self.send_header("Content-Length", str(stop - start + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{stop}/{size}")
        self.end_headers()
        if body:
            with open(path, "rb") as handle:
                handle.seek(start)
                self.wfile.write(handle.read(stop - start + 1))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A small NWB file with one planted pattern, served over HTTP; yields (base URL, folder, handler class)."""
    folder = tmp_path_factory.mktemp("served")
    rec = sequence_recording(n_neurons=20, members_per_pattern=8, duration=30 * pq.s, rate=2 * pq.Hz,
                             lag_step=10 * pq.ms, participation=1.0, jitter=2 * pq.ms, n_occurrences=20,
                             random_state=4)
    trains = [t.times.rescale(pq.s).magnitude for t in rec.spiketrains]
    write(make_nwbfile(trains, obs=[np.array([[0.0, 30.0]])] * len(trains)), folder / "session.nwb")
    handler = type("Handler", (RangeHandler,), {"root": str(folder), "requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder, handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_the_server_answers_range_requests(served):
    base, folder, _ = served
    data = (folder / "session.nwb").read_bytes()
    request = urllib.request.Request(f"{base}/session.nwb", headers={"Range": "bytes=8-15"})
    with urllib.request.urlopen(request) as response:
        assert response.status == 206 and response.read() == data[8:16]
        assert response.headers["Content-Range"] == f"bytes 8-15/{len(data)}"


def test_read_units_streams_a_remote_file(served):
    base, folder, handler = served
    handler.requests.clear()
    remote = nwb.read_units(f"{base}/session.nwb")
    local = nwb.read_units(folder / "session.nwb")
    assert len(remote) == len(local) == 20
    for a, b in zip(remote, local):
        np.testing.assert_array_equal(a.magnitude, b.magnitude)
        assert a.annotations["unit_id"] == b.annotations["unit_id"]
        np.testing.assert_array_equal(a.annotations["obs_intervals"], b.annotations["obs_intervals"])
        assert a.t_start == b.t_start and a.t_stop == b.t_stop
    ranged = [r for r in handler.requests if r[0] == "GET"]
    assert ranged and all(r[1] is not None and r[2] == 206 for r in ranged)  # only Range requests were made


def test_annotate_a_remote_file_into_a_local_copy(served, tmp_path):
    base, folder, _ = served
    source = folder / "session.nwb"
    before = source.read_bytes()
    out = tmp_path / "annotated.nwb"
    result = nwb.annotate(f"{base}/session.nwb", BIN, WIDTH, out=out, random_state=0, **TINY)
    assert source.read_bytes() == before
    assert result.parameters["nwb_file"] == str(out)
    for a, b in zip(snapshot(source), snapshot(out)):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    with NWBHDF5IO(str(source), "r") as io_source, NWBHDF5IO(str(out), "r") as io_out:
        original, copy = io_source.read(), io_out.read()
        assert copy.identifier != original.identifier and copy.object_id != original.object_id
        assert set(copy.events) == {"convseq"}
    stored = nwb.read_detections(out)
    np.testing.assert_array_equal(stored.occurrences["onset"], result.occurrences["onset"])
    assert stored.parameters["max_epochs"] == 20
    # the annotated file read back over HTTP, too
    (folder / "annotated.nwb").write_bytes(out.read_bytes())
    streamed = nwb.read_detections(f"{base}/annotated.nwb")
    np.testing.assert_array_equal(streamed.occurrences.to_numpy(), stored.occurrences.to_numpy())
    assert streamed.parameters == stored.parameters
    np.testing.assert_array_equal(nwb.read_events(f"{base}/annotated.nwb").to_numpy(),
                                  nwb.read_events(out).to_numpy())


def test_a_remote_file_needs_out_and_is_refused_before_any_work(served, monkeypatch):
    base, _, handler = served

    def never(*args, **kwargs):  # pragma: no cover - must not be reached
        raise AssertionError("detect was called")

    monkeypatch.setattr(nwb, "detect", never)
    handler.requests.clear()
    with pytest.raises(ValueError, match="remote file, which cannot be annotated in place: pass out="):
        nwb.annotate(f"{base}/session.nwb", BIN, WIDTH)
    assert handler.requests == []  # not even opened
    with pytest.raises(ValueError, match="out must be a local path"):
        nwb.annotate(f"{base}/session.nwb", BIN, WIDTH, out=f"{base}/out.nwb")


def test_missing_or_broken_remote_file(served):
    base, folder, _ = served
    with pytest.raises(FileNotFoundError, match="no such remote file"):
        nwb.read_units(f"{base}/missing.nwb")
    (folder / "junk.nwb").write_bytes(b"not an HDF5 file" * 64)
    with pytest.raises(ValueError, match="could not be read as an NWB file"):
        nwb.read_units(f"{base}/junk.nwb")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OSError, match="the remote file could not be opened"):
        nwb.read_units(f"http://127.0.0.1:{port}/session.nwb")


def test_missing_optional_dependency_says_what_to_install(served, tmp_path, monkeypatch):
    base, _, handler = served
    monkeypatch.setitem(sys.modules, "fsspec", None)  # import fsspec now raises ImportError
    handler.requests.clear()
    for call in (lambda: nwb.read_units(f"{base}/session.nwb"),
                 lambda: nwb.annotate(f"{base}/session.nwb", BIN, WIDTH, out=tmp_path / "x.nwb")):
        with pytest.raises(ImportError, match=re.escape('pip install "convseq_neo[remote]"')):
            call()
    assert handler.requests == [] and not (tmp_path / "x.nwb").exists()


def test_s3_urls_go_through_the_public_https_endpoint():
    assert nwb._https_url("s3://dandiarchive/blobs/1a2/b3c/1a2b3c") == \
        "https://dandiarchive.s3.amazonaws.com/blobs/1a2/b3c/1a2b3c"
    assert nwb._https_url("s3://my.dotted.bucket/a/b.nwb") == "https://s3.amazonaws.com/my.dotted.bucket/a/b.nwb"
    assert nwb._https_url("https://example.org/x.nwb") == "https://example.org/x.nwb"
    with pytest.raises(ValueError, match="not an s3://bucket/key URL"):
        nwb._https_url("s3://bucket-only")
    assert nwb._is_remote("HTTPS://example.org/x.nwb") and not nwb._is_remote("session.nwb")
