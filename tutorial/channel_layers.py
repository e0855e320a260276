"""The Redis channel layer, with a receive that survives Redis errors.

Channels runs a consumer's layer ``receive()`` beside its websocket: an exception there ends the
consumer and daphne closes the websocket with 1011. A console must outlive a Redis hiccup (a
restart, a timeout, a dropped connection), since the channel layer only carries events. So a
failed receive is logged and tried again with capped exponential backoff and jitter; only
cancellation (the consumer ending) stops it. Consumers re-join their groups by themselves (a
restarted Redis has forgotten them).

Joining a group is one round trip to Redis, not two: channels_redis sends its ZADD and the
EXPIRE that follows it one after the other, and every console, dashboard and learner event socket
joins groups when it opens (and again while open), so a class opening its consoles paid twice.
Here both go in one pipeline (no MULTI: the pair needs no atomicity, as upstream's does not).

Each new connection's client description (CLIENT SETINFO) is made once per layer, not per
connection (see ``__init__``).

The socket timeouts that pass to redis-py are set in ``settings.CHANNEL_LAYERS`` (why there:
see the comment beside them).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from channels_redis.core import RedisChannelLayer
from redis.driver_info import DriverInfo
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 10.0


class ResilientRedisChannelLayer(RedisChannelLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # What each new Redis connection tells the server about its client (CLIENT SETINFO):
        # made once here. Left to redis-py, every new connection reads the installed packages'
        # metadata for its own version (about 0.3 ms), and a class opening its consoles at once
        # opens a connection for each console's Redis call in flight.
        driver_info = DriverInfo()
        self.hosts = [{"driver_info": driver_info, **host} for host in self.hosts]

    async def receive(self, channel):
        delay = RETRY_FIRST_SECONDS
        while True:
            try:
                return await super().receive(channel)
            except (RedisError, OSError) as exc:
                wait = delay * random.uniform(0.5, 1.0)
                log.warning("channel layer receive on %s failed (%r); retrying in %.1f s", channel, exc, wait)
                await asyncio.sleep(wait)
                delay = min(delay * 2, RETRY_MAX_SECONDS)

    async def group_add(self, group, channel):
        """As channels_redis's (a scored member, the group's expiry renewed), in one round trip."""
        assert self.require_valid_group_name(group), "Group name not valid"
        assert self.require_valid_channel_name(channel), "Channel name not valid"
        group_key = self._group_key(group)
        connection = self.connection(self.consistent_hash(group))
        async with connection.pipeline(transaction=False) as pipe:
            pipe.zadd(group_key, {channel: time.time()})
            pipe.expire(group_key, self.group_expiry)
            await pipe.execute()
