"""Reads. Every function that returns team data takes the team and scopes to it."""

from __future__ import annotations

from django.db.models import QuerySet

from generator.models import Generation, Membership, Storage


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
