"""Django's ``ModelBackend``, loading a signed-in user's row with SQL made once.

Every request and every console's websocket loads the user of its session through the backend
that session names (``get_user``); Django's builds ``SELECT ... WHERE id = %s`` through the ORM each
time. Here it is :func:`tutorial.rows.fetch_one`: the same row, the same rule (an inactive user is
nobody). Passwords, permissions and everything else are Django's.

Sessions made before this backend name Django's own (``django.contrib.auth.backends.ModelBackend``),
which therefore stays in ``AUTHENTICATION_BACKENDS`` after this one, so nobody is signed out by an
upgrade. It only serves those sessions: a failed log-in here ends the search (PermissionDenied), so
a wrong password is never hashed a second time by Django's copy.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.contrib.auth import backends, get_user_model
from django.core.exceptions import PermissionDenied

from tutorial.rows import BY_PK, fetch_one

PATH = "accounts.backends.ModelBackend"


class ModelBackend(backends.ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            raise PermissionDenied  # not Django's copy after this one: see the module's docstring
        return user

    async def aauthenticate(self, request, username=None, password=None, **kwargs):
        user = await super().aauthenticate(request, username=username, password=password, **kwargs)
        if user is None:
            raise PermissionDenied
        return user

    def get_user(self, user_id):
        user = fetch_one(get_user_model(), BY_PK, (user_id,))
        return user if user is not None and self.user_can_authenticate(user) else None

    async def aget_user(self, user_id):
        return await sync_to_async(self.get_user)(user_id)
