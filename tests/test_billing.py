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
