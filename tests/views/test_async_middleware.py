"""The site as daphne serves it: the middleware stack in async mode (Django's ``AsyncClient`` builds
it so), where an async view such as Start runs on the event loop.

The middleware's hooks run inline there (tutorial/middleware.py): no middleware goes through the
worker thread for a Start, and the user is loaded in one hop. What a learner sees is the same as
from the sync stack the other view tests use: CSRF refusals, the log-in redirect, the session
written at log-in, a message shown after a redirect."""

from __future__ import annotations

import pytest
from django.test import AsyncClient

from sandbox.models import Sandbox
from tests.factories import LESSON
from tests.worker_thread import worker_thread_calls

pytestmark = [pytest.mark.django_db(transaction=True)]
START_URL = f"/sandboxes/start/{LESSON}/"


def middleware_of(func):
    """The middleware a callable belongs to (a bound hook, or the stack below a middleware
    wrapped by Django's exception handler), or None."""
    seen = 0
    while func is not None and seen < 10:
        owner = getattr(func, "__self__", None)
        for candidate in (owner, func):
            if candidate is not None and type(candidate).__name__.endswith(("Middleware", "MiddlewareInOneThread")):
                return type(candidate).__name__
        func = getattr(func, "__wrapped__", None) or getattr(func, "func", None)
        seen += 1
    return None


async def signed_in(user) -> AsyncClient:
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(user)
    return client


async def csrf_token(client: AsyncClient) -> str:
    await client.get(f"/lessons/{LESSON}/")
    return client.cookies["csrftoken"].value


async def test_a_start_sends_no_middleware_through_the_worker_thread(owner, fake_backend):
    client = await signed_in(owner)
    token = await csrf_token(client)
    with worker_thread_calls() as calls:
        response = await client.post(START_URL, headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert response.status_code == 200
    sandbox = await Sandbox.objects.aget(owner=owner, lesson=LESSON)
    assert f'data-console-url="/ws/sandboxes/{sandbox.id}/console/"' in response.content.decode()
    assert [middleware_of(call) for call in calls if middleware_of(call)] == []
    # The session's row and the user's row in one hop, once for the whole request.
    names = [getattr(call, "__name__", "") for call in calls]
    assert names.count("_load_user") == 1
    assert not any(name in ("_aget_session_from_db", "aget_user") for name in names)


async def test_a_start_goes_to_the_worker_thread_only_for_database_work(owner, fake_backend, settings):
    """Django's request signals, the user's rows, the claim; nothing for middleware, the log-in
    test or a rate limit that is off."""
    settings.RATE_SANDBOX_ACTIONS = "off"
    client = await signed_in(owner)
    token = await csrf_token(client)
    await client.post(START_URL, headers={"X-CSRFToken": token, "HX-Request": "true"})
    with worker_thread_calls() as calls:  # the learner's sandbox exists: Start answers with it
        response = await client.post(START_URL, headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert response.status_code == 200
    names = [getattr(call, "__qualname__", type(call).__name__) for call in calls]
    assert names == ["Signal.asend.<locals>.sync_send", "_load_user", "_claim_row", "HttpResponseBase.close"]


async def test_a_post_without_the_token_is_refused_and_starts_nothing(owner, fake_backend):
    client = await signed_in(owner)
    response = await client.post(START_URL, headers={"HX-Request": "true"})
    assert response.status_code == 403
    assert not await Sandbox.objects.aexists()


async def test_a_wrong_token_is_refused(owner, fake_backend):
    client = await signed_in(owner)
    await csrf_token(client)
    response = await client.post(START_URL, headers={"X-CSRFToken": "x" * 64, "HX-Request": "true"})
    assert response.status_code == 403
    assert not await Sandbox.objects.aexists()


async def test_a_form_post_is_checked_from_its_body(owner, fake_backend):
    """A form without JavaScript sends the token in the body."""
    client = await signed_in(owner)
    token = await csrf_token(client)
    response = await client.post(START_URL, {"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == f"/lessons/{LESSON}/"
    assert await Sandbox.objects.filter(owner=owner).aexists()


async def test_a_body_too_big_for_memory_is_checked_in_the_worker_thread(owner, fake_backend, settings):
    """Parsing it reads from (and writes files to) disk: not on the event loop."""
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 100
    client = await signed_in(owner)
    token = await csrf_token(client)
    with worker_thread_calls() as calls:
        response = await client.post(START_URL, {"csrfmiddlewaretoken": token, "padding": "x" * 200})
    assert response.status_code == 302 and response["Location"] == f"/lessons/{LESSON}/"
    assert await Sandbox.objects.filter(owner=owner).aexists()
    assert "CsrfViewMiddleware" in [middleware_of(call) for call in calls]


async def test_anonymous_start_is_sent_to_log_in(fake_backend):
    client = AsyncClient(enforce_csrf_checks=True)
    token = await csrf_token(client)
    response = await client.post(START_URL, headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert not await Sandbox.objects.aexists()


async def test_log_in_writes_the_session_and_a_message_survives_the_redirect(db):
    client = AsyncClient()
    response = await client.post("/accounts/signup/", {"username": "newcomer", "password1": "correct horse battery 9",
                                                       "password2": "correct horse battery 9"})
    assert response.status_code == 302
    page = await client.get(response["Location"])
    assert "your account is ready" in page.content.decode()
    response = await client.post("/accounts/login/", {"username": "newcomer", "password": "correct horse battery 9"})
    assert response.status_code == 302
    assert "sessionid" in response.cookies
    # The saved session signs the next request in.
    page = await client.get(f"/lessons/{LESSON}/")
    assert "newcomer" in page.content.decode()


async def test_pages_keep_their_security_headers(db):
    response = await AsyncClient().get(f"/lessons/{LESSON}/")
    assert response.status_code == 200
    assert "Content-Security-Policy" in response
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "Permissions-Policy" in response
