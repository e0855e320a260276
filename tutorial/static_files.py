"""Static files as an ASGI app in front of Django, served from WhiteNoise's file table.

WhiteNoise's Django middleware is sync only: with it in ``MIDDLEWARE`` every request (a page, a
Start, a Check) paid a hop into a worker thread and back to the event loop before Django's own
middleware even ran, for the few requests that ask for a file under ``STATIC_URL``. Here only
those requests are looked at, on the event loop, and the file is read in one worker-thread call;
every other request goes straight to Django.

What a browser sees is unchanged: WhiteNoise picks the file, its compressed variant
(``Accept-Encoding``), ``ETag`` / ``Last-Modified`` answers (304), ranges and cache headers, with
the same settings (``WHITENOISE_*``, ``STATIC_ROOT``, finders under DEBUG); the headers Django's
``SecurityMiddleware`` put on a static answer (nosniff, Referrer-Policy, Cross-Origin-Opener-Policy,
HSTS over https) are added here, and a request ``SECURE_SSL_REDIRECT`` would redirect is left to
Django. A path under the prefix with no file behind it is Django's (its 404 page).
"""

from __future__ import annotations

import asyncio

from django.conf import settings
from whitenoise.middleware import WhiteNoiseMiddleware


def security_headers(secure: bool) -> list[tuple[bytes, bytes]]:
    """The headers ``django.middleware.security.SecurityMiddleware`` gives every answer."""
    headers = []
    if secure and settings.SECURE_HSTS_SECONDS:
        value = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            value += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            value += "; preload"
        headers.append(("Strict-Transport-Security", value))
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    policy = settings.SECURE_REFERRER_POLICY
    if policy:
        if not isinstance(policy, str):
            policy = ",".join(policy)
        headers.append(("Referrer-Policy", policy))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]


def wsgi_headers(scope: dict) -> dict[str, str]:
    """The request headers as WhiteNoise reads them (``HTTP_IF_NONE_MATCH``, ``HTTP_RANGE`` ...)."""
    meta: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        text = value.decode("latin-1")
        meta[key] = f"{meta[key]},{text}" if key in meta else text
    return meta


def is_secure(scope: dict, meta: dict[str, str]) -> bool:
    """As ``HttpRequest.is_secure``: the trusted proxy header when one is configured, else the scheme."""
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        header, secure_value = proxy_header
        value = meta.get(header)
        if value is not None:
            return value.split(",")[0].strip() == secure_value
    return scope.get("scheme") == "https"


def read_answer(static_file, method: str, meta: dict[str, str]):
    """WhiteNoise's answer and its whole body (static files are small: scripts, styles, icons)."""
    response = static_file.get_response(method, meta)
    if response.file is None:
        return response, b""
    with response.file as file:
        return response, file.read()


class StaticFiles:
    """ASGI: answer GET/HEAD (and refuse other methods) for files under ``STATIC_URL``; pass the rest on."""

    def __init__(self, application):
        self.application = application
        # The middleware class reads every WHITENOISE_* setting and fills the file table once;
        # it is used here as that table, never as middleware.
        self.whitenoise = WhiteNoiseMiddleware(get_response=None)
        self.prefix = self.whitenoise.static_prefix

    def find(self, path: str):
        if self.whitenoise.autorefresh:
            return self.whitenoise.find_file(path)  # looks on disk (DEBUG): called off the loop
        return self.whitenoise.files.get(path)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.application(scope, receive, send)
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]  # as Django's request.path_info
        if not path.startswith(self.prefix):
            return await self.application(scope, receive, send)
        meta = wsgi_headers(scope)
        secure = is_secure(scope, meta)
        if settings.SECURE_SSL_REDIRECT and not secure:
            return await self.application(scope, receive, send)  # Django's redirect
        if self.whitenoise.autorefresh:
            static_file = await asyncio.to_thread(self.find, path)
        else:
            static_file = self.find(path)
        if static_file is None:
            return await self.application(scope, receive, send)
        response, body = await asyncio.to_thread(read_answer, static_file, scope["method"], meta)
        headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers]
        await send({"type": "http.response.start", "status": int(response.status),
                    "headers": headers + security_headers(secure)})
        await send({"type": "http.response.body", "body": body})
