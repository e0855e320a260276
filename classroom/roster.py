"""Who teaches and who learns: instructors, classrooms, their lessons, joining, names.

Lookups that find nothing raise :class:`NotFound` (views answer 404; nothing here knows HTTP)."""

from __future__ import annotations


from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from accounts import guests
from lessons.catalogue import get_lesson
from lessons.lesson import Lesson

from .models import INSTRUCTORS_GROUP, AssignedLesson, Classroom, Membership
from .permissions import taught_classrooms


MAX_DISPLAY_NAME = 80


class NotFound(LookupError):
    """No such classroom, learner or sandbox for this person: the view answers 404 (the same
    answer whether it does not exist or is not theirs to see)."""


class ClassroomError(ValueError):
    """Bad input for a classroom action; the message is shown to the user."""


# --- Who is an instructor ---------------------------------------------------------------------


def is_instructor(user) -> bool:
    """Superusers and members of the ``instructors`` group (``manage.py grant_instructor``)."""
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name=INSTRUCTORS_GROUP).exists()


def grant_instructor(user, *, revoke: bool = False) -> None:
    group, _created = Group.objects.get_or_create(name=INSTRUCTORS_GROUP)
    (user.groups.remove if revoke else user.groups.add)(group)


def classroom_for_instructor(user, classroom_id: int) -> Classroom:
    """The classroom if ``user`` teaches it and still holds the instructor role; 404 for everyone
    else (no hint that it exists), a revoked instructor included."""
    classroom = taught_classrooms(user).filter(pk=classroom_id).first()
    if classroom is None:
        raise NotFound("No such classroom.")
    return classroom


def membership_for_learner(user, classroom_id: int) -> Membership:
    membership = (
        Membership.objects.select_related("classroom").filter(classroom_id=classroom_id, user_id=user.pk).first()
        if user.is_authenticated
        else None
    )
    if membership is None:
        raise NotFound("No such classroom.")
    return membership


# --- Creating and joining ---------------------------------------------------------------------


def assigned_lessons(classroom: Classroom) -> list[Lesson]:
    """The classroom's lessons that exist in the curriculum, in the instructor's order."""
    lessons = []
    for slug in classroom.lesson_slugs():
        lesson = get_lesson(slug)
        if lesson is not None:
            lessons.append(lesson)
    return lessons


def create_classroom(instructor, name: str, lesson_slugs: list[str]) -> Classroom:
    name = (name or "").strip()
    if not name:
        raise ClassroomError(_("Give the classroom a name."))
    if not lesson_slugs:
        raise ClassroomError(_("Assign at least one lesson."))
    unknown = [slug for slug in lesson_slugs if get_lesson(slug) is None]
    if unknown:
        raise ClassroomError(_("No such lesson: %(slugs)s.") % {"slugs": ", ".join(unknown)})
    with transaction.atomic():
        classroom = Classroom.objects.create(name=name[:200], instructor=instructor)
        set_lessons(classroom, lesson_slugs)
    return classroom


def set_lessons(classroom: Classroom, lesson_slugs: list[str]) -> None:
    seen = list(dict.fromkeys(lesson_slugs))
    with transaction.atomic():
        AssignedLesson.objects.filter(classroom=classroom).exclude(lesson__in=seen).delete()
        for position, slug in enumerate(seen):
            AssignedLesson.objects.update_or_create(classroom=classroom, lesson=slug, defaults={"position": position})


def classroom_by_code(code: str) -> Classroom | None:
    code = (code or "").strip().upper().replace("-", "").replace(" ", "")
    if not code:
        return None
    return Classroom.objects.filter(join_code=code).first()


def clean_display_name(name: str, fallback: str) -> str:
    name = " ".join((name or "").split())[:MAX_DISPLAY_NAME]
    return name or fallback


def default_display_name(user) -> str:
    """The name a learner is shown by when they give none: the one they chose in another class,
    their full name, or their username (never a guest's generated ``guest-…`` one)."""
    earlier = Membership.objects.filter(user_id=user.pk).order_by("-joined_at").values_list("display_name", flat=True).first()
    if earlier:
        return earlier
    if user.get_full_name():
        return user.get_full_name()
    return "" if guests.is_guest(user) else user.get_username()


def learner_name(classroom: Classroom, user) -> str:
    """How the instructor's pages and messages name a learner: their display name in this class."""
    name = Membership.objects.filter(classroom=classroom, user_id=user.pk).values_list("display_name", flat=True).first()
    return name or default_display_name(user) or user.get_username()


def join(classroom: Classroom, user, display_name: str = "") -> Membership:
    """Add the learner (idempotent); a closed classroom refuses newcomers."""
    existing = Membership.objects.filter(classroom=classroom, user=user).first()
    if existing:
        return existing
    if not classroom.open_for_joining:
        raise ClassroomError(_("This classroom is closed to new learners; ask your instructor."))
    if classroom.instructor_id == user.pk:
        raise ClassroomError(_("You teach this classroom: open its dashboard instead."))
    name = clean_display_name(display_name, default_display_name(user))
    if not name:
        raise ClassroomError(_("Choose the name your instructor will see."))
    try:
        with transaction.atomic():
            return Membership.objects.create(classroom=classroom, user=user, display_name=name)
    except IntegrityError:  # joined twice at once
        return Membership.objects.get(classroom=classroom, user=user)


def remove_member(classroom: Classroom, membership_id: int) -> str:
    """Remove the learner from the class; returns the name they were shown by."""
    membership = Membership.objects.filter(classroom=classroom, pk=membership_id).first()
    if membership is None:
        raise NotFound("No such learner in this classroom.")
    membership.delete()
    return membership.display_name


def rename_member(classroom: Classroom, membership_id: int, display_name: str) -> Membership:
    membership = Membership.objects.filter(classroom=classroom, pk=membership_id).first()
    if membership is None:
        raise NotFound("No such learner in this classroom.")
    membership.display_name = clean_display_name(display_name, membership.display_name)
    membership.save(update_fields=["display_name"])
    return membership
