"""Editor tab benchmark on the real engine: how long listing, opening and saving a file of the
learner's home takes through the sandbox's ``run`` (sandbox/editor_files.py), beside the baseline
in the same run and the same sandbox: one ``run`` of ``true`` (the cost of any exec). A small file
is one exec to open and one to save; a 250 KiB file is saved in four execs, one chunk each (one
argument of a script stays under Linux's 128 KiB). Medians and 90th percentiles in milliseconds.

    .venv/bin/python bench/editor.py --json
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutorial.settings")

import django  # noqa: E402

django.setup()

from _site import percentile  # noqa: E402

from sandbox import editor_files  # noqa: E402
from sandbox.backends.base import SandboxSpec  # noqa: E402
from sandbox.backends.docker import DockerBackend  # noqa: E402

SMALL = "FROM base\nRUN echo hello\n" * 20  # about 0.5 KiB
BIG = "".join(f"line {n:06d} of a big file\n" for n in range(9800))  # about 240 KiB


async def timed(samples: dict, name: str, call) -> None:
    started = time.perf_counter()
    await call()
    samples.setdefault(name, []).append((time.perf_counter() - started) * 1000)


async def measure(rounds: int) -> dict:
    backend = DockerBackend()
    spec = SandboxSpec(sandbox_id=str(uuid.uuid4()), owner_id=999_999, owner_name="bench", lesson="bench-editor",
                       workspace="plain", image="tutorial/base:latest")
    ref = await backend.create(spec)
    samples: dict[str, list[float]] = {}
    try:
        await editor_files.save_file(backend, ref, "small.txt", SMALL, None)
        await editor_files.save_file(backend, ref, "big.txt", BIG, None)
        for _ in range(rounds):
            await timed(samples, "baseline_run_true", lambda: backend.run(ref, "true", timeout=10))
            await timed(samples, "list", lambda: editor_files.list_files(backend, ref))
            await timed(samples, "open_small", lambda: editor_files.read_file(backend, ref, "small.txt"))
            small = await editor_files.read_file(backend, ref, "small.txt")
            await timed(samples, "save_small", lambda: editor_files.save_file(backend, ref, "small.txt", SMALL, small["hash"]))
            await timed(samples, "open_240k", lambda: editor_files.read_file(backend, ref, "big.txt"))
            big = await editor_files.read_file(backend, ref, "big.txt")
            await timed(samples, "save_240k", lambda: editor_files.save_file(backend, ref, "big.txt", BIG, big["hash"]))
    finally:
        await backend.destroy(spec.sandbox_id)
    return {name: {"median_ms": round(statistics.median(values), 1), "p90_ms": round(percentile(values, 90), 1),
                   "n": len(values)} for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = {"bytes": {"small": len(SMALL.encode()), "big": len(BIG.encode())}, **asyncio.run(measure(args.rounds))}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, value in result.items():
            print(name, value)


if __name__ == "__main__":
    main()
