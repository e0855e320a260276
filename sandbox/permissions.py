"""Who may do what with a sandbox. Pure functions over rows, shared by views and consumers."""

from __future__ import annotations

import enum

from .models import Sandbox


class Access(enum.Enum):
    NONE = "none"
    READ_ONLY = "read-only"  # an instructor watching (classroom issue)
    FULL = "full"


def console_access(user, sandbox: Sandbox) -> Access:
    if not user.is_authenticated:
        return Access.NONE
    if sandbox.owner_id == user.pk:
        return Access.FULL
    return Access.NONE


async def aconsole_access(user, sandbox: Sandbox) -> Access:
    """``console_access`` plus the classroom rule, which needs the database (so it is async):
    an instructor of a classroom the owner is in, with this lesson assigned, watches read-only,
    and gets full access while they have taken control (the learner is shown a notice)."""
    access = console_access(user, sandbox)
    if access is not Access.NONE or not user.is_authenticated:
        return access
    from django.apps import apps

    if not apps.is_installed("classroom"):
        return access
    from classroom.services import ainstructor_console_access  # classroom builds on sandbox, not the reverse

    return await ainstructor_console_access(user, sandbox)


def can_control(user, sandbox: Sandbox) -> bool:
    """Stop, reset, restart, run checks: the owner only."""
    return user.is_authenticated and sandbox.owner_id == user.pk
