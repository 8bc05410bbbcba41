"""System checks for settings that would otherwise fail at the first job."""

from __future__ import annotations

import os

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register


@register()
def check_generator_settings(app_configs, **kwargs):
    problems: list[CheckMessage] = []
    q = settings.Q_CLUSTER
    if q.get("timeout", 0) >= q.get("retry", 0):
        problems.append(Error("Q_CLUSTER timeout must be lower than retry", id="generator.E001"))
    if not q.get("max_attempts"):
        problems.append(Error("Q_CLUSTER max_attempts must be finite (> 0)", id="generator.E002"))
    for key in settings.GENERATOR_ENCRYPTION_KEYS:
        try:
            Fernet(key.encode())
        except ValueError:
            problems.append(
                Error("GENERATOR_ENCRYPTION_KEYS holds a key that is not a Fernet key", id="generator.E003")
            )
    if not settings.DEBUG and not settings.GENERATOR_ENCRYPTION_KEYS:
        problems.append(
            Warning(
                "GENERATOR_ENCRYPTION_KEYS is not set: storage secrets are encrypted with a key derived from SECRET_KEY",
                id="generator.W001",
            )
        )
    if not settings.DEBUG and os.environ.get("GENERATOR_PUBLIC_URL", "").strip() == "":
        problems.append(
            Warning(
                "GENERATOR_PUBLIC_URL is not set: video links built by workers point at http://127.0.0.1:8000",
                hint="Set it to the public base URL, e.g. https://video.example.com",
                id="generator.W003",
            )
        )
    if not settings.DEBUG and settings.GENERATOR_FETCH_ALLOW_HOSTS:
        problems.append(
            Warning(
                "GENERATOR_FETCH_ALLOW_HOSTS is a development setting; it is set in production", id="generator.W002"
            )
        )
    return problems
