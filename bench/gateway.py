"""Benchmark the Docker gateway against the engine socket, in the same run.

Through the gateway and directly: `docker ps`, `docker run --rm <small image> true` and a 100 MB
`docker cp` (Debian's docker CLI on the host, DOCKER_HOST switched between the two sockets), plus
single API calls (`GET /containers/json`) for the added latency per call.

    .venv/bin/python bench/gateway.py --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutorial.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from sandbox.gateway.cleanup import destroy_learner_objects  # noqa: E402
from sandbox.gateway.server import GatewayServer, engine_socket_path, short_path  # noqa: E402

IMAGE = f"{settings.GATEWAY_REGISTRY}/library/busybox"
DOCKER = "/usr/bin/docker"


def timed(cmd: list[str], host: str) -> float:
    env = {**os.environ, "DOCKER_HOST": host, "DOCKER_BUILDKIT": "0"}
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


async def api_call(path: str, query: str = "") -> float:
    start = time.perf_counter()
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(f"GET /v1.41/containers/json{query} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    while await reader.read(65536):
        pass
    writer.close()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="gwbench-"))
    sandbox_id = str(uuid.uuid4())
    loop = asyncio.new_event_loop()
    server = GatewayServer(data_dir=data_dir)
    ready = threading.Event()

    def serve():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.serve(sandbox_id, "999999", "bench"))
        ready.set()
        loop.run_forever()

    threading.Thread(target=serve, daemon=True).start()
    ready.wait(10)
    socket_path = server.socket_path(sandbox_id)
    link = Path(tempfile.mkdtemp(prefix="gw")) / "d.sock"
    link.symlink_to(socket_path)  # a short path for the CLI's unix address
    gateway = f"unix://{link}"
    direct = f"unix://{engine_socket_path()}"
    results: dict[str, dict[str, list[float]]] = {"ps": {}, "run": {}, "cp": {}}
    payload = data_dir / "payload.bin"
    with open(payload, "wb") as out:
        out.write(os.urandom(1 << 20) * 100)  # 100 MiB
    try:
        subprocess.run([DOCKER, "pull", "-q", IMAGE], env={**os.environ, "DOCKER_HOST": gateway}, check=True,
                       capture_output=True)
        target = subprocess.run([DOCKER, "create", IMAGE, "true"], env={**os.environ, "DOCKER_HOST": gateway},
                                check=True, capture_output=True, text=True).stdout.strip()
        for _ in range(args.rounds):
            for name, host in (("gateway", gateway), ("direct", direct)):
                # Directly, with the same owner filter the gateway adds: the same answer, the same work.
                ps = [DOCKER, "ps", "--filter", f"label=tutorial.sandbox={sandbox_id}", "--filter", "label=tutorial.gateway=learner"]
                results["ps"].setdefault(name, []).append(timed(ps if name == "direct" else [DOCKER, "ps"], host))
                results["run"].setdefault(name, []).append(timed([DOCKER, "run", "--rm", IMAGE, "true"], host))
                results["cp"].setdefault(name, []).append(timed([DOCKER, "cp", str(payload), f"{target}:/tmp/payload.bin"], host))
        with short_path(socket_path) as gw_sock:
            api = {"gateway": [], "direct": []}
            owner_query = "?filters=" + quote(json.dumps({"label": [f"tutorial.sandbox={sandbox_id}", "tutorial.gateway=learner"]}))
            for _ in range(200):
                api["gateway"].append(asyncio.run_coroutine_threadsafe(api_call(gw_sock), loop).result())
                api["direct"].append(asyncio.run_coroutine_threadsafe(api_call(engine_socket_path(), owner_query), loop).result())
    finally:
        destroy_learner_objects(sandbox_id, data_dir=data_dir)
        loop.call_soon_threadsafe(loop.stop)
        payload.unlink(missing_ok=True)

    med = statistics.median
    report = {
        "ps_ratio": round(med(results["ps"]["gateway"]) / med(results["ps"]["direct"]), 3),
        "run_ratio": round(med(results["run"]["gateway"]) / med(results["run"]["direct"]), 3),
        "cp_ratio": round(med(results["cp"]["gateway"]) / med(results["cp"]["direct"]), 3),
        "added_ms_per_call_p50": round((med(api["gateway"]) - med(api["direct"])) * 1000, 3),
        "ps_ms": {k: round(med(v) * 1000, 1) for k, v in results["ps"].items()},
        "run_ms": {k: round(med(v) * 1000, 1) for k, v in results["run"].items()},
        "cp_100mb_ms": {k: round(med(v) * 1000, 1) for k, v in results["cp"].items()},
        "api_call_ms_p50": {k: round(med(v) * 1000, 3) for k, v in api.items()},
        "rounds": args.rounds,
        "targets": {"ratios": 1.2, "added_ms_per_call_p50": 5},
    }
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
