"""A stopped sandbox's files kept through the backend's declared capability (``keeps_home_files``,
``copy_home_out`` / ``copy_home_in``), whichever engine the backend drives, in either store
(``HOME_FILES_STORE``: files under DATA_DIR, or a database row every process sees)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import pytest
from django.db import OperationalError
from django.db.models import QuerySet
from django.utils import timezone

from sandbox import home_files, reaper, services
from sandbox.backends.base import BackendError, SandboxBackend, SandboxSpec
from sandbox.backends.docker import DockerBackend
from sandbox.backends.pod import PodBackend
from sandbox.models import SavedHome, Sandbox
from tests.factories import LESSON
from tests.fakes import FakeBackend, HomeKeepingBackend

SANDBOX_ID = "7a1e0000-0000-4000-8000-000000000001"
SPEC = SandboxSpec(sandbox_id=SANDBOX_ID, owner_id=1, owner_name="owner", lesson="first", workspace="plain",
                   image="tutorial/base")

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _fresh_fake_backend():
    FakeBackend.reset()
    yield
    FakeBackend.reset()


@pytest.fixture(params=["files", "database"])
def store(request, settings):
    settings.HOME_FILES_STORE = request.param
    return request.param


@pytest.fixture
def home_keeping_site(settings):
    """The site's plain sandboxes on the in-memory backend that keeps homes."""
    settings.SANDBOX_BACKENDS = {workspace: "tests.fakes.HomeKeepingBackend" for workspace in FakeBackend.workspaces}
    services.get_backend.cache_clear()
    yield HomeKeepingBackend
    services.get_backend.cache_clear()


def another_process(settings, tmp_path, name: str) -> None:
    """From here on the test is another site replica (or the reaper's pod): its own DATA_DIR, the
    same database and the same engine, as on a cluster where each pod has an emptyDir."""
    settings.DATA_DIR = tmp_path / name
    settings.DATA_DIR.mkdir()


def leftover_parts() -> list:
    return list(home_files.archive_path(SANDBOX_ID).parent.glob("*.part"))


async def started(owner) -> Sandbox:
    sandbox = await services.start_sandbox(owner, LESSON, "plain", "base")
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    return sandbox


def home_of(sandbox: Sandbox) -> bytes:
    return FakeBackend.sandboxes[str(sandbox.id)].home


async def test_files_saved_on_stop_come_back_in_the_next_sandbox(store):
    backend = HomeKeepingBackend()
    first = await backend.create(SPEC)
    backend.sandboxes[SANDBOX_ID].home = b"notes.txt: remember the volume"
    assert await home_files.save(backend, SANDBOX_ID, first) == len(b"notes.txt: remember the volume")
    assert await home_files.has_saved_files(SANDBOX_ID)

    await backend.destroy(SANDBOX_ID)
    second = await backend.create(SPEC)
    assert await home_files.restore(backend, SANDBOX_ID, second)
    assert backend.sandboxes[SANDBOX_ID].home == b"notes.txt: remember the volume"
    assert not await home_files.has_saved_files(SANDBOX_ID)  # the running sandbox holds them now
    assert not leftover_parts()


async def test_a_failed_copy_tells_the_learner_why_and_leaves_no_half_written_archive(store):
    backend = HomeKeepingBackend(home_failure=BackendError("tar ended with code 2"))
    ref = await backend.create(SPEC)
    with pytest.raises(home_files.FilesNotKept, match="tar ended with code 2"):
        await home_files.save(backend, SANDBOX_ID, ref)
    assert not await home_files.has_saved_files(SANDBOX_ID)
    assert not leftover_parts()


async def test_a_failed_copy_keeps_the_previous_archive_whole(store):
    backend = HomeKeepingBackend()
    ref = await backend.create(SPEC)
    backend.sandboxes[SANDBOX_ID].home = b"the stop's copy"
    await home_files.save(backend, SANDBOX_ID, ref)
    backend.home_failure = BackendError("the copy of the files was cut off")
    with pytest.raises(home_files.FilesNotKept, match="cut off"):
        await home_files.save(backend, SANDBOX_ID, ref)

    backend.home_failure = None
    backend.sandboxes[SANDBOX_ID].home = b""
    assert await home_files.restore(backend, SANDBOX_ID, ref)
    assert backend.sandboxes[SANDBOX_ID].home == b"the stop's copy"


async def test_a_restore_that_fails_says_the_files_could_not_be_put_back(store):
    saving = HomeKeepingBackend()
    ref = await saving.create(SPEC)
    saving.sandboxes[SANDBOX_ID].home = b"work"
    await home_files.save(saving, SANDBOX_ID, ref)
    failing = HomeKeepingBackend(home_failure=BackendError("the sandbox is gone"))
    with pytest.raises(home_files.FilesNotKept, match="could not be put back"):
        await home_files.restore(failing, SANDBOX_ID, ref)
    assert await home_files.has_saved_files(SANDBOX_ID)  # kept for the next try
    assert not leftover_parts()


async def test_a_checkpoint_that_is_no_longer_wanted_never_replaces_the_stops_copy(store):
    backend = HomeKeepingBackend()
    ref = await backend.create(SPEC)
    backend.sandboxes[SANDBOX_ID].home = b"the stop's copy"
    await home_files.save(backend, SANDBOX_ID, ref)
    backend.sandboxes[SANDBOX_ID].home = b"an older checkpoint"

    async def stopped_meanwhile() -> bool:
        return False

    assert await home_files.save(backend, SANDBOX_ID, ref, still_wanted=stopped_meanwhile) == 0
    assert not leftover_parts()
    assert await home_files.restore(backend, SANDBOX_ID, ref)
    assert backend.sandboxes[SANDBOX_ID].home == b"the stop's copy"


async def test_the_database_store_keeps_one_row_per_sandbox_and_no_file(settings):
    settings.HOME_FILES_STORE = "database"
    backend = HomeKeepingBackend()
    ref = await backend.create(SPEC)
    for content in (b"first", b"second"):
        backend.sandboxes[SANDBOX_ID].home = content
        await home_files.save(backend, SANDBOX_ID, ref)
    assert [bytes(row.archive) async for row in SavedHome.objects.all()] == [b"second"]
    assert not home_files.archive_path(SANDBOX_ID).exists()


async def test_a_database_that_refuses_the_write_tells_the_learner_and_keeps_the_previous_copy(settings, monkeypatch):
    settings.HOME_FILES_STORE = "database"
    backend = HomeKeepingBackend()
    ref = await backend.create(SPEC)
    backend.sandboxes[SANDBOX_ID].home = b"the previous copy"
    await home_files.save(backend, SANDBOX_ID, ref)

    def locked(*_args, **_kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(QuerySet, "bulk_create", locked)  # the one write that replaces the row
    backend.sandboxes[SANDBOX_ID].home = b"newer work"
    with pytest.raises(home_files.FilesNotKept, match="could not be written on the server"):
        await home_files.save(backend, SANDBOX_ID, ref)
    assert not leftover_parts()
    monkeypatch.undo()
    assert await home_files.restore(backend, SANDBOX_ID, ref)
    assert backend.sandboxes[SANDBOX_ID].home == b"the previous copy"


def test_backends_that_keep_files_implement_both_copies():
    assert not home_files.supports(FakeBackend())
    for backend_class in (DockerBackend, PodBackend):
        assert backend_class.keeps_home_files
        assert backend_class.copy_home_out is not SandboxBackend.copy_home_out
        assert backend_class.copy_home_in is not SandboxBackend.copy_home_in


# -- through the services and the reaper, on the fake engine ---------------------------------------

async def test_files_saved_by_one_replica_come_back_on_another_with_the_database_store(
        settings, tmp_path, owner, home_keeping_site):
    settings.HOME_FILES_STORE = "database"
    sandbox = await started(owner)
    FakeBackend.sandboxes[str(sandbox.id)].home = b"notes.txt: written before the break"
    await services.stop_sandbox(sandbox)

    another_process(settings, tmp_path, "replica-b")
    assert await home_files.has_saved_files(sandbox.id)
    await services.restart_sandbox(sandbox)
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    assert home_of(sandbox) == b"notes.txt: written before the break"

    await services.stop_sandbox(sandbox)
    another_process(settings, tmp_path, "replica-c")
    await services.restart_sandbox(sandbox)
    assert home_of(sandbox) == b"notes.txt: written before the break"


async def test_the_reapers_checkpoint_comes_back_on_a_replica_with_the_database_store(
        settings, tmp_path, owner, home_keeping_site):
    settings.HOME_FILES_STORE = "database"
    settings.SANDBOX_HOME_CHECKPOINT_SECONDS = 120
    sandbox = await started(owner)
    FakeBackend.sandboxes[str(sandbox.id)].home = b"work before the shell exited"
    long_ago = timezone.now() - dt.timedelta(hours=1)
    await Sandbox.objects.filter(pk=sandbox.pk).aupdate(started_at=long_ago, last_activity_at=timezone.now())

    another_process(settings, tmp_path, "reaper")
    report = reaper.Report()
    await reaper.checkpoint_homes(lambda _id: True, report)
    assert report.checkpointed == [str(sandbox.id)]
    # The shell exits: nothing is left to save at stop, the checkpoint is what comes back.
    FakeBackend.end_shell(str(sandbox.id))
    await services.stop_sandbox(sandbox)

    another_process(settings, tmp_path, "replica-b")
    await services.restart_sandbox(sandbox)
    assert home_of(sandbox) == b"work before the shell exited"


async def test_a_checkpoint_copied_while_the_learner_stops_does_not_replace_the_stops_copy(
        store, settings, monkeypatch, owner, home_keeping_site):
    settings.SANDBOX_HOME_CHECKPOINT_SECONDS = 120
    sandbox = await started(owner)
    FakeBackend.sandboxes[str(sandbox.id)].home = b"before the stop"
    long_ago = timezone.now() - dt.timedelta(hours=1)
    await Sandbox.objects.filter(pk=sandbox.pk).aupdate(started_at=long_ago, last_activity_at=timezone.now())

    # The checkpoint's copy is taken, then held until the learner's Stop has saved its own.
    copying, release = asyncio.Event(), asyncio.Event()
    plain_copy = HomeKeepingBackend.copy_home_out

    async def checkpoint_held_mid_copy(self, ref, out):
        if copying.is_set():
            return await plain_copy(self, ref, out)
        snapshot = self._home_of(ref).home
        copying.set()
        await release.wait()
        out.write(snapshot)
        return len(snapshot)

    monkeypatch.setattr(HomeKeepingBackend, "copy_home_out", checkpoint_held_mid_copy)
    report = reaper.Report()
    checkpoint = asyncio.create_task(reaper.checkpoint_homes(lambda _id: True, report))
    await copying.wait()
    FakeBackend.sandboxes[str(sandbox.id)].home = b"the last minute's work"
    await services.stop_sandbox(sandbox)
    release.set()
    await checkpoint
    assert report.checkpointed == []

    await services.restart_sandbox(sandbox)
    assert home_of(sandbox) == b"the last minute's work"


async def test_reset_throws_the_saved_files_away(store, owner, home_keeping_site):
    sandbox = await started(owner)
    FakeBackend.sandboxes[str(sandbox.id)].home = b"a broken config"
    await services.stop_sandbox(sandbox)
    assert await home_files.has_saved_files(sandbox.id)

    await services.reset_sandbox(sandbox)
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    assert home_of(sandbox) == b""
    assert not await home_files.has_saved_files(sandbox.id)


async def test_the_reaper_drops_saved_files_when_the_time_to_live_runs_out(store, settings, tmp_path,
                                                                         owner, home_keeping_site):
    sandbox = await started(owner)
    FakeBackend.sandboxes[str(sandbox.id)].home = b"yesterday's work"
    await services.stop_sandbox(sandbox)
    orphan = "0ff00000-0000-4000-8000-000000000000"  # no sandbox row has this id
    backend = HomeKeepingBackend()
    ref = await backend.create(dataclasses.replace(SPEC, sandbox_id=orphan))
    await home_files.save(backend, orphan, ref)

    report = reaper.Report()
    await reaper.drop_expired_files(lambda _id: True, report)
    assert report.files_dropped == [orphan]  # the stopped sandbox's files are kept until its time runs out
    assert await home_files.has_saved_files(sandbox.id)

    await Sandbox.objects.filter(pk=sandbox.pk).aupdate(expires_at=timezone.now() - dt.timedelta(seconds=1))
    if store == "database":
        another_process(settings, tmp_path, "reaper")  # the reaper's pod sees what a replica saved
    report = reaper.Report()
    await reaper.drop_expired_files(lambda _id: True, report)
    assert report.files_dropped == [str(sandbox.id)]
    assert not await home_files.has_saved_files(sandbox.id)
    assert (await Sandbox.objects.aget(pk=sandbox.pk)).files_saved_at is None
