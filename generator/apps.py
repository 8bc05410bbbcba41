from django.apps import AppConfig


class GeneratorConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "generator"
    verbose_name = "Image to video"

    def ready(self) -> None:
        from generator import checks  # noqa: F401  (registers system checks)
        from generator.db import configure_sqlite  # noqa: F401  (connection signal)
