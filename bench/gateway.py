"""Benchmark the Docker gateway against the engine socket, in the same run.

Through the gateway and directly: `docker ps`, `docker run --rm <small image> true` and a 100 MB
`docker cp` into a container and back out (Debian's docker CLI on the host, DOCKER_HOST switched between the two sockets), plus
single API calls (`GET /containers/json`) for the added latency per call.

`run` is measured three ways. The gateway forces the classroom policy on every container (limits,
dropped capabilities, the learner's own bridge network instead of the default bridge), so besides
plain `direct` there is `direct_same_options`: straight to the engine with the very HostConfig the
policy produced (read from ``plan_container_create``, on the learner's own network). ``run_ratio``
keeps its meaning (gateway vs plain direct, the target); ``run_ratio_vs_same_options`` is the
proxy's own share and ``run_policy_ratio`` what the policy itself costs.

    .venv/bin/python bench/gateway.py --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
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

from sandbox.gateway import policy  # noqa: E402
from sandbox.gateway.cleanup import destroy_learner_objects  # noqa: E402
from sandbox.gateway.server import GatewayServer, engine_socket_path, gateway_limits, short_path  # noqa: E402

IMAGE = f"{settings.GATEWAY_REGISTRY}/library/busybox"
DOCKER = "/usr/bin/docker"


def forced_run_flags(learner: policy.Learner) -> list[str]:
    """`docker run` flags giving, straight to the engine, the container the gateway makes of
    `docker run --rm IMAGE true`. Built from the policy's own plan; a forced field this does not
    know fails the benchmark rather than silently comparing different containers."""
    request = {"Image": IMAGE, "Cmd": ["true"], "HostConfig": {"AutoRemove": True}}
    plan = policy.plan_container_create(learner, request, gateway_limits())
    host = dict(plan.body["HostConfig"])
    flags = [f"--label={k}={v}" for k, v in plan.body["Labels"].items()]
    if host.pop("AutoRemove"):
        flags.append("--rm")
    flags += [f"--memory={host.pop('Memory')}b", f"--memory-swap={host.pop('MemorySwap')}b",
              f"--cpus={host.pop('NanoCpus') / 1e9:g}", f"--pids-limit={host.pop('PidsLimit')}",
              f"--shm-size={host.pop('ShmSize')}b", f"--network={host.pop('NetworkMode')}"]
    flags += [f"--cap-drop={cap}" for cap in host.pop("CapDrop")]
    flags += [f"--security-opt={opt}" for opt in host.pop("SecurityOpt")]
    flags += [f"--ulimit={u['Name']}={u['Soft']}:{u['Hard']}" for u in host.pop("Ulimits")]
    log_config = host.pop("LogConfig")
    flags += [f"--log-driver={log_config['Type']}"] + [f"--log-opt={k}={v}" for k, v in log_config["Config"].items()]
    restart = host.pop("RestartPolicy")
    if restart["Name"] not in ("", "no"):
        flags.append(f"--restart={restart['Name']}")
    if host.pop("PortBindings"):
        raise SystemExit("bench: the policy now publishes ports for a plain run; update forced_run_flags")
    if host:
        raise SystemExit(f"bench: forced HostConfig fields not mirrored in the direct run: {sorted(host)}")
    return flags


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
    parser.add_argument("--rounds", type=int, default=9)
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
    results: dict[str, dict[str, list[float]]] = {"ps": {}, "run": {}, "cp": {}, "cp_out": {}}
    cp_cpu: list[float] = []  # the gateway's CPU per `docker cp` (it runs in this process)
    learner = policy.Learner(sandbox_id=sandbox_id, owner_id="999999", lesson="bench", registry=server.registry)
    same_options = [DOCKER, "run", *forced_run_flags(learner), IMAGE, "true"]
    payload = data_dir / "payload.bin"
    with open(payload, "wb") as out:
        out.write(os.urandom(1 << 20) * 100)  # 100 MiB
    try:
        subprocess.run([DOCKER, "pull", "-q", IMAGE], env={**os.environ, "DOCKER_HOST": gateway}, check=True,
                       capture_output=True)
        target = subprocess.run([DOCKER, "create", IMAGE, "true"], env={**os.environ, "DOCKER_HOST": gateway},
                                check=True, capture_output=True, text=True).stdout.strip()
        # The learner's own network, made by the gateway on first need, for the same-options run.
        subprocess.run([DOCKER, "run", "--rm", IMAGE, "true"], env={**os.environ, "DOCKER_HOST": gateway},
                       check=True, capture_output=True)
        # Directly, `ps` gets the same owner filter the gateway adds: the same answer, the same work.
        ps_direct = [DOCKER, "ps", "--filter", f"label=tutorial.sandbox={sandbox_id}", "--filter",
                     "label=tutorial.gateway=learner"]
        copied_back = data_dir / "copied-back.bin"
        variants = {
            "ps": [("gateway", gateway, [DOCKER, "ps"]), ("direct", direct, ps_direct)],
            "run": [("gateway", gateway, [DOCKER, "run", "--rm", IMAGE, "true"]),
                    ("direct", direct, [DOCKER, "run", "--rm", IMAGE, "true"]),
                    ("direct_same_options", direct, same_options)],
            "cp": [(name, host, [DOCKER, "cp", str(payload), f"{target}:/tmp/payload.bin"])
                   for name, host in (("gateway", gateway), ("direct", direct))],
            # And back out of the container: the engine's answer relayed to the CLI.
            "cp_out": [(name, host, [DOCKER, "cp", f"{target}:/tmp/payload.bin", str(copied_back)])
                       for name, host in (("gateway", gateway), ("direct", direct))],
        }
        for round_no in range(args.rounds):
            for kind, runs in variants.items():
                shift = round_no % len(runs)  # no variant always goes first (the box is shared, load drifts)
                # `ps` takes ~10 ms: one sample a round would leave its ratio to the noise.
                for name, host, cmd in (runs[shift:] + runs[:shift]) * (5 if kind == "ps" else 1):
                    cpu = time.process_time()
                    results[kind].setdefault(name, []).append(timed(cmd, host))
                    if kind == "cp" and name == "gateway":
                        cp_cpu.append(time.process_time() - cpu)  # the gateway runs in this process
                    copied_back.unlink(missing_ok=True)
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
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(link.parent, ignore_errors=True)

    med = statistics.median
    report = {
        "ps_ratio": round(med(results["ps"]["gateway"]) / med(results["ps"]["direct"]), 3),
        "run_ratio": round(med(results["run"]["gateway"]) / med(results["run"]["direct"]), 3),
        "run_ratio_vs_same_options": round(med(results["run"]["gateway"]) / med(results["run"]["direct_same_options"]), 3),
        "run_policy_ratio": round(med(results["run"]["direct_same_options"]) / med(results["run"]["direct"]), 3),
        "cp_ratio": round(med(results["cp"]["gateway"]) / med(results["cp"]["direct"]), 3),
        "added_ms_per_call_p50": round((med(api["gateway"]) - med(api["direct"])) * 1000, 3),
        "ps_ms": {k: round(med(v) * 1000, 1) for k, v in results["ps"].items()},
        "run_ms": {k: round(med(v) * 1000, 1) for k, v in results["run"].items()},
        "cp_100mb_ms": {k: round(med(v) * 1000, 1) for k, v in results["cp"].items()},
        "cp_gateway_cpu_ms": round(med(cp_cpu) * 1000, 1),
        "cp_out_ratio": round(med(results["cp_out"]["gateway"]) / med(results["cp_out"]["direct"]), 3),
        "cp_out_100mb_ms": {k: round(med(v) * 1000, 1) for k, v in results["cp_out"].items()},
        "api_call_ms_p50": {k: round(med(v) * 1000, 3) for k, v in api.items()},
        "rounds": args.rounds,
        "targets": {"ratios": 1.2, "added_ms_per_call_p50": 5},
    }
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
