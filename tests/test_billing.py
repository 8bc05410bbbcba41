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
        "grant", 500, staff, "welcome bonus", 500,
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
