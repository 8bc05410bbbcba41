"""Secure defaults: DEBUG off unless asked for, no built-in SECRET_KEY in production, no passwords in error reports."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import RequestFactory
from django.views.debug import ExceptionReporter

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "hunter2-Pa55word"


def _settings_in_a_fresh_process(env: dict[str, str], expression: str) -> subprocess.CompletedProcess:
    """Import config.settings in a new interpreter with exactly `env` (plus PATH) and print expression."""
    base = {"PATH": os.environ.get("PATH", ""), "DJANGO_SETTINGS_MODULE": "config.settings"}
    code = f"from django.conf import settings; print({expression})"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60
    )


def test_debug_is_off_unless_the_environment_turns_it_on(tmp_path):
    data = {"GENERATOR_DATA_DIR": str(tmp_path), "SECRET_KEY": "k" * 50}
    assert _settings_in_a_fresh_process(data, "settings.DEBUG").stdout.strip() == "False"
    assert _settings_in_a_fresh_process({**data, "DEBUG": "1"}, "settings.DEBUG").stdout.strip() == "True"


def test_settings_refuse_to_start_without_a_secret_key_when_debug_is_off(tmp_path):
    result = _settings_in_a_fresh_process({"GENERATOR_DATA_DIR": str(tmp_path)}, "settings.SECRET_KEY")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_the_built_in_secret_key_is_refused_even_when_given_explicitly_with_debug_off(tmp_path, settings):
    env = {"GENERATOR_DATA_DIR": str(tmp_path), "SECRET_KEY": settings.DEV_SECRET_KEY, "DEBUG": "0"}
    result = _settings_in_a_fresh_process(env, "settings.SECRET_KEY")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_debug_on_may_use_the_built_in_secret_key(tmp_path, settings):
    env = {"GENERATOR_DATA_DIR": str(tmp_path), "DEBUG": "1"}
    assert _settings_in_a_fresh_process(env, "settings.SECRET_KEY").stdout.strip() == settings.DEV_SECRET_KEY


def test_make_run_turns_debug_on_for_local_use(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_file_location("make_run", ROOT / "scripts" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "DATA", tmp_path)
    monkeypatch.delenv("DEBUG", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)

    module.prepare_environment()

    assert os.environ["DEBUG"] == "1"
    assert os.environ["SECRET_KEY"] == (tmp_path / "secret_key").read_text().strip()


@pytest.mark.parametrize("reporter", ["html", "text"])
def test_error_reports_hide_every_setting_that_may_hold_a_password(settings, reporter):
    database_url = f"postgres://video:{PASSWORD}@db.internal:5432/video"
    redis_url = f"redis://:{PASSWORD}@redis.internal:6379/0"
    settings.DATABASE_URL = database_url
    settings.REDIS_URL = redis_url
    settings.SENTRY_DSN = f"https://public:{PASSWORD}@sentry.example.com/1"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}}
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "redis": redis_url}
    # Under runserver (wsgiref) request.META carries the whole process environment.
    request = RequestFactory().get("/boom", DATABASE_URL=database_url, OTHER=f"see {redis_url}")
    try:
        raise RuntimeError("boom")  # database_url and redis_url are local variables of this frame
    except RuntimeError:
        exc_reporter = ExceptionReporter(request, *sys.exc_info())
        text = exc_reporter.get_traceback_html() if reporter == "html" else exc_reporter.get_traceback_text()

    for shown in ("boom", "DATABASE_URL", "Q_CLUSTER", "redis_url"):
        assert shown in text
    assert PASSWORD not in text
