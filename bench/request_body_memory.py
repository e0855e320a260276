#!/usr/bin/env python3
"""How much one anonymous 256 MB POST makes a real daphne process grow (peak RSS, sampled every
5 ms while the body is sent), and what the client is answered. Prints JSON.

    .venv/bin/python bench/request_body_memory.py [--megabytes 256]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.daphne_process import running_daphne  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "TUTORIAL_SQLITE_PATH": str(tmp / "db.sqlite3"), "TUTORIAL_DATA_DIR": str(tmp),
               "DJANGO_SETTINGS_MODULE": "tutorial.settings"}
        env.pop("REDIS_URL", None)
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        chunk = b"x" * 2**20
        with running_daphne(env, tmp / "daphne.log", ready_path="/healthz") as server:
            process = psutil.Process(server.pid)
            before = peak = process.memory_info().rss
            done = threading.Event()

            def sample():
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, process.memory_info().rss)
                    done.wait(0.005)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            host, port = server.url.removeprefix("http://").split(":")
            started = time.monotonic()
            sock = socket.create_connection((host, int(port)), timeout=120)
            sock.sendall(f"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         f"Content-Length: {args.megabytes * 2**20}\r\n\r\n".encode())
            try:
                for _ in range(args.megabytes):
                    sock.sendall(chunk)
            except OSError:
                pass
            try:
                status = sock.recv(200).split(b" ")[1].decode()
            except (OSError, IndexError) as exc:
                status = f"no answer ({exc.__class__.__name__})"
            seconds = time.monotonic() - started
            time.sleep(1)
            done.set()
            sampler.join()
        print(json.dumps({"megabytes_posted": args.megabytes, "status": status, "rss_before_mb": round(before / 2**20),
                          "rss_peak_growth_mb": round((peak - before) / 2**20, 1), "seconds": round(seconds, 1)}))


if __name__ == "__main__":
    main()
