"""Who teaches what, read from the database on every request and every access re-check.

A websocket's user object is loaded once, when it opens; an instructor revoked (removed from the
``instructors`` group, no longer superuser, deactivated) hours later must lose their open sockets
too. So the role is part of the query here, never read from a user object's cached fields.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q, QuerySet

from sandbox.models import Sandbox
from sandbox.permissions import Access

from .models import INSTRUCTORS_GROUP, Classroom, TakeOver


def taught_classrooms(user) -> QuerySet[Classroom]:
    """The classrooms ``user`` teaches while holding the instructor role (ended ones included)."""
    if not user.is_authenticated:
        return Classroom.objects.none()
    in_group = Exists(
        get_user_model().groups.through.objects.filter(user_id=OuterRef("instructor_id"), group__name=INSTRUCTORS_GROUP)
    )
    return Classroom.objects.filter(Q(instructor__is_superuser=True) | in_group, instructor_id=user.pk, instructor__is_active=True)


def live_classrooms(user) -> QuerySet[Classroom]:
    """Taught and not ended: where the instructor may watch consoles and keep a live dashboard."""
    return taught_classrooms(user).filter(ended_at__isnull=True)


def instructor_console_access(user, sandbox: Sandbox) -> Access:
    """READ_ONLY for an instructor of a live classroom the owner is in with this lesson assigned;
    FULL while that instructor has taken control. NONE for everyone else."""
    teaches = live_classrooms(user).filter(memberships__user_id=sandbox.owner_id, assigned_lessons__lesson=sandbox.lesson)
    if not teaches.exists():
        return Access.NONE
    if TakeOver.objects.filter(sandbox_id=sandbox.pk, instructor_id=user.pk, classroom__in=teaches).exists():
        return Access.FULL
    return Access.READ_ONLY


ainstructor_console_access = sync_to_async(instructor_console_access)
