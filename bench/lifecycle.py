"""Lifecycle benchmark: sandbox ready time with and without the warm pool, and idle memory.

Against the real engine and a real site (its own SQLite), served as ``make run`` serves it (one
daphne process per core with a private Redis when redis-server is installed; ``--processes``).
Ready time is what a learner waits: the Start request -> the first prompt byte on the console
websocket. For 1, 10 and 30 learners starting at once, cold (a container created per start) and warm (claimed from a pool
pre-filled to that size). Idle memory is each idle sandbox's cgroup memory (``usage`` minus page
cache, as ``docker stats`` shows), averaged over the 30 idle sandboxes of the last round.
``server_cpu_ms_per_warm_start``: CPU of the daphne processes (user + system) from the moment a
warm round's learners press Start to their last prompt, per start. Over the same span, per start,
``engine_cpu_ms_per_warm_start`` (dockerd, containerd and the containers' shims: the attach and the
log replay), ``redis_cpu_ms_per_warm_start`` and ``bench_cpu_ms_per_warm_start`` (this process, the
learners' side) say where the rest of the machine's two cores went. ``warmN_timeline_p50_s`` and
``_p95_s``: seconds from Start to each step on the way to the prompt (``MARKS``) in the warm rounds.

    .venv/bin/python bench/lifecycle.py --json

``--profile DIR`` records the daphne processes with py-spy (``pip install py-spy``; not a project
requirement) from the moment a warm round's learners press Start, one file of collapsed stacks per
process in DIR. Only threads holding the GIL are sampled: the profile shows CPU, not waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

import aiohttp
import psutil
import yarl

sys.path.insert(0, os.path.dirname(__file__))
from _site import add_processes_option, percentile, run_and_print, running_site, session_cookie  # noqa: E402

LESSON = "what-is-a-container"
PROMPT = re.compile(rb"\$ ")
_names = itertools.count()
ANSWERED: list[float] = []  # Start request -> page answered, of the last round (the rest is the console)
SERVERS: list[psutil.Process] = []  # the daphne processes
SERVER_CPU: list[float] = []  # seconds of their CPU per round, Start pressed -> the last prompt
OTHER_CPU: dict[str, float] = {}  # seconds of CPU of the other parts in the warm rounds, by part
TIMELINE: list[dict[str, float]] = []  # each learner's marks in the warm rounds of one count
# A learner's steps from Start to the prompt, in order: the Start answered, the console's
# websocket accepted, the server's attach open ("running"), the first terminal byte, the prompt.
MARKS = ("answered", "accepted", "attached", "first_byte", "prompt")


def server_cpu_seconds() -> float:
    total = 0.0
    for process in SERVERS:
        try:
            times = process.cpu_times()
        except psutil.Error:  # a process that died (serve.py starts another)
            continue
        total += times.user + times.system
    return total


def other_cpu_seconds() -> dict[str, float]:
    """CPU seconds so far of the engine's processes (the shims of exited containers are gone, but
    a round's warm sandboxes all live until it ends), Redis, and this process."""
    totals = {"engine": 0.0, "redis": 0.0, "bench": 0.0}
    me = os.getpid()
    for process in psutil.process_iter(["name", "pid", "cpu_times"]):
        name, times = process.info["name"] or "", process.info["cpu_times"]
        if times is None:
            continue
        if name in ("dockerd", "containerd") or name.startswith("containerd-shim"):
            part = "engine"
        elif name.startswith("redis-server"):
            part = "redis"
        elif process.info["pid"] == me:
            part = "bench"
        else:
            continue
        totals[part] += times.user + times.system
    return totals


class Learner:
    """A signed-in learner on the lesson page, CSRF token in hand, about to press Start."""

    async def prepare(self, base_url: str) -> "Learner":
        self.base_url = base_url
        cookies = await session_cookie(f"bench-{next(_names)}")
        self.http = aiohttp.ClientSession(cookies=cookies, cookie_jar=aiohttp.CookieJar(unsafe=True))
        async with self.http.get(f"{base_url}/lessons/{LESSON}/") as response:
            await response.read()
        self.token = self.http.cookie_jar.filter_cookies(yarl.URL(base_url))["csrftoken"].value
        return self

    async def start(self, go: asyncio.Event) -> tuple[float, str]:
        """Seconds from Start to the first prompt byte on the console; and the sandbox id."""
        await go.wait()  # every learner of the round presses Start at the same moment
        started = time.perf_counter()
        # Seconds from Start to each step on the way to the prompt (``MARKS``), for the timeline.
        self.marks: dict[str, float] = {}
        async with self.http.post(f"{self.base_url}/sandboxes/start/{LESSON}/",
                                  headers={"X-CSRFToken": self.token, "HX-Request": "true"}) as response:
            body = await response.text()
        self.answered = self.marks["answered"] = time.perf_counter() - started
        match = re.search(r'data-sandbox-id="([0-9a-f-]+)"', body)
        if not match:
            raise RuntimeError(f"no sandbox started: {body[:400]}")
        url = self.base_url.replace("http", "ws") + f"/ws/sandboxes/{match.group(1)}/console/"
        async with self.http.ws_connect(url, origin=self.base_url, max_msg_size=0) as ws:
            self.marks["accepted"] = time.perf_counter() - started
            await ws.send_str(json.dumps({"type": "resize", "cols": 120, "rows": 40}))
            seen = b""
            while not PROMPT.search(seen):
                message = await asyncio.wait_for(ws.receive(), 60)
                if message.type == aiohttp.WSMsgType.BINARY:
                    self.marks.setdefault("first_byte", time.perf_counter() - started)
                    seen += message.data
                    await ws.send_str(json.dumps({"type": "ack", "bytes": len(message.data)}))
                elif message.type == aiohttp.WSMsgType.TEXT and '"running"' in message.data:
                    # Sent once the server's attach (and the log replay) is open.
                    self.marks.setdefault("attached", time.perf_counter() - started)
                elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    raise RuntimeError(f"console closed before the prompt: {message}")
            elapsed = self.marks["prompt"] = time.perf_counter() - started
        await self.http.close()
        return elapsed, match.group(1)


async def ready_time(base_url: str) -> tuple[float, str]:
    go = asyncio.Event()
    go.set()
    return await (await Learner().prepare(base_url)).start(go)


async def stop_all() -> None:
    from sandbox import pool, services, tasks
    from sandbox.models import Sandbox

    async for sandbox in Sandbox.objects.filter(owner__isnull=False, state__in=("starting", "running")):
        await services.stop_sandbox(sandbox)
    await tasks.wait_for_background()
    await pool.drain({})


async def fill_pool(count: int) -> None:
    from django.conf import settings

    from sandbox import pool

    settings.SANDBOX_WARM_POOL = {"base": count}
    made = await pool.refill()
    settings.SANDBOX_WARM_POOL = {}
    if made < count:
        raise RuntimeError(f"the pool made {made} of {count} sandboxes")
    await asyncio.sleep(1)  # let the shells settle, as a pool filled minutes before a class would


async def round_of(base_url: str, count: int, repeat: int = 1, before_go=None) -> tuple[list[float], list[str]]:
    """``before_go``: awaited once the learners are on the lesson page, just before they press Start."""
    times, ids = [], []
    for _ in range(repeat):
        learners = [await Learner().prepare(base_url) for _ in range(count)]
        go = asyncio.Event()
        pending = [asyncio.create_task(learner.start(go)) for learner in learners]
        await asyncio.sleep(0.2)
        if before_go is not None:
            await before_go()
        cpu_before, others_before = server_cpu_seconds(), other_cpu_seconds()
        go.set()
        results = await asyncio.gather(*pending)
        SERVER_CPU.append(server_cpu_seconds() - cpu_before)
        for part, seconds in other_cpu_seconds().items():
            OTHER_CPU[part] = OTHER_CPU.get(part, 0.0) + seconds - others_before[part]
        TIMELINE.extend(learner.marks for learner in learners)
        ANSWERED.extend(learner.answered for learner in learners)
        times += [t for t, _ in results]
        ids += [i for _, i in results]
    return times, ids


def idle_memory_mib(sandbox_ids: list[str]) -> tuple[float, float]:
    """Mean MiB per idle sandbox: inside its cgroup, and its containerd shim on the host (which
    the cgroup does not count but the machine pays for)."""
    import docker
    import psutil
    from django.conf import settings

    client = docker.DockerClient(base_url=settings.DOCKER_HOST, timeout=60)
    used, shims = [], []
    shim_rss = {}
    for process in psutil.process_iter(["name", "cmdline", "memory_info"]):
        if (process.info["name"] or "").startswith("containerd-shim") and process.info["cmdline"]:
            cmd = process.info["cmdline"]
            if "-id" in cmd:
                shim_rss[cmd[cmd.index("-id") + 1]] = process.info["memory_info"].rss / 2**20
    for sandbox_id in sandbox_ids:
        container = client.containers.get(f"tutorial-sbx-{sandbox_id}")
        stats = container.stats(stream=False)["memory_stats"]
        cache = (stats.get("stats") or {}).get("inactive_file", (stats.get("stats") or {}).get("cache", 0))
        used.append((stats.get("usage", 0) - cache) / 2**20)
        shims.append(shim_rss.get(container.id, 0.0))
    return statistics.mean(used), statistics.mean(shims)


async def main(args) -> dict:
    os.environ.update({"TUTORIAL_SANDBOX_CAPACITY": "200", "TUTORIAL_WARM_POOL": "", "TUTORIAL_SANDBOXES_PER_USER": "5"})
    result: dict = {"server_processes": args.processes}
    async with running_site(args.processes) as (base_url, server_pid):
        server = psutil.Process(server_pid)
        SERVERS[:] = [c for c in server.children() if "daphne" in " ".join(c.cmdline())] or [server]
        await ready_time(base_url)  # warm up the site and the image cache
        await stop_all()
        warm_cpu, warm_starts, profilers, other_cpu = 0.0, 0, [], {}
        if args.profile:
            os.makedirs(args.profile, exist_ok=True)
        for count in args.counts:
            repeat = args.single_runs if count == 1 else args.rounds
            cold = []
            if not args.warm_only:
                cold, _ = await round_of(base_url, count, repeat)
                await stop_all()
            warm = []
            ANSWERED.clear()
            TIMELINE.clear()
            for _ in range(repeat):
                await fill_pool(count)

                async def start_profilers():
                    # Only the Starts are recorded, not the learners' lesson pages before them.
                    profilers[:] = [start_profiler(process.pid, args.profile, cpu_only=True) for process in SERVERS]
                    await asyncio.sleep(1)  # py-spy attaches

                SERVER_CPU.clear()
                OTHER_CPU.clear()  # the cold round before counted there too
                times, ids = await round_of(base_url, count, before_go=start_profilers if args.profile else None)
                for profiler in profilers:
                    profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
                    profiler.wait(60)
                warm_cpu += sum(SERVER_CPU)
                for part, seconds in OTHER_CPU.items():
                    other_cpu[part] = other_cpu.get(part, 0.0) + seconds
                warm_starts += len(times)
                warm += times
                if count == max(args.counts):
                    await asyncio.sleep(args.settle)
                    inside, shim = await asyncio.to_thread(idle_memory_mib, ids)
                    rss = inside + shim
                    result["idle_cgroup_mb_per_sandbox"] = round(inside, 2)
                    result["idle_shim_rss_mb_per_sandbox"] = round(shim, 2)
                    result["idle_rss_mb_per_sandbox"] = round(rss, 2)
                    result["idle_sandboxes_per_20gib"] = int(20 * 1024 // rss) if rss > 0 else None
                await stop_all()
            result[f"warm{count}_start_answer_p95_s"] = round(percentile(ANSWERED, 95), 3)
            if TIMELINE:
                for name, pct in (("p50", 50), ("p95", 95)):
                    result[f"warm{count}_timeline_{name}_s"] = {
                        mark: round(percentile([marks[mark] for marks in TIMELINE if mark in marks], pct), 3)
                        for mark in MARKS}
            for name, values in (("cold", cold), ("warm", warm)):
                if not values:
                    continue
                result[f"{name}{count}_p50_s"] = round(statistics.median(values), 3)
                result[f"{name}{count}_p95_s"] = round(percentile(values, 95), 3)
        result["server_cpu_ms_per_warm_start"] = round(warm_cpu * 1000 / warm_starts, 1) if warm_starts else None
        for part, seconds in sorted(other_cpu.items()):
            result[f"{part}_cpu_ms_per_warm_start"] = round(seconds * 1000 / warm_starts, 1) if warm_starts else None
    result["cpus"] = os.cpu_count()
    return result


def start_profiler(pid: int, directory: str, *, cpu_only: bool = False) -> subprocess.Popen:
    """py-spy sampling one daphne process (appending its stacks to DIR/daphne-PID.txt); with
    ``cpu_only``, only the threads holding the GIL (where the CPU goes, not where threads wait),
    without pausing the process at each sample."""
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy on PATH (pip install py-spy)")
    path = os.path.join(directory, f"daphne-{pid}-{time.time_ns()}.txt")
    options = ["--gil", "--nonblocking"] if cpu_only else []
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "200", *options, "--output", path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 10, 30])
    parser.add_argument("--single-runs", type=int, default=5, help="sequential runs for the 1-learner figures")
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds of each larger count (one round of 30 is 30 samples: its p95 is the 29th)")
    parser.add_argument("--warm-only", action="store_true", help="skip the cold rounds (to measure the pool alone)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds idle before memory is read")
    parser.add_argument("--profile", metavar="DIR", help="record the daphne processes with py-spy during warm rounds")
    add_processes_option(parser)
    run_and_print(main, parser.parse_args())
