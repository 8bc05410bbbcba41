"""purge_expired: delete expired temporary videos now (also scheduled hourly)."""

from __future__ import annotations

from generator.services.purge import generations_purge_expired

from ._base import OperatorCommand


class Command(OperatorCommand):
    help = "Delete temporary videos whose 24-hour link has expired (records and posters stay)."

    def handle(self, *args, **options):
        count = generations_purge_expired()
        self.stdout.write(f"purged: {count}")
