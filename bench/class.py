"""Class benchmark: a whole class on the site as ``make run`` serves it, with the real engine.

The site runs as ``make run`` runs it: scripts/serve.py (one daphne per core, at most 4, with a
private Redis when redis-server is installed; ``--processes``), DEBUG off with collected static
files, and the reaper beside it (``manage.py reap_sandboxes --loop``'s own loop, in a process of
its own, with each pass timed). The warm pool is sized for the class through the setting the
reaper refills it from (``TUTORIAL_WARM_POOL=base=N``) and filled before the class arrives, as an
instructor's pool is minutes before a lesson.

An instructor creates a classroom for a plain (Docker) lesson and opens its live dashboard. Then N
learners arrive at once: each joins as a guest through the join link, opens the lesson, presses
Start and waits for the prompt on the console websocket. For ``--seconds`` each then types at
5 keys a second (``echo <token>`` and Enter, so a command every few seconds) and presses Check
every 20 s (``--check-every``).

    .venv/bin/python bench/class.py --json [--learners 100] [--seconds 180]

Figures: ``start_p95_s`` Start -> first prompt byte; ``echo_p50_ms``/``echo_p99_ms`` a key sent
-> its echo on the websocket; ``check_p95_ms`` the Check request -> its answer;
``dashboard_update_p95_ms`` the Check's answer -> its attempt on the instructor's dashboard (0 when
the dashboard had it first); ``reaper_pass_p95_s`` one reaper pass (``reap_once``; the reaper logs
no pass time, so its own loop is run here with the pass timed); ``server_cpu_per_learner_ms`` CPU
of the daphne processes and the reaper per learner per second of class (ms/s: 10 is 1 % of a
core); ``unexpected_closes`` consoles or dashboards the server closed; ``lost_keys`` keys whose
echo never came plus commands whose output never came; ``process_share_min`` the smallest share
of the consoles any one daphne process holds; ``load_generator_cpu_cores`` and
``engine_cpu_cores`` the cores this process (the simulated class) and the engine used meanwhile.

What the machine did meanwhile, from the engine's events during the typing:
``pool_created_during_class`` (containers made for the warm pool), ``checkpoints_during_class``
(home copies), ``check_execs_during_class``; each Check split by its exec's events
(``check_before_exec_*``, ``check_exec_create_to_start_*``, ``check_exec_run_*``,
``check_after_exec_*``); echoes and Checks sent while a container was being made against the rest
(``echo_p99_ms_while_creating`` / ``echo_p99_ms_otherwise``, the same for ``check_p95_ms``); and
the reaper's passes during the class with what they checkpointed and refilled.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil
import yarl

sys.path.insert(0, os.path.dirname(__file__))
from _site import ROOT, add_processes_option, percentile, run_and_print, running_site, session_cookie  # noqa: E402

LESSON = "what-is-a-container"
PROMPT = re.compile(rb"\$ ")
KEYS_PER_SECOND = 5
ECHO_TIMEOUT_SECONDS = 5
OUTPUT_TIMEOUT_SECONDS = 10

# The reaper's own loop (sandbox.reaper.run_loop, as `reap_sandboxes --loop` runs it) with each
# pass timed: one JSON line per pass on stdout (its duration, wall-clock bounds and report).
REAPER_DRIVER = """
import asyncio, json, sys, time
import django
django.setup()
from sandbox import reaper
real_pass = reaper.reap_once
async def timed_pass(*args, **kwargs):
    started, began = time.perf_counter(), time.time()
    report = None
    try:
        report = await real_pass(*args, **kwargs)
        return report
    finally:
        print(json.dumps({"pass_s": time.perf_counter() - started, "began": began, "ended": time.time(),
                          "report": report.summary() if report is not None else {}}), flush=True)
reaper.reap_once = timed_pass
asyncio.run(reaper.run_loop())
"""


class Figures:
    def __init__(self):
        self.starts: list[float] = []
        self.echo: list[float] = []
        self.echo_at: list[tuple[float, float]] = []  # (time.time() the key was sent, its echo in ms)
        self.checks: list[float] = []
        self.check_errors = 0
        self.answered: list[tuple[int, float, float]] = []  # (user id, check sent, check answered)
        self.checks_wall: list[tuple[str, float, float]] = []  # (sandbox id, sent, answered) in time.time()
        self.dashboard: dict[int, list[float]] = {}  # user id -> attempt events received (perf_counter)
        self.unexpected_closes = 0
        self.lost_keys = 0


class ClassLearner:
    def __init__(self, base_url: str, index: int, figures: Figures):
        self.base_url = base_url
        self.index = index
        self.name = f"learner-{index}"
        self.figures = figures
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.ws = None
        self.user_id = None
        self.sandbox_id = None
        self.output = bytearray()
        self.arrived = asyncio.Event()
        self.closed_by_server = False
        self.done = False

    def token(self) -> str:
        return self.http.cookie_jar.filter_cookies(yarl.URL(self.base_url))["csrftoken"].value

    async def join(self, code: str) -> None:
        """As a visitor with the join link: a guest with a display name, in the classroom."""
        async with self.http.get(f"{self.base_url}/classrooms/join/{code}/") as response:
            await response.read()
        async with self.http.post(f"{self.base_url}/classrooms/join/{code}/", data={"display_name": self.name},
                                  headers={"X-CSRFToken": self.token(), "Referer": self.base_url + "/"}) as response:
            body = await response.text()
            if response.status != 200 or "/mine/" not in str(response.url):
                raise RuntimeError(f"{self.name} could not join ({response.status}): {body[:300]}")
        async with self.http.get(f"{self.base_url}/lessons/{LESSON}/") as response:
            await response.read()

    async def start(self, go: asyncio.Event) -> None:
        await go.wait()
        started = time.perf_counter()
        async with self.http.post(f"{self.base_url}/sandboxes/start/{LESSON}/",
                                  headers={"X-CSRFToken": self.token(), "HX-Request": "true"}) as response:
            body = await response.text()
        match = re.search(r'data-sandbox-id="([0-9a-f-]+)"', body)
        if not match:
            raise RuntimeError(f"{self.name}: no sandbox started: {body[:400]}")
        self.sandbox_id = match.group(1)
        url = self.base_url.replace("http", "ws") + f"/ws/sandboxes/{match.group(1)}/console/"
        self.ws = await self.http.ws_connect(url, origin=self.base_url, max_msg_size=0)
        await self.ws.send_str(json.dumps({"type": "resize", "cols": 120, "rows": 40}))
        self.reader = asyncio.create_task(self.read())
        await self.wait_for(PROMPT, 0, 60)
        self.figures.starts.append(time.perf_counter() - started)

    async def read(self) -> None:
        """Take every frame (acked, as xterm.js does) into ``output``; note a close we did not ask for."""
        while True:
            message = await self.ws.receive()
            if message.type == aiohttp.WSMsgType.BINARY:
                self.output += message.data
                self.arrived.set()
                await self.ws.send_str(json.dumps({"type": "ack", "bytes": len(message.data)}))
            elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                if not self.done:
                    self.closed_by_server = True
                    self.figures.unexpected_closes += 1
                self.arrived.set()
                return

    async def wait_for(self, pattern: re.Pattern, since: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not pattern.search(self.output, since):
            if self.closed_by_server or time.monotonic() > deadline:
                return False
            self.arrived.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), max(0.01, deadline - time.monotonic()))
        return True

    async def type_commands(self, until: float) -> None:
        """5 keys a second: ``echo <token>``, Enter, the token's line back, and again."""
        pace = 1 / KEYS_PER_SECOND
        for n in itertools.count():
            if time.monotonic() >= until or self.closed_by_server:
                return
            token = f"k{self.index}x{n}"
            for char in f"echo {token}":
                sent_at, sent_wall = time.monotonic(), time.time()
                mark = len(self.output)
                started = time.perf_counter()
                await self.ws.send_bytes(char.encode())
                if await self.wait_for(re.compile(re.escape(char.encode())), mark, ECHO_TIMEOUT_SECONDS):
                    self.figures.echo.append((time.perf_counter() - started) * 1000)
                    self.figures.echo_at.append((sent_wall, self.figures.echo[-1]))
                else:
                    self.figures.lost_keys += 1
                await asyncio.sleep(max(0.0, pace - (time.monotonic() - sent_at)))
            mark = len(self.output)
            await self.ws.send_bytes(b"\r")
            if not await self.wait_for(re.compile(re.escape(f"\n{token}\r\n".encode()) + rb".*\$ ", re.S), mark,
                                       OUTPUT_TIMEOUT_SECONDS):
                self.figures.lost_keys += 1  # the command's line never came back whole
                await self.ws.send_bytes(b"\x15")  # Ctrl-U: a clean line for the next one
            await asyncio.sleep(pace)

    async def press_check(self, until: float, step: str, every: float) -> None:
        await asyncio.sleep(random.uniform(0, every))
        while time.monotonic() < until and not self.closed_by_server:
            sent, sent_wall = time.perf_counter(), time.time()
            async with self.http.post(f"{self.base_url}/lessons/{LESSON}/steps/{step}/check/",
                                      headers={"X-CSRFToken": self.token(), "HX-Request": "true"}) as response:
                await response.read()
                answered = time.perf_counter()
                if response.status == 200:
                    self.figures.checks.append((answered - sent) * 1000)
                    self.figures.answered.append((self.user_id, sent, answered))
                    self.figures.checks_wall.append((self.sandbox_id, sent_wall, time.time()))
                else:
                    self.figures.check_errors += 1
                    print(f"{self.name}: Check answered {response.status}", file=sys.stderr)
            await asyncio.sleep(max(0.0, every - (time.perf_counter() - sent)))

    async def close(self) -> None:
        self.done = True
        if self.ws is not None:
            await self.ws.close()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader
        await self.http.close()


async def watch_dashboard(ws, figures: Figures, done: asyncio.Event) -> None:
    while True:
        message = await ws.receive()
        if message.type == aiohttp.WSMsgType.TEXT:
            event = json.loads(message.data)
            if event.get("kind") == "attempt":
                figures.dashboard.setdefault(event.get("user"), []).append(time.perf_counter())
        elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            if not done.is_set():
                figures.unexpected_closes += 1
            return


def dashboard_latencies(figures: Figures) -> list[float]:
    """Each answered Check -> the first attempt event of that learner sent after it was pressed."""
    latencies = []
    for user_id, sent, answered in figures.answered:
        seen = [t for t in figures.dashboard.get(user_id, []) if t >= sent]
        if seen:
            latencies.append(max(0.0, min(seen) - answered) * 1000)
    return latencies


def served_by(server_pid: int) -> list[psutil.Process]:
    server = psutil.Process(server_pid)
    return [c for c in server.children() if "daphne" in " ".join(c.cmdline())] or [server]


def consoles_held(daphnes: list[psutil.Process], learners: list[ClassLearner]) -> list[int]:
    """How many of the learners' console websockets each daphne process holds (by client port)."""
    ports = {learner.ws.get_extra_info("sockname")[1] for learner in learners if learner.ws is not None}
    return [sum(1 for c in daphne.net_connections(kind="tcp") if c.raddr and c.raddr.port in ports)
            for daphne in daphnes]


def engine_processes() -> list[psutil.Process]:
    """The Docker engine's processes on this machine: dockerd, containerd and its shims."""
    names = ("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2")
    return [p for p in psutil.process_iter(["name"]) if (p.info["name"] or "") in names]


def cpu_seconds(processes: list[psutil.Process], *, children: bool = False) -> float:
    """CPU seconds of ``processes``; with ``children``, also of their children that ended (the
    shims' runc: every container create and every exec is a runc process that ends at once)."""
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
            if children:
                total += times.children_user + times.children_system
    return total


def watch_engine(install: str, log_path: Path) -> subprocess.Popen:
    """The engine's container events of this install from now on, one JSON line each, into
    ``log_path`` (``docker events``, live: the engine keeps only its last 256 events for later)."""
    return subprocess.Popen(["docker", "events", "--filter", "type=container",
                             "--filter", f"label=tutorial.install={install}", "--format", "{{json .}}"],
                            stdout=log_path.open("wb"), stderr=subprocess.DEVNULL)


def engine_events(log_path: Path, since: float, until: float) -> list[dict]:
    events = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    return [e for e in events if since <= e["timeNano"] / 1e9 <= until]


def engine_work(events: list[dict]) -> dict:
    """What the engine was asked to do during the class: containers created (those for the warm
    pool carry owner 0), home checkpoints (``tar -c`` execs) and Checks (``tutorial-check`` execs)."""
    def action(event):
        return event.get("Action") or event.get("status") or ""

    creates = [e for e in events if action(e) == "create"]
    return {
        "engine_creates_during_class": len(creates),
        "pool_created_during_class": sum(1 for e in creates if e["Actor"]["Attributes"].get("tutorial.owner") == "0"),
        "checkpoints_during_class": sum(1 for e in events if action(e).startswith("exec_create: tar -c")),
        "check_execs_during_class": sum(1 for e in events if action(e).startswith("exec_create:")
                                        and "tutorial-check" in action(e)),
    }


def check_parts(events: list[dict], checks: list[tuple[str, float, float]]) -> dict:
    """Each Check split by the engine's exec events in its sandbox: before the exec is created
    (the site's reads), create -> start, start -> the script's end (the script and the shim),
    and after it (exit code, activity, the attempt's row, the page), in ms (p50 and p95)."""
    execs: dict[str, dict] = {}
    for event in events:
        attributes = event["Actor"]["Attributes"]
        exec_id, name = attributes.get("execID"), event.get("Action") or event.get("status") or ""
        if not exec_id:
            continue
        entry = execs.setdefault(exec_id, {"sandbox": attributes.get("tutorial.sandbox")})
        kind = name.split(":", 1)[0]
        entry[kind] = event["timeNano"] / 1e9
        if kind == "exec_create":
            entry["check"] = "tutorial-check" in name
    by_sandbox: dict[str, list[dict]] = {}
    for entry in execs.values():
        if entry.get("check") and {"exec_create", "exec_start", "exec_die"} <= entry.keys():
            by_sandbox.setdefault(entry["sandbox"], []).append(entry)
    parts: dict[str, list[float]] = {"before_exec": [], "exec_create_to_start": [], "exec_run": [], "after_exec": []}
    for sandbox_id, sent, answered in checks:
        found = [e for e in by_sandbox.get(sandbox_id, []) if sent <= e["exec_create"] <= answered]
        if not found:
            continue
        found.sort(key=lambda e: e["exec_create"])
        e = found[-1]  # the check (a learner's first Check runs the step's setup before it)
        parts["before_exec"].append(found[0]["exec_create"] - sent)
        parts["exec_create_to_start"].append(e["exec_start"] - e["exec_create"])
        parts["exec_run"].append(e["exec_die"] - e["exec_start"])
        parts["after_exec"].append(answered - e["exec_die"])
    result = {}
    for name, values in parts.items():
        ms = [v * 1000 for v in values]
        result[f"check_{name}_p50_ms"] = round(statistics.median(ms), 1) if ms else None
        result[f"check_{name}_p95_ms"] = round(percentile(ms, 95), 1) if ms else None
    result["checks_split"] = len(parts["exec_run"])
    return result


def while_creating(events: list[dict], samples: list[tuple[float, float]], checks) -> dict:
    """Echoes and Checks while the engine was making a container (its create -> start, plus a
    second for the shell it starts) against the rest of the class: what the pool's refill costs."""
    began: dict[str, float] = {}
    spans = []
    for event in sorted(events, key=lambda e: e["timeNano"]):
        name = event.get("Action") or event.get("status") or ""
        if name == "create":
            began[event["id"]] = event["timeNano"] / 1e9
        elif name == "start" and event["id"] in began:
            spans.append((began.pop(event["id"]), event["timeNano"] / 1e9 + 1))

    def busy(at: float) -> bool:
        return any(start <= at <= end for start, end in spans)

    result = {}
    for label, values in (("echo", samples), ("check", [(sent, (answered - sent) * 1000) for _i, sent, answered in checks])):
        inside = [ms for at, ms in values if busy(at)]
        outside = [ms for at, ms in values if not busy(at)]
        q = 99 if label == "echo" else 95
        result[f"{label}_p{q}_ms_while_creating"] = round(percentile(inside, q), 1) if inside else None
        result[f"{label}_p{q}_ms_otherwise"] = round(percentile(outside, q), 1) if outside else None
        result[f"{label}_samples_while_creating"] = len(inside)
    covered, reach = 0.0, float("-inf")
    for start, end in sorted(spans):  # the union of the spans: creations overlap
        if end > reach:
            covered += end - max(start, reach)
            reach = end
    result["seconds_creating"] = round(covered, 1)
    return result


async def main(args) -> dict:
    learners_wanted = args.learners
    os.environ.update({
        "TUTORIAL_WARM_POOL": f"base={learners_wanted}",
        "TUTORIAL_SANDBOX_CAPACITY": str(2 * learners_wanted + 10),  # the class and the pool refilling behind it
        "TUTORIAL_SANDBOXES_PER_USER": "5",
        # The whole class is one address (loopback): no per-address limits on guests and joins.
        "TUTORIAL_RATE_GUESTS": "off",
        "TUTORIAL_RATE_JOINS": "off",
    })
    figures = Figures()
    result: dict = {"learners": learners_wanted, "seconds": args.seconds, "server_processes": args.processes}
    async with running_site(args.processes) as (base_url, server_pid):
        from asgiref.sync import sync_to_async
        from django.conf import settings
        from django.contrib.auth import get_user_model

        from classroom import roster as classroom_roster
        from classroom.models import Membership
        from lessons.catalogue import get_lesson
        from sandbox import pool

        step = get_lesson(LESSON).steps[0].slug
        made = await pool.refill()  # SANDBOX_WARM_POOL from TUTORIAL_WARM_POOL above
        if made < learners_wanted:
            raise RuntimeError(f"the warm pool made {made} of {learners_wanted} sandboxes")
        await asyncio.sleep(1)  # the shells settle, as in a pool filled before the class
        reaper_log = Path(tempfile.mkdtemp(prefix="tutorial-bench-reaper-")) / "passes.jsonl"
        reaper = subprocess.Popen([sys.executable, "-c", REAPER_DRIVER], cwd=ROOT, stdout=reaper_log.open("wb"),
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            cookies = await session_cookie("instructor")

            @sync_to_async
            def classroom():
                teacher = get_user_model().objects.get(username="instructor")
                classroom_roster.grant_instructor(teacher)
                return classroom_roster.create_classroom(teacher, "bench class", [LESSON])

            room = await classroom()
            instructor = aiohttp.ClientSession(cookies=cookies, cookie_jar=aiohttp.CookieJar(unsafe=True))
            dashboard = await instructor.ws_connect(
                base_url.replace("http", "ws") + f"/ws/classrooms/{room.pk}/dashboard/", origin=base_url)
            done = asyncio.Event()
            dashboard_task = asyncio.create_task(watch_dashboard(dashboard, figures, done))

            learners = [ClassLearner(base_url, i, figures) for i in range(learners_wanted)]
            await asyncio.gather(*(learner.join(room.join_code) for learner in learners))

            @sync_to_async
            def user_ids():
                return dict(Membership.objects.filter(classroom=room).values_list("display_name", "user_id"))

            ids = await user_ids()
            for learner in learners:
                learner.user_id = ids[learner.name]

            go = asyncio.Event()
            starting = [asyncio.create_task(learner.start(go)) for learner in learners]
            await asyncio.sleep(0.2)
            go.set()  # the whole class presses Start together
            await asyncio.gather(*starting)

            daphnes = served_by(server_pid)
            held = consoles_held(daphnes, learners)
            watched = daphnes + [psutil.Process(reaper.pid)]
            generator, engine = [psutil.Process()], engine_processes()
            cpu_before, clock_before = cpu_seconds(watched), time.monotonic()
            load_before = os.getloadavg()[0]
            generator_before, engine_before = cpu_seconds(generator), cpu_seconds(engine)
            engine_all_before = cpu_seconds(engine, children=True)
            engine_log = reaper_log.parent / "engine-events.jsonl"
            watcher = watch_engine(settings.INSTALL_ID, engine_log)
            until = time.monotonic() + args.seconds
            class_began = time.time()
            await asyncio.gather(*(learner.type_commands(until) for learner in learners),
                                 *(learner.press_check(until, step, args.check_every) for learner in learners))
            cpu = cpu_seconds(watched) - cpu_before
            elapsed = time.monotonic() - clock_before
            generator_cpu = cpu_seconds(generator) - generator_before
            engine_cpu = cpu_seconds(engine) - engine_before
            engine_all_cpu = cpu_seconds(engine, children=True) - engine_all_before
            load_after = os.getloadavg()[0]
            class_ended = time.time()
            await asyncio.sleep(1)  # the last checks' dashboard events (and the engine's last events)
            watcher.terminate()
            watcher.wait(10)
            done.set()
            for learner in learners:
                await learner.close()
            await dashboard.close()
            await dashboard_task
            await instructor.close()
        finally:
            reaper.terminate()
            reaper.wait(30)
            settings.SANDBOX_WARM_POOL = {}
            await pool.drain({})
        pass_lines = [json.loads(line) for line in reaper_log.read_text().splitlines() if line.strip()]
        passes = [line["pass_s"] for line in pass_lines]
        # Reaper passes that ran (in part) during the class, and what they did.
        during = [line for line in pass_lines if line["began"] < class_ended and line["ended"] > class_began]
        events = engine_events(engine_log, class_began, class_ended)

    dashboard = dashboard_latencies(figures)
    result.update({
        "start_p50_s": round(statistics.median(figures.starts), 3),
        "start_p95_s": round(percentile(figures.starts, 95), 3),
        "echo_p50_ms": round(statistics.median(figures.echo), 2) if figures.echo else None,
        "echo_p99_ms": round(percentile(figures.echo, 99), 2) if figures.echo else None,
        "keys_echoed": len(figures.echo),
        "check_p50_ms": round(statistics.median(figures.checks), 1) if figures.checks else None,
        "check_p95_ms": round(percentile(figures.checks, 95), 1) if figures.checks else None,
        "checks": len(figures.checks),
        "check_errors": figures.check_errors,
        "dashboard_update_p95_ms": round(percentile(dashboard, 95), 1) if dashboard else None,
        "dashboard_updates_missed": len(figures.answered) - len(dashboard),
        "reaper_pass_p50_s": round(statistics.median(passes), 3) if passes else None,
        "reaper_pass_p95_s": round(percentile(passes, 95), 3) if passes else None,
        "reaper_passes": len(passes),
        "server_cpu_per_learner_ms": round(cpu * 1000 / learners_wanted / elapsed, 2),
        "server_cpu_cores": round(cpu / elapsed, 2),
        # Where the rest of the machine went during the class: this process (the simulated
        # learners and the instructor) and the engine (dockerd, containerd, the shims: Checks are
        # execs). A load generator near a whole core is itself late to read echoes.
        "load_generator_cpu_cores": round(generator_cpu / elapsed, 2),
        "engine_cpu_cores": round(engine_cpu / elapsed, 2),
        # The same with the runc processes those shims (and containerd) ran and reaped meanwhile
        # (shims of containers made during the class are not among them).
        "engine_cpu_cores_with_runc": round(engine_all_cpu / elapsed, 2),
        "load_average_1m_after": round(load_after, 2),
        "unexpected_closes": figures.unexpected_closes,
        "lost_keys": figures.lost_keys,
        "process_share_min": round(min(held) / max(1, sum(held)), 3),
        "consoles_per_process": held,
        "cpus": os.cpu_count(),
        "load_average_1m_before": round(load_before, 2),
        "reaper_passes_during_class": len(during),
        "reaper_checkpointed_during_class": sum(line["report"].get("checkpointed", 0) for line in during),
        "reaper_pool_created_during_class": sum(line["report"].get("pool_created", 0) for line in during),
        **engine_work(events),
        **check_parts(events, figures.checks_wall),
        **while_creating(events, figures.echo_at, figures.checks_wall),
    })
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--learners", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=180, help="seconds of typing and checking after every start")
    parser.add_argument("--check-every", type=float, default=20, help="seconds between a learner's Checks")
    add_processes_option(parser)
    run_and_print(main, parser.parse_args())
