"""Reads. Every function that returns team data takes the team and scopes to it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    F,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.fields.json import KT, KeyTextTransform
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from generator.models import (
    ApiKey,
    Batch,
    BatchItem,
    CreditLedger,
    EngineConnection,
    Generation,
    Invite,
    Membership,
    Storage,
    Team,
    WebhookDelivery,
)
from generator.upstream.registry import BUILTIN


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


def generation_page(*, team, status: str | None, after: tuple | None, limit: int) -> list[Generation]:
    """Return up to `limit + 1` of the team's generations, newest first, after (created_at, id) if given.

    The extra row tells the caller whether another page follows.
    """
    qs = generation_list(team=team, status=status)
    if after is not None:
        moment, pk = after
        qs = qs.filter(Q(created_at__lt=moment) | Q(created_at=moment, pk__lt=pk))
    return list(qs[: limit + 1])


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
    *,
    team,
    status: str | None = None,
    member_id: int | None = None,
    date_from=None,
    date_to=None,
    batch_id: int | None = None,
    aspect_ratio: str | None = None,
    engine: str | None = None,
    video: uuid.UUID | None = None,
) -> QuerySet[Generation]:
    """Return the team's generations for the gallery, newest first, with what each card shows.

    `engine` is "builtin" or a connection's name, matched on engine_info so that a disconnected
    engine's videos are still found.
    """
    qs = generation_list(team=team, status=status).select_related("created_by", "output_storage")
    filters = {
        "uuid": video,
        "aspect_ratio": aspect_ratio,
        "engine_info__name": engine if engine != BUILTIN else None,
        "engine_info__name__isnull": True if engine == BUILTIN else None,
        "created_by_id": member_id,
        "batch_item__batch_id": batch_id,
        "created_at__date__gte": date_from,
        "created_at__date__lte": date_to,
    }
    return qs.filter(**{lookup: value for lookup, value in filters.items() if value is not None})


def engine_names(*, team) -> list[str]:
    """Return builtin and every engine name the team has (its connections, and those its videos were made on)."""
    made_on = (
        Generation.objects.filter(team=team, engine_info__name__isnull=False)
        .annotate(engine_name=KT("engine_info__name"))
        .order_by()
        .values_list("engine_name", flat=True)
    )
    connected = EngineConnection.objects.filter(team=team).order_by().values_list("name", flat=True)
    return [BUILTIN, *sorted(set(made_on.union(connected)))]  # one query


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


def usage_total(*, team, since) -> dict:
    """Return the team's credits spent and billed videos since a moment: {"credits": ..., "videos": ...}."""
    return CreditLedger.objects.filter(team=team).spending(since=since).usage()


def usage_by_member(*, team, since) -> list[dict]:
    """Return credits spent and billed videos per user since a moment, biggest spender first."""
    rows = (
        CreditLedger.objects.filter(team=team)
        .spending(since=since)
        .usage("user_id", "user__email", "user__name")
        .order_by("-credits", "user_id")
    )
    return [
        {
            "user_id": row["user_id"],
            "label": row["user__name"] or row["user__email"] or "API keys without a member",
            "credits": row["credits"],
            "videos": row["videos"],
        }
        for row in rows
    ]


def usage_by_engine(*, team, since) -> list[dict]:
    """Return credits spent and billed videos per engine since a moment (builtin included), biggest first."""
    rows = (
        CreditLedger.objects.filter(team=team)
        .spending(since=since)
        .annotate(
            engine_name=Coalesce(
                KeyTextTransform("name", "generation__engine_info"), Value(BUILTIN), output_field=CharField()
            )
        )
        .usage("engine_name")
        .order_by("-credits", "engine_name")
    )
    return [{"label": row["engine_name"], "credits": row["credits"], "videos": row["videos"]} for row in rows]


def usage_daily(*, team, days: int = 30, now=None) -> list[tuple]:
    """Return (date, credits spent) for each of the last `days` days in TIME_ZONE, oldest first."""
    today = timezone.localdate(now or timezone.now())
    first = today - timedelta(days=days - 1)
    rows = (
        CreditLedger.objects.filter(team=team, created_at__date__gte=first)
        .spending()
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .usage("day")
    )
    by_day = {row["day"]: row["credits"] for row in rows}
    return [(first + timedelta(days=i), by_day.get(first + timedelta(days=i), 0)) for i in range(days)]


CHART_WIDTH_PX, CHART_HEIGHT_PX, CHART_PAD_PX = 720, 180, 24


def usage_chart(*, team, days: int = 30, now=None) -> dict:
    """Return the daily credits of the last `days` days laid out as an SVG bar chart (the template draws it)."""
    daily = usage_daily(team=team, days=days, now=now)
    width, height, pad = CHART_WIDTH_PX, CHART_HEIGHT_PX, CHART_PAD_PX
    top = max((credits for _, credits in daily), default=0) or 1
    slot = (width - 2 * pad) / max(len(daily), 1)
    bars = []
    for i, (day, credits) in enumerate(daily):
        h = round((height - pad) * max(credits, 0) / top, 1)  # a day of refunds nets below zero: no bar
        bars.append(
            {
                "x": round(pad + i * slot + 2, 1),
                "y": round(height - pad - h, 1),
                "w": round(slot - 4, 1),
                "h": h,
                "day": day,
                "credits": credits,
                "label": i % 5 == 0 or i == len(daily) - 1,
            }
        )
    return {
        "width": width,
        "height": height,
        "pad": pad,
        "top": top,
        "bars": bars,
        "base": height - pad,
        "total": sum(c for _, c in daily),
    }


def generation_recent(*, team, limit: int = 5) -> list[Generation]:
    """Return the team's newest generations with their creators (the Generate page's list)."""
    return list(generation_list(team=team).select_related("created_by")[:limit])


def generation_jobs(*, team) -> QuerySet[Generation]:
    """Return the team's jobs newest first, each annotated with whether its hold was refunded."""
    refunds = CreditLedger.objects.filter(generation=OuterRef("pk"), kind=CreditLedger.Kind.REFUND)
    return generation_list(team=team).select_related("created_by", "team").annotate(refunded=Exists(refunds))


def webhook_delivery_list(*, team, limit: int = 20) -> list:
    """Return the team's latest webhook delivery attempts, newest first."""
    return list(
        WebhookDelivery.objects.filter(Q(generation__team=team) | Q(batch__team=team))
        .select_related("generation", "batch")
        .order_by("-created_at", "-pk")[:limit]
    )


# --- The shared queue: who a free worker serves next (docs/queue.md) ----------------


@dataclass(frozen=True)
class QueueTeam:
    """A team with jobs waiting for a worker: how many, and its place in the rotation."""

    team_id: int
    queued: int
    last_start: datetime | None
    head_at: datetime


def queued_generations() -> QuerySet[Generation]:
    """Jobs waiting for a worker that a worker may still take (not out of attempts)."""
    return Generation.objects.filter(
        status=Generation.Status.PROCESSING,
        stage=Generation.Stage.QUEUED,
        deleted_at__isnull=True,
        attempts__lt=settings.GENERATOR_MAX_ATTEMPTS,
    )


def queue_rotation() -> list[QueueTeam]:
    """Teams with queued jobs in the order free workers serve them, round-robin.

    The team whose last job start is the oldest (never started: first of all) goes first, ties by
    its oldest queued job; a worker takes that team's oldest queued job, which makes the team the
    most recent starter, so it goes to the back. The claim (services/claims.py) and the queue
    position shown on the job page both follow this one order.
    """
    last_start = (
        Generation.objects.filter(team_id=OuterRef("team_id"), started_at__isnull=False)
        .order_by("-started_at")
        .values("started_at")[:1]
    )
    rows = (
        queued_generations()
        .order_by()
        .values("team_id")
        .annotate(queued=Count("pk"), head_at=Min("created_at"))
        .annotate(last_start=Subquery(last_start))
    )
    teams = [QueueTeam(row["team_id"], row["queued"], row["last_start"], row["head_at"]) for row in rows]
    return sorted(teams, key=_rotation_key)


def _rotation_key(entry: QueueTeam) -> tuple:
    never = entry.last_start is None
    return (not never, entry.last_start or entry.head_at, entry.head_at, entry.team_id)


def queue_head(*, team_id: int) -> int | None:
    """Return the pk of the team's oldest queued job (the one a worker takes on the team's turn)."""
    return (
        queued_generations().filter(team_id=team_id).order_by("created_at", "pk").values_list("pk", flat=True).first()
    )


def queue_positions(generations: Iterable[Generation], *, team) -> None:
    """Set queue_position (1 = next) on each of the team's jobs still waiting for a worker, else None.

    A job that is the k-th (0-based) of its team's queue starts in round k of the rotation: after
    every team's first k jobs (or all of a shorter queue), and after round k's jobs of the teams
    ahead of its own in the rotation.
    """
    generations = list(generations)
    waiting = [
        g for g in generations if g.status == Generation.Status.PROCESSING and g.stage == Generation.Stage.QUEUED
    ]
    for generation in generations:
        generation.queue_position = None
    if not waiting:
        return
    rotation = queue_rotation()
    turn = {entry.team_id: index for index, entry in enumerate(rotation)}
    if team.pk not in turn:
        return
    own_turn = turn[team.pk]
    order = list(queued_generations().filter(team=team).order_by("created_at", "pk").values_list("pk", flat=True))
    index_of = {pk: index for index, pk in enumerate(order)}
    for generation in waiting:
        k = index_of.get(generation.pk)
        if k is None:
            continue
        earlier_rounds = sum(min(entry.queued, k) for entry in rotation)
        this_round = sum(1 for entry in rotation[:own_turn] if entry.queued > k)
        generation.queue_position = earlier_rounds + this_round + 1


def generation_job_get(*, team, uuid) -> Generation | None:
    """Return one of the team's jobs as the Jobs page shows it (queue position, refund), or None."""
    try:
        generation = generation_jobs(team=team).filter(uuid=uuid).first()
    except (ValueError, TypeError, ValidationError):
        return None
    if generation is not None:
        queue_positions([generation], team=team)
    return generation


def invite_list_pending(*, team) -> QuerySet[Invite]:
    """Return the team's invites that are neither used, revoked nor expired, newest first."""
    return (
        Invite.objects.filter(team=team, used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now())
        .select_related("created_by")
        .order_by("-created_at")
    )


def invite_get(*, team, pk: int) -> Invite | None:
    return Invite.objects.filter(team=team, pk=pk).first()


def member_get(*, team, pk: int) -> Membership | None:
    return Membership.objects.select_related("user").filter(team=team, pk=pk).first()


def team_balance(*, team) -> int:
    """Return the team's balance as stored now."""
    return Team.objects.filter(pk=team.pk).values_list("balance", flat=True).get()


# --- Batches ------------------------------------------------------------------------------


# The same rule as BatchItem.status, in SQL, to count and filter by it.
ITEM_STATUS = Case(
    When(state=BatchItem.State.PENDING, then=Value("PENDING")),
    When(state=BatchItem.State.CANCELLED, then=Value("CANCELLED")),
    When(state=BatchItem.State.REFUSED, then=Value("ERROR")),
    default=Coalesce(F("generation__status"), Value("ERROR")),
    output_field=CharField(),
)
ITEM_STATUSES = ("PENDING", "PROCESSING", "DONE", "ERROR", "CANCELLED")


def batch_choices(*, team, limit: int = 50) -> list[Batch]:
    """Return the team's latest batches, for the gallery's batch filter."""
    return list(Batch.objects.filter(team=team).order_by("-created_at", "-pk")[:limit])


def batch_list(*, team) -> QuerySet[Batch]:
    return Batch.objects.filter(team=team).select_related("created_by").order_by("-created_at", "-pk")


def batch_get(*, team, pk: int | None = None, uuid=None) -> Batch | None:
    qs = Batch.objects.filter(team=team).select_related("created_by", "team")
    try:
        return qs.get(pk=pk) if pk is not None else qs.get(uuid=uuid)
    except (Batch.DoesNotExist, ValueError, TypeError):
        return None


def batch_counts(batch_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Return, per batch, how many items are in each status (PENDING until submitted, then the job's)."""
    ids = list(batch_ids)
    counts = {pk: dict.fromkeys(ITEM_STATUSES, 0) for pk in ids}
    rows = (
        BatchItem.objects.filter(batch_id__in=ids)
        .annotate(item_status=ITEM_STATUS)
        .order_by()
        .values("batch_id", "item_status")
        .annotate(n=Count("pk"))
    )
    for row in rows:
        counts[row["batch_id"]][row["item_status"]] = row["n"]
    return counts


def batch_items(*, batch, status: str | None = None, after: int | None = None) -> QuerySet[BatchItem]:
    """Return a batch's items in input order (with their generation), optionally one status, after a position."""
    qs = (
        BatchItem.objects.filter(batch=batch)
        .select_related("generation", "generation__team", "generation__output_storage")
        .order_by("position")
    )
    if status:
        qs = qs.alias(item_status=ITEM_STATUS).filter(item_status=status)
    if after is not None:
        qs = qs.filter(position__gt=after)
    return qs


def batch_recent_rate(*, batch, now, window_s: int = 300) -> float | None:
    """Return items finished per second over the last few minutes (None before any has finished)."""
    since = max(batch.created_at, now - timedelta(seconds=window_s))
    elapsed = (now - since).total_seconds()
    if elapsed <= 0:
        return None
    finished = BatchItem.objects.filter(
        batch=batch,
        generation__completed_at__gte=since,
        generation__status__in=[Generation.Status.DONE, Generation.Status.ERROR],
    ).count()
    return finished / elapsed if finished else None


def engine_list(*, team) -> QuerySet[EngineConnection]:
    return EngineConnection.objects.filter(team=team).order_by("name")


def engine_get(*, team, pk: int) -> EngineConnection | None:
    try:
        return EngineConnection.objects.filter(team=team).get(pk=pk)
    except (EngineConnection.DoesNotExist, ValueError, TypeError):
        return None
