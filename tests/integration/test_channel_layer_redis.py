"""The site's Redis channel layer against a real Redis (the private one ``make run`` starts): a
joined group receives its events, a left one does not, and a group still expires (a day by
default) so a crashed process's consoles do not stay members for ever."""

from __future__ import annotations

import asyncio
import os

import pytest
import redis

from tests.daphne_process import private_redis
from tutorial.channel_layers import ResilientRedisChannelLayer


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    try:
        with private_redis(tmp_path_factory.mktemp("layer-redis")) as url:
            yield url
    except RuntimeError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis is needed here: {exc}")
        pytest.skip(f"no Redis: {exc}")


async def test_a_joined_group_gets_its_events_and_expires(redis_url):
    layer = ResilientRedisChannelLayer(hosts=[{"address": redis_url}], group_expiry=600)
    try:
        channel = await layer.new_channel()
        await layer.group_add("sandbox-a", channel)
        await layer.group_send("sandbox-a", {"type": "sandbox.notice", "message": "hello"})
        assert (await asyncio.wait_for(layer.receive(channel), 5))["message"] == "hello"

        ttl = redis.Redis.from_url(redis_url).ttl(f"{layer.prefix}:group:sandbox-a")
        assert 590 <= ttl <= 600

        await layer.group_discard("sandbox-a", channel)
        await layer.group_send("sandbox-a", {"type": "sandbox.notice", "message": "after leaving"})
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(layer.receive(channel), 1)
    finally:
        await layer.flush()
