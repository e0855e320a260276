"""The site's middleware, async-native: an async view (Start, Check, the pane) runs on the event
loop without a thread hop for the middleware around it.

Under ASGI, Django's ``MiddlewareMixin`` (every middleware in ``MIDDLEWARE``) runs each
``process_request`` and ``process_response`` through ``sync_to_async``: two hand-overs between
the event loop and a worker thread per middleware, and the one worker thread is shared with every
view's database work. Yet almost all of that work is a few header reads and writes. So each
middleware here is Django's own class (or the library's) with the same methods, called inline on
the loop; only what may block goes to the worker thread, as before, and only when it has to:

| middleware | to the worker thread when |
|---|---|
| sessions | the session is to be saved (a database write) |
| messages | messages were added or read (the session may be read or written) |
| CSRF | the token is in a body too big to stay in memory (parsing it reads and writes files), or the secret lives in the session |
| every other | never: they read and write headers only |

Loading the user (``request.auser()``) is one hop for the session's row and the user's row
together, not one each, and shares its result with ``request.user``.

A sync stack (WSGI, the test ``Client``) runs the same classes exactly as Django's.
"""

from __future__ import annotations

from functools import partial

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import middleware as auth_middleware
from django.contrib.messages import middleware as messages_middleware
from django.contrib.sessions import middleware as sessions_middleware
from django.middleware import clickjacking, common, csrf, locale, security
from django.utils.deprecation import MiddlewareMixin

from csp.middleware import CSPMiddleware as LibraryCSPMiddleware

from .headers import SecurityHeadersMiddleware as SiteSecurityHeadersMiddleware


class InlineMiddleware(MiddlewareMixin):
    """``MiddlewareMixin`` whose async path calls the hooks inline, except when
    ``request_blocks``/``response_blocks`` say this request's hook may block."""

    def request_blocks(self, request) -> bool:
        return False

    def response_blocks(self, request, response) -> bool:
        return False

    async def __acall__(self, request):
        response = None
        if hasattr(self, "process_request"):
            if self.request_blocks(request):
                response = await sync_to_async(self.process_request, thread_sensitive=True)(request)
            else:
                response = self.process_request(request)
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            if self.response_blocks(request, response):
                response = await sync_to_async(self.process_response, thread_sensitive=True)(request, response)
            else:
                response = self.process_response(request, response)
        return response


class SecurityMiddleware(InlineMiddleware, security.SecurityMiddleware):
    pass


class SessionMiddleware(InlineMiddleware, sessions_middleware.SessionMiddleware):
    """``process_request`` only makes a lazy session; ``process_response`` writes only a
    modified session (or every one, with ``SESSION_SAVE_EVERY_REQUEST``)."""

    def response_blocks(self, request, response) -> bool:
        session = getattr(request, "session", None)
        if session is None:
            return False
        return (session.modified or settings.SESSION_SAVE_EVERY_REQUEST) and not session.is_empty()


class LocaleMiddleware(InlineMiddleware, locale.LocaleMiddleware):
    pass


class CommonMiddleware(InlineMiddleware, common.CommonMiddleware):
    pass


class CsrfViewMiddleware(InlineMiddleware, csrf.CsrfViewMiddleware):
    """``process_view`` is async too in an async stack (Django would hop to the worker thread for
    it): inline unless reading the token means parsing a body from disk."""

    def __init__(self, get_response):
        super().__init__(get_response)
        if self.async_mode:
            self.process_view = self._aprocess_view

    def _uses_session(self) -> bool:
        return settings.CSRF_USE_SESSIONS

    def request_blocks(self, request) -> bool:
        return self._uses_session()

    def response_blocks(self, request, response) -> bool:
        return self._uses_session()

    def view_blocks(self, request) -> bool:
        if self._uses_session():
            return True
        if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return False
        # The token is read from request.POST: a body past FILE_UPLOAD_MAX_MEMORY_SIZE is parsed
        # from disk (and a multipart one's files written there); a smaller one stays in memory.
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return True
        return length > settings.FILE_UPLOAD_MAX_MEMORY_SIZE

    async def _aprocess_view(self, request, callback, callback_args, callback_kwargs):
        process_view = csrf.CsrfViewMiddleware.process_view.__get__(self)
        if self.view_blocks(request):
            return await sync_to_async(process_view, thread_sensitive=True)(request, callback, callback_args, callback_kwargs)
        return process_view(request, callback, callback_args, callback_kwargs)


def _load_user(request):
    """Django's sync loader (session row, then user row), which caches in ``request._cached_user``:
    ``request.user`` and ``request.auser()`` then share one load."""
    return auth_middleware.get_user(request)


async def auser(request):
    if not hasattr(request, "_acached_user"):
        if hasattr(request, "_cached_user"):
            request._acached_user = request._cached_user
        else:
            # One hop for both rows (Django's aget_user takes one for each).
            request._acached_user = await sync_to_async(_load_user, thread_sensitive=True)(request)
    return request._acached_user


class AuthenticationMiddleware(InlineMiddleware, auth_middleware.AuthenticationMiddleware):
    def process_request(self, request):
        super().process_request(request)
        request.auser = partial(auser, request)


class MessageMiddleware(InlineMiddleware, messages_middleware.MessageMiddleware):
    """Storing messages may read and write the session: only then in the worker thread."""

    def response_blocks(self, request, response) -> bool:
        storage = getattr(request, "_messages", None)
        return storage is not None and (storage.used or storage.added_new)


class XFrameOptionsMiddleware(InlineMiddleware, clickjacking.XFrameOptionsMiddleware):
    pass


class CSPMiddleware(InlineMiddleware, LibraryCSPMiddleware):
    pass


class SecurityHeadersMiddleware(InlineMiddleware, SiteSecurityHeadersMiddleware):
    pass
