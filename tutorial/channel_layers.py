"""The Redis channel layer, with a receive that survives Redis errors.

Channels runs a consumer's layer ``receive()`` beside its websocket: an exception there ends the
consumer and daphne closes the websocket with 1011. A console must outlive a Redis hiccup (a
restart, a timeout, a dropped connection), since the channel layer only carries events. So a
failed receive is logged and tried again with capped exponential backoff and jitter; only
cancellation (the consumer ending) stops it. Consumers re-join their groups by themselves (a
restarted Redis has forgotten them).

The socket timeouts that pass to redis-py are set in ``settings.CHANNEL_LAYERS`` (why there:
see the comment beside them).
"""

from __future__ import annotations

import asyncio
import logging
import random

from channels_redis.core import RedisChannelLayer
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 10.0


class ResilientRedisChannelLayer(RedisChannelLayer):
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
