from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from generator import tasks
from generator.models import IdempotencyRecord
from tests.factories import make_api_key, make_team


@pytest.mark.django_db
def test_purge_task_drops_idempotency_records_older_than_a_day_and_keeps_fresh_ones():
    team = make_team()
    old = IdempotencyRecord.objects.create(
        team=team, key="old", body_digest="x", created_at=timezone.now() - timedelta(hours=24, seconds=1)
    )
    fresh = IdempotencyRecord.objects.create(team=team, key="fresh", body_digest="y")
    assert tasks.purge_task() == "videos=0 idempotency_keys=1 uploads=0 kept_inputs=0"
    assert not IdempotencyRecord.objects.filter(pk=old.pk).exists()
    assert IdempotencyRecord.objects.filter(pk=fresh.pk).exists()


@pytest.mark.django_db
def test_unexpected_error_in_an_api_view_answers_the_json_envelope(client, monkeypatch):
    team = make_team()
    key = make_api_key(team)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("generator.api.account_endpoints.month_start", broken, raising=True)
    response = client.get("/v1/account", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 500
    body = response.json()
    assert body["error_code"] == "1000"
    assert "boom" not in body["error_message"]
