"""The lesson page's sandbox pane: Start, Stop, Restart, Reset and Extend on the learner's own
sandboxes. Each returns the pane partial (htmx). Served under ``/sandboxes/`` (the ``sandbox`` URL
namespace, ``sandbox_pane_urls``); the sandbox app below knows nothing of lessons."""

from __future__ import annotations

import asyncio
import functools
import uuid

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from accounts import limits
from accounts.decorators import login_required
from sandbox import engines, events, home_files, lifecycle, local_cluster, preview, services
from sandbox.backends.base import BackendError, EngineUnavailable
from sandbox.models import Sandbox
from sandbox.permissions import Access, aconsole_access, can_control

from .catalogue import get_lesson

ENGINE_PROBE_SECONDS = 3

# The pane's links, reversed once per process rather than on every render (reverse() walks the
# URL patterns each time; a class's Starts render the pane dozens of times a second). A sandbox's
# id is put into its links as text; the cache is keyed by what reverse() reads besides the name.
SANDBOX_URL_NAMES = ("pane", "stop", "reset", "restart", "extend", "ports", "files", "file")
_ID_PLACEHOLDER = str(uuid.UUID(int=0))


def _reverse_key() -> tuple:
    return get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF


@functools.lru_cache(maxsize=64)
def _sandbox_url_patterns(key: tuple) -> dict[str, str]:
    return {name: reverse(f"sandbox:{name}", args=[_ID_PLACEHOLDER]) for name in SANDBOX_URL_NAMES}


@functools.lru_cache(maxsize=1024)
def _lesson_urls(slug: str, key: tuple) -> dict[str, str]:
    return {"start": reverse("sandbox:start", args=[slug]), "lesson_pane": reverse("sandbox:lesson_pane", args=[slug])}


def sandbox_urls(sandbox_id) -> dict[str, str]:
    """The links of one sandbox's pane, by name (``SANDBOX_URL_NAMES``), as reverse() gives them."""
    text = str(sandbox_id)
    return {name: url.replace(_ID_PLACEHOLDER, text) for name, url in _sandbox_url_patterns(_reverse_key()).items()}


def lesson_urls(slug: str) -> dict[str, str]:
    """The lesson's Start and pane links."""
    return _lesson_urls(slug, _reverse_key())


async def engine_problem(workspace: str) -> str:
    """Empty when the workspace's engine answers; otherwise what is wrong and how to fix it."""
    try:
        backend = services.get_backend(workspace)
        await asyncio.wait_for(backend.ping(), ENGINE_PROBE_SECONDS)
    except asyncio.TimeoutError:
        return "The sandbox engine did not answer within a few seconds; check that it is running."
    except (BackendError, ImportError) as exc:
        return str(exc)
    return ""


async def pane_context(lesson, sandbox: Sandbox | None, user) -> dict:
    problem, preparing = "", False
    if sandbox is None or sandbox.state not in (Sandbox.State.RUNNING, Sandbox.State.QUEUED):
        if lesson.workspace == "kubernetes":
            problem, preparing = local_cluster.problem(settings)
        if not problem:
            problem = await engine_problem(lesson.workspace)
    state = await lifecycle_context(sandbox)
    links = lesson_urls(lesson.slug)
    return {
        "lesson": lesson,
        "lesson_urls": links,
        "sandbox": sandbox,
        "engine_problem": problem,
        # The pane reloads itself until the workspace can start (a cluster being built, an engine down).
        "workspace_preparing": preparing,
        "lesson_pane_url": links["lesson_pane"],
        **state,
        "console_url": f"/ws/sandboxes/{sandbox.id}/console/" if sandbox else "",
        "pane_url": state["sandbox_urls"]["pane"] if sandbox else "",
        "is_authenticated": user.is_authenticated,
        "guests_enabled": settings.GUESTS_ENABLED,
        "web_preview": preview.offered(lesson.workspace),
    }


async def lifecycle_context(sandbox: Sandbox | None) -> dict:
    """Time left, extensions, queue position and kept files, for the pane and its timer."""
    if sandbox is None:
        return {"timer": None, "queue_position": None, "files_kept": False, "sandbox_urls": {}}
    timer = events.timer_fields(sandbox) if sandbox.state == Sandbox.State.RUNNING else None
    return {
        "sandbox_urls": sandbox_urls(sandbox.id),
        "timer": timer,
        "queue_position": await services.queue_position(sandbox),
        "files_kept": sandbox.state == Sandbox.State.STOPPED and await home_files.has_saved_files(sandbox.id),
        # The pane re-reads itself while the sandbox is between states.
        "poll": sandbox.state in (Sandbox.State.QUEUED, Sandbox.State.STARTING, Sandbox.State.STOPPING),
    }


async def _own_sandbox(request: HttpRequest, sandbox_id: uuid.UUID) -> Sandbox:
    sandbox = await Sandbox.objects.filter(pk=sandbox_id).afirst()
    if sandbox is None:
        raise Http404("No such sandbox")
    if not can_control(await request.auser(), sandbox):
        raise PermissionError
    return sandbox


def _lesson_of(sandbox: Sandbox):
    lesson = get_lesson(sandbox.lesson)
    if lesson is None:
        raise Http404("The lesson of this sandbox no longer exists")
    return lesson


async def _render_pane(request: HttpRequest, lesson, sandbox: Sandbox | None, error: str = "") -> HttpResponse:
    if request.method == "POST" and not request.htmx:
        # The buttons are plain forms too (a click before htmx has loaded, or no JavaScript):
        # then the whole lesson page shows the new state.
        return redirect("lessons:detail", lesson.slug)
    context = await pane_context(lesson, sandbox, await request.auser())
    context["error"] = error
    return render(request, "sandbox/_pane.html", context)


async def _throttled(request: HttpRequest, lesson, sandbox: Sandbox | None) -> HttpResponse | None:
    """None while the learner is within RATE_SANDBOX_ACTIONS (Start, Stop, Restart and Reset
    together); otherwise the answer: the pane with the message for htmx (it swaps only 2xx), a
    429 for a plain form post."""
    user = await request.auser()
    verdict = await limits.ahit("sandbox-action", str(user.pk), settings.RATE_SANDBOX_ACTIONS)
    if not verdict.limited:
        return None
    message = verdict.message(_("sandbox actions"))
    if request.htmx:
        context = await pane_context(lesson, sandbox, user)
        context["error"] = message
        response = render(request, "sandbox/_pane.html", context)
    else:
        response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(verdict.retry_after)
    return response


NEEDS_DOCKER_HOST = gettext_lazy("This lesson needs a Docker host: this site runs without a Docker engine (on a cluster, "
                      "sandboxes are pods). Ask your instructor for a site that runs on a Docker host.")


@login_required
@require_POST
async def start(request: HttpRequest, slug: str) -> HttpResponse:
    lesson = get_lesson(slug)
    if lesson is None:
        raise Http404("No such lesson")
    user = await request.auser()
    if (refused := await _throttled(request, lesson, None)) is not None:
        return refused
    if not engines.workspace_offered(lesson.workspace):
        return await _render_pane(request, lesson, None, error=NEEDS_DOCKER_HOST)
    try:
        sandbox = await services.start_sandbox(user, lesson.slug, lesson.workspace, lesson.image,
                                               client_address=limits.client_address(request))
    except services.SandboxLimitReached as exc:
        return await _render_pane(request, lesson, None, error=str(exc))
    return await _render_pane(request, lesson, sandbox)


def _guarded(action):
    """Load the requester's own sandbox: 404 for unknown ids, 403 for anyone else's."""

    async def view(request: HttpRequest, sandbox_id: uuid.UUID) -> HttpResponse:
        try:
            sandbox = await _own_sandbox(request, sandbox_id)
        except PermissionError:
            return HttpResponseForbidden(_("This sandbox is not yours."))
        return await action(request, sandbox)

    view.__name__ = action.__name__
    return login_required(view)


@require_GET
async def lesson_pane(request: HttpRequest, slug: str) -> HttpResponse:
    """The pane of a lesson as the lesson page shows it: the learner's latest sandbox for it, if any."""
    lesson = get_lesson(slug)
    if lesson is None:
        raise Http404("No such lesson")
    user = await request.auser()
    sandbox = None
    if user.is_authenticated:
        sandbox = await Sandbox.objects.filter(owner=user, lesson=lesson.slug).order_by("-created_at").afirst()
    return await _render_pane(request, lesson, sandbox)


@require_GET
@_guarded
async def pane(request: HttpRequest, sandbox: Sandbox) -> HttpResponse:
    return await _render_pane(request, _lesson_of(sandbox), sandbox)


@require_POST
@_guarded
async def stop(request: HttpRequest, sandbox: Sandbox) -> HttpResponse:
    if (refused := await _throttled(request, _lesson_of(sandbox), sandbox)) is not None:
        return refused
    await services.stop_sandbox(sandbox)
    return await _render_pane(request, _lesson_of(sandbox), sandbox)


@require_POST
@_guarded
async def reset(request: HttpRequest, sandbox: Sandbox) -> HttpResponse:
    return await _start_again(request, sandbox, services.reset_sandbox)


@require_POST
@_guarded
async def restart(request: HttpRequest, sandbox: Sandbox) -> HttpResponse:
    return await _start_again(request, sandbox, services.restart_sandbox)


async def _start_again(request: HttpRequest, sandbox: Sandbox, start) -> HttpResponse:
    """Reset and Restart: throttled like every action, and refused past the learner's limit."""
    lesson = _lesson_of(sandbox)
    if (refused := await _throttled(request, lesson, sandbox)) is not None:
        return refused
    try:
        await start(sandbox, client_address=limits.client_address(request))
    except services.SandboxLimitReached as exc:
        return await _render_pane(request, lesson, sandbox, error=str(exc))
    return await _render_pane(request, lesson, sandbox)


@require_GET
@login_required
async def ports(request: HttpRequest, sandbox_id: uuid.UUID) -> HttpResponse:
    """The web preview's list: each port the learner's containers publish, with a fresh link made
    out to the viewer (the owner, or an instructor who may watch them)."""
    sandbox = await Sandbox.objects.filter(pk=sandbox_id).afirst()
    if sandbox is None:
        raise Http404("No such sandbox")
    if await aconsole_access(await request.auser(), sandbox) is Access.NONE:
        return HttpResponseForbidden(_("This sandbox is not yours."))
    error = ""
    try:
        published = await preview.ports_of(sandbox)
    except (BackendError, EngineUnavailable) as exc:
        published, error = [], str(exc)
    user = await request.auser()
    links = [{"port": port, "url": preview.make_link(sandbox.id, port.key, user.pk)} for port in published]
    return render(request, "sandbox/_ports.html", {"sandbox": sandbox, "links": links, "error": error})


@require_POST
@_guarded
async def extend(request: HttpRequest, sandbox: Sandbox) -> HttpResponse:
    """The learner's Extend button: more time to live while the lesson allows; answers the timer."""
    error, extended = "", 0
    try:
        await services.learner_extend(sandbox)
        extended = max(1, round(lifecycle.policy_for(sandbox.lesson).extend_seconds / 60))
    except services.ExtendNotAllowed as exc:
        error = str(exc)
    context = {"sandbox": sandbox, "error": error, "extended": extended, **(await lifecycle_context(sandbox))}
    return render(request, "sandbox/_timer.html", context)  # 200 either way: htmx swaps only 2xx
