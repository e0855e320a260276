"""The Kubernetes API on the event loop: REST calls, watches and attach/exec websockets (aiohttp).

Why not the official client's own calls: they block, so each would hold an executor thread, and
its ``stream`` helper runs a websocket in a thread per console. Thirty learners typing would queue
behind a handful of threads. The official client is still what reads the configuration (any
kubeconfig, exec plugins, in-cluster service-account token); this module only speaks HTTP with it.

Streams use the channel protocol (``v5.channel.k8s.io``, falling back to ``v4``): each binary
message starts with its channel byte — 0 stdin, 1 stdout, 2 stderr, 3 the final status (JSON),
4 resize (JSON ``{"Width", "Height"}``), 255 (v5 only) closing a channel.

The API server answers an attach's websocket before the kubelet has joined it to the container
(it opens its own stream to the kubelet only then), and output in between never reaches it:
:meth:`ChannelStream.wait_joined` returns once the kubelet has the attach's streams; the runtime
joins it to the TTY a moment after that, which only output on the attach itself proves.

Every call has a deadline: :class:`EngineTimeout` past it; :class:`EngineUnavailable` when the
API server does not answer at all; 403 becomes a :class:`ClusterPermissionError` that names the
verb and resource the server's account lacks.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import os
import ssl
from pathlib import Path
from urllib.parse import quote, urlencode

import aiohttp
import yarl

from .base import BackendError, EngineTimeout, EngineUnavailable

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
STREAM_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, STATUS, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
#: A size every runtime ignores (the kubelet's and containerd's resize handlers skip sizes under 1):
#: what :meth:`ChannelStream.wait_joined` sends to learn when the resize channel is connected.
IGNORED_SIZE = b'{"Width":0,"Height":0}'
CALL_SECONDS = 30.0


class ClusterPermissionError(BackendError):
    """The server's own Kubernetes account lacks a permission (the message names it)."""


@dataclasses.dataclass
class ClusterConfig:
    """Where the API server is and how to prove who we are, read once from the configuration."""

    host: str
    ssl_context: ssl.SSLContext | bool
    configuration: object  # kubernetes.client.Configuration: refreshes tokens (exec plugins, in-cluster)
    source: str  # the kubeconfig path, or "in-cluster"

    def headers(self) -> dict[str, str]:
        """The Authorization header, the token renewed first if it expires (exec plugins, the
        in-cluster token file). The renewal hook runs once per call: the client's own
        ``get_api_key_with_prefix`` runs it again for each name it tries, and a kubeconfig's hook
        rebuilds the configuration's settings each time, on the event loop, for every API call."""
        configuration = self.configuration
        hook = getattr(configuration, "refresh_api_key_hook", None)
        if hook is not None:
            hook(configuration)
        keys, prefixes = configuration.api_key, configuration.api_key_prefix
        for name in ("authorization", "BearerToken"):
            if keys.get(name):
                prefix = prefixes.get(name)
                return {"Authorization": f"{prefix} {keys[name]}" if prefix else keys[name]}
        return {}


def kubeconfig_path(configured: str, environ=os.environ) -> Path:
    """The kubeconfig in use: the setting, else $KUBECONFIG's first file, else ~/.kube/config."""
    if configured:
        return Path(configured).expanduser()
    first = next((p for p in environ.get("KUBECONFIG", "").split(os.pathsep) if p), "")
    return Path(first or "~/.kube/config").expanduser()


def in_cluster(configured: str, environ=os.environ) -> bool:
    """Whether to use the pod's own service account: the site runs as a pod
    (``KUBERNETES_SERVICE_HOST`` is set) and no kubeconfig file is configured or present."""
    return bool(environ.get("KUBERNETES_SERVICE_HOST")) and not kubeconfig_path(configured, environ).is_file()


def load_config(configured: str = "", context: str = "", environ=os.environ) -> ClusterConfig:
    """Read the cluster configuration (``BackendError`` with the fix when there is none)."""
    from kubernetes import client
    from kubernetes import config as k8s_config

    configuration = client.Configuration()
    if in_cluster(configured, environ):
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except k8s_config.ConfigException as exc:
            raise BackendError(f"Running in a pod, but its service-account credentials cannot be read "
                               f"({SERVICE_ACCOUNT_DIR}): {exc}") from exc
        source = "in-cluster"
    else:
        path = kubeconfig_path(configured, environ)
        if not path.is_file():
            raise BackendError(
                f"No kubeconfig at {path}: sandbox pods need a cluster. This machine's own writes one "
                "(`.venv/bin/python -m cluster up`, which `make run` starts); or set TUTORIAL_KUBECONFIG to a "
                "kubeconfig file (kind, k3s, a managed cluster: see docs/kubernetes.md).")
        try:
            k8s_config.load_kube_config(config_file=str(path), context=context or None,
                                        client_configuration=configuration, persist_config=False)
        except k8s_config.ConfigException as exc:
            where = f"context {context!r} of " if context else ""
            raise BackendError(f"Cannot use {where}kubeconfig {path}: {exc}") from exc
        source = str(path)
    if configuration.verify_ssl:
        context_ = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
        if not configuration.assert_hostname and configuration.assert_hostname is not None:
            context_.check_hostname = False
    else:
        context_ = ssl.create_default_context()
        context_.check_hostname = False
        context_.verify_mode = ssl.CERT_NONE
    if configuration.cert_file:
        context_.load_cert_chain(configuration.cert_file, configuration.key_file)
    return ClusterConfig(configuration.host.rstrip("/"), context_, configuration, source)


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def json(self):
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    def message(self) -> str:
        """The human part of an API error (its Status ``message``), else the body's start."""
        data = self.json()
        if isinstance(data, dict) and data.get("message"):
            return data["message"]
        return self.body[:300].decode(errors="replace") or str(self.status)


class ClusterAPI:
    """One cluster, reached on the event loop. ``config`` is read on first use."""

    def __init__(self, load=load_config):
        self._load = load
        self._config: ClusterConfig | None = None
        self._sessions: dict[int, aiohttp.ClientSession] = {}

    @property
    def config(self) -> ClusterConfig:
        if self._config is None:
            self._config = self._load()
        return self._config

    def _session(self) -> aiohttp.ClientSession:
        # One session per event loop: test runs (and management commands) each bring their own loop.
        loop = asyncio.get_running_loop()
        session = self._sessions.get(id(loop))
        if session is None or session.closed or getattr(session, "_loop", loop) is not loop:
            # No connection limit: every console viewer holds a websocket for as long as it is open.
            connector = aiohttp.TCPConnector(ssl=self.config.ssl_context, limit=0)
            session = aiohttp.ClientSession(connector=connector)
            self._sessions = {key: s for key, s in self._sessions.items() if not s.closed}
            self._sessions[id(loop)] = session
        return session

    def unreachable(self, exc: BaseException) -> str:
        host = self._config.host if self._config else "its API address"
        return (f"The Kubernetes cluster does not answer at {host} ({type(exc).__name__}: {exc}). Is it running? "
                "The local cluster: `.venv/bin/python -m cluster status`; another cluster: check TUTORIAL_KUBECONFIG.")

    def forbidden(self, verb: str, resource: str, namespace: str | None, answer: Answer) -> ClusterPermissionError:
        where = f" in namespace {namespace}" if namespace else " (cluster-wide)"
        return ClusterPermissionError(
            f"The server's Kubernetes account ({self.config.source}) may not {verb} {resource}{where}: grant it "
            f"that permission (docs/kubernetes.md lists what sandbox pods need). The API said: {answer.message()}")

    async def request(self, method: str, path: str, params: dict | None = None, *, body=None,
                      timeout: float = CALL_SECONDS, content_type: str = "application/json") -> Answer:
        """One REST call within ``timeout`` seconds; any status is returned, the caller decides."""
        url = self.config.host + path
        headers = {**self.config.headers(), "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        try:
            async with asyncio.timeout(timeout):
                async with self._session().request(method, url, params=params, data=data, headers=headers) as response:
                    return Answer(response.status, await response.read())
        except TimeoutError:
            raise EngineTimeout(f"the Kubernetes API did not answer {method} {path} within {timeout:g}s") from None
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise EngineUnavailable(self.unreachable(exc)) from exc

    async def watch(self, path: str, params: dict, *, timeout: float):
        """Yield the events (dicts) of a watch on ``path`` until ``timeout`` seconds pass (then
        :class:`EngineTimeout`) or the caller stops iterating."""
        url = self.config.host + path
        params = {**params, "watch": "1", "timeoutSeconds": str(max(1, int(timeout) + 1))}
        try:
            async with asyncio.timeout(timeout):
                async with self._session().get(url, params=params, headers=self.config.headers()) as response:
                    if response.status != 200:
                        raise BackendError(f"the Kubernetes API refused to watch {path}: "
                                           f"{Answer(response.status, await response.read()).message()}")
                    async for line in response.content:
                        if line.strip():
                            yield json.loads(line)
        except TimeoutError:
            raise EngineTimeout(f"the Kubernetes API did not finish watching {path} within {timeout:g}s") from None
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise EngineUnavailable(self.unreachable(exc)) from exc

    async def stream(self, path: str, params: list[tuple[str, str]], *, timeout: float = CALL_SECONDS) -> "ChannelStream":
        """Open an attach or exec websocket (``params`` may repeat keys, e.g. ``command``)."""
        # Encoded here once (a script's quotes, newlines and `$` included); yarl must not requote it.
        url = yarl.URL(self.config.host.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + path + "?"
                       + urlencode(params, quote_via=quote), encoded=True)
        try:
            async with asyncio.timeout(timeout):
                socket = await self._session().ws_connect(url, protocols=STREAM_PROTOCOLS, headers=self.config.headers(),
                                                          autoping=False, max_msg_size=0)
        except TimeoutError:
            raise EngineTimeout(f"the Kubernetes API did not open {path} within {timeout:g}s") from None
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 404:
                raise BackendError("the sandbox is gone") from exc
            if exc.status == 403:
                raise ClusterPermissionError(f"The server's Kubernetes account may not open {path} (403): grant it "
                                             "create on pods/attach and pods/exec.") from exc
            raise BackendError(f"the Kubernetes API refused {path}: {exc.status} {exc.message}") from exc
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise EngineUnavailable(self.unreachable(exc)) from exc
        return ChannelStream(socket)

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions = {}


class ChannelStream:
    """One attach or exec websocket, read as (channel, bytes) messages. Pings are answered here
    (the socket's own autoping would swallow the pong that :meth:`wait_joined` waits for)."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse):
        self.socket = socket
        self.v5 = socket.protocol == "v5.channel.k8s.io"
        self.status: dict | None = None
        self._early: collections.deque[tuple[int, bytes]] = collections.deque()  # read while waiting to be joined
        self._ended = False
        self.output_seen = False  # any output at all: only a joined attach gets it

    async def receive(self) -> tuple[int, bytes] | None:
        """The next (channel, payload); ``None`` once the stream has ended. A status message
        (channel 3) is kept in ``status`` and ends the stream."""
        if self._early:
            return self._early.popleft()
        while not self._ended:
            message = await self._next()
            if isinstance(message, tuple):  # not a pong that came after output had proved the join
                return message
        return None

    async def _next(self) -> tuple[int, bytes] | bytes | None:
        """One websocket message: (channel, payload), a pong's payload (bytes), or None for a
        message that carries nothing (a status, a ping answered); ``_ended`` once it has ended."""
        try:
            message = await self.socket.receive()
        except (aiohttp.ClientError, OSError, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError):
                raise
            self._ended = True
            return None
        if message.type == aiohttp.WSMsgType.BINARY:
            data = message.data
            if not data:
                return None
            channel, payload = data[0], data[1:]
            if channel == STATUS:
                try:
                    self.status = json.loads(payload or b"{}")
                except ValueError:
                    self.status = {"status": "Failure", "message": payload.decode(errors="replace")}
                return None
            if payload and channel in (STDOUT, STDERR):
                self.output_seen = True
            return channel, payload
        if message.type == aiohttp.WSMsgType.PING:
            with contextlib.suppress(aiohttp.ClientError, OSError, ConnectionResetError):
                await self.socket.pong(message.data)
            return None
        if message.type == aiohttp.WSMsgType.PONG:
            return bytes(message.data)
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING,
                            aiohttp.WSMsgType.ERROR):
            self._ended = True
        return None

    async def wait_joined(self, timeout: float = CALL_SECONDS) -> None:
        """Return once the kubelet has this attach's streams (the runtime joins it to the TTY
        right after), or once output has come, which only a joined attach gets; output meanwhile
        is kept for :meth:`receive`.

        No message says so: the API server (since 1.30 it translates the websocket into a SPDY
        stream to the kubelet) answers the websocket first and connects to the kubelet after.
        What can be seen is the order in which it reads: it reads one message at a time, and a
        resize waits until the resize before it has been taken by the stream to the kubelet,
        which exists only once the kubelet has accepted all of the attach's streams. So: two
        resizes that every runtime ignores (size 0), then a ping; the pong comes back only once
        the second resize has been read, that is once the kubelet's streams are there. (Output
        arriving first proves it sooner: only a joined attach gets any.) Servers without the
        translation join the attach before they read its messages, so it holds there too."""
        nonce = os.urandom(8)
        try:
            async with asyncio.timeout(timeout):
                await self.send(RESIZE, IGNORED_SIZE)
                await self.send(RESIZE, IGNORED_SIZE)
                await self.socket.ping(nonce)
                while not self._ended:
                    message = await self._next()
                    if message is None:
                        continue
                    if isinstance(message, bytes):
                        if message == nonce:
                            return
                        continue
                    self._early.append(message)
                    if self.output_seen:
                        return
        except TimeoutError:
            raise EngineTimeout(f"the Kubernetes API did not join the console to the sandbox within {timeout:g}s") from None
        except (aiohttp.ClientError, OSError, ConnectionResetError) as exc:
            raise BackendError(f"the console has gone ({exc})") from exc

    async def wait_output(self, seconds: float) -> bool:
        """Whether any output arrives within ``seconds`` (kept for :meth:`receive`)."""
        try:
            async with asyncio.timeout(seconds):
                while not self.output_seen and not self._ended:
                    message = await self._next()
                    if isinstance(message, tuple):
                        self._early.append(message)
        except TimeoutError:
            pass
        return self.output_seen

    async def send(self, channel: int, payload: bytes) -> None:
        if self.socket.closed:
            raise BackendError("the console has gone")
        try:
            await self.socket.send_bytes(bytes([channel]) + payload)
        except (aiohttp.ClientError, OSError, ConnectionResetError) as exc:
            raise BackendError(f"the console has gone ({exc})") from exc

    async def resize(self, cols: int, rows: int) -> None:
        await self.send(RESIZE, json.dumps({"Width": int(cols), "Height": int(rows)}).encode())

    async def close_stdin(self) -> bool:
        """End the remote stdin (v5 only); whether it could."""
        if not self.v5:
            return False
        await self.send(CLOSE, bytes([STDIN]))
        return True

    async def close(self) -> None:
        if not self.socket.closed:
            try:
                async with asyncio.timeout(5):
                    await self.socket.close()
            except (TimeoutError, aiohttp.ClientError, OSError):
                pass

    def exit_code(self) -> int | None:
        """The exec's exit code from its final status: 0 on success, the code on failure, None
        when the status did not say (the stream was cut)."""
        status = self.status
        if not status:
            return None
        if status.get("status") == "Success":
            return 0
        for cause in (status.get("details") or {}).get("causes") or []:
            if cause.get("reason") == "ExitCode":
                try:
                    return int(cause.get("message"))
                except (TypeError, ValueError):
                    return None
        return None
