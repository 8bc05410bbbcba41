"""set_rate_limits TEAM --per-second N --per-minute M | --reset"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import CommandError

from generator.models import Team

from ._base import TeamCommand, rate_limit, team_named


class Command(TeamCommand):
    help = "Override a team's rate limits (--reset restores the defaults of 1 per second and 15 per minute)."

    def add_options(self, parser):
        parser.add_argument("--per-second", type=rate_limit)
        parser.add_argument("--per-minute", type=rate_limit)
        parser.add_argument("--reset", action="store_true")

    def handle(
        self,
        *args,
        team: str,
        per_second: int | None,
        per_minute: int | None,
        reset: bool,
        **options,
    ):
        if reset and (per_second or per_minute):
            raise CommandError("use either --reset or --per-second/--per-minute")
        if not reset and (per_second is None or per_minute is None):
            raise CommandError("give both --per-second and --per-minute, or --reset")
        target = team_named(team)
        if reset:
            per_second = per_minute = None
        Team.objects.filter(pk=target.pk).update(rate_per_second=per_second, rate_per_minute=per_minute)
        shown_second = per_second or settings.GENERATOR_DEFAULT_PER_SECOND
        shown_minute = per_minute or settings.GENERATOR_DEFAULT_PER_MINUTE
        self.stdout.write(f"rate limits for {target.name}: {shown_second} per second, {shown_minute} per minute")
