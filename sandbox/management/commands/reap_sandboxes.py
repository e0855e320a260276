"""``manage.py reap_sandboxes``: apply sandbox limits and reconcile the engine with the database.

Once by default; ``--loop`` runs at start-up and then every ``SANDBOX_REAPER_INTERVAL_SECONDS``
(``scripts/run-site.sh`` starts it beside daphne). ``--sandbox ID`` limits a pass to some
sandboxes (to look at one learner's trouble without touching the rest). ``--lease NAME`` (or
``TUTORIAL_REAPER_LEASE``) makes several looping reapers on a cluster agree on one active: only the
holder of that coordination.k8s.io Lease in the pod's namespace reaps (``sandbox.lease``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid

from asgiref.sync import sync_to_async

from django.core.management.base import BaseCommand, CommandError

from sandbox import lease, reaper, tasks


class Command(BaseCommand):
    help = "Apply time to live and idle timeout, promote the queue, refill the warm pool, reconcile the engine."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="run for ever, one pass every interval")
        parser.add_argument("--interval", type=float, default=None, help="seconds between passes (with --loop)")
        parser.add_argument("--sandbox", action="append", default=[], metavar="ID",
                            help="only these sandbox ids (repeatable); skips the queue and the pool")
        parser.add_argument("--json", action="store_true", help="print what one pass did as JSON")
        parser.add_argument("--lease", default=os.environ.get("TUTORIAL_REAPER_LEASE", ""), metavar="NAME",
                            help="with --loop: reap only while holding this Lease (several replicas, one active)")

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
            asyncio.run(self.loop_until_terminated(options["interval"], options["lease"]))
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

    async def loop_until_terminated(self, interval: float | None, lease_name: str) -> None:
        """The loop until SIGTERM (a pod stopped, `make run` ended) or Ctrl+C. SIGTERM cancels it
        on the event loop, so the loop's `finally` gives the Lease up (the other replica takes over
        now rather than when it expires) and the process ends without a traceback; raising
        SystemExit from a plain signal handler instead could land in the middle of the
        interpreter's thread shutdown."""
        task = asyncio.current_task()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            await self.loop(interval, lease_name)
        except asyncio.CancelledError:
            pass  # stopped: SIGTERM here, or Ctrl+C through asyncio.run

    @staticmethod
    async def loop(interval: float | None, lease_name: str) -> None:
        if not lease_name:
            await reaper.run_loop(interval)
            return
        try:
            elector = lease.LeaseElector(lease_name, lease.default_namespace(), lease.default_identity())
        except lease.LeaseError as exc:
            raise CommandError(str(exc)) from None
        try:
            await reaper.run_loop(interval, may_reap=sync_to_async(elector.hold, thread_sensitive=False))
        finally:
            await sync_to_async(elector.release, thread_sensitive=False)()
