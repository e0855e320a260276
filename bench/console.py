"""Console benchmark against the real engine and a real daphne site.

Measures sandbox ready time (start request -> first prompt byte on the websocket), keystroke echo
through the websocket vs. directly on the engine's attach socket, and output throughput to a client
that acks like xterm.js vs. the engine's own attach socket read directly in the same run (same
container, same command, once the websocket has closed: an unread attach would halt the other),
with the server's RSS growth. Prints JSON with --json.

    .venv/bin/python bench/console.py --json

``--soak SECONDS`` instead serves the site as ``make run`` does (two daphne processes, a private
Redis) and keeps ``--consoles`` consoles open that long, mostly idle, each typing one probe key
every ``--probe-every`` seconds: consoles closed by the server, keystroke echo while idle, and
the server processes' RSS over the run.

    .venv/bin/python bench/console.py --soak 600 --consoles 20 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import time

import aiohttp
import psutil
import yarl

from _site import echo_times_ms, percentile, running_site, session_cookie

LESSON = "what-is-a-container"
PROMPT = re.compile(rb"\$ ")


class Learner:
    def __init__(self, base_url: str):
        self.base_url = base_url
        self.http = None
        self.ws = None
        self.sandbox_id = None

    @classmethod
    async def signed_in(cls, base_url: str, name: str) -> "Learner":
        learner = cls(base_url)
        # unsafe=True: aiohttp otherwise ignores cookies set by an IP-address host (127.0.0.1).
        learner.http = aiohttp.ClientSession(cookies=await session_cookie(name), cookie_jar=aiohttp.CookieJar(unsafe=True))
        return learner

    async def start(self) -> str:
        async with self.http.get(f"{self.base_url}/lessons/{LESSON}/") as response:
            await response.read()
        token = self.http.cookie_jar.filter_cookies(yarl.URL(self.base_url))["csrftoken"].value
        async with self.http.post(
            f"{self.base_url}/sandboxes/start/{LESSON}/", headers={"X-CSRFToken": token, "HX-Request": "true"}
        ) as response:
            body = await response.text()
        match = re.search(r'data-sandbox-id="([0-9a-f-]+)"', body)
        if not match:
            raise RuntimeError(f"no sandbox started: {body[:500]}")
        self.sandbox_id = match.group(1)
        return self.sandbox_id

    async def attach(self) -> None:
        url = self.base_url.replace("http", "ws") + f"/ws/sandboxes/{self.sandbox_id}/console/"
        self.ws = await self.http.ws_connect(url, origin=self.base_url, max_msg_size=0)
        await self.ws.send_str(json.dumps({"type": "resize", "cols": 120, "rows": 40}))

    async def read_until(self, pattern: re.Pattern, timeout: float = 30) -> bytes:
        seen = b""
        deadline = time.monotonic() + timeout
        while not pattern.search(seen):
            if time.monotonic() > deadline:  # control messages (timer, queue) keep arriving
                raise TimeoutError(f"{pattern.pattern!r} not seen in {timeout} s: {seen[-200:]!r}")
            message = await self.ws.receive(timeout=max(0.01, deadline - time.monotonic()))
            if message.type == aiohttp.WSMsgType.BINARY:
                seen += message.data
                await self.ws.send_str(json.dumps({"type": "ack", "bytes": len(message.data)}))
            elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                raise RuntimeError(f"console closed: {seen[-200:]!r}")
        return seen

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        await self.http.close()


async def ready_time(base_url: str, name: str) -> float:
    learner = await Learner.signed_in(base_url, name)
    try:
        started = time.perf_counter()
        await learner.start()
        await learner.attach()
        await learner.read_until(PROMPT)
        return time.perf_counter() - started
    finally:
        await learner.close()


async def echo_times(learner: Learner, count: int) -> list[float]:
    times = []
    for i in range(count):
        char = "abcdefghij"[i % 10]
        started = time.perf_counter()
        await learner.ws.send_bytes(char.encode())
        await learner.read_until(re.compile(re.escape(char.encode())), timeout=10)
        times.append((time.perf_counter() - started) * 1000)
        # 100 keystrokes a second at most: faster than any typist, and under the flood limit.
        await asyncio.sleep(max(0.0, 0.01 - (time.perf_counter() - started)))
    await learner.ws.send_bytes(b"\x15")  # Ctrl-U: clear the typed line
    return times


async def raw_echo_times(container_id: str, count: int) -> list[float]:
    from django.conf import settings

    from sandbox.engine import client as engine_client

    stream = await engine_client.hijack(settings.DOCKER_HOST, f"/containers/{container_id}/attach",
                                        {"stream": 1, "stdin": 1, "stdout": 1, "stderr": 1})
    try:
        return await echo_times_ms(stream, count)
    finally:
        await stream.close()


def flood_command(megabytes: int) -> bytes:
    """``megabytes`` of output, then a marker the typed command itself does not contain."""
    return f"head -c {megabytes * 1_000_000} /dev/zero | tr '\\0' x; echo; echo DONE-$((1+1))\r".encode()


async def throughput(learner: Learner, daphne_pid: int, megabytes: int) -> tuple[float, float]:
    server = psutil.Process(daphne_pid)
    rss_before = server.memory_info().rss
    peak = rss_before
    await learner.ws.send_bytes(flood_command(megabytes))
    started = time.perf_counter()
    received = 0
    seen_tail = b""
    while b"DONE-2" not in seen_tail:
        message = await learner.ws.receive(timeout=120)
        if message.type != aiohttp.WSMsgType.BINARY:
            continue
        received += len(message.data)
        seen_tail = (seen_tail + message.data)[-64:]
        await learner.ws.send_str(json.dumps({"type": "ack", "bytes": len(message.data)}))
        if received % (4 << 20) < len(message.data):
            peak = max(peak, server.memory_info().rss)
    elapsed = time.perf_counter() - started
    peak = max(peak, server.memory_info().rss)
    return received / 1e6 / elapsed, (peak - rss_before) / 2**20


async def raw_throughput(container_id: str, megabytes: int) -> float:
    """The same flood read straight off the engine's attach socket, as fast as it comes (MB/s)."""
    from django.conf import settings

    from sandbox.engine import client as engine_client

    stream = await engine_client.hijack(settings.DOCKER_HOST, f"/containers/{container_id}/attach",
                                        {"stream": 1, "stdin": 1, "stdout": 1, "stderr": 1})
    try:
        await stream.write(flood_command(megabytes))
        started = time.perf_counter()
        received = 0
        seen_tail = b""
        while b"DONE-2" not in seen_tail:
            chunk = await asyncio.wait_for(stream.read(65536), 120)
            if not chunk:
                raise RuntimeError("the engine closed the attach stream")
            received += len(chunk)
            seen_tail = (seen_tail + chunk)[-64:]
        return received / 1e6 / (time.perf_counter() - started)
    finally:
        await stream.close()


def daphne_rss(server_pid: int) -> int:
    """Resident memory of the site's daphne processes (the server itself, or serve.py's children)."""
    server = psutil.Process(server_pid)
    children = [c for c in server.children() if "daphne" in " ".join(c.cmdline())]
    return sum(p.memory_info().rss for p in (children or [server]))


async def idle_console(learner: Learner, until: float, every: float, echo: list[float], closes: list) -> None:
    """Keep one console open until ``until``: ack output, type a probe key every ``every`` s."""
    rng = random.Random(learner.sandbox_id)
    next_probe = time.monotonic() + rng.uniform(0, every)
    probe = None
    while time.monotonic() < until:
        timeout = max(0.05, min(until, next_probe) - time.monotonic())
        try:
            message = await learner.ws.receive(timeout=timeout)
        except asyncio.TimeoutError:
            message = None
        if message is not None and message.type == aiohttp.WSMsgType.BINARY:
            await learner.ws.send_str(json.dumps({"type": "ack", "bytes": len(message.data)}))
            if probe and probe[0] in message.data:
                echo.append((time.perf_counter() - probe[1]) * 1000)
                probe = None
                await learner.ws.send_bytes(b"\x15")  # Ctrl-U: clear the typed line
        elif message is not None and message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                                      aiohttp.WSMsgType.ERROR):
            closes.append(learner.ws.close_code)
            return
        if time.monotonic() >= next_probe and probe is None:
            char = rng.choice(b"uvwxyz")
            probe = (bytes([char]), time.perf_counter())
            await learner.ws.send_bytes(probe[0])
            next_probe = time.monotonic() + every


async def soak(args) -> dict:
    os.environ.setdefault("TUTORIAL_SANDBOXES_PER_ADDRESS", str(args.consoles + 10))
    async with running_site(processes=2) as (base_url, server_pid):
        learners = []
        for i in range(args.consoles):
            learner = await Learner.signed_in(base_url, f"soak-{i}")
            await learner.start()
            await learner.attach()
            await learner.read_until(PROMPT)
            learners.append(learner)
        rss = [daphne_rss(server_pid)]
        echo: list[float] = []
        closes: list = []
        until = time.monotonic() + args.soak
        watchers = [asyncio.create_task(idle_console(learner, until, args.probe_every, echo, closes))
                    for learner in learners]
        while time.monotonic() < until:
            await asyncio.sleep(min(30, max(0.1, until - time.monotonic())))
            rss.append(daphne_rss(server_pid))
        await asyncio.gather(*watchers)
        for learner in learners:
            await learner.close()
    return {
        "soak_seconds": args.soak,
        "consoles": args.consoles,
        "server_closes": len(closes),
        "close_codes": sorted(set(closes), key=str),
        "echo_probes": len(echo),
        "echo_p50_ms": round(statistics.median(echo), 2) if echo else None,
        "echo_p99_ms": round(percentile(echo, 99), 2) if echo else None,
        "server_rss_start_mb": round(rss[0] / 2**20, 1),
        "server_rss_end_mb": round(rss[-1] / 2**20, 1),
        "server_rss_max_mb": round(max(rss) / 2**20, 1),
    }


async def main(args) -> dict:
    if args.soak:
        return await soak(args)
    async with running_site() as (base_url, daphne_pid):
        await ready_time(base_url, "warmup")
        ready = [await ready_time(base_url, f"ready-{i}") for i in range(args.runs)]
        concurrent = await asyncio.gather(*(ready_time(base_url, f"conc-{i}") for i in range(10)))

        learner = await Learner.signed_in(base_url, "echo")
        await learner.start()
        await learner.attach()
        await learner.read_until(PROMPT)
        from sandbox.models import Sandbox

        sandbox = await Sandbox.objects.aget(pk=learner.sandbox_id)
        echo = await echo_times(learner, args.keystrokes)
        raw = await raw_echo_times(sandbox.engine_ref, args.keystrokes)
        site_runs = [await throughput(learner, daphne_pid, args.megabytes) for _ in range(args.repeats)]
        await learner.close()
        # The websocket's attach is closed now: nothing else holds the engine's copy of the output.
        raw_runs = [await raw_throughput(sandbox.engine_ref, args.megabytes) for _ in range(args.repeats)]
        mb_s = statistics.median(mb for mb, _ in site_runs)
        rss_growth = max(growth for _, growth in site_runs)
        raw_mb_s = statistics.median(raw_runs)

    return {
        "ready_p50_s": round(statistics.median(ready), 3),
        "ready_p95_s": round(percentile(ready, 95), 3),
        "ready10_p95_s": round(percentile(list(concurrent), 95), 3),
        "echo_p50_ms": round(statistics.median(echo), 2),
        "echo_p99_ms": round(percentile(echo, 99), 2),
        "raw_echo_p50_ms": round(statistics.median(raw), 2),
        "raw_echo_p99_ms": round(percentile(raw, 99), 2),
        "added_echo_p99_ms": round(percentile(echo, 99) - percentile(raw, 99), 2),
        "throughput_mb_s": round(mb_s, 1),
        "raw_throughput_mb_s": round(raw_mb_s, 1),
        "throughput_ratio": round(mb_s / raw_mb_s, 3),
        "server_rss_growth_mb": round(rss_growth, 1),
        "runs": args.runs,
        "keystrokes": args.keystrokes,
        "megabytes": args.megabytes,
        "throughput_repeats": args.repeats,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keystrokes", type=int, default=1000)
    parser.add_argument("--megabytes", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3, help="throughput runs each, site and raw (median)")
    parser.add_argument("--soak", type=float, default=0, help="seconds of the idle soak (0: the other figures)")
    parser.add_argument("--consoles", type=int, default=20, help="consoles open during --soak")
    parser.add_argument("--probe-every", type=float, default=15, help="seconds between a console's probe keys")
    options = parser.parse_args()
    result = asyncio.run(main(options))
    print(json.dumps(result) if options.json else json.dumps(result, indent=2))
