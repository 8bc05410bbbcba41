"""Database connection tuning that settings alone cannot express."""

from __future__ import annotations

from django.db.backends.signals import connection_created
from django.dispatch import receiver


@receiver(connection_created)
def configure_sqlite(sender, connection, **kwargs) -> None:
    """Give every SQLite connection a busy timeout in milliseconds too (covers PRAGMA-level waits)."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA busy_timeout = 20000;")
