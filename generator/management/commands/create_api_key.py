"""create_api_key TEAM [--name NAME] [--scopes video_generation,storage,engines]"""

from __future__ import annotations

from django.core.management.base import CommandError

from generator.models import ApiKey
from generator.services.apikeys import apikey_create

from ._base import TeamCommand, team_named


class Command(TeamCommand):
    help = "Create an API key for a team; the key is printed alone on the last line of stdout."

    def add_options(self, parser):
        parser.add_argument("--name", default="cli")
        parser.add_argument("--scopes", default="video_generation,storage,engines")

    def handle(self, *args, team: str, name: str, scopes: str, **options):
        limit = ApiKey._meta.get_field("name").max_length or 0
        if len(name) > limit:
            # Refused rather than cut: a script would not find the key by the name it gave.
            raise CommandError(f"--name must be at most {limit} characters (got {len(name)})")
        target = team_named(team)
        scope_list = [scope.strip() for scope in scopes.split(",") if scope.strip()]
        key, raw = apikey_create(team=target, name=name, scopes=scope_list)
        self.stdout.write(f"team: {target.name}  name: {key.name}  scopes: {','.join(key.scopes)}")
        self.stdout.write(raw)
