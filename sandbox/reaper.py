"""The reaper: applies the lifecycle limits and keeps the engine and the database in step.

One pass (:func:`reap_once`), run at start-up and then every ``SANDBOX_REAPER_INTERVAL_SECONDS``
by ``manage.py reap_sandboxes --loop``:

1. Reconcile the Docker engine: objects labelled ``tutorial.sandbox`` whose sandbox has no row on
   the engine (starting, running, stopping, pooled) are destroyed; running or pooled rows whose
   console container is missing become ``gone``, those whose container exited (the engine
   restarted) are stopped, each with a reason the learner reads; pooled rows whose container (or
   pod) runs are marked seen running (a claim may trust them, ``sandbox.pool``). Kubernetes sandboxes are left to
   the Kubernetes backend's own ``reconcile`` (only when a cluster is configured), and running
   ones whose learner token nears its expiry get a new one written into their console
   (``CREDENTIALS_PER_PASS`` at most per pass, the oldest sandboxes first).
2. Sandboxes stuck ``starting`` (their server died mid-create) are failed and cleaned up.
3. Time to live and idle timeout: warn, then stop (see ``sandbox.lifecycle.decide``).
4. Saved files of sandboxes whose time to live ran out are dropped; so are files of no sandbox.
   Running sandboxes whose learner was active get their home checkpointed (at most every
   ``SANDBOX_HOME_CHECKPOINT_SECONDS``), so an ``exit`` or an engine restart, which leave
   nothing to save at stop, lose only the last minutes.
5. The queue is promoted into freed room, and the warm pool refilled (or drained); behind a class
   at work the refill makes one sandbox at a time, spaced (``sandbox.pool``), so a pass stays short.
6. The install's NetworkPolicies on the cluster (sandbox and toolbox pods) are built afresh,
   each at most every ``policy_seconds``: the toolboxes' follows a moved API server.

When the engine does not answer, the engine steps wait for the next pass; nothing is marked gone
because of an outage.

One sandbox never holds up the others: every engine call has a deadline (the backend's), the
engine work of each sandbox runs on its own (a few at a time) and its failure is logged and
reported (``stuck``, ``failures``), never raised out of the pass; each step runs even when the one
before it failed. A container the engine will not let go of (an attach nobody reads keeps it
alive) is set aside: its row says why, and it is tried again on later passes (backing off to
``SET_ASIDE_MAX_SECONDS``) until it goes.

Only this install's objects are touched (``tutorial.install``, see
:func:`sandbox.backends.base.belongs_to_install`): another install on the same engine keeps its
sandboxes; an object from before installs were labelled is reconciled only when this install's
database has a row of its sandbox.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from . import events, home_files, lifecycle, local_cluster, pool, services, texts
from .backends.base import (
    LABEL_INSTALL,
    LABEL_ROLE,
    LABEL_SANDBOX,
    LABEL_WORKSPACE,
    ROLE_CONSOLE,
    BackendError,
    EngineTimeout,
    EngineUnavailable,
    SandboxStuck,
    belongs_to_install,
)
from .backends import k8s_api
from .backends.pod import PodBackend
from .models import Sandbox

log = logging.getLogger(__name__)

# Saved as the stop reason, in English; shown translated (sandbox.texts).
ENGINE_RESTARTED = texts.ENGINE_RESTARTED
CONTAINER_VANISHED = texts.CONTAINER_VANISHED
STUCK_STARTING = texts.STUCK_STARTING
TIME_UP = texts.TIME_UP


def idle_message(policy: lifecycle.Policy) -> str:
    return texts.render(texts.IDLE_STOPPED, minutes=max(1, policy.idle_seconds // 60))


@dataclasses.dataclass
class Report:
    orphans_removed: list[str] = dataclasses.field(default_factory=list)
    marked_gone: list[str] = dataclasses.field(default_factory=list)
    stopped_after_engine_restart: list[str] = dataclasses.field(default_factory=list)
    stuck_failed: list[str] = dataclasses.field(default_factory=list)
    expired: list[str] = dataclasses.field(default_factory=list)
    idle_stopped: list[str] = dataclasses.field(default_factory=list)
    warned: list[str] = dataclasses.field(default_factory=list)
    files_dropped: list[str] = dataclasses.field(default_factory=list)
    checkpointed: list[str] = dataclasses.field(default_factory=list)
    credentials_renewed: list[str] = dataclasses.field(default_factory=list)
    promoted: list[str] = dataclasses.field(default_factory=list)
    pool_created: int = 0
    pool_removed: int = 0
    engine_problem: str = ""
    # Sandboxes whose objects the engine would not let go of (set aside, tried again later).
    stuck: list[str] = dataclasses.field(default_factory=list)
    # "<sandbox id or step>: <error>" for anything else that failed for one sandbox or one step.
    failures: list[str] = dataclasses.field(default_factory=list)

    def summary(self) -> dict:
        return {k: (len(v) if isinstance(v, list) else v) for k, v in dataclasses.asdict(self).items()}


Scope = Callable[[str], bool]


def _everything(_sandbox_id: str) -> bool:
    return True


async def reap_once(scope: Scope | None = None, *, now: dt.datetime | None = None) -> Report:
    """One pass of the reaper. ``scope`` limits it to some sandbox ids (``--sandbox``; tests on
    an engine shared with other work); queue and pool steps run only without a scope. A step
    that fails is logged and reported, and the next one still runs. ``now`` is the clock the
    time to live and the idle timeout are judged by (tests pass a later one instead of waiting)."""
    in_scope = scope or _everything
    report = Report()
    # A site without a Docker engine (on a cluster, TUTORIAL_DOCKER_ENGINE=0) has none to
    # reconcile: its absence is no outage, and must not hold back the steps its pods need.
    if settings.DOCKER_ENGINE:
        try:
            await reconcile_docker(in_scope, report)
        except (EngineUnavailable, EngineTimeout) as exc:  # the listings: the engine itself is not answering
            report.engine_problem = str(exc)
            log.warning("reaper: engine steps wait for the engine: %s", exc)
        except Exception as exc:  # noqa: BLE001
            _step_failed(report, "reconcile", exc)
    await _step(report, "pods", reconcile_pods(in_scope, report))
    await _step(report, "kubernetes", _reconcile_kubernetes(in_scope, report))
    await _step(report, "kubernetes credentials", renew_kubernetes_credentials(in_scope, report))
    await _step(report, "stuck starts", fail_stuck_starting(in_scope, report, engine_up=not report.engine_problem))
    await _step(report, "limits", apply_limits(in_scope, report, now=now))
    await _step(report, "saved files", drop_expired_files(in_scope, report))
    if not report.engine_problem:
        await _step(report, "checkpoints", checkpoint_homes(in_scope, report))
    if scope is None:
        async def promote():
            report.promoted = [str(s.id) for s in await services.promote_queue()]

        await _step(report, "queue", promote())
        if not report.engine_problem:
            async def drain():
                report.pool_removed = await pool.drain()

            async def refill():
                report.pool_created = await pool.refill()

            await _step(report, "pool drain", drain())
            await _step(report, "pool refill", refill())
        await _step(report, "network policies", refresh_network_policies())
    return report


async def _step(report: Report, name: str, work: Awaitable) -> None:
    try:
        await work
    except Exception as exc:  # noqa: BLE001 - one step's failure must not cost the others
        _step_failed(report, name, exc)


def _step_failed(report: Report, name: str, exc: Exception) -> None:
    log.error("reaper: the %s step failed: %s", name, exc, exc_info=exc)
    report.failures.append(f"{name}: {exc}")


# -- one sandbox at a time, never blocking the others ---------------------------------------------
SANDBOX_CONCURRENCY = 8  # engine calls of several sandboxes at once: a stuck one waits only for itself
SET_ASIDE_MAX_SECONDS = 60.0

# Sandboxes whose objects would not go: {sandbox id: (failures so far, monotonic time of next try)}.
# Each try leaves the engine a request waiting on the wedged container, so tries back off.
_set_aside: dict[str, tuple[int, float]] = {}


def _due(sandbox_id: str, now: float) -> bool:
    entry = _set_aside.get(sandbox_id)
    return entry is None or now >= entry[1]


def _set_aside_again(sandbox_id: str, now: float) -> None:
    failures = _set_aside.get(sandbox_id, (0, 0.0))[0] + 1
    interval = settings.SANDBOX_REAPER_INTERVAL_SECONDS
    delay = min(SET_ASIDE_MAX_SECONDS, interval * 2 ** (failures - 1)) if failures > 1 else 0.0
    _set_aside[sandbox_id] = (failures, now + delay)


async def _for_each(report: Report, sandbox_ids, work: Callable[[str], Awaitable[None]], *,
                    set_aside: bool = True) -> None:
    """Run ``work(sandbox_id)`` for each id, a few at a time, each isolated: any failure goes to
    ``report.failures`` and the others carry on. With ``set_aside`` (for containers that will not
    go), a stuck sandbox is reported in ``report.stuck`` and tried again only after a back-off.
    The engine going down (:class:`EngineUnavailable`) is raised once everything finished."""
    gate = asyncio.Semaphore(SANDBOX_CONCURRENCY)
    down: list[EngineUnavailable] = []

    async def one(sandbox_id: str) -> None:
        if set_aside and not _due(sandbox_id, time.monotonic()):
            report.stuck.append(sandbox_id)  # still set aside: tried again after its back-off
            return
        async with gate:
            try:
                await work(sandbox_id)
                if set_aside:
                    _set_aside.pop(sandbox_id, None)
            except SandboxStuck as exc:
                if not set_aside:
                    report.failures.append(f"{sandbox_id}: {exc}")
                    return
                log.warning("reaper: sandbox %s set aside (tried again later): %s", sandbox_id, exc)
                _set_aside_again(sandbox_id, time.monotonic())
                report.stuck.append(sandbox_id)
                await _tell_stuck(sandbox_id, str(exc))
            except EngineUnavailable as exc:
                down.append(exc)
            except Exception as exc:  # noqa: BLE001 - logged and reported; the others carry on
                log.error("reaper: sandbox %s: %s", sandbox_id, exc, exc_info=exc)
                report.failures.append(f"{sandbox_id}: {exc}")

    await asyncio.gather(*(one(sandbox_id) for sandbox_id in sandbox_ids))
    if down:
        raise down[0]


async def _tell_stuck(sandbox_id: str, message: str) -> None:
    """A stopped sandbox whose container will not go: its row says why (the learner reads it)."""
    if not _is_uuid(sandbox_id):
        return
    sandbox = await Sandbox.objects.filter(pk=sandbox_id, state=Sandbox.State.STOPPED).afirst()
    if sandbox is None:
        return
    reason = f"{sandbox.failure_reason} {message}".strip()
    if await Sandbox.objects.filter(pk=sandbox.pk, state=Sandbox.State.STOPPED).aupdate(
            state=Sandbox.State.GONE, failure_reason=reason):
        sandbox.state, sandbox.failure_reason = Sandbox.State.GONE, reason
        await events.broadcast_state(sandbox)


# -- 1. reconciliation ---------------------------------------------------------------------------
def _docker_backend():
    # The docker workspace always runs on the Docker engine; plain sandboxes may be pods instead.
    return services.get_backend("docker")


def _plain_on_pods() -> bool:
    """Whether plain sandboxes are pods (``TUTORIAL_PLAIN_BACKEND=pod``), reconciled on the cluster."""
    return isinstance(services.get_backend("plain"), PodBackend)


async def _labelled_objects(backend) -> tuple[dict[str, dict], set[str]]:
    """This install's console containers ``{sandbox id: {"ref", "running"}}`` and every sandbox
    id any of its labelled containers, networks or volumes carries (Kubernetes toolboxes
    excluded). Three listings, each within the backend's deadline; they answer even while a
    container is wedged."""
    objects = []
    for kind in ("containers", "networks", "volumes"):
        objects += [(kind, item.get("Labels") or {}, item) for item in await backend.labelled(kind, [LABEL_SANDBOX])]
    objects = [entry for entry in objects if entry[1].get(LABEL_WORKSPACE) != "kubernetes"
               and _is_uuid(entry[1].get(LABEL_SANDBOX, ""))]
    # Objects with no install label are ours only when our database knows their sandbox.
    unlabelled = {labels[LABEL_SANDBOX] for _kind, labels, _item in objects if not labels.get(LABEL_INSTALL)}
    known = await _known_ids(unlabelled) if unlabelled else set()
    install = settings.INSTALL_ID
    consoles: dict[str, dict] = {}
    ids: set[str] = set()
    for kind, labels, item in objects:
        if not belongs_to_install(labels, install, known):
            continue
        sandbox_id = labels[LABEL_SANDBOX]
        ids.add(sandbox_id)
        if kind == "containers" and labels.get(LABEL_ROLE) == ROLE_CONSOLE:
            consoles[sandbox_id] = {"ref": item["Id"], "running": item.get("State") == "running"}
    return consoles, ids


@sync_to_async
def _known_ids(sandbox_ids: set[str]) -> set[str]:
    return {str(pk) for pk in Sandbox.objects.filter(pk__in=sandbox_ids).values_list("pk", flat=True)}


@sync_to_async
def _rows_on_engine(workspaces: tuple[str, ...]) -> dict[str, Sandbox]:
    rows = Sandbox.objects.filter(state__in=Sandbox.ENGINE_STATES, workspace__in=workspaces)
    return {str(s.id): s for s in rows.select_related("owner")}


async def reconcile_docker(in_scope: Scope, report: Report) -> None:
    """Raises :class:`EngineUnavailable` or :class:`EngineTimeout` only when the engine cannot
    list its objects; what goes wrong for one sandbox is reported and the others carry on."""
    backend = _docker_backend()
    listed_at = timezone.now()
    consoles, labelled_ids = await _labelled_objects(backend)
    on_pods = await sync_to_async(_plain_on_pods)()
    rows = await _rows_on_engine(("docker",) if on_pods else ("plain", "docker"))
    if on_pods:
        # A plain sandbox's container left from before the switch to pods is an orphan only when
        # its row is not live; a live one's row is the pod backend's to settle.
        plain_live = set(await _rows_on_engine(("plain",)))
        labelled_ids -= plain_live
        consoles = {i: c for i, c in consoles.items() if i not in plain_live}
    await _reconcile_engine(backend, consoles, labelled_ids, rows, in_scope, report, listed_at)


async def reconcile_pods(in_scope: Scope, report: Report) -> None:
    """The same reconciliation for plain sandboxes that are pods (only when they are): pods of
    no live row go; live rows whose pod vanished or ended are marked gone or stopped."""
    if not await sync_to_async(_plain_on_pods)():
        return
    backend = services.get_backend("plain")
    listed_at = timezone.now()
    try:
        consoles = await backend.consoles()
    except BackendError as exc:  # the cluster is down, being built, or not configured: next pass
        log.warning("reaper: the sandbox pods could not be listed now: %s", exc)
        return
    rows = await _rows_on_engine(("plain",))
    await _reconcile_engine(backend, consoles, set(consoles), rows, in_scope, report, listed_at)


async def _reconcile_engine(backend, consoles: dict[str, dict], labelled_ids: set[str], rows: dict[str, Sandbox],
                            in_scope: Scope, report: Report, listed_at: dt.datetime) -> None:
    """Orphans (labelled objects of no live row) are destroyed; live rows whose console is
    missing are marked gone, those whose console exited are stopped; pooled rows whose console
    runs were seen running when the engine was listed (``listed_at``: a claim trusts them)."""

    # Engine objects of no live sandbox: orphans (a row deleted, a stop whose destroy failed, a
    # server killed between creating and recording). Removed with the backend's own destroy,
    # which also removes what the learner made through the gateway.
    async def remove_orphan(sandbox_id: str) -> None:
        # Re-read: a start in another process may have made the row since the listing.
        if await Sandbox.objects.filter(pk=sandbox_id, state__in=Sandbox.ENGINE_STATES).aexists():
            return
        await backend.destroy(sandbox_id)
        report.orphans_removed.append(sandbox_id)

    # Rows whose engine objects vanished or stopped underneath them.
    async def settle(sandbox_id: str) -> None:
        sandbox = rows[sandbox_id]
        console = consoles.get(sandbox_id)
        fresh = await Sandbox.objects.filter(pk=sandbox_id).afirst()
        if fresh is None or fresh.state != sandbox.state:
            return  # it moved on meanwhile (stopped, claimed)
        if fresh.state == Sandbox.State.POOLED:
            await pool.drain_one(fresh)
            return
        if console is None:
            fresh.state = Sandbox.State.GONE
            fresh.failure_reason = CONTAINER_VANISHED
            fresh.stopped_at = timezone.now()
            await sync_to_async(fresh.save)(update_fields=["state", "failure_reason", "stopped_at"])
            await events.broadcast_state(fresh)
            report.marked_gone.append(sandbox_id)
            await backend.destroy(sandbox_id)  # whatever else is labelled for it
        else:
            await services.stop_sandbox(fresh, reason=ENGINE_RESTARTED)
            report.stopped_after_engine_restart.append(sandbox_id)

    orphans = [i for i in sorted(labelled_ids - set(rows)) if in_scope(i)]
    unsettled = [i for i, s in rows.items() if in_scope(i) and s.state in (Sandbox.State.RUNNING, Sandbox.State.POOLED)
                 and not (consoles.get(i) or {}).get("running")]

    async def reconcile_one(sandbox_id: str) -> None:
        await (remove_orphan(sandbox_id) if sandbox_id not in rows else settle(sandbox_id))

    await _for_each(report, orphans + unsettled, reconcile_one)
    await pool.seen_running([i for i, s in rows.items() if in_scope(i) and s.state == Sandbox.State.POOLED
                             and (consoles.get(i) or {}).get("running")], listed_at)
    # Forget set-aside sandboxes that went meanwhile (by a later destroy, or by hand).
    for sandbox_id in list(_set_aside):
        if sandbox_id not in labelled_ids and in_scope(sandbox_id):
            _set_aside.pop(sandbox_id, None)


def _cluster_configured() -> bool:
    """A Kubernetes workspace and a cluster: a kubeconfig, or the site's own pod account."""
    return "kubernetes" in settings.SANDBOX_BACKENDS and bool(
        getattr(settings, "KUBERNETES_KUBECONFIG", "") or k8s_api.in_cluster(""))


async def _reconcile_kubernetes(in_scope: Scope, report: Report) -> None:
    """Hand the live Kubernetes ids to that backend's reconcile, only when a cluster is set."""
    if not _cluster_configured():
        return
    if local_cluster.operator_problem(settings)[0]:
        return  # the local cluster is being built or is stopped: nothing of it to reconcile yet
    try:
        backend = services.get_backend("kubernetes")
        # The cluster first, then the rows: a sandbox's row is written before its namespace and
        # console are made, so whatever the listing found has its row by the time the rows are
        # read. Read the other way round, a sandbox started between the two reads (its row too
        # new, its console already there) was an orphan, and its start failed as the console was
        # deleted under it. Only what was listed before the rows were read may be removed.
        listed = set(await backend.list_owned())
        live = await sync_to_async(list)(
            Sandbox.objects.filter(workspace="kubernetes", state__in=Sandbox.ENGINE_STATES).values_list("pk", flat=True))
        removed = await backend.reconcile([str(pk) for pk in live],
                                          in_scope=lambda sandbox_id: sandbox_id in listed and in_scope(sandbox_id))
        report.orphans_removed.extend(removed)
    except (BackendError, ImportError, OSError) as exc:
        log.warning("reaper: the Kubernetes cluster could not be reconciled now: %s", exc)


def _backends_with_policies() -> list[PodBackend]:
    """The pod backends whose pods an install NetworkPolicy guards: plain sandbox pods, and
    Kubernetes lessons' toolbox pods (their policy names the API server's addresses)."""
    found = []
    if _plain_on_pods():
        found.append(services.get_backend("plain"))
    if settings.KUBERNETES_TOOLBOX == "pod" and _cluster_configured():
        toolbox = getattr(services.get_backend("kubernetes"), "toolbox", None)
        if isinstance(toolbox, PodBackend):
            found.append(toolbox)
    return found


async def refresh_network_policies() -> None:
    """Build the install's NetworkPolicies afresh (each at most every ``policy_seconds``): the
    toolboxes' follows the API server to a new address, and a policy deleted or edited by hand
    comes back while pods of the install need it. Never a second policy: the name is the install's."""
    if local_cluster.operator_problem(settings)[0]:
        return
    for backend in await sync_to_async(_backends_with_policies)():
        try:
            await backend.apply_namespace_policy(refresh=True)
        except BackendError as exc:
            log.warning("reaper: the network policy in %s could not be refreshed now: %s", backend.namespace, exc)


CREDENTIALS_PER_PASS = 20  # renewals per pass, oldest sandboxes first; a token is renewed with a third of its life left


async def renew_kubernetes_credentials(in_scope: Scope, report: Report) -> None:
    """Renew the learner token of running Kubernetes sandboxes before it expires, so the console
    never loses the cluster under the learner (see ``KubernetesBackend.credentials_due``)."""
    if not _cluster_configured():
        return
    if local_cluster.operator_problem(settings)[0]:
        return  # renewed once the cluster is back; a token that expired meanwhile says so in checks
    backend = services.get_backend("kubernetes")
    running = {str(s.id): s.engine_ref async for s in Sandbox.objects.filter(
        workspace="kubernetes", state=Sandbox.State.RUNNING).exclude(engine_ref="").order_by("started_at")
        if in_scope(str(s.id))}
    due: set[str] = set()

    async def check(sandbox_id: str) -> None:
        if await backend.credentials_due(sandbox_id):
            due.add(sandbox_id)

    async def renew(sandbox_id: str) -> None:
        # Re-read: a stop or a reset meanwhile leaves no console, or a new one with a fresh token.
        if not await Sandbox.objects.filter(pk=sandbox_id, state=Sandbox.State.RUNNING,
                                            engine_ref=running[sandbox_id]).aexists():
            return
        await backend.refresh_credentials(sandbox_id, running[sandbox_id])
        report.credentials_renewed.append(sandbox_id)

    try:
        await _for_each(report, list(running), check, set_aside=False)
        chosen = [i for i in running if i in due][:CREDENTIALS_PER_PASS]
        await _for_each(report, chosen, renew, set_aside=False)
    except EngineUnavailable as exc:
        log.warning("reaper: Kubernetes credentials could not be renewed now: %s", exc)


# -- 2. stuck starts -----------------------------------------------------------------------------
async def fail_stuck_starting(in_scope: Scope, report: Report, *, engine_up: bool) -> None:
    limit = timezone.now() - dt.timedelta(seconds=settings.SANDBOX_START_TIMEOUT_SECONDS)
    stuck = [s async for s in Sandbox.objects.filter(state=Sandbox.State.STARTING, started_at__lt=limit)]
    for sandbox in stuck:
        if not in_scope(str(sandbox.id)):
            continue
        won = await Sandbox.objects.filter(pk=sandbox.pk, state=Sandbox.State.STARTING, started_at=sandbox.started_at
                                           ).aupdate(state=Sandbox.State.FAILED, failure_reason=STUCK_STARTING)
        if not won:
            continue
        sandbox.state, sandbox.failure_reason = Sandbox.State.FAILED, STUCK_STARTING
        if sandbox.owner_id is None:  # a pool refill that never finished: nobody to tell
            await Sandbox.objects.filter(pk=sandbox.pk).adelete()
        else:
            await events.broadcast_state(sandbox)
        if engine_up:
            try:
                await services.get_backend(sandbox.workspace).destroy(str(sandbox.id))
            except BackendError as exc:
                log.warning("reaper: could not clean up stuck sandbox %s now: %s", sandbox.id, exc)
        report.stuck_failed.append(str(sandbox.id))


# -- 3. time to live and idleness -------------------------------------------------------------------
async def apply_limits(in_scope: Scope, report: Report, *, now: dt.datetime | None = None) -> None:
    now = now or timezone.now()
    running = [s async for s in Sandbox.objects.filter(state=Sandbox.State.RUNNING, owner__isnull=False)]
    due: dict[str, tuple[Sandbox, lifecycle.Policy, lifecycle.Action]] = {}
    for sandbox in running:
        if not in_scope(str(sandbox.id)):
            continue
        try:
            policy = lifecycle.policy_for(sandbox.lesson)
        except ValueError as exc:
            log.error("reaper: %s", exc)
            continue
        action = lifecycle.decide(sandbox, policy, now)
        if action is not lifecycle.Action.NONE:
            due[str(sandbox.id)] = (sandbox, policy, action)

    async def act(sandbox_id: str) -> None:
        sandbox, policy, action = due[sandbox_id]
        # Re-read right before acting: the learner may have typed or extended meanwhile.
        await sandbox.arefresh_from_db()
        if sandbox.state != Sandbox.State.RUNNING or lifecycle.decide(sandbox, policy, now) is not action:
            return
        if action is lifecycle.Action.EXPIRE:
            await _stop(sandbox, reason=TIME_UP, keep_files=False)
            report.expired.append(str(sandbox.id))
        elif action is lifecycle.Action.IDLE_STOP:
            await _stop(sandbox, reason=idle_message(policy), keep_files=True)
            report.idle_stopped.append(str(sandbox.id))
        else:
            left = lifecycle.seconds_left(sandbox, policy, now) or 0
            minutes = max(1, round(left / 60))
            if action is lifecycle.Action.WARN_EXPIRY:
                sandbox.expiry_warned_at = now
                field = "expiry_warned_at"
                warning = texts.WARN_EXPIRY_EXTEND if lifecycle.extensions_left(sandbox, policy) else texts.WARN_EXPIRY
                message = texts.render(warning, minutes=minutes)
            else:
                sandbox.idle_warned_at = now
                field = "idle_warned_at"
                message = texts.render(texts.WARN_IDLE, minutes=minutes)
            await sync_to_async(sandbox.save)(update_fields=[field])
            await events.send_notice(sandbox.id, message)
            await events.broadcast_timer(sandbox)
            report.warned.append(str(sandbox.id))

    # Each sandbox on its own (a few at a time): one whose container is stuck waits only for itself.
    await _for_each(report, list(due), act)


async def _stop(sandbox: Sandbox, *, reason: str, keep_files: bool) -> None:
    """Stop for the reaper: a container the engine would not let go of is reported as stuck
    (the stop itself marked the row gone with the reason)."""
    await services.stop_sandbox(sandbox, reason=reason, keep_files=keep_files)
    if sandbox.state == Sandbox.State.GONE:
        raise SandboxStuck(sandbox.failure_reason)


# -- 4. saved files ------------------------------------------------------------------------------
async def drop_expired_files(in_scope: Scope, report: Report) -> None:
    now = timezone.now()
    for sandbox_id in await home_files.kept_sandbox_ids():
        if not in_scope(sandbox_id):
            continue
        sandbox = await Sandbox.objects.filter(pk=sandbox_id).afirst() if _is_uuid(sandbox_id) else None
        if sandbox is not None and sandbox.state in Sandbox.HELD_STATES + (Sandbox.State.STOPPING,):
            continue  # in use: restored on start, or being written by a stop
        if sandbox is None or lifecycle.files_expired(sandbox, now):
            await home_files.drop(sandbox_id)
            if sandbox is not None and sandbox.files_saved_at is not None:
                await Sandbox.objects.filter(pk=sandbox.pk).aupdate(files_saved_at=None)
            report.files_dropped.append(sandbox_id)


CHECKPOINTS_PER_PASS = 10  # oldest first; a full class is covered within a few passes


async def checkpoint_homes(in_scope: Scope, report: Report) -> None:
    """Copy the home of running Docker (and pod) sandboxes whose learner did something since the last copy
    (and not more often than every ``SANDBOX_HOME_CHECKPOINT_SECONDS``; 0 turns this off)."""
    every = getattr(settings, "SANDBOX_HOME_CHECKPOINT_SECONDS", 120)
    if not every:
        return
    now = timezone.now()
    due: list[tuple[dt.datetime, Sandbox]] = []
    running = [sandbox async for sandbox in Sandbox.objects.filter(
        state=Sandbox.State.RUNNING, workspace__in=("plain", "docker"), last_activity_at__isnull=False,
    ).exclude(engine_ref="") if in_scope(str(sandbox.id))]
    saved = await home_files.saved_times([sandbox.id for sandbox in running])
    for sandbox in running:
        last = saved.get(str(sandbox.id)) or sandbox.started_at or sandbox.created_at
        if sandbox.last_activity_at > last and (now - last).total_seconds() >= every:
            due.append((last, sandbox))
    chosen = {str(sandbox.id): sandbox for _last, sandbox in sorted(due, key=lambda pair: pair[0])[:CHECKPOINTS_PER_PASS]}

    async def checkpoint(sandbox_id: str) -> None:
        sandbox = chosen[sandbox_id]

        async def still_running() -> bool:
            return await Sandbox.objects.filter(pk=sandbox.pk, state=Sandbox.State.RUNNING).aexists()

        try:
            backend = services.get_backend(sandbox.workspace)
            if await home_files.save(backend, sandbox.id, sandbox.engine_ref, still_wanted=still_running):
                report.checkpointed.append(sandbox_id)
        except (home_files.FilesNotKept, BackendError) as exc:
            log.info("reaper: no checkpoint of sandbox %s: %s", sandbox.id, exc)

    await _for_each(report, list(chosen), checkpoint)


def _is_uuid(text: str) -> bool:
    import uuid

    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


# -- the loop ------------------------------------------------------------------------------------
async def run_loop(interval: float | None = None, *, passes: int | None = None,
                   may_reap: Callable[[], Awaitable[bool]] | None = None) -> None:
    """Reap at start-up, then every ``interval`` seconds, for ever (or ``passes`` times). A pass
    that fails is logged and the next one runs: the reaper must outlive any one bad sandbox.
    ``may_reap``, asked before each pass, lets only one of several reapers act (a Lease held on a
    cluster, ``sandbox.lease``); a pass it refuses still counts towards ``passes``."""
    interval = settings.SANDBOX_REAPER_INTERVAL_SECONDS if interval is None else interval
    log.info("reaper: running, a pass every %s s", interval)
    done = 0
    while passes is None or done < passes:
        started = asyncio.get_running_loop().time()
        try:
            if may_reap is None or await may_reap():
                report = await reap_once()
                changes = {k: v for k, v in report.summary().items() if v and k != "engine_problem"}
                if changes:
                    log.info("reaper: %s", changes)
        except Exception:  # noqa: BLE001
            log.exception("reaper pass failed; trying again in %s s", interval)
        done += 1
        await services.wait_for_background()
        elapsed = asyncio.get_running_loop().time() - started
        if passes is None or done < passes:
            await asyncio.sleep(max(0.0, interval - elapsed))
