"""``login_required`` without a thread hop for async views.

Django's ``login_required`` tests ``lambda u: u.is_authenticated``, a plain function, and for an
async view it hands that test to the worker thread (``sync_to_async``): a hop on every Start,
Check and pane request to read one attribute of a user already loaded. Here an async view gets
the same test as a coroutine, which Django awaits on the event loop; a sync view gets Django's
decorator unchanged. The redirect to the log-in page is Django's in both cases."""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth import decorators


async def _is_authenticated(user) -> bool:
    return user.is_authenticated


def login_required(function=None, redirect_field_name=REDIRECT_FIELD_NAME, login_url=None):
    def decorate(view):
        if iscoroutinefunction(view):
            return decorators.user_passes_test(_is_authenticated, login_url=login_url,
                                               redirect_field_name=redirect_field_name)(view)
        return decorators.login_required(view, redirect_field_name=redirect_field_name, login_url=login_url)

    return decorate(function) if function else decorate
