from __future__ import annotations

import pytest

from generator.errors import ValidationFailed
from generator.models import CreditLedger
from generator.services.billing import allowance_credit, credits_grant
from tests.factories import make_team, make_user


@pytest.mark.django_db
def test_grant_writes_ledger_entry_with_actor_and_reason():
    team = make_team(credits=0)
    staff = make_user(is_staff=True)
    entry = credits_grant(team=team, amount=500, actor=staff, reason="welcome bonus")
    team.refresh_from_db()
    assert team.balance == 500
    assert (entry.kind, entry.amount, entry.actor, entry.reason, entry.balance_after) == (
        "grant",
        500,
        staff,
        "welcome bonus",
        500,
    )


@pytest.mark.django_db
def test_deduction_below_zero_is_refused_and_changes_nothing():
    team = make_team(credits=40)
    with pytest.raises(ValidationFailed):
        credits_grant(team=team, amount=-41, reason="oops")
    team.refresh_from_db()
    assert team.balance == 40
    assert CreditLedger.objects.filter(team=team).count() == 1


@pytest.mark.django_db
def test_grant_requires_a_reason():
    team = make_team(credits=0)
    with pytest.raises(ValidationFailed):
        credits_grant(team=team, amount=10, reason="  ")


@pytest.mark.django_db
def test_monthly_allowance_is_credited_once_per_period():
    team = make_team(credits=0, monthly_allowance=300)
    assert allowance_credit(team=team, period="2026-11") is not None
    assert allowance_credit(team=team, period="2026-11") is None
    assert allowance_credit(team=team, period="2026-12") is not None
    team.refresh_from_db()
    assert team.balance == 600


@pytest.mark.django_db
@pytest.mark.parametrize("amount", [1_000_000_001, -1_000_000_001, 10**20])
def test_grant_beyond_a_billion_credits_is_refused(amount):
    team = make_team(credits=10)
    with pytest.raises(ValidationFailed, match="1000000000"):
        credits_grant(team=team, amount=amount, reason="typo")
    team.refresh_from_db()
    assert team.balance == 10


@pytest.mark.django_db
def test_grant_that_would_overflow_the_balance_column_is_refused():
    team = make_team(credits=0)
    credits_grant(team=team, amount=1_000_000_000, reason="a")
    credits_grant(team=team, amount=1_000_000_000, reason="b")
    credits_grant(team=team, amount=147_483_647, reason="c")
    team.refresh_from_db()
    assert team.balance == 2_147_483_647
    with pytest.raises(ValidationFailed, match="2147483647"):
        credits_grant(team=team, amount=1, reason="one more")
    team.refresh_from_db()
    assert team.balance == 2_147_483_647
    assert CreditLedger.objects.filter(team=team).count() == 3


@pytest.mark.django_db
def test_spent_credits_and_billed_videos_agree_on_every_page_that_shows_them(client):
    """One rule (holds minus refunds; a refunded hold is no billed video) for API, pages, caps and admin."""
    from django.urls import reverse

    from generator.contract.generate import GenerateRequest
    from generator.models import Membership
    from generator.services.billing import credits_refund, member_spent_this_month
    from generator.services.generations import generation_create
    from tests.factories import make_api_key, make_member

    team = make_team(credits=1000, rate_per_second=100, rate_per_minute=100)
    member = make_member(team, role=Membership.Role.OWNER)
    created = [
        generation_create(
            team=team,
            user=member.user,
            request=GenerateRequest.parse(
                {"input": "https://shop.example/a.jpg", "options": {"prompt": "zoom in", "duration": d}}
            ),
        ).generation
        for d in (5, 10, 10)
    ]
    credits_refund(generation=created[1], reason="fetch failed")  # a failed 10 s job: no credits, no billed video

    account = client.get("/v1/account", HTTP_AUTHORIZATION=f"Bearer {make_api_key(team)}").json()["data"]
    assert account["usage_this_month"] | {"since": None} == {"credits": 105, "generations": 2, "since": None}
    assert member_spent_this_month(team=team, user=member.user) == 105

    client.force_login(member.user)
    credits_page = client.get(reverse("generator:credits")).context
    assert [(row["credits"], row["videos"]) for row in credits_page["usage"]] == [(105, 2)]
    assert credits_page["chart"]["total"] == 105

    staff = make_user(is_staff=True, is_superuser=True)
    client.force_login(staff)
    admin_page = client.get(reverse("admin:generator_team_change", args=[team.pk])).content.decode()
    assert "105 credits, 2 billed videos" in admin_page
