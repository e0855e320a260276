"""A stopped sandbox's files kept through the backend's declared capability (``keeps_home_files``,
``copy_home_out`` / ``copy_home_in``), whichever engine the backend drives."""

from __future__ import annotations

import pytest

from sandbox import home_files
from sandbox.backends.base import BackendError, SandboxBackend, SandboxSpec
from sandbox.backends.docker import DockerBackend
from sandbox.backends.pod import PodBackend
from tests.fakes import FakeBackend, HomeKeepingBackend

SANDBOX_ID = "7a1e0000-0000-4000-8000-000000000001"
SPEC = SandboxSpec(sandbox_id=SANDBOX_ID, owner_id=1, owner_name="owner", lesson="first", workspace="plain",
                   image="tutorial/base")


@pytest.fixture(autouse=True)
def _fresh_fake_backend():
    FakeBackend.reset()
    yield
    FakeBackend.reset()


async def test_files_saved_on_stop_come_back_in_the_next_sandbox():
    backend = HomeKeepingBackend()
    first = await backend.create(SPEC)
    backend.sandboxes[SANDBOX_ID].home = b"notes.txt: remember the volume"
    assert await home_files.save(backend, SANDBOX_ID, first) == len(b"notes.txt: remember the volume")
    assert home_files.has_saved_files(SANDBOX_ID)

    await backend.destroy(SANDBOX_ID)
    second = await backend.create(SPEC)
    assert await home_files.restore(backend, SANDBOX_ID, second)
    assert backend.sandboxes[SANDBOX_ID].home == b"notes.txt: remember the volume"
    assert not home_files.has_saved_files(SANDBOX_ID)  # the running sandbox holds them now


async def test_a_failed_copy_tells_the_learner_why_and_leaves_no_half_written_archive():
    backend = HomeKeepingBackend(home_failure=BackendError("tar ended with code 2"))
    ref = await backend.create(SPEC)
    with pytest.raises(home_files.FilesNotKept, match="tar ended with code 2"):
        await home_files.save(backend, SANDBOX_ID, ref)
    assert not home_files.has_saved_files(SANDBOX_ID)
    assert not list(home_files.archive_path(SANDBOX_ID).parent.glob("*.part"))


async def test_a_restore_that_fails_says_the_files_could_not_be_put_back():
    saving = HomeKeepingBackend()
    ref = await saving.create(SPEC)
    saving.sandboxes[SANDBOX_ID].home = b"work"
    await home_files.save(saving, SANDBOX_ID, ref)
    failing = HomeKeepingBackend(home_failure=BackendError("the sandbox is gone"))
    with pytest.raises(home_files.FilesNotKept, match="could not be put back"):
        await home_files.restore(failing, SANDBOX_ID, ref)
    assert home_files.has_saved_files(SANDBOX_ID)  # kept for the next try


def test_backends_that_keep_files_implement_both_copies():
    assert not home_files.supports(FakeBackend())
    for backend_class in (DockerBackend, PodBackend):
        assert backend_class.keeps_home_files
        assert backend_class.copy_home_out is not SandboxBackend.copy_home_out
        assert backend_class.copy_home_in is not SandboxBackend.copy_home_in
