"""Credits: every change is a ledger entry written under a row lock on the team.

Team.balance is the running sum of the ledger and has a CHECK (>= 0); entries are only added.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from generator.errors import InsufficientCredits, ValidationFailed
from generator.models import CreditLedger, Generation, Team
from generator.services.uploads import upload_release

PRICE_BY_DURATION = {5: 35, 10: 70}
# One grant moves at most a billion credits: beyond that it is a typo, not a top-up.
MAX_GRANT = 1_000_000_000
# Team.balance is an IntegerField: PostgreSQL's integer tops out here.
MAX_BALANCE = 2_147_483_647


def price_for(duration: int) -> int:
    return PRICE_BY_DURATION[duration]


def team_lock(team_id: int) -> Team:
    """Lock the team row (SELECT ... FOR UPDATE) inside the caller's transaction."""
    return Team.objects.select_for_update().get(pk=team_id)


def _append(*, team: Team, amount: int, kind: str, **fields) -> CreditLedger:
    new_balance = team.balance + amount
    if new_balance < 0:
        raise InsufficientCredits(
            f"not enough credits: this needs {-amount}, the balance is {team.balance}",
            cost=-amount,
            balance=team.balance,
        )
    Team.objects.filter(pk=team.pk).update(balance=new_balance)
    team.balance = new_balance
    return CreditLedger.objects.create(team=team, amount=amount, kind=kind, balance_after=new_balance, **fields)


def member_spent_this_month(*, team: Team, user, now: datetime | None = None) -> int:
    """Credits the member has spent this month (holds minus refunds), in TIME_ZONE months."""
    start = month_start(now or timezone.now())
    return CreditLedger.objects.filter(team=team, user=user).spending(since=start).usage()["credits"]


def month_start(moment: datetime) -> datetime:
    local = timezone.localtime(moment)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def credits_hold(*, team: Team, generation: Generation, user=None, monthly_cap: int | None = None) -> CreditLedger:
    """Take the generation's cost from a team locked by the caller; 402 if the balance or cap is short."""
    cost = generation.cost
    if team.balance < cost:
        raise InsufficientCredits(
            f"not enough credits: this needs {cost}, the balance is {team.balance}", cost=cost, balance=team.balance
        )
    if user is not None and monthly_cap is not None:
        spent = member_spent_this_month(team=team, user=user)
        if spent + cost > monthly_cap:
            raise InsufficientCredits(
                f"monthly spending cap reached: {spent} of {monthly_cap} credits used, this needs {cost}",
                cost=cost,
                spent=spent,
                cap=monthly_cap,
            )
    return _append(
        team=team,
        amount=-cost,
        kind=CreditLedger.Kind.HOLD,
        generation=generation,
        user=user,
        reason=f"{generation.duration} s video",
    )


def credits_refund(*, generation: Generation, reason: str) -> CreditLedger | None:
    """Give back a generation's hold exactly once; return None if it was already refunded."""
    with transaction.atomic():
        team = team_lock(generation.team_id)
        hold = CreditLedger.objects.filter(generation=generation, kind=CreditLedger.Kind.HOLD).first()
        if hold is None or CreditLedger.objects.filter(generation=generation, kind=CreditLedger.Kind.REFUND).exists():
            return None
        try:
            with transaction.atomic():
                refund = _append(
                    team=team,
                    amount=-hold.amount,
                    kind=CreditLedger.Kind.REFUND,
                    generation=generation,
                    user=hold.user,
                    reason=reason[:500],
                )
        except IntegrityError:
            return None
        # A refunded job's uploaded photo goes with it (services/uploads.py), once the refund is kept.
        transaction.on_commit(lambda: upload_release(generation))
        return refund


def credits_grant(*, team: Team, amount: int, actor=None, reason: str) -> CreditLedger:
    """Add (or, negative, deduct) credits with a mandatory reason; never below zero or above MAX_BALANCE."""
    if not isinstance(amount, int) or isinstance(amount, bool) or amount == 0:
        raise ValidationFailed("amount must be a non-zero whole number", details={"amount": ["must be non-zero"]})
    if abs(amount) > MAX_GRANT:
        message = f"amount must be between -{MAX_GRANT} and {MAX_GRANT}"
        raise ValidationFailed(message, details={"amount": [message]})
    if not reason or not reason.strip():
        raise ValidationFailed("a reason is required", details={"reason": ["This field is required."]})
    with transaction.atomic():
        locked = team_lock(team.pk)
        if locked.balance + amount < 0:
            raise ValidationFailed(
                f"cannot deduct {-amount}: the balance is {locked.balance}",
                details={"amount": [f"the balance is {locked.balance}"]},
            )
        if locked.balance + amount > MAX_BALANCE:
            message = f"the balance would exceed {MAX_BALANCE} (it is {locked.balance})"
            raise ValidationFailed(f"cannot add {amount}: {message}", details={"amount": [message]})
        entry = _append(team=locked, amount=amount, kind=CreditLedger.Kind.GRANT, actor=actor, reason=reason.strip())
    team.balance = locked.balance
    return entry


def allowance_credit(*, team: Team, period: str) -> CreditLedger | None:
    """Credit the team's monthly allowance for `period` (YYYY-MM) once; None if already done or zero."""
    if team.monthly_allowance <= 0:
        return None
    try:
        with transaction.atomic():
            locked = team_lock(team.pk)
            if CreditLedger.objects.filter(team=locked, kind=CreditLedger.Kind.ALLOWANCE, period=period).exists():
                return None
            return _append(
                team=locked,
                amount=locked.monthly_allowance,
                kind=CreditLedger.Kind.ALLOWANCE,
                period=period,
                reason=f"monthly allowance {period}",
            )
    except IntegrityError:
        return None


def allowances_credit_all(*, now: datetime | None = None) -> int:
    """Credit this month's allowance to every team that has one; safe to run any number of times."""
    period = timezone.localtime(now or timezone.now()).strftime("%Y-%m")
    count = 0
    for team in Team.objects.filter(monthly_allowance__gt=0).only("pk", "monthly_allowance"):
        if allowance_credit(team=team, period=period) is not None:
            count += 1
    return count
