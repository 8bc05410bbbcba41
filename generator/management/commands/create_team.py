"""create_team NAME [--credits N] [--owner EMAIL]"""

from __future__ import annotations

import secrets

from django.core.management.base import CommandError
from django.db import transaction
from django.utils.text import slugify

from generator.models import Membership, Team, User
from generator.services.billing import credits_grant

from ._base import OperatorCommand, credit_amount


def unique_slug(name: str) -> str:
    base = slugify(name)[:90] or "team"
    slug, n = base, 2
    while Team.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


class Command(OperatorCommand):
    help = "Create a team (and its owner, printing a one-time password for a new user)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--credits", type=credit_amount, default=0)
        parser.add_argument("--owner", metavar="EMAIL")

    def handle(self, *args, name: str, credits: int, owner: str | None, **options):
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("the team name must be 1..100 characters")
        if credits < 0:
            raise CommandError("--credits must be 0 or more")
        email = None
        if owner is not None:
            email = User.objects.normalize_email(owner.strip()).lower()
            if "@" not in email or len(email) > 254:
                raise CommandError(f"not an email address: {owner!r}")
        if Team.objects.filter(name=name).exists():
            raise CommandError(f"a team named {name!r} already exists")
        password = None
        with transaction.atomic():
            team = Team.objects.create(name=name, slug=unique_slug(name))
            if email is not None:
                user = User.objects.filter(email__iexact=email).first()
                if user is None:
                    password = secrets.token_urlsafe(12)
                    user = User.objects.create_user(email=email, password=password)
                Membership.objects.create(team=team, user=user, role=Membership.Role.OWNER)
            if credits:
                credits_grant(team=team, amount=credits, reason="initial credits (create_team)")
        self.stdout.write(f"team: {team.name}")
        self.stdout.write(f"balance: {team.balance}")
        if email is not None:
            self.stdout.write(f"email: {email}")
            if password is not None:
                self.stdout.write(f"password: {password}")
