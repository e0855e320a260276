"""Guests: a real user row without a password, so sandboxes and progress have an owner.

Every way in as a guest (the "Continue as guest" button, joining a classroom without an account)
goes through :func:`create_guest`, which applies the switch (``GUESTS_ENABLED``) and the rate per
client address: a script making guests in a loop would otherwise hold the class's sandboxes.
:func:`remove_old_guests` clears the guests nobody can use any more.
"""

from __future__ import annotations

import datetime as dt
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from lessons.models import StepProgress  # accounts sits beside lessons: only the cleanup reads it
from sandbox.models import Sandbox

from . import backends, limits

GUEST_PREFIX = "guest-"


class GuestRefused(Exception):
    """No guest was made; the message says why and what to do instead."""


def create_guest(request):
    """Make a guest, sign the request in as it, and return it; raises :class:`GuestRefused`."""
    if not settings.GUESTS_ENABLED:
        raise GuestRefused(_("Guest access is turned off on this site: log in or sign up."))
    verdict = limits.hit("guest", limits.client_address(request), settings.RATE_GUESTS_PER_ADDRESS)
    if verdict.limited:
        raise GuestRefused(verdict.message(_("guest sessions from your address")))
    user = get_user_model().objects.create_user(username=f"{GUEST_PREFIX}{secrets.token_hex(6)}")
    user.set_unusable_password()
    user.save(update_fields=["password"])
    login(request, user, backend=backends.PATH)
    return user


def is_guest(user) -> bool:
    return user.is_authenticated and user.get_username().startswith(GUEST_PREFIX) and not user.has_usable_password()


def remove_old_guests(now: dt.datetime | None = None) -> int:
    """Delete guests nobody can use any more; returns how many. Run it now and then: ``manage.py
    remove_old_guests`` (``make run`` runs it at start; a cron job or the reaper's loop may call
    this function too).

    Kept: anyone in a classroom (the instructor's dashboard shows them), anyone holding a sandbox
    that is not stopped, failed or gone, or whose stopped sandbox still keeps saved files.
    Removed: guests not seen (last log-in, else joined) for ``GUEST_MAX_AGE_SECONDS``, and guests
    that never did anything (no sandbox, no progress) after ``GUEST_UNUSED_SECONDS``."""
    now = now or timezone.now()
    User = get_user_model()
    old = now - dt.timedelta(seconds=settings.GUEST_MAX_AGE_SECONDS)
    unused_before = now - dt.timedelta(seconds=settings.GUEST_UNUSED_SECONDS)
    sandboxes = Sandbox.objects.filter(owner=OuterRef("pk"))
    busy = sandboxes.exclude(state__in=(Sandbox.State.STOPPED, Sandbox.State.FAILED, Sandbox.State.GONE))
    files_kept = sandboxes.filter(state=Sandbox.State.STOPPED, files_saved_at__isnull=False, expires_at__gt=now)
    progress = StepProgress.objects.filter(user=OuterRef("pk"))
    seen = Q(last_login__isnull=False, last_login__lt=old) | Q(last_login__isnull=True, date_joined__lt=old)
    never_used = Q(date_joined__lt=unused_before) & ~Exists(sandboxes) & ~Exists(progress)
    guests = (User.objects.filter(username__startswith=GUEST_PREFIX, password__startswith="!")
              .filter(classroom_memberships__isnull=True)
              .exclude(Exists(busy)).exclude(Exists(files_kept))
              .filter(seen | never_used))
    ids = list(guests.values_list("pk", flat=True)[:10000])
    if not ids:
        return 0
    User.objects.filter(pk__in=ids).delete()
    return len(ids)
