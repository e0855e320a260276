"""What an anonymous client can make a real daphne process do with a big or slow request.

A 256 MB POST (announced, or streamed chunked without a length) is refused with 413 before it is
buffered: the server process's memory does not grow with it. A client that starts a request and
trickles it (slowloris) is cut off at the request deadline, not kept for ever. Small posts still
reach Django.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest

from tests.daphne_process import running_daphne

REPO = Path(__file__).resolve().parents[2]
BIG = 256 * 1024 * 1024
CHUNK = b"x" * (1024 * 1024)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("limits")
    env = {**os.environ, "TUTORIAL_SQLITE_PATH": str(tmp / "db.sqlite3"), "TUTORIAL_DATA_DIR": str(tmp),
           "DJANGO_SETTINGS_MODULE": "tutorial.settings", "TUTORIAL_REQUEST_TIMEOUT": "3"}
    for name in ("DATABASE_URL", "REDIS_URL", "TUTORIAL_REQUEST_BODY_MAX"):
        env.pop(name, None)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=REPO, env=env, check=True,
                   timeout=180, capture_output=True)
    with running_daphne(env, tmp / "daphne.log", ready_path="/healthz") as server:
        yield server


class PeakRss:
    """The most memory the process held while the block ran, sampled every few milliseconds:
    daphne frees the body once the answer is sent, so a reading afterwards would miss it."""

    def __init__(self, pid: int):
        self.process = psutil.Process(pid)
        self.before = self.peak = self.process.memory_info().rss
        self.stop = threading.Event()

    def __enter__(self):
        def sample():
            while not self.stop.is_set():
                self.peak = max(self.peak, self.process.memory_info().rss)
                self.stop.wait(0.005)

        self.thread = threading.Thread(target=sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.wait(1)  # what the server does just after the client is done counts too
        self.stop.set()
        self.thread.join()

    @property
    def grown(self) -> int:
        return self.peak - self.before


def _connect(server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=20)
    return sock


def _read_status(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        piece = sock.recv(4096)
        if not piece:
            break
        data += piece
    assert data, "the server closed without an answer"
    return int(data.split(b" ", 2)[1])


def _send_all_or_stop(sock: socket.socket, head: bytes, chunks) -> None:
    """Send like a script that does not care about answers: stop only when the server stops us."""
    sock.sendall(head)
    try:
        for chunk in chunks:
            sock.sendall(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass


def test_an_announced_256_mb_post_is_refused_before_its_body_is_read(site):
    sock = _connect(site)
    head = (f"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {BIG}\r\n\r\n").encode()
    with PeakRss(site.pid) as memory:
        sock.sendall(head)
        assert _read_status(sock) == 413  # answered from the headers alone
        _send_all_or_stop(sock, b"", (CHUNK for _ in range(BIG // len(CHUNK))))
        sock.close()
    assert memory.grown < 8 * 1024 * 1024, f"daphne grew by {memory.grown / 2**20:.0f} MB"


def test_a_streamed_256_mb_chunked_post_is_refused_and_not_buffered(site):
    sock = _connect(site)
    head = (b"POST /accounts/signup/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    framed = b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK)
    with PeakRss(site.pid) as memory:
        _send_all_or_stop(sock, head, (framed for _ in range(BIG // len(CHUNK))))
        assert _read_status(sock) == 413
        sock.close()
    assert memory.grown < 8 * 1024 * 1024, f"daphne grew by {memory.grown / 2**20:.0f} MB"


def test_a_small_post_still_reaches_django(site):
    sock = _connect(site)
    body = b"username=a&password=b"
    sock.sendall(b"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    assert _read_status(sock) == 403  # Django's CSRF check answered: the body got through
    sock.close()


def test_a_client_trickling_its_headers_is_cut_off_at_the_deadline(site):
    """TUTORIAL_REQUEST_TIMEOUT=3 here. Twisted's idle timeout (60 s, reset by every byte) alone
    would keep this connection as long as the client likes."""
    sock = _connect(site)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    closed = False
    for _ in range(20):  # one header byte a second, never the blank line that ends them
        try:
            sock.sendall(b"X")
            sock.settimeout(1)
            if sock.recv(4096) == b"":
                closed = True
                break
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
    sock.close()
    assert closed, "the server kept a trickling client for 20 s"


def test_a_connection_that_never_sends_a_request_line_is_closed(site):
    sock = _connect(site)
    sock.sendall(b"GE")
    sock.settimeout(15)  # Twisted's own idle timeout is 60 s; the request deadline here is 3 s
    try:
        data = sock.recv(4096)
    except ConnectionResetError:
        data = b""
    sock.close()
    assert data == b""


def test_the_scenario_upload_takes_a_bigger_body_and_nothing_else_does(site):
    body = b"x" * (3 * 1024 * 1024)  # past the 1 MiB of every other path, within the upload's limit
    for path, expected in (("/classrooms/import/", 403), ("/accounts/login/", 413)):
        sock = _connect(site)
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        _send_all_or_stop(sock, head, [body])
        assert _read_status(sock) == expected, path  # 403: Django's CSRF check read the whole body
        sock.close()
