"""How many consoles each user has open, across every server process (``CONSOLES_PER_USER``).

A console holds a *slot*: an entry with an expiry time, refreshed by its consumer every
``HEARTBEAT_SECONDS``. A consumer that ends releases its slot; one that cannot (its process was
killed) stops refreshing it, and the slot lapses after ``SLOT_TTL_SECONDS``. So a count is never
left too high for long, whatever way a console ends.

Under several processes the slots live in the channel layer's Redis (one sorted set per user, the
score being the expiry time, counted and added by one script so two tabs opening at once cannot
both take the last slot). With the in-memory layer (one process) they live in this process.
A Redis that does not answer must not lock learners out: the count then falls back to this
process's own slots, and the error is logged.
"""

from __future__ import annotations

import logging
import time

from channels_redis.core import RedisChannelLayer

log = logging.getLogger(__name__)

SLOT_TTL_SECONDS = 60
HEARTBEAT_SECONDS = 20

# KEYS[1]: the user's set; ARGV: member, limit, ttl. Redis's own clock, so processes on machines
# with different clocks agree on what has expired. Returns 1 when the slot is taken.
ACQUIRE_SCRIPT = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], t + tonumber(ARGV[3]), ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])) + 1)
return 1
"""


class LocalSlots:
    """Slots in this process; the clock is passed in (``now``) so it is unit-tested alone."""

    def __init__(self):
        self._slots: dict[int, dict[str, float]] = {}

    def acquire(self, user_id: int, member: str, limit: int, now: float, ttl: float = SLOT_TTL_SECONDS) -> bool:
        slots = self._live(user_id, now)
        if member not in slots and len(slots) >= limit:
            return False
        slots[member] = now + ttl
        return True

    def refresh(self, user_id: int, member: str, now: float, ttl: float = SLOT_TTL_SECONDS) -> None:
        slots = self._slots.get(user_id)
        if slots is not None and member in slots:
            slots[member] = now + ttl

    def release(self, user_id: int, member: str) -> None:
        slots = self._slots.get(user_id)
        if slots is not None:
            slots.pop(member, None)
            if not slots:
                del self._slots[user_id]

    def count(self, user_id: int, now: float) -> int:
        return len(self._live(user_id, now))

    def _live(self, user_id: int, now: float) -> dict[str, float]:
        slots = self._slots.setdefault(user_id, {})
        for member, expires in list(slots.items()):
            if expires <= now:
                del slots[member]
        return slots


local_slots = LocalSlots()  # consoles
_local_slots_by_kind: dict[str, LocalSlots] = {"consoles": local_slots}


class ConsoleSlot:
    """One console's slot, held from ``acquire`` to ``release`` (both safe to call on any path)."""

    def __init__(self, layer, user_id: int, member: str, kind: str = "consoles"):
        """``kind`` names what is counted: consoles, or another per-user websocket (dashboards)."""
        self.key = f"tutorial:{kind}:{user_id}"
        self.redis = _redis_for(layer, self.key)
        self.local = _local_slots_by_kind.setdefault(kind, LocalSlots())
        self.user_id = user_id
        self.member = member
        self.in_redis = False
        self.held = False

    async def acquire(self, limit: int) -> bool:
        if self.redis is not None:
            try:
                taken = await self.redis.eval(ACQUIRE_SCRIPT, 1, self.key, self.member, limit, SLOT_TTL_SECONDS)
            except Exception as exc:  # noqa: BLE001 - any Redis failure: count in this process
                log.warning("console count in Redis failed (%s); counting this process's consoles only", exc)
            else:
                self.in_redis = self.held = bool(taken)
                return self.held
        self.held = self.local.acquire(self.user_id, self.member, limit, time.monotonic())
        return self.held

    async def refresh(self) -> None:
        if not self.held:
            return
        if not self.in_redis:
            self.local.refresh(self.user_id, self.member, time.monotonic())
            return
        try:
            # The same script without a limit: pushes the expiry on, and takes the slot again if it
            # lapsed while Redis was away (this console is still open, so it still counts).
            await self.redis.eval(ACQUIRE_SCRIPT, 1, self.key, self.member, 1 << 30, SLOT_TTL_SECONDS)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not refresh a console slot in Redis (%s); it lapses unless the next refresh works", exc)

    async def release(self) -> None:
        if not self.held:
            return
        self.held = False
        if not self.in_redis:
            self.local.release(self.user_id, self.member)
            return
        try:
            await self.redis.zrem(self.key, self.member)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not release a console slot in Redis (%s); it lapses in %s s", exc, SLOT_TTL_SECONDS)


def _redis_for(layer, key: str):
    """The channel layer's own Redis connection for ``key``, or None (in-memory layer)."""
    if not isinstance(layer, RedisChannelLayer):
        return None
    return layer.connection(layer.consistent_hash(key))
