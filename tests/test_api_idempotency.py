"""Idempotency-Key on POST /v1/video/generate (docs/api.md, "Extensions")."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from generator.models import CreditLedger, Generation, IdempotencyRecord
from generator.services.billing import credits_grant
from generator.services.idempotency import body_digest
from tests.factories import make_api_key, make_team
from tests.harness import run_together

BODY = {"input": "https://shop.example/shoe.jpg", "options": {"prompt": "slow zoom in"}}


def post(client, key: str, body, idempotency_key: str | None = None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    if idempotency_key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = idempotency_key
    return client.post("/v1/video/generate", json.dumps(body), content_type="application/json", **headers)


# Limits lifted: what is tested is the key, not the rate windows.
pytestmark = pytest.mark.usefixtures("unlimited")


def holds(team) -> int:
    return CreditLedger.objects.filter(team=team, kind="hold").count()


def test_same_key_and_body_replays_the_first_answer_and_charges_once(client, team, key):
    first = post(client, key, BODY, "order-1")
    # Key order and whitespace do not make another body.
    again = client.post(
        "/v1/video/generate",
        '{"options": {"prompt": "slow zoom in"},   "input": "https://shop.example/shoe.jpg"}',
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
        HTTP_IDEMPOTENCY_KEY="order-1",
    )
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert "RateLimit-Limit" in again
    assert Generation.objects.count() == 1
    assert holds(team) == 1
    team.refresh_from_db()
    assert team.balance == 965


def test_same_key_with_another_body_is_422(client, team, key):
    assert post(client, key, BODY, "order-1").status_code == 200
    response = post(client, key, {**BODY, "options": {"prompt": "slow zoom out"}}, "order-1")
    assert response.status_code == 422
    assert response.json()["error_code"] == "9000"
    assert "Idempotency-Key" in response.json()["error_details"]
    assert Generation.objects.count() == 1


def test_key_still_in_flight_is_409(client, team, key):
    IdempotencyRecord.objects.create(team=team, key="busy", body_digest=body_digest(BODY))
    response = post(client, key, BODY, "busy")
    assert response.status_code == 409
    assert response.json()["error_code"] == "1009"
    assert Generation.objects.count() == 0


def test_abandoned_in_flight_key_is_taken_over(client, team, key):
    IdempotencyRecord.objects.create(
        team=team, key="stuck", body_digest=body_digest(BODY), created_at=timezone.now() - timedelta(minutes=5)
    )
    response = post(client, key, BODY, "stuck")
    assert response.status_code == 200
    assert IdempotencyRecord.objects.get(key="stuck").generation_id == response.json()["data"]["id"]


def test_keys_are_per_team(client, team, key):
    other = make_team(credits=100)
    first = post(client, key, BODY, "shared")
    second = post(client, make_api_key(other), BODY, "shared")
    assert first.status_code == second.status_code == 200
    assert first.json()["data"]["id"] != second.json()["data"]["id"]


def test_key_expires_after_24_hours(client, team, key):
    first = post(client, key, BODY, "daily")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=24, seconds=1))
    second = post(client, key, BODY, "daily")
    assert second.status_code == 200
    assert second.json()["data"]["id"] != first.json()["data"]["id"]
    assert holds(team) == 2


def test_refused_request_keeps_the_key_and_the_same_body_is_judged_again(client, team, key):
    credits_grant(team=team, amount=-1000, reason="empty")
    refused = post(client, key, BODY, "retry-me")
    assert refused.status_code == 402
    record = IdempotencyRecord.objects.get(key="retry-me")
    assert record.status_code == 402
    assert record.response is None
    assert record.body_digest == body_digest(BODY)
    # Still short: judged again, so a 402 again (not a replay of the first refusal).
    again = post(client, key, BODY, "retry-me")
    assert again.status_code == 402
    assert "Idempotent-Replayed" not in again
    credits_grant(team=team, amount=100, reason="top up")
    accepted = post(client, key, BODY, "retry-me")
    assert accepted.status_code == 200
    assert "Idempotent-Replayed" not in accepted
    replay = post(client, key, BODY, "retry-me")
    assert replay.json() == accepted.json()
    assert replay["Idempotent-Replayed"] == "true"
    assert IdempotencyRecord.objects.get(key="retry-me").generation_id == accepted.json()["data"]["id"]
    assert holds(team) == 1


def test_refused_request_still_binds_the_key_to_its_body(client, team, key):
    credits_grant(team=team, amount=-1000, reason="empty")
    assert post(client, key, BODY, "bound").status_code == 402
    credits_grant(team=team, amount=100, reason="top up")
    other = post(client, key, {**BODY, "options": {"prompt": "slow zoom out"}}, "bound")
    assert other.status_code == 422
    assert "Idempotency-Key" in other.json()["error_details"]
    assert Generation.objects.count() == 0
    assert holds(team) == 0


def test_invalid_body_binds_the_key_so_a_corrected_body_needs_a_new_key(client, team, key):
    bad = {"input": "ftp://x/y.jpg", "options": {"prompt": "zoom in"}}
    first = post(client, key, bad, "k")
    assert first.status_code == 422
    assert "input" in first.json()["error_details"]
    # The same bad body is validated again and names the field, not the key.
    assert "input" in post(client, key, bad, "k").json()["error_details"]
    corrected = post(client, key, BODY, "k")
    assert corrected.status_code == 422
    assert "Idempotency-Key" in corrected.json()["error_details"]
    assert post(client, key, BODY, "k2").status_code == 200


def test_rate_limited_request_keeps_the_key_for_its_body(client, team, key):
    team.rate_per_second = 1
    team.save(update_fields=["rate_per_second"])
    assert post(client, key, BODY, "first").status_code == 200
    assert post(client, key, BODY, "second").status_code == 429
    assert post(client, key, {**BODY, "options": {"prompt": "slow zoom out"}}, "second").status_code == 422


def test_refused_key_is_free_for_another_body_after_24_hours(client, team, key):
    credits_grant(team=team, amount=-1000, reason="empty")
    assert post(client, key, BODY, "old").status_code == 402
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=24, seconds=1))
    credits_grant(team=team, amount=100, reason="top up")
    assert post(client, key, {**BODY, "options": {"prompt": "slow zoom out"}}, "old").status_code == 200


def test_unexpected_failure_keeps_the_key_bound_and_a_retry_of_the_body_succeeds(client, team, key, monkeypatch):
    from generator.api import video_endpoints as views

    real = views.generation_create

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(views, "generation_create", broken)
    assert post(client, key, BODY, "flaky").status_code == 500
    assert IdempotencyRecord.objects.get(key="flaky").status_code == 500
    monkeypatch.setattr(views, "generation_create", real)
    assert post(client, key, {**BODY, "options": {"prompt": "slow zoom out"}}, "flaky").status_code == 422
    accepted = post(client, key, BODY, "flaky")
    assert accepted.status_code == 200
    assert holds(team) == 1


@pytest.mark.parametrize("value", ["", "x" * 256, "tab\tinside"])
def test_bad_key_header_is_422(client, team, key, value):
    response = post(client, key, BODY, value)
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json()["error_details"]
    assert Generation.objects.count() == 0


def test_key_of_255_characters_is_accepted(client, team, key):
    assert post(client, key, BODY, "k" * 255).status_code == 200


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ten_parallel_requests_with_one_key_make_one_job_and_one_charge():
    # Limits lifted, so only the key can stop the other nine from being accepted.
    team = make_team(credits=1000, rate_per_second=1000, rate_per_minute=1000)
    key = make_api_key(team)
    responses = [(r.status_code, r.json()) for r in run_together(10, lambda: post(Client(), key, BODY, "parallel"))]
    assert len(responses) == 10
    statuses = sorted(status for status, _ in responses)
    assert set(statuses) <= {200, 409}
    accepted_ids = {body["data"]["id"] for status, body in responses if status == 200}
    assert len(accepted_ids) == 1
    assert all(body["error_code"] == "1009" for status, body in responses if status == 409)
    assert Generation.objects.filter(team=team).count() == 1
    assert CreditLedger.objects.filter(team=team, kind="hold").count() == 1
    team.refresh_from_db()
    assert team.balance == 965
    # After the first finished, the same request is a replay of it.
    replay = post(Client(), key, BODY, "parallel")
    assert replay.json()["data"]["id"] in accepted_ids


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_retries_of_a_refused_key_make_one_job():
    team = make_team(credits=1000, rate_per_second=1000, rate_per_minute=1000)
    key = make_api_key(team)
    IdempotencyRecord.objects.create(team=team, key="again", body_digest=body_digest(BODY), status_code=402)
    responses = [(r.status_code, r.json()) for r in run_together(8, lambda: post(Client(), key, BODY, "again"))]
    assert len(responses) == 8
    assert {status for status, _ in responses} <= {200, 409}
    assert len({body["data"]["id"] for status, body in responses if status == 200}) == 1
    assert Generation.objects.filter(team=team).count() == 1
    assert CreditLedger.objects.filter(team=team, kind="hold").count() == 1
