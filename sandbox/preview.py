"""The web preview: a port a learner's container publishes, opened in a browser tab through the site.

A link is a capability, ``/preview/<token>/<path>``: the token is signed by the site and names the
sandbox, the port and the viewer (the owner, or an instructor who may watch them). Every request
checks it again: the token is genuine and unexpired, the viewer may still see the sandbox, the
sandbox runs, and the port is still served by that sandbox's own objects (asked of the engine,
remembered for a few seconds): a port its containers publish on 127.0.0.1 (Docker), or a Service
of its namespace, reached at one of its ready pods' own address (Kubernetes; never the Service's
virtual IP, whose endpoints a learner may point anywhere). So the site forwards only to what the
engine says belongs to the learner: never to another learner's port or to a service of the host.

What the learner's page can do in a viewer's browser is bounded by the browser, not by trust:
- every answer carries ``Content-Security-Policy: sandbox`` without ``allow-same-origin``, so the
  page runs in an opaque origin: it cannot read the site's cookies, storage or pages, and its
  requests to the site carry no session (the site's cookies are SameSite=Lax);
- the site's own cookies (session, CSRF, language) are never passed to the learner's server, and
  the learner's server cannot set cookies on the site (``Set-Cookie`` is dropped);
- only an allow-list of headers crosses in either direction.
Paths the learner's page writes from the root (``/style.css``) leave the preview; relative ones work.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator

import aiohttp
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from .backends.base import BackendError, EngineUnavailable, PublishedPort
from .engines import get_backend
from .models import Sandbox
from .permissions import Access, aconsole_access

log = logging.getLogger(__name__)

SALT = "tutorial.preview"
# A port's ownership is asked of the engine at most this often per process (a page loads many files).
OWNERSHIP_CACHE_SECONDS = 5.0
CONNECT_SECONDS = 5.0
# A learner's server that stops sending for this long loses the request.
READ_SECONDS = 60.0

# The page is the learner's: scripts and forms run, but in an opaque origin (no allow-same-origin).
SANDBOX_POLICY = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads"
REQUEST_HEADERS = frozenset({
    "accept", "accept-encoding", "accept-language", "cache-control", "content-type", "if-match",
    "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "range", "user-agent",
    "x-requested-with",
})
RESPONSE_HEADERS = frozenset({
    "accept-ranges", "cache-control", "content-disposition", "content-encoding", "content-language",
    "content-range", "content-type", "etag", "expires", "last-modified", "vary",
})
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class PreviewRefused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def offered(workspace: str) -> bool:
    """Whether the site can reach what a workspace's sandboxes serve: Docker ports on this machine's
    127.0.0.1, and pods when the cluster's node is this machine (the local cluster)."""
    if not settings.WEB_PREVIEW:
        return False
    return workspace == "docker" or (workspace == "kubernetes" and bool(getattr(settings, "KUBERNETES_LOCAL_CLUSTER", False)))


def make_link(sandbox_id, key, viewer_id: int) -> str:
    """A link to what ``key`` (a :class:`PublishedPort`'s) names in the sandbox, for one viewer."""
    token = signing.dumps([str(sandbox_id), str(key), int(viewer_id)], salt=SALT, compress=False)
    return f"/preview/{token}/"


def read_token(token: str, *, max_age: float | None = None) -> tuple[uuid.UUID, str, int]:
    """The sandbox, port key and viewer a token names; :class:`PreviewRefused` if forged or old."""
    try:
        sandbox_id, key, viewer_id = signing.loads(
            token, salt=SALT, max_age=settings.PREVIEW_LINK_SECONDS if max_age is None else max_age)
        return uuid.UUID(sandbox_id), str(key), int(viewer_id)
    except signing.SignatureExpired:
        raise PreviewRefused(410, _("This preview link has expired: open the preview again from the lesson page.")) from None
    except (signing.BadSignature, TypeError, ValueError):
        raise PreviewRefused(404, _("No such preview.")) from None


async def ports_of(sandbox: Sandbox) -> list[PublishedPort]:
    """The ports the sandbox's own containers publish now (none when it does not run)."""
    if sandbox.state != Sandbox.State.RUNNING:
        return []
    return await get_backend(sandbox.workspace).published_ports(str(sandbox.id))


_owned: dict[tuple[uuid.UUID, str, int], tuple[float, PublishedPort]] = {}


def forget_ownership() -> None:
    """Ask the engine again on the next request (tests; a port just unpublished)."""
    _owned.clear()


async def check(token: str) -> tuple[Sandbox, PublishedPort]:
    """The sandbox and the published port a request may reach, or :class:`PreviewRefused`."""
    sandbox_id, port_key, viewer_id = read_token(token)
    key = (sandbox_id, port_key, viewer_id)
    sandbox = await Sandbox.objects.filter(pk=sandbox_id).afirst()
    if sandbox is None or sandbox.state != Sandbox.State.RUNNING:
        raise PreviewRefused(404, _("This sandbox is not running."))
    remembered = _owned.get(key)
    if remembered and remembered[0] > time.monotonic():
        return sandbox, remembered[1]
    viewer = await get_user_model().objects.filter(pk=viewer_id, is_active=True).afirst()
    if viewer is None or await aconsole_access(viewer, sandbox) is Access.NONE:
        raise PreviewRefused(403, _("You may not see this sandbox."))
    try:
        published = await ports_of(sandbox)
    except (BackendError, EngineUnavailable) as exc:
        raise PreviewRefused(503, _("The engine did not say which ports are published: %(error)s") % {"error": exc}) from None
    target = next((p for p in published if p.key == port_key), None)
    if target is None:
        raise PreviewRefused(404, _("Nothing of this sandbox publishes %(port)s any more.") % {"port": port_key})
    if len(_owned) > 10_000:
        _owned.clear()
    _owned[key] = (time.monotonic() + OWNERSHIP_CACHE_SECONDS, target)
    return sandbox, target


def request_headers(request: HttpRequest) -> dict[str, str]:
    """What crosses to the learner's server: the allow-list, and cookies other than the site's."""
    headers = {name: value for name, value in request.headers.items() if name.lower() in REQUEST_HEADERS}
    site_cookies = {settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME, settings.LANGUAGE_COOKIE_NAME}
    cookies = [f"{name}={value}" for name, value in request.COOKIES.items() if name not in site_cookies]
    if cookies:
        headers["Cookie"] = "; ".join(cookies)
    return headers


def response_headers(upstream_headers, prefix: str, target: PublishedPort) -> dict[str, str]:
    """What crosses back: the allow-list, a Location kept inside the preview, and the sandbox policy."""
    headers = {name: value for name, value in upstream_headers.items() if name.lower() in RESPONSE_HEADERS}
    location = upstream_headers.get("Location")
    if location:
        for origin in (f"http://{target.host}:{target.host_port}", f"http://localhost:{target.host_port}"):
            if location.startswith(origin):
                location = location[len(origin):] or "/"
        if location.startswith("/") and not location.startswith("//"):
            headers["Location"] = prefix + location.lstrip("/")
        elif location.startswith(("http://", "https://", "//")):
            pass  # somewhere else entirely: not followed through the site
        else:
            headers["Location"] = location  # relative: the browser keeps it inside the preview
    headers["Content-Security-Policy"] = SANDBOX_POLICY
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Content-Type-Options"] = "nosniff"
    headers.setdefault("Cache-Control", "private, no-store")
    return headers


async def forward(request: HttpRequest, token: str, path: str) -> HttpResponse:
    """Forward one request to the learner's port and stream the answer back."""
    try:
        _sandbox, target = await check(token)
    except PreviewRefused as exc:
        return refused(exc)
    if request.method not in METHODS:
        return refused(PreviewRefused(405, _("%(method)s is not forwarded.") % {"method": request.method}))
    prefix = f"/preview/{token}/"
    url = f"http://{target.host}:{target.host_port}/{path}"
    if request.META.get("QUERY_STRING"):
        url += "?" + request.META["QUERY_STRING"]
    session = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_SECONDS, sock_read=READ_SECONDS),
        auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar())
    try:
        upstream = await session.request(request.method, url, headers=request_headers(request), data=request.body or None,
                                         allow_redirects=False)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        await session.close()
        log.info("preview of %s: %s", target.key, exc)
        return refused(PreviewRefused(502, _("Nothing answered on %(name)s, port %(port)s: is its server running?") % {"name": target.name, "port": target.port}))
    response = StreamingHttpResponse(_body(session, upstream), status=upstream.status)
    for name, value in response_headers(upstream.headers, prefix, target).items():
        response[name] = value
    if upstream.headers.get("Content-Length") and request.method != "HEAD":
        response["Content-Length"] = upstream.headers["Content-Length"]
    return response


async def _body(session: aiohttp.ClientSession, upstream: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.content.iter_chunked(64 * 1024):
            yield chunk
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.info("preview answer cut short: %s", exc)
    finally:
        upstream.release()
        await session.close()


def refused(exc: PreviewRefused) -> HttpResponse:
    response = HttpResponse(str(exc), status=exc.status, content_type="text/plain; charset=utf-8")
    response["Content-Security-Policy"] = SANDBOX_POLICY
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt  # the token is the credential; the site's session is never used here
async def preview_view(request: HttpRequest, token: str, path: str = "") -> HttpResponse:
    if not settings.WEB_PREVIEW:
        return refused(PreviewRefused(404, _("The web preview is turned off on this site (TUTORIAL_WEB_PREVIEW).")))
    return await forward(request, token, path)
