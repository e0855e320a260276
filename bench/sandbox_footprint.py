"""Footprint of idle sandboxes on the real engine, for the sizing table in docs/self-hosting.md.

Starts N plain sandboxes through the Docker backend (the real container config and limits), lets
them settle, and reports the start time per sandbox, each container's memory use as its cgroup
counts it, and the host's available-memory drop. Removes everything it made.

    .venv/bin/python bench/sandbox_footprint.py --json [--count 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutorial.settings")

import django  # noqa: E402

django.setup()

import psutil  # noqa: E402
from django.conf import settings  # noqa: E402

from sandbox.backends.base import Limits, SandboxSpec  # noqa: E402
from sandbox.backends.docker import DockerBackend  # noqa: E402
from sandbox.images.recipes import image_tag  # noqa: E402


async def main(count: int, settle: float) -> dict:
    backend = DockerBackend()
    ids = [str(uuid.uuid4()) for _ in range(count)]
    before = psutil.virtual_memory().available
    starts = []
    try:
        for sandbox_id in ids:
            spec = SandboxSpec(sandbox_id=sandbox_id, owner_id=0, owner_name="bench", lesson="bench",
                               workspace="plain", image=image_tag("base"), limits=Limits(**settings.SANDBOX_LIMITS))
            began = time.perf_counter()
            await backend.create(spec)
            starts.append(time.perf_counter() - began)
        await asyncio.sleep(settle)
        used = []
        for sandbox_id in ids:
            container = backend.client.containers.list(filters={"label": f"tutorial.sandbox={sandbox_id}"})[0]
            stats = container.stats(stream=False)
            used.append(stats["memory_stats"].get("usage", 0))
        after = psutil.virtual_memory().available
    finally:
        for sandbox_id in ids:
            await backend.destroy(sandbox_id)
    return {
        "sandboxes": count,
        "start_seconds_median": round(statistics.median(starts), 3),
        "start_seconds_max": round(max(starts), 3),
        "container_memory_mib_median": round(statistics.median(used) / 2**20, 2),
        "container_memory_mib_max": round(max(used) / 2**20, 2),
        "host_available_drop_mib_per_sandbox": round((before - after) / count / 2**20, 2),
        "memory_limit_mib": settings.SANDBOX_LIMITS["memory_bytes"] // 2**20,
        "host_cpus": os.cpu_count(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(main(args.count, args.settle))
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
