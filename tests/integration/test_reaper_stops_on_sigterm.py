"""`manage.py reap_sandboxes --loop` (as `make run` and the reaper's pods run it) stops on SIGTERM
with exit status 0 and no traceback: what someone who ends `make run` (or a pod being deleted)
sees. A SIGTERM handler that raised SystemExit could land during the interpreter's thread
shutdown and print one."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.engine]
ROOT = Path(__file__).resolve().parents[2]


def read_until(process: subprocess.Popen, text: str, timeout: float) -> str:
    """The process's stderr up to the line holding ``text`` (or all of it when time runs out)."""
    seen = ""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stderr, selectors.EVENT_READ)
        while text not in seen and time.monotonic() < deadline:
            if selector.select(timeout=0.5):
                line = process.stderr.readline()
                if not line:
                    break
                seen += line
    return seen


@pytest.mark.parametrize("passes_first", [0, 3])
def test_sigterm_ends_the_loop_cleanly(tmp_path, base_image, passes_first):
    env = {**os.environ, "TUTORIAL_DATA_DIR": str(tmp_path), "TUTORIAL_SQLITE_PATH": str(tmp_path / "db.sqlite3"),
           "DJANGO_SETTINGS_MODULE": "tutorial.settings", "PYTHONPATH": str(ROOT), "TUTORIAL_LOG_LEVEL": "INFO"}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=180)
    reaper = subprocess.Popen([sys.executable, "manage.py", "reap_sandboxes", "--loop", "--interval", "1"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        started = read_until(reaper, "reaper: running", timeout=60)
        assert "reaper: running" in started, started[-2000:]
        time.sleep(passes_first)  # at once, or in the middle of its passes
        reaper.send_signal(signal.SIGTERM)
        stderr = started + reaper.communicate(timeout=60)[1]
    finally:
        if reaper.poll() is None:
            reaper.kill()
            reaper.wait(10)
    assert reaper.returncode == 0, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-2000:]
