"""One real ASGI server (daphne) in a subprocess, for browser, multi-process and benchmark runs."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]


class Daphne(NamedTuple):
    url: str
    pid: int


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_daphne(env: dict, log_path: Path, *, ready_path: str = "/", timeout: float = 60,
                   processes: int = 1) -> Iterator[Daphne]:
    """Serve ``tutorial.asgi`` on a free loopback port with ``env``; yield its base URL and pid once
    ``ready_path`` answers 200. Raises RuntimeError (with the log's tail) if it never does.

    ``processes`` > 1 serves as ``make run`` does, through ``scripts/serve.py`` (several daphne
    processes on one socket; ``env`` needs REDIS_URL); the pid is then serve.py's."""
    port = free_port()
    if processes > 1:
        command = [sys.executable, str(ROOT / "scripts" / "serve.py"), "--port", str(port), "--processes", str(processes)]
    else:
        command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "tutorial.asgi:application"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"daphne exited with {process.returncode}: {_tail(log_path)}")
                with contextlib.suppress(OSError):
                    if urllib.request.urlopen(base + ready_path, timeout=5).status == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"daphne on {base} not ready in {timeout}s: {_tail(log_path)}")
                time.sleep(0.1)
            yield Daphne(base, process.pid)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


@contextlib.contextmanager
def private_redis(data_dir: Path) -> Iterator[str]:
    """A Redis of its own under ``data_dir`` (scripts/start-redis.sh, as ``make run`` starts one);
    yield its REDIS_URL, stop it afterwards. Raises RuntimeError with the script's message if it
    cannot start (no redis-server)."""
    result = subprocess.run([str(ROOT / "scripts" / "start-redis.sh")], env={**os.environ, "TUTORIAL_DATA_DIR": str(data_dir)},
                            capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"scripts/start-redis.sh failed: {result.stderr.strip()}")
    try:
        yield result.stdout.strip()
    finally:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int((data_dir / "redis" / "redis.pid").read_text().strip()), signal.SIGTERM)


def _tail(log_path: Path) -> str:
    return log_path.read_text(errors="replace")[-3000:]
