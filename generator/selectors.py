"""Reads. Every function that returns team data takes the team and scopes to it."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import (
    Case,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    When,
)
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from generator.models import (
    ApiKey,
    CreditLedger,
    Generation,
    Membership,
    Storage,
    WebhookDelivery,
)


def membership_current(*, user, team_id: int | None) -> Membership | None:
    """Return the user's membership in the chosen team, or their first one."""
    memberships = Membership.objects.select_related("team").filter(user=user).order_by("created_at", "pk")
    if team_id is not None:
        chosen = memberships.filter(team_id=team_id).first()
        if chosen is not None:
            return chosen
    return memberships.first()


def membership_list(*, user) -> QuerySet[Membership]:
    return Membership.objects.select_related("team").filter(user=user).order_by("team__name")


def generation_list(*, team, status: str | None = None) -> QuerySet[Generation]:
    qs = Generation.objects.filter(team=team, deleted_at__isnull=True).order_by("-created_at", "-pk")
    if status:
        qs = qs.filter(status=status)
    return qs


def generation_get(*, team, pk: int | None = None, uuid=None) -> Generation | None:
    qs = Generation.objects.filter(team=team, deleted_at__isnull=True)
    try:
        if pk is not None:
            return qs.get(pk=pk)
        return qs.get(uuid=uuid)
    except (Generation.DoesNotExist, ValueError, TypeError):
        return None


def storage_list(*, team) -> QuerySet[Storage]:
    return Storage.objects.filter(team=team).order_by("name")


def storage_get(*, team, pk: int | None = None, name: str | None = None) -> Storage | None:
    qs = Storage.objects.filter(team=team)
    try:
        return qs.get(pk=pk) if pk is not None else qs.get(name=name)
    except (Storage.DoesNotExist, ValueError, TypeError):
        return None


# --- Dashboard reads ----------------------------------------------------------------------


def generation_gallery(
    *, team, status: str | None = None, member_id: int | None = None, date_from=None, date_to=None
) -> QuerySet[Generation]:
    """Return the team's generations for the gallery, newest first, with what each card shows."""
    qs = generation_list(team=team, status=status).select_related("created_by", "output_storage")
    if member_id is not None:
        qs = qs.filter(created_by_id=member_id)
    if date_from is not None:
        qs = qs.filter(created_at__date__gte=date_from)
    if date_to is not None:
        qs = qs.filter(created_at__date__lte=date_to)
    return qs


def member_list(*, team) -> QuerySet[Membership]:
    return Membership.objects.select_related("user").filter(team=team).order_by("user__email")


def apikey_list(*, team) -> QuerySet:
    return ApiKey.objects.select_related("created_by").filter(team=team).order_by("revoked_at", "-created_at")


def apikey_get(*, team, pk: int):
    return ApiKey.objects.filter(team=team, pk=pk).first()


def ledger_list(*, team) -> QuerySet:
    return (
        CreditLedger.objects.filter(team=team)
        .select_related("user", "actor", "generation")
        .order_by("-created_at", "-pk")
    )


def usage_by_member(*, team, since) -> list[dict]:
    """Return credits spent (holds minus refunds) and billed videos per user since a moment."""
    refunded = CreditLedger.objects.filter(generation=OuterRef("generation"), kind=CreditLedger.Kind.REFUND)
    rows = (
        CreditLedger.objects.filter(
            team=team, kind__in=[CreditLedger.Kind.HOLD, CreditLedger.Kind.REFUND], created_at__gte=since
        )
        .values("user_id", "user__email", "user__name")
        .annotate(
            spent=Sum("amount"),
            # A refunded hold (ERROR, CANCELLED) is no billed video, as on GET /v1/account.
            videos=Count("pk", filter=Q(kind=CreditLedger.Kind.HOLD) & ~Exists(refunded)),
        )
        .order_by("spent")
    )
    return [
        {
            "user_id": row["user_id"],
            "label": row["user__name"] or row["user__email"] or "API keys without a member",
            "credits": -(row["spent"] or 0),
            "videos": row["videos"],
        }
        for row in rows
    ]


def usage_daily(*, team, days: int = 30, now=None) -> list[tuple]:
    """Return (date, credits spent) for each of the last `days` days in TIME_ZONE, oldest first."""
    today = timezone.localdate(now or timezone.now())
    first = today - timedelta(days=days - 1)
    rows = (
        CreditLedger.objects.filter(
            team=team,
            kind__in=[CreditLedger.Kind.HOLD, CreditLedger.Kind.REFUND],
            created_at__date__gte=first,
        )
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(spent=Sum("amount"))
    )
    by_day = {row["day"]: -(row["spent"] or 0) for row in rows}
    return [(first + timedelta(days=i), by_day.get(first + timedelta(days=i), 0)) for i in range(days)]


def generation_jobs(*, team) -> QuerySet[Generation]:
    """Return the team's jobs newest first, each annotated with whether its hold was refunded."""
    refunds = CreditLedger.objects.filter(generation=OuterRef("pk"), kind=CreditLedger.Kind.REFUND)
    return generation_list(team=team).select_related("created_by").annotate(refunded=Exists(refunds))


def webhook_delivery_list(*, team, limit: int = 20) -> list:
    """Return the team's latest webhook delivery attempts, newest first."""
    return list(
        WebhookDelivery.objects.filter(generation__team=team)
        .select_related("generation")
        .order_by("-created_at", "-pk")[:limit]
    )


def _queued_ahead() -> Subquery:
    """Count jobs of every team queued before the outer one (workers are shared), plus one."""
    ahead = (
        Generation.objects.filter(
            status=Generation.Status.PROCESSING,
            stage=Generation.Stage.QUEUED,
            deleted_at__isnull=True,
            created_at__lt=OuterRef("created_at"),
        )
        .order_by()
        .values("status")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Subquery(ahead, output_field=IntegerField())


def generation_jobs_with_queue(*, team) -> QuerySet[Generation]:
    """Return generation_jobs, with queue_position (1 = next) on jobs still waiting for a worker."""
    waiting = Q(status=Generation.Status.PROCESSING, stage=Generation.Stage.QUEUED)
    return generation_jobs(team=team).annotate(
        queue_position=Case(When(waiting, then=Coalesce(_queued_ahead(), 0) + 1), default=None)
    )
