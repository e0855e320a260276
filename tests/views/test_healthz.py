"""/healthz: 200 when the database and channel layer answer, 503 naming the part that does not."""

import json

import pytest
from django.test import AsyncClient


@pytest.mark.django_db
async def test_healthz_is_ok_with_the_embedded_defaults():
    response = await AsyncClient().get("/healthz")
    assert response.status_code == 200
    assert json.loads(response.content) == {"status": "ok", "checks": {"database": "ok", "channel_layer": "ok"}}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
async def test_healthz_is_503_and_names_the_channel_layer_when_redis_is_down(settings, unused_tcp_port):
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{unused_tcp_port}/0"]},
        }
    }
    channel_layers.backends.clear()
    try:
        response = await AsyncClient().get("/healthz")
    finally:
        channel_layers.backends.clear()
    body = json.loads(response.content)
    assert response.status_code == 503
    assert body["status"] == "unhealthy"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["channel_layer"] != "ok"


def test_database_problem_is_reported_when_the_database_cannot_be_used():
    from ops.healthz import database_problem

    # No django_db mark: pytest-django blocks database access, as a dead server would.
    assert database_problem() != ""


@pytest.mark.django_db
async def test_healthz_refuses_post():
    response = await AsyncClient().post("/healthz")
    assert response.status_code == 405
