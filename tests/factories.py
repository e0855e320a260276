"""Things tests make: users, signed-in clients, the POST our pages send. Plain functions, imported
by tests and conftest fixtures alike (fixtures live in conftest.py files, helpers here)."""

from __future__ import annotations

from django.test import Client

# The lesson most tests use: a plain sandbox, short and stable.
LESSON = "what-is-a-container"


def make_user(username: str):
    """A role user with a usable password (sessions in these tests come from force_login)."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(username=username, password="correct horse battery")


def make_instructor(username: str):
    from classroom.roster import grant_instructor

    user = make_user(username)
    grant_instructor(user)
    return user


def signed_in_client(user=None, *, enforce_csrf_checks: bool = False) -> Client:
    """A test client signed in as ``user`` (None: anonymous)."""
    client = Client(enforce_csrf_checks=enforce_csrf_checks)
    if user is not None:
        client.force_login(user)
    return client


def csrf_post(client: Client, url: str, **kwargs):
    """POST as htmx does from our pages: the CSRF token from a page, sent in a header."""
    client.get(f"/lessons/{LESSON}/")
    token = client.cookies["csrftoken"].value
    return client.post(url, HTTP_X_CSRFTOKEN=token, HTTP_HX_REQUEST="true", **kwargs)
