from django.core.management.base import BaseCommand

from accounts.guests import remove_old_guests


class Command(BaseCommand):
    help = "Remove guests nobody can use any more (see accounts.guests.remove_old_guests)."

    def handle(self, *args, **options):
        removed = remove_old_guests()
        self.stdout.write(f"removed {removed} old guest(s)")
