"""Scale benchmark of plain sandboxes as pods (``TUTORIAL_PLAIN_BACKEND=pod``) on a real cluster.

Against a real site (its own SQLite, served as ``make run`` serves it) whose plain sandboxes are
pods on the cluster of ``TUTORIAL_KUBECONFIG`` (default: this machine's local cluster).

- Ready time is what a learner waits: the Start request -> the first prompt byte on the console
  websocket, for 1, 10 and 30 learners pressing Start at once, cold (a pod created per start) and
  warm (claimed from a pool pre-filled to that size): ``pod_ready_p50_s``/``pod_ready_p95_s`` (1),
  ``pod_ready10_*``, ``pod_ready30_*``, each with a ``cold``/``warm`` prefix in the key name
  (``pod_ready30_p95_s`` is the warm figure; ``cold_pod_ready30_p95_s`` the cold one).
- Keystroke echo, in the same run on the same pod: through the site (browser websocket -> server
  -> the attach API) ``pod_echo_p99_ms``, and straight on the attach API from this process
  ``pod_raw_echo_p99_ms``; their difference is what the server adds (``pod_server_added_echo_p99_ms``).
- Memory per idle pod sandbox: the pod's working set as the kubelet reports it
  (``idle_pod_working_set_mb``), over the 30 idle sandboxes of the last warm round.

    TUTORIAL_KUBECONFIG=/work/main/data/cluster/admin.kubeconfig .venv/bin/python bench/scale.py --json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import time

# bench/kubernetes.py has the official client's name: import the client before bench/ is on the path.
BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != BENCH]
import kubernetes.client  # noqa: E402,F401

sys.path.insert(0, BENCH)
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the project (cluster.layout)
import lifecycle  # noqa: E402  (the ready-time rounds and the warm pool, shared)
from _site import add_processes_option, echo_times_ms, percentile, run_and_print, running_site  # noqa: E402

PROMPT = re.compile(rb"\$ ")


async def echo_through_site(base_url: str, count: int) -> tuple[list[float], str]:
    """Keystroke -> its echo on the browser's websocket (ms), and the sandbox id."""
    import console

    learner = await console.Learner.signed_in(base_url, f"echo-{time.time_ns()}")
    try:
        sandbox_id = await learner.start()
        await learner.attach()
        await learner.read_until(PROMPT, timeout=90)
        return await console.echo_times(learner, count), sandbox_id
    finally:
        await learner.close()


async def echo_on_attach(pod: str, count: int) -> list[float]:
    """The same keystrokes straight on the attach API (this process, no site)."""
    from sandbox.backends.pod import PodBackend

    backend = PodBackend()
    stream = await backend.open_console(pod, replay=False)
    try:
        return await echo_times_ms(stream, count, pace_seconds=0.01)
    finally:
        await stream.close()
        await backend.api.close()


async def idle_pod_memory_mb(sandbox_ids: list[str]) -> float:
    """Mean working set (MiB) of these sandboxes' pods, from the kubelet's stats summary."""
    from sandbox.backends import k8s_manifests as km
    from sandbox.backends.pod import PodBackend

    backend = PodBackend()
    try:
        nodes = (await backend.api.request("GET", "/api/v1/nodes")).json()["items"]
        wanted = {km.sandbox_pod_name(i) for i in sandbox_ids}
        found = []
        for node in nodes:
            summary = await backend.api.request("GET", f"/api/v1/nodes/{node['metadata']['name']}/proxy/stats/summary")
            for pod in (summary.json() or {}).get("pods") or []:
                if pod["podRef"]["name"] in wanted and pod.get("memory", {}).get("workingSetBytes") is not None:
                    found.append(pod["memory"]["workingSetBytes"] / 2**20)
    finally:
        await backend.api.close()
    if not found:
        raise RuntimeError("the kubelet reported no memory for the sandbox pods")
    return statistics.mean(found)


async def round_of(base_url: str, count: int, repeat: int, failures: list[str]) -> tuple[list[float], list[str]]:
    """``lifecycle.round_of``, but a learner whose prompt never comes is counted, not fatal: the
    figures of the others are still reported (with ``failures``)."""
    times, ids = [], []
    for _ in range(repeat):
        learners = [await lifecycle.Learner().prepare(base_url) for _ in range(count)]
        go = asyncio.Event()
        pending = [asyncio.create_task(learner.start(go)) for learner in learners]
        await asyncio.sleep(0.2)
        go.set()
        for result in await asyncio.gather(*pending, return_exceptions=True):
            if isinstance(result, BaseException):
                failures.append(f"{count} at once: {type(result).__name__}: {str(result)[:200]}")
            else:
                times.append(result[0])
                ids.append(result[1])
        for learner in learners:
            await learner.http.close()
    return times, ids


async def main(args) -> dict:
    from cluster.layout import Layout

    kubeconfig = os.environ.get("TUTORIAL_KUBECONFIG") or str(Layout.from_environment().admin_kubeconfig)
    os.environ.update({"TUTORIAL_PLAIN_BACKEND": "pod", "TUTORIAL_KUBECONFIG": kubeconfig,
                       "TUTORIAL_SANDBOX_CAPACITY": "200", "TUTORIAL_WARM_POOL": "", "TUTORIAL_SANDBOXES_PER_USER": "5"})
    result: dict = {"server_processes": args.processes}
    failures: list[str] = []
    result["failures"] = failures
    async with running_site(args.processes) as (base_url, _server_pid):
        await lifecycle.ready_time(base_url)  # warm up: the node pulls the image once
        await lifecycle.stop_all()
        # Echo: through the site, then straight on the attach API, on the same pod.
        site, sandbox_id = await echo_through_site(base_url, args.keys)
        from sandbox.backends import k8s_manifests as km

        raw = await echo_on_attach(km.sandbox_pod_name(sandbox_id), args.keys)
        result["pod_echo_p50_ms"] = round(statistics.median(site), 2)
        result["pod_echo_p99_ms"] = round(percentile(site, 99), 2)
        result["pod_raw_echo_p50_ms"] = round(statistics.median(raw), 2)
        result["pod_raw_echo_p99_ms"] = round(percentile(raw, 99), 2)
        result["pod_server_added_echo_p99_ms"] = round(result["pod_echo_p99_ms"] - result["pod_raw_echo_p99_ms"], 2)
        await lifecycle.stop_all()
        for count in args.counts:
            suffix = "" if count == 1 else str(count)
            repeat = args.single_runs if count == 1 else 1
            if not args.warm_only:
                cold, _ = await round_of(base_url, count, repeat, failures)
                await lifecycle.stop_all()
                if cold:
                    result[f"cold_pod_ready{suffix}_p50_s"] = round(statistics.median(cold), 3)
                    result[f"cold_pod_ready{suffix}_p95_s"] = round(percentile(cold, 95), 3)
            warm = []
            for _ in range(repeat):
                await lifecycle.fill_pool(count)
                times, ids = await round_of(base_url, count, 1, failures)
                warm += times
                if count == max(args.counts) and _ == repeat - 1:
                    await asyncio.sleep(args.settle)
                    try:
                        result["idle_pod_working_set_mb"] = round(await idle_pod_memory_mb(ids), 2)
                    except Exception as exc:  # noqa: BLE001 - the other figures still count
                        failures.append(f"idle memory: {exc}")
                await lifecycle.stop_all()
            if warm:
                result[f"pod_ready{suffix}_p50_s"] = round(statistics.median(warm), 3)
                result[f"pod_ready{suffix}_p95_s"] = round(percentile(warm, 95), 3)
    result["cpus"] = os.cpu_count()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 10, 30])
    parser.add_argument("--single-runs", type=int, default=5, help="sequential runs for the 1-learner figures")
    parser.add_argument("--keys", type=int, default=300, help="keystrokes for the echo figures")
    parser.add_argument("--warm-only", action="store_true", help="skip the cold rounds")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds idle before memory is read")
    add_processes_option(parser)
    run_and_print(main, parser.parse_args())
