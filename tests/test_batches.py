"""Batches: accepting (every input checked like a single submit), dispatching at the team's rate under
credits and caps, waiting and resuming, cancelling, finishing, and the services behind the API."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from PIL import Image

from generator.errors import Conflict, RateLimited, ValidationFailed
from generator.models import Batch, BatchItem, CreditLedger, Generation, Membership, Storage
from generator.services import batches as batch_service
from generator.services import billing, generations
from generator.services.batches import (
    batch_cancel,
    batch_create,
    batch_inputs_from_text,
    batch_retry_failed,
    batches_dispatch,
    output_names,
)
from tests.factories import make_member, make_team, make_user
from tests.harness import run_together

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
OPTIONS = {"prompt": "slow zoom in", "duration": 5}


class Clock:
    """A controlled clock: the dispatcher reads it under the team lock for each submission."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def photo_folder(settings, team, name: str = "in", files=("a.png",), size=(300, 300)) -> Storage:
    folder = Path(settings.GENERATOR_LOCAL_STORAGE_ROOT) / team.slug / name
    folder.mkdir(parents=True, exist_ok=True)
    image = Image.open(FIXTURES / "coffee.png").convert("RGB").resize(size)
    for file_name in files:
        target = folder / file_name
        target.parent.mkdir(parents=True, exist_ok=True)
        if file_name.endswith(".txt"):
            target.write_text("notes")
        else:
            image.save(target, format="PNG")
    return Storage.objects.get_or_create(
        team=team, name=name, defaults={"type": "local", "parameters": {"path": name}}
    )[0]


def urls(count: int) -> list[str]:
    return [f"https://shop.example/products/item-{index}.jpg" for index in range(count)]


def holds(team) -> int:
    return CreditLedger.objects.filter(team=team, kind="hold").count()


def ledger_sum(team) -> int:
    return sum(CreditLedger.objects.filter(team=team).values_list("amount", flat=True))


# --- accepting ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_bad_inputs_are_one_422_naming_each_by_index_and_nothing_is_created():
    team = make_team()
    body = {
        "inputs": ["https://shop.example/ok.jpg", "ftp://shop.example/a.jpg", 5, "storage://nope/a.jpg", "", "x" * 600],
        "options": OPTIONS,
    }
    with pytest.raises(ValidationFailed) as caught:
        batch_create(team=team, body=body)
    details = caught.value.details
    assert list(details) == ["inputs.1", "inputs.2", "inputs.3", "inputs.4", "inputs.5"]
    assert "only http and https" in details["inputs.1"][0]
    assert details["inputs.2"] == ["must be a string, not a number"]
    assert details["inputs.3"] == ["no storage named 'nope' in this team"]
    assert Batch.objects.count() == BatchItem.objects.count() == 0


@pytest.mark.django_db
def test_options_output_and_shape_follow_the_single_submit_rules():
    team = make_team()
    cases = [
        ({"inputs": urls(1), "options": {"prompt": "ab"}}, "options.prompt"),
        ({"inputs": urls(1), "options": {"prompt": "zoom", "duration": 7}}, "options.duration"),
        ({"inputs": urls(1), "options": OPTIONS, "colour": 1}, "colour"),
        ({"inputs": urls(1), "options": OPTIONS, "output": "storage://out/file.mp4"}, "output"),
        ({"inputs": urls(1), "options": OPTIONS, "output": "storage://out/dir/"}, "output"),
        ({"options": OPTIONS}, "inputs"),
        ({"inputs": [], "options": OPTIONS}, "inputs"),
        ({"inputs": urls(10_001), "options": OPTIONS}, "inputs"),
        ({"inputs": urls(1), "input_folder": "storage://in/", "options": OPTIONS}, "input_folder"),
        ({"inputs": urls(1), "recursive": True, "options": OPTIONS}, "recursive"),
        ({"input_folder": "storage://in/photos", "options": OPTIONS}, "input_folder"),
        ({"input_folder": "storage://in/", "options": OPTIONS}, "input_folder"),
    ]
    for body, field in cases:
        with pytest.raises(ValidationFailed) as caught:
            batch_create(team=team, body=body)
        assert field in caught.value.details, (body, caught.value.details)
    assert caught.value.details["input_folder"] == ["no storage named 'in' in this team"]
    assert Batch.objects.count() == 0


@pytest.mark.django_db
def test_listed_keys_or_an_output_folder_that_break_the_key_rules_are_a_422_not_a_crash(settings):
    team = make_team()
    photo_folder(settings, team, files=("ok.png", "back\\slash.png", "new\nline.png"))
    with pytest.raises(ValidationFailed) as caught:
        batch_create(team=team, body={"input_folder": "storage://in/", "options": OPTIONS})
    assert caught.value.details == {
        "input_folder": [
            "storage://in/back\\slash.png: the object key contains a backslash",
            "storage://in/new\nline.png: the object key contains control characters",
        ]
    }
    # The folder is short enough, but not with the video names appended: said once, naming the first.
    deep = "storage://in/" + "d" * 1017 + "/"
    with pytest.raises(ValidationFailed) as caught:
        batch_create(team=team, body={"inputs": urls(50), "output": deep, "options": OPTIONS})
    assert caught.value.details == {
        "output": ["with the video name 'item-0.mp4': the object key is longer than 1024 bytes"]
    }
    assert Batch.objects.count() == 0


@pytest.mark.django_db
def test_many_bad_inputs_name_the_first_hundred_and_count_the_rest():
    team = make_team()
    with pytest.raises(ValidationFailed) as caught:
        batch_create(team=team, body={"inputs": ["ftp://x/a.jpg"] * 250, "options": OPTIONS})
    details = caught.value.details
    assert len([key for key in details if key.startswith("inputs.")]) == 100
    assert details["inputs"] == ["250 entries are invalid; the first 100 are named"]


@pytest.mark.django_db
def test_a_folder_batch_takes_its_images_by_extension_in_key_order_and_charges_nothing(settings):
    team = make_team(credits=1000)
    photo_folder(settings, team, files=("b.png", "a.JPG", "notes.txt", "deeper/a.png", "c.webp"))
    batch = batch_create(team=team, body={"input_folder": "storage://in/", "options": OPTIONS})
    items = list(batch.items.order_by("position").values_list("position", "input", "output_name", "state"))
    assert items == [
        (1, "storage://in/a.JPG", "a.mp4", "pending"),
        (2, "storage://in/b.png", "b.mp4", "pending"),
        (3, "storage://in/c.webp", "c.mp4", "pending"),
    ]
    assert (batch.item_count, batch.cost_per_item, batch.total_cost, batch.state) == (3, 35, 105, "running")
    assert batch.source == {"type": "folder", "folder": "storage://in/", "recursive": False}
    recursive = batch_create(team=team, body={"input_folder": "storage://in/", "recursive": True, "options": OPTIONS})
    assert list(recursive.items.order_by("position").values_list("output_name", flat=True)) == [
        "a.mp4",
        "b.mp4",
        "c.mp4",
        "a-2.mp4",
    ]
    team.refresh_from_db()
    assert team.balance == 1000
    assert holds(team) == 0


@pytest.mark.django_db
def test_a_folder_with_more_than_ten_thousand_images_is_refused(settings, monkeypatch):
    team = make_team()
    photo_folder(settings, team, files=("a.png", "b.png", "c.png"))
    monkeypatch.setattr(batch_service, "MAX_ITEMS", 2)
    with pytest.raises(ValidationFailed) as caught:
        batch_create(team=team, body={"input_folder": "storage://in/", "options": OPTIONS})
    assert caught.value.details == {"input_folder": ["holds more than 2 images; split it into several batches"]}
    photo_folder(settings, team, name="empty", files=("readme.txt",))
    with pytest.raises(ValidationFailed) as caught:
        batch_create(team=team, body={"input_folder": "storage://empty/", "options": OPTIONS})
    assert "there are no images" in caught.value.details["input_folder"][0]


def test_output_names_follow_the_input_stem_with_suffixes_on_collisions():
    names = output_names(
        [
            "https://shop.example/a/shoe.jpg",
            "https://shop.example/b/shoe.png?size=large",
            "https://shop.example/shoe-2.jpg",
            "storage://in/deep/shoe.webp",
            "https://shop.example/",
            "https://shop.example/%E2%9C%93 caf%C3%A9 (1).jpg",
            "https://shop.example/",
        ]
    )
    assert names == ["shoe.mp4", "shoe-2.mp4", "shoe-2-2.mp4", "shoe-3.mp4", "video.mp4", "caf-1.mp4", "video-2.mp4"]


def test_pasted_text_and_shop_csv_exports_give_their_urls():
    text = "https://shop.example/a.jpg\n\n  https://shop.example/b.jpg  \nstorage://in/c.png\n"
    assert batch_inputs_from_text(text) == [
        "https://shop.example/a.jpg",
        "https://shop.example/b.jpg",
        "storage://in/c.png",
    ]
    csv_text = 'sku,title,image_url\n1,"Shoe, red",https://shop.example/1.jpg\n2,Mug,https://shop.example/2.jpg\n'
    assert batch_inputs_from_text(csv_text) == ["https://shop.example/1.jpg", "https://shop.example/2.jpg"]
    assert batch_inputs_from_text("url\nhttps://shop.example/1.jpg\nnot a url\n") == [
        "https://shop.example/1.jpg",
        "not a url",
    ]
    with pytest.raises(ValidationFailed) as caught:
        batch_inputs_from_text("sku,image\n1,https://shop.example/1.jpg\n2,none\n")
    assert caught.value.details == {"line 3": ["has no http(s):// or storage:// address"]}
    with pytest.raises(ValidationFailed):
        batch_inputs_from_text("sku,title\n")


# --- dispatching ----------------------------------------------------------------------------------


def _spy_rate_limits(monkeypatch) -> list:
    """Record every 429 the create service raises for anyone."""
    raised: list = []
    real = generations.generation_create

    def create(**kwargs):
        try:
            return real(**kwargs)
        except RateLimited as exc:
            raised.append(exc)
            raise

    monkeypatch.setattr(batch_service, "generation_create", create)
    return raised


@pytest.mark.django_db
def test_a_folder_batch_goes_out_at_exactly_the_team_rate_with_one_hold_each(settings, monkeypatch):
    # 40 items cross the minute window twice; tests/test_batches_e2e.py runs 200 through the worker.
    team = make_team(credits=40 * 35)  # default limits: 1 a second, 15 a minute
    photo_folder(settings, team, files=[f"p{index:03}.png" for index in range(40)], size=(8, 8))
    batch = batch_create(team=team, body={"input_folder": "storage://in/", "options": OPTIONS})
    raised = _spy_rate_limits(monkeypatch)
    clock = Clock(timezone.now())
    start = clock.now
    sent_at: list[float] = []
    for second in range(140):
        sent = batches_dispatch(now=clock.now, clock=clock)
        if second % 3 == 0:
            sent += batches_dispatch(now=clock.now, clock=clock)  # a second ticker, on the same clock
        sent_at += [second] * sent
        clock.advance(1)
    assert raised == []
    # 15 in the first 15 s (1 a second), then the minute window frees one a second, 60 s after each.
    expected = [minute * 60 + second for minute in range(3) for second in range(15)][:40]
    assert sent_at == expected
    created = list(Generation.objects.filter(team=team).order_by("created_at").values_list("created_at", flat=True))
    assert [(moment - start).total_seconds() for moment in created] == expected
    assert holds(team) == 40
    assert CreditLedger.objects.filter(team=team, kind="hold").values("generation").distinct().count() == 40
    assert BatchItem.objects.filter(batch=batch, state="submitted", generation__isnull=False).count() == 40
    # Each item's job is the single submit of its image, with the batch's options.
    first = BatchItem.objects.select_related("generation").get(batch=batch, position=1).generation
    assert first.request == {"input": "storage://in/p000.png", "options": {**OPTIONS, "guidance_scale": 0.5}}
    team.refresh_from_db()
    assert team.balance == 0 == ledger_sum(team)


@pytest.mark.django_db
def test_a_single_submit_meanwhile_shares_the_windows_and_the_batch_never_overtakes_them(monkeypatch):
    team = make_team(credits=10_000, rate_per_second=1, rate_per_minute=5)
    batch = batch_create(team=team, body={"inputs": urls(10), "options": OPTIONS})
    raised = _spy_rate_limits(monkeypatch)
    clock = Clock(timezone.now())
    generations.generation_create(
        team=team, request=batch_service._item_request(batch, batch.items.get(position=1)), now=clock.now
    )
    sent = []
    for _ in range(70):
        sent.append(batches_dispatch(now=clock.now, clock=clock))
        clock.advance(1)
    assert raised == []
    assert sum(sent) == 4 + 5  # 4 more in the first minute, 5 in the next
    assert sent[0] == 0  # the second window was full at t=0


@pytest.mark.django_db
def test_credits_running_out_at_item_30_wait_then_a_grant_resumes_it():
    team = make_team(credits=30 * 35, rate_per_second=100, rate_per_minute=1000)
    batch = batch_create(team=team, body={"inputs": urls(40), "options": OPTIONS})
    clock = Clock(timezone.now())
    for _ in range(5):
        batches_dispatch(now=clock.now, clock=clock)
        clock.advance(1)
    batch.refresh_from_db()
    assert batch.state == "waiting_for_credits"
    assert "not enough credits" in batch.waiting_reason
    assert holds(team) == 30
    assert BatchItem.objects.filter(batch=batch, state="pending").count() == 10
    assert set(BatchItem.objects.filter(batch=batch, state="pending").values_list("position", flat=True)) == set(
        range(31, 41)
    )
    team.refresh_from_db()
    assert team.balance == 0
    billing.credits_grant(team=team, amount=10 * 35, reason="top-up")
    for _ in range(3):
        batches_dispatch(now=clock.now, clock=clock)
        clock.advance(1)
    batch.refresh_from_db()
    assert (batch.state, batch.waiting_reason) == ("running", "")
    assert holds(team) == 40
    assert not BatchItem.objects.filter(batch=batch, state="pending").exists()
    # Finishing is the jobs' business: once every job has ended the dispatcher marks the batch done.
    Generation.objects.filter(team=team).update(status="DONE", stage="done", completed_at=clock.now)
    batches_dispatch(now=clock.now, clock=clock)
    batch.refresh_from_db()
    assert batch.state == "done"


@pytest.mark.django_db
def test_the_creator_s_monthly_cap_pauses_a_batch_until_next_month():
    team = make_team(credits=10_000, rate_per_second=100, rate_per_minute=1000)
    member = make_member(team, monthly_cap=3 * 35)
    batch = batch_create(team=team, body={"inputs": urls(5), "options": OPTIONS}, user=member.user)
    clock = Clock(timezone.now())
    batches_dispatch(now=clock.now, clock=clock)
    batch.refresh_from_db()
    assert batch.state == "waiting_for_credits"
    assert "monthly spending cap" in batch.waiting_reason
    assert holds(team) == 3
    # Raising the cap (or the month turning) lets it go on by itself.
    Membership.objects.filter(pk=member.pk).update(monthly_cap=None)
    batches_dispatch(now=clock.now, clock=clock)
    batch.refresh_from_db()
    assert batch.state == "running"
    assert holds(team) == 5
    assert set(Generation.objects.filter(team=team).values_list("created_by", flat=True)) == {member.user_id}


@pytest.mark.django_db
def test_a_waiting_batch_is_rechecked_cheaply_without_taking_the_team_lock(monkeypatch, django_assert_max_num_queries):
    team = make_team(credits=0)
    batch = batch_create(team=team, body={"inputs": urls(3), "options": OPTIONS})
    batches_dispatch()
    batch.refresh_from_db()
    assert batch.state == "waiting_for_credits"
    locks = []
    monkeypatch.setattr(batch_service.billing, "team_lock", lambda pk: locks.append(pk))
    with django_assert_max_num_queries(6):
        assert batches_dispatch() == 0
    assert locks == []


@pytest.mark.django_db
def test_a_team_whose_dispatch_fails_does_not_stop_the_others_and_is_tried_again(monkeypatch, caplog):
    broken, healthy = make_team(credits=1000), make_team(credits=1000)
    broken_batch = batch_create(team=broken, body={"inputs": urls(2), "options": OPTIONS})
    healthy_batch = batch_create(team=healthy, body={"inputs": urls(2), "options": OPTIONS})
    real = generations.generation_create

    def create(**kwargs):
        if kwargs["team"].pk == broken.pk:
            raise RuntimeError("the database went away")
        return real(**kwargs)

    monkeypatch.setattr(batch_service, "generation_create", create)
    clock = Clock(timezone.now())
    batches_dispatch(clock=clock)
    assert "dispatching team" in caplog.text
    assert list(broken_batch.items.values_list("state", flat=True)) == ["pending", "pending"]
    assert holds(broken) == 0
    assert healthy_batch.items.filter(state="submitted").count() == 1
    monkeypatch.setattr(batch_service, "generation_create", real)
    clock.advance(1)
    batches_dispatch(clock=clock)
    assert broken_batch.items.filter(state="submitted").count() == 1
    assert holds(broken) == 1


@pytest.mark.django_db
def test_an_item_whose_storage_was_disconnected_is_refused_uncharged_and_the_rest_go_on(settings):
    team = make_team(credits=1000, rate_per_second=100, rate_per_minute=1000)
    photo_folder(settings, team, name="in", files=("a.png",))
    batch = batch_create(team=team, body={"inputs": ["storage://in/a.png", *urls(2)], "options": OPTIONS})
    Storage.objects.filter(team=team, name="in").delete()
    batches_dispatch()
    states = dict(batch.items.values_list("position", "state"))
    assert states == {1: "refused", 2: "submitted", 3: "submitted"}
    assert "no storage named 'in'" in batch.items.get(position=1).error
    assert holds(team) == 2


@pytest.mark.django_db
def test_cancel_mid_way_cancels_pending_and_queued_items_uncharged_and_running_ones_go_on():
    team = make_team(credits=1000, rate_per_second=100, rate_per_minute=1000)
    batch = batch_create(team=team, body={"inputs": urls(10), "options": OPTIONS})
    monkey_limit = batch_service.MAX_PER_TEAM_TICK
    batch_service.MAX_PER_TEAM_TICK = 4
    try:
        batches_dispatch()
    finally:
        batch_service.MAX_PER_TEAM_TICK = monkey_limit
    submitted = list(Generation.objects.filter(team=team).order_by("pk"))
    assert len(submitted) == 4
    running = submitted[0]
    Generation.objects.filter(pk=running.pk).update(stage="rendering", attempts=1, started_at=timezone.now())
    batch = batch_cancel(team=team, batch=batch)
    assert batch.state == "cancelled"
    states = Counter(batch.items.values_list("state", flat=True))
    assert states == {"submitted": 4, "cancelled": 6}
    statuses = dict(Generation.objects.filter(team=team).values_list("pk", "status"))
    assert statuses[running.pk] == "PROCESSING"
    assert [statuses[g.pk] for g in submitted[1:]] == ["CANCELLED"] * 3
    team.refresh_from_db()
    # Only the running item is charged; the 3 queued were refunded and the 6 pending never charged.
    assert team.balance == 1000 - 35
    assert holds(team) == 4
    assert CreditLedger.objects.filter(team=team, kind="refund").count() == 3
    assert batches_dispatch() == 0
    assert Generation.objects.filter(team=team).count() == 4
    assert batch_cancel(team=team, batch=batch).state == "cancelled"  # again: no-op
    done = batch_create(team=team, body={"inputs": urls(1), "options": OPTIONS})
    Batch.objects.filter(pk=done.pk).update(state="done")
    with pytest.raises(Conflict):
        batch_cancel(team=team, batch=done)


@pytest.mark.django_db
def test_retrying_a_batch_s_failed_items_makes_a_new_batch_of_just_those(settings):
    team = make_team(credits=1000, rate_per_second=100, rate_per_minute=1000)
    user = make_user()
    batch = batch_create(team=team, body={"inputs": urls(4), "options": OPTIONS, "output": None}, user=user)
    batches_dispatch()
    first, second, *_ = batch.items.order_by("position").select_related("generation")
    Generation.objects.filter(pk=first.generation_id).update(status="ERROR", stage="error")
    Generation.objects.filter(pk=second.generation_id).update(status="DONE", stage="done")
    retry = batch_retry_failed(team=team, batch=batch, user=user)
    assert list(retry.items.values_list("input", flat=True)) == [first.input]
    assert retry.source == {"type": "retry", "retry_of": batch.pk}
    assert retry.options == batch.options
    Generation.objects.filter(pk=first.generation_id).update(status="DONE", stage="done")
    with pytest.raises(ValidationFailed):
        batch_retry_failed(team=team, batch=batch, user=user)


# --- several dispatchers at once on PostgreSQL --------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_dispatchers_on_many_threads_at_once_submit_each_item_exactly_once():
    team = make_team(credits=100_000, rate_per_second=1000, rate_per_minute=10_000)
    other = make_team(credits=100_000, rate_per_second=1000, rate_per_minute=10_000)
    batches = [batch_create(team=t, body={"inputs": urls(40), "options": OPTIONS}) for t in (team, other, team)]

    def ticker() -> int:
        return sum(batches_dispatch() for _ in range(5))

    outcomes = run_together(8, ticker)
    assert all(isinstance(sent, int) for sent in outcomes), outcomes
    assert sum(outcomes) == 120  # every submission counted once, by the ticker that made it
    for batch in batches:
        items = BatchItem.objects.filter(batch=batch)
        assert items.filter(state="submitted").count() == 40
        assert items.values("generation").distinct().count() == 40
    for t in (team, other):
        generations_of_team = Generation.objects.filter(team=t).count()
        assert generations_of_team == BatchItem.objects.filter(batch__team=t).count()
        assert holds(t) == generations_of_team
        t.refresh_from_db()
        assert t.balance == ledger_sum(t) == 100_000 - 35 * generations_of_team


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_cancel_while_dispatchers_submit_leaves_nothing_charged_and_nothing_pending(monkeypatch):
    team = make_team(credits=100_000, rate_per_second=1000, rate_per_minute=10_000)
    batch = batch_create(team=team, body={"inputs": urls(300), "options": OPTIONS})
    monkeypatch.setattr(batch_service, "MAX_PER_TEAM_TICK", 5)  # many short ticks, so cancel lands mid-way
    cancelled = threading.Event()
    roles = iter(["cancel", "dispatch", "dispatch", "dispatch"])
    roles_lock = threading.Lock()

    def work() -> int:
        with roles_lock:
            role = next(roles)
        if role == "cancel":
            while BatchItem.objects.filter(batch=batch, state="submitted").count() < 20:
                time.sleep(0.01)
            batch_cancel(team=team, batch=batch)
            cancelled.set()
            return -1
        sent = 0
        while not cancelled.is_set() and sent < 300:
            sent += batches_dispatch()
        return sent + batches_dispatch()  # once more after the cancel: it must submit nothing

    outcomes = run_together(4, work)
    assert all(isinstance(sent, int) for sent in outcomes), outcomes
    assert sorted(outcomes)[0] == -1  # the cancel ran
    states = Counter(BatchItem.objects.filter(batch=batch).values_list("state", flat=True))
    assert set(states) == {"submitted", "cancelled"}
    assert 20 <= states["submitted"] < 300
    # No worker ran: every submitted job was still queued, so the cancel refunded each one, and none
    # was submitted after it (it would still be queued and charged).
    jobs = Generation.objects.filter(team=team)
    assert jobs.count() == states["submitted"]
    assert set(jobs.values_list("status", flat=True)) == {"CANCELLED"}
    assert CreditLedger.objects.filter(team=team, kind="refund").count() == holds(team) == states["submitted"]
    team.refresh_from_db()
    assert team.balance == ledger_sum(team) == 100_000


# --- the operator command -------------------------------------------------------------------------


@pytest.mark.django_db
def test_batch_submit_starts_a_folder_or_csv_batch_and_prints_id_count_and_cost(settings, tmp_path):
    from io import StringIO

    from django.core.management import call_command

    team = make_team("Shop", credits=0)
    photo_folder(settings, team, files=("a.png", "b.png", "sub/c.png"))
    out = StringIO()
    call_command("batch_submit", "Shop", "--folder", "storage://in/", "--recursive", "--duration", "10", stdout=out)
    batch = Batch.objects.get()
    assert out.getvalue().splitlines() == ["items: 3", "total_cost: 210", f"batch: {batch.pk}"]
    assert (batch.created_by, batch.options["duration"], batch.source["via"]) == (None, 10, "cli")
    listing = tmp_path / "export.csv"
    listing.write_text("sku,image\n1,https://shop.example/1.jpg\n2,https://shop.example/2.jpg\n")
    out = StringIO()
    call_command(
        "batch_submit", "Shop", "--csv", str(listing), "--auto", "--output", "storage://in/videos/", stdout=out
    )
    second = Batch.objects.exclude(pk=batch.pk).get()
    assert out.getvalue().splitlines()[-1] == f"batch: {second.pk}"
    assert second.options["prompt"] == {"generate": True}
    assert second.output == "storage://in/videos/"


@pytest.mark.django_db
def test_batch_submit_names_every_bad_input_on_one_line(tmp_path):
    from django.core.management import CommandError, call_command

    make_team("Shop")
    listing = tmp_path / "list.txt"
    listing.write_text("https://shop.example/1.jpg\nftp://shop.example/2.jpg\nstorage://nope/3.png\n")
    with pytest.raises(CommandError) as caught:
        call_command("batch_submit", "Shop", "--csv", str(listing))
    message = str(caught.value)
    assert "inputs.1: only http and https URLs are allowed" in message
    assert "inputs.2: no storage named 'nope' in this team" in message
    assert "\n" not in message
    with pytest.raises(CommandError, match="no team named"):
        call_command("batch_submit", "Nobody", "--csv", str(listing))
    assert Batch.objects.count() == 0
