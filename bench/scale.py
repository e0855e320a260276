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

- Where a warm start's time and CPU go: ``warm<N>_cpu_ms_per_start_by_process`` (every process of
  the machine from Start to the last prompt: the site, the API server, the kubelet, containerd,
  this benchmark), and with ``--timeline`` each learner's steps (Start answered, console accepted,
  the server's attach open, first byte, prompt) as p50/p95. ``--profile DIR`` records the daphne
  processes' CPU with py-spy over the same span (``pip install py-spy``; not a project requirement).

    TUTORIAL_KUBECONFIG=/work/main/data/cluster/admin.kubeconfig .venv/bin/python bench/scale.py --json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import sys
import time

# bench/kubernetes.py has the official client's name: import the client before bench/ is on the path.
BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != BENCH]
import kubernetes.client  # noqa: E402,F401
import psutil  # noqa: E402

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


async def round_of(base_url: str, count: int, repeat: int, failures: list[str],
                   marks: list[dict] | None = None, profile: str | None = None,
                   warm: bool = False) -> tuple[list[float], list[str]]:
    """``lifecycle.round_of``, but a learner whose prompt never comes is counted, not fatal: the
    figures of the others are still reported (with ``failures``). Each learner's timeline
    (``lifecycle.MARKS``) is appended to ``marks``; with ``profile`` (a folder), py-spy records the
    daphne processes from Start to the last prompt (the learners' page loads before are left out).
    A ``warm`` round (claiming from the pool) first lists the pods as the reaper does every few
    seconds under `make run` (no reaper runs here, and signing in 30 learners takes longer)."""
    times, ids = [], []
    for _ in range(repeat):
        learners = [await lifecycle.Learner().prepare(base_url) for _ in range(count)]
        if warm:
            from sandbox import reaper

            await reaper.reconcile_pods(lambda _sandbox_id: True, reaper.Report())
        go = asyncio.Event()
        pending = [asyncio.create_task(learner.start(go)) for learner in learners]
        profilers = [lifecycle.start_profiler(p.pid, profile, cpu_only=True) for p in lifecycle.SERVERS] if profile else []
        await asyncio.sleep(1 if profilers else 0.2)  # py-spy attaches
        cpu_before = lifecycle.server_cpu_seconds()
        machine_before = machine_cpu_seconds()
        go.set()
        results = await asyncio.gather(*pending, return_exceptions=True)
        MACHINE_CPU.append((machine_before, machine_cpu_seconds()))
        for profiler in profilers:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            profiler.wait(60)
        for learner, result in zip(learners, results):
            if isinstance(result, BaseException):
                failures.append(f"{count} at once: {type(result).__name__}: {str(result)[:200]}")
            else:
                times.append(result[0])
                ids.append(result[1])
                if marks is not None:
                    marks.append(learner.marks)
        lifecycle.SERVER_CPU.append(lifecycle.server_cpu_seconds() - cpu_before)
        for learner in learners:
            await learner.http.close()
    return times, ids


MACHINE_CPU: list[tuple[dict, dict]] = []  # per round: CPU seconds by process before and after


def machine_cpu_seconds() -> dict[int, tuple[str, float]]:
    """Every process's CPU seconds (user + system) and a name saying what it is."""
    site = {p.pid for p in lifecycle.SERVERS}
    found = {}
    for process in psutil.process_iter(["name", "cpu_times"]):
        times = process.info["cpu_times"]
        if times is None:
            continue
        name = ("daphne (the site)" if process.pid in site else "this benchmark" if process.pid == os.getpid()
                else process.info["name"] or "?")
        found[process.pid] = (name, times.user + times.system)
    return found


def cpu_by_process(rounds: list[tuple[dict, dict]], starts: int, top: int = 8) -> dict[str, float]:
    """CPU milliseconds per start of the busiest process names over the rounds."""
    spent: dict[str, float] = {}
    for before, after in rounds:
        for pid, (name, seconds) in after.items():
            spent[name] = spent.get(name, 0.0) + seconds - before.get(pid, (name, 0.0))[1]
    busiest = sorted(spent.items(), key=lambda item: -item[1])[:top]
    return {name: round(seconds * 1000 / starts, 1) for name, seconds in busiest}


def timeline(marks: list[dict]) -> dict:
    """p50/p95 of each mark (seconds since Start) and of each step to it from the mark before."""
    figures = {}
    for before, mark in zip((None, *lifecycle.MARKS), lifecycle.MARKS):
        at = [m[mark] for m in marks if mark in m]
        steps = [m[mark] - (m[before] if before else 0.0) for m in marks if mark in m and (before is None or before in m)]
        if at:
            figures[mark] = {"at_p50": round(statistics.median(at), 3), "at_p95": round(percentile(at, 95), 3),
                             "step_p50": round(statistics.median(steps), 3), "step_p95": round(percentile(steps, 95), 3),
                             "seen": len(at)}
    return figures


async def main(args) -> dict:
    from cluster.layout import Layout

    kubeconfig = os.environ.get("TUTORIAL_KUBECONFIG") or str(Layout.from_environment().admin_kubeconfig)
    os.environ.update({"TUTORIAL_PLAIN_BACKEND": "pod", "TUTORIAL_KUBECONFIG": kubeconfig,
                       "TUTORIAL_SANDBOX_CAPACITY": "200", "TUTORIAL_WARM_POOL": "", "TUTORIAL_SANDBOXES_PER_USER": "5"})
    result: dict = {"server_processes": args.processes}
    failures: list[str] = []
    result["failures"] = failures
    result["load_average_before"] = [round(x, 2) for x in os.getloadavg()]
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)
    async with running_site(args.processes) as (base_url, server_pid):
        server = psutil.Process(server_pid)
        lifecycle.SERVERS[:] = [c for c in server.children() if "daphne" in " ".join(c.cmdline())] or [server]
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
            warm, marks = [], []
            lifecycle.SERVER_CPU.clear()
            MACHINE_CPU.clear()
            for _ in range(repeat):
                await lifecycle.fill_pool(count)
                times, ids = await round_of(base_url, count, 1, failures, marks, args.profile, warm=True)
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
                result[f"warm{count}_server_cpu_ms_per_start"] = round(sum(lifecycle.SERVER_CPU) * 1000 / len(warm), 1)
                result[f"warm{count}_cpu_ms_per_start_by_process"] = cpu_by_process(MACHINE_CPU, len(warm))
                if args.timeline:
                    result[f"warm{count}_timeline"] = timeline(marks)
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
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
    parser.add_argument("--timeline", action="store_true",
                        help="per warm count, p50/p95 seconds of each step from Start to the prompt (lifecycle.MARKS): "
                             "the time since Start at each mark, and the step from the mark before")
    parser.add_argument("--profile", metavar="DIR",
                        help="record the daphne processes' CPU (GIL holders) with py-spy from Start to the last prompt "
                             "of each warm round, one file of collapsed stacks per process in DIR")
    add_processes_option(parser)
    run_and_print(main, parser.parse_args())
