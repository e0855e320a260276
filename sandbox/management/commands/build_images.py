import docker
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sandbox.engine.api import engine_down_message
from sandbox.images.build import build_image, build_order
from sandbox.images.recipes import RECIPES, BuildError


class Command(BaseCommand):
    help = "Build the sandbox images offline from sandbox/images/ (no registry needed)."

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", help=f"images to build (default: all of {', '.join(RECIPES)})")
        parser.add_argument("--base", help="base image for the build (default: TUTORIAL_SANDBOX_BASE or scratch)")

    def handle(self, *args, names, base, **options):
        try:
            client = docker.DockerClient(base_url=settings.DOCKER_HOST)
            client.ping()
        except Exception as exc:  # noqa: BLE001 - every failure here means "no engine"
            raise CommandError(engine_down_message(settings.DOCKER_HOST, exc)) from exc
        try:
            for name in build_order(names or list(RECIPES)):
                self.stdout.write(f"built {build_image(client, name, base=base)}")
        except BuildError as exc:
            raise CommandError(str(exc)) from exc
