"""Shared behaviour of the operator commands: bad input is one line on stderr and exit status 1."""

from __future__ import annotations

import argparse
import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

from generator.errors import GeneratorError
from generator.models import Team
from generator.services.billing import MAX_GRANT

# Far above any real limit, far below PositiveIntegerField's ceiling.
MAX_RATE_LIMIT = 1_000_000


class _OneLineParser(CommandParser):
    def error(self, message):
        if self.called_from_command_line:
            # argparse would print the usage and exit 2; scripts expect one line and status 1.
            sys.stderr.write(f"error: {message}\n")
            sys.exit(1)
        raise CommandError(f"Error: {message}")


class OperatorCommand(BaseCommand):
    """A command for operators and scripts (README, "Command line")."""

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # BaseCommand hard-codes CommandParser; swapping the class keeps all its set-up.
        parser.__class__ = _OneLineParser
        return parser

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except GeneratorError as exc:
            raise CommandError(exc.message) from None


class TeamCommand(OperatorCommand):
    """An operator command about one team, named (exactly) as the first argument."""

    def add_arguments(self, parser):
        parser.add_argument("team", help="the team's exact name")
        self.add_options(parser)

    def add_options(self, parser) -> None:
        """Add the command's own arguments after TEAM."""


def team_named(name: str) -> Team:
    """Return the team with exactly this name, or fail the command."""
    team = Team.objects.filter(name=name).first()
    if team is None:
        raise CommandError(f"no team named {name!r}")
    return team


def whole_number(raw: str) -> int:
    """argparse type: a signed whole number."""
    try:
        return int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {raw!r}") from None


def credit_amount(raw: str) -> int:
    """argparse type: a whole number of credits, at most a billion either way."""
    value = whole_number(raw)
    if abs(value) > MAX_GRANT:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_GRANT} credits either way, got {raw[:40]}")
    return value


def rate_limit(raw: str) -> int:
    """argparse type: a rate limit, 1..MAX_RATE_LIMIT."""
    value = whole_number(raw)
    if not 1 <= value <= MAX_RATE_LIMIT:
        raise argparse.ArgumentTypeError(f"expected a number from 1 to {MAX_RATE_LIMIT}, got {raw[:40]}")
    return value
