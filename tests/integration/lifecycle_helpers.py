"""Shared pieces of the lifecycle and fault tests (real engine, real ASGI consoles)."""

from __future__ import annotations

import itertools

import pytest
from asgiref.sync import sync_to_async

from sandbox import home_files, pool, services, tasks
from sandbox.models import Sandbox

LESSON = "what-is-a-container"
_names = itertools.count()


@sync_to_async
def make_user(prefix: str = "learner"):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(username=f"{prefix}{next(_names)}", password="correct horse battery")


async def start(user, lesson: str = LESSON) -> Sandbox:
    return await services.start_sandbox(user, lesson, "plain", "base")


def only(*sandboxes):
    """A reaper scope holding just these sandboxes: the engine here may be shared with other work,
    whose containers have no row in this test's database and must not be touched."""
    ids = {str(getattr(s, "id", s)) for s in sandboxes}
    return ids.__contains__


@pytest.fixture
async def cleanup(labelled_leftovers):
    """Collects sandboxes a test made; at the end destroys them and asserts nothing is left.
    It ends in the test's own event loop, where the background work the test started runs."""
    made: list = []
    yield made
    await tasks.wait_for_background()
    for sandbox in made:
        sandbox_id = str(getattr(sandbox, "id", sandbox))
        await services.get_backend("plain").destroy(sandbox_id)
        await home_files.drop(sandbox_id)
    await pool.drain({})
    for sandbox in made:
        assert labelled_leftovers(getattr(sandbox, "id", sandbox)) == []
