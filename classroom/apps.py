from django.apps import AppConfig


class ClassroomConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "classroom"

    def ready(self) -> None:
        # Progress rows are written by lessons/progress.py; the dashboard hears about them through
        # post_save signals, so the lesson engine knows nothing about classrooms. Likewise the
        # console consumer learns of the instructor rule, and of changes to it, from here.
        # Imported here, not at the top: they import models, which Django loads after this module.
        from sandbox.permissions import register_console_rule

        from . import access_events, signals
        from .permissions import ainstructor_console_access

        signals.connect()
        access_events.connect()
        register_console_rule(ainstructor_console_access)
