"""``/healthz``: is this server process able to serve? (container health checks, load balancers)

Cheap on purpose, since it is polled every few seconds: one ``SELECT 1`` and, with a channel layer
shared between processes (Redis), one message round trip. It does not touch the Docker engine:
an engine outage makes sandboxes fail with a clear message, but the site itself is still up, and
`manage.py doctor` is the place for the full picture.
"""

from __future__ import annotations

import asyncio
import uuid

from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

CHANNEL_LAYER_TIMEOUT_SECONDS = 3


def database_problem() -> str:
    """Empty when the database answers a query; otherwise why not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
        return f"{type(exc).__name__}: {exc}"
    return ""


async def channel_layer_problem() -> str:
    """Empty when a message sent on the channel layer comes back; otherwise why not."""
    layer = get_channel_layer()
    if layer is None:
        return "no channel layer configured"
    if isinstance(layer, InMemoryChannelLayer):
        return ""  # in-process: nothing that can be down
    token = uuid.uuid4().hex
    try:
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "health.ping", "token": token})
        reply = await asyncio.wait_for(layer.receive(channel), CHANNEL_LAYER_TIMEOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return "" if reply.get("token") == token else "a different message came back"


@never_cache
@require_GET
async def healthz(request: HttpRequest) -> JsonResponse:
    """200 ``{"status": "ok", ...}`` when healthy, 503 with the failing part's reason otherwise."""
    problems = {
        "database": await sync_to_async(database_problem)(),
        "channel_layer": await channel_layer_problem(),
    }
    healthy = not any(problems.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unhealthy", "checks": {k: v or "ok" for k, v in problems.items()}},
        status=200 if healthy else 503,
    )
