"""Abuse limits: rate counters, the client's address, log-in lockout.

Rates are counted by django-ratelimit in Django's cache (``CACHES['default']``), so that every
server process sees the same count: under ``make run`` that is the private Redis; elsewhere the
process's memory. Its ``add`` then ``incr`` is atomic on both, so two processes never both take the
last place in a window. A cache that does not answer lets requests through
(``RATELIMIT_FAIL_OPEN``): a Redis hiccup must not lock a class out.

Rates are ``"<count>/<period>"`` (period ``s``, ``m``, ``h`` or ``d``, optionally with a number:
``"5/10m"``); ``"0"``, ``"off"`` or empty turns a limit off. The lockout's clock is passed in
(``now``) so tests need no sleeping.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.utils.translation import ngettext
from django_ratelimit.core import get_usage

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclasses.dataclass(frozen=True)
class Rate:
    count: int
    seconds: int


def parse_rate(text: str | None) -> Rate | None:
    """``"10/h"`` -> Rate(10, 3600); None when the limit is off. A malformed rate is an error
    (a typo must not silently switch a limit off)."""
    text = (text or "").strip().lower()
    if text in ("", "0", "off", "none"):
        return None
    count, _, period = text.partition("/")
    unit = period[-1:]
    multiple = period[:-1] or "1"
    if not count.isdigit() or unit not in PERIODS or not multiple.isdigit() or int(multiple) <= 0:
        raise ValueError(f"rate {text!r} is not '<count>/<period>' with period s, m, h or d (e.g. '10/h')")
    return Rate(int(count), int(multiple) * PERIODS[unit])


@dataclasses.dataclass(frozen=True)
class Verdict:
    limited: bool
    retry_after: int = 0  # seconds until the window ends

    def message(self, what: str) -> str:
        """What the limited person reads, in the active language; ``what`` (already translated)
        names what they did too often ("joins from your address")."""
        wait = max(1, self.retry_after)
        return ngettext("Too many %(what)s: try again in %(seconds)d second.",
                        "Too many %(what)s: try again in %(seconds)d seconds.", wait) % {"what": what, "seconds": wait}


ALLOWED = Verdict(False)


def _as_rate(rate: str | Rate | None) -> Rate | None:
    return parse_rate(rate) if isinstance(rate, str) or rate is None else rate


def hit(scope: str, key: str, rate: str | Rate | None) -> Verdict:
    """Count one use of ``scope`` by ``key`` (an address, a user id); limited once the window's
    count passes the rate."""
    rate = _as_rate(rate)
    if rate is None:
        return ALLOWED
    usage = get_usage(None, group=scope, key=lambda _group, _request: key, rate=(rate.count, rate.seconds),
                      increment=True)
    if usage is None or not usage["should_limit"]:
        return ALLOWED
    return Verdict(True, max(1, usage["time_left"]))


async def ahit(scope: str, key: str, rate: str | Rate | None) -> Verdict:
    """:func:`hit` from async code: through the worker thread (the count is a cache call, Redis
    under ``make run``) only when the limit is on."""
    rate = _as_rate(rate)
    if rate is None:
        return ALLOWED
    return await sync_to_async(hit)(scope, key, rate)


def client_address(request) -> str:
    """The client's address as the limits count it: the connection's, or the last entry of
    ``CLIENT_ADDRESS_HEADER`` behind a proxy that adds it; an IPv6 client counts as its /64 (one
    machine usually holds a whole /64)."""
    raw = ""
    header = settings.CLIENT_ADDRESS_HEADER
    if header:
        value = request.META.get("HTTP_" + header.upper().replace("-", "_"), "")
        raw = value.split(",")[-1].strip()
    raw = raw or request.META.get("REMOTE_ADDR", "") or "unknown"
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw[:64]
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


# --- Log-in lockout with backoff -----------------------------------------------------------------
# Keyed by the submitted username (lower-cased) and the address, whether or not such a user
# exists: an unknown name is locked exactly like a known one, so the answer says nothing about
# which names exist, and an attacker elsewhere cannot lock a learner out of their own machine.

LOCKOUT_MAX_SECONDS = 24 * 3600
FAILURES_KEEP_SECONDS = 24 * 3600


def _login_key(username: str, address: str) -> str:
    digest = hashlib.blake2b(f"{username.strip().lower()}\0{address}".encode(), digest_size=12).hexdigest()
    return f"login:{digest}"


def login_locked(username: str, address: str, *, now: float | None = None) -> Verdict:
    now = time.time() if now is None else now
    until = cache.get(_login_key(username, address) + ":until")
    if until is not None and until > now:
        return Verdict(True, int(until - now) + 1)
    return ALLOWED


def login_failed(username: str, address: str, *, now: float | None = None) -> None:
    """Count a failure; from LOGIN_FAILURES_BEFORE_LOCKOUT on, lock for LOGIN_LOCKOUT_SECONDS,
    doubled for each further failure (capped at a day)."""
    now = time.time() if now is None else now
    key = _login_key(username, address)
    cache.add(key + ":failures", 0, FAILURES_KEEP_SECONDS)
    try:
        failures = cache.incr(key + ":failures")
    except ValueError:
        cache.set(key + ":failures", 1, FAILURES_KEEP_SECONDS)
        failures = 1
    threshold = settings.LOGIN_FAILURES_BEFORE_LOCKOUT
    if threshold <= 0 or failures < threshold:
        return
    lock = min(LOCKOUT_MAX_SECONDS, settings.LOGIN_LOCKOUT_SECONDS * 2 ** min(failures - threshold, 20))
    cache.set(key + ":until", now + lock, lock + 1)


def login_succeeded(username: str, address: str) -> None:
    key = _login_key(username, address)
    cache.delete_many([key + ":failures", key + ":until"])
