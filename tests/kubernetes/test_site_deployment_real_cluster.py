"""The site deployed on the real cluster from deploy/kubernetes, driven as a class would drive it.

``scripts/deploy-cluster.sh`` builds the image offline (cached), pushes it to the classroom
registry and deploys the whole install into a namespace of this test's own, removed afterwards.
Everything then goes over HTTP and websockets to the site's Service (its cluster IP, which this
machine routes to, load-balanced over the replicas): a visitor joins a classroom as a guest,
starts a sandbox (a pod: no Docker engine is reachable from the site), types in its console,
presses Check; the instructor sees the learner and the passed step on the dashboard. Then the
site pod serving that console is deleted mid-session, and the console reconnects (through the
Service, to a replica still alive) to the same shell: a variable set before is still there.
The learner writes a file and stops; every site pod is then replaced, so the replica that serves
the next Start never saw the home saved (each has its own emptyDir): the file is back all the same,
from the database. One of the two reapers holds the Lease; when its pod goes, the other takes it over.

A guest also takes a Kubernetes lesson there: its console is a toolbox pod in the install's tools
namespace, kubectl reaches the learner's own namespace and nothing cluster-wide, and Check fails
before the step's own solution and passes after it. The install has one toolbox NetworkPolicy
while it runs, and none anywhere once it is deleted.

Under ``CI`` a missing part (cluster, Docker engine for the image build, registry) fails.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import requests
import websocket

from lessons.catalogue import get_lesson

from .real_cluster import build_toolbox_image, require_cluster

REPO = Path(__file__).resolve().parents[2]
LESSON = "what-is-a-container"
STEP = "processes-and-pid-1"
DEPLOY_TIMEOUT = 1500  # a first image build bootstraps Debian (minutes); later runs take seconds


def _fail_or_skip(message: str):
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def kubectl_program() -> str:
    """kubectl on PATH, else the one this machine's cluster built (deploy-cluster.sh does the same)."""
    from cluster.layout import Layout

    built = Layout.from_environment().program("kubectl")
    return shutil.which("kubectl") or (str(built) if built.is_file() else "")


def kubectl(kubeconfig: str, *args: str, timeout: float = 60, check: bool = True) -> str:
    result = subprocess.run([kubectl_program(), f"--kubeconfig={kubeconfig}", "--request-timeout=30s", *args],
                            capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr[-2000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def deployed_site():
    kubeconfig = require_cluster()
    if not kubectl_program():
        _fail_or_skip("no kubectl: not on PATH, and the local cluster has not built one (make cluster)")
    if shutil.which("debootstrap") is None:
        _fail_or_skip("debootstrap is needed to build the site's image: apt-get install debootstrap")
    try:
        urllib.request.urlopen("http://127.0.0.1:5000/v2/", timeout=5)
    except OSError as exc:
        _fail_or_skip(f"no classroom registry at 127.0.0.1:5000 ({exc}): scripts/start-registry.sh")
    namespace = f"tutorial-e2e-{secrets.token_hex(3)}"
    env = {**os.environ, "KUBECONFIG": kubeconfig, "KUBECTL": kubectl_program()}
    started = time.monotonic()
    try:
        result = subprocess.run(["./scripts/deploy-cluster.sh", "--namespace", namespace], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=DEPLOY_TIMEOUT)
        assert result.returncode == 0, f"deploy failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        print(f"build + deploy: {time.monotonic() - started:.0f} s")
        address = kubectl(kubeconfig, "-n", namespace, "get", "service", "site", "-o",
                          "jsonpath={.spec.clusterIP}").strip()
        yield Site(kubeconfig, namespace, f"http://{address}", f"site.{namespace}.svc")
    finally:
        removed = subprocess.run(["./scripts/deploy-cluster.sh", "--namespace", namespace, "--delete"], cwd=REPO,
                                 env=env, capture_output=True, text=True, timeout=240)
        assert removed.returncode == 0, removed.stderr
        left = kubectl(kubeconfig, "get", "clusterrole,clusterrolebinding", "-o", "name", check=False)
        assert f"tutorial-site-{namespace}" not in left, "the install's cluster-wide RBAC was left behind"
        policies = kubectl(kubeconfig, "get", "networkpolicies", "--all-namespaces", "-l",
                           f"tutorial.install={namespace}", "-o", "name")
        assert not policies.split(), f"the install's network policies were left behind: {policies}"


class Site:
    """The deployed site as a client reaches it: the Service's address, with the Host header of
    its in-cluster name (DJANGO_ALLOWED_HOSTS)."""

    def __init__(self, kubeconfig: str, namespace: str, url: str, host: str):
        self.kubeconfig, self.namespace, self.url, self.host = kubeconfig, namespace, url, host

    def session(self) -> requests.Session:
        session = requests.Session()
        session.headers["Host"] = self.host
        return session

    def post(self, session: requests.Session, path: str, data: dict | None = None, *, htmx: bool = False,
             **kwargs) -> requests.Response:
        """A form POST with the CSRF token; ``htmx`` as the page's buttons send it (a partial back)."""
        token = session.cookies.get("csrftoken")
        assert token, "no CSRF cookie yet: GET a page first"
        headers = {"X-CSRFToken": token, "Referer": f"http://{self.host}{path}"}
        if htmx:
            headers["HX-Request"] = "true"
        return session.post(self.url + path, data=data or {}, timeout=120, headers=headers, **kwargs)

    def console(self, session: requests.Session, sandbox_id: str) -> websocket.WebSocket:
        cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
        return websocket.create_connection(
            f"{self.url.replace('http://', 'ws://')}/ws/sandboxes/{sandbox_id}/console/", timeout=30,
            host=self.host, origin=f"http://{self.host}", cookie=cookie)

    def manage_shell(self, script: str) -> str:
        # A running site pod, not `deploy/site`: right after pods were replaced, that may name one
        # still in its init container ("container not found").
        deadline = time.monotonic() + 120
        while not (running := self.site_pods()):
            assert time.monotonic() < deadline, "no site pod runs"
            time.sleep(1)
        return kubectl(self.kubeconfig, "-n", self.namespace, "exec", running[0], "-c", "site", "--",
                       "python", "manage.py", "shell", "-c", script, timeout=120)

    def saved_homes(self) -> int:
        """How many stopped sandboxes' homes the database keeps."""
        return int(kubectl(self.kubeconfig, "-n", self.namespace, "exec", "deploy/postgres", "-c", "postgres", "--",
                           "psql", "-h", "/tmp", "-U", "tutorial", "-d", "tutorial", "-tAc",
                           "select count(*) from sandbox_savedhome").strip())

    def replace_site_pods(self, timeout: float = 180) -> None:
        """Delete every site pod, and return once the old ones are gone and as many new ones are Ready."""
        def pods() -> list[dict]:
            return json.loads(kubectl(self.kubeconfig, "-n", self.namespace, "get", "pods", "-l",
                                      "app.kubernetes.io/name=site", "-o", "json"))["items"]

        old = {pod["metadata"]["name"] for pod in pods()}
        # One deleted earlier (the pod that served a console) may vanish between the list and this.
        kubectl(self.kubeconfig, "-n", self.namespace, "delete", "pods", *old, "--wait=false", "--ignore-not-found")
        deadline = time.monotonic() + timeout
        while True:
            now = pods()
            ready = [pod for pod in now if pod["metadata"]["name"] not in old
                     and any(condition["type"] == "Ready" and condition["status"] == "True"
                             for condition in pod["status"].get("conditions", []))]
            if len(ready) == len(now) >= len(old):
                return
            states = {pod["metadata"]["name"]: (pod["status"].get("phase"), pod["status"].get("conditions"),
                                                pod["status"].get("initContainerStatuses"),
                                                pod["status"].get("containerStatuses")) for pod in now}
            assert time.monotonic() < deadline, f"the site pods were not replaced (old: {old}): {states}"
            time.sleep(1)

    def site_pods(self) -> list[str]:
        answer = json.loads(kubectl(self.kubeconfig, "-n", self.namespace, "get", "pods", "-l",
                                    "app.kubernetes.io/name=site", "-o", "json"))
        return [pod["metadata"]["name"] for pod in answer["items"]
                if not pod["metadata"].get("deletionTimestamp") and pod["status"].get("phase") == "Running"]


class Console:
    """A console websocket read until what the learner waits for shows up."""

    def __init__(self, ws: websocket.WebSocket):
        self.ws = ws
        self.screen = b""
        self.states: list[str] = []

    def read_until(self, predicate, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"timed out; states {self.states}, screen {self.screen[-800:]!r}"
            self.ws.settimeout(remaining)
            opcode, data = self.ws.recv_data()
            if opcode == websocket.ABNF.OPCODE_BINARY:
                self.screen += data
            elif opcode == websocket.ABNF.OPCODE_TEXT:
                message = json.loads(data)
                if message.get("type") == "state" or "state" in message:
                    self.states.append(message.get("state", ""))
            elif opcode == websocket.ABNF.OPCODE_CLOSE:
                raise ConnectionError(f"closed: {data[:2].hex()} {data[2:]!r}")

    def type(self, text: str) -> None:
        self.ws.send_binary(text.encode())

    def closed_within(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                opcode, _ = self.ws.recv_data()
            except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
                return True
            except websocket.WebSocketTimeoutException:
                return False
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return True
        return False


INSTRUCTOR = """
from django.contrib.auth import get_user_model
from classroom import roster
teacher = get_user_model().objects.create_user("{teacher}", password="{password}")
roster.grant_instructor(teacher)
room = roster.create_classroom(teacher, "On the cluster", ["{lesson}"])
print(room.pk, room.join_code)
"""


def join_as_guest(site: Site, join_code: str, name: str) -> requests.Session:
    """A visitor follows the classroom's join link: that makes them a guest."""
    learner = site.session()
    assert learner.get(f"{site.url}/classrooms/join/{join_code}/", timeout=30).status_code == 200
    joined = site.post(learner, f"/classrooms/join/{join_code}/", {"display_name": name}, allow_redirects=False)
    assert joined.status_code in (302, 303), joined.text[:500]
    return learner


def start_sandbox(site: Site, learner: requests.Session, lesson: str) -> str:
    """Start, as the lesson page's button does: the pane names the new sandbox."""
    pane = site.post(learner, f"/sandboxes/start/{lesson}/", htmx=True)
    assert pane.status_code == 200, pane.text[:500]
    found = re.search(r'data-sandbox-id="([0-9a-f-]{36})"', pane.text)
    assert found, pane.text[:1000]
    return found.group(1)


def check(site: Site, learner: requests.Session, lesson: str, step: str) -> tuple[str, str]:
    """Press Check: the verdict (``passed``, ``failed``, ...) and the feedback the learner reads."""
    answer = site.post(learner, f"/lessons/{lesson}/steps/{step}/check/", htmx=True)
    assert answer.status_code == 200, answer.text[:500]
    outcome = re.search(r'data-outcome="([a-z_]+)"', answer.text)
    assert outcome, answer.text[:1500]
    feedback = re.search(r'<pre class="feedback"[^>]*>(.*?)</pre>', answer.text, re.S)
    return outcome.group(1), feedback.group(1) if feedback else ""


@pytest.mark.timeout(DEPLOY_TIMEOUT + 600)  # the fixture's first build counts too
def test_a_learner_and_an_instructor_use_the_site_on_the_cluster_and_survive_losing_a_site_pod(deployed_site):
    site = deployed_site
    assert len(site.site_pods()) >= 2, "the site runs as several replicas"
    assert requests.get(site.url + "/healthz", headers={"Host": site.host}, timeout=10).json()["status"] == "ok"

    # One reaper of the two is active: the holder of the Lease.
    deadline = time.monotonic() + 60
    while not (holder := kubectl(site.kubeconfig, "-n", site.namespace, "get", "lease", "tutorial-reaper", "-o",
                                 "jsonpath={.spec.holderIdentity}", check=False).strip()):
        assert time.monotonic() < deadline, "no reaper took the Lease"
        time.sleep(1)
    reapers = kubectl(site.kubeconfig, "-n", site.namespace, "get", "pods", "-l", "app.kubernetes.io/name=reaper",
                      "-o", "jsonpath={.items[*].metadata.name}").split()
    assert len(reapers) == 2 and holder in reapers

    password = secrets.token_urlsafe(12)
    room_id, join_code = site.manage_shell(INSTRUCTOR.format(teacher="teacher", password=password,
                                                             lesson=LESSON)).split()[-2:]

    learner = join_as_guest(site, join_code, "Lena")
    assert learner.get(f"{site.url}/lessons/{LESSON}/steps/{STEP}/", timeout=30).status_code == 200
    sandbox_id = start_sandbox(site, learner, LESSON)

    console = Console(site.console(learner, sandbox_id))
    console.read_until(lambda c: "running" in c.states, timeout=180)
    marker = secrets.token_hex(4)
    # As lessons.js does once the sandbox runs: the step's setup (it starts the sleep whose PID is
    # this learner's answer). Then the step's answers: PID 1's name, and that PID.
    assert site.post(learner, f"/lessons/{LESSON}/steps/{STEP}/setup/", htmx=True).status_code in (200, 204)
    console.type(f"export MARKER={marker}; cat /proc/1/comm > ~/pid1.txt; until [ -s ~/.sleeper ]; do sleep 0.2; done;"
                 " cat ~/.sleeper > ~/sleep-pid.txt; echo typed-$((6*7))\r")
    console.read_until(lambda c: b"typed-42" in c.screen)

    check = site.post(learner, f"/lessons/{LESSON}/steps/{STEP}/check/", htmx=True)
    assert check.status_code == 200, check.text[:500]
    assert "Right: PID 1 here is" in check.text and "Right: that sleep is PID" in check.text, check.text[:1500]

    # The instructor signs in and sees the learner, with the step passed.
    instructor = site.session()
    instructor.get(f"{site.url}/accounts/login/", timeout=30)
    login = site.post(instructor, "/accounts/login/", {"username": "teacher", "password": password},
                      allow_redirects=False)
    assert login.status_code in (302, 303), login.text[:500]
    dashboard = instructor.get(f"{site.url}/classrooms/{room_id}/", timeout=30)
    assert dashboard.status_code == 200 and "Lena" in dashboard.text
    snapshot = instructor.get(f"{site.url}/classrooms/{room_id}/snapshot.json", timeout=30).json()
    passed = [key for key, cell in snapshot.get("cells", {}).items()
              if key.endswith(f":{LESSON}:{STEP}") and cell.get("passed_at")]
    assert passed, json.dumps(snapshot)[:2000]

    # Delete the site pod that serves this console (its daphne logged the websocket).
    serving = [pod for pod in site.site_pods()
               if f"/ws/sandboxes/{sandbox_id}/console/" in kubectl(site.kubeconfig, "-n", site.namespace, "logs",
                                                                    pod, "-c", "site", check=False)]
    assert len(serving) == 1, f"which pod serves the console? {serving}"
    kubectl(site.kubeconfig, "-n", site.namespace, "delete", "pod", serving[0], "--wait=false")
    assert console.closed_within(60), "the console stayed open on a deleted pod"

    # The page reconnects, through the Service, to a replica that is alive: the same shell.
    deadline = time.monotonic() + 120
    while True:
        try:
            again = Console(site.console(learner, sandbox_id))
            break
        except (OSError, websocket.WebSocketException):
            assert time.monotonic() < deadline, "the console did not reconnect"
            time.sleep(1)
    again.read_until(lambda c: "running" in c.states)
    again.type("echo marker-is-$MARKER; echo kept-$MARKER > ~/notes.txt; echo noted-$((6*7))\r")
    again.read_until(lambda c: f"marker-is-{marker}".encode() in c.screen and b"noted-42" in c.screen)
    again.ws.close()

    stopped = site.post(learner, f"/sandboxes/{sandbox_id}/stop/", htmx=True)
    assert stopped.status_code == 200, stopped.text[:500]

    # Every site pod goes: no replica that saved the home serves what follows.
    replacing = time.monotonic()
    site.replace_site_pods()
    print(f"every site pod replaced, the new ones Ready, {time.monotonic() - replacing:.0f} s after the deletion")

    # The stopped pane says the files are kept, the database holds them, and Start brings them back.
    pane = learner.get(f"{site.url}/sandboxes/{sandbox_id}/pane/", timeout=30)
    assert pane.status_code == 200 and "data-files-kept" in pane.text, pane.text[:1500]
    assert site.saved_homes() == 1
    started_again = time.monotonic()
    restarted = site.post(learner, f"/sandboxes/{sandbox_id}/restart/", htmx=True)
    assert restarted.status_code == 200 and f'data-sandbox-id="{sandbox_id}"' in restarted.text, restarted.text[:1500]
    back = Console(site.console(learner, sandbox_id))
    back.read_until(lambda c: "running" in c.states, timeout=180)
    back.type("cat ~/notes.txt\r")
    back.read_until(lambda c: f"kept-{marker}".encode() in c.screen)
    print(f"the kept file read back {time.monotonic() - started_again:.1f} s after Start again")
    back.ws.close()
    assert site.saved_homes() == 0, "the restored home was not deleted from the database"
    site.post(learner, f"/sandboxes/{sandbox_id}/stop/", htmx=True)

    # The active reaper's pod goes: another reaper takes the Lease over. The leaving holder gives
    # the Lease up, so either the other replica or the pod the Deployment starts in its place may
    # be first to take it.
    kubectl(site.kubeconfig, "-n", site.namespace, "delete", "pod", holder, "--wait=false")
    asked = time.monotonic()
    deadline = asked + 120
    while (taker := kubectl(site.kubeconfig, "-n", site.namespace, "get", "lease", "tutorial-reaper", "-o",
                            "jsonpath={.spec.holderIdentity}", check=False).strip()) in ("", holder):
        assert time.monotonic() < deadline, "no other reaper took the Lease over"
        time.sleep(1)
    now_running = kubectl(site.kubeconfig, "-n", site.namespace, "get", "pods", "-l", "app.kubernetes.io/name=reaper",
                          "-o", "jsonpath={.items[*].metadata.name}").split()
    assert taker in now_running, f"the Lease went to {taker}, not one of the reapers {now_running}"
    print(f"reaper Lease taken over by {'the other replica' if taker in reapers else 'a new pod'} "
          f"{time.monotonic() - asked:.0f} s after its holder's pod was deleted")


KUBERNETES_LESSON = "pods"


@pytest.fixture(scope="module")
def toolbox_in_registry(docker_client):
    """The toolbox image in the classroom registry, where the cluster's node pulls toolbox pods from."""
    return build_toolbox_image(docker_client, in_registry=True)


@pytest.mark.timeout(DEPLOY_TIMEOUT + 600)
def test_a_guest_takes_a_kubernetes_lesson_whose_console_is_a_pod_of_the_deployed_site(deployed_site,
                                                                                       toolbox_in_registry):
    site = deployed_site
    tools = f"{site.namespace}-tools"
    lesson = get_lesson(KUBERNETES_LESSON)
    first, second = lesson.steps[0], lesson.steps[1]  # write a pod manifest; apply it
    assert first.check and first.solution and second.check and second.solution

    _, join_code = site.manage_shell(INSTRUCTOR.format(teacher="k8s-teacher", password=secrets.token_urlsafe(12),
                                                       lesson=KUBERNETES_LESSON)).split()[-2:]
    learner = join_as_guest(site, join_code, "Kim")
    assert learner.get(f"{site.url}/lessons/{KUBERNETES_LESSON}/steps/{first.slug}/", timeout=30).status_code == 200
    started = time.monotonic()
    sandbox_id = start_sandbox(site, learner, KUBERNETES_LESSON)
    console = Console(site.console(learner, sandbox_id))
    console.read_until(lambda c: "running" in c.states, timeout=180)
    print(f"Kubernetes sandbox running {time.monotonic() - started:.1f} s after Start")

    # The console is a pod in the install's tools namespace, under the install's one policy.
    pods = kubectl(site.kubeconfig, "-n", tools, "get", "pods", "-l", f"tutorial.sandbox={sandbox_id}",
                   "-o", "jsonpath={.items[*].metadata.name}").split()
    assert len(pods) == 1, f"the console's pod in {tools}: {pods}"
    policies = kubectl(site.kubeconfig, "-n", tools, "get", "networkpolicies", "-o", "name").split()
    assert policies == [f"networkpolicy.networking.k8s.io/tutorial-toolboxes-{site.namespace}"], policies

    # kubectl answers in the learner's namespace, and refuses what is cluster-wide.
    console.type("kubectl get pods; kubectl get nodes; echo listed-$((6*7))\r")
    console.read_until(lambda c: b"listed-42" in c.screen)
    assert f"No resources found in tutorial-{sandbox_id} namespace".encode() in console.screen, console.screen[-1500:]
    assert b"(Forbidden): nodes is forbidden" in console.screen, console.screen[-1500:]

    # Each step: Check fails on the fresh state, the step's own solution typed into the console,
    # then Check passes.
    for number, step in enumerate((first, second)):
        outcome, feedback = check(site, learner, KUBERNETES_LESSON, step.slug)
        assert outcome == "failed", (step.slug, outcome, feedback)
        console.type(step.solution.strip().replace("\n", "\r") + f"\recho solved-{number}-$((6*7))\r")
        console.read_until(lambda c, n=number: f"solved-{n}-42".encode() in c.screen, timeout=150)
        checked = time.monotonic()
        outcome, feedback = check(site, learner, KUBERNETES_LESSON, step.slug)
        print(f"check of {step.slug}: {time.monotonic() - checked:.2f} s")
        assert outcome == "passed", (step.slug, outcome, feedback, console.screen[-1500:])
    console.ws.close()

    site.post(learner, f"/sandboxes/{sandbox_id}/stop/", htmx=True)
    deadline = time.monotonic() + 90
    while kubectl(site.kubeconfig, "-n", tools, "get", "pods", "-l", f"tutorial.sandbox={sandbox_id}", "-o", "name"):
        assert time.monotonic() < deadline, "the toolbox pod outlived its sandbox's stop"
        time.sleep(1)
