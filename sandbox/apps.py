from django.apps import AppConfig

from .gateway import hooks


class SandboxConfig(AppConfig):
    name = "sandbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Django app loading: the services read the models, importable only once apps are loaded.
        from .services import gateway_hooks

        # The gateway (below the services) gets what it calls back instead of importing it.
        hooks.install(gateway_hooks())
