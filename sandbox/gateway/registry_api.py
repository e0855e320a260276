"""The classroom registry's HTTP API, read-only, inside a docker-workspace sandbox.

A sandbox has no network, yet the "Repositories" lesson asks the learner to list tags and read
digests through the registry API, the way the registry's own documentation does it::

    wget -qO- http://127.0.0.1:5000/v2/learner-7/hello/tags/list

So the gateway (which runs as root beside the engine) opens a listener on ``127.0.0.1:5000``
*inside the sandbox's network namespace*: it enters the namespace in a short-lived thread, binds
the socket, and leaves; the socket stays in that namespace and is served by the gateway's event
loop. Nothing else in the sandbox changes (still ``--network none``), no host port is exposed and
only that sandbox can reach the listener. The address is the one the learner pushes to, so
``docker push 127.0.0.1:5000/...`` and ``wget http://127.0.0.1:5000/v2/...`` name the same registry.

What passes (:func:`registry_request`, pure and unit-tested): ``GET``/``HEAD`` of ``/v2/``, the
catalog (filtered to what the learner may see), and tags, manifests and blobs of ``library/...``
(the shared lesson images) or the learner's own namespace. Another learner's repository is
"unknown" (404, as the gateway answers for every object that is not yours); any write is refused
with a registry-style error that says to use ``docker push``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import json
import logging
import os
import re
import socket
import threading
from urllib.parse import parse_qsl, urlencode

from . import httpio
from .policy import SHARED_NAMESPACE, Learner

log = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
MAX_CONNECTIONS = 8  # per sandbox: wget opens one at a time; more is a learner's loop
HEAD_TIMEOUT = 10.0
UPSTREAM_TIMEOUT = 30.0
CATALOG_LIMIT = 4 << 20

# The registry's grammar for repository names and references (distribution/reference).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME = rf"{_COMPONENT}(?:/{_COMPONENT})*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"sha256:[a-f0-9]{64}"
_ROUTES = (
    (re.compile(r"/v2/"), "base"),
    (re.compile(r"/v2/_catalog"), "catalog"),
    (re.compile(rf"/v2/(?P<name>{_NAME})/tags/list"), "tags"),
    (re.compile(rf"/v2/(?P<name>{_NAME})/manifests/(?P<ref>{_TAG}|{_DIGEST})"), "manifest"),
    (re.compile(rf"/v2/(?P<name>{_NAME})/blobs/(?P<ref>{_DIGEST})"), "blob"),
)
# Response headers worth passing on: what `wget -S` shows a learner about a manifest or a blob.
RELAYED_HEADERS = ("content-type", "content-length", "docker-content-digest", "docker-distribution-api-version", "etag")


class RegistryDenied(Exception):
    """A request the classroom refuses, answered in the registry's own error format."""

    def __init__(self, status: int, code: str, message: str):
        self.status, self.code, self.message = status, code, message
        super().__init__(message)

    def response(self) -> bytes:
        body = json.dumps({"errors": [{"code": self.code, "message": self.message, "detail": None}]}).encode()
        reason = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
        return httpio.encode_head(f"HTTP/1.1 {self.status} {reason.get(self.status, 'Error')}", [
            ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
            ("Docker-Distribution-Api-Version", "registry/2.0"), ("Connection", "close"),
        ]) + body


@dataclasses.dataclass(frozen=True)
class RegistryRequest:
    kind: str  # base, catalog, tags, manifest, blob
    upstream: str  # path and query sent to the registry
    visible: tuple[str, ...]  # repository prefixes the learner may see (for the catalog)
    page: int | None = None  # the catalog's ``n``, applied after filtering


def visible_prefixes(learner: Learner) -> tuple[str, ...]:
    return (f"{SHARED_NAMESPACE}/", f"{learner.namespace}/")


def registry_request(learner: Learner, method: str, target: str) -> RegistryRequest:
    """What to ask the registry for ``method target``, or :class:`RegistryDenied`."""
    if method not in ("GET", "HEAD"):
        raise RegistryDenied(405, "UNSUPPORTED", "the classroom registry is read-only from here: "
                                                 "push with `docker push`, remove tags with `docker rmi`")
    path, _, query = target.partition("?")
    if not path.startswith("/v2/"):
        raise RegistryDenied(404, "NOT_FOUND", "this is the classroom registry: its API is under /v2/")
    visible = visible_prefixes(learner)
    for pattern, kind in _ROUTES:
        match = pattern.fullmatch(path)
        if not match:
            continue
        name = match.groupdict().get("name")
        if name is not None and not name.startswith(visible):
            # Another learner's repository is not there, as far as this learner can tell.
            raise RegistryDenied(404, "NAME_UNKNOWN", f"repository name not known to registry: {name}")
        pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k in ("n", "last")]
        if any(k == "n" and not v.isdigit() for k, v in pairs):
            raise RegistryDenied(400, "PAGINATION_NUMBER_INVALID", "n must be a number")
        if kind == "catalog":
            # Filtered here, so the registry is asked for all of it and the page is cut afterwards.
            page = next((int(v) for k, v in pairs if k == "n"), None)
            return RegistryRequest(kind, "/v2/_catalog?n=1000", visible, page or None)
        return RegistryRequest(kind, path + (f"?{urlencode(pairs)}" if pairs else ""), visible)
    raise RegistryDenied(404, "NOT_FOUND", f"the classroom registry has no {path} (try /v2/_catalog)")


def filter_catalog(body: bytes, visible: tuple[str, ...], n: int | None = None) -> bytes:
    """The catalog without other learners' repositories."""
    try:
        names = json.loads(body).get("repositories") or []
    except (ValueError, AttributeError):
        names = []
    kept = sorted(name for name in names if isinstance(name, str) and name.startswith(visible))
    return json.dumps({"repositories": kept[:n] if n else kept}).encode()


def bind_in_netns(pid: int, host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` in the network namespace of process ``pid``.

    Entered from a thread of its own: ``setns`` moves only the calling thread, and a thread that
    ends can never serve anything else from the wrong namespace. Needs CAP_SYS_ADMIN (root)."""
    libc = ctypes.CDLL(None, use_errno=True)
    result: dict[str, object] = {}

    def enter_bind_leave() -> None:
        own = target = None
        try:
            own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
            target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
            if libc.setns(target, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"cannot enter the sandbox's network namespace: {os.strerror(err)}")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((host, port))
                sock.listen(16)
                sock.setblocking(False)
            except OSError:
                sock.close()
                raise
            finally:
                libc.setns(own, CLONE_NEWNET)
            result["socket"] = sock
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            result["error"] = exc
        finally:
            for fd in (own, target):
                if fd is not None:
                    os.close(fd)

    worker = threading.Thread(target=enter_bind_leave, name=f"netns-bind-{pid}")
    worker.start()
    worker.join()
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["socket"]  # type: ignore[return-value]


class RegistryApi:
    """Serves one sandbox's read-only registry listener (see the module docstring)."""

    def __init__(self, learner: Learner, on_activity=None):
        self.learner = learner
        host, _, port = learner.registry.rpartition(":")
        self.upstream = (host, int(port))
        self.slots = asyncio.Semaphore(MAX_CONNECTIONS)
        self.on_activity = on_activity

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.slots.locked():
            writer.write(RegistryDenied(503, "TOOMANYREQUESTS", "too many registry requests at once").response())
            writer.close()
            return
        async with self.slots:
            try:
                head = await asyncio.wait_for(httpio.read_head(reader), HEAD_TIMEOUT)
                if head is None:
                    return
                parsed = httpio.parse_request(head)  # the gateway's strict parse: a 400 if ambiguous
                request = registry_request(self.learner, parsed.method, parsed.target)
                if self.on_activity:
                    self.on_activity()
                await asyncio.wait_for(self._relay(request, parsed.method, head, writer), UPSTREAM_TIMEOUT)
            except RegistryDenied as exc:
                writer.write(exc.response())
            except httpio.HttpError as exc:
                writer.write(RegistryDenied(exc.status, "UNSUPPORTED", exc.message).response())
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
                with contextlib.suppress(Exception):
                    writer.write(RegistryDenied(503, "UNAVAILABLE", f"the classroom registry did not answer: {exc or 'timeout'}").response())
            except Exception:  # noqa: BLE001 - one bad request must not take the gateway down
                log.exception("registry API error for sandbox %s", self.learner.sandbox_id)
            finally:
                with contextlib.suppress(Exception):
                    await writer.drain()
                writer.close()

    async def _relay(self, request: RegistryRequest, method: str, head: httpio.Head, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream, limit=1 << 20)
        try:
            accept = head.get("accept")
            headers = [("Host", f"{self.upstream[0]}:{self.upstream[1]}"), ("Connection", "close")]
            if accept and len(accept) < 2048 and accept.isprintable():
                headers.append(("Accept", accept))
            up_writer.write(httpio.encode_head(f"{method if request.kind != 'catalog' else 'GET'} {request.upstream} HTTP/1.1", headers))
            await up_writer.drain()
            up_head = await httpio.read_response_head(up_reader, "the registry")
            status = httpio.status_of(up_head)
            relayed = [(k, v) for k, v in up_head.headers if k.lower() in RELAYED_HEADERS]
            framing = httpio.response_framing(up_head, "GET" if request.kind == "catalog" else method)
            if request.kind == "catalog" and status == 200:
                body = filter_catalog(await httpio.read_response_body(up_reader, framing, CATALOG_LIMIT),
                                      request.visible, request.page)
                relayed = [(k, v) for k, v in relayed if k.lower() != "content-length"]
                relayed.append(("Content-Length", str(len(body))))
                writer.write(httpio.encode_head(up_head.start, relayed + [("Connection", "close")]))
                if method != "HEAD":
                    writer.write(body)
                return
            if framing[0] == "chunked":
                relayed.append(("Transfer-Encoding", "chunked"))
            writer.write(httpio.encode_head(up_head.start, relayed + [("Connection", "close")]))
            if framing[0] == "eof":
                await httpio.copy_to_eof(up_reader, writer)
            elif framing[0] != "none":
                await httpio.copy_body(up_reader, writer, framing)
        finally:
            up_writer.close()
