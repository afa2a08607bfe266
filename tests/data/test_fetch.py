"""Download path against local HTTP servers on 127.0.0.1: good file, wrong checksum, a connection
cut mid-way (then resumed with a Range request), a server that ignores Range, import and mirror."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from openmia.data import catalog
from openmia.data.fetch import fetch, import_file
from openmia.errors import ChecksumError, DataError, DownloadError


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with HTTP Range support; ``cut_after`` bytes of the first full response, then drops it."""

    cut_after: int | None = None
    requests: list = []

    def log_message(self, *a):  # keep test output clean
        pass

    def do_GET(self):
        path = Path(self.directory) / self.path.split("?")[0].lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        rng = self.headers.get("Range")
        type(self).requests.append(rng)
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        body = data[start:]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if type(self).cut_after is not None and not rng:
            self.wfile.write(body[: type(self).cut_after])
            self.wfile.flush()
            self.connection.shutdown(2)  # connection cut mid-way
            return
        self.wfile.write(body)


def serve(directory: Path, handler=RangeHandler):
    h = type("H", (handler,), {"requests": []})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a, **k: h(*a, directory=str(directory), **k))
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    return srv, h, f"http://127.0.0.1:{srv.server_address[1]}"


@pytest.fixture
def small_set(tmp_path, monkeypatch):
    """A generated MedMNIST-format file with its MD5 patched into the spec (works without shared data)."""
    src = tmp_path / "srv"
    src.mkdir()
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 1080), ("val", 120), ("test", 400)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28, 3), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 5, (n, 1), dtype=np.uint8)
    np.savez(src / "retinamnist.npz", **arrays)
    md5 = hashlib.md5((src / "retinamnist.npz").read_bytes()).hexdigest()
    from openmia.data import sources

    real = sources.medmnist_spec
    monkeypatch.setattr(sources, "medmnist_spec", lambda n, s: dataclasses.replace(real(n, s), md5=md5))
    return src


def test_good_file_is_installed_and_loads(small_set, _isolated_home):
    srv, h, url = serve(small_set)
    try:
        path = fetch("retinamnist", url=f"{url}/retinamnist.npz", progress=False)
    finally:
        srv.shutdown()
    assert path == _isolated_home / "medmnist" / "retinamnist.npz"
    assert catalog.load_split("retinamnist", "val").images.shape == (120, 3, 28, 28)
    assert fetch("retinamnist", url="http://127.0.0.1:9/unused", progress=False) == path  # cached: no download


def test_wrong_checksum_leaves_nothing(small_set, _isolated_home, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "retinamnist.npz").write_bytes(b"not the file")
    srv, h, url = serve(other)
    try:
        with pytest.raises(ChecksumError, match=r"has MD5 [0-9a-f]{32}, expected [0-9a-f]{32}; it was deleted"):
            fetch("retinamnist", url=f"{url}/retinamnist.npz", progress=False)
    finally:
        srv.shutdown()
    assert list((_isolated_home / "medmnist").iterdir()) == []


def test_cut_connection_is_resumed_with_range(small_set, _isolated_home, monkeypatch):
    monkeypatch.setattr(RangeHandler, "cut_after", 100_000)
    srv, h, url = serve(small_set)
    try:
        path = fetch("retinamnist", url=f"{url}/retinamnist.npz", progress=False, retries=3, backoff=0.0, timeout=5)
    finally:
        srv.shutdown()
    assert h.requests[0] is None and h.requests[1] == "bytes=100000-"
    assert path.read_bytes() == (small_set / "retinamnist.npz").read_bytes()


def test_plain_http_server_without_range_and_mirror_env(small_set, _isolated_home, monkeypatch):
    class Plain(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

    srv, _, url = serve(small_set, Plain)
    monkeypatch.setenv("OPENMIA_DATA_MIRROR", url)
    try:
        assert fetch("retinamnist", progress=False).is_file()
    finally:
        srv.shutdown()


def test_unreachable_server_keeps_partial_and_says_how_to_resume(small_set):
    with pytest.raises(DownloadError, match="Run the command again to resume"):
        fetch("retinamnist", url="http://127.0.0.1:9/retinamnist.npz", progress=False, retries=1, backoff=0, timeout=2)


def test_real_medmnist_file_over_http(shared_data, tmp_path, _isolated_home):
    srv, _, url = serve(shared_data / "medmnist")
    try:
        path = fetch("vesselmnist3d", url=f"{url}/vesselmnist3d.npz", progress=False)
    finally:
        srv.shutdown()
    assert catalog.load_split("vesselmnist3d", "test").images.shape == (382, 1, 28, 28, 28) and path.is_file()


def test_import_verifies(small_set, tmp_path, _isolated_home):
    assert import_file("retinamnist", small_set / "retinamnist.npz").is_file()
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"x")
    with pytest.raises(ChecksumError, match="does not match the official retinamnist file"):
        import_file("retinamnist", bad)
    with pytest.raises(DataError, match="file not found"):
        import_file("retinamnist", tmp_path / "missing.npz")
