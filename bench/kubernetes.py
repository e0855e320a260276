"""Kubernetes benchmark against this machine's cluster and a real daphne site, with the Docker
sandbox as the baseline in the same run.

Ready time is what a learner waits, measured as bench/console.py measures it: the Start request ->
the first prompt byte on the console websocket, for a Kubernetes lesson (a namespace and a toolbox)
and for a Docker lesson (one container), alternating so both see the same machine; then 10 of each
pressing Start at the same moment. Then a lesson pod (the classroom registry's base image, Pod
Security restricted) applied with kubectl from a learner's toolbox until ``kubectl wait`` sees it
Running, one pod after another. ``--cluster-start`` also times ``python -m cluster restart`` (stop,
then start the already built cluster until its node is Ready and CoreDNS is available); it stops
every pod on the cluster, so it is opt-in, and it runs first so the rest is measured on the
restarted cluster.

The cluster is the one the Kubernetes tests use: ``TUTORIAL_TEST_KUBECONFIG``, else this machine's
local cluster (``python -m cluster up``). The bench refuses to run while it is not ready. Every
sandbox it starts is destroyed, and it waits (bounded) for their namespaces to be gone.

    .venv/bin/python bench/kubernetes.py --json
    .venv/bin/python bench/kubernetes.py --json --cluster-start
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yarl

ROOT = Path(__file__).resolve().parents[1]
BENCH = os.path.dirname(os.path.abspath(__file__))
# This file's own name would hide the kubernetes client package: its folder goes last on the path.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != BENCH] + [BENCH]
sys.path.insert(0, str(ROOT))
from _site import percentile, running_site  # noqa: E402
from console import PROMPT, Learner  # noqa: E402

from cluster import status as cluster_status  # noqa: E402
from cluster.layout import DOCKER_NETWORK, Layout  # noqa: E402

K8S_LESSON = "pods"
DOCKER_LESSON = "what-is-a-container"
CLEANUP_WAIT = 120  # seconds for the cluster to finish deleting the namespaces of destroyed sandboxes

POD = """apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  securityContext: {{runAsNonRoot: true, seccompProfile: {{type: RuntimeDefault}}}}
  containers:
    - name: main
      image: {image}
      command: ["sleep", "3600"]
      securityContext: {{allowPrivilegeEscalation: false, capabilities: {{drop: [ALL]}}}}
"""


class BenchRefused(Exception):
    """The bench cannot run here; says why and what to do."""


# -- the cluster ----------------------------------------------------------------------------------
def cluster_kubeconfig() -> str:
    """The kubeconfig of a ready cluster, or BenchRefused saying why there is none."""
    configured = os.environ.get("TUTORIAL_TEST_KUBECONFIG", "")
    if configured:
        if not Path(configured).is_file():
            raise BenchRefused(f"TUTORIAL_TEST_KUBECONFIG is {configured}: no such file")
        return configured
    layout = Layout.from_environment()
    state = cluster_status.read(layout)
    if not state.ready:
        raise BenchRefused(f"the local cluster is not ready ({state.phase}: {state.message}); "
                           f"run `.venv/bin/python -m cluster up` (or `make cluster`) first")
    return str(layout.admin_kubeconfig)


def point_site_at(kubeconfig: str) -> None:
    """The site (and Django in this process) use this cluster, as tests/kubernetes/real_cluster.py
    points the settings: set before the site starts, which copies this environment."""
    os.environ["TUTORIAL_KUBECONFIG"] = kubeconfig
    os.environ["TUTORIAL_K8S_CONTEXT"] = ""
    os.environ.setdefault("TUTORIAL_K8S_TOOLBOX_NETWORK", DOCKER_NETWORK)
    os.environ.setdefault("TUTORIAL_K8S_API_INTERNAL_SERVER", "")


def time_cluster_restart() -> float:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "cluster", "restart"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise BenchRefused(f"`python -m cluster restart` failed: {(result.stderr or result.stdout).strip()[-2000:]}")
    return elapsed


# -- learners -------------------------------------------------------------------------------------
class LessonLearner(Learner):
    """bench/console.py's learner, on any lesson's page."""

    async def start(self, lesson: str) -> str:
        async with self.http.get(f"{self.base_url}/lessons/{lesson}/") as response:
            await response.read()
        token = self.http.cookie_jar.filter_cookies(yarl.URL(self.base_url))["csrftoken"].value
        async with self.http.post(
            f"{self.base_url}/sandboxes/start/{lesson}/", headers={"X-CSRFToken": token, "HX-Request": "true"}
        ) as response:
            body = await response.text()
        match = re.search(r'data-sandbox-id="([0-9a-f-]+)"', body)
        if not match:
            reason = re.search(r'class="[^"]*(?:error|failure)[^"]*"[^>]*>([^<]+)', body)
            raise RuntimeError(f"no {lesson} sandbox started: {(reason.group(1) if reason else body[:500]).strip()}")
        self.sandbox_id = match.group(1)
        return self.sandbox_id


async def ready_time(learner: LessonLearner, lesson: str, started_ids: list[str]) -> float:
    """Start -> first prompt byte on the console, in seconds (the sandbox stays running)."""
    try:
        started = time.perf_counter()
        started_ids.append(await learner.start(lesson))
        await learner.attach()
        await learner.read_until(PROMPT, timeout=120)
        return time.perf_counter() - started
    finally:
        await learner.close()


async def ready_times(base_url: str, names: list[str], lesson: str, started_ids: list[str]) -> list[float]:
    """Ready times of learners pressing Start at the same moment: all are signed in first (a new
    user's password hash takes a while, and would stagger the starts)."""
    learners = [await LessonLearner.signed_in(base_url, name) for name in names]
    return list(await asyncio.gather(*(ready_time(learner, lesson, started_ids) for learner in learners)))


async def pod_start_times(sandbox_id: str, count: int) -> list[float]:
    """``kubectl apply`` of a lesson pod in the learner's toolbox until ``kubectl wait`` sees it
    Running, one pod after another; the time includes the two kubectl runs, as a learner's would."""
    from django.conf import settings

    from sandbox.models import Sandbox
    from sandbox.services import get_backend

    sandbox = await Sandbox.objects.aget(pk=sandbox_id)
    backend = get_backend(sandbox.workspace)
    image = f"{settings.KUBERNETES_LESSON_REGISTRY}/tutorial/base:latest"
    times = []
    for number in range(count):
        name = f"bench-{number}"
        script = (f"kubectl apply -f - >/dev/null <<'EOF'\n{POD.format(name=name, image=image)}EOF\n"
                  f"kubectl wait --for=jsonpath='{{.status.phase}}'=Running pod/{name} --timeout=60s")
        started = time.perf_counter()
        result = await backend.run(sandbox.engine_ref, script, timeout=90)
        elapsed = time.perf_counter() - started
        if result.exit_code != 0:
            problems = await backend.pod_problems(sandbox_id)
            raise RuntimeError(f"pod {name} did not run: {result.output.strip()[-500:]} {problems}")
        times.append(elapsed)
    return times


async def wait_for_namespaces_gone(sandbox_ids: list[str]) -> int:
    """How many of these sandboxes still hold a namespace or toolbox after CLEANUP_WAIT seconds."""
    from sandbox.services import get_backend

    backend = get_backend("kubernetes")
    wanted = set(sandbox_ids)
    deadline = time.monotonic() + CLEANUP_WAIT
    while True:
        left = wanted & set(await backend.list_owned())
        if not left or time.monotonic() > deadline:
            return len(left)
        await asyncio.sleep(1)


# -- the run --------------------------------------------------------------------------------------
def summary(values: list[float]) -> tuple[float, float]:
    return round(statistics.median(values), 3), round(percentile(values, 95), 3)


async def main(args) -> dict:
    kubeconfig = cluster_kubeconfig()
    if args.cluster_start and Path(kubeconfig).resolve() != Layout.from_environment().admin_kubeconfig:
        raise BenchRefused(f"--cluster-start restarts this machine's local cluster, but the bench uses {kubeconfig}")
    cluster_start = time_cluster_restart() if args.cluster_start else None
    point_site_at(kubeconfig)
    k8s_ids: list[str] = []
    docker_ids: list[str] = []
    async with running_site() as (base_url, _):
        from sandbox.backends.base import BackendError
        from sandbox.services import get_backend

        try:
            await get_backend("kubernetes").ping()
        except BackendError as exc:
            raise BenchRefused(f"the cluster at {kubeconfig} does not answer: {exc}") from exc
        await ready_times(base_url, ["warmup-docker"], DOCKER_LESSON, docker_ids)
        await ready_times(base_url, ["warmup-k8s"], K8S_LESSON, k8s_ids)
        docker, k8s = [], []
        for i in range(args.runs):  # alternating: both see the same machine
            docker += await ready_times(base_url, [f"docker-{i}"], DOCKER_LESSON, docker_ids)
            k8s += await ready_times(base_url, [f"k8s-{i}"], K8S_LESSON, k8s_ids)
        together = range(args.concurrent)
        docker_concurrent = await ready_times(base_url, [f"docker-conc-{i}" for i in together], DOCKER_LESSON, docker_ids)
        concurrent = await ready_times(base_url, [f"k8s-conc-{i}" for i in together], K8S_LESSON, k8s_ids)
        pods = await pod_start_times(k8s_ids[0], args.pods)
    # running_site has stopped every sandbox; the cluster deletes their namespaces in the background.
    leftovers = await wait_for_namespaces_gone(k8s_ids)

    k8s_p50, k8s_p95 = summary(k8s)
    docker_p50, docker_p95 = summary(docker)
    pod_p50, pod_p95 = summary(pods)
    result = {
        "k8s_ready_p50_s": k8s_p50,
        "k8s_ready_p95_s": k8s_p95,
        "docker_ready_p50_s": docker_p50,
        "docker_ready_p95_s": docker_p95,
        f"k8s_ready{args.concurrent}_p95_s": round(percentile(concurrent, 95), 3),
        f"docker_ready{args.concurrent}_p95_s": round(percentile(docker_concurrent, 95), 3),
        "pod_start_p50_s": pod_p50,
        "pod_start_p95_s": pod_p95,
        "cluster_start_s": round(cluster_start, 1) if cluster_start is not None else None,
        "samples": {"k8s_ready": len(k8s), "docker_ready": len(docker), "k8s_concurrent": len(concurrent),
                    "docker_concurrent": len(docker_concurrent), "pod_start": len(pods),
                    "cluster_start": 0 if cluster_start is None else 1},
        "cores": os.cpu_count(),
        "leftover_sandboxes": leftovers,
    }
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--runs", type=int, default=10, help="sequential starts of each kind")
    parser.add_argument("--concurrent", type=int, default=10, help="sandboxes of each kind started at once")
    parser.add_argument("--pods", type=int, default=10, help="lesson pods started one after another")
    parser.add_argument("--cluster-start", action="store_true",
                        help="first restart the local cluster (stops every pod on it) and time it")
    options = parser.parse_args()
    try:
        outcome = asyncio.run(main(options))
    except BenchRefused as exc:
        print(f"bench/kubernetes.py: {exc}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(outcome) if options.json else json.dumps(outcome, indent=2))
