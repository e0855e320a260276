"""Classroom pages. Permission rule: a classroom's pages exist only for its instructor (404 for
everyone else, another instructor included); a learner sees only their own progress."""

from __future__ import annotations

import segno
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from accounts import guests, limits
from lessons import scenario_upload
from lessons.catalogue import all_lessons, get_lesson
from lessons.progress import catalogue_progress
from sandbox import preview
from sandbox.services import SandboxLimitReached

from . import actions, consoles, models, roster
from .dashboard import activity, dashboard_snapshot
from .export import export_csv
from .insights import class_insights
from .roster import ClassroomError, NotFound


def _found(lookup, *args, **kwargs):
    """A roster or console lookup; what it does not find (or the user may not see) is a 404."""
    try:
        return lookup(*args, **kwargs)
    except NotFound as exc:
        raise Http404(str(exc)) from exc


def _instructor_only(request: HttpRequest) -> None:
    if not roster.is_instructor(request.user):
        raise Http404("Classrooms are for instructors.")


async def _auser(request: HttpRequest):
    return await request.auser()


# --- Instructors: list, create, settings --------------------------------------------------------


@login_required
def classroom_list(request: HttpRequest) -> HttpResponse:
    """Instructors see their classrooms and create new ones; learners see the classrooms they joined."""
    instructor = roster.is_instructor(request.user)
    error = ""
    if request.method == "POST":
        if not instructor:
            raise Http404("Classrooms are for instructors.")
        try:
            classroom = roster.create_classroom(request.user, request.POST.get("name", ""), request.POST.getlist("lessons"))
        except ClassroomError as exc:
            error = str(exc)
        else:
            return redirect("classroom:dashboard", classroom.pk)
    taught = request.user.classrooms_taught.all() if instructor else []
    joined = request.user.classroom_memberships.select_related("classroom")
    return render(
        request,
        "classroom/list.html",
        {"instructor": instructor, "taught": taught, "joined": joined, "lessons": all_lessons(), "error": error},
        status=400 if error else 200,
    )


@login_required
@require_POST
def update_classroom(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = _found(roster.classroom_for_instructor, request.user, classroom_id)
    if "open_for_joining" in request.POST:
        classroom.open_for_joining = request.POST["open_for_joining"] == "1"
        classroom.save(update_fields=["open_for_joining"])
    if request.POST.get("reopen"):
        actions.reopen(classroom)
    if request.POST.get("new_code"):
        classroom.join_code = models.new_join_code()
        classroom.save(update_fields=["join_code"])
    lessons = request.POST.getlist("lessons")
    if lessons:
        unknown = [slug for slug in lessons if not any(lesson.slug == slug for lesson in all_lessons())]
        if unknown:
            messages.error(request, _("No such lesson: %(slugs)s.") % {"slugs": ", ".join(unknown)})
        else:
            roster.set_lessons(classroom, lessons)
    return redirect("classroom:dashboard", classroom.pk)


# --- Instructors: importing a scenario ---------------------------------------------------------


def _import_context(destinations, **extra) -> dict:
    request_limit = settings.REQUEST_BODY_MAX_BYTES_BY_PATH.get(reverse("classroom:import-scenario"), settings.REQUEST_BODY_MAX_BYTES)
    limit = min(settings.SCENARIO_UPLOAD_MAX_BYTES, request_limit)
    return {
        "destinations": destinations,
        "configured": scenario_upload.configured_dirs(),
        "max_mib": f"{limit / (1024 * 1024):.1f}",
        "body_limit_binds": request_limit < settings.SCENARIO_UPLOAD_MAX_BYTES,
        "max_files": settings.SCENARIO_UPLOAD_MAX_FILES,
        "max_unpacked_mib": f"{settings.SCENARIO_UPLOAD_MAX_UNPACKED_BYTES / (1024 * 1024):.0f}",
        "order": scenario_upload.next_free_order(),
        "destination": 0,
        "replace": False,
        **extra,
    }


@login_required
def import_scenario(request: HttpRequest) -> HttpResponse:
    """Instructors upload a Killercoda/Katacoda scenario zip; it becomes lessons in a LESSON_DIRS
    folder when it validates (lessons.scenario_upload), and the import report is shown either way."""
    if not roster.is_instructor(request.user):
        raise PermissionDenied(_("Only instructors import scenarios."))
    destinations = scenario_upload.writable_dirs()
    if request.method != "POST":
        return render(request, "classroom/import.html", _import_context(destinations))
    error, outcome = "", None
    upload = request.FILES.get("scenario")
    form = {"replace": request.POST.get("replace") == "1"}
    try:
        form["destination"] = int(request.POST.get("destination", ""))
        order = request.POST.get("order", "").strip()
        form["order"] = int(order) if order else scenario_upload.next_free_order()
    except ValueError:
        error = _("Choose a folder and give the order as a whole number.")
    if not error and not 0 <= form["destination"] < len(destinations):
        error = _("Choose one of the lesson folders listed.")
    elif not error and upload is None:
        error = _("Choose a zip file to upload.")
    if not error:
        try:
            outcome = scenario_upload.import_upload(upload, upload.name, upload.size, destinations[form["destination"]],
                                                    order=form["order"], replace=form["replace"])
        except scenario_upload.UploadRefused as exc:
            error = str(exc)
    status = 200 if outcome is not None and outcome.installed else 400
    return render(request, "classroom/import.html",
                  _import_context(destinations, error=error, outcome=outcome, **form), status=status)


# --- Joining ---------------------------------------------------------------------------------


def join_by_code(request: HttpRequest) -> HttpResponse:
    code = request.GET.get("code", "")
    if code:
        classroom = roster.classroom_by_code(code)
        if classroom is not None:
            return redirect("classroom:join", classroom.join_code)
    return render(request, "classroom/join_code.html", {"code": code, "not_found": bool(code)}, status=404 if code else 200)


def join(request: HttpRequest, code: str) -> HttpResponse:
    """The join link. Anyone signed in joins with a display name; a visitor joins as a guest
    (through accounts.guests: the guest switch and rate apply). Joins are limited per client
    address (RATE_JOINS_PER_ADDRESS): a leaked code must not let a script fill the roster."""
    classroom = roster.classroom_by_code(code)
    if classroom is None:
        raise Http404("No classroom has this code.")
    error = ""
    status = 200
    if request.method == "POST":
        name = request.POST.get("display_name", "")
        already = request.user.is_authenticated and classroom.memberships.filter(user_id=request.user.pk).exists()
        verdict = limits.ALLOWED if already else limits.hit(
            "join", limits.client_address(request), settings.RATE_JOINS_PER_ADDRESS)
        if verdict.limited:
            error, status = verdict.message(_("joins from your address")), 429
        elif not request.user.is_authenticated:
            if not name.strip():
                error, status = _("Choose the name your instructor will see."), 400
            elif not classroom.open_for_joining:
                error, status = _("This classroom is closed to new learners; ask your instructor."), 400
            else:
                try:
                    guests.create_guest(request)
                except guests.GuestRefused as exc:
                    error, status = str(exc), 429 if settings.GUESTS_ENABLED else 403
        if not error:
            try:
                membership = roster.join(classroom, request.user, name)
            except ClassroomError as exc:
                error, status = str(exc), 400
            else:
                return redirect("classroom:mine", membership.classroom_id)
    suggested = roster.default_display_name(request.user) if request.user.is_authenticated else ""
    return render(request, "classroom/join.html",
                  {"classroom": classroom, "error": error, "guests_enabled": settings.GUESTS_ENABLED,
                   "suggested_name": request.POST.get("display_name", suggested)}, status=status)


@login_required
def learner_view(request: HttpRequest, classroom_id: int) -> HttpResponse:
    """A learner's own view of a classroom: its lessons and their own progress, nobody else's."""
    membership = _found(roster.membership_for_learner, request.user, classroom_id)
    lessons = roster.assigned_lessons(membership.classroom)
    progress = catalogue_progress(request.user, lessons)
    rows = [{"lesson": lesson, "done": progress[lesson.slug][0], "total": progress[lesson.slug][1]} for lesson in lessons]
    return render(request, "classroom/mine.html", {"membership": membership, "classroom": membership.classroom, "rows": rows})


# --- The dashboard ---------------------------------------------------------------------------


def _join_url(request: HttpRequest, classroom) -> str:
    return request.build_absolute_uri(reverse("classroom:join", args=[classroom.join_code]))


def _dashboard_words() -> dict[str, str]:
    """The words the dashboard's script writes, in the reader's language ({name}: the learner)."""
    return {
        "learner": _("Learner"),
        "active": _("Active"),
        "idle": _("idle"),
        "activeNow": _("active"),
        "watch": _("watch"),
        "reset": _("reset"),
        "stop": _("stop"),
        "confirmReset": _("Reset the sandbox of {name}? Everything in it is lost; their progress is kept."),
        "confirmStop": _("Stop the sandbox of {name}? Their progress is kept."),
        "attempts": _("{attempts} attempt(s), {failures} failed"),
        "lastFeedback": _("Last feedback: {feedback}"),
        "live": _("live"),
        "reconnecting": _("reconnecting…"),
        "ended": _("class ended"),
        "notAllowed": _("not allowed"),
        # A sandbox's state, as the grid shows it (state_<Sandbox.state>).
        "state_queued": _("queued"),
        "state_starting": _("starting"),
        "state_running": _("running"),
        "state_stopping": _("stopping"),
        "state_stopped": _("stopped"),
        "state_failed": _("failed"),
        "state_gone": _("gone"),
    }


@login_required
def dashboard(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = _found(roster.classroom_for_instructor, request.user, classroom_id)
    members = list(classroom.memberships.select_related("user"))
    for member in members:
        # A guest's username is generated (guest-…): the display name is all the instructor needs.
        member.account_name = "" if guests.is_guest(member.user) else member.user.get_username()
    return render(
        request,
        "classroom/dashboard.html",
        {
            "classroom": classroom,
            "snapshot": dashboard_snapshot(classroom),
            "words": _dashboard_words(),
            "join_url": _join_url(request, classroom),
            "members": members,
            "lessons": all_lessons(),
            "assigned": set(classroom.lesson_slugs()),
            "dashboard_ws": f"/ws/classrooms/{classroom.pk}/dashboard/",
        },
    )


@login_required
@require_GET
def projector(request: HttpRequest, classroom_id: int) -> HttpResponse:
    """For the projector: the join code in very large type and a QR code of the join link."""
    classroom = _found(roster.classroom_for_instructor, request.user, classroom_id)
    join_url = _join_url(request, classroom)
    # segno writes the SVG itself (no user text in it but the URL, which it encodes as modules).
    qr_svg = segno.make(join_url, error="m").svg_inline(scale=10, border=2, dark="#000", light="#fff",
                                                          svgclass="qr-code", omitsize=True,
                                                          title=_("QR code of the join link"))
    return render(request, "classroom/projector.html", {
        "classroom": classroom,
        "join_url": join_url,
        "join_code": classroom.join_code,
        "join_code_spaced": f"{classroom.join_code[:4]} {classroom.join_code[4:]}",
        "join_code_url": request.build_absolute_uri(reverse("classroom:join-code")),
        "qr_svg": mark_safe(qr_svg),  # noqa: S308  (segno's own markup)
    })


@login_required
@require_GET
def snapshot_json(request: HttpRequest, classroom_id: int) -> JsonResponse:
    classroom = _found(roster.classroom_for_instructor, request.user, classroom_id)
    return JsonResponse(dashboard_snapshot(classroom))


@login_required
@require_GET
def activity_json(request: HttpRequest, classroom_id: int) -> JsonResponse:
    classroom = _found(roster.classroom_for_instructor, request.user, classroom_id)
    return JsonResponse({"sandboxes": activity(classroom)})


@login_required
@require_GET
def insights(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = _found(roster.classroom_for_instructor, request.user, classroom_id)
    return render(request, "classroom/_insights.html", {"classroom": classroom, "insights": class_insights(classroom)})


@login_required
@require_GET
def export(request: HttpRequest, classroom_id: int) -> HttpResponse:
    classroom = _found(roster.classroom_for_instructor, request.user, classroom_id)
    response = HttpResponse(export_csv(classroom), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="classroom-{classroom.pk}-progress.csv"'
    return response


# --- Roster -----------------------------------------------------------------------------------


@login_required
@require_POST
def remove_member(request: HttpRequest, classroom_id: int, membership_id: int) -> HttpResponse:
    classroom = _found(roster.classroom_for_instructor, request.user, classroom_id)
    name = _found(roster.remove_member, classroom, membership_id)
    messages.info(request, _("Removed %(name)s from the class.") % {"name": name})
    return redirect("classroom:dashboard", classroom.pk)


@login_required
@require_POST
def remove_members(request: HttpRequest, classroom_id: int) -> HttpResponse:
    """Remove the ticked learners at once (a leaked code's fake learners, dozens at a time).
    Ids that are not this classroom's members are ignored; the classroom stays 404 to others."""
    classroom = _found(roster.classroom_for_instructor, request.user, classroom_id)
    ids = [int(value) for value in request.POST.getlist("members") if value.isdigit() and len(value) <= 18]
    removed = []
    for membership_id in ids:
        try:
            # One at a time through the roster's own remove, so whatever it does on a removal
            # (telling open consoles) happens for each.
            removed.append(roster.remove_member(classroom, membership_id))
        except NotFound:
            continue
    messages.info(request, ngettext("Removed %(count)d learner: %(names)s.", "Removed %(count)d learners: %(names)s.",
                                    len(removed)) % {"count": len(removed), "names": ", ".join(removed)}
                  if removed else _("Nobody was removed."))
    return redirect("classroom:dashboard", classroom.pk)


@login_required
@require_POST
def rename_member(request: HttpRequest, classroom_id: int, membership_id: int) -> HttpResponse:
    classroom = _found(roster.classroom_for_instructor, request.user, classroom_id)
    _found(roster.rename_member, classroom, membership_id, request.POST.get("display_name", ""))
    return redirect("classroom:dashboard", classroom.pk)


# --- Actions (async: they talk to the engine and the channel layer) ----------------------------


async def _instructor_classroom(request: HttpRequest, classroom_id: int):
    user = await _auser(request)
    if not user.is_authenticated:
        raise Http404("No such classroom.")
    return user, await sync_to_async(_found)(roster.classroom_for_instructor, user, classroom_id)


def _done(request: HttpRequest, classroom_id: int, text: str, *, error: bool = False) -> HttpResponse:
    if request.headers.get("HX-Request"):
        return HttpResponse(f'<p class="notice {"error" if error else "info"}" role="status">{_escape(text)}</p>', status=400 if error else 200)
    return redirect("classroom:dashboard", classroom_id)


def _escape(text: str) -> str:
    from django.utils.html import escape

    return escape(text)


@require_POST
async def broadcast(request: HttpRequest, classroom_id: int) -> HttpResponse:
    _user, classroom = await _instructor_classroom(request, classroom_id)
    try:
        count = await actions.broadcast(classroom, request.POST.get("message", ""))
    except ClassroomError as exc:
        return _done(request, classroom_id, str(exc), error=True)
    return _done(request, classroom_id, _("Sent to %(count)d open sandbox(es).") % {"count": count})


@require_POST
async def extend(request: HttpRequest, classroom_id: int) -> HttpResponse:
    _user, classroom = await _instructor_classroom(request, classroom_id)
    try:
        minutes = int(request.POST.get("minutes", ""))
        count = await actions.extend_class(classroom, minutes * 60)
    except ValueError:
        return _done(request, classroom_id, _("Give the number of minutes to add."), error=True)
    except ClassroomError as exc:
        return _done(request, classroom_id, str(exc), error=True)
    return _done(request, classroom_id, _("Extended %(count)d sandbox(es) by %(minutes)d minutes.") % {"count": count, "minutes": minutes})


@require_POST
async def stop_all(request: HttpRequest, classroom_id: int) -> HttpResponse:
    _user, classroom = await _instructor_classroom(request, classroom_id)
    count = await actions.stop_all(classroom)
    return _done(request, classroom_id, _("Stopped %(count)d sandbox(es).") % {"count": count})


async def _learner_sandbox(request: HttpRequest, classroom_id: int, sandbox_id, *, console: bool = False):
    user, classroom = await _instructor_classroom(request, classroom_id)
    sandbox = await sync_to_async(_found)(consoles.learner_sandbox, classroom, sandbox_id, console=console)
    return user, classroom, sandbox


@require_POST
async def stop_sandbox(request: HttpRequest, classroom_id: int, sandbox_id) -> HttpResponse:
    _user, classroom, sandbox = await _learner_sandbox(request, classroom_id, sandbox_id)
    await actions.stop_learner_sandbox(sandbox)
    name = await sync_to_async(roster.learner_name)(classroom, sandbox.owner)
    return _done(request, classroom_id, _("Stopped the sandbox of %(name)s.") % {"name": name})


@require_POST
async def reset_sandbox(request: HttpRequest, classroom_id: int, sandbox_id) -> HttpResponse:
    _user, classroom, sandbox = await _learner_sandbox(request, classroom_id, sandbox_id)
    try:
        await actions.reset_learner_sandbox(sandbox)
    except SandboxLimitReached as exc:
        return _done(request, classroom_id, str(exc), error=True)
    name = await sync_to_async(roster.learner_name)(classroom, sandbox.owner)
    return _done(request, classroom_id, _("Reset the sandbox of %(name)s.") % {"name": name})


@require_POST
async def take_control(request: HttpRequest, classroom_id: int, sandbox_id) -> HttpResponse:
    user, classroom, sandbox = await _learner_sandbox(request, classroom_id, sandbox_id, console=True)
    await consoles.take_control(classroom, sandbox, user)
    return await _control_changed(request, classroom, sandbox, user)


@require_POST
async def release_control(request: HttpRequest, classroom_id: int, sandbox_id) -> HttpResponse:
    user, classroom, sandbox = await _learner_sandbox(request, classroom_id, sandbox_id)
    await consoles.release_control(classroom, sandbox, user)
    return await _control_changed(request, classroom, sandbox, user)


async def _control_changed(request: HttpRequest, classroom, sandbox, user) -> HttpResponse:
    """From the watch page (htmx): the new control bar, and the page's console reconnects, since
    an attach's stdin is fixed when it opens. Without scripts: back to the watch page."""
    if not request.htmx:
        return redirect("classroom:watch", classroom.pk, sandbox.id)
    in_control = await sync_to_async(consoles.has_control)(sandbox, user)
    response = render(request, "classroom/_control.html", {"classroom": classroom, "sandbox": sandbox, "in_control": in_control})
    response["HX-Trigger"] = "console-reconnect"
    return response


@login_required
@require_GET
def watch(request: HttpRequest, classroom_id: int, sandbox_id) -> HttpResponse:
    """The shadow terminal: the learner's console, read-only unless the instructor took control."""
    classroom = _found(roster.classroom_for_instructor, request.user, classroom_id)
    sandbox = _found(consoles.learner_sandbox, classroom, sandbox_id, console=True)
    return render(
        request,
        "classroom/watch.html",
        {
            "classroom": classroom,
            "sandbox": sandbox,
            "learner_name": roster.learner_name(classroom, sandbox.owner),
            "lesson": get_lesson(sandbox.lesson),
            "in_control": consoles.has_control(sandbox, request.user),
            "console_url": f"/ws/sandboxes/{sandbox.id}/console/",
            "web_preview": preview.offered(sandbox.workspace),
        },
    )


def grid_page_size() -> int:
    """Tiles per grid page: the setting, never more than the consoles one user may hold (each
    tile is one), never fewer than one."""
    return max(1, min(settings.WATCH_GRID_TILES, settings.CONSOLES_PER_USER))


@login_required
@require_GET
def watch_grid(request: HttpRequest, classroom_id: int) -> HttpResponse:
    """Several learners at once: a page of small read-only terminals, one per live sandbox. A tile
    opens its console only while it is on screen, so a page's cost is bounded by what is seen."""
    classroom = _found(roster.classroom_for_instructor, request.user, classroom_id)
    if classroom.ended_at is not None:
        raise Http404("This class has ended.")
    rows = consoles.watchable_sandboxes(classroom)
    size = grid_page_size()
    pages = max(1, -(-len(rows) // size))
    try:
        page = min(max(1, int(request.GET.get("page", "1"))), pages)
    except ValueError:
        page = 1
    lessons = {lesson.slug: lesson for lesson in all_lessons()}
    tiles = [{"sandbox": row["sandbox"], "name": row["name"], "lesson": lessons.get(row["sandbox"].lesson),
              "console_url": f"/ws/sandboxes/{row['sandbox'].id}/console/"}
             for row in rows[(page - 1) * size:page * size]]
    return render(request, "classroom/grid.html", {
        "classroom": classroom, "tiles": tiles, "page": page, "pages": pages, "total": len(rows),
        "page_numbers": range(1, pages + 1),
        "first": (page - 1) * size + 1 if tiles else 0, "last": (page - 1) * size + len(tiles),
    })
