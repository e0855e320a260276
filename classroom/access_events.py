"""Tell open sockets when an instructor's access changes, however it changes.

An instructor's consoles on learners' sandboxes and their live dashboards are decided when they
open (``classroom.permissions``). These receivers watch every row those rules read, so a change
made by a view, a service, the admin, a cascade or ``manage.py grant_instructor --revoke`` reaches
the sockets already open:

| change | rows | who is told |
|---|---|---|
| control given back | ``TakeOver`` deleted | that instructor |
| learner removed | ``Membership`` deleted | the classroom's instructor (and its dashboards: roster) |
| lesson unassigned | ``AssignedLesson`` deleted | the classroom's instructor (and its dashboards: roster) |
| class ended, reassigned, deleted | ``Classroom`` saved or deleted | its instructor, before and after |
| instructor revoked | ``instructors`` group left or cleared, superuser or active flag saved | that user |

Each event is one "ask again" message to :func:`sandbox.permissions.access_group` of the user,
sent after the transaction commits (so the re-check reads the new rows) through the channel layer
(so it crosses server processes). A spurious event costs one query per open socket of that user;
a missed one leaves a revoked user typing, so the receivers err on the side of sending.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save

from sandbox.permissions import ACCESS_CHANGED, access_group

from .models import INSTRUCTORS_GROUP, AssignedLesson, Classroom, Membership, TakeOver
from .signals import send_to_classrooms, send_to_groups

ROSTER_EVENT = {"kind": "roster"}  # the dashboard page re-reads its snapshot
# User fields the instructor rule reads; a save touching none of them (a login) sends nothing.
ROLE_FIELDS = {"is_superuser", "is_active"}


def notify_access_changed(user_ids, *, roster_of: int | None = None) -> None:
    """After the current transaction commits, tell every open socket of these users to re-check
    their access (and the classroom's dashboards to re-read their roster)."""
    groups = [(access_group(uid), {"type": ACCESS_CHANGED}) for uid in sorted({u for u in user_ids if u})]

    def send() -> None:
        send_to_groups(groups)
        if roster_of is not None:
            send_to_classrooms([roster_of], ROSTER_EVENT)

    transaction.on_commit(send)


def _instructor_of(classroom_id: int) -> int | None:
    return Classroom.objects.filter(pk=classroom_id).values_list("instructor_id", flat=True).first()


# --- Rows of one classroom --------------------------------------------------------------------


def on_take_over_deleted(sender, instance, **kwargs) -> None:
    notify_access_changed([instance.instructor_id])


def remember_instructor(sender, instance, **kwargs) -> None:
    # Read before the delete: when the whole classroom is deleted, its row is gone by post_delete.
    instance._instructor_id = _instructor_of(instance.classroom_id)


def on_classroom_row_deleted(sender, instance, **kwargs) -> None:
    """A membership or an assigned lesson went: its classroom's instructor loses those consoles."""
    notify_access_changed([getattr(instance, "_instructor_id", None)], roster_of=instance.classroom_id)


def on_membership_saved(sender, instance, raw=False, **kwargs) -> None:
    """A learner joined (or was renamed): the classroom's dashboards show them at once, not at
    their next snapshot."""
    if not raw:
        notify_access_changed([], roster_of=instance.classroom_id)


def remember_previous_instructor(sender, instance, raw=False, **kwargs) -> None:
    instance._previous_instructor_id = _instructor_of(instance.pk) if instance.pk and not raw else None


def on_classroom_saved(sender, instance, created=False, raw=False, **kwargs) -> None:
    # Ended, reopened, or given to another instructor: whoever taught it before and now re-checks.
    if raw or created:
        return
    notify_access_changed([instance.instructor_id, getattr(instance, "_previous_instructor_id", None)])


def on_classroom_deleted(sender, instance, **kwargs) -> None:
    notify_access_changed([instance.instructor_id])


# --- The instructor role ----------------------------------------------------------------------


def on_groups_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """``user.groups.remove/clear`` and ``group.user_set.remove/clear`` (the admin uses both)."""
    if action not in ("pre_clear", "post_remove", "post_clear"):
        return
    if not reverse:  # instance is the user
        if action != "pre_clear":
            notify_access_changed([instance.pk])
        return
    if instance.name != INSTRUCTORS_GROUP:  # instance is the group
        return
    if action == "pre_clear":
        instance._cleared_user_ids = list(instance.user_set.values_list("pk", flat=True))
    elif action == "post_clear":
        notify_access_changed(getattr(instance, "_cleared_user_ids", []))
    else:
        notify_access_changed(pk_set or [])


def on_user_saved(sender, instance, created=False, raw=False, update_fields=None, **kwargs) -> None:
    if raw or created:
        return
    if update_fields is not None and not ROLE_FIELDS & set(update_fields):
        return
    notify_access_changed([instance.pk])


def connect() -> None:
    user_model = get_user_model()
    post_delete.connect(on_take_over_deleted, sender=TakeOver, dispatch_uid="access-take-over")
    for model in (Membership, AssignedLesson):
        pre_delete.connect(remember_instructor, sender=model, dispatch_uid=f"access-pre-{model.__name__}")
        post_delete.connect(on_classroom_row_deleted, sender=model, dispatch_uid=f"access-{model.__name__}")
    post_save.connect(on_membership_saved, sender=Membership, dispatch_uid="access-membership-saved")
    pre_save.connect(remember_previous_instructor, sender=Classroom, dispatch_uid="access-classroom-pre")
    post_save.connect(on_classroom_saved, sender=Classroom, dispatch_uid="access-classroom")
    post_delete.connect(on_classroom_deleted, sender=Classroom, dispatch_uid="access-classroom-deleted")
    m2m_changed.connect(on_groups_changed, sender=user_model.groups.through, dispatch_uid="access-groups")
    post_save.connect(on_user_saved, sender=user_model, dispatch_uid="access-user")
