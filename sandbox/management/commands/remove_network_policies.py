"""``manage.py remove_network_policies``: remove this install's NetworkPolicies from the cluster.

Each install (``TUTORIAL_INSTALL_ID``) that started sandbox or toolbox pods has one policy in the
sandboxes namespace (``tutorial-sandboxes-deny-<install>``) and one in the tools namespace
(``tutorial-toolboxes-<install>``); they stay while the install lives, shared namespaces outlive
it. Run this when the install is taken down for good (a benchmark's or a test's own install
finished; ``scripts/deploy-cluster.sh --delete`` does the same with kubectl). A namespace where
pods of the install are still left keeps its policy, and the command says so and fails.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from sandbox.backends.base import BackendError
from sandbox.backends.pod import PodBackend
from sandbox.backends.toolboxes import PodToolboxes


async def remove_install_policies(backends: list[PodBackend]) -> tuple[list[str], list[str]]:
    """Remove the install's policy in each backend's namespace: (what was done, what could not be)."""
    done, refused = [], []
    for backend in backends:
        try:
            removed = await backend.remove_namespace_policy()
        except BackendError as exc:
            refused.append(str(exc))
            continue
        done.append(f"{'removed' if removed else 'none left'}: {backend.policy_name()} in {backend.namespace}")
    return done, refused


class Command(BaseCommand):
    help = ("Remove this install's NetworkPolicies from the sandboxes and tools namespaces once none of its pods "
            "are left there (the install is taken down).")

    def handle(self, *args, **options):
        done, refused = async_to_sync(remove_install_policies)([PodBackend(), PodToolboxes()])
        for line in done:
            self.stdout.write(line)
        if refused:
            raise CommandError(f"install {settings.INSTALL_ID}: " + " ".join(refused))
