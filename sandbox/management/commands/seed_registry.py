import docker
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sandbox.images.build import build_image, build_order
from sandbox.images.recipes import LESSON_IMAGES, BuildError, image_tag


class Command(BaseCommand):
    help = ("Push the lesson images (built offline) into the classroom registry's shared namespace, "
            "e.g. 127.0.0.1:5000/library/hello, so a `docker pull` in a lesson is a real pull; and the "
            "sandbox base as tutorial/base, which the Kubernetes lessons' pods run.")

    def add_arguments(self, parser):
        parser.add_argument("--rebuild", action="store_true", help="build the lesson images even if present")

    def handle(self, *args, rebuild, **options):
        client = docker.DockerClient(base_url=settings.DOCKER_HOST, timeout=120)
        try:
            for name in build_order([*LESSON_IMAGES, "base"]):
                try:
                    if rebuild:
                        raise docker.errors.ImageNotFound(name)
                    client.images.get(image_tag(name))
                except docker.errors.ImageNotFound:
                    self.stdout.write(f"built {build_image(client, name)}")
        except BuildError as exc:
            raise CommandError(str(exc)) from exc
        # The Kubernetes lessons' pods run the sandbox base as tutorial/base, pulled by the node.
        pushes = [(name, f"library/{shared}") for name, shared in LESSON_IMAGES.items()] + [("base", "tutorial/base")]
        # Toolbox pods (TUTORIAL_KUBERNETES_TOOLBOX=pod) are pulled by the node too. The toolbox
        # needs a static kubectl, so it is pushed once built (`build_images toolbox`), never built here.
        try:
            client.images.get(image_tag("toolbox"))
            pushes.append(("toolbox", "tutorial/toolbox"))
        except docker.errors.ImageNotFound:
            self.stdout.write("toolbox image not built: not pushed (toolbox pods need it: `manage.py build_images toolbox`)")
        for name, path in pushes:
            target = f"{settings.GATEWAY_REGISTRY}/{path}"
            client.images.get(image_tag(name)).tag(target, "latest")
            error = None
            for line in client.images.push(target, "latest", stream=True, decode=True):
                error = line.get("error") or error
            if error:
                raise CommandError(f"pushing {target} failed: {error} (is the registry running? scripts/start-registry.sh)")
            self.stdout.write(f"pushed {target}:latest")
