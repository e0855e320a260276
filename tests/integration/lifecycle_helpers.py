"""Shared pieces of the lifecycle and fault tests (real engine, real ASGI consoles)."""

from __future__ import annotations

import asyncio
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


async def texts_until(communicator, predicate, timeout: float = 20.0) -> list[dict]:
    """Control messages up to and including the first one ``predicate`` accepts (bytes acked)."""
    import json

    seen = []
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise AssertionError(f"no matching control message; saw {seen}")
        message = await communicator.receive_output(remaining)
        if message["type"] == "websocket.close":
            raise AssertionError(f"closed with {message.get('code')}; saw {seen}")
        if message.get("bytes"):
            await communicator.send_to(text_data=json.dumps({"type": "ack", "bytes": len(message["bytes"])}))
        elif message.get("text"):
            seen.append(json.loads(message["text"]))
            if predicate(seen[-1]):
                return seen


@pytest.fixture
def cleanup(labelled_leftovers):
    """Collects sandboxes a test made; at the end destroys them and asserts nothing is left."""
    made: list = []
    yield made
    from asgiref.sync import async_to_sync

    async def finish():
        await tasks.wait_for_background()
        for sandbox in made:
            sandbox_id = str(getattr(sandbox, "id", sandbox))
            await services.get_backend("plain").destroy(sandbox_id)
            home_files.drop(sandbox_id)

    async_to_sync(finish)()
    async_to_sync(pool.drain)({})
    for sandbox in made:
        assert labelled_leftovers(getattr(sandbox, "id", sandbox)) == []
