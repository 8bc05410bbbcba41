from __future__ import annotations

import pytest

from generator.contract.generate import GenerateRequest
from generator.errors import (
    Conflict,
    Forbidden,
    InsufficientCredits,
    RateLimited,
    ValidationFailed,
)
from generator.models import CreditLedger, Generation, Membership, Storage
from generator.services.generations import (
    generation_cancel,
    generation_create,
    generation_delete,
    generation_retry,
)
from tests.factories import make_member, make_team, make_user

TEXT = {"prompt": "slow zoom in", "duration": 5, "guidance_scale": 0.5}


def submit(
    team,
    *,
    user=None,
    input="https://shop.example/shoe.jpg",
    output=None,
    duration=5,
    **kwargs,
):
    request = GenerateRequest.parse({"input": input, "options": {**TEXT, "duration": duration}, "output": output})
    return generation_create(team=team, request=request, user=user, **kwargs)


def ledger_sum(team) -> int:
    return sum(CreditLedger.objects.filter(team=team).values_list("amount", flat=True))


@pytest.mark.django_db
def test_accepted_job_holds_its_cost_and_is_queued_after_commit(
    django_capture_on_commit_callbacks,
):
    team = make_team(credits=100)
    with django_capture_on_commit_callbacks() as callbacks:
        result = submit(team, duration=10)
    generation = result.generation
    team.refresh_from_db()
    assert (
        generation.status,
        generation.stage,
        generation.cost,
        generation.duration,
    ) == ("PROCESSING", "queued", 70, 10)
    assert generation.is_temporary
    assert generation.request == {
        "input": "https://shop.example/shoe.jpg",
        "options": {**TEXT, "duration": 10},
    }
    assert team.balance == 30 == ledger_sum(team)
    hold = CreditLedger.objects.get(generation=generation)
    assert (hold.kind, hold.amount) == ("hold", -70)
    assert len(callbacks) == 1
    assert result.rate.remaining == 0
    assert result.rate.limit == 1
    assert result.rate.reset_s == 1


@pytest.mark.django_db
def test_short_balance_is_402_and_creates_nothing():
    team = make_team(credits=34)
    with pytest.raises(InsufficientCredits):
        submit(team)
    assert Generation.objects.count() == 0
    team.refresh_from_db()
    assert team.balance == 34


@pytest.mark.django_db
def test_member_monthly_cap_refuses_beyond_cap():
    team = make_team(credits=1000, rate_per_second=100, rate_per_minute=100)
    member = make_member(team, monthly_cap=70)
    submit(team, user=member.user)
    submit(team, user=member.user)
    with pytest.raises(InsufficientCredits, match="cap"):
        submit(team, user=member.user)
    assert Generation.objects.filter(team=team).count() == 2


@pytest.mark.django_db
def test_key_without_creator_has_no_member_cap():
    team = make_team(credits=1000, rate_per_second=100, rate_per_minute=100)
    submit(team)
    submit(team)
    submit(team)
    assert Generation.objects.filter(team=team).count() == 3


@pytest.mark.django_db
def test_rate_limit_is_checked_before_credits():
    team = make_team(credits=35)
    submit(team)
    with pytest.raises(RateLimited) as caught:
        submit(team)
    assert caught.value.rate.headers(refused=True)["Retry-After"] == "1"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "uri"),
    [
        ("input", "storage://nope/a.jpg"),
        ("output", "storage://nope/out/"),
        ("output", "storage://mine/out.mov"),
    ],
)
def test_unknown_storage_or_bad_output_names_the_field(field, uri):
    team = make_team(credits=100)
    Storage.objects.create(team=team, name="mine", type="local", parameters={"path": ""})
    kwargs = {"input": uri} if field == "input" else {"output": uri}
    with pytest.raises(ValidationFailed) as caught:
        submit(team, **kwargs)
    assert field in caught.value.details
    assert Generation.objects.count() == 0


@pytest.mark.django_db
def test_storage_output_records_target():
    team = make_team(credits=100)
    storage = Storage.objects.create(team=team, name="mine", type="local", parameters={"path": ""})
    generation = submit(team, output="storage://mine/out/").generation
    assert (
        generation.is_temporary,
        generation.output_storage,
        generation.output_key,
    ) == (False, storage, "out/")
    assert generation.request["output"] == "storage://mine/out/"


@pytest.mark.django_db
def test_cancel_refunds_once_and_second_cancel_changes_nothing():
    team = make_team(credits=100)
    generation = submit(team).generation
    generation_cancel(team=team, generation=generation)
    generation_cancel(team=team, generation=generation)
    team.refresh_from_db()
    assert generation.status == "CANCELLED"
    assert generation.stage == "cancelled"
    assert team.balance == 100 == ledger_sum(team)
    assert CreditLedger.objects.filter(generation=generation, kind="refund").count() == 1


@pytest.mark.django_db
def test_cancel_after_start_is_conflict():
    team = make_team(credits=100)
    generation = submit(team).generation
    Generation.objects.filter(pk=generation.pk).update(stage="rendering", attempts=1)
    with pytest.raises(Conflict):
        generation_cancel(team=team, generation=generation)
    team.refresh_from_db()
    assert team.balance == 65


@pytest.mark.django_db
def test_retry_creates_a_new_charged_job_with_same_request():
    team = make_team(credits=100, rate_per_second=10, rate_per_minute=10)
    first = submit(team, duration=10).generation
    generation_cancel(team=team, generation=first)
    second = generation_retry(team=team, user=None, generation=first).generation
    team.refresh_from_db()
    assert second.pk != first.pk
    assert second.request == first.request
    assert team.balance == 30


@pytest.mark.django_db
def test_delete_needs_creator_or_manager_and_removes_files(settings):
    team = make_team(credits=100)
    creator = make_member(team)
    other = make_member(team)
    admin = make_member(team, role=Membership.Role.ADMIN)
    generation = submit(team, user=creator.user).generation
    Generation.objects.filter(pk=generation.pk).update(
        status="DONE",
        stage="done",
        video_name="videos/x/a.mp4",
        poster_name="posters/a.jpg",
    )
    generation.refresh_from_db()
    for name in ("videos/x/a.mp4", "posters/a.jpg"):
        path = settings.MEDIA_ROOT / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    with pytest.raises(Forbidden):
        generation_delete(team=team, user=other.user, generation=generation)
    with pytest.raises(Forbidden):
        generation_delete(team=team, user=make_user(), generation=generation)
    generation_delete(team=team, user=admin.user, generation=generation)
    generation.refresh_from_db()
    assert generation.deleted_at is not None
    assert not (settings.MEDIA_ROOT / "videos/x/a.mp4").exists()
    assert not (settings.MEDIA_ROOT / "posters/a.jpg").exists()
    assert CreditLedger.objects.filter(generation=generation).count() == 1


@pytest.mark.django_db
def test_creator_can_delete_own_queued_job_which_is_refunded():
    team = make_team(credits=100)
    creator = make_member(team)
    generation = submit(team, user=creator.user).generation
    generation_delete(team=team, user=creator.user, generation=generation)
    team.refresh_from_db()
    assert team.balance == 100
    generation.refresh_from_db()
    assert generation.deleted_at is not None
    assert generation.status == "CANCELLED"


@pytest.mark.django_db
def test_jobs_made_with_a_members_key_count_against_that_members_cap():
    from generator.models import ApiKey
    from tests.factories import make_api_key

    team = make_team(credits=1000, rate_per_second=100, rate_per_minute=100)
    member = make_member(team, monthly_cap=35)
    make_api_key(team, user=member.user)
    key = ApiKey.objects.get(team=team)
    first = submit(team, api_key=key).generation
    assert first.created_by == member.user
    assert first.api_key == key
    with pytest.raises(InsufficientCredits, match="cap"):
        submit(team, api_key=key)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("output", "removed"),
    [("storage://shop/out/", True), ("storage://shop/out/keep.mp4", False)],
)
def test_delete_removes_a_folder_output_we_named_but_not_an_exact_key(settings, output, removed):
    team = make_team(credits=100)
    admin = make_member(team, role=Membership.Role.ADMIN)
    Storage.objects.create(team=team, name="shop", type="local", parameters={"path": ""})
    generation = submit(team, user=admin.user, output=output).generation
    key = f"out/{generation.uuid.hex}.mp4" if output.endswith("/") else "out/keep.mp4"
    Generation.objects.filter(pk=generation.pk).update(
        status="DONE", stage="done", output_key=key, poster_name="posters/a.jpg"
    )
    generation.refresh_from_db()
    folder = settings.GENERATOR_LOCAL_STORAGE_ROOT / team.slug / "out"
    folder.mkdir(parents=True)
    (folder / key.split("/")[-1]).write_bytes(b"video")
    (folder / "other.mp4").write_bytes(b"another customer object")
    generation_delete(team=team, user=admin.user, generation=generation)
    assert (folder / key.split("/")[-1]).exists() is not removed
    assert (folder / "other.mp4").read_bytes() == b"another customer object"


@pytest.mark.django_db(transaction=True)
def test_broker_down_after_commit_still_returns_the_created_job_and_logs(monkeypatch, caplog):
    from generator.services import queue

    def broker_down(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(queue, "async_task", broker_down)
    team = make_team(credits=100)
    with caplog.at_level("ERROR", logger="generator.services.queue"):
        generation = submit(team).generation
    generation.refresh_from_db()
    # Accepted and charged once; the reaper re-sends it once GENERATOR_QUEUED_STALE_S passes.
    assert (generation.status, generation.stage) == ("PROCESSING", "queued")
    assert generation.lease_expires_at is not None
    assert ledger_sum(team) == 65
    assert any("generation_run_task" in record.getMessage() and record.exc_info for record in caplog.records)
