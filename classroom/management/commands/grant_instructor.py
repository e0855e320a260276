"""Make a user an instructor (member of the ``instructors`` group), or take it back."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from classroom.roster import grant_instructor


class Command(BaseCommand):
    help = "Let a user create classrooms and watch their learners (--revoke to take it back)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--revoke", action="store_true")

    def handle(self, username, revoke, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        grant_instructor(user, revoke=revoke)
        self.stdout.write(f"{username} is {'no longer' if revoke else 'now'} an instructor.")
