from __future__ import annotations

import pytest
from django.db import transaction
from django.utils import timezone

from generator.models import Generation
from generator.selectors import usage_by_member
from generator.services.billing import credits_hold, credits_refund, team_lock
from tests.factories import make_member, make_team


def _held_generation(team, user) -> Generation:
    generation = Generation.objects.create(team=team, created_by=user, request={}, duration=5, cost=35)
    with transaction.atomic():
        credits_hold(team=team_lock(team.pk), generation=generation, user=user)
    return generation


@pytest.mark.django_db
def test_usage_by_member_counts_only_billed_videos():
    team = make_team(credits=1000)
    member = make_member(team)
    _held_generation(team, member.user)
    failed = _held_generation(team, member.user)
    credits_refund(generation=failed, reason="job failed")
    since = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    [row] = usage_by_member(team=team, since=since)
    assert (row["user_id"], row["credits"], row["videos"]) == (member.user.pk, 35, 1)
