"""Opening a console: the owner's console opens with the user's and the sandbox's rows read in
one hop to the worker thread each, nothing else there (every console of a class opening at once
queues on that one thread)."""

from __future__ import annotations

import pytest
from tests.websockets import next_text
from tests.worker_thread import names, worker_thread_calls

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def running(fake_owners_sandbox):
    return fake_owners_sandbox


async def test_the_owners_console_opens_with_one_hop_per_row(console, running, owner):
    ws = await console(running.id, owner)  # signs the owner in: the test's own hop
    with worker_thread_calls() as calls:
        connected, _ = await ws.connect()
        assert connected
        assert await next_text(ws) == {"type": "state", "state": "running"}  # attached
    assert names(calls) == ["get_user", "sandbox_row"]


def test_the_sandbox_row_is_read_where_stale_connections_are_closed():
    """Channels closes stale database connections before each handler; connect() skips that hop
    because its row read does the same (Channels' test communicator makes the close a no-op, so
    this is checked on the function itself)."""
    from channels.db import DatabaseSyncToAsync

    from sandbox import consumers

    assert isinstance(consumers.sandbox_row, DatabaseSyncToAsync)
