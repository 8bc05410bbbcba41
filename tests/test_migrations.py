"""Data migrations move existing rows to the new shape."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from generator.crypto import decrypt_json


def _migrate(target: list[tuple[str, str]]):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)
    return executor.loader.project_state(target).apps


@pytest.mark.django_db(transaction=True)
def test_webhook_secrets_written_before_encryption_are_encrypted_by_the_migration():
    old_apps = _migrate([("generator", "0001_initial")])
    try:
        OldTeam = old_apps.get_model("generator", "Team")
        team = OldTeam.objects.create(
            name="Legacy",
            slug="legacy",
            webhook_url="https://hooks.example.com/a",
            webhook_secret="plain-old-secret-123",
        )
        new_apps = _migrate([("generator", "0002_team_webhook_secret_encrypted")])
        stored = new_apps.get_model("generator", "Team").objects.get(pk=team.pk)
        assert "plain-old-secret" not in stored.webhook_secret_encrypted
        assert decrypt_json(stored.webhook_secret_encrypted) == {"secret": "plain-old-secret-123"}

        back = _migrate([("generator", "0001_initial")]).get_model("generator", "Team").objects.get(pk=team.pk)
        assert back.webhook_secret == "plain-old-secret-123"
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
