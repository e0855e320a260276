"""``manage.py reap_sandboxes``: apply sandbox limits and reconcile the engine with the database.

Once by default; ``--loop`` runs at start-up and then every ``SANDBOX_REAPER_INTERVAL_SECONDS``
(``scripts/run-site.sh`` starts it beside daphne). ``--sandbox ID`` limits a pass to some
sandboxes (to look at one learner's trouble without touching the rest).
"""

from __future__ import annotations

import asyncio
import json
import uuid

from django.core.management.base import BaseCommand, CommandError

from sandbox import reaper, tasks


class Command(BaseCommand):
    help = "Apply time to live and idle timeout, promote the queue, refill the warm pool, reconcile the engine."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="run for ever, one pass every interval")
        parser.add_argument("--interval", type=float, default=None, help="seconds between passes (with --loop)")
        parser.add_argument("--sandbox", action="append", default=[], metavar="ID",
                            help="only these sandbox ids (repeatable); skips the queue and the pool")
        parser.add_argument("--json", action="store_true", help="print what one pass did as JSON")

    def handle(self, *args, **options):
        ids = set()
        for text in options["sandbox"]:
            try:
                ids.add(str(uuid.UUID(text)))
            except ValueError:
                raise CommandError(f"--sandbox {text!r} is not a sandbox id (a UUID)") from None
        if options["loop"]:
            if ids:
                raise CommandError("--sandbox is for single passes; run without --loop")
            asyncio.run(reaper.run_loop(options["interval"]))
            return

        async def once():
            report = await reaper.reap_once(scope=(lambda sandbox_id: sandbox_id in ids) if ids else None)
            await tasks.wait_for_background()
            return report

        report = asyncio.run(once())
        if options["json"]:
            self.stdout.write(json.dumps(report.summary()))
        else:
            for key, value in report.summary().items():
                if value:
                    self.stdout.write(f"{key}: {value}")
