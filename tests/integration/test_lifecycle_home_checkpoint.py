"""A shell `exit` or an engine restart leaves nothing to save at stop (the tmpfs home is gone with
the container): the reaper's checkpoints of an active learner's home are what comes back."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from sandbox import home_files, reaper, services
from sandbox.models import Sandbox

from .lifecycle_helpers import cleanup, make_user, only, start  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


async def _age(sandbox: Sandbox, seconds: int) -> None:
    """As if the sandbox had run ``seconds`` already (the checkpoint interval is measured from its start)."""
    past = timezone.now() - dt.timedelta(seconds=seconds)
    await Sandbox.objects.filter(pk=sandbox.pk).aupdate(started_at=past, created_at=past)


async def test_files_written_before_the_container_died_come_back_on_the_next_start(settings, base_image, docker_client,
                                                                                    cleanup):
    settings.SANDBOX_HOME_CHECKPOINT_SECONDS = 60
    sandbox = await start(await make_user())
    cleanup.append(sandbox)
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    written = await services.run_script(sandbox, "echo 'my notes' > notes.txt && echo ok", timeout=10)  # activity
    assert written.output.strip() == "ok"

    report = await reaper.reap_once(only(sandbox))
    assert report.checkpointed == [], "not before the interval has passed"
    await _age(sandbox, 120)
    report = await reaper.reap_once(only(sandbox))
    assert report.checkpointed == [str(sandbox.id)]
    report = await reaper.reap_once(only(sandbox))
    assert report.checkpointed == [], "nothing was done since the last copy"

    # The container dies the way `exit` or a stopped engine leaves it: its tmpfs is gone.
    docker_client.containers.get(sandbox.engine_ref).kill()
    report = await reaper.reap_once(only(sandbox))
    assert report.stopped_after_engine_restart == [str(sandbox.id)]
    await sandbox.arefresh_from_db()
    assert sandbox.state == Sandbox.State.STOPPED
    assert await home_files.has_saved_files(sandbox.id)

    await services.restart_sandbox(sandbox)  # the pane's "Start again"
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    back = await services.run_script(sandbox, "cat notes.txt", timeout=10)
    assert back.output.strip() == "my notes"


async def test_a_checkpoint_never_replaces_the_copy_a_stop_made(base_image, cleanup):
    sandbox = await start(await make_user())
    cleanup.append(sandbox)
    backend = services.get_backend("plain")
    await services.run_script(sandbox, "echo first > f", timeout=10)
    assert await home_files.save(backend, sandbox.id, sandbox.engine_ref)
    await services.run_script(sandbox, "echo second > f", timeout=10)

    async def stopped_meanwhile() -> bool:
        return False

    assert await home_files.save(backend, sandbox.id, sandbox.engine_ref, still_wanted=stopped_meanwhile) == 0
    assert not list(home_files.archive_path(sandbox.id).parent.glob(f"{sandbox.id}.*.part"))
    assert await home_files.restore(backend, sandbox.id, sandbox.engine_ref)
    assert (await services.run_script(sandbox, "cat f", timeout=10)).output.strip() == "first"
