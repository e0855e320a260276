"""The per-learner Docker Engine API proxy: one instance per sandbox socket.

Every request is normalised, matched against the allowlist (``routes``), judged by ``policy`` and
ownership checks against the engine (404 for what is not the learner's), and forwarded on a fresh
engine connection. Streams (logs -f, events, pull/push progress, build output) are relayed as they
come; attach and exec are relayed byte for byte after the engine switches protocols.

One canonical request per learner request: the head is read strictly (``httpio.read_head`` and
``httpio.parse_request``; anything ambiguous is a 400) and what reaches the engine is a head the
gateway writes itself (``forward``): its own Host, Connection/Upgrade, length or chunked framing
and a fixed Content-Type per kind of body. No value the learner sent is copied into it, except
``X-Registry-Auth`` once it has decoded to a small JSON object, and that is re-encoded.

A connection may wait ``idle_timeout`` for its next request; once a request's first byte is in,
its head (and a JSON body the gateway reads) must arrive within ``head_timeout``; an upload body
(docker cp in, a build context) may be as long as it likes but may not pause for more than
``stall_timeout`` (a 408, and the connection is closed); a sandbox holds
at most ``connections_max`` connections at once (``ConnectionLimits``). None of these cuts a
request that is being answered: attach, exec, ``logs -f`` and ``events`` run as long as they like.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import json
import logging
import re
import tempfile
import weakref
from pathlib import Path
from urllib.parse import quote

from . import build, dockerfile, httpio, policy, relay
from .dockerfile import DockerfileError
from .httpio import HttpError
from .names import Names
from .policy import Learner, Limits, PolicyDenied, not_found
from .prune import PRUNE_BUDGET, PRUNES, Pruner
from .routes import ROUTE_TABLE, Route, compile_routes, find_route
from .state import TagBook

# One gateway process places every learner network (see policy.free_subnet): one lock per event
# loop, since an asyncio.Lock belongs to the loop that first waits on it.
_subnet_locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def subnet_lock() -> asyncio.Lock:
    return _subnet_locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())

log = logging.getLogger(__name__)

USER_AGENT = "classroom-gateway"
MAX_REGISTRY_AUTH = 8192  # encoded; an identity token is about 2 KiB
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
# A full or short engine id (hex, 12 to 64 digits) in an error message from the engine.
_ENGINE_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{12,64}(?![0-9a-f])")
ID_OR_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
BUILD_SPOOL_IN_MEMORY = 8 << 20  # a build context past this goes to a temporary file


@dataclasses.dataclass(frozen=True)
class ConnectionLimits:
    """What one sandbox's socket may hold open (``settings.GATEWAY_CONNECTIONS``): the gateway
    process serves every learner, so none may tie up its file descriptors or its memory."""

    head_timeout: float = 30.0  # from a request's first byte to the end of its head (and JSON body)
    idle_timeout: float = 300.0  # a kept-alive connection with no new request for this long is closed
    # An upload body (docker cp in, a build context) with no byte for this long, or an attached
    # client that takes no output for this long (its stream is closed).
    stall_timeout: float = 60.0
    connections_max: int = 32  # open connections per sandbox; `docker run -it` uses about four


def name_filter_pattern(value: str) -> re.Pattern:
    """A ``name`` filter as the gateway matches it: the text literally, anchored by a leading ``^``
    or a trailing ``$`` as the learner wrote them. The engine takes a regular expression, but this
    one runs in the process every learner shares, where a backtracking pattern would stall them
    all; plain names and anchors are what `docker ps --filter name=` is used with."""
    start = value.startswith("^")
    end = value.endswith("$") and len(value) > int(start)
    core = value[int(start):len(value) - int(end)]
    return re.compile(("^" if start else "") + re.escape(core) + ("$" if end else ""))


def registry_auth(values: list[str]) -> str | None:
    """The ``X-Registry-Auth`` to forward, re-encoded, or None; HttpError 400 unless the learner
    sent one value that is base64url (padded or not) of a small JSON object of strings."""
    if not values or values == [""]:
        return None
    bad = HttpError(400, "X-Registry-Auth must be base64url-encoded JSON credentials")
    value = values[0]
    if len(values) != 1 or len(value) > MAX_REGISTRY_AUTH or not _BASE64URL.fullmatch(value):
        raise bad
    stripped = value.rstrip("=")
    try:
        raw = base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
        auth = policy.loads_strict(raw)
    except (binascii.Error, ValueError, PolicyDenied):
        raise bad from None
    if not isinstance(auth, dict) or not all(isinstance(v, str) for v in auth.values()):
        raise bad
    return base64.urlsafe_b64encode(policy.dumps(auth)).decode("ascii")


def scrub_engine_message(message: str, own_ids: tuple[str, ...] = ()) -> str:
    """An engine error message without ids of objects that are not the learner's."""
    return _ENGINE_ID.sub(lambda m: m.group(0) if any(i.startswith(m.group(0)) for i in own_ids if i)
                          else "(not yours)", message)


def name_conflict_sanitizer(name: str, own_ids: tuple[str, ...] = ()):
    """``forward``'s ``sanitize`` for answers that may name another learner's container: a name
    clash (create, rename) says only that the name is taken; other errors lose foreign ids."""

    def sanitize(status: int, data) -> dict:
        message = (data or {}).get("message", "") if isinstance(data, dict) else str(data or "")
        if status == 409 and "already in use" in message:
            # The engine names the other container's id; a learner must not learn it.
            return {"message": f'the container name "{name}" is already in use; choose another name'}
        return {"message": scrub_engine_message(message, own_ids)}

    return sanitize


class Request:
    def __init__(self, request: httpio.RequestHead, path, pairs, reader, writer, route: Route, match,
                 deadline: float = float("inf"), auth: str | None = None):
        self.route = route
        self.method = request.method
        self.path = path
        self.pairs = pairs
        self.head = request.head
        self.framing = request.framing
        self.upgrade = request.upgrade
        self.registry_auth = auth
        self.reader = reader
        self.writer = writer
        self.match = match
        self.deadline = deadline  # the loop time by which a body the gateway buffers must be in
        self.body_consumed = self.framing[0] == "none"
        self.close = request.close

    @property
    def query(self) -> dict[str, str]:
        return policy.query_dict(self.pairs)

    async def json_body(self):
        raw = await read_within(self.deadline, httpio.read_body(self.reader, self.framing, policy.MAX_JSON_BODY))
        self.body_consumed = True
        return policy.loads_strict(raw)

    async def discard_body(self) -> None:
        if not self.body_consumed:
            await read_within(self.deadline, httpio.read_body(self.reader, self.framing, policy.MAX_JSON_BODY))
            self.body_consumed = True


async def read_within(deadline: float, reading):
    """Await ``reading`` (bytes from the learner) until the loop time ``deadline``: a request
    sent slowly on purpose (slowloris) is a 408 and its connection is closed."""
    try:
        async with asyncio.timeout_at(deadline):
            return await reading
    except TimeoutError:
        raise HttpError(408, "the request did not arrive in time; the classroom gateway closed the connection") from None


class LearnerProxy:
    def __init__(self, learner: Learner, engine_socket: str, state_dir: Path, limits: Limits = Limits(),
                 on_activity=None, connection_limits: ConnectionLimits = ConnectionLimits()):
        self.learner = learner
        self.on_activity = on_activity  # called on every request: the learner is at work
        self.engine_socket = engine_socket
        self.limits = limits
        self.connection_limits = connection_limits
        self.connections = 0  # open learner connections on this socket
        self.lingering = 0  # refused connections still being told why
        self.book = TagBook(state_dir, learner.sandbox_id)
        self.names = Names(learner.sandbox_id)  # learner names <-> the engine's (see names.py)
        self.book.remember_owner(learner.owner_id, learner.namespace)
        self._tasks: set[asyncio.Task] = set()

    # -- connection loop --------------------------------------------------------------------------
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        cap = self.connection_limits.connections_max
        if self.connections >= cap:
            # Answered at once, without reading a request; what the client already sent is
            # swallowed for a moment (closing on unread bytes resets the connection before the
            # client reads why), then the descriptor is freed. A loop opening connections gets no
            # more than ``cap`` such moments at once: past that they are closed straight away.
            self._send(writer, httpio.error_response(429, (
                f"too many connections to the classroom gateway at once (at most {cap}); end some "
                "(docker logs -f, docker attach, docker events) and try again"), close=True))
            if self.lingering < cap:
                self.lingering += 1
                try:
                    await relay.linger(reader, writer, 1.0)
                finally:
                    self.lingering -= 1
            writer.close()
            return
        self.connections += 1
        # asyncio holds stream readers weakly: once the client half-closes (attach without stdin),
        # nothing but this set keeps a relaying task alive, and the garbage collector would end it.
        task = asyncio.current_task()
        self._tasks.add(task)
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    async with asyncio.timeout(self.connection_limits.idle_timeout):
                        first = await reader.read(1)
                except TimeoutError:
                    break  # idle between requests: close quietly, as the engine's keep-alive does
                if not first:
                    break
                deadline = loop.time() + self.connection_limits.head_timeout
                head = await read_within(deadline, httpio.read_head(reader, first))
                if head is None:
                    break
                if not await self._one(head, reader, writer, deadline):
                    break
        except HttpError as exc:
            self._send(writer, httpio.error_response(exc.status, exc.message, close=True))
            if exc.status == 413:
                await relay.linger(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except Exception:  # noqa: BLE001 - one bad request must not take the gateway down
            log.exception("gateway error for sandbox %s", self.learner.sandbox_id)
            self._send(writer, httpio.error_response(500, "the classroom gateway failed on this request", close=True))
        finally:
            self.connections -= 1
            self._tasks.discard(task)
            writer.close()

    @staticmethod
    def _send(writer, data: bytes) -> None:
        if not writer.is_closing():
            writer.write(data)

    async def _one(self, head, reader, writer, deadline: float = float("inf")) -> bool:
        request = httpio.parse_request(head)
        auth = registry_auth(request.all("x-registry-auth"))
        framing = request.framing
        if self.on_activity:
            self.on_activity()
        req = None
        try:
            path, pairs = policy.normalise_target(request.target)
            req = self._route(request, path, pairs, reader, writer, deadline, auth)
            log.debug("%s %s -> %s", request.method, request.target, req.route.name)
            return await req.route.handler(self, req)
        except PolicyDenied as exc:
            consumed = req.body_consumed if req else framing[0] == "none"
            if not consumed and framing[0] == "length" and framing[1] <= policy.MAX_JSON_BODY:
                await read_within(deadline, httpio.read_body(reader, framing, policy.MAX_JSON_BODY))
                consumed = True
            keep_alive = consumed and not request.close
            writer.write(httpio.error_response(exc.status, exc.message, close=not keep_alive))
            await writer.drain()
            return keep_alive

    def _route(self, request: httpio.RequestHead, path, pairs, reader, writer, deadline, auth) -> Request:
        found = find_route(ROUTES, request.method, path)
        if found is None:
            raise PolicyDenied(f"{request.method} {path} is not allowed through the classroom gateway")
        route, match = found
        return Request(request, path, pairs, reader, writer, route, match, deadline, auth)

    # -- engine calls -----------------------------------------------------------------------------
    async def _open_engine(self):
        return await asyncio.open_unix_connection(self.engine_socket, limit=1 << 20)

    async def engine(self, method: str, path: str, query: list | None = None, body=None) -> tuple[int, object]:
        """A small JSON call to the engine (ownership checks, quotas)."""
        reader, writer = await self._open_engine()
        try:
            payload = policy.dumps(body) if body is not None else b""
            qs = f"?{policy.encode_query(query)}" if query else ""
            headers = [("Host", "docker"), ("Connection", "close"), ("Content-Length", str(len(payload)))]
            if body is not None:
                headers.append(("Content-Type", "application/json"))
            writer.write(httpio.encode_head(f"{method} /{policy.API_VERSION}{path}{qs} HTTP/1.1", headers) + payload)
            await writer.drain()
            head = await httpio.read_response_head(reader)
            raw = await httpio.read_response_body(reader, httpio.response_framing(head, method))
            try:
                data = json.loads(raw) if raw.strip() else None
            except ValueError:
                data = raw.decode(errors="replace")
            return httpio.status_of(head), data
        finally:
            writer.close()

    async def forward(self, req: Request, *, path: str | None = None, pairs: list | None = None,
                      body: object = None, stream_limit: int | None = None, transform=None,
                      sanitize=None, upload: tuple | None = None, each_line=None) -> bool:
        """Send the (rewritten) request to the engine and relay the answer. Returns keep-alive.

        The head sent is the gateway's own (see the module docstring): a JSON ``body`` goes as
        application/json, an ``upload`` (a spooled build context) and a streamed body
        (``stream_limit``: an archive PUT) as application/x-tar; anything else has no body.
        ``each_line`` rewrites each JSON line of a chunked stream (events) as it passes."""
        path = path if path is not None else req.path
        pairs = req.pairs if pairs is None else pairs
        sent, streaming = await self._engine_head(req, path, pairs, body, upload, stream_limit)
        up_reader, up_writer = await self._open_engine()
        try:
            up_writer.write(sent)
            if upload is not None:
                await _send_upload(up_writer, upload[0])
            if streaming:
                await self._stream_body(req, up_writer, stream_limit)
            await up_writer.drain()
            head = await httpio.read_response_head(up_reader)
            status = httpio.status_of(head)
            log.debug("engine answered %s to %s %s", status, req.method, path)
            if status == 101:
                return await self._relay_hijacked(req, head, up_reader, up_writer)
            framing = httpio.response_framing(head, req.method)
            if (transform and status == 200) or (sanitize and status >= 400):
                return await _relay_rewritten(req, head, status, framing, up_reader, transform, sanitize)
            if each_line and status == 200 and framing[0] == "chunked":
                await relay.relay_lines(up_reader, req.writer, head, each_line, close=req.close)
                return not req.close
            return await _relay_as_is(req, head, framing, up_reader, up_writer)
        finally:
            up_writer.close()

    async def _engine_head(self, req: Request, path: str, pairs: list, body, upload,
                           stream_limit) -> tuple[bytes, bool]:
        """The request head (and JSON body) the gateway writes to the engine, and whether the
        learner's body is to be streamed after it. A body the engine is not sent is discarded."""
        qs = f"?{policy.encode_query(pairs)}" if pairs else ""
        headers = [("Host", "docker"), ("User-Agent", USER_AGENT)]
        if req.registry_auth:
            headers.append(("X-Registry-Auth", req.registry_auth))
        if req.upgrade:
            headers += [("Connection", "Upgrade"), ("Upgrade", "tcp")]
        else:
            headers.append(("Connection", "close"))
        payload = b""
        streaming = False
        if body is not None:
            payload = policy.dumps(body)
            headers += [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
        elif upload is not None:
            headers += [("Content-Type", "application/x-tar"), ("Content-Length", str(upload[1]))]
        elif stream_limit is not None and not req.body_consumed:
            streaming = True
            headers.append(("Content-Type", "application/x-tar"))
            if req.framing[0] == "chunked":
                headers.append(("Transfer-Encoding", "chunked"))
            else:
                headers.append(("Content-Length", str(req.framing[1])))
        else:
            await req.discard_body()
            headers.append(("Content-Length", "0"))
        start = f"{req.method} /{policy.API_VERSION}{path}{qs} HTTP/1.1"
        return httpio.encode_head(start, headers) + payload, streaming

    async def _stream_body(self, req: Request, up_writer, stream_limit: int) -> None:
        """The learner's body (an archive PUT) relayed to the engine as it comes, at most ``stream_limit``."""
        stall = self.connection_limits.stall_timeout
        relayed = await httpio.relay_body_direct(req.reader, req.writer, up_writer, req.framing, stream_limit,
                                                 stall=stall)
        if relayed is None:
            relayed = await httpio.copy_body(req.reader, up_writer, req.framing, stream_limit, stall=stall)
        req.body_consumed = True
        if relayed.surplus:
            req.close = True  # the client pipelined past the body: those bytes are spent

    async def _relay_hijacked(self, req: Request, head, up_reader, up_writer) -> bool:
        """Attach and exec after the engine switched protocols: bytes both ways, then the connection ends."""
        req.writer.write(httpio.encode_head(head.start, head.headers))
        await req.writer.drain()
        await relay.splice(req.reader, req.writer, up_reader, up_writer, stall=self.connection_limits.stall_timeout)
        return False

    # -- ownership ----------------------------------------------------------------------------------
    async def own_container(self, ref: str) -> dict:
        """The learner's container ``ref`` (their name for it, or an id), or a 404."""
        if not ID_OR_NAME.match(ref):
            raise not_found(f"No such container: {ref}")
        for engine_ref in self.names.refs(ref):
            status, info = await self.engine("GET", f"/containers/{quote(engine_ref)}/json")
            if status == 200 and self.learner.owns_labels((info.get("Config") or {}).get("Labels")):
                return info
        raise not_found(f"No such container: {ref}")

    async def own_network(self, ref: str) -> dict:
        """The learner's network ``ref`` (their name, an id, or their default network), or a 404."""
        if not ID_OR_NAME.match(ref):
            raise not_found(f"network {ref} not found")
        refs = [ref] if ref == self.learner.network else self.names.refs(ref)
        for engine_ref in refs:
            status, info = await self.engine("GET", f"/networks/{quote(engine_ref)}")
            if status == 200 and self.learner.owns_labels(info.get("Labels")):
                return info
        raise not_found(f"network {ref} not found")

    async def own_volume(self, ref: str) -> dict:
        """The learner's volume ``ref`` (their name; volumes have no ids), or a 404."""
        if not ID_OR_NAME.match(ref):
            raise not_found(f"get {ref}: no such volume")
        status, info = await self.engine("GET", f"/volumes/{quote(self.names.engine(ref))}")
        if status != 200 or not self.learner.owns_labels(info.get("Labels")):
            raise not_found(f"get {ref}: no such volume")
        return info

    def scrub_errors(self, status: int, data) -> dict:
        """``forward``'s ``sanitize`` where an engine error may name an object by its engine name."""
        message = (data or {}).get("message", "") if isinstance(data, dict) else str(data or "")
        return {"message": self.names.scrub(message)}

    async def scrub_answer(self, data):
        """``forward``'s ``transform``: the engine's names in an answer made the learner's."""
        return self.names.scrub(data)

    async def image_info(self, ref: str) -> dict | None:
        status, info = await self.engine("GET", f"/images/{quote(ref, safe='/:@')}/json")
        return info if status == 200 else None

    def _image_visible(self, info: dict, ref_text: str | None) -> bool:
        labels = (info.get("Config") or {}).get("Labels") or {}
        if self.learner.owns_labels(labels):
            return True
        if policy.LABEL_SANDBOX in labels:
            return False  # another learner's build
        if ref_text and not policy.looks_like_image_id(ref_text):
            try:
                if str(policy.parse_reference(ref_text)) in self.book.tags():
                    return True
            except PolicyDenied:
                return False
        return self._shared(info)

    def _shared(self, info: dict) -> bool:
        labels = (info.get("Config") or info).get("Labels") or {}
        prefix = f"{self.learner.registry}/{policy.SHARED_NAMESPACE}/"
        return policy.LABEL_IMAGE in labels and policy.LABEL_SANDBOX not in labels and any(
            t.startswith(prefix) for t in info.get("RepoTags") or [])

    async def visible_image(self, ref: str) -> dict:
        info = await self.image_info(ref)
        if info is None or not self._image_visible(info, ref):
            raise not_found(f"No such image: {ref}")
        return info

    async def claim_name(self, ref: policy.Reference) -> None:
        """A learner may take an image name nobody else holds."""
        text = str(ref)
        taken = PolicyDenied(f"the image name {text} is in use by another learner; choose another name")
        if self.book.held_by_other(text):
            raise taken
        info = await self.image_info(text)
        if info is not None and text not in self.book.tags() and not self.learner.owns_labels(
                (info.get("Config") or {}).get("Labels")):
            raise taken

    async def count(self, path: str) -> int:
        query = [("filters", json.dumps({"label": self.learner.label_filters}))]
        if path == "/containers/json":
            query.append(("all", "1"))
        status, data = await self.engine("GET", path, query)
        if path == "/volumes" and isinstance(data, dict):
            data = data.get("Volumes") or []
        return len(data) if isinstance(data, list) else 0

    # -- handlers -------------------------------------------------------------------------------------
    async def h_not_found(self, req: Request) -> bool:
        raise not_found(f"no such object: {req.match.group('name')}")

    async def h_passthrough(self, req: Request) -> bool:
        return await self.forward(req)

    async def h_info(self, req: Request) -> bool:
        async def scrub(info):
            for key in ("Containers", "ContainersRunning", "ContainersPaused", "ContainersStopped", "Images"):
                info[key] = 0
            info["Name"] = "classroom"
            return info
        return await self.forward(req, transform=scrub)

    async def h_list_owned(self, req: Request) -> bool:
        query = req.query
        filters, patterns = await self.scoped_filters(query.get("filters"))
        pairs = [(k, v) for k, v in req.pairs if k != "filters"]
        pairs.append(("filters", policy.owner_filters(self.learner, filters)))
        if req.path == "/events":
            # Events name objects by their engine names (Actor.Attributes.name, container=...).
            return await self.forward(req, pairs=pairs, each_line=self.names.scrub, sanitize=self.scrub_errors)
        kind = req.path.split("/")[1]

        def wanted(item) -> bool:
            # The engine matches a name filter as a regular expression; containers' with and
            # without their leading "/".
            names = [form for n in item.get("Names") or [] for form in (n, n.lstrip("/"))] \
                if kind == "containers" else [item.get("Name") or ""]
            return not patterns or any(p.search(n) for p in patterns for n in names)  # values OR together

        # `docker ps -n N`: the engine would count before the name filter here; count after it.
        limit = query.get("limit", "") if patterns and kind == "containers" else ""
        if limit:  # and, as with a limit, containers in every state
            pairs = [(k, v) for k, v in pairs if k not in ("limit", "all")] + [("all", "1")]

        async def translate(data):
            data = self.names.scrub(data)
            if kind == "volumes" and isinstance(data, dict):
                data["Volumes"] = [v for v in data.get("Volumes") or [] if wanted(v)]
            elif isinstance(data, list):
                data = [item for item in data if wanted(item)]
                if limit.lstrip("-").isdigit() and int(limit) > 0:
                    data = data[:int(limit)]
            return data

        return await self.forward(req, pairs=pairs, transform=translate, sanitize=self.scrub_errors)

    async def scoped_filters(self, raw: str | None) -> tuple[str | None, list[re.Pattern]]:
        """The learner's list or events ``filters`` with names made the engine's. A ``name`` filter
        is taken out and returned as patterns, matched against the learner's names after the
        answer is translated (the engine would match the scoped name, and a learner's ``^site``
        never would); ``network``, ``volume`` and ``container`` values are given both as sent
        (ids) and scoped; ``before`` and ``since`` are resolved to the learner's container id."""
        if not raw:
            return raw, []
        filters = policy.loads_strict(raw.encode())
        if not isinstance(filters, dict):
            return raw, []  # owner_filters refuses it
        out: dict = {}
        patterns: list[re.Pattern] = []
        for key, value in filters.items():
            values = [k for k, v in value.items() if v] if isinstance(value, dict) else policy._str_list(value, f"filter {key}")
            if key == "name":
                patterns += [name_filter_pattern(v) for v in values]
                continue
            if key in ("network", "volume", "container"):
                values = [scoped for v in values for scoped in ([v, self.names.engine(v)]
                                                                 if v != self.learner.network else [v])]
            elif key in ("before", "since"):
                values = [(await self.own_container(v))["Id"] for v in values]
            out[key] = values
        return json.dumps(out), patterns

    async def h_prune(self, req: Request) -> bool:
        """``docker container|image|network|volume prune``, emulated for this learner's objects
        only: an engine-wide prune takes one lock for the whole engine, so during a wedge it hangs
        and every classmate's prune gets "a prune operation is already running". Here the
        learner's own objects are listed (owner labels) and removed one by one by id, each call
        with a deadline and all within a budget; the answer has the engine's prune shape, so the
        CLI prints "Deleted ..." and "Total reclaimed space" as usual."""
        prune, allowed = PRUNES[req.path.split("/")[1]]
        filters = json.loads(policy.owner_filters(self.learner, req.query.get("filters"), allowed=allowed))
        await req.discard_body()
        pruner = Pruner(self.engine, self.learner, self.book, self.names, filters,
                        asyncio.get_running_loop().time() + PRUNE_BUDGET)
        try:
            answer = await prune(pruner)
        except (TimeoutError, OSError, HttpError):
            raise PolicyDenied("the Docker engine did not answer in time; nothing more was pruned, try again "
                               "in a minute", status=503) from None
        req.writer.write(httpio.json_response(200, answer, close=req.close))
        await req.writer.drain()
        return not req.close

    async def h_events(self, req: Request) -> bool:
        return await self.h_list_owned(req)

    async def h_container_create(self, req: Request) -> bool:
        query = req.query
        plan = policy.plan_container_create(self.learner, await req.json_body(), self.limits)
        pairs = []
        name = ""
        if query.get("name"):
            name = policy.check_name(query["name"].lstrip("/"), "container")
            pairs.append(("name", self.names.engine(name)))
        if await self.count("/containers/json") >= self.limits.containers_max:
            raise PolicyDenied(f"you may have at most {self.limits.containers_max} containers; remove some (docker rm)")
        image = await self.visible_image(plan.image)
        policy.bound_inherited_healthcheck(plan.body, (image.get("Config") or {}).get("Healthcheck"), self.limits)
        if plan.published_ports:
            # Each published port is a docker-proxy process on the host: count the learner's others.
            status, mine = await self.engine("GET", "/containers/json", [
                ("all", "1"), ("filters", json.dumps({"label": self.learner.label_filters}))])
            if status != 200 or not isinstance(mine, list):
                raise PolicyDenied("could not count the ports your containers publish; try again", status=500)
            existing = 0
            for container in mine:
                status, info = await self.engine("GET", f"/containers/{container['Id']}/json")
                if status == 200:
                    existing += policy.published_ports((info.get("HostConfig") or {}).get("PortBindings"))
            policy.check_learner_ports(plan.published_ports, existing, self.limits)
        networks = {network: (await self.own_network(network))["Name"] for network in plan.networks}
        if plan.uses_own_network:
            await self.ensure_own_network()
        for volume in plan.volumes:
            await self.ensure_volume(volume)

        body = self.names.scope_create(plan.body, self.learner.network, name, networks)
        conflict = name_conflict_sanitizer(name)
        return await self.forward(req, pairs=pairs, body=body,
                                  sanitize=lambda status, data: self.names.scrub(conflict(status, data)))

    async def ensure_own_network(self) -> None:
        status, info = await self.engine("GET", f"/networks/{self.learner.network}")
        if status == 200:
            if not self.learner.owns_labels(info.get("Labels")):
                raise PolicyDenied("your network name is taken; ask your instructor")
            return
        async with subnet_lock():
            body = policy.with_subnet(policy.network_create_body(self.learner, self.learner.network),
                                      await self.free_subnet())
            status, data = await self.engine("POST", "/networks/create", body=body)
        if status not in (200, 201, 409):
            raise PolicyDenied(f"could not make your network: {data}", status=500)

    async def free_subnet(self) -> str:
        """A subnet for a new learner network, clear of every network on the engine."""
        status, networks = await self.engine("GET", "/networks")
        if status != 200:
            raise PolicyDenied("could not list networks to place yours; try again", status=500)
        taken = [config.get("Subnet", "") for network in networks
                 for config in ((network.get("IPAM") or {}).get("Config") or [])]
        return policy.free_subnet(self.limits.network_pool, self.limits.network_prefix, taken)

    async def ensure_volume(self, name: str) -> None:
        """The learner's volume ``name`` (their name), made if missing."""
        status, info = await self.engine("GET", f"/volumes/{quote(self.names.engine(name))}")
        if status == 200:
            if not self.learner.owns_labels(info.get("Labels")):
                raise PolicyDenied(f"the volume name {name} is in use by another learner; choose another name")
            return
        if await self.count("/volumes") >= self.limits.volumes_max:
            raise PolicyDenied(f"you may have at most {self.limits.volumes_max} volumes; remove some")
        await self.engine("POST", "/volumes/create",
                          body=policy.volume_create_body(self.learner, self.names.engine(name)))

    async def h_container_op(self, req: Request) -> bool:
        info = await self.own_container(req.match.group("id"))
        path = req.path.replace(f"/containers/{req.match.group('id')}", f"/containers/{info['Id']}", 1)
        if req.path.endswith("/start") or req.path.endswith("/rename"):
            await req.discard_body()  # a start body could carry an old-style HostConfig
        if req.path.endswith("/rename"):
            name = policy.check_name(req.query.get("name", "").lstrip("/"), "container")
            conflict = name_conflict_sanitizer(name, (info["Id"],))
            pairs = [(k, self.names.engine(name) if k == "name" else v) for k, v in req.pairs]
            return await self.forward(req, path=path, pairs=pairs,
                                      sanitize=lambda status, data: self.names.scrub(conflict(status, data)))
        if req.method == "GET" and path.endswith("/json"):
            return await self.forward(req, path=path, transform=self.scrub_answer, sanitize=self.scrub_errors)
        if req.method == "GET" and path.endswith("/stats"):  # "name" in each sample: docker stats shows it
            if req.query.get("stream") in ("0", "false", "False"):
                return await self.forward(req, path=path, transform=self.scrub_answer, sanitize=self.scrub_errors)
            return await self.forward(req, path=path, each_line=self.names.scrub, sanitize=self.scrub_errors)
        if req.method == "GET":
            return await self.forward(req, path=path)  # logs, export, top: streams or no names
        return await self.forward(req, path=path, sanitize=self.scrub_errors)

    async def h_container_archive(self, req: Request) -> bool:
        info = await self.own_container(req.match.group("id"))
        path = f"/containers/{info['Id']}/archive"
        if req.method == "PUT":
            return await self.forward(req, path=path, stream_limit=self.limits.upload_max)
        return await self.forward(req, path=path)

    def learner_name(self, info: dict) -> str:
        """A container's name as its learner gave it (no leading /)."""
        return self.names.learner(info.get("Name") or "").lstrip("/")

    async def h_container_update(self, req: Request) -> bool:
        info = await self.own_container(req.match.group("id"))
        body = policy.plan_container_update(await req.json_body(), self.limits)
        return await self.forward(req, path=f"/containers/{info['Id']}/update", body=body,
                                  sanitize=name_conflict_sanitizer("", (info["Id"],)))

    async def h_exec_create(self, req: Request) -> bool:
        info = await self.own_container(req.match.group("id"))
        body = policy.plan_exec_create(await req.json_body())
        return await self.forward(req, path=f"/containers/{info['Id']}/exec", body=body, sanitize=self.scrub_errors)

    async def h_exec_op(self, req: Request) -> bool:
        exec_id = req.match.group("id")
        if not ID_OR_NAME.match(exec_id):
            raise not_found(f"No such exec instance: {exec_id}")
        status, info = await self.engine("GET", f"/exec/{exec_id}/json")
        if status != 200 or not isinstance(info, dict) or not info.get("ContainerID"):
            raise not_found(f"No such exec instance: {exec_id}")
        try:
            await self.own_container(info["ContainerID"])
        except PolicyDenied:
            # Another learner's exec: "not found", naming only what the learner sent (the
            # container's id would tell them about a classmate's container).
            raise not_found(f"No such exec instance: {exec_id}") from None
        if req.path.endswith("/start"):
            body = policy.plan_exec_start(await req.json_body())
            return await self.forward(req, body=body)
        return await self.forward(req)

    async def h_images_list(self, req: Request) -> bool:
        tags = self.book.tags()
        prefix = f"{self.learner.registry}/{policy.SHARED_NAMESPACE}/"

        async def visible(images):
            out = []
            for image in images or []:
                labels = image.get("Labels") or {}
                repo_tags = [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"]
                if self.learner.owns_labels(labels):
                    kept = [t for t in repo_tags if not self.book.held_by_other(t)]
                elif policy.LABEL_SANDBOX in labels:
                    continue
                else:
                    mine = [t for t in repo_tags if t in tags]
                    shared = [t for t in repo_tags if t.startswith(prefix)] if policy.LABEL_IMAGE in labels else []
                    kept = shared + [t for t in mine if t not in shared]
                    if not kept:
                        continue
                repos = {t.rsplit(":", 1)[0] for t in kept}
                image["RepoTags"] = kept or None
                image["RepoDigests"] = [d for d in image.get("RepoDigests") or [] if d.split("@", 1)[0] in repos]
                image["Containers"] = -1
                out.append(image)
            return out

        return await self.forward(req, transform=visible)

    async def h_image_read(self, req: Request) -> bool:
        name = req.match.group("name")
        info = await self.visible_image(name)
        return await self.forward(req, path=req.path.replace(name, info["Id"], 1) if name != info["Id"] else None)

    async def h_image_tag(self, req: Request) -> bool:
        name = req.match.group("name")
        await self.visible_image(name)
        query = req.query
        target = policy.parse_reference(query.get("repo", ""), query.get("tag", ""))
        policy.check_tag_target(self.learner, target)
        await self.claim_name(target)
        self.book.add(str(target))
        return await self.forward(req, pairs=[("repo", target.name), ("tag", target.tag)])

    async def h_image_push(self, req: Request) -> bool:
        name = req.match.group("name")
        tag = req.query.get("tag", "")
        ref = policy.parse_reference(name, tag)
        policy.check_push(self.learner, ref)
        if not tag and ":" not in name.rsplit("/", 1)[-1] and not ref.digest:
            # `docker push --all-tags`: every local tag of a repository in the learner's own
            # namespace, and only this learner can make tags there (check_tag_target).
            return await self.forward(req, path=f"/images/{ref.name}/push", pairs=[])
        await self.visible_image(str(ref))
        return await self.forward(req, path=f"/images/{ref.name}/push", pairs=[("tag", ref.tag)])

    async def h_image_pull(self, req: Request) -> bool:
        query = req.query
        if query.get("fromSrc") or query.get("repo") and not query.get("fromImage"):
            raise PolicyDenied("docker import is not allowed")
        from_image, tag = query.get("fromImage", ""), query.get("tag", "")
        if tag.startswith("sha256:") and "@" not in from_image:
            from_image, tag = f"{from_image}@{tag}", ""  # the CLI sends a digest as the tag
        ref = policy.parse_reference(from_image, tag if "@" not in from_image else "")
        policy.check_pull(self.learner, ref)
        own = not ref.path.startswith(f"{policy.SHARED_NAMESPACE}/")
        if own and not ref.digest:
            await self.claim_name(ref)
            self.book.add(str(ref))
        pairs = [("fromImage", ref.name), ("tag", ref.digest or ref.tag)]
        return await self.forward(req, pairs=pairs)

    async def h_image_remove(self, req: Request) -> bool:
        name = req.match.group("name")
        info = await self.image_info(name)
        if info is None:
            raise not_found(f"No such image: {name}")
        owned = self.learner.owns_labels((info.get("Config") or {}).get("Labels"))
        text = None
        if not policy.looks_like_image_id(name):
            text = str(policy.parse_reference(name))
        if text and text in self.book.tags():
            self.book.discard(text)
            pairs = [(k, v) for k, v in req.pairs if k == "noprune"]
            return await self.forward(req, path=f"/images/{text}", pairs=pairs)
        if owned:
            return await self.forward(req)
        if self._image_visible(info, name):
            raise PolicyDenied(f"{name} is a shared lesson image and cannot be removed")
        raise not_found(f"No such image: {name}")

    async def h_build(self, req: Request) -> bool:
        pairs, tags = policy.plan_build(self.learner, req.pairs, self.limits)
        for tag in tags:
            await self.claim_name(tag)
        if await self.count("/images/json") >= self.limits.images_max:
            raise PolicyDenied(f"you may have at most {self.limits.images_max} images; remove some (docker rmi)")
        status, images = await self.engine("GET", "/images/json", [
            ("filters", json.dumps({"label": self.learner.label_filters}))])
        if sum(i.get("Size", 0) for i in images or []) > self.limits.images_bytes_max:
            raise PolicyDenied(f"your images use more than {self.limits.images_bytes_max >> 20} MiB; remove some")
        with tempfile.SpooledTemporaryFile(max_size=BUILD_SPOOL_IN_MEMORY) as context, \
                tempfile.SpooledTemporaryFile(max_size=BUILD_SPOOL_IN_MEMORY) as sent:
            await httpio.spool_body(req.reader, req.framing, self.limits.build_context_max, context,
                                    stall=self.connection_limits.stall_timeout)
            req.body_consumed = True
            query = policy.query_dict(pairs)
            path, text = await asyncio.to_thread(build.read_dockerfile, context, query["dockerfile"])
            try:
                plan = dockerfile.plan(text, json.loads(query["buildargs"]))
                pins, triggers = {}, {}
                for ref in plan.images:
                    if (info := await self.usable_base(ref)) is not None:
                        pins[ref] = info["Id"]  # what was checked is what is built, even if the tag moves
                        triggers[ref] = (info.get("Config") or {}).get("OnBuild") or []
                for ref in plan.trigger_images(triggers):
                    await self.usable_base(ref)
                # The sandbox's labels after every FROM: no cache entry or parent image is shared
                # with a classmate (the engine's own `labels` only reach the last instruction).
                written = plan.render({policy.LABEL_SANDBOX: self.learner.sandbox_id,
                                       policy.LABEL_CREATED: policy.CREATED_VALUE}, pins)
            except DockerfileError as exc:
                raise PolicyDenied(str(exc)) from None
            size = await asyncio.to_thread(build.rewrite_context, context, written, sent, path)
            pairs = [(k, v) for k, v in pairs if k != "dockerfile"] + [("dockerfile", build.DOCKERFILE)]
            for tag in tags:
                self.book.add(str(tag))
            return await self.forward(req, pairs=pairs, upload=(sent, size))

    async def usable_base(self, ref: str) -> dict | None:
        """A Dockerfile may build on an image this learner sees (its engine inspect is returned,
        to pin the build to it), or one it may pull (None: the builder pulls what is missing);
        never on a classmate's image, present or not."""
        if (info := await self.image_info(ref)) is not None and self._image_visible(info, ref):
            return info
        try:
            policy.check_pull(self.learner, policy.parse_reference(ref))
        except PolicyDenied:
            raise PolicyDenied(
                f"the Dockerfile uses {ref}, which is not an image of yours: build FROM an image you "
                f"built or pulled, or {self.learner.registry}/library/NAME") from None
        return None

    async def h_network_create(self, req: Request) -> bool:
        body = policy.plan_network_create(self.learner, await req.json_body())
        body["Name"] = self.names.engine(body["Name"])
        if await self.count("/networks") >= self.limits.networks_max:
            raise PolicyDenied(f"you may have at most {self.limits.networks_max} networks; remove some")
        # Choosing and creating under one lock: two learners never race for the same subnet.
        async with subnet_lock():
            return await self.forward(req, body=policy.with_subnet(body, await self.free_subnet()),
                                      sanitize=self.scrub_errors)

    async def h_network_op(self, req: Request) -> bool:
        info = await self.own_network(req.match.group("id"))
        return await self.forward(req, path=f"/networks/{info['Id']}", transform=self.scrub_answer,
                                  sanitize=self.scrub_errors)

    async def h_network_connect(self, req: Request) -> bool:
        info = await self.own_network(req.match.group("id"))
        body = policy.canonical(await req.json_body(), {"Container": None, "EndpointConfig": None, "Force": None},
                                "network connect")
        container = await self.own_container(policy._str(body.get("Container", ""), "Container"))
        clean = {"Container": container["Id"]}
        if req.path.endswith("/connect"):
            endpoint = policy.canonical(body.get("EndpointConfig"), {
                "Aliases": None, "IPAMConfig": "--ip is not allowed", "Links": "--link is not allowed",
                "DriverOpts": "network driver options are not allowed"}, "EndpointConfig")
            aliases = policy._str_list(endpoint.get("Aliases"), "Aliases")
            # Found by the name the learner gave it (the engine's own DNS name is the scoped one).
            if (name := self.learner_name(container)) and name not in aliases:
                aliases.append(name)
            clean["EndpointConfig"] = {"Aliases": aliases}
        else:
            clean["Force"] = bool(body.get("Force"))
        return await self.forward(req, path=req.path.replace(req.match.group("id"), info["Id"], 1), body=clean,
                                  sanitize=self.scrub_errors)

    async def h_volume_create(self, req: Request) -> bool:
        body = policy.plan_volume_create(self.learner, await req.json_body())
        name, body["Name"] = body["Name"], self.names.engine(body["Name"])
        status, info = await self.engine("GET", f"/volumes/{quote(body['Name'])}")
        if status == 200 and not self.learner.owns_labels(info.get("Labels")):
            raise PolicyDenied(f"the volume name {name} is in use by another learner; choose another name")
        if status != 200 and await self.count("/volumes") >= self.limits.volumes_max:
            raise PolicyDenied(f"you may have at most {self.limits.volumes_max} volumes; remove some")
        return await self.forward(req, body=body, transform=self.scrub_answer, sanitize=self.scrub_errors)

    async def h_volume_op(self, req: Request) -> bool:
        info = await self.own_volume(req.match.group("id"))
        return await self.forward(req, path=f"/volumes/{quote(info['Name'])}", transform=self.scrub_answer,
                                  sanitize=self.scrub_errors)


async def _send_upload(up_writer, spooled) -> None:
    """A spooled body (a rewritten build context) to the engine, read off the event loop."""
    while block := await asyncio.to_thread(spooled.read, httpio.COPY_CHUNK * 4):
        up_writer.write(block)
        await up_writer.drain()


async def _relay_rewritten(req: Request, head, status: int, framing, up_reader, transform, sanitize) -> bool:
    """A JSON answer read whole and rewritten: ``transform`` on a 200, ``sanitize`` on an error."""
    raw = await httpio.read_response_body(up_reader, framing)
    try:
        data = json.loads(raw) if raw.strip() else None
    except ValueError:
        if status == 200:
            raise HttpError(502, "the engine sent an answer that is not JSON") from None
        data = raw.decode(errors="replace")
    data = await transform(data) if status == 200 else sanitize(status, data)
    out = policy.dumps(data)
    keep = [(k, v) for k, v in head.headers
            if k.lower() not in ("content-length", "transfer-encoding", "connection")]
    req.writer.write(httpio.encode_head(head.start, keep + [("Content-Length", str(len(out)))]) + out)
    await req.writer.drain()
    return not req.close


async def _relay_as_is(req: Request, head, framing, up_reader, up_writer) -> bool:
    """The engine's answer passed on unchanged but for its Connection header."""
    keep = [(k, v) for k, v in head.headers if k.lower() != "connection"]
    if framing[0] == "eof" or req.close:
        keep.append(("Connection", "close"))
    req.writer.write(httpio.encode_head(head.start, keep))
    if framing[0] == "eof":
        await httpio.copy_to_eof(up_reader, req.writer)
        return False
    # Streams and big bodies (docker cp out, export, logs) on the sockets; small JSON as before.
    direct = framing[0] == "chunked" or framing[1] > httpio.COPY_CHUNK
    if not direct or await httpio.relay_body_direct(up_reader, up_writer, req.writer, framing,
                                                    upload=False) is None:
        await httpio.copy_body(up_reader, req.writer, framing)
        await req.writer.drain()
    return not req.close


# Every handler a route may name (``routes.ROUTE_TABLE``), bound once: an unknown name stops the import.
HANDLERS = {
    "not_found": LearnerProxy.h_not_found,
    "passthrough": LearnerProxy.h_passthrough,
    "info": LearnerProxy.h_info,
    "list_owned": LearnerProxy.h_list_owned,
    "prune": LearnerProxy.h_prune,
    "events": LearnerProxy.h_events,
    "container_create": LearnerProxy.h_container_create,
    "container_op": LearnerProxy.h_container_op,
    "container_archive": LearnerProxy.h_container_archive,
    "container_update": LearnerProxy.h_container_update,
    "exec_create": LearnerProxy.h_exec_create,
    "exec_op": LearnerProxy.h_exec_op,
    "images_list": LearnerProxy.h_images_list,
    "image_read": LearnerProxy.h_image_read,
    "image_tag": LearnerProxy.h_image_tag,
    "image_push": LearnerProxy.h_image_push,
    "image_pull": LearnerProxy.h_image_pull,
    "image_remove": LearnerProxy.h_image_remove,
    "build": LearnerProxy.h_build,
    "network_create": LearnerProxy.h_network_create,
    "network_op": LearnerProxy.h_network_op,
    "network_connect": LearnerProxy.h_network_connect,
    "volume_create": LearnerProxy.h_volume_create,
    "volume_op": LearnerProxy.h_volume_op,
}
ROUTES = compile_routes(ROUTE_TABLE, HANDLERS)
