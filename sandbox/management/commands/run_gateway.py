import asyncio
import logging
import os
import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from sandbox.gateway.server import GatewayServer, manager_pid_file
from sandbox.services import gateway_hooks


class Command(BaseCommand):
    help = ("Serve the Docker workspace gateway: one policy-checked Docker API socket per docker-workspace "
            "sandbox, following the engine. Run it beside the site; restarting it strands no sandbox.")

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=2.0, help="seconds between full re-lists of the engine")

    def handle(self, *args, interval, **options):
        logging.basicConfig(level=logging.INFO)
        pid_file = manager_pid_file()
        pid_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pid_file.write_text(str(os.getpid()))
        self.stdout.write(f"gateway: sockets under {settings.DATA_DIR / 'gateway'}, engine {settings.DOCKER_HOST}")
        try:
            asyncio.run(self._run(interval))
        finally:
            if pid_file.exists() and pid_file.read_text().strip() == str(os.getpid()):
                pid_file.unlink()

    async def _run(self, interval: float) -> None:
        server = GatewayServer(hooks=gateway_hooks())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        watcher = asyncio.create_task(server.watch(interval))
        await stop.wait()
        watcher.cancel()
        # A stopped gateway removes its sockets; a restarted one renames fresh ones in place.
        await server.close()
