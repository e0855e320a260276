"""The server's disk nearly full when a sandbox stops: the learner reads why their files were not
kept, the stop still completes, nothing half-written or labelled is left, and a restart works.

The full disk is real, and small: a 1 MiB tmpfs mounted over the folder where stopped sandboxes'
files are saved (root only; CI runs as root)."""

from __future__ import annotations

import os
import subprocess

import pytest

from sandbox import home_files, services
from sandbox.models import Sandbox

from .lifecycle_helpers import cleanup, make_user, start  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def tiny_disk():
    folder = home_files.archive_path("x").parent
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.fail("this test mounts a tmpfs: run it as root (CI does)")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tutorial-test-full", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


async def test_stop_on_a_full_disk_says_so_and_leaves_nothing(tiny_disk, base_image, cleanup, labelled_leftovers):
    sandbox = await start(await make_user())
    cleanup.append(sandbox)
    backend = services.get_backend("plain")
    # 3 MiB of incompressible data: more than the 1 MiB left for saved files.
    filled = await backend.run(sandbox.engine_ref, "head -c 3145728 /dev/urandom > big.bin && echo ok", timeout=20)
    assert "ok" in filled.output, filled.output

    await services.stop_sandbox(sandbox)
    await sandbox.arefresh_from_db()
    assert sandbox.state == Sandbox.State.STOPPED
    assert "disk is full" in sandbox.failure_reason and "progress is safe" in sandbox.failure_reason
    assert labelled_leftovers(sandbox.id) == []
    assert list(tiny_disk.iterdir()) == []  # no half-written archive

    await services.restart_sandbox(sandbox)  # a fresh sandbox: the learner carries on
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    await services.stop_sandbox(sandbox)
    assert labelled_leftovers(sandbox.id) == []
