"""``manage.py doctor``: check every dependency of the site and say how to fix each failure."""

from __future__ import annotations


from django.core.management.base import BaseCommand, CommandError

from ops.doctor import CHECKS, checks_named


class Command(BaseCommand):
    help = (
        "Preflight: check the Docker engine, cgroup limits, sandbox images, registry, channel layer, "
        "database, Kubernetes cluster (when lessons need it), free disk and static files. "
        "Exits non-zero when a required check fails."
    )
    requires_system_checks = []  # the doctor must run even when the settings are half right

    def add_arguments(self, parser):
        parser.add_argument("--only", nargs="+", metavar="CHECK", choices=[c.name for c in CHECKS],
                            help="run only these checks")
        parser.add_argument("--require-registry", action="store_true",
                            help="a missing registry is a failure, not a warning (classroom deployments)")
        parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
        parser.add_argument("--quiet", action="store_true", help="print only failures and warnings")

    def handle(self, *args, only, require_registry, json: bool, quiet: bool, **options):
        results = [(check, check.run()) for check in checks_named(only, require_registry=require_registry)]
        failed = [check.name for check, finding in results if not finding.ok and check.required]
        if json:
            self._print_json(results, failed)
        else:
            self._print_text(results, quiet)
        if failed:
            raise CommandError(f"{len(failed)} required check(s) failed: {', '.join(failed)}", returncode=1)

    def _print_text(self, results, quiet: bool) -> None:
        for check, finding in results:
            if finding.ok:
                if not quiet:
                    self.stdout.write(self.style.SUCCESS("ok   ") + f"{check.title}: {finding.message}")
                continue
            label = self.style.ERROR("FAIL ") if check.required else self.style.WARNING("warn ")
            self.stdout.write(label + f"{check.title}: {finding.message}")
            if finding.fix:
                self.stdout.write(f"     fix: {finding.fix}")

    def _print_json(self, results, failed: list[str]) -> None:
        import json as json_module

        self.stdout.write(json_module.dumps({
            "ok": not failed,
            "checks": [
                {"name": check.name, "title": check.title, "required": check.required,
                 "ok": finding.ok, "message": finding.message, "fix": finding.fix}
                for check, finding in results
            ],
        }))
