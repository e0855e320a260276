"""Classrooms: an instructor, the lessons they assigned, the learners who joined, take-overs.

Lessons live in folders, not in the database, so a classroom names them by slug
(:class:`AssignedLesson`). Progress itself stays in ``lessons.models``; the dashboard reads it
for the classroom's members and assigned lessons only.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models

INSTRUCTORS_GROUP = "instructors"
# No 0/O/1/I/L: codes are read aloud and typed from a projector.
JOIN_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
JOIN_CODE_LENGTH = 8


def new_join_code() -> str:
    return "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH))


class Classroom(models.Model):
    name = models.CharField(max_length=200)
    instructor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="classrooms_taught")
    join_code = models.CharField(max_length=16, unique=True, default=new_join_code)
    # Closed classrooms accept nobody new (the end of the class, or a leaked code).
    open_for_joining = models.BooleanField(default=True)
    # Set by "End class": the instructor keeps the results (dashboard page, CSV) but no longer
    # watches or types in learners' consoles, and the live dashboard stops.
    ended_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def group_name(self) -> str:
        return group_name(self.pk)

    def lesson_slugs(self) -> list[str]:
        return [a.lesson for a in self.assigned_lessons.all()]


def group_name(classroom_id: int) -> str:
    """The channel-layer group every dashboard of this classroom listens on."""
    return f"classroom-{classroom_id}"


class AssignedLesson(models.Model):
    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="assigned_lessons")
    lesson = models.SlugField(max_length=100)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["classroom", "lesson"], name="lesson_once_per_classroom")]
        indexes = [models.Index(fields=["lesson"])]

    def __str__(self) -> str:
        return f"{self.classroom_id}:{self.lesson}"


class Membership(models.Model):
    """A learner in a classroom, with the name the instructor sees (guests pick one on joining)."""

    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="classroom_memberships")
    display_name = models.CharField(max_length=80)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["display_name", "id"]
        constraints = [models.UniqueConstraint(fields=["classroom", "user"], name="one_membership_per_user")]

    def __str__(self) -> str:
        return f"{self.display_name} in {self.classroom_id}"


class TakeOver(models.Model):
    """An instructor typing in a learner's console. While it exists their console is full access."""

    sandbox = models.ForeignKey("sandbox.Sandbox", on_delete=models.CASCADE, related_name="take_overs")
    instructor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="take_overs")
    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="take_overs")
    started_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sandbox", "instructor"], name="one_take_over_per_instructor")]
