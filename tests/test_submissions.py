"""The dashboard's Generate form is accepted once per form token and values (services/submissions.py)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from generator.errors import RateLimited, ValidationFailed
from generator.models import CreditLedger, Generation, IdempotencyRecord
from generator.services.submissions import generation_submit
from tests.factories import make_member, make_team

pytestmark = pytest.mark.django_db

BODY = {"input": "https://shop.example/shoe.jpg", "options": {"prompt": "slow zoom in", "duration": 5}}


def png(color=(10, 120, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (400, 320), color).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def member():
    return make_member(make_team("Acme", slug="acme"))


def test_same_token_and_values_return_the_first_job_charged_once(member):
    first = generation_submit(team=member.team, user=member.user, body=BODY, token="t1")
    again = generation_submit(team=member.team, user=member.user, body=BODY, token="t1")
    assert not first.replayed
    assert again.replayed
    assert again.generation.pk == first.generation.pk
    assert CreditLedger.objects.filter(kind="hold").count() == 1
    # The record reads like an API key's: the stored answer is the API's accepted body.
    record = IdempotencyRecord.objects.get()
    assert record.key.startswith("form:t1:")
    assert record.response["data"]["id"] == first.generation.pk


def test_same_token_with_edited_values_is_a_new_job(member):
    generation_submit(team=member.team, user=member.user, body=BODY, token="t1")
    Generation.objects.update(created_at=Generation.objects.get().created_at.replace(year=2000))
    edited = dict(BODY, options={"prompt": "pan left", "duration": 5})
    second = generation_submit(team=member.team, user=member.user, body=edited, token="t1")
    assert not second.replayed
    assert Generation.objects.count() == 2


def test_a_refused_submit_can_be_sent_again_and_is_judged_afresh(member):
    generation_submit(team=member.team, user=member.user, body=BODY, token="a")
    with pytest.raises(RateLimited):
        generation_submit(
            team=member.team, user=member.user, body=dict(BODY, input="https://shop.example/2.jpg"), token="b"
        )
    Generation.objects.update(created_at=Generation.objects.get().created_at.replace(year=2000))
    retried = generation_submit(
        team=member.team, user=member.user, body=dict(BODY, input="https://shop.example/2.jpg"), token="b"
    )
    assert not retried.replayed
    assert Generation.objects.count() == 2


def test_an_upload_is_identified_by_its_bytes_and_keeps_its_file_name(member, settings):
    body = dict(BODY, input="")
    first = generation_submit(
        team=member.team, user=member.user, body=body, token="u", upload=png(), upload_name="Blue Shirt.png"
    )
    again = generation_submit(
        team=member.team, user=member.user, body=body, token="u", upload=png(), upload_name="Blue Shirt.png"
    )
    assert again.replayed
    assert again.generation.pk == first.generation.pk
    assert first.generation.source_name == "Blue Shirt.png"
    assert first.generation.request["input"].startswith("storage://uploads/")
    folder = settings.GENERATOR_LOCAL_STORAGE_ROOT / member.team.slug / "uploads"
    assert len([p for p in folder.rglob("*") if p.is_file()]) == 1  # the repeat stored no second copy


def test_an_invalid_submit_keeps_no_upload(member, settings):
    with pytest.raises(ValidationFailed):
        generation_submit(
            team=member.team,
            user=member.user,
            body={"input": "", "options": {"prompt": "ab", "duration": 5}},
            token="x",
            upload=png(),
        )
    folder = settings.GENERATOR_LOCAL_STORAGE_ROOT / member.team.slug / "uploads"
    assert not [p for p in folder.rglob("*") if p.is_file()]
