"""Dashboard benchmark: 50 learners pass a check; time from the check to the dashboard event.

Runs in one process on a fresh SQLite database: the instructor's dashboard is a real websocket
through ``tutorial.asgi.application`` (origin check, session auth) on the configured channel
layer (in-memory by default; set REDIS_URL for Redis). Each learner's passing check is written by
the lesson engine's own ``record_attempt`` in a worker thread, as the check view does, and the
post_save signals carry it to the dashboard.

    .venv/bin/python bench/dashboard.py --json [--learners 50] [--rounds 3]

``update_latency_p95_ms``: record_attempt called -> the dashboard's "passed" event received.
``queries_per_update``: SQL statements the classroom adds per passed check (the lesson engine's
own two writes are reported apart as ``lesson_engine_queries_per_check``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def setup_django() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="tutorial-bench-dashboard-"))
    os.environ.update({
        "TUTORIAL_DATA_DIR": str(data_dir),
        "TUTORIAL_SQLITE_PATH": str(data_dir / "db.sqlite3"),
        "DJANGO_SETTINGS_MODULE": "tutorial.settings",
    })
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


async def run(learners: int, rounds: int) -> dict:
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db.backends import utils
    from django.test import Client

    from classroom import dashboard, roster
    from classroom.roster import grant_instructor
    from lessons.catalogue import get_lesson
    from lessons.progress import CheckOutcome, progress_for, record_attempt
    from tutorial.asgi import application

    lesson = get_lesson("what-is-a-container")
    steps = lesson.steps[:rounds]

    @sync_to_async
    def prepare():
        User = get_user_model()
        teacher = User.objects.create_user(username="bench-instructor")
        grant_instructor(teacher)
        room = roster.create_classroom(teacher, "bench", [lesson.slug])
        users = []
        for i in range(learners):
            user = User.objects.create_user(username=f"bench-learner-{i}")
            roster.join(room, user, f"Learner {i}")
            users.append(user)
        client = Client()
        client.force_login(teacher)
        cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        return room, users, cookie

    room, users, cookie = await prepare()
    ws = WebsocketCommunicator(
        application, f"/ws/classrooms/{room.pk}/dashboard/",
        headers=[(b"host", b"127.0.0.1:8000"), (b"origin", b"http://127.0.0.1:8000"), (b"cookie", cookie.encode())],
    )
    connected, _ = await ws.connect()
    assert connected
    json.loads(await ws.receive_from(timeout=5))

    statements: list[str] = []
    real = utils.CursorWrapper._execute_with_wrappers

    def counting(self, sql, *args, **kwargs):
        statements.append(sql)
        return real(self, sql, *args, **kwargs)

    utils.CursorWrapper._execute_with_wrappers = counting

    @sync_to_async
    def open_steps(step):
        return [progress_for(user, lesson, step) for user in users]

    @sync_to_async
    def pass_check(progress):
        before = len(statements)
        record_attempt(progress, CheckOutcome(True, "passed", "Right.", exit_code=0))
        return statements[before:]

    latencies, classroom_queries, engine_queries, relay_queries = [], [], [], []
    for step in steps:
        progresses = await open_steps(step)
        while not await ws.receive_nothing(timeout=0.2):  # drain the "opened" events
            await ws.receive_from(timeout=5)
        for progress in progresses:
            started = time.perf_counter()
            sql = await pass_check(progress)
            relay_from = len(statements)
            while True:
                event = json.loads(await ws.receive_from(timeout=5))
                if event["kind"] == "progress" and event["passed_at"] and event["user"] == progress.user_id:
                    break
            latencies.append((time.perf_counter() - started) * 1000)
            relay_queries.append(len(statements) - relay_from)
            ours = [s for s in sql if "classroom_" in s]
            classroom_queries.append(len(ours))
            engine_queries.append(len(sql) - len(ours))
    utils.CursorWrapper._execute_with_wrappers = real
    await ws.disconnect()

    @sync_to_async
    def snapshot_queries():
        before = len(statements)
        utils.CursorWrapper._execute_with_wrappers = counting
        t = time.perf_counter()
        dashboard.dashboard_snapshot(room)
        elapsed = (time.perf_counter() - t) * 1000
        utils.CursorWrapper._execute_with_wrappers = real
        return len(statements) - before, elapsed

    snap_queries, snap_ms = await snapshot_queries()
    return {
        "learners": learners,
        "updates": len(latencies),
        "channel_layer": settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1],
        "update_latency_p50_ms": round(statistics.median(latencies), 2),
        "update_latency_p95_ms": round(percentile(latencies, 95), 2),
        "update_latency_max_ms": round(max(latencies), 2),
        "queries_per_update": statistics.mean(classroom_queries),
        "lesson_engine_queries_per_check": statistics.mean(engine_queries),
        "dashboard_relay_queries_per_update": statistics.mean(relay_queries),
        "snapshot_queries": snap_queries,
        "snapshot_ms": round(snap_ms, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--learners", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="steps each learner passes")
    args = parser.parse_args()
    setup_django()
    result = asyncio.run(run(args.learners, args.rounds))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:36} {value}")


if __name__ == "__main__":
    main()
