"""grant_credits TEAM AMOUNT --reason TEXT"""

from __future__ import annotations

from django.core.management.base import CommandError

from generator.services.billing import credits_grant

from ._base import TeamCommand, credit_amount, team_named


class Command(TeamCommand):
    help = "Add (or, negative, deduct) credits through the ledger and print the new balance."

    def add_options(self, parser):
        parser.add_argument("amount", type=credit_amount)
        parser.add_argument("--reason", required=True)

    def handle(self, *args, team: str, amount: int, reason: str, **options):
        if amount == 0:
            raise CommandError("AMOUNT must not be zero")
        target = team_named(team)
        credits_grant(team=target, amount=amount, reason=reason)
        self.stdout.write(f"balance: {target.balance}")
