"""seed_demo: the demo team, login, sample storage and API key (idempotent, re-prints secrets)."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from django.db import transaction

from generator.models import ApiKey, Membership, Storage, Team, User
from generator.services.apikeys import apikey_create
from generator.services.billing import credits_grant

from ._base import OperatorCommand

TEAM_NAME = "Demo"
TEAM_SLUG = "demo"
EMAIL = "demo@example.com"
STORAGE_NAME = "samples"
KEY_NAME = "demo"
START_CREDITS = 1050  # thirty 5 s videos
SAMPLES = Path(settings.BASE_DIR) / "tests" / "fixtures"
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif"}


class Command(OperatorCommand):
    help = "Create the demo team, demo@example.com, a local storage of sample photos and the 'demo' API key."

    def handle(self, *args, **options):
        photos = sorted(p for p in SAMPLES.glob("*") if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
        password = secrets.token_urlsafe(12)
        with transaction.atomic():
            team = Team.objects.filter(name=TEAM_NAME).first()
            if team is None:
                if Team.objects.filter(slug=TEAM_SLUG).exists():
                    raise CommandError(f"another team already uses the folder name {TEAM_SLUG!r}")
                team = Team.objects.create(name=TEAM_NAME, slug=TEAM_SLUG)
                credits_grant(team=team, amount=START_CREDITS, reason="demo credits (seed_demo)")
            user = User.objects.filter(email__iexact=EMAIL).first()
            if user is None:
                user = User.objects.create_user(email=EMAIL, password=password, name="Demo")
            else:
                user.set_password(password)
                user.is_active = True
                user.save(update_fields=["password", "is_active"])
            Membership.objects.update_or_create(team=team, user=user, defaults={"role": Membership.Role.OWNER})
            Storage.objects.get_or_create(
                team=team,
                name=STORAGE_NAME,
                defaults={"type": "local", "parameters": {"path": STORAGE_NAME}},
            )
            # Replace the key named "demo": the old secret was printed before and cannot be shown again.
            ApiKey.objects.filter(team=team, name=KEY_NAME).delete()
            _key, raw_key = apikey_create(team=team, created_by=user, name=KEY_NAME)
        folder = Path(settings.GENERATOR_LOCAL_STORAGE_ROOT) / team.slug / STORAGE_NAME
        folder.mkdir(parents=True, exist_ok=True)
        for photo in photos:
            target = folder / photo.name
            if not target.exists():
                shutil.copyfile(photo, target)
        self.stdout.write(f"team: {team.name} (balance {team.balance})")
        self.stdout.write(f"storage: storage://{STORAGE_NAME}/ ({len(photos)} sample photos)")
        self.stdout.write(f"email: {EMAIL}")
        self.stdout.write(f"password: {password}")
        self.stdout.write(f"api key: {raw_key}")
