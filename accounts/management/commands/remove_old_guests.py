import time

from django.core.management.base import BaseCommand

from accounts.guests import remove_old_guests


class Command(BaseCommand):
    help = "Remove guests nobody can use any more (see accounts.guests.remove_old_guests)."

    def add_arguments(self, parser):
        parser.add_argument("--every", type=float, default=0,
                            help="keep running: remove old guests every this many seconds (make run uses 3600)")

    def handle(self, *args, every: float = 0, **options):
        while True:
            removed = remove_old_guests()
            if removed or not every:
                self.stdout.write(f"removed {removed} old guest(s)")
            if not every:
                return
            time.sleep(every)
