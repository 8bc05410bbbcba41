from __future__ import annotations

from generator.checks import check_generator_settings


def _ids(**kwargs) -> set[str]:
    return {problem.id for problem in check_generator_settings(None)}


def test_timeout_not_below_retry_is_an_error(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 700, "retry": 660}
    assert "generator.E001" in _ids()


def test_bad_encryption_key_is_an_error(settings):
    settings.GENERATOR_ENCRYPTION_KEYS = ["not-a-fernet-key"]
    assert "generator.E003" in _ids()


def test_production_without_public_url_warns(settings, monkeypatch):
    settings.DEBUG = False
    monkeypatch.delenv("GENERATOR_PUBLIC_URL", raising=False)
    assert "generator.W003" in _ids()
    monkeypatch.setenv("GENERATOR_PUBLIC_URL", "https://video.example.com")
    assert "generator.W003" not in _ids()
