"""The editor tab's JSON endpoints: the file list of the learner's home, one file's text, a save.

Served under ``/sandboxes/<id>/files/`` (the ``sandbox`` URL namespace). Only someone with full
console access may use them (the owner, or an instructor who took control): the editor writes
what the shell could write. Every call is counted with the sandbox actions' sibling limit
``RATE_EDITOR_ACTIONS``; a save is a POST with the CSRF token in ``X-CSRFToken``. The work itself
is in ``sandbox.editor_files``.
"""

from __future__ import annotations

import json
import uuid

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from accounts import limits
from accounts.decorators import login_required
from sandbox import editor_files, services
from sandbox.models import Sandbox
from sandbox.permissions import Access, aconsole_access


def _error(message: str, status: int, **extra) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


async def _editable(request: HttpRequest, sandbox_id: uuid.UUID) -> Sandbox | JsonResponse:
    """The sandbox, or the JSON answer refusing the request."""
    sandbox = await Sandbox.objects.filter(pk=sandbox_id).afirst()
    user = await request.auser()
    if sandbox is None:
        return _error(_("No such sandbox."), 404)
    if await aconsole_access(user, sandbox) is not Access.FULL:
        return _error(_("This sandbox is not yours."), 403)
    verdict = await limits.ahit("editor", str(user.pk), settings.RATE_EDITOR_ACTIONS)
    if verdict.limited:
        response = _error(verdict.message("file actions"), 429)
        response["Retry-After"] = str(verdict.retry_after)
        return response
    if sandbox.state != Sandbox.State.RUNNING or not sandbox.engine_ref:
        return _error(_("The sandbox is not running: start it first."), 409)
    return sandbox


@never_cache
@login_required
@require_GET
async def file_list(request: HttpRequest, sandbox_id: uuid.UUID) -> JsonResponse:
    sandbox = await _editable(request, sandbox_id)
    if isinstance(sandbox, JsonResponse):
        return sandbox
    try:
        names, truncated = await editor_files.list_files(services.get_backend(sandbox.workspace), sandbox.engine_ref)
    except editor_files.FileRefused as exc:
        return _error(str(exc), 400)
    return JsonResponse({"home": editor_files.HOME, "files": names, "truncated": truncated})


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
async def file_detail(request: HttpRequest, sandbox_id: uuid.UUID) -> JsonResponse:
    """GET ``?path=``: ``{path, text, hash, new}``. POST ``{path, text, hash, overwrite}``:
    ``{path, hash}``, or 409 with ``conflict`` and the file's ``current_hash``."""
    sandbox = await _editable(request, sandbox_id)
    if isinstance(sandbox, JsonResponse):
        return sandbox
    backend = services.get_backend(sandbox.workspace)
    try:
        if request.method == "GET":
            return JsonResponse(await editor_files.read_file(backend, sandbox.engine_ref, request.GET.get("path", "")))
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("text"), str) \
                or not isinstance(body.get("hash", ""), str) or not isinstance(body.get("path"), str):
            return _error(_("The request should be JSON with path, text and hash."), 400)
        expected = None if body.get("overwrite") is True else body.get("hash", "")
        new_hash = await editor_files.save_file(backend, sandbox.engine_ref, body["path"], body["text"], expected)
    except editor_files.Conflict as exc:
        return _error(str(exc), 409, conflict=True, current_hash=exc.current_hash)
    except editor_files.FileRefused as exc:
        return _error(str(exc), 400)
    await services.touch(sandbox.id)
    return JsonResponse({"path": editor_files.clean_path(body["path"]), "hash": new_hash})
