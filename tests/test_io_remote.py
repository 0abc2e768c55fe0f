"""read_nwb streams a file over HTTP through remfile, never downloading it whole."""

import re
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from errsig.io import describe_nwb, read_nwb, write_nwb
from tests.conftest import random_session

remfile = pytest.importorskip("remfile")


#: (range asked for?, first byte, last byte) of each request served.
REQUESTS = []


class RangeRequestHandler(SimpleHTTPRequestHandler):
    """Serve files with byte ranges, as S3 does, and record the requests."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        data = Path(self.translate_path(self.path)).read_bytes()
        asked = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
        start, stop = (0, len(data) - 1) if asked is None else map(int, asked.groups())
        stop = min(stop, len(data) - 1)
        REQUESTS.append((asked is not None, start, stop))
        self.send_response(200 if asked is None else 206)
        if asked is not None:
            self.send_header("Content-Range", f"bytes {start}-{stop}/{len(data)}")
        self.send_header("Content-Length", str(stop - start + 1))
        self.end_headers()
        self.wfile.write(data[start : stop + 1])


@pytest.fixture
def served_session(tmp_path):
    session = random_session(np.random.default_rng(5), n_units=8)
    write_nwb(session, tmp_path / "remote.nwb")
    handler = partial(RangeRequestHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/remote.nwb"
    yield session, url
    server.shutdown()
    server.server_close()


def test_remote_file_through_remfile(served_session):
    session, url = served_session
    REQUESTS.clear()
    again = read_nwb(remfile.File(url))
    assert again.equals(session)
    assert again.meta["source_file"] == url
    # The data came in byte ranges (after remfile's probe for the file size).
    assert any(ranged for ranged, _, _ in REQUESTS)
    assert f"File: {url}" in describe_nwb(remfile.File(url))
